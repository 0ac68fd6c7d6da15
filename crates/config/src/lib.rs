//! Typed configuration of every service, parsed once and validated at start-up.
//!
//! Layers, later wins: built-in defaults → a TOML file → environment variables
//! `RAG__<SECTION>__<KEY>` (e.g. `RAG__GATEWAY__LISTEN=0.0.0.0:8080`). The environment is
//! read through [`Environment`] so tests pass a map instead of mutating the process's.
//!
//! Every binary reads the same [`Settings`]; each service uses its own section plus the
//! backend sections it needs. Backend sections are tagged enums (`kind = "..."`), so a cluster
//! implementation is one more variant, and nothing outside the backend factories matches on it.
//! Owns no I/O beyond reading the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod live;
mod validate;

pub use live::{LIVE_DOCUMENT_KEY, LiveConfigSource, LiveSections, prompt_key};

pub use validate::ConfigError;

/// Where the process's environment comes from.
pub enum Environment {
    /// The real process environment.
    Process,
    /// A fixed map, for tests.
    Map(BTreeMap<String, String>),
}

/// The configuration file named by `RAG_CONFIG`, if any.
pub fn config_file_from_env() -> Option<PathBuf> {
    std::env::var_os("RAG_CONFIG").map(PathBuf::from)
}

