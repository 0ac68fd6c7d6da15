//! Datasets in BEIR layout, read as streams.
//!
//! A dataset is a directory holding
//!
//! | file | format | what is kept |
//! |---|---|---|
//! | `corpus.jsonl` or `corpus.jsonl.gz` | JSON Lines (gzip allowed) | `_id`, `title`, `text` |
//! | `queries.jsonl` | JSON Lines | `_id`, `text` |
//! | `qrels/<split>.tsv` (default split `test`) | `query-id⇥corpus-id⇥score`, one header line | all |
//!
//! Every other field is skipped without being stored. That matters for the queries: BEIR's
//! SciFact `queries.jsonl` carries a `metadata` object keyed by the *relevant document ids*,
//! and reading it at retrieval time would leak the answers. [`Query`] has no field it could go
//! into; the JSON parser only scans past it to find the end of the line.
//!
//! Only queries judged in the qrels are loaded ([`BeirDataset::queries`]); a judged query that
//! `queries.jsonl` lacks is an error. The corpus is not held in memory: [`BeirDataset::corpus`]
//! streams it one document at a time, for the ingestion pipeline.
//!
//! Malformed input is an error naming the file and the 1-based line ([`BeirError`]), never a
//! panic. Blank lines are skipped; a UTF-8 byte-order mark on the first line and `\r\n` line
//! ends are accepted. Ids may be JSON strings or integers (kept as their decimal text); an
//! empty id or an id seen twice in the same file is an error.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The relevance grades of one query's judged documents: document id → grade.
pub type Judgments = BTreeMap<String, i32>;

/// Why a dataset could not be read. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
pub enum BeirError {
    #[error("{}: no corpus.jsonl or corpus.jsonl.gz in this directory", dir.display())]
    NoCorpus { dir: PathBuf },
    #[error("invalid split name {split:?}: use letters, digits, '-' or '_' (e.g. \"test\")")]
    InvalidSplit { split: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: cannot read line: {source}", path.display())]
    Read {
        path: PathBuf,
        line: usize,
        #[source]
        source: io::Error,
    },
    #[error("{}:{line}: invalid JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: duplicate id {id:?} (first on line {first_line})", path.display())]
    DuplicateId {
        path: PathBuf,
        line: usize,
        id: String,
        first_line: usize,
    },
    #[error(
        "{}: {count} queries judged in {} are missing (e.g. {examples:?})",
        queries.display(),
        qrels.display()
    )]
    MissingQueries {
        queries: PathBuf,
        qrels: PathBuf,
        count: usize,
        /// The first few missing ids, sorted.
        examples: Vec<String>,
    },
}

/// One corpus document: only the fields retrieval may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    /// Empty when the line has no `title` (or it is `null`).
    pub title: String,
    /// Empty when the line has no `text` (or it is `null`).
    pub text: String,
}

/// One query: its id and text. Deliberately nothing else (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub text: String,
}

/// Relevance judgments: query id → document id → grade. A grade ≤ 0 means judged not
/// relevant (see [`crate::metrics`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qrels {
    by_query: BTreeMap<String, Judgments>,
}

impl Qrels {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a judgment, returning the grade it replaced, if any.
    pub fn insert(
        &mut self,
        query_id: impl Into<String>,
        doc_id: impl Into<String>,
        grade: i32,
    ) -> Option<i32> {
        self.by_query
            .entry(query_id.into())
            .or_default()
            .insert(doc_id.into(), grade)
    }

    /// The judgments of one query, `None` if it has none.
    pub fn judgments(&self, query_id: &str) -> Option<&Judgments> {
        self.by_query.get(query_id)
    }

    pub fn contains_query(&self, query_id: &str) -> bool {
        self.by_query.contains_key(query_id)
    }

    /// Judged query ids, sorted.
    pub fn query_ids(&self) -> impl Iterator<Item = &str> {
        self.by_query.keys().map(String::as_str)
    }

