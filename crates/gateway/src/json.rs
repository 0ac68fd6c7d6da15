//! A JSON body extractor whose rejections are 422s (413 when too large, 415 when not JSON)
//! that name the offending field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use rag_core::{ErrorCode, ServiceError};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ServiceError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON (Content-Type: application/json)",
            )
            .into());
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| match rejection {
                BytesRejection::FailedToBufferBody(_) => ApiError(ServiceError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body is too large",
                )),
                other => ApiError(ServiceError::invalid_argument(other.body_text())),
            })?;
        let deserializer = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(deserializer) {
            Ok(value) => Ok(Self(value)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let message = inner.to_string();
                // A missing field is reported at its parent; name the field itself.
                let field = missing_field(&message)
                    .map(str::to_owned)
                    .unwrap_or_else(|| path.clone());
                let mut error =
                    ServiceError::invalid_argument(format!("invalid request body: {message}"));
                if field != "." && !field.is_empty() {
                    error = error.with_field(field);
                }
                Err(error.into())
            }
        }
    }
}

/// "missing field `question` at line 1 column 2" → "question".
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_fields() {
        assert_eq!(
            missing_field("missing field `question` at line 1 column 9"),
            Some("question")
        );
        assert_eq!(missing_field("invalid type"), None);
    }
}
