//! The embedded backend: the Qdrant engine in-process, on local disk (`qdrant-edge` 0.7).
//!
//! One shard per directory, one unnamed dense vector (cosine distance), the `ChunkRecord` as the
//! payload, keyword indexes on `tenant`, `domain`, `document_id` and an integer index on
//! `version`.
//!
//! qdrant-edge is synchronous, so every call runs on tokio's blocking pool. Its `flush` takes
//! internal locks with `try_lock().expect(..)` and panics under contention, so writes and
//! flushes are serialised by our own mutex. Every write is flushed before it is acknowledged:
//! qdrant-edge 0.7 writes a WAL but never replays it on load, so only flushed segments survive a
//! crash.
//!
//! A shard directory can be open only once at a time (qdrant-edge's WAL takes a file lock; a
//! second open fails with "Can't init WAL: WouldBlock"): [`EdgeVectorStore::open`] keeps a
//! process-wide registry and hands every caller of the same directory the same instance while
//! any of them holds it. Another process cannot open a directory this one has open.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use qdrant_edge::{
    Condition, CountRequest, CreateIndex, DEFAULT_VECTOR_NAME, Distance, EdgeConfig, EdgeShard,
    EdgeVectorParamsBuilder, FieldCondition, FieldIndexOperations, Filter, JsonPath, Match,
    NamedQuery, OperationError, Payload, PayloadFieldSchema, PayloadSchemaType, PointId,
    PointInsertOperations, PointOperations, PointStructPersisted, QueryEnum, QueryRequest,
    ScoringQuery, ScrollRequest, UpdateOperation, VectorStructPersisted, WithPayloadInterface,
    WithVector,
};
use rag_core::{ChunkRecord, DocumentId, SearchFilter};

use crate::point::{
    FIELD_CHUNK_INDEX, FIELD_DOCUMENT_ID, FIELD_DOMAIN, FIELD_TENANT, FIELD_VERSION, ID_FIELDS,
    check_point, check_vector, match_from_fields,
};
use crate::{VectorHit, VectorMatch, VectorPoint, VectorStore, VectorStoreError};

/// The payload indexes every shard gets.
const PAYLOAD_INDEXES: [(&str, PayloadSchemaType); 4] = [
    (FIELD_TENANT, PayloadSchemaType::Keyword),
    (FIELD_DOMAIN, PayloadSchemaType::Keyword),
    (FIELD_DOCUMENT_ID, PayloadSchemaType::Keyword),
    (FIELD_VERSION, PayloadSchemaType::Integer),
];

/// The file qdrant-edge keeps its shard configuration in.
const EDGE_CONFIG_FILE: &str = "edge_config.json";

/// How long `open` waits for a previous instance of the same directory to finish closing.
const CLOSE_WAIT: Duration = Duration::from_secs(120);

/// Page size of the scroll behind `get_chunks`.
const SCROLL_PAGE: usize = 256;

/// The process-wide registry of open shards, keyed by canonical directory.
///
/// An entry lives from the moment a shard is opened until its `Inner` has been dropped (and so
/// flushed and closed), which can be later than the last `EdgeVectorStore` handle (a blocking
/// task may still hold the shard). `open` waits for such a closing entry to go away instead of
/// opening the directory a second time.
struct Registry {
    entries: Mutex<HashMap<PathBuf, RegistryEntry>>,
    closed: Condvar,
}

struct RegistryEntry {
    instance: u64,
    store: Weak<EdgeVectorStore>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    entries: Mutex::new(HashMap::new()),
    closed: Condvar::new(),
});

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// The embedded vector store: a qdrant-edge shard in a local directory.
pub struct EdgeVectorStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// Canonical shard directory (the registry key).
    path: PathBuf,
    dimensions: usize,
    /// This open's id in the registry.
    instance: u64,
    /// `Some` until `Drop`.
    shard: Option<EdgeShard>,
    /// Serialises updates and flushes (qdrant-edge's `flush` panics under contention).
    writes: Mutex<()>,
}

impl fmt::Debug for EdgeVectorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EdgeVectorStore")
            .field("path", &self.inner.path)
            .field("dimensions", &self.inner.dimensions)
            .finish_non_exhaustive()
    }
}

