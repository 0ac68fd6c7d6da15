//! What embedding one question costs: `LocalMiniLm::embed` of a single query, the way the
//! query path calls it, over SciFact's 1,109 claims (`../shared/datasets/scifact`, or the
//! `queries.jsonl` named by `QUERY_BENCH_QUERIES`); p50, p95 and p99 per query, and the
//! median token count. The retrieval goal (hybrid p50 ≤ 15 ms, the query embedding included)
//! is read against this figure. For comparison, the ingestion side: passages of ~200 tokens
//! (the claims joined) embedded 128 per call, as the embedder does, in passages per second.
//! And the query side under load, in claims per second: 32 callers each embedding one claim
//! per call at once (how the embedder serves concurrent queries), against one caller sending
//! the claims 32 per call. The second is not faster (padded batches of short texts waste
//! their padding, and large products gain little), which is why concurrent queries are not
//! merged into batches.
//!
//!     cargo bench --profile dev --workspace --bench query
//!
//! (`--profile dev`: the workspace's dependencies are optimised at level 2 there.) candle's
//! threads follow `RAYON_NUM_THREADS`; run it with 1 and 2 to compare. Prints a table and one
//! JSON line. Needs all-MiniLM-L6-v2's weights (`make models`).

#![allow(clippy::unwrap_used)] // a bench: a failure is the bench failing

#[path = "support/timing.rs"]
mod timing;

use std::path::PathBuf;
use std::time::Instant;

use rag_embeddings::{EmbeddingModel, LocalMiniLm};
use timing::{load_average, ms, percentile};

/// Calls before timing starts (the first ones allocate and spin the thread pool up).
const WARM_UP: usize = 20;
/// Passages per ingestion-side call, and calls timed.
const PASSAGES: usize = 128;
const PASSAGE_ROUNDS: usize = 3;
/// Callers asking at once, as the embedder serves the query path under load.
const CONCURRENT_CALLERS: usize = 32;

/// Consecutive `queries` joined into passages of at least 150 words (~200 tokens).
fn passages(queries: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for query in queries.iter().cycle() {
        if out.len() == PASSAGES {
            break;
        }
        current.push_str(query);
        current.push(' ');
        if current.split_whitespace().count() >= 150 {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

fn queries() -> Vec<String> {
    let path = std::env::var_os("QUERY_BENCH_QUERIES").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/datasets/scifact/queries.jsonl")
        },
        PathBuf::from,
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn main() {
    // As the binaries do, before the runtime starts its threads.
    rag_embeddings::pin_compute_threads();
    tokio::runtime::Runtime::new().unwrap().block_on(bench());
}

async fn bench() {
    let model = LocalMiniLm::load_default().unwrap();
    let queries = queries();
    let load_before = load_average();
    for query in queries.iter().cycle().take(WARM_UP) {
        model.embed(std::slice::from_ref(query)).await.unwrap();
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut tokens = Vec::with_capacity(queries.len());
    for query in &queries {
        let started = Instant::now();
        let vectors = model.embed(std::slice::from_ref(query)).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(vectors.len(), 1);
        tokens.push(model.count_tokens(query).unwrap() + 2);
    }
    let passages = passages(&queries);
    let mut rounds = Vec::with_capacity(PASSAGE_ROUNDS);
    for _ in 0..PASSAGE_ROUNDS {
        let started = Instant::now();
        model.embed(&passages).await.unwrap();
        rounds.push(started.elapsed());
    }
    rounds.sort();
    let concurrent_per_s = concurrent_queries_per_s(&model, &queries).await;
    let started = Instant::now();
    for claims in queries.chunks(CONCURRENT_CALLERS) {
        model.embed(claims).await.unwrap();
    }
    let batched_per_s = queries.len() as f64 / started.elapsed().as_secs_f64();
    let passages_per_s = PASSAGES as f64 / rounds[rounds.len() / 2].as_secs_f64();
    times.sort();
    tokens.sort_unstable();
    let median_tokens = tokens[tokens.len() / 2];
    let threads = candle_core::utils::get_num_threads();
    let (p50, p95, p99) = (
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.95)),
        ms(percentile(&times, 0.99)),
    );
    println!(
        "one query embedded, all-MiniLM-L6-v2 on the CPU, {threads} threads, load average {load_before} → {}",
        load_average()
    );
    println!("| queries | median tokens | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| {} | {median_tokens} | {p50:.2} | {p95:.2} | {p99:.2} |",
        times.len()
    );
    println!(
        "ingestion side: {PASSAGES} passages of ~200 tokens per call, median of {PASSAGE_ROUNDS}: {passages_per_s:.1} passages/s"
    );
    println!(
        "query side under load: {CONCURRENT_CALLERS} callers at once, one claim per call: {concurrent_per_s:.1} claims/s; \
         {CONCURRENT_CALLERS} claims per call, one caller: {batched_per_s:.1} claims/s"
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "query_embedding",
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "threads": threads,
            "queries": times.len(),
            "median_tokens": median_tokens,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "passages_per_s": passages_per_s,
            "concurrent_callers": CONCURRENT_CALLERS,
            "concurrent_queries_per_s": concurrent_per_s,
            "batched_queries_per_s": batched_per_s,
            "load_average": load_before,
        })
    );
}

/// Claims per second when [`CONCURRENT_CALLERS`] callers each embed their share of
/// `queries` one claim per call, all at once.
async fn concurrent_queries_per_s(model: &LocalMiniLm, queries: &[String]) -> f64 {
    let share = queries.len().div_ceil(CONCURRENT_CALLERS);
    let started = Instant::now();
    let callers: Vec<_> = queries
        .chunks(share)
        .map(|mine| {
            let (model, mine) = (model.clone(), mine.to_vec());
            tokio::spawn(async move {
                for query in &mine {
                    model.embed(std::slice::from_ref(query)).await.unwrap();
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    queries.len() as f64 / started.elapsed().as_secs_f64()
}
