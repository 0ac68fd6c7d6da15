//! Who is calling, and what they may do: API keys, the tenant they stand for, their scopes and
//! domains, and how often they may call.
//!
//! A key is sent as `Authorization: Bearer <key>`. The gateway keeps only each key's SHA-256
//! (the keys file, `gateway.auth.keys_file`, made with `ragctl keys create`), so a leaked file
//! lets no one in. The caller's tenant is the key's, never the request's: every handler takes
//! it from [`Caller`], and every service below filters by it (the retriever's search filter,
//! the cache's scope, the catalog, the feedback store).
//!
//! With `gateway.auth.mode = "none"` (allowed on a loopback address only) every caller is the
//! default tenant with every scope: the embedded system on one machine.

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rag_config::{AuthMode, AuthSettings, Settings};
use rag_core::{ErrorCode, ServiceError, validate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// What a key may do. `admin` may do everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Ask questions, rate answers, list the domains.
    Query,
    /// Upload, list, read the status of and delete documents.
    Upload,
    /// The operations figures and the feedback summary; and everything else.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Upload => "upload",
            Self::Admin => "admin",
        }
    }
}

/// One key of the keys file (`[[keys]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// A name for the key, in logs; never the secret.
    pub id: String,
    pub tenant: String,
    pub scopes: Vec<Scope>,
    /// The domains the key may read and write; every domain when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// This key's sustained rate (requests per second, 0 = unlimited) instead of
    /// `gateway.auth.rate_per_second`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the API keys file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the API keys file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "gateway.auth.mode = \"none\" is allowed only on a loopback address, and the gateway listens on {0}"
    )]
    OpenOnNetwork(std::net::SocketAddr),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// The authenticated caller of a request (a handler's argument).
#[derive(Clone, Debug)]
pub struct Caller {
    pub key_id: String,
    pub tenant: String,
    scopes: BTreeSet<Scope>,
    /// `None`: every domain.
    domains: Option<BTreeSet<String>>,
}

impl Caller {
    fn everything(tenant: &str) -> Self {
        Self {
            key_id: "anonymous".to_owned(),
            tenant: tenant.to_owned(),
            scopes: BTreeSet::from([Scope::Admin]),
            domains: None,
        }
    }

    /// 403 unless the caller has `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<(), ServiceError> {
        if self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin) {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::PermissionDenied,
            format!(
                "this API key lacks the {:?} scope (it has: {})",
                scope.as_str(),
                self.scopes
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }

    pub fn may_use(&self, domain: &str) -> bool {
        self.domains.as_ref().is_none_or(|d| d.contains(domain))
    }

    /// 403 unless the caller may use `domain`.
    pub fn check_domain(&self, domain: &str) -> Result<(), ServiceError> {
        if self.may_use(domain) {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::PermissionDenied,
            format!(
                "this API key may not use domain {domain:?}; it may use: {}",
                self.allowed_domains().join(", ")
            ),
        )
        .with_field("domain"))
    }

    /// The domain a question searches: the one asked for, if the key may use it; with none
    /// asked, every domain, or the key's only domain. A key of several domains must name one.
    pub fn query_domain(&self, asked: Option<String>) -> Result<Option<String>, ServiceError> {
        match (asked.filter(|d| !d.is_empty()), &self.domains) {
            (Some(domain), _) => self.check_domain(&domain).map(|()| Some(domain)),
            (None, None) => Ok(None),
            (None, Some(domains)) if domains.len() == 1 => Ok(domains.first().cloned()),
            (None, Some(_)) => Err(ServiceError::invalid_field(
                "domain",
                format!(
                    "this API key may use several domains; name one of: {}",
                    self.allowed_domains().join(", ")
                ),
            )),
        }
    }

    fn allowed_domains(&self) -> Vec<&str> {
        self.domains.iter().flatten().map(String::as_str).collect()
    }
}

/// A handler's caller, put there by [`authenticate`].
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Caller>>()
            .map(|caller| Caller::clone(caller))
            .ok_or_else(|| ApiError(ServiceError::internal("a route is missing authentication")))
    }
}

struct Key {
    caller: Arc<Caller>,
    limiter: Option<DefaultDirectRateLimiter>,
}

/// The keys of one reading of the keys file, by the SHA-256 of the key.
pub struct Keys {
    by_digest: HashMap<[u8; 32], Arc<Key>>,
}

