//! Hot reload of domains, prompts and guardrails (`router.live`), without a restart.
//!
//! - From a ConfigMap: the real router binary, with the real `kube` client, watches a
//!   ConfigMap on a Kubernetes API stand-in (`rag_standins::kubernetes`: no cluster runs
//!   here; it speaks the API's JSON, resource versions and watch stream). The test edits the
//!   ConfigMap as `kubectl apply` would and reads the router's domains over gRPC.
//! - From a file: the router in this process, polling a file the test rewrites.
//!
//! A document that does not validate, and a deleted ConfigMap, leave the running
//! configuration in force.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::process::Stdio;
use std::time::{Duration, Instant};

use rag_config::{LiveConfigSource, Settings};
use rag_proto::ListDomainsRequest;
use rag_proto::router_service_client::RouterServiceClient;
use rag_standins::kubernetes::StandIn;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const NAMESPACE: &str = "rag-dev";

fn config_map(document: &str, prompts: &[(&str, &str)]) -> Value {
    let mut data = serde_json::Map::new();
    data.insert("domains.toml".into(), document.into());
    for (key, text) in prompts {
        data.insert((*key).into(), (*text).into());
    }
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "rag-domains", "namespace": NAMESPACE},
        "data": data,
    })
}

async fn domains(router: &str) -> Option<Vec<String>> {
    let channel = rag_grpc::lazy_channel(router, Duration::from_secs(1)).ok()?;
    let response = RouterServiceClient::new(channel)
        .list_domains(ListDomainsRequest {})
        .await
        .ok()?;
    Some(
        response
            .into_inner()
            .domains
            .into_iter()
            .map(|d| d.name)
            .collect(),
    )
}

/// Polls the router's domains until they are `expected`, or panics after 20 s.
async fn wait_for_domains(router: &str, expected: &[&str]) {
    let started = Instant::now();
    loop {
        let seen = domains(router).await;
        if seen.as_deref().is_some_and(|d| d == expected) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "domains {seen:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// Polls `url` until `done` holds for its answer, or panics after 20 s.
async fn wait_for(url: &str, done: impl Fn(u16, &str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Some((status, body)) = text(url).await
            && done(status, &body)
        {
            return body;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the router when the test ends, passed or not.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_and_prompts_reload_from_the_watched_config_map() {
    let api = StandIn::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig(NAMESPACE)).unwrap();
    let (grpc, metrics) = (free_port(), free_port());
    let router = format!("http://127.0.0.1:{grpc}");
    let ready = format!("http://127.0.0.1:{metrics}/health/ready");
    let scrape = format!("http://127.0.0.1:{metrics}/metrics");
    let _router = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_router"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &kubeconfig)
            .env("RAG__DATA_DIR", dir.path())
            .env("RAG__ROUTER__LISTEN", format!("127.0.0.1:{grpc}"))
            .env(
                "RAG__TELEMETRY__METRICS_LISTEN",
                format!("127.0.0.1:{metrics}"),
            )
            .env("RAG__CACHE__ENABLED", "false")
            .env("RAG__ROUTER__LIVE__SOURCE", "kubernetes")
            .env("RAG__ROUTER__LIVE__CONFIG_MAP", "rag-domains")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // No ConfigMap yet: the router serves, but is not ready, and says why.
    let body = wait_for(&ready, |status, body| {
        status == 503 && body.contains("live configuration")
    })
    .await;
    assert!(body.contains("first document"), "{body}");
    let defaults: Vec<String> = Settings::default()
        .domains
        .into_iter()
        .map(|d| d.name)
        .collect();
    let defaults: Vec<&str> = defaults.iter().map(String::as_str).collect();
    wait_for_domains(&router, &defaults).await;

    // Created: applied, and the live check passes (the retriever and embedder are still down).
    api.insert(
        "configmaps",
        config_map("[[domains]]\nname = \"support\"\n", &[]),
    );
    wait_for_domains(&router, &["support"]).await;
    wait_for(&ready, |_, body| {
        serde_json::from_str::<Value>(body)
            .is_ok_and(|b| b["services"]["router"]["checks"]["live configuration"] == "ok")
    })
    .await;

    // Edited: a new domain and a new prompt version, from the ConfigMap's own prompt file.
    let v3 = "system = \"Answer from the passages only.\"\nuser = \"{context}\\n\\n{question}\"";
    api.insert(
        "configmaps",
        config_map(
            "[[domains]]\nname = \"support\"\n[[domains]]\nname = \"billing\"\n\
             [prompts]\nname = \"answer\"\nversions = [{ version = \"v3\", weight = 100 }]\n",
            &[("answer.v3.toml", v3)],
        ),
    );
    wait_for_domains(&router, &["support", "billing"]).await;

    // Refused: a prompt version that exists nowhere. Nothing changes; the refusal is counted.
    api.insert(
        "configmaps",
        config_map(
            "[[domains]]\nname = \"other\"\n\
             [prompts]\nname = \"answer\"\nversions = [{ version = \"v9\", weight = 100 }]\n",
            &[],
        ),
    );
    wait_for(&scrape, |_, body| {
        body.contains("rag_config_reloads_total{source=\"kubernetes\",result=\"invalid\"} 1")
    })
    .await;
    assert_eq!(domains(&router).await.unwrap(), ["support", "billing"]);

    // Deleted: the running configuration stays; re-created: applied again.
    assert!(api.remove("v1", NAMESPACE, "configmaps", "rag-domains"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(domains(&router).await.unwrap(), ["support", "billing"]);
    api.insert(
        "configmaps",
        config_map("[[domains]]\nname = \"legal\"\n", &[]),
    );
    wait_for_domains(&router, &["legal"]).await;
    let body = text(&scrape).await.unwrap().1;
    assert!(
        body.contains("rag_config_reloads_total{source=\"kubernetes\",result=\"applied\"} 3"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_reload_from_a_polled_file() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.toml");
    std::fs::write(&live, "[[domains]]\nname = \"hr\"\n").unwrap();
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.cache.enabled = false;
    settings.router.live = LiveConfigSource::File {
        path: live.clone(),
        poll_interval_ms: 100,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(rag_router::run(settings, listener, async {
        let _ = stopped.await;
    }));

    wait_for_domains(&router, &["hr"]).await;
    std::fs::write(
        &live,
        "[[domains]]\nname = \"hr\"\n[[domains]]\nname = \"finance\"\n",
    )
    .unwrap();
    wait_for_domains(&router, &["hr", "finance"]).await;

    // Half-written or wrong: refused, the last good configuration stays.
    std::fs::write(&live, "[[domains]]\nname = \"Finance Team\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(domains(&router).await.unwrap(), ["hr", "finance"]);
    std::fs::remove_file(&live).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(domains(&router).await.unwrap(), ["hr", "finance"]);
    std::fs::write(&live, "[[domains]]\nname = \"ops\"\n").unwrap();
    wait_for_domains(&router, &["ops"]).await;

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
