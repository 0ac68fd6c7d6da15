//! Experiments as MLflow runs, through MLflow's REST API (`/api/2.0/mlflow/…`), so runs can
//! be compared in MLflow's UI.
//!
//! [`MlflowClient::log_record`] turns one [`ExperimentRecord`] into one run:
//!
//! 1. `GET experiments/get-by-name`, or `POST experiments/create` when it does not exist
//!    (another client creating it at the same moment is fine: it is read again);
//! 2. `POST runs/create` with the record's time as `start_time` and a run name;
//! 3. `POST runs/log-batch`: the parameters, the metrics (step 0, the record's time) and the
//!    tags `mlflow.source.git.commit` (the git revision), `git_dirty`, `kind`,
//!    `mlflow.source.name`; split into several calls past MLflow's per-request limits;
//! 4. `POST runs/update` to `FINISHED` (to `FAILED` when logging failed half-way).
//!
//! MLflow accepts only letters, digits, `_`, `-`, `.`, ` `, `:` and `/` in metric and
//! parameter names, so [`mlflow_key`] writes `ndcg@10` as `ndcg_at_10`.
//!
//! [`MlflowTarget::from_env`] reads MLflow's own variables: `MLFLOW_TRACKING_URI` (only
//! `http://` and `https://` servers: a `file:` store or `databricks` profile is not REST),
//! `MLFLOW_EXPERIMENT_NAME`, and `MLFLOW_TRACKING_TOKEN` or `MLFLOW_TRACKING_USERNAME` and
//! `MLFLOW_TRACKING_PASSWORD` for servers behind authentication.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::report::ExperimentRecord;

/// MLflow's per-request limits for `runs/log-batch` (1,000 items in all).
const MAX_PARAMS_PER_BATCH: usize = 100;
const MAX_TAGS_PER_BATCH: usize = 100;
const MAX_METRICS_PER_BATCH: usize = 800;
/// Every MLflow store accepts parameter values of this many characters.
const MAX_PARAM_VALUE_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error(
        "MLFLOW_TRACKING_URI {0:?} is not an http(s) URL (only a tracking server's REST API is supported)"
    )]
    InvalidUri(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("MLflow {endpoint}: {source}")]
    Http {
        endpoint: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("MLflow {endpoint}: HTTP {status} {code}: {message}")]
    Status {
        endpoint: String,
        status: u16,
        /// MLflow's `error_code`, e.g. `RESOURCE_DOES_NOT_EXIST`; empty when the body had none.
        code: String,
        message: String,
    },
    #[error("MLflow {endpoint}: unexpected response: {reason}")]
    Response { endpoint: String, reason: String },
}

impl MlflowError {
    fn code(&self) -> Option<&str> {
        match self {
            Self::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// How to authenticate to the tracking server.
#[derive(Clone, PartialEq, Eq)]
pub enum MlflowAuth {
    Bearer(String),
    Basic { username: String, password: String },
}

impl std::fmt::Debug for MlflowAuth {
    /// Never prints the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(***)"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// Where runs go: the tracking server, and the experiment if one is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowTarget {
    pub tracking_uri: String,
    /// `MLFLOW_EXPERIMENT_NAME`; unset means one experiment per kind of evaluation.
    pub experiment: Option<String>,
    pub auth: Option<MlflowAuth>,
}

impl MlflowTarget {
    /// From MLflow's environment variables, read through `var` (tests pass a map); `None`
    /// when `MLFLOW_TRACKING_URI` is unset or empty.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let tracking_uri = get("MLFLOW_TRACKING_URI")?;
        let auth = match (
            get("MLFLOW_TRACKING_TOKEN"),
            get("MLFLOW_TRACKING_USERNAME"),
            get("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(token), _, _) => Some(MlflowAuth::Bearer(token)),
            (None, Some(username), password) => Some(MlflowAuth::Basic {
                username,
                password: password.unwrap_or_default(),
            }),
            _ => None,
        };
        Some(Self {
            tracking_uri,
            experiment: get("MLFLOW_EXPERIMENT_NAME"),
            auth,
        })
    }

    /// The experiment a record of `kind` goes to: the named one, else `rag-<kind>`.
    pub fn experiment_for(&self, kind: &str) -> String {
        self.experiment
            .clone()
            .unwrap_or_else(|| format!("rag-{kind}"))
    }
}

/// A metric or parameter name MLflow accepts: `@` becomes `_at_`, any other character outside
/// letters, digits, `_`, `-`, `.`, ` `, `:` and `/` becomes `_`.
pub fn mlflow_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '@' => out.push_str("_at_"),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/') => {
                out.push(c);
            }
            _ => out.push('_'),
        }
    }
    out
}

