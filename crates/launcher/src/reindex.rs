//! Re-indexing: everything in the object store goes again through the ingest-worker and the
//! embedder (the same code, run here) into a new index generation, built beside the one
//! readers use, which becomes current only when it is complete.
//!
//! The build takes the configured embedding model and chunk sizes: that is how a new model
//! or a new chunking setting reaches the index. Uploads and deletions keep flowing into the
//! current generation meanwhile; two catch-up passes carry them over: one before the switch
//! (objects changed since the build listed the store, documents whose object is gone), and
//! one right after it, into the live documents queue, for what the old generation's writers
//! took in the seconds before they followed the switch. Both are cheap, because an object
//! whose content the catalog already has does no work.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rag_backends::generation::{self, Manifest};
use rag_backends::rag_catalog::{Catalog, DocumentState};
use rag_backends::rag_object_store::{ObjectInfo, ObjectStore};
use rag_backends::rag_queue::{Message, Queue};
use rag_config::Settings;
use rag_core::s3_event;
use rag_core::{ObjectKey, now_ms};
use rag_proto::ObjectEvent;
use rag_proto::object_event::Kind;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::LaunchError;
use crate::load::Progress;

/// Clock skew allowed between the object store's modification times and this machine's.
const SKEW_MS: i64 = 2_000;
/// Events per queue message batch.
const SEND_BATCH: usize = 10;

/// What a re-index did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReindexReport {
    /// The generation readers used before, and the one they use now.
    pub previous: u64,
    pub generation: u64,
    /// Objects in the store when the build started.
    pub listed: usize,
    /// Events the catch-up passes sent (before the switch, after it).
    pub caught_up: (usize, usize),
    pub progress: Progress,
    pub elapsed: Duration,
}

/// Which part of the re-index a progress reading is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Build,
    CatchUp,
}

/// One progress reading of the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub phase: Phase,
    /// Objects the build started from.
    pub listed: usize,
    /// The new generation's catalog.
    pub progress: Progress,
}

fn failed(what: &str) -> impl FnOnce(String) -> LaunchError + '_ {
    move |e| LaunchError::Load(format!("{what}: {e}"))
}

/// Builds a new index generation from the object store with the configuration in `root`,
/// makes it current, and catches it up; `report` is called with each progress reading.
pub async fn reindex(
    root: &Settings,
    mut report: impl FnMut(&Reading),
) -> Result<ReindexReport, LaunchError> {
    let started = Instant::now();
    let _lock = generation::lock_for_build(root)?;
    let previous = generation::current_id(root)?;
    let model = rag_backends::embedding_model(root).await?;
    let manifest = Manifest::from_settings(root, model.model_id(), model.dimensions());
    let next = generation::create_next(root, &manifest)?;
    tracing::info!(
        generation = next.id,
        previous,
        "building a new index generation"
    );
    let mut build = next.settings.clone();
    // The build's own documents queue: uploads meanwhile go to the current generation's.
    build.queues.documents = format!("{}-g{}-build", root.queues.documents, next.id);

    let (listed, caught_up_before, progress, catch_up_from) = {
        let pipeline = Pipeline::start(&build, model)?;
        let objects = rag_backends::object_store(&build)?;
        let listing_started = now_ms();
        let listing = list(&objects).await?;
        let tenants = tenants(&listing, &root.default_tenant);
        pipeline
            .send(created(&objects, listing.iter().collect()))
            .await?;
        let listed = listing.len();
        let reading = |phase, progress: &Progress| Reading {
            phase,
            listed,
            progress: *progress,
        };
        pipeline
            .wait(&tenants, |p| report(&reading(Phase::Build, p)))
            .await?;

        let catch_up_started = now_ms();
        let events = catch_up(&objects, &pipeline.catalog, &tenants, listing_started).await?;
        let caught_up = events.len();
        pipeline.send(events).await?;
        let progress = pipeline
            .wait(&tenants, |p| report(&reading(Phase::CatchUp, p)))
            .await?;
        pipeline.stop().await;
        (listed, caught_up, progress, catch_up_started)
    };
    // Every handle on the new generation is closed: the services may open it now.
    generation::make_current(root, next.id)?;
    tracing::info!(generation = next.id, "the new index generation is current");

    // The old generation's writers follow within a poll interval; what they took before
    // that is sent again, now to the live pipeline, which writes the new generation.
    tokio::time::sleep(generation::FOLLOW_INTERVAL * 3).await;
    let objects = rag_backends::object_store(root)?;
    let catalog = rag_backends::catalog(&next.settings)?;
    let live = rag_backends::documents_queue(root)?;
    let listing = list(&objects).await?;
    let tenants = tenants(&listing, &root.default_tenant);
    let events = catch_up(&objects, &catalog, &tenants, catch_up_from).await?;
    let caught_up_after = events.len();
    send(&live, events).await?;

    Ok(ReindexReport {
        previous,
        generation: next.id,
        listed,
        caught_up: (caught_up_before, caught_up_after),
        progress,
        elapsed: started.elapsed(),
    })
}

