//! A STAND-IN for an MLflow tracking server's REST API, for tests only: the calls `rag-eval`
//! makes, in memory, with MLflow's JSON and its error shape (`{"error_code", "message"}`
//! with 400 or 404).
//!
//! * `GET  /api/2.0/mlflow/experiments/get-by-name?experiment_name=…` (404
//!   `RESOURCE_DOES_NOT_EXIST`);
//! * `POST /api/2.0/mlflow/experiments/create` `{"name"}` (400 `RESOURCE_ALREADY_EXISTS`);
//! * `POST /api/2.0/mlflow/runs/create` `{"experiment_id", "run_name", "start_time", "tags"}`;
//! * `POST /api/2.0/mlflow/runs/log-batch` `{"run_id", "metrics", "params", "tags"}`, with
//!   MLflow's checks: key characters (letters, digits, `_ - . : /` and space), at most 1,000
//!   metrics, 100 params, 100 tags and 1,000 items in all, numeric metric values and integer
//!   timestamps, and no parameter changed once logged;
//! * `POST /api/2.0/mlflow/runs/update` `{"run_id", "status", "end_time"}`;
//! * `GET  /api/2.0/mlflow/runs/get?run_id=…`.
//!
//! The real server is tested too when it is installed (`crates/eval/tests/mlflow.rs`); this
//! one runs everywhere. Controls: make every call fail with a 503, count the calls.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Default)]
struct Run {
    experiment_id: String,
    run_name: String,
    status: String,
    start_time: i64,
    end_time: Option<i64>,
    params: BTreeMap<String, String>,
    /// Every logged value of each metric: (value, timestamp, step).
    metrics: BTreeMap<String, Vec<(f64, i64, i64)>>,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Store {
    /// name → id
    experiments: BTreeMap<String, String>,
    runs: BTreeMap<String, Run>,
}

#[derive(Default)]
struct Server {
    store: Mutex<Store>,
    requests: AtomicUsize,
    failing: AtomicBool,
}

/// A running stand-in; dropping it stops the server.
pub struct StandIn {
    addr: SocketAddr,
    server: Arc<Server>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn").field("addr", &self.addr).finish()
    }
}

impl StandIn {
    /// On an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?)
    }

    /// On a listener the caller bound.
    pub fn start_on(listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let server = Arc::new(Server::default());
        let api = "/api/2.0/mlflow";
        let app = axum::Router::new()
            .route(
                &format!("{api}/experiments/get-by-name"),
                get(get_experiment),
            )
            .route(
                &format!("{api}/experiments/create"),
                post(create_experiment),
            )
            .route(&format!("{api}/runs/create"), post(create_run))
            .route(&format!("{api}/runs/log-batch"), post(log_batch))
            .route(&format!("{api}/runs/update"), post(update_run))
            .route(&format!("{api}/runs/get"), get(get_run))
            .with_state(server.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("mlflow stand-in stopped: {e}");
            }
        });
        Ok(Self { addr, server, task })
    }

    /// The tracking URI: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls received so far, failed ones included.
    pub fn requests(&self) -> usize {
        self.server.requests.load(Ordering::SeqCst)
    }

    /// From now on (or no longer), answers every call with a 503.
    pub fn fail(&self, failing: bool) {
        self.server.failing.store(failing, Ordering::SeqCst);
    }

    /// The names of the experiments, in order.
    pub fn experiments(&self) -> Vec<String> {
        self.server
            .store
            .lock()
            .experiments
            .keys()
            .cloned()
            .collect()
    }

    /// How many runs experiment `name` holds.
    pub fn run_count(&self, name: &str) -> usize {
        let store = self.server.store.lock();
        store.experiments.get(name).map_or(0, |id| {
            store
                .runs
                .values()
                .filter(|r| r.experiment_id == *id)
                .count()
        })
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
}

fn missing_run(run_id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
        format!("Run with id={run_id} not found"),
    )
}

