//! Text analysis and query construction.
//!
//! Documents and queries go through the same English analyzer:
//! `SimpleTokenizer` (splits on every non-alphanumeric character, so `ERR-4102` becomes
//! `err` + `4102` at consecutive positions and emojis vanish) → `RemoveLongFilter` (tokens
//! over [`MAX_TOKEN_BYTES`] bytes are dropped: base64 blobs, hashes) → `LowerCaser` →
//! `StopWordFilter` (Lucene's 33 English stop words) → `Stemmer` (Snowball English, so
//! `policies` and `policy` both become `polici`).
//!
//! There is no query syntax. A user's question is analysed into terms and the query is
//! "any of these terms, in any of title / section / body", scored by BM25 (tantivy's k1 = 1.2,
//! b = 0.75) and summed over terms and fields, with per-field weights:
//!
//! - body: [`BODY_WEIGHT`] = 1.0.
//! - title: [`TITLE_WEIGHT`] = 0.5. The title is repeated on every chunk of a document, so it
//!   says which document is relevant but not which chunk answers. Title fields are also very
//!   short, and BM25's length normalisation already scores one title hit about as high as one
//!   body hit in a 150-word chunk; at full weight a title match would lift every chunk of that
//!   document to the level of the chunk that actually contains the words. Half weight keeps
//!   it a tie-breaker in favour of the right document without drowning the body.
//! - section: [`SECTION_WEIGHT`] = 0.5, for the same reason (a heading is shared by the few
//!   chunks under it).
//!
//! On top of the term clauses, each whitespace-separated word of the query that analyses into
//! several tokens (`ERR-4102`, `v2.3.1`, `e-mail`, `state-of-the-art`) and each `"quoted"`
//! part becomes an optional phrase clause (weight [`PHRASE_WEIGHT`] times the field weight),
//! so the chunk with the exact code outranks a chunk that has `ERR` and `4102` in unrelated
//! places. Phrases only add score; they never exclude a chunk.
//!
//! Bounds: at most [`MAX_QUERY_TERMS`] distinct terms (first occurrences win) and
//! [`MAX_PHRASES`] phrases of at most [`MAX_PHRASE_TERMS`] terms, so a pasted 10 kB log line
//! costs the same as a long question.

use tantivy::Term;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

use crate::KeywordIndexError;

/// The name the analyzer is registered under in the index's tokenizer manager.
pub const ANALYZER_NAME: &str = "rag_en";
/// Tokens longer than this (in bytes) are dropped at index and query time.
pub const MAX_TOKEN_BYTES: usize = 40;
/// Relative weight of a match in the chunk text.
pub const BODY_WEIGHT: f32 = 1.0;
/// Relative weight of a match in the document title (see the module docs).
pub const TITLE_WEIGHT: f32 = 0.5;
/// Relative weight of a match in the section heading.
pub const SECTION_WEIGHT: f32 = 0.5;
/// Extra weight of an exact multi-token match (`ERR-4102`, a quoted phrase), per field.
pub const PHRASE_WEIGHT: f32 = 1.0;
/// At most this many distinct query terms are used.
pub const MAX_QUERY_TERMS: usize = 128;
/// At most this many phrase clauses are built from one query.
pub const MAX_PHRASES: usize = 16;
/// A phrase longer than this is cut to its first terms.
pub const MAX_PHRASE_TERMS: usize = 16;

/// The English analyzer used for titles, sections, bodies and queries.
pub fn english_analyzer() -> Result<TextAnalyzer, KeywordIndexError> {
    let stop_words = StopWordFilter::new(Language::English).ok_or_else(|| {
        KeywordIndexError::Analyzer(
            "no English stop-word list (tantivy feature `stopwords`)".into(),
        )
    })?;
    Ok(TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(stop_words)
        .filter(Stemmer::new(Language::English))
        .build())
}

/// The terms `text` analyses into, in order, with their positions.
pub fn analyze(analyzer: &TextAnalyzer, text: &str) -> Vec<(usize, String)> {
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push((token.position, token.text.clone()));
    }
    out
}

/// The searchable text fields and their weights.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TextFields {
    pub title: Field,
    pub section: Field,
    pub body: Field,
}

impl TextFields {
    fn weighted(&self) -> [(Field, f32); 3] {
        [
            (self.body, BODY_WEIGHT),
            (self.title, TITLE_WEIGHT),
            (self.section, SECTION_WEIGHT),
        ]
    }
}

/// What a user query analyses into.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct QueryPlan {
    /// Distinct terms, in order of first occurrence.
    pub terms: Vec<String>,
    /// Multi-term phrases as (offset, term), offsets starting at 0.
    pub phrases: Vec<Vec<(usize, String)>>,
}

