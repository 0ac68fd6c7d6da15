//! The documents-queue consumer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rag_backends::rag_catalog::{Catalog, NewUpload, VersionDecision};
use rag_backends::rag_object_store::{ObjectStore, StoredObject, TENANT_METADATA};
use rag_backends::rag_queue::{self as rag_queue, Delivery, Message, Outcome, Queue};
use rag_config::Settings;
use rag_core::ObjectKey;
use rag_core::fault::crash_point;
use rag_core::s3_event::{self, Notification};
use rag_proto::object_event::Kind;
use rag_proto::{ChunkBatch, DocumentRemoval, IndexJob, ObjectEvent, index_job};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::chunk::ChunkOptions;
use crate::extract::{Budget, ExtractError, Limits};
use crate::pipeline::{self, Chunking};

#[derive(Debug, Clone)]
pub struct Worker {
    documents: Arc<dyn Queue>,
    chunks: Arc<dyn Queue>,
    objects: Arc<dyn ObjectStore>,
    catalog: Arc<dyn Catalog>,
    default_tenant: String,
    chunking: Arc<Chunking>,
    chunks_per_batch: usize,
    max_document_bytes: u64,
    concurrency: usize,
    wait: Duration,
    limits: Limits,
    extract_timeout: Duration,
    /// Extractions running on blocking threads. A thread cannot be killed: one that overruns
    /// its deadline is abandoned (its document fails at once) but keeps its slot until it
    /// ends, so at most this many can ever run or hang at once. There are twice as many
    /// slots as messages handled at once, so a few stuck threads don't slow the worker;
    /// when every slot is held, a message waits for one up to the deadline and is then
    /// left for redelivery (the document is not at fault). Every reader checks the
    /// deadline as it goes, so a thread overruns only inside one third-party call, whose
    /// input the readers have already bounded (see `extract`).
    slots: Arc<Semaphore>,
}

impl Worker {
    pub fn new(settings: &Settings) -> Result<Self, rag_backends::BackendError> {
        Ok(Self {
            documents: rag_backends::documents_queue(settings)?,
            chunks: rag_backends::chunks_queue(settings)?,
            objects: rag_backends::object_store(settings)?,
            catalog: rag_backends::catalog(settings)?,
            default_tenant: settings.default_tenant.clone(),
            chunking: Arc::new(Chunking {
                options: ChunkOptions {
                    size: settings.ingest.chunk_size,
                    overlap: settings.ingest.chunk_overlap,
                },
                tokens: rag_backends::token_counter(settings)?,
            }),
            chunks_per_batch: settings.ingest.chunks_per_batch,
            max_document_bytes: settings.ingest.max_document_bytes,
            concurrency: settings.ingest.concurrency,
            wait: Duration::from_millis(settings.queues.wait_ms),
            limits: Limits {
                max_text_bytes: settings.ingest.max_extracted_bytes,
                timeout: Some(Duration::from_millis(settings.ingest.extract_timeout_ms)),
            },
            extract_timeout: Duration::from_millis(settings.ingest.extract_timeout_ms),
            slots: Arc::new(Semaphore::new(
                settings.ingest.concurrency.saturating_mul(2),
            )),
        })
    }

    /// What [`Worker::check`] can check.
    pub const DEPENDENCIES: [&'static str; 4] =
        ["object_store", "documents_queue", "chunks_queue", "catalog"];

    /// Whether `dependency` (one of [`Self::DEPENDENCIES`]) answers: for readiness.
    pub async fn check(&self, dependency: &str) -> Result<(), String> {
        match dependency {
            "object_store" => self.objects.health().await.map_err(|e| e.to_string()),
            "documents_queue" => self
                .documents
                .stats()
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            "chunks_queue" => self
                .chunks
                .stats()
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            "catalog" => self.catalog.health().await.map_err(|e| e.to_string()),
            other => Err(format!("no such dependency: {other}")),
        }
    }

    /// The document service, on this worker's backends.
    pub fn documents(&self) -> crate::Documents {
        crate::Documents::new(
            self.catalog.clone(),
            self.objects.clone(),
            self.chunks.clone(),
        )
    }

    /// Consumes the documents queue until `stop` is cancelled; messages in progress finish.
    pub async fn consume(self, stop: CancellationToken) {
        let queue = self.documents.clone();
        let (batch, wait) = (self.concurrency, self.wait);
        rag_queue::consume(queue, batch, wait, stop, |delivery| {
            let this = &self;
            async move { this.handle(&delivery).await }
        })
        .await;
    }

    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let events = match s3_event::decode(&delivery.body) {
            Ok(Notification::Test) => return Outcome::Done,
            Ok(Notification::Records(events)) => events,
            Err(e) => return Outcome::Poison(e.message),
        };
        for event in events {
            let outcome = match event.kind() {
                Kind::Created => self.created(&event).await,
                Kind::Removed => self.removed(&event).await,
                Kind::Unspecified => {
                    tracing::info!(event = %event.event_name, "ignoring an S3 event of another kind");
                    Outcome::Done
                }
            };
            if !matches!(outcome, Outcome::Done) {
                return outcome;
            }
        }
        Outcome::Done
    }

