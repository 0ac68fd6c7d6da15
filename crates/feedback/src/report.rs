//! The routing report: how thumbs-down are spread over tiers and features, and whether the
//! strong threshold (a complexity score at or above it goes to the strong model) should move.
//!
//! Pure code over rated answers; the rule, kept simple enough to check by hand:
//!
//! * Only answers routed with the current threshold are evidence for moving it (domains may
//!   have their own thresholds, and a changed threshold makes older answers beside the point).
//! * **Lower** when the light answers nearest the threshold — the upper third (by count,
//!   rounded up) of light answers by score — get at least [`MIN_DOWN_SHARE_GAP`] more
//!   thumbs-down (as a share of rated answers) than the strong answers scored at or above the
//!   threshold, with at least [`MIN_RATED_PER_SIDE`] rated answers on each side. The proposal
//!   is the lowest score of that band, so those questions go to the strong model. Quality comes
//!   first: this is checked before raising.
//! * **Raise** when the strong answers just above the threshold — the lower third of the
//!   strong answers at or above it — get no larger a share of thumbs-down than the light
//!   answers, again with at least [`MIN_RATED_PER_SIDE`] on each side: the strong model buys
//!   nothing there. The proposal is the lowest strong score above that band, so the band
//!   goes to the light model and the rest stays strong.
//! * Otherwise **keep**; and when neither comparison has enough answers, **not enough data**.
//!
//! Beside the proposal: the thumbs-down share per tier, and per feature split into low/high at
//! its median over the rated answers (`0` / `>0` for features that are only 0 or 1).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AnswerRecord, Rating};

/// Rated answers needed on each side of a comparison before it proposes anything.
pub const MIN_RATED_PER_SIDE: u64 = 5;

/// How much larger (as a share, 0.10 = 10 percentage points) the thumbs-down share of the
/// light band must be than the strong answers' before lowering is proposed.
pub const MIN_DOWN_SHARE_GAP: f64 = 0.10;

/// Thresholds this close count as the same (they come from the same configuration value).
const SAME_THRESHOLD: f32 = 1e-4;

/// Slack for comparing shares, so that exactly 10 points counts as 10 points.
const EPSILON: f64 = 1e-9;

const LIGHT: &str = "light";
const STRONG: &str = "strong";

/// Rated answers and how many of them got a thumbs-down.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub rated: u64,
    pub down: u64,
    /// `down / rated`; `None` when nothing is rated.
    pub down_share: Option<f64>,
}

impl Share {
    fn of(ratings: impl IntoIterator<Item = Rating>) -> Self {
        let (mut rated, mut down) = (0, 0);
        for rating in ratings {
            rated += 1;
            down += u64::from(rating == Rating::Down);
        }
        Self::new(rated, down)
    }

    fn new(rated: u64, down: u64) -> Self {
        Self {
            rated,
            down,
            down_share: (rated > 0).then(|| down as f64 / rated as f64),
        }
    }
}

/// Answers of one tier in a score range next to the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub min_score: f32,
    pub max_score: f32,
    #[serde(flatten)]
    pub share: Share,
}

/// A feature's thumbs-down shares per tier, below and above a split value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureSplit {
    pub feature: String,
    /// Low is `value <= split_at`, high is `value > split_at`: the median over the rated
    /// answers that have the feature, or 0 for a feature that is only ever 0 or 1.
    pub split_at: f64,
    pub zero_or_one: bool,
    pub by_tier: BTreeMap<String, FeatureCell>,
}

/// One tier's answers on each side of a feature's split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureCell {
    pub low: Share,
    pub high: Share,
}

/// What the proposal was decided from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Rated answers routed with the current threshold (the only ones considered).
    pub at_threshold: u64,
    /// Rated answers routed with another threshold (another domain, or an older setting).
    pub other_threshold: u64,
    /// All light answers at the current threshold.
    pub light: Share,
    /// The upper third of them by score.
    pub light_band: Option<Band>,
    /// Strong answers that scored at or above the threshold (the ones it sent to strong).
    pub strong: Share,
    /// The lower third of them by score.
    pub strong_band: Option<Band>,
}

