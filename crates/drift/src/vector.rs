//! Vector helpers: mean, cosine distance and principal directions (power iteration).

/// Power-iteration cap per direction; nearly tied eigenvalues may not converge within it, but
/// the direction found is still deterministic and of near-maximal variance.
const MAX_ITERATIONS: usize = 100;
/// Converged when the direction stops turning: `1 − |cos(v_old, v_new)|` below this (an
/// angle of about 1.4e-5 rad)…
const TOLERANCE: f64 = 1e-10;
/// …or the variance along it stops growing (relative change per step below this): with
/// nearly tied eigenvalues the direction wanders within their span for hundreds of steps
/// while the variance it captures is already within a hair of the maximum. The drift
/// features need directions that are fixed for both windows and carry most of the variance,
/// not exact eigenvectors.
const VARIANCE_TOLERANCE: f64 = 1e-8;
/// A direction whose variance is below this fraction of the total variance is numerical
/// noise: the data has lower rank.
const RANK_TOLERANCE: f64 = 1e-10;
const SEED: u64 = 0x5EED_D81F_7A11_0001;

/// The mean of `vectors`; `None` when there are none or their lengths differ.
pub fn centroid(vectors: &[Vec<f32>]) -> Option<Vec<f32>> {
    let dim = vectors.first()?.len();
    vectors
        .iter()
        .all(|v| v.len() == dim)
        .then(|| mean(vectors, dim).iter().map(|&x| x as f32).collect())
}

/// Mean of vectors known to have `dim` components, in f64.
pub(crate) fn mean(vectors: &[Vec<f32>], dim: usize) -> Vec<f64> {
    let mut sum = vec![0.0; dim];
    for v in vectors {
        for (s, &x) in sum.iter_mut().zip(v) {
            *s += f64::from(x);
        }
    }
    let n = vectors.len().max(1) as f64;
    sum.iter().map(|s| s / n).collect()
}

/// `1 − cos(a, b)`, in [0, 2]; 1.0 when either norm is zero or the lengths differ (no angle
/// to measure).
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    cos_dist(a, b) as f32
}

/// [`cosine_distance`] over any float slices, computed in f64.
pub(crate) fn cos_dist<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f64 {
    if a.len() != b.len() {
        return 1.0;
    }
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y): (f64, f64) = (x.into(), y.into());
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 1.0;
    }
    (1.0 - ab / (aa.sqrt() * bb.sqrt())).clamp(0.0, 2.0)
}

/// Top principal directions of a set of vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalDirections {
    pub mean: Vec<f32>,
    /// Unit, mutually orthogonal, by decreasing variance; each one's largest component is
    /// positive (a sign convention, so results do not depend on the start vector).
    pub directions: Vec<Vec<f32>>,
    /// Sample variance (n − 1 denominator) of the data along each direction.
    pub variances: Vec<f64>,
}

impl PrincipalDirections {
    /// Coordinates of `v − mean` along each direction. `v` must have `mean.len()` components:
    /// extra ones are ignored and missing ones count as zero.
    pub fn project(&self, v: &[f32]) -> Vec<f64> {
        self.directions
            .iter()
            .map(|dir| {
                dir.iter()
                    .zip(&self.mean)
                    .zip(v)
                    .map(|((&u, &m), &x)| f64::from(u) * (f64::from(x) - f64::from(m)))
                    .sum()
            })
            .collect()
    }
}

/// The top `k` principal directions of `vectors`, by power iteration with deflation on the
/// implicit sample covariance (each step is `Xᵀ(X v)`: O(n·d), never a d×d matrix).
/// Fewer than `k` when the data has lower rank, fewer than 2 vectors, or fewer than `k`
/// dimensions. `None` for no vectors or vectors of different lengths.
pub fn principal_directions(vectors: &[Vec<f32>], k: usize) -> Option<PrincipalDirections> {
    let dim = vectors.first()?.len();
    vectors
        .iter()
        .all(|v| v.len() == dim)
        .then(|| fit(vectors, dim, k))
}

