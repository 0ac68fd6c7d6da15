//! Answer records and user feedback, and the routing report built from them.
//!
//! Every answer the router gives is recorded ([`AnswerRecord`]: tier, prompt version, cache
//! status, the complexity analyser's features, cost); users rate answers by query id
//! ([`Feedback`]); the rating is stored with the record, so operators see what works
//! ([`FeedbackSummary`]) and [`routing_report`] proposes a change of the routing threshold.
//!
//! [`FeedbackStore`] is the one trait; [`SqliteFeedbackStore`] is the embedded default (a file
//! that several processes may share) and [`PostgresFeedbackStore`] the cluster backend (lazy:
//! built without network I/O, connects and migrates on first use, reconnects after a failure).
//! Every read and write is scoped by tenant: a tenant never sees nor rates another's answers.
//!
//! This crate stores and reports; it does not act on feedback (evicting a cache entry on a
//! thumbs-down is the router's job, with the record [`FeedbackStore::record_feedback`] returns).
//! Nor does it compute drift: it keeps each question's embedding and hands a window of them
//! back ([`FeedbackStore::question_embeddings`]); the statistics are the drift crate's.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod postgres;
mod report;
mod sqlite;

pub use postgres::PostgresFeedbackStore;
pub use report::{Band, Evidence, FeatureCell, FeatureSplit, Proposal, RoutingReport, Share};
pub use report::{MIN_DOWN_SHARE_GAP, MIN_RATED_PER_SIDE, routing_report};
pub use sqlite::SqliteFeedbackStore;

/// Comments longer than this (in characters) are refused.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// Query ids and tenants longer than this (in characters) are refused; the router's ids are
/// far shorter, and a bound keeps a hostile request from storing megabytes as a key.
pub const MAX_ID_CHARS: usize = 256;

/// Question embeddings with more dimensions than this are refused (the largest embedding
/// models in use have 4096; a bound keeps a bad caller from storing megabytes per answer).
pub const MAX_EMBEDDING_DIMS: usize = 4096;

/// How one answer was made: what the router recorded when it gave it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerRecord {
    pub query_id: String,
    pub tenant: String,
    pub domain: String,
    /// `"light"` or `"strong"`.
    pub tier: String,
    pub tier_reasons: Vec<String>,
    /// The complexity analyser's score and the threshold it was compared with.
    pub route_score: f32,
    pub route_threshold: f32,
    /// The analyser's features by name (`words`, `sentences`, `technical_density`, ...).
    pub features: BTreeMap<String, f64>,
    pub model: String,
    pub prompt_version: String,
    /// `"miss"`, `"exact"` or `"semantic"`.
    pub cache: String,
    /// The cache entry that served or stored this answer (to evict it on a thumbs-down).
    pub cache_key: Option<String>,
    pub grounded: bool,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: u64,
    pub created_at_ms: i64,
    /// The question's embedding when the router computed one (cache misses and semantic
    /// lookups), for query-drift detection; `None` when it did not (exact cache hits) and for
    /// answers recorded before embeddings were kept. 1 to [`MAX_EMBEDDING_DIMS`] finite values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_embedding: Option<Vec<f32>>,
}

/// Which question embeddings [`FeedbackStore::question_embeddings`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingQuery {
    /// Only answers in this domain; `None` for every domain of the tenant.
    pub domain: Option<String>,
    /// Answers recorded at or after this time (milliseconds since the Unix epoch).
    pub from_ms: i64,
    /// Answers recorded before this time (exclusive); a window with `to_ms <= from_ms` is empty.
    pub to_ms: i64,
    /// At most this many: the newest of the window.
    pub limit: usize,
}

/// One answered question's embedding, as [`FeedbackStore::question_embeddings`] returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionEmbedding {
    pub domain: String,
    /// When the answer was recorded ([`AnswerRecord::created_at_ms`]).
    pub created_at_ms: i64,
    pub embedding: Vec<f32>,
}

/// A user's verdict on an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

impl Rating {
    /// The stored and wire form: `"up"` or `"down"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Up => "up",
            Rating::Down => "down",
        }
    }
}

impl fmt::Display for Rating {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Rating {
    type Err = FeedbackError;

    /// `"up"` or `"down"`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("up") {
            Ok(Rating::Up)
        } else if s.eq_ignore_ascii_case("down") {
            Ok(Rating::Down)
        } else {
            let shown: String = s.chars().take(40).collect();
            Err(FeedbackError::Invalid(format!(
                "a rating is \"up\" or \"down\", not {shown:?}"
            )))
        }
    }
}

