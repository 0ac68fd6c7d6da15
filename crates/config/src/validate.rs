//! Start-up validation: a bad configuration stops the process with a message naming the key.

use std::path::PathBuf;

use crate::{
    AuthMode, AwsCredentials, CacheBackend, DeniedTopicSettings, EmbeddingSettings,
    FeedbackSettings, GeneratorSettings, LiveConfigSource, RerankerSettings, Settings, Tier,
    VectorStoreSettings,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration is malformed: {0}")]
    Parse(String),
    #[error("configuration key `{key}` is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Bounds of `ingest.chunk_size`, in tokens: below, chunks are fragments; above, every
/// model truncates (the chunker also caps chunks at what the configured model takes).
const MIN_CHUNK_TOKENS: usize = 16;
const MAX_CHUNK_TOKENS: usize = 8192;

/// Most fused candidates one rerank may re-score (`retriever.rerank_candidates`).
const MAX_RERANK_CANDIDATES: u32 = 200;

/// The rule every tenant, domain and queue name follows, wherever it is checked.
fn is_name(s: &str) -> bool {
    rag_core::validate::name("name", s).is_ok()
}

/// `http://127.0.0.1:…`, `http://localhost:…` or `http://[::1]:…`.
fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or_default();
    let host = rest.split('/').next().unwrap_or_default();
    let host = host
        .rsplit_once(':')
        .filter(|(h, port)| !h.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{url:?} must start with http:// or https://"),
        ))
    }
}

impl Settings {
    fn validate_aws(&self) -> Result<(), ConfigError> {
        if self.aws.region.trim().is_empty() {
            return Err(invalid("aws.region", "must not be empty"));
        }
        if let Some(url) = &self.aws.endpoint_url {
            check_url("aws.endpoint_url", url)?;
        }
        if self.aws.credentials == AwsCredentials::Emulator
            && !self
                .aws
                .endpoint_url
                .as_deref()
                .is_some_and(is_loopback_url)
        {
            return Err(invalid(
                "aws.credentials",
                "\"emulator\" needs aws.endpoint_url on a loopback address",
            ));
        }
        Ok(())
    }

