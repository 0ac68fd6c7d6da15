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
    let mut by_id: HashMap<Uuid, Fused> = HashMap::with_capacity(dense.len() + keyword.len());
    fn entry(map: &mut HashMap<Uuid, Fused>, id: Uuid) -> &mut Fused {
        map.entry(id).or_insert(Fused {
            id,
            score: 0.0,
            dense: None,
            keyword: None,
        })
    }
    match method {
        Method::Weighted { alpha } => {
            let dense_norm = min_max(dense);
            let keyword_norm = min_max(keyword);
            for (&(id, raw), norm) in dense.iter().zip(dense_norm) {
                let e = entry(&mut by_id, id);
                e.dense = Some(raw);
                e.score += alpha * norm;
            }
            for (&(id, raw), norm) in keyword.iter().zip(keyword_norm) {
                let e = entry(&mut by_id, id);
                e.keyword = Some(raw);
                e.score += (1.0 - alpha) * norm;
            }
        }
        Method::Zscore { alpha } => {
            let dense_z = z_scores(dense);
            let keyword_z = z_scores(keyword);
            let floor = |z: &[f32]| z.iter().copied().fold(0.0f32, f32::min);
            let (dense_floor, keyword_floor) = (floor(&dense_z), floor(&keyword_z));
            for (&(id, raw), z) in dense.iter().zip(&dense_z) {
                let e = entry(&mut by_id, id);
                e.dense = Some(raw);
                e.score += alpha * z;
            }
            for (&(id, raw), z) in keyword.iter().zip(&keyword_z) {
                let e = entry(&mut by_id, id);
                e.keyword = Some(raw);
                e.score += (1.0 - alpha) * z;
            }
            for e in by_id.values_mut() {
                if e.dense.is_none() {
                    e.score += alpha * dense_floor;
                }
                if e.keyword.is_none() {
                    e.score += (1.0 - alpha) * keyword_floor;
                }
            }
        }
        Method::Rrf { k } => {
            for (rank, &(id, raw)) in dense.iter().enumerate() {
                let e = entry(&mut by_id, id);
                e.dense = Some(raw);
                e.score += 1.0 / (k + rank as f32 + 1.0);
            }
            for (rank, &(id, raw)) in keyword.iter().enumerate() {
                let e = entry(&mut by_id, id);
                e.keyword = Some(raw);
                e.score += 1.0 / (k + rank as f32 + 1.0);
            }
        }
    }
    let mut fused: Vec<Fused> = by_id.into_values().collect();
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    fused
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

    #[test]
    fn weighted_fusion_by_hand() {
        // dense: 1 → 0.9, 2 → 0.5, 3 → 0.1  ⇒ normalised 1.0, 0.5, 0.0
        // keyword: 3 → 12, 4 → 2           ⇒ normalised 1.0, 0.0
        let dense = [(id(1), 0.9), (id(2), 0.5), (id(3), 0.1)];
        let keyword = [(id(3), 12.0), (id(4), 2.0)];
        let fused = fuse(&dense, &keyword, Method::Weighted { alpha: 0.7 });
        let score = |n| {
            fused
                .iter()
                .find(|f| f.id == id(n))
                .map(|f| f.score)
                .unwrap_or(f32::NAN)
        };
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
        let score = |n| {
            fused
                .iter()
                .find(|f| f.id == id(n))
                .map(|f| f.score)
                .unwrap_or(f32::NAN)
        };
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
