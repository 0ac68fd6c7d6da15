//! Index generations: the derived state (catalog, vector store, BM25 index, chunks queue) that
//! one embedding model and one chunking setting produced from the object store.
//!
//! Generation 0 is the layout of a data directory that was never re-indexed: every path as
//! configured. `ragctl reindex` builds generation N+1 beside the current one, under
//! `<data_dir>/generations/<N+1>/`, from a listing of the object store, and only when it is
//! complete writes `generations/CURRENT` (write, fsync, rename: atomic). Services follow
//! `CURRENT` ([`follow`]) and move their readers and writers over as a unit, so a search sees
//! the old generation or the new one, never a mixture.
//!
//! What a generation was built with (the model, the chunk sizes) is in its `manifest.json`,
//! and wins over the configuration: readers must embed queries with the model that embedded
//! the chunks. The object store, the documents queue and the embedding cache are shared by
//! every generation; the cache is what makes re-indexing with an unchanged model cheap.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rag_config::{CatalogSettings, EmbeddingSettings, Settings, VectorStoreSettings};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use rag_core::now_ms;

use crate::BackendError;

const CURRENT_FILE: &str = "CURRENT";
const MANIFEST_FILE: &str = "manifest.json";

/// What shaped a generation's index: everything a reader must match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub embedding: EmbeddingSettings,
    /// The model's own name for itself (`EmbeddingModel::model_id`).
    pub model_id: String,
    pub dimensions: usize,
    pub chunk_size: usize,
    pub chunk_overlap: usize,
    pub created_at_ms: i64,
}

impl Manifest {
    /// The index shape `settings` asks for, with the loaded model's identity.
    pub fn from_settings(settings: &Settings, model_id: &str, dimensions: usize) -> Self {
        Self {
            embedding: settings.embedding.clone(),
            model_id: model_id.to_owned(),
            dimensions,
            chunk_size: settings.ingest.chunk_size,
            chunk_overlap: settings.ingest.chunk_overlap,
            created_at_ms: now_ms(),
        }
    }

    fn differs_from(&self, settings: &Settings) -> bool {
        self.embedding != settings.embedding
            || self.chunk_size != settings.ingest.chunk_size
            || self.chunk_overlap != settings.ingest.chunk_overlap
    }
}

/// One generation, with the settings that open its backends.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    pub id: u64,
    /// The configuration with this generation's paths, queue names and index shape.
    pub settings: Settings,
    /// `None` for generation 0, which is shaped by the configuration.
    pub manifest: Option<Manifest>,
}

fn failed(reason: impl std::fmt::Display) -> BackendError {
    BackendError {
        backend: "index generation",
        reason: reason.to_string(),
    }
}

/// `<data_dir>/generations`, absolute (a generation's paths must not be re-resolved).
pub fn generations_dir(root: &Settings) -> Result<PathBuf, BackendError> {
    std::path::absolute(root.data_path(Path::new("generations"))).map_err(failed)
}

/// The generation readers use now.
pub fn current(root: &Settings) -> Result<Generation, BackendError> {
    let id = current_id(root)?;
    let generation = open(root, id)?;
    if let Some(manifest) = &generation.manifest
        && manifest.differs_from(root)
    {
        tracing::warn!(
            generation = id,
            "the configured embedding model or chunk sizes differ from those the current index \
             generation was built with; the generation's are used (run `ragctl reindex` to \
             rebuild with the configured ones)"
        );
    }
    Ok(generation)
}

