//! Amazon Titan Text Embeddings V2 on Bedrock ([`BedrockTitan`]).
//!
//! One `InvokeModel` call per text (Titan takes one input per request), several in flight
//! at once, vectors returned in input order. Throttling and transient failures are retried
//! by the SDK's standard retry strategy with backoff; what still fails is
//! [`EmbeddingError::Unavailable`]. Vectors are requested normalised, so cosine is a dot
//! product as for the local model. The embedding cache ([`crate::CachedEmbeddings`]) goes
//! in front of it like any other model: a chunk is paid for once.

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_bedrockruntime::primitives::Blob;
use futures::{StreamExt, TryStreamExt};
use rag_aws::AwsConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::{DEFAULT_MAX_TEXTS_PER_CALL, EmbeddingError, EmbeddingModel, TokenCounter};

/// Titan V2's model id in Bedrock.
pub const TITAN_V2_MODEL_ID: &str = "amazon.titan-embed-text-v2:0";

/// The output sizes Titan V2 offers.
pub const TITAN_V2_DIMENSIONS: [usize; 3] = [256, 512, 1024];

/// Titan V2 takes up to 8,192 tokens per input.
pub const TITAN_V2_MAX_TOKENS: usize = 8_192;

/// How a [`BedrockTitan`] calls Bedrock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TitanOptions {
    pub model_id: String,
    /// 256, 512 or 1024.
    pub dimensions: usize,
    /// Requests in flight at once for one `embed` call.
    pub concurrency: usize,
    /// Attempts per request, the first included (throttling is retried with backoff).
    pub max_attempts: u32,
    /// Another endpoint than the AWS configuration's (a VPC endpoint, a stand-in).
    pub endpoint_url: Option<String>,
}

impl Default for TitanOptions {
    fn default() -> Self {
        Self {
            model_id: TITAN_V2_MODEL_ID.into(),
            dimensions: 1024,
            concurrency: 8,
            max_attempts: 8,
            endpoint_url: None,
        }
    }
}

#[derive(Debug)]
pub struct BedrockTitan {
    options: TitanOptions,
    invoker: Invoker,
    /// Titan's tokenizer is not published: counts are approximate (see [`TokenCounter`]).
    tokens: TokenCounter,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InvokeBody<'a> {
    input_text: &'a str,
    dimensions: usize,
    normalize: bool,
}

#[derive(Deserialize)]
struct InvokeOutput {
    embedding: Vec<f32>,
}

impl BedrockTitan {
    /// A client of Bedrock in the configured region; talks to nothing until first used.
    pub fn new(aws: AwsConfig, options: TitanOptions) -> Result<Self, EmbeddingError> {
        if !TITAN_V2_DIMENSIONS.contains(&options.dimensions) {
            return Err(EmbeddingError::InvalidInput(format!(
                "Titan V2 dimensions must be one of {TITAN_V2_DIMENSIONS:?}, not {}",
                options.dimensions
            )));
        }
        if options.concurrency == 0 || options.max_attempts == 0 {
            return Err(EmbeddingError::InvalidInput(
                "Titan concurrency and max_attempts must be positive".into(),
            ));
        }
        Ok(Self {
            invoker: Invoker::new(aws, options.max_attempts, options.endpoint_url.clone()),
            options,
            tokens: TokenCounter::approximate(TITAN_V2_MAX_TOKENS),
        })
    }

    async fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbeddingError> {
        let body = serde_json::to_vec(&InvokeBody {
            input_text: text,
            dimensions: self.options.dimensions,
            normalize: true,
        })
        .map_err(|e| EmbeddingError::Inference(e.to_string()))?;
        let output = self.invoker.invoke(&self.options.model_id, body).await?;
        let parsed: InvokeOutput = serde_json::from_slice(output.as_ref())
            .map_err(|e| EmbeddingError::Inference(format!("Titan response: {e}")))?;
        if parsed.embedding.len() != self.options.dimensions {
            return Err(EmbeddingError::Inference(format!(
                "Titan returned {} dimensions, not {}",
                parsed.embedding.len(),
                self.options.dimensions
            )));
        }
        Ok(parsed.embedding)
    }
}

#[async_trait::async_trait]
impl EmbeddingModel for BedrockTitan {
    fn model_id(&self) -> &str {
        &self.options.model_id
    }

    fn dimensions(&self) -> usize {
        self.options.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.len() > DEFAULT_MAX_TEXTS_PER_CALL {
            return Err(EmbeddingError::InvalidInput(format!(
                "{} texts in one call; at most {DEFAULT_MAX_TEXTS_PER_CALL}",
                texts.len()
            )));
        }
        // Collected first: a stream over a borrowing closure is not `Send` for async-trait.
        let calls: Vec<_> = texts.iter().map(|text| self.embed_one(text)).collect();
        futures::stream::iter(calls)
            .buffered(self.options.concurrency)
            .try_collect()
            .await
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EmbeddingError> {
        self.tokens.count(text)
    }

    fn max_tokens(&self) -> usize {
        TITAN_V2_MAX_TOKENS
    }
}

/// Bedrock Runtime's `InvokeModel` with JSON in and out, through a client made on first use
/// (the AWS configuration's region, timeouts and credentials; another endpoint if given;
/// throttling and transient failures retried by the SDK's standard strategy). Shared by the
/// Bedrock models of this crate (Titan here, the rerank models in `crate::rerank`).
#[derive(Debug)]
pub(crate) struct Invoker {
    aws: AwsConfig,
    max_attempts: u32,
    endpoint_url: Option<String>,
    client: OnceCell<Client>,
}

impl Invoker {
    pub(crate) fn new(aws: AwsConfig, max_attempts: u32, endpoint_url: Option<String>) -> Self {
        Self {
            aws,
            max_attempts,
            endpoint_url,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut config =
                    aws_sdk_bedrockruntime::config::Builder::from(self.aws.sdk_config().await)
                        .retry_config(RetryConfig::standard().with_max_attempts(self.max_attempts));
                if let Some(url) = &self.endpoint_url {
                    config = config.endpoint_url(url);
                }
                Client::from_conf(config.build())
            })
            .await
    }

    /// The response body of `model_id` to `body`. A `ValidationException` (the input itself
    /// is refused, e.g. too long: retrying cannot help) is [`EmbeddingError::InvalidInput`];
    /// anything else that still fails after the retries is [`EmbeddingError::Unavailable`].
    pub(crate) async fn invoke(
        &self,
        model_id: &str,
        body: Vec<u8>,
    ) -> Result<Blob, EmbeddingError> {
        let output = self
            .client()
            .await
            .invoke_model()
            .model_id(model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(body))
            .send()
            .await
            .map_err(|e| {
                let code = e
                    .as_service_error()
                    .and_then(|s| s.code())
                    .unwrap_or_default();
                match code {
                    "ValidationException" => EmbeddingError::InvalidInput(format!(
                        "Bedrock refused the input: {}",
                        DisplayErrorContext(&e)
                    )),
                    _ => EmbeddingError::Unavailable(format!(
                        "Bedrock InvokeModel {model_id}: {}",
                        DisplayErrorContext(&e)
                    )),
                }
            })?;
        Ok(output.body)
    }
}
