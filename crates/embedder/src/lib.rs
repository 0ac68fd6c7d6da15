//! The embedder: embeddings as a gRPC service (query time) and the consumer of the chunks
//! queue (ingest time), where it embeds chunk batches and writes both indexes.
//!
//! Owns the index writes and their idempotence: points are upserted by deterministic id, a
//! version becomes visible only when all its batches are in, and older versions are retired
//! after that. Must not parse documents or answer questions.

mod indexer;

use std::future::Future;
use std::sync::Arc;

use rag_backends::rag_embeddings::EmbeddingModel;
use rag_config::Settings;
use rag_core::ServiceError;
use rag_proto::embedder_service_server::{EmbedderService, EmbedderServiceServer};
use rag_proto::{EmbedRequest, EmbedResponse, Embedding};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

pub use indexer::Indexer;

/// Longest text the service embeds, in characters (the model truncates at its token limit).
pub const MAX_TEXT_CHARS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum EmbedderError {
    #[error(transparent)]
    Backend(#[from] rag_backends::BackendError),
    #[error(transparent)]
    Grpc(#[from] rag_grpc::GrpcError),
}

/// Serves embeddings on `listener` and consumes the chunks queue until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EmbedderError> {
    let model = rag_backends::embedding_model(&settings).await?;
    let indexer = Indexer::new(&settings, model.clone())?;
    let service = Embedder {
        model,
        max_texts: settings.embedder.max_texts_per_request,
    };
    let service = EmbedderServiceServer::new(service);
    rag_grpc::serve_service_with_worker(listener, service, shutdown, |stop| indexer.consume(stop))
        .await?;
    Ok(())
}

#[derive(Debug)]
pub struct Embedder {
    model: Arc<dyn EmbeddingModel>,
    max_texts: usize,
}

impl Embedder {
    async fn embed(&self, request: EmbedRequest) -> Result<EmbedResponse, ServiceError> {
        if request.texts.is_empty() {
            return Err(ServiceError::invalid_field(
                "texts",
                "at least one text is required",
            ));
        }
        if request.texts.len() > self.max_texts {
            return Err(ServiceError::invalid_field(
                "texts",
                format!("at most {} texts per request", self.max_texts),
            ));
        }
        if request
            .texts
            .iter()
            .any(|t| t.chars().count() > MAX_TEXT_CHARS)
        {
            return Err(ServiceError::invalid_field(
                "texts",
                format!("a text is longer than {MAX_TEXT_CHARS} characters"),
            ));
        }
        let vectors = self
            .model
            .embed(&request.texts)
            .await
            .map_err(ServiceError::from)?;
        Ok(EmbedResponse {
            embeddings: vectors
                .into_iter()
                .map(|values| Embedding { values })
                .collect(),
            model: self.model.model_id().to_owned(),
            dimensions: self.model.dimensions() as u32,
        })
    }
}

#[tonic::async_trait]
impl EmbedderService for Embedder {
    #[tracing::instrument(skip_all, fields(texts = request.get_ref().texts.len()))]
    async fn embed(
        &self,
        request: Request<EmbedRequest>,
    ) -> Result<Response<EmbedResponse>, Status> {
        Ok(Response::new(
            Embedder::embed(self, request.into_inner()).await?,
        ))
    }
}
