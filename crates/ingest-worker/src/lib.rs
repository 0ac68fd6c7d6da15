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
    let documents = DocumentServiceServer::new(worker.documents());
    rag_grpc::serve_service_with_worker(listener, documents, shutdown, |stop| worker.consume(stop))
        .await?;
    Ok(())
}
