//! The answer cache and the epochs that keep it honest, behind one trait.
//!
//! Values are opaque bytes under string keys, with a time to live. Epochs are counters per
//! scope (a tenant's domain): every change to a domain's documents bumps its epoch, and the
//! router puts the epoch into its cache keys, so an answer made before a change can never be
//! served after it. The embedded default is in-process ([`MemoryCache`]); the cluster one is
//! Redis ([`RedisCache`]). Must not know what an answer is.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

mod redis;

pub use redis::{RedisCache, RedisOptions};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    #[error("cache misconfigured: {0}")]
    Invalid(String),
}

#[async_trait::async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
    /// The current epoch of `scope` (0 if it never changed).
    async fn epoch(&self, scope: &str) -> Result<u64, CacheError>;
    /// Increments the epoch of `scope` and returns the new value.
    async fn bump_epoch(&self, scope: &str) -> Result<u64, CacheError>;
}

/// In-process cache with a bounded number of entries (oldest insertions evicted first).
#[derive(Debug)]
pub struct MemoryCache {
    max_entries: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, (Vec<u8>, Instant)>,
    order: VecDeque<String>,
    epochs: HashMap<String, u64>,
}

type Registry = Mutex<HashMap<PathBuf, Weak<MemoryCache>>>;

impl MemoryCache {
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries: max_entries.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// The one cache of the system whose data lives in `data_dir`: the services of one
    /// process share it (the router reads epochs the embedder bumps).
    pub fn shared(data_dir: &Path, max_entries: usize) -> Arc<Self> {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        let key = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        let mut registry = REGISTRY.get_or_init(Registry::default).lock();
        registry.retain(|_, weak| weak.strong_count() > 0);
        if let Some(cache) = registry.get(&key).and_then(Weak::upgrade) {
            return cache;
        }
        let cache = Arc::new(Self::new(max_entries));
        registry.insert(key, Arc::downgrade(&cache));
        cache
    }

