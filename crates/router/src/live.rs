//! Domains, prompts and guardrails that change while the router runs (`router.live`).
//!
//! The router keeps them in one [`Live`] value, swapped whole: a request sees either the old
//! or the new configuration, never a mix. A document comes from a file (polled) or from a
//! Kubernetes ConfigMap (watched through the API); one that does not parse or validate is
//! refused with the reason in the log and in `rag_config_reloads_total{result="invalid"}`,
//! and the running configuration stays. The router is not ready until the first document of
//! its source has been applied, so a missing or broken ConfigMap fails loudly at deploy time.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::TryStreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, WatchEvent, WatchParams};
use rag_config::{LIVE_DOCUMENT_KEY, LiveConfigSource, LiveSections, Settings};
use rag_guardrails::{DeniedTopic, TopicPolicy};
use rag_telemetry::metrics::metrics;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::prompts::{PromptError, Prompts};

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Config(#[from] rag_config::ConfigError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Guardrail(#[from] rag_guardrails::GuardrailError),
    #[error("Kubernetes API: {0}")]
    Kubernetes(#[from] kube::Error),
}

/// The reloadable configuration in force.
#[derive(Debug)]
pub struct Live {
    /// The start-up settings with the live sections of the current document.
    pub settings: Settings,
    pub prompts: Prompts,
    /// Denied topics by domain ("" for questions asked in no domain).
    pub topics: HashMap<String, TopicPolicy>,
    /// Where this configuration came from (`start-up`, `file:<path>`, `configmap:<ns>/<name>@<version>`).
    pub origin: String,
}

impl Live {
    fn build(
        settings: Settings,
        prompts: &BTreeMap<String, String>,
        origin: String,
    ) -> Result<Self, LiveError> {
        Ok(Self {
            prompts: Prompts::load_with(&settings.prompts, prompts)?,
            topics: topic_policies(&settings)?,
            settings,
            origin,
        })
    }
}

/// The current [`Live`] and how to replace it.
#[derive(Debug)]
pub struct LiveConfig {
    /// The start-up settings: a document's sections replace theirs, the rest stays.
    base: Settings,
    current: ArcSwap<Live>,
    /// Whether the source's first document has been applied (always, without a source).
    loaded: AtomicBool,
}

impl LiveConfig {
    /// The start-up configuration, in force until the source's first document.
    pub fn new(settings: &Settings) -> Result<Self, LiveError> {
        let live = Live::build(settings.clone(), &BTreeMap::new(), "start-up".into())?;
        Ok(Self {
            base: settings.clone(),
            current: ArcSwap::from_pointee(live),
            loaded: AtomicBool::new(matches!(settings.router.live, LiveConfigSource::None)),
        })
    }

    /// The configuration in force (held by a request for its whole life).
    pub fn current(&self) -> Arc<Live> {
        self.current.load_full()
    }

    /// Whether the source's first document has been applied.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Puts `document` (with `prompts`, prompt files by key) in force, or changes nothing
    /// and says why.
    pub fn apply(
        &self,
        document: &str,
        prompts: &BTreeMap<String, String>,
        origin: String,
    ) -> Result<(), LiveError> {
        let settings = LiveSections::parse(document)?.apply(&self.base)?;
        let live = Live::build(settings, prompts, origin)?;
        let domains: Vec<&str> = live
            .settings
            .domains
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        tracing::info!(
            origin = %live.origin,
            domains = %domains.join(","),
            prompts = ?live.settings.prompts.versions,
            "configuration reloaded"
        );
        self.current.store(Arc::new(live));
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// [`LiveConfig::apply`], counted and logged as a reload from `source`.
    fn reload(
        &self,
        source: &str,
        document: &str,
        prompts: &BTreeMap<String, String>,
        origin: String,
    ) {
        let result = match self.apply(document, prompts, origin.clone()) {
            Ok(()) => "applied",
            Err(e) => {
                tracing::error!(%origin, error = %e, "configuration refused; the running one stays");
                "invalid"
            }
        };
        metrics().config_reload(source, result);
    }
}

/// The denied-topic policy of each domain: the global topics plus the domain's own.
fn topic_policies(settings: &Settings) -> Result<HashMap<String, TopicPolicy>, LiveError> {
    let topic = |t: &rag_config::DeniedTopicSettings| DeniedTopic {
        name: t.name.clone(),
        phrases: t.phrases.clone(),
    };
    let global: Vec<DeniedTopic> = settings
        .guardrails
        .denied_topics
        .iter()
        .map(topic)
        .collect();
    let mut policies = HashMap::new();
    policies.insert(String::new(), TopicPolicy::new(global.clone())?);
    for domain in &settings.domains {
        let mut topics = global.clone();
        topics.extend(domain.denied_topics.iter().map(topic));
        policies.insert(domain.name.clone(), TopicPolicy::new(topics)?);
    }
    Ok(policies)
}

/// Follows the configured source until `stop`: applies each new document to `live`.
pub async fn follow(live: Arc<LiveConfig>, stop: CancellationToken) {
    match live.base.router.live.clone() {
        LiveConfigSource::None => {}
        LiveConfigSource::File {
            path,
            poll_interval_ms,
        } => {
            let interval = Duration::from_millis(poll_interval_ms);
            stop.run_until_cancelled(follow_file(&live, &path, interval))
                .await;
        }
        LiveConfigSource::Kubernetes {
            config_map,
            namespace,
        } => {
            stop.run_until_cancelled(follow_config_map(&live, &config_map, namespace.as_deref()))
                .await;
        }
    }
}

/// Re-reads the file (and the prompt files it names, under `prompts.dir`) every `interval`,
/// and applies it when anything changed since the last attempt.
async fn follow_file(live: &LiveConfig, path: &Path, interval: Duration) {
    let origin = format!("file:{}", path.display());
    let mut seen: Option<Vec<u8>> = None;
    loop {
        match std::fs::read_to_string(path) {
            Ok(document) => {
                let prompts = prompt_files(live, &document);
                let fingerprint = fingerprint(&document, &prompts);
                if seen.as_ref() != Some(&fingerprint) {
                    seen = Some(fingerprint);
                    live.reload("file", &document, &prompts, origin.clone());
                }
            }
            Err(e) => {
                if seen.take().is_some() || !live.is_loaded() {
                    tracing::warn!(%origin, error = %e, "cannot read the configuration file; the running configuration stays");
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// The prompt files a document's `[prompts]` (or the start-up one) names, read from
/// `prompts.dir`, by key; none without a directory (the built-in ones are used).
fn prompt_files(live: &LiveConfig, document: &str) -> BTreeMap<String, String> {
    let prompts = LiveSections::parse(document)
        .ok()
        .and_then(|s| s.prompts)
        .unwrap_or_else(|| live.base.prompts.clone());
    let Some(dir) = &prompts.dir else {
        return BTreeMap::new();
    };
    prompts
        .versions
        .iter()
        .filter_map(|v| {
            let path = dir.join(&prompts.name).join(format!("{}.toml", v.version));
            let text = std::fs::read_to_string(path).ok()?;
            Some((rag_config::prompt_key(&prompts.name, &v.version), text))
        })
        .collect()
}

fn fingerprint(document: &str, prompts: &BTreeMap<String, String>) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(document.as_bytes());
    for (key, text) in prompts {
        hash.update([0]);
        hash.update(key.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
    }
    hash.finalize().to_vec()
}

/// Reads the ConfigMap, then watches it from that version; after the watch ends (the API
/// server closes watches every few minutes) or fails, reads it again. Errors back off from
/// 1 s to 30 s.
async fn follow_config_map(live: &LiveConfig, name: &str, namespace: Option<&str>) {
    let mut backoff = Duration::from_secs(1);
    let mut applied: Option<String> = None;
    loop {
        match watch_config_map(live, name, namespace, &mut applied).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::warn!(config_map = name, error = %e, retry_in = ?backoff, "cannot follow the configuration ConfigMap");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// One read and one watch of the ConfigMap; `applied` is the resource version last seen.
async fn watch_config_map(
    live: &LiveConfig,
    name: &str,
    namespace: Option<&str>,
    applied: &mut Option<String>,
) -> Result<(), LiveError> {
    let client = kube::Client::try_default().await?;
    let namespace = namespace.unwrap_or(client.default_namespace()).to_owned();
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let mut version = match api.get_opt(name).await? {
        Some(config_map) => {
            let version = config_map
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default();
            consider(live, &namespace, config_map, applied);
            version
        }
        None => {
            if !live.is_loaded() || applied.is_some() {
                tracing::error!(config_map = name, %namespace, "the configuration ConfigMap does not exist; the running configuration stays");
                *applied = None;
            }
            // From the start: its creation arrives as an ADDED event.
            "0".to_owned()
        }
    };
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    let mut events = std::pin::pin!(api.watch(&params, &version).await?);
    while let Some(event) = events.try_next().await? {
        match event {
            WatchEvent::Added(config_map) | WatchEvent::Modified(config_map) => {
                version = config_map
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap_or_default();
                consider(live, &namespace, config_map, applied);
            }
            WatchEvent::Deleted(_) => {
                tracing::error!(config_map = name, %namespace, "the configuration ConfigMap was deleted; the running configuration stays");
                *applied = None;
            }
            WatchEvent::Bookmark(bookmark) => version = bookmark.metadata.resource_version,
            WatchEvent::Error(status) => {
                // 410 Gone: the version is too old; the next read starts afresh.
                tracing::debug!(code = status.code, message = %status.message, version, "watch ended");
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Applies `config_map` unless its version is the one applied last.
fn consider(
    live: &LiveConfig,
    namespace: &str,
    config_map: ConfigMap,
    applied: &mut Option<String>,
) {
    let name = config_map.metadata.name.unwrap_or_default();
    let version = config_map.metadata.resource_version.unwrap_or_default();
    if applied.as_deref() == Some(version.as_str()) {
        return;
    }
    *applied = Some(version.clone());
    let mut data = config_map.data.unwrap_or_default();
    let origin = format!("configmap:{namespace}/{name}@{version}");
    let Some(document) = data.remove(LIVE_DOCUMENT_KEY) else {
        tracing::error!(%origin, key = LIVE_DOCUMENT_KEY, "the ConfigMap has no live configuration key; the running configuration stays");
        metrics().config_reload("kubernetes", "invalid");
        return;
    };
    live.reload("kubernetes", &document, &data, origin);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(source: LiveConfigSource) -> Settings {
        let mut settings = Settings::default();
        settings.router.live = source;
        settings
    }

    #[test]
    fn a_document_swaps_the_whole_configuration_and_a_bad_one_changes_nothing() {
        let live = LiveConfig::new(&settings(LiveConfigSource::Kubernetes {
            config_map: "rag-domains".into(),
            namespace: None,
        }))
        .unwrap();
        assert!(!live.is_loaded());
        let before = live.current();
        assert_eq!(before.origin, "start-up");

        let document = "[[domains]]\nname = \"support\"\n\
            [[domains.denied_topics]]\nname = \"pricing\"\nphrases = [\"discount\"]\n\
            [prompts]\nname = \"answer\"\nversions = [{ version = \"v3\", weight = 1 }]\n";
        let v3 = "system = \"Passages only.\"\nuser = \"{context} {question}\"";
        let prompts = BTreeMap::from([("answer.v3.toml".to_owned(), v3.to_owned())]);
        live.apply(document, &prompts, "test@1".into()).unwrap();
        assert!(live.is_loaded());
        let after = live.current();
        assert_eq!(after.settings.domains[0].name, "support");
        assert_eq!(after.prompts.choose("any").id, "answer/v3");
        assert!(after.topics["support"].check("a discount please").is_some());
        // A request that began before the swap keeps what it started with.
        assert_eq!(
            before.settings.domains.len(),
            Settings::default().domains.len()
        );

        for bad in [
            "[[domains]]\nname = \"Bad Name\"\n",
            "[router]\ntop_k = 1\n",
            "[prompts]\nname = \"answer\"\nversions = [{ version = \"v9\", weight = 1 }]\n",
        ] {
            assert!(
                live.apply(bad, &BTreeMap::new(), "bad".into()).is_err(),
                "{bad}"
            );
            assert_eq!(live.current().origin, "test@1");
        }
    }

    #[test]
    fn without_a_source_the_start_up_configuration_is_loaded() {
        let live = LiveConfig::new(&settings(LiveConfigSource::None)).unwrap();
        assert!(live.is_loaded());
        assert_eq!(live.current().settings.domains, Settings::default().domains);
    }

    #[test]
    fn the_fingerprint_covers_the_document_and_every_prompt_file() {
        let a = BTreeMap::from([("answer.v1.toml".to_owned(), "x".to_owned())]);
        let b = BTreeMap::from([("answer.v1.toml".to_owned(), "y".to_owned())]);
        assert_ne!(fingerprint("doc", &a), fingerprint("doc", &b));
        assert_ne!(fingerprint("doc", &a), fingerprint("doc2", &a));
        assert_eq!(fingerprint("doc", &a), fingerprint("doc", &a.clone()));
    }
}