/// Counts the call; a 503 when failing.
fn arrive(server: &Server) -> Option<Response> {
    server.requests.fetch_add(1, Ordering::SeqCst);
    server.failing.load(Ordering::SeqCst).then(|| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "TEMPORARILY_UNAVAILABLE",
            "the stand-in is failing on purpose",
        )
    })
}

/// The JSON object of a request body.
fn body(bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(Value::is_object)
}

const NOT_AN_OBJECT: &str = "Request body is not a JSON object";

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 250
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/'))
}

fn run_json(id: &str, run: &Run) -> Value {
    let params: Vec<Value> = run
        .params
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let tags: Vec<Value> = run
        .tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let metrics: Vec<Value> = run
        .metrics
        .iter()
        .filter_map(|(k, values)| {
            let (value, timestamp, step) = values.last()?;
            Some(json!({"key": k, "value": value, "timestamp": timestamp, "step": step}))
        })
        .collect();
    json!({
        "info": {
            "run_id": id,
            "run_uuid": id,
            "run_name": run.run_name,
            "experiment_id": run.experiment_id,
            "status": run.status,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "lifecycle_stage": "active",
        },
        "data": {"metrics": metrics, "params": params, "tags": tags},
    })
}

async fn get_experiment(
    State(server): State<Arc<Server>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(failed) = arrive(&server) {
        return failed;
    }
    let Some(name) = query.get("experiment_name") else {
        return invalid("Missing value for required parameter 'experiment_name'.");
    };
    match server.store.lock().experiments.get(name) {
        Some(id) => Json(json!({"experiment": {
            "experiment_id": id, "name": name, "lifecycle_stage": "active",
        }}))
        .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("Could not find experiment with name '{name}'"),
        ),
    }
}

async fn create_experiment(
    State(server): State<Arc<Server>>,
    bytes: axum::body::Bytes,
) -> Response {
    if let Some(failed) = arrive(&server) {
        return failed;
    }
    let Some(request) = body(&bytes) else {
        return invalid(NOT_AN_OBJECT);
    };
    let Some(name) = request["name"].as_str().filter(|n| !n.is_empty()) else {
        return invalid("Missing value for required parameter 'name'.");
    };
    let mut store = server.store.lock();
    if store.experiments.contains_key(name) {
        return error(
            StatusCode::BAD_REQUEST,
            "RESOURCE_ALREADY_EXISTS",
            format!("Experiment '{name}' already exists."),
        );
    }
    let id = (store.experiments.len() + 1).to_string();
    store.experiments.insert(name.to_owned(), id.clone());
    Json(json!({"experiment_id": id})).into_response()
}

async fn create_run(State(server): State<Arc<Server>>, bytes: axum::body::Bytes) -> Response {
    if let Some(failed) = arrive(&server) {
        return failed;
    }
    let Some(request) = body(&bytes) else {
        return invalid(NOT_AN_OBJECT);
    };
    let experiment_id = request["experiment_id"].as_str().unwrap_or_default();
    let mut store = server.store.lock();
    if !store.experiments.values().any(|id| id == experiment_id) {
        return error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("No Experiment with id={experiment_id} exists"),
        );
    }
    let mut run = Run {
        experiment_id: experiment_id.to_owned(),
        run_name: request["run_name"].as_str().unwrap_or_default().to_owned(),
        status: "RUNNING".into(),
        start_time: request["start_time"].as_i64().unwrap_or_default(),
        ..Run::default()
    };
    for tag in request["tags"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (tag["key"].as_str(), tag["value"].as_str()) {
            run.tags.insert(k.to_owned(), v.to_owned());
        }
    }
    let id = format!("{:032x}", store.runs.len() + 1);
    let json = run_json(&id, &run);
    store.runs.insert(id, run);
    Json(json!({"run": json})).into_response()
}

