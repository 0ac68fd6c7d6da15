//! A service's life against its dependencies: the router starts while the retriever and
//! the embedder are down, says so (gRPC health NOT_SERVING; `/health/ready` 503 naming
//! both), turns ready by itself once they answer, and on stop turns not-ready and returns.
//!
//! The two peers are plain gRPC health servers: readiness only asks their health.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use rag_config::Settings;
use serde_json::Value;
use tokio::net::TcpListener;

async fn ready(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls `url` until `done` holds for its answer, or panics after 20 s.
async fn wait_until(
    http: &reqwest::Client,
    url: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = ready(http, url).await;
        if done(status, &body) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_while_its_dependencies_answer_and_not_ready_once_stopping() {
    rag_telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    // Addresses for the peers, closed for now.
    let retriever = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let embedder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (retriever_addr, embedder_addr) = (
        retriever.local_addr().unwrap(),
        embedder.local_addr().unwrap(),
    );
    drop((retriever, embedder));

    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        shutdown_grace_ms: 2_000,
        ..Settings::default()
    };
    settings.router.retriever_url = format!("http://{retriever_addr}");
    settings.router.embedder_url = format!("http://{embedder_addr}");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router_url = format!("http://{}", listener.local_addr().unwrap());
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ready_url = format!("http://{}/health/ready", metrics.local_addr().unwrap());
    tokio::spawn(rag_telemetry::metrics::serve(
        metrics,
        std::future::pending(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = tokio::spawn(rag_router::run(settings, listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let channel = rag_grpc::lazy_channel(&router_url, Duration::from_secs(1)).unwrap();

    // Both peers down: not ready, and the body says why.
    let body = wait_until(&http, &ready_url, |status, body| {
        status == 503 && body["services"]["router"]["status"] == "not ready"
    })
    .await;
    let checks = &body["services"]["router"]["checks"];
    for peer in ["retriever", "embedder"] {
        assert!(
            checks[peer].as_str().unwrap().starts_with("unreachable"),
            "{body}"
        );
    }
    let health = rag_grpc::health_status(channel.clone(), "").await;
    assert_eq!(health, Err("reports NOT_SERVING".to_owned()));

    // The peers come up: the router turns ready by itself.
    for addr in [retriever_addr, embedder_addr] {
        let listener = TcpListener::bind(addr).await.unwrap();
        let (_reporter, health) = rag_grpc::health();
        tokio::spawn(rag_grpc::serve(
            listener,
            tonic::service::Routes::new(health),
            std::future::pending(),
        ));
    }
    let body = wait_until(&http, &ready_url, |status, _| status == 200).await;
    assert_eq!(
        body["services"]["router"]["checks"]["retriever"], "ok",
        "{body}"
    );
    assert_eq!(rag_grpc::health_status(channel.clone(), "").await, Ok(()));
    assert_eq!(
        rag_grpc::health_status(channel.clone(), "rag.v1.RouterService").await,
        Ok(())
    );

    // Stop: the router returns within the grace period and reports itself stopping.
    let stopping = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), router)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    println!("stopped in {:?}", stopping.elapsed());
    let (status, body) = ready(&http, &ready_url).await;
    assert_eq!(status, 503);
    assert_eq!(body["services"]["router"]["status"], "stopping", "{body}");
}