    async fn created(&self, event: &ObjectEvent) -> Outcome {
        let key = match ObjectKey::parse(&event.key, &self.default_tenant) {
            Ok(key) => key,
            Err(e) => return Outcome::Poison(e.message),
        };
        let object = match self.objects.get(&event.key).await {
            Ok(Some(object)) => object,
            // Deleted since the event was sent: its removal event follows.
            Ok(None) => return Outcome::Done,
            Err(e) => return Outcome::Retry(format!("object store: {e}")),
        };
        // The upload's trace continues here: the gateway wrote its context into the object's
        // metadata (an S3 event cannot carry it).
        let span = tracing::info_span!(
            "ingest",
            otel.kind = "consumer",
            key = %event.key,
            trace_id = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        rag_telemetry::trace::continue_trace(
            &span,
            rag_telemetry::trace::extract_map(&object.metadata),
        );
        self.ingest(event, key, object).instrument(span).await
    }

    /// Checks, parses and chunks a fetched object, and queues its chunks for the embedder.
    async fn ingest(&self, event: &ObjectEvent, key: ObjectKey, object: StoredObject) -> Outcome {
        let tenant = object
            .metadata
            .get(TENANT_METADATA)
            .cloned()
            .unwrap_or_else(|| key.tenant.clone());
        let key = ObjectKey { tenant, ..key };
        let upload = NewUpload {
            id: key.document_id,
            tenant: key.tenant.clone(),
            domain: key.domain.clone(),
            title: key.file_name.clone(),
            object_key: event.key.clone(),
            size_bytes: object.info.size,
        };
        if object.info.size > self.max_document_bytes {
            let reason = format!(
                "the document is larger than {} bytes",
                self.max_document_bytes
            );
            return self.fail(&key, reason).await;
        }
        let Ok(Ok(slot)) =
            tokio::time::timeout(self.extract_timeout, self.slots.clone().acquire_owned()).await
        else {
            tracing::warn!("every extraction slot is held by an overrunning extraction");
            return Outcome::Retry("no extraction slot free (extractions overran)".into());
        };
        let hash = hex::encode(Sha256::digest(&object.bytes));
        let version = match self.catalog.begin_version(upload, &hash).await {
            Ok(VersionDecision::Unchanged) => {
                tracing::info!(document = %key.document_id, "content unchanged; nothing to do");
                return Outcome::Done;
            }
            Ok(VersionDecision::Ingest { version }) => version,
            Err(e) => return Outcome::Retry(format!("catalog: {e}")),
        };
        crash_point("ingest.after_begin_version");
        let chunking = Arc::clone(&self.chunking);
        let object_key = event.key.clone();
        let parse_key = key.clone();
        // The same deadline for the readers (which give up at it) and for this task (which
        // gives up on the thread if a reader is stuck inside a third-party call).
        let budget = Budget::start(self.limits);
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            pipeline::prepare_within(
                &object.bytes,
                &parse_key,
                &object_key,
                version,
                &chunking,
                &budget,
            )
        });
        let prepared = match tokio::time::timeout(self.extract_timeout, task).await {
            Ok(Ok(Ok(prepared))) => prepared,
            Ok(Ok(Err(e))) => return self.fail(&key, e.to_string()).await,
            Ok(Err(e)) => return self.fail(&key, format!("the parser failed: {e}")).await,
            Err(_) => {
                tracing::warn!(
                    document = %key.document_id,
                    "extraction overran its deadline; its thread is abandoned and keeps its slot until it ends"
                );
                let reason = ExtractError::TimedOut(self.extract_timeout).to_string();
                return self.fail(&key, reason).await;
            }
        };
        let total = prepared.chunks.len();
        let batches: Vec<_> = prepared.chunks.chunks(self.chunks_per_batch).collect();
        let batch_count = u32::try_from(batches.len()).unwrap_or(u32::MAX);
        if let Err(e) = self
            .catalog
            .set_chunking(
                &key.tenant,
                key.document_id,
                version,
                u32::try_from(total).unwrap_or(u32::MAX),
                batch_count,
            )
            .await
        {
            return Outcome::Retry(format!("catalog: {e}"));
        }
        crash_point("ingest.after_set_chunking");
        let mut trace_context = HashMap::new();
        rag_telemetry::trace::inject_map(&mut trace_context);
        let messages = batches
            .iter()
            .enumerate()
            .map(|(i, chunks)| {
                let job = IndexJob {
                    job: Some(index_job::Job::Upsert(ChunkBatch {
                        document_id: key.document_id.to_string(),
                        version,
                        tenant: key.tenant.clone(),
                        domain: key.domain.clone(),
                        batch_index: u32::try_from(i).unwrap_or(u32::MAX),
                        batch_count,
                        total_chunks: u32::try_from(total).unwrap_or(u32::MAX),
                        chunks: chunks.iter().cloned().map(Into::into).collect(),
                        event_time_ms: event.event_time_ms,
                    })),
                    trace_context: trace_context.clone(),
                };
                Message {
                    body: job.encode_to_vec(),
                    attributes: BTreeMap::new(),
                }
            })
            .collect();
        if let Err(e) = self.chunks.send_batch(messages).await {
            return Outcome::Retry(format!("chunks queue: {e}"));
        }
        crash_point("ingest.after_send_chunks");
        tracing::info!(document = %key.document_id, version, chunks = total, kind = prepared.kind, "document chunked");
        Outcome::Done
    }

    /// Records why a document failed and dead-letters its event.
    async fn fail(&self, key: &ObjectKey, reason: String) -> Outcome {
        if let Err(e) = self
            .catalog
            .mark_failed(&key.tenant, key.document_id, &reason)
            .await
        {
            return Outcome::Retry(format!("catalog: {e}"));
        }
        rag_telemetry::metrics::metrics().document("failed");
        Outcome::Poison(reason)
    }

    #[tracing::instrument(skip_all, fields(key = %event.key))]
    async fn removed(&self, event: &ObjectEvent) -> Outcome {
        let key = match ObjectKey::parse(&event.key, &self.default_tenant) {
            Ok(key) => key,
            Err(e) => return Outcome::Poison(e.message),
        };
        // A newer object under the same key means this removal is old news.
        match self.objects.get(&event.key).await {
            Ok(Some(_)) => return Outcome::Done,
            Ok(None) => {}
            Err(e) => return Outcome::Retry(format!("object store: {e}")),
        }
        if let Err(e) = self
            .catalog
            .mark_deleting(&key.tenant, key.document_id)
            .await
        {
            return Outcome::Retry(format!("catalog: {e}"));
        }
        crash_point("ingest.after_mark_deleting");
        let mut trace_context = HashMap::new();
        rag_telemetry::trace::inject_map(&mut trace_context);
        let job = IndexJob {
            job: Some(index_job::Job::Remove(DocumentRemoval {
                document_id: key.document_id.to_string(),
                tenant: key.tenant.clone(),
                domain: key.domain.clone(),
            })),
            trace_context,
        };
        match self
            .chunks
            .send(Message {
                body: job.encode_to_vec(),
                attributes: BTreeMap::new(),
            })
            .await
        {
            Ok(_) => {
                crash_point("ingest.after_send_removal");
                Outcome::Done
            }
            Err(e) => Outcome::Retry(format!("chunks queue: {e}")),
        }
    }
}
