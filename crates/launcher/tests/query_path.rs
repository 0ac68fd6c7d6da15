//! The query path end to end: the two cache layers and their scopes, guardrails, feedback,
//! and model writers (streaming, fallback, cancellation, accounting).
//!
//! Amazon Bedrock and an OpenAI-compatible server cannot run here: the model tests use
//! `rag-standins`' stand-ins, which speak Bedrock's wire format (JSON for Converse, the AWS
//! event-stream framing for ConverseStream) and OpenAI's (Server-Sent Events), so the real
//! SDK and HTTP client code runs. Everything else is the real system.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use rag_config::{AwsCredentials, DeniedTopicSettings, GeneratorSettings, PromptVariant, Settings};
use rag_proto::AnswerRequest;
use rag_proto::router_service_client::RouterServiceClient;
use serde_json::{Value, json};
use support::{Client, sample_documents, settings, start};

const LEAVE: &str = "How many vacation days do I get per year if I work full time?";
/// The same question worded slightly differently: not an exact hit, but its embedding is
/// well above the semantic threshold.
const LEAVE_REWORDED: &str = "How many vacation days do I get per year if I work full-time?";
/// The question negated: its embedding is above the threshold too (cosine 0.983 with `LEAVE`
/// in `crates/router/tests/semantic_guard.rs`), so only the lexical guard keeps it a miss.
const LEAVE_NEGATED: &str = "How many vacation days don't I get per year if I work full time?";
/// A related question with another answer: never served the leave answer.
const CARRY_OVER: &str =
    "Can I carry unused holiday into next year, and by when do I have to use it?";

async fn load(client: &Client, domains: &[&str]) -> anyhow::Result<usize> {
    let documents: Vec<_> = sample_documents()
        .into_iter()
        .filter(|(d, _, _)| domains.contains(&d.as_str()))
        .collect();
    for (domain, name, bytes) in &documents {
        let (status, body) = client.upload(domain, name, bytes.clone()).await?;
        assert_eq!(status, 202, "{name}: {body}");
    }
    client
        .wait_indexed(documents.len(), Duration::from_secs(300))
        .await?;
    Ok(documents.len())
}

async fn ask(client: &Client, question: &str, domain: &str) -> Value {
    client.ask(question, Some(domain)).await.unwrap()
}

