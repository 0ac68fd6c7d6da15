//! Benchmark of the query path's money savers and streaming, on the embedded system with the
//! sample corpus:
//!
//! 1. **Cache replay.** Each question of `data/eval/paraphrases.jsonl` is asked (a miss),
//!    asked again (an exact hit), then replayed in three rewordings: trivial (a word or a
//!    punctuation mark changed), light (a few words changed) and heavy (the same need in
//!    other words). Reports hit ratios per rewording, whether each semantic hit served the
//!    answer of the right question (it must cite the original's document), and latency
//!    medians for misses, exact hits and semantic hits.
//! 2. **Streaming.** Time to the first `token` event vs the `done` event of
//!    `POST /v1/query/stream`, for the extractive default and for a model writer: an
//!    OpenAI-compatible stand-in emitting a token every 20 ms (about 50 tokens/s, the speed
//!    of a small hosted model). The stand-in is there because no model server runs here.
//!
//!     cargo bench --profile dev --workspace --bench query_path
//!
//! Prints tables and one JSON line. Medians, because the machine is shared and noisy.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use rag_config::GeneratorSettings;
use serde::Deserialize;
use serde_json::{Value, json};
use support::{Client, settings, start};

#[derive(Deserialize)]
struct Paraphrased {
    id: String,
    domain: String,
    question: String,
    paraphrases: Vec<String>,
}

const LEVELS: [&str; 3] = ["trivial", "light", "heavy"];

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn timed_ask(client: &Client, question: &str, domain: &str) -> anyhow::Result<(Value, f64)> {
    let started = Instant::now();
    let answer = client.ask(question, Some(domain)).await?;
    Ok((answer, started.elapsed().as_secs_f64() * 1000.0))
}

