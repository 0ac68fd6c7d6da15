//! The document registry: each document's lifecycle and versions, behind one object-safe trait.
//!
//! Owns: the [`Catalog`] trait, [`DocumentRecord`] and [`DocumentState`], the version rules
//! (which content hash is visible, which version is being ingested, when a version is stale,
//! when all its batches are indexed), each visible version's centre of mass for corpus-drift
//! detection ([`VectorProfile`] per batch, [`DocumentProfile`] per document), [`CatalogError`],
//! and the embedded default [`SqliteCatalog`] (one SQLite file, WAL, `synchronous=FULL`,
//! shareable by several processes).
//!
//! Must not: store document content, chunks or vectors (the object store and the indexes do;
//! a profile is one mean vector per batch, not the chunks'), compute drift statistics (the
//! drift crate does, from [`Catalog::document_profiles`]),
//! talk to the indexes or the queues (the ingest-worker and the embedder act on its answers),
//! or let one tenant see another's documents: every lookup is keyed by (tenant, id). The
//! cluster implementation (PostgreSQL) comes later and must keep the rules documented on
//! [`Catalog`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use rag_core::{DocumentId, ServiceError};
use serde::{Deserialize, Serialize};

mod sqlite;

pub use sqlite::SqliteCatalog;

/// Where a document is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentState {
    /// Uploaded; the ingest-worker has not started on it.
    Queued,
    /// A version is being ingested (fetched, chunked, embedded).
    Processing,
    /// The newest version is what readers see.
    Indexed,
    /// The last ingestion failed (see `error`); an earlier indexed version, if any, stays visible.
    Failed,
    /// Being removed from the indexes.
    Deleting,
    /// Removed; not listed. An upload brings it back as a new version.
    Deleted,
}

impl DocumentState {
    pub const ALL: [DocumentState; 6] = [
        Self::Queued,
        Self::Processing,
        Self::Indexed,
        Self::Failed,
        Self::Deleting,
        Self::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Indexed => "indexed",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }

    /// Deleting or deleted: ingestion results for it must be dropped.
    pub fn is_gone(self) -> bool {
        matches!(self, Self::Deleting | Self::Deleted)
    }
}

impl fmt::Display for DocumentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DocumentState {
    type Err = CatalogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| CatalogError::Corrupt(format!("unknown document state {s:?}")))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRecord {
    pub id: DocumentId,
    pub tenant: String,
    pub domain: String,
    pub title: String,
    /// Object-store key of the latest upload.
    pub object_key: String,
    pub state: DocumentState,
    /// The version readers see (0 until the first version is indexed, and after a delete).
    pub version: u64,
    /// The version being ingested, if any (kept after a failure, so a retry reuses it).
    pub pending_version: Option<u64>,
    /// SHA-256 (hex) of the version readers see; empty while there is none.
    pub content_sha256: String,
    /// Chunks of the version readers see.
    pub chunk_count: u32,
    /// Size of the latest upload.
    pub size_bytes: u64,
    /// Why the last ingestion failed, while the state is `failed`.
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A document as an upload (or an object arriving in the store) describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUpload {
    pub id: DocumentId,
    pub tenant: String,
    pub domain: String,
    pub title: String,
    pub object_key: String,
    pub size_bytes: u64,
}

/// What the ingest-worker should do with new content of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionDecision {
    /// The content is the indexed version's: nothing to do.
    Unchanged,
    /// Ingest this version (a new one, or the same pending one again after a redelivery/crash).
    Ingest { version: u64 },
}

/// Profiles with more dimensions than this are refused (the largest embedding models in use
/// have 4096).
pub const MAX_PROFILE_DIMS: usize = 4096;

/// The centre of mass of one indexed batch: what the embedder reports with the batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorProfile {
    /// Chunks in the batch (at least 1): the weight of `mean` in the document's mean.
    pub count: u32,
    /// The mean of the batch's chunk vectors: 1 to [`MAX_PROFILE_DIMS`] finite values.
    pub mean: Vec<f32>,
}

