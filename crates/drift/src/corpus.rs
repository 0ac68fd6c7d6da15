//! Corpus drift: do new documents land farther from the corpus's centre of mass?

use serde::{Deserialize, Serialize};

use crate::ks::{KsTest, ks_finite};
use crate::vector::cos_dist;
use crate::{DriftConfig, DriftError, check_vectors};

/// A document's mean chunk vector, weighted by its number of chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedVector {
    pub vector: Vec<f32>,
    pub weight: f64,
}

/// Median and 95th percentile (linear interpolation) of a group's distances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DistanceSummary {
    pub count: usize,
    pub median: f64,
    pub p95: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CorpusDriftReport {
    /// Weighted centre of mass of the existing documents (not serialised: one float per
    /// embedding dimension).
    #[serde(skip)]
    pub centroid: Vec<f32>,
    /// Cosine distance between the existing centre of mass and that of existing + new.
    pub centroid_shift: f64,
    /// Each existing document's cosine distance to the centre of mass of the *other* existing
    /// documents (leave-one-out; the centre itself when there is only one).
    pub existing_distance: DistanceSummary,
    /// Each new document's cosine distance to the existing centre of mass.
    pub new_distance: DistanceSummary,
    /// KS test between the two distance samples (one sample per document, unweighted);
    /// `None` when either group has fewer than `min_documents`.
    pub ks: Option<KsTest>,
    /// `ks.p_value < alpha` and the new median distance exceeds the existing one: new
    /// documents landing closer to the centre is not drift.
    pub drifted: bool,
}

/// Compares newly ingested documents with the existing corpus.
///
/// Both groups need at least one document. Existing documents are measured leave-one-out:
/// measured against a centre they helped shape, they would look closer than new documents
/// drawn from the same topics, and the test would lean towards reporting drift.
pub fn corpus_drift(
    existing: &[WeightedVector],
    new: &[WeightedVector],
    config: &DriftConfig,
) -> Result<CorpusDriftReport, DriftError> {
    config.validate()?;
    for (window, docs) in [("existing", existing), ("new", new)] {
        if docs.is_empty() {
            return Err(DriftError::NotEnough {
                what: "documents",
                window,
                got: 0,
                need: 1,
            });
        }
    }
    let dim = existing.first().map_or(0, |d| d.vector.len());
    for (window, docs) in [("existing", existing), ("new", new)] {
        check_vectors(window, docs.iter().map(|d| d.vector.as_slice()), dim)?;
        if let Some((index, d)) = docs
            .iter()
            .enumerate()
            .find(|(_, d)| !(d.weight.is_finite() && d.weight > 0.0))
        {
            return Err(DriftError::Weight {
                window,
                index,
                weight: d.weight,
            });
        }
    }

    let (existing_sum, existing_weight) = weighted_sum(existing, dim);
    let (new_sum, new_weight) = weighted_sum(new, dim);
    let centre: Vec<f64> = existing_sum.iter().map(|s| s / existing_weight).collect();
    let combined: Vec<f64> = existing_sum
        .iter()
        .zip(&new_sum)
        .map(|(a, b)| (a + b) / (existing_weight + new_weight))
        .collect();
    let new_d: Vec<f64> = new.iter().map(|d| cos_dist(&d.vector, &centre)).collect();
    let existing_d: Vec<f64> = match existing {
        [only] => vec![cos_dist(&only.vector, &centre)],
        _ => existing
            .iter()
            .map(|d| {
                // The others' weighted sum: same direction as their centre of mass.
                let others: Vec<f64> = existing_sum
                    .iter()
                    .zip(&d.vector)
                    .map(|(s, &x)| s - d.weight * f64::from(x))
                    .collect();
                cos_dist(&d.vector, &others)
            })
            .collect(),
    };
    let ks = (existing_d.len() >= config.min_documents && new_d.len() >= config.min_documents)
        .then(|| ks_finite(existing_d.clone(), new_d.clone()));
    let (existing_distance, new_distance) = (summary(existing_d), summary(new_d));
    Ok(CorpusDriftReport {
        centroid: centre.iter().map(|&x| x as f32).collect(),
        centroid_shift: cos_dist(&centre, &combined),
        drifted: ks.is_some_and(|t| t.p_value < config.alpha)
            && new_distance.median > existing_distance.median,
        existing_distance,
        new_distance,
        ks,
    })
}

