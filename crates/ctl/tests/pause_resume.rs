//! `ragctl pause` and `ragctl resume` against a Kubernetes API server. No cluster runs
//! here: `rag-standins`' stand-in serves the API's JSON for list, get and merge patch, so
//! the real `kube` client in the real binary makes the real calls (through a kubeconfig).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::process::Command;

use rag_standins::kubernetes::StandIn;
use serde_json::{Value, json};

const NAMESPACE: &str = "rag-dev";
const PAUSED: &str = "rag.llmops.dev/paused-replicas";

fn deployment(name: &str, replicas: i32, ours: bool) -> Value {
    let mut labels = json!({ "app.kubernetes.io/name": name });
    if ours {
        labels["app.kubernetes.io/part-of"] = json!("llmops-rag-pipeline");
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": NAMESPACE, "labels": labels },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
            "template": { "metadata": { "labels": { "app.kubernetes.io/name": name } } }
        }
    })
}

/// Runs `ragctl <command>` with a kubeconfig naming the stand-in; returns its output.
fn ragctl(api: &StandIn, dir: &std::path::Path, command: &str) -> String {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(NAMESPACE)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ragctl"))
        .arg(command)
        .env("KUBECONFIG", &kubeconfig)
        .env("RAG__DATA_DIR", dir)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "ragctl {command}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn replicas(api: &StandIn, name: &str) -> (i64, Value) {
    let object = api.get("apps/v1", NAMESPACE, "deployments", name).unwrap();
    (
        object["spec"]["replicas"].as_i64().unwrap(),
        object["metadata"]["annotations"][PAUSED].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_remembers_the_replica_counts_and_resume_restores_them() {
    let api = StandIn::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    api.insert("deployments", deployment("rag-gateway", 2, true));
    api.insert("deployments", deployment("rag-router", 3, true));
    api.insert("deployments", deployment("rag-embedder", 1, true));
    // Not ours: never touched.
    api.insert("deployments", deployment("someone-else", 4, false));
    api.insert(
        "scaledobjects",
        json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {
                "name": "rag-embedder", "namespace": NAMESPACE,
                "labels": { "app.kubernetes.io/part-of": "llmops-rag-pipeline" }
            },
            "spec": { "scaleTargetRef": { "name": "rag-embedder" } }
        }),
    );

    let api_ref = &api;
    let path = dir.path().to_owned();
    let out = tokio::task::block_in_place(|| ragctl(api_ref, &path, "pause"));
    println!("{out}");
    assert!(out.contains("deployment/rag-router: 3 -> 0"), "{out}");
    assert_eq!(replicas(&api, "rag-gateway"), (0, json!("2")));
    assert_eq!(replicas(&api, "rag-router"), (0, json!("3")));
    assert_eq!(replicas(&api, "rag-embedder"), (0, json!("1")));
    assert_eq!(replicas(&api, "someone-else"), (4, Value::Null));
    let keda = api
        .get(
            "keda.sh/v1alpha1",
            NAMESPACE,
            "scaledobjects",
            "rag-embedder",
        )
        .unwrap();
    assert_eq!(
        keda["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"],
        "0"
    );

    // Pausing again keeps the counts the first pause remembered.
    let out = tokio::task::block_in_place(|| ragctl(api_ref, &path, "pause"));
    assert!(
        out.contains("rag-router: unchanged (already paused)"),
        "{out}"
    );
    assert_eq!(replicas(&api, "rag-router"), (0, json!("3")));

    let out = tokio::task::block_in_place(|| ragctl(api_ref, &path, "resume"));
    println!("{out}");
    assert_eq!(replicas(&api, "rag-gateway"), (2, Value::Null));
    assert_eq!(replicas(&api, "rag-router"), (3, Value::Null));
    assert_eq!(replicas(&api, "rag-embedder"), (1, Value::Null));
    assert_eq!(replicas(&api, "someone-else"), (4, Value::Null));
    let keda = api
        .get(
            "keda.sh/v1alpha1",
            NAMESPACE,
            "scaledobjects",
            "rag-embedder",
        )
        .unwrap();
    assert!(
        keda["metadata"]["annotations"]
            .get("autoscaling.keda.sh/paused-replicas")
            .is_none()
    );
    assert!(
        api.patches()
            .iter()
            .all(|p| !p.starts_with("deployments/someone-else")),
        "{:?}",
        api.patches()
    );
}
