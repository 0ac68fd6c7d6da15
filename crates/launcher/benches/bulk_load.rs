//! Bulk load of a BEIR corpus through the real pipeline (object store → documents queue →
//! ingest-worker → chunks queue → embedder → both indexes), twice: first with an empty
//! embedding cache, then into a fresh system whose embedding cache is the first run's. Prints
//! documents/s, chunks/s, the model's embedding throughput alone on the same chunks, the
//! seconds until every document is searchable, and the peak RSS of each run; then one JSON
//! line.
//!
//!     cargo bench --profile dev -p rag-launcher --bench bulk_load
//!
//! `BULK_LOAD_CORPUS` names another corpus (default: SciFact's 5,183 abstracts in
//! `../shared/datasets/scifact/corpus.jsonl.gz`); `BULK_LOAD_DOCS` loads only the first N.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rag_config::{DomainSettings, Settings, Tier};
use rag_core::ObjectKey;
use rag_eval::Document;
use rag_launcher::memory::{peak_rss_mib, reset_peak_rss};
use rag_launcher::{Loader, load};
use serde_json::json;

const DOMAIN: &str = "bulk";

/// Chunks embedded alone to measure the model's throughput.
const EMBED_SAMPLE: usize = 512;

struct Run {
    documents: usize,
    chunks: u64,
    seconds: f64,
    peak_rss_mib: f64,
}

fn corpus_path() -> PathBuf {
    std::env::var_os("BULK_LOAD_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::repo_root().join("../shared/datasets/scifact/corpus.jsonl.gz"))
}

fn read_corpus(path: &Path, limit: usize) -> anyhow::Result<Vec<Document>> {
    rag_eval::beir::CorpusReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .take(limit)
        .map(|d| d.map_err(anyhow::Error::from))
        .collect()
}

fn settings(data_dir: &Path, cache_file: &Path) -> Settings {
    let mut s = support::settings(data_dir);
    s.embedder.embedding_cache_path = cache_file.to_path_buf();
    s.domains.push(DomainSettings::new(
        DOMAIN,
        "bulk-load benchmark",
        Tier::Light,
    ));
    s
}

async fn load_once(documents: &[Document], cache_file: &Path) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    reset_peak_rss();
    let system = support::start(settings(dir.path(), cache_file)).await?;
    let started = Instant::now();
    let mut loader = Loader::new(&system.settings)?;
    for document in documents {
        loader.put(load::corpus_upload(DOMAIN, document)).await?;
    }
    let progress = tokio::time::timeout(Duration::from_secs(3 * 3600), loader.wait(|_| {}))
        .await
        .context("the load did not finish within 3 hours")??;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        progress.failed == 0,
        "{} documents failed to load",
        progress.failed
    );
    let catalog = rag_backends::catalog(&system.settings)?;
    let chunks = catalog
        .list(&system.settings.default_tenant, Some(DOMAIN))
        .await?
        .iter()
        .map(|d| u64::from(d.chunk_count))
        .sum();
    let peak_rss_mib = peak_rss_mib();
    system.shutdown().await;
    Ok(Run {
        documents: documents.len(),
        chunks,
        seconds,
        peak_rss_mib,
    })
}

/// Chunks/s of the model alone, on the chunks the pipeline makes of the first documents,
/// with the texts the indexer embeds (title, section, text).
async fn embedding_throughput(documents: &[Document]) -> anyhow::Result<(usize, f64)> {
    let s = Settings::default();
    let chunking = rag_ingest_worker::pipeline::Chunking {
        options: rag_ingest_worker::chunk::ChunkOptions {
            size: s.ingest.chunk_size,
            overlap: s.ingest.chunk_overlap,
        },
        tokens: rag_backends::token_counter(&s)?,
    };
    let mut texts = Vec::new();
    for document in documents {
        let upload = load::corpus_upload(DOMAIN, document);
        let key = ObjectKey::for_upload("bench", DOMAIN, &upload.file_name);
        if let Ok(prepared) =
            rag_ingest_worker::pipeline::prepare(&upload.bytes, &key, &key.to_key(), 1, &chunking)
        {
            texts.extend(
                prepared
                    .chunks
                    .iter()
                    .map(rag_core::ChunkRecord::embedding_text),
            );
        }
        if texts.len() >= EMBED_SAMPLE {
            break;
        }
    }
    texts.truncate(EMBED_SAMPLE);
    let model = rag_backends::embedding_model(&s).await?;
    model.embed(&texts[..32.min(texts.len())]).await?; // warm-up
    let started = Instant::now();
    model.embed(&texts).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((texts.len(), texts.len() as f64 / seconds))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let limit = std::env::var("BULK_LOAD_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let path = corpus_path();
    let documents = read_corpus(&path, limit)?;
    eprintln!("{} documents from {}", documents.len(), path.display());

    let (sampled, embed_per_s) = embedding_throughput(&documents).await?;
    eprintln!("model alone: {embed_per_s:.1} chunks/s over {sampled} chunks");

    let cache = tempfile::tempdir()?;
    let cache_file = cache.path().join("embedding-cache.db");
    let cold = load_once(&documents, &cache_file).await?;
    eprintln!("cold cache: {:.1} s", cold.seconds);
    let warm = load_once(&documents, &cache_file).await?;
    eprintln!("warm cache: {:.1} s", warm.seconds);

    println!();
    println!(
        "| run | documents | chunks | seconds until searchable | documents/s | chunks/s | peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, run) in [
        ("cold embedding cache", &cold),
        ("warm embedding cache", &warm),
    ] {
        println!(
            "| {name} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |",
            run.documents,
            run.chunks,
            run.seconds,
            run.documents as f64 / run.seconds,
            run.chunks as f64 / run.seconds,
            run.peak_rss_mib
        );
    }
    println!("| model alone ({sampled} chunks) | | | | | {embed_per_s:.1} | |");
    println!(
        "\nwarm / cold time: {:.2}; pipeline chunks/s / model chunks/s (cold): {:.2}",
        warm.seconds / cold.seconds,
        cold.chunks as f64 / cold.seconds / embed_per_s
    );
    let run_json = |run: &Run| {
        json!({
            "documents": run.documents,
            "chunks": run.chunks,
            "seconds": run.seconds,
            "documents_per_s": run.documents as f64 / run.seconds,
            "chunks_per_s": run.chunks as f64 / run.seconds,
            "peak_rss_mib": run.peak_rss_mib,
        })
    };
    println!(
        "{}",
        json!({
            "corpus": path.display().to_string(),
            "model_chunks_per_s": embed_per_s,
            "cold": run_json(&cold),
            "warm": run_json(&warm),
        })
    );
    Ok(())
}