/// The ingest-worker and the embedder's indexer, on the generation being built.
struct Pipeline {
    documents: Arc<dyn Queue>,
    chunks: Arc<dyn Queue>,
    catalog: Arc<dyn Catalog>,
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl Pipeline {
    fn start(
        build: &Settings,
        model: Arc<dyn rag_backends::rag_embeddings::EmbeddingModel>,
    ) -> Result<Self, LaunchError> {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let worker = rag_ingest_worker::Worker::new(build)?;
        let indexer = rag_embedder::Indexer::new(build, model)?;
        tasks.spawn(worker.consume(stop.clone()));
        tasks.spawn(indexer.consume(stop.clone()));
        Ok(Self {
            documents: rag_backends::documents_queue(build)?,
            chunks: rag_backends::chunks_queue(build)?,
            catalog: rag_backends::catalog(build)?,
            stop,
            tasks,
        })
    }

    async fn send(&self, events: Vec<ObjectEvent>) -> Result<(), LaunchError> {
        send(&self.documents, events).await
    }

    /// Polls until both queues are drained (nothing visible, nothing in flight): then no
    /// further work can happen. Documents still pending at that point had their messages
    /// dead-lettered after repeated transient failures; they are reported, not waited for.
    async fn wait(
        &self,
        tenants: &BTreeSet<String>,
        mut report: impl FnMut(&Progress),
    ) -> Result<Progress, LaunchError> {
        loop {
            report(&progress(&self.catalog, tenants).await?);
            let mut drained = true;
            for queue in [&self.documents, &self.chunks] {
                let stats = queue
                    .stats()
                    .await
                    .map_err(|e| failed(queue.name())(e.to_string()))?;
                drained &= stats.visible == 0 && stats.in_flight == 0;
            }
            if drained {
                return progress(&self.catalog, tenants).await;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops the consumers (what they hold finishes) and closes every handle.
    async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn progress(
    catalog: &Arc<dyn Catalog>,
    tenants: &BTreeSet<String>,
) -> Result<Progress, LaunchError> {
    let mut progress = Progress::default();
    for tenant in tenants {
        let counts = catalog
            .counts(tenant)
            .await
            .map_err(|e| failed("catalog")(e.to_string()))?;
        let count = |state: DocumentState| counts.get(state.as_str()).copied().unwrap_or(0);
        progress.pending += count(DocumentState::Queued) + count(DocumentState::Processing);
        progress.indexed += count(DocumentState::Indexed);
        progress.failed += count(DocumentState::Failed);
    }
    Ok(progress)
}

async fn list(objects: &Arc<dyn ObjectStore>) -> Result<Vec<ObjectInfo>, LaunchError> {
    objects
        .list("")
        .await
        .map_err(|e| failed("object store")(e.to_string()))
}

/// The tenants of the documents in `listing` (and the default one).
fn tenants(listing: &[ObjectInfo], default_tenant: &str) -> BTreeSet<String> {
    listing
        .iter()
        .filter_map(|o| ObjectKey::parse(&o.key, default_tenant).ok())
        .map(|k| k.tenant)
        .chain([default_tenant.to_owned()])
        .collect()
}

/// `ObjectCreated` for objects modified since `since_ms`, `ObjectRemoved` for documents of
/// the catalog whose object is gone.
async fn catch_up(
    objects: &Arc<dyn ObjectStore>,
    catalog: &Arc<dyn Catalog>,
    tenants: &BTreeSet<String>,
    since_ms: i64,
) -> Result<Vec<ObjectEvent>, LaunchError> {
    let listing = list(objects).await?;
    let changed = listing
        .iter()
        .filter(|o| o.last_modified_ms >= since_ms - SKEW_MS)
        .collect();
    let mut events = created(objects, changed);
    let present: BTreeSet<&str> = listing.iter().map(|o| o.key.as_str()).collect();
    for tenant in tenants {
        let documents = catalog
            .list(tenant, None)
            .await
            .map_err(|e| failed("catalog")(e.to_string()))?;
        events.extend(
            documents
                .into_iter()
                .filter(|d| !present.contains(d.object_key.as_str()))
                .map(|d| event(objects, Kind::Removed, &d.object_key, 0, "")),
        );
    }
    Ok(events)
}

fn created(objects: &Arc<dyn ObjectStore>, listing: Vec<&ObjectInfo>) -> Vec<ObjectEvent> {
    listing
        .into_iter()
        .map(|o| event(objects, Kind::Created, &o.key, o.size, &o.etag))
        .collect()
}

fn event(
    objects: &Arc<dyn ObjectStore>,
    kind: Kind,
    key: &str,
    size: u64,
    etag: &str,
) -> ObjectEvent {
    let event_name = match kind {
        Kind::Removed => "ObjectRemoved:Delete",
        _ => "ObjectCreated:Put",
    };
    ObjectEvent {
        kind: kind.into(),
        event_name: event_name.into(),
        bucket: objects.bucket().to_owned(),
        key: key.to_owned(),
        size,
        etag: etag.to_owned(),
        sequencer: String::new(),
        event_time_ms: now_ms(),
    }
}

async fn send(queue: &Arc<dyn Queue>, events: Vec<ObjectEvent>) -> Result<(), LaunchError> {
    for batch in events.chunks(SEND_BATCH) {
        let messages = batch
            .iter()
            .map(|e| Message::new(s3_event::encode(std::slice::from_ref(e), "local")))
            .collect();
        queue
            .send_batch(messages)
            .await
            .map_err(|e| failed(queue.name())(e.to_string()))?;
    }
    Ok(())
}
