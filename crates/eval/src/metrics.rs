//! Ranking metrics: nDCG@k, Recall@k and MRR@k, per query and averaged over queries.
//!
//! The definitions are `trec_eval`'s (which BEIR and Anserini report):
//!
//! * A document's **grade** is its score in the qrels; unjudged documents have grade 0. A
//!   document is **relevant** when its grade is > 0. Negative grades count as 0.
//! * **nDCG@k** = DCG@k / IDCG@k with DCG@k = Σ_{i=1..k} grade_i / log2(i + 1) (gain = grade,
//!   not 2^grade − 1). IDCG@k is the DCG of the query's judged grades sorted in decreasing
//!   order, so it comes from the qrels, not from what was retrieved.
//! * **Recall@k** = (relevant documents in the top k) / (relevant documents in the qrels).
//! * **MRR@k** = 1 / rank of the first relevant document in the top k, 0 if there is none.
//!
//! Rankings are lists of document ids, best first. A document that appears more than once
//! (several chunks of one document) counts once, at its first (best) position, and the later
//! copies do not take up places in the top k: `[a, a, b]` at k = 2 is `[a, b]`.
//!
//! Which queries are averaged: those with at least one relevant document in the qrels. A
//! ranked query without qrels, or whose judgments are all ≤ 0, is left out of every average
//! (and listed in [`Evaluation`]); a judged query that never received a ranking counts as
//! having retrieved nothing (0 on every metric), like `trec_eval -c`.
//!
//! Ties in retrieval scores must be broken before the metrics see a ranking;
//! [`ranking_from_scores`] does it deterministically (by document id).

use std::collections::{BTreeMap, HashSet};

use crate::beir::{Judgments, Qrels};

/// The cut-off of the reported nDCG.
pub const NDCG_K: usize = 10;
/// The cut-off of the reported recall.
pub const RECALL_K: usize = 100;
/// The cut-off of the reported MRR.
pub const MRR_K: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    #[error("query {query_id:?} was ranked twice")]
    DuplicateQuery { query_id: String },
}

/// nDCG@k of one ranking. `None` when the query has no relevant document (IDCG = 0) or k = 0.
pub fn ndcg_at_k<D: AsRef<str>>(ranked: &[D], judgments: &Judgments, k: usize) -> Option<f64> {
    let mut ideal: Vec<i32> = judgments.values().map(|&g| g.max(0)).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| gain(g, i))
        .sum();
    if idcg <= 0.0 {
        return None;
    }
    let dcg: f64 = top_k_unique(ranked, k)
        .iter()
        .enumerate()
        .map(|(i, doc)| gain(grade(judgments, doc), i))
        .sum();
    Some(dcg / idcg)
}

/// Recall@k of one ranking. `None` when the query has no relevant document.
pub fn recall_at_k<D: AsRef<str>>(ranked: &[D], judgments: &Judgments, k: usize) -> Option<f64> {
    let relevant = judgments.values().filter(|&&g| g > 0).count();
    if relevant == 0 {
        return None;
    }
    let found = top_k_unique(ranked, k)
        .iter()
        .filter(|doc| grade(judgments, doc) > 0)
        .count();
    Some(found as f64 / relevant as f64)
}

/// Reciprocal rank of the first relevant document within the top k (0 if none).
/// `None` when the query has no relevant document.
pub fn mrr_at_k<D: AsRef<str>>(ranked: &[D], judgments: &Judgments, k: usize) -> Option<f64> {
    if !judgments.values().any(|&g| g > 0) {
        return None;
    }
    let rr = top_k_unique(ranked, k)
        .iter()
        .position(|doc| grade(judgments, doc) > 0)
        .map_or(0.0, |i| 1.0 / (i + 1) as f64);
    Some(rr)
}

/// Orders (document id, score) pairs best first: higher score first, equal scores by
/// ascending document id, NaN scores last. Duplicates are kept (the metrics count a document
/// once, at its best position).
pub fn ranking_from_scores<D, S>(scored: impl IntoIterator<Item = (D, S)>) -> Vec<String>
where
    D: Into<String>,
    S: Into<f64>,
{
    let mut scored: Vec<(String, f64)> = scored
        .into_iter()
        .map(|(d, s)| {
            let s: f64 = s.into();
            (d.into(), if s.is_nan() { f64::NEG_INFINITY } else { s })
        })
        .collect();
    scored.sort_by(|(da, sa), (db, sb)| sb.total_cmp(sa).then_with(|| da.cmp(db)));
    scored.into_iter().map(|(d, _)| d).collect()
}

