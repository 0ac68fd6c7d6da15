//! The lexical guard on semantic cache hits: two questions may share an answer only when
//! they have the same content terms.
//!
//! An embedding puts a question and its opposite close together: MiniLM has "Aspirin raises
//! the risk of bleeding" and "… lowers …" at cosine 0.976, "Is a doctor's note required …?"
//! and "… not required …?" at 0.993, "after 3 days" and "after 5 days" at 0.956
//! (`tests/semantic_guard.rs`). The rewordings that truly mean the same at that cosine mostly
//! change order, inflection, punctuation, case and function words, so a hit must keep every
//! content term: lower-cased words (split on anything not a letter or a digit), stop words
//! ([`STOP_WORDS`]) dropped, stemmed (Snowball English); negations (`not`, `no`, `never`,
//! `none`, `nor`, `without`, …; "isn't" and "cannot" read as "is not" and "can not"),
//! numbers, and the question words (`what`, `when`, `where`, …) always kept, as they are. A
//! synonym is refused too (a lost hit, never a wrong one). A set of terms cannot see roles
//! swapped ("A inhibits B" / "B inhibits A"): that is left to the threshold.

use std::collections::BTreeSet;

use rag_config::SemanticGuard;
use rust_stemmers::{Algorithm, Stemmer};

/// Function words whose change rarely changes a question's meaning. Words that often do are
/// deliberately not here: negations, question words, quantifiers and comparatives (`more`,
/// `less`, `all`, `only`), order and direction (`before`, `after`, `over`, `under`),
/// obligation (`must`, `should`).
pub const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be",
    "been", "being", "do", "does", "did", "doing", "have", "has", "had", "having", "can", "could",
    "may", "might", "will", "would", "shall", "i", "me", "my", "mine", "myself", "we", "us", "our",
    "ours", "you", "your", "yours", "he", "him", "his", "she", "her", "hers", "it", "its", "they",
    "them", "their", "theirs", "of", "to", "for", "in", "on", "at", "by", "with", "from", "as",
    "into", "about", "and", "or", "but", "if", "so", "such", "than", "then", "there", "here",
    "also", "just", "please",
];

/// What follows an apostrophe and is dropped: "what's", "I'd", "we'll", "I'm", "you're",
/// "I've", "employee's" (a lone "d", as in "vitamin D", is a term).
const CONTRACTION_TAILS: &[&str] = &["s", "d", "ll", "m", "re", "ve"];

/// Kept as they are, even where a stop list would drop them.
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nor", "neither", "without", "nobody", "nothing", "nowhere",
];

/// Kept as they are: "when" and "where" do not ask the same.
const QUESTION_WORDS: &[&str] = &[
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how",
];

/// The content terms of `text` (see the module documentation).
pub fn content_terms(text: &str) -> BTreeSet<String> {
    let stemmer = Stemmer::create(Algorithm::English);
    let text = text.to_lowercase().replace(['’', '‘', 'ʼ'], "'");
    let mut terms = BTreeSet::new();
    // Words with their inner apostrophes, so "isn't" is seen whole.
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
    {
        // "isn't" is "is not", "shouldn't" "should not", "can't" and "cannot" "can not".
        let word = match word.strip_suffix("n't") {
            Some(base) => {
                terms.insert("not".to_owned());
                match base {
                    "ca" => "can",
                    "wo" => "will",
                    "sha" => "shall",
                    "ai" => "is",
                    base => base,
                }
            }
            None if word == "cannot" => {
                terms.insert("not".to_owned());
                "can"
            }
            None => word,
        };
        for (i, part) in word.split('\'').enumerate() {
            if part.is_empty() || (i > 0 && CONTRACTION_TAILS.contains(&part)) {
                continue;
            }
            if NEGATIONS.contains(&part)
                || QUESTION_WORDS.contains(&part)
                || part.chars().any(|c| c.is_numeric())
            {
                terms.insert(part.to_owned());
            } else if !STOP_WORDS.contains(&part) {
                terms.insert(stemmer.stem(part).into_owned());
            }
        }
    }
    terms
}

