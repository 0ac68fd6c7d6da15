//! `CrossEncoder` with a synthetic model of the architecture of
//! `cross-encoder/ms-marco-MiniLM-L-6-v2` (see `support/synthetic.rs`): no real cross-encoder
//! can be had offline, so these tests check the plumbing (batching, padding, masks,
//! truncation, loading errors), not the quality of the scores, which mean nothing here.
//! They need all-MiniLM-L6-v2's weights in `default_model_dir()` (`make models`).

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

#[path = "support/synthetic.rs"]
mod synthetic;

use std::sync::OnceLock;

use rag_embeddings::rerank::DEFAULT_RERANK_MAX_TOKENS;
use rag_embeddings::{CrossEncoder, EmbeddingError, Reranker};

/// Largest allowed difference between a pair's score in a batch and alone.
const TOLERANCE: f32 = 1e-5;

/// The synthetic model's directory, written once per test binary.
fn model_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        synthetic::write_cross_encoder(dir.path(), true).unwrap_or_else(|e| {
            panic!(
                "cannot build the synthetic cross-encoder from all-MiniLM-L6-v2 ({}): {e}; \
                 fetch the weights with `make models` or set RAG_MODEL_DIR",
                rag_embeddings::default_model_dir().display()
            )
        });
        dir
    })
    .path()
}

fn model(max_tokens: usize) -> CrossEncoder {
    CrossEncoder::load(model_dir(), "synthetic-cross-encoder", max_tokens).unwrap()
}

fn passages() -> Vec<String> {
    let mut passages: Vec<String> = [
        "Employees get twenty-five days of paid leave a year.",
        "Leave",
        "The notice period lasts thirty calendar days, counted from the first of the month.",
        "Laptops are returned to reception before the last working day.",
        "",
        "Parental leave is sixteen weeks, paid in full, and can be split in two blocks.",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Enough for two batches, of lengths that need padding.
    for i in 0..14 {
        passages.push(format!(
            "Policy {i}: {}",
            "requests for leave go to the line manager ".repeat(i % 5 + 1)
        ));
    }
    passages
}

fn assert_close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() < TOLERANCE, "passage {i}: {x} vs {y}");
    }
}

#[tokio::test]
async fn a_batch_scores_each_pair_as_it_scores_it_alone() {
    let model = model(DEFAULT_RERANK_MAX_TOKENS);
    assert_eq!(model.model_id(), "synthetic-cross-encoder");
    let query = "How many days of leave do I get?";
    let passages = passages();
    let batch = model.rerank(query, &passages).await.unwrap();
    let mut alone = Vec::new();
    for passage in &passages {
        alone.extend(
            model
                .rerank(query, std::slice::from_ref(passage))
                .await
                .unwrap(),
        );
    }
    assert_close(&batch, &alone);
    assert!(batch.iter().all(|s| *s > 0.0 && *s < 1.0), "{batch:?}");
    // The head does something: not every passage scores the same.
    let (min, max) = batch
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    assert!(max - min > 1e-4, "{batch:?}");
}

#[tokio::test]
async fn scores_do_not_depend_on_the_order_of_the_passages() {
    let model = model(DEFAULT_RERANK_MAX_TOKENS);
    let query = "notice period";
    let passages = passages();
    let forward = model.rerank(query, &passages).await.unwrap();
    let reversed: Vec<String> = passages.iter().rev().cloned().collect();
    let mut backward = model.rerank(query, &reversed).await.unwrap();
    backward.reverse();
    assert_close(&forward, &backward);
}

#[tokio::test]
async fn a_passage_longer_than_max_tokens_is_truncated_not_refused() {
    let model = model(64);
    let query = "leave policy";
    let start = "leave requests go to the line manager and are answered within a week ".repeat(8);
    let longer = format!("{start}{}", "unrelated words about parking ".repeat(500));
    let scores = model.rerank(query, &[start.clone(), longer]).await.unwrap();
    // Both are cut to the same first 64 tokens of the pair, so they score the same.
    assert_close(&scores[..1], &scores[1..]);
    // The default limit takes the 3,000-token passage too.
    let long = "word ".repeat(3_000);
    let scores = model_default().rerank(query, &[long]).await.unwrap();
    assert!(scores[0].is_finite());
}

fn model_default() -> &'static CrossEncoder {
    static MODEL: OnceLock<CrossEncoder> = OnceLock::new();
    MODEL.get_or_init(|| model(DEFAULT_RERANK_MAX_TOKENS))
}

#[tokio::test]
async fn calls_are_bounded_and_empty_calls_cost_nothing() {
    let model = model_default().clone().with_max_passages(3);
    assert!(model.rerank("q", &[]).await.unwrap().is_empty());
    let four = vec!["a".to_owned(); 4];
    let err = model.rerank("q", &four).await.unwrap_err();
    assert!(
        matches!(&err, EmbeddingError::InvalidInput(m) if m.contains("at most 3")),
        "{err}"
    );
}

#[test]
fn a_directory_without_the_files_says_what_a_cross_encoder_directory_holds() {
    let dir = tempfile::tempdir().unwrap();
    let err = CrossEncoder::load(dir.path(), "x", 512).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, EmbeddingError::ModelLoad { .. }), "{err:?}");
    assert!(text.contains("model.safetensors is missing"), "{text}");
    assert!(text.contains("BertForSequenceClassification"), "{text}");
}

#[test]
fn a_model_without_a_classifier_or_with_too_many_tokens_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_cross_encoder(dir.path(), false).unwrap();
    let err = CrossEncoder::load(dir.path(), "x", 512).unwrap_err();
    assert!(err.to_string().contains("classifier"), "{err}");

    let err = CrossEncoder::load(model_dir(), "x", 1_024).unwrap_err();
    assert!(
        err.to_string().contains("max_position_embeddings 512"),
        "{err}"
    );
}