fn weighted_sum(docs: &[WeightedVector], dim: usize) -> (Vec<f64>, f64) {
    let mut sum = vec![0.0; dim];
    let mut weight = 0.0;
    for d in docs {
        weight += d.weight;
        for (s, &x) in sum.iter_mut().zip(&d.vector) {
            *s += d.weight * f64::from(x);
        }
    }
    (sum, weight)
}

/// Summary of a non-empty sample.
fn summary(mut values: Vec<f64>) -> DistanceSummary {
    values.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let position = q * (values.len() - 1) as f64;
        let (lo, frac) = (position.floor() as usize, position.fract());
        let hi = (lo + 1).min(values.len() - 1);
        values[lo] + frac * (values[hi] - values[lo])
    };
    DistanceSummary {
        count: values.len(),
        median: quantile(0.5),
        p95: quantile(0.95),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(vector: Vec<f32>, weight: f64) -> WeightedVector {
        WeightedVector { vector, weight }
    }

    /// Unit vectors at angles `from + step·i` in the plane.
    fn fan(n: usize, from: f32, step: f32) -> Vec<WeightedVector> {
        (0..n)
            .map(|i| {
                let a = from + step * i as f32;
                doc(vec![a.cos(), a.sin()], 1.0 + (i % 3) as f64)
            })
            .collect()
    }

    #[test]
    fn summary_interpolates() {
        let s = summary(vec![3.0, 1.0, 2.0, 4.0, 5.0]);
        assert_eq!((s.count, s.median, s.p95), (5, 3.0, 4.8));
        assert_eq!(summary(vec![7.0]).p95, 7.0);
    }

    #[test]
    fn weights_move_the_centre() {
        let existing = [doc(vec![1.0, 0.0], 3.0), doc(vec![0.0, 1.0], 1.0)];
        let report =
            corpus_drift(&existing, &existing[..1], &DriftConfig::default()).expect("valid");
        assert_eq!(report.centroid, vec![0.75, 0.25]);
        assert!(report.ks.is_none(), "two documents are below min_documents");
        assert!(!report.drifted);
        assert!(report.centroid_shift > 0.0);
    }

    #[test]
    fn farther_is_drift_closer_is_not() {
        let config = DriftConfig::default();
        // Existing documents spread over ±0.8 rad around the x axis.
        let existing = fan(40, -0.8, 0.04);
        let far = corpus_drift(&existing, &fan(20, 1.2, 0.01), &config).expect("valid");
        assert!(far.drifted, "{far:?}");
        assert!(far.new_distance.median > far.existing_distance.median);
        let close = corpus_drift(&existing, &fan(20, -0.05, 0.005), &config).expect("valid");
        let ks = close.ks.expect("enough documents");
        assert!(ks.p_value < config.alpha, "significant, {ks:?}");
        assert!(!close.drifted, "but closer to the centre: {close:?}");
    }

    #[test]
    fn invalid_documents_are_rejected() {
        let config = DriftConfig::default();
        let ok = fan(5, 0.0, 0.1);
        let err = corpus_drift(&[], &ok, &config).expect_err("empty");
        assert_eq!(
            err.to_string(),
            "not enough documents: existing has 0, at least 1 are needed"
        );
        let err = corpus_drift(&ok, &[doc(vec![1.0, 0.0], 0.0)], &config).expect_err("weight");
        assert_eq!(
            err.to_string(),
            "invalid weight 0 for new[0]: weights must be finite and positive"
        );
        let err = corpus_drift(&ok, &[doc(vec![1.0], 1.0)], &config).expect_err("dim");
        assert!(matches!(err, DriftError::Dimension { window: "new", .. }));
        let err =
            corpus_drift(&ok, &[doc(vec![f32::INFINITY, 0.0], 1.0)], &config).expect_err("inf");
        assert!(matches!(
            err,
            DriftError::NonFinite {
                window: "new",
                index: 0
            }
        ));
    }
}
