//! Experiments recorded as MLflow runs through MLflow's REST API.
//!
//! * Against a **real MLflow tracking server** (`mlflow server`, MLflow 3) when one is
//!   installed: `RAG_MLFLOW_BIN`, else `.cache/mlflow/bin/mlflow` in the workspace (a
//!   virtualenv: `python3 -m venv .cache/mlflow && .cache/mlflow/bin/pip install mlflow`), else
//!   `mlflow` on the `PATH`; started on a free loopback port with a SQLite store in a temporary
//!   directory. Skipped, with a note, when none is installed.
//! * Against `rag_standins::mlflow`, a stand-in speaking the same REST calls, always: the same
//!   checks, plus a server that fails or cannot be reached (a warning, the local line kept).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rag_eval::mlflow::MlflowRun;
use rag_eval::{
    ExperimentLog, ExperimentRecord, MlflowClient, MlflowError, MlflowTarget, Recorder,
};
use rag_standins::mlflow::StandIn;

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

fn record(alpha: &str, ndcg: f64) -> ExperimentRecord {
    ExperimentRecord {
        kind: "retrieval".into(),
        unix_time: 1_790_000_000,
        git_revision: Some(REVISION.into()),
        git_dirty: Some(true),
        params: BTreeMap::from([
            ("dataset".into(), "scifact".into()),
            ("mode".into(), "hybrid".into()),
            ("alpha".into(), alpha.into()),
        ]),
        metrics: BTreeMap::from([
            ("ndcg@10".into(), ndcg),
            ("recall@100".into(), 0.9512),
            ("latency_p50_ms".into(), 12.25),
            ("queries".into(), 300.0),
            ("skipped".into(), f64::NAN),
        ]),
    }
}

fn target(uri: &str) -> MlflowTarget {
    MlflowTarget {
        tracking_uri: uri.into(),
        experiment: None,
        auth: None,
    }
}

async fn get_run(uri: &str, run_id: &str) -> MlflowRun {
    MlflowClient::new(&target(uri), Duration::from_secs(10))
        .unwrap()
        .get_run(run_id)
        .await
        .unwrap()
}

/// What every tracking server must show after two records.
async fn records_runs(uri: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = ExperimentLog::in_data_dir(dir.path());
    let recorder = Recorder::new(log.clone(), Some(target(uri)));

    let first = recorder
        .record(&record("0.5", 0.7012), "retrieval scifact hybrid")
        .await;
    first.log.unwrap();
    let first_id = first.mlflow.unwrap().unwrap();
    let run = get_run(uri, &first_id).await;
    assert_eq!(run.run_id, first_id);
    assert_eq!(run.status, "FINISHED");
    assert_eq!(run.run_name, "retrieval scifact hybrid");
    assert_eq!(run.start_time, Some(1_790_000_000_000));
    assert!(run.end_time.unwrap() >= 1_790_000_000_000, "{run:?}");
    assert_eq!(run.params["alpha"], "0.5");
    assert_eq!(run.params["mode"], "hybrid");
    assert_eq!(run.metrics["ndcg_at_10"], 0.7012);
    assert_eq!(run.metrics["recall_at_100"], 0.9512);
    assert_eq!(run.metrics["latency_p50_ms"], 12.25);
    assert_eq!(run.metrics["queries"], 300.0);
    assert!(!run.metrics.contains_key("skipped"), "NaN is not sent");
    assert_eq!(run.tags["mlflow.source.git.commit"], REVISION);
    assert_eq!(run.tags["git_dirty"], "true");
    assert_eq!(run.tags["kind"], "retrieval");
    assert_eq!(run.tags["mlflow.runName"], "retrieval scifact hybrid");

    // The second run goes to the same experiment (found by name, not created again).
    let second = recorder
        .record(&record("0.7", 0.7101), "retrieval scifact hybrid")
        .await;
    let second_id = second.mlflow.unwrap().unwrap();
    assert_ne!(second_id, first_id);
    let again = get_run(uri, &second_id).await;
    assert_eq!(again.experiment_id, run.experiment_id);
    assert_eq!(again.params["alpha"], "0.7");
    assert_eq!(log.read_all().unwrap().len(), 2);

    // Past MLflow's per-request limits (100 params, 1,000 items): several batches.
    let mut big = record("0.3", 0.6);
    for i in 0..150 {
        big.params.insert(format!("p{i:03}"), format!("v{i}"));
    }
    for i in 0..1200 {
        big.metrics.insert(format!("m{i:04}"), f64::from(i));
    }
    let id = recorder.record(&big, "big").await.mlflow.unwrap().unwrap();
    let run = get_run(uri, &id).await;
    assert_eq!(run.status, "FINISHED");
    assert_eq!(run.params.len(), 153);
    assert_eq!(run.params["p149"], "v149");
    assert_eq!(run.metrics.len(), 1204);
    assert_eq!(run.metrics["m1199"], 1199.0);

    // MLFLOW_EXPERIMENT_NAME wins over the per-kind experiment.
    let named = MlflowTarget {
        experiment: Some("nightly".into()),
        ..target(uri)
    };
    let id = Recorder::new(log.clone(), Some(named))
        .record(&record("0.5", 0.7), "named")
        .await
        .mlflow
        .unwrap()
        .unwrap();
    assert_ne!(get_run(uri, &id).await.experiment_id, run.experiment_id);
}