impl Keys {
    fn parse(text: &str, settings: &AuthSettings, path: &Path) -> Result<Self, AuthError> {
        let invalid = |reason: String| AuthError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let file: KeysFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut by_digest = HashMap::new();
        let mut ids = BTreeSet::new();
        for entry in file.keys {
            let id = entry.id.clone();
            if !ids.insert(id.clone()) {
                return Err(invalid(format!("key id {id:?} appears twice")));
            }
            validate::name("tenant", &entry.tenant)
                .map_err(|e| invalid(format!("key {id:?}: {}", e.message)))?;
            for domain in &entry.domains {
                validate::name("domain", domain)
                    .map_err(|e| invalid(format!("key {id:?}: {}", e.message)))?;
            }
            if entry.scopes.is_empty() {
                return Err(invalid(format!("key {id:?} has no scopes")));
            }
            let digest: [u8; 32] = hex::decode(&entry.sha256)
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| invalid(format!("key {id:?}: sha256 is not 64 hex digits")))?;
            let rate = entry.rate_per_second.unwrap_or(settings.rate_per_second);
            let burst = entry.burst.unwrap_or(settings.burst).max(1);
            let limiter = NonZeroU32::new(rate).map(|rate| {
                let burst = NonZeroU32::new(burst).unwrap_or(rate);
                RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
            });
            let caller = Caller {
                key_id: id.clone(),
                tenant: entry.tenant,
                scopes: entry.scopes.into_iter().collect(),
                domains: (!entry.domains.is_empty()).then(|| entry.domains.into_iter().collect()),
            };
            let key = Arc::new(Key {
                caller: Arc::new(caller),
                limiter,
            });
            if by_digest.insert(digest, key).is_some() {
                return Err(invalid(format!("key {id:?} has the same key as another")));
            }
        }
        Ok(Self { by_digest })
    }

    fn find(&self, presented: &str) -> Option<&Arc<Key>> {
        self.by_digest
            .get(&<[u8; 32]>::from(Sha256::digest(presented)))
    }
}

/// Authenticates requests: open (loopback only) or by API key.
#[derive(Clone)]
pub enum Authenticator {
    Open(Arc<Caller>),
    Keys {
        keys: Arc<ArcSwap<Keys>>,
        path: PathBuf,
        settings: AuthSettings,
    },
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Open(caller) => write!(f, "Authenticator::Open({})", caller.tenant),
            Self::Keys { path, .. } => write!(f, "Authenticator::Keys({})", path.display()),
        }
    }
}

impl Authenticator {
    /// Reads the keys file when there is one; an unreadable or invalid file stops start-up.
    pub fn new(settings: &Settings) -> Result<Self, AuthError> {
        let auth = &settings.gateway.auth;
        match (auth.mode, &auth.keys_file) {
            (AuthMode::ApiKeys, Some(path)) => {
                let keys = read_keys(path, auth)?;
                tracing::info!(path = %path.display(), keys = keys.by_digest.len(), "API keys loaded");
                Ok(Self::Keys {
                    keys: Arc::new(ArcSwap::from_pointee(keys)),
                    path: path.clone(),
                    settings: auth.clone(),
                })
            }
            // Validation refuses `api_keys` without a file; open is the only other case.
            _ => Ok(Self::Open(Arc::new(Caller::everything(
                &settings.default_tenant,
            )))),
        }
    }

    /// An open gateway must not be reachable from other machines.
    pub fn check_listener(&self, addr: std::net::SocketAddr) -> Result<(), AuthError> {
        match self {
            Self::Open(_) if !addr.ip().is_loopback() => Err(AuthError::OpenOnNetwork(addr)),
            _ => Ok(()),
        }
    }

