//! What an evaluation run reports, and the log of runs.
//!
//! [`RetrievalReport`] is one run's result: [`RetrievalReport::to_json_line`] is the single
//! JSON object `ragctl eval retrieval --json` prints last, with the keys `mode`, `ndcg@10`,
//! `recall@100`, `mrr@10`, `queries`, `docs`, `latency_ms` (`p50`, `p95`, `p99`) and `params`;
//! its `Display` and [`render_table`] are for people.
//!
//! [`ExperimentLog`] appends one [`ExperimentRecord`] per run, one JSON object per line, to a
//! file (default `.rag-data/experiments.jsonl`): parameters (strings), metrics (numbers), the
//! git revision when `git rev-parse HEAD` answers, and the Unix time. Parameters and metrics
//! are flat maps so a record maps one-to-one onto an MLflow run ([`crate::mlflow`] translates
//! the keys MLflow refuses, such as `ndcg@10`). [`Recorder`] writes the local line first and
//! then, when `MLFLOW_TRACKING_URI` names a server, the MLflow run: a tracking server that
//! fails costs the run its MLflow copy, never its line.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::latency::{LatencySummary, as_millis_f64};
use crate::metrics::Evaluation;
use crate::mlflow::{MlflowClient, MlflowError, MlflowTarget};

/// Query latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl LatencyMs {
    pub fn from_summary(summary: &LatencySummary) -> Self {
        Self {
            p50: as_millis_f64(summary.p50),
            p95: as_millis_f64(summary.p95),
            p99: as_millis_f64(summary.p99),
        }
    }

    /// Nearest-rank percentiles of `samples` (see [`crate::latency`]); zeros when empty.
    pub fn from_samples(samples: &[Duration]) -> Self {
        LatencySummary::from_samples(samples)
            .map(|s| Self::from_summary(&s))
            .unwrap_or_default()
    }
}

/// The result of one retrieval evaluation run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalReport {
    /// `bm25`, `dense`, `hybrid`, `rrf`, …
    pub mode: String,
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    #[serde(rename = "recall@100")]
    pub recall_at_100: f64,
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
    /// Queries averaged over.
    pub queries: usize,
    /// Documents in the corpus.
    pub docs: usize,
    pub latency_ms: LatencyMs,
    /// The settings of the run (alpha, top-k, fusion, dataset, …), as text.
    pub params: BTreeMap<String, String>,
}

impl RetrievalReport {
    pub fn from_evaluation(
        mode: impl Into<String>,
        evaluation: &Evaluation,
        docs: usize,
        latency_ms: LatencyMs,
        params: BTreeMap<String, String>,
    ) -> Self {
        Self {
            mode: mode.into(),
            ndcg_at_10: evaluation.ndcg_at_10,
            recall_at_100: evaluation.recall_at_100,
            mrr_at_10: evaluation.mrr_at_10,
            queries: evaluation.queries(),
            docs,
            latency_ms,
            params,
        }
    }

    /// One line of JSON (no newline). Non-finite numbers would become `null`; the metrics and
    /// latencies this crate computes are always finite.
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// The metrics under the JSON keys, plus `latency_p50_ms`, `latency_p95_ms`,
    /// `latency_p99_ms`: what an [`ExperimentRecord`] stores.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        [
            ("ndcg@10", self.ndcg_at_10),
            ("recall@100", self.recall_at_100),
            ("mrr@10", self.mrr_at_10),
            ("queries", self.queries as f64),
            ("docs", self.docs as f64),
            ("latency_p50_ms", self.latency_ms.p50),
            ("latency_p95_ms", self.latency_ms.p95),
            ("latency_p99_ms", self.latency_ms.p99),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

impl fmt::Display for RetrievalReport {
    /// A small two-column table, one line per figure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<12}{}", "mode", self.mode)?;
        writeln!(f, "{:<12}{:.4}", "nDCG@10", self.ndcg_at_10)?;
        writeln!(f, "{:<12}{:.4}", "Recall@100", self.recall_at_100)?;
        writeln!(f, "{:<12}{:.4}", "MRR@10", self.mrr_at_10)?;
        writeln!(f, "{:<12}{}", "queries", self.queries)?;
        writeln!(f, "{:<12}{}", "docs", self.docs)?;
        writeln!(
            f,
            "{:<12}p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
            "latency", self.latency_ms.p50, self.latency_ms.p95, self.latency_ms.p99
        )?;
        if !self.params.is_empty() {
            writeln!(f, "{:<12}{}", "params", format_params(&self.params))?;
        }
        Ok(())
    }
}

