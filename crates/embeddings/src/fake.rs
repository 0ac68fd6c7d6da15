//! [`HashEmbedding`]: a deterministic bag-of-words embedding, **for tests only**.
//!
//! It needs no model files and is instant, so unit tests of other crates can embed text
//! without the real weights. It has no notion of meaning: texts are similar exactly when they
//! share words. Never use it in a deployment.

use crate::{DEFAULT_MAX_TEXTS_PER_CALL, EmbeddingError, EmbeddingModel, l2_normalize};

/// Dimensions of [`HashEmbedding::new`], the same as all-MiniLM-L6-v2.
pub const HASH_EMBEDDING_DIMENSIONS: usize = 384;

/// Every word adds ±1 to this many dimensions (chosen by independent hashes).
const HASHES_PER_WORD: u8 = 3;

/// Words beyond this many are ignored, like the real model truncates its input.
const MAX_WORDS: usize = 256;

/// Stands for a text without words, so it still gets a unit vector. Words are alphanumeric,
/// so no word equals it.
const NO_WORDS_SENTINEL: &str = "\u{0}";

/// A deterministic hashing embedding for tests (see the [module docs](self)).
///
/// A text is split into words (maximal runs of alphanumeric characters), lower-cased; each
/// word adds ±1 to three dimensions picked by a fixed hash (FNV-1a, the same on
/// every platform and Rust version), and the sum is L2-normalised. So identical texts give
/// identical vectors, texts sharing words are similar (positive cosine, barring rare hash
/// collisions), and texts with no word in common are nearly orthogonal. A text with no words (e.g. `""` or `"?!"`)
/// embeds as a fixed unit vector. Only the first 256 words count; `count_tokens` counts
/// words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashEmbedding {
    dimensions: usize,
    model_id: String,
}

impl Default for HashEmbedding {
    fn default() -> Self {
        Self::new()
    }
}

impl HashEmbedding {
    /// A 384-dimension hashing embedding, model id `test/hash-embedding-384`.
    pub fn new() -> Self {
        Self {
            dimensions: HASH_EMBEDDING_DIMENSIONS,
            model_id: format!("test/hash-embedding-{HASH_EMBEDDING_DIMENSIONS}"),
        }
    }

    /// A hashing embedding with `dimensions` dimensions (at least 1).
    pub fn with_dimensions(dimensions: usize) -> Result<Self, EmbeddingError> {
        if dimensions == 0 {
            return Err(EmbeddingError::InvalidInput(
                "a hash embedding needs at least one dimension".into(),
            ));
        }
        Ok(Self {
            dimensions,
            model_id: format!("test/hash-embedding-{dimensions}"),
        })
    }

    /// The embedding of one text, synchronously.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dimensions];
        let mut any = false;
        for word in words(text).take(MAX_WORDS) {
            self.add_word(&mut v, &word);
            any = true;
        }
        if !any {
            self.add_word(&mut v, NO_WORDS_SENTINEL);
        }
        l2_normalize(&mut v);
        if v.iter().all(|x| *x == 0.0) {
            // The ±1 of different words cancelled out exactly (rare, e.g. one dimension):
            // fall back to the fixed vector so the result is still unit length.
            self.add_word(&mut v, NO_WORDS_SENTINEL);
            l2_normalize(&mut v);
        }
        v
    }

    fn add_word(&self, v: &mut [f32], word: &str) {
        let dims = v.len() as u64;
        for seed in 0..HASHES_PER_WORD {
            let h = mix(fnv1a(seed, word.as_bytes()));
            // `dims` is at least 1 and the result is below it, so it fits in usize.
            let index = usize::try_from(h % dims).unwrap_or(0);
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            if let Some(x) = v.get_mut(index) {
                *x += sign;
            }
        }
    }
}

