//! `ragctl eval`: quality measured through the real system. Documents go in as uploads do
//! (object store → event → ingest-worker → embedder), questions go to the real services over
//! gRPC, and `rag-eval` computes the figures and records each run (the local experiments log,
//! and MLflow when `MLFLOW_TRACKING_URI` is set).
//!
//! * [`retrieval`]: a BEIR dataset through the retriever: nDCG@10, Recall@100, MRR@10;
//!   with `--rerank`, through the configured reranker too.
//! * [`sweep`]: the same over a grid of fusion modes, alphas and chunk sizes (and reranking).
//! * [`answers`]: a question-answering set through the router: answer and citation metrics,
//!   optionally an LLM judge.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use rag_config::{DomainSettings, Fusion, Settings, Tier};
use rag_eval::report::LatencyMs;
use rag_eval::{
    BeirDataset, Evaluation, Evaluator, ExperimentLog, ExperimentRecord, MlflowTarget, Recorder,
};
use rag_launcher::{Loader, System};
use rag_proto::retriever_service_client::RetrieverServiceClient;
use rag_proto::{FusionMode, SearchRequest};

mod answers;
mod retrieval;
mod sweep;

pub use answers::{AnswersArgs, answers};
pub use retrieval::{RetrievalArgs, retrieval};
pub use sweep::{SweepArgs, sweep};

/// The domain an evaluation corpus is loaded into.
const DOMAIN: &str = "eval";

/// How a query's two rankings are combined: the fusion and, for weighted fusion, the
/// normalisation of the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Method {
    /// BM25 alone.
    Bm25,
    /// Dense alone.
    Dense,
    /// alpha-weighted, each side min-max normalised per query.
    Minmax,
    /// alpha-weighted, each side z-score normalised per query.
    Zscore,
    /// Reciprocal rank fusion (alpha does not apply).
    Rrf,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bm25 => "bm25",
            Self::Dense => "dense",
            Self::Minmax => "minmax",
            Self::Zscore => "zscore",
            Self::Rrf => "rrf",
        }
    }

    /// What the search request asks for.
    fn request(self) -> FusionMode {
        match self {
            Self::Bm25 => FusionMode::KeywordOnly,
            Self::Dense => FusionMode::DenseOnly,
            Self::Minmax | Self::Zscore => FusionMode::Weighted,
            Self::Rrf => FusionMode::Rrf,
        }
    }

    /// The retriever's configured fusion this mode needs: weighted fusion normalises as the
    /// retriever is configured (`retriever.fusion`), so z-score points run on a system
    /// configured for it. `None`: any configuration.
    fn configured(self) -> Option<Fusion> {
        match self {
            Self::Minmax => Some(Fusion::Weighted),
            Self::Zscore => Some(Fusion::Zscore),
            Self::Bm25 | Self::Dense | Self::Rrf => None,
        }
    }

    /// Whether alpha changes anything.
    fn uses_alpha(self) -> bool {
        matches!(self, Self::Minmax | Self::Zscore)
    }

    /// Weighted fusion as `settings` configure it.
    fn weighted(settings: &Settings) -> Self {
        match settings.retriever.fusion {
            Fusion::Zscore => Self::Zscore,
            Fusion::Weighted | Fusion::Rrf => Self::Minmax,
        }
    }
}

/// The dataset's name: its file or folder name without `.jsonl` / `.gz`.
fn dataset_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.strip_suffix(".jsonl").unwrap_or(name).to_owned()
}

/// The settings of an evaluation system on `data_dir`: an ephemeral gateway port and the
/// evaluation domain.
fn eval_settings(mut settings: Settings, data_dir: PathBuf) -> Settings {
    settings.data_dir = data_dir;
    settings.gateway.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    if settings.domain(DOMAIN).is_none() {
        settings.domains.push(DomainSettings::new(
            DOMAIN,
            "evaluation corpus",
            Tier::Light,
        ));
    }
    settings
}

