//! `ragctl eval retrieval`: a BEIR dataset through the real system. The corpus goes in as
//! uploads do; the test queries go to the real retriever over gRPC; nDCG@10, Recall@100 and
//! MRR@10 come from `rag-eval`. With `--rerank` the retriever reranks (the quality gain is
//! the difference to the same run without; the latency cost is in the percentiles).

use std::path::PathBuf;

use anyhow::Context;
use rag_config::Settings;
use rag_eval::{BeirDataset, ExperimentRecord, RetrievalReport};

use super::{Method, Search, dataset_name, eval_settings, latency, record, recorder};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    Bm25,
    Dense,
    /// Weighted fusion, normalised as `retriever.fusion` says (min-max unless `zscore`).
    Hybrid,
    Rrf,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Bm25 => "bm25",
            Self::Dense => "dense",
            Self::Hybrid => "hybrid",
            Self::Rrf => "rrf",
        }
    }

    fn method(self, settings: &Settings) -> Method {
        match self {
            Self::Bm25 => Method::Bm25,
            Self::Dense => Method::Dense,
            Self::Hybrid => Method::weighted(settings),
            Self::Rrf => Method::Rrf,
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
    /// Rerank the fused candidates with the configured reranker (`[reranker]`; the
    /// candidates are max(top-k, `retriever.rerank_candidates`)). Without it, no rerank,
    /// whatever `retriever.rerank` says.
    #[arg(long)]
    rerank: bool,
    /// Where the loaded corpus is kept (a second run reuses it); default `.rag-data/eval/<dataset>`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
}

pub async fn retrieval(settings: Settings, args: RetrievalArgs) -> anyhow::Result<()> {
    let dataset = BeirDataset::open(&args.dataset)
        .with_context(|| format!("cannot open {}", args.dataset.display()))?;
    let name = dataset_name(&args.dataset);
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".rag-data/eval").join(&name));
    let settings = eval_settings(settings, data_dir);
    let report = super::with_system(settings, async |settings: &Settings| {
        let (file_to_id, docs) = super::load_corpus(settings, &dataset).await?;
        let search = Search {
            fusion: args.mode.method(settings),
            alpha: args.alpha,
            top_k: args.top_k,
            rerank: args.rerank,
        };
        let (evaluation, latencies) =
            super::search_all(settings, &dataset, &file_to_id, search).await?;
        Ok(RetrievalReport::from_evaluation(
            args.mode.name(),
            &evaluation,
            docs,
            latency(&latencies),
            super::retrieval_params(settings, &name, search),
        ))
    })
    .await?;
    println!("{report}");
    let run_name = format!(
        "retrieval {name} {}{}",
        report.mode,
        if args.rerank { " rerank" } else { "" }
    );
    record(
        &recorder(),
        &ExperimentRecord::from_retrieval(&report),
        &run_name,
    )
    .await;
    if args.json {
        println!("{}", report.to_json_line()?);
    }
    Ok(())
}
