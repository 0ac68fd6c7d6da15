//! The semantic layer's shared parts: question vectors, their exact cosine, and the
//! locality-sensitive hashing that lets Redis find candidates without a search module.
//!
//! A cached question is stored with its embedding and its text. A new question is a semantic
//! hit when a stored question of the same scope has an exact cosine ≥ the threshold with it
//! (and passes whatever the caller checks on the two texts). Finding
//! candidates without scanning the scope uses random-hyperplane hashing (SimHash):
//! [`TABLES`] tables of [`BITS`] hyperplanes each; a vector's signature in a table is the
//! side of each hyperplane it lies on. Two vectors at angle θ share a table's bucket with
//! probability (1 − θ/π)^BITS, so at cosine 0.95 (θ ≈ 18°) one table catches a pair with
//! probability ≈ 0.43 and six tables with ≈ 0.96; at cosine 0.97, ≈ 0.99. Candidates found
//! this way are always re-checked with the exact cosine, so hashing can miss a hit but
//! never makes one.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

/// Hash tables per vector.
pub const TABLES: usize = 6;
/// Hyperplanes per table (so 2^BITS buckets per table and scope).
pub const BITS: usize = 8;

/// A cached answer whose question is close enough to the one asked.
#[derive(Clone, Debug, PartialEq)]
pub struct SemanticHit {
    /// The answer's cache key.
    pub key: String,
    /// The text of the question the answer was cached for.
    pub question: String,
    /// The exact cosine between the two questions' vectors.
    pub cosine: f32,
}

/// The cosine of two vectors; 0 when either is zero or their lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

/// Keeps the best `limit` hits at or above `min_cosine` among `candidates` (key, question,
/// vector), best first, one per key.
pub(crate) fn best_hits<'a>(
    query: &[f32],
    candidates: impl IntoIterator<Item = (&'a str, &'a str, &'a [f32])>,
    min_cosine: f32,
    limit: usize,
) -> Vec<SemanticHit> {
    let mut best: HashMap<&str, (&str, f32)> = HashMap::new();
    for (key, question, vector) in candidates {
        let c = cosine(query, vector);
        if c >= min_cosine {
            let entry = best.entry(key).or_insert((question, c));
            if c > entry.1 {
                *entry = (question, c);
            }
        }
    }
    let mut hits: Vec<SemanticHit> = best
        .into_iter()
        .map(|(key, (question, cosine))| SemanticHit {
            key: key.to_owned(),
            question: question.to_owned(),
            cosine,
        })
        .collect();
    hits.sort_by(|a, b| b.cosine.total_cmp(&a.cosine).then(a.key.cmp(&b.key)));
    hits.truncate(limit);
    hits
}

/// The bucket of `vector` in each table.
pub(crate) fn signatures(vector: &[f32]) -> [u16; TABLES] {
    let planes = hyperplanes(vector.len());
    let mut out = [0u16; TABLES];
    for (table, signature) in out.iter_mut().enumerate() {
        for bit in 0..BITS {
            let offset = (table * BITS + bit) * vector.len();
            let plane = &planes[offset..offset + vector.len()];
            let side: f32 = plane.iter().zip(vector).map(|(p, v)| p * v).sum();
            if side >= 0.0 {
                *signature |= 1 << bit;
            }
        }
    }
    out
}