/// Runs `work` on the embedded system started with `settings`, then shuts it down.
async fn with_system<T>(
    settings: Settings,
    work: impl AsyncFnOnce(&Settings) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    settings.validate()?;
    let mut system: System = rag_launcher::start(settings).await?;
    system.wait_ready(Duration::from_secs(120)).await?;
    let result = work(&system.settings).await;
    system.shutdown().await;
    result
}

/// Puts a BEIR corpus into the system and waits until it is indexed; returns the corpus id
/// of each stored file name and the number of documents.
async fn load_corpus(
    settings: &Settings,
    dataset: &BeirDataset,
) -> anyhow::Result<(HashMap<String, String>, usize)> {
    let started = Instant::now();
    let mut loader = Loader::new(settings)?;
    let file_to_id =
        rag_launcher::load::put_corpus(&mut loader, dataset.corpus_path(), DOMAIN).await?;
    let report = loader.report();
    let docs = report.uploaded + report.unchanged;
    eprintln!(
        "{docs} documents: {} queued, {} unchanged ({:.1} s)",
        report.uploaded,
        report.unchanged,
        started.elapsed().as_secs_f64()
    );
    let progress = crate::load::wait_with_bar(&loader).await?;
    eprintln!(
        "indexed {}, failed {} after {:.1} s",
        progress.indexed,
        progress.failed,
        started.elapsed().as_secs_f64()
    );
    Ok((file_to_id, docs))
}

/// One retrieval configuration.
#[derive(Debug, Clone, Copy)]
struct Search {
    fusion: Method,
    alpha: Option<f32>,
    top_k: u32,
    /// Have the configured reranker re-score the fused candidates.
    rerank: bool,
}

/// Every test query through the retriever; documents ranked by their best chunk.
async fn search_all(
    settings: &Settings,
    dataset: &BeirDataset,
    file_to_id: &HashMap<String, String>,
    search: Search,
) -> anyhow::Result<(Evaluation, Vec<Duration>)> {
    let retriever = RetrieverServiceClient::new(rag_grpc::lazy_channel(
        &settings.router.retriever_url,
        Duration::from_secs(30),
    )?);
    let mut evaluator = Evaluator::new(dataset.qrels());
    let mut latencies = Vec::with_capacity(dataset.queries().len());
    for query in dataset.queries() {
        let request = SearchRequest {
            query: query.text.clone(),
            tenant: settings.default_tenant.clone(),
            domain: DOMAIN.into(),
            top_k: search.top_k,
            alpha: search.alpha,
            fusion: search.fusion.request().into(),
            rerank: Some(search.rerank),
            ..SearchRequest::default()
        };
        let started = Instant::now();
        let hits = retriever.clone().search(request).await?.into_inner().hits;
        latencies.push(started.elapsed());
        let mut seen = HashSet::new();
        let ranking: Vec<&str> = hits
            .iter()
            .filter_map(|h| h.chunk.as_ref())
            .filter_map(|c| c.object_key.rsplit('/').next())
            .filter_map(|file| file_to_id.get(file).map(String::as_str))
            .filter(|id| seen.insert(*id))
            .collect();
        evaluator.add(&query.id, &ranking)?;
    }
    let evaluation = evaluator.finish();
    if evaluation.queries() == 0 {
        bail!("no query had relevance judgments");
    }
    Ok((evaluation, latencies))
}

/// The parameters every retrieval record carries.
fn retrieval_params(
    settings: &Settings,
    dataset: &str,
    search: Search,
) -> BTreeMap<String, String> {
    let mut params = BTreeMap::from([
        ("dataset".to_owned(), dataset.to_owned()),
        ("top_k".to_owned(), search.top_k.to_string()),
        ("fusion".to_owned(), search.fusion.name().to_owned()),
        (
            "chunk_size".to_owned(),
            settings.ingest.chunk_size.to_string(),
        ),
        (
            "chunk_overlap".to_owned(),
            settings.ingest.chunk_overlap.to_string(),
        ),
    ]);
    if search.fusion.uses_alpha() {
        params.insert(
            "alpha".into(),
            search.alpha.unwrap_or(settings.retriever.alpha).to_string(),
        );
    }
    if search.fusion == Method::Rrf {
        params.insert("rrf_k".into(), settings.retriever.rrf_k.to_string());
    }
    params.insert("rerank".into(), search.rerank.to_string());
    if search.rerank {
        if let Some(model) = settings.reranker.model_id() {
            params.insert("reranker".into(), model);
        }
        params.insert(
            "rerank_candidates".into(),
            settings.retriever.rerank_candidates.to_string(),
        );
    }
    params
}

