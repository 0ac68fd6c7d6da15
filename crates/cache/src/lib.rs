//! The answer cache and the epochs that keep it honest, behind one trait.
//!
//! Values are opaque bytes under string keys, with a time to live. Epochs are counters per
//! scope (a tenant's domain): every change to a domain's documents bumps its epoch, and the
//! router puts the epoch into its cache keys, so an answer made before a change can never be
//! served after it. The embedded default is in-process ([`MemoryCache`]); the cluster one is
//! Redis ([`RedisCache`]). Must not know what an answer is.
//!
//! The semantic layer remembers, per scope, the embedding and the text of each cached
//! question, and finds the stored questions whose exact cosine with a new one reaches a
//! threshold ([`semantic`]); the text comes back with each, for the caller's own checks.
//! The caller puts everything that must match (tenant, domain, epoch, …) into the scope, so
//! a hit can never cross them.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

mod redis;
pub mod semantic;

pub use redis::{RedisCache, RedisOptions};
pub use semantic::SemanticHit;

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
    /// Remembers that the value under `key` answers `question`, embedded as `vector`, in
    /// `scope`, for `ttl`.
    async fn remember_question(
        &self,
        scope: &str,
        vector: &[f32],
        key: &str,
        question: &str,
        ttl: Duration,
    ) -> Result<(), CacheError>;
    /// The keys of `scope`'s remembered questions whose exact cosine with `vector` is at
    /// least `min_cosine`, best first, at most `limit`, each with its question's text. Their
    /// values may have expired or been deleted since: read them with [`Cache::get`].
    async fn similar_questions(
        &self,
        scope: &str,
        vector: &[f32],
        min_cosine: f32,
        limit: usize,
    ) -> Result<Vec<SemanticHit>, CacheError>;
}

/// In-process cache with a bounded number of entries (oldest insertions evicted first), and
/// as many remembered questions. Similar questions are found by an exact scan of the scope,
/// which at the default bound (10 000 questions of 384 floats) takes about a millisecond.
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
    questions: HashMap<String, Vec<Question>>,
    /// Scopes of remembered questions, oldest first (one per question).
    question_order: VecDeque<String>,
}

#[derive(Debug)]
struct Question {
    key: String,
    text: String,
    vector: Vec<f32>,
    expires: Instant,
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

    async fn remember_question(
        &self,
        scope: &str,
        vector: &[f32],
        key: &str,
        question: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let State {
            questions,
            question_order,
            ..
        } = &mut *state;
        let scoped = questions.entry(scope.to_owned()).or_default();
        scoped.retain(|q| q.expires > now && q.key != key);
        scoped.push(Question {
            key: key.to_owned(),
            text: question.to_owned(),
            vector: vector.to_vec(),
            expires: now + ttl,
        });
        question_order.push_back(scope.to_owned());
        // Over the bound: drop the oldest question of the scope that was filled longest ago.
        while question_order.len() > self.max_entries {
            let Some(oldest) = question_order.pop_front() else {
                break;
            };
            if let Some(scoped) = questions.get_mut(&oldest) {
                if !scoped.is_empty() {
                    scoped.remove(0);
                }
                if scoped.is_empty() {
                    questions.remove(&oldest);
                }
            }
        }
        Ok(())
    }