impl VectorProfile {
    /// Refuses what cannot be a batch's mean: no chunks, no or too many dimensions, a value
    /// that is NaN or infinite.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let invalid = |why: String| Err(CatalogError::InvalidArgument(why));
        if self.count == 0 {
            return invalid("a vector profile covers at least one chunk; count is 0".into());
        }
        if self.mean.is_empty() {
            return invalid("a vector profile's mean is empty".into());
        }
        if self.mean.len() > MAX_PROFILE_DIMS {
            return invalid(format!(
                "a vector profile's mean has {} dimensions; at most {MAX_PROFILE_DIMS} are kept",
                self.mean.len()
            ));
        }
        if let Some((i, v)) = self.mean.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return invalid(format!(
                "a vector profile's mean value {i} is {v}; every value must be finite"
            ));
        }
        Ok(())
    }
}

/// The centre of mass of a document's visible version, for corpus-drift detection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentProfile {
    pub id: DocumentId,
    pub domain: String,
    pub title: String,
    /// The visible version the profile is of ([`DocumentRecord::version`]).
    pub version: u64,
    /// Chunks the profile covers: the sum of its batches' counts (the version's chunk count
    /// when every batch was profiled).
    pub chunks: u64,
    /// The mean of the version's chunk vectors: its batches' means weighted by their counts.
    pub mean: Vec<f32>,
    /// When the version became visible (milliseconds since the Unix epoch), or, when that is
    /// not recorded, when its latest profiled batch was.
    pub indexed_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("document {id} not found")]
    NotFound { id: DocumentId },
    #[error("document {id} has no version {version}")]
    UnknownVersion { id: DocumentId, version: u64 },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("catalog storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("catalog storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt catalog data: {0}")]
    Corrupt(String),
    /// The database was written by a newer release of this crate.
    #[error("catalog schema version {found} is newer than the supported {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
    /// The blocking task that talks to the storage did not finish (runtime shutting down).
    #[error("catalog task failed: {0}")]
    Task(String),
    /// The catalog database cannot be reached (cluster implementations).
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
}

impl CatalogError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Storage(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            Self::Unavailable(_) | Self::Task(_) => true,
            _ => false,
        }
    }
}

impl From<CatalogError> for ServiceError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } | CatalogError::UnknownVersion { .. } => {
                ServiceError::not_found(e.to_string())
            }
            CatalogError::InvalidArgument(_) => ServiceError::invalid_argument(e.to_string()),
            e if e.is_transient() => ServiceError::unavailable("the catalog is unavailable"),
            e => ServiceError::internal(e),
        }
    }
}

/// The document registry. Object-safe: services hold an `Arc<dyn Catalog>`.
///
/// Versions are never reused: a new version is always above every version the document ever
/// had (so point ids from (document, version, chunk) never collide with an older content's).
/// Every method is safe to repeat (queue redeliveries), and several processes may use one
/// catalog at once.
#[async_trait]
pub trait Catalog: Send + Sync + fmt::Debug {
    /// Creates the record as `queued`, or marks an existing one `queued` again (a re-upload,
    /// also of a deleted document), keeping its versions. Title, object key and size are the
    /// upload's.
    async fn register_upload(&self, upload: NewUpload) -> Result<DocumentRecord, CatalogError>;

    /// Any record of the tenant, deleted ones included (check `state`).
    async fn get(
        &self,
        tenant: &str,
        id: DocumentId,
    ) -> Result<Option<DocumentRecord>, CatalogError>;

    /// Newest (by creation) first; `domain` None = all domains of the tenant. Deleted
    /// documents are not listed.
    async fn list(
        &self,
        tenant: &str,
        domain: Option<&str>,
    ) -> Result<Vec<DocumentRecord>, CatalogError>;

    /// Called by the ingest-worker with the content hash of the fetched object. Creates the
    /// record if missing (objects can arrive without an upload through the API). If there is no
    /// pending version and the hash equals the visible version's → `Unchanged` (state back to
    /// `indexed`). If it equals the pending version's hash → `Ingest` of that pending version
    /// (idempotent on redelivery). Otherwise allocates a new pending version above every
    /// earlier one. Sets state `processing` when ingesting. A `deleting`/`deleted` document
    /// comes back to life with a new version.
    async fn begin_version(
        &self,
        upload: NewUpload,
        content_sha256: &str,
    ) -> Result<VersionDecision, CatalogError>;

    /// The ingest-worker produced `chunk_count` chunks in `batch_count` batches for `version`.
    async fn set_chunking(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
        chunk_count: u32,
        batch_count: u32,
    ) -> Result<(), CatalogError>;