/// The id in `CURRENT`, 0 when there is none.
pub fn current_id(root: &Settings) -> Result<u64, BackendError> {
    let path = generations_dir(root)?.join(CURRENT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| failed(format!("{} holds {:?}, not an id", path.display(), text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(failed(format!("{}: {e}", path.display()))),
    }
}

/// Generation `id` as it is on disk.
pub fn open(root: &Settings, id: u64) -> Result<Generation, BackendError> {
    if id == 0 {
        return Ok(Generation {
            id,
            settings: root.clone(),
            manifest: None,
        });
    }
    let dir = generations_dir(root)?.join(id.to_string());
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    Ok(Generation {
        id,
        settings: settings_for(root, id, &dir, &manifest),
        manifest: Some(manifest),
    })
}

/// The configuration `root` with generation `id`'s backends and index shape.
fn settings_for(root: &Settings, id: u64, dir: &Path, manifest: &Manifest) -> Settings {
    let mut settings = root.clone();
    match &mut settings.catalog {
        CatalogSettings::Sqlite { path } => *path = dir.join("catalog.db"),
    }
    match &mut settings.vector_store {
        VectorStoreSettings::Edge { path } => *path = dir.join("vectors"),
        VectorStoreSettings::Qdrant { collection, .. } => {
            *collection = format!("{collection}-g{id}");
        }
    }
    settings.keyword_index.path = dir.join("keywords");
    settings.queues.chunks = format!("{}-g{id}", root.queues.chunks);
    settings.embedding = manifest.embedding.clone();
    settings.ingest.chunk_size = manifest.chunk_size;
    settings.ingest.chunk_overlap = manifest.chunk_overlap;
    settings
}

/// Creates the next generation (not yet current): the highest existing id plus one.
pub fn create_next(root: &Settings, manifest: &Manifest) -> Result<Generation, BackendError> {
    let base = generations_dir(root)?;
    std::fs::create_dir_all(&base).map_err(|e| failed(format!("{}: {e}", base.display())))?;
    let highest = std::fs::read_dir(&base)
        .map_err(|e| failed(format!("{}: {e}", base.display())))?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        .max(current_id(root)?);
    let id = highest + 1;
    let dir = base.join(id.to_string());
    std::fs::create_dir(&dir).map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    let json = serde_json::to_vec_pretty(manifest).map_err(failed)?;
    write_atomically(&dir.join(MANIFEST_FILE), &json)?;
    open(root, id)
}

/// Held while a generation is built: one build at a time per data directory. An advisory
/// file lock, so a build that crashed leaves nothing to clean up.
#[derive(Debug)]
pub struct BuildLock {
    _file: std::fs::File,
}

/// Takes the build lock, or fails at once naming why.
pub fn lock_for_build(root: &Settings) -> Result<BuildLock, BackendError> {
    let base = generations_dir(root)?;
    std::fs::create_dir_all(&base).map_err(|e| failed(format!("{}: {e}", base.display())))?;
    let path = base.join("build.lock");
    let file =
        std::fs::File::create(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(BuildLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(failed("another re-index is running on this data directory"))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(failed(format!("{}: {e}", path.display()))),
    }
}

/// Makes generation `id` the one every service reads and writes.
pub fn make_current(root: &Settings, id: u64) -> Result<(), BackendError> {
    open(root, id)?;
    let base = generations_dir(root)?;
    write_atomically(&base.join(CURRENT_FILE), format!("{id}\n").as_bytes())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| failed(format!("{}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    if let Some(dir) = path.parent() {
        // The rename is durable once the directory is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
    }
    Ok(())
}

/// How often services look at `CURRENT`.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// A value opened for the current generation, kept current by a background task.
#[derive(Debug)]
pub struct Following<T> {
    receiver: watch::Receiver<Arc<(u64, T)>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Following<T> {
    /// The current generation's id and value, and news of the next one.
    pub fn receiver(&self) -> watch::Receiver<Arc<(u64, T)>> {
        self.receiver.clone()
    }

    /// Stops following. The value (its open indexes, locks, files) is released now, unless a
    /// receiver handed out is still alive; then when that one goes.
    pub async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// What a service opened for the current generation, kept current: `open` runs for the
/// current generation now (its error is the caller's) and again whenever `CURRENT` names
/// another one; until it succeeds for the new one, the old value stays (and it is retried).
/// The watching task ends with [`Following::close`], or when every receiver is gone.
pub async fn follow<T, E, F, Fut>(
    root: Settings,
    open_value: F,
) -> Result<Following<T>, BackendError>
where
    T: Send + Sync + 'static,
    E: std::fmt::Display,
    F: Fn(Generation) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send,
{
    let first = current(&root)?;
    let id = first.id;
    let value = open_value(first)
        .await
        .map_err(|e| failed(format!("generation {id}: {e}")))?;
    let (tx, receiver) = watch::channel(Arc::new((id, value)));
    let task = tokio::spawn(async move {
        let mut following = id;
        loop {
            tokio::select! {
                () = tx.closed() => return,
                () = tokio::time::sleep(FOLLOW_INTERVAL) => {}
            }
            // File reads: off the async workers.
            let read = {
                let root = root.clone();
                tokio::task::spawn_blocking(move || {
                    current_id(&root).and_then(|id| {
                        if id == following {
                            Ok(None)
                        } else {
                            open(&root, id).map(Some)
                        }
                    })
                })
            };
            let next = match read.await.map_err(failed).and_then(|read| read) {
                Ok(Some(next)) => next,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the current index generation");
                    continue;
                }
            };
            let id = next.id;
            match open_value(next).await {
                Ok(value) => {
                    tracing::info!(
                        from = following,
                        to = id,
                        "switched to another index generation"
                    );
                    following = id;
                    tx.send_replace(Arc::new((id, value)));
                }
                Err(e) => {
                    tracing::warn!(generation = id, error = %e, "cannot open the new index generation yet");
                }
            }
        }
    });
    Ok(Following { receiver, task })
}

/// Runs `work` on the current value of `following` until `stop` is cancelled; when another
/// generation becomes current, the running work is stopped (what it has in hand finishes)
/// and started again on the new value. For queue consumers.
pub async fn run_per_generation<T, F, Fut>(
    mut following: watch::Receiver<Arc<(u64, T)>>,
    stop: CancellationToken,
    work: F,
) where
    F: Fn(Arc<(u64, T)>, CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let current = following.borrow_and_update().clone();
        let this_generation = stop.child_token();
        let running = work(current, this_generation.clone());
        tokio::pin!(running);
        tokio::select! {
            () = &mut running => return,
            changed = following.changed() => {
                this_generation.cancel();
                running.await;
                if changed.is_err() || stop.is_cancelled() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(dir: &Path) -> Settings {
        Settings {
            data_dir: dir.to_path_buf(),
            ..Settings::default()
        }
    }

    fn manifest(chunk_size: usize) -> Manifest {
        Manifest {
            embedding: EmbeddingSettings::default(),
            model_id: "test-model".into(),
            dimensions: 8,
            chunk_size,
            chunk_overlap: 4,
            created_at_ms: 1,
        }
    }

    #[test]
    fn each_generation_has_its_own_qdrant_collection() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = root(dir.path());
        settings.vector_store = VectorStoreSettings::Qdrant {
            url: "http://qdrant:6334".into(),
            collection: "chunks".into(),
            api_key_env: None,
        };
        let next = create_next(&settings, &manifest(64)).unwrap();
        let VectorStoreSettings::Qdrant {
            collection, url, ..
        } = &next.settings.vector_store
        else {
            panic!("the generation changed the vector store's kind");
        };
        assert_eq!(
            (collection.as_str(), url.as_str()),
            ("chunks-g1", "http://qdrant:6334")
        );
        assert_eq!(
            current(&settings).unwrap().settings.vector_store,
            settings.vector_store
        );
    }

    #[test]
    fn a_data_directory_without_generations_is_generation_zero_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let settings = root(dir.path());
        let current = current(&settings).unwrap();
        assert_eq!(current.id, 0);
        assert_eq!(current.settings, settings);
        assert_eq!(current.manifest, None);
    }

    #[test]
    fn a_new_generation_has_its_own_paths_and_shape_and_is_not_current_until_made_so() {
        let dir = tempfile::tempdir().unwrap();
        let settings = root(dir.path());
        let next = create_next(&settings, &manifest(64)).unwrap();
        assert_eq!(next.id, 1);
        assert_eq!(current_id(&settings).unwrap(), 0);
        let g = &next.settings;
        assert_eq!(g.ingest.chunk_size, 64);
        assert_eq!(g.queues.chunks, "chunks-g1");
        assert_eq!(g.queues.documents, settings.queues.documents);
        assert_eq!(g.object_store, settings.object_store);
        let CatalogSettings::Sqlite { path } = &g.catalog;
        assert!(path.is_absolute() && path.ends_with("generations/1/catalog.db"));
        assert_eq!(
            g.keyword_index.path,
            generations_dir(&settings).unwrap().join("1/keywords")
        );

        make_current(&settings, 1).unwrap();
        assert_eq!(current(&settings).unwrap(), next);
        let again = create_next(&settings, &manifest(32)).unwrap();
        assert_eq!(again.id, 2);
    }

    #[test]
    fn one_build_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let settings = root(dir.path());
        let lock = lock_for_build(&settings).unwrap();
        let e = lock_for_build(&settings).unwrap_err().to_string();
        assert!(e.contains("another re-index is running"), "{e}");
        drop(lock);
        lock_for_build(&settings).unwrap();
    }

    #[test]
    fn only_an_existing_generation_can_be_made_current() {
        let dir = tempfile::tempdir().unwrap();
        let settings = root(dir.path());
        assert!(make_current(&settings, 3).is_err());
        assert_eq!(current_id(&settings).unwrap(), 0);
    }

    #[test]
    fn a_damaged_current_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let settings = root(dir.path());
        let base = generations_dir(&settings).unwrap();
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join(CURRENT_FILE), "two").unwrap();
        let e = current(&settings).unwrap_err().to_string();
        assert!(e.contains("CURRENT") && e.contains("two"), "{e}");
    }

    #[tokio::test]
    async fn followers_move_to_the_generation_made_current() {
        let dir = tempfile::tempdir().unwrap();
        let settings = root(dir.path());
        let following = follow(settings.clone(), |g: Generation| async move {
            Ok::<_, BackendError>(g.settings.ingest.chunk_size)
        })
        .await
        .unwrap();
        let mut rx = following.receiver();
        assert_eq!(rx.borrow().0, 0);
        create_next(&settings, &manifest(48)).unwrap();
        make_current(&settings, 1).unwrap();
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow().as_ref(), (1, 48));
        drop(rx);
        // Closing releases the value at once.
        let value = Arc::new(());
        let following = follow(settings.clone(), {
            let value = value.clone();
            move |_| {
                let value = value.clone();
                async move { Ok::<_, BackendError>(value) }
            }
        })
        .await
        .unwrap();
        assert_eq!(Arc::strong_count(&value), 3);
        following.close().await;
        assert_eq!(Arc::strong_count(&value), 1, "released with the task");
    }

    #[tokio::test]
    async fn work_restarts_on_each_new_generation_and_ends_when_stopped() {
        let (tx, rx) = watch::channel(Arc::new((0_u64, "first")));
        let stop = CancellationToken::new();
        let started = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn(run_per_generation(rx, stop.clone(), {
            let started = started.clone();
            move |current, token: CancellationToken| {
                let started = started.clone();
                async move {
                    started.lock().unwrap().push(current.1);
                    token.cancelled().await;
                }
            }
        }));
        let seen = |n: usize| {
            let started = started.clone();
            async move {
                while started.lock().unwrap().len() < n {
                    tokio::task::yield_now().await;
                }
            }
        };
        seen(1).await;
        tx.send_replace(Arc::new((1, "second")));
        seen(2).await;
        stop.cancel();
        task.await.unwrap();
        assert_eq!(*started.lock().unwrap(), ["first", "second"]);
    }
}
