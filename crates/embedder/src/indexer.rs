//! The chunks-queue consumer: embeds chunk batches and writes both indexes.

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rag_backends::rag_cache::Cache;
use rag_backends::rag_catalog::Catalog;
use rag_backends::rag_embeddings::EmbeddingModel;
use rag_backends::rag_keyword_index::KeywordIndex;
use rag_backends::rag_queue::{self as rag_queue, Delivery, Outcome, Queue};
use rag_backends::rag_vector_store::{VectorPoint, VectorStore};
use rag_config::Settings;
use rag_core::{ChunkRecord, DocumentId};
use rag_proto::{ChunkBatch, DocumentRemoval, IndexJob, index_job};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Indexer {
    queue: Arc<dyn Queue>,
    catalog: Arc<dyn Catalog>,
    vectors: Arc<dyn VectorStore>,
    keywords: Arc<dyn KeywordIndex>,
    cache: Arc<dyn Cache>,
    model: Arc<dyn EmbeddingModel>,
    receive_batch: usize,
    wait: Duration,
}

/// The cache epoch scopes that a change to `domain` of `tenant` invalidates.
pub fn epoch_scopes(tenant: &str, domain: &str) -> [String; 2] {
    [format!("{tenant}/{domain}"), format!("{tenant}/*")]
}

impl Indexer {
    pub fn new(
        settings: &Settings,
        model: Arc<dyn EmbeddingModel>,
    ) -> Result<Self, rag_backends::BackendError> {
        Ok(Self {
            queue: rag_backends::chunks_queue(settings)?,
            catalog: rag_backends::catalog(settings)?,
            vectors: rag_backends::vector_store(settings, model.dimensions())?,
            keywords: rag_backends::keyword_index(settings)?,
            cache: rag_backends::cache(settings)?,
            model,
            receive_batch: settings.embedder.receive_batch,
            wait: Duration::from_millis(settings.queues.wait_ms),
        })
    }

