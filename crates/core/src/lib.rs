//! Domain types shared by every service of llmops-rag-pipeline.
//!
//! Owns: identifiers (documents, points), the chunk record stored in both indexes, the
//! object-key layout, the S3 event notification format, and the one map from service
//! errors to gRPC status codes. Must not own I/O: no network, no disk.

pub mod chunk;
pub mod error;
pub mod fault;
pub mod ids;
pub mod media;
pub mod object_key;
pub mod s3_event;
pub mod validate;

pub use chunk::{ChunkRecord, SearchFilter};
pub use error::{ErrorCode, ServiceError};
pub use ids::{DocumentId, point_id};
pub use object_key::ObjectKey;

/// The tenant used when none is configured (the embedded profile has one tenant).
pub const DEFAULT_TENANT: &str = "default";

/// Milliseconds since the Unix epoch, for timestamps in records and messages.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