    /// (query id, judgments) pairs, sorted by query id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Judgments)> {
        self.by_query.iter().map(|(q, j)| (q.as_str(), j))
    }

    /// Number of distinct judged queries.
    pub fn query_count(&self) -> usize {
        self.by_query.len()
    }

    /// Number of (query, document) judgments.
    pub fn judgment_count(&self) -> usize {
        self.by_query.values().map(BTreeMap::len).sum()
    }

    /// Every judged document id, sorted.
    pub fn doc_ids(&self) -> BTreeSet<&str> {
        self.by_query
            .values()
            .flat_map(|j| j.keys().map(String::as_str))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_query.is_empty()
    }
}

impl<Q: Into<String>, D: Into<String>> FromIterator<(Q, D, i32)> for Qrels {
    fn from_iter<I: IntoIterator<Item = (Q, D, i32)>>(iter: I) -> Self {
        let mut qrels = Self::new();
        for (q, d, grade) in iter {
            qrels.insert(q, d, grade);
        }
        qrels
    }
}

/// What streaming the whole corpus found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusStats {
    /// Documents in the corpus file.
    pub docs: usize,
    /// Judged document ids (any split's qrels that were loaded) absent from the corpus, sorted.
    pub missing_judged_docs: Vec<String>,
}

/// A BEIR dataset with its judged queries and qrels loaded; the corpus is streamed on demand.
#[derive(Debug, Clone)]
pub struct BeirDataset {
    dir: PathBuf,
    split: String,
    corpus_path: PathBuf,
    queries_path: PathBuf,
    qrels_path: PathBuf,
    queries: Vec<Query>,
    qrels: Qrels,
}

impl BeirDataset {
    /// The split evaluated unless another is asked for.
    pub const DEFAULT_SPLIT: &'static str = "test";

