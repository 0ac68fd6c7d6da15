//! `ragctl ingest PATH…`: uploads files (folders recursively) to a running gateway
//! (`POST /v1/documents`) and, unless `--no-wait`, polls each document
//! (`GET /v1/documents/{id}`) until it is indexed or failed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::client::{CliError, Client, EXIT_FAILED, Remote, print_json, str_of};

#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Files or folders (read recursively; files of types the pipeline cannot read are skipped).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The domain of the documents (the gateway's default when absent).
    #[arg(long)]
    domain: Option<String>,
    /// Return once uploaded, without waiting until the documents are indexed.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting after this many seconds (exit 1).
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    remote: Remote,
}

/// A file to upload: where it is and the name the gateway will know it by.
struct File {
    path: PathBuf,
    name: String,
}

pub async fn run(args: IngestArgs) -> Result<(), CliError> {
    let files = collect(&args.paths)?;
    let client = Client::new(&args.remote)?;
    let started = Instant::now();
    let bar = bar(files.len() as u64, args.remote.json)?;
    bar.set_message("uploading");
    let mut documents: Vec<Value> = Vec::with_capacity(files.len());
    for file in &files {
        let document = upload(&client, file, args.domain.as_deref()).await?;
        documents.push(document);
        bar.inc(1);
    }
    let deadline = started + Duration::from_secs(args.timeout);
    if !args.no_wait {
        bar.set_position(0);
        bar.set_message("indexing");
        wait(&client, &mut documents, deadline, &bar).await?;
    }
    bar.finish_and_clear();
    let count = |status: &str| documents.iter().filter(|d| d["status"] == status).count();
    let (indexed, failed) = (count("indexed"), count("failed"));
    let pending = if args.no_wait {
        0
    } else {
        documents.len() - indexed - failed
    };
    if args.remote.json {
        print_json(&json!({
            "documents": documents,
            "uploaded": documents.len(),
            "indexed": indexed,
            "failed": failed,
            "pending": pending,
            "seconds": started.elapsed().as_secs_f64(),
        }));
    } else {
        for d in &documents {
            println!(
                "{}  {:<10} {:>4} chunks  {}{}",
                str_of(d, "id"),
                str_of(d, "status"),
                d["chunk_count"].as_u64().unwrap_or(0),
                str_of(d, "title"),
                d["error"]
                    .as_str()
                    .map(|e| format!("  ({e})"))
                    .unwrap_or_default()
            );
        }
        println!(
            "{} uploaded, {indexed} indexed, {failed} failed in {:.1} s",
            documents.len(),
            started.elapsed().as_secs_f64()
        );
    }
    if failed > 0 {
        return Err(CliError::new(
            EXIT_FAILED,
            format!("{failed} of {} documents failed", documents.len()),
        ));
    }
    if pending > 0 {
        return Err(CliError::new(
            EXIT_FAILED,
            format!(
                "{pending} documents were not indexed within {} s",
                args.timeout
            ),
        ));
    }
    Ok(())
}

fn bar(len: u64, hidden: bool) -> Result<ProgressBar, CliError> {
    if hidden {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
            .map_err(|e| CliError::failed(format!("progress bar: {e}")))?
            .progress_chars("=> "),
    );
    Ok(bar)
}

/// The files named, folders walked recursively (hidden entries and unreadable types skipped,
/// in name order). A path that does not exist is bad input (exit 2).
fn collect(paths: &[PathBuf]) -> Result<Vec<File>, CliError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(File {
                path: path.clone(),
                name: file_name(path)?,
            });
        }
    }
    if files.is_empty() {
        return Err(CliError::usage("no files to ingest"));
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<File>) -> Result<(), CliError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| CliError::usage(format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files)?;
            continue;
        }
        let name = file_name(&path)?;
        let readable = std::fs::read(&path)
            .ok()
            .is_some_and(|bytes| rag_core::media::sniff(&bytes, &name).is_ok());
        if readable {
            files.push(File { path, name });
        } else {
            eprintln!(
                "skipping {}: not a type the pipeline reads ({})",
                path.display(),
                rag_core::media::ACCEPTED
            );
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> Result<String, CliError> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::usage(format!("{}: not a file name", path.display())))
}

async fn upload(client: &Client, file: &File, domain: Option<&str>) -> Result<Value, CliError> {
    let bytes = tokio::fs::read(&file.path)
        .await
        .map_err(|e| CliError::usage(format!("{}: {e}", file.path.display())))?;
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(file.name.clone()),
    );
    if let Some(domain) = domain {
        form = form.text("domain", domain.to_owned());
    }
    let request = client
        .request(reqwest::Method::POST, "/v1/documents")
        .multipart(form);
    client
        .json(request)
        .await
        .map_err(|e| CliError::new(e.code, format!("{}: {}", file.path.display(), e.message)))
}

/// Indexed or failed: nothing more will happen to it.
fn done(document: &Value) -> bool {
    document["status"] == "indexed" || document["status"] == "failed"
}

/// Polls every document not yet indexed or failed until all are, or `deadline` passes.
async fn wait(
    client: &Client,
    documents: &mut [Value],
    deadline: Instant,
    bar: &ProgressBar,
) -> Result<(), CliError> {
    let mut delay = Duration::from_millis(100);
    loop {
        for document in documents.iter_mut().filter(|d| !done(d)) {
            let id = str_of(document, "id").to_owned();
            *document = client.get(&format!("/v1/documents/{id}")).await?;
        }
        bar.set_position(documents.iter().filter(|d| done(d)).count() as u64);
        if documents.iter().all(done) || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}
