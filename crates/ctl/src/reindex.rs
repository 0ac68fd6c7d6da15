//! `ragctl reindex`: rebuilds the indexes from the object store with the configured model
//! and chunk sizes into a new index generation, with a progress bar; a running `ragctl up`
//! on the same data directory switches to it when it is complete.

use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rag_config::Settings;
use rag_launcher::reindex::{Phase, Reading};

#[derive(Debug, clap::Args)]
pub struct ReindexArgs {
    /// Where the embedded backends keep their files (default: the configured data directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub async fn run(mut settings: Settings, args: ReindexArgs) -> anyhow::Result<()> {
    if let Some(dir) = args.data_dir {
        settings.data_dir = dir;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} documents {msg} ({per_sec}, eta {eta})",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let show = |r: &Reading| {
        bar.set_length(r.listed as u64);
        bar.set_position(r.progress.indexed + r.progress.failed);
        bar.set_message(match r.phase {
            Phase::Build => "",
            Phase::CatchUp => "(catching up)",
        });
    };
    let report = rag_launcher::reindex(&settings, show).await?;
    bar.finish();
    println!(
        "index generation {} is current (was {}): {} objects, {} indexed, {} failed, {} still \
         pending after repeated failures; caught up {} changes before the switch and {} after; \
         {:.1} s",
        report.generation,
        report.previous,
        report.listed,
        report.progress.indexed,
        report.progress.failed,
        report.progress.pending,
        report.caught_up.0,
        report.caught_up.1,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
