//! A Kubernetes API server's REST calls that `ragctl pause` / `resume` and the router's
//! ConfigMap watch make, in memory: list (with a label selector), get, JSON merge patch and
//! watch of namespaced objects of the core group (`/api/v1/namespaces/{ns}/{plural}`) and
//! any other (`/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`). Every change
//! gets the next `resourceVersion`; a watch (`?watch=true`) streams the changes after the
//! version it names as newline-delimited `{"type", "object"}` events (`ADDED` for every
//! object first when it names none), filtered by `fieldSelector=metadata.name=…`, until
//! its `timeoutSeconds`.
//! No cluster runs here; this speaks the API's JSON so the real `kube` client is tested.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt as _;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::watch;

/// (group/version, namespace, plural): `v1` for the core group.
type Key = (String, String, String);

/// Objects by key, then by name, and the changes so far.
#[derive(Debug, Default)]
struct Store {
    objects: BTreeMap<Key, BTreeMap<String, Value>>,
    /// The last resource version given out.
    version: u64,
    /// Every change: (its version, key, `ADDED` / `MODIFIED` / `DELETED`, the object).
    events: Vec<(u64, Key, &'static str, Value)>,
}

impl Store {
    /// Records a change of `object` (stamping it with the next resource version).
    fn record(&mut self, key: &Key, kind: &'static str, object: &mut Value) -> u64 {
        self.version += 1;
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert(
                "resourceVersion".into(),
                Value::String(self.version.to_string()),
            );
        }
        self.events
            .push((self.version, key.clone(), kind, object.clone()));
        self.version
    }
}

/// The stand-in, serving until dropped.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    patches: Arc<Mutex<Vec<String>>>,
    changed: Arc<watch::Sender<u64>>,
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
    /// The last resource version, for watches to wait on.
    changed: Arc<watch::Sender<u64>>,
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

async fn list_core(
    State(state): State<AppState>,
    Path((version, namespace, plural)): Path<(String, String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    list_or_watch(&state, (version, namespace, plural), &params)
}

async fn list(
    State(state): State<AppState>,
    Path((group, version, namespace, plural)): Path<(String, String, String, String)>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    list_or_watch(
        &state,
        (format!("{group}/{version}"), namespace, plural),
        &params,
    )
}

fn list_or_watch(state: &AppState, key: Key, params: &BTreeMap<String, String>) -> Response {
    if matches!(params.get("watch").map(String::as_str), Some("true" | "1")) {
        return watch_objects(state, key, params);
    }
    let store = state.store.lock();
    let Some(objects) = store.objects.get(&key) else {
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
        "kind": "List", "apiVersion": key.0,
        "metadata": {"resourceVersion": store.version.to_string()}, "items": items,
    }))
    .into_response()
}

/// Whether `object` passes a `metadata.name=…` field selector.
fn named(object: &Value, fields: Option<&str>) -> bool {
    match fields.and_then(|f| f.strip_prefix("metadata.name=")) {
        Some(name) => object["metadata"]["name"] == name,
        None => true,
    }
}

