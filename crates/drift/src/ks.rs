//! Two-sample Kolmogorov–Smirnov test with the asymptotic p-value (Stephens' correction).

use serde::Serialize;

/// Result of a two-sample Kolmogorov–Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KsTest {
    /// `D = sup |F_a − F_b|`, in [0, 1].
    pub statistic: f64,
    /// Asymptotic probability of a `D` at least this large if both samples come from the same
    /// continuous distribution.
    pub p_value: f64,
    /// Size of the first sample.
    pub n: usize,
    /// Size of the second sample.
    pub m: usize,
}

/// Two-sample KS test; `None` when either sample is empty or holds a non-finite value.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> Option<KsTest> {
    let usable = |s: &[f64]| !s.is_empty() && s.iter().all(|x| x.is_finite());
    (usable(a) && usable(b)).then(|| ks_finite(a.to_vec(), b.to_vec()))
}

/// The test on samples known to be non-empty and finite.
pub(crate) fn ks_finite(mut a: Vec<f64>, mut b: Vec<f64>) -> KsTest {
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    let (nf, mf) = (n as f64, m as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0_f64);
    while i < n && j < m {
        // Step both empirical CDFs past every copy of the next value, then measure.
        let x = a[i].min(b[j]);
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / nf - j as f64 / mf).abs());
    }
    // Once one sample is exhausted the gap only shrinks towards 0: the maximum is already seen.
    let ne = nf * mf / (nf + mf);
    let sqrt_ne = ne.sqrt();
    KsTest {
        statistic: d,
        p_value: kolmogorov_q((sqrt_ne + 0.12 + 0.11 / sqrt_ne) * d),
        n,
        m,
    }
}

