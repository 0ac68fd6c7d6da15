//! [`CrossEncoder`]: a BERT cross-encoder on the CPU with candle.
//!
//! The pipeline is the one of `BertForSequenceClassification` with one label, as
//! sentence-transformers' `CrossEncoder` runs it: the pair `[CLS] query [SEP] passage [SEP]`
//! (token types 0 then 1), truncated at `max_tokens` (the longer of the two first), padded to
//! the longest pair of its batch; the BERT encoder; the pooler, `tanh(dense(h_CLS))`; the
//! classifier, a linear layer to one logit; the score is `sigmoid(logit)`, in (0, 1).
//!
//! No cross-encoder weights come with the repository, and none can be fetched where it is
//! built: an operator supplies the directory (`reranker.model_dir`). The tests and the bench
//! use a synthetic model of the same architecture (all-MiniLM-L6-v2's encoder with a seeded
//! head), whose scores mean nothing for quality: they check the plumbing and measure latency.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Module as _, Tensor};
use candle_nn::Linear;
use tokenizers::utils::padding::PaddingParams;
use tokenizers::{Encoding, Tokenizer};

use super::{Reranker, too_many};
use crate::encoder::BertEncoder;
use crate::{EmbeddingError, bert};

/// Tokens of one (query, passage) pair by default, special tokens included (BERT's limit).
pub const DEFAULT_RERANK_MAX_TOKENS: usize = 512;

/// Most passages one [`CrossEncoder::rerank`] call accepts by default (a bound on one
/// call's time: a MiniLM-L6 pair of ~180 tokens took 0.4-0.5 s on two busy cores, see
/// `benches/rerank.rs`).
pub const DEFAULT_MAX_PASSAGES: usize = 200;

/// Pairs per forward pass: long pairs make large attention matrices (`batch × heads ×
/// tokens²`), so batches are smaller than the embedder's.
const BATCH_SIZE: usize = 16;

/// A BERT cross-encoder (see the [module docs](self)). Cheap to clone (the weights are
/// shared).
#[derive(Clone)]
pub struct CrossEncoder {
    inner: Arc<Inner>,
    model_id: String,
    max_passages: usize,
}

struct Inner {
    bert: BertEncoder,
    pooler: Linear,
    classifier: Linear,
    /// Truncates pairs at `max_tokens`, does not pad.
    tokenizer: Tokenizer,
    padding: PaddingParams,
    device: Device,
    model_dir: PathBuf,
    max_tokens: usize,
}

impl fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrossEncoder")
            .field("model_id", &self.model_id)
            .field("model_dir", &self.inner.model_dir)
            .field("max_tokens", &self.inner.max_tokens)
            .field("max_passages", &self.max_passages)
            .finish_non_exhaustive()
    }
}

impl CrossEncoder {
    /// Loads a Hugging Face `BertForSequenceClassification` directory (`config.json`,
    /// `tokenizer.json`, `model.safetensors` with `bert.*`, `bert.pooler.dense.*` and a
    /// one-label `classifier.*`), to report itself as `model_id` and read pairs of at most
    /// `max_tokens` tokens (no more than the model's `max_position_embeddings`).
    pub fn load(
        model_dir: &Path,
        model_id: impl Into<String>,
        max_tokens: usize,
    ) -> Result<Self, EmbeddingError> {
        let started = Instant::now();
        let load_error = |message: String| EmbeddingError::ModelLoad {
            path: model_dir.to_path_buf(),
            message,
        };
        let files = bert::load_dir(model_dir, max_tokens).map_err(|e| match e {
            EmbeddingError::ModelFilesMissing { path } => load_error(format!(
                "{} is missing: a cross-encoder directory holds {} (a Hugging Face \
                 BertForSequenceClassification, e.g. cross-encoder/ms-marco-MiniLM-L-6-v2)",
                path.display(),
                bert::MODEL_FILES.join(", ")
            )),
            other => other,
        })?;
        let config = &files.config;
        if max_tokens > config.max_position_embeddings {
            return Err(load_error(format!(
                "max_tokens {max_tokens} is more than the model's max_position_embeddings {}",
                config.max_position_embeddings
            )));
        }
        let hidden = config.hidden_size;
        let vb = files.weights;
        let bert = BertEncoder::load(vb.pp("bert"), config)
            .map_err(|e| load_error(format!("building BERT from bert.*: {e}")))?;
        let pooler = candle_nn::linear(hidden, hidden, vb.pp("bert.pooler.dense"))
            .map_err(|e| load_error(format!("the pooler (bert.pooler.dense): {e}")))?;
        let classifier = candle_nn::linear(hidden, 1, vb.pp("classifier")).map_err(|e| {
            load_error(format!(
                "the classifier (classifier.weight and .bias, one label): {e}"
            ))
        })?;
        let model_id = model_id.into();
        tracing::info!(
            model_id,
            model_dir = %model_dir.display(),
            elapsed_ms = started.elapsed().as_millis(),
            "loaded the cross-encoder"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                bert,
                pooler,
                classifier,
                tokenizer: files.tokenizer,
                padding: files.padding,
                device: Device::Cpu,
                model_dir: model_dir.to_path_buf(),
                max_tokens,
            }),
            model_id,
            max_passages: DEFAULT_MAX_PASSAGES,
        })
    }

    /// Most passages one `rerank` call accepts; more is [`EmbeddingError::InvalidInput`].
    #[must_use]
    pub fn with_max_passages(mut self, max_passages: usize) -> Self {
        self.max_passages = max_passages;
        self
    }
}

#[async_trait::async_trait]
impl Reranker for CrossEncoder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Scores in (0, 1). A passage longer than the pair's `max_tokens` is truncated, never
    /// refused.
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbeddingError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        if passages.len() > self.max_passages {
            return Err(too_many(passages.len(), self.max_passages));
        }
        let inner = Arc::clone(&self.inner);
        let query = query.to_owned();
        let passages = passages.to_vec();
        bert::on_blocking_pool(move || inner.score_blocking(&query, &passages)).await
    }
}

impl Inner {
    fn score_blocking(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, EmbeddingError> {
        let started = Instant::now();
        let pairs: Vec<(&str, &str)> = passages.iter().map(|p| (query, p.as_str())).collect();
        let encodings = self
            .tokenizer
            .encode_batch(pairs, true)
            .map_err(|e| EmbeddingError::Tokenizer(e.to_string()))?;
        let scores =
            bert::in_sorted_batches(encodings, &self.padding, BATCH_SIZE, |b| self.forward(b))?;
        tracing::debug!(
            passages = passages.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "reranked"
        );
        Ok(scores)
    }

    /// One forward pass over pairs padded to the same length: one score per pair.
    fn forward(&self, batch: &[Encoding]) -> candle_core::Result<Vec<f32>> {
        let (ids, type_ids, mask) = bert::inputs(batch, &self.device)?;
        let hidden = self.bert.forward(&ids, &type_ids, &mask)?;
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        let logits: Tensor = self.classifier.forward(&pooled)?.squeeze(1)?;
        Ok(logits.to_vec1::<f32>()?.into_iter().map(sigmoid).collect())
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_maps_logits_into_the_unit_interval() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(20.0) > 0.999 && sigmoid(-20.0) < 0.001);
        assert!(sigmoid(1.0) > sigmoid(0.5));
    }
}
