//! The embedding cache: vectors stored under (model, SHA-256 of the exact input text), so
//! re-indexing, re-chunking and re-uploads reuse vectors instead of recomputing them (the
//! cost that dominates a re-index, and the one Bedrock bills).
//!
//! [`CachedEmbeddings`] wraps any [`EmbeddingModel`]: it looks every text up, embeds only the
//! misses in one call, and stores them. The cache is an optimisation, never a dependency: when
//! it fails, the wrapper logs and embeds as if it were empty. [`SqliteVectorCache`] is the
//! embedded store (one file in the data directory).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::{EmbeddingError, EmbeddingModel};

/// SHA-256 of a text as embedded.
pub type TextHash = [u8; 32];

pub fn text_hash(text: &str) -> TextHash {
    Sha256::digest(text.as_bytes()).into()
}

#[derive(Debug, thiserror::Error)]
pub enum VectorCacheError {
    #[error("embedding cache storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("embedding cache I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("embedding cache task failed: {0}")]
    Task(String),
}

/// Where cached vectors live. Object safe.
#[async_trait::async_trait]
pub trait VectorCache: Send + Sync + fmt::Debug {
    /// One entry per key, in order: the stored vector, or `None`.
    async fn get_many(
        &self,
        model: &str,
        keys: &[TextHash],
    ) -> Result<Vec<Option<Vec<f32>>>, VectorCacheError>;

    async fn put_many(
        &self,
        model: &str,
        entries: Vec<(TextHash, Vec<f32>)>,
    ) -> Result<(), VectorCacheError>;
}

/// Vectors in one SQLite file (WAL; `synchronous=NORMAL`: a power cut may lose the last
/// entries, which only costs their recomputation).
#[derive(Clone)]
pub struct SqliteVectorCache {
    conn: Arc<Mutex<Connection>>,
}

impl fmt::Debug for SqliteVectorCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteVectorCache").finish_non_exhaustive()
    }
}

impl SqliteVectorCache {
    pub fn open(path: &Path) -> Result<Self, VectorCacheError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS vectors (
                model TEXT NOT NULL,
                text_sha256 BLOB NOT NULL,
                vector BLOB NOT NULL,
                PRIMARY KEY (model, text_sha256)
            ) WITHOUT ROWID;",
        )?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, VectorCacheError> + Send + 'static,
    ) -> Result<T, VectorCacheError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || work(&mut conn.lock()))
            .await
            .map_err(|e| VectorCacheError::Task(e.to_string()))?
    }
}

