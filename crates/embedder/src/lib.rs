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
use rag_backends::{EmbeddingModels, generation};
use rag_config::Settings;
use rag_core::ServiceError;
use rag_grpc::Readiness;
use rag_proto::embedder_service_server::{EmbedderService, EmbedderServiceServer};
use rag_proto::{EmbedRequest, EmbedResponse, Embedding};
use tokio::net::TcpListener;
use tokio::sync::watch;
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

/// Serves embeddings on `listener` and consumes the chunks queue until `shutdown` resolves;
/// both follow the current index generation (its model, its indexes, its chunks queue).
/// Ready while the chunks queue, the catalog and both indexes answer.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), EmbedderError> {
    let readiness = Readiness::new("embedder");
    let grace = std::time::Duration::from_millis(settings.shutdown_grace_ms);
    rag_grpc::with_stop(shutdown, |stop| async move {
        let models = EmbeddingModels::default();
        let following =
            rag_grpc::start_with_retries("embedder", "model and indexes", &stop, || {
                let models = models.clone();
                generation::follow(settings.clone(), move |generation| {
                    let models = models.clone();
                    async move {
                        let model = models.get(&generation.settings).await?;
                        let indexer = Indexer::new(&generation.settings, model.clone())?;
                        Ok::<_, rag_backends::BackendError>(Current { model, indexer })
                    }
                })
            });
        let Some(current) = following.await else {
            return Ok(());
        };
        let mut readiness = readiness;
        for dependency in Indexer::DEPENDENCIES {
            let current = current.receiver();
            readiness = readiness.check(dependency, move || {
                let indexer = current.borrow().1.indexer.clone();
                async move { indexer.check(dependency).await }
            });
        }
        let service = Embedder {
            root: settings.clone(),
            models,
            current: current.receiver(),
            max_texts: settings.embedder.max_texts_per_request,
        };
        let service = EmbedderServiceServer::new(service);
        rag_grpc::serve_service_with_worker(listener, service, readiness, stop, grace, |stop| {
            generation::run_per_generation(current.receiver(), stop, |current, stop| {
                current.1.indexer.clone().consume(stop)
            })
        })
        .await?;
        // The indexes are closed when this returns: another process may open them next.
        current.close().await;
        Ok(())
    })
    .await
}

/// What the embedder uses for the current index generation.
#[derive(Debug)]
struct Current {
    model: Arc<dyn EmbeddingModel>,
    indexer: Indexer,
}

#[derive(Debug)]
pub struct Embedder {
    root: Settings,
    models: EmbeddingModels,
    current: watch::Receiver<Arc<(u64, Current)>>,
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
        let model = self.model(request.generation).await?;
        let vectors = model
            .embed(&request.texts)
            .await
            .map_err(ServiceError::from)?;
        Ok(EmbedResponse {
            embeddings: vectors
                .into_iter()
                .map(|values| Embedding { values })
                .collect(),
            model: model.model_id().to_owned(),
            dimensions: model.dimensions() as u32,
        })
    }

    /// The model of index generation `id` (the current one's when unset).
    async fn model(&self, id: Option<u64>) -> Result<Arc<dyn EmbeddingModel>, ServiceError> {
        let (current, model) = {
            let current = self.current.borrow();
            (current.0, current.1.model.clone())
        };
        match id {
            None => Ok(model),
            Some(id) if id == current => Ok(model),
            Some(id) => {
                let root = self.root.clone();
                let opened = tokio::task::spawn_blocking(move || generation::open(&root, id))
                    .await
                    .map_err(ServiceError::internal)?;
                let generation = opened.map_err(|e| {
                    tracing::debug!(error = %e, "an unknown index generation was asked for");
                    ServiceError::invalid_field("generation", format!("no index generation {id}"))
                })?;
                Ok(self.models.get(&generation.settings).await?)
            }
        }
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
