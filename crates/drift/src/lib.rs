//! Drift detection: has the traffic moved away from what the corpus and the baseline cover?
//!
//! Two questions, both answered from embeddings alone:
//!
//! - **Query drift** ([`query_drift`]): are recent questions distributed like a baseline window
//!   of questions? Every question is reduced to a few scalar features: its cosine distance to
//!   the nearest document centroid (questions about topics the corpus does not cover land far
//!   from every centroid) and its coordinates on the top principal directions of both windows pooled
//!   (a change in the topic mix moves these). Each feature is compared between the two
//!   windows with a two-sample Kolmogorov–Smirnov test; the smallest p-value, Bonferroni-
//!   adjusted for the number of features, decides.
//! - **Corpus drift** ([`corpus_drift`]): do newly ingested documents land farther from the
//!   existing corpus's centre of mass than the existing documents do? The cosine distances of
//!   both groups to the existing centre (leave-one-out for the existing documents) are
//!   compared with the same KS test; only the new documents landing *farther* counts as drift.
//!
//! Method and references:
//! - Kolmogorov–Smirnov two-sample statistic `D = sup |F_a − F_b|` over the empirical CDFs
//!   (ties handled by advancing past equal values in both samples before measuring), with the
//!   asymptotic Kolmogorov distribution `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}`
//!   (Kolmogorov 1933; Smirnov 1948).
//! - Effective size `ne = nm/(n+m)` and `λ = (√ne + 0.12 + 0.11/√ne)·D`: M. A. Stephens,
//!   "Use of the Kolmogorov–Smirnov, Cramér–von Mises and related statistics without extensive
//!   tables", JRSS B 32 (1970), as in Numerical Recipes (`kstwo`/`probks`).
//! - Bonferroni correction for testing several features at once: `p = min(1, k · min pᵢ)`.
//! - Principal directions by power iteration with deflation, through `Xᵀ(X v)` products: the
//!   d×d covariance matrix is never formed.
//!
//! This crate owns the statistics only: pure functions, no I/O, no async, no logging, no
//! randomness (start vectors come from a fixed splitmix64 seed). Collecting the windows
//! (the feedback store keeps question embeddings), scheduling the checks and alerting are the
//! callers' business.

mod corpus;
mod ks;
mod query;
pub mod synthetic;
mod vector;

use serde::{Deserialize, Serialize};

pub use corpus::{CorpusDriftReport, DistanceSummary, WeightedVector, corpus_drift};
pub use ks::{KsTest, ks_two_sample};
pub use query::{FeatureDrift, NEAREST_CENTROID, QueryDriftReport, query_drift};
pub use vector::{PrincipalDirections, centroid, cosine_distance, principal_directions};

/// Most principal directions [`query_drift`] will test (each one costs a pass of power
/// iteration and dilutes the Bonferroni-adjusted p-value).
pub const MAX_COMPONENTS: usize = 16;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    #[error("invalid drift config: {0}")]
    Config(String),
    #[error("not enough {what}: {window} has {got}, at least {need} are needed")]
    NotEnough {
        what: &'static str,
        window: &'static str,
        got: usize,
        need: usize,
    },
    #[error("{window} vectors have no dimensions")]
    EmptyVector { window: &'static str },
    #[error("dimension mismatch: {window}[{index}] has {got} dimensions, expected {expected}")]
    Dimension {
        window: &'static str,
        index: usize,
        got: usize,
        expected: usize,
    },
    #[error("non-finite value in {window}[{index}]")]
    NonFinite { window: &'static str, index: usize },
    #[error("invalid weight {weight} for {window}[{index}]: weights must be finite and positive")]
    Weight {
        window: &'static str,
        index: usize,
        weight: f64,
    },
    #[error("no features to compare: no centroids were given and the baseline has no variance")]
    NoFeatures,
}

/// Thresholds of the drift checks. Deserialises with defaults for missing keys and rejects
/// unknown ones; call [`DriftConfig::validate`] before use (the checks call it too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// Principal directions (of both windows pooled) whose projections are tested (1..=16).
    pub components: usize,
    /// Significance level: drift is reported when the (adjusted) p-value is below it.
    pub alpha: f64,
    /// Fewest queries in each window for [`query_drift`] to run at all.
    pub min_samples: usize,
    /// Fewest documents in each group for [`corpus_drift`] to run the KS test.
    pub min_documents: usize,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            components: 3,
            alpha: 0.01,
            min_samples: 30,
            min_documents: 5,
        }
    }
}