/// What to do with the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Proposal {
    /// Lower the threshold to `to`: more questions go to the strong model.
    Lower {
        to: f32,
    },
    /// Raise the threshold to `to`: fewer questions go to the strong model.
    Raise {
        to: f32,
    },
    Keep,
    NotEnoughData,
}

/// Thumbs-down by tier and feature, and a proposed threshold with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutingReport {
    pub current_threshold: f32,
    pub rated: u64,
    pub tiers: BTreeMap<String, Share>,
    pub features: Vec<FeatureSplit>,
    pub evidence: Evidence,
    pub proposal: Proposal,
    /// The proposal in words, with the numbers it rests on.
    pub reason: String,
}

/// Builds the report from rated answers (see the module docs for the rule).
pub fn routing_report(rated: &[(AnswerRecord, Rating)], current_threshold: f32) -> RoutingReport {
    let mut tiers: BTreeMap<String, Vec<Rating>> = BTreeMap::new();
    for (record, rating) in rated {
        tiers.entry(record.tier.clone()).or_default().push(*rating);
    }
    let tiers = tiers
        .into_iter()
        .map(|(tier, ratings)| (tier, Share::of(ratings)))
        .collect();

    let at: Vec<&(AnswerRecord, Rating)> = rated
        .iter()
        .filter(|(r, _)| (r.route_threshold - current_threshold).abs() <= SAME_THRESHOLD)
        .collect();
    // Light answers, highest score first; strong ones the threshold sent there, lowest first.
    let mut light: Vec<(f32, Rating)> = at
        .iter()
        .filter(|(r, _)| r.tier == LIGHT)
        .map(|(r, rating)| (r.route_score, *rating))
        .collect();
    light.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut strong: Vec<(f32, Rating)> = at
        .iter()
        .filter(|(r, _)| r.tier == STRONG && r.route_score >= current_threshold)
        .map(|(r, rating)| (r.route_score, *rating))
        .collect();
    strong.sort_by(|a, b| a.0.total_cmp(&b.0));

    let light_band = band(&light[..third(light.len())]);
    let strong_band_len = third(strong.len());
    let strong_band = band(&strong[..strong_band_len]);
    let evidence = Evidence {
        at_threshold: at.len() as u64,
        other_threshold: (rated.len() - at.len()) as u64,
        light: Share::of(light.iter().map(|(_, r)| *r)),
        light_band,
        strong: Share::of(strong.iter().map(|(_, r)| *r)),
        strong_band,
    };
    let (proposal, reason) = decide(&evidence, &strong[strong_band_len..], current_threshold);

    RoutingReport {
        current_threshold,
        rated: rated.len() as u64,
        tiers,
        features: feature_splits(rated),
        evidence,
        proposal,
        reason,
    }
}

/// A third of `n`, rounded up.
fn third(n: usize) -> usize {
    n.div_ceil(3)
}

fn band(answers: &[(f32, Rating)]) -> Option<Band> {
    let min_score = answers.iter().map(|(s, _)| *s).min_by(f32::total_cmp)?;
    let max_score = answers.iter().map(|(s, _)| *s).max_by(f32::total_cmp)?;
    Some(Band {
        min_score,
        max_score,
        share: Share::of(answers.iter().map(|(_, r)| *r)),
    })
}

fn enough(share: &Share) -> bool {
    share.rated >= MIN_RATED_PER_SIDE
}

