//! Deterministic identifiers.
//!
//! A document's id derives from where it came from (tenant, domain, file name), so a
//! re-upload of the same file is a new version of the same document. A point's id derives
//! from (document id, version, chunk index), so a redelivered message overwrites instead of
//! duplicating.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of all UUIDv5 ids of this project (a fixed random UUID; never change it).
const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_52a4_9d0e_4c57_a1e3_2b8f_04d9_c7e1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentId(Uuid);

impl DocumentId {
    /// The id of the document uploaded as `file_name` into `domain` by `tenant`.
    pub fn for_source(tenant: &str, domain: &str, file_name: &str) -> Self {
        let name = format!("document\0{tenant}\0{domain}\0{file_name}");
        Self(Uuid::new_v5(&NAMESPACE, name.as_bytes()))
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for DocumentId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// The id of chunk `chunk_index` of `version` of `document`, in both indexes.
pub fn point_id(document: DocumentId, version: u64, chunk_index: u32) -> Uuid {
    let mut name = Vec::with_capacity(16 + 8 + 4);
    name.extend_from_slice(document.0.as_bytes());
    name.extend_from_slice(&version.to_be_bytes());
    name.extend_from_slice(&chunk_index.to_be_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_id_depends_on_every_part_of_the_source() {
        let a = DocumentId::for_source("t", "hr", "leave.md");
        assert_eq!(a, DocumentId::for_source("t", "hr", "leave.md"));
        assert_ne!(a, DocumentId::for_source("t2", "hr", "leave.md"));
        assert_ne!(a, DocumentId::for_source("t", "legal", "leave.md"));
        assert_ne!(a, DocumentId::for_source("t", "hr", "leave.txt"));
        // The separator keeps ("a", "bc") and ("ab", "c") apart.
        assert_ne!(
            DocumentId::for_source("t", "a", "bc"),
            DocumentId::for_source("t", "ab", "c")
        );
    }

    #[test]
    fn point_id_is_stable_and_distinct() {
        let d = DocumentId::for_source("t", "hr", "leave.md");
        assert_eq!(point_id(d, 1, 0), point_id(d, 1, 0));
        assert_ne!(point_id(d, 1, 0), point_id(d, 2, 0));
        assert_ne!(point_id(d, 1, 0), point_id(d, 1, 1));
    }

    #[test]
    fn document_id_round_trips_through_text() {
        let d = DocumentId::for_source("t", "hr", "leave.md");
        assert_eq!(d.to_string().parse::<DocumentId>().ok(), Some(d));
        assert!("not-a-uuid".parse::<DocumentId>().is_err());
    }
}