/// The metrics of one evaluated query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryMetrics {
    pub query_id: String,
    pub ndcg_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
}

/// The result of evaluating a run against qrels.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Evaluated queries, sorted by id.
    pub per_query: Vec<QueryMetrics>,
    /// Means over `per_query` (0 when no query was evaluated).
    pub ndcg_at_10: f64,
    pub recall_at_100: f64,
    pub mrr_at_10: f64,
    /// Judged queries with a relevant document that were never ranked; included in
    /// `per_query` with zeros. Sorted.
    pub not_ranked: Vec<String>,
    /// Ranked queries without qrels: excluded. Sorted.
    pub unjudged: Vec<String>,
    /// Judged queries without any relevant document (all grades ≤ 0): excluded. Sorted.
    pub without_relevant: Vec<String>,
}

impl Evaluation {
    /// The number of queries the means are over.
    pub fn queries(&self) -> usize {
        self.per_query.len()
    }
}

/// Collects rankings one query at a time (as the eval command runs them) and scores them.
#[derive(Debug)]
pub struct Evaluator<'q> {
    qrels: &'q Qrels,
    scored: BTreeMap<String, QueryMetrics>,
    ranked: HashSet<String>,
    unjudged: Vec<String>,
}

impl<'q> Evaluator<'q> {
    pub fn new(qrels: &'q Qrels) -> Self {
        Self {
            qrels,
            scored: BTreeMap::new(),
            ranked: HashSet::new(),
            unjudged: Vec::new(),
        }
    }

    /// Scores one query's ranking (document ids, best first). Returns its metrics, or `None`
    /// when the query is excluded (no qrels, or no relevant document). Ranking the same
    /// query twice is an error.
    pub fn add<D: AsRef<str>>(
        &mut self,
        query_id: &str,
        ranked: &[D],
    ) -> Result<Option<&QueryMetrics>, MetricsError> {
        if !self.ranked.insert(query_id.to_owned()) {
            return Err(MetricsError::DuplicateQuery {
                query_id: query_id.to_owned(),
            });
        }
        let Some(judgments) = self.qrels.judgments(query_id) else {
            self.unjudged.push(query_id.to_owned());
            return Ok(None);
        };
        let Some(metrics) = score(query_id, ranked, judgments) else {
            return Ok(None);
        };
        let entry = self.scored.entry(query_id.to_owned()).or_insert(metrics);
        Ok(Some(entry))
    }

    /// Scores the judged queries that were never ranked as empty rankings and averages.
    pub fn finish(mut self) -> Evaluation {
        let mut not_ranked = Vec::new();
        let mut without_relevant = Vec::new();
        for (query_id, judgments) in self.qrels.iter() {
            if !judgments.values().any(|&g| g > 0) {
                without_relevant.push(query_id.to_owned());
            } else if !self.ranked.contains(query_id)
                && let Some(metrics) = score::<&str>(query_id, &[], judgments)
            {
                not_ranked.push(query_id.to_owned());
                self.scored.insert(query_id.to_owned(), metrics);
            }
        }
        self.unjudged.sort();
        let per_query: Vec<QueryMetrics> = self.scored.into_values().collect();
        let mean = |f: fn(&QueryMetrics) -> f64| {
            if per_query.is_empty() {
                0.0
            } else {
                per_query.iter().map(f).sum::<f64>() / per_query.len() as f64
            }
        };
        Evaluation {
            ndcg_at_10: mean(|m| m.ndcg_at_10),
            recall_at_100: mean(|m| m.recall_at_100),
            mrr_at_10: mean(|m| m.mrr_at_10),
            per_query,
            not_ranked,
            unjudged: self.unjudged,
            without_relevant,
        }
    }
}