/// `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}`, the Kolmogorov survival function.
///
/// For small λ the alternating series converges slowly and cancels badly, so below 1.18 the
/// equivalent theta-function form `1 − √(2π)/λ Σ_{j≥1} e^{−(2j−1)²π²/(8λ²)}` is used; four
/// terms of either reach double precision on its side of the switch.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda.is_nan() || lambda < 0.05 {
        // The CDF is below 1e-200 here, and λ = 0 would divide by zero.
        return 1.0;
    }
    let q = if lambda < 1.18 {
        let y = -std::f64::consts::PI.powi(2) / (8.0 * lambda * lambda);
        let cdf = (1..=4)
            .map(|j: i32| (y * f64::from((2 * j - 1).pow(2))).exp())
            .sum::<f64>()
            * (2.0 * std::f64::consts::PI).sqrt()
            / lambda;
        1.0 - cdf
    } else {
        let y = -2.0 * lambda * lambda;
        2.0 * (1..=4)
            .map(|j: i32| {
                let sign = if j % 2 == 1 { 1.0 } else { -1.0 };
                sign * (y * f64::from(j * j)).exp()
            })
            .sum::<f64>()
    };
    q.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from SciPy 1.17.1, `scipy.stats.ks_2samp(a, b, method='asymp')`. The
    /// statistic must match exactly (same `i/n − j/m` arithmetic); SciPy's asymptotic p-value
    /// uses `kstwobign.sf(√ne · D)` without Stephens' correction, hence the 0.02 tolerance.
    /// Name, samples a and b, SciPy's statistic and p-value.
    type Case = (&'static str, &'static [f64], &'static [f64], f64, f64);

    #[test]
    fn matches_scipy_asymp() {
        let cases: [Case; 5] = [
            (
                "shifted",
                &[
                    0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06,
                    0.64, -0.82, 0.37, 1.77, 1.09, -1.28, 2.36, 1.31, 1.05, -0.32, -0.4, 1.06,
                    -2.47,
                ],
                &[
                    2.2, 1.66, 1.38, 0.2, 0.36, 0.0, 1.6, 0.26, 1.68, 0.74, 0.87, 1.26, 1.74, 1.65,
                    1.21, 1.5, 1.4, 0.96, 1.03, 0.57, 1.98, 1.29, 0.91, 1.02, 0.74, 1.42, 0.94,
                    1.7, 0.4, 1.53,
                ],
                0.52,
                0.00047779678904839385,
            ),
            (
                "ties",
                &[1., 2., 2., 3., 3., 3., 4., 5., 5., 6., 7., 8., 8., 9., 10.],
                &[
                    2., 3., 3., 4., 4., 4., 5., 6., 6., 6., 7., 8., 9., 9., 11., 12., 12., 13.,
                ],
                0.23333333333333336,
                0.6944619781804999,
            ),
            (
                "same",
                &[
                    0.12, -0.5, 1.3, 0.8, -1.1, 0.05, 0.7, -0.3, 2.1, -0.9, 0.4, 1.0, -1.6, 0.2,
                    0.6, -0.1, 1.5, -0.7, 0.9, 0.3,
                ],
                &[
                    0.3, -0.2, 1.1, -0.8, 0.6, 0.0, -1.4, 0.9, 0.25, 1.7, -0.45, 0.55, -0.05, 1.2,
                    -1.0, 0.35, 0.75, -0.6, 0.15, 1.05, -0.25, 0.45,
                ],
                0.10454545454545461,
                0.9992292524642051,
            ),
            (
                "moderate",
                &[
                    0.2, 1.4, -0.3, 0.9, 0.5, 1.1, -0.8, 0.0, 0.7, 1.9, 0.35, -0.2, 1.2, 0.6, 0.45,
                    -1.2, 0.85, 1.0, 0.15, 0.55, 1.6, -0.5, 0.75, 0.3, 1.3, 0.95, -0.1, 0.65, 0.25,
                    1.05,
                ],
                &[
                    0.9, 1.5, 0.4, 1.2, 2.0, 0.8, 1.1, 0.3, 1.7, 0.6, 1.35, 0.95, -0.2, 1.45, 0.7,
                    1.25, 2.3, 0.5, 1.0, 1.8, 0.05, 1.15, 1.55, 0.85, 0.45, 1.65, 1.05, 0.2, 1.4,
                    0.75, 1.9, 0.65,
                ],
                0.2895833333333333,
                0.13139291870291925,
            ),
            (
                "disjoint",
                &[1., 2., 3., 4., 5., 6., 7., 8., 9., 10.],
                &[11., 12., 13., 14., 15., 16., 17., 18., 19., 20., 21., 22.],
                1.0,
                0.0,
            ),
        ];
        for (name, a, b, statistic, p) in cases {
            let ks = ks_two_sample(a, b).expect("valid samples");
            assert_eq!(ks.statistic, statistic, "{name}: statistic");
            assert!(
                (ks.p_value - p).abs() < 0.02,
                "{name}: p {} vs {p}",
                ks.p_value
            );
            assert_eq!((ks.n, ks.m), (a.len(), b.len()));
            // Symmetric in its arguments.
            let swapped = ks_two_sample(b, a).expect("valid samples");
            assert_eq!(swapped.statistic, ks.statistic, "{name}: swapped");
        }
    }

    #[test]
    fn ties_are_stepped_over_together() {
        let ks = ks_two_sample(&[1.0, 1.0, 1.0], &[1.0, 1.0]).expect("valid");
        assert_eq!((ks.statistic, ks.p_value), (0.0, 1.0));
        // Without advancing past both copies of 2 the gap at 2 would read 1 instead of 0.5.
        let ks = ks_two_sample(&[1.0, 2.0], &[2.0, 3.0]).expect("valid");
        assert_eq!(ks.statistic, 0.5);
        // Signed zeros are equal values.
        let ks = ks_two_sample(&[-0.0, 1.0], &[0.0, 1.0]).expect("valid");
        assert_eq!(ks.statistic, 0.0);
    }

    #[test]
    fn rejects_empty_and_non_finite_samples() {
        assert!(ks_two_sample(&[], &[1.0]).is_none());
        assert!(ks_two_sample(&[1.0], &[]).is_none());
        assert!(ks_two_sample(&[1.0, f64::NAN], &[1.0]).is_none());
        assert!(ks_two_sample(&[1.0], &[f64::INFINITY]).is_none());
        let ks = ks_two_sample(&[1.0], &[2.0]).expect("one value each");
        assert_eq!(ks.statistic, 1.0);
        assert!((0.0..=1.0).contains(&ks.p_value));
    }

    #[test]
    fn kolmogorov_distribution_values() {
        // Textbook critical values: Q(1.3581) = 0.05, Q(1.6276) = 0.01, Q(1) = 0.26999967.
        assert!((kolmogorov_q(1.3581) - 0.05).abs() < 1e-4);
        assert!((kolmogorov_q(1.6276) - 0.01).abs() < 1e-4);
        assert!((kolmogorov_q(1.0) - 0.269_999_67).abs() < 1e-7);
        // Both forms agree where they meet, and the function decreases.
        assert!((kolmogorov_q(1.18 - 1e-12) - kolmogorov_q(1.18)).abs() < 1e-12);
        let grid: Vec<f64> = (0..400)
            .map(|i| kolmogorov_q(f64::from(i) * 0.01))
            .collect();
        assert!(grid.windows(2).all(|w| w[1] <= w[0]));
        assert_eq!(kolmogorov_q(0.0), 1.0);
        assert_eq!(kolmogorov_q(f64::INFINITY), 0.0);
    }
}