    /// Opens `dir` with the `test` split (`qrels/test.tsv`).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, BeirError> {
        Self::open_split(dir, Self::DEFAULT_SPLIT)
    }

    /// Opens `dir` with the qrels of `split` (`qrels/<split>.tsv`): reads the qrels, then the
    /// queries judged in them, and locates the corpus (without reading it).
    pub fn open_split(dir: impl AsRef<Path>, split: &str) -> Result<Self, BeirError> {
        let dir = dir.as_ref().to_path_buf();
        let valid_split = !split.is_empty()
            && split
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_split {
            return Err(BeirError::InvalidSplit {
                split: split.to_owned(),
            });
        }
        let corpus_path = find_corpus(&dir)?;
        let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
        let qrels = read_qrels(&qrels_path)?;
        let queries_path = dir.join("queries.jsonl");
        let mut queries = Vec::with_capacity(qrels.query_count());
        for query in QueryReader::open(&queries_path)? {
            let query = query?;
            if qrels.contains_query(&query.id) {
                queries.push(query);
            }
        }
        if queries.len() != qrels.query_count() {
            let found: BTreeSet<&str> = queries.iter().map(|q| q.id.as_str()).collect();
            let missing: Vec<&str> = qrels.query_ids().filter(|q| !found.contains(q)).collect();
            return Err(BeirError::MissingQueries {
                queries: queries_path,
                qrels: qrels_path,
                count: missing.len(),
                examples: missing.iter().take(5).map(|s| (*s).to_owned()).collect(),
            });
        }
        Ok(Self {
            dir,
            split: split.to_owned(),
            corpus_path,
            queries_path,
            qrels_path,
            queries,
            qrels,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn split(&self) -> &str {
        &self.split
    }

    /// `corpus.jsonl` if present, else `corpus.jsonl.gz`.
    pub fn corpus_path(&self) -> &Path {
        &self.corpus_path
    }

    pub fn queries_path(&self) -> &Path {
        &self.queries_path
    }

    pub fn qrels_path(&self) -> &Path {
        &self.qrels_path
    }

    /// The queries to evaluate: those judged in the qrels, in `queries.jsonl` order.
    pub fn queries(&self) -> &[Query] {
        &self.queries
    }

    pub fn qrels(&self) -> &Qrels {
        &self.qrels
    }

    /// Streams the corpus, one document per item; stops after the first error.
    pub fn corpus(&self) -> Result<CorpusReader, BeirError> {
        CorpusReader::open(&self.corpus_path)
    }

    /// Reads the whole corpus into memory (small datasets, tests).
    pub fn load_corpus(&self) -> Result<Vec<Document>, BeirError> {
        self.corpus()?.collect()
    }

    /// Streams the corpus once to count it and to check that every judged document is in it.
    pub fn corpus_stats(&self) -> Result<CorpusStats, BeirError> {
        let mut judged = self.qrels.doc_ids();
        let mut docs = 0;
        for doc in self.corpus()? {
            let doc = doc?;
            judged.remove(doc.id.as_str());
            docs += 1;
        }
        Ok(CorpusStats {
            docs,
            missing_judged_docs: judged.into_iter().map(str::to_owned).collect(),
        })
    }
}

/// `dir/corpus.jsonl` if it is a file, else `dir/corpus.jsonl.gz` if that is.
pub fn find_corpus(dir: &Path) -> Result<PathBuf, BeirError> {
    ["corpus.jsonl", "corpus.jsonl.gz"]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| BeirError::NoCorpus {
            dir: dir.to_path_buf(),
        })
}

/// Reads a qrels file: `query-id⇥corpus-id⇥score` per line, integer scores.
///
/// The first line is taken as the header when its third field is not an integer (BEIR's
/// files always have one: `query-id corpus-id score`); a file without a header is accepted
/// too. Fields are tab-separated; a line without tabs is split on whitespace. The same
/// judgment twice is accepted, two different grades for one pair are an error.
pub fn read_qrels(path: &Path) -> Result<Qrels, BeirError> {
    let mut lines = Lines::open(path)?;
    let mut qrels = Qrels::new();
    while let Some((line, content)) = lines.next_line()? {
        let fields: Vec<&str> = if content.contains('\t') {
            content.split('\t').map(str::trim).collect()
        } else {
            content.split_whitespace().collect()
        };
        let malformed = |message: String| BeirError::Malformed {
            path: path.to_path_buf(),
            line,
            message,
        };
        let [query_id, doc_id, score] = fields[..] else {
            return Err(malformed(format!(
                "expected 3 tab-separated fields (query-id, corpus-id, score), found {}",
                fields.len()
            )));
        };
        let grade = match score.parse::<i32>() {
            Ok(grade) => grade,
            Err(_) if line == 1 => continue, // the header
            Err(_) => {
                return Err(malformed(format!("score {score:?} is not an integer")));
            }
        };
        if query_id.is_empty() || doc_id.is_empty() {
            return Err(malformed("empty query-id or corpus-id".to_owned()));
        }
        if let Some(previous) = qrels.insert(query_id, doc_id, grade)
            && previous != grade
        {
            return Err(malformed(format!(
                "query {query_id:?}, document {doc_id:?} judged twice: {previous}, then {grade}"
            )));
        }
    }
    Ok(qrels)
}

/// Streams the documents of a corpus file (`.gz` is decompressed).
pub struct CorpusReader {
    lines: Lines,
    seen: HashMap<String, usize>,
}

impl CorpusReader {
    pub fn open(path: &Path) -> Result<Self, BeirError> {
        Ok(Self {
            lines: Lines::open(path)?,
            seen: HashMap::new(),
        })
    }

    fn read_next(&mut self) -> Result<Option<Document>, BeirError> {
        let Some((line, content)) = self.lines.next_line()? else {
            return Ok(None);
        };
        let raw: RawDocument = at_line(serde_json::from_str(content), self.lines.path(), line)?;
        check_id(&mut self.seen, self.lines.path(), line, &raw.id)?;
        Ok(Some(Document {
            id: raw.id,
            title: raw.title.unwrap_or_default(),
            text: raw.text.unwrap_or_default(),
        }))
    }
}

impl Iterator for CorpusReader {
    type Item = Result<Document, BeirError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.read_next().transpose();
        if matches!(item, Some(Err(_))) {
            self.lines.finish();
        }
        item
    }
}