/// Several reports (modes, a sweep's grid points) as one table, a row each, aligned and
/// valid Markdown.
pub fn render_table(reports: &[RetrievalReport]) -> String {
    let header = [
        "mode",
        "nDCG@10",
        "Recall@100",
        "MRR@10",
        "queries",
        "docs",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "params",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.mode.clone(),
                format!("{:.4}", r.ndcg_at_10),
                format!("{:.4}", r.recall_at_100),
                format!("{:.4}", r.mrr_at_10),
                r.queries.to_string(),
                r.docs.to_string(),
                format!("{:.2}", r.latency_ms.p50),
                format!("{:.2}", r.latency_ms.p95),
                format!("{:.2}", r.latency_ms.p99),
                format_params(&r.params),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .chain([header[c].len(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    // Text columns left-aligned, numbers right-aligned.
    let numeric = |c: usize| c != 0 && c != header.len() - 1;
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if numeric(c) {
                    format!("{cell:>w$}", w = widths[c])
                } else {
                    format!("{cell:<w$}", w = widths[c])
                }
            })
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&header.map(str::to_owned));
    // Each rule cell spans the cell and its two padding spaces; `:` marks right alignment.
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, &w)| {
            if numeric(c) {
                format!("{}:", "-".repeat(w + 1))
            } else {
                "-".repeat(w + 2)
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

fn format_params(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The git commit of a working tree, when git can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitInfo {
    pub revision: String,
    /// Tracked files differ from the commit.
    pub dirty: bool,
}

impl GitInfo {
    /// `git rev-parse HEAD` (and `git status --porcelain --untracked-files=no`) in `dir`;
    /// `None` when git is missing or `dir` is not in a repository.
    pub fn detect(dir: &Path) -> Option<Self> {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .current_dir(dir)
                .output()
                .ok()
                .filter(|out| out.status.success())
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let revision = git(&["rev-parse", "HEAD"]).filter(|r| !r.is_empty())?;
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Some(Self { revision, dirty })
    }
}

/// One line of the experiments log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRecord {
    /// What was evaluated: `retrieval` (also each point of a sweep) or `answers`.
    pub kind: String,
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
    /// `git rev-parse HEAD`, `null` when unknown.
    pub git_revision: Option<String>,
    /// Whether tracked files had uncommitted changes, `null` when unknown.
    pub git_dirty: Option<bool>,
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
}

impl ExperimentRecord {
    /// A record stamped with the current time and the git revision of the current directory.
    pub fn new(
        kind: impl Into<String>,
        params: BTreeMap<String, String>,
        metrics: BTreeMap<String, f64>,
    ) -> Self {
        let git = GitInfo::detect(Path::new("."));
        Self {
            kind: kind.into(),
            unix_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            git_revision: git.as_ref().map(|g| g.revision.clone()),
            git_dirty: git.map(|g| g.dirty),
            params,
            metrics,
        }
    }

    /// A `retrieval` record: the report's params plus `mode`, and its [`RetrievalReport::metrics`].
    pub fn from_retrieval(report: &RetrievalReport) -> Self {
        let mut params = report.params.clone();
        params.insert("mode".to_owned(), report.mode.clone());
        Self::new("retrieval", params, report.metrics())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentLogError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot serialise experiment record: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error("{}:{line}: invalid experiment record: {source}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// An append-only JSON-lines file of [`ExperimentRecord`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentLog {
    path: PathBuf,
}

impl Default for ExperimentLog {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PATH)
    }
}

impl ExperimentLog {
    /// Relative to the working directory, beside the embedded system's other data.
    pub const DEFAULT_PATH: &'static str = ".rag-data/experiments.jsonl";

    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `experiments.jsonl` in a data directory (the configured `data_dir`).
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join("experiments.jsonl"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line, creating the file and its directory if needed. The line
    /// goes out in a single write to a file opened for appending, so concurrent runs do not
    /// interleave their lines.
    ///
    /// A metric that is not a finite number is left out (JSON has no NaN: it would be written
    /// as `null`, which no reader takes for a number).
    pub fn append(&self, record: &ExperimentRecord) -> Result<(), ExperimentLogError> {
        let mut finite = record.clone();
        finite.metrics.retain(|_, v| v.is_finite());
        let mut line = serde_json::to_string(&finite).map_err(ExperimentLogError::Serialize)?;
        line.push('\n');
        let io_err = |source| ExperimentLogError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ExperimentLogError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io_err)?;
        file.write_all(line.as_bytes()).map_err(io_err)
    }

    /// Every record, oldest first; none when the file does not exist yet.
    pub fn read_all(&self) -> Result<Vec<ExperimentRecord>, ExperimentLogError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ExperimentLogError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|source| ExperimentLogError::Parse {
                    path: self.path.clone(),
                    line: i + 1,
                    source,
                })
            })
            .collect()
    }
}

