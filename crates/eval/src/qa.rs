//! Question-answering sets with gold answers and gold passages, in the layout of NQ-Open
//! "oracle" (`nq-open-oracle.jsonl.gz` of Liu et al., *Lost in the Middle*): JSON Lines,
//! gzip allowed, one question per line:
//!
//! ```json
//! {"question": "who got the first nobel prize in physics",
//!  "answers": ["Wilhelm Conrad Röntgen"],
//!  "ctxs": [{"title": "List of Nobel laureates in Physics", "text": "The first Nobel …",
//!            "hasanswer": true, "isgold": true}]}
//! ```
//!
//! Only `question`, `answers` and the gold passage's `title` and `text` are kept (the first
//! of `ctxs` with `isgold: true`, else the first); every other field (`nq_annotated_gold`, which
//! repeats the gold) is skipped unread. Questions sharing a passage (same title and text) share
//! one [`Passage`], whose id is derived from its content, so it does not depend on the order
//! of the file or on how much of it is read.
//!
//! [`QaDataset::holdout`] picks the passages to leave out of the corpus, so the questions
//! whose passage is missing measure whether the system says it does not know.
//!
//! Errors are [`BeirError`]s naming the file and the 1-based line, never a panic.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::beir::{BeirError, Lines};

/// A gold passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// 16 hex digits of the SHA-256 of title and text: stable across files and runs.
    pub id: String,
    pub title: String,
    pub text: String,
}