    fn validate_live(&self) -> Result<(), ConfigError> {
        match &self.router.live {
            LiveConfigSource::None => {}
            LiveConfigSource::File {
                path,
                poll_interval_ms,
            } => {
                if path.as_os_str().is_empty() {
                    return Err(invalid("router.live.path", "must name a file"));
                }
                if !(100..=3_600_000).contains(poll_interval_ms) {
                    return Err(invalid(
                        "router.live.poll_interval_ms",
                        "must be 100 to 3600000",
                    ));
                }
            }
            LiveConfigSource::Kubernetes {
                config_map,
                namespace,
            } => {
                // Kubernetes object names: DNS-1123 subdomains (namespaces: labels).
                let dns = |s: &str, max: usize| {
                    !s.is_empty()
                        && s.len() <= max
                        && s.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                        })
                };
                if !dns(config_map, 253) {
                    return Err(invalid(
                        "router.live.config_map",
                        "must be a Kubernetes object name (a-z, 0-9, '-', '.')",
                    ));
                }
                if namespace
                    .as_deref()
                    .is_some_and(|ns| !dns(ns, 63) || ns.contains('.'))
                {
                    return Err(invalid(
                        "router.live.namespace",
                        "must be a Kubernetes namespace name (a-z, 0-9, '-')",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let gateway = &self.gateway;
        if gateway.max_in_flight == 0 {
            return Err(invalid("gateway.max_in_flight", "must be positive"));
        }
        match gateway.auth.mode {
            AuthMode::None if !gateway.listen.ip().is_loopback() => Err(invalid(
                "gateway.auth.mode",
                format!(
                    "\"none\" lets anyone in as tenant {:?}, so it is allowed only on a loopback \
                     address, not {}; set mode = \"api_keys\" and keys_file (keys are made with \
                     `ragctl keys create`)",
                    self.default_tenant, gateway.listen
                ),
            )),
            AuthMode::ApiKeys if gateway.auth.keys_file.is_none() => Err(invalid(
                "gateway.auth.keys_file",
                "mode \"api_keys\" needs the keys file (made with `ragctl keys create`)",
            )),
            _ if gateway.auth.rate_per_second > 0 && gateway.auth.burst == 0 => Err(invalid(
                "gateway.auth.burst",
                "must be positive when rate_per_second is",
            )),
            _ if gateway.auth.reload_interval_ms == 0 => Err(invalid(
                "gateway.auth.reload_interval_ms",
                "must be positive",
            )),
            _ => Ok(()),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_name(&self.default_tenant) {
            return Err(invalid(
                "default_tenant",
                "must be 1-64 characters of a-z, 0-9, '-', '_'",
            ));
        }
        self.validate_aws()?;
        if let Some(url) = &self.telemetry.otlp_endpoint {
            check_url("telemetry.otlp_endpoint", url)?;
        }
        if !(0.0..=1.0).contains(&self.telemetry.trace_sample_ratio) {
            return Err(invalid("telemetry.trace_sample_ratio", "must be in [0, 1]"));
        }
        if let VectorStoreSettings::Qdrant {
            url, collection, ..
        } = &self.vector_store
        {
            check_url("vector_store.url", url)?;
            if !is_name(collection) {
                return Err(invalid(
                    "vector_store.collection",
                    "must be 1-64 characters of a-z, 0-9, '-', '_'",
                ));
            }
        }
        if let EmbeddingSettings::Bedrock {
            dimensions,
            concurrency,
            max_attempts,
            endpoint_url,
            ..
        } = &self.embedding
        {
            if let Some(url) = endpoint_url {
                check_url("embedding.endpoint_url", url)?;
            }
            if ![256, 512, 1024].contains(dimensions) {
                return Err(invalid(
                    "embedding.dimensions",
                    "Titan V2 takes 256, 512 or 1024",
                ));
            }
            if *concurrency == 0 || *max_attempts == 0 {
                return Err(invalid(
                    "embedding.concurrency",
                    "concurrency and max_attempts must be positive",
                ));
            }
        }
        check_url("gateway.router_url", &self.gateway.router_url)?;
        check_url("gateway.documents_url", &self.gateway.documents_url)?;
        check_url("router.retriever_url", &self.router.retriever_url)?;
        check_url("router.embedder_url", &self.router.embedder_url)?;
        check_url("retriever.embedder_url", &self.retriever.embedder_url)?;
        if self.gateway.max_upload_bytes == 0 {
            return Err(invalid("gateway.max_upload_bytes", "must be positive"));
        }
        if self.gateway.max_body_bytes < 1024 {
            return Err(invalid("gateway.max_body_bytes", "must be at least 1024"));
        }
        self.validate_auth()?;
        if self.router.top_k == 0 || self.router.top_k > self.router.max_top_k {
            return Err(invalid("router.top_k", "must be in 1..=router.max_top_k"));
        }
        if !(0.0..=1.0).contains(&self.router.min_relevance) {
            return Err(invalid("router.min_relevance", "must be in [0, 1]"));
        }
        if self.router.max_answer_sentences == 0 {
            return Err(invalid("router.max_answer_sentences", "must be positive"));
        }
        self.validate_routing()?;
        self.validate_live()?;
        if !(0.0..=1.0).contains(&self.retriever.alpha) {
            return Err(invalid("retriever.alpha", "must be in [0, 1]"));
        }
        if self.retriever.rrf_k <= 0.0 {
            return Err(invalid("retriever.rrf_k", "must be positive"));
        }
        if self.retriever.candidates_per_hit == 0 {
            return Err(invalid("retriever.candidates_per_hit", "must be positive"));
        }
        if self.retriever.neighbours > self.retriever.max_neighbours {
            return Err(invalid(
                "retriever.neighbours",
                "must be at most retriever.max_neighbours",
            ));
        }
        self.validate_reranker()?;
        if !(MIN_CHUNK_TOKENS..=MAX_CHUNK_TOKENS).contains(&self.ingest.chunk_size) {
            return Err(invalid(
                "ingest.chunk_size",
                format!("must be {MIN_CHUNK_TOKENS} to {MAX_CHUNK_TOKENS} tokens"),
            ));
        }
        if self.ingest.chunk_overlap >= self.ingest.chunk_size / 2 {
            return Err(invalid(
                "ingest.chunk_overlap",
                "must be less than half of ingest.chunk_size",
            ));
        }
        if self.ingest.chunks_per_batch == 0 || self.ingest.concurrency == 0 {
            return Err(invalid(
                "ingest.chunks_per_batch",
                "batch size and concurrency must be positive",
            ));
        }
        if self.ingest.extract_timeout_ms == 0 {
            return Err(invalid("ingest.extract_timeout_ms", "must be positive"));
        }
        if self.ingest.max_extracted_bytes == 0 {
            return Err(invalid("ingest.max_extracted_bytes", "must be positive"));
        }
        if self.embedder.batch_size == 0 {
            return Err(invalid("embedder.batch_size", "must be positive"));
        }
        if !(1..=10).contains(&self.embedder.receive_batch) {
            return Err(invalid(
                "embedder.receive_batch",
                "must be between 1 and 10 (the most one SQS receive returns)",
            ));
        }
        if let CacheBackend::Redis {
            url,
            pool_size,
            command_timeout_ms,
            ..
        } = &self.cache.backend
        {
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                return Err(invalid(
                    "cache.backend.url",
                    format!("{url:?} must start with redis:// or rediss:// (TLS)"),
                ));
            }
            if !(1..=64).contains(pool_size) {
                return Err(invalid("cache.backend.pool_size", "must be 1 to 64"));
            }
            if !(1..=60_000).contains(command_timeout_ms) {
                return Err(invalid(
                    "cache.backend.command_timeout_ms",
                    "must be 1 to 60000",
                ));
            }
        }
        if self.queues.max_receives == 0 {
            return Err(invalid("queues.max_receives", "must be positive"));
        }
        if self.queues.visibility_timeout_secs == 0 {
            return Err(invalid(
                "queues.visibility_timeout_secs",
                "must be positive",
            ));
        }
        if self.queues.documents == self.queues.chunks
            || !is_name(&self.queues.documents)
            || !is_name(&self.queues.chunks)
        {
            return Err(invalid(
                "queues.documents",
                "queue names must be distinct names of a-z, 0-9, '-', '_'",
            ));
        }
        if self.domains.is_empty() {
            return Err(invalid("domains", "at least one domain is required"));
        }
        for (i, domain) in self.domains.iter().enumerate() {
            if !is_name(&domain.name) {
                return Err(invalid(
                    "domains.name",
                    format!("{:?} is not a valid domain name", domain.name),
                ));
            }
            if self.domains[..i].iter().any(|d| d.name == domain.name) {
                return Err(invalid(
                    "domains.name",
                    format!("domain {:?} is listed twice", domain.name),
                ));
            }
            let _ = Tier::as_str(domain.default_tier);
            if domain
                .strong_threshold
                .is_some_and(|t| !(t.is_finite() && t > 0.0))
            {
                return Err(invalid(
                    "domains.strong_threshold",
                    format!("domain {:?}: must be a positive number", domain.name),
                ));
            }
            check_terms("domains.technical_terms", &domain.technical_terms)
                .map_err(|e| with_domain(e, &domain.name))?;
            if let Some(t) = domain.semantic_threshold {
                check_semantic_threshold("domains.semantic_threshold", t)
                    .map_err(|e| with_domain(e, &domain.name))?;
            }
            check_topics("domains.denied_topics", &domain.denied_topics)
                .map_err(|e| with_domain(e, &domain.name))?;
            if domain
                .neighbours
                .is_some_and(|n| n > self.retriever.max_neighbours)
            {
                return Err(invalid(
                    "domains.neighbours",
                    format!(
                        "domain {:?}: must be at most retriever.max_neighbours",
                        domain.name
                    ),
                ));
            }
        }
        check_semantic_threshold("cache.semantic_threshold", self.cache.semantic_threshold)?;
        check_topics("guardrails.denied_topics", &self.guardrails.denied_topics)?;
        self.validate_generation()
    }

    fn validate_generation(&self) -> Result<(), ConfigError> {
        let generation = &self.generation;
        for (key, tier) in [
            ("generation.light", &generation.light),
            ("generation.strong", &generation.strong),
        ] {
            match tier {
                GeneratorSettings::Extractive => {}
                GeneratorSettings::Bedrock {
                    model_id,
                    max_attempts,
                    timeout_ms,
                    endpoint_url,
                    ..
                } => {
                    if model_id.trim().is_empty() {
                        return Err(invalid(key, "model_id must not be empty"));
                    }
                    if let Some(url) = endpoint_url {
                        check_url(key, url)?;
                    }
                    check_attempts(key, *max_attempts, *timeout_ms)?;
                }
                GeneratorSettings::Openai {
                    base_url,
                    model,
                    max_attempts,
                    timeout_ms,
                    ..
                } => {
                    check_url(key, base_url)?;
                    if model.trim().is_empty() {
                        return Err(invalid(key, "model must not be empty"));
                    }
                    check_attempts(key, *max_attempts, *timeout_ms)?;
                }
                GeneratorSettings::Local {
                    model_path,
                    model_id,
                    context_tokens,
                    max_waiting,
                    timeout_ms,
                    repeat_penalty,
                    ..
                } => {
                    if model_path
                        .as_ref()
                        .is_some_and(|p| p.as_os_str().is_empty())
                    {
                        return Err(invalid(key, "model_path must name a .gguf file"));
                    }
                    if model_id.as_ref().is_some_and(|m| m.trim().is_empty()) {
                        return Err(invalid(key, "model_id must not be empty"));
                    }
                    if !(256..=4096).contains(context_tokens) {
                        return Err(invalid(key, "context_tokens must be 256 to 4096"));
                    }
                    if *max_waiting > 1024 {
                        return Err(invalid(key, "max_waiting must be at most 1024"));
                    }
                    if !(100..=600_000).contains(timeout_ms) {
                        return Err(invalid(key, "timeout_ms must be 100 to 600000"));
                    }
                    if !(1.0..=2.0).contains(repeat_penalty) {
                        return Err(invalid(key, "repeat_penalty must be 1 to 2"));
                    }
                }
            }
        }
        if !(1..=32_768).contains(&generation.max_output_tokens) {
            return Err(invalid(
                "generation.max_output_tokens",
                "must be 1 to 32768",
            ));
        }
        if !(0.0..=2.0).contains(&generation.temperature) {
            return Err(invalid("generation.temperature", "must be in [0, 2]"));
        }
        if !(1..=50).contains(&generation.max_context_passages) {
            return Err(invalid(
                "generation.max_context_passages",
                "must be 1 to 50",
            ));
        }
        let prompts = &self.prompts;
        if !is_name(&prompts.name) {
            return Err(invalid(
                "prompts.name",
                "must be a name of a-z, 0-9, '-', '_'",
            ));
        }
        if prompts.versions.iter().all(|v| v.weight == 0) {
            return Err(invalid(
                "prompts.versions",
                "at least one version with a positive weight is required",
            ));
        }
        for (i, variant) in prompts.versions.iter().enumerate() {
            if !is_name(&variant.version)
                || prompts.versions[..i]
                    .iter()
                    .any(|v| v.version == variant.version)
            {
                return Err(invalid(
                    "prompts.versions",
                    format!("{:?} must be a distinct name like \"v2\"", variant.version),
                ));
            }
        }
        for (model, price) in &self.pricing {
            if !(price.input_per_million.is_finite()
                && price.input_per_million >= 0.0
                && price.output_per_million.is_finite()
                && price.output_per_million >= 0.0)
            {
                return Err(invalid(
                    "pricing",
                    format!("{model:?}: prices must be non-negative numbers"),
                ));
            }
        }
        let drift = &self.drift;
        if drift.recent_hours == 0 || drift.baseline_days == 0 {
            return Err(invalid(
                "drift",
                "recent_hours and baseline_days must be positive",
            ));
        }
        if !(drift.alpha > 0.0 && drift.alpha < 1.0) {
            return Err(invalid("drift.alpha", "must be in (0, 1)"));
        }
        if drift.components == 0 || drift.components > 16 {
            return Err(invalid("drift.components", "must be in 1..=16"));
        }
        if drift.min_questions < 2
            || drift.min_documents < 2
            || drift.max_questions < drift.min_questions
        {
            return Err(invalid(
                "drift",
                "min_questions and min_documents must be at least 2, and max_questions at least min_questions",
            ));
        }
        if let FeedbackSettings::Postgres { url, .. } = &self.feedback
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "feedback.url",
                "must start with postgres:// or postgresql://",
            ));
        }
        Ok(())
    }

