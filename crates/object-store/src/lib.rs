//! Object storage for uploaded documents, behind one trait.
//!
//! The embedded default ([`LocalObjectStore`]) keeps objects in a directory and, like an S3
//! bucket with event notifications configured, writes an S3 `ObjectCreated` / `ObjectRemoved`
//! notification to the documents queue after every put and delete. The cluster
//! implementation (S3) lets S3 itself do that. Callers never know which one they have.
//! Must not parse documents or know about ingestion.

use std::collections::BTreeMap;

mod local;
mod s3;

pub use local::LocalObjectStore;
pub use s3::S3ObjectStore;

/// The longest key S3 accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Keys are relative paths of non-empty segments, never `.` or `..`, without NUL, at most
/// [`MAX_KEY_BYTES`]: the same rule for every store, so a key that works locally works in S3
/// and cannot escape a directory.
pub(crate) fn check_key(key: &str) -> Result<(), ObjectStoreError> {
    let ok = key.len() <= MAX_KEY_BYTES
        && !key.contains('\0')
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(ObjectStoreError::InvalidKey(key.to_owned()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub info: ObjectInfo,
    pub bytes: Vec<u8>,
    /// User metadata (S3 `x-amz-meta-*`), e.g. the tenant of an upload.
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    #[error("object key {0:?} is not allowed")]
    InvalidKey(String),
    #[error("object store I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("object metadata is corrupt: {0}")]
    CorruptMetadata(String),
    #[error("the object was stored but its event could not be queued: {0}")]
    Notification(String),
    #[error("object store unavailable: {0}")]
    Unavailable(String),
}

/// What a caller of a service learns: a bad key is its own fault (422); anything else is
/// the store's, logged here with its cause and reported as unavailable without it.
impl From<ObjectStoreError> for rag_core::ServiceError {
    fn from(e: ObjectStoreError) -> Self {
        match e {
            ObjectStoreError::InvalidKey(_) => {
                rag_core::ServiceError::invalid_argument(e.to_string())
            }
            e => {
                tracing::warn!(error = %e, "object store failure");
                rag_core::ServiceError::unavailable("the object store is unavailable")
            }
        }
    }
}

#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    fn bucket(&self) -> &str;
    /// Writes (or overwrites) an object; its `ObjectCreated` event follows.
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectInfo, ObjectStoreError>;
    /// `None` when there is no such object.
    async fn get(&self, key: &str) -> Result<Option<StoredObject>, ObjectStoreError>;
    /// Deletes an object if it exists; an `ObjectRemoved` event follows when it did (S3 may
    /// send one even when it did not: consumers treat a removal of nothing as done).
    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError>;
    /// Objects whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, ObjectStoreError>;
    async fn health(&self) -> Result<(), ObjectStoreError>;
}

/// The metadata key holding the uploader's tenant.
pub const TENANT_METADATA: &str = "tenant";
