use std::path::PathBuf;

use rag_core::ServiceError;

/// Why embedding (or loading a model) failed.
///
/// Messages of the underlying libraries (candle, tokenizers, I/O) are kept as text so the
/// error is `Clone` and shows everything in one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddingError {
    /// A file the model needs is not on disk.
    #[error(
        "model file {} is missing; run `make models` (scripts/fetch-model.sh) to fetch the weights, or set RAG_MODEL_DIR",
        path.display()
    )]
    ModelFilesMissing { path: PathBuf },

    /// The model files are there but could not be read or do not describe the expected model.
    #[error("failed to load the model from {}: {message}", path.display())]
    ModelLoad { path: PathBuf, message: String },

    /// The tokenizer could not be configured or failed on an input.
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),

    /// The forward pass failed (or its worker thread died).
    #[error("embedding inference failed: {0}")]
    Inference(String),

    /// The request itself is not acceptable, e.g. too many texts in one call.
    #[error("invalid embedding input: {0}")]
    InvalidInput(String),

    /// A remote model cannot be reached, or keeps refusing (throttling) after the retries.
    #[error("embedding model unavailable: {0}")]
    Unavailable(String),
}

impl From<EmbeddingError> for ServiceError {
    /// Invalid input is the caller's fault; missing or broken model files make the service
    /// unable to embed until an operator acts (logged here: the message names server paths,
    /// so the client gets a generic one); the rest are internal failures.
    fn from(err: EmbeddingError) -> Self {
        match err {
            EmbeddingError::InvalidInput(_) => ServiceError::invalid_argument(err.to_string()),
            EmbeddingError::ModelFilesMissing { .. } | EmbeddingError::ModelLoad { .. } => {
                tracing::error!(error = %err, "embedding model unavailable");
                ServiceError::unavailable("the embedding model is not available")
            }
            EmbeddingError::Unavailable(_) => {
                tracing::warn!(error = %err, "embedding model unavailable");
                ServiceError::unavailable("the embedding model is not available")
            }
            EmbeddingError::Tokenizer(_) | EmbeddingError::Inference(_) => {
                ServiceError::internal(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rag_core::ErrorCode;

    use super::*;

    #[test]
    fn missing_files_tell_how_to_fetch_them() {
        let err = EmbeddingError::ModelFilesMissing {
            path: PathBuf::from("/m/model.safetensors"),
        };
        let text = err.to_string();
        assert!(text.contains("/m/model.safetensors"), "{text}");
        assert!(text.contains("make models"), "{text}");
    }

    #[test]
    fn maps_to_service_error_codes() {
        let invalid: ServiceError = EmbeddingError::InvalidInput("x".into()).into();
        assert_eq!(invalid.code, ErrorCode::InvalidArgument);
        let missing: ServiceError = EmbeddingError::ModelFilesMissing {
            path: PathBuf::from("m"),
        }
        .into();
        assert_eq!(missing.code, ErrorCode::Unavailable);
        let inference: ServiceError = EmbeddingError::Inference("boom".into()).into();
        assert_eq!(inference.code, ErrorCode::Internal);
    }
}
