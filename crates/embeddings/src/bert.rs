//! What [`crate::LocalMiniLm`] and [`crate::rerank::CrossEncoder`] share: reading a Hugging
//! Face BERT directory, and running encodings through a model in length-sorted batches on the
//! blocking pool.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use tokenizers::utils::padding::{PaddingParams, PaddingStrategy, pad_encodings};
use tokenizers::utils::truncation::{TruncationDirection, TruncationParams, TruncationStrategy};
use tokenizers::{Encoding, Tokenizer};

use crate::EmbeddingError;

/// The files a BERT model directory holds (as Hugging Face writes them).
pub const MODEL_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// A BERT model directory, read.
pub(crate) struct BertDir {
    pub config: Config,
    /// Every tensor of `model.safetensors`, in f32 on the CPU.
    pub weights: VarBuilder<'static>,
    /// Truncates at `max_tokens` (special tokens included; the longest input of a pair
    /// first), does not pad: padding is per batch, with [`Self::padding`].
    pub tokenizer: Tokenizer,
    /// The tokenizer file's padding with its strategy replaced by pad-to-longest.
    pub padding: PaddingParams,
}

/// Reads `config.json`, `model.safetensors` and `tokenizer.json` from `model_dir`.
///
/// A missing file is [`EmbeddingError::ModelFilesMissing`]; a file that cannot be read or
/// parsed is [`EmbeddingError::ModelLoad`]. Whether the tensors make the model the caller
/// wants is the caller's to check (building it names the first missing tensor).
pub(crate) fn load_dir(model_dir: &Path, max_tokens: usize) -> Result<BertDir, EmbeddingError> {
    let [weights_path, tokenizer_path, config_path] = MODEL_FILES.map(|f| model_dir.join(f));
    for path in [&weights_path, &tokenizer_path, &config_path] {
        if !path.is_file() {
            return Err(EmbeddingError::ModelFilesMissing { path: path.clone() });
        }
    }
    let load_error = |message: String| EmbeddingError::ModelLoad {
        path: model_dir.to_path_buf(),
        message,
    };
    let config_text = std::fs::read_to_string(&config_path)
        .map_err(|e| load_error(format!("reading config.json: {e}")))?;
    let config: Config = serde_json::from_str(&config_text)
        .map_err(|e| load_error(format!("parsing config.json: {e}")))?;

    let device = Device::Cpu;
    let bytes = std::fs::read(&weights_path)
        .map_err(|e| load_error(format!("reading model.safetensors: {e}")))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &device)
        .map_err(|e| load_error(format!("parsing model.safetensors: {e}")))?;
    drop(bytes);
    let tensors = tensors
        .into_iter()
        .map(|(name, tensor)| {
            let tensor = column_major_if_linear(&name, tensor)?;
            Ok((name, tensor))
        })
        .collect::<candle_core::Result<_>>()
        .map_err(|e| load_error(format!("laying out model.safetensors: {e}")))?;
    let weights = VarBuilder::from_tensors(tensors, DType::F32, &device);

    let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| load_error(format!("parsing tokenizer.json: {e}")))?;
    // Files often pad and truncate to a fixed length (128 for MiniLM); inputs are padded to
    // the longest of their batch instead, and truncated at the model's limit.
    let padding = PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..tokenizer.get_padding().cloned().unwrap_or_default()
    };
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: max_tokens,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(|e| load_error(format!("configuring the tokenizer: {e}")))?;
    Ok(BertDir {
        config,
        weights,
        tokenizer,
        padding,
    })
}

/// `tensor` stored column-major when it is a linear layer's weight (rank 2, not an
/// embedding table): the same values and shape, a transposed memory layout.
///
/// A linear layer computes `x · Wᵀ`, and gemm packs the weight operand on every product.
/// From a row-major `W` that packing is an element-by-element gather, which for the few
/// rows of a query costs more than the multiplication itself; from a column-major `W` it is
/// a straight copy (`benches/query.rs` measures the difference). Embedding tables stay
/// row-major: they are read by row.
fn column_major_if_linear(name: &str, tensor: Tensor) -> candle_core::Result<Tensor> {
    if tensor.rank() == 2 && !name.contains("embeddings") {
        column_major(&tensor)
    } else {
        Ok(tensor)
    }
}

/// The same matrix stored column-major (see [`column_major_if_linear`]).
pub(crate) fn column_major(matrix: &Tensor) -> candle_core::Result<Tensor> {
    matrix.t()?.contiguous()?.t()
}

/// Input ids, token type ids and attention mask (each rows × tokens) of encodings padded to
/// the same length.
pub(crate) fn inputs(
    batch: &[Encoding],
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let rows = batch.len();
    let len = batch.first().map_or(0, Encoding::len);
    let mut ids = Vec::with_capacity(rows * len);
    let mut type_ids = Vec::with_capacity(rows * len);
    let mut mask = Vec::with_capacity(rows * len);
    for encoding in batch {
        ids.extend_from_slice(encoding.get_ids());
        type_ids.extend_from_slice(encoding.get_type_ids());
        mask.extend_from_slice(encoding.get_attention_mask());
    }
    // `from_vec` checks that every row had `len` tokens.
    Ok((
        Tensor::from_vec(ids, (rows, len), device)?,
        Tensor::from_vec(type_ids, (rows, len), device)?,
        Tensor::from_vec(mask, (rows, len), device)?,
    ))
}

/// One output per encoding, in the encodings' order: they are sorted by length so each
/// batch of `batch_size` pads little, padded with `padding`, and run through `forward`
/// (which must give one output per encoding of its batch).
pub(crate) fn in_sorted_batches<T>(
    encodings: Vec<Encoding>,
    padding: &PaddingParams,
    batch_size: usize,
    mut forward: impl FnMut(&[Encoding]) -> candle_core::Result<Vec<T>>,
) -> Result<Vec<T>, EmbeddingError> {
    let count = encodings.len();
    let mut indexed: Vec<(usize, Encoding)> = encodings.into_iter().enumerate().collect();
    indexed.sort_by_key(|(_, encoding)| encoding.len());
    let (positions, mut encodings): (Vec<usize>, Vec<Encoding>) = indexed.into_iter().unzip();

    let batch_size = batch_size.max(1);
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(count).collect();
    for (batch_positions, batch) in positions
        .chunks(batch_size)
        .zip(encodings.chunks_mut(batch_size))
    {
        pad_encodings(batch, padding).map_err(|e| EmbeddingError::Tokenizer(e.to_string()))?;
        let outputs = forward(batch).map_err(|e| EmbeddingError::Inference(e.to_string()))?;
        if outputs.len() != batch.len() {
            return Err(EmbeddingError::Inference(format!(
                "{} outputs for a batch of {}",
                outputs.len(),
                batch.len()
            )));
        }
        for (&position, output) in batch_positions.iter().zip(outputs) {
            if let Some(slot) = out.get_mut(position) {
                *slot = Some(output);
            }
        }
    }
    out.into_iter()
        .map(|v| v.ok_or_else(|| EmbeddingError::Inference("an input got no output".into())))
        .collect()
}

/// Runs `work` on tokio's blocking pool (inline when polled outside a runtime, which has
/// none). Dropping the future does not stop `work`; its result is discarded.
pub(crate) async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EmbeddingError> + Send + 'static,
) -> Result<T, EmbeddingError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(work)
            .await
            .map_err(|e| EmbeddingError::Inference(format!("the model's worker failed: {e}")))?,
        Err(_) => work(),
    }
}
