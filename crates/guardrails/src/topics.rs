//! Topic boundaries: questions about denied topics get a polite refusal instead of an answer.
//!
//! A [`TopicPolicy`] is built once from configuration. Each phrase becomes a case-insensitive
//! pattern on word boundaries; words may be separated by any whitespace or a hyphen, and each
//! word matches its simple plural or singular ("lawsuit" ⇄ "lawsuits", "salary" ⇄ "salaries",
//! "tax" ⇄ "taxes"). All topics are compiled into one [`RegexSet`], so a check is one pass over
//! the question whatever the number of topics.

use regex::{RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

use crate::GuardrailError;

/// A topic the service must not answer questions about, and the phrases that identify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedTopic {
    pub name: String,
    pub phrases: Vec<String>,
}

/// The denied topics, compiled. Checks questions in configuration order.
#[derive(Debug, Clone)]
pub struct TopicPolicy {
    denied: Vec<DeniedTopic>,
    /// One pattern per topic, same order as `denied`; `None` when there are no topics.
    set: Option<RegexSet>,
}

impl Default for TopicPolicy {
    /// A policy that denies nothing.
    fn default() -> Self {
        Self {
            denied: Vec::new(),
            set: None,
        }
    }
}

impl TopicPolicy {
    /// Validates and compiles the topics. A topic needs a name and at least one phrase; a phrase
    /// needs at least one letter or digit (an empty phrase would match every question).
    pub fn new(topics: Vec<DeniedTopic>) -> Result<Self, GuardrailError> {
        if topics.is_empty() {
            return Ok(Self::default());
        }
        let mut patterns = Vec::with_capacity(topics.len());
        for topic in &topics {
            if topic.name.trim().is_empty() {
                return Err(GuardrailError::Invalid(
                    "a denied topic has an empty name".to_owned(),
                ));
            }
            if topic.phrases.is_empty() {
                return Err(GuardrailError::Invalid(format!(
                    "denied topic {:?} has no phrases",
                    topic.name
                )));
            }
            let mut alternatives = Vec::with_capacity(topic.phrases.len());
            for phrase in &topic.phrases {
                alternatives.push(phrase_pattern(phrase).ok_or_else(|| {
                    GuardrailError::Invalid(format!(
                        "denied topic {:?} has an empty phrase {phrase:?}",
                        topic.name
                    ))
                })?);
            }
            patterns.push(format!("(?:{})", alternatives.join("|")));
        }
        let set = RegexSetBuilder::new(&patterns)
            .case_insensitive(true)
            .build()
            .map_err(|e| GuardrailError::Invalid(format!("denied topics do not compile: {e}")))?;
        Ok(Self {
            denied: topics,
            set: Some(set),
        })
    }

    /// The first denied topic (in configuration order) the question is about, if any.
    pub fn check(&self, question: &str) -> Option<&DeniedTopic> {
        let set = self.set.as_ref()?;
        let first = set.matches(question).iter().next()?;
        self.denied.get(first)
    }

    /// The denied topics, in configuration order.
    pub fn topics(&self) -> &[DeniedTopic] {
        &self.denied
    }

    /// True when nothing is denied.
    pub fn is_empty(&self) -> bool {
        self.denied.is_empty()
    }
}

/// The answer given instead of one about `topic`: polite, names the topic, says where to go.
pub fn refusal(topic: &DeniedTopic) -> String {
    let name = topic.name.trim().replace('_', " ");
    format!(
        "I'm sorry, but I can't help with questions about {name}. \
         Please contact the appropriate team in your organisation for assistance."
    )
}

