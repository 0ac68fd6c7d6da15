//! Reranking the fused candidates: the configured [`Reranker`] reads the query with each
//! chunk (its title and section in front of its text: [`ChunkRecord::embedding_text`], what
//! was embedded) and its scores, not the fusion's, order the hits. Equal scores keep the
//! fused order; a score that is not a number ranks last.
//!
//! A reranker that fails fails the search (UNAVAILABLE): a caller who asked for reranking
//! does not silently get the fused order instead. Each call's latency is the
//! `rag_rerank_duration_seconds` histogram, by model.

use std::time::Instant;

use rag_backends::rag_embeddings::Reranker;
use rag_core::{ChunkRecord, ServiceError};
use rag_telemetry::metrics::{ModelLabels, metrics};

use crate::fusion::Fused;

/// `hits` (in fused order) re-scored against `query`, best first, cut to `top_k`; each with
/// its rerank score.
pub async fn rerank(
    reranker: &dyn Reranker,
    query: &str,
    hits: Vec<(Fused, ChunkRecord)>,
    top_k: usize,
) -> Result<Vec<(Fused, ChunkRecord, f32)>, ServiceError> {
    let passages: Vec<String> = hits.iter().map(|(_, c)| c.embedding_text()).collect();
    let started = Instant::now();
    let scores = reranker.rerank(query, &passages).await;
    metrics()
        .rerank_duration
        .get_or_create(&ModelLabels {
            model: reranker.model_id().to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
    let scores = scores.map_err(|e| {
        tracing::warn!(error = %e, model = reranker.model_id(), "rerank failed");
        ServiceError::unavailable("the reranker is unavailable")
    })?;
    let mut ranked = order(hits, &scores).ok_or_else(|| {
        ServiceError::internal(format!(
            "the reranker gave {} scores for {} passages",
            scores.len(),
            passages.len()
        ))
    })?;
    ranked.truncate(top_k);
    Ok(ranked
        .into_iter()
        .map(|((fused, chunk), score)| (fused, chunk, score))
        .collect())
}

/// `items` with their `scores` (one each, else `None`), best first; equal scores keep the
/// items' order, and NaN ranks last.
pub fn order<T>(items: Vec<T>, scores: &[f32]) -> Option<Vec<(T, f32)>> {
    if items.len() != scores.len() {
        return None;
    }
    let mut ranked: Vec<(T, f32)> = items.into_iter().zip(scores.iter().copied()).collect();
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    // Stable: ties keep the fused order.
    ranked.sort_by(|a, b| key(b.1).total_cmp(&key(a.1)));
    Some(ranked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_score_and_keeps_the_fused_order_on_ties() {
        let ranked = order(vec!["a", "b", "c", "d"], &[0.2, 0.9, 0.2, f32::NAN]);
        assert_eq!(
            ranked.map(|r| r.into_iter().map(|(x, _)| x).collect::<Vec<_>>()),
            Some(vec!["b", "a", "c", "d"])
        );
    }

    #[test]
    fn a_score_count_that_does_not_match_is_refused() {
        assert!(order(vec![1, 2], &[0.5]).is_none());
        assert_eq!(order(Vec::<u8>::new(), &[]), Some(vec![]));
    }
}
