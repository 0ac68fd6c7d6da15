//! What reranking with a local cross-encoder costs per query: `CrossEncoder::rerank` of 10,
//! 20, 30 and 50 passages of ~200 tokens each against one question, p50 and p95 over
//! `ROUNDS` calls per size, and the cost per passage.
//!
//! The model is the synthetic cross-encoder of the tests (`tests/support/synthetic.rs`):
//! all-MiniLM-L6-v2's encoder with a seeded head, the architecture and size of
//! `cross-encoder/ms-marco-MiniLM-L-6-v2`, so the latency is what that model would cost; its
//! scores mean nothing. Needs all-MiniLM-L6-v2's weights (`make models`).
//!
//!     cargo bench --profile dev -p rag-embeddings --bench rerank
//!
//! (`--profile dev`: the workspace's dependencies are optimised at level 2 there.) Prints a
//! table and one JSON line.

#![allow(clippy::unwrap_used)] // a bench: a failure is the bench failing

#[path = "../tests/support/synthetic.rs"]
mod synthetic;
#[path = "support/timing.rs"]
mod timing;

use std::time::Instant;

use rag_embeddings::rerank::DEFAULT_RERANK_MAX_TOKENS;
use rag_embeddings::{CrossEncoder, Reranker, TokenCounter};
use timing::{load_average, ms, percentile};

const SIZES: [usize; 4] = [10, 20, 30, 50];
const ROUNDS: usize = 20;
const QUERY: &str = "How long is the notice period when an employee resigns?";

/// About 200 WordPiece tokens of policy prose, different for each `i`.
fn passage(i: usize) -> String {
    let sentences = [
        "Employees who resign give written notice to their line manager",
        "the notice period is thirty calendar days unless the contract says otherwise",
        "holiday taken during the notice period must be approved in advance",
        "company equipment is returned to reception before the last working day",
        "the final salary includes any holiday that was earned but not taken",
        "references are given by People Operations on request",
        "an exit interview is offered to every employee who leaves",
        "access to systems ends at midnight on the last working day",
    ];
    let mut text = format!("Section {i}.");
    let mut k = i;
    while text.split_whitespace().count() < 150 {
        text.push(' ');
        text.push_str(sentences[k % sentences.len()]);
        text.push('.');
        k += 3;
    }
    text
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_cross_encoder(dir.path(), true).unwrap();
    let model = CrossEncoder::load(
        dir.path(),
        "synthetic-ms-marco-MiniLM-L-6-v2",
        DEFAULT_RERANK_MAX_TOKENS,
    )
    .unwrap();
    let counter = TokenCounter::load_default().unwrap();
    let passages: Vec<String> = (0..*SIZES.iter().max().unwrap()).map(passage).collect();
    let tokens: usize = passages.iter().map(|p| counter.count(p).unwrap()).sum();
    println!(
        "cross-encoder rerank, synthetic MiniLM-L6 (384 wide, 6 layers), {} threads, load average {}; passages of {:.0} tokens on average, query of {} tokens; {ROUNDS} calls per size",
        candle_core::utils::get_num_threads(),
        load_average(),
        tokens as f64 / passages.len() as f64,
        counter.count(QUERY).unwrap()
    );
    // Warm-up: first-touch allocations, rayon's pool.
    model.rerank(QUERY, &passages[..10]).await.unwrap();

    println!(
        "{:>9} {:>9} {:>9} {:>14}",
        "passages", "p50 ms", "p95 ms", "p50/passage ms"
    );
    let mut rows = Vec::new();
    for n in SIZES {
        let mut samples = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            let scores = model.rerank(QUERY, &passages[..n]).await.unwrap();
            samples.push(started.elapsed());
            assert_eq!(scores.len(), n);
        }
        samples.sort();
        let (p50, p95) = (percentile(&samples, 0.50), percentile(&samples, 0.95));
        println!(
            "{n:>9} {:>9.1} {:>9.1} {:>14.2}",
            ms(p50),
            ms(p95),
            ms(p50) / n as f64
        );
        rows.push(serde_json::json!({
            "passages": n,
            "p50_ms": ms(p50),
            "p95_ms": ms(p95),
            "per_passage_ms": ms(p50) / n as f64,
        }));
    }
    println!("load average at the end: {}", load_average());
    println!(
        "{}",
        serde_json::json!({ "bench": "rerank", "rounds": ROUNDS, "sizes": rows })
    );
}
