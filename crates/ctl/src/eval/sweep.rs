//! `ragctl eval sweep`: retrieval quality over a grid of chunk sizes × fusion methods ×
//! alphas on one BEIR dataset, as a table; each point is recorded as an experiment.
//!
//! Each chunk size is its own ingestion into its own data directory
//! (`<data dir>/chunk-<size>`, reused by the next sweep). Within one, every point runs on one
//! embedded system, except z-score points: weighted fusion normalises as the retriever is
//! configured, so they run on a second start configured for z-score (over the same indexes).
//! RRF, BM25 and dense ignore alpha and run once per chunk size. With `--rerank`, every
//! point also runs reranked by the configured reranker, right after its plain run.

use std::path::PathBuf;

use anyhow::{Context, bail};
use rag_config::Settings;
use rag_eval::{BeirDataset, ExperimentRecord, RetrievalReport, render_table};

use super::{Method, Search, dataset_name, eval_settings, latency, record, recorder};

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// A dataset in BEIR layout: corpus.jsonl(.gz), queries.jsonl, qrels/test.tsv.
    #[arg(long)]
    dataset: PathBuf,
    /// Dense weights of the weighted fusions, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0.3, 0.5, 0.7])]
    alphas: Vec<f32>,
    /// Fusion methods, comma-separated: minmax, zscore, rrf, and the bm25 and dense baselines.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = [Method::Minmax, Method::Zscore, Method::Rrf]
    )]
    fusions: Vec<Method>,
    /// Chunk sizes in tokens, comma-separated (default: the configured `ingest.chunk_size`);
    /// the overlap is the configured one, cut below half of each size.
    #[arg(long, value_delimiter = ',')]
    chunk_sizes: Vec<usize>,
    /// Chunks retrieved per query (documents are ranked by their best chunk).
    #[arg(long, default_value_t = 100)]
    top_k: u32,
    /// Run every point a second time, reranked by the configured reranker (`[reranker]`).
    #[arg(long)]
    rerank: bool,
    /// Where each chunk size's corpus is kept, as `chunk-<size>` below it (a second sweep
    /// reuses them); default `.rag-data/eval/<dataset>/sweep`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print the reports as one JSON array as the last line.
    #[arg(long)]
    json: bool,
}

/// One point of the grid: a method, for weighted fusion an alpha, and whether it reranks.
type Point = (Method, Option<f32>, bool);

/// The grid's points for one chunk size, in table order; with `rerank`, each point is
/// followed by its reranked twin.
fn points(fusions: &[Method], alphas: &[f32], rerank: bool) -> Vec<Point> {
    let mut points = Vec::new();
    for &fusion in fusions {
        if fusion.uses_alpha() {
            points.extend(alphas.iter().map(|&a| (fusion, Some(a), false)));
        } else {
            points.push((fusion, None, false));
        }
    }
    let mut seen = Vec::new();
    points.retain(|p| {
        let new = !seen.contains(p);
        seen.push(*p);
        new
    });
    if rerank {
        points = points
            .into_iter()
            .flat_map(|(m, a, _)| [(m, a, false), (m, a, true)])
            .collect();
    }
    points
}

/// The chunk overlap for `size`: the configured one, below half of `size`.
fn overlap_for(size: usize, configured: usize) -> usize {
    configured.min((size / 2).saturating_sub(1))
}

