//! The chunks-queue consumer: embeds chunk batches and writes both indexes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use rag_backends::rag_cache::Cache;
use rag_backends::rag_catalog::{Catalog, VectorProfile};
use rag_backends::rag_embeddings::EmbeddingModel;
use rag_backends::rag_keyword_index::KeywordIndex;
use rag_backends::rag_queue::{self as rag_queue, Delivery, Outcome, Queue};
use rag_backends::rag_vector_store::{VectorPoint, VectorStore};
use rag_config::Settings;
use rag_core::fault::crash_point;
use rag_core::{ChunkRecord, DocumentId};
use rag_proto::{ChunkBatch, IndexJob, index_job};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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

impl Indexer {
    /// What [`Indexer::check`] can check.
    pub const DEPENDENCIES: [&'static str; 4] =
        ["chunks_queue", "catalog", "vector_store", "keyword_index"];

    /// Whether `dependency` (one of [`Self::DEPENDENCIES`]) answers: for readiness.
    pub async fn check(&self, dependency: &str) -> Result<(), String> {
        match dependency {
            "chunks_queue" => self
                .queue
                .stats()
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            "catalog" => self.catalog.health().await.map_err(|e| e.to_string()),
            "vector_store" => self.vectors.health().await.map_err(|e| e.to_string()),
            "keyword_index" => self.keywords.health().await.map_err(|e| e.to_string()),
            other => Err(format!("no such dependency: {other}")),
        }
    }
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
            model: rag_backends::cached_embedding_model(settings, model)?,
            receive_batch: settings.embedder.receive_batch,
            wait: Duration::from_millis(settings.queues.wait_ms),
        })
    }

    /// Consumes the chunks queue until `stop` is cancelled; jobs in progress finish. The jobs
    /// of one receive are indexed together: one model call, one write to each index.
    pub async fn consume(self, stop: CancellationToken) {
        let queue = self.queue.clone();
        let (batch, wait) = (self.receive_batch, self.wait);
        rag_queue::consume_batches(queue, batch, wait, stop, |deliveries| {
            let this = &self;
            async move { this.handle_all(deliveries).await }
        })
        .await;
    }

    /// One outcome per delivery, in order.
    async fn handle_all(&self, deliveries: Vec<Delivery>) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Done; deliveries.len()];
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        for (i, delivery) in deliveries.iter().enumerate() {
            match decode(delivery) {
                Ok(Job::Upsert(job)) => upserts.push((i, job)),
                Ok(Job::Remove(removal)) => removals.push((i, removal)),
                Err(reason) => outcomes[i] = Outcome::Poison(reason),
            }
        }
        // Upserts first, so that a removal received with them wins.
        for (i, outcome) in self.upsert_all(upserts).await {
            outcomes[i] = outcome;
        }
        for (i, removal) in removals {
            let span = job_span("remove", removal.id, &removal.trace_context);
            outcomes[i] = self.remove(removal).instrument(span).await;
        }
        outcomes
    }

    /// Indexes the batches of any number of documents: the live ones (not superseded) are
    /// embedded in one call and written to each index once; then each batch is recorded, and
    /// a version whose batches are all in becomes the one readers see.
    #[tracing::instrument(skip_all, fields(jobs = jobs.len()))]
    async fn upsert_all(&self, jobs: Vec<(usize, Upsert)>) -> Vec<(usize, Outcome)> {
        let mut results = Vec::with_capacity(jobs.len());
        let mut live = Vec::with_capacity(jobs.len());
        for (i, job) in jobs {
            match self
                .catalog
                .is_stale(&job.tenant, job.id, job.version)
                .await
            {
                Ok(true) => {
                    tracing::info!(document = %job.id, version = job.version, "skipping a batch of a superseded version");
                    results.push((i, Outcome::Done));
                }
                Ok(false) => live.push((i, job)),
                Err(e) => results.push((i, Outcome::Retry(format!("catalog: {e}")))),
            }
        }
        if live.is_empty() {
            return results;
        }
        // One embedding call for the chunks of several uploads: in the first one's trace,
        // linked to the others'.
        let span = tracing::info_span!(
            "index_chunks",
            jobs = live.len(),
            trace_id = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        if let Some((_, first)) = live.first() {
            rag_telemetry::trace::continue_trace(
                &span,
                rag_telemetry::trace::extract_map(&first.trace_context),
            );
        }
        for (_, job) in live.iter().skip(1) {
            rag_telemetry::trace::link(
                &span,
                &rag_telemetry::trace::extract_map(&job.trace_context),
            );
        }
        let profiles = match self.write_indexes(&live).instrument(span).await {
            Ok(profiles) => profiles,
            Err(reason) => {
                results.extend(
                    live.iter()
                        .map(|(i, _)| (*i, Outcome::Retry(reason.clone()))),
                );
                return results;
            }
        };
        let mut changed = BTreeSet::new();
        for ((i, job), profile) in live.iter().zip(&profiles) {
            let span = job_span("record_batch", job.id, &job.trace_context);
            let outcome = match self.record(job, profile.as_ref()).instrument(span).await {
                Ok(published) => {
                    if published {
                        changed.insert((job.tenant.as_str(), job.domain.as_str()));
                    }
                    Outcome::Done
                }
                Err(reason) => Outcome::Retry(reason),
            };
            results.push((*i, outcome));
        }
        for (tenant, domain) in changed {
            self.bump_epochs(tenant, domain).await;
        }
        results
    }

    /// Embeds the chunks of `jobs` and writes them to both indexes (invisible to readers
    /// until their version is marked indexed). Returns each job's mean vector (for corpus
    /// drift; `None` for a batch without chunks).
    async fn write_indexes(
        &self,
        jobs: &[(usize, Upsert)],
    ) -> Result<Vec<Option<VectorProfile>>, String> {
        let chunks: Vec<ChunkRecord> = jobs
            .iter()
            .flat_map(|(_, job)| job.chunks.iter().cloned())
            .collect();
        let texts: Vec<String> = chunks.iter().map(ChunkRecord::embedding_text).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        let metrics = rag_telemetry::metrics::metrics();
        for group in texts.chunks(TEXTS_PER_MODEL_CALL) {
            let started = std::time::Instant::now();
            vectors.extend(
                self.model
                    .embed(group)
                    .await
                    .map_err(|e| format!("embedding: {e}"))?,
            );
            metrics
                .embedding_duration
                .observe(started.elapsed().as_secs_f64());
            metrics.embedding_batch_size.observe(group.len() as f64);
        }
        if vectors.len() != chunks.len() {
            return Err(format!(
                "embedding: {} vectors for {} chunks",
                vectors.len(),
                chunks.len()
            ));
        }
        let mut profiles = Vec::with_capacity(jobs.len());
        let mut rest = vectors.as_slice();
        for (_, job) in jobs {
            let (mine, others) = rest.split_at(job.chunks.len().min(rest.len()));
            profiles.push(mean_profile(mine));
            rest = others;
        }
        let points = chunks
            .iter()
            .cloned()
            .zip(vectors)
            .map(|(chunk, vector)| VectorPoint { vector, chunk })
            .collect();
        crash_point("embedder.after_embed");
        self.vectors
            .upsert(points)
            .await
            .map_err(|e| format!("vector store: {e}"))?;
        crash_point("embedder.after_vector_upsert");
        self.keywords
            .upsert(chunks)
            .await
            .map_err(|e| format!("keyword index: {e}"))?;
        crash_point("embedder.after_keyword_upsert");
        metrics.chunks_indexed.inc_by(texts.len() as u64);
        tracing::debug!(chunks = texts.len(), "chunks written to both indexes");
        Ok(profiles)
    }

    /// Records that `job`'s batch is in both indexes, with its mean vector; publishes its
    /// version when it was the last one. Returns whether a version was published.
    async fn record(&self, job: &Upsert, profile: Option<&VectorProfile>) -> Result<bool, String> {
        if let Some(profile) = profile {
            self.catalog
                .record_batch_profile(&job.tenant, job.id, job.version, job.batch_index, profile)
                .await
                .map_err(|e| format!("catalog: {e}"))?;
        }
        let complete = self
            .catalog
            .record_batch_indexed(
                &job.tenant,
                job.id,
                job.version,
                job.batch_index,
                job.batch_count,
            )
            .await
            .map_err(|e| format!("catalog: {e}"))?;
        crash_point("embedder.after_record_batch");
        if complete {
            self.publish_version(&job.tenant, job.id, job.version)
                .await?;
            let metrics = rag_telemetry::metrics::metrics();
            metrics.document("indexed");
            if job.event_time_ms > 0 {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                let lag_ms = now_ms.saturating_sub(job.event_time_ms).max(0);
                metrics.ingestion_lag.observe(lag_ms as f64 / 1000.0);
            }
        }
        Ok(complete)
    }

    /// Makes `version` the one readers see and retires the older ones.
    async fn publish_version(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
    ) -> Result<(), String> {
        // Version 1 has no older versions to retire (versions start at 1 and are never
        // reused): skipping the deletes saves two index commits per new document.
        if version > 1 {
            self.delete_chunks(
                tenant,
                id,
                Some(version),
                "embedder.after_retire_old_vectors",
            )
            .await?;
            crash_point("embedder.after_retire_old_versions");
        }
        self.catalog
            .mark_indexed(tenant, id, version)
            .await
            .map_err(|e| format!("catalog: {e}"))?;
        crash_point("embedder.after_mark_indexed");
        tracing::info!(document = %id, version, "document indexed");
        Ok(())
    }

    async fn remove(&self, removal: Removal) -> Outcome {
        match self.remove_from_indexes(&removal).await {
            Ok(()) => {
                self.bump_epochs(&removal.tenant, &removal.domain).await;
                tracing::info!(document = %removal.id, "document removed from both indexes");
                Outcome::Done
            }
            Err(reason) => Outcome::Retry(reason),
        }
    }

    /// Deletes the document's chunks from both indexes, all of them or all but
    /// `keep_version`'s; `between` names the crash point after the vector store.
    async fn delete_chunks(
        &self,
        tenant: &str,
        id: DocumentId,
        keep_version: Option<u64>,
        between: &str,
    ) -> Result<(), String> {
        self.vectors
            .delete_document(tenant, id, keep_version)
            .await
            .map_err(|e| format!("vector store: {e}"))?;
        crash_point(between);
        self.keywords
            .delete_document(tenant, id, keep_version)
            .await
            .map_err(|e| format!("keyword index: {e}"))
    }

    async fn remove_from_indexes(&self, removal: &Removal) -> Result<(), String> {
        let (tenant, id) = (removal.tenant.as_str(), removal.id);
        self.delete_chunks(tenant, id, None, "embedder.after_remove_vectors")
            .await?;
        crash_point("embedder.after_remove_keywords");
        self.catalog
            .mark_deleted(tenant, id)
            .await
            .map_err(|e| format!("catalog: {e}"))?;
        crash_point("embedder.after_mark_deleted");
        Ok(())
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

/// The mean of a batch's chunk vectors, weighted by their number.
fn mean_profile(vectors: &[Vec<f32>]) -> Option<VectorProfile> {
    let first = vectors.first()?;
    let mut mean = vec![0.0f64; first.len()];
    for vector in vectors {
        for (sum, x) in mean.iter_mut().zip(vector) {
            *sum += f64::from(*x);
        }
    }
    let count = u32::try_from(vectors.len()).ok()?;
    Some(VectorProfile {
        count,
        mean: mean
            .into_iter()
            .map(|sum| (sum / f64::from(count)) as f32)
            .collect(),
    })
}

/// Texts per model call: bounds one call's memory (10 jobs of 64 chunks fit in one).
const TEXTS_PER_MODEL_CALL: usize = 1024;

/// A chunk batch, checked.
#[derive(Debug)]
struct Upsert {
    id: DocumentId,
    version: u64,
    tenant: String,
    domain: String,
    batch_index: u32,
    batch_count: u32,
    chunks: Vec<ChunkRecord>,
    /// When the object was created (its S3 event), in ms since the epoch; 0 unknown.
    event_time_ms: i64,
    /// The trace of the upload that caused it.
    trace_context: HashMap<String, String>,
}

#[derive(Debug)]
struct Removal {
    id: DocumentId,
    tenant: String,
    domain: String,
    trace_context: HashMap<String, String>,
}

/// A span of work for one job (`name`), in the trace of the upload (or delete) that caused it.
fn job_span(
    name: &'static str,
    id: DocumentId,
    trace_context: &HashMap<String, String>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "job",
        otel.name = name,
        otel.kind = "consumer",
        document = %id,
        trace_id = tracing::field::Empty,
        request_id = tracing::field::Empty,
    );
    rag_telemetry::trace::continue_trace(&span, rag_telemetry::trace::extract_map(trace_context));
    span
}

#[derive(Debug)]
enum Job {
    Upsert(Upsert),
    Remove(Removal),
}

/// The job of a delivery, or why it can never be done.
fn decode(delivery: &Delivery) -> Result<Job, String> {
    let job =
        IndexJob::decode(delivery.body.as_slice()).map_err(|e| format!("not an index job: {e}"))?;
    let trace_context = job.trace_context;
    match job.job {
        Some(index_job::Job::Upsert(batch)) => check_batch(batch, trace_context).map(Job::Upsert),
        Some(index_job::Job::Remove(removal)) => {
            let id = parse_id(&removal.document_id)?;
            Ok(Job::Remove(Removal {
                id,
                tenant: removal.tenant,
                domain: removal.domain,
                trace_context,
            }))
        }
        None => Err("index job is empty".into()),
    }
}

fn parse_id(id: &str) -> Result<DocumentId, String> {
    id.parse()
        .map_err(|_| format!("invalid document id {id:?}"))
}

fn check_batch(
    batch: ChunkBatch,
    trace_context: HashMap<String, String>,
) -> Result<Upsert, String> {
    let id = parse_id(&batch.document_id)?;
    let chunks: Vec<ChunkRecord> = batch
        .chunks
        .into_iter()
        .map(ChunkRecord::try_from)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if chunks
        .iter()
        .any(|c| c.document_id != id || c.version != batch.version || !c.has_consistent_id())
    {
        return Err("a chunk does not belong to its batch".into());
    }
    Ok(Upsert {
        id,
        version: batch.version,
        tenant: batch.tenant,
        domain: batch.domain,
        batch_index: batch.batch_index,
        batch_count: batch.batch_count,
        chunks,
        event_time_ms: batch.event_time_ms,
        trace_context,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_profile_is_the_mean_of_its_vectors() {
        let profile = mean_profile(&[vec![1.0, 0.0], vec![0.0, 1.0], vec![2.0, 2.0]]).unwrap();
        assert_eq!(profile.count, 3);
        assert_eq!(profile.mean, vec![1.0, 1.0]);
        assert!(mean_profile(&[]).is_none());
    }
}