    async fn similar_questions(
        &self,
        scope: &str,
        vector: &[f32],
        min_cosine: f32,
        limit: usize,
    ) -> Result<Vec<SemanticHit>, CacheError> {
        let now = Instant::now();
        let state = self.state.lock();
        let Some(scoped) = state.questions.get(scope) else {
            return Ok(Vec::new());
        };
        Ok(semantic::best_hits(
            vector,
            scoped
                .iter()
                .filter(|q| q.expires > now)
                .map(|q| (q.key.as_str(), q.text.as_str(), q.vector.as_slice())),
            min_cosine,
            limit,
        ))
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

    /// Similar questions: above the threshold only, best first, never from another scope,
    /// gone when expired.
    pub async fn similar_questions(cache: &dyn Cache) {
        let ttl = Duration::from_secs(60);
        let asked = [0.6f32, 0.8, 0.0];
        let close = [0.62f32, 0.78, 0.05]; // cosine ≈ 0.998
        let closer = [0.6f32, 0.8, 0.01]; // cosine ≈ 0.99995
        let far = [0.0f32, 0.6, 0.8]; // cosine 0.48
        cache
            .remember_question("t/hr/1", &close, "close", "question close?", ttl)
            .await
            .unwrap();
        cache
            .remember_question("t/hr/1", &closer, "closer", "question closer?", ttl)
            .await
            .unwrap();
        cache
            .remember_question("t/hr/1", &far, "far", "question far?", ttl)
            .await
            .unwrap();
        cache
            .remember_question("t/legal/1", &asked, "legal", "question legal?", ttl)
            .await
            .unwrap();
        cache
            .remember_question("u/hr/1", &asked, "tenant-u", "question tenant-u?", ttl)
            .await
            .unwrap();
        cache
            .remember_question("t/hr/2", &asked, "epoch-2", "question epoch-2?", ttl)
            .await
            .unwrap();

        let hits = cache
            .similar_questions("t/hr/1", &asked, 0.95, 5)
            .await
            .unwrap();
        let keys: Vec<&str> = hits.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["closer", "close"]);
        let questions: Vec<&str> = hits.iter().map(|h| h.question.as_str()).collect();
        assert_eq!(questions, ["question closer?", "question close?"]);
        assert!(hits.iter().all(|h| h.cosine >= 0.95));
        assert!(hits[0].cosine > hits[1].cosine);
        assert_eq!(
            cache
                .similar_questions("t/hr/1", &asked, 0.99999, 5)
                .await
                .unwrap()
                .len(),
            0,
            "nothing at or above a threshold no stored question reaches"
        );
        assert_eq!(
            cache
                .similar_questions("t/hr/1", &asked, 0.95, 1)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            cache
                .similar_questions("t/none/1", &asked, 0.5, 5)
                .await
                .unwrap()
                .is_empty()
        );

        cache
            .remember_question(
                "t/hr/3",
                &asked,
                "short",
                "question short?",
                Duration::from_millis(50),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(
            cache
                .similar_questions("t/hr/3", &asked, 0.5, 5)
                .await
                .unwrap()
                .is_empty()
        );
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
    async fn similar_questions() {
        contract::similar_questions(&MemoryCache::new(100)).await;
    }

    #[tokio::test]
    async fn remembered_questions_are_bounded() {
        let cache = MemoryCache::new(3);
        for i in 0..10u8 {
            let v = [1.0, f32::from(i) / 100.0];
            cache
                .remember_question("s", &v, &format!("k{i}"), "q", Duration::from_secs(60))
                .await
                .unwrap();
        }
        let hits = cache
            .similar_questions("s", &[1.0, 0.0], 0.0, 100)
            .await
            .unwrap();
        let mut keys: Vec<String> = hits.into_iter().map(|h| h.key).collect();
        keys.sort();
        assert_eq!(keys, ["k7", "k8", "k9"]);
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
            ca_file: None,
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
    async fn similar_questions() {
        contract::similar_questions(redis("similar").await.as_ref()).await;
    }

    /// Questions of realistic size found across processes (LSH buckets in Redis).
    #[tokio::test]
    async fn similar_questions_of_384_dimensions_across_processes() {
        let options = options("similar384");
        let one = RedisCache::connect(&options).unwrap();
        let two = RedisCache::connect(&options).unwrap();
        let asked: Vec<f32> = (0..384).map(|i| ((i * 7 % 13) as f32) - 6.0).collect();
        let paraphrase: Vec<f32> = asked
            .iter()
            .enumerate()
            .map(|(i, x)| x + if i % 50 == 0 { 0.5 } else { 0.0 })
            .collect();
        let other: Vec<f32> = (0..384).map(|i| ((i * 5 % 11) as f32) - 5.0).collect();
        one.remember_question(
            "t/hr/0",
            &paraphrase,
            "para",
            "question para?",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        one.remember_question(
            "t/hr/0",
            &other,
            "other",
            "question other?",
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        let hits = two
            .similar_questions("t/hr/0", &asked, 0.95, 5)
            .await
            .unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].key, "para");
        assert_eq!(hits[0].question, "question para?");
        assert!(hits[0].cosine > 0.99);
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

    /// A TLS-only Redis (`redis-server --port 0 --tls-port`, with a CA and a server
    /// certificate made by `openssl` for 127.0.0.1): `rediss://` with that CA works and passes
    /// the contract; the system's roots, and plain `redis://`, are refused.
    #[tokio::test]
    async fn rediss_with_a_ca_file_and_nothing_less() {
        let Some(server) = TlsRedis::start() else {
            return;
        };
        let tls = |url: String, ca_file: Option<PathBuf>| RedisOptions {
            url,
            ca_file,
            command_timeout: Duration::from_secs(2),
            ..options("tls")
        };
        let url = format!("rediss://:secret@127.0.0.1:{}", server.port);
        let cache = RedisCache::connect(&tls(url.clone(), Some(server.ca.clone()))).unwrap();
        contract::get_put_expire_delete(&cache).await;

        let untrusted = RedisCache::connect(&tls(url, None)).unwrap();
        assert!(matches!(
            untrusted.get("q").await,
            Err(CacheError::Unavailable(_))
        ));
        let plain = format!("redis://:secret@127.0.0.1:{}", server.port);
        let plain = RedisCache::connect(&tls(plain.clone(), None)).unwrap();
        assert!(plain.get("q").await.is_err());
        let e = RedisCache::connect(&tls(
            format!("redis://127.0.0.1:{}", server.port),
            Some(server.ca.clone()),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("rediss://"), "{e}");
    }

    struct TlsRedis {
        port: u16,
        ca: PathBuf,
        child: std::process::Child,
        _dir: tempfile::TempDir,
    }

    impl Drop for TlsRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl TlsRedis {
        /// `None` (the test is skipped, and says so) when redis-server or openssl is missing
        /// outside CI; in CI a missing tool fails the test.
        fn start() -> Option<Self> {
            use std::process::{Command, Stdio};
            let dir = tempfile::tempdir().unwrap();
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let certificates = rag_standins::certificates::for_loopback(dir.path());
            let child = certificates.as_ref().and_then(|c| {
                Command::new("redis-server")
                    .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
                    .args(["--appendonly", "no", "--requirepass", "secret"])
                    .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
                    .arg("--tls-cert-file")
                    .arg(&c.cert)
                    .arg("--tls-key-file")
                    .arg(&c.key)
                    .arg("--tls-ca-cert-file")
                    .arg(&c.ca)
                    .arg("--dir")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok()
            });
            let Some(child) = child else {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server with TLS and openssl are needed for this test"
                );
                eprintln!("skipped: needs openssl and redis-server");
                return None;
            };
            let started = std::time::Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "redis-server did not listen"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(Self {
                port,
                ca: certificates?.ca,
                child,
                _dir: dir,
            })
        }
    }
}