/// Where a run is recorded: always a line of the local [`ExperimentLog`], and an MLflow run
/// when a tracking server is configured.
#[derive(Debug)]
pub struct Recorder {
    log: ExperimentLog,
    mlflow: Option<(MlflowTarget, Option<MlflowClient>)>,
}

/// What recording one run did. The local line is written first, whatever MLflow does.
#[derive(Debug)]
pub struct Recorded {
    pub log: Result<(), ExperimentLogError>,
    /// The MLflow run id; `None` when no tracking server is configured.
    pub mlflow: Option<Result<String, MlflowError>>,
}

impl Recorder {
    /// MLflow requests give up after this long: a tracking server that does not answer costs
    /// a run at most a few seconds.
    pub const MLFLOW_TIMEOUT: Duration = Duration::from_secs(10);

    pub fn new(log: ExperimentLog, mlflow: Option<MlflowTarget>) -> Self {
        let mlflow = mlflow.map(|target| {
            let client = MlflowClient::new(&target, Self::MLFLOW_TIMEOUT).ok();
            (target, client)
        });
        Self { log, mlflow }
    }

    pub fn log(&self) -> &ExperimentLog {
        &self.log
    }

    /// The tracking server runs go to, if any.
    pub fn mlflow(&self) -> Option<&MlflowTarget> {
        self.mlflow.as_ref().map(|(target, _)| target)
    }

    /// Appends `record` to the log, then (if configured) records it as MLflow run `run_name`
    /// in the experiment for its kind.
    pub async fn record(&self, record: &ExperimentRecord, run_name: &str) -> Recorded {
        let log = self.log.append(record);
        let mlflow = match &self.mlflow {
            None => None,
            Some((target, None)) => Some(Err(MlflowError::InvalidUri(target.tracking_uri.clone()))),
            Some((target, Some(client))) => Some(
                client
                    .log_record(&target.experiment_for(&record.kind), run_name, record)
                    .await,
            ),
        };
        Recorded { log, mlflow }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn report() -> RetrievalReport {
        RetrievalReport {
            mode: "hybrid".into(),
            ndcg_at_10: 0.7012,
            recall_at_100: 0.95,
            mrr_at_10: 0.66,
            queries: 300,
            docs: 5183,
            latency_ms: LatencyMs {
                p50: 12.5,
                p95: 20.25,
                p99: 31.0,
            },
            params: BTreeMap::from([
                ("alpha".to_owned(), "0.5".to_owned()),
                ("top_k".to_owned(), "100".to_owned()),
            ]),
        }
    }

    #[test]
    fn json_line_has_exactly_the_documented_keys() {
        let line = report().to_json_line().unwrap();
        assert!(!line.contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        let obj = value.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "docs",
                "latency_ms",
                "mode",
                "mrr@10",
                "ndcg@10",
                "params",
                "queries",
                "recall@100"
            ]
        );
        assert_eq!(obj["ndcg@10"], 0.7012);
        assert_eq!(obj["recall@100"], 0.95);
        assert_eq!(obj["mrr@10"], 0.66);
        assert_eq!(obj["queries"], 300);
        assert_eq!(obj["docs"], 5183);
        assert_eq!(obj["mode"], "hybrid");
        assert_eq!(obj["latency_ms"]["p95"], 20.25);
        assert_eq!(obj["params"]["alpha"], "0.5");
        // And it reads back.
        let back: RetrievalReport = serde_json::from_str(&line).unwrap();
        assert_eq!(back, report());
    }

