//! Traces across all five services: one trace per question (gateway → router → embedder,
//! retriever) and one per upload (gateway → document service → object metadata →
//! ingest-worker → chunks queue → embedder), exported over OTLP/gRPC.
//!
//! No OpenTelemetry collector is installed here: `rag-standins`' OTLP receiver speaks the
//! collector's `TraceService/Export`, so the real exporter sends the real protobuf over gRPC.
//! This file holds one test: the process's tracing subscriber is installed once, by it.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::collections::HashSet;
use std::time::Duration;

use rag_standins::otlp::{OtlpReceiver, ReceivedSpan, render_tree};
use serde_json::{Value, json};
use support::{Client, settings, start};

const POLICY: &str = "# Leave policy\n\nEmployees get 25 days of annual leave per year. \
Unused leave may be carried over until the end of March.\n";

/// The header the gateway returns the trace id in.
fn trace_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-trace-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Every span's parent is in the trace, except the one root, which is named `root`.
fn assert_one_tree(spans: &[ReceivedSpan], root: &str) {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let roots: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty() || !ids.contains(s.parent_span_id.as_str()))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(roots, [root], "one root:\n{}", render_tree(spans));
}

fn assert_has(spans: &[ReceivedSpan], names: &[&str]) {
    for name in names {
        assert!(
            spans.iter().any(|s| s.name == *name),
            "no {name:?} span in the trace:\n{}",
            render_tree(spans)
        );
    }
}

async fn flush() {
    tokio::task::spawn_blocking(rag_telemetry::trace::flush)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_per_question_and_per_upload_across_all_services() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    settings.telemetry.otlp_endpoint = Some(receiver.endpoint());
    rag_telemetry::init(&settings.telemetry, "rag-test");
    let system = start(settings).await?;
    let client = Client::new(&system);

    // An upload: its trace runs to the chunks being indexed.
    let form = reqwest::multipart::Form::new().text("domain", "hr").part(
        "file",
        reqwest::multipart::Part::bytes(POLICY.as_bytes().to_vec()).file_name("leave.md"),
    );
    let uploaded = client
        .http
        .post(format!("{}/v1/documents", client.base))
        .multipart(form)
        .send()
        .await?;
    assert_eq!(uploaded.status(), 202);
    let upload_trace = trace_id(&uploaded);
    assert_eq!(upload_trace.len(), 32, "a W3C trace id");
    client.wait_indexed(1, Duration::from_secs(120)).await?;

    // A question.
    let asked = client
        .http
        .post(format!("{}/v1/query", client.base))
        .json(&json!({ "question": "How many days of annual leave do I get?", "domain": "hr" }))
        .send()
        .await?;
    assert_eq!(asked.status(), 200);
    let query_trace = trace_id(&asked);
    let request_id = asked.headers()["x-request-id"].to_str()?.to_owned();
    assert_ne!(query_trace, upload_trace);

    // An error names its trace in the body too.
    let refused = client
        .http
        .post(format!("{}/v1/query", client.base))
        .json(&json!({ "question": "" }))
        .send()
        .await?;
    assert_eq!(refused.status(), 422);
    let refused_trace = trace_id(&refused);
    let body: Value = refused.json().await?;
    assert_eq!(body["error"]["trace_id"], refused_trace.as_str(), "{body}");

    // A caller's own trace is continued.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let continued = client
        .http
        .get(format!("{}/v1/domains", client.base))
        .header(
            "traceparent",
            format!("00-{caller_trace}-00f067aa0ba902b7-01"),
        )
        .send()
        .await?;
    assert_eq!(trace_id(&continued), caller_trace);

    flush().await;
    let query = receiver
        .wait_for(&query_trace, Duration::from_secs(20), |s| {
            s.name == "POST /v1/query"
        })
        .await;
    println!(
        "trace of one question ({query_trace}):\n{}",
        render_tree(&query)
    );
    assert_one_tree(&query, "POST /v1/query");
    assert_has(
        &query,
        &[
            "rag.v1.RouterService/AnswerUnary",
            "cache_lookup",
            "rag.v1.EmbedderService/Embed",
            "retrieve",
            "rag.v1.RetrieverService/Search",
            "dense_search",
            "bm25_search",
            "fuse",
            "generate",
        ],
    );
    // The gateway's request id went along as baggage: the router's span carries it.
    let router = query
        .iter()
        .find(|s| s.name == "rag.v1.RouterService/AnswerUnary")
        .unwrap();
    assert_eq!(router.attributes["request_id"], request_id);
    assert_eq!(router.attributes["trace_id"], query_trace);

    let upload = receiver
        .wait_for(&upload_trace, Duration::from_secs(20), |s| {
            s.name == "record_batch"
        })
        .await;
    println!(
        "trace of one upload ({upload_trace}):\n{}",
        render_tree(&upload)
    );
    assert_one_tree(&upload, "POST /v1/documents");
    assert_has(
        &upload,
        &[
            "rag.v1.DocumentService/RegisterUpload",
            "ingest",
            "index_chunks",
            "record_batch",
        ],
    );

    let errors = receiver.trace(&refused_trace);
    assert_has(&errors, &["POST /v1/query"]);
    assert!(
        !receiver.trace(caller_trace).is_empty(),
        "the caller's trace was continued"
    );
    system.shutdown().await;
    Ok(())
}
