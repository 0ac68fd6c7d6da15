//! [`TokenCounter`]: counts tokens as the embedding model will, without loading the model.
//!
//! The ingest-worker sizes chunks with it so that no chunk is silently truncated by the
//! model. It reads only `tokenizer.json` (~0.5 MB, milliseconds), never the weights.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tokenizers::Tokenizer;

use crate::EmbeddingError;
use crate::local::{MINILM_MAX_TOKENS, SPECIAL_TOKENS_PER_INPUT};

/// Counts tokens of a text the way an embedding model's tokenizer does.
///
/// Two kinds:
/// * [`load`](Self::load): the model's own tokenizer (`tokenizer.json`), exact. For
///   all-MiniLM-L6-v2, [`max_text_tokens`](Self::max_text_tokens) is 254 (256 less
///   `[CLS]` and `[SEP]`), as [`crate::LocalMiniLm`] reports.
/// * [`approximate`](Self::approximate): for models without a tokenizer file (the test
///   [`crate::HashEmbedding`]). It counts *pieces*: each maximal run of letters and digits
///   is one, and so is each other character that is not white space ("e-mail, 2x" is 5:
///   `e` `-` `mail` `,` `2x`). That is close to how BERT splits words before WordPiece, so
///   for prose and code it is at most the WordPiece count (English prose has ~1.3 WordPiece
///   tokens per piece); it is never below the word count that `HashEmbedding` truncates at,
///   which is the limit that matters for that model.
///
/// Cheap to clone (the tokenizer is shared).
#[derive(Clone)]
pub struct TokenCounter {
    tokenizer: Option<Arc<Tokenizer>>,
    max_text_tokens: usize,
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCounter")
            .field("exact", &self.is_exact())
            .field("max_text_tokens", &self.max_text_tokens)
            .finish()
    }
}

impl TokenCounter {
    /// The tokenizer of all-MiniLM-L6-v2 from `model_dir/tokenizer.json`, without
    /// truncation or padding.
    pub fn load(model_dir: &Path) -> Result<Self, EmbeddingError> {
        let path = model_dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(EmbeddingError::ModelFilesMissing { path });
        }
        let tokenizer = Tokenizer::from_file(&path).map_err(|e| EmbeddingError::ModelLoad {
            path: model_dir.to_path_buf(),
            message: format!("parsing tokenizer.json: {e}"),
        })?;
        Self::exact(tokenizer, MINILM_MAX_TOKENS - SPECIAL_TOKENS_PER_INPUT)
    }

    /// Counts with `tokenizer` (its padding and truncation turned off) for a model taking
    /// `max_text_tokens`; the model itself counts through this too.
    pub(crate) fn exact(
        mut tokenizer: Tokenizer,
        max_text_tokens: usize,
    ) -> Result<Self, EmbeddingError> {
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbeddingError::Tokenizer(format!("configuring the tokenizer: {e}")))?;
        Ok(Self {
            tokenizer: Some(Arc::new(tokenizer)),
            max_text_tokens,
        })
    }

    /// [`load`](Self::load) from [`crate::default_model_dir`].
    pub fn load_default() -> Result<Self, EmbeddingError> {
        Self::load(&crate::default_model_dir())
    }

    /// The approximation (see the type's docs) for a model taking `max_text_tokens`.
    pub fn approximate(max_text_tokens: usize) -> Self {
        Self {
            tokenizer: None,
            max_text_tokens,
        }
    }

    /// Whether counts come from the model's tokenizer.
    pub fn is_exact(&self) -> bool {
        self.tokenizer.is_some()
    }

    /// Most tokens a text may have and still be embedded whole (special tokens excluded).
    pub fn max_text_tokens(&self) -> usize {
        self.max_text_tokens
    }

    /// Tokens in `text`, without the special tokens.
    pub fn count(&self, text: &str) -> Result<usize, EmbeddingError> {
        match &self.tokenizer {
            Some(tokenizer) => tokenizer
                .encode(text, false)
                .map(|encoding| encoding.len())
                .map_err(|e| EmbeddingError::Tokenizer(e.to_string())),
            None => Ok(pieces(text)),
        }
    }
}

fn pieces(text: &str) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if !in_word {
                count += 1;
            }
            in_word = true;
        } else {
            in_word = false;
            if !c.is_whitespace() {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{EmbeddingModel, HashEmbedding, LocalMiniLm, default_model_dir};

    #[test]
    fn approximation_counts_words_and_punctuation() {
        let counter = TokenCounter::approximate(256);
        assert!(!counter.is_exact());
        assert_eq!(counter.count("").unwrap(), 0);
        assert_eq!(counter.count("e-mail, 2x").unwrap(), 5);
        assert_eq!(counter.count("  Ünïcode  wörds ").unwrap(), 2);
        let text = "Book trains (not flights) for trips under 4 hours.";
        let words = HashEmbedding::new().count_tokens(text).unwrap();
        assert!(counter.count(text).unwrap() >= words);
    }

    #[test]
    fn missing_tokenizer_is_reported() {
        let dir = std::env::temp_dir().join(format!("rag-tokens-missing-{}", std::process::id()));
        let err = TokenCounter::load(&dir).unwrap_err();
        assert!(
            matches!(&err, EmbeddingError::ModelFilesMissing { path } if path.ends_with("tokenizer.json")),
            "{err:?}"
        );
    }

    /// Needs the model files (`make models`); skipped without them.
    #[test]
    fn matches_the_model_and_bounds_the_approximation() {
        let dir = default_model_dir();
        if !dir.join("model.safetensors").is_file() {
            eprintln!("skipped: no model in {}", dir.display());
            return;
        }
        let counter = TokenCounter::load(&dir).unwrap();
        let model = LocalMiniLm::load(&dir).unwrap();
        assert!(counter.is_exact());
        assert_eq!(counter.max_text_tokens(), model.max_text_tokens());
        let approximate = TokenCounter::approximate(254);
        for text in [
            "Reimbursement of international travel is paid monthly.",
            "Lag: SELECT now() - pg_last_xact_replay_timestamp() AS lag;",
            "Überweisung — 150 € pro Nacht, ca. 3½ Std.",
        ] {
            let exact = counter.count(text).unwrap();
            assert_eq!(exact, model.count_tokens(text).unwrap(), "{text}");
            if text.is_ascii() {
                assert!(approximate.count(text).unwrap() <= exact, "{text}");
            }
        }
    }
}
