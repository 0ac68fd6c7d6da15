//! Answer metrics: deterministic scores of one answer against its gold answers and gold
//! passage, and their averages over a run ([`AnswersReport`]).
//!
//! Text is compared after SQuAD's normalisation ([`normalize`]): lower case, ASCII
//! punctuation deleted, the articles `a`, `an`, `the` dropped, whitespace collapsed. Citation
//! marks (`[1]`, `[2, 3]`) are removed from an answer first: they are not its words.
//!
//! Per question ([`score`]):
//!
//! * **contains gold**: some gold answer's normalised text is a substring of the answer's
//!   normalised text (the "answer contained" accuracy of NQ-Open evaluations; lenient: `5` is
//!   found in `1950`);
//! * **token F1**: SQuAD's bag-of-tokens F1, the best over the gold answers;
//! * **gold cited** (context recall): the gold passage is among the answer's citations;
//! * **citation precision**: the share of the answer's citations that support it, a cited
//!   passage supporting when it is the gold passage or contains a gold answer (undefined
//!   without citations);
//! * **abstained**: the answer says "I don't know" (or cites nothing).
//!
//! Over a run ([`AnswerEvaluator`]), the answer metrics average over the *answerable*
//! questions (their passage was ingested); the "I don't know" rate is reported both on the
//! questions whose passage was held out (higher is better) and on the answerable ones (lower
//! is better). An average over no question is `None` (`null` in JSON), never 0.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::judge::Verdict;
use crate::report::LatencyMs;

