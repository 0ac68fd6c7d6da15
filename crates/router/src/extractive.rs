//! The offline answerer: composes an answer from the best-supported sentences of the
//! retrieved chunks, each cited by number, and says it does not know when nothing
//! retrieved is relevant enough. Deterministic and free.

use std::collections::{HashMap, HashSet};

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

/// The name reported as the answer's model.
pub const MODEL: &str = "extractive-v1";

pub const DONT_KNOW: &str = "I don't know: the documents I can search do not answer this question.";

/// One retrieved chunk, as the answerer sees it.
#[derive(Clone, Debug)]
pub struct Passage<'a> {
    pub text: &'a str,
    /// Dense cosine similarity of the chunk to the question, if the dense search found it.
    pub dense: Option<f32>,
    /// Fused retrieval score in [0, 1].
    pub score: f32,
}

/// A sentence of the answer and the passage it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerSentence {
    pub text: String,
    pub passage: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Grounded(Vec<AnswerSentence>),
    DontKnow,
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Below this best dense similarity the answer is "I don't know".
    pub min_relevance: f32,
    /// At or above this best dense similarity the retrieval alone is trusted. Below it, the
    /// best dense similarity plus the share of the question's (IDF-weighted) terms that the
    /// best sentence covers must reach `min_support`: weak retrieval needs strong wording.
    pub confident_relevance: f32,
    pub min_support: f32,
    pub max_sentences: usize,
}

/// Question openings that ask for a quantity, a duration or a date: the answer must contain one.
const QUANTITY_CUES: &[&str] = &[
    "how many",
    "how much",
    "how long",
    "how quickly",
    "how soon",
    "how often",
    "how fast",
    "how old",
    "what time",
    "what percentage",
    "by when",
    "what date",
    "which date",
    "what is the maximum",
    "what is the minimum",
    "what's the most",
    "what is the most",
];

const NUMBER_WORDS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "fifteen",
    "twenty",
    "thirty",
    "hundred",
    "thousand",
    "half",
    "quarter",
    "once",
    "twice",
    "daily",
    "weekly",
    "monthly",
    "annually",
    "immediately",
];

fn expects_quantity(question: &str) -> bool {
    let q = question.to_lowercase();
    QUANTITY_CUES.iter().any(|cue| q.contains(cue))
}

/// Whether a sentence states a number. A lone digit after a capitalised word is a name
/// ("Ring 0", "Tier 1"), not a quantity.
fn has_quantity(sentence: &str) -> bool {
    let words: Vec<&str> = sentence.unicode_words().collect();
    words.iter().enumerate().any(|(i, w)| {
        if NUMBER_WORDS.contains(&w.to_lowercase().as_str()) {
            return true;
        }
        if !w.chars().any(|c| c.is_ascii_digit()) {
            return false;
        }
        let is_label = w.len() == 1 && i > 0 && words[i - 1].starts_with(char::is_uppercase);
        !is_label
    })
}

/// The sentences of a passage, with a sentence that introduces a list (ends with ':')
/// joined to the list's items, so "the allowance is:" comes with the amounts.
fn units(text: &str) -> Vec<String> {
    let mut units: Vec<String> = Vec::new();
    let mut list_items = 0;
    for sentence in text.split_sentence_bounds() {
        let sentence = sentence.trim();
        if sentence.is_empty() {
            continue;
        }
        let continues_list = sentence.starts_with("- ")
            && list_items < 8
            && units
                .last()
                .is_some_and(|u| u.ends_with(':') || (list_items > 0 && u.len() < 600));
        match units.last_mut() {
            Some(last) if continues_list => {
                last.push(' ');
                last.push_str(sentence);
                list_items += 1;
            }
            _ => {
                list_items = 0;
                units.push(sentence.to_owned());
            }
        }
    }
    units
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with",
    "from", "as", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "doing",
    "have", "has", "had", "i", "me", "my", "we", "our", "you", "your", "he", "she", "it", "its",
    "they", "them", "their", "this", "that", "these", "those", "what", "which", "who", "whom",
    "whose", "when", "where", "why", "how", "can", "could", "should", "would", "will", "shall",
    "may", "might", "must", "there", "here", "so", "than", "then", "too", "very", "not", "no",
    "yes", "about", "into", "over", "after", "before", "any", "some", "all", "each", "much",
    "many", "get", "got", "tell", "please", "need", "know", "s", "t",
];

/// Content terms of a text: lower-cased, stop words dropped, stemmed.
pub fn terms(text: &str) -> Vec<String> {
    let stemmer = Stemmer::create(Algorithm::English);
    text.unicode_words()
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stemmer.stem(&w).into_owned())
        .collect()
}