/// The rule of the module docs. `above_band`: strong answers above the strong band, lowest first.
fn decide(e: &Evidence, above_band: &[(f32, Rating)], threshold: f32) -> (Proposal, String) {
    let light_band = e.light_band.as_ref().filter(|b| enough(&b.share));
    let strong_band = e.strong_band.as_ref().filter(|b| enough(&b.share));
    let lower_ready = light_band.is_some() && enough(&e.strong);
    let raise_ready = strong_band.is_some() && enough(&e.light);

    if let (Some(band), Some(strong)) = (light_band, e.strong.down_share.filter(|_| lower_ready)) {
        let band_share = band.share.down_share.unwrap_or(0.0);
        let gap = band_share - strong;
        if gap + EPSILON >= MIN_DOWN_SHARE_GAP {
            return (
                Proposal::Lower { to: band.min_score },
                format!(
                    "light answers just below the threshold get {:.1} points more thumbs-down \
                     than strong ones (at least {:.0} needed): send scores from {:?} up to strong",
                    gap * 100.0,
                    MIN_DOWN_SHARE_GAP * 100.0,
                    band.min_score
                ),
            );
        }
    }
    if let (Some(band), Some(light)) = (strong_band, e.light.down_share.filter(|_| raise_ready)) {
        let band_share = band.share.down_share.unwrap_or(0.0);
        if band_share <= light + EPSILON {
            let next = above_band
                .iter()
                .map(|(s, _)| *s)
                .find(|s| *s > band.max_score);
            return match next {
                Some(to) => (
                    Proposal::Raise { to },
                    format!(
                        "strong answers just above the threshold get no more thumbs-down than \
                         light ones ({} vs {}): send scores below {to:?} to light",
                        percent(band.share.down_share),
                        percent(Some(light))
                    ),
                ),
                None => (
                    Proposal::Keep,
                    "strong answers just above the threshold do as well as light ones, but no \
                     strong answer scores above them to raise the threshold to"
                        .to_owned(),
                ),
            };
        }
    }
    if !lower_ready && !raise_ready {
        return (
            Proposal::NotEnoughData,
            format!(
                "not enough rated answers at threshold {threshold:?}: comparing needs at least \
                 {MIN_RATED_PER_SIDE} rated answers in a light or strong band next to the \
                 threshold and {MIN_RATED_PER_SIDE} of the other tier"
            ),
        );
    }
    (
        Proposal::Keep,
        "the answers next to the threshold do about as well as the other tier".to_owned(),
    )
}

/// Each feature's split and its low/high shares per tier.
fn feature_splits(rated: &[(AnswerRecord, Rating)]) -> Vec<FeatureSplit> {
    let names: BTreeSet<&String> = rated.iter().flat_map(|(r, _)| r.features.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let values: Vec<(f64, &str, Rating)> = rated
                .iter()
                .filter_map(|(r, rating)| {
                    r.features.get(name).map(|v| (*v, r.tier.as_str(), *rating))
                })
                .collect();
            let zero_or_one = values.iter().all(|(v, _, _)| *v == 0.0 || *v == 1.0);
            let split_at = if zero_or_one {
                0.0
            } else {
                median(values.iter().map(|(v, _, _)| *v).collect())?
            };
            let mut counts: BTreeMap<String, [(u64, u64); 2]> = BTreeMap::new();
            for (value, tier, rating) in &values {
                let side = usize::from(*value > split_at);
                let cell = &mut counts.entry((*tier).to_owned()).or_default()[side];
                cell.0 += 1;
                cell.1 += u64::from(*rating == Rating::Down);
            }
            let by_tier = counts
                .into_iter()
                .map(|(tier, [low, high])| {
                    let cell = FeatureCell {
                        low: Share::new(low.0, low.1),
                        high: Share::new(high.0, high.1),
                    };
                    (tier, cell)
                })
                .collect();
            Some(FeatureSplit {
                feature: name.clone(),
                split_at,
                zero_or_one,
                by_tier,
            })
        })
        .collect()
}

/// The middle value (the mean of the two middle ones for an even count); `None` for none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => values.get(n / 2).copied(),
        _ => Some((values.get(n / 2 - 1)? + values.get(n / 2)?) / 2.0),
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

/// `40.0% of 10`, or `-` when nothing is rated.
fn cell(share: &Share) -> String {
    match share.down_share {
        Some(s) => format!("{:.1}% of {}", s * 100.0, share.rated),
        None => "-".to_owned(),
    }
}

