//! The one map from errors to HTTP responses:
//! `{"error": {"code", "message", "field"?, "trace_id"?}}`,
//! with `Retry-After` where a retry may help, and `WWW-Authenticate` on a 401. A 500 says
//! nothing about its cause.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rag_core::{ErrorCode, ServiceError};

use crate::body::{ErrorBody, ErrorDetail};

#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        if status.code() == tonic::Code::Unavailable {
            tracing::warn!(message = status.message(), "a dependency is unavailable");
        }
        Self(ServiceError::from(status))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.code == ErrorCode::Internal {
            tracing::error!(message = %e.message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: e.code.as_str().to_owned(),
                message: e.message,
                field: e.field,
                // The id to quote when reporting the error; the trace and the logs are found by it.
                trace_id: rag_telemetry::trace::current_trace_id(),
            },
        };
        let mut response = (e.code.http_status(), Json(body)).into_response();
        if let Some(secs) = e.retry_after_secs
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if e.code == ErrorCode::Unauthenticated {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rag\""),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
