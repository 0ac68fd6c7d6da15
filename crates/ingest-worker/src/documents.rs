//! The document service: register uploads, report status, list, delete.

use std::sync::Arc;

use prost::Message as _;
use rag_backends::rag_catalog::{Catalog, DocumentRecord, DocumentState, NewUpload};
use rag_backends::rag_object_store::ObjectStore;
use rag_backends::rag_queue::{Message, Queue};
use rag_core::{DocumentId, ObjectKey, ServiceError, validate};
use rag_proto::document_service_server::DocumentService;
use rag_proto::{
    DeleteDocumentRequest, Document, DocumentRemoval, GetDocumentRequest, IndexJob,
    ListDocumentsRequest, ListDocumentsResponse, RegisterUploadRequest, index_job,
};
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct Documents {
    catalog: Arc<dyn Catalog>,
    objects: Arc<dyn ObjectStore>,
    chunks: Arc<dyn Queue>,
}

impl Documents {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        objects: Arc<dyn ObjectStore>,
        chunks: Arc<dyn Queue>,
    ) -> Self {
        Self {
            catalog,
            objects,
            chunks,
        }
    }
}

fn parse_id(id: &str) -> Result<DocumentId, ServiceError> {
    id.parse()
        .map_err(|_| ServiceError::invalid_field("id", "document id must be a UUID"))
}

pub fn to_proto(record: DocumentRecord) -> Document {
    let state = match record.state {
        DocumentState::Queued => rag_proto::DocumentState::Queued,
        DocumentState::Processing => rag_proto::DocumentState::Processing,
        DocumentState::Indexed => rag_proto::DocumentState::Indexed,
        DocumentState::Failed => rag_proto::DocumentState::Failed,
        DocumentState::Deleting => rag_proto::DocumentState::Deleting,
        DocumentState::Deleted => rag_proto::DocumentState::Deleted,
    };
    Document {
        id: record.id.to_string(),
        tenant: record.tenant,
        domain: record.domain,
        title: record.title,
        object_key: record.object_key,
        state: state.into(),
        version: record.version,
        content_sha256: record.content_sha256,
        chunk_count: record.chunk_count,
        error: record.error.unwrap_or_default(),
        created_at_ms: record.created_at_ms,
        updated_at_ms: record.updated_at_ms,
        size_bytes: record.size_bytes,
    }
}

impl Documents {
    async fn register(&self, r: RegisterUploadRequest) -> Result<Document, ServiceError> {
        validate::name("tenant", &r.tenant)?;
        validate::name("domain", &r.domain)?;
        validate::file_name("file_name", &r.file_name)?;
        let key = ObjectKey::for_upload(&r.tenant, &r.domain, &r.file_name);
        let record = self
            .catalog
            .register_upload(NewUpload {
                id: key.document_id,
                tenant: r.tenant,
                domain: r.domain,
                title: r.file_name,
                object_key: key.to_key(),
                size_bytes: r.size_bytes,
            })
            .await
            .map_err(ServiceError::from)?;
        Ok(to_proto(record))
    }

    async fn get(&self, r: GetDocumentRequest) -> Result<Document, ServiceError> {
        validate::name("tenant", &r.tenant)?;
        let id = parse_id(&r.id)?;
        match self
            .catalog
            .get(&r.tenant, id)
            .await
            .map_err(ServiceError::from)?
        {
            Some(record) if record.state != DocumentState::Deleted => Ok(to_proto(record)),
            _ => Err(ServiceError::not_found(format!("document {id} not found"))),
        }
    }

    async fn list(&self, r: ListDocumentsRequest) -> Result<ListDocumentsResponse, ServiceError> {
        validate::name("tenant", &r.tenant)?;
        let domain = (!r.domain.is_empty()).then_some(r.domain.as_str());
        if let Some(domain) = domain {
            validate::name("domain", domain)?;
        }
        let records = self
            .catalog
            .list(&r.tenant, domain)
            .await
            .map_err(ServiceError::from)?;
        Ok(ListDocumentsResponse {
            documents: records.into_iter().map(to_proto).collect(),
        })
    }

    /// Marks the document deleting, deletes its object, and queues its removal from both
    /// indexes. The object's `ObjectRemoved` event queues the same removal again, which is
    /// harmless; queuing it here as well means a delete never depends on that event arriving.
    async fn delete(&self, r: DeleteDocumentRequest) -> Result<Document, ServiceError> {
        validate::name("tenant", &r.tenant)?;
        let id = parse_id(&r.id)?;
        let gone = || ServiceError::not_found(format!("document {id} not found"));
        match self
            .catalog
            .get(&r.tenant, id)
            .await
            .map_err(ServiceError::from)?
        {
            None => return Err(gone()),
            Some(record) if record.state == DocumentState::Deleted => return Err(gone()),
            // Already on its way out: deleting again changes nothing.
            Some(record) if record.state == DocumentState::Deleting => return Ok(to_proto(record)),
            Some(_) => {}
        }
        let record = match self
            .catalog
            .mark_deleting(&r.tenant, id)
            .await
            .map_err(ServiceError::from)?
        {
            Some(record) => record,
            None => return Err(gone()),
        };
        self.objects
            .delete(&record.object_key)
            .await
            .map_err(ServiceError::from)?;
        let job = IndexJob {
            job: Some(index_job::Job::Remove(DocumentRemoval {
                document_id: id.to_string(),
                tenant: record.tenant.clone(),
                domain: record.domain.clone(),
            })),
            trace_context: {
                let mut context = std::collections::HashMap::new();
                rag_telemetry::trace::inject_map(&mut context);
                context
            },
        };
        self.chunks
            .send(Message {
                body: job.encode_to_vec(),
                attributes: Default::default(),
            })
            .await
            .map_err(ServiceError::from)?;
        Ok(to_proto(record))
    }
}

#[tonic::async_trait]
impl DocumentService for Documents {
    async fn register_upload(
        &self,
        request: Request<RegisterUploadRequest>,
    ) -> Result<Response<Document>, Status> {
        Ok(Response::new(self.register(request.into_inner()).await?))
    }

    async fn get_document(
        &self,
        request: Request<GetDocumentRequest>,
    ) -> Result<Response<Document>, Status> {
        Ok(Response::new(self.get(request.into_inner()).await?))
    }

    async fn list_documents(
        &self,
        request: Request<ListDocumentsRequest>,
    ) -> Result<Response<ListDocumentsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }

    async fn delete_document(
        &self,
        request: Request<DeleteDocumentRequest>,
    ) -> Result<Response<Document>, Status> {
        Ok(Response::new(self.delete(request.into_inner()).await?))
    }
}