/// Asks through the router's gRPC API, as another tenant would be (the gateway always sends
/// the caller's own tenant).
async fn ask_as(settings: &Settings, tenant: &str, question: &str, domain: &str) -> String {
    let mut router = RouterServiceClient::connect(format!("http://{}", settings.router.listen))
        .await
        .unwrap();
    let response = router
        .answer_unary(AnswerRequest {
            question: question.into(),
            domain: domain.into(),
            tenant: tenant.into(),
            ..AnswerRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    match response.cache() {
        rag_proto::CacheStatus::Exact => "exact",
        rag_proto::CacheStatus::Semantic => "semantic",
        _ => "miss",
    }
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_scopes_guardrails_and_feedback() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    let hr = settings
        .domains
        .iter_mut()
        .find(|d| d.name == "hr")
        .unwrap();
    hr.denied_topics = vec![DeniedTopicSettings {
        name: "colleagues' salaries".into(),
        phrases: vec!["salary of".into()],
    }];
    let system = start(settings).await?;
    let client = Client::new(&system);
    let loaded = load(&client, &["hr", "legal"]).await?;

    // Miss, then exact, then semantic (a rewording), with the same grounded answer.
    let first = ask(&client, LEAVE, "hr").await;
    assert_eq!(first["cache"], "miss", "{first}");
    assert_eq!(first["grounded"], true, "{first}");
    assert!(
        first["answer"].as_str().unwrap().contains("25 days"),
        "{first}"
    );
    let exact = ask(&client, &LEAVE.to_uppercase(), "hr").await;
    assert_eq!(exact["cache"], "exact", "{exact}");
    assert_eq!(exact["answer"], first["answer"]);
    assert_eq!(exact["usage"]["cost_usd"], 0.0);
    assert_ne!(exact["query_id"], first["query_id"]);
    let semantic = ask(&client, LEAVE_REWORDED, "hr").await;
    assert_eq!(semantic["cache"], "semantic", "{semantic}");
    assert_eq!(semantic["answer"], first["answer"]);
    // The semantic hit was filed under the rewording's own key: asked again, it is exact.
    let repeated = ask(&client, LEAVE_REWORDED, "hr").await;
    assert_eq!(repeated["cache"], "exact", "{repeated}");
    assert_eq!(repeated["answer"], first["answer"]);

    // Never past the lexical guard: a close embedding, other content terms.
    let negated = ask(&client, LEAVE_NEGATED, "hr").await;
    assert_eq!(negated["cache"], "miss", "{negated}");

    // Never below the threshold: a related question gets its own answer.
    let carry = ask(&client, CARRY_OVER, "hr").await;
    assert_eq!(carry["cache"], "miss", "{carry}");
    assert_ne!(carry["answer"], first["answer"]);

    // Never across domains or tenants.
    assert_eq!(ask(&client, LEAVE, "legal").await["cache"], "miss");
    assert_eq!(
        ask(&client, LEAVE_REWORDED, "legal").await["cache"],
        "semantic"
    );
    assert_eq!(ask_as(&system.settings, "other", LEAVE, "hr").await, "miss");
    assert_eq!(
        ask_as(&system.settings, "other", LEAVE_REWORDED, "hr").await,
        "semantic"
    );
    assert_eq!(
        ask_as(&system.settings, "default", LEAVE, "hr").await,
        "exact"
    );

    // Never across epochs: a change to the domain's documents retires its answers.
    let (status, _) = client
        .upload(
            "hr",
            "canteen.md",
            b"# Canteen\n\nThe canteen opens at 8:00 and closes at 15:00 on working days.\n"
                .to_vec(),
        )
        .await?;
    assert_eq!(status, 202);
    client
        .wait_indexed(loaded + 1, Duration::from_secs(120))
        .await?;
    assert_eq!(ask(&client, LEAVE, "hr").await["cache"], "miss");
    assert_eq!(
        ask(&client, LEAVE, "legal").await["cache"],
        "exact",
        "other domains keep theirs"
    );

    // A denied topic gets a polite refusal, costs nothing and is not cached.
    let refused = ask(&client, "What is the salary of my team lead?", "hr").await;
    assert_eq!(refused["model"], "guardrail", "{refused}");
    assert_eq!(refused["grounded"], false);
    assert!(
        refused["answer"]
            .as_str()
            .unwrap()
            .contains("colleagues' salaries")
    );
    assert_eq!(
        ask(&client, "What is the salary of my team lead?", "legal").await["model"],
        "extractive-v1"
    );

    // Feedback joins the answer; a thumbs-down evicts the cached answer it rated.
    let cached = ask(&client, LEAVE_REWORDED, "hr").await;
    assert_eq!(cached["cache"], "semantic", "{cached}");
    let (status, body) = client
        .post_json(
            "/v1/feedback",
            &json!({ "query_id": cached["query_id"], "rating": "down", "comment": "outdated" }),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"]["cache"], "semantic");
    assert_eq!(body["answer"]["tier"], cached["tier"]);
    assert_eq!(body["evicted_from_cache"], true);
    assert_eq!(
        ask(&client, LEAVE_REWORDED, "hr").await["cache"],
        "miss",
        "evicted, and the alias the semantic hit filed with it"
    );
    let (status, body) = client
        .post_json(
            "/v1/feedback",
            &json!({ "query_id": carry["query_id"], "rating": "up" }),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["evicted_from_cache"], false);
    let (status, summary) = client.get("/v1/feedback/summary").await?;
    assert_eq!(status, 200);
    assert_eq!(summary["rated"], 2, "{summary}");
    assert_eq!(summary["up"], 1);
    assert_eq!(summary["down"], 1);
    assert!(summary["answers"].as_u64().unwrap() >= 10, "{summary}");
    let semantic_row = summary["by_cache"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "semantic")
        .unwrap();
    assert_eq!(semantic_row["down"], 1);

    // Bad feedback is a clear 4xx.
    let (status, body) = client
        .post_json(
            "/v1/feedback",
            &json!({ "query_id": "no-such-answer", "rating": "up" }),
        )
        .await?;
    assert_eq!(status, 404, "{body}");
    let (status, body) = client
        .post_json(
            "/v1/feedback",
            &json!({ "query_id": first["query_id"], "rating": "meh" }),
        )
        .await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "rating", "{body}");

    // The metrics saw it all (the registry is the process's: other tests add to it too).
    let metrics = metrics_text(&client).await;
    for expected in [
        "rag_cache_lookups_total{result=\"exact_hit\"}",
        "rag_cache_lookups_total{result=\"semantic_hit\"}",
        "rag_cache_lookups_total{result=\"semantic_refused\"}",
        "rag_cache_lookups_total{result=\"miss\"}",
        "rag_http_requests_total{method=\"POST\",route=\"/v1/query\",status=\"200\"}",
        "rag_http_requests_total{method=\"POST\",route=\"/v1/feedback\",status=\"404\"}",
        "rag_answer_duration_seconds_count{cache=\"semantic\",tier=\"light\"}",
        "rag_refusals_total ",
        "rag_documents_total{outcome=\"indexed\"}",
        "rag_chunks_indexed_total ",
        "rag_ingestion_lag_seconds_count ",
        "rag_queue_messages{queue=",
        "rag_queue_oldest_message_age_seconds{queue=",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from\n{metrics}"
        );
    }
    system.shutdown().await;
    Ok(())
}

async fn metrics_text(client: &Client) -> String {
    let response = client
        .http
        .get(format!("{}/metrics", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The light tier on an OpenAI-compatible server, the strong one on Bedrock (Nova Pro).
fn model_settings(
    settings: &mut Settings,
    bedrock: &rag_standins::bedrock::StandIn,
    openai: &rag_standins::openai::StandIn,
) {
    settings.aws.endpoint_url = Some(bedrock.url());
    settings.aws.credentials = AwsCredentials::Emulator;
    settings.generation.light = GeneratorSettings::Openai {
        base_url: openai.url(),
        model: "local-llm".into(),
        api_key_env: None,
        max_attempts: 2,
        timeout_ms: 10_000,
    };
    settings.generation.strong = GeneratorSettings::Bedrock {
        model_id: "amazon.nova-pro-v1:0".into(),
        streaming: true,
        max_attempts: 2,
        timeout_ms: 10_000,
        endpoint_url: None,
    };
    settings.prompts.versions = vec![
        PromptVariant {
            version: "v1".into(),
            weight: 50,
        },
        PromptVariant {
            version: "v2".into(),
            weight: 50,
        },
    ];
    settings.cache.enabled = false;
}

/// Reads a Server-Sent Events body: (event name, data) pairs and the time each arrived.
async fn sse_events(
    response: reqwest::Response,
    stop_after: Option<usize>,
) -> Vec<(String, Value, Duration)> {
    let started = Instant::now();
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !name.is_empty() {
                events.push((
                    name,
                    serde_json::from_str(&data).unwrap_or(Value::Null),
                    started.elapsed(),
                ));
            }
            if stop_after.is_some_and(|n| events.len() >= n) {
                return events;
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn model_writers_stream_fall_back_and_cancel() -> anyhow::Result<()> {
    let bedrock = rag_standins::bedrock::StandIn::start().await?;
    let openai = rag_standins::openai::StandIn::start().await?;
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    model_settings(&mut settings, &bedrock, &openai);
    let system = start(settings).await?;
    let client = Client::new(&system);
    load(&client, &["hr", "legal"]).await?;

    // hr is a light domain: the OpenAI-compatible model answers, citing what it used.
    let light = ask(&client, LEAVE, "hr").await;
    assert_eq!(light["model"], "local-llm", "{light}");
    assert_eq!(light["tier"], "light");
    assert_eq!(light["grounded"], true, "{light}");
    assert!(light["answer"].as_str().unwrap().contains("[1]"), "{light}");
    assert_eq!(light["citations"][0]["number"], 1, "{light}");
    assert!(
        light["usage"]["input_tokens"].as_u64().unwrap() > 50,
        "{light}"
    );
    assert!(light["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        light["usage"]["cost_usd"], 0.0,
        "no price for a local model"
    );
    assert!(
        matches!(
            light["prompt_version"].as_str(),
            Some("answer/v1" | "answer/v2")
        ),
        "{light}"
    );

    // legal is a strong domain: Nova Pro on Bedrock, priced.
    let question = "If a partner asks us to return their confidential information under our NDA, how quickly must it be returned or destroyed?";
    let strong = ask(&client, question, "legal").await;
    assert_eq!(strong["model"], "amazon.nova-pro-v1:0", "{strong}");
    assert_eq!(strong["tier"], "strong");
    assert_eq!(strong["grounded"], true, "{strong}");
    let (input, output) = (
        strong["usage"]["input_tokens"].as_f64().unwrap(),
        strong["usage"]["output_tokens"].as_f64().unwrap(),
    );
    let expected_cost = (input * 0.80 + output * 3.20) / 1e6;
    assert!(
        (strong["usage"]["cost_usd"].as_f64().unwrap() - expected_cost).abs() < 1e-12,
        "{strong}"
    );

    // Nothing relevant retrieved: "I don't know" without calling a model.
    let before = openai.requests();
    let unknown = ask(
        &client,
        "What is the airspeed velocity of an unladen swallow?",
        "hr",
    )
    .await;
    assert_eq!(unknown["grounded"], false, "{unknown}");
    assert_eq!(
        openai.requests(),
        before,
        "no model call below the relevance floor"
    );

    // Streaming: several token events, then `done`; the first arrives before the end.
    openai.delay_per_token(Duration::from_millis(20));
    let response = client
        .http
        .post(format!("{}/v1/query/stream", client.base))
        .json(&json!({ "question": LEAVE, "domain": "hr" }))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let events = sse_events(response, None).await;
    let tokens: Vec<_> = events.iter().filter(|(n, _, _)| n == "token").collect();
    let (done_name, done, done_at) = events.last().unwrap();
    assert_eq!(done_name, "done", "{events:?}");
    assert!(tokens.len() >= 3, "{events:?}");
    let streamed: String = tokens
        .iter()
        .map(|(_, d, _)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, done["answer"].as_str().unwrap());
    assert!(tokens[0].2 < *done_at);
    eprintln!(
        "stream: first token after {:?}, done after {done_at:?}",
        tokens[0].2
    );

    // A client that goes away cancels the model's stream upstream.
    openai.delay_per_token(Duration::from_millis(300));
    let cancelled_before = openai.cancelled_streams();
    let response = client
        .http
        .post(format!("{}/v1/query/stream", client.base))
        .json(&json!({ "question": CARRY_OVER, "domain": "hr" }))
        .send()
        .await?;
    let first = sse_events(response, Some(1)).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while openai.cancelled_streams() == cancelled_before {
        assert!(
            Instant::now() < deadline,
            "the model's stream was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    openai.delay_per_token(Duration::ZERO);

    // The strong model fails: the light one answers, and the answer says so.
    bedrock.fail_model("amazon.nova-pro-v1:0");
    let fallback = ask(&client, question, "legal").await;
    assert_eq!(fallback["model"], "local-llm", "{fallback}");
    assert_eq!(fallback["tier"], "light");
    assert!(
        fallback["tier_reasons"].to_string().contains("fell back"),
        "{fallback}"
    );
    assert_eq!(fallback["grounded"], true);

    // Both fail: a clear 503, no panic.
    openai.fail_model("local-llm");
    let (status, body) = client
        .post_json(
            "/v1/query",
            &json!({ "question": question, "domain": "legal" }),
        )
        .await?;
    assert_eq!(status, 503, "{body}");

    let metrics = metrics_text(&client).await;
    for expected in [
        "rag_cost_usd_total{model=\"amazon.nova-pro-v1:0\"}",
        "rag_tokens_total{model=\"local-llm\",prompt_version=\"answer/v",
        "rag_generation_fallbacks_total ",
        "rag_generation_duration_seconds_count{model=\"local-llm\"}",
        "rag_time_to_first_token_seconds_count ",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from\n{metrics}"
        );
    }
    system.shutdown().await;
    Ok(())
}

/// Personal data in documents never reaches an answer, whichever writer wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn personal_data_is_masked_in_answers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let system = start(settings(dir.path())).await?;
    let client = Client::new(&system);
    let document = "# Payroll contacts\n\nPayroll questions go to Jane Roe at jane.roe@example.com or +44 20 7946 0958, and refunds are paid to IBAN GB82 WEST 1234 5698 7654 32.\n";
    let (status, _) = client
        .upload("hr", "payroll-contacts.md", document.as_bytes().to_vec())
        .await?;
    assert_eq!(status, 202);
    client.wait_indexed(1, Duration::from_secs(120)).await?;
    let answer = ask(&client, "Who do payroll questions go to?", "hr").await;
    let text = answer["answer"].as_str().unwrap();
    assert_eq!(answer["grounded"], true, "{answer}");
    assert!(
        text.contains("[EMAIL]") && text.contains("[PHONE]"),
        "{text}"
    );
    assert!(
        !text.contains("jane.roe@") && !text.contains("7946"),
        "{text}"
    );
    assert!(!text.contains("GB82"), "{text}");
    system.shutdown().await;
    Ok(())
}

/// Against a real Redis (`RAG_TEST_REDIS_URL`, or the one on 127.0.0.1:6379 that `make test`
/// starts), under keys of its own: a rewording served from the semantic tier is filed under
/// its own exact key, so asked again it is an exact hit (no embedding, no semantic lookup);
/// the negated question is not served it. A thumbs-down on that hit evicts the answer the
/// alias names, and so the alias too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_semantic_hit_asked_again_is_an_exact_hit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    settings.cache.backend = support::test_redis_cache(&uuid::Uuid::new_v4().simple().to_string());
    let system = start(settings).await?;
    let client = Client::new(&system);
    load(&client, &["hr"]).await?;

    let first = ask(&client, LEAVE, "hr").await;
    assert_eq!(first["cache"], "miss", "{first}");
    let semantic = ask(&client, LEAVE_REWORDED, "hr").await;
    assert_eq!(semantic["cache"], "semantic", "{semantic}");
    assert_eq!(semantic["answer"], first["answer"]);
    let repeated = ask(&client, LEAVE_REWORDED, "hr").await;
    assert_eq!(repeated["cache"], "exact", "{repeated}");
    assert_eq!(repeated["answer"], first["answer"]);
    assert_eq!(repeated["usage"]["cost_usd"], 0.0);
    assert_eq!(ask(&client, LEAVE, "hr").await["cache"], "exact");
    // The question's text comes back from Redis with its vector, for the lexical guard.
    let negated = ask(&client, LEAVE_NEGATED, "hr").await;
    assert_eq!(negated["cache"], "miss", "{negated}");

    // The thumbs-down rates the answer the alias named: both go.
    let (status, body) = client
        .post_json(
            "/v1/feedback",
            &json!({ "query_id": repeated["query_id"], "rating": "down" }),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["answer"]["cache"], "exact");
    assert_eq!(body["evicted_from_cache"], true);
    assert_eq!(
        ask(&client, LEAVE_REWORDED, "hr").await["cache"],
        "miss",
        "neither the alias nor the answer it named is served"
    );
    system.shutdown().await;
    Ok(())
}

/// A cache that cannot be reached is skipped: every question is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_go_on_when_redis_is_down() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    settings.cache.backend = rag_config::CacheBackend::Redis {
        url: "redis://127.0.0.1:1".into(),
        pool_size: 1,
        command_timeout_ms: 100,
        key_prefix: "rag-test:".into(),
        ca_file: None,
    };
    let system = start(settings).await?;
    let client = Client::new(&system);
    let (status, _) = client
        .upload(
            "hr",
            "canteen.md",
            b"# Canteen\n\nThe canteen opens at 8:00 and closes at 15:00 on working days.\n"
                .to_vec(),
        )
        .await?;
    assert_eq!(status, 202);
    client.wait_indexed(1, Duration::from_secs(120)).await?;
    for _ in 0..3 {
        let answer = ask(&client, "When does the canteen open?", "hr").await;
        assert_eq!(answer["cache"], "miss", "{answer}");
        assert_eq!(answer["grounded"], true, "{answer}");
    }
    system.shutdown().await;
    Ok(())
}
