//! What every store shares about points: the payload fields the filters use, and how a
//! point to write is checked and its chunk turned into the flat JSON payload.

use rag_core::ChunkRecord;

use uuid::Uuid;

use crate::{VectorMatch, VectorPoint, VectorStoreError};

/// Payload fields (the `ChunkRecord` field names) used in filters.
pub(crate) const FIELD_TENANT: &str = "tenant";
pub(crate) const FIELD_DOMAIN: &str = "domain";
pub(crate) const FIELD_DOCUMENT_ID: &str = "document_id";
pub(crate) const FIELD_VERSION: &str = "version";
pub(crate) const FIELD_CHUNK_INDEX: &str = "chunk_index";

/// A query or point vector of the store's size, with finite components.
pub(crate) fn check_vector(vector: &[f32], dimensions: usize) -> Result<(), VectorStoreError> {
    if vector.len() != dimensions {
        return Err(VectorStoreError::InvalidInput(format!(
            "vector has {} dimensions, the store expects {dimensions}",
            vector.len()
        )));
    }
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(VectorStoreError::InvalidInput(
            "vector has a non-finite component".into(),
        ));
    }
    Ok(())
}

/// A point that passed the checks: its chunk (whose `id` is the point id), its vector, and
/// the chunk as the payload object.
pub(crate) struct CheckedPoint {
    pub chunk: ChunkRecord,
    pub vector: Vec<f32>,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// Checks `point` for a store of `dimensions` and builds its payload.
pub(crate) fn check_point(
    point: VectorPoint,
    dimensions: usize,
) -> Result<CheckedPoint, VectorStoreError> {
    let VectorPoint { vector, chunk } = point;
    check_vector(&vector, dimensions)?;
    if i64::try_from(chunk.version).is_err() {
        return Err(VectorStoreError::InvalidInput(format!(
            "chunk {} has version {}, beyond the largest storable version",
            chunk.id, chunk.version
        )));
    }
    let payload = match serde_json::to_value(&chunk) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => {
            return Err(VectorStoreError::InvalidInput(
                "chunk does not serialise to a JSON object".into(),
            ));
        }
        Err(e) => {
            return Err(VectorStoreError::InvalidInput(format!(
                "chunk cannot be serialised: {e}"
            )));
        }
    };
    Ok(CheckedPoint {
        chunk,
        vector,
        payload,
    })
}

/// The payload fields [`crate::VectorStore::search_ids`] reads.
pub(crate) const ID_FIELDS: [&str; 3] = [FIELD_DOCUMENT_ID, FIELD_VERSION, FIELD_CHUNK_INDEX];

/// A match from a point's id and its `document_id`, `version` and `chunk_index` payload
/// values (as JSON); `None` when one is missing or malformed.
pub(crate) fn match_from_fields(
    id: Uuid,
    field: impl Fn(&str) -> Option<serde_json::Value>,
    score: f32,
) -> Option<VectorMatch> {
    Some(VectorMatch {
        id,
        document_id: field(FIELD_DOCUMENT_ID)?.as_str()?.parse().ok()?,
        version: field(FIELD_VERSION)?.as_u64()?,
        chunk_index: u32::try_from(field(FIELD_CHUNK_INDEX)?.as_u64()?).ok()?,
        score,
    })
}
