//! [`LocalMiniLm`]: sentence-transformers/all-MiniLM-L6-v2 run on the CPU with candle.
//!
//! The pipeline is the one of sentence-transformers: BERT WordPiece tokenizer (lower-cased,
//! `[CLS] … [SEP]`, truncated at 256 tokens, padded to the longest input of a batch),
//! the 6-layer BERT encoder in f32, mean pooling over the attention mask, L2 normalisation.
//! It matches the Python sentence-transformers to ~2e-7 (see `tests/reference.rs`).
//!
//! # Threads
//!
//! Inference runs on tokio's blocking pool (`spawn_blocking`), never on a runtime worker.
//! candle parallelises its matrix products on its own rayon pool, sized by
//! `RAYON_NUM_THREADS` (`CANDLE_NUM_THREADS` for its element-wise kernels), by default one
//! thread per physical core; tokenizers uses rayon's global pool for batches
//! (`TOKENIZERS_PARALLELISM=false` turns that off). Nothing here limits them: concurrent
//! `embed` calls share those pools rather than multiply the threads, and on a small machine
//! one call already uses every core, so extra concurrency adds latency, not throughput.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use tokenizers::utils::padding::PaddingParams;
use tokenizers::{Encoding, Tokenizer};

use crate::bert;
pub use crate::bert::MODEL_FILES;
use crate::encoder::BertEncoder;
use crate::{
    DEFAULT_MAX_TEXTS_PER_CALL, EmbeddingError, EmbeddingModel, TokenCounter, default_model_dir,
};

/// The model id [`LocalMiniLm`] reports.
pub const MINILM_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Vector length of all-MiniLM-L6-v2.
pub const MINILM_DIMENSIONS: usize = 384;

/// Tokens per input, special tokens included (sentence-transformers' `max_seq_length`).
pub const MINILM_MAX_TOKENS: usize = 256;

/// `[CLS]` and `[SEP]`.
pub(crate) const SPECIAL_TOKENS_PER_INPUT: usize = 2;

/// Texts per forward pass by default.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// all-MiniLM-L6-v2 on the CPU (see the [module docs](self)).
///
/// Cheap to clone (the weights are shared). Within one [`embed`](EmbeddingModel::embed) call
/// the texts are sorted by token count and run in sub-batches of
/// [`DEFAULT_BATCH_SIZE`], so similar lengths are padded together; results come back in the
/// caller's order.
///
/// Inputs longer than 256 tokens are truncated, as sentence-transformers does. The empty
/// string is embedded as the model does (as `[CLS] [SEP]`, the same vector
/// sentence-transformers gives), not rejected. If the caller's future is dropped, the running
/// batch still finishes on the blocking pool, and its result is discarded.
#[derive(Clone)]
pub struct LocalMiniLm {
    inner: Arc<Inner>,
    batch_size: usize,
    max_texts_per_call: usize,
}

struct Inner {
    model: BertEncoder,
    /// Truncates at 256 tokens, does not pad (padding is per sub-batch).
    tokenizer: Tokenizer,
    /// Neither truncates nor pads: counts tokens for chunkers.
    counter: TokenCounter,
    /// The tokenizer file's padding with its strategy replaced by pad-to-longest.
    padding: PaddingParams,
    device: Device,
    model_dir: PathBuf,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<LocalMiniLm>();
};

impl fmt::Debug for LocalMiniLm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalMiniLm")
            .field("model_id", &MINILM_MODEL_ID)
            .field("model_dir", &self.inner.model_dir)
            .field("batch_size", &self.batch_size)
            .field("max_texts_per_call", &self.max_texts_per_call)
            .finish_non_exhaustive()
    }
}

impl LocalMiniLm {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `model_dir`
    /// (as written by `scripts/fetch-model.sh`). Reads ~90 MB; takes well under a second.
    pub fn load(model_dir: &Path) -> Result<Self, EmbeddingError> {
        let started = Instant::now();
        let files = bert::load_dir(model_dir, MINILM_MAX_TOKENS)?;
        let load_error = |message: String| EmbeddingError::ModelLoad {
            path: model_dir.to_path_buf(),
            message,
        };
        if files.config.hidden_size != MINILM_DIMENSIONS {
            return Err(load_error(format!(
                "config.json has hidden_size {}, all-MiniLM-L6-v2 has {MINILM_DIMENSIONS}",
                files.config.hidden_size
            )));
        }
        let model = BertEncoder::load(files.weights, &files.config)
            .map_err(|e| load_error(format!("building BERT from model.safetensors: {e}")))?;
        let counter = TokenCounter::exact(
            files.tokenizer.clone(),
            MINILM_MAX_TOKENS - SPECIAL_TOKENS_PER_INPUT,
        )?;

        tracing::info!(
            model_dir = %model_dir.display(),
            elapsed_ms = started.elapsed().as_millis(),
            threads = candle_core::utils::get_num_threads(),
            "loaded all-MiniLM-L6-v2"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                model,
                tokenizer: files.tokenizer,
                counter,
                padding: files.padding,
                device: Device::Cpu,
                model_dir: model_dir.to_path_buf(),
            }),
            batch_size: DEFAULT_BATCH_SIZE,
            max_texts_per_call: DEFAULT_MAX_TEXTS_PER_CALL,
        })
    }

    /// [`load`](Self::load) from [`default_model_dir`].
    pub fn load_default() -> Result<Self, EmbeddingError> {
        Self::load(&default_model_dir())
    }

    /// Texts per forward pass (at least 1). Larger batches pad more and use more memory
    /// (`batch × tokens × 1536` floats per layer); 32 is near the best throughput on a CPU.
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Most texts one `embed` call accepts; more is [`EmbeddingError::InvalidInput`].
    #[must_use]
    pub fn with_max_texts_per_call(mut self, max_texts: usize) -> Self {
        self.max_texts_per_call = max_texts;
        self
    }

    /// The directory the model was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.inner.model_dir
    }
}

