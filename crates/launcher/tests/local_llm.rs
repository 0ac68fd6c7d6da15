//! The local model as a tier's writer, end to end: `generation.light = local` (and strong),
//! a question over an uploaded document answered through `POST /v1/query/stream`, token
//! events first, then the answer with the model's id and real token counts.
//!
//! Needs SmolLM2-135M-Instruct (`make llm`, found through `RAG_LLM_PATH` or the default
//! path); skipped with a note without it, except in CI (`CI=true`), where it fails.
//!
//! `sample_questions_with_the_local_model` (ignored: minutes on two cores) asks the sample
//! questions of `data/eval/questions.jsonl` and prints how many answers contain the expected
//! words, to compare with the extractive answerer (`end_to_end.rs`: 4 of 30 wrong).

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rag_backends::rag_generation::local::default_llm_path;
use rag_config::GeneratorSettings;
use serde_json::{Value, json};
use support::{Client, questions, repo_root, sample_documents, settings, start};

const MODEL_ID: &str = "SmolLM2-135M-Instruct.Q4_1";

/// The model file, or `None` (with a note) outside CI when it has not been fetched.
fn model_path() -> Option<PathBuf> {
    let path = default_llm_path();
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "the local model {} is missing; CI must test it: run `make llm` or set RAG_LLM_PATH",
        path.display()
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: the local model was not tested end to end ({} is missing; run `make llm` or \
         set RAG_LLM_PATH)",
        path.display()
    );
    None
}

fn local_settings(dir: &std::path::Path, path: PathBuf) -> rag_config::Settings {
    let mut s = settings(dir);
    s.cache.enabled = false;
    s.generation.light = GeneratorSettings::Local {
        model_path: Some(path),
        model_id: None,
        context_tokens: 1024,
        max_waiting: 4,
        // Reading a prompt takes seconds to tens of seconds on two busy cores.
        timeout_ms: 600_000,
        seed: 0,
        repeat_penalty: 1.1,
    };
    s.generation.strong = s.generation.light.clone();
    s.generation.temperature = 0.0;
    s.generation.max_output_tokens = 64;
    s.generation.max_context_passages = 3;
    // A whole answer (`POST /v1/query`) can take longer than the default 30 s here.
    s.gateway.request_timeout_ms = 600_000;
    s
}

/// The `event:` names and JSON data of a Server-Sent Events response, with when each came.
async fn sse_events(response: reqwest::Response) -> anyhow::Result<Vec<(String, Value, Duration)>> {
    let started = Instant::now();
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
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
        }
    }
    Ok(events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_question_is_answered_by_the_local_model_as_a_stream() -> anyhow::Result<()> {
    let Some(path) = model_path() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let system = start(local_settings(dir.path(), path)).await?;
    let client = Client::new(&system);
    let policy = std::fs::read(repo_root().join("data/documents/hr/annual-leave-policy.md"))?;
    let (status, body) = client
        .upload("hr", "annual-leave-policy.md", policy)
        .await?;
    assert_eq!(status, 202, "{body}");
    client.wait_indexed(1, Duration::from_secs(300)).await?;

    let response = client
        .http
        .post(format!("{}/v1/query/stream", client.base))
        .json(&json!({
            "question": "How many days of paid annual leave do full-time employees get?",
            "domain": "hr",
        }))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let events = sse_events(response).await?;
    let tokens: Vec<_> = events.iter().filter(|(n, _, _)| n == "token").collect();
    let (name, done, done_at) = events.last().ok_or_else(|| anyhow::anyhow!("no events"))?;
    assert_eq!(name, "done", "{events:?}");
    assert!(!tokens.is_empty(), "{events:?}");
    assert!(tokens[0].2 < *done_at, "the first token came with the end");
    let streamed: String = tokens
        .iter()
        .filter_map(|(_, d, _)| d["text"].as_str())
        .collect();
    assert!(!streamed.trim().is_empty(), "{events:?}");
    assert_eq!(done["answer"].as_str(), Some(streamed.as_str()), "{done}");
    assert_eq!(done["model"], MODEL_ID, "{done}");
    // Whether it cites (`grounded`) is the 135M model's quality, not the plumbing's.
    assert!(done["grounded"].is_boolean(), "{done}");
    assert_eq!(done["tier"], "light", "{done}");
    let input = done["usage"]["input_tokens"].as_u64().unwrap_or(0);
    let output = done["usage"]["output_tokens"].as_u64().unwrap_or(0);
    assert!(input > 100, "{done}");
    assert!((1..=64).contains(&output), "{done}");
    assert_eq!(done["usage"]["cost_usd"].as_f64(), Some(0.0), "{done}");
    eprintln!(
        "local answer: first token after {:?}, done after {done_at:?}, {input} + {output} tokens: {streamed:?}",
        tokens[0].2
    );
    system.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: asks the 30 sample questions of the local model (minutes)"]
async fn sample_questions_with_the_local_model() -> anyhow::Result<()> {
    let Some(path) = model_path() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let mut s = local_settings(dir.path(), path);
    s.generation.max_output_tokens = 96;
    let system = start(s).await?;
    let client = Client::new(&system);
    let documents = sample_documents();
    for (domain, name, bytes) in &documents {
        let (status, body) = client.upload(domain, name, bytes.clone()).await?;
        assert_eq!(status, 202, "{body}");
    }
    client
        .wait_indexed(documents.len(), Duration::from_secs(600))
        .await?;
    let (mut right, mut answerable, mut idk_right, mut unanswerable) = (0, 0, 0, 0);
    let started = Instant::now();
    for q in questions() {
        let answer = client.ask(&q.question, q.domain.as_deref()).await?;
        let text = answer["answer"].as_str().unwrap_or_default().to_lowercase();
        let ok = if q.document.is_some() {
            answerable += 1;
            q.answer_contains
                .iter()
                .all(|s| text.contains(&s.to_lowercase()))
        } else {
            unanswerable += 1;
            // Declined in words: an answer without citations may still be made up.
            text.contains("don't know") || text.contains("do not know")
        };
        if ok {
            if q.document.is_some() {
                right += 1;
            } else {
                idk_right += 1;
            }
        }
        eprintln!(
            "{} [{}] {} ({}): {:?}",
            q.id,
            if ok { "ok" } else { "WRONG" },
            q.question,
            answer["model"],
            answer["answer"]
        );
    }
    eprintln!(
        "local model: {right} of {answerable} answers contain the expected words; {idk_right} of \
         {unanswerable} unanswerable questions declined; {:?}",
        started.elapsed()
    );
    system.shutdown().await;
    Ok(())
}