/// The pattern for one phrase, or `None` when it has no letter or digit.
fn phrase_pattern(phrase: &str) -> Option<String> {
    let phrase = phrase.trim();
    if !phrase.chars().any(char::is_alphanumeric) {
        return None;
    }
    let words: Vec<String> = phrase
        .split_whitespace()
        .map(|word| {
            word.split('-')
                .filter(|p| !p.is_empty())
                .map(word_pattern)
                .collect::<Vec<_>>()
                .join(r"[\s\-]*")
        })
        .collect();
    let starts_word = phrase.chars().next().is_some_and(is_word);
    let ends_word = phrase.chars().next_back().is_some_and(is_word);
    // `\b` only makes sense next to a word character; around symbols ("C++") require a
    // non-word neighbour or the end instead.
    let open = if starts_word { r"\b" } else { r"(?:^|\W)" };
    let close = if ends_word { r"\b" } else { r"(?:$|\W)" };
    Some(format!(r"{open}{}{close}", words.join(r"[\s\-]+")))
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One word, escaped, matching its simple English plural or singular. Only plain alphabetic
/// words of three letters or more are inflected; anything else matches literally.
fn word_pattern(word: &str) -> String {
    let lower = word.to_lowercase();
    if lower.chars().count() < 3 || !lower.chars().all(char::is_alphabetic) {
        return regex::escape(word);
    }
    let sibilant = |s: &str| ["s", "x", "z", "ch", "sh"].iter().any(|e| s.ends_with(e));
    let vowel = |c: Option<char>| c.is_some_and(|c| "aeiou".contains(c));
    if let Some(stem) = lower.strip_suffix("ies").filter(|s| s.len() >= 2) {
        // "salaries" -> "salar(?:y|ies)"
        return format!("{}(?:y|ies)", regex::escape(stem));
    }
    if let Some(stem) = lower.strip_suffix('y')
        && !vowel(stem.chars().next_back())
    {
        // "salary" -> "salar(?:y|ies)"
        return format!("{}(?:y|ies)", regex::escape(stem));
    }
    if let Some(stem) = lower.strip_suffix("es").filter(|s| sibilant(s)) {
        // "taxes" -> "tax(?:es)?"
        return format!("{}(?:es)?", regex::escape(stem));
    }
    if sibilant(&lower)
        && !lower.ends_with("ss")
        && !lower.ends_with("us")
        && !lower.ends_with("is")
        && let Some(stem) = lower.strip_suffix('s')
    {
        // "lawsuits" -> "lawsuit(?:s|es)?"
        return format!("{}(?:s|es)?", regex::escape(stem));
    }
    if sibilant(&lower) {
        // "tax" -> "tax(?:es)?", "business" -> "business(?:es)?"
        return format!("{}(?:es)?", regex::escape(&lower));
    }
    // "lawsuit" -> "lawsuit(?:s|es)?" (also "potato" -> "potatoes")
    format!("{}(?:s|es)?", regex::escape(&lower))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn topic(name: &str, phrases: &[&str]) -> DeniedTopic {
        DeniedTopic {
            name: name.to_owned(),
            phrases: phrases.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn policy() -> TopicPolicy {
        TopicPolicy::new(vec![
            topic(
                "legal advice",
                &["lawsuit", "sue", "legal advice", "attorney"],
            ),
            topic("salaries", &["salary", "compensation of", "pay-grade"]),
            topic("medical", &["diagnosis", "prescription drugs", "C++"]),
            topic("tax", &["taxes", "tax-evasion"]),
        ])
        .unwrap()
    }

    #[test]
    fn matches_questions_about_denied_topics() {
        let policy = policy();
        for (question, name) in [
            ("Can I file a lawsuit against my manager?", "legal advice"),
            ("How many LAWSUITS are pending?", "legal advice"),
            ("Should I sue them?", "legal advice"),
            ("I need legal   advice about my contract", "legal advice"),
            ("Need Legal\nAdvice", "legal advice"),
            ("Which attorneys do we use?", "legal advice"),
            ("What is the CEO's salary?", "salaries"),
            ("List all salaries in finance", "salaries"),
            ("what is the compensation of the board", "salaries"),
            ("What is my pay grade?", "salaries"),
            ("what is my paygrade", "salaries"),
            ("Is this a diagnosis?", "medical"),
            ("Can you recommend prescription drug dosages?", "medical"),
            ("Is C++ a medicine?", "medical"),
            ("How do I do my tax?", "tax"),
            ("explain tax evasion", "tax"),
            ("Wie hoch ist das salary?", "salaries"),
        ] {
            assert_eq!(
                policy.check(question).map(|t| t.name.as_str()),
                Some(name),
                "{question:?}"
            );
        }
    }

    #[test]
    fn ignores_other_questions() {
        let policy = policy();
        for question in [
            "How do I reset my password?",
            "Is the pursuit of happiness covered?",
            "Who is suing?", // "sue" inflects to "sues", not "suing": plurals only
            "The salaryman novel",
            "Syntax of taxonomy",
            "Is C a language?",
            "",
        ] {
            assert_eq!(policy.check(question), None, "{question:?}");
        }
    }

    #[test]
    fn first_topic_in_configuration_order_wins() {
        let policy = policy();
        let hit = policy.check("salary lawsuit").unwrap();
        assert_eq!(hit.name, "legal advice");
    }

    #[test]
    fn empty_policy_denies_nothing() {
        let policy = TopicPolicy::new(Vec::new()).unwrap();
        assert!(policy.is_empty());
        assert_eq!(policy.check("lawsuit"), None);
        assert_eq!(TopicPolicy::default().check("anything"), None);
    }

    #[test]
    fn invalid_configuration_is_an_error() {
        for (topics, needle) in [
            (vec![topic("legal", &["lawsuit", ""])], "empty phrase"),
            (vec![topic("legal", &["   "])], "empty phrase"),
            (vec![topic("legal", &["?!"])], "empty phrase"),
            (vec![topic("legal", &[])], "no phrases"),
            (vec![topic(" ", &["lawsuit"])], "empty name"),
        ] {
            let err = TopicPolicy::new(topics).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with("invalid guardrail configuration: "),
                "{message}"
            );
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn phrases_are_literal_not_patterns() {
        let policy = TopicPolicy::new(vec![topic("dots", &["a.b", "(x)"])]).unwrap();
        assert!(policy.check("is a.b ok").is_some());
        assert!(policy.check("is axb ok").is_none());
        assert!(policy.check("call (x) now").is_some());
    }

    #[test]
    fn refusal_names_the_topic_politely() {
        let text = refusal(&topic("legal_advice", &["lawsuit"]));
        assert_eq!(
            text,
            "I'm sorry, but I can't help with questions about legal advice. \
             Please contact the appropriate team in your organisation for assistance."
        );
    }

    #[test]
    fn word_inflections() {
        for (word, pattern) in [
            ("lawsuit", "lawsuit(?:s|es)?"),
            ("lawsuits", "lawsuit(?:s|es)?"),
            ("salary", "salar(?:y|ies)"),
            ("salaries", "salar(?:y|ies)"),
            ("day", "day(?:s|es)?"),
            ("tax", "tax(?:es)?"),
            ("taxes", "tax(?:es)?"),
            ("business", "business(?:es)?"),
            ("virus", "virus(?:es)?"),
            ("HR", "HR"),
            ("401k", "401k"),
        ] {
            assert_eq!(word_pattern(word), pattern, "{word}");
        }
    }
}