/// SQuAD's `normalize_answer`: lower case, ASCII punctuation deleted (not replaced: `1,000`
/// becomes `1000`, `Eminem's` becomes `eminems`), the articles `a`, `an`, `the` removed where
/// they are whole words (runs of letters and digits, as Python's `\b` sees them), whitespace
/// collapsed.
pub fn normalize(text: &str) -> String {
    let lower: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    let mut out = String::with_capacity(lower.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if matches!(word.as_str(), "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in lower.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The normalised words of `text`.
pub fn tokens(text: &str) -> Vec<String> {
    normalize(text)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `text` without its citation marks: `[1]`, `[2][3]`, `[1, 4]`. Other brackets stay.
pub fn strip_citations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let mark = after.find(']').filter(|&close| {
            let inside = &after[..close];
            !inside.trim().is_empty()
                && inside
                    .split(',')
                    .all(|n| !n.trim().is_empty() && n.trim().chars().all(|c| c.is_ascii_digit()))
        });
        match mark {
            Some(close) => rest = &after[close + 1..],
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether some gold answer, normalised, is a substring of the answer, normalised: the
/// "answer contained" accuracy of NQ-Open evaluations (as the `hasanswer` flags of the
/// NQ-Open oracle set were computed). Lenient by design: `5` is found in `1950`. A gold answer
/// that normalises to nothing never matches.
pub fn contains_answer(answer: &str, golds: &[String]) -> bool {
    let have = normalize(&strip_citations(answer));
    golds.iter().any(|gold| {
        let want = normalize(gold);
        !want.is_empty() && have.contains(&want)
    })
}

/// SQuAD's token F1 against the best-matching gold answer: precision and recall of the
/// multiset of common tokens. 0 when either side has no token.
pub fn token_f1(answer: &str, golds: &[String]) -> f64 {
    let have = tokens(&strip_citations(answer));
    golds
        .iter()
        .map(|gold| f1(&have, &tokens(gold)))
        .fold(0.0, f64::max)
}

fn f1(prediction: &[String], gold: &[String]) -> f64 {
    if prediction.is_empty() || gold.is_empty() {
        return 0.0;
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in gold {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let mut common = 0usize;
    for t in prediction {
        if let Some(n) = counts.get_mut(t.as_str())
            && *n > 0
        {
            *n -= 1;
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / prediction.len() as f64;
    let recall = common as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Whether an answer declines: it cites nothing, or it opens with "I don't know" (the
/// extractive answerer's and the prompts' wording; straight or curly apostrophe).
pub fn is_dont_know(answer: &str, citations: usize) -> bool {
    let opening: String = answer
        .trim_start()
        .chars()
        .take(16)
        .collect::<String>()
        .to_lowercase()
        .replace('\u{2019}', "'");
    citations == 0 || opening.starts_with("i don't know") || opening.starts_with("i do not know")
}

/// One citation of an answer, as the evaluation sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CitedPassage {
    /// The number the answer cites it by.
    pub number: u32,
    /// The dataset passage the cited document is (`None`: not one of the dataset's).
    pub passage: Option<String>,
    pub title: String,
    /// It is the question's gold passage.
    pub gold: bool,
    /// It is the gold passage or contains a gold answer.
    pub supports: bool,
}

impl CitedPassage {
    /// A citation of `passage` (its id and text, when it is a dataset passage) for a
    /// question whose gold passage is `gold_id` and gold answers `golds`.
    pub fn new(
        number: u32,
        title: &str,
        passage: Option<(&str, &str)>,
        gold_id: &str,
        golds: &[String],
    ) -> Self {
        let gold = passage.is_some_and(|(id, _)| id == gold_id);
        let supports = gold || passage.is_some_and(|(_, text)| contains_answer(text, golds));
        Self {
            number,
            passage: passage.map(|(id, _)| id.to_owned()),
            title: title.to_owned(),
            gold,
            supports,
        }
    }
}

/// The deterministic scores of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub contains_gold: bool,
    pub f1: f64,
    pub abstained: bool,
    /// The gold passage is cited.
    pub gold_cited: bool,
    /// `None` without citations.
    pub citation_precision: Option<f64>,
}

/// Scores `answer` (as the system wrote it, citation marks included) against the gold
/// answers, given its citations.
pub fn score(answer: &str, golds: &[String], citations: &[CitedPassage]) -> Scores {
    let supporting = citations.iter().filter(|c| c.supports).count();
    Scores {
        contains_gold: contains_answer(answer, golds),
        f1: token_f1(answer, golds),
        abstained: is_dont_know(answer, citations.len()),
        gold_cited: citations.iter().any(|c| c.gold),
        citation_precision: (!citations.is_empty())
            .then(|| supporting as f64 / citations.len() as f64),
    }
}

/// What the judge said about one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeOutcome {
    Scored(Verdict),
    /// The judge could not be asked, or its reply was not a valid verdict.
    Failed(String),
}

/// Everything about one question of a run: what `--json` details files hold, one per line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionResult {
    /// Position in the dataset file, from 0.
    pub index: usize,
    pub question: String,
    pub gold_answers: Vec<String>,
    pub gold_passage: String,
    /// Its gold passage was left out of the corpus.
    pub held_out: bool,
    pub answer: String,
    pub citations: Vec<CitedPassage>,
    pub scores: Scores,
    pub model: String,
    pub tier: String,
    pub prompt_version: String,
    pub latency_ms: f64,
    /// `None` when no judge ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeOutcome>,
}

#[derive(Debug, Default)]
struct Mean {
    sum: f64,
    n: usize,
}

impl Mean {
    fn add(&mut self, x: f64) {
        self.sum += x;
        self.n += 1;
    }

    fn get(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Accumulates [`QuestionResult`]s into an [`AnswersReport`].
#[derive(Debug, Default)]
pub struct AnswerEvaluator {
    questions: usize,
    contains_gold: Mean,
    f1: Mean,
    context_recall: Mean,
    citation_precision: Mean,
    idk_held_out: Mean,
    idk_answerable: Mean,
    faithfulness: Mean,
    relevance: Mean,
    judge_failures: usize,
}

impl AnswerEvaluator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, result: &QuestionResult) {
        let s = &result.scores;
        self.questions += 1;
        if result.held_out {
            self.idk_held_out.add(flag(s.abstained));
        } else {
            self.contains_gold.add(flag(s.contains_gold));
            self.f1.add(s.f1);
            self.context_recall.add(flag(s.gold_cited));
            if let Some(p) = s.citation_precision {
                self.citation_precision.add(p);
            }
            self.idk_answerable.add(flag(s.abstained));
        }
        match &result.judge {
            Some(JudgeOutcome::Scored(v)) => {
                self.faithfulness.add(f64::from(v.faithfulness));
                self.relevance.add(f64::from(v.relevance));
            }
            Some(JudgeOutcome::Failed(_)) => self.judge_failures += 1,
            None => {}
        }
    }

    pub fn finish(
        self,
        passages: usize,
        latency_ms: LatencyMs,
        params: BTreeMap<String, String>,
    ) -> AnswersReport {
        let judged = self.faithfulness.n;
        AnswersReport {
            questions: self.questions,
            answerable: self.contains_gold.n,
            held_out: self.idk_held_out.n,
            passages,
            contains_gold: self.contains_gold.get(),
            f1: self.f1.get(),
            context_recall: self.context_recall.get(),
            citation_precision: self.citation_precision.get(),
            cited_questions: self.citation_precision.n,
            idk_rate_held_out: self.idk_held_out.get(),
            idk_rate_answerable: self.idk_answerable.get(),
            judge: (judged + self.judge_failures > 0).then(|| JudgeSummary {
                faithfulness: self.faithfulness.get(),
                relevance: self.relevance.get(),
                judged,
                failed: self.judge_failures,
            }),
            latency_ms,
            params,
        }
    }
}

/// The judge's averages over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeSummary {
    /// Mean faithfulness (1–5) of the answers the judge scored.
    pub faithfulness: Option<f64>,
    /// Mean relevance (1–5).
    pub relevance: Option<f64>,
    pub judged: usize,
    /// Answers the judge could not score (no reply, or not a valid verdict).
    pub failed: usize,
}

/// The result of one answer-evaluation run; `to_json_line` is what `--json` prints last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswersReport {
    pub questions: usize,
    /// Questions whose gold passage was ingested.
    pub answerable: usize,
    /// Questions whose gold passage was held out.
    pub held_out: usize,
    /// Passages in the corpus.
    pub passages: usize,
    pub contains_gold: Option<f64>,
    pub f1: Option<f64>,
    pub context_recall: Option<f64>,
    pub citation_precision: Option<f64>,
    /// Answerable questions whose answer cites something (citation precision averages these).
    pub cited_questions: usize,
    pub idk_rate_held_out: Option<f64>,
    pub idk_rate_answerable: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeSummary>,
    pub latency_ms: LatencyMs,
    pub params: BTreeMap<String, String>,
}

impl AnswersReport {
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// The figures an experiment record stores: every defined average and the counts.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                m.insert(k.to_owned(), v);
            }
        };
        put("contains_gold", self.contains_gold);
        put("f1", self.f1);
        put("context_recall", self.context_recall);
        put("citation_precision", self.citation_precision);
        put("idk_rate_held_out", self.idk_rate_held_out);
        put("idk_rate_answerable", self.idk_rate_answerable);
        put("questions", Some(self.questions as f64));
        put("answerable", Some(self.answerable as f64));
        put("held_out", Some(self.held_out as f64));
        put("passages", Some(self.passages as f64));
        put("cited_questions", Some(self.cited_questions as f64));
        put("latency_p50_ms", Some(self.latency_ms.p50));
        put("latency_p95_ms", Some(self.latency_ms.p95));
        put("latency_p99_ms", Some(self.latency_ms.p99));
        if let Some(j) = &self.judge {
            put("judge_faithfulness", j.faithfulness);
            put("judge_relevance", j.relevance);
            put("judge_judged", Some(j.judged as f64));
            put("judge_failed", Some(j.failed as f64));
        }
        m
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"))
}

impl fmt::Display for AnswersReport {
    /// A Markdown table: metric, value, and what it averages over.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<(String, String, String)> = vec![
            (
                "answer contains gold".into(),
                cell(self.contains_gold),
                format!("{} answerable", self.answerable),
            ),
            (
                "token F1".into(),
                cell(self.f1),
                format!("{} answerable", self.answerable),
            ),
            (
                "context recall (gold passage cited)".into(),
                cell(self.context_recall),
                format!("{} answerable", self.answerable),
            ),
            (
                "citation precision".into(),
                cell(self.citation_precision),
                format!("{} answers with citations", self.cited_questions),
            ),
            (
                "\"I don't know\" rate, passage held out".into(),
                cell(self.idk_rate_held_out),
                format!("{} held out", self.held_out),
            ),
            (
                "\"I don't know\" rate, answerable".into(),
                cell(self.idk_rate_answerable),
                format!("{} answerable", self.answerable),
            ),
        ];
        if let Some(j) = &self.judge {
            let over = format!("{} judged, {} failed", j.judged, j.failed);
            rows.push((
                "judge faithfulness (1-5)".into(),
                cell(j.faithfulness),
                over.clone(),
            ));
            rows.push(("judge relevance (1-5)".into(), cell(j.relevance), over));
        }
        rows.push((
            "latency p50 / p95 / p99 ms".into(),
            format!(
                "{:.1} / {:.1} / {:.1}",
                self.latency_ms.p50, self.latency_ms.p95, self.latency_ms.p99
            ),
            format!("{} questions", self.questions),
        ));
        let w0 = rows
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(6)
            .max(6);
        let w1 = rows
            .iter()
            .map(|r| r.1.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let w2 = rows
            .iter()
            .map(|r| r.2.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "| {:<w0$} | {:>w1$} | {:<w2$} |",
            "metric", "value", "over"
        )?;
        writeln!(
            f,
            "|{}|{}:|{}|",
            "-".repeat(w0 + 2),
            "-".repeat(w1 + 1),
            "-".repeat(w2 + 2)
        )?;
        for (name, value, over) in &rows {
            writeln!(f, "| {name:<w0$} | {value:>w1$} | {over:<w2$} |")?;
        }
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !params.is_empty() {
            writeln!(
                f,
                "\n{} passages in the corpus; {}",
                self.passages,
                params.join(" ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golds(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn normalises_like_squad() {
        assert_eq!(normalize("The  Beatles!"), "beatles");
        assert_eq!(normalize("a cat, an owl and THE dog."), "cat owl and dog");
        assert_eq!(normalize("1,000 U.S. dollars"), "1000 us dollars");
        assert_eq!(
            normalize("Wilhelm Conrad Röntgen"),
            "wilhelm conrad röntgen"
        );
        // Articles go only as whole words; "theatre" and "another" stay. A dash that is not
        // ASCII punctuation stays, and bounds words.
        assert_eq!(normalize("another theatre"), "another theatre");
        assert_eq!(
            normalize("narrator\u{2014}the Orwell"),
            "narrator\u{2014} orwell"
        );
        assert_eq!(normalize("Eminem's"), "eminems");
        assert_eq!(normalize(" \t"), "");
    }

    #[test]
    fn citation_marks_are_not_words() {
        assert_eq!(
            strip_citations("It was 1901 [1]. Yes [2][3]."),
            "It was 1901 . Yes ."
        );
        assert_eq!(
            strip_citations("See [1, 4] and [x] or [ ]"),
            "See  and [x] or [ ]"
        );
        assert_eq!(strip_citations("open [ 12 ] close ["), "open  close [");
    }

    #[test]
    fn contains_gold_as_nq_open_scores_it() {
        let g = golds(&["Wilhelm Conrad Röntgen", "Röntgen"]);
        assert!(contains_answer(
            "It went to Wilhelm Conrad Röntgen [1].",
            &g
        ));
        assert!(contains_answer("röntgen, of germany", &g));
        assert!(!contains_answer("Conrad won it", &g));
        // Substrings count, as in the standard scoring: "5" is in "1950".
        assert!(contains_answer("in 1950", &golds(&["5"])));
        assert!(contains_answer(
            "Wilhelm Conrad Röntgen's prize",
            &golds(&["Röntgen"])
        ));
        assert!(contains_answer("In 1,000 BC.", &golds(&["1000 BC"])));
        assert!(contains_answer("the The Who played", &golds(&["The Who"])));
        // The citation number is not an answer.
        assert!(!contains_answer("Nobody knows [1].", &golds(&["1"])));
        assert!(!contains_answer("anything", &golds(&["the", "..."])));
    }

    #[test]
    fn token_f1_by_hand() {
        // prediction "wilhelm conrad röntgen germany" (4), gold "wilhelm conrad röntgen" (3):
        // common 3, P = 3/4, R = 1, F1 = 2·0.75/1.75 = 6/7.
        let f = token_f1(
            "Wilhelm Conrad Röntgen, Germany [1]",
            &golds(&["Wilhelm Conrad Röntgen"]),
        );
        assert!((f - 6.0 / 7.0).abs() < 1e-12, "{f}");
        // The best gold wins: "röntgen" alone gives P = 1/4, R = 1, F1 = 0.4.
        let f = token_f1(
            "Wilhelm Conrad Röntgen Germany",
            &golds(&["Röntgen", "Max Planck"]),
        );
        assert!((f - 0.4).abs() < 1e-12, "{f}");
        // Repeated tokens count once per occurrence in both: pred "a b b c" (articles: "a"
        // goes) → "b b c"; gold "b c c" → common {b:1, c:1} = 2, P = 2/3, R = 2/3.
        let f = token_f1("a b b c", &golds(&["b c c"]));
        assert!((f - 2.0 / 3.0).abs() < 1e-12, "{f}");
        assert_eq!(token_f1("", &golds(&["x"])), 0.0);
        assert_eq!(token_f1("x y", &golds(&["z"])), 0.0);
        assert_eq!(token_f1("1901", &golds(&["1901"])), 1.0);
    }

    #[test]
    fn dont_know_is_recognised() {
        assert!(is_dont_know(
            "I don't know: the documents I can search do not answer this question.",
            0
        ));
        assert!(is_dont_know(
            "I don\u{2019}t know based on the provided documents.",
            0
        ));
        assert!(is_dont_know("I don't know, but [1] mentions it.", 1));
        assert!(is_dont_know("Paris is the capital.", 0), "nothing cited");
        assert!(!is_dont_know("Paris is the capital [1].", 1));
    }

    fn cited(number: u32, passage: Option<(&str, &str)>, g: &[String]) -> CitedPassage {
        CitedPassage::new(number, "t", passage, "gold", g)
    }

    #[test]
    fn scores_by_hand() {
        let g = golds(&["May 18, 2018"]);
        let citations = vec![
            cited(1, Some(("gold", "Deadpool 2 is out on May 18, 2018.")), &g),
            cited(
                2,
                Some(("other", "It was announced on May 18, 2018 too.")),
                &g,
            ),
            cited(3, Some(("third", "Unrelated text.")), &g),
            cited(4, None, &g),
        ];
        assert!(citations[0].gold && citations[0].supports);
        assert!(!citations[1].gold && citations[1].supports);
        assert!(!citations[2].supports && !citations[3].supports);
        let s = score("It is out on May 18, 2018 [1][2][3][4].", &g, &citations);
        assert!(s.contains_gold && s.gold_cited && !s.abstained);
        assert_eq!(s.citation_precision, Some(0.5));
        // "it is out on may 18 2018" (7) vs "may 18 2018" (3): P = 3/7, R = 1, F1 = 0.6.
        assert!((s.f1 - 0.6).abs() < 1e-12, "{}", s.f1);

        let none = score("I don't know.", &g, &[]);
        assert!(none.abstained && !none.gold_cited && !none.contains_gold);
        assert_eq!(none.citation_precision, None);
    }

    fn result(held_out: bool, scores: Scores, judge: Option<JudgeOutcome>) -> QuestionResult {
        QuestionResult {
            index: 0,
            question: "q".into(),
            gold_answers: golds(&["a"]),
            gold_passage: "p".into(),
            held_out,
            answer: String::new(),
            citations: Vec::new(),
            scores,
            model: "extractive-v1".into(),
            tier: "light".into(),
            prompt_version: "extractive".into(),
            latency_ms: 1.0,
            judge,
        }
    }

    fn scores(contains: bool, f1: f64, cited: bool, precision: Option<f64>, idk: bool) -> Scores {
        Scores {
            contains_gold: contains,
            f1,
            abstained: idk,
            gold_cited: cited,
            citation_precision: precision,
        }
    }

    fn verdict(faithfulness: u8, relevance: u8) -> JudgeOutcome {
        JudgeOutcome::Scored(Verdict {
            faithfulness,
            faithfulness_reason: "f".into(),
            relevance,
            relevance_reason: "r".into(),
        })
    }

    #[test]
    fn averages_by_hand() {
        let mut e = AnswerEvaluator::new();
        // Answerable: contains 1,0,1 → 2/3; F1 (1 + 0.5 + 0)/3 = 0.5; cited 1,0,0 → 1/3;
        // precision over the two with citations (1 + 0)/2 = 0.5; abstained 0,0,1 → 1/3.
        e.add(&result(
            false,
            scores(true, 1.0, true, Some(1.0), false),
            Some(verdict(5, 4)),
        ));
        e.add(&result(
            false,
            scores(false, 0.5, false, Some(0.0), false),
            Some(verdict(2, 3)),
        ));
        e.add(&result(
            false,
            scores(true, 0.0, false, None, true),
            Some(JudgeOutcome::Failed("x".into())),
        ));
        // Held out: abstained 1, 0 → 0.5; their answer scores do not count.
        e.add(&result(
            true,
            scores(true, 1.0, true, Some(1.0), true),
            None,
        ));
        e.add(&result(
            true,
            scores(true, 1.0, true, Some(1.0), false),
            None,
        ));
        let r = e.finish(9, LatencyMs::default(), BTreeMap::new());
        assert_eq!(
            (r.questions, r.answerable, r.held_out, r.passages),
            (5, 3, 2, 9)
        );
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-12);
        assert!(close(r.contains_gold, 2.0 / 3.0), "{:?}", r.contains_gold);
        assert!(close(r.f1, 0.5));
        assert!(close(r.context_recall, 1.0 / 3.0));
        assert!(close(r.citation_precision, 0.5));
        assert_eq!(r.cited_questions, 2);
        assert!(close(r.idk_rate_answerable, 1.0 / 3.0));
        assert!(close(r.idk_rate_held_out, 0.5));
        let j = r.judge.clone().unwrap();
        assert_eq!((j.judged, j.failed), (2, 1));
        assert!(close(j.faithfulness, 3.5) && close(j.relevance, 3.5));

        let m = r.metrics();
        assert_eq!(m["questions"], 5.0);
        assert_eq!(m["judge_failed"], 1.0);
        assert!((m["idk_rate_held_out"] - 0.5).abs() < 1e-12);
        let json: serde_json::Value = serde_json::from_str(&r.to_json_line().unwrap()).unwrap();
        assert_eq!(json["held_out"], 2);
        assert_eq!(json["judge"]["judged"], 2);
        let table = r.to_string();
        assert!(table.contains("| answer contains gold"), "{table}");
        assert!(table.contains("0.6667"), "{table}");
        assert!(table.contains("judge faithfulness (1-5)"), "{table}");
    }

    #[test]
    fn empty_groups_are_undefined_not_zero() {
        let mut e = AnswerEvaluator::new();
        e.add(&result(false, scores(false, 0.0, false, None, true), None));
        let r = e.finish(1, LatencyMs::default(), BTreeMap::new());
        assert_eq!(r.idk_rate_held_out, None);
        assert_eq!(r.citation_precision, None);
        assert_eq!(r.judge, None);
        assert!(!r.metrics().contains_key("idk_rate_held_out"));
        assert!(!r.metrics().contains_key("judge_faithfulness"));
        let json: serde_json::Value = serde_json::from_str(&r.to_json_line().unwrap()).unwrap();
        assert!(json["idk_rate_held_out"].is_null());
        assert!(r.to_string().contains("n/a"));
    }
}