/// The hyperplanes for vectors of `dimensions`, the same in every process (a fixed seed),
/// so that processes sharing a Redis agree on buckets. Gaussian components, as SimHash's
/// angle guarantee needs.
fn hyperplanes(dimensions: usize) -> Arc<Vec<f32>> {
    static PLANES: LazyLock<Mutex<HashMap<usize, Arc<Vec<f32>>>>> = LazyLock::new(Default::default);
    PLANES
        .lock()
        .entry(dimensions)
        .or_insert_with(|| {
            let mut rng = SplitMix64(0x5eed_cafe_u64 ^ dimensions as u64);
            let count = TABLES * BITS * dimensions;
            let mut planes = Vec::with_capacity(count);
            while planes.len() < count {
                // Box–Muller: two uniforms in (0, 1] → two standard normals.
                let u1 = rng.unit();
                let u2 = rng.unit();
                let radius = (-2.0 * u1.ln()).sqrt();
                let angle = std::f64::consts::TAU * u2;
                planes.push((radius * angle.cos()) as f32);
                planes.push((radius * angle.sin()) as f32);
            }
            planes.truncate(count);
            Arc::new(planes)
        })
        .clone()
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

/// One stored question: the answer's key, the question's text and its vector, as bytes
/// (`u16` key length, the key, `u16` text length, the text, then little-endian `f32`s).
/// `None` when the key or the text is longer than 64 KiB.
pub(crate) fn encode_entry(key: &str, question: &str, vector: &[f32]) -> Option<Vec<u8>> {
    let key_length = u16::try_from(key.len()).ok()?;
    let question_length = u16::try_from(question.len()).ok()?;
    let mut out = Vec::with_capacity(4 + key.len() + question.len() + 4 * vector.len());
    out.extend_from_slice(&key_length.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&question_length.to_le_bytes());
    out.extend_from_slice(question.as_bytes());
    for v in vector {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Some(out)
}

/// A stored question: the answer's key, the question's text, its vector.
pub(crate) type Entry = (String, String, Vec<f32>);

/// The inverse of [`encode_entry`]; `None` for bytes it did not make.
pub(crate) fn decode_entry(bytes: &[u8]) -> Option<Entry> {
    let (key, rest) = split_string(bytes)?;
    let (question, floats) = split_string(rest)?;
    if floats.len() % 4 != 0 {
        return None;
    }
    let vector = floats
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some((key, question, vector))
}

/// A `u16`-length-prefixed UTF-8 string at the start of `bytes`, and what follows it.
fn split_string(bytes: &[u8]) -> Option<(String, &[u8])> {
    let (length, rest) = bytes.split_first_chunk::<2>()?;
    let length = usize::from(u16::from_le_bytes(*length));
    if rest.len() < length {
        return None;
    }
    let (text, rest) = rest.split_at(length);
    Some((std::str::from_utf8(text).ok()?.to_owned(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_vector(seed: u64, dimensions: usize) -> Vec<f32> {
        let mut rng = SplitMix64(seed);
        let v: Vec<f32> = (0..dimensions).map(|_| rng.unit() as f32 - 0.5).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    }

    /// A unit vector at exactly cosine `c` with `a`.
    fn at_cosine(a: &[f32], c: f32, seed: u64) -> Vec<f32> {
        let r = unit_vector(seed, a.len());
        let dot: f32 = a.iter().zip(&r).map(|(x, y)| x * y).sum();
        let orth: Vec<f32> = r.iter().zip(a).map(|(y, x)| y - dot * x).collect();
        let norm = orth.iter().map(|x| x * x).sum::<f32>().sqrt();
        let s = (1.0 - c * c).sqrt();
        a.iter()
            .zip(&orth)
            .map(|(x, o)| c * x + s * o / norm)
            .collect()
    }

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[2.0, 2.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn entries_round_trip_and_garbage_is_rejected() {
        let bytes = encode_entry("answer:t:hr:1", "How many days?", &[0.5, -1.25]).unwrap();
        assert_eq!(
            decode_entry(&bytes),
            Some((
                "answer:t:hr:1".to_owned(),
                "How many days?".to_owned(),
                vec![0.5, -1.25]
            ))
        );
        assert_eq!(decode_entry(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_entry(&[9]), None);
        assert_eq!(decode_entry(&[200, 0, b'a']), None);
        assert_eq!(decode_entry(&[1, 0, b'a', 9, 0, b'b']), None);
        assert!(encode_entry("k", &"x".repeat(70_000), &[1.0]).is_none());
    }

    #[test]
    fn best_hits_verify_the_threshold_and_rank() {
        let q = [1.0, 0.0];
        let close = [0.99, 0.141];
        let far = [0.5, 0.866];
        let hits = best_hits(
            &q,
            [
                ("far", "far?", &far[..]),
                ("close", "close?", &close[..]),
                ("close", "close?", &close[..]),
            ],
            0.95,
            5,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].key, "close");
        assert_eq!(hits[0].question, "close?");
        assert!(hits[0].cosine >= 0.95);
    }

    /// The recall the module documentation promises, measured over random pairs.
    #[test]
    fn near_vectors_share_a_bucket_as_often_as_promised() {
        let trials = 400;
        for (c, promised) in [(0.95f32, 0.9), (0.97, 0.97)] {
            let mut found = 0;
            for seed in 0..trials {
                let a = unit_vector(seed, 384);
                let b = at_cosine(&a, c, seed + 10_000);
                assert!((cosine(&a, &b) - c).abs() < 1e-3);
                let (sa, sb) = (signatures(&a), signatures(&b));
                if sa.iter().zip(&sb).any(|(x, y)| x == y) {
                    found += 1;
                }
            }
            let recall = f64::from(found) / trials as f64;
            assert!(recall >= promised, "cosine {c}: recall {recall}");
        }
        // Unrelated vectors rarely collide: the candidate sets stay small.
        let mut collisions = 0;
        for seed in 0..trials {
            let (a, b) = (unit_vector(seed, 384), unit_vector(seed + 50_000, 384));
            collisions += signatures(&a)
                .iter()
                .zip(&signatures(&b))
                .filter(|(x, y)| x == y)
                .count();
        }
        let per_table = collisions as f64 / (trials as f64 * TABLES as f64);
        assert!(
            per_table < 0.05,
            "unrelated pairs share a bucket {per_table}"
        );
    }
}
