//! `LocalMiniLm` against the Python sentence-transformers.
//!
//! The fixture `fixtures/minilm_reference.json` holds sentences, their token counts and the
//! vectors sentence-transformers gave for them (see `fixtures/make_reference.py` for how it
//! was made). These tests need the real weights in `default_model_dir()`; without them they
//! fail and say how to fetch them (`scripts/fetch-model.sh`).

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use rag_embeddings::local::{MINILM_DIMENSIONS, MINILM_MODEL_ID};
use rag_embeddings::{EmbeddingError, EmbeddingModel, LocalMiniLm, default_model_dir};

/// Largest allowed |candle - sentence-transformers| per component.
const TOLERANCE: f32 = 1e-5;

struct Case {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("fixtures/minilm_reference.json");
    let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(fixture["model_id"], MINILM_MODEL_ID);
    fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| Case {
            text: case["text"].as_str().unwrap().to_owned(),
            tokens: usize::try_from(case["tokens"].as_u64().unwrap()).unwrap(),
            embedding: case["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
        })
        .collect()
}

fn model() -> &'static LocalMiniLm {
    static MODEL: OnceLock<LocalMiniLm> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = default_model_dir();
        LocalMiniLm::load(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot load all-MiniLM-L6-v2 from {}: {e}\n\
                 Fetch the weights with `scripts/fetch-model.sh` (or `make models`), \
                 or point RAG_MODEL_DIR at a directory holding them.",
                dir.display()
            )
        })
    })
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[tokio::test]
async fn matches_sentence_transformers() {
    let cases = cases();
    assert!(
        cases.iter().any(|c| c.text.is_empty()),
        "fixture has the empty text"
    );
    assert!(
        cases.iter().any(|c| c.tokens > 256),
        "fixture has a text to truncate"
    );
    let texts: Vec<String> = cases.iter().map(|c| c.text.clone()).collect();
    let reference: Vec<Vec<f32>> = cases.iter().map(|c| c.embedding.clone()).collect();
    let model = model();

    // All in one call (sorted by length, padded to the longest).
    let batched = model.embed(&texts).await.unwrap();
    let diff_batched = max_abs_diff(&batched, &reference);

    // One text per call (no padding at all).
    let mut singles = Vec::new();
    for text in &texts {
        singles.extend(model.embed(std::slice::from_ref(text)).await.unwrap());
    }
    let diff_singles = max_abs_diff(&singles, &reference);

    println!(
        "max |candle - sentence-transformers|: {diff_batched:e} (one batch), {diff_singles:e} (one by one)"
    );
    assert!(
        diff_batched < TOLERANCE,
        "batched max abs diff {diff_batched:e}"
    );
    assert!(
        diff_singles < TOLERANCE,
        "single max abs diff {diff_singles:e}"
    );

    for v in &batched {
        assert_eq!(v.len(), MINILM_DIMENSIONS);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

/// Single-text calls made at once share forward passes (padded together): each caller still
/// gets its own text's vector.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_single_calls_each_get_their_own_vector() {
    let cases = cases();
    let calls: Vec<_> = cases
        .iter()
        .cycle()
        .take(3 * cases.len())
        .map(|case| {
            let text = case.text.clone();
            tokio::spawn(async move { model().embed(&[text]).await })
        })
        .collect();
    let mut got = Vec::new();
    for call in calls {
        got.extend(call.await.unwrap().unwrap());
    }
    let reference: Vec<Vec<f32>> = cases
        .iter()
        .cycle()
        .take(3 * cases.len())
        .map(|c| c.embedding.clone())
        .collect();
    let diff = max_abs_diff(&got, &reference);
    assert!(diff < TOLERANCE, "concurrent max abs diff {diff:e}");
}

#[tokio::test]
async fn sub_batches_keep_the_callers_order() {
    let cases = cases();
    // Each text three times, shuffled, in sub-batches of 4: sorting by length and
    // re-ordering must hand every vector back to its own text.
    let mut texts = Vec::new();
    let mut reference = Vec::new();
    for round in 0..3 {
        for i in 0..cases.len() {
            let case = &cases[(i * 5 + round) % cases.len()];
            texts.push(case.text.clone());
            reference.push(case.embedding.clone());
        }
    }
    let model = model().clone().with_batch_size(4);
    let vectors = model.embed(&texts).await.unwrap();
    let diff = max_abs_diff(&vectors, &reference);
    assert!(diff < TOLERANCE, "max abs diff {diff:e}");
}

#[test]
fn counts_tokens_like_the_python_tokenizer() {
    let model = model();
    for case in cases() {
        assert_eq!(
            model.count_tokens(&case.text).unwrap(),
            case.tokens,
            "{:?}",
            case.text
        );
    }
    assert_eq!(model.max_tokens(), 256);
    assert_eq!(model.max_text_tokens(), 254);
    assert_eq!(model.dimensions(), 384);
    assert_eq!(model.model_id(), "sentence-transformers/all-MiniLM-L6-v2");
}

#[tokio::test]
async fn rejects_too_many_texts_and_accepts_none() {
    let model = model().clone().with_max_texts_per_call(2);
    let texts = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert!(matches!(
        model.embed(&texts).await,
        Err(EmbeddingError::InvalidInput(_))
    ));
    assert!(model.embed(&[]).await.unwrap().is_empty());
}

#[test]
fn embeds_outside_a_tokio_runtime() {
    let case = &cases()[1];
    let fut = model().embed(std::slice::from_ref(&case.text));
    let vectors = block_on_ready(fut).unwrap();
    let diff = max_abs_diff(&vectors, std::slice::from_ref(&case.embedding));
    assert!(diff < TOLERANCE, "max abs diff {diff:e}");
}

/// Polls a future that never returns `Pending` (no runtime needed: `embed` runs inline
/// when there is no tokio runtime).
fn block_on_ready<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("embed outside a runtime should complete synchronously"),
    }
}
