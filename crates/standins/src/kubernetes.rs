//! A Kubernetes API server's REST calls that `ragctl pause` and `ragctl resume` make, in
//! memory: list (with a label selector), get and JSON merge patch of namespaced objects of
//! any group, version and kind (`/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`).
//! No cluster runs here; this speaks the API's JSON so the real `kube` client is tested.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Objects by (group/version, namespace, plural), then by name.
type Store = BTreeMap<(String, String, String), BTreeMap<String, Value>>;

/// The stand-in, serving until dropped.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    patches: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct AppState {
    store: Arc<Mutex<Store>>,
    patches: Arc<Mutex<Vec<String>>>,
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, Json(body)).into_response()
}

/// Whether `object`'s labels satisfy `selector` (`k=v` terms joined by commas).
fn selected(object: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| match term.split_once('=') {
        Some((key, value)) => object["metadata"]["labels"][key.trim()] == value.trim(),
        None => !object["metadata"]["labels"][term.trim()].is_null(),
    })
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

async fn list(
    State(state): State<AppState>,
    Path((group, version, namespace, plural)): Path<(String, String, String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let key = (format!("{group}/{version}"), namespace, plural);
    let store = state.store.lock();
    let Some(objects) = store.get(&key) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no resource {}", key.2),
        );
    };
    let items: Vec<Value> = objects
        .values()
        .filter(|o| selected(o, params.get("labelSelector").map(String::as_str)))
        .cloned()
        .collect();
    Json(json!({
        "kind": "List", "apiVersion": format!("{group}/{version}"),
        "metadata": {"resourceVersion": "1"}, "items": items,
    }))
    .into_response()
}

async fn get_one(
    State(state): State<AppState>,
    Path((group, version, namespace, plural, name)): Path<(String, String, String, String, String)>,
) -> Response {
    let key = (format!("{group}/{version}"), namespace, plural);
    match state.store.lock().get(&key).and_then(|o| o.get(&name)) {
        Some(object) => Json(object.clone()).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{name} not found"),
        ),
    }
}

async fn patch(
    State(state): State<AppState>,
    Path((group, version, namespace, plural, name)): Path<(String, String, String, String, String)>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type != "application/merge-patch+json" {
        return status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("this stand-in takes merge patches, not {content_type:?}"),
        );
    }
    let Ok(patch) = serde_json::from_str::<Value>(&body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "not JSON".into());
    };
    let key = (format!("{group}/{version}"), namespace, plural);
    let mut store = state.store.lock();
    let Some(object) = store.get_mut(&key).and_then(|o| o.get_mut(&name)) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{name} not found"),
        );
    };
    merge(object, &patch);
    state
        .patches
        .lock()
        .push(format!("{}/{name}: {body}", key.2));
    Json(object.clone()).into_response()
}

impl StandIn {
    /// Serves on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = AppState {
            store: Arc::default(),
            patches: Arc::default(),
        };
        let app = Router::new()
            .route(
                "/apis/{group}/{version}/namespaces/{namespace}/{plural}",
                get(list),
            )
            .route(
                "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                get(get_one).patch(patch),
            )
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            store: state.store,
            patches: state.patches,
            server,
        })
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig naming this server (no credentials) with `namespace` as the default.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {}\n\
             contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n    namespace: {namespace}\n\
             current-context: standin\nusers:\n- name: standin\n  user: {{}}\n",
            self.url()
        )
    }

    /// Stores `object` (its `apiVersion`, `metadata.namespace` and `metadata.name` place it)
    /// as a resource of kind `plural`.
    pub fn insert(&self, plural: &str, object: Value) {
        let key = (
            object["apiVersion"].as_str().unwrap_or_default().to_owned(),
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            plural.to_owned(),
        );
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.store
            .lock()
            .entry(key)
            .or_default()
            .insert(name, object);
    }

    /// The stored object, if any.
    pub fn get(
        &self,
        api_version: &str,
        namespace: &str,
        plural: &str,
        name: &str,
    ) -> Option<Value> {
        let key = (
            api_version.to_owned(),
            namespace.to_owned(),
            plural.to_owned(),
        );
        self.store
            .lock()
            .get(&key)
            .and_then(|o| o.get(name))
            .cloned()
    }

    /// Every patch received, as `plural/name: body`.
    pub fn patches(&self) -> Vec<String> {
        self.patches.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn label_selectors_match_every_term() {
        let object = json!({"metadata": {"labels": {"app": "x", "tier": "y"}}});
        assert!(selected(&object, Some("app=x,tier=y")));
        assert!(!selected(&object, Some("app=x,tier=z")));
        assert!(selected(&object, None));
    }
}