    /// Re-reads the keys file every `reload_interval_ms` until `stop`; a file that changed
    /// and is valid replaces the keys (a revoked key stops working within the interval), an
    /// invalid one is logged and changes nothing.
    pub async fn follow(self, stop: tokio_util::sync::CancellationToken) {
        let Self::Keys {
            keys,
            path,
            settings,
        } = self
        else {
            return;
        };
        // Nothing remembered: the first tick (at once) reads the file again, so a change made
        // between start-up's reading and this task's start is not missed.
        let mut last: Option<Vec<u8>> = None;
        let mut tick = tokio::time::interval(Duration::from_millis(settings.reload_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Ok(bytes) = tokio::fs::read(&path).await else {
                tracing::warn!(path = %path.display(), "cannot read the API keys file; keeping the keys");
                continue;
            };
            if last.as_ref() == Some(&bytes) {
                continue;
            }
            let parsed = std::str::from_utf8(&bytes)
                .map_err(|e| AuthError::Invalid {
                    path: path.clone(),
                    reason: e.to_string(),
                })
                .and_then(|text| Keys::parse(text, &settings, &path));
            match parsed {
                Ok(new) => {
                    tracing::info!(path = %path.display(), keys = new.by_digest.len(), "API keys reloaded");
                    keys.store(Arc::new(new));
                }
                Err(e) => tracing::error!(error = %e, "API keys file rejected; keeping the keys"),
            }
            last = Some(bytes);
        }
    }

    fn authenticate(&self, header: Option<&str>) -> Result<Arc<Caller>, ServiceError> {
        let keys = match self {
            Self::Open(caller) => return Ok(caller.clone()),
            Self::Keys { keys, .. } => keys.load(),
        };
        let presented = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::Unauthenticated,
                    "an API key is required: send `Authorization: Bearer <key>`",
                )
            })?;
        let key = keys
            .find(presented)
            .ok_or_else(|| ServiceError::new(ErrorCode::Unauthenticated, "unknown API key"))?;
        if let Some(limiter) = &key.limiter
            && let Err(not_until) = limiter.check()
        {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(ServiceError::new(
                ErrorCode::RateLimited,
                format!(
                    "API key {:?} is over its request rate; retry after the time in Retry-After",
                    key.caller.key_id
                ),
            )
            .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64));
        }
        Ok(key.caller.clone())
    }
}

fn read_keys(path: &Path, settings: &AuthSettings) -> Result<Keys, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Keys::parse(&text, settings, path)
}

/// Middleware of the API routes: the caller (or 401), within its rate (or 429).
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.auth.authenticate(header) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => ApiError(e).into_response(),
    }
}

