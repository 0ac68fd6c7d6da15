//! The object-key layout of uploaded documents:
//! `uploads/<tenant>/<domain>/<document id>/<file name>`.
//!
//! The tenant is part of the key because an S3 `ObjectRemoved` event carries nothing but the
//! key: the worker must learn whose document went from the key alone (and IAM policies can
//! scope a tenant to its prefix). Keys in any other layout (say, `handbook/hr/leave.md`
//! synced by hand) are still accepted: they belong to the default tenant, the domain is the
//! second-to-last segment and the id derives from (tenant, domain, file name), exactly as
//! for an upload of that file.

use crate::ids::DocumentId;
use crate::{ServiceError, validate};

const UPLOADS_PREFIX: &str = "uploads/";
/// Domain given to keys with a single segment.
pub const FALLBACK_DOMAIN: &str = "general";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectKey {
    pub tenant: String,
    pub domain: String,
    pub document_id: DocumentId,
    pub file_name: String,
}

impl ObjectKey {
    /// The key of `file_name` uploaded into `domain` by `tenant`.
    pub fn for_upload(tenant: &str, domain: &str, file_name: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            domain: domain.to_owned(),
            document_id: DocumentId::for_source(tenant, domain, file_name),
            file_name: file_name.to_owned(),
        }
    }

    /// Where the object lives in the store.
    pub fn to_key(&self) -> String {
        format!(
            "{UPLOADS_PREFIX}{}/{}/{}/{}",
            self.tenant, self.domain, self.document_id, self.file_name
        )
    }

    /// Reads a key written by [`ObjectKey::to_key`], or any other `…/<domain>/<file>` key as
    /// belonging to `default_tenant`.
    pub fn parse(key: &str, default_tenant: &str) -> Result<Self, ServiceError> {
        let invalid =
            || ServiceError::invalid_argument(format!("object key {key:?} is not a document key"));
        if let Some(rest) = key.strip_prefix(UPLOADS_PREFIX) {
            let mut parts = rest.splitn(4, '/');
            let (Some(tenant), Some(domain), Some(id), Some(file_name)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(invalid());
            };
            validate::name("tenant", tenant).map_err(|_| invalid())?;
            validate::name("domain", domain).map_err(|_| invalid())?;
            validate::file_name("file_name", file_name).map_err(|_| invalid())?;
            let document_id = id.parse().map_err(|_| invalid())?;
            return Ok(Self {
                tenant: tenant.to_owned(),
                domain: domain.to_owned(),
                document_id,
                file_name: file_name.to_owned(),
            });
        }
        let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
        let (domain, file_name) = match segments.as_slice() {
            [] => return Err(invalid()),
            [file] => (FALLBACK_DOMAIN, *file),
            [.., domain, file] => (*domain, *file),
        };
        validate::name("domain", domain).map_err(|_| invalid())?;
        validate::file_name("file_name", file_name).map_err(|_| invalid())?;
        Ok(Self::for_upload(default_tenant, domain, file_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_keys_round_trip() {
        let k = ObjectKey::for_upload("acme", "hr", "Leave policy.md");
        let key = k.to_key();
        assert!(key.starts_with("uploads/acme/hr/"));
        assert!(key.ends_with("/Leave policy.md"));
        assert_eq!(ObjectKey::parse(&key, "whoever").ok(), Some(k));
    }

    #[test]
    fn other_layouts_derive_the_same_id_as_an_upload() {
        let k = ObjectKey::parse("documents/hr/leave.md", "acme").ok();
        assert_eq!(k, Some(ObjectKey::for_upload("acme", "hr", "leave.md")));
        let k = ObjectKey::parse("leave.md", "acme").ok();
        assert_eq!(k.map(|k| k.domain), Some(FALLBACK_DOMAIN.to_owned()));
    }

    #[test]
    fn rejects_malformed_keys() {
        for bad in [
            "",
            "uploads/t/hr",
            "uploads/t/hr/not-a-uuid/x.md",
            "uploads/t/HR/x/y",
            "docs/Bad Domain/x.md",
        ] {
            assert!(ObjectKey::parse(bad, "acme").is_err(), "{bad:?}");
        }
    }
}