/// A user's rating of the answer to `query_id`, with an optional comment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub query_id: String,
    pub tenant: String,
    pub rating: Rating,
    pub comment: Option<String>,
}

/// Why a feedback operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("no answer {0} for this tenant")]
    UnknownQuery(String),
    /// Comment too long, empty query id, a value the store cannot keep.
    #[error("invalid feedback: {0}")]
    Invalid(String),
    #[error("feedback store unavailable: {0}")]
    Unavailable(String),
}

/// Where answer records and their ratings are kept.
#[async_trait::async_trait]
pub trait FeedbackStore: Send + Sync + std::fmt::Debug {
    /// Records an answer. Idempotent on (tenant, query id): recording it again changes
    /// nothing (the first record, and any rating, stay).
    async fn record_answer(&self, record: &AnswerRecord) -> Result<(), FeedbackError>;
    /// Stores (or replaces: last rating wins) the feedback for an answer of the same tenant
    /// and returns that answer's record. Another tenant's query id is unknown.
    async fn record_feedback(&self, feedback: &Feedback) -> Result<AnswerRecord, FeedbackError>;
    /// Counts of the tenant's answers and ratings, overall and broken down.
    async fn summary(&self, tenant: &str) -> Result<FeedbackSummary, FeedbackError>;
    /// Every rated answer of the tenant with its rating (for the routing report).
    async fn rated_answers(
        &self,
        tenant: &str,
    ) -> Result<Vec<(AnswerRecord, Rating)>, FeedbackError>;
    /// The embeddings of the tenant's questions answered in `[from_ms, to_ms)` (of one domain,
    /// if the query names one), newest first (ties by query id, descending), at most `limit`.
    /// Answers recorded without an embedding are skipped. For query-drift detection.
    async fn question_embeddings(
        &self,
        tenant: &str,
        query: &EmbeddingQuery,
    ) -> Result<Vec<QuestionEmbedding>, FeedbackError>;
}

/// A tenant's answers and ratings, overall and by tier, prompt version, cache status and model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSummary {
    pub answers: u64,
    pub rated: u64,
    pub up: u64,
    pub down: u64,
    pub by_tier: Vec<Breakdown>,
    pub by_prompt_version: Vec<Breakdown>,
    pub by_cache: Vec<Breakdown>,
    pub by_model: Vec<Breakdown>,
}

/// The answers and ratings that share one value (`key`) of a dimension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    pub key: String,
    /// All answers, rated or not.
    pub answers: u64,
    pub up: u64,
    pub down: u64,
}

impl Breakdown {
    /// The share of the rated answers that got a thumbs-down; `None` when none is rated.
    pub fn down_share(&self) -> Option<f64> {
        let rated = self.up + self.down;
        (rated > 0).then(|| self.down as f64 / rated as f64)
    }
}

/// One group of the stores' aggregate query: answers sharing tier, prompt version, cache
/// status and model, with their counts. Both backends fold these into a summary.
#[derive(Debug)]
struct GroupCounts {
    tier: String,
    prompt_version: String,
    cache: String,
    model: String,
    answers: u64,
    up: u64,
    down: u64,
}

impl FeedbackSummary {
    /// Folds per-group counts into the totals and the four breakdowns (each sorted by key).
    fn from_groups(groups: &[GroupCounts]) -> Self {
        type Dimension = BTreeMap<String, (u64, u64, u64)>;
        fn add(dim: &mut Dimension, key: &str, g: &GroupCounts) {
            let entry = dim.entry(key.to_owned()).or_default();
            entry.0 += g.answers;
            entry.1 += g.up;
            entry.2 += g.down;
        }
        fn breakdowns(dim: Dimension) -> Vec<Breakdown> {
            dim.into_iter()
                .map(|(key, (answers, up, down))| Breakdown {
                    key,
                    answers,
                    up,
                    down,
                })
                .collect()
        }
        let (mut tier, mut prompt, mut cache, mut model) = Default::default();
        let mut summary = FeedbackSummary::default();
        for g in groups {
            summary.answers += g.answers;
            summary.up += g.up;
            summary.down += g.down;
            add(&mut tier, &g.tier, g);
            add(&mut prompt, &g.prompt_version, g);
            add(&mut cache, &g.cache, g);
            add(&mut model, &g.model, g);
        }
        summary.rated = summary.up + summary.down;
        summary.by_tier = breakdowns(tier);
        summary.by_prompt_version = breakdowns(prompt);
        summary.by_cache = breakdowns(cache);
        summary.by_model = breakdowns(model);
        summary
    }
}

