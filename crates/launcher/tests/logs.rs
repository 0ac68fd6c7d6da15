//! What the services log, read back: JSON lines (the cluster format) in which every line of
//! a request carries its request id and trace id, and no secret and no unmasked personal
//! data appears, even at debug level and when requests fail.
//!
//! The chat model is `rag-standins`' OpenAI-compatible stand-in (no model server runs
//! here); it demands the API key, so the key really is sent and must never be logged.
//! This file holds one test: the process's subscriber is installed once, by it.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use rag_config::{CacheBackend, GeneratorSettings, LogFormat};
use serde_json::{Value, json};
use support::{Client, settings, start};

/// The API key's variable, set by `.cargo/config.toml`.
const API_KEY_ENV: &str = "RAG_TEST_LOGS_OPENAI_KEY";
const REDIS_PASSWORD: &str = "hunter2-b8e1d0c7";
/// Personal data in a document and in questions, which logs must never show.
const PII: [&str; 5] = [
    "jane.doe@example.com",
    "+1 415 555 0134",
    "bob.smith@example.org",
    "123-45-6789",
    "4111 1111 1111 1111",
];

const DOCUMENT: &str = "# Leave policy\n\nEmployees get 25 days of annual leave per year. \
Questions go to jane.doe@example.com or +1 415 555 0134.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_carry_ids_and_no_secrets_or_personal_data() -> anyhow::Result<()> {
    let api_key = std::env::var(API_KEY_ENV)?;
    assert!(
        api_key.len() > 16,
        "{API_KEY_ENV} is set by .cargo/config.toml"
    );
    let openai = rag_standins::openai::StandIn::start().await?;
    openai.require_api_key(&api_key);

    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    settings.telemetry.log_format = LogFormat::Json;
    settings.telemetry.log_filter = [
        "info",
        "rag_gateway=debug",
        "rag_router=debug",
        "rag_retriever=debug",
        "rag_embedder=debug",
        "rag_ingest_worker=debug",
        "rag_grpc=debug",
        "rag_cache=debug",
        "rag_generation=debug",
    ]
    .join(",");
    settings.generation.light = GeneratorSettings::Openai {
        base_url: openai.url(),
        model: "local-llm".into(),
        api_key_env: Some(API_KEY_ENV.into()),
        max_attempts: 1,
        timeout_ms: 10_000,
    };
    // Redis with a password it does not know: every cache call fails (and is logged).
    settings.cache.backend = CacheBackend::Redis {
        url: format!("redis://:{REDIS_PASSWORD}@127.0.0.1:6379"),
        pool_size: 1,
        command_timeout_ms: 500,
        key_prefix: "logs-test:".into(),
        ca_file: None,
    };
    let captured = rag_telemetry::CapturedLogs::default();
    rag_telemetry::init_with_writer(&settings.telemetry, "rag-test", captured.clone());
    let system = start(settings).await?;
    let client = Client::new(&system);

    let (status, body) = client
        .upload("hr", "leave.md", DOCUMENT.as_bytes().to_vec())
        .await?;
    assert_eq!(status, 202, "{body}");
    client.wait_indexed(1, Duration::from_secs(120)).await?;

    let answer = client
        .ask(
            "My email is bob.smith@example.org and my SSN is 123-45-6789: \
             how many days of annual leave do I get?",
            Some("hr"),
        )
        .await?;
    assert_eq!(answer["model"], "local-llm", "{answer}");
    // Failing requests with personal data in them.
    let (status, _) = client
        .post_json(
            "/v1/query",
            &json!({ "question": "card 4111 1111 1111 1111?", "domain": "bob.smith@example.org" }),
        )
        .await?;
    assert_eq!(status, 422);
    let (status, _) = client
        .post_json(
            "/v1/feedback",
            &json!({ "query_id": "bob.smith@example.org", "rating": "up" }),
        )
        .await?;
    assert_eq!(status, 404);

    system.shutdown().await;
    let text = captured.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() > 10, "{} lines logged", lines.len());

    for secret in [api_key.as_str(), REDIS_PASSWORD] {
        assert!(!text.contains(secret), "a secret was logged");
    }
    for pii in PII {
        let line = text.lines().find(|line| line.contains(pii));
        assert!(line.is_none(), "personal data was logged: {line:?}");
    }

    // Every line logged within a request, or within the ingestion of an upload, names the
    // request and its trace.
    let mut in_requests = 0;
    for line in &lines {
        let Some(spans) = line["spans"].as_array() else {
            continue;
        };
        let named = |field: &str| {
            spans
                .iter()
                .any(|s| s[field].as_str().is_some_and(|v| !v.is_empty()))
        };
        in_requests += 1;
        assert!(named("trace_id"), "no trace id: {line}");
        assert!(named("request_id"), "no request id: {line}");
    }
    assert!(
        in_requests >= 4,
        "{in_requests} lines within requests:\n{text}"
    );
    // The router logs the question at debug level, masked.
    assert!(
        lines.iter().any(|l| l["message"] == "question"
            && l["question"]
                .as_str()
                .is_some_and(|q| q.contains("[EMAIL]"))),
        "{text}"
    );
    println!(
        "{} JSON lines, {in_requests} within requests; e.g.\n{}",
        lines.len(),
        text.lines()
            .find(|l| l.contains("\"grpc\"") && l.contains("request_id"))
            .unwrap_or_default()
    );
    Ok(())
}
