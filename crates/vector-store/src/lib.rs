//! rag-vector-store: the dense-vector index of llmops-rag-pipeline.
//!
//! Owns: the [`VectorStore`] trait every backend implements (the embedder writes through it,
//! the retriever reads through it) and the embedded backend, [`EdgeVectorStore`], which runs
//! the Qdrant engine in-process on disk (`qdrant-edge`), and the cluster backend,
//! [`QdrantVectorStore`], a Qdrant server reached over gRPC (`qdrant-client`). Both keep the same
//! points and answer the same contract (`tests/contract.rs`).
//!
//! Every point is one chunk: its id is `ChunkRecord::id`, its payload is the `ChunkRecord`
//! itself (a flat JSON object), its vector is the chunk's L2-normalised embedding. Scores are
//! cosine similarities (higher is better).

use rag_core::{ChunkRecord, DocumentId, SearchFilter, ServiceError};
use uuid::Uuid;

mod edge;
mod point;
mod qdrant;

pub use edge::EdgeVectorStore;
pub use qdrant::QdrantVectorStore;

/// One point to write: the chunk's embedding and the chunk itself (point id = `chunk.id`).
#[derive(Clone, Debug, PartialEq)]
pub struct VectorPoint {
    pub vector: Vec<f32>,
    pub chunk: ChunkRecord,
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorHit {
    pub chunk: ChunkRecord,
    /// Cosine similarity to the query vector; higher is better.
    pub score: f32,
}

/// One search result without its chunk: what fusion and the visibility check need (the
/// payload read is limited to `document_id`, `version` and `chunk_index`, see
/// [`VectorStore::search_ids`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VectorMatch {
    /// The point id (`ChunkRecord::id`).
    pub id: Uuid,
    pub document_id: DocumentId,
    pub version: u64,
    pub chunk_index: u32,
    /// Cosine similarity to the query vector; higher is better.
    pub score: f32,
}

/// Why a vector-store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorStoreError {
    /// The store cannot serve now (closed, not reachable, no runtime); retrying may succeed.
    #[error("vector store unavailable: {0}")]
    Unavailable(String),
    /// The caller's input is unusable (wrong vector dimension, non-finite values, ...).
    #[error("invalid vector store input: {0}")]
    InvalidInput(String),
    /// The store failed to read or write its data.
    #[error("vector store storage error: {0}")]
    Storage(String),
}

impl From<VectorStoreError> for ServiceError {
    fn from(err: VectorStoreError) -> Self {
        match err {
            VectorStoreError::Unavailable(msg) => ServiceError::unavailable(msg),
            VectorStoreError::InvalidInput(msg) => ServiceError::invalid_argument(msg),
            VectorStoreError::Storage(msg) => ServiceError::internal(msg),
        }
    }
}

/// The dense-vector index. Object safe: services hold an `Arc<dyn VectorStore>`.
#[async_trait::async_trait]
pub trait VectorStore: Send + Sync + std::fmt::Debug {
    /// Inserts or overwrites points by id (idempotent: re-upserting the same ids makes no
    /// duplicates). Durable when it returns `Ok`.
    async fn upsert(&self, points: Vec<VectorPoint>) -> Result<(), VectorStoreError>;

    /// Top `limit` chunks by cosine similarity among those matching `filter` (tenant always,
    /// domain when set), best first.
    async fn search(
        &self,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<VectorHit>, VectorStoreError>;

    /// [`VectorStore::search`] without the chunks: the same points, scores and order, with
    /// only their ids read from the payload, so fusing hundreds of candidates does not move
    /// or decode their text.
    async fn search_ids(
        &self,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<VectorMatch>, VectorStoreError>;

    /// Deletes every point of `document_id` (within `tenant`) whose version is not
    /// `keep_version` (`None` = delete all its points). Used to retire old versions and to
    /// delete documents. Durable when it returns `Ok`.
    async fn delete_document(
        &self,
        tenant: &str,
        document_id: DocumentId,
        keep_version: Option<u64>,
    ) -> Result<(), VectorStoreError>;

    /// The chunks of one document version with the given chunk indexes (for adjacent-chunk
    /// expansion), in any order; indexes that do not exist are skipped.
    async fn get_chunks(
        &self,
        tenant: &str,
        document_id: DocumentId,
        version: u64,
        chunk_indexes: &[u32],
    ) -> Result<Vec<ChunkRecord>, VectorStoreError>;

    /// Number of points matching the filter.
    async fn count(&self, filter: &SearchFilter) -> Result<u64, VectorStoreError>;

    /// Ok when the store can serve (for readiness).
    async fn health(&self) -> Result<(), VectorStoreError>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn trait_is_object_safe() {
        fn takes(_: Option<Arc<dyn VectorStore>>) {}
        takes(None);
    }

    #[test]
    fn errors_map_to_service_errors() {
        use rag_core::ErrorCode;
        let e: ServiceError = VectorStoreError::InvalidInput("dim".into()).into();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        let e: ServiceError = VectorStoreError::Unavailable("x".into()).into();
        assert_eq!(e.code, ErrorCode::Unavailable);
        let e: ServiceError = VectorStoreError::Storage("disk".into()).into();
        assert_eq!(e.code, ErrorCode::Internal);
    }
}
