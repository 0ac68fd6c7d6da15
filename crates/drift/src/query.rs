//! Query drift: recent questions against a baseline window, feature by feature.

use serde::Serialize;

use crate::ks::{KsTest, ks_finite};
use crate::vector::{cos_dist, fit};
use crate::{DriftConfig, DriftError, check_vectors};

/// Name of the nearest-centroid feature; the principal ones are `pc1`, `pc2`, ….
pub const NEAREST_CENTROID: &str = "nearest_centroid_distance";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDrift {
    pub name: String,
    pub ks: KsTest,
    /// This feature alone is significant after the Bonferroni adjustment
    /// (`p × features < alpha`): the feature that moved.
    pub drifted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryDriftReport {
    /// Queries in the baseline window.
    pub baseline: usize,
    /// Queries in the recent window.
    pub recent: usize,
    pub features: Vec<FeatureDrift>,
    /// Largest KS statistic over the features.
    pub statistic: f64,
    /// Smallest feature p-value times the number of features, at most 1 (Bonferroni).
    pub p_value: f64,
    /// `p_value < alpha`.
    pub drifted: bool,
}

/// Compares the recent questions with the baseline ones (embeddings of equal dimension).
///
/// Features per question: the cosine distance to the nearest of `centroids` (skipped when
/// there are none) and the projections on the top `config.components` principal directions
/// (`pc1`…) of both windows pooled. Each feature gets a two-sample KS test.
///
/// The directions are fitted to the pooled questions, not to the baseline alone: with fewer
/// questions than dimensions, directions fitted to one window follow that window's noise, so
/// its projections spread wider than any other sample's and the test finds drift where there
/// is none. Pooled, both windows are treated alike, and a new topic in the recent window
/// still shows, as a direction of its own.
pub fn query_drift(
    baseline: &[Vec<f32>],
    recent: &[Vec<f32>],
    centroids: &[Vec<f32>],
    config: &DriftConfig,
) -> Result<QueryDriftReport, DriftError> {
    config.validate()?;
    for (window, vectors) in [("baseline", baseline), ("recent", recent)] {
        if vectors.len() < config.min_samples {
            return Err(DriftError::NotEnough {
                what: "queries",
                window,
                got: vectors.len(),
                need: config.min_samples,
            });
        }
    }
    let dim = baseline.first().map_or(0, Vec::len);
    check_vectors("baseline", baseline.iter().map(Vec::as_slice), dim)?;
    check_vectors("recent", recent.iter().map(Vec::as_slice), dim)?;
    check_vectors("centroids", centroids.iter().map(Vec::as_slice), dim)?;

    let pooled: Vec<Vec<f32>> = baseline.iter().chain(recent).cloned().collect();
    let pcs = fit(&pooled, dim, config.components);
    let features_of = |q: &Vec<f32>| {
        let mut f = Vec::with_capacity(pcs.directions.len() + 1);
        if !centroids.is_empty() {
            f.push(
                centroids
                    .iter()
                    .map(|c| cos_dist(q, c))
                    .fold(f64::INFINITY, f64::min),
            );
        }
        f.extend(pcs.project(q));
        f
    };
    let columns = |vectors: &[Vec<f32>]| {
        let rows: Vec<Vec<f64>> = vectors.iter().map(features_of).collect();
        let width = rows.first().map_or(0, Vec::len);
        (0..width)
            .map(|i| rows.iter().map(|r| r[i]).collect())
            .collect::<Vec<Vec<f64>>>()
    };
    let names = (!centroids.is_empty())
        .then(|| NEAREST_CENTROID.to_owned())
        .into_iter()
        .chain((1..=pcs.directions.len()).map(|i| format!("pc{i}")));
    let tests: Vec<(String, KsTest)> = names
        .zip(columns(baseline).into_iter().zip(columns(recent)))
        .map(|(name, (b, r))| (name, ks_finite(b, r)))
        .collect();
    if tests.is_empty() {
        return Err(DriftError::NoFeatures);
    }

    let count = tests.len() as f64;
    let adjusted = |p: f64| (p * count).min(1.0);
    let statistic = tests.iter().map(|(_, t)| t.statistic).fold(0.0, f64::max);
    let p_value = adjusted(tests.iter().map(|(_, t)| t.p_value).fold(1.0, f64::min));
    Ok(QueryDriftReport {
        baseline: baseline.len(),
        recent: recent.len(),
        features: tests
            .into_iter()
            .map(|(name, ks)| FeatureDrift {
                name,
                drifted: adjusted(ks.p_value) < config.alpha,
                ks,
            })
            .collect(),
        statistic,
        p_value,
        drifted: p_value < config.alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` 3-d points on a spiral, offset by `shift` along the first axis.
    fn window(n: usize, phase: f32, shift: f32) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                let t = i as f32 * 0.37 + phase;
                vec![
                    t.sin() + shift,
                    (t * 1.3).cos(),
                    0.5 * (t * 0.7).sin() + 2.0,
                ]
            })
            .collect()
    }

    #[test]
    fn errors_name_the_problem() {
        let config = DriftConfig::default();
        let ok = window(40, 0.0, 0.0);
        let err = query_drift(&window(12, 0.0, 0.0), &ok, &[], &config).expect_err("too few");
        assert_eq!(
            err.to_string(),
            "not enough queries: baseline has 12, at least 30 are needed"
        );
        let err = query_drift(&ok, &window(29, 0.0, 0.0), &[], &config).expect_err("too few");
        assert!(
            err.to_string()
                .starts_with("not enough queries: recent has 29")
        );

        let mut ragged = window(40, 1.0, 0.0);
        ragged[3].push(0.0);
        let err = query_drift(&ok, &ragged, &[], &config).expect_err("ragged");
        assert_eq!(
            err.to_string(),
            "dimension mismatch: recent[3] has 4 dimensions, expected 3"
        );
        let err = query_drift(&ok, &ok, &[vec![1.0; 2]], &config).expect_err("centroid dim");
        assert!(matches!(
            err,
            DriftError::Dimension {
                window: "centroids",
                index: 0,
                ..
            }
        ));

        let mut nan = window(40, 1.0, 0.0);
        nan[5][1] = f32::NAN;
        let err = query_drift(&nan, &ok, &[], &config).expect_err("nan");
        assert_eq!(err.to_string(), "non-finite value in baseline[5]");

        let empty = vec![Vec::new(); 40];
        let err = query_drift(&empty, &empty, &[], &config).expect_err("no dims");
        assert_eq!(err, DriftError::EmptyVector { window: "baseline" });

        let flat = vec![vec![1.0, 2.0]; 40];
        let err = query_drift(&flat, &flat, &[], &config).expect_err("no features");
        assert_eq!(err, DriftError::NoFeatures);

        let bad = DriftConfig {
            alpha: 2.0,
            ..config
        };
        assert!(matches!(
            query_drift(&ok, &ok, &[], &bad),
            Err(DriftError::Config(_))
        ));
    }

    #[test]
    fn same_window_does_not_drift_and_a_shift_does() {
        let config = DriftConfig::default();
        let centroids = [vec![1.0, 0.0, 2.0], vec![-1.0, 0.0, 2.0]];
        let baseline = window(300, 0.0, 0.0);
        let same = query_drift(&baseline, &baseline, &centroids, &config).expect("valid");
        let names: Vec<&str> = same.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [NEAREST_CENTROID, "pc1", "pc2", "pc3"]);
        assert_eq!(
            (same.statistic, same.p_value, same.drifted),
            (0.0, 1.0, false)
        );

        let moved =
            query_drift(&baseline, &window(300, 0.1, 1.0), &centroids, &config).expect("valid");
        assert!(moved.drifted, "{moved:?}");
        assert!(moved.p_value < 1e-6 && moved.statistic > 0.3, "{moved:?}");
        // Without centroids only the principal features remain.
        let no_centroids = query_drift(&baseline, &baseline, &[], &config).expect("valid");
        assert_eq!(no_centroids.features.len(), 3);
    }
}
