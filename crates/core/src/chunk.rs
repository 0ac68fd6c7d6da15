//! The chunk record: what both indexes store for every point, and what retrieval returns.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{DocumentId, point_id};

/// One chunk of one version of one document, with everything a citation needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    /// `point_id(document_id, version, chunk_index)`.
    pub id: Uuid,
    pub document_id: DocumentId,
    pub version: u64,
    pub chunk_index: u32,
    pub text: String,
    /// The document's title (its file name when it has no better one).
    pub title: String,
    pub domain: String,
    pub tenant: String,
    /// Nearest heading above the chunk; empty when none.
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub page: Option<u32>,
    /// Character offsets of the chunk in the document's cleaned text.
    pub char_start: u32,
    pub char_end: u32,
    pub object_key: String,
}

impl ChunkRecord {
    /// Checks that `id` is the deterministic point id of this chunk.
    pub fn has_consistent_id(&self) -> bool {
        self.id == point_id(self.document_id, self.version, self.chunk_index)
    }

    /// What is embedded for this chunk: [`embedding_prefix`] and the text.
    pub fn embedding_text(&self) -> String {
        let mut text = embedding_prefix(&self.title, &self.section);
        text.push_str(&self.text);
        text
    }
}

/// The context embedded in front of a chunk's text: the document title, then ` — ` and the
/// section when there is one other than the title, then a line break. Chunkers count it
/// against the model's input limit, so it must stay the one definition of that prefix.
pub fn embedding_prefix(title: &str, section: &str) -> String {
    let mut prefix = String::with_capacity(title.len() + section.len() + 6);
    prefix.push_str(title);
    if !section.is_empty() && section != title {
        prefix.push_str(" — ");
        prefix.push_str(section);
    }
    prefix.push('\n');
    prefix
}

/// What a search may see: always one tenant, optionally one domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchFilter {
    pub tenant: String,
    pub domain: Option<String>,
}

impl SearchFilter {
    pub fn new(tenant: impl Into<String>, domain: Option<String>) -> Self {
        Self {
            tenant: tenant.into(),
            domain: domain.filter(|d| !d.is_empty()),
        }
    }

    pub fn matches(&self, chunk: &ChunkRecord) -> bool {
        chunk.tenant == self.tenant && self.domain.as_ref().is_none_or(|d| *d == chunk.domain)
    }
}

impl From<ChunkRecord> for rag_proto::Chunk {
    fn from(c: ChunkRecord) -> Self {
        Self {
            id: c.id.to_string(),
            document_id: c.document_id.to_string(),
            version: c.version,
            chunk_index: c.chunk_index,
            text: c.text,
            title: c.title,
            domain: c.domain,
            tenant: c.tenant,
            section: c.section,
            page: c.page,
            char_start: c.char_start,
            char_end: c.char_end,
            object_key: c.object_key,
        }
    }
}

impl TryFrom<rag_proto::Chunk> for ChunkRecord {
    type Error = crate::ServiceError;

    fn try_from(c: rag_proto::Chunk) -> Result<Self, Self::Error> {
        let bad = |what: &str| {
            crate::ServiceError::invalid_argument(format!("chunk has an invalid {what}"))
        };
        Ok(Self {
            id: c.id.parse().map_err(|_| bad("id"))?,
            document_id: c.document_id.parse().map_err(|_| bad("document_id"))?,
            version: c.version,
            chunk_index: c.chunk_index,
            text: c.text,
            title: c.title,
            domain: c.domain,
            tenant: c.tenant,
            section: c.section,
            page: c.page,
            char_start: c.char_start,
            char_end: c.char_end,
            object_key: c.object_key,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample_chunk(index: u32) -> ChunkRecord {
        let document_id = DocumentId::for_source("acme", "hr", "leave.md");
        ChunkRecord {
            id: point_id(document_id, 1, index),
            document_id,
            version: 1,
            chunk_index: index,
            text: format!("chunk {index}"),
            title: "leave.md".into(),
            domain: "hr".into(),
            tenant: "acme".into(),
            section: "Annual leave".into(),
            page: None,
            char_start: 0,
            char_end: 7,
            object_key: "uploads/hr/x/leave.md".into(),
        }
    }

    #[test]
    fn the_embedding_prefix_names_title_and_section_once() {
        let mut chunk = sample_chunk(0);
        assert_eq!(chunk.embedding_text(), "leave.md — Annual leave\nchunk 0");
        chunk.section = "leave.md".into();
        assert_eq!(chunk.embedding_text(), "leave.md\nchunk 0");
        assert_eq!(embedding_prefix("Handbook", ""), "Handbook\n");
    }

    #[test]
    fn chunk_round_trips_through_proto() {
        let chunk = sample_chunk(3);
        let back = ChunkRecord::try_from(rag_proto::Chunk::from(chunk.clone())).ok();
        assert_eq!(back, Some(chunk.clone()));
        assert!(chunk.has_consistent_id());
    }

    #[test]
    fn filter_scopes_by_tenant_and_domain() {
        let chunk = sample_chunk(0);
        assert!(SearchFilter::new("acme", None).matches(&chunk));
        assert!(SearchFilter::new("acme", Some("hr".into())).matches(&chunk));
        assert!(SearchFilter::new("acme", Some(String::new())).matches(&chunk));
        assert!(!SearchFilter::new("acme", Some("legal".into())).matches(&chunk));
        assert!(!SearchFilter::new("other", None).matches(&chunk));
    }
}