impl QueryPlan {
    pub fn new(analyzer: &TextAnalyzer, query: &str) -> Self {
        let mut plan = Self::default();
        for (_, term) in analyze(analyzer, query) {
            if plan.terms.len() >= MAX_QUERY_TERMS {
                break;
            }
            if !plan.terms.contains(&term) {
                plan.terms.push(term);
            }
        }
        if plan.terms.is_empty() {
            return plan;
        }
        // Quoted parts: the odd pieces between '"'. An unbalanced last quote runs to the end.
        let quoted = query.split('"').skip(1).step_by(2);
        let words = query.split_whitespace();
        for candidate in quoted.chain(words) {
            if plan.phrases.len() >= MAX_PHRASES {
                break;
            }
            let mut tokens = analyze(analyzer, candidate);
            tokens.truncate(MAX_PHRASE_TERMS);
            let Some(first) = tokens.first().map(|(p, _)| *p) else {
                continue;
            };
            if tokens.len() < 2 {
                continue;
            }
            let phrase: Vec<(usize, String)> = tokens
                .into_iter()
                .map(|(p, t)| (p.saturating_sub(first), t))
                .collect();
            if !plan.phrases.contains(&phrase) {
                plan.phrases.push(phrase);
            }
        }
        plan
    }

    /// The scoring query: any term in any field, plus the phrase bonuses. `None` when the
    /// query has no terms.
    pub fn to_query(&self, fields: &TextFields) -> Option<Box<dyn Query>> {
        if self.terms.is_empty() {
            return None;
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, weight) in fields.weighted() {
            for term in &self.terms {
                let query = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((Occur::Should, weighted(Box::new(query), weight)));
            }
            for phrase in &self.phrases {
                if phrase.len() < 2 {
                    continue;
                }
                let terms = phrase
                    .iter()
                    .map(|(offset, t)| (*offset, Term::from_field_text(field, t)))
                    .collect();
                let query = PhraseQuery::new_with_offset(terms);
                clauses.push((
                    Occur::Should,
                    weighted(Box::new(query), weight * PHRASE_WEIGHT),
                ));
            }
        }
        Some(Box::new(BooleanQuery::new(clauses)))
    }
}

fn weighted(query: Box<dyn Query>, weight: f32) -> Box<dyn Query> {
    if (weight - 1.0).abs() < f32::EPSILON {
        query
    } else {
        Box::new(BoostQuery::new(query, weight))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        let analyzer = english_analyzer().expect("analyzer");
        analyze(&analyzer, text)
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    #[test]
    fn analyzer_stems_lowercases_and_drops_stop_words() {
        assert_eq!(terms("The Policies"), vec!["polici"]);
        assert_eq!(terms("policy"), vec!["polici"]);
        assert!(terms("the and of to").is_empty());
        assert!(terms("").is_empty());
        assert!(terms("🎉🚀 ((( \" :::").is_empty());
    }

    #[test]
    fn error_codes_split_into_adjacent_tokens() {
        let analyzer = english_analyzer().expect("analyzer");
        assert_eq!(
            analyze(&analyzer, "ERR-4102"),
            vec![(0, "err".to_string()), (1, "4102".to_string())]
        );
    }

    #[test]
    fn long_tokens_are_dropped() {
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(terms(&format!("short {long}")), vec!["short"]);
    }

    #[test]
    fn plan_dedupes_terms_and_finds_phrases() {
        let analyzer = english_analyzer().expect("analyzer");
        let plan = QueryPlan::new(
            &analyzer,
            "what does ERR-4102 mean? err \"state of the art\"",
        );
        assert_eq!(
            plan.terms,
            vec!["what", "doe", "err", "4102", "mean", "state", "art"]
        );
        assert_eq!(
            plan.phrases,
            vec![
                vec![(0, "state".to_string()), (3, "art".to_string())],
                vec![(0, "err".to_string()), (1, "4102".to_string())],
            ]
        );
    }

    #[test]
    fn plan_is_bounded() {
        let analyzer = english_analyzer().expect("analyzer");
        let text: String = (0..5000).map(|i| format!("w{i}-x{i} ")).collect();
        let plan = QueryPlan::new(&analyzer, &text);
        assert_eq!(plan.terms.len(), MAX_QUERY_TERMS);
        assert_eq!(plan.phrases.len(), MAX_PHRASES);
        let quoted = format!("\"{}\"", "alpha beta gamma delta ".repeat(20));
        let plan = QueryPlan::new(&analyzer, &quoted);
        assert!(plan.phrases.iter().all(|p| p.len() <= MAX_PHRASE_TERMS));
    }
}