    fn validate_reranker(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_RERANK_CANDIDATES).contains(&self.retriever.rerank_candidates) {
            return Err(invalid(
                "retriever.rerank_candidates",
                format!("must be 1 to {MAX_RERANK_CANDIDATES}"),
            ));
        }
        match &self.reranker {
            RerankerSettings::None => {
                let default_on = self.retriever.rerank.then_some("retriever.rerank");
                let domain_on = self
                    .domains
                    .iter()
                    .find(|d| d.rerank == Some(true))
                    .map(|_| "domains.rerank");
                if let Some(key) = default_on.or(domain_on) {
                    return Err(invalid(
                        key,
                        "reranking is on, but reranker.kind is \"none\"; set it to \"cross_encoder\" (with model_dir) or \"bedrock\"",
                    ));
                }
            }
            RerankerSettings::CrossEncoder {
                model_dir,
                max_tokens,
            } => {
                if model_dir.as_os_str().is_empty() {
                    return Err(invalid(
                        "reranker.model_dir",
                        "must name a cross-encoder directory (config.json, tokenizer.json, model.safetensors)",
                    ));
                }
                if !(16..=8192).contains(max_tokens) {
                    return Err(invalid("reranker.max_tokens", "must be 16 to 8192"));
                }
            }
            RerankerSettings::Bedrock {
                model_id,
                max_attempts,
                endpoint_url,
            } => {
                if model_id.trim().is_empty() {
                    return Err(invalid(
                        "reranker.model_id",
                        "must name a Bedrock rerank model, e.g. \"cohere.rerank-v3-5:0\" or \"amazon.rerank-v1:0\"",
                    ));
                }
                if !(1..=20).contains(max_attempts) {
                    return Err(invalid("reranker.max_attempts", "must be 1 to 20"));
                }
                if let Some(url) = endpoint_url {
                    check_url("reranker.endpoint_url", url)?;
                }
            }
        }
        Ok(())
    }

    fn validate_routing(&self) -> Result<(), ConfigError> {
        let routing = &self.router.routing;
        if !(routing.strong_threshold.is_finite() && routing.strong_threshold > 0.0) {
            return Err(invalid(
                "router.routing.strong_threshold",
                "must be a positive number",
            ));
        }
        let w = &routing.weights;
        for (name, weight) in [
            ("per_extra_word", w.per_extra_word),
            ("per_extra_sentence", w.per_extra_sentence),
            ("technical_density", w.technical_density),
            ("per_logical_operator", w.per_logical_operator),
            ("multi_part", w.multi_part),
            ("per_negation", w.per_negation),
        ] {
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(invalid(
                    "router.routing.weights",
                    format!("{name} must be a finite number ≥ 0"),
                ));
            }
        }
        check_terms("router.routing.technical_terms", &routing.technical_terms)
    }
}