impl fmt::Debug for CorpusReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorpusReader")
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

/// Streams the queries of a `queries.jsonl` file (all of them; [`BeirDataset`] filters).
pub struct QueryReader {
    lines: Lines,
    seen: HashMap<String, usize>,
}

impl QueryReader {
    pub fn open(path: &Path) -> Result<Self, BeirError> {
        Ok(Self {
            lines: Lines::open(path)?,
            seen: HashMap::new(),
        })
    }

    fn read_next(&mut self) -> Result<Option<Query>, BeirError> {
        let Some((line, content)) = self.lines.next_line()? else {
            return Ok(None);
        };
        let raw: RawQuery = at_line(serde_json::from_str(content), self.lines.path(), line)?;
        check_id(&mut self.seen, self.lines.path(), line, &raw.id)?;
        let Some(text) = raw.text else {
            return Err(BeirError::Malformed {
                path: self.lines.path().to_path_buf(),
                line,
                message: format!("query {:?} has no \"text\"", raw.id),
            });
        };
        Ok(Some(Query { id: raw.id, text }))
    }
}

impl Iterator for QueryReader {
    type Item = Result<Query, BeirError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.read_next().transpose();
        if matches!(item, Some(Err(_))) {
            self.lines.finish();
        }
        item
    }
}

impl fmt::Debug for QueryReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryReader")
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

/// A corpus line. Unknown fields are skipped by serde without being stored.
#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "_id", deserialize_with = "deserialize_id")]
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// A query line. No `metadata` field on purpose: it is skipped unread.
#[derive(Deserialize)]
struct RawQuery {
    #[serde(rename = "_id", deserialize_with = "deserialize_id")]
    id: String,
    #[serde(default)]
    text: Option<String>,
}

/// Attaches the file and line to a JSON parse result.
fn at_line<T>(parsed: serde_json::Result<T>, path: &Path, line: usize) -> Result<T, BeirError> {
    parsed.map_err(|source| BeirError::Json {
        path: path.to_path_buf(),
        line,
        source,
    })
}

fn check_id(
    seen: &mut HashMap<String, usize>,
    path: &Path,
    line: usize,
    id: &str,
) -> Result<(), BeirError> {
    if id.trim().is_empty() {
        return Err(BeirError::Malformed {
            path: path.to_path_buf(),
            line,
            message: "empty \"_id\"".to_owned(),
        });
    }
    if let Some(&first_line) = seen.get(id) {
        return Err(BeirError::DuplicateId {
            path: path.to_path_buf(),
            line,
            id: id.to_owned(),
            first_line,
        });
    }
    seen.insert(id.to_owned(), line);
    Ok(())
}

/// An id given as a JSON string or integer, kept as text.
fn deserialize_id<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct IdVisitor;

    impl serde::de::Visitor<'_> for IdVisitor {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }

        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }

    deserializer.deserialize_any(IdVisitor)
}

/// Non-blank lines of a (possibly gzipped) text file, with 1-based line numbers.
pub(crate) struct Lines {
    path: PathBuf,
    reader: Option<Box<dyn BufRead + Send>>,
    line: usize,
    buf: Vec<u8>,
}

