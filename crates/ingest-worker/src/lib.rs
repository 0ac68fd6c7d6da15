//! The ingest-worker: consumes S3-style object events from the documents queue, fetches each
//! object, extracts, cleans and chunks its text, and sends the chunks to the embedder through
//! the chunks queue. It also serves the document service (status, list, delete).
//!
//! Owns the document lifecycle up to "chunks queued": content hashing (an unchanged object is
//! not re-processed), versions, failures with their reasons, and removals. Must not embed or
//! write the indexes (the embedder does).

pub mod chunk;
mod documents;
pub mod extract;
pub mod normalize;
pub mod pipeline;
mod worker;

use std::future::Future;

use rag_config::Settings;
use rag_proto::document_service_server::DocumentServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use documents::Documents;
pub use worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Backend(#[from] rag_backends::BackendError),
    #[error(transparent)]
    Grpc(#[from] rag_grpc::GrpcError),
}

/// Serves the document service on `listener` and consumes the documents queue until
/// `shutdown` resolves.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), IngestError> {
    let worker = Worker::new(&settings)?;
    let documents = Documents::new(&settings)?;
    let (reporter, health) = rag_grpc::health();
    reporter
        .set_serving::<DocumentServiceServer<Documents>>()
        .await;

    let stop = CancellationToken::new();
    let consumer = tokio::spawn(worker.consume(stop.clone()));
    tracing::info!(addr = ?listener.local_addr().ok(), "ingest-worker listening");
    let routes =
        tonic::service::Routes::new(DocumentServiceServer::new(documents)).add_service(health);
    let served = rag_grpc::serve(listener, routes, shutdown).await;
    stop.cancel();
    if let Err(e) = consumer.await {
        tracing::error!(error = %e, "documents consumer ended abnormally");
    }
    served?;
    Ok(())
}
