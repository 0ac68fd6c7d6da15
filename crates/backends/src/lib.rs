//! The one place that turns configuration into backends.
//!
//! Services ask for "the documents queue" or "the vector store" and get a trait object; only
//! this crate matches on a backend's `kind`. Adding a cluster implementation means adding a
//! variant to the settings and an arm here, and nothing else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rag_aws::AwsConfig;
use rag_cache::{Cache, MemoryCache, RedisCache, RedisOptions};
use rag_catalog::{Catalog, SqliteCatalog};
use rag_config::{
    CacheBackend, CatalogSettings, EmbeddingSettings, FeedbackSettings, GeneratorSettings,
    ObjectStoreSettings, QueueBackend, RerankerSettings, Settings, VectorStoreSettings,
};
use rag_embeddings::{
    BedrockRerank, BedrockRerankOptions, BedrockTitan, CachedEmbeddings, CrossEncoder,
    EmbeddingModel, LocalMiniLm, Reranker, SqliteVectorCache, TitanOptions, TokenCounter,
};
use rag_feedback::{FeedbackStore, PostgresFeedbackStore, SqliteFeedbackStore};
use rag_generation::{
    BedrockConverse, BedrockOptions, Generator, LocalLlm, LocalOptions, OpenAiChat, OpenAiOptions,
};
use rag_keyword_index::{KeywordIndex, TantivyIndex};
use rag_object_store::{LocalObjectStore, ObjectStore, S3ObjectStore};
use rag_queue::{Queue, QueueOptions, SqliteQueue, SqsQueue};
use rag_vector_store::{EdgeVectorStore, QdrantVectorStore, VectorStore};

pub mod generation;

pub use rag_cache;
pub use rag_catalog;
pub use rag_embeddings;
pub use rag_feedback;
pub use rag_generation;
pub use rag_keyword_index;
pub use rag_object_store;
pub use rag_queue;
pub use rag_vector_store;

#[derive(Debug, thiserror::Error)]
#[error("cannot open the {backend}: {reason}")]
pub struct BackendError {
    pub backend: &'static str,
    pub reason: String,
}

/// A backend that cannot be opened while serving a request: the caller learns it is
/// unavailable; the cause is logged here.
impl From<BackendError> for rag_core::ServiceError {
    fn from(e: BackendError) -> Self {
        tracing::warn!(error = %e, "backend failure");
        rag_core::ServiceError::unavailable(format!("the {} is unavailable", e.backend))
    }
}

fn error(backend: &'static str) -> impl FnOnce(String) -> BackendError {
    move |reason| BackendError { backend, reason }
}

fn ensure_dir(settings: &Settings) -> Result<(), BackendError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| BackendError {
        backend: "data directory",
        reason: format!("{}: {e}", settings.data_dir.display()),
    })
}

/// A queue by name (`settings.queues.documents` or `.chunks`).
pub fn queue(settings: &Settings, name: &str) -> Result<Arc<dyn Queue>, BackendError> {
    let options = QueueOptions {
        visibility_timeout: Duration::from_secs(settings.queues.visibility_timeout_secs),
        max_receives: settings.queues.max_receives,
        ..QueueOptions::default()
    };
    match &settings.queues.backend {
        QueueBackend::Local { path } => {
            ensure_dir(settings)?;
            SqliteQueue::open(&settings.data_path(path), name, options)
                .map(|q| Arc::new(q) as Arc<dyn Queue>)
                .map_err(|e| error("queue")(e.to_string()))
        }
        QueueBackend::Sqs { create_missing } => Ok(Arc::new(SqsQueue::new(
            aws(settings),
            name,
            options,
            *create_missing,
        ))),
    }
}

pub fn documents_queue(settings: &Settings) -> Result<Arc<dyn Queue>, BackendError> {
    queue(settings, &settings.queues.documents)
}

pub fn chunks_queue(settings: &Settings) -> Result<Arc<dyn Queue>, BackendError> {
    queue(settings, &settings.queues.chunks)
}

pub fn object_store(settings: &Settings) -> Result<Arc<dyn ObjectStore>, BackendError> {
    match &settings.object_store {
        ObjectStoreSettings::Local { root, bucket } => {
            ensure_dir(settings)?;
            let notifications = documents_queue(settings)?;
            LocalObjectStore::open(&settings.data_path(root), bucket, notifications)
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| error("object store")(e.to_string()))
        }
        ObjectStoreSettings::S3 {
            bucket,
            force_path_style,
        } => Ok(Arc::new(S3ObjectStore::new(
            aws(settings),
            bucket,
            *force_path_style,
        ))),
    }
}