#[async_trait::async_trait]
impl VectorCache for SqliteVectorCache {
    async fn get_many(
        &self,
        model: &str,
        keys: &[TextHash],
    ) -> Result<Vec<Option<Vec<f32>>>, VectorCacheError> {
        let (model, keys) = (model.to_owned(), keys.to_vec());
        self.blocking(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT vector FROM vectors WHERE model = ?1 AND text_sha256 = ?2",
            )?;
            keys.iter()
                .map(|key| {
                    let blob: Option<Vec<u8>> = stmt
                        .query_row(params![model, key.as_slice()], |row| row.get(0))
                        .optional()?;
                    Ok(blob.and_then(|b| decode(&b)))
                })
                .collect()
        })
        .await
    }

    async fn put_many(
        &self,
        model: &str,
        entries: Vec<(TextHash, Vec<f32>)>,
    ) -> Result<(), VectorCacheError> {
        let model = model.to_owned();
        self.blocking(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO vectors (model, text_sha256, vector) VALUES (?1, ?2, ?3)",
                )?;
                for (key, vector) in &entries {
                    stmt.execute(params![model, key.as_slice(), encode(vector)])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// `None` for a blob that is not a whole number of floats (treated as a miss).
fn decode(blob: &[u8]) -> Option<Vec<f32>> {
    if blob.is_empty() || !blob.len().is_multiple_of(4) {
        return None;
    }
    Some(
        blob.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// Hits and misses since start, for logs and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// An [`EmbeddingModel`] that answers from a [`VectorCache`] first.
#[derive(Debug)]
pub struct CachedEmbeddings {
    inner: Arc<dyn EmbeddingModel>,
    cache: Arc<dyn VectorCache>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CachedEmbeddings {
    pub fn new(inner: Arc<dyn EmbeddingModel>, cache: Arc<dyn VectorCache>) -> Self {
        Self {
            inner,
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The key's model part: a different model, or the same name with other dimensions,
    /// never shares vectors.
    fn model_key(&self) -> String {
        format!("{}/{}", self.inner.model_id(), self.inner.dimensions())
    }
}

#[async_trait::async_trait]
impl EmbeddingModel for CachedEmbeddings {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.model_key();
        let dimensions = self.dimensions();
        let keys: Vec<TextHash> = texts.iter().map(|t| text_hash(t)).collect();
        let mut found = match self.cache.get_many(&model, &keys).await {
            Ok(found) if found.len() == texts.len() => found,
            Ok(_) => vec![None; texts.len()],
            Err(e) => {
                tracing::warn!(error = %e, "embedding cache unreadable; embedding everything");
                vec![None; texts.len()]
            }
        };
        for slot in &mut found {
            if slot.as_ref().is_some_and(|v| v.len() != dimensions) {
                *slot = None;
            }
        }
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| found[i].is_none()).collect();
        self.hits
            .fetch_add((texts.len() - missing.len()) as u64, Ordering::Relaxed);
        self.misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        if !missing.is_empty() {
            let inputs: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
            let vectors = self.inner.embed(&inputs).await?;
            if vectors.len() != inputs.len() {
                return Err(EmbeddingError::Inference(format!(
                    "the model returned {} vectors for {} texts",
                    vectors.len(),
                    inputs.len()
                )));
            }
            let entries: Vec<(TextHash, Vec<f32>)> = missing
                .iter()
                .zip(&vectors)
                .map(|(&i, v)| (keys[i], v.clone()))
                .collect();
            if let Err(e) = self.cache.put_many(&model, entries).await {
                tracing::warn!(error = %e, "could not store embeddings in the cache");
            }
            for (i, vector) in missing.into_iter().zip(vectors) {
                found[i] = Some(vector);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EmbeddingError> {
        self.inner.count_tokens(text)
    }

    fn max_tokens(&self) -> usize {
        self.inner.max_tokens()
    }

    fn max_text_tokens(&self) -> usize {
        self.inner.max_text_tokens()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HashEmbedding;

    /// Counts the texts that reach the model.
    #[derive(Debug)]
    struct Counting {
        inner: HashEmbedding,
        embedded: AtomicU64,
    }

    #[async_trait::async_trait]
    impl EmbeddingModel for Counting {
        fn model_id(&self) -> &str {
            self.inner.model_id()
        }
        fn dimensions(&self) -> usize {
            self.inner.dimensions()
        }
        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
            self.embedded
                .fetch_add(texts.len() as u64, Ordering::SeqCst);
            self.inner.embed(texts).await
        }
        fn count_tokens(&self, text: &str) -> Result<usize, EmbeddingError> {
            self.inner.count_tokens(text)
        }
        fn max_tokens(&self) -> usize {
            self.inner.max_tokens()
        }
    }

    fn texts(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn embeds_only_the_misses_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("embedding-cache.db");
        let model = Arc::new(Counting {
            inner: HashEmbedding::with_dimensions(16).unwrap(),
            embedded: AtomicU64::new(0),
        });
        let cached = CachedEmbeddings::new(
            model.clone(),
            Arc::new(SqliteVectorCache::open(&path).unwrap()),
        );
        let first = cached.embed(&texts(&["alpha", "beta"])).await.unwrap();
        assert_eq!(model.embedded.load(Ordering::SeqCst), 2);

        // A reopened cache (another process, a restart) serves the same vectors.
        let cached = CachedEmbeddings::new(
            model.clone(),
            Arc::new(SqliteVectorCache::open(&path).unwrap()),
        );
        let second = cached
            .embed(&texts(&["beta", "gamma", "alpha"]))
            .await
            .unwrap();
        assert_eq!(
            model.embedded.load(Ordering::SeqCst),
            3,
            "only gamma is new"
        );
        assert_eq!(second[0], first[1]);
        assert_eq!(second[2], first[0]);
        assert_eq!(
            second[1],
            model.inner.embed(&texts(&["gamma"])).await.unwrap()[0]
        );
        assert_eq!(cached.stats(), CacheStats { hits: 2, misses: 1 });
    }

    #[tokio::test]
    async fn another_model_does_not_share_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteVectorCache::open(&dir.path().join("c.db")).unwrap());
        let small = CachedEmbeddings::new(
            Arc::new(HashEmbedding::with_dimensions(8).unwrap()),
            store.clone(),
        );
        let large =
            CachedEmbeddings::new(Arc::new(HashEmbedding::with_dimensions(16).unwrap()), store);
        small.embed(&texts(&["x"])).await.unwrap();
        let vectors = large.embed(&texts(&["x"])).await.unwrap();
        assert_eq!(vectors[0].len(), 16);
        assert_eq!(large.stats().misses, 1);
    }

    #[test]
    fn vectors_round_trip_and_bad_blobs_are_misses() {
        let v = vec![0.25f32, -1.5, 3.0];
        assert_eq!(decode(&encode(&v)), Some(v));
        assert_eq!(decode(&[1, 2, 3]), None);
        assert_eq!(decode(&[]), None);
    }
}