#[tokio::test]
async fn stand_in_records_runs() {
    let stand_in = StandIn::start().await.unwrap();
    records_runs(&stand_in.url()).await;
    assert_eq!(stand_in.experiments(), ["nightly", "rag-retrieval"]);
    assert_eq!(stand_in.run_count("rag-retrieval"), 3);
}

#[tokio::test]
async fn an_unreachable_or_failing_server_is_a_warning_and_keeps_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = ExperimentLog::in_data_dir(dir.path());

    let stand_in = StandIn::start().await.unwrap();
    stand_in.fail(true);
    let recorded = Recorder::new(log.clone(), Some(target(&stand_in.url())))
        .record(&record("0.5", 0.7), "r")
        .await;
    recorded.log.unwrap();
    match recorded.mlflow {
        Some(Err(MlflowError::Status {
            status: 503, code, ..
        })) => {
            assert_eq!(code, "TEMPORARILY_UNAVAILABLE");
        }
        other => panic!("expected a 503, got {other:?}"),
    }

    // Nothing listens on the stand-in's port once it is dropped.
    let url = stand_in.url();
    drop(stand_in);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let recorded = Recorder::new(log.clone(), Some(target(&url)))
        .record(&record("0.5", 0.7), "r")
        .await;
    recorded.log.unwrap();
    assert!(
        matches!(recorded.mlflow, Some(Err(MlflowError::Http { .. }))),
        "{:?}",
        recorded.mlflow
    );
    assert!(started.elapsed() < Recorder::MLFLOW_TIMEOUT * 2);

    let recorded = Recorder::new(log.clone(), Some(target("file:///tmp/mlruns")))
        .record(&record("0.5", 0.7), "r")
        .await;
    recorded.log.unwrap();
    assert!(matches!(
        recorded.mlflow,
        Some(Err(MlflowError::InvalidUri(_)))
    ));

    // Without a tracking server only the line is written.
    let recorded = Recorder::new(log.clone(), None)
        .record(&record("0.5", 0.7), "r")
        .await;
    assert!(recorded.log.is_ok() && recorded.mlflow.is_none());
    assert_eq!(log.read_all().unwrap().len(), 4);
}

/// The `mlflow` command, if one is installed.
fn mlflow_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("RAG_MLFLOW_BIN") {
        return Some(PathBuf::from(bin));
    }
    let cached = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/mlflow/bin/mlflow");
    if cached.is_file() {
        return Some(cached);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("mlflow"))
            .find(|p| p.is_file())
    })
}

/// An `mlflow server` in its own process group, stopped (the whole group) when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mlflow_server_records_runs() {
    let Some(bin) = mlflow_bin() else {
        eprintln!(
            "MLflow is not installed; skipping the real-server test (set RAG_MLFLOW_BIN or \
             install it into .cache/mlflow)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let store = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
    let mut command = Command::new(&bin);
    command
        .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--workers", "1", "--backend-store-uri", &store])
        .arg("--default-artifact-root")
        .arg(dir.path().join("artifacts"))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("server.log")).unwrap(),
        ));
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut server = Server {
        child: command.spawn().unwrap(),
    };
    let uri = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let ok = http
            .get(format!("{uri}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            break;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("mlflow server exited with {status}: {log}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "mlflow server not up after 180 s: {}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "mlflow server ({}) up in {:.1} s",
        bin.display(),
        started.elapsed().as_secs_f64()
    );
    records_runs(&uri).await;
}
