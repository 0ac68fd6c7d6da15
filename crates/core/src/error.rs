//! The one map from service errors to gRPC status codes and HTTP status codes.
//!
//! Library crates have their own `thiserror` enums and convert into [`ServiceError`] at the
//! edge of a service; the gRPC layer turns it into a `tonic::Status` (carrying the code in
//! the `rag-error-code` metadata so nothing is lost on the way), and the gateway turns a
//! `Status` back into a `ServiceError` and then into an HTTP status. Add a code here, and the
//! compiler shows every place that must learn it.

use std::fmt;

use http::StatusCode;
use tonic::Code;

const CODE_METADATA: &str = "rag-error-code";
const RETRY_AFTER_METADATA: &str = "retry-after";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid (HTTP 422).
    InvalidArgument,
    NotFound,
    /// The body or file is larger than allowed (HTTP 413).
    PayloadTooLarge,
    /// The file type is not accepted (HTTP 415).
    UnsupportedMediaType,
    /// A rate limit or quota was hit (HTTP 429).
    RateLimited,
    /// A dependency is down or the service is overloaded; try again later (HTTP 503).
    Unavailable,
    DeadlineExceeded,
    /// Authentication is missing or invalid (HTTP 401).
    Unauthenticated,
    /// The caller may not do this (HTTP 403).
    PermissionDenied,
    /// The request is valid, but the service is not configured to do it, e.g. a rerank
    /// asked of a retriever without a reranker (HTTP 400, as `google.rpc.Code` maps it).
    /// Retrying cannot help until an operator changes the configuration.
    FailedPrecondition,
    /// A bug or an unexpected failure (HTTP 500). The message is for logs, not for clients.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 11] = [
        Self::InvalidArgument,
        Self::NotFound,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::Unavailable,
        Self::DeadlineExceeded,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::FailedPrecondition,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::NotFound => "not_found",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::FailedPrecondition => "failed_precondition",
            Self::Internal => "internal",
        }
    }

    pub fn grpc_code(self) -> Code {
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::NotFound => Code::NotFound,
            Self::PayloadTooLarge => Code::OutOfRange,
            Self::UnsupportedMediaType => Code::InvalidArgument,
            Self::RateLimited => Code::ResourceExhausted,
            Self::Unavailable => Code::Unavailable,
            Self::DeadlineExceeded => Code::DeadlineExceeded,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::Internal => Code::Internal,
        }
    }

    pub fn http_status(self) -> StatusCode {
        match self {
            Self::InvalidArgument => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::FailedPrecondition => StatusCode::BAD_REQUEST,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn from_str(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The code for a status that carries no `rag-error-code` (e.g. from tonic itself).
    fn from_grpc(code: Code) -> Self {
        match code {
            Code::InvalidArgument => Self::InvalidArgument,
            Code::FailedPrecondition => Self::FailedPrecondition,
            Code::NotFound => Self::NotFound,
            Code::OutOfRange => Self::PayloadTooLarge,
            Code::ResourceExhausted => Self::RateLimited,
            Code::Unavailable | Code::Aborted | Code::Cancelled => Self::Unavailable,
            Code::DeadlineExceeded => Self::DeadlineExceeded,
            Code::Unauthenticated => Self::Unauthenticated,
            Code::PermissionDenied => Self::PermissionDenied,
            Code::Ok
            | Code::Unknown
            | Code::AlreadyExists
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss => Self::Internal,
        }
    }
}

/// An error as a service reports it to its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError {
    pub code: ErrorCode,
    /// Safe to show to the client (for `Internal`, a generic text; the cause is logged).
    pub message: String,
    /// The request field at fault, for `InvalidArgument`.
    pub field: Option<String>,
    /// Seconds after which a retry may succeed, for `RateLimited` and `Unavailable`.
    pub retry_after_secs: Option<u64>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid_argument(message).with_field(field)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::FailedPrecondition, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message).with_retry_after(1)
    }

    /// An unexpected failure: logs the cause and returns a message that reveals nothing.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<ServiceError> for tonic::Status {
    fn from(e: ServiceError) -> Self {
        let mut status = tonic::Status::new(e.code.grpc_code(), e.message);
        let md = status.metadata_mut();
        md.insert(
            CODE_METADATA,
            tonic::metadata::MetadataValue::from_static(e.code.as_str()),
        );
        if let Some(field) = e.field.and_then(|f| f.parse().ok()) {
            md.insert("rag-error-field", field);
        }
        if let Some(secs) = e.retry_after_secs {
            md.insert(RETRY_AFTER_METADATA, secs.into());
        }
        status
    }
}

impl From<tonic::Status> for ServiceError {
    fn from(status: tonic::Status) -> Self {
        let md = status.metadata();
        let text = |key: &str| md.get(key).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let code = text(CODE_METADATA)
            .and_then(|c| ErrorCode::from_str(&c))
            .unwrap_or_else(|| ErrorCode::from_grpc(status.code()));
        let message = match (code, status.code()) {
            // A transport failure between services: the peer is down or unreachable.
            (ErrorCode::Unavailable, Code::Unavailable) if text(CODE_METADATA).is_none() => {
                "a dependency is unavailable".to_owned()
            }
            (ErrorCode::Internal, _) => "internal error".to_owned(),
            _ => status.message().to_owned(),
        };
        Self {
            code,
            message,
            field: text("rag-error-field"),
            retry_after_secs: text(RETRY_AFTER_METADATA)
                .and_then(|s| s.parse().ok())
                .or((code == ErrorCode::Unavailable).then_some(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_a_trip_through_grpc() {
        for code in ErrorCode::ALL {
            let err = ServiceError::new(code, "boom")
                .with_field("question")
                .with_retry_after(7);
            let back = ServiceError::from(tonic::Status::from(err.clone()));
            assert_eq!(back.code, code);
            assert_eq!(back.field.as_deref(), Some("question"));
            assert_eq!(back.retry_after_secs, Some(7));
            if code != ErrorCode::Internal {
                assert_eq!(back.message, "boom");
            }
        }
    }

    #[test]
    fn bad_input_maps_to_4xx_and_never_500() {
        for code in [
            ErrorCode::InvalidArgument,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::RateLimited,
            ErrorCode::FailedPrecondition,
        ] {
            assert!(code.http_status().is_client_error(), "{code:?}");
        }
        assert_eq!(
            ErrorCode::InvalidArgument.http_status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn plain_transport_failures_read_as_unavailable() {
        let e = ServiceError::from(tonic::Status::unavailable("tcp connect error"));
        assert_eq!(e.code, ErrorCode::Unavailable);
        assert_eq!(e.message, "a dependency is unavailable");
        assert_eq!(e.retry_after_secs, Some(1));
        let e = ServiceError::from(tonic::Status::internal("secret detail"));
        assert_eq!(e.message, "internal error");
    }
}