    /// The embedder indexed batch `batch_index` (< `batch_count`) of `version`. Idempotent.
    /// Returns true when, after this call, all `batch_count` batches of that version are
    /// recorded AND that version is still the pending one (then the caller retires older
    /// versions and calls `mark_indexed`). Recording a batch that was already recorded returns
    /// true again only while the version is complete and still pending — i.e. until
    /// `mark_indexed`: that is what lets a redelivery finish the job of an embedder that
    /// crashed between this call and `mark_indexed`; the follow-up steps are idempotent.
    /// Returns false for an incomplete, stale (superseded), deleted or unknown version.
    async fn record_batch_indexed(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
        batch_index: u32,
        batch_count: u32,
    ) -> Result<bool, CatalogError>;

    /// Whether `version` is superseded by a newer pending or indexed version (the embedder
    /// then skips its batches). Also true when the document is unknown, deleting or deleted.
    async fn is_stale(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
    ) -> Result<bool, CatalogError>;

    /// Makes `version` the one readers see: version = it, content hash and chunk count of it;
    /// if it is the pending version (the normal case), also state `indexed`, pending cleared,
    /// error cleared. If a newer version is already pending, that one stays pending. Repeating
    /// it, or a version older than the visible one, changes nothing; so does a document that
    /// is deleting or deleted.
    async fn mark_indexed(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
    ) -> Result<(), CatalogError>;

    /// State `failed` with the reason. The pending version stays, so a redelivery of the same
    /// content retries it. Does nothing to a deleting or deleted document.
    async fn mark_failed(
        &self,
        tenant: &str,
        id: DocumentId,
        reason: &str,
    ) -> Result<(), CatalogError>;

    /// State `deleting`; returns the record (None if there is no such document).
    async fn mark_deleting(
        &self,
        tenant: &str,
        id: DocumentId,
    ) -> Result<Option<DocumentRecord>, CatalogError>;

    /// A `deleting` document becomes `deleted` (no visible version, nothing pending). If it
    /// was uploaded again meanwhile (state no longer `deleting`), this does nothing.
    async fn mark_deleted(&self, tenant: &str, id: DocumentId) -> Result<(), CatalogError>;

    /// The version readers may see of each of `ids` (a tenant's documents): the indexed
    /// version, for documents that have one and are not being deleted. Documents without one
    /// are absent from the map. Searches keep only chunks of these versions, which makes a
    /// version switch (and a delete) atomic for readers.
    async fn visible_versions(
        &self,
        tenant: &str,
        ids: &[DocumentId],
    ) -> Result<BTreeMap<DocumentId, u64>, CatalogError>;

    /// Counts by state (every state, `as_str()` keys, zeros included) for a tenant.
    async fn counts(&self, tenant: &str) -> Result<BTreeMap<String, u64>, CatalogError>;

    /// The embedder's centre of mass of batch `batch_index` of `version` (see
    /// [`VectorProfile`]; refused as [`CatalogError::InvalidArgument`] if invalid, or if its
    /// dimensions differ from the version's other batches', or if the batch index is not below
    /// the version's batch count). Idempotent: keyed by (tenant, id, version, batch index), a
    /// redelivered batch overwrites its profile. Kept only while the version can still become
    /// (or is) the visible one; like [`Catalog::record_batch_indexed`], a batch of an unknown
    /// document or version, of a document deleting or deleted, or of a version older than the
    /// visible one is dropped without an error. `mark_indexed` drops the profiles of versions
    /// older than the one it makes visible, `mark_deleted` all of the document's.
    async fn record_batch_profile(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
        batch_index: u32,
        profile: &VectorProfile,
    ) -> Result<(), CatalogError>;

    /// The profile of each of the tenant's documents (of `domain`, if given) whose visible
    /// version (the one [`Catalog::visible_versions`] reports: indexed, not deleting or
    /// deleted) has at least one profiled batch, computed from that version's batches only;
    /// ordered by id. A pending version's batches count only once `mark_indexed` makes it
    /// visible.
    async fn document_profiles(
        &self,
        tenant: &str,
        domain: Option<&str>,
    ) -> Result<Vec<DocumentProfile>, CatalogError>;

    async fn health(&self) -> Result<(), CatalogError>;
}