#[async_trait::async_trait]
impl EmbeddingModel for LocalMiniLm {
    fn model_id(&self) -> &str {
        MINILM_MODEL_ID
    }

    fn dimensions(&self) -> usize {
        MINILM_DIMENSIONS
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        if texts.len() > self.max_texts_per_call {
            return Err(EmbeddingError::InvalidInput(format!(
                "{} texts in one call; at most {} are allowed",
                texts.len(),
                self.max_texts_per_call
            )));
        }
        let inner = Arc::clone(&self.inner);
        let texts = texts.to_vec();
        let batch_size = self.batch_size;
        bert::on_blocking_pool(move || inner.embed_blocking(&texts, batch_size)).await
    }

    /// Runs the tokenizer on the calling thread (microseconds per sentence).
    fn count_tokens(&self, text: &str) -> Result<usize, EmbeddingError> {
        self.inner.counter.count(text)
    }

    fn max_tokens(&self) -> usize {
        MINILM_MAX_TOKENS
    }

    fn max_text_tokens(&self) -> usize {
        self.inner.counter.max_text_tokens()
    }
}

impl Inner {
    fn embed_blocking(
        &self,
        texts: &[String],
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let started = Instant::now();
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| EmbeddingError::Tokenizer(e.to_string()))?;
        let vectors =
            bert::in_sorted_batches(encodings, &self.padding, batch_size, |b| self.forward(b))?;
        tracing::debug!(
            texts = texts.len(),
            elapsed_ms = started.elapsed().as_millis(),
            "embedded"
        );
        Ok(vectors)
    }

    /// One forward pass over encodings padded to the same length.
    fn forward(&self, batch: &[Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let (ids, type_ids, mask) = bert::inputs(batch, &self.device)?;
        let hidden = self.model.forward(&ids, &type_ids, &mask)?;
        mean_pool_l2(&hidden, &mask)?.to_vec2::<f32>()
    }
}

/// Mean of `hidden` (batch × tokens × dims) over the tokens whose `mask` (batch × tokens,
/// any dtype, 1 = real token) is set, then L2-normalised per row: sentence-transformers'
/// `Pooling(mean)` followed by `Normalize` (token count clamped at 1e-9, norm at 1e-12, so
/// an all-zero row stays zero instead of NaN).
pub(crate) fn mean_pool_l2(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.maximum(1e-9)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
    mean.broadcast_div(&norms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_ignores_masked_tokens_and_normalises() {
        // Two rows, three tokens, two dims; the second row's last token is padding.
        let hidden = Tensor::new(
            &[
                [[1.0f32, 0.0], [3.0, 0.0], [2.0, 3.0]],
                [[0.0, 2.0], [4.0, 4.0], [100.0, -100.0]],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1], [1, 1, 0]], &Device::Cpu).unwrap();
        let pooled = mean_pool_l2(&hidden, &mask)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        // Row 0: mean (2, 1) -> (2, 1)/sqrt(5). Row 1: mean (2, 3) -> (2, 3)/sqrt(13).
        let expected = [
            [2.0 / 5f32.sqrt(), 1.0 / 5f32.sqrt()],
            [2.0 / 13f32.sqrt(), 3.0 / 13f32.sqrt()],
        ];
        for (row, want) in pooled.iter().zip(expected) {
            for (got, want) in row.iter().zip(want) {
                assert!((got - want).abs() < 1e-6, "{pooled:?}");
            }
        }
    }

    #[test]
    fn mean_pool_of_an_all_masked_or_zero_row_is_zero_not_nan() {
        let hidden = Tensor::new(&[[[0.0f32, 0.0], [5.0, 5.0]]], &Device::Cpu).unwrap();
        let none = Tensor::new(&[[0u8, 0]], &Device::Cpu).unwrap();
        let pooled = mean_pool_l2(&hidden, &none)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(pooled, vec![vec![0.0, 0.0]]);
        let first = Tensor::new(&[[1u8, 0]], &Device::Cpu).unwrap();
        let pooled = mean_pool_l2(&hidden, &first)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(pooled, vec![vec![0.0, 0.0]]);
    }

    #[test]
    fn load_reports_the_missing_file() {
        let dir =
            std::env::temp_dir().join(format!("rag-embeddings-missing-{}", std::process::id()));
        let err = LocalMiniLm::load(&dir).unwrap_err();
        match &err {
            EmbeddingError::ModelFilesMissing { path } => {
                assert_eq!(path, &dir.join("model.safetensors"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("make models"));
    }

    #[test]
    fn load_rejects_garbage_files() {
        let dir =
            std::env::temp_dir().join(format!("rag-embeddings-garbage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in MODEL_FILES {
            std::fs::write(dir.join(name), b"not a model").unwrap();
        }
        let err = LocalMiniLm::load(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, EmbeddingError::ModelLoad { .. }), "{err:?}");
    }
}
