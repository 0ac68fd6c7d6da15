//! The service: the document service and the documents-queue consumer, following the
//! current index generation.

use std::future::Future;
use std::sync::Arc;

use rag_backends::generation;
use rag_config::Settings;
use rag_grpc::Readiness;
use rag_proto::document_service_server::{DocumentService, DocumentServiceServer};
use rag_proto::{
    DeleteDocumentRequest, Document, GetDocumentRequest, ListDocumentsRequest,
    ListDocumentsResponse, RegisterUploadRequest,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::{Documents, Worker};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Backend(#[from] rag_backends::BackendError),
    #[error(transparent)]
    Grpc(#[from] rag_grpc::GrpcError),
}

/// Serves the document service on `listener` and consumes the documents queue until
/// `shutdown` resolves; both follow the current index generation (its catalog, chunk sizes
/// and chunks queue). Ready while the object store, both queues and the catalog answer.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), IngestError> {
    let readiness = Readiness::new("ingest-worker");
    let grace = std::time::Duration::from_millis(settings.shutdown_grace_ms);
    rag_grpc::with_stop(shutdown, |stop| async move {
        let following =
            rag_grpc::start_with_retries("ingest-worker", "catalog and queues", &stop, || {
                generation::follow(settings.clone(), |generation| async move {
                    Worker::new(&generation.settings)
                })
            });
        let Some(current) = following.await else {
            return Ok(());
        };
        let mut readiness = readiness;
        for dependency in Worker::DEPENDENCIES {
            let current = current.receiver();
            readiness = readiness.check(dependency, move || {
                let worker = current.borrow().1.clone();
                async move { worker.check(dependency).await }
            });
        }
        let documents = DocumentServiceServer::new(CurrentDocuments(current.receiver()));
        rag_grpc::serve_service_with_worker(listener, documents, readiness, stop, grace, |stop| {
            generation::run_per_generation(current.receiver(), stop, |current, stop| {
                current.1.clone().consume(stop)
            })
        })
        .await?;
        current.close().await;
        Ok(())
    })
    .await
}

/// The document service of the current index generation's worker.
#[derive(Debug, Clone)]
struct CurrentDocuments(watch::Receiver<Arc<(u64, Worker)>>);

impl CurrentDocuments {
    fn get(&self) -> Documents {
        self.0.borrow().1.documents()
    }
}

#[tonic::async_trait]
impl DocumentService for CurrentDocuments {
    async fn register_upload(
        &self,
        request: Request<RegisterUploadRequest>,
    ) -> Result<Response<Document>, Status> {
        self.get().register_upload(request).await
    }

    async fn get_document(
        &self,
        request: Request<GetDocumentRequest>,
    ) -> Result<Response<Document>, Status> {
        self.get().get_document(request).await
    }

    async fn list_documents(
        &self,
        request: Request<ListDocumentsRequest>,
    ) -> Result<Response<ListDocumentsResponse>, Status> {
        self.get().list_documents(request).await
    }

    async fn delete_document(
        &self,
        request: Request<DeleteDocumentRequest>,
    ) -> Result<Response<Document>, Status> {
        self.get().delete_document(request).await
    }
}
