//! The cluster backend: Redis 7, ElastiCache or Valkey through `fred`, with plain string
//! and list commands only (`GET`, `SET … PX`, `DEL`, `INCR`, `LPUSH`, `LTRIM`, `LRANGE`,
//! `PEXPIRE`), so no module or server extension (no RediSearch) is assumed.
//!
//! Keys: `<prefix>answer:<key>` for values (each with its own expiry) and
//! `<prefix>epoch:<scope>` for epochs (no expiry: an epoch that vanished would restart at 0
//! and could make an old key current again). Redis's `maxmemory-policy volatile-lru` bounds the
//! size, evicting only expiring keys, i.e. answers and question buckets, never epochs.
//!
//! Similar questions: `<prefix>sem2:<scope>:<table>:<bucket>` is a list of the questions
//! (answer key, question text, vector) that hash to that bucket of that table ([`crate::semantic`]),
//! newest first, trimmed to [`BUCKET_CAPACITY`], expiring [`Cache::remember_question`]'s ttl
//! after its last insertion. Remembering is one pipelined round trip (`LPUSH`, `LTRIM`,
//! `PEXPIRE` per table); a lookup is one pipelined round trip of [`semantic::TABLES`] `LRANGE`s and
//! an exact cosine over at most `TABLES × BUCKET_CAPACITY` candidates. So a lookup costs the
//! same whatever the number of cached questions (≤ 192 vectors read, ~300 KB at 384
//! dimensions in the worst case, far fewer in practice); a bucket of a crowded region keeps
//! only its newest questions, which lowers recall there, never precision. Scopes name the
//! epoch, so a document change leaves the old buckets to expire unread. So do the `sem1:`
//! buckets of routers before the question's text was stored (answer key + vector only): their
//! questions are never semantic hits again, their answers still exact ones.
//!
//! One pool per process and URL ([`RedisCache::shared`]). It connects in the background and
//! keeps reconnecting. A command that fails (or times out) opens a breaker: for the next
//! [`BREAKER_OPEN`] every command fails at once, without waiting on Redis, so an outage costs
//! a query one timeout at most per period, and the caller goes on without the cache.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use fred::prelude::{
    Builder, ClientLike, Config, Expiration, KeysInterface, ListInterface, Pool, ReconnectPolicy,
};
use parking_lot::Mutex;

use crate::semantic::{self, SemanticHit};
use crate::{Cache, CacheError};

/// Questions kept per bucket (newest first).
pub const BUCKET_CAPACITY: i64 = 32;

/// Where and how to reach Redis.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS.
    pub url: String,
    /// For `rediss://`: a PEM file of the CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    pub pool_size: usize,
    /// The longest a command may take, including waiting for a reconnection.
    pub command_timeout: Duration,
    /// Put in front of every key, so several deployments can share one Redis.
    pub key_prefix: String,
}

/// How long commands fail fast after one failed.
pub const BREAKER_OPEN: Duration = Duration::from_secs(2);