fn cited_documents(answer: &Value) -> Vec<String> {
    answer["citations"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["document_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn seeded_system(s: rag_config::Settings) -> anyhow::Result<(rag_launcher::System, Client)> {
    let system = start(s).await?;
    let client = Client::new(&system);
    let report = rag_launcher::seed(
        &system.settings,
        &support::repo_root().join("data/documents"),
    )
    .await?;
    client
        .wait_indexed(report.uploaded, Duration::from_secs(600))
        .await?;
    Ok((system, client))
}

/// Milliseconds to the first token event and to the done event.
async fn stream_times(client: &Client, question: &str, domain: &str) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let response = client
        .http
        .post(format!("{}/v1/query/stream", client.base))
        .json(&json!({ "question": question, "domain": domain }))
        .send()
        .await?;
    let mut first = None;
    let mut buffer = String::new();
    let mut seen = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            seen.push_str(&block);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if block.contains("event: token") && first.is_none() {
                first = Some(ms);
            }
            if block.contains("event: done") {
                return Ok((first.unwrap_or(ms), ms));
            }
            if block.contains("event: error") {
                anyhow::bail!("stream failed: {block}");
            }
        }
    }
    anyhow::bail!("the stream for {question:?} ended without a done event: {seen}{buffer}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(support::repo_root().join("data/eval/paraphrases.jsonl"))?;
    let questions: Vec<Paraphrased> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;

    // 1. Cache replay.
    let dir = tempfile::tempdir()?;
    let (system, client) = seeded_system(settings(dir.path())).await?;
    let mut miss_ms = Vec::new();
    let mut exact_ms = Vec::new();
    let mut originals = Vec::new();
    for q in &questions {
        let (answer, ms) = timed_ask(&client, &q.question, &q.domain).await?;
        anyhow::ensure!(answer["cache"] == "miss", "{}: {answer}", q.id);
        miss_ms.push(ms);
        originals.push(answer);
    }
    for q in &questions {
        let (answer, ms) = timed_ask(&client, &q.question, &q.domain).await?;
        anyhow::ensure!(answer["cache"] == "exact", "{}: {answer}", q.id);
        exact_ms.push(ms);
    }
    let mut semantic_ms = Vec::new();
    let mut rows = Vec::new();
    for (level, name) in LEVELS.iter().enumerate() {
        let (mut exact, mut semantic, mut miss, mut wrong) = (0, 0, 0, 0);
        for (q, original) in questions.iter().zip(&originals) {
            let Some(paraphrase) = q.paraphrases.get(level) else {
                continue;
            };
            let (answer, ms) = timed_ask(&client, paraphrase, &q.domain).await?;
            match answer["cache"].as_str() {
                Some("exact") => exact += 1,
                Some("semantic") => {
                    semantic += 1;
                    semantic_ms.push(ms);
                    let expected = cited_documents(original);
                    if !expected.is_empty() && cited_documents(&answer) != expected {
                        wrong += 1;
                    }
                }
                _ => {
                    miss += 1;
                    miss_ms.push(ms);
                }
            }
        }
        let total = exact + semantic + miss;
        rows.push(json!({
            "rewording": name, "asked": total, "exact": exact, "semantic": semantic,
            "miss": miss, "hit_ratio": f64::from(exact + semantic) / f64::from(total.max(1)),
            "wrong_hits": wrong,
        }));
    }
    let counters = json!({
        "miss_p50_ms": median(miss_ms.clone()),
        "exact_p50_ms": median(exact_ms.clone()),
        "semantic_p50_ms": median(semantic_ms.clone()),
    });
    system.shutdown().await;

    println!(
        "\nCache replay ({} questions, semantic threshold 0.95)",
        questions.len()
    );
    println!(
        "{:<10} {:>6} {:>6} {:>9} {:>6} {:>10} {:>11}",
        "rewording", "asked", "exact", "semantic", "miss", "hit ratio", "wrong hits"
    );
    for r in &rows {
        println!(
            "{:<10} {:>6} {:>6} {:>9} {:>6} {:>10.2} {:>11}",
            r["rewording"].as_str().unwrap_or_default(),
            r["asked"],
            r["exact"],
            r["semantic"],
            r["miss"],
            r["hit_ratio"].as_f64().unwrap_or_default(),
            r["wrong_hits"]
        );
    }
    let (miss_p50, exact_p50, semantic_p50) = (
        median(miss_ms.clone()),
        median(exact_ms.clone()),
        median(semantic_ms.clone()),
    );
    println!(
        "latency p50: miss {miss_p50:.1} ms ({} asks), exact hit {exact_p50:.1} ms ({}), semantic hit {semantic_p50:.1} ms ({}); miss / exact = {:.1}x, miss / semantic = {:.1}x",
        miss_ms.len(),
        exact_ms.len(),
        semantic_ms.len(),
        miss_p50 / exact_p50,
        miss_p50 / semantic_p50
    );

    // 2. Streaming: extractive, then a model writer at 20 ms per token.
    let openai = rag_standins::openai::StandIn::start().await?;
    openai.delay_per_token(Duration::from_millis(20));
    let mut streaming = Vec::new();
    for writer in ["extractive", "model (stand-in, 20 ms/token)"] {
        let dir = tempfile::tempdir()?;
        let mut s = settings(dir.path());
        s.cache.enabled = false;
        if writer != "extractive" {
            let model = GeneratorSettings::Openai {
                base_url: openai.url(),
                model: "local-llm".into(),
                api_key_env: None,
                max_attempts: 2,
                timeout_ms: 10_000,
            };
            s.generation.light = model.clone();
            s.generation.strong = model;
        }
        let (system, client) = seeded_system(s).await?;
        let (mut first, mut done) = (Vec::new(), Vec::new());
        for q in &questions {
            let (f, d) = stream_times(&client, &q.question, &q.domain).await?;
            first.push(f);
            done.push(d);
        }
        system.shutdown().await;
        let (f, d) = (median(first), median(done));
        println!(
            "streaming, {writer}: first token p50 {f:.1} ms, done p50 {d:.1} ms ({:.0}% of the time to the full answer)",
            100.0 * f / d
        );
        streaming.push(json!({ "writer": writer, "first_token_p50_ms": f, "done_p50_ms": d }));
    }

    println!(
        "{}",
        json!({ "bench": "query_path", "cache": rows, "latency": counters, "streaming": streaming })
    );
    Ok(())
}