impl Passage {
    fn new(title: String, text: String) -> Self {
        let mut hash = Sha256::new();
        hash.update(title.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        let id = hex::encode(&hash.finalize()[..8]);
        Self { id, title, text }
    }
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QaItem {
    pub question: String,
    /// Acceptable short answers (at least one).
    pub answers: Vec<String>,
    /// Index of the gold passage in [`QaDataset::passages`].
    pub passage: usize,
}

/// A question-answering set: questions and their distinct gold passages.
#[derive(Debug, Clone)]
pub struct QaDataset {
    path: PathBuf,
    items: Vec<QaItem>,
    passages: Vec<Passage>,
}

#[derive(Deserialize)]
struct Line {
    question: String,
    answers: Vec<String>,
    ctxs: Vec<Context>,
}

#[derive(Deserialize)]
struct Context {
    #[serde(default)]
    title: String,
    text: String,
    #[serde(default)]
    isgold: Option<bool>,
}

impl QaDataset {
    /// Reads every question of `path` (`.jsonl`, or `.jsonl.gz`).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, BeirError> {
        let path = path.as_ref();
        let mut lines = Lines::open(path)?;
        let mut items = Vec::new();
        let mut passages: Vec<Passage> = Vec::new();
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let malformed = |line: usize, message: &str| BeirError::Malformed {
            path: path.to_path_buf(),
            line,
            message: message.to_owned(),
        };
        while let Some((line, text)) = lines.next_line()? {
            let parsed: Line = serde_json::from_str(text).map_err(|source| BeirError::Json {
                path: path.to_path_buf(),
                line,
                source,
            })?;
            let question = parsed.question.trim().to_owned();
            if question.is_empty() {
                return Err(malformed(line, "empty question"));
            }
            let answers: Vec<String> = parsed
                .answers
                .into_iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect();
            if answers.is_empty() {
                return Err(malformed(line, "no gold answer"));
            }
            let gold_at = parsed
                .ctxs
                .iter()
                .position(|c| c.isgold == Some(true))
                .unwrap_or(0);
            let Some(gold) = parsed.ctxs.into_iter().nth(gold_at) else {
                return Err(malformed(line, "no gold passage (ctxs is empty)"));
            };
            if gold.text.trim().is_empty() {
                return Err(malformed(line, "the gold passage has no text"));
            }
            let passage = Passage::new(gold.title.trim().to_owned(), gold.text.trim().to_owned());
            let index = *by_id.entry(passage.id.clone()).or_insert_with(|| {
                passages.push(passage);
                passages.len() - 1
            });
            items.push(QaItem {
                question,
                answers,
                passage: index,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            items,
            passages,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The questions, in file order.
    pub fn items(&self) -> &[QaItem] {
        &self.items
    }

    /// The distinct gold passages, in order of first use.
    pub fn passages(&self) -> &[Passage] {
        &self.passages
    }

    /// The passages to leave out of the corpus: exactly `round(share × passages)` of them
    /// (indexes into [`Self::passages`]), the ones whose SHA-256 of `seed` and id sorts first,
    /// so the choice depends only on the seed and the passages, not on the file's order.
    /// `share` is clamped to [0, 1].
    pub fn holdout(&self, share: f64, seed: u64) -> BTreeSet<usize> {
        let share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let count = (share * self.passages.len() as f64).round() as usize;
        let mut order: Vec<([u8; 32], usize)> = self
            .passages
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut hash = Sha256::new();
                hash.update(seed.to_be_bytes());
                hash.update(p.id.as_bytes());
                (hash.finalize().into(), i)
            })
            .collect();
        order.sort_unstable();
        order.into_iter().take(count).map(|(_, i)| i).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LINES: &str = r#"{"question": "who got the first nobel prize in physics", "answers": ["Wilhelm Conrad Röntgen"], "ctxs": [{"title": "List of Nobel laureates in Physics", "text": "The first Nobel Prize in Physics was awarded in 1901 to Wilhelm Conrad Röntgen.", "hasanswer": true, "isgold": true}], "nq_annotated_gold": {"title": "x", "long_answer": "y"}}

{"question": "when was the first nobel prize in physics", "answers": ["1901", " "], "ctxs": [{"title": "List of Nobel laureates in Physics", "text": "The first Nobel Prize in Physics was awarded in 1901 to Wilhelm Conrad Röntgen.", "isgold": true}]}
{"question": "who plays deadpool", "answers": ["Ryan Reynolds"], "ctxs": [{"title": "Other", "text": "Not gold.", "isgold": false}, {"title": "Deadpool", "text": "Ryan Reynolds plays Deadpool.", "isgold": true}]}
"#;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_questions_and_shares_passages() {
        let dir = tempfile::tempdir().unwrap();
        let ds = QaDataset::open(write(dir.path(), "qa.jsonl", LINES)).unwrap();
        assert_eq!(ds.items().len(), 3);
        assert_eq!(ds.passages().len(), 2);
        assert_eq!(ds.items()[0].passage, 0);
        assert_eq!(ds.items()[1].passage, 0);
        assert_eq!(ds.items()[1].answers, ["1901"]);
        let deadpool = &ds.passages()[ds.items()[2].passage];
        assert_eq!(deadpool.title, "Deadpool");
        assert_eq!(deadpool.text, "Ryan Reynolds plays Deadpool.");
        assert_eq!(deadpool.id.len(), 16);
        assert_ne!(ds.passages()[0].id, deadpool.id);
        // The id depends on the content only.
        assert_eq!(
            Passage::new("Deadpool".into(), "Ryan Reynolds plays Deadpool.".into()).id,
            deadpool.id
        );
    }

    #[test]
    fn reads_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qa.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::default(),
        );
        gz.write_all(LINES.as_bytes()).unwrap();
        gz.finish().unwrap();
        assert_eq!(QaDataset::open(&path).unwrap().items().len(), 3);
    }

    #[test]
    fn errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            (
                "{\"question\": \"q\", \"answers\": [], \"ctxs\": [{\"text\": \"t\"}]}",
                ":1: no gold answer",
            ),
            (
                "\n{\"question\": \"q\", \"answers\": [\"a\"], \"ctxs\": []}",
                ":2: no gold passage",
            ),
            (
                "{\"question\": \" \", \"answers\": [\"a\"], \"ctxs\": [{\"text\": \"t\"}]}",
                ":1: empty question",
            ),
            ("{oops", ":1: invalid JSON"),
        ] {
            let err = QaDataset::open(write(dir.path(), "bad.jsonl", text))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn holdout_is_exact_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..50)
            .map(|i| {
                format!(
                    "{{\"question\": \"q{i}\", \"answers\": [\"a\"], \"ctxs\": [{{\"title\": \"t{i}\", \"text\": \"passage {i}\"}}]}}\n"
                )
            })
            .collect();
        let ds = QaDataset::open(write(dir.path(), "qa.jsonl", &text)).unwrap();
        assert_eq!(ds.passages().len(), 50);
        assert!(ds.holdout(0.0, 1).is_empty());
        assert_eq!(ds.holdout(0.1, 1).len(), 5);
        assert_eq!(ds.holdout(0.1, 1), ds.holdout(0.1, 1));
        assert_ne!(ds.holdout(0.1, 1), ds.holdout(0.1, 2));
        assert_eq!(ds.holdout(1.0, 1).len(), 50);
        assert_eq!(ds.holdout(f64::NAN, 1).len(), 0);
        // A larger share holds out a superset (the same order, cut later).
        assert!(ds.holdout(0.1, 7).is_subset(&ds.holdout(0.3, 7)));
        // Reversing the file changes nothing.
        let reversed: String = text.lines().rev().map(|l| format!("{l}\n")).collect();
        let rev = QaDataset::open(write(dir.path(), "rev.jsonl", &reversed)).unwrap();
        let ids = |ds: &QaDataset, set: BTreeSet<usize>| {
            set.into_iter()
                .map(|i| ds.passages()[i].id.clone())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(ids(&ds, ds.holdout(0.2, 3)), ids(&rev, rev.holdout(0.2, 3)));
    }
}