/// Where runs are recorded: `.rag-data/experiments.jsonl`, and MLflow when
/// `MLFLOW_TRACKING_URI` is set.
fn recorder() -> Recorder {
    Recorder::new(
        ExperimentLog::in_data_dir(Path::new(".rag-data")),
        MlflowTarget::from_env(|name| std::env::var(name).ok()),
    )
}

/// Records one run, saying where on standard error; failures are warnings.
async fn record(recorder: &Recorder, record: &ExperimentRecord, run_name: &str) {
    let recorded = recorder.record(record, run_name).await;
    if let Err(e) = recorded.log {
        eprintln!("warning: could not record the experiment: {e}");
    }
    match (recorded.mlflow, recorder.mlflow()) {
        (Some(Ok(run_id)), Some(target)) => eprintln!(
            "MLflow run {run_id} in experiment {:?} at {}",
            target.experiment_for(&record.kind),
            target.tracking_uri
        ),
        (Some(Err(e)), _) => {
            eprintln!("warning: the run is in the local log but not in MLflow: {e}");
        }
        _ => {}
    }
}

/// Percentiles of `samples`.
fn latency(samples: &[Duration]) -> LatencyMs {
    LatencyMs::from_samples(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names() {
        assert_eq!(
            dataset_name(Path::new("/d/nq-open-oracle.q0000-1999.jsonl.gz")),
            "nq-open-oracle.q0000-1999"
        );
        assert_eq!(
            dataset_name(Path::new("../shared/datasets/scifact")),
            "scifact"
        );
        assert_eq!(dataset_name(Path::new("qa.jsonl")), "qa");
    }

    #[test]
    fn fusion_modes_map_to_requests_and_configuration() {
        assert_eq!(Method::Zscore.request(), FusionMode::Weighted);
        assert_eq!(Method::Zscore.configured(), Some(Fusion::Zscore));
        assert_eq!(Method::Minmax.configured(), Some(Fusion::Weighted));
        assert_eq!(Method::Rrf.configured(), None);
        assert!(!Method::Rrf.uses_alpha() && Method::Minmax.uses_alpha());
        let mut settings = Settings::default();
        assert_eq!(Method::weighted(&settings), Method::Minmax);
        settings.retriever.fusion = Fusion::Zscore;
        assert_eq!(Method::weighted(&settings), Method::Zscore);
        let params = retrieval_params(
            &settings,
            "scifact",
            Search {
                fusion: Method::Rrf,
                alpha: Some(0.3),
                top_k: 100,
                rerank: false,
            },
        );
        assert_eq!(params["fusion"], "rrf");
        assert!(!params.contains_key("alpha"), "{params:?}");
        assert_eq!(params["rrf_k"], "60");
        assert_eq!(params["rerank"], "false");
        assert!(!params.contains_key("reranker"), "{params:?}");
    }

    #[test]
    fn a_reranked_run_records_the_reranker() {
        let settings = Settings {
            reranker: rag_config::RerankerSettings::Bedrock {
                model_id: "amazon.rerank-v1:0".into(),
                max_attempts: 1,
                endpoint_url: None,
            },
            ..Settings::default()
        };
        let search = Search {
            fusion: Method::Minmax,
            alpha: None,
            top_k: 10,
            rerank: true,
        };
        let params = retrieval_params(&settings, "scifact", search);
        assert_eq!(params["rerank"], "true");
        assert_eq!(params["reranker"], "amazon.rerank-v1:0");
        assert_eq!(params["rerank_candidates"], "30");
    }
}
