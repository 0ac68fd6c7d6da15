//! [`BedrockRerank`]: Amazon Bedrock's rerank models through `InvokeModel`.
//!
//! One call per `rerank`: `{"query", "documents": [...], "top_n": <all>}` (Cohere's models
//! also take `"api_version": 2`); the answer `{"results": [{"index", "relevance_score"}]}`
//! lists the documents best first, and is mapped back to the documents' order. The client,
//! its timeouts and its retries are the Titan model's (`crate::bedrock::Invoker`).

use rag_aws::AwsConfig;
use serde::{Deserialize, Serialize};

use super::{Reranker, too_many};
use crate::EmbeddingError;
use crate::bedrock::Invoker;

/// Cohere Rerank 3.5 in Bedrock.
pub const COHERE_RERANK_V3_5: &str = "cohere.rerank-v3-5:0";

/// Amazon Rerank 1.0 in Bedrock.
pub const AMAZON_RERANK_V1: &str = "amazon.rerank-v1:0";

/// Most documents one Bedrock rerank request may carry.
pub const BEDROCK_MAX_DOCUMENTS: usize = 1_000;

/// How a [`BedrockRerank`] calls Bedrock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BedrockRerankOptions {
    /// [`COHERE_RERANK_V3_5`], [`AMAZON_RERANK_V1`], or another id: one that names Cohere
    /// gets Cohere's body (`api_version`), any other Amazon's.
    pub model_id: String,
    /// Attempts per request, the first included (throttling is retried with backoff).
    pub max_attempts: u32,
    /// Another endpoint than the AWS configuration's (a VPC endpoint, a stand-in).
    pub endpoint_url: Option<String>,
}

impl Default for BedrockRerankOptions {
    fn default() -> Self {
        Self {
            model_id: COHERE_RERANK_V3_5.into(),
            max_attempts: 8,
            endpoint_url: None,
        }
    }
}

/// A Bedrock rerank model (see the [module docs](self)).
#[derive(Debug)]
pub struct BedrockRerank {
    model_id: String,
    invoker: Invoker,
}

#[derive(Debug, Serialize)]
struct RerankBody<'a> {
    query: &'a str,
    documents: &'a [String],
    top_n: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct RerankOutput {
    results: Vec<RerankResult>,
}

#[derive(Debug, Deserialize)]
struct RerankResult {
    index: usize,
    #[serde(alias = "relevanceScore")]
    relevance_score: f32,
}

impl BedrockRerank {
    /// A client of Bedrock in the configured region; talks to nothing until first used.
    pub fn new(aws: AwsConfig, options: BedrockRerankOptions) -> Result<Self, EmbeddingError> {
        if options.model_id.trim().is_empty() || options.max_attempts == 0 {
            return Err(EmbeddingError::InvalidInput(
                "a Bedrock reranker needs a model id and at least one attempt".into(),
            ));
        }
        Ok(Self {
            invoker: Invoker::new(aws, options.max_attempts, options.endpoint_url),
            model_id: options.model_id,
        })
    }
}

/// The request body `model_id` takes: every document ranked.
fn body(model_id: &str, query: &str, documents: &[String]) -> Result<Vec<u8>, EmbeddingError> {
    serde_json::to_vec(&RerankBody {
        query,
        documents,
        top_n: documents.len(),
        api_version: model_id.contains("cohere").then_some(2),
    })
    .map_err(|e| EmbeddingError::Inference(e.to_string()))
}

/// The scores of a response, in the order of the `documents` documents sent: every one
/// must be scored exactly once.
fn scores(response: &[u8], documents: usize) -> Result<Vec<f32>, EmbeddingError> {
    let output: RerankOutput = serde_json::from_slice(response)
        .map_err(|e| EmbeddingError::Inference(format!("Bedrock rerank response: {e}")))?;
    let mut scores = vec![None; documents];
    for result in output.results {
        match scores.get_mut(result.index) {
            Some(slot @ None) => *slot = Some(result.relevance_score),
            Some(Some(_)) => {
                return Err(EmbeddingError::Inference(format!(
                    "Bedrock rerank scored document {} twice",
                    result.index
                )));
            }
            None => {
                return Err(EmbeddingError::Inference(format!(
                    "Bedrock rerank scored document {} of {documents}",
                    result.index
                )));
            }
        }
    }
    scores
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            s.ok_or_else(|| {
                EmbeddingError::Inference(format!("Bedrock rerank did not score document {i}"))
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl Reranker for BedrockRerank {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Relevance scores in [0, 1] as the model gives them.
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbeddingError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        if passages.len() > BEDROCK_MAX_DOCUMENTS {
            return Err(too_many(passages.len(), BEDROCK_MAX_DOCUMENTS));
        }
        let request = body(&self.model_id, query, passages)?;
        let response = self.invoker.invoke(&self.model_id, request).await?;
        scores(response.as_ref(), passages.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn docs(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn cohere_gets_an_api_version_and_amazon_does_not() {
        let documents = docs(&["a", "b", "c"]);
        let cohere: Value =
            serde_json::from_slice(&body(COHERE_RERANK_V3_5, "q", &documents).unwrap()).unwrap();
        assert_eq!(
            cohere,
            json!({"query": "q", "documents": ["a", "b", "c"], "top_n": 3, "api_version": 2})
        );
        let amazon: Value =
            serde_json::from_slice(&body(AMAZON_RERANK_V1, "q", &documents).unwrap()).unwrap();
        assert_eq!(
            amazon,
            json!({"query": "q", "documents": ["a", "b", "c"], "top_n": 3})
        );
    }

    #[test]
    fn results_best_first_map_back_to_the_documents_order() {
        let response = json!({"results": [
            {"index": 2, "relevance_score": 0.9},
            {"index": 0, "relevanceScore": 0.5},
            {"index": 1, "relevance_score": 0.1},
        ]});
        let got = scores(response.to_string().as_bytes(), 3).unwrap();
        assert_eq!(got, vec![0.5, 0.1, 0.9]);
    }

    #[test]
    fn a_missing_repeated_or_foreign_index_is_an_error_not_a_panic() {
        for (response, says) in [
            (
                json!({"results": [{"index": 0, "relevance_score": 0.5}]}),
                "did not score document 1",
            ),
            (
                json!({"results": [
                    {"index": 0, "relevance_score": 0.5},
                    {"index": 0, "relevance_score": 0.4},
                ]}),
                "twice",
            ),
            (
                json!({"results": [
                    {"index": 0, "relevance_score": 0.5},
                    {"index": 7, "relevance_score": 0.4},
                ]}),
                "document 7 of 2",
            ),
            (
                json!({"results": [{"index": -1, "relevance_score": 0.5}]}),
                "response",
            ),
            (json!({"ranking": []}), "response"),
        ] {
            let err = scores(response.to_string().as_bytes(), 2).unwrap_err();
            assert!(
                matches!(&err, EmbeddingError::Inference(m) if m.contains(says)),
                "{response}: {err}"
            );
        }
    }

    #[test]
    fn options_are_checked() {
        let aws = AwsConfig::new(&rag_config::AwsSettings::default());
        let no_id = BedrockRerankOptions {
            model_id: " ".into(),
            ..BedrockRerankOptions::default()
        };
        assert!(BedrockRerank::new(aws.clone(), no_id).is_err());
        let model = BedrockRerank::new(aws, BedrockRerankOptions::default()).unwrap();
        assert_eq!(model.model_id(), COHERE_RERANK_V3_5);
    }
}