/// Evaluates a whole run: (query id, ranked document ids) pairs, e.g. a map of them.
pub fn evaluate<Q, R, D>(
    qrels: &Qrels,
    run: impl IntoIterator<Item = (Q, R)>,
) -> Result<Evaluation, MetricsError>
where
    Q: AsRef<str>,
    R: AsRef<[D]>,
    D: AsRef<str>,
{
    let mut evaluator = Evaluator::new(qrels);
    for (query_id, ranked) in run {
        evaluator.add(query_id.as_ref(), ranked.as_ref())?;
    }
    Ok(evaluator.finish())
}

fn score<D: AsRef<str>>(
    query_id: &str,
    ranked: &[D],
    judgments: &Judgments,
) -> Option<QueryMetrics> {
    Some(QueryMetrics {
        query_id: query_id.to_owned(),
        ndcg_at_10: ndcg_at_k(ranked, judgments, NDCG_K)?,
        recall_at_100: recall_at_k(ranked, judgments, RECALL_K)?,
        mrr_at_10: mrr_at_k(ranked, judgments, MRR_K)?,
    })
}

/// The grade of `doc` (0 if unjudged; negative grades count as 0).
fn grade(judgments: &Judgments, doc: &str) -> i32 {
    judgments.get(doc).copied().unwrap_or(0).max(0)
}

/// The discounted gain of `grade` at 0-based position `i`: grade / log2(i + 2).
fn gain(grade: i32, i: usize) -> f64 {
    f64::from(grade.max(0)) / ((i + 2) as f64).log2()
}