    /// Consumes the chunks queue until `stop` is cancelled; jobs in progress finish.
    pub async fn consume(self, stop: CancellationToken) {
        let queue = self.queue.clone();
        let (batch, wait) = (self.receive_batch, self.wait);
        rag_queue::consume(queue, batch, wait, stop, |delivery| {
            let this = &self;
            async move { this.handle(&delivery).await }
        })
        .await;
    }

    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let job = match IndexJob::decode(delivery.body.as_slice()) {
            Ok(job) => job,
            Err(e) => return Outcome::Poison(format!("not an index job: {e}")),
        };
        match job.job {
            Some(index_job::Job::Upsert(batch)) => self.upsert(batch).await,
            Some(index_job::Job::Remove(removal)) => self.remove(removal).await,
            None => Outcome::Poison("index job is empty".into()),
        }
    }

    #[tracing::instrument(skip_all, fields(document = %batch.document_id, version = batch.version, batch = batch.batch_index))]
    async fn upsert(&self, batch: ChunkBatch) -> Outcome {
        let Ok(id) = batch.document_id.parse::<DocumentId>() else {
            return Outcome::Poison(format!("invalid document id {:?}", batch.document_id));
        };
        let chunks: Vec<ChunkRecord> = match batch
            .chunks
            .into_iter()
            .map(ChunkRecord::try_from)
            .collect()
        {
            Ok(chunks) => chunks,
            Err(e) => return Outcome::Poison(e.to_string()),
        };
        if chunks
            .iter()
            .any(|c| c.document_id != id || c.version != batch.version || !c.has_consistent_id())
        {
            return Outcome::Poison("a chunk does not belong to its batch".into());
        }
        match self
            .catalog
            .is_stale(&batch.tenant, id, batch.version)
            .await
        {
            Ok(true) => {
                tracing::info!("skipping a batch of a superseded version");
                return Outcome::Done;
            }
            Ok(false) => {}
            Err(e) => return Outcome::Retry(format!("catalog: {e}")),
        }
        let texts: Vec<String> = chunks.iter().map(embedding_text).collect();
        let vectors = match self.model.embed(&texts).await {
            Ok(v) => v,
            Err(e) => return Outcome::Retry(format!("embedding: {e}")),
        };
        let points = chunks
            .iter()
            .cloned()
            .zip(vectors)
            .map(|(chunk, vector)| VectorPoint { vector, chunk })
            .collect();
        if let Err(e) = self.vectors.upsert(points).await {
            return Outcome::Retry(format!("vector store: {e}"));
        }
        if let Err(e) = self.keywords.upsert(chunks).await {
            return Outcome::Retry(format!("keyword index: {e}"));
        }
        let complete = match self
            .catalog
            .record_batch_indexed(
                &batch.tenant,
                id,
                batch.version,
                batch.batch_index,
                batch.batch_count,
            )
            .await
        {
            Ok(complete) => complete,
            Err(e) => return Outcome::Retry(format!("catalog: {e}")),
        };
        if complete {
            return self
                .publish_version(&batch.tenant, &batch.domain, id, batch.version)
                .await;
        }
        Outcome::Done
    }

    /// Makes `version` the one readers see and retires the older ones.
    async fn publish_version(
        &self,
        tenant: &str,
        domain: &str,
        id: DocumentId,
        version: u64,
    ) -> Outcome {
        // Version 1 has no older versions to retire (versions start at 1 and are never
        // reused): skipping the deletes saves two index commits per new document.
        if version > 1 {
            if let Err(e) = self
                .vectors
                .delete_document(tenant, id, Some(version))
                .await
            {
                return Outcome::Retry(format!("vector store: {e}"));
            }
            if let Err(e) = self
                .keywords
                .delete_document(tenant, id, Some(version))
                .await
            {
                return Outcome::Retry(format!("keyword index: {e}"));
            }
        }
        if let Err(e) = self.catalog.mark_indexed(tenant, id, version).await {
            return Outcome::Retry(format!("catalog: {e}"));
        }
        self.bump_epochs(tenant, domain).await;
        tracing::info!(document = %id, version, "document indexed");
        Outcome::Done
    }

    #[tracing::instrument(skip_all, fields(document = %removal.document_id))]
    async fn remove(&self, removal: DocumentRemoval) -> Outcome {
        let Ok(id) = removal.document_id.parse::<DocumentId>() else {
            return Outcome::Poison(format!("invalid document id {:?}", removal.document_id));
        };
        if let Err(e) = self
            .vectors
            .delete_document(&removal.tenant, id, None)
            .await
        {
            return Outcome::Retry(format!("vector store: {e}"));
        }
        if let Err(e) = self
            .keywords
            .delete_document(&removal.tenant, id, None)
            .await
        {
            return Outcome::Retry(format!("keyword index: {e}"));
        }
        if let Err(e) = self.catalog.mark_deleted(&removal.tenant, id).await {
            return Outcome::Retry(format!("catalog: {e}"));
        }
        self.bump_epochs(&removal.tenant, &removal.domain).await;
        tracing::info!(document = %id, "document removed from both indexes");
        Outcome::Done
    }

    async fn bump_epochs(&self, tenant: &str, domain: &str) {
        for scope in epoch_scopes(tenant, domain) {
            if let Err(e) = self.cache.bump_epoch(&scope).await {
                // The cache refuses to serve without a readable epoch, so this cannot make it stale.
                tracing::warn!(%scope, error = %e, "could not bump the cache epoch");
            }
        }
    }
}

/// What the model sees of a chunk: its title and section give context to short chunks.
fn embedding_text(chunk: &ChunkRecord) -> String {
    let mut text =
        String::with_capacity(chunk.title.len() + chunk.section.len() + chunk.text.len() + 4);
    text.push_str(&chunk.title);
    if !chunk.section.is_empty() && chunk.section != chunk.title {
        text.push_str(" — ");
        text.push_str(&chunk.section);
    }
    text.push('\n');
    text.push_str(&chunk.text);
    text
}