pub struct RedisCache {
    pool: Pool,
    prefix: String,
    /// Until when commands fail without being sent.
    open_until: Mutex<Option<Instant>>,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

type Registry = Mutex<HashMap<RedisOptions, Weak<RedisCache>>>;

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// A TLS client trusting only the CA certificates in `ca_file` (PEM).
fn tls_trusting(ca_file: &Path) -> Result<rustls::ClientConfig, CacheError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let invalid = |e: String| CacheError::Invalid(format!("CA file {}: {e}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| invalid(e.to_string()))? {
        roots
            .add(cert.map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no certificate in it".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl RedisCache {
    /// The pool of this process for `options`, made on first use.
    pub fn shared(options: &RedisOptions) -> Result<Arc<Self>, CacheError> {
        let mut registry = REGISTRY.lock();
        registry.retain(|_, cache| cache.strong_count() > 0);
        if let Some(cache) = registry.get(options).and_then(Weak::upgrade) {
            return Ok(cache);
        }
        let cache = Arc::new(Self::connect(options)?);
        registry.insert(options.clone(), Arc::downgrade(&cache));
        Ok(cache)
    }

    /// A new pool for `options`; it connects in the background (a Tokio runtime must be
    /// running). Fails only on a malformed URL.
    pub fn connect(options: &RedisOptions) -> Result<Self, CacheError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(CacheError::Invalid(
                "the Redis cache needs a Tokio runtime".into(),
            ));
        }
        let tls = options.url.starts_with("rediss://");
        if !tls && !options.url.starts_with("redis://") {
            return Err(CacheError::Invalid(format!(
                "Redis URL {:?} must start with redis:// or rediss:// (TLS)",
                options.url
            )));
        }
        let mut config = Config::from_url(&options.url)
            .map_err(|e| CacheError::Invalid(format!("invalid Redis URL: {e}")))?;
        match (&options.ca_file, tls) {
            (Some(ca_file), true) => config.tls = Some(tls_trusting(ca_file)?.into()),
            (Some(_), false) => {
                return Err(CacheError::Invalid(
                    "a CA file is for rediss:// URLs (TLS) only".into(),
                ));
            }
            (None, _) => {}
        }
        let mut builder = Builder::from_config(config);
        builder
            // A first connection that fails is retried like a lost one, not fatal.
            .with_config(|config| config.fail_fast = false)
            .with_performance_config(|perf| perf.default_command_timeout = options.command_timeout)
            .with_connection_config(|connection| {
                connection.connection_timeout = options.command_timeout;
                connection.internal_command_timeout = options.command_timeout;
                connection.max_command_attempts = 1;
            })
            // Forever, backing off from 100 ms to 5 s.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
        let pool = builder
            .build_pool(options.pool_size.max(1))
            .map_err(|e| CacheError::Invalid(e.to_string()))?;
        // The connection task lives as long as the pool; `Drop` ends it.
        drop(pool.connect());
        Ok(Self {
            pool,
            prefix: options.key_prefix.clone(),
            open_until: Mutex::new(None),
        })
    }

    /// Runs `command` unless the breaker is open; a failure opens it.
    async fn guarded<T>(
        &self,
        command: impl Future<Output = Result<T, fred::error::Error>>,
    ) -> Result<T, CacheError> {
        if self
            .open_until
            .lock()
            .is_some_and(|until| Instant::now() < until)
        {
            return Err(CacheError::Unavailable(
                "Redis failed moments ago; not trying again yet".into(),
            ));
        }
        command.await.map_err(|e| {
            *self.open_until.lock() = Some(Instant::now() + BREAKER_OPEN);
            CacheError::Unavailable(e.to_string())
        })
    }

    fn answer_key(&self, key: &str) -> String {
        format!("{}answer:{key}", self.prefix)
    }

    fn epoch_key(&self, scope: &str) -> String {
        format!("{}epoch:{scope}", self.prefix)
    }

    /// The bucket of each table that `vector` falls into.
    fn bucket_keys(&self, scope: &str, vector: &[f32]) -> Vec<String> {
        semantic::signatures(vector)
            .iter()
            .enumerate()
            .map(|(table, bucket)| format!("{}sem2:{scope}:{table}:{bucket:02x}", self.prefix))
            .collect()
    }
}

impl Drop for RedisCache {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            runtime.spawn(async move {
                let _ = pool.quit().await;
            });
        }
    }
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.guarded(self.pool.get(self.answer_key(key))).await
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        if millis == 0 {
            // Expired on arrival.
            return self.delete(key).await;
        }
        self.guarded(self.pool.set::<(), _, _>(
            self.answer_key(key),
            value,
            Some(Expiration::PX(millis)),
            None,
            false,
        ))
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.guarded(self.pool.del::<(), _>(self.answer_key(key)))
            .await
    }

    async fn epoch(&self, scope: &str) -> Result<u64, CacheError> {
        self.guarded(self.pool.get::<Option<u64>, _>(self.epoch_key(scope)))
            .await
            .map(Option::unwrap_or_default)
    }

    async fn bump_epoch(&self, scope: &str) -> Result<u64, CacheError> {
        self.guarded(self.pool.incr(self.epoch_key(scope))).await
    }

    async fn remember_question(
        &self,
        scope: &str,
        vector: &[f32],
        key: &str,
        question: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        if millis == 0 {
            return Ok(());
        }
        let entry = semantic::encode_entry(key, question, vector).ok_or_else(|| {
            CacheError::Invalid("cache key or question longer than 64 KiB".into())
        })?;
        let pipeline = self.pool.next().pipeline();
        let queue = async {
            for bucket in self.bucket_keys(scope, vector) {
                pipeline
                    .lpush::<(), _, _>(&bucket, entry.as_slice())
                    .await?;
                pipeline
                    .ltrim::<(), _>(&bucket, 0, BUCKET_CAPACITY - 1)
                    .await?;
                pipeline.pexpire::<(), _>(&bucket, millis, None).await?;
            }
            pipeline.all::<()>().await
        };
        self.guarded(queue).await
    }

    async fn similar_questions(
        &self,
        scope: &str,
        vector: &[f32],
        min_cosine: f32,
        limit: usize,
    ) -> Result<Vec<SemanticHit>, CacheError> {
        let pipeline = self.pool.next().pipeline();
        let fetch = async {
            for bucket in self.bucket_keys(scope, vector) {
                pipeline.lrange::<(), _>(&bucket, 0, -1).await?;
            }
            pipeline.all::<Vec<Vec<Vec<u8>>>>().await
        };
        let buckets = self.guarded(fetch).await?;
        let entries: Vec<semantic::Entry> = buckets
            .iter()
            .flatten()
            .filter_map(|bytes| semantic::decode_entry(bytes))
            .collect();
        Ok(semantic::best_hits(
            vector,
            entries
                .iter()
                .map(|(k, q, v)| (k.as_str(), q.as_str(), v.as_slice())),
            min_cosine,
            limit,
        ))
    }
}
