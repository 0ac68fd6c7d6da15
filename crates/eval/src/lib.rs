//! Retrieval and answer evaluation: the datasets, the metrics, the latency figures, the LLM
//! judge and the record of each run.
//!
//! Library code, no services: its I/O is reading datasets, appending to an experiments log,
//! calling an MLflow tracking server and, for the judge, a model through a
//! [`rag_generation::Generator`] it is handed. It owns:
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
//!   programs), the [`ExperimentLog`], a JSON-lines file with one record per run, and the
//!   [`Recorder`] that writes a record there and to MLflow.
//! * [`mlflow`]: a record as an MLflow run, through MLflow's REST API.
//! * [`qa`]: question-answering sets with gold answers and gold passages (NQ-Open oracle's
//!   layout), and the choice of passages held out of the corpus.
//! * [`answers`]: answer metrics (SQuAD-normalised answer containment and token F1, context
//!   recall, citation precision, the "I don't know" rate) and their report.
//! * [`judge`]: LLM-as-judge, a versioned prompt (`prompts/judge/`) scoring faithfulness and
//!   relevance, its reply parsed strictly.
//!
//! It does not know how documents are ingested or queries retrieved: the caller (the
//! `ragctl eval` command) feeds the dataset through the real pipeline and hands the ranked
//! document ids back to [`metrics::Evaluator`].

pub mod answers;
pub mod beir;
pub mod judge;
pub mod latency;
pub mod metrics;
pub mod mlflow;
pub mod qa;
pub mod report;

pub use answers::{AnswerEvaluator, AnswersReport, QuestionResult};
pub use beir::{BeirDataset, BeirError, Document, Qrels, Query};
pub use judge::{Judge, JudgeError, JudgePrompt, Verdict};
pub use latency::LatencySummary;
pub use metrics::{Evaluation, Evaluator, QueryMetrics};
pub use mlflow::{MlflowClient, MlflowError, MlflowTarget};
pub use qa::{QaDataset, QaItem};
pub use report::{
    ExperimentLog, ExperimentLogError, ExperimentRecord, GitInfo, LatencyMs, Recorded, Recorder,
    RetrievalReport, render_table,
};