/// The changes of `key`'s objects after `resourceVersion` (every object as `ADDED` when it
/// is absent or 0), then each new one as it happens, until `timeoutSeconds`.
fn watch_objects(state: &AppState, key: Key, params: &BTreeMap<String, String>) -> Response {
    let fields = params.get("fieldSelector").cloned();
    let labels = params.get("labelSelector").cloned();
    let keep = move |object: &Value| {
        named(object, fields.as_deref()) && selected(object, labels.as_deref())
    };
    let since: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(290);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut pending = VecDeque::new();
    let cursor = {
        let store = state.store.lock();
        if since == 0 {
            let objects = store.objects.get(&key).into_iter().flat_map(|o| o.values());
            pending.extend(
                objects
                    .filter(|o| keep(o))
                    .map(|o| json!({"type": "ADDED", "object": o})),
            );
            store.version
        } else {
            since
        }
    };
    let store = Arc::clone(&state.store);
    let changes = state.changed.subscribe();
    let events = futures::stream::unfold(
        (cursor, pending, changes),
        move |(mut cursor, mut pending, mut changes)| {
            let store = Arc::clone(&store);
            let key = key.clone();
            let keep = keep.clone();
            async move {
                loop {
                    if let Some(event) = pending.pop_front() {
                        let mut line = event.to_string();
                        line.push('\n');
                        return Some((line, (cursor, pending, changes)));
                    }
                    {
                        let store = store.lock();
                        for (version, event_key, kind, object) in &store.events {
                            if *version > cursor && *event_key == key && keep(object) {
                                pending.push_back(json!({"type": kind, "object": object}));
                            }
                        }
                        cursor = store.version;
                    }
                    if !pending.is_empty() {
                        continue;
                    }
                    match tokio::time::timeout_at(deadline, changes.changed()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => return None,
                    }
                }
            }
        },
    );
    let body = axum::body::Body::from_stream(events.map(Ok::<_, Infallible>));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn get_core(
    State(state): State<AppState>,
    Path((version, namespace, plural, name)): Path<(String, String, String, String)>,
) -> Response {
    get_object(&state, (version, namespace, plural), &name)
}

async fn get_one(
    State(state): State<AppState>,
    Path((group, version, namespace, plural, name)): Path<(String, String, String, String, String)>,
) -> Response {
    get_object(
        &state,
        (format!("{group}/{version}"), namespace, plural),
        &name,
    )
}

fn get_object(state: &AppState, key: Key, name: &str) -> Response {
    match state
        .store
        .lock()
        .objects
        .get(&key)
        .and_then(|o| o.get(name))
    {
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
    let Some(object) = store.objects.get_mut(&key).and_then(|o| o.get_mut(&name)) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{name} not found"),
        );
    };
    merge(object, &patch);
    let mut object = object.clone();
    let version = store.record(&key, "MODIFIED", &mut object);
    store
        .objects
        .entry(key.clone())
        .or_default()
        .insert(name.clone(), object.clone());
    drop(store);
    state.changed.send_replace(version);
    state
        .patches
        .lock()
        .push(format!("{}/{name}: {body}", key.2));
    Json(object).into_response()
}

impl StandIn {
    /// Serves on an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = AppState {
            store: Arc::default(),
            patches: Arc::default(),
            changed: Arc::new(watch::Sender::new(0)),
        };
        let app = Router::new()
            .route(
                "/api/{version}/namespaces/{namespace}/{plural}",
                get(list_core),
            )
            .route(
                "/api/{version}/namespaces/{namespace}/{plural}/{name}",
                get(get_core),
            )
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
            changed: state.changed,
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
    /// as a resource of kind `plural`, replacing any of the same name (watches see `ADDED`
    /// or `MODIFIED`). Returns its resource version.
    pub fn insert(&self, plural: &str, mut object: Value) -> u64 {
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
        let mut store = self.store.lock();
        let exists = store
            .objects
            .get(&key)
            .is_some_and(|o| o.contains_key(&name));
        let kind = if exists { "MODIFIED" } else { "ADDED" };
        let version = store.record(&key, kind, &mut object);
        store.objects.entry(key).or_default().insert(name, object);
        drop(store);
        self.changed.send_replace(version);
        version
    }

    /// Deletes an object (watches see `DELETED`); whether it existed.
    pub fn remove(&self, api_version: &str, namespace: &str, plural: &str, name: &str) -> bool {
        let key = (
            api_version.to_owned(),
            namespace.to_owned(),
            plural.to_owned(),
        );
        let mut store = self.store.lock();
        let Some(mut object) = store.objects.get_mut(&key).and_then(|o| o.remove(name)) else {
            return false;
        };
        let version = store.record(&key, "DELETED", &mut object);
        drop(store);
        self.changed.send_replace(version);
        true
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
            .objects
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