fn check_semantic_threshold(key: &'static str, threshold: f32) -> Result<(), ConfigError> {
    if threshold.is_finite() && threshold > 0.5 {
        Ok(())
    } else {
        Err(invalid(
            key,
            "must be above 0.5 (a cosine; 1.0 or more turns the semantic cache off)",
        ))
    }
}

fn check_attempts(key: &'static str, attempts: u32, timeout_ms: u64) -> Result<(), ConfigError> {
    if !(1..=20).contains(&attempts) {
        return Err(invalid(key, "max_attempts must be 1 to 20"));
    }
    if !(100..=600_000).contains(&timeout_ms) {
        return Err(invalid(key, "timeout_ms must be 100 to 600000"));
    }
    Ok(())
}

fn check_topics(key: &'static str, topics: &[DeniedTopicSettings]) -> Result<(), ConfigError> {
    for topic in topics {
        if topic.name.trim().is_empty() || topic.phrases.is_empty() {
            return Err(invalid(key, "a topic needs a name and at least one phrase"));
        }
        check_terms(key, &topic.phrases)?;
    }
    Ok(())
}

/// Technical terms are non-empty words or phrases of at most 8 words.
fn check_terms(key: &'static str, terms: &[String]) -> Result<(), ConfigError> {
    for term in terms {
        let words = term.split_whitespace().count();
        if words == 0 || words > 8 {
            return Err(invalid(
                key,
                format!("{term:?} must be a word or a phrase of at most 8 words"),
            ));
        }
    }
    Ok(())
}

fn with_domain(error: ConfigError, domain: &str) -> ConfigError {
    match error {
        ConfigError::Invalid { key, reason } => ConfigError::Invalid {
            key,
            reason: format!("domain {domain:?}: {reason}"),
        },
        other => other,
    }
}