/// A guard for one asked question: its content terms are worked out once (and only when
/// the guard reads them), then checked against each candidate's question.
pub struct Guard {
    /// `None` when the guard is [`SemanticGuard::None`].
    asked: Option<BTreeSet<String>>,
}

impl Guard {
    pub fn new(guard: SemanticGuard, asked: &str) -> Self {
        let asked = match guard {
            SemanticGuard::None => None,
            SemanticGuard::Lexical => Some(content_terms(asked)),
        };
        Self { asked }
    }

    /// Whether an answer cached for `cached` may be served for the asked question.
    pub fn allows(&self, cached: &str) -> bool {
        self.asked
            .as_ref()
            .is_none_or(|asked| *asked == content_terms(cached))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        Guard::new(SemanticGuard::Lexical, a).allows(b)
    }

    #[test]
    fn terms_are_stemmed_without_stop_words_but_with_negations_and_numbers() {
        let terms = |t: &str| content_terms(t).into_iter().collect::<Vec<_>>();
        assert_eq!(
            terms("How many vacation days do I get?"),
            ["day", "get", "how", "mani", "vacat"]
        );
        assert_eq!(
            terms("Smoking isn't associated with 3 cancers"),
            ["3", "associ", "cancer", "not", "smoke"]
        );
        assert_eq!(terms("I can't; we cannot; they won’t"), ["not"]);
        assert_eq!(terms("You shouldn't"), terms("you should not"));
        assert_eq!(terms("We mustn’t"), ["must", "not"]);
        assert_eq!(
            terms("No, never, none, nor without"),
            ["never", "no", "none", "nor", "without"]
        );
        assert!(terms("Is it?").is_empty());
        assert!(terms("").is_empty());
    }

    #[test]
    fn rewordings_pass() {
        for (a, b) in [
            (
                "How many vacation days do I get per year?",
                "How many vacation days per year do I get",
            ),
            ("HOW MANY VACATION DAYS?", "how many vacation days"),
            (
                "How many vacation days do I get if I work full-time?",
                "How many vacation days do I get if I work full time?!",
            ),
            (
                "How long is the notice period, in days?",
                "How long is the notice period in day",
            ),
            (
                "Aspirin reduces the risk of stroke.",
                "Aspirin reduced the risks of strokes",
            ),
            (
                "What is the policy for remote work?",
                "What's the policy on remote work?",
            ),
            (
                "Can I carry over my holiday?",
                "Could we carry over our holidays",
            ),
        ] {
            assert!(same(a, b), "{a:?} / {b:?}");
            assert!(same(b, a), "{b:?} / {a:?}");
        }
    }

    #[test]
    fn changed_meanings_are_refused() {
        for (a, b) in [
            (
                "Women are more susceptible to migraine.",
                "Men are more susceptible to migraine.",
            ),
            (
                "Vitamin D increases bone density.",
                "Vitamin D decreases bone density.",
            ),
            (
                "Obesity is associated with asthma.",
                "Obesity is not associated with asthma.",
            ),
            (
                "Obesity is associated with asthma.",
                "Obesity isn't associated with asthma.",
            ),
            (
                "The policy covers contractors.",
                "The policy doesn’t cover contractors.",
            ),
            (
                "Can contractors work from home?",
                "Contractors cannot work from home?",
            ),
            (
                "Vitamin D increases bone density.",
                "Vitamin increases bone density.",
            ),
            (
                "Leave must be approved within 3 days.",
                "Leave must be approved within 5 days.",
            ),
            (
                "Can I take leave before probation ends?",
                "Can I take leave after probation ends?",
            ),
            (
                "When do I submit my timesheet?",
                "Where do I submit my timesheet?",
            ),
            ("Is a doctor's note needed?", "Is no doctor's note needed?"),
        ] {
            assert!(!same(a, b), "{a:?} / {b:?}");
            assert!(!same(b, a), "{b:?} / {a:?}");
        }
    }

    #[test]
    fn none_lets_anything_through() {
        assert!(
            Guard::new(SemanticGuard::None, "Vitamin D increases bone density.")
                .allows("Vitamin D decreases bone density.")
        );
    }
}
