//! Synthetic embeddings for tests and benchmarks: topic clusters around random unit
//! centres, deterministic from a seed (splitmix64 with Box–Muller normals; no `rand`).

/// A deterministic generator of uniform and normal numbers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of `stream` under `seed` (different streams are independent enough).
    pub fn new(seed: u64, stream: u64) -> Self {
        Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ stream.wrapping_mul(0x9E37_79B9))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `v` scaled to unit length, as `f32`.
pub fn normalised(v: Vec<f64>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| (x / norm) as f32).collect()
}

/// `count` random unit vectors of `dim` dimensions: topic centres.
pub fn topics(seed: u64, count: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed, 0);
    (0..count)
        .map(|_| normalised((0..dim).map(|_| rng.normal()).collect()))
        .collect()
}

/// `n` unit vectors: each near a topic drawn with `weights` (one per topic), with Gaussian
/// noise of standard deviation `noise` per dimension.
pub fn draw(
    rng: &mut Rng,
    topics: &[Vec<f32>],
    weights: &[f64],
    noise: f64,
    n: usize,
) -> Vec<Vec<f32>> {
    let total: f64 = weights.iter().sum();
    (0..n)
        .map(|_| {
            let mut u = rng.uniform() * total;
            let topic = weights
                .iter()
                .position(|w| {
                    u -= w;
                    u <= 0.0
                })
                .unwrap_or(weights.len().saturating_sub(1));
            normalised(
                topics[topic]
                    .iter()
                    .map(|&c| f64::from(c) + noise * rng.normal())
                    .collect(),
            )
        })
        .collect()
}