fn band_line(f: &mut fmt::Formatter<'_>, what: &str, band: Option<&Band>) -> fmt::Result {
    match band {
        Some(b) => writeln!(
            f,
            "  {what} ({:?} to {:?}): {} of {} thumbs-down ({})",
            b.min_score,
            b.max_score,
            b.share.down,
            b.share.rated,
            percent(b.share.down_share)
        ),
        None => writeln!(f, "  {what}: none"),
    }
}

impl fmt::Display for RoutingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Routing report: {} rated answers, strong threshold {:?}",
            self.rated, self.current_threshold
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<12} {:>7} {:>7} {:>11}",
            "tier", "rated", "down", "down share"
        )?;
        for (tier, share) in &self.tiers {
            writeln!(
                f,
                "{tier:<12} {:>7} {:>7} {:>11}",
                share.rated,
                share.down,
                percent(share.down_share)
            )?;
        }

        if !self.features.is_empty() {
            let tiers: BTreeSet<&String> = self
                .features
                .iter()
                .flat_map(|s| s.by_tier.keys())
                .collect();
            writeln!(f)?;
            writeln!(
                f,
                "thumbs-down share by feature (low: value <= split, high: value > split)"
            )?;
            write!(f, "{:<20} {:>8}", "feature", "split")?;
            for tier in &tiers {
                write!(
                    f,
                    " {:>14} {:>14}",
                    format!("{tier} low"),
                    format!("{tier} high")
                )?;
            }
            writeln!(f)?;
            for split in &self.features {
                let at = if split.zero_or_one {
                    "0 / >0".to_owned()
                } else {
                    format!("{:.2}", split.split_at)
                };
                write!(f, "{:<20} {at:>8}", split.feature)?;
                for tier in &tiers {
                    let c = split.by_tier.get(*tier).cloned().unwrap_or_default();
                    write!(f, " {:>14} {:>14}", cell(&c.low), cell(&c.high))?;
                }
                writeln!(f)?;
            }
        }

        writeln!(f)?;
        let t = self.current_threshold;
        match self.proposal {
            Proposal::Lower { to } => {
                writeln!(f, "proposal: lower the threshold from {t:?} to {to:?}")?
            }
            Proposal::Raise { to } => {
                writeln!(f, "proposal: raise the threshold from {t:?} to {to:?}")?
            }
            Proposal::Keep => writeln!(f, "proposal: keep the threshold at {t:?}")?,
            Proposal::NotEnoughData => writeln!(f, "proposal: none (not enough data)")?,
        }
        writeln!(f, "  {}", self.reason)?;
        let e = &self.evidence;
        writeln!(
            f,
            "  evidence: {} rated answers routed at this threshold ({} at another, not counted)",
            e.at_threshold, e.other_threshold
        )?;
        writeln!(
            f,
            "  light answers: {} of {} thumbs-down ({})",
            e.light.down,
            e.light.rated,
            percent(e.light.down_share)
        )?;
        band_line(f, "upper third of light scores", e.light_band.as_ref())?;
        writeln!(
            f,
            "  strong answers at or above {t:?}: {} of {} thumbs-down ({})",
            e.strong.down,
            e.strong.rated,
            percent(e.strong.down_share)
        )?;
        band_line(
            f,
            "lower third of those strong scores",
            e.strong_band.as_ref(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A rated answer of `tier` with `score` (threshold 2.0) and the given features.
    fn answer(
        tier: &str,
        score: f32,
        rating: Rating,
        features: &[(&str, f64)],
    ) -> (AnswerRecord, Rating) {
        let record = AnswerRecord {
            query_id: format!("{tier}-{score}"),
            tenant: "acme".into(),
            domain: "engineering".into(),
            tier: tier.into(),
            tier_reasons: Vec::new(),
            route_score: score,
            route_threshold: 2.0,
            features: features
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            model: "m".into(),
            prompt_version: "v1".into(),
            cache: "miss".into(),
            cache_key: None,
            grounded: true,
            input_tokens: 1,
            output_tokens: 1,
            cost_usd: 0.0,
            latency_ms: 1,
            created_at_ms: 0,
            question_embedding: None,
        };
        (record, rating)
    }

    /// `n` answers of `tier` with scores `start, start + step, ...`; the ones at the
    /// positions in `down` are thumbs-down.
    fn run(
        tier: &str,
        n: usize,
        start: f32,
        step: f32,
        down: &[usize],
    ) -> Vec<(AnswerRecord, Rating)> {
        (0..n)
            .map(|i| {
                let rating = if down.contains(&i) {
                    Rating::Down
                } else {
                    Rating::Up
                };
                answer(tier, start + step * i as f32, rating, &[])
            })
            .collect()
    }

    #[test]
    fn too_few_answers_propose_nothing() {
        let mut rated = run(LIGHT, 3, 0.5, 0.5, &[0]);
        rated.extend(run(STRONG, 2, 2.0, 0.5, &[]));
        let report = routing_report(&rated, 2.0);
        assert_eq!(report.proposal, Proposal::NotEnoughData);
        assert_eq!(report.rated, 5);
        assert_eq!(report.tiers[LIGHT], Share::new(3, 1));
        assert!(report.to_string().contains("not enough data"), "{report}");
        assert_eq!(routing_report(&[], 2.0).proposal, Proposal::NotEnoughData);
    }

    #[test]
    fn light_answers_near_the_threshold_doing_worse_lower_it() {
        // 15 light answers scored 0.1..=1.5: the upper third is the 5 scored 1.1..=1.5 (positions
        // 10..=14), 3 of them thumbs-down: 60%. 5 strong answers, 1 thumbs-down: 20%.
        let mut rated = run(LIGHT, 15, 0.1, 0.1, &[0, 11, 12, 14]);
        rated.extend(run(STRONG, 5, 2.0, 0.1, &[3]));
        let report = routing_report(&rated, 2.0);
        let band = report.evidence.light_band.clone().unwrap();
        assert_eq!((band.share.rated, band.share.down), (5, 3));
        assert_eq!(band.min_score, 0.1 + 0.1 * 10.0);
        assert_eq!(report.evidence.light, Share::new(15, 4));
        assert_eq!(report.evidence.strong, Share::new(5, 1));
        assert_eq!(
            report.proposal,
            Proposal::Lower {
                to: 0.1 + 0.1 * 10.0
            }
        );
        let text = report.to_string();
        assert!(
            text.contains("proposal: lower the threshold from 2.0 to 1.1"),
            "{text}"
        );
        assert!(text.contains("40.0 points more"), "{text}");
    }

    #[test]
    fn exactly_ten_points_is_enough() {
        // 30 light answers: the band is the top 10, 3 down (30%); 5 strong, 1 down (20%).
        let mut rated = run(LIGHT, 30, 0.0, 0.05, &[20, 21, 22]);
        rated.extend(run(STRONG, 5, 2.0, 0.1, &[0]));
        let report = routing_report(&rated, 2.0);
        assert_eq!(
            report.evidence.light_band.as_ref().unwrap().share,
            Share::new(10, 3)
        );
        assert!(
            matches!(report.proposal, Proposal::Lower { .. }),
            "{report}"
        );

        // One fewer thumbs-down in the band: 20% vs 20%; raising cannot be judged (the strong
        // band has 2 answers): keep.
        let mut rated = run(LIGHT, 30, 0.0, 0.05, &[20, 21]);
        rated.extend(run(STRONG, 5, 2.0, 0.1, &[0]));
        let report = routing_report(&rated, 2.0);
        assert_eq!(report.proposal, Proposal::Keep, "{report}");
    }

    #[test]
    fn strong_answers_near_the_threshold_doing_as_well_raise_it() {
        // 6 light answers, 2 down: 33%. 15 strong at 2.0..=3.4: the lower third is 2.0..=2.4,
        // 1 down (20%), so scores below the next one, 2.5, could go light.
        let mut rated = run(LIGHT, 6, 0.5, 0.2, &[0, 1]);
        rated.extend(run(STRONG, 15, 2.0, 0.1, &[2, 9, 10, 11]));
        let report = routing_report(&rated, 2.0);
        let band = report.evidence.strong_band.clone().unwrap();
        assert_eq!((band.share.rated, band.share.down), (5, 1));
        assert_eq!(
            report.proposal,
            Proposal::Raise {
                to: 2.0 + 0.1 * 5.0
            }
        );
        assert!(
            report
                .to_string()
                .contains("raise the threshold from 2.0 to 2.5"),
            "{report}"
        );

        // The band doing worse than light: keep.
        let mut rated = run(LIGHT, 6, 0.5, 0.2, &[0]);
        rated.extend(run(STRONG, 15, 2.0, 0.1, &[0, 1]));
        assert_eq!(routing_report(&rated, 2.0).proposal, Proposal::Keep);
    }

    #[test]
    fn only_answers_routed_at_this_threshold_count() {
        let mut rated = run(LIGHT, 15, 0.1, 0.1, &[11, 12, 14]);
        rated.extend(run(STRONG, 5, 2.0, 0.1, &[]));
        // Strong answers below the threshold (a strong-by-default domain) are not its doing.
        rated.extend(run(STRONG, 4, 0.5, 0.1, &[0, 1, 2, 3]));
        let report = routing_report(&rated, 3.0);
        assert_eq!(report.evidence.at_threshold, 0);
        assert_eq!(report.evidence.other_threshold, 24);
        assert_eq!(report.proposal, Proposal::NotEnoughData);
        let report = routing_report(&rated, 2.0);
        assert_eq!(report.evidence.strong, Share::new(5, 0));
        assert_eq!(report.tiers[STRONG], Share::new(9, 4));
        assert_eq!(
            report.proposal,
            Proposal::Lower {
                to: 0.1 + 0.1 * 10.0
            }
        );
    }

    #[test]
    fn features_split_at_the_median_or_at_zero() {
        use Rating::{Down, Up};
        let rated = vec![
            answer(LIGHT, 0.1, Down, &[("words", 4.0), ("multi_part", 0.0)]),
            answer(LIGHT, 0.2, Up, &[("words", 8.0), ("multi_part", 1.0)]),
            answer(LIGHT, 0.3, Down, &[("words", 12.0), ("multi_part", 1.0)]),
            answer(STRONG, 2.5, Up, &[("words", 20.0), ("multi_part", 0.0)]),
            answer(STRONG, 2.6, Up, &[("multi_part", 1.0)]),
        ];
        let report = routing_report(&rated, 2.0);
        let by_name: BTreeMap<&str, &FeatureSplit> = report
            .features
            .iter()
            .map(|s| (s.feature.as_str(), s))
            .collect();
        // words 4, 8, 12, 20: median 10.
        let words = by_name["words"];
        assert_eq!((words.split_at, words.zero_or_one), (10.0, false));
        assert_eq!(words.by_tier[LIGHT].low, Share::new(2, 1));
        assert_eq!(words.by_tier[LIGHT].high, Share::new(1, 1));
        assert_eq!(words.by_tier[STRONG].low, Share::new(0, 0));
        assert_eq!(words.by_tier[STRONG].high, Share::new(1, 0));
        let multi = by_name["multi_part"];
        assert_eq!((multi.split_at, multi.zero_or_one), (0.0, true));
        assert_eq!(multi.by_tier[LIGHT].low, Share::new(1, 1));
        assert_eq!(multi.by_tier[LIGHT].high, Share::new(2, 1));
        assert_eq!(multi.by_tier[STRONG].high, Share::new(1, 0));

        let text = report.to_string();
        assert!(text.contains("0 / >0"), "{text}");
        assert!(text.contains("50.0% of 2"), "{text}");
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn serializes_with_a_tagged_proposal() {
        let report = routing_report(&run(LIGHT, 2, 0.5, 0.1, &[]), 2.0);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["proposal"]["action"], "not_enough_data");
        assert_eq!(json["tiers"]["light"]["rated"], 2);
        let lower = serde_json::to_value(Proposal::Lower { to: 1.5 }).unwrap();
        assert_eq!(lower, serde_json::json!({"action": "lower", "to": 1.5}));
    }
}