pub fn answer(question: &str, passages: &[Passage<'_>], options: Options) -> Answer {
    let question_terms: HashSet<String> = terms(question).into_iter().collect();
    let best_dense = passages
        .iter()
        .filter_map(|p| p.dense)
        .fold(f32::NEG_INFINITY, f32::max);
    if passages.is_empty() || best_dense < options.min_relevance {
        return Answer::DontKnow;
    }

    // Sentences of every passage, with the question terms each contains.
    struct Candidate {
        text: String,
        passage: usize,
        position: usize,
        matched: HashSet<String>,
    }
    let mut candidates = Vec::new();
    let mut document_frequency: HashMap<&str, usize> = HashMap::new();
    let wants_quantity = expects_quantity(question);
    for (p, passage) in passages.iter().enumerate() {
        for (position, unit) in units(passage.text).iter().enumerate() {
            let text = unit.trim_start_matches("- ").trim();
            if text.chars().filter(|c| c.is_alphanumeric()).count() < 8
                || (wants_quantity && !has_quantity(text))
            {
                continue;
            }
            let matched: HashSet<String> = terms(text)
                .into_iter()
                .filter(|t| question_terms.contains(t))
                .collect();
            candidates.push(Candidate {
                text: text.to_owned(),
                passage: p,
                position,
                matched,
            });
        }
    }
    for c in &candidates {
        for t in &c.matched {
            *document_frequency.entry(t.as_str()).or_default() += 1;
        }
    }
    let total = candidates.len().max(1) as f32;
    let idf =
        |t: &str| (1.0 + total / (1.0 + *document_frequency.get(t).unwrap_or(&0) as f32)).ln();
    let question_weight: f32 = question_terms
        .iter()
        .map(|t| idf(t))
        .sum::<f32>()
        .max(f32::EPSILON);

    let coverage = |c: &Candidate| c.matched.iter().map(|t| idf(t)).sum::<f32>() / question_weight;
    let mut scored: Vec<(f32, &Candidate)> = candidates
        .iter()
        .map(|c| {
            let coverage = coverage(c);
            let passage = &passages[c.passage];
            let retrieval = passage.score;
            // Early sentences of a chunk tend to carry its topic.
            let position = 1.0 / (1.0 + c.position as f32 * 0.1);
            (coverage * 0.6 + retrieval * 0.3 + position * 0.1, c)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));

    // Retrieval found something close, but does the best sentence answer this question?
    let supported = scored.first().is_some_and(|(_, c)| {
        !c.matched.is_empty()
            && (best_dense >= options.confident_relevance
                || best_dense + coverage(c) >= options.min_support)
    });
    if !supported {
        return Answer::DontKnow;
    }
    let best = scored.first().map(|(s, _)| *s).unwrap_or(0.0);
    let mut chosen: Vec<&Candidate> = Vec::new();
    let mut seen = HashSet::new();
    for (score, candidate) in &scored {
        if chosen.len() >= options.max_sentences {
            break;
        }
        // Keep sentences close to the best one; a weak tail only dilutes the answer.
        if !chosen.is_empty() && *score < best * 0.75 {
            break;
        }
        if seen.insert(candidate.text.to_lowercase()) {
            chosen.push(candidate);
        }
    }
    if chosen.is_empty() {
        return Answer::DontKnow;
    }
    // Read in document order within a passage, passages in retrieval order.
    chosen.sort_by_key(|c| (c.passage, c.position));
    Answer::Grounded(
        chosen
            .into_iter()
            .map(|c| AnswerSentence {
                text: c.text.clone(),
                passage: c.passage,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: Options = Options {
        min_relevance: 0.3,
        confident_relevance: 0.6,
        min_support: 0.95,
        max_sentences: 2,
    };

    fn passage(text: &str, dense: f32) -> Passage<'_> {
        Passage {
            text,
            dense: Some(dense),
            score: dense,
        }
    }

    #[test]
    fn picks_the_sentence_that_answers() {
        let passages = [
            passage(
                "Annual leave is generous. Employees accrue 25 days of annual leave per year. Leave requests go to managers.",
                0.7,
            ),
            passage("Parental leave lasts 20 weeks.", 0.5),
        ];
        let Answer::Grounded(sentences) = answer(
            "How many days of annual leave do employees get?",
            &passages,
            OPTIONS,
        ) else {
            panic!("expected an answer");
        };
        assert!(
            sentences
                .iter()
                .any(|s| s.text.contains("25 days") && s.passage == 0),
            "{sentences:?}"
        );
        assert!(sentences.len() <= 2);
    }

    #[test]
    fn says_it_does_not_know_below_the_floor() {
        let passages = [passage(
            "Employees accrue 25 days of annual leave per year.",
            0.12,
        )];
        assert_eq!(
            answer("What is on the cafeteria menu?", &passages, OPTIONS),
            Answer::DontKnow
        );
        assert_eq!(answer("Anything?", &[], OPTIONS), Answer::DontKnow);
    }

    #[test]
    fn a_quantity_question_needs_a_quantity() {
        let passages = [passage(
            "Ring 0 is the internal test fleet. Robots there get updates first.",
            0.52,
        )];
        assert_eq!(
            answer(
                "How many robots are in the internal test fleet?",
                &passages,
                OPTIONS
            ),
            Answer::DontKnow
        );
        let passages = [passage("The internal test fleet has 40 robots.", 0.52)];
        assert!(matches!(
            answer(
                "How many robots are in the internal test fleet?",
                &passages,
                OPTIONS
            ),
            Answer::Grounded(_)
        ));
    }

    #[test]
    fn weak_retrieval_needs_the_question_covered() {
        let passages = [passage(
            "Disputes under the agreement go to the courts of Amsterdam under Dutch law.",
            0.45,
        )];
        assert_eq!(
            answer(
                "Which external law firm represents us in patent disputes?",
                &passages,
                OPTIONS
            ),
            Answer::DontKnow
        );
    }

    #[test]
    fn list_introductions_keep_their_items() {
        let text = "On-call engineers receive a standby allowance for every day:\n\n- EUR 35 for each weekday;\n- EUR 60 for each Saturday.";
        let passages = [passage(text, 0.56)];
        let Answer::Grounded(sentences) = answer(
            "How much standby allowance do I get on a Saturday?",
            &passages,
            OPTIONS,
        ) else {
            panic!("expected an answer");
        };
        assert!(sentences[0].text.contains("EUR 60"), "{sentences:?}");
    }

    #[test]
    fn stems_and_drops_stop_words() {
        assert_eq!(terms("What are the policies?"), vec!["polici"]);
        assert_eq!(terms("The policy"), vec!["polici"]);
    }
}
