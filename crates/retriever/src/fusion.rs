//! Score fusion of the dense and keyword result lists. Pure arithmetic, unit-tested.

use std::collections::HashMap;

use uuid::Uuid;

/// One candidate after fusion, with the raw scores of the sides that found it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fused {
    pub id: Uuid,
    pub score: f32,
    pub dense: Option<f32>,
    pub keyword: Option<f32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// `alpha * dense + (1 - alpha) * keyword`, each min-max normalised over its list.
    Weighted { alpha: f32 },
    /// `alpha * dense + (1 - alpha) * keyword`, each z-score normalised over its list (a
    /// chunk missing from a list gets that list's lowest z-score).
    Zscore { alpha: f32 },
    /// Σ 1 / (k + rank), rank from 1.
    Rrf { k: f32 },
}

/// Fuses two lists of (id, raw score), each sorted best first. Returns best first; ties
/// are broken by id so the order is deterministic.
pub fn fuse(dense: &[(Uuid, f32)], keyword: &[(Uuid, f32)], method: Method) -> Vec<Fused> {
    // Each method gives every hit of a list its (weighted) share of the fused score, and a
    // share for the chunks the list did not find.
    let (dense_parts, keyword_parts, dense_missing, keyword_missing) = match method {
        Method::Weighted { alpha } => (
            scaled(min_max(dense), alpha),
            scaled(min_max(keyword), 1.0 - alpha),
            0.0,
            0.0,
        ),
        Method::Zscore { alpha } => {
            let (d, k) = (z_scores(dense), z_scores(keyword));
            let floor = |z: &[f32]| z.iter().copied().fold(0.0f32, f32::min);
            let missing = (alpha * floor(&d), (1.0 - alpha) * floor(&k));
            (
                scaled(d, alpha),
                scaled(k, 1.0 - alpha),
                missing.0,
                missing.1,
            )
        }
        Method::Rrf { k } => (
            reciprocal_ranks(dense.len(), k),
            reciprocal_ranks(keyword.len(), k),
            0.0,
            0.0,
        ),
    };
    let mut by_id: HashMap<Uuid, Fused> = HashMap::with_capacity(dense.len() + keyword.len());
    for (&(id, raw), part) in dense.iter().zip(dense_parts) {
        let e = by_id.entry(id).or_insert_with(|| Fused::empty(id));
        e.dense = Some(raw);
        e.score += part;
    }
    for (&(id, raw), part) in keyword.iter().zip(keyword_parts) {
        let e = by_id.entry(id).or_insert_with(|| Fused::empty(id));
        e.keyword = Some(raw);
        e.score += part;
    }
    let mut fused: Vec<Fused> = by_id
        .into_values()
        .map(|mut f| {
            f.score += if f.dense.is_none() {
                dense_missing
            } else {
                0.0
            };
            f.score += if f.keyword.is_none() {
                keyword_missing
            } else {
                0.0
            };
            f
        })
        .collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    fused
}

impl Fused {
    fn empty(id: Uuid) -> Self {
        Self {
            id,
            score: 0.0,
            dense: None,
            keyword: None,
        }
    }
}

fn scaled(values: Vec<f32>, weight: f32) -> Vec<f32> {
    values.into_iter().map(|v| v * weight).collect()
}

/// 1 / (k + rank) for ranks 1..=len.
fn reciprocal_ranks(len: usize, k: f32) -> Vec<f32> {
    (0..len).map(|rank| 1.0 / (k + rank as f32 + 1.0)).collect()
}

/// (s − mean) / standard deviation; all zeros when the scores do not vary.
fn z_scores(list: &[(Uuid, f32)]) -> Vec<f32> {
    if list.is_empty() {
        return Vec::new();
    }
    let n = list.len() as f32;
    let mean = list.iter().map(|&(_, s)| s).sum::<f32>() / n;
    let std = (list.iter().map(|&(_, s)| (s - mean).powi(2)).sum::<f32>() / n).sqrt();
    list.iter()
        .map(|&(_, s)| {
            if std > f32::EPSILON {
                (s - mean) / std
            } else {
                0.0
            }
        })
        .collect()
}

