//! Benchmark of the embedded system on this machine: ingestion of the sample corpus and
//! sequential query latency through the gateway. Prints a table and one JSON line.
//!
//!     cargo bench -p rag-launcher --bench local_system
//!
//! Medians are quoted because the machines are shared and noisy.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{Client, questions, settings, start};

const QUERIES: usize = 100;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn latencies(
    client: &Client,
    questions: &[support::Question],
    count: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let q = &questions[i % questions.len()];
        let started = Instant::now();
        client.ask(&q.question, q.domain.as_deref()).await?;
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut s = settings(dir.path());
    s.cache.enabled = false;
    let started = Instant::now();
    let system = start(s).await?;
    let ready_s = started.elapsed().as_secs_f64();
    let client = Client::new(&system);

    let seeded = Instant::now();
    let report = rag_launcher::seed(
        &system.settings,
        &support::repo_root().join("data/documents"),
    )
    .await?;
    let documents = client
        .wait_indexed(report.uploaded, Duration::from_secs(600))
        .await?;
    let ingest_s = seeded.elapsed().as_secs_f64();
    let chunks: u64 = documents
        .iter()
        .filter_map(|d| d["chunk_count"].as_u64())
        .sum();

    let questions = questions();
    // Warm-up: the first queries pay for connection set-up.
    latencies(&client, &questions, 5).await?;
    let uncached = latencies(&client, &questions, QUERIES).await?;
    system.shutdown().await;

    // The same with the exact cache on: the second pass over the questions hits it.
    let dir = tempfile::tempdir()?;
    let system = start(settings(dir.path())).await?;
    let client = Client::new(&system);
    let report = rag_launcher::seed(
        &system.settings,
        &support::repo_root().join("data/documents"),
    )
    .await?;
    client
        .wait_indexed(report.uploaded, Duration::from_secs(600))
        .await?;
    latencies(&client, &questions, questions.len()).await?;
    let cached = latencies(&client, &questions, QUERIES).await?;
    system.shutdown().await;

    println!(
        "embedded system, sample corpus ({} documents, {chunks} chunks)",
        documents.len()
    );
    println!("  start to ready                 {ready_s:8.2} s");
    println!(
        "  ingest until all indexed       {ingest_s:8.2} s  ({:.1} documents/s)",
        documents.len() as f64 / ingest_s
    );
    println!(
        "  {QUERIES} sequential queries, no cache   p50 {:7.2} ms  p95 {:7.2} ms  p99 {:7.2} ms",
        percentile(&uncached, 50.0),
        percentile(&uncached, 95.0),
        percentile(&uncached, 99.0)
    );
    println!(
        "  {QUERIES} sequential queries, exact hits p50 {:7.2} ms  p95 {:7.2} ms  p99 {:7.2} ms",
        percentile(&cached, 50.0),
        percentile(&cached, 95.0),
        percentile(&cached, 99.0)
    );
    println!(
        "  miss / hit p50 ratio           {:8.1}x",
        percentile(&uncached, 50.0) / percentile(&cached, 50.0)
    );
    println!(
        "{}",
        json!({
            "bench": "local_system",
            "documents": documents.len(),
            "chunks": chunks,
            "ready_s": ready_s,
            "ingest_s": ingest_s,
            "query_ms": { "p50": percentile(&uncached, 50.0), "p95": percentile(&uncached, 95.0), "p99": percentile(&uncached, 99.0) },
            "cached_query_ms": { "p50": percentile(&cached, 50.0), "p95": percentile(&cached, 95.0), "p99": percentile(&cached, 99.0) },
        })
    );
    Ok(())
}