impl Lines {
    pub(crate) fn open(path: &Path) -> Result<Self, BeirError> {
        let file = File::open(path).map_err(|source| BeirError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let gzipped = path.extension().is_some_and(|ext| ext == "gz");
        let reader: Box<dyn BufRead + Send> = if gzipped {
            // MultiGz: a file of several concatenated gzip members reads as one stream.
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
                BufReader::new(file),
            )))
        } else {
            Box::new(BufReader::new(file))
        };
        Ok(Self {
            path: path.to_path_buf(),
            reader: Some(reader),
            line: 0,
            buf: Vec::new(),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the stream: later calls return `None`.
    fn finish(&mut self) {
        self.reader = None;
    }

    /// The next non-blank line without its line end, or `None` at the end of the file.
    /// Callers stop reading after an error (the iterators call [`Lines::finish`]).
    pub(crate) fn next_line(&mut self) -> Result<Option<(usize, &str)>, BeirError> {
        loop {
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            self.buf.clear();
            self.line += 1;
            match reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.finish();
                    return Ok(None);
                }
                Ok(_) if self.buf.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(_) => break,
                Err(source) => {
                    self.finish();
                    return Err(BeirError::Read {
                        path: self.path.clone(),
                        line: self.line,
                        source,
                    });
                }
            }
        }
        let line = self.line;
        let mut bytes = self.buf.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some((line, text.trim_end_matches(['\n', '\r'])))),
            Err(e) => Err(BeirError::Malformed {
                path: self.path.clone(),
                line,
                message: format!("invalid UTF-8: {e}"),
            }),
        }
    }
}