pub async fn sweep(settings: Settings, args: SweepArgs) -> anyhow::Result<()> {
    if args.fusions.is_empty() {
        bail!("--fusions names no method");
    }
    if let Some(a) = args.alphas.iter().find(|a| !(0.0..=1.0).contains(*a)) {
        bail!("--alphas: {a} is not in [0, 1]");
    }
    if args.alphas.is_empty() && args.fusions.iter().any(|f| f.uses_alpha()) {
        bail!("--alphas is empty, but minmax and zscore need at least one");
    }
    let dataset = BeirDataset::open(&args.dataset)
        .with_context(|| format!("cannot open {}", args.dataset.display()))?;
    let name = dataset_name(&args.dataset);
    let base = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".rag-data/eval").join(&name).join("sweep"));
    let sizes = if args.chunk_sizes.is_empty() {
        vec![settings.ingest.chunk_size]
    } else {
        args.chunk_sizes.clone()
    };
    let grid = points(&args.fusions, &args.alphas, args.rerank);
    eprintln!(
        "sweep over {} chunk size(s) × {} point(s) on {name}",
        sizes.len(),
        grid.len()
    );
    let recorder = recorder();
    let mut reports = Vec::new();
    for &size in &sizes {
        let mut sized = eval_settings(settings.clone(), base.join(format!("chunk-{size}")));
        sized.ingest.chunk_size = size;
        sized.ingest.chunk_overlap = overlap_for(size, settings.ingest.chunk_overlap);
        // Points grouped by the retriever configuration they need, in grid order.
        let mut groups: Vec<(rag_config::Fusion, Vec<Point>)> = Vec::new();
        for &point in &grid {
            let needs = point.0.configured().unwrap_or(sized.retriever.fusion);
            match groups.iter_mut().find(|(f, _)| *f == needs) {
                Some((_, list)) => list.push(point),
                None => groups.push((needs, vec![point])),
            }
        }
        for (fusion, list) in groups {
            let mut configured = sized.clone();
            configured.retriever.fusion = fusion;
            let done = super::with_system(configured, async |settings: &Settings| {
                let (file_to_id, docs) = super::load_corpus(settings, &dataset).await?;
                let mut done = Vec::new();
                for &(method, alpha, rerank) in &list {
                    let search = Search {
                        fusion: method,
                        alpha,
                        top_k: args.top_k,
                        rerank,
                    };
                    let (evaluation, latencies) =
                        super::search_all(settings, &dataset, &file_to_id, search).await?;
                    let mut params = super::retrieval_params(settings, &name, search);
                    params.insert("sweep".into(), "true".into());
                    let report = RetrievalReport::from_evaluation(
                        method.name(),
                        &evaluation,
                        docs,
                        latency(&latencies),
                        params,
                    );
                    eprintln!(
                        "chunk {size} {} alpha {}{}: nDCG@10 {:.4}",
                        method.name(),
                        alpha.map_or_else(|| "-".to_owned(), |a| a.to_string()),
                        if rerank { " reranked" } else { "" },
                        report.ndcg_at_10
                    );
                    done.push(report);
                }
                Ok(done)
            })
            .await?;
            for report in done {
                let run_name = format!(
                    "sweep {name} {} chunk={} alpha={} rerank={}",
                    report.mode,
                    size,
                    report.params.get("alpha").map_or("-", String::as_str),
                    report.params.get("rerank").map_or("-", String::as_str)
                );
                record(
                    &recorder,
                    &ExperimentRecord::from_retrieval(&report),
                    &run_name,
                )
                .await;
                reports.push(report);
            }
        }
    }
    // Table order: chunk size, then the grid's order (z-score points ran separately).
    let order = |r: &RetrievalReport| {
        let size = r
            .params
            .get("chunk_size")
            .and_then(|s| s.parse::<usize>().ok());
        let at = grid.iter().position(|(m, a, rerank)| {
            m.name() == r.mode
                && a.map(|a| a.to_string()).as_deref() == r.params.get("alpha").map(String::as_str)
                && Some(rerank.to_string()).as_deref() == r.params.get("rerank").map(String::as_str)
        });
        (sizes.iter().position(|s| Some(*s) == size), at)
    };
    reports.sort_by_key(order);
    print!("{}", render_table(&reports));
    if let Some(best) = reports
        .iter()
        .max_by(|a, b| a.ndcg_at_10.total_cmp(&b.ndcg_at_10))
    {
        println!(
            "best nDCG@10 {:.4}: {} {}",
            best.ndcg_at_10,
            best.mode,
            best.params
                .iter()
                .filter(|(k, _)| ["alpha", "chunk_size", "rerank"].contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&reports)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_points() {
        let p = points(
            &[Method::Minmax, Method::Rrf, Method::Zscore, Method::Rrf],
            &[0.3, 0.7],
            false,
        );
        assert_eq!(
            p,
            vec![
                (Method::Minmax, Some(0.3), false),
                (Method::Minmax, Some(0.7), false),
                (Method::Rrf, None, false),
                (Method::Zscore, Some(0.3), false),
                (Method::Zscore, Some(0.7), false),
            ]
        );
        assert_eq!(
            points(&[Method::Bm25], &[], false),
            vec![(Method::Bm25, None, false)]
        );
        assert_eq!(
            points(&[Method::Rrf, Method::Rrf], &[], true),
            vec![(Method::Rrf, None, false), (Method::Rrf, None, true)]
        );
    }

    #[test]
    fn overlap_stays_below_half() {
        assert_eq!(overlap_for(200, 30), 30);
        assert_eq!(overlap_for(50, 30), 24);
        assert_eq!(overlap_for(1, 30), 0);
    }
}