    #[test]
    fn human_readable_forms() {
        let text = report().to_string();
        assert!(text.contains("nDCG@10     0.7012"), "{text}");
        assert!(
            text.contains("p50 12.50 ms, p95 20.25 ms, p99 31.00 ms"),
            "{text}"
        );
        assert!(text.contains("alpha=0.5 top_k=100"), "{text}");

        let mut bm25 = report();
        bm25.mode = "bm25".into();
        bm25.params.clear();
        let table = render_table(&[report(), bm25]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("| mode   | nDCG@10 |"), "{table}");
        assert!(
            lines[1].starts_with("|--------|--------:|-----------:|"),
            "{table}"
        );
        assert!(lines[2].starts_with("| hybrid |  0.7012 |"), "{table}");
        assert!(lines[3].starts_with("| bm25   |  0.7012 |"), "{table}");
        // Every row is as wide as the header.
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() == lines[0].chars().count()),
            "{table}"
        );
    }

    #[test]
    fn from_evaluation_and_latency() {
        use crate::beir::Qrels;
        let qrels: Qrels = [("q1", "d1", 1), ("q2", "d2", 1)].into_iter().collect();
        let eval =
            crate::metrics::evaluate(&qrels, [("q1", vec!["d1"]), ("q2", vec!["x"])]).unwrap();
        let latency =
            LatencyMs::from_samples(&[Duration::from_micros(1500), Duration::from_millis(3)]);
        // Nearest rank over [1.5 ms, 3 ms]: p50 → rank 1 → 1.5; p95, p99 → rank 2 → 3.
        assert_eq!(
            latency,
            LatencyMs {
                p50: 1.5,
                p95: 3.0,
                p99: 3.0
            }
        );
        let r = RetrievalReport::from_evaluation("bm25", &eval, 10, latency, BTreeMap::new());
        assert_eq!((r.queries, r.docs), (2, 10));
        assert_eq!(
            (r.ndcg_at_10, r.recall_at_100, r.mrr_at_10),
            (0.5, 0.5, 0.5)
        );
        assert_eq!(LatencyMs::from_samples(&[]), LatencyMs::default());
    }

    #[test]
    fn experiment_log_appends_one_line_per_run() {
        let tmp = tempfile::tempdir().unwrap();
        let log = ExperimentLog::in_data_dir(&tmp.path().join("nested/data"));
        assert!(log.read_all().unwrap().is_empty());

        let first = ExperimentRecord::from_retrieval(&report());
        log.append(&first).unwrap();
        let mut second = first.clone();
        second.params.insert("alpha".into(), "0.7".into());
        log.append(&second).unwrap();

        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
        let value: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(value["kind"], "retrieval");
        assert_eq!(value["params"]["mode"], "hybrid");
        assert_eq!(value["params"]["alpha"], "0.5");
        assert_eq!(value["metrics"]["ndcg@10"], 0.7012);
        assert_eq!(value["metrics"]["queries"], 300.0);
        assert_eq!(value["metrics"]["latency_p99_ms"], 31.0);
        assert!(value["unix_time"].as_u64().unwrap() > 1_700_000_000);

        assert_eq!(log.read_all().unwrap(), vec![first.clone(), second]);

        let mut odd = first;
        odd.metrics.insert("undefined".into(), f64::NAN);
        odd.metrics.insert("infinite".into(), f64::INFINITY);
        log.append(&odd).unwrap();
        let read = log.read_all().unwrap();
        assert!(!read[2].metrics.contains_key("undefined"));
        assert!(!read[2].metrics.contains_key("infinite"));
        assert_eq!(read[2].metrics["ndcg@10"], 0.7012);
        let text = std::fs::read_to_string(log.path()).unwrap();

        std::fs::write(log.path(), format!("{text}\n{{oops\n")).unwrap();
        let err = log.read_all().unwrap_err().to_string();
        assert!(
            err.contains("experiments.jsonl:5: invalid experiment record"),
            "{err}"
        );
    }

    #[test]
    fn git_revision_when_available() {
        // Inside this repository git answers with a 40-hex revision; elsewhere, None.
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(GitInfo::detect(dir.path()), None);
        if let Some(git) = GitInfo::detect(Path::new(env!("CARGO_MANIFEST_DIR"))) {
            assert_eq!(git.revision.len(), 40, "{git:?}");
            assert!(git.revision.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_eq!(
            ExperimentLog::default().path(),
            Path::new(".rag-data/experiments.jsonl")
        );
    }
}