impl DriftConfig {
    pub fn validate(&self) -> Result<(), DriftError> {
        let invalid = |msg: String| Err(DriftError::Config(msg));
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return invalid(format!("alpha must be in (0, 1), got {}", self.alpha));
        }
        if self.components == 0 || self.components > MAX_COMPONENTS {
            return invalid(format!(
                "components must be in 1..={MAX_COMPONENTS}, got {}",
                self.components
            ));
        }
        if self.min_samples < 2 {
            return invalid(format!(
                "min_samples must be at least 2, got {}",
                self.min_samples
            ));
        }
        if self.min_documents < 2 {
            return invalid(format!(
                "min_documents must be at least 2, got {}",
                self.min_documents
            ));
        }
        Ok(())
    }
}

/// Every vector of `window` has `dim` components, all finite.
fn check_vectors<'a>(
    window: &'static str,
    vectors: impl IntoIterator<Item = &'a [f32]>,
    dim: usize,
) -> Result<(), DriftError> {
    if dim == 0 {
        return Err(DriftError::EmptyVector { window });
    }
    for (index, v) in vectors.into_iter().enumerate() {
        if v.len() != dim {
            return Err(DriftError::Dimension {
                window,
                index,
                got: v.len(),
                expected: dim,
            });
        }
        if !v.iter().all(|x| x.is_finite()) {
            return Err(DriftError::NonFinite { window, index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::{Error as DeError, MapDeserializer};

    fn config_from<V>(pairs: Vec<(&'static str, V)>) -> Result<DriftConfig, DeError>
    where
        V: for<'de> serde::de::IntoDeserializer<'de, DeError>,
    {
        DriftConfig::deserialize(MapDeserializer::new(pairs.into_iter()))
    }

    #[test]
    fn defaults_are_valid_and_fill_missing_keys() {
        let config = DriftConfig::default();
        assert!(config.validate().is_ok());
        let parsed = config_from(vec![("components", 5u64)]).expect("valid");
        assert_eq!(parsed.components, 5);
        assert_eq!(parsed.alpha, 0.01);
        assert_eq!(parsed.min_samples, 30);
        assert_eq!(parsed.min_documents, 5);
        let parsed = config_from(vec![("alpha", 0.05f64)]).expect("valid");
        assert_eq!(parsed.alpha, 0.05);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = config_from(vec![("alpah", 0.05f64)]).expect_err("typo");
        assert!(err.to_string().contains("unknown field `alpah`"), "{err}");
    }

    #[test]
    fn validate_names_the_bad_value() {
        let bad = |f: fn(&mut DriftConfig)| {
            let mut c = DriftConfig::default();
            f(&mut c);
            c.validate().expect_err("invalid").to_string()
        };
        assert_eq!(
            bad(|c| c.alpha = 1.0),
            "invalid drift config: alpha must be in (0, 1), got 1"
        );
        assert!(bad(|c| c.alpha = 0.0).contains("alpha"));
        assert!(bad(|c| c.alpha = f64::NAN).contains("alpha"));
        assert_eq!(
            bad(|c| c.components = 0),
            "invalid drift config: components must be in 1..=16, got 0"
        );
        assert!(bad(|c| c.components = 17).contains("got 17"));
        assert!(bad(|c| c.min_samples = 1).contains("min_samples must be at least 2"));
        assert!(bad(|c| c.min_documents = 0).contains("min_documents"));
    }
}