impl EdgeVectorStore {
    /// Opens the shard in `path` (created, with its parents, when missing) for vectors of
    /// `dimensions` dimensions.
    ///
    /// Returns the instance already open in this process for the same directory, if any: the
    /// embedder and the retriever share one shard. Once every handle is dropped, the shard is
    /// flushed and closed, and the next `open` loads it from disk again.
    ///
    /// Blocking (disk I/O): call it at startup or from `spawn_blocking`.
    pub fn open(path: &Path, dimensions: usize) -> Result<Arc<Self>, VectorStoreError> {
        if dimensions == 0 {
            return Err(VectorStoreError::InvalidInput(
                "vector dimensions must be positive".into(),
            ));
        }
        std::fs::create_dir_all(path).map_err(|e| {
            VectorStoreError::Storage(format!("cannot create {}: {e}", path.display()))
        })?;
        let path = path.canonicalize().map_err(|e| {
            VectorStoreError::Storage(format!("cannot resolve {}: {e}", path.display()))
        })?;

        let deadline = Instant::now() + CLOSE_WAIT;
        let mut entries = REGISTRY.entries.lock();
        let existing = loop {
            let Some(entry) = entries.get(&path) else {
                break None;
            };
            if let Some(store) = entry.store.upgrade() {
                break Some(store);
            }
            // The last handle is gone but the shard is still closing: wait for it.
            if REGISTRY
                .closed
                .wait_until(&mut entries, deadline)
                .timed_out()
                && entries.contains_key(&path)
            {
                return Err(VectorStoreError::Unavailable(format!(
                    "vector store {} is still closing",
                    path.display()
                )));
            }
        };
        if let Some(store) = existing {
            // Unlock before `store` can be dropped: dropping the last handle takes the lock.
            drop(entries);
            if store.inner.dimensions != dimensions {
                return Err(VectorStoreError::InvalidInput(format!(
                    "vector store {} is open with {} dimensions, not {dimensions}",
                    path.display(),
                    store.inner.dimensions
                )));
            }
            return Ok(store);
        }

        // Open while holding the registry lock, so nobody opens the same directory meanwhile.
        // Nothing dropped on this path touches the registry (a bare `EdgeShard` does not).
        let shard = open_shard(&path, dimensions)?;
        let instance = NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed);
        let store = Arc::new(Self {
            inner: Arc::new(Inner {
                path: path.clone(),
                dimensions,
                instance,
                shard: Some(shard),
                writes: Mutex::new(()),
            }),
        });
        entries.insert(
            path,
            RegistryEntry {
                instance,
                store: Arc::downgrade(&store),
            },
        );
        tracing::info!(path = %store.inner.path.display(), dimensions, "vector store opened");
        Ok(store)
    }

    /// The canonical shard directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The dimension of every vector of this store.
    pub fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    /// Runs `f` on tokio's blocking pool with the shard.
    async fn run<T, F>(&self, what: &'static str, f: F) -> Result<T, VectorStoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, VectorStoreError> + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            VectorStoreError::Unavailable("the vector store needs a tokio runtime".into())
        })?;
        let inner = Arc::clone(&self.inner);
        match runtime.spawn_blocking(move || f(&inner)).await {
            Ok(result) => result,
            Err(err) if err.is_panic() => {
                tracing::error!(operation = what, "vector store operation panicked");
                Err(VectorStoreError::Storage(format!(
                    "{what} failed unexpectedly"
                )))
            }
            Err(err) => Err(VectorStoreError::Unavailable(format!(
                "{what} cancelled: {err}"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl VectorStore for EdgeVectorStore {
    async fn upsert(&self, points: Vec<VectorPoint>) -> Result<(), VectorStoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let persisted = points
            .into_iter()
            .map(|point| to_persisted(point, self.inner.dimensions))
            .collect::<Result<Vec<_>, _>>()?;
        let operation = UpdateOperation::PointOperation(PointOperations::UpsertPoints(
            PointInsertOperations::PointsList(persisted),
        ));
        self.run("upsert", move |inner| inner.write(operation))
            .await
    }

    async fn search(
        &self,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<VectorHit>, VectorStoreError> {
        check_vector(vector, self.inner.dimensions)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let request = QueryRequest {
            prefetches: Vec::new(),
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(
                NamedQuery::default_dense(vector.to_vec()),
            ))),
            filter: Some(search_filter(filter)?),
            score_threshold: None,
            limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Bool(true),
        };
        self.run("search", move |inner| {
            let points = inner.shard()?.query(request).map_err(from_qdrant)?;
            Ok(points
                .into_iter()
                .filter_map(|point| {
                    let chunk = chunk_from_payload(point.id, point.payload)?;
                    Some(VectorHit {
                        chunk,
                        score: point.score,
                    })
                })
                .collect())
        })
        .await
    }

    async fn search_ids(
        &self,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<VectorMatch>, VectorStoreError> {
        check_vector(vector, self.inner.dimensions)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let fields = ID_FIELDS
            .iter()
            .map(|f| json_path(f))
            .collect::<Result<Vec<_>, _>>()?;
        let request = QueryRequest {
            prefetches: Vec::new(),
            query: Some(ScoringQuery::Vector(QueryEnum::Nearest(
                NamedQuery::default_dense(vector.to_vec()),
            ))),
            filter: Some(search_filter(filter)?),
            score_threshold: None,
            limit,
            offset: 0,
            params: None,
            with_vector: WithVector::Bool(false),
            with_payload: WithPayloadInterface::Fields(fields),
        };
        self.run("search", move |inner| {
            let points = inner.shard()?.query(request).map_err(from_qdrant)?;
            Ok(points
                .into_iter()
                .filter_map(|point| {
                    let found = match (&point.id, &point.payload) {
                        (PointId::Uuid(id), Some(payload)) => match_from_fields(
                            *id,
                            |field| payload.0.get(field).cloned(),
                            point.score,
                        ),
                        _ => None,
                    };
                    if found.is_none() {
                        tracing::warn!(point = %point.id, "vector store point without readable ids skipped");
                    }
                    found
                })
                .collect())
        })
        .await
    }

    async fn delete_document(
        &self,
        tenant: &str,
        document_id: DocumentId,
        keep_version: Option<u64>,
    ) -> Result<(), VectorStoreError> {
        // A version beyond i64 cannot be stored (upsert rejects it), so keeping it keeps nothing.
        let keep = keep_version.and_then(|v| i64::try_from(v).ok());
        let filter = Filter {
            should: None,
            min_should: None,
            must: Some(vec![
                keyword(FIELD_TENANT, tenant)?,
                keyword(FIELD_DOCUMENT_ID, &document_id.to_string())?,
            ]),
            must_not: match keep {
                Some(version) => Some(vec![integer(FIELD_VERSION, version)?]),
                None => None,
            },
        };
        let operation =
            UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(filter));
        self.run("delete_document", move |inner| inner.write(operation))
            .await
    }

    async fn get_chunks(
        &self,
        tenant: &str,
        document_id: DocumentId,
        version: u64,
        chunk_indexes: &[u32],
    ) -> Result<Vec<ChunkRecord>, VectorStoreError> {
        let indexes: BTreeSet<i64> = chunk_indexes.iter().map(|&i| i64::from(i)).collect();
        let Ok(version) = i64::try_from(version) else {
            return Ok(Vec::new());
        };
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let page = indexes.len().min(SCROLL_PAGE);
        let filter = Filter {
            should: None,
            min_should: None,
            must: Some(vec![
                keyword(FIELD_TENANT, tenant)?,
                keyword(FIELD_DOCUMENT_ID, &document_id.to_string())?,
                integer(FIELD_VERSION, version)?,
                Condition::Field(FieldCondition::new_match(
                    json_path(FIELD_CHUNK_INDEX)?,
                    Match::from(indexes.into_iter().collect::<Vec<i64>>()),
                )),
            ]),
            must_not: None,
        };
        self.run("get_chunks", move |inner| {
            let shard = inner.shard()?;
            let mut chunks = Vec::new();
            let mut offset = None;
            loop {
                let (records, next) = shard
                    .scroll(ScrollRequest {
                        offset,
                        limit: Some(page),
                        filter: Some(filter.clone()),
                        with_payload: Some(WithPayloadInterface::Bool(true)),
                        with_vector: WithVector::Bool(false),
                        order_by: None,
                    })
                    .map_err(from_qdrant)?;
                chunks.extend(
                    records
                        .into_iter()
                        .filter_map(|record| chunk_from_payload(record.id, record.payload)),
                );
                match next {
                    Some(next) => offset = Some(next),
                    None => return Ok(chunks),
                }
            }
        })
        .await
    }

    async fn count(&self, filter: &SearchFilter) -> Result<u64, VectorStoreError> {
        let request = CountRequest {
            filter: Some(search_filter(filter)?),
            exact: true,
        };
        self.run("count", move |inner| {
            let n = inner.shard()?.count(request).map_err(from_qdrant)?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn health(&self) -> Result<(), VectorStoreError> {
        self.run("health", |inner| {
            let shard = inner.shard()?;
            if !inner.path.is_dir() {
                return Err(VectorStoreError::Unavailable(format!(
                    "vector store directory {} is gone",
                    inner.path.display()
                )));
            }
            let _ = shard.info();
            Ok(())
        })
        .await
    }
}

impl Inner {
    fn shard(&self) -> Result<&EdgeShard, VectorStoreError> {
        self.shard
            .as_ref()
            .ok_or_else(|| VectorStoreError::Unavailable("vector store is closed".into()))
    }

    /// Applies one update and flushes it, serialised with every other write.
    fn write(&self, operation: UpdateOperation) -> Result<(), VectorStoreError> {
        let shard = self.shard()?;
        let _writes = self.writes.lock();
        shard.update(operation).map_err(from_qdrant)?;
        flush(shard)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(shard) = self.shard.take() {
            close_shard(shard, &self.path);
        }
        let mut entries = REGISTRY.entries.lock();
        if entries
            .get(&self.path)
            .is_some_and(|entry| entry.instance == self.instance)
        {
            entries.remove(&self.path);
        }
        drop(entries);
        REGISTRY.closed.notify_all();
        tracing::debug!(path = %self.path.display(), "vector store closed");
    }
}

/// Creates or loads the shard in `path` and makes sure it has the payload indexes.
fn open_shard(path: &Path, dimensions: usize) -> Result<EdgeShard, VectorStoreError> {
    let config = shard_config(dimensions);
    let opened = if path.join(EDGE_CONFIG_FILE).exists() {
        EdgeShard::load(path, None)
    } else {
        // No config file: a new shard, or (rarely) segments whose config file was lost.
        EdgeShard::new(path, config.clone()).or_else(|_| EdgeShard::load(path, Some(config)))
    };
    let shard = opened.map_err(|e| {
        VectorStoreError::Storage(format!("cannot open vector store {}: {e}", path.display()))
    })?;

    let prepared = check_config(&shard, path, dimensions).and_then(|()| ensure_indexes(&shard));
    match prepared {
        Ok(()) => Ok(shard),
        Err(err) => {
            close_shard(shard, path);
            Err(err)
        }
    }
}

fn shard_config(dimensions: usize) -> EdgeConfig {
    EdgeConfig::builder()
        .vector(
            DEFAULT_VECTOR_NAME,
            EdgeVectorParamsBuilder::new(dimensions, Distance::Cosine).build(),
        )
        .build()
}

/// Rejects a shard made for other vectors than the ones this store is opened for.
fn check_config(shard: &EdgeShard, path: &Path, dimensions: usize) -> Result<(), VectorStoreError> {
    let config = shard.config();
    match config.vectors.get(DEFAULT_VECTOR_NAME) {
        Some(params) if params.size == dimensions && params.distance == Distance::Cosine => Ok(()),
        Some(params) => Err(VectorStoreError::InvalidInput(format!(
            "vector store {} holds {}-dimensional {:?} vectors, not {dimensions}-dimensional cosine",
            path.display(),
            params.size,
            params.distance
        ))),
        None => Err(VectorStoreError::InvalidInput(format!(
            "vector store {} has no default dense vector",
            path.display()
        ))),
    }
}

fn ensure_indexes(shard: &EdgeShard) -> Result<(), VectorStoreError> {
    let existing = shard.info().payload_schema;
    let mut created = false;
    for (field, schema) in PAYLOAD_INDEXES {
        let key = json_path(field)?;
        if existing
            .get(&key)
            .is_some_and(|info| info.data_type == schema)
        {
            continue;
        }
        shard
            .update(UpdateOperation::FieldIndexOperation(
                FieldIndexOperations::CreateIndex(CreateIndex {
                    field_name: key,
                    field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                }),
            ))
            .map_err(from_qdrant)?;
        created = true;
    }
    if created {
        flush(shard)?;
    }
    Ok(())
}

/// Flushes the WAL and all segments to disk.
fn flush(shard: &EdgeShard) -> Result<(), VectorStoreError> {
    catch_unwind(AssertUnwindSafe(|| shard.flush())).map_err(|panic| {
        let message = panic_message(panic.as_ref());
        tracing::error!(error = %message, "vector store flush failed");
        VectorStoreError::Storage(format!("flush failed: {message}"))
    })
}

/// Drops a shard (which flushes it and releases its WAL lock) without letting a panic out.
///
/// Also safe while the thread is already unwinding: a panic caught inside a destructor does not
/// abort. Not forgetting the shard matters: its WAL holds a file lock until it is dropped.
fn close_shard(shard: EdgeShard, path: &Path) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(shard))) {
        tracing::error!(
            path = %path.display(),
            error = %panic_message(panic.as_ref()),
            "vector store failed to flush on close"
        );
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

fn to_persisted(
    point: VectorPoint,
    dimensions: usize,
) -> Result<PointStructPersisted, VectorStoreError> {
    let point = check_point(point, dimensions)?;
    Ok(PointStructPersisted {
        id: PointId::Uuid(point.chunk.id),
        vector: VectorStructPersisted::Single(point.vector),
        payload: Some(Payload(point.payload)),
    })
}

fn chunk_from_payload(id: PointId, payload: Option<Payload>) -> Option<ChunkRecord> {
    let Some(payload) = payload else {
        tracing::warn!(point = %id, "vector store point without payload skipped");
        return None;
    };
    match serde_json::from_value(serde_json::Value::Object(payload.0)) {
        Ok(chunk) => Some(chunk),
        Err(e) => {
            tracing::warn!(point = %id, error = %e, "vector store point with unreadable payload skipped");
            None
        }
    }
}

fn search_filter(filter: &SearchFilter) -> Result<Filter, VectorStoreError> {
    let mut must = vec![keyword(FIELD_TENANT, &filter.tenant)?];
    if let Some(domain) = &filter.domain {
        must.push(keyword(FIELD_DOMAIN, domain)?);
    }
    Ok(Filter {
        should: None,
        min_should: None,
        must: Some(must),
        must_not: None,
    })
}

fn keyword(field: &str, value: &str) -> Result<Condition, VectorStoreError> {
    Ok(Condition::Field(FieldCondition::new_match(
        json_path(field)?,
        Match::from(value.to_string()),
    )))
}

fn integer(field: &str, value: i64) -> Result<Condition, VectorStoreError> {
    Ok(Condition::Field(FieldCondition::new_match(
        json_path(field)?,
        Match::from(value),
    )))
}

fn json_path(field: &str) -> Result<JsonPath, VectorStoreError> {
    field
        .parse()
        .map_err(|()| VectorStoreError::Storage(format!("invalid payload field name {field:?}")))
}

fn from_qdrant(err: OperationError) -> VectorStoreError {
    match err {
        OperationError::WrongVectorDimension { .. }
        | OperationError::ValidationError { .. }
        | OperationError::VectorNameNotExists { .. }
        | OperationError::WrongSparse
        | OperationError::WrongMulti => VectorStoreError::InvalidInput(err.to_string()),
        OperationError::Cancelled { .. } | OperationError::Timeout { .. } => {
            VectorStoreError::Unavailable(err.to_string())
        }
        _ => VectorStoreError::Storage(err.to_string()),
    }
}

#[cfg(test)]
mod tests;