/// A run as the server holds it (`runs/get`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MlflowRun {
    pub run_id: String,
    pub experiment_id: String,
    pub run_name: String,
    /// `RUNNING`, `FINISHED`, `FAILED`, …
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub params: BTreeMap<String, String>,
    /// The latest value of each metric.
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
}

/// A client of one tracking server.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    api: String,
    http: reqwest::Client,
    auth: Option<MlflowAuth>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

impl MlflowClient {
    /// A client of `target.tracking_uri`; every request gives up after `timeout`.
    pub fn new(target: &MlflowTarget, timeout: Duration) -> Result<Self, MlflowError> {
        let uri = target.tracking_uri.trim().trim_end_matches('/');
        let valid = reqwest::Url::parse(uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if valid.is_none() {
            return Err(MlflowError::InvalidUri(target.tracking_uri.clone()));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(MlflowError::Client)?;
        Ok(Self {
            api: format!("{uri}/api/2.0/mlflow"),
            http,
            auth: target.auth.clone(),
        })
    }

    async fn call(
        &self,
        endpoint: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, MlflowError> {
        let request = match &self.auth {
            Some(MlflowAuth::Bearer(token)) => request.bearer_auth(token),
            Some(MlflowAuth::Basic { username, password }) => {
                request.basic_auth(username, Some(password))
            }
            None => request,
        };
        let http = |source| MlflowError::Http {
            endpoint: endpoint.to_owned(),
            source,
        };
        let response = request.send().await.map_err(http)?;
        let status = response.status();
        let body = response.bytes().await.map_err(http)?;
        if !status.is_success() {
            let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
            let (code, message) = match parsed {
                Some(e) => (e.error_code, e.message),
                None => (
                    String::new(),
                    String::from_utf8_lossy(&body).chars().take(300).collect(),
                ),
            };
            return Err(MlflowError::Status {
                endpoint: endpoint.to_owned(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&body).map_err(|e| MlflowError::Response {
            endpoint: endpoint.to_owned(),
            reason: format!("invalid JSON: {e}"),
        })
    }

    async fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Value, MlflowError> {
        let request = self
            .http
            .get(format!("{}/{endpoint}", self.api))
            .query(query);
        self.call(endpoint, request).await
    }

    async fn post(&self, endpoint: &str, body: &Value) -> Result<Value, MlflowError> {
        let request = self
            .http
            .post(format!("{}/{endpoint}", self.api))
            .json(body);
        self.call(endpoint, request).await
    }

    /// The id of experiment `name`, created if it does not exist.
    pub async fn experiment_id(&self, name: &str) -> Result<String, MlflowError> {
        let by_name = || async {
            let found = self
                .get("experiments/get-by-name", &[("experiment_name", name)])
                .await?;
            string_at(
                &found,
                &["experiment", "experiment_id"],
                "experiments/get-by-name",
            )
        };
        match by_name().await {
            Ok(id) => return Ok(id),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {}
            Err(e) => return Err(e),
        }
        match self
            .post("experiments/create", &json!({ "name": name }))
            .await
        {
            Ok(created) => string_at(&created, &["experiment_id"], "experiments/create"),
            // Created by someone else in between.
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => by_name().await,
            Err(e) => Err(e),
        }
    }

    /// Records `record` as a finished run of `experiment` named `run_name`; returns its id.
    pub async fn log_record(
        &self,
        experiment: &str,
        run_name: &str,
        record: &ExperimentRecord,
    ) -> Result<String, MlflowError> {
        let experiment_id = self.experiment_id(experiment).await?;
        let millis = i64::try_from(record.unix_time)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let created = self
            .post(
                "runs/create",
                &json!({
                    "experiment_id": experiment_id,
                    "run_name": run_name,
                    "start_time": millis,
                    "tags": [{"key": "mlflow.runName", "value": run_name}],
                }),
            )
            .await?;
        let run_id = string_at(&created, &["run", "info", "run_id"], "runs/create")?;
        let logged = self.log_batches(&run_id, millis, record).await;
        let status = if logged.is_ok() { "FINISHED" } else { "FAILED" };
        let end_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(millis, |d| i64::try_from(d.as_millis()).unwrap_or(millis));
        let updated = self
            .post(
                "runs/update",
                &json!({"run_id": run_id, "status": status, "end_time": end_time}),
            )
            .await;
        logged?;
        updated?;
        Ok(run_id)
    }

    async fn log_batches(
        &self,
        run_id: &str,
        millis: i64,
        record: &ExperimentRecord,
    ) -> Result<(), MlflowError> {
        let params: Vec<Value> = record
            .params
            .iter()
            .map(|(k, v)| {
                json!({"key": mlflow_key(k), "value": v.chars().take(MAX_PARAM_VALUE_CHARS).collect::<String>()})
            })
            .collect();
        let metrics: Vec<Value> = record
            .metrics
            .iter()
            .filter(|(_, v)| v.is_finite())
            .map(|(k, v)| json!({"key": mlflow_key(k), "value": v, "timestamp": millis, "step": 0}))
            .collect();
        let mut tags = vec![
            json!({"key": "kind", "value": record.kind}),
            json!({"key": "mlflow.source.name", "value": "ragctl"}),
            json!({"key": "mlflow.source.type", "value": "LOCAL"}),
        ];
        if let Some(revision) = &record.git_revision {
            tags.push(json!({"key": "mlflow.source.git.commit", "value": revision}));
        }
        if let Some(dirty) = record.git_dirty {
            tags.push(json!({"key": "git_dirty", "value": dirty.to_string()}));
        }
        let batches = params
            .len()
            .div_ceil(MAX_PARAMS_PER_BATCH)
            .max(metrics.len().div_ceil(MAX_METRICS_PER_BATCH))
            .max(tags.len().div_ceil(MAX_TAGS_PER_BATCH))
            .max(1);
        let slice = |list: &[Value], size: usize, i: usize| -> Vec<Value> {
            list.iter().skip(i * size).take(size).cloned().collect()
        };
        for i in 0..batches {
            self.post(
                "runs/log-batch",
                &json!({
                    "run_id": run_id,
                    "params": slice(&params, MAX_PARAMS_PER_BATCH, i),
                    "metrics": slice(&metrics, MAX_METRICS_PER_BATCH, i),
                    "tags": slice(&tags, MAX_TAGS_PER_BATCH, i),
                }),
            )
            .await?;
        }
        Ok(())
    }

    /// A run as the server holds it.
    pub async fn get_run(&self, run_id: &str) -> Result<MlflowRun, MlflowError> {
        let endpoint = "runs/get";
        let body = self.get(endpoint, &[("run_id", run_id)]).await?;
        let run = &body["run"];
        if !run.is_object() {
            return Err(MlflowError::Response {
                endpoint: endpoint.into(),
                reason: "no run in the response".into(),
            });
        }
        let info = &run["info"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let pairs = |list: &Value| -> BTreeMap<String, String> {
            list.as_array()
                .into_iter()
                .flatten()
                .map(|p| (text(&p["key"]), text(&p["value"])))
                .collect()
        };
        let metrics = run["data"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((text(&m["key"]), m["value"].as_f64()?)))
            .collect();
        // MLflow writes 64-bit integers as JSON numbers or (proto3 JSON) as strings.
        let time = |v: &Value| v.as_i64().or_else(|| v.as_str()?.parse().ok());
        Ok(MlflowRun {
            run_id: text(&info["run_id"]),
            experiment_id: text(&info["experiment_id"]),
            run_name: text(&info["run_name"]),
            status: text(&info["status"]),
            start_time: time(&info["start_time"]),
            end_time: time(&info["end_time"]),
            params: pairs(&run["data"]["params"]),
            metrics,
            tags: pairs(&run["data"]["tags"]),
        })
    }
}

fn string_at(value: &Value, path: &[&str], endpoint: &str) -> Result<String, MlflowError> {
    let mut at = value;
    for key in path {
        at = &at[*key];
    }
    at.as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| MlflowError::Response {
            endpoint: endpoint.to_owned(),
            reason: format!("no {} in {value}", path.join(".")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_mlflow_accepts() {
        assert_eq!(mlflow_key("ndcg@10"), "ndcg_at_10");
        assert_eq!(mlflow_key("latency_p50_ms"), "latency_p50_ms");
        assert_eq!(mlflow_key("a b.c-d/e:f"), "a b.c-d/e:f");
        assert_eq!(mlflow_key("judge→score?"), "judge_score_");
    }

    #[test]
    fn target_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(MlflowTarget::from_env(env(&[])), None);
        assert_eq!(
            MlflowTarget::from_env(env(&[("MLFLOW_TRACKING_URI", " ")])),
            None
        );
        let t =
            MlflowTarget::from_env(env(&[("MLFLOW_TRACKING_URI", "http://mlflow:5000")])).unwrap();
        assert_eq!(t.auth, None);
        assert_eq!(t.experiment_for("answers"), "rag-answers");
        let t = MlflowTarget::from_env(env(&[
            ("MLFLOW_TRACKING_URI", "http://mlflow:5000"),
            ("MLFLOW_EXPERIMENT_NAME", "nightly"),
            ("MLFLOW_TRACKING_USERNAME", "me"),
            ("MLFLOW_TRACKING_PASSWORD", "secret"),
        ]))
        .unwrap();
        assert_eq!(t.experiment_for("retrieval"), "nightly");
        assert_eq!(
            t.auth,
            Some(MlflowAuth::Basic {
                username: "me".into(),
                password: "secret".into()
            })
        );
        assert!(!format!("{t:?}").contains("secret"));
        let t = MlflowTarget::from_env(env(&[
            ("MLFLOW_TRACKING_URI", "https://x"),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
            ("MLFLOW_TRACKING_USERNAME", "me"),
        ]))
        .unwrap();
        assert_eq!(t.auth, Some(MlflowAuth::Bearer("tok".into())));
        assert!(!format!("{t:?}").contains("tok"));
    }

    #[test]
    fn only_http_servers() {
        for uri in ["file:///tmp/mlruns", "databricks", "", "http://"] {
            let target = MlflowTarget {
                tracking_uri: uri.into(),
                experiment: None,
                auth: None,
            };
            assert!(
                matches!(
                    MlflowClient::new(&target, Duration::from_secs(1)),
                    Err(MlflowError::InvalidUri(_))
                ),
                "{uri}"
            );
        }
        let target = MlflowTarget {
            tracking_uri: "http://127.0.0.1:5000/".into(),
            experiment: None,
            auth: None,
        };
        let client = MlflowClient::new(&target, Duration::from_secs(1)).unwrap();
        assert_eq!(client.api, "http://127.0.0.1:5000/api/2.0/mlflow");
    }
}
