//! `ragctl eval retrieval`: a BEIR dataset through the real system. The corpus goes in as
//! uploads do (object store → event → ingest-worker → embedder); the test queries go to the
//! real retriever over gRPC; nDCG@10, Recall@100 and MRR@10 come from `rag-eval`.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rag_config::{DomainSettings, Settings, Tier};
use rag_eval::report::LatencyMs;
use rag_eval::{BeirDataset, Evaluator, ExperimentLog, ExperimentRecord, RetrievalReport};
use rag_launcher::Loader;
use rag_proto::retriever_service_client::RetrieverServiceClient;
use rag_proto::{FusionMode, SearchRequest};

/// The domain the corpus is loaded into.
const DOMAIN: &str = "eval";

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    Bm25,
    Dense,
    Hybrid,
    Rrf,
}

impl Mode {
    fn fusion(self) -> FusionMode {
        match self {
            Self::Bm25 => FusionMode::KeywordOnly,
            Self::Dense => FusionMode::DenseOnly,
            Self::Hybrid => FusionMode::Weighted,
            Self::Rrf => FusionMode::Rrf,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bm25 => "bm25",
            Self::Dense => "dense",
            Self::Hybrid => "hybrid",
            Self::Rrf => "rrf",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RetrievalArgs {
    /// A dataset in BEIR layout: corpus.jsonl(.gz), queries.jsonl, qrels/test.tsv.
    #[arg(long)]
    dataset: PathBuf,
    #[arg(long, value_enum, default_value = "hybrid")]
    mode: Mode,
    /// Dense weight of hybrid fusion (default: the configured one).
    #[arg(long)]
    alpha: Option<f32>,
    /// Chunks retrieved per query (documents are ranked by their best chunk).
    #[arg(long, default_value_t = 100)]
    top_k: u32,
    /// Where the loaded corpus is kept (a second run reuses it); default `.rag-data/eval/<dataset>`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

pub async fn retrieval(mut settings: Settings, args: RetrievalArgs) -> anyhow::Result<()> {
    let dataset = BeirDataset::open(&args.dataset)
        .with_context(|| format!("cannot open {}", args.dataset.display()))?;
    let name = args
        .dataset
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    settings.data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".rag-data/eval").join(&name));
    settings.gateway.listen = "127.0.0.1:0".parse()?;
    if settings.domain(DOMAIN).is_none() {
        settings.domains.push(DomainSettings::new(
            DOMAIN,
            "evaluation corpus",
            Tier::Light,
        ));
    }
    let mut system = rag_launcher::start(settings).await?;
    system.wait_ready(Duration::from_secs(120)).await?;
    let result = run(&system.settings, &dataset, &name, &args).await;
    system.shutdown().await;
    result
}

async fn run(
    settings: &Settings,
    dataset: &BeirDataset,
    name: &str,
    args: &RetrievalArgs,
) -> anyhow::Result<()> {
    let tenant = settings.default_tenant.clone();

    // Load: every document as an upload of `<id>.txt` (title, blank line, text).
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
    // Query: documents ranked by their best chunk.
    let retriever = RetrieverServiceClient::new(rag_grpc::lazy_channel(
        &settings.router.retriever_url,
        Duration::from_secs(30),
    )?);
    let mut evaluator = Evaluator::new(dataset.qrels());
    let mut latencies = Vec::with_capacity(dataset.queries().len());
    for query in dataset.queries() {
        let request = SearchRequest {
            query: query.text.clone(),
            tenant: tenant.clone(),
            domain: DOMAIN.into(),
            top_k: args.top_k,
            query_vector: Vec::new(),
            query_model: String::new(),
            alpha: args.alpha,
            fusion: args.mode.fusion().into(),
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
    let mut params = BTreeMap::from([
        ("dataset".to_owned(), name.to_owned()),
        ("top_k".to_owned(), args.top_k.to_string()),
        (
            "chunk_size".to_owned(),
            settings.ingest.chunk_size.to_string(),
        ),
        (
            "chunk_overlap".to_owned(),
            settings.ingest.chunk_overlap.to_string(),
        ),
    ]);
    params.insert(
        "alpha".into(),
        args.alpha.unwrap_or(settings.retriever.alpha).to_string(),
    );
    params.insert(
        "fusion".into(),
        format!("{:?}", settings.retriever.fusion).to_lowercase(),
    );
    let report = RetrievalReport::from_evaluation(
        args.mode.name(),
        &evaluation,
        docs,
        LatencyMs::from_samples(&latencies),
        params,
    );
    println!("{report}");
    if let Err(e) = ExperimentLog::in_data_dir(std::path::Path::new(".rag-data"))
        .append(&ExperimentRecord::from_retrieval(&report))
    {
        eprintln!("could not record the experiment: {e}");
    }
    if args.json {
        println!("{}", report.to_json_line()?);
    }
    Ok(())
}