/// What [`provision_aws`] set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsProvisioned {
    pub bucket: String,
    /// The queues (each with its `<name>-dlq`), documents first.
    pub queues: Vec<String>,
}

/// Creates the bucket and the queues the configuration names (each queue with its
/// dead-letter queue), and has the bucket notify the documents queue: what Terraform owns in
/// AWS, for an emulator or a development account (`ragctl aws-setup`). Idempotent. Needs
/// `object_store.kind = "s3"` and `queues.backend.kind = "sqs"`.
pub async fn provision_aws(settings: &Settings) -> Result<AwsProvisioned, BackendError> {
    let fail = |reason: String| BackendError {
        backend: "AWS resources",
        reason,
    };
    let ObjectStoreSettings::S3 {
        bucket,
        force_path_style,
    } = &settings.object_store
    else {
        return Err(fail("object_store.kind is not \"s3\"".into()));
    };
    if !matches!(settings.queues.backend, QueueBackend::Sqs { .. }) {
        return Err(fail("queues.backend.kind is not \"sqs\"".into()));
    }
    let aws = aws(settings);
    let options = QueueOptions::new(
        Duration::from_secs(settings.queues.visibility_timeout_secs),
        settings.queues.max_receives,
    );
    let names = vec![
        settings.queues.documents.clone(),
        settings.queues.chunks.clone(),
    ];
    let mut documents_arn = String::new();
    for name in &names {
        let queue = SqsQueue::new(aws.clone(), name, options, true);
        let arn = queue
            .arn()
            .await
            .map_err(|e| fail(format!("queue {name}: {e}")))?;
        if documents_arn.is_empty() {
            documents_arn = arn;
        }
    }
    S3ObjectStore::new(aws, bucket, *force_path_style)
        .create_bucket_notifying(&documents_arn)
        .await
        .map_err(|e| fail(format!("bucket {bucket}: {e}")))?;
    Ok(AwsProvisioned {
        bucket: bucket.clone(),
        queues: names,
    })
}

/// The AWS configuration a backend reaches AWS (or an emulator) with. One per backend, not
/// per process: an SDK client's connections belong to the runtime that opened them.
/// The answer writer of one tier: `None` for the offline extractive answerer, which needs no
/// model. A local model's file is checked here (its weights load in the background); tiers
/// naming the same file share one copy of the weights and one queue.
pub fn generator(
    settings: &Settings,
    tier: &GeneratorSettings,
) -> Result<Option<Arc<dyn Generator>>, BackendError> {
    let fail = |e: rag_generation::GenerationError| error("answer model")(e.to_string());
    Ok(match tier {
        GeneratorSettings::Extractive => None,
        GeneratorSettings::Bedrock {
            model_id,
            streaming,
            max_attempts,
            timeout_ms,
            endpoint_url,
        } => Some(Arc::new(
            BedrockConverse::new(
                aws(settings),
                BedrockOptions {
                    model_id: model_id.clone(),
                    streaming: *streaming,
                    max_attempts: *max_attempts,
                    timeout: Duration::from_millis(*timeout_ms),
                    endpoint_url: endpoint_url.clone(),
                },
            )
            .map_err(fail)?,
        )),
        GeneratorSettings::Openai {
            base_url,
            model,
            api_key_env,
            max_attempts,
            timeout_ms,
        } => {
            let api_key = match api_key_env {
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    error("answer model")(format!("environment variable {var} is not set"))
                })?),
                None => None,
            };
            Some(Arc::new(
                OpenAiChat::new(OpenAiOptions {
                    base_url: base_url.clone(),
                    model: model.clone(),
                    api_key,
                    timeout: Duration::from_millis(*timeout_ms),
                    max_attempts: *max_attempts,
                })
                .map_err(fail)?,
            ))
        }
        GeneratorSettings::Local {
            model_path,
            model_id,
            context_tokens,
            max_waiting,
            timeout_ms,
            seed,
            repeat_penalty,
        } => Some(Arc::new(
            LocalLlm::new(LocalOptions {
                model_path: model_path
                    .clone()
                    .unwrap_or_else(rag_generation::local::default_llm_path),
                model_id: model_id.clone(),
                context_tokens: usize::try_from(*context_tokens).unwrap_or(usize::MAX),
                max_waiting: usize::try_from(*max_waiting).unwrap_or(usize::MAX),
                timeout: Duration::from_millis(*timeout_ms),
                seed: *seed,
                repeat_penalty: *repeat_penalty,
            })
            .map_err(fail)?,
        )),
    })
}

