//! Retrieval evaluation: the datasets, the metrics, the latency figures and the record of each run.
//!
//! Pure library code, no services and no I/O beyond reading a dataset directory and appending
//! to an experiments log. It owns:
//!
//! * [`beir`]: reading a dataset in BEIR layout (`corpus.jsonl` or `corpus.jsonl.gz`,
//!   `queries.jsonl`, `qrels/<split>.tsv`), streaming, with errors that name the file and the
//!   line. Only a document's `_id`, `title` and `text` and a query's `_id` and `text` are ever
//!   kept; a query's `metadata` (SciFact's evidence annotations, keyed by the relevant
//!   document ids) is skipped unread. Only queries that appear in the qrels are evaluated.
//! * [`metrics`]: nDCG@k, Recall@k and MRR@k per query and averaged over queries, the
//!   definitions `trec_eval`/BEIR use (graded gain, log2 discount, ideal DCG from the qrels).
//! * [`latency`]: nearest-rank percentiles (p50, p95, p99) of query durations.
//! * [`report`]: the [`RetrievalReport`] of one run (a table for people, one JSON line for
//!   programs) and the [`ExperimentLog`], a JSON-lines file with one record per run.
//!
//! It does not know how documents are ingested or queries retrieved: the caller (the
//! `ragctl eval` command) feeds the dataset through the real pipeline and hands the ranked
//! document ids back to [`metrics::Evaluator`].

pub mod beir;
pub mod latency;
pub mod metrics;
pub mod report;

pub use beir::{BeirDataset, BeirError, Document, Qrels, Query};
pub use latency::LatencySummary;
pub use metrics::{Evaluation, Evaluator, QueryMetrics};
pub use report::{
    ExperimentLog, ExperimentLogError, ExperimentRecord, GitInfo, LatencyMs, RetrievalReport,
    render_table,
};