async fn log_batch(State(server): State<Arc<Server>>, bytes: axum::body::Bytes) -> Response {
    if let Some(failed) = arrive(&server) {
        return failed;
    }
    let Some(request) = body(&bytes) else {
        return invalid(NOT_AN_OBJECT);
    };
    let run_id = request["run_id"].as_str().unwrap_or_default();
    let list = |name: &str| request[name].as_array().cloned().unwrap_or_default();
    let (metrics, params, tags) = (list("metrics"), list("params"), list("tags"));
    for (what, items, max) in [
        ("metrics", &metrics, 1000),
        ("params", &params, 100),
        ("tags", &tags, 100),
    ] {
        if items.len() > max {
            return invalid(format!(
                "A batch logging request can contain at most {max} {what}. Got {} {what}.",
                items.len()
            ));
        }
    }
    if metrics.len() + params.len() + tags.len() > 1000 {
        return invalid("A batch logging request can contain at most 1000 items in all.");
    }
    let mut store = server.store.lock();
    let Some(run) = store.runs.get_mut(run_id) else {
        return missing_run(run_id);
    };
    for item in metrics.iter().chain(&params).chain(&tags) {
        let key = item["key"].as_str().unwrap_or_default();
        if !valid_key(key) {
            return invalid(format!(
                "Invalid value \"{key}\" for parameter 'key' supplied: Names may only contain \
                 alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) \
                 and slashes (/)."
            ));
        }
    }
    for m in &metrics {
        let (Some(value), Some(timestamp)) = (m["value"].as_f64(), m["timestamp"].as_i64()) else {
            return invalid(format!(
                "Invalid metric {m}: value and timestamp are required"
            ));
        };
        let step = m["step"].as_i64().unwrap_or_default();
        let key = m["key"].as_str().unwrap_or_default().to_owned();
        run.metrics
            .entry(key)
            .or_default()
            .push((value, timestamp, step));
    }
    for p in &params {
        let key = p["key"].as_str().unwrap_or_default();
        let Some(value) = p["value"].as_str() else {
            return invalid(format!("Invalid param {p}: value must be a string"));
        };
        if let Some(old) = run.params.get(key)
            && old != value
        {
            return invalid(format!(
                "Changing param values is not allowed. Param with key='{key}' was already \
                 logged with value='{old}' for run ID='{run_id}'. Attempted logging new value \
                 '{value}'."
            ));
        }
        run.params.insert(key.to_owned(), value.to_owned());
    }
    for t in &tags {
        let key = t["key"].as_str().unwrap_or_default();
        let value = t["value"].as_str().unwrap_or_default();
        run.tags.insert(key.to_owned(), value.to_owned());
    }
    Json(json!({})).into_response()
}

async fn update_run(State(server): State<Arc<Server>>, bytes: axum::body::Bytes) -> Response {
    if let Some(failed) = arrive(&server) {
        return failed;
    }
    let Some(request) = body(&bytes) else {
        return invalid(NOT_AN_OBJECT);
    };
    let run_id = request["run_id"].as_str().unwrap_or_default();
    let status = request["status"].as_str().unwrap_or_default();
    if !["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"].contains(&status) {
        return invalid(format!("Invalid value {status:?} for parameter 'status'"));
    }
    let mut store = server.store.lock();
    let Some(run) = store.runs.get_mut(run_id) else {
        return missing_run(run_id);
    };
    run.status = status.to_owned();
    run.end_time = request["end_time"].as_i64();
    Json(json!({"run_info": run_json(run_id, run)["info"]})).into_response()
}

async fn get_run(
    State(server): State<Arc<Server>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(failed) = arrive(&server) {
        return failed;
    }
    let run_id = query.get("run_id").map(String::as_str).unwrap_or_default();
    match server.store.lock().runs.get(run_id) {
        Some(run) => Json(json!({"run": run_json(run_id, run)})).into_response(),
        None => missing_run(run_id),
    }
}