/// Where answers and their ratings are recorded.
pub fn feedback_store(settings: &Settings) -> Result<Arc<dyn FeedbackStore>, BackendError> {
    let fail = |e: rag_feedback::FeedbackError| error("feedback store")(e.to_string());
    match &settings.feedback {
        FeedbackSettings::Sqlite { path } => {
            ensure_dir(settings)?;
            Ok(Arc::new(
                SqliteFeedbackStore::open(&settings.data_path(path)).map_err(fail)?,
            ))
        }
        FeedbackSettings::Postgres { url, ca_file } => {
            let store = PostgresFeedbackStore::connect(url).map_err(fail)?;
            let store = match ca_file {
                Some(ca_file) => store.trusting(ca_file).map_err(fail)?,
                None => store,
            };
            Ok(Arc::new(store))
        }
    }
}

fn aws(settings: &Settings) -> AwsConfig {
    AwsConfig::new(&settings.aws)
}

pub fn catalog(settings: &Settings) -> Result<Arc<dyn Catalog>, BackendError> {
    ensure_dir(settings)?;
    match &settings.catalog {
        CatalogSettings::Sqlite { path } => SqliteCatalog::open(&settings.data_path(path))
            .map(|c| Arc::new(c) as Arc<dyn Catalog>)
            .map_err(|e| error("catalog")(e.to_string())),
    }
}

pub fn vector_store(
    settings: &Settings,
    dimensions: usize,
) -> Result<Arc<dyn VectorStore>, BackendError> {
    ensure_dir(settings)?;
    match &settings.vector_store {
        VectorStoreSettings::Edge { path } => {
            EdgeVectorStore::open(&settings.data_path(path), dimensions)
                .map(|s| s as Arc<dyn VectorStore>)
                .map_err(|e| error("vector store")(e.to_string()))
        }
        VectorStoreSettings::Qdrant {
            url,
            collection,
            api_key_env,
        } => {
            let api_key = match api_key_env {
                Some(name) => Some(std::env::var(name).map_err(|_| {
                    error("vector store")(format!("the API key variable {name} is not set"))
                })?),
                None => None,
            };
            QdrantVectorStore::new(url, api_key, collection, dimensions)
                .map(|s| Arc::new(s) as Arc<dyn VectorStore>)
                .map_err(|e| error("vector store")(e.to_string()))
        }
    }
}

pub fn keyword_index(settings: &Settings) -> Result<Arc<dyn KeywordIndex>, BackendError> {
    ensure_dir(settings)?;
    let dir = settings.data_path(&settings.keyword_index.path);
    let opened = if settings.keyword_index.read_only {
        TantivyIndex::open_read_only(&dir)
    } else {
        TantivyIndex::open(&dir)
    };
    opened
        .map(|i| i as Arc<dyn KeywordIndex>)
        .map_err(|e| error("keyword index")(e.to_string()))
}

pub fn cache(settings: &Settings) -> Result<Arc<dyn Cache>, BackendError> {
    ensure_dir(settings)?;
    match &settings.cache.backend {
        CacheBackend::Memory => Ok(MemoryCache::shared(
            &settings.data_dir,
            settings.cache.max_entries,
        )),
        CacheBackend::Redis {
            url,
            pool_size,
            command_timeout_ms,
            key_prefix,
            ca_file,
        } => RedisCache::shared(&RedisOptions {
            url: url.clone(),
            ca_file: ca_file.clone(),
            pool_size: *pool_size,
            command_timeout: Duration::from_millis(*command_timeout_ms),
            key_prefix: key_prefix.clone(),
        })
        .map(|c| c as Arc<dyn Cache>)
        .map_err(|e| error("cache")(e.to_string())),
    }
}

/// Where the local model's files are: as configured, else `$RAG_MODEL_DIR` or the
/// repository's `.cache`.
fn local_model_dir(model_dir: &Option<PathBuf>) -> PathBuf {
    model_dir
        .clone()
        .unwrap_or_else(rag_embeddings::default_model_dir)
}

/// Loads the embedding model (seconds for the local one: call it once per process).
pub async fn embedding_model(settings: &Settings) -> Result<Arc<dyn EmbeddingModel>, BackendError> {
    match &settings.embedding {
        EmbeddingSettings::Local { model_dir } => {
            let dir = local_model_dir(model_dir);
            tokio::task::spawn_blocking(move || LocalMiniLm::load(&dir))
                .await
                .map_err(|e| error("embedding model")(e.to_string()))?
                .map(|m| Arc::new(m) as Arc<dyn EmbeddingModel>)
                .map_err(|e| error("embedding model")(e.to_string()))
        }
        EmbeddingSettings::Bedrock {
            model_id,
            dimensions,
            concurrency,
            max_attempts,
            endpoint_url,
        } => BedrockTitan::new(
            aws(settings),
            TitanOptions {
                model_id: model_id.clone(),
                dimensions: *dimensions,
                concurrency: *concurrency,
                max_attempts: *max_attempts,
                endpoint_url: endpoint_url.clone(),
            },
        )
        .map(|m| Arc::new(m) as Arc<dyn EmbeddingModel>)
        .map_err(|e| error("embedding model")(e.to_string())),
    }
}