/// The first k distinct ids of `ranked`, in order.
fn top_k_unique<D: AsRef<str>>(ranked: &[D], k: usize) -> Vec<&str> {
    let mut seen = HashSet::new();
    ranked
        .iter()
        .map(AsRef::as_ref)
        .filter(|doc| seen.insert(*doc))
        .take(k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-9;

    fn judgments(pairs: &[(&str, i32)]) -> Judgments {
        pairs.iter().map(|(d, g)| ((*d).to_owned(), *g)).collect()
    }

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("metric defined");
        assert!(
            (actual - expected).abs() < EPS,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn perfect_ranking_scores_one() {
        let j = judgments(&[("d1", 2), ("d2", 1)]);
        close(ndcg_at_k(&["d1", "d2"], &j, 10), 1.0);
        close(recall_at_k(&["d1", "d2"], &j, 10), 1.0);
        close(mrr_at_k(&["d1", "d2"], &j, 10), 1.0);
    }

    #[test]
    fn graded_ranking_by_hand() {
        // Grades: d1 = 2, d2 = 1, d3 = 0 (judged not relevant). Ranking: d3, d1, x, d2.
        // DCG@10  = 0/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5)
        //         = 0 + 2/1.5849625 + 0 + 1/2.3219281 = 1.2618595 + 0.4306766 = 1.6925361
        // IDCG@10 = 2/log2(2) + 1/log2(3) = 2 + 0.6309298 = 2.6309298
        // nDCG@10 = 1.6925361 / 2.6309298 = 0.6433224
        let j = judgments(&[("d1", 2), ("d2", 1), ("d3", 0)]);
        let ranked = ["d3", "d1", "x", "d2"];
        close(ndcg_at_k(&ranked, &j, 10), 0.643_322_408_330_632_7);
        // nDCG@2: DCG = 2/log2(3) = 1.2618595; IDCG@2 is still 2.6309298 → 0.4796249
        close(
            ndcg_at_k(&ranked, &j, 2),
            (2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2()),
        );
        // Recall: 2 relevant (d1, d2; d3 has grade 0). Top 10 holds both → 1; top 2 holds d1 → 1/2.
        close(recall_at_k(&ranked, &j, 10), 1.0);
        close(recall_at_k(&ranked, &j, 2), 0.5);
        close(recall_at_k(&ranked, &j, 3), 0.5);
        // MRR: d3 (grade 0) is not relevant; the first relevant is d1 at rank 2 → 1/2.
        close(mrr_at_k(&ranked, &j, 10), 0.5);
        // Within the top 1 there is no relevant document → 0.
        close(mrr_at_k(&ranked, &j, 1), 0.0);
    }

    #[test]
    fn no_relevant_retrieved_scores_zero() {
        // Relevant d1 exists in the qrels but was not retrieved: DCG = 0, recall 0/1, RR 0.
        let j = judgments(&[("d1", 1)]);
        let ranked = ["x", "y", "z"];
        close(ndcg_at_k(&ranked, &j, 10), 0.0);
        close(recall_at_k(&ranked, &j, 100), 0.0);
        close(mrr_at_k(&ranked, &j, 10), 0.0);
        // Nothing retrieved at all: the same.
        let empty: [&str; 0] = [];
        close(ndcg_at_k(&empty, &j, 10), 0.0);
        close(recall_at_k(&empty, &j, 100), 0.0);
        close(mrr_at_k(&empty, &j, 10), 0.0);
    }

    #[test]
    fn fewer_than_k_retrieved() {
        // Grades d1 = 2, d2 = 1, d4 = 3, d5 = 1; only two documents retrieved: d2, d1.
        // DCG@10  = 1/log2(2) + 2/log2(3) = 1 + 1.2618595 = 2.2618595
        // IDCG@10 = 3/log2(2) + 2/log2(3) + 1/log2(4) + 1/log2(5)
        //         = 3 + 1.2618595 + 0.5 + 0.4306766 = 5.1925361
        // nDCG@10 = 2.2618595 / 5.1925361 = 0.4355983
        let j = judgments(&[("d1", 2), ("d2", 1), ("d4", 3), ("d5", 1)]);
        let ranked = ["d2", "d1"];
        let expected =
            (1.0 + 2.0 / 3f64.log2()) / (3.0 + 2.0 / 3f64.log2() + 0.5 + 1.0 / 5f64.log2());
        assert!((expected - 0.435_598_3).abs() < 1e-7);
        close(ndcg_at_k(&ranked, &j, 10), expected);
        // Recall@100 = 2 of 4 relevant = 0.5; MRR@10 = 1/1 (d2 is relevant).
        close(recall_at_k(&ranked, &j, 100), 0.5);
        close(mrr_at_k(&ranked, &j, 10), 1.0);
    }

    #[test]
    fn duplicates_count_once_and_take_no_place() {
        // x, d1, x, d1, d2 → distinct: x, d1, d2. Grades d1 = 1, d2 = 1.
        // nDCG@3: DCG = 0 + 1/log2(3) + 1/log2(4) = 0.6309298 + 0.5 = 1.1309298
        //         IDCG = 1 + 1/log2(3) = 1.6309298 → 0.6934264
        // Without de-duplication the top 3 would be x, d1, x: d2 would fall out.
        let j = judgments(&[("d1", 1), ("d2", 1)]);
        let ranked = ["x", "d1", "x", "d1", "d2"];
        close(ndcg_at_k(&ranked, &j, 3), 0.693_426_403_617_270_8);
        close(recall_at_k(&ranked, &j, 3), 1.0);
        // d1 twice is still one of two relevant documents: recall 1/2, not 2/2.
        close(recall_at_k(&["d1", "d1"], &j, 10), 0.5);
        // And gains are not counted twice: DCG = 1/log2(2) = 1, IDCG = 1.6309298 → 0.6131472
        close(
            ndcg_at_k(&["d1", "d1"], &j, 10),
            1.0 / (1.0 + 1.0 / 3f64.log2()),
        );
    }

    #[test]
    fn ties() {
        // Equal scores are broken by ascending document id; higher scores come first.
        let ranking = ranking_from_scores([("b", 0.5f32), ("a", 0.5), ("c", 0.9), ("d", f32::NAN)]);
        assert_eq!(ranking, ["c", "a", "b", "d"]);
        // Two documents of equal grade are interchangeable: the ideal DCG is the same
        // whichever comes first, so both orders score 1.
        let j = judgments(&[("a", 1), ("b", 1)]);
        close(ndcg_at_k(&["a", "b"], &j, 10), 1.0);
        close(ndcg_at_k(&["b", "a"], &j, 10), 1.0);
    }

    #[test]
    fn undefined_metrics() {
        // No judgments, only non-relevant judgments, or k = 0: there is nothing to normalise by.
        let none = judgments(&[]);
        let zero = judgments(&[("d1", 0), ("d2", -1)]);
        for j in [&none, &zero] {
            assert_eq!(ndcg_at_k(&["d1"], j, 10), None);
            assert_eq!(recall_at_k(&["d1"], j, 10), None);
            assert_eq!(mrr_at_k(&["d1"], j, 10), None);
        }
        assert_eq!(ndcg_at_k(&["d1"], &judgments(&[("d1", 1)]), 0), None);
    }

    #[test]
    fn negative_grades_count_as_zero() {
        // d1 = -1 (judged harmful), d2 = 1. Ranking d1, d2.
        // DCG = max(-1,0)/1 + 1/log2(3) = 0.6309298; IDCG = 1 → 0.6309298. MRR: d1 is not
        // relevant → 1/2.
        let j = judgments(&[("d1", -1), ("d2", 1)]);
        close(ndcg_at_k(&["d1", "d2"], &j, 10), 1.0 / 3f64.log2());
        close(mrr_at_k(&["d1", "d2"], &j, 10), 0.5);
        close(recall_at_k(&["d1", "d2"], &j, 10), 1.0);
    }

    #[test]
    fn averages_exclude_queries_without_qrels() {
        let qrels: Qrels = [
            ("q1", "d1", 1),
            ("q2", "d2", 1),
            ("q2", "d3", 1),
            ("q3", "d9", 0), // judged, nothing relevant: excluded
            ("q4", "d4", 1), // never ranked: counts as zeros
        ]
        .into_iter()
        .collect();
        let run = BTreeMap::from([
            ("q1", vec!["d1"]),       // nDCG 1, R 1, RR 1
            ("q2", vec!["x", "d3"]),  // see below
            ("q3", vec!["d9"]),       // excluded: no relevant document
            ("q5", vec!["d1", "d2"]), // excluded: no qrels at all
        ]);
        let eval = evaluate(&qrels, &run).unwrap();
        // q2: DCG@10 = 1/log2(3) = 0.6309298; IDCG@10 = 1 + 1/log2(3) = 1.6309298
        //     nDCG = 0.3868528; Recall@100 = 1/2; RR = 1/2.
        let q2_ndcg = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        // Means over q1, q2, q4 (3 queries):
        //   nDCG   = (1 + 0.3868528 + 0) / 3 = 0.4622843
        //   Recall = (1 + 0.5 + 0) / 3 = 0.5
        //   MRR    = (1 + 0.5 + 0) / 3 = 0.5
        assert_eq!(eval.queries(), 3);
        close(Some(eval.ndcg_at_10), (1.0 + q2_ndcg) / 3.0);
        assert!((eval.ndcg_at_10 - 0.462_284_3).abs() < 1e-7);
        close(Some(eval.recall_at_100), 0.5);
        close(Some(eval.mrr_at_10), 0.5);
        assert_eq!(eval.not_ranked, ["q4"]);
        assert_eq!(eval.unjudged, ["q5"]);
        assert_eq!(eval.without_relevant, ["q3"]);
        let ids: Vec<&str> = eval.per_query.iter().map(|m| m.query_id.as_str()).collect();
        assert_eq!(ids, ["q1", "q2", "q4"]);
    }

    #[test]
    fn evaluator_rejects_a_query_ranked_twice_and_handles_empty_runs() {
        let qrels: Qrels = [("q1", "d1", 1)].into_iter().collect();
        let mut evaluator = Evaluator::new(&qrels);
        let m = evaluator.add("q1", &["d1"]).unwrap().unwrap().clone();
        assert_eq!(m.mrr_at_10, 1.0);
        assert_eq!(evaluator.add("nope", &["d1"]).unwrap(), None);
        assert_eq!(
            evaluator.add("q1", &["d1"]).unwrap_err(),
            MetricsError::DuplicateQuery {
                query_id: "q1".into()
            }
        );
        assert_eq!(evaluator.finish().queries(), 1);

        let empty = evaluate(&Qrels::new(), BTreeMap::<String, Vec<String>>::new()).unwrap();
        assert_eq!(empty.queries(), 0);
        assert_eq!(empty.ndcg_at_10, 0.0);
    }
}