/// [`principal_directions`] on vectors known to have `dim` components.
pub(crate) fn fit(vectors: &[Vec<f32>], dim: usize, k: usize) -> PrincipalDirections {
    let mu = mean(vectors, dim);
    let mut out = PrincipalDirections {
        mean: mu.iter().map(|&x| x as f32).collect(),
        directions: Vec::new(),
        variances: Vec::new(),
    };
    let n = vectors.len();
    if n < 2 || dim == 0 {
        return out;
    }
    let denominator = (n - 1) as f64;
    // C v = Σ (x − μ)((x − μ)·v) / (n − 1) = (Σ cₓ x − (Σ cₓ) μ) / (n − 1) with
    // cₓ = x·v − μ·v: one pass over the data, no centred copy (and Σ cₓ ≈ 0, no cancellation).
    let covariance_times = |v: &[f64]| {
        let mu_v = dot(&mu, v);
        let (mut w, mut sum_c) = (vec![0.0; dim], 0.0);
        for x in vectors {
            let mut c = -mu_v;
            for (&x, &v) in x.iter().zip(v) {
                c += f64::from(x) * v;
            }
            sum_c += c;
            for (w, &x) in w.iter_mut().zip(x) {
                *w += c * f64::from(x);
            }
        }
        for (w, &m) in w.iter_mut().zip(&mu) {
            *w = (*w - sum_c * m) / denominator;
        }
        w
    };
    let total: f64 = vectors
        .iter()
        .map(|x| {
            x.iter()
                .zip(&mu)
                .map(|(&x, &m)| (f64::from(x) - m).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / denominator;
    if total <= 0.0 {
        return out;
    }

    let mut rng = SplitMix64(SEED);
    let mut basis: Vec<Vec<f64>> = Vec::new();
    for _ in 0..k.min(dim).min(n - 1) {
        let mut v: Vec<f64> = (0..dim).map(|_| rng.next_f64() * 2.0 - 1.0).collect();
        orthogonalise(&mut v, &basis);
        if !normalise(&mut v) {
            break;
        }
        let mut variance = 0.0;
        for _ in 0..MAX_ITERATIONS {
            let mut w = covariance_times(&v);
            // Deflation: keep the iterate out of the span of the directions already found.
            orthogonalise(&mut w, &basis);
            let previous = std::mem::replace(&mut variance, dot(&v, &w));
            if !normalise(&mut w) {
                variance = 0.0;
                break;
            }
            let converged = 1.0 - dot(&v, &w).abs() < TOLERANCE
                || (variance - previous).abs() <= VARIANCE_TOLERANCE * variance;
            v = w;
            if converged {
                break;
            }
        }
        if variance <= total * RANK_TOLERANCE {
            break;
        }
        let largest = v
            .iter()
            .copied()
            .fold(0.0_f64, |a, x| if x.abs() > a.abs() { x } else { a });
        if largest < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        out.directions.push(v.iter().map(|&x| x as f32).collect());
        out.variances.push(variance);
        basis.push(v);
    }
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Modified Gram–Schmidt against an orthonormal basis.
fn orthogonalise(v: &mut [f64], basis: &[Vec<f64>]) {
    for u in basis {
        let c = dot(v, u);
        v.iter_mut().zip(u).for_each(|(x, u)| *x -= c * u);
    }
}

/// Scales `v` to unit length; false when it is (numerically) zero.
fn normalise(v: &mut [f64]) -> bool {
    let norm = dot(v, v).sqrt();
    if !(norm > 1e-150 && norm.is_finite()) {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// splitmix64 (Steele, Lea and Flood 2014): deterministic start vectors without a `rand`
/// dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn centroid_is_the_mean_and_rejects_ragged_input() {
        assert_eq!(
            centroid(&[vec![1.0, 2.0], vec![3.0, -2.0]]),
            Some(vec![2.0, 0.0])
        );
        assert_eq!(centroid(&[]), None);
        assert_eq!(centroid(&[vec![1.0, 2.0], vec![3.0]]), None);
    }

    #[test]
    fn cosine_distance_cases() {
        assert_eq!(cosine_distance(&[1.0, 0.0], &[2.0, 0.0]), 0.0);
        assert_eq!(cosine_distance(&[1.0, 0.0], &[0.0, 3.0]), 1.0);
        assert_eq!(cosine_distance(&[1.0, 0.0], &[-1.0, 0.0]), 2.0);
        assert_eq!(cosine_distance(&[0.0, 0.0], &[1.0, 0.0]), 1.0);
        assert_eq!(cosine_distance(&[1.0], &[1.0, 0.0]), 1.0);
        let d = cosine_distance(&[1.0, 1.0], &[1.0, 0.0]);
        assert!(close(f64::from(d), 1.0 - 0.5_f64.sqrt(), 1e-6));
    }

    #[test]
    fn finds_the_axes_of_a_stretched_cloud() {
        // Points on a 2-d grid, stretched 3× along (1, 1)/√2, in 3-d with a constant third axis.
        let s = 0.5_f32.sqrt();
        let mut points = Vec::new();
        for i in -5..=5 {
            for j in -5..=5 {
                let (a, b) = (3.0 * i as f32, j as f32);
                points.push(vec![s * (a + b) + 1.0, s * (a - b) - 2.0, 7.0]);
            }
        }
        let pcs = principal_directions(&points, 3).expect("non-empty");
        assert_eq!(pcs.directions.len(), 2, "the third axis has no variance");
        assert!(close(f64::from(pcs.mean[0]), 1.0, 1e-5));
        let (u, v) = (&pcs.directions[0], &pcs.directions[1]);
        assert!(
            close(f64::from(u[0]), f64::from(s), 1e-5)
                && close(f64::from(u[1]), f64::from(s), 1e-5)
        );
        assert!(close(f64::from(v[0].abs()), f64::from(s), 1e-5) && v[0] > 0.0);
        let orth: f32 = u.iter().zip(v).map(|(a, b)| a * b).sum();
        assert!(orth.abs() < 1e-6);
        // Sample variance of j over the grid (each j appears 11 times); along u it is 9× that.
        let var_j = (-5..=5).map(|j| f64::from(j * j)).sum::<f64>() * 11.0 / 120.0;
        assert!(
            close(pcs.variances[0], 9.0 * var_j, 1e-4),
            "{:?}",
            pcs.variances
        );
        assert!(close(pcs.variances[1], var_j, 1e-4));
        let p = pcs.project(&[s * 6.0 + 1.0, s * 6.0 - 2.0, 7.0]);
        assert!(close(p[0], 6.0, 1e-5) && close(p[1], 0.0, 1e-5), "{p:?}");
    }

    #[test]
    fn degenerate_inputs_give_fewer_directions() {
        assert!(principal_directions(&[], 3).is_none());
        assert!(principal_directions(&[vec![1.0], vec![1.0, 2.0]], 3).is_none());
        let one = principal_directions(&[vec![1.0, 2.0]], 3).expect("one vector");
        assert_eq!(one.mean, vec![1.0, 2.0]);
        assert!(one.directions.is_empty());
        let same = principal_directions(&vec![vec![1.0, 2.0]; 5], 3).expect("no variance");
        assert!(same.directions.is_empty());
        // Two points span one direction, even in many dimensions.
        let two = principal_directions(&[vec![0.0; 1024], vec![1.0; 1024]], 3).expect("two");
        assert_eq!(two.directions.len(), 1);
    }

    #[test]
    fn directions_are_orthonormal_in_high_dimension() {
        let mut rng = SplitMix64(7);
        let points: Vec<Vec<f32>> = (0..200)
            .map(|_| (0..512).map(|_| rng.next_f64() as f32).collect())
            .collect();
        let pcs = principal_directions(&points, 4).expect("non-empty");
        assert_eq!(pcs.directions.len(), 4);
        for (i, a) in pcs.directions.iter().enumerate() {
            for (j, b) in pcs.directions.iter().enumerate() {
                let d: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum();
                assert!(
                    close(d, if i == j { 1.0 } else { 0.0 }, 1e-4),
                    "{i},{j}: {d}"
                );
            }
        }
        assert!(pcs.variances.windows(2).all(|w| w[0] >= w[1] * 0.999));
    }
}