impl fmt::Debug for Lines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lines")
            .field("path", &self.path)
            .field("line", &self.line)
            .field("finished", &self.reader.is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    fn write_gz(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        let file = File::create(&path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(content.as_bytes()).unwrap();
        gz.finish().unwrap();
        path
    }

    const CORPUS: &str = concat!(
        r#"{"_id": "d1", "title": "Alpha", "text": "first document", "extra": [1, 2]}"#,
        "\n",
        r#"{"_id": "d2", "title": "", "text": "second document"}"#,
        "\n",
        "\n",
        r#"{"_id": 3, "text": "numeric id, no title"}"#,
        "\n",
    );

    const QUERIES: &str = concat!(
        r#"{"_id": "q1", "text": "what is alpha", "metadata": {"d1": [{"sentences": [0], "label": "SUPPORT"}]}}"#,
        "\n",
        r#"{"_id": "q2", "text": "second?", "metadata": {}}"#,
        "\n",
        r#"{"_id": "q3", "text": "not judged in test", "metadata": {"d2": []}}"#,
        "\n",
    );

    const QRELS: &str = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t3\t1\nq2\td2\t1\n";

    fn fixture(dir: &Path, gz: bool) {
        if gz {
            write_gz(dir, "corpus.jsonl.gz", CORPUS);
        } else {
            write(dir, "corpus.jsonl", CORPUS);
        }
        write(dir, "queries.jsonl", QUERIES);
        write(dir, "qrels/test.tsv", QRELS);
    }

    #[test]
    fn loads_plain_dataset_with_only_judged_queries() {
        let tmp = tempfile::tempdir().unwrap();
        fixture(tmp.path(), false);
        let ds = BeirDataset::open(tmp.path()).unwrap();
        assert_eq!(ds.split(), "test");
        assert_eq!(
            ds.queries(),
            &[
                Query {
                    id: "q1".into(),
                    text: "what is alpha".into()
                },
                Query {
                    id: "q2".into(),
                    text: "second?".into()
                },
            ]
        );
        assert_eq!(ds.qrels().query_count(), 2);
        assert_eq!(ds.qrels().judgment_count(), 3);
        assert_eq!(ds.qrels().judgments("q1").unwrap().get("d1"), Some(&2));
        let docs = ds.load_corpus().unwrap();
        assert_eq!(
            docs,
            vec![
                Document {
                    id: "d1".into(),
                    title: "Alpha".into(),
                    text: "first document".into()
                },
                Document {
                    id: "d2".into(),
                    title: String::new(),
                    text: "second document".into()
                },
                Document {
                    id: "3".into(),
                    title: String::new(),
                    text: "numeric id, no title".into()
                },
            ]
        );
        let stats = ds.corpus_stats().unwrap();
        assert_eq!(stats.docs, 3);
        assert!(stats.missing_judged_docs.is_empty());
    }

    #[test]
    fn loads_gzipped_corpus_and_prefers_plain_when_both_exist() {
        let tmp = tempfile::tempdir().unwrap();
        fixture(tmp.path(), true);
        let ds = BeirDataset::open(tmp.path()).unwrap();
        assert!(ds.corpus_path().ends_with("corpus.jsonl.gz"));
        assert_eq!(ds.load_corpus().unwrap().len(), 3);

        write(tmp.path(), "corpus.jsonl", CORPUS.lines().next().unwrap());
        let ds = BeirDataset::open(tmp.path()).unwrap();
        assert!(ds.corpus_path().ends_with("corpus.jsonl"));
        assert_eq!(ds.load_corpus().unwrap().len(), 1);
    }

    #[test]
    fn query_metadata_is_never_needed() {
        // Metadata of any JSON type (even one a struct field would reject) is skipped.
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            tmp.path(),
            "queries.jsonl",
            "{\"metadata\": 42, \"_id\": \"a\", \"text\": \"t\"}\n{\"_id\": \"b\", \"text\": \"u\", \"metadata\": [null, {\"x\": \"y\"}]}\n",
        );
        let queries: Vec<Query> = QueryReader::open(&path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(queries.len(), 2);
        assert_eq!(queries[1].text, "u");
    }

    #[test]
    fn crlf_bom_and_headerless_qrels() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            tmp.path(),
            "corpus.jsonl",
            "\u{FEFF}{\"_id\": \"a\", \"text\": \"x\"}\r\n{\"_id\": \"b\", \"text\": \"y\"}\r\n",
        );
        let docs: Vec<Document> = CorpusReader::open(&path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].id, "a");

        let path = write(tmp.path(), "q.tsv", "q1\td1\t1\r\nq1 d2 0\n");
        let qrels = read_qrels(&path).unwrap();
        assert_eq!(qrels.judgment_count(), 2);
        assert_eq!(qrels.judgments("q1").unwrap().get("d2"), Some(&0));
    }

    fn err_string(result: Result<impl fmt::Debug, BeirError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn malformed_corpus_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write(
            tmp.path(),
            "corpus.jsonl",
            "{\"_id\": \"a\", \"text\": \"x\"}\n\n{\"_id\": \"b\", \"text\": \n",
        );
        let mut reader = CorpusReader::open(&path).unwrap();
        assert!(reader.next().unwrap().is_ok());
        let err = reader.next().unwrap().unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, BeirError::Json { line: 3, .. }), "{message}");
        assert!(
            message.contains("corpus.jsonl:3: invalid JSON"),
            "{message}"
        );
        assert!(reader.next().is_none(), "the stream stops after an error");

        let path = write(tmp.path(), "c2.jsonl", "{\"title\": \"no id\"}\n");
        let message = err_string(
            CorpusReader::open(&path)
                .unwrap()
                .collect::<Result<Vec<_>, _>>(),
        );
        assert!(
            message.contains("c2.jsonl:1:") && message.contains("_id"),
            "{message}"
        );

        let path = write(tmp.path(), "c3.jsonl", "{\"_id\": [1], \"text\": \"\"}\n");
        let message = err_string(
            CorpusReader::open(&path)
                .unwrap()
                .collect::<Result<Vec<_>, _>>(),
        );
        assert!(message.contains("a string or an integer"), "{message}");

        let path = write(tmp.path(), "c4.jsonl", "{\"_id\": \"\", \"text\": \"\"}\n");
        let message = err_string(
            CorpusReader::open(&path)
                .unwrap()
                .collect::<Result<Vec<_>, _>>(),
        );
        assert!(message.contains("c4.jsonl:1: empty \"_id\""), "{message}");

        let path = write(
            tmp.path(),
            "c5.jsonl",
            "{\"_id\": \"a\", \"text\": \"\"}\n{\"_id\": \"b\"}\n{\"_id\": \"a\"}\n",
        );
        let err = CorpusReader::open(&path)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err();
        assert!(
            matches!(err, BeirError::DuplicateId { line: 3, first_line: 1, ref id, .. } if id == "a"),
            "{err}"
        );

        let path = tmp.path().join("c6.jsonl");
        std::fs::write(&path, b"{\"_id\": \"a\", \"text\": \"\xff\"}\n").unwrap();
        let message = err_string(
            CorpusReader::open(&path)
                .unwrap()
                .collect::<Result<Vec<_>, _>>(),
        );
        assert!(message.contains("c6.jsonl:1: invalid UTF-8"), "{message}");
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_gz(tmp.path(), "corpus.jsonl.gz", CORPUS);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&path, &bytes).unwrap();
        let err = CorpusReader::open(&path)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err();
        assert!(matches!(err, BeirError::Read { .. }), "{err}");
        assert!(err.to_string().contains("corpus.jsonl.gz:"), "{err}");
    }

    #[test]
    fn malformed_qrels_name_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let cases = [
            ("query-id\tcorpus-id\tscore\nq1\td1\n", ":2: expected 3"),
            (
                "query-id\tcorpus-id\tscore\nq1\td1\tyes\n",
                ":2: score \"yes\"",
            ),
            (
                "query-id\tcorpus-id\tscore\nq1\td1\t1.5\n",
                ":2: score \"1.5\"",
            ),
            (
                "q\td\ts\nq1\td1\t1\n\nq1\td1\t0\n",
                ":4: query \"q1\", document \"d1\" judged twice",
            ),
            ("q\td\ts\n\td1\t1\n", ":2: empty query-id"),
        ];
        for (i, (content, expected)) in cases.iter().enumerate() {
            let path = write(tmp.path(), &format!("qrels{i}.tsv"), content);
            let message = err_string(read_qrels(&path));
            assert!(
                message.contains(&format!("qrels{i}.tsv{expected}")),
                "case {i}: {message}"
            );
        }
        // The same judgment twice is harmless.
        let path = write(tmp.path(), "dup.tsv", "q\td\ts\nq1\td1\t1\nq1\td1\t1\n");
        assert_eq!(read_qrels(&path).unwrap().judgment_count(), 1);
    }

    #[test]
    fn dataset_level_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let message = err_string(BeirDataset::open(tmp.path()));
        assert!(
            message.contains("no corpus.jsonl or corpus.jsonl.gz"),
            "{message}"
        );

        write(tmp.path(), "corpus.jsonl", CORPUS);
        let message = err_string(BeirDataset::open(tmp.path()));
        assert!(message.contains("test.tsv"), "{message}");

        write(tmp.path(), "qrels/test.tsv", QRELS);
        let message = err_string(BeirDataset::open(tmp.path()));
        assert!(message.contains("queries.jsonl"), "{message}");

        write(tmp.path(), "queries.jsonl", r#"{"_id": "q1", "text": "x"}"#);
        let err = BeirDataset::open(tmp.path()).unwrap_err();
        assert!(
            matches!(err, BeirError::MissingQueries { count: 1, ref examples, .. } if examples == &["q2"]),
            "{err}"
        );

        write(tmp.path(), "queries.jsonl", QUERIES);
        assert!(matches!(
            BeirDataset::open_split(tmp.path(), "../test").unwrap_err(),
            BeirError::InvalidSplit { .. }
        ));
        let message = err_string(BeirDataset::open_split(tmp.path(), "dev"));
        assert!(message.contains("dev.tsv"), "{message}");

        // A judged document missing from the corpus is reported by corpus_stats.
        write(tmp.path(), "qrels/dev.tsv", "q\td\ts\nq3\tnope\t1\n");
        let ds = BeirDataset::open_split(tmp.path(), "dev").unwrap();
        assert_eq!(ds.queries().len(), 1);
        assert_eq!(ds.corpus_stats().unwrap().missing_judged_docs, vec!["nope"]);
    }
}