/// A tenant or query id as a key: non-empty, bounded, no NUL (PostgreSQL text cannot hold one).
fn check_id(what: &str, value: &str) -> Result<(), FeedbackError> {
    if value.is_empty() {
        return Err(FeedbackError::Invalid(format!("the {what} is empty")));
    }
    if value.chars().count() > MAX_ID_CHARS {
        return Err(FeedbackError::Invalid(format!(
            "the {what} is longer than {MAX_ID_CHARS} characters"
        )));
    }
    check_text(what, value)
}

/// Both backends store text the same way: PostgreSQL refuses NUL, so SQLite does too.
fn check_text(what: &str, value: &str) -> Result<(), FeedbackError> {
    if value.contains('\0') {
        return Err(FeedbackError::Invalid(format!("the {what} contains NUL")));
    }
    Ok(())
}

/// NaN and infinities do not survive either store (SQLite keeps NaN as NULL, JSON has none).
fn check_finite(what: &str, value: f64) -> Result<(), FeedbackError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(FeedbackError::Invalid(format!("{what} is {value}")))
    }
}

/// What both stores refuse in a record, before touching the database.
fn check_record(r: &AnswerRecord) -> Result<(), FeedbackError> {
    check_id("tenant", &r.tenant)?;
    check_id("query id", &r.query_id)?;
    for (what, value) in [
        ("domain", &r.domain),
        ("tier", &r.tier),
        ("model", &r.model),
        ("prompt version", &r.prompt_version),
        ("cache status", &r.cache),
    ] {
        check_text(what, value)?;
    }
    if let Some(key) = &r.cache_key {
        check_text("cache key", key)?;
    }
    for reason in &r.tier_reasons {
        check_text("tier reason", reason)?;
    }
    check_finite("the route score", f64::from(r.route_score))?;
    check_finite("the route threshold", f64::from(r.route_threshold))?;
    check_finite("the cost", r.cost_usd)?;
    for (name, value) in &r.features {
        check_text("feature name", name)?;
        check_finite(&format!("feature {name}"), *value)?;
    }
    latency_to_db(r.latency_ms)?;
    if let Some(embedding) = &r.question_embedding {
        check_embedding(embedding)?;
    }
    Ok(())
}

/// A question embedding both stores keep: 1 to [`MAX_EMBEDDING_DIMS`] finite values.
fn check_embedding(embedding: &[f32]) -> Result<(), FeedbackError> {
    if embedding.is_empty() {
        return Err(FeedbackError::Invalid(
            "the question embedding is empty (leave it out instead)".into(),
        ));
    }
    if embedding.len() > MAX_EMBEDDING_DIMS {
        return Err(FeedbackError::Invalid(format!(
            "the question embedding has {} dimensions; at most {MAX_EMBEDDING_DIMS} are kept",
            embedding.len()
        )));
    }
    if let Some((i, value)) = embedding.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(FeedbackError::Invalid(format!(
            "the question embedding's value {i} is {value}; every value must be finite"
        )));
    }
    Ok(())
}

/// What both stores refuse in an embedding query; returns the limit as a SQL `LIMIT`.
fn check_embedding_query(tenant: &str, q: &EmbeddingQuery) -> Result<i64, FeedbackError> {
    check_id("tenant", tenant)?;
    if let Some(domain) = &q.domain {
        check_text("domain", domain)?;
    }
    // Beyond i64::MAX rows is "all of them".
    Ok(i64::try_from(q.limit).unwrap_or(i64::MAX))
}

/// What both stores refuse in feedback; returns the comment to store (blank is none).
fn check_feedback(f: &Feedback) -> Result<Option<&str>, FeedbackError> {
    check_id("tenant", &f.tenant)?;
    check_id("query id", &f.query_id)?;
    let Some(comment) = f.comment.as_deref() else {
        return Ok(None);
    };
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(FeedbackError::Invalid(format!(
            "the comment is longer than {MAX_COMMENT_CHARS} characters"
        )));
    }
    check_text("comment", comment)?;
    Ok(Some(comment).filter(|c| !c.trim().is_empty()))
}

