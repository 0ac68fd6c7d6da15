//! Reranking: re-scoring the passages a search found against the query with a model that
//! reads the two together (a cross-encoder). It ranks better than the embedding similarity
//! and BM25 that found them, at a cost per passage, so it runs on the fused top N only.
//!
//! * [`CrossEncoder`]: any Hugging Face `BertForSequenceClassification` cross-encoder with one
//!   label (e.g. `cross-encoder/ms-marco-MiniLM-L-6-v2`), on the CPU with candle.
//! * [`BedrockRerank`]: Amazon Bedrock's rerank models through `InvokeModel`
//!   (`cohere.rerank-v3-5:0`, `amazon.rerank-v1:0`).
//!
//! Errors are [`EmbeddingError`]s (loading, tokenizer, inference, input, unavailability);
//! what a failure means for a request is the caller's to decide.

mod bedrock;
mod cross_encoder;

pub use bedrock::{
    AMAZON_RERANK_V1, BEDROCK_MAX_DOCUMENTS, BedrockRerank, BedrockRerankOptions,
    COHERE_RERANK_V3_5,
};
pub use cross_encoder::{CrossEncoder, DEFAULT_MAX_PASSAGES, DEFAULT_RERANK_MAX_TOKENS};

use crate::EmbeddingError;

/// A model that scores passages for a query.
///
/// Object safe: services hold an `Arc<dyn Reranker>`.
#[async_trait::async_trait]
pub trait Reranker: Send + Sync + std::fmt::Debug {
    /// e.g. "cohere.rerank-v3-5:0", or the cross-encoder's directory name.
    fn model_id(&self) -> &str;

    /// One score per passage, in the passages' order; higher is more relevant. Scores are
    /// comparable within one call (and, for one model, across calls), not across models.
    /// No passages give no scores (and no model call).
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbeddingError>;
}

/// The error for a call with more passages than `max` allowed.
fn too_many(passages: usize, max: usize) -> EmbeddingError {
    EmbeddingError::InvalidInput(format!(
        "{passages} passages to rerank in one call; at most {max} are allowed"
    ))
}
