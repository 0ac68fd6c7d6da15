//! Validation of names that travel in keys, filters and URLs.

use crate::ServiceError;

/// Maximum length of a domain or tenant name.
pub const MAX_NAME_LEN: usize = 64;

/// A domain or tenant name: 1–64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
pub fn name(field: &str, value: &str) -> Result<(), ServiceError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && value.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid_field(
            field,
            format!("{field} must be 1-{MAX_NAME_LEN} characters of a-z, 0-9, '-' or '_'"),
        ))
    }
}

/// A file name as it may appear as the last segment of an object key.
pub fn file_name(field: &str, value: &str) -> Result<(), ServiceError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value != "."
        && value != ".."
        && !value.contains(['/', '\\', '\0'])
        && !value.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid_field(
            field,
            "file name must be 1-255 characters without '/', '\\' or control characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("domain", "hr").is_ok());
        assert!(name("domain", "eng-2_x").is_ok());
        for bad in ["", "HR", "-x", "a b", "a/b", &"x".repeat(65)] {
            let err = name("domain", bad).err();
            assert_eq!(
                err.and_then(|e| e.field).as_deref(),
                Some("domain"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn file_names() {
        assert!(file_name("file", "Leave Policy (2024).md").is_ok());
        for bad in ["", ".", "..", "a/b.md", "a\\b", "a\nb"] {
            assert!(file_name("file", bad).is_err(), "{bad:?}");
        }
    }
}