fn latency_to_db(ms: u64) -> Result<i64, FeedbackError> {
    i64::try_from(ms).map_err(|_| FeedbackError::Invalid(format!("latency {ms} ms is too large")))
}

/// A stored integer back in its Rust type; out of range means the row was not written here.
fn from_db<T: TryFrom<i64>>(n: i64, what: &str) -> Result<T, FeedbackError> {
    T::try_from(n).map_err(|_| corrupt(format!("{what} {n} is out of range")))
}

fn parse_rating(s: &str) -> Result<Rating, FeedbackError> {
    match s {
        "up" => Ok(Rating::Up),
        "down" => Ok(Rating::Down),
        other => Err(corrupt(format!("rating {other:?}"))),
    }
}

/// A row this code cannot read: the store is not usable as it is.
fn corrupt(what: String) -> FeedbackError {
    FeedbackError::Unavailable(format!("corrupt feedback row: {what}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ratings_parse_in_any_case_and_refuse_the_rest() {
        assert_eq!("up".parse::<Rating>().unwrap(), Rating::Up);
        assert_eq!("DOWN".parse::<Rating>().unwrap(), Rating::Down);
        for bad in ["", "yes", " up", "thumbs-up"] {
            let err = bad.parse::<Rating>().unwrap_err();
            assert!(matches!(err, FeedbackError::Invalid(_)), "{bad:?}: {err}");
            assert!(err.to_string().contains("\"up\" or \"down\""), "{err}");
        }
        assert_eq!(Rating::Down.to_string(), "down");
    }

    #[test]
    fn ratings_serialize_lower_case() {
        assert_eq!(serde_json::to_string(&Rating::Up).unwrap(), "\"up\"");
        assert_eq!(
            serde_json::from_str::<Rating>("\"down\"").unwrap(),
            Rating::Down
        );
        assert!(serde_json::from_str::<Rating>("\"Down\"").is_err());
    }

    #[test]
    fn down_share_is_over_rated_answers() {
        let b = Breakdown {
            key: "light".into(),
            answers: 10,
            up: 3,
            down: 1,
        };
        assert_eq!(b.down_share(), Some(0.25));
        let unrated = Breakdown {
            up: 0,
            down: 0,
            ..b
        };
        assert_eq!(unrated.down_share(), None);
    }

    #[test]
    fn feedback_checks() {
        let mut f = Feedback {
            query_id: "q1".into(),
            tenant: "acme".into(),
            rating: Rating::Up,
            comment: Some("é".repeat(MAX_COMMENT_CHARS)),
        };
        assert!(
            check_feedback(&f).unwrap().is_some(),
            "the limit is in characters"
        );
        f.comment = Some("x".repeat(MAX_COMMENT_CHARS + 1));
        assert!(matches!(check_feedback(&f), Err(FeedbackError::Invalid(_))));
        f.comment = Some("  ".into());
        assert_eq!(check_feedback(&f).unwrap(), None, "a blank comment is none");
        f.comment = None;
        f.query_id = String::new();
        assert!(matches!(check_feedback(&f), Err(FeedbackError::Invalid(_))));
    }

    #[test]
    fn summary_folds_groups() {
        let group = |tier: &str, prompt: &str, answers, up, down| GroupCounts {
            tier: tier.into(),
            prompt_version: prompt.into(),
            cache: "miss".into(),
            model: "m".into(),
            answers,
            up,
            down,
        };
        let s = FeedbackSummary::from_groups(&[
            group("light", "v1", 4, 1, 2),
            group("strong", "v1", 3, 1, 0),
            group("light", "v2", 2, 0, 1),
        ]);
        assert_eq!((s.answers, s.rated, s.up, s.down), (9, 5, 2, 3));
        let keys = |b: &[Breakdown]| -> Vec<(String, u64, u64, u64)> {
            b.iter()
                .map(|b| (b.key.clone(), b.answers, b.up, b.down))
                .collect()
        };
        assert_eq!(
            keys(&s.by_tier),
            [("light".into(), 6, 1, 3), ("strong".into(), 3, 1, 0)]
        );
        assert_eq!(
            keys(&s.by_prompt_version),
            [("v1".into(), 7, 2, 2), ("v2".into(), 2, 0, 1)]
        );
        assert_eq!(keys(&s.by_cache), [("miss".into(), 9, 2, 3)]);
        assert_eq!(
            FeedbackSummary::from_groups(&[]),
            FeedbackSummary::default()
        );
    }
}
