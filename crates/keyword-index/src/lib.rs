//! rag-keyword-index: BM25 keyword search over chunks, with tantivy.
//!
//! The retriever fuses this with dense search; the embedder writes to it at ingest time. Both
//! see the same [`KeywordIndex`] trait; [`TantivyIndex`] is the one implementation (embedded
//! and cluster profiles alike).
//!
//! What it guarantees:
//! - [`KeywordIndex::upsert`] is idempotent by point id and the chunks are searchable when it
//!   returns (the reader is reloaded after every commit this process makes).
//! - Every search and count is scoped to one tenant (and one domain when the filter has one).
//! - Any user text is a valid query: there is no query syntax, the text is analysed like the
//!   documents (see [`analysis`]) and never produces an error or a panic.
//! - [`KeywordIndex::search_ids`] finds exactly what [`KeywordIndex::search`] finds, in the same
//!   order with the same scores; only the chunks are left out.
//! - One writer per directory per process: [`TantivyIndex::open`] hands out the same
//!   `Arc` to every caller in a process while one is alive (tantivy allows one writer per
//!   directory, and in the embedded profile the embedder and the retriever both open it).

pub mod analysis;
mod tantivy_index;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use rag_core::{ChunkRecord, DocumentId, SearchFilter, ServiceError};
use uuid::Uuid;

pub use tantivy_index::TantivyIndex;

/// One search result without its chunk: what fusion and the visibility check need. Read
/// from fast fields, so a search of hundreds of candidates does not load their text (see
/// [`KeywordIndex::search_ids`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeywordMatch {
    /// The point id (`ChunkRecord::id`).
    pub id: Uuid,
    pub document_id: DocumentId,
    pub version: u64,
    pub score: f32,
}

/// One search result: the chunk as it was indexed and its raw BM25 score (sum over the
/// fields, weighted as described in [`analysis`]). Scores are only comparable within one
/// search.
#[derive(Clone, Debug, PartialEq)]
pub struct KeywordHit {
    pub chunk: ChunkRecord,
    pub score: f32,
}

#[async_trait::async_trait]
pub trait KeywordIndex: Send + Sync + std::fmt::Debug {
    /// Adds or replaces chunks by point id (idempotent) and commits, so they are searchable
    /// when this returns.
    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<(), KeywordIndexError>;

    /// Top `limit` chunks by BM25 among those matching the filter (tenant always; domain
    /// when set), best first. A query with no searchable words (empty, only stop words or
    /// punctuation) returns no hits.
    async fn search(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<KeywordHit>, KeywordIndexError>;

    /// [`KeywordIndex::search`] without the chunks: the same matches, scores and order, but
    /// only ids, for fusing many candidates cheaply; load the chunks of the few that are kept
    /// with [`KeywordIndex::get`].
    async fn search_ids(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<KeywordMatch>, KeywordIndexError>;

    /// The chunks with these point ids (within `tenant`), in any order; ids not in the index
    /// are skipped, repeated ids give one chunk. An exact lookup (no scoring): used to load the
    /// chunks of the final hits and, for adjacent-chunk expansion, their neighbours (whose
    /// ids follow from `point_id(document, version, chunk_index)`).
    async fn get(&self, tenant: &str, ids: &[Uuid]) -> Result<Vec<ChunkRecord>, KeywordIndexError>;

    /// Deletes every chunk of `document_id` (within `tenant`) whose version is not
    /// `keep_version` (`None` = all versions), and commits.
    async fn delete_document(
        &self,
        tenant: &str,
        document_id: DocumentId,
        keep_version: Option<u64>,
    ) -> Result<(), KeywordIndexError>;

    /// Number of chunks matching the filter.
    async fn count(&self, filter: &SearchFilter) -> Result<u64, KeywordIndexError>;

    /// Ok when the index directory is there and a searcher can be taken.
    async fn health(&self) -> Result<(), KeywordIndexError>;
}

#[derive(Debug, thiserror::Error)]
pub enum KeywordIndexError {
    #[error("keyword index directory {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another writer (most likely another process) holds the directory's writer lock.
    #[error("keyword index directory {} is locked by another writer", path.display())]
    Locked { path: PathBuf },
    #[error("keyword index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("keyword index: cannot encode chunk record: {0}")]
    Record(#[from] serde_json::Error),
    /// The blocking task running the operation panicked or was cancelled.
    #[error("keyword index task failed: {0}")]
    Task(String),
    #[error("keyword index is closed")]
    Closed,
    /// A write through a handle opened for reading ([`TantivyIndex::open_read_only`]).
    #[error("keyword index {} is open for reading only", path.display())]
    ReadOnly { path: PathBuf },
    #[error("keyword index analyzer: {0}")]
    Analyzer(String),
}

impl From<KeywordIndexError> for ServiceError {
    fn from(e: KeywordIndexError) -> Self {
        match e {
            KeywordIndexError::Io { .. }
            | KeywordIndexError::Locked { .. }
            | KeywordIndexError::Task(_)
            | KeywordIndexError::Closed => {
                tracing::warn!(error = %e, "keyword index unavailable");
                ServiceError::unavailable("keyword index unavailable")
            }
            KeywordIndexError::Tantivy(_)
            | KeywordIndexError::Record(_)
            | KeywordIndexError::Analyzer(_)
            | KeywordIndexError::ReadOnly { .. } => ServiceError::internal(e),
        }
    }
}