/// Prefix of environment overrides; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "RAG__";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Root directory of every embedded backend's files; relative paths below resolve against it.
    pub data_dir: PathBuf,
    /// The tenant of requests that carry no credentials (the embedded profile has one tenant).
    pub default_tenant: String,
    /// On shutdown, how long a service may drain in-flight requests and finish the queue
    /// message it is handling before what is left is abandoned (messages are delivered again).
    /// Keep it below Kubernetes' `terminationGracePeriodSeconds`.
    pub shutdown_grace_ms: u64,
    pub telemetry: TelemetrySettings,
    /// How the AWS backends (S3, SQS, Bedrock) reach AWS or an emulator.
    pub aws: AwsSettings,
    pub object_store: ObjectStoreSettings,
    pub queues: QueueSettings,
    pub catalog: CatalogSettings,
    pub vector_store: VectorStoreSettings,
    pub keyword_index: KeywordIndexSettings,
    pub cache: CacheSettings,
    pub embedding: EmbeddingSettings,
    /// The model that re-scores the fused top candidates when a search asks for reranking.
    pub reranker: RerankerSettings,
    pub gateway: GatewaySettings,
    pub router: RouterSettings,
    pub retriever: RetrieverSettings,
    pub embedder: EmbedderSettings,
    pub ingest: IngestSettings,
    pub generation: GenerationSettings,
    pub prompts: PromptSettings,
    pub guardrails: GuardrailSettings,
    pub feedback: FeedbackSettings,
    pub drift: DriftSettings,
    /// Dollars per million tokens, by model id (a configured table replaces the defaults).
    pub pricing: BTreeMap<String, ModelPrice>,
    pub domains: Vec<DomainSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".rag-data"),
            default_tenant: "default".into(),
            shutdown_grace_ms: 20_000,
            telemetry: TelemetrySettings::default(),
            aws: AwsSettings::default(),
            object_store: ObjectStoreSettings::default(),
            queues: QueueSettings::default(),
            catalog: CatalogSettings::default(),
            vector_store: VectorStoreSettings::default(),
            keyword_index: KeywordIndexSettings::default(),
            cache: CacheSettings::default(),
            embedding: EmbeddingSettings::default(),
            reranker: RerankerSettings::default(),
            gateway: GatewaySettings::default(),
            router: RouterSettings::default(),
            retriever: RetrieverSettings::default(),
            embedder: EmbedderSettings::default(),
            ingest: IngestSettings::default(),
            generation: GenerationSettings::default(),
            prompts: PromptSettings::default(),
            guardrails: GuardrailSettings::default(),
            feedback: FeedbackSettings::default(),
            drift: DriftSettings::default(),
            pricing: default_pricing(),
            domains: vec![
                // Mostly factual look-ups: only a clearly complex question leaves the light tier.
                DomainSettings::new(
                    "hr",
                    "Human resources: leave, benefits, conduct",
                    Tier::Light,
                )
                .with_strong_threshold(3.0),
                // Strong unless very short (`router.routing.short_question_words`).
                DomainSettings::new("legal", "Contracts, privacy and compliance", Tier::Strong)
                    .with_technical_terms(&[
                        "gdpr",
                        "nda",
                        "dpa",
                        "msa",
                        "sla",
                        "indemnity",
                        "indemnification",
                        "liability cap",
                        "governing law",
                        "jurisdiction",
                        "data subject",
                        "subprocessor",
                        "force majeure",
                        "warranty",
                        "termination for convenience",
                    ]),
                DomainSettings::new(
                    "engineering",
                    "Runbooks, on-call and API references",
                    Tier::Light,
                )
                .with_technical_terms(&[
                    "canary",
                    "rollback",
                    "roll back",
                    "rollout",
                    "postmortem",
                    "latency",
                    "deployment",
                    "replica",
                    "failover",
                    "backup",
                    "restore",
                    "migration",
                    "kubernetes",
                    "kubectl",
                    "runbook",
                    "error rate",
                    "rate limit",
                ]),
                DomainSettings::new("general", "Everything else", Tier::Light),
            ],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive; `RUST_LOG` wins when set.
    pub log_filter: String,
    /// Where a service in a process of its own serves `GET /metrics` (the gateway serves it
    /// on its API port anyway). Unset: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// Where spans go: an OpenTelemetry collector's OTLP/gRPC endpoint
    /// (`http://otel-collector:4317`). Unset: none are exported, but trace ids are still made,
    /// propagated and returned to clients, so logs of one request can be found by it.
    pub otlp_endpoint: Option<String>,
    /// The share of new traces exported, in [0, 1]; a trace continued from a caller follows
    /// the caller's decision.
    pub trace_sample_ratio: f64,
    /// Log a line when each span closes, with the time it was busy and idle: where a
    /// request's time goes, without a collector (`RAG__TELEMETRY__LOG_SPAN_TIMINGS=true`).
    pub log_span_timings: bool,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            // qdrant-edge logs start-up internals at WARN, and tantivy every commit at INFO,
            // which say nothing to an operator.
            log_filter: "info,qdrant_edge=error,tantivy=warn".into(),
            metrics_listen: None,
            otlp_endpoint: None,
            trace_sample_ratio: 1.0,
            log_span_timings: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    /// The region of every AWS client (S3, SQS, Bedrock).
    pub region: String,
    /// Another endpoint than AWS's (an emulator such as moto, or MinIO for S3); unset in AWS.
    pub endpoint_url: Option<String>,
    pub credentials: AwsCredentials,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            endpoint_url: None,
            credentials: AwsCredentials::Default,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsCredentials {
    /// The SDK's chain: environment, profile, web identity (IRSA on EKS), container, instance.
    Default,
    /// Fixed dummy keys that emulators accept; only with a loopback `endpoint_url`.
    Emulator,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ObjectStoreSettings {
    /// A local directory that emits S3-style events to the documents queue.
    Local { root: PathBuf, bucket: String },
    /// An S3 bucket (or MinIO, or an emulator) whose event notifications go to the documents
    /// queue (configured on the bucket, by Terraform in AWS).
    S3 {
        bucket: String,
        /// Path-style addresses (`endpoint/bucket/key`), which emulators and MinIO need.
        #[serde(default)]
        force_path_style: bool,
    },
}

impl Default for ObjectStoreSettings {
    fn default() -> Self {
        Self::Local {
            root: "objects".into(),
            bucket: "documents".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    pub backend: QueueBackend,
    /// Queue of S3-style object events, consumed by the ingest-worker.
    pub documents: String,
    /// Queue of index jobs, consumed by the embedder.
    pub chunks: String,
    pub visibility_timeout_secs: u64,
    /// Receives after which a message goes to the dead-letter queue.
    pub max_receives: u32,
    /// Long-poll wait of one receive call.
    pub wait_ms: u64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            backend: QueueBackend::default(),
            documents: "documents".into(),
            chunks: "chunks".into(),
            visibility_timeout_secs: 60,
            max_receives: 5,
            wait_ms: 1_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum QueueBackend {
    /// A durable on-disk queue (SQLite) with SQS semantics.
    Local { path: PathBuf },
    /// Amazon SQS; a queue name is looked up in the region (`aws`). Each queue's dead
    /// letters go to the queue named by its redrive policy, `<name>-dlq` when this process
    /// creates the queues.
    Sqs {
        /// Create missing queues (and their dead-letter queues with a redrive policy after
        /// `queues.max_receives`) at start-up. Off in AWS, where Terraform owns them.
        #[serde(default)]
        create_missing: bool,
    },
}

impl Default for QueueBackend {
    fn default() -> Self {
        Self::Local {
            path: "queues.db".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CatalogSettings {
    Sqlite { path: PathBuf },
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self::Sqlite {
            path: "catalog.db".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum VectorStoreSettings {
    /// qdrant-edge, in-process, on disk.
    Edge { path: PathBuf },
    /// A Qdrant server over gRPC. Each index generation has its own collection:
    /// `collection` for generation 0, `<collection>-g<n>` for generation n.
    Qdrant {
        /// The gRPC endpoint, e.g. `http://qdrant:6334`.
        url: String,
        collection: String,
        /// The environment variable holding the API key, if the server wants one (the key
        /// itself never sits in a configuration file).
        #[serde(default)]
        api_key_env: Option<String>,
    },
}

impl Default for VectorStoreSettings {
    fn default() -> Self {
        Self::Edge {
            path: "vectors".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeywordIndexSettings {
    pub path: PathBuf,
    /// Open the index for searching only, following another process's commits: for a
    /// retriever that runs as its own process beside the embedder, which writes it. Such a
    /// retriever sees a commit within about a second.
    pub read_only: bool,
}

impl Default for KeywordIndexSettings {
    fn default() -> Self {
        Self {
            path: "bm25".into(),
            read_only: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    pub backend: CacheBackend,
    pub enabled: bool,
    pub ttl_secs: u64,
    pub max_entries: usize,
    /// Serve the answer of an earlier question whose embedding has at least this cosine
    /// with the new one (domains may set their own); 1.0 or more turns the semantic layer off.
    pub semantic_threshold: f32,
    /// What the two questions' texts must also agree on for a semantic hit (domains may set
    /// their own).
    pub semantic_guard: SemanticGuard,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            backend: CacheBackend::default(),
            enabled: true,
            ttl_secs: 3_600,
            max_entries: 10_000,
            semantic_threshold: 0.95,
            semantic_guard: SemanticGuard::default(),
        }
    }
}

/// The check a semantic hit must pass besides the cosine. An embedding puts a question and
/// its opposite above 0.95 ("is … required" / "is … not required", "higher" / "lower",
/// "3 days" / "5 days"), so the cosine alone can serve a question the answer to its opposite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SemanticGuard {
    /// The two questions have the same content terms: words lower-cased, stop words dropped,
    /// stemmed, negations and numbers always kept. A rewording (order, case, punctuation,
    /// inflection, stop words) passes; a changed content word does not.
    #[default]
    Lexical,
    /// The cosine alone.
    None,
}

impl SemanticGuard {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lexical => "lexical",
            Self::None => "none",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CacheBackend {
    /// In-process; shared by the services of one process.
    #[default]
    Memory,
    /// Redis 7, ElastiCache or Valkey (plain commands; no modules needed). Shared by every
    /// process of the deployment; `max_entries` does not apply (set Redis's `maxmemory` with
    /// `maxmemory-policy volatile-lru`).
    Redis {
        /// `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS (ElastiCache
        /// with in-transit encryption).
        url: String,
        /// For `rediss://`: a PEM file of the CA certificates to trust; unset: the system's.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        #[serde(default = "default_redis_pool_size")]
        pool_size: usize,
        /// The longest a cache command may take before the request goes on without it.
        #[serde(default = "default_redis_timeout_ms")]
        command_timeout_ms: u64,
        /// In front of every key, so deployments can share one Redis.
        #[serde(default = "default_redis_key_prefix")]
        key_prefix: String,
    },
}

fn default_redis_pool_size() -> usize {
    4
}

fn default_redis_timeout_ms() -> u64 {
    250
}

fn default_redis_key_prefix() -> String {
    "rag:".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EmbeddingSettings {
    /// all-MiniLM-L6-v2 on the CPU with candle. `model_dir` unset means `$RAG_MODEL_DIR` or
    /// `.cache/models/all-minilm-l6-v2` in the repository.
    Local { model_dir: Option<PathBuf> },
    /// Amazon Titan Text Embeddings V2 on Bedrock, in the `aws` region.
    Bedrock {
        #[serde(default = "default_titan_model_id")]
        model_id: String,
        /// 256, 512 or 1024.
        #[serde(default = "default_titan_dimensions")]
        dimensions: usize,
        /// Requests in flight at once per embedding call.
        #[serde(default = "default_titan_concurrency")]
        concurrency: usize,
        /// Attempts per request (throttling is retried with backoff).
        #[serde(default = "default_titan_max_attempts")]
        max_attempts: u32,
        /// Another Bedrock endpoint than the region's (a VPC endpoint, or a stand-in in tests);
        /// wins over `aws.endpoint_url` for Bedrock.
        #[serde(default)]
        endpoint_url: Option<String>,
    },
}

fn default_titan_model_id() -> String {
    "amazon.titan-embed-text-v2:0".into()
}

fn default_titan_dimensions() -> usize {
    1024
}

fn default_titan_concurrency() -> usize {
    8
}

fn default_titan_max_attempts() -> u32 {
    8
}

impl Default for EmbeddingSettings {
    fn default() -> Self {
        Self::Local { model_dir: None }
    }
}

/// The reranker (`[reranker]`): a model that reads the query with each of the fused top
/// `retriever.rerank_candidates` and re-scores them. Used by searches that ask for it (the
/// request's `rerank`, else its domain's, else `retriever.rerank`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RerankerSettings {
    /// No reranker: a search that asks for reranking is refused (FAILED_PRECONDITION).
    #[default]
    None,
    /// A Hugging Face `BertForSequenceClassification` cross-encoder with one label (e.g.
    /// `cross-encoder/ms-marco-MiniLM-L-6-v2`) on the CPU with candle: a directory of
    /// `config.json`, `tokenizer.json` and `model.safetensors`, which the operator supplies.
    CrossEncoder {
        model_dir: PathBuf,
        /// Tokens of a (query, passage) pair, special tokens included; longer pairs are
        /// truncated, the longer side first. At most the model's `max_position_embeddings`.
        #[serde(default = "default_rerank_max_tokens")]
        max_tokens: usize,
    },
    /// A rerank model on Amazon Bedrock (`InvokeModel`, in the `aws` region).
    Bedrock {
        /// `cohere.rerank-v3-5:0` or `amazon.rerank-v1:0` (or another id of the same API).
        #[serde(default = "default_bedrock_rerank_model_id")]
        model_id: String,
        /// Attempts per request (throttling is retried with backoff).
        #[serde(default = "default_titan_max_attempts")]
        max_attempts: u32,
        /// Another Bedrock endpoint than the region's (a VPC endpoint, or a stand-in in
        /// tests); wins over `aws.endpoint_url` for Bedrock.
        #[serde(default)]
        endpoint_url: Option<String>,
    },
}

fn default_rerank_max_tokens() -> usize {
    512
}

fn default_bedrock_rerank_model_id() -> String {
    "cohere.rerank-v3-5:0".into()
}

impl RerankerSettings {
    /// The model id the reranker reports (and experiments record): the Bedrock model's, or
    /// the cross-encoder directory's name; `None` without a reranker.
    pub fn model_id(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::CrossEncoder { model_dir, .. } => Some(model_dir.file_name().map_or_else(
                || "cross-encoder".into(),
                |n| n.to_string_lossy().into_owned(),
            )),
            Self::Bedrock { model_id, .. } => Some(model_id.clone()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    pub listen: SocketAddr,
    pub router_url: String,
    /// The ingest-worker, which serves the document service.
    pub documents_url: String,
    pub max_upload_bytes: u64,
    pub max_body_bytes: usize,
    pub request_timeout_ms: u64,
    /// API requests in progress at once, at most; past it a request is refused at once with
    /// 503 and `Retry-After` (load shedding) instead of queueing until memory runs out.
    pub max_in_flight: usize,
    /// Who may call the API, and how often.
    pub auth: AuthSettings,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            router_url: "http://127.0.0.1:50051".into(),
            documents_url: "http://127.0.0.1:50055".into(),
            max_upload_bytes: 20 * 1024 * 1024,
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 30_000,
            max_in_flight: 512,
            auth: AuthSettings::default(),
        }
    }
}

/// How callers of the gateway's API are authenticated (`gateway.auth`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// The API keys (`mode = "api_keys"`): a TOML file of `[[keys]]` (id, tenant, scopes,
    /// domains, the SHA-256 of the key), made with `ragctl keys create`. Re-read when it
    /// changes, so keys are added and revoked without a restart.
    pub keys_file: Option<PathBuf>,
    /// How often the keys file is checked for changes.
    pub reload_interval_ms: u64,
    /// Requests per second each key may make, sustained (0 = unlimited); a key's own
    /// `rate_per_second` wins. Past it: 429 with `Retry-After`.
    pub rate_per_second: u32,
    /// Requests a key may make at once above its rate.
    pub burst: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            keys_file: None,
            reload_interval_ms: 10_000,
            rate_per_second: 20,
            burst: 40,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No keys: every caller is `default_tenant` with every scope. Allowed only when the
    /// gateway listens on a loopback address (the embedded system on one machine).
    #[default]
    None,
    /// `Authorization: Bearer <key>` on every API request; the key names the tenant.
    ApiKeys,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterSettings {
    pub listen: SocketAddr,
    pub retriever_url: String,
    pub embedder_url: String,
    /// Chunks retrieved per question when the request does not say.
    pub top_k: u32,
    pub max_top_k: u32,
    pub max_question_chars: usize,
    /// Below this dense similarity of the best chunk the answer is "I don't know".
    pub min_relevance: f32,
    /// From this dense similarity of the best chunk on, retrieval alone is trusted; below
    /// it, that similarity plus the share of the question's terms the best sentence covers
    /// must reach `min_support`.
    pub confident_relevance: f32,
    pub min_support: f32,
    /// Sentences an extractive answer is made of, at most.
    pub max_answer_sentences: usize,
    /// The complexity analyser that chooses the model tier.
    pub routing: RoutingSettings,
    /// Where domains, prompts and guardrails are reloaded from while the router runs.
    pub live: LiveConfigSource,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            retriever_url: "http://127.0.0.1:50052".into(),
            embedder_url: "http://127.0.0.1:50053".into(),
            top_k: 5,
            max_top_k: 50,
            max_question_chars: 2_000,
            min_relevance: 0.35,
            confident_relevance: 0.60,
            min_support: 0.95,
            max_answer_sentences: 3,
            routing: RoutingSettings::default(),
            live: LiveConfigSource::None,
        }
    }
}

/// The rule-based complexity analyser (`[router.routing]`). A question's complexity score is
/// the weighted sum of its features; each domain picks its tier from its `default_tier`, this
/// score and its thresholds (a domain's own `strong_threshold` / `short_question_words` win
/// over the ones here).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingSettings {
    /// Tier of a question asked in no domain (before its score is looked at).
    pub default_tier: Tier,
    /// From this score on, a question of a light-default domain goes to the strong tier; below
    /// it, a short question of a strong-default domain may go to the light tier.
    pub strong_threshold: f32,
    /// In a strong-default domain, a question of at most this many words, with no logical
    /// operator, a single part and a score below the threshold goes to the light tier.
    pub short_question_words: usize,
    /// Words a question may have before its length adds to the score.
    pub free_words: usize,
    pub weights: RoutingWeights,
    /// Technical terms of every domain, matched case-insensitively as whole words (a final
    /// "s" is allowed); a term may be a phrase ("error rate"). Domains add their own.
    pub technical_terms: Vec<String>,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            default_tier: Tier::Light,
            strong_threshold: 2.0,
            short_question_words: 8,
            free_words: 12,
            weights: RoutingWeights::default(),
            technical_terms: [
                "api",
                "sdk",
                "endpoint",
                "database",
                "schema",
                "timeout",
                "throughput",
                "cache",
                "embedding",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

/// Weights of the complexity score's features (`[router.routing.weights]`), all ≥ 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingWeights {
    /// Per word beyond `free_words`.
    pub per_extra_word: f32,
    /// Per sentence beyond the first.
    pub per_extra_sentence: f32,
    /// Times the share of technical terms among the words (counted over at least 10 words,
    /// so one acronym does not make a three-word question technical).
    pub technical_density: f32,
    /// Per logical operator ("if", "unless", "compare", "why", …), at most three counted.
    pub per_logical_operator: f32,
    /// Once, for a multi-part question (several question marks, "and also", an enumeration,
    /// a second question joined by "and how/what/…").
    pub multi_part: f32,
    /// Per negation ("not", "never", "without", "…n't"), at most two counted.
    pub per_negation: f32,
}

impl Default for RoutingWeights {
    fn default() -> Self {
        Self {
            per_extra_word: 0.08,
            per_extra_sentence: 0.5,
            technical_density: 2.0,
            per_logical_operator: 1.0,
            multi_part: 1.0,
            per_negation: 0.5,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// alpha-weighted, each side min-max normalised per query.
    Weighted,
    /// alpha-weighted, each side z-score normalised per query.
    Zscore,
    /// Reciprocal rank fusion.
    Rrf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrieverSettings {
    pub listen: SocketAddr,
    pub embedder_url: String,
    /// Weight of the dense side in weighted fusion, in [0, 1].
    pub alpha: f32,
    pub fusion: Fusion,
    /// Candidates fetched from each side before fusion, per requested hit.
    pub candidates_per_hit: u32,
    pub min_candidates: u32,
    pub rrf_k: f32,
    /// Adjacent-chunk expansion when neither the request nor its domain says: the chunks up
    /// to this many positions before and after each hit are returned beside it. 0: off.
    pub neighbours: u32,
    /// The most neighbours on each side a request or a domain may ask for.
    pub max_neighbours: u32,
    /// Rerank when neither the request nor its domain says: the fused top
    /// `rerank_candidates` are re-scored by the `[reranker]`, and the top k of its order
    /// returned. Needs a reranker (`reranker.kind`).
    pub rerank: bool,
    /// Fused candidates re-scored by a rerank (at least the hits asked for), 1 to 200: more
    /// finds more for the reranker to promote, and costs it more. A local MiniLM-L6
    /// cross-encoder costs ~0.4-0.5 s per 170-token passage on two busy cores
    /// (`crates/embeddings/benches/rerank.rs`): 30 candidates are seconds there.
    pub rerank_candidates: u32,
}

impl Default for RetrieverSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50052)),
            embedder_url: "http://127.0.0.1:50053".into(),
            alpha: 0.7,
            fusion: Fusion::Weighted,
            candidates_per_hit: 4,
            min_candidates: 20,
            rrf_k: 60.0,
            neighbours: 0,
            max_neighbours: 3,
            rerank: false,
            rerank_candidates: 30,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderSettings {
    pub listen: SocketAddr,
    /// Texts per call of the model.
    pub batch_size: usize,
    /// Index jobs taken from the chunks queue at once (at most 10, as SQS allows); their
    /// chunks are embedded in one call and written to each index once.
    pub receive_batch: usize,
    pub max_texts_per_request: usize,
    /// Keep the vectors of indexed chunks by (model, text hash), so re-indexing and
    /// unchanged chunks are not embedded again.
    pub cache_embeddings: bool,
    /// The embedding cache's SQLite file (relative paths are under the data directory).
    pub embedding_cache_path: PathBuf,
}

impl Default for EmbedderSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50053)),
            batch_size: 32,
            receive_batch: 10,
            max_texts_per_request: 256,
            cache_embeddings: true,
            embedding_cache_path: PathBuf::from("embedding-cache.db"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    pub listen: SocketAddr,
    /// Most tokens of the embedding model's tokenizer in a chunk's text (less when the
    /// title and section embedded in front of it would not leave room within the model's
    /// limit: 254 for all-MiniLM-L6-v2). 200 tokens are ~800 characters of English.
    pub chunk_size: usize,
    /// Tokens a chunk repeats from the end of the previous one, at most (whole words or
    /// sentences only); less than half of `chunk_size`.
    pub chunk_overlap: usize,
    /// Chunks per message on the chunks queue.
    pub chunks_per_batch: usize,
    pub max_document_bytes: u64,
    /// Documents processed at once.
    pub concurrency: usize,
    /// How long extracting and chunking one document may take; past it the document fails
    /// with "extraction timed out" and its event is dead-lettered.
    pub extract_timeout_ms: u64,
    /// Most bytes of text one document may yield (a PDF or DOCX can expand far beyond its
    /// size); past it the document fails.
    pub max_extracted_bytes: u64,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50055)),
            chunk_size: 200,
            chunk_overlap: 30,
            chunks_per_batch: 64,
            max_document_bytes: 50 * 1024 * 1024,
            concurrency: 2,
            extract_timeout_ms: 120_000,
            max_extracted_bytes: 32 * 1024 * 1024,
        }
    }
}

/// How answers are written, per tier (`[generation.light]`, `[generation.strong]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSettings {
    pub light: GeneratorSettings,
    pub strong: GeneratorSettings,
    /// When the strong tier's model is unavailable before its first token, answer with the
    /// light tier's.
    pub fallback_to_light: bool,
    pub max_output_tokens: u32,
    pub temperature: f32,
    /// Retrieved passages put into a model's prompt, at most.
    pub max_context_passages: usize,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            light: GeneratorSettings::Extractive,
            strong: GeneratorSettings::Extractive,
            fallback_to_light: true,
            max_output_tokens: 512,
            temperature: 0.2,
            max_context_passages: 6,
        }
    }
}

/// One tier's answer writer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GeneratorSettings {
    /// Offline, no model: the best-supported sentences of the retrieved chunks, cited.
    #[default]
    Extractive,
    /// Amazon Bedrock, Converse / ConverseStream (in the `aws` region).
    Bedrock {
        /// E.g. `amazon.nova-lite-v1:0` (light) or `amazon.nova-pro-v1:0` (strong).
        model_id: String,
        #[serde(default = "default_true")]
        streaming: bool,
        #[serde(default = "default_generation_attempts")]
        max_attempts: u32,
        #[serde(default = "default_generation_timeout_ms")]
        timeout_ms: u64,
        /// Another Bedrock endpoint than the region's (a VPC endpoint, or a stand-in).
        #[serde(default)]
        endpoint_url: Option<String>,
    },
    /// An OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp server).
    Openai {
        /// E.g. `http://127.0.0.1:11434/v1`.
        base_url: String,
        model: String,
        /// The environment variable holding the API key, if the server wants one.
        #[serde(default)]
        api_key_env: Option<String>,
        #[serde(default = "default_generation_attempts")]
        max_attempts: u32,
        #[serde(default = "default_generation_timeout_ms")]
        timeout_ms: u64,
    },
    /// A GGUF model in the router's process on its CPU (candle): offline, nothing to pay per
    /// token (no `[pricing]` entry). SmolLM2-135M-Instruct by default (`make llm`): small and
    /// quick enough for two cores, but weak; opt-in per tier. One copy of the weights per
    /// file and process; it answers one request at a time, others queue.
    Local {
        /// The `.gguf` file (llama architecture, byte-level BPE tokenizer in its metadata).
        /// Unset: `$RAG_LLM_PATH`, else
        /// `.cache/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf` in the
        /// repository. Checked when the router starts.
        #[serde(default)]
        model_path: Option<PathBuf>,
        /// The model id on answers, metrics and for `[pricing]`. Unset: the file name without
        /// `.gguf` (`SmolLM2-135M-Instruct.Q4_1`).
        #[serde(default)]
        model_id: Option<String>,
        /// The window, prompt and answer together: 256 to 4096 tokens. The prompt gets what
        /// `generation.max_output_tokens` leaves (at least half); passages that do not fit
        /// are cut from the end. Smaller is faster.
        #[serde(default = "default_local_context_tokens")]
        context_tokens: u32,
        /// Requests that may wait while the model answers another; past it a request is
        /// refused at once as unavailable (503, or the light tier's fallback).
        #[serde(default = "default_local_max_waiting")]
        max_waiting: u32,
        /// Until the first token (waiting in the queue and reading the prompt included),
        /// then between two tokens.
        #[serde(default = "default_local_timeout_ms")]
        timeout_ms: u64,
        /// Seed of the sampler above temperature 0 (at 0 decoding is greedy).
        #[serde(default)]
        seed: u64,
        /// Penalty on tokens among the answer's last 64 (1 to 2; 1 is off): small models
        /// repeat themselves.
        #[serde(default = "default_local_repeat_penalty")]
        repeat_penalty: f32,
    },
}

fn default_local_context_tokens() -> u32 {
    2048
}

fn default_local_max_waiting() -> u32 {
    4
}

fn default_local_timeout_ms() -> u64 {
    60_000
}

fn default_local_repeat_penalty() -> f32 {
    1.1
}

impl GeneratorSettings {
    /// A local model at `model_path` (`None`: the default file) with the defaults.
    pub fn local(model_path: Option<PathBuf>) -> Self {
        Self::Local {
            model_path,
            model_id: None,
            context_tokens: default_local_context_tokens(),
            max_waiting: default_local_max_waiting(),
            timeout_ms: default_local_timeout_ms(),
            seed: 0,
            repeat_penalty: default_local_repeat_penalty(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_generation_attempts() -> u32 {
    4
}

fn default_generation_timeout_ms() -> u64 {
    30_000
}

/// Versioned prompt files: `<dir>/<name>/<version>.toml`. Unset `dir`: the prompts built into
/// the binary (the repository's `prompts/`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptSettings {
    pub dir: Option<PathBuf>,
    pub name: String,
    /// The versions in use and their share of requests (an A/B split by request id).
    pub versions: Vec<PromptVariant>,
}

impl Default for PromptSettings {
    fn default() -> Self {
        Self {
            dir: None,
            name: "answer".into(),
            versions: vec![PromptVariant {
                version: "v1".into(),
                weight: 100,
            }],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptVariant {
    pub version: String,
    pub weight: u32,
}

/// Input and output guardrails (`[guardrails]`; domains add their own denied topics).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardrailSettings {
    /// Mask e-mail addresses, phone numbers, SSNs, card numbers and IBANs in answers and logs.
    pub mask_pii: bool,
    /// Remove instruction-like sentences from retrieved chunks before a model reads them.
    pub screen_injections: bool,
    /// Topics refused in every domain.
    pub denied_topics: Vec<DeniedTopicSettings>,
}

impl Default for GuardrailSettings {
    fn default() -> Self {
        Self {
            mask_pii: true,
            screen_injections: true,
            denied_topics: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeniedTopicSettings {
    pub name: String,
    /// Words or phrases that put a question in the topic (whole words, any case).
    pub phrases: Vec<String>,
}

/// Where answer records and user feedback live.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeedbackSettings {
    /// A SQLite file below `data_dir`.
    Sqlite { path: PathBuf },
    /// PostgreSQL: `postgres://user[:password]@host:port/db`. With `?sslmode=require` (RDS
    /// with `rds.force_ssl`) the connection is TLS, and the server's certificate must verify
    /// against `ca_file` (PEM; for RDS its CA bundle) or, unset, the system's roots.
    Postgres {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<PathBuf>,
    },
}

impl Default for FeedbackSettings {
    fn default() -> Self {
        Self::Sqlite {
            path: "feedback.sqlite3".into(),
        }
    }
}

/// Drift detection: recent questions against a baseline window, and recently indexed
/// documents against each domain's centre of mass (`rag-drift`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftSettings {
    /// How often the router measures drift and exports it as metrics; 0: never (`ragctl
    /// drift` still measures on demand).
    pub interval_secs: u64,
    /// The recent window: questions asked and documents indexed in the last this many hours.
    pub recent_hours: u64,
    /// The baseline window, just before the recent one.
    pub baseline_days: u64,
    /// At most this many questions per window (the newest).
    pub max_questions: usize,
    /// Principal directions (of both windows pooled) on which questions are compared.
    pub components: usize,
    /// Significance level of the Kolmogorov-Smirnov tests.
    pub alpha: f64,
    /// Questions needed in each window before a test is run.
    pub min_questions: usize,
    /// Documents needed on each side before the corpus test is run.
    pub min_documents: usize,
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self {
            interval_secs: 900,
            recent_hours: 24,
            baseline_days: 7,
            max_questions: 5_000,
            components: 3,
            alpha: 0.01,
            min_questions: 30,
            min_documents: 5,
        }
    }
}

/// Dollars per million tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input_per_million: f64,
    #[serde(default)]
    pub output_per_million: f64,
}

fn default_pricing() -> BTreeMap<String, ModelPrice> {
    [
        ("amazon.nova-lite-v1:0", 0.06, 0.24),
        ("amazon.nova-pro-v1:0", 0.80, 3.20),
        ("amazon.titan-embed-text-v2:0", 0.02, 0.0),
    ]
    .into_iter()
    .map(|(model, input, output)| {
        (
            model.to_owned(),
            ModelPrice {
                input_per_million: input,
                output_per_million: output,
            },
        )
    })
    .collect()
}

impl Settings {
    /// The cost in dollars of `input` and `output` tokens of `model` (0 for a model without
    /// a price, such as the offline ones).
    pub fn cost_usd(&self, model: &str, input: u32, output: u32) -> f64 {
        self.pricing.get(model).map_or(0.0, |p| {
            (f64::from(input) * p.input_per_million + f64::from(output) * p.output_per_million)
                / 1_000_000.0
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Light,
    Strong,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Strong => "strong",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainSettings {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_tier")]
    pub default_tier: Tier,
    /// This domain's `router.routing.strong_threshold`; unset: the router's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strong_threshold: Option<f32>,
    /// This domain's `router.routing.short_question_words`; unset: the router's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_question_words: Option<usize>,
    /// Technical terms of this domain, besides `router.routing.technical_terms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub technical_terms: Vec<String>,
    /// This domain's `cache.semantic_threshold`; unset: the cache's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic_threshold: Option<f32>,
    /// This domain's `cache.semantic_guard`; unset: the cache's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semantic_guard: Option<SemanticGuard>,
    /// Topics refused in this domain, besides `guardrails.denied_topics`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied_topics: Vec<DeniedTopicSettings>,
    /// This domain's `retriever.neighbours` (adjacent-chunk expansion); unset: the
    /// retriever's. A request's own `neighbours` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbours: Option<u32>,
    /// This domain's `retriever.rerank`; unset: the retriever's. A request's own `rerank`
    /// wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerank: Option<bool>,
}

fn default_tier() -> Tier {
    Tier::Light
}

impl DomainSettings {
    pub fn new(name: &str, description: &str, default_tier: Tier) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            default_tier,
            strong_threshold: None,
            short_question_words: None,
            technical_terms: Vec::new(),
            semantic_threshold: None,
            semantic_guard: None,
            denied_topics: Vec::new(),
            neighbours: None,
            rerank: None,
        }
    }

    pub fn with_strong_threshold(mut self, threshold: f32) -> Self {
        self.strong_threshold = Some(threshold);
        self
    }

    pub fn with_short_question_words(mut self, words: usize) -> Self {
        self.short_question_words = Some(words);
        self
    }

    pub fn with_technical_terms(mut self, terms: &[&str]) -> Self {
        self.technical_terms = terms.iter().map(|t| (*t).to_owned()).collect();
        self
    }
}

impl Settings {
    /// Defaults, then `file` (if given), then the environment; validated.
    pub fn load(file: Option<&Path>, env: &Environment) -> Result<Self, ConfigError> {
        // No layer of serialised defaults: every section falls back to its `Default` through
        // `#[serde(default)]`. A defaults layer would merge the default backend's fields into
        // a configured backend of another `kind` (S3 would inherit the local store's `root`).
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError::MissingFile(file.to_path_buf()));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = match env {
            Environment::Process => figment.merge(Env::prefixed(ENV_PREFIX).split("__")),
            Environment::Map(map) => map
                .iter()
                .filter_map(|(key, value)| {
                    let path = key
                        .strip_prefix(ENV_PREFIX)?
                        .split("__")
                        .map(str::to_lowercase)
                        .collect::<Vec<_>>()
                        .join(".");
                    // Parsed as figment's `Env` parses the real environment.
                    let value: figment::value::Value =
                        value.parse().unwrap_or_else(|_| value.clone().into());
                    Some((path, value))
                })
                .fold(figment, |figment, (path, value)| {
                    figment.merge(Serialized::default(&path, value))
                }),
        };
        let settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// `path` if absolute, else below `data_dir`.
    pub fn data_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.data_dir.join(path)
        }
    }

    pub fn domain(&self, name: &str) -> Option<&DomainSettings> {
        self.domains.iter().find(|d| d.name == name)
    }
}

#[cfg(test)]
mod tests;