/// The reranker `settings.reranker` names; `None` when it is `none`. A cross-encoder is
/// loaded here (on the blocking pool: ~90 MB for a MiniLM); Bedrock is reached on first use.
pub async fn reranker(settings: &Settings) -> Result<Option<Arc<dyn Reranker>>, BackendError> {
    let fail = |e: rag_embeddings::EmbeddingError| error("reranker")(e.to_string());
    let model_id = settings.reranker.model_id().unwrap_or_default();
    Ok(match &settings.reranker {
        RerankerSettings::None => None,
        RerankerSettings::CrossEncoder {
            model_dir,
            max_tokens,
        } => {
            let (dir, max_tokens) = (model_dir.clone(), *max_tokens);
            let model =
                tokio::task::spawn_blocking(move || CrossEncoder::load(&dir, model_id, max_tokens))
                    .await
                    .map_err(|e| error("reranker")(e.to_string()))?
                    .map_err(fail)?;
            Some(Arc::new(model))
        }
        RerankerSettings::Bedrock {
            model_id,
            max_attempts,
            endpoint_url,
        } => Some(Arc::new(
            BedrockRerank::new(
                aws(settings),
                BedrockRerankOptions {
                    model_id: model_id.clone(),
                    max_attempts: *max_attempts,
                    endpoint_url: endpoint_url.clone(),
                },
            )
            .map_err(fail)?,
        )),
    })
}

/// The embedding models this process has loaded, one per configuration: index generations
/// built with the same model share one instance, and a model is loaded once.
#[derive(Clone, Debug, Default)]
pub struct EmbeddingModels {
    loaded: Arc<tokio::sync::Mutex<Vec<LoadedModel>>>,
}

type LoadedModel = (EmbeddingSettings, Arc<dyn EmbeddingModel>);

impl EmbeddingModels {
    /// The model `settings.embedding` names, loading it if this is its first use.
    pub async fn get(&self, settings: &Settings) -> Result<Arc<dyn EmbeddingModel>, BackendError> {
        let mut loaded = self.loaded.lock().await;
        if let Some((_, model)) = loaded.iter().find(|(s, _)| *s == settings.embedding) {
            return Ok(model.clone());
        }
        let model = embedding_model(settings).await?;
        loaded.push((settings.embedding.clone(), model.clone()));
        Ok(model)
    }
}

/// `model` behind the embedding cache when `embedder.cache_embeddings` is on (the indexer's
/// model: chunks embedded once are never embedded again by the same model).
pub fn cached_embedding_model(
    settings: &Settings,
    model: Arc<dyn EmbeddingModel>,
) -> Result<Arc<dyn EmbeddingModel>, BackendError> {
    if !settings.embedder.cache_embeddings {
        return Ok(model);
    }
    ensure_dir(settings)?;
    let store =
        SqliteVectorCache::open(&settings.data_path(&settings.embedder.embedding_cache_path))
            .map_err(|e| error("embedding cache")(e.to_string()))?;
    Ok(Arc::new(CachedEmbeddings::new(model, Arc::new(store))))
}

/// Counts tokens as the configured embedding model does, for sizing chunks; loads only the
/// tokenizer (a model without one would get `TokenCounter::approximate`).
pub fn token_counter(settings: &Settings) -> Result<TokenCounter, BackendError> {
    match &settings.embedding {
        EmbeddingSettings::Local { model_dir } => TokenCounter::load(&local_model_dir(model_dir))
            .map_err(|e| error("tokenizer")(e.to_string())),
        EmbeddingSettings::Bedrock { .. } => Ok(TokenCounter::approximate(
            rag_embeddings::bedrock::TITAN_V2_MAX_TOKENS,
        )),
    }
}

/// Dimensions of the configured embedding model, known without loading it.
pub fn embedding_dimensions(settings: &Settings) -> usize {
    match &settings.embedding {
        EmbeddingSettings::Local { .. } => 384,
        EmbeddingSettings::Bedrock { dimensions, .. } => *dimensions,
    }
}