    pub fn len(&self) -> usize {
        self.state.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut state = self.state.lock();
        match state.entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Ok(Some(value.clone())),
            Some(_) => {
                state.entries.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let expires = Instant::now() + ttl;
        let mut state = self.state.lock();
        if state
            .entries
            .insert(key.to_owned(), (value, expires))
            .is_none()
        {
            state.order.push_back(key.to_owned());
        }
        while state.entries.len() > self.max_entries {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            state.entries.remove(&oldest);
        }
        // Keys deleted or expired leave stale names in `order`; drop them when it grows.
        if state.order.len() > 2 * self.max_entries {
            let State { entries, order, .. } = &mut *state;
            order.retain(|k| entries.contains_key(k));
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.state.lock().entries.remove(key);
        Ok(())
    }

    async fn epoch(&self, scope: &str) -> Result<u64, CacheError> {
        Ok(self.state.lock().epochs.get(scope).copied().unwrap_or(0))
    }

    async fn bump_epoch(&self, scope: &str) -> Result<u64, CacheError> {
        let mut state = self.state.lock();
        let epoch = state.epochs.entry(scope.to_owned()).or_insert(0);
        *epoch += 1;
        Ok(*epoch)
    }
}

/// What every implementation must do; run against each of them.
#[cfg(test)]
mod contract {
    use super::*;

    pub async fn get_put_expire_delete(cache: &dyn Cache) {
        cache
            .put("a", b"1".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(cache.get("a").await.unwrap(), Some(b"1".to_vec()));
        cache.put("b", b"2".to_vec(), Duration::ZERO).await.unwrap();
        assert_eq!(cache.get("b").await.unwrap(), None);
        cache
            .put("c", b"3".to_vec(), Duration::from_millis(50))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(cache.get("c").await.unwrap(), None, "expired");
        cache.delete("a").await.unwrap();
        assert_eq!(cache.get("a").await.unwrap(), None);
    }

    pub async fn epochs_count_per_scope(cache: &dyn Cache) {
        assert_eq!(cache.epoch("t/hr").await.unwrap(), 0);
        assert_eq!(cache.bump_epoch("t/hr").await.unwrap(), 1);
        assert_eq!(cache.bump_epoch("t/hr").await.unwrap(), 2);
        assert_eq!(cache.epoch("t/hr").await.unwrap(), 2);
        assert_eq!(cache.epoch("t/legal").await.unwrap(), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn get_put_expire_delete() {
        contract::get_put_expire_delete(&MemoryCache::new(10)).await;
    }

    #[tokio::test]
    async fn epochs_count_per_scope() {
        contract::epochs_count_per_scope(&MemoryCache::new(3)).await;
    }

    #[tokio::test]
    async fn bounded_size_evicts_oldest() {
        let cache = MemoryCache::new(3);
        for i in 0..10 {
            cache
                .put(&format!("k{i}"), vec![i], Duration::from_secs(60))
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("k0").await.unwrap(), None);
        assert_eq!(cache.get("k9").await.unwrap(), Some(vec![9]));
    }

    #[tokio::test]
    async fn shared_per_data_dir() {
        let a = tempfile_dir("a");
        let b = tempfile_dir("b");
        let one = MemoryCache::shared(&a, 5);
        let two = MemoryCache::shared(&a, 5);
        assert!(Arc::ptr_eq(&one, &two));
        assert!(!Arc::ptr_eq(&one, &MemoryCache::shared(&b, 5)));
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rag-cache-test-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}

/// Against a real Redis: `RAG_TEST_REDIS_URL`, or the one on 127.0.0.1:6379 (`make test`
/// starts one when none is running). Each test has its own key prefix.
#[cfg(test)]
mod redis_tests {
    use super::*;

    fn options(test: &str) -> RedisOptions {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        RedisOptions {
            url: std::env::var("RAG_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            pool_size: 2,
            command_timeout: Duration::from_secs(2),
            key_prefix: format!("rag-test:{test}:{}:{nanos}:", std::process::id()),
        }
    }

    async fn redis(test: &str) -> Arc<RedisCache> {
        let cache = RedisCache::shared(&options(test)).expect("a Redis pool");
        if let Err(e) = cache.epoch("probe").await {
            panic!(
                "no Redis at {} ({e}): start redis-server, or set RAG_TEST_REDIS_URL",
                options(test).url
            );
        }
        cache
    }

    #[tokio::test]
    async fn get_put_expire_delete() {
        contract::get_put_expire_delete(redis("values").await.as_ref()).await;
    }

    #[tokio::test]
    async fn epochs_count_per_scope() {
        contract::epochs_count_per_scope(redis("epochs").await.as_ref()).await;
    }

    #[tokio::test]
    async fn processes_share_answers_and_epochs_through_redis() {
        let options = options("shared");
        let one = RedisCache::connect(&options).unwrap();
        let two = RedisCache::connect(&options).unwrap();
        one.put("q", b"answer".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        one.bump_epoch("t/hr").await.unwrap();
        assert_eq!(two.get("q").await.unwrap(), Some(b"answer".to_vec()));
        assert_eq!(two.epoch("t/hr").await.unwrap(), 1);
        let other = RedisCache::connect(&RedisOptions {
            key_prefix: format!("{}other:", options.key_prefix),
            ..options.clone()
        })
        .unwrap();
        assert_eq!(
            other.get("q").await.unwrap(),
            None,
            "prefixes separate deployments"
        );
    }

    #[tokio::test]
    async fn one_pool_per_process_and_url() {
        let options = options("pool");
        let one = RedisCache::shared(&options).unwrap();
        assert!(Arc::ptr_eq(&one, &RedisCache::shared(&options).unwrap()));
    }

    #[tokio::test]
    async fn an_unreachable_redis_fails_each_command_quickly() {
        let cache = RedisCache::connect(&RedisOptions {
            url: "redis://127.0.0.1:1".into(),
            command_timeout: Duration::from_millis(200),
            ..options("down")
        })
        .unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            cache.get("q").await,
            Err(CacheError::Unavailable(_))
        ));
        let first = started.elapsed();
        assert!(first < Duration::from_secs(2), "took {first:?}");
        // The breaker is open: the next commands do not wait at all.
        let started = std::time::Instant::now();
        for _ in 0..10 {
            assert!(cache.bump_epoch("t/hr").await.is_err());
        }
        assert!(
            started.elapsed() < Duration::from_millis(50),
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_malformed_url_is_a_configuration_error() {
        let e = RedisCache::connect(&RedisOptions {
            url: "http://nowhere".into(),
            ..options("url")
        })
        .unwrap_err();
        assert!(matches!(e, CacheError::Invalid(_)), "{e}");
    }
}