#[async_trait::async_trait]
impl EmbeddingModel for HashEmbedding {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.len() > DEFAULT_MAX_TEXTS_PER_CALL {
            return Err(EmbeddingError::InvalidInput(format!(
                "{} texts in one call; at most {DEFAULT_MAX_TEXTS_PER_CALL} are allowed",
                texts.len()
            )));
        }
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }

    fn count_tokens(&self, text: &str) -> Result<usize, EmbeddingError> {
        Ok(words(text).count())
    }

    fn max_tokens(&self) -> usize {
        MAX_WORDS
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// 64-bit FNV-1a over a seed byte followed by `bytes`.
fn fnv1a(seed: u8, bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for b in std::iter::once(seed).chain(bytes.iter().copied()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// The splitmix64 finaliser: spreads FNV's weak low bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[tokio::test]
    async fn vectors_are_unit_length_in_order_and_deterministic() {
        let model = HashEmbedding::new();
        let texts: Vec<String> = ["alpha beta", "", "?!", "Gamma"].map(String::from).to_vec();
        let a = model.embed(&texts).await.unwrap();
        let b = model.embed(&texts).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        for v in &a {
            assert_eq!(v.len(), 384);
            assert!((norm(v) - 1.0).abs() < 1e-6, "norm {}", norm(v));
        }
        assert_eq!(a[3], model.embed_one("gamma"));
        // Texts without words share the fixed vector.
        assert_eq!(a[1], a[2]);
    }

    #[test]
    fn fixed_values_do_not_change_across_versions() {
        // Other crates' tests may rely on exact scores: this pins the hash.
        let v = HashEmbedding::with_dimensions(8)
            .unwrap()
            .embed_one("hello");
        let third = 1.0 / 3f32.sqrt();
        assert_eq!(v, [0.0, 0.0, third, -third, 0.0, third, 0.0, 0.0]);
    }

    #[test]
    fn shared_words_make_texts_similar() {
        let model = HashEmbedding::new();
        let q = model.embed_one("How do I rotate the API key?");
        let near = model.embed_one("Rotate your API key every 90 days.");
        let far = model.embed_one("Bananas grow in tropical climates.");
        let (s_near, s_far) = (cosine(&q, &near), cosine(&q, &far));
        assert!(s_near > 0.3, "near {s_near}");
        assert!(s_far.abs() < 0.2, "far {s_far}");
        assert!(s_near > s_far);
        // Case and punctuation do not matter.
        assert_eq!(model.embed_one("API key"), model.embed_one("api, KEY!"));
    }

    #[test]
    fn counts_words_and_truncates_like_a_model() {
        let model = HashEmbedding::new();
        assert_eq!(model.count_tokens("one two, three!").unwrap(), 3);
        assert_eq!(model.count_tokens("").unwrap(), 0);
        let long: String = (0..300).map(|i| format!("w{i} ")).collect();
        let first: String = (0..256).map(|i| format!("w{i} ")).collect();
        assert_eq!(model.count_tokens(&long).unwrap(), 300);
        assert_eq!(model.embed_one(&long), model.embed_one(&first));
        assert_eq!(model.max_tokens(), 256);
        assert_eq!(model.max_text_tokens(), 256);
    }

    #[tokio::test]
    async fn rejects_zero_dimensions_and_too_many_texts() {
        assert!(matches!(
            HashEmbedding::with_dimensions(0),
            Err(EmbeddingError::InvalidInput(_))
        ));
        let one = HashEmbedding::with_dimensions(1).unwrap();
        assert_eq!(one.embed_one("a b c d").len(), 1);
        assert!((norm(&one.embed_one("a b")) - 1.0).abs() < 1e-6);
        let model = HashEmbedding::new();
        let texts = vec![String::new(); DEFAULT_MAX_TEXTS_PER_CALL + 1];
        assert!(matches!(
            model.embed(&texts).await,
            Err(EmbeddingError::InvalidInput(_))
        ));
        assert!(model.embed(&[]).await.unwrap().is_empty());
    }
}
