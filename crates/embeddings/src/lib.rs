//! Text embeddings for llmops-rag-pipeline.
//!
//! Owns: the [`EmbeddingModel`] trait every service embeds through, its error type
//! [`EmbeddingError`], the local all-MiniLM-L6-v2 model run on the CPU with candle
//! ([`LocalMiniLm`]), Amazon Titan Text Embeddings V2 on Bedrock ([`BedrockTitan`]), a
//! deterministic hashing stand-in for tests ([`HashEmbedding`]), the [`Reranker`] trait and
//! its models (a BERT cross-encoder with candle, [`CrossEncoder`]; Bedrock's rerank models,
//! [`BedrockRerank`]: see [`rerank`]), and
//! where the model files live on disk ([`default_model_dir`]; they are fetched by
//! `scripts/fetch-model.sh`), and the embedding cache that wraps any model
//! ([`CachedEmbeddings`] over a [`VectorCache`], embedded in SQLite). Does not own: choosing a model from the configuration,
//! chunking text (chunkers count with [`TokenCounter`], which loads only the tokenizer, or
//! [`EmbeddingModel::count_tokens`], against [`EmbeddingModel::max_text_tokens`]), or storing vectors for search.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub mod bedrock;
mod bert;
pub mod cache;
mod encoder;
mod error;
pub mod fake;
mod gelu;
pub mod local;
pub mod rerank;
pub mod threads;
pub mod tokens;

pub use bedrock::{BedrockTitan, TitanOptions};
pub use cache::{CachedEmbeddings, SqliteVectorCache, VectorCache};
pub use error::EmbeddingError;
pub use fake::HashEmbedding;
pub use local::LocalMiniLm;
pub use rerank::{BedrockRerank, BedrockRerankOptions, CrossEncoder, Reranker};
pub use threads::pin_compute_threads;
pub use tokens::TokenCounter;

/// Environment variable that overrides where [`default_model_dir`] looks for the weights.
pub const MODEL_DIR_ENV: &str = "RAG_MODEL_DIR";

/// Where the weights live relative to the workspace root when [`MODEL_DIR_ENV`] is unset.
pub const DEFAULT_MODEL_SUBDIR: &str = ".cache/models/all-minilm-l6-v2";

/// Most texts one [`EmbeddingModel::embed`] call accepts by default; more is
/// [`EmbeddingError::InvalidInput`]. Bounds the memory and the time of one call (1024
/// MiniLM inputs of ~50 tokens take ~20 s on two idle cores).
pub const DEFAULT_MAX_TEXTS_PER_CALL: usize = 1024;

/// A text embedding model.
///
/// Object safe: services hold an `Arc<dyn EmbeddingModel>`.
#[async_trait::async_trait]
pub trait EmbeddingModel: Send + Sync + std::fmt::Debug {
    /// e.g. "sentence-transformers/all-MiniLM-L6-v2"
    fn model_id(&self) -> &str;

    /// Length of every vector [`embed`](Self::embed) returns.
    fn dimensions(&self) -> usize;

    /// Embeds texts; one L2-normalised vector per text, in order.
    ///
    /// An empty slice gives an empty result. A text longer than [`max_tokens`](Self::max_tokens)
    /// is truncated by the model (as sentence-transformers does), so callers that must not
    /// lose text chunk it first with [`count_tokens`](Self::count_tokens).
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError>;

    /// Number of model tokens in `text` (without special tokens), so chunkers can respect the model's limit.
    fn count_tokens(&self, text: &str) -> Result<usize, EmbeddingError>;

    /// Maximum tokens per input (256 for MiniLM).
    ///
    /// This counts the special tokens the model adds around every input (`[CLS]` and `[SEP]`
    /// for BERT models), which [`count_tokens`](Self::count_tokens) does not: compare
    /// `count_tokens` with [`max_text_tokens`](Self::max_text_tokens) instead.
    fn max_tokens(&self) -> usize;

    /// Largest [`count_tokens`](Self::count_tokens) a text may have and still be embedded
    /// whole: [`max_tokens`](Self::max_tokens) less the special tokens (254 for MiniLM).
    fn max_text_tokens(&self) -> usize {
        self.max_tokens()
    }
}

/// The directory holding `model.safetensors`, `tokenizer.json` and `config.json` of
/// all-MiniLM-L6-v2: `$RAG_MODEL_DIR` if set (and not empty), else
/// `<workspace root>/.cache/models/all-minilm-l6-v2`, where `scripts/fetch-model.sh` puts
/// them.
///
/// The workspace root is the first directory, walking up from the current directory, that
/// contains `Cargo.lock` or `.git`; when there is none (an installed binary run elsewhere),
/// it is this crate's source directory's `../..` as recorded at compile time. Deployments
/// should set `RAG_MODEL_DIR`.
pub fn default_model_dir() -> PathBuf {
    model_dir_from(
        std::env::var_os(MODEL_DIR_ENV),
        std::env::current_dir().ok().as_deref(),
    )
}

fn model_dir_from(env_value: Option<OsString>, cwd: Option<&Path>) -> PathBuf {
    if let Some(dir) = env_value.filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    workspace_root(cwd).join(DEFAULT_MODEL_SUBDIR)
}

fn workspace_root(cwd: Option<&Path>) -> PathBuf {
    cwd.and_then(|cwd| {
        cwd.ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file() || dir.join(".git").exists())
    })
    .map(Path::to_path_buf)
    .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Scales `v` to unit L2 norm in place; a zero vector stays zero.
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn env_var_wins_when_set() {
        let dir = model_dir_from(Some("/models/minilm".into()), Some(Path::new("/tmp")));
        assert_eq!(dir, PathBuf::from("/models/minilm"));
    }

    #[test]
    fn empty_env_var_is_ignored() {
        let cwd = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = model_dir_from(Some(OsString::new()), Some(cwd));
        assert!(dir.ends_with(DEFAULT_MODEL_SUBDIR), "{}", dir.display());
    }

    #[test]
    fn walks_up_to_the_workspace_root() {
        // The crate directory has no Cargo.lock of its own; the workspace root has.
        let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = model_dir_from(None, Some(&crate_dir.join("src")));
        let root = dir
            .ancestors()
            .nth(3)
            .expect("DEFAULT_MODEL_SUBDIR has three components");
        assert!(root.join("Cargo.lock").is_file(), "{}", dir.display());
        assert!(crate_dir.starts_with(root));
    }

    #[test]
    fn falls_back_to_the_compile_time_path() {
        let dir = model_dir_from(None, None);
        assert_eq!(
            dir,
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(DEFAULT_MODEL_SUBDIR)
        );
    }

    #[test]
    fn trait_is_object_safe() {
        let model: std::sync::Arc<dyn EmbeddingModel> = std::sync::Arc::new(HashEmbedding::new());
        assert_eq!(model.dimensions(), 384);
        assert_eq!(model.max_text_tokens(), model.max_tokens());
    }

    #[test]
    fn l2_normalize_scales_to_unit_length() {
        let mut v = [3.0, 4.0];
        l2_normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = [0.0; 3];
        l2_normalize(&mut zero);
        assert_eq!(zero, [0.0; 3]);
    }
}