/// A new key for `entry`'s fields: the secret (shown once) and the entry that stores its hash.
pub fn generate_key(
    id: &str,
    tenant: &str,
    scopes: Vec<Scope>,
    domains: Vec<String>,
) -> Result<(String, KeyEntry), AuthError> {
    let mut random = [0_u8; 32];
    getrandom::fill(&mut random).map_err(|e| AuthError::Random(e.to_string()))?;
    let secret = format!("rag_{}", hex::encode(random));
    let entry = KeyEntry {
        id: id.to_owned(),
        tenant: tenant.to_owned(),
        scopes,
        domains,
        sha256: hex::encode(Sha256::digest(&secret)),
        rate_per_second: None,
        burst: None,
    };
    Ok((secret, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(entries: &[(&str, KeyEntry)], rate: u32) -> Authenticator {
        let file = KeysFile {
            keys: entries.iter().map(|(_, e)| e.clone()).collect(),
        };
        let settings = AuthSettings {
            mode: AuthMode::ApiKeys,
            rate_per_second: rate,
            burst: 2,
            ..AuthSettings::default()
        };
        let text = toml::to_string(&file).expect("serialisable");
        let parsed = Keys::parse(&text, &settings, Path::new("keys.toml")).expect("valid");
        Authenticator::Keys {
            keys: Arc::new(ArcSwap::from_pointee(parsed)),
            path: PathBuf::from("keys.toml"),
            settings,
        }
    }

    fn key(id: &str, tenant: &str, scopes: Vec<Scope>, domains: &[&str]) -> (String, KeyEntry) {
        generate_key(
            id,
            tenant,
            scopes,
            domains.iter().map(|d| (*d).to_owned()).collect(),
        )
        .expect("random")
    }

    #[test]
    fn a_key_names_its_tenant_and_a_wrong_or_missing_key_is_refused() {
        let (secret_a, a) = key("a", "acme", vec![Scope::Query], &[]);
        let (secret_b, b) = key("b", "globex", vec![Scope::Upload], &["hr"]);
        let auth = keys(&[(secret_a.as_str(), a), (secret_b.as_str(), b)], 0);
        let caller = auth
            .authenticate(Some(&format!("Bearer {secret_a}")))
            .unwrap();
        assert_eq!(caller.tenant, "acme");
        let caller = auth
            .authenticate(Some(&format!("Bearer {secret_b}")))
            .unwrap();
        assert_eq!(caller.tenant, "globex");
        for header in [
            None,
            Some("Bearer "),
            Some("Basic abc"),
            Some("Bearer rag_0000"),
        ] {
            let e = auth.authenticate(header).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unauthenticated, "{header:?}");
        }
        // The hash, not the key, is stored: presenting the stored hash does not work.
        let e = auth
            .authenticate(Some(&format!(
                "Bearer {}",
                hex::encode(Sha256::digest(&secret_a))
            )))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthenticated);
    }

    #[test]
    fn scopes_and_domains_limit_a_key() {
        let (secret, entry) = key("k", "acme", vec![Scope::Query], &["hr", "legal"]);
        let auth = keys(&[(secret.as_str(), entry)], 0);
        let caller = auth
            .authenticate(Some(&format!("Bearer {secret}")))
            .unwrap();
        caller.require(Scope::Query).unwrap();
        assert_eq!(
            caller.require(Scope::Upload).unwrap_err().code,
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            caller.require(Scope::Admin).unwrap_err().code,
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            caller.query_domain(Some("hr".into())).unwrap(),
            Some("hr".into())
        );
        assert_eq!(
            caller
                .query_domain(Some("finance".into()))
                .unwrap_err()
                .code,
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            caller.query_domain(None).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let admin = Caller::everything("acme");
        admin.require(Scope::Upload).unwrap();
        assert_eq!(admin.query_domain(None).unwrap(), None);
    }

    #[test]
    fn a_key_of_one_domain_searches_that_domain() {
        let (secret, entry) = key("k", "acme", vec![Scope::Query], &["hr"]);
        let auth = keys(&[(secret.as_str(), entry)], 0);
        let caller = auth
            .authenticate(Some(&format!("Bearer {secret}")))
            .unwrap();
        assert_eq!(caller.query_domain(None).unwrap(), Some("hr".into()));
    }

    #[test]
    fn a_key_over_its_rate_is_told_when_to_retry() {
        let (secret, entry) = key("k", "acme", vec![Scope::Query], &[]);
        let auth = keys(&[(secret.as_str(), entry)], 1);
        let header = format!("Bearer {secret}");
        // Burst 2, then refused until the next token (1 per second).
        auth.authenticate(Some(&header)).unwrap();
        auth.authenticate(Some(&header)).unwrap();
        let e = auth.authenticate(Some(&header)).unwrap_err();
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(e.retry_after_secs, Some(1));
    }

    #[test]
    fn invalid_files_are_refused_with_the_reason() {
        let settings = AuthSettings::default();
        let path = Path::new("keys.toml");
        let (_, good) = key("k", "acme", vec![Scope::Query], &[]);
        let mut cases = Vec::new();
        let mut bad_hash = good.clone();
        bad_hash.sha256 = "abc".into();
        cases.push((vec![bad_hash], "64 hex"));
        let mut bad_tenant = good.clone();
        bad_tenant.tenant = "Acme Corp".into();
        cases.push((vec![bad_tenant], "tenant"));
        let mut no_scopes = good.clone();
        no_scopes.scopes.clear();
        cases.push((vec![no_scopes], "no scopes"));
        cases.push((vec![good.clone(), good.clone()], "twice"));
        for (entries, expected) in cases {
            let text = toml::to_string(&KeysFile { keys: entries }).unwrap();
            let e = Keys::parse(&text, &settings, path).err().expect("refused");
            assert!(e.to_string().contains(expected), "{e}");
        }
        let e = Keys::parse("[[keys]]\nid = 1", &settings, path)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("keys.toml"), "{e}");
    }

    #[test]
    fn an_open_gateway_is_refused_off_loopback() {
        let auth = Authenticator::Open(Arc::new(Caller::everything("default")));
        auth.check_listener("127.0.0.1:8080".parse().unwrap())
            .unwrap();
        auth.check_listener("[::1]:8080".parse().unwrap()).unwrap();
        assert!(
            auth.check_listener("0.0.0.0:8080".parse().unwrap())
                .is_err()
        );
        assert!(
            auth.check_listener("10.0.0.5:8080".parse().unwrap())
                .is_err()
        );
    }
}