/// Min-max normalisation to [0, 1]. A list whose scores are all equal normalises to 1
/// (each is as good as the best), so a lone hit is not zeroed.
fn min_max(list: &[(Uuid, f32)]) -> Vec<f32> {
    let (min, max) = list
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &(_, s)| {
            (lo.min(s), hi.max(s))
        });
    let range = max - min;
    list.iter()
        .map(|&(_, s)| {
            if range > f32::EPSILON {
                (s - min) / range
            } else {
                1.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    fn score_of(fused: &[Fused], n: u128) -> f32 {
        fused
            .iter()
            .find(|f| f.id == id(n))
            .map(|f| f.score)
            .unwrap_or(f32::NAN)
    }

    #[test]
    fn weighted_fusion_by_hand() {
        // dense: 1 → 0.9, 2 → 0.5, 3 → 0.1  ⇒ normalised 1.0, 0.5, 0.0
        // keyword: 3 → 12, 4 → 2           ⇒ normalised 1.0, 0.0
        let dense = [(id(1), 0.9), (id(2), 0.5), (id(3), 0.1)];
        let keyword = [(id(3), 12.0), (id(4), 2.0)];
        let fused = fuse(&dense, &keyword, Method::Weighted { alpha: 0.7 });
        let score = |n| score_of(&fused, n);
        assert!(close(score(1), 0.7));
        assert!(close(score(2), 0.35));
        assert!(close(score(3), 0.3));
        assert!(close(score(4), 0.0));
        assert_eq!(
            fused.iter().map(|f| f.id).collect::<Vec<_>>(),
            vec![id(1), id(2), id(3), id(4)]
        );
        let three = &fused[2];
        assert_eq!((three.dense, three.keyword), (Some(0.1), Some(12.0)));
    }

    #[test]
    fn alpha_extremes_select_one_side() {
        let dense = [(id(1), 0.9), (id(2), 0.2)];
        let keyword = [(id(2), 5.0), (id(1), 1.0)];
        assert_eq!(
            fuse(&dense, &keyword, Method::Weighted { alpha: 1.0 })[0].id,
            id(1)
        );
        assert_eq!(
            fuse(&dense, &keyword, Method::Weighted { alpha: 0.0 })[0].id,
            id(2)
        );
    }

    #[test]
    fn zscore_by_hand() {
        // dense 0.9, 0.5, 0.1: mean 0.5, std 0.3266 ⇒ z 1.2247, 0, −1.2247
        // keyword 12 (id 3), 2 (id 4): mean 7, std 5 ⇒ z 1, −1
        let dense = [(id(1), 0.9), (id(2), 0.5), (id(3), 0.1)];
        let keyword = [(id(3), 12.0), (id(4), 2.0)];
        let fused = fuse(&dense, &keyword, Method::Zscore { alpha: 0.5 });
        let score = |n| score_of(&fused, n);
        // 1: 0.5 × 1.2247 + 0.5 × (−1) (missing from keyword: its lowest z)
        assert!((score(1) - (0.5 * 1.224_745 - 0.5)).abs() < 1e-4);
        assert!((score(3) - (0.5 * -1.224_745 + 0.5)).abs() < 1e-4);
        // 4: 0.5 × (−1.2247) (missing from dense) + 0.5 × (−1)
        assert!((score(4) - (-0.5 * 1.224_745 - 0.5)).abs() < 1e-4);
        assert_eq!(fused.last().map(|f| f.id), Some(id(4)));
    }

    #[test]
    fn rrf_by_hand() {
        let dense = [(id(1), 0.9), (id(2), 0.5)];
        let keyword = [(id(2), 3.0), (id(3), 1.0)];
        let fused = fuse(&dense, &keyword, Method::Rrf { k: 60.0 });
        assert_eq!(fused[0].id, id(2));
        assert!(close(fused[0].score, 1.0 / 62.0 + 1.0 / 61.0));
        assert!(close(fused[1].score, 1.0 / 61.0));
    }

    #[test]
    fn degenerate_lists() {
        assert!(fuse(&[], &[], Method::Weighted { alpha: 0.7 }).is_empty());
        let lone = fuse(&[(id(1), 0.4)], &[], Method::Weighted { alpha: 0.7 });
        assert!(close(lone[0].score, 0.7));
        let tied = fuse(
            &[(id(2), 0.5), (id(1), 0.5)],
            &[],
            Method::Weighted { alpha: 1.0 },
        );
        assert_eq!(
            tied.iter().map(|f| f.id).collect::<Vec<_>>(),
            vec![id(1), id(2)]
        );
    }
}
