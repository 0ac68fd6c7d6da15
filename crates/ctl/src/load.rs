//! `ragctl load`: a folder of documents, or a BEIR `corpus.jsonl(.gz)`, through the real
//! ingestion pipeline of an embedded system, with a progress bar, until every document is
//! searchable.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rag_config::Settings;
use rag_launcher::Loader;
use rag_launcher::load::{self, Progress};

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// A folder (`<folder>/<domain>/…`, or any layout with `--domain`) or a BEIR corpus
    /// (`corpus.jsonl` or `corpus.jsonl.gz`: `_id`, `title`, `text` per line).
    path: PathBuf,
    /// Load everything into this domain (required for a corpus file).
    #[arg(long)]
    domain: Option<String>,
    /// Where the embedded backends keep their files (default: the configured data directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub async fn run(mut settings: Settings, args: LoadArgs) -> anyhow::Result<()> {
    if let Some(dir) = args.data_dir.clone() {
        settings.data_dir = dir;
    }
    settings.gateway.listen = "127.0.0.1:0".parse()?;
    if !args.path.exists() {
        bail!("{}: no such file or folder", args.path.display());
    }
    if let Some(domain) = &args.domain
        && settings.domain(domain).is_none()
    {
        let known: Vec<&str> = settings.domains.iter().map(|d| d.name.as_str()).collect();
        bail!(
            "unknown domain {domain:?}; configured: {}",
            known.join(", ")
        );
    }
    let mut system = rag_launcher::start(settings).await?;
    system.wait_ready(Duration::from_secs(120)).await?;
    let result = load_into(&system.settings, &args).await;
    system.shutdown().await;
    result
}

async fn load_into(settings: &Settings, args: &LoadArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut loader = Loader::new(settings)?;
    match (args.path.is_dir(), &args.domain) {
        (true, Some(domain)) => load::put_folder(&mut loader, &args.path, domain).await?,
        (true, None) => {
            let skipped = load::put_domain_folders(&mut loader, settings, &args.path).await?;
            if skipped > 0 {
                eprintln!("{skipped} folders are not configured domains and were skipped");
            }
        }
        (false, Some(domain)) => {
            load::put_corpus(&mut loader, &args.path, domain).await?;
        }
        (false, None) => bail!("--domain is required to load a corpus file"),
    }
    let report = loader.report();
    eprintln!(
        "{} documents queued, {} unchanged ({:.1} s)",
        report.uploaded,
        report.unchanged,
        started.elapsed().as_secs_f64()
    );
    let progress = wait_with_bar(&loader).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{} loaded in {seconds:.1} s ({:.1} documents/s); the tenant has {} indexed, {} failed",
        report.uploaded,
        report.uploaded as f64 / seconds.max(1e-9),
        progress.indexed,
        progress.failed,
    );
    Ok(())
}

/// Waits until no document is pending, showing how many of the `total` just loaded are done.
pub async fn wait_with_bar(loader: &Loader) -> anyhow::Result<Progress> {
    let total = loader.report().uploaded as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} documents ({per_sec}, eta {eta})",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let progress = loader
        .wait(|p| bar.set_position(total.saturating_sub(p.pending)))
        .await?;
    bar.finish();
    Ok(progress)
}
