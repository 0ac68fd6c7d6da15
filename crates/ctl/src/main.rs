//! `ragctl`: the command line of llmops-rag-pipeline. `ragctl up` runs the whole system in
//! one process on the embedded backends; `ragctl load` bulk-loads documents; `ragctl reindex` rebuilds the indexes; `ragctl eval`
//! measures retrieval and answer quality; `ragctl feedback routing` reads the users' ratings;
//! `ragctl ingest`, `query` and `docs` talk to a running gateway over HTTP; `ragctl bench`
//! measures the embedded system's speed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod aws_setup;
mod bench;
mod client;
mod docs;
mod drift;
mod eval;
mod feedback;
mod ingest;
mod keys;
mod load;
mod pause;
mod query;
mod reindex;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rag_config::{Environment, Settings};

#[derive(Parser)]
#[command(
    name = "ragctl",
    version,
    about = "Run and operate llmops-rag-pipeline",
    after_help = client::EXIT_CODES_HELP
)]
struct Cli {
    /// Configuration file (TOML); `RAG_CONFIG` names one too. `RAG__SECTION__KEY` variables override it.
    #[arg(long, global = true, env = "RAG_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run all five services in this process, on loopback, with the embedded backends.
    Up {
        /// Where the embedded backends keep their files.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// HTTP address of the gateway.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Documents to load at start-up, as `<dir>/<domain>/<file>` (unchanged files cost nothing).
        #[arg(long, default_value = "data/documents")]
        seed: PathBuf,
        /// Do not load any documents at start-up.
        #[arg(long)]
        no_seed: bool,
    },
    /// Load a folder of documents or a BEIR corpus through the ingestion pipeline and wait
    /// until every document is searchable.
    Load(load::LoadArgs),
    /// Rebuild the indexes from everything in the object store with the configured embedding
    /// model and chunk sizes, into a new index generation; readers switch to it when it is
    /// complete (a running `ragctl up` on the same data directory too).
    Reindex(reindex::ReindexArgs),
    /// Create the S3 bucket and the SQS queues the configuration names, and the bucket's
    /// notifications to the documents queue (for an emulator or a development account).
    AwsSetup,
    /// Measure quality on public benchmarks.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// What users' ratings of answers say.
    #[command(subcommand)]
    Feedback(FeedbackCommand),
    /// Query drift (recent questions against a baseline window and the documents) and corpus
    /// drift (new documents against their domain's centre of mass).
    Drift(drift::DriftArgs),
    /// Scale the namespace's services to zero, remembering their replica counts (and pause
    /// their KEDA autoscaling); the data stays.
    Pause(pause::PauseArgs),
    /// Scale the namespace's services back to the counts `pause` remembered.
    Resume(pause::PauseArgs),
    /// Upload files or folders to a running gateway and wait until they are indexed.
    Ingest(ingest::IngestArgs),
    /// Ask a running gateway a question; the answer streams in, then its citations.
    Query(query::QueryArgs),
    /// List, inspect or delete the documents of a running gateway.
    Docs(docs::DocsArgs),
    /// Measure the embedded system with a corpus loaded: latency and throughput at several
    /// concurrency levels, cache hits, time to first token, ingestion, service-layer
    /// overhead, peak RSS and cold start; writes bench/results/.
    Bench(bench::BenchArgs),
    /// The gateway's API keys file: create (the key is printed once), list, revoke.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

#[derive(Subcommand)]
enum FeedbackCommand {
    /// Thumbs-down shares per tier and per question feature, and the routing-threshold
    /// change the ratings support.
    Routing(feedback::RoutingArgs),
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Retrieval quality (nDCG@10, Recall@100, MRR@10) on a BEIR dataset, through the real
    /// ingestion pipeline and retriever.
    Retrieval(eval::RetrievalArgs),
    /// Retrieval quality over a grid of chunk sizes, fusion methods and alphas, as a table;
    /// every point is recorded as an experiment.
    Sweep(eval::SweepArgs),
    /// Answer quality on a question-answering set with gold answers and passages, through the
    /// real ingestion pipeline and query path: answer containment, token F1, context recall,
    /// citation precision, the "I don't know" rate on held-out passages; optionally an LLM
    /// judge of faithfulness and relevance.
    Answers(eval::AnswersArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before the runtime starts its threads: see `pin_compute_threads`.
    rag_backends::rag_embeddings::pin_compute_threads();
    let outcome = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("starting the async runtime")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e
                .downcast_ref::<client::CliError>()
                .map_or(client::EXIT_FAILED, |c| c.code);
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // The verbs that talk to a gateway need no configuration and log nothing.
    let command = match cli.command {
        Command::Ingest(args) => return Ok(ingest::run(args).await?),
        Command::Query(args) => return Ok(query::run(args).await?),
        Command::Docs(args) => return Ok(docs::run(args).await?),
        Command::Keys(command) => return keys::run(command),
        command => command,
    };
    let mut settings = Settings::load(cli.config.as_deref(), &Environment::Process)
        .context("invalid configuration")?;
    if let Command::Bench(_) = command {
        // The table and the JSON line own stdout; per-request logs would slow the system.
        if std::env::var_os("RUST_LOG").is_none() {
            settings.telemetry.log_filter = "warn,qdrant_edge=error,tantivy=error".into();
        }
        rag_telemetry::init_with_writer(&settings.telemetry, "rag", std::io::stderr);
    } else {
        rag_telemetry::init(&settings.telemetry, "rag");
    }
    let result = match command {
        Command::Up {
            data_dir,
            listen,
            seed,
            no_seed,
        } => {
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            if let Some(addr) = listen {
                settings.gateway.listen = addr;
            }
            up(settings, (!no_seed).then_some(seed)).await
        }
        Command::Load(args) => load::run(settings, args).await,
        Command::Reindex(args) => reindex::run(settings, args).await,
        Command::AwsSetup => aws_setup::run(settings).await,
        Command::Eval(EvalCommand::Retrieval(args)) => eval::retrieval(settings, args).await,
        Command::Eval(EvalCommand::Sweep(args)) => eval::sweep(settings, args).await,
        Command::Eval(EvalCommand::Answers(args)) => eval::answers(settings, args).await,
        Command::Feedback(FeedbackCommand::Routing(args)) => {
            feedback::routing(settings, args).await
        }
        Command::Drift(args) => drift::run(settings, args).await,
        Command::Pause(args) => pause::pause(args).await,
        Command::Resume(args) => pause::resume(args).await,
        Command::Bench(args) => bench::run(settings, args).await,
        Command::Ingest(_) | Command::Query(_) | Command::Docs(_) | Command::Keys(_) => Ok(()),
    };
    rag_telemetry::trace::shutdown();
    result
}

async fn up(settings: Settings, seed: Option<PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut system = rag_launcher::start(settings).await?;
    system.wait_ready(Duration::from_secs(120)).await?;
    let ready = started.elapsed();
    println!(
        "llmops-rag-pipeline is ready at {} ({:.1} s)",
        system.url(),
        ready.as_secs_f64()
    );
    if let Some(dir) = seed.filter(|d| d.is_dir()) {
        let report = rag_launcher::seed(&system.settings, &dir).await?;
        println!(
            "documents from {}: {} queued for ingestion, {} unchanged",
            dir.display(),
            report.uploaded,
            report.unchanged
        );
    }
    println!(
        "try: curl -s {}/v1/query -H 'content-type: application/json' -d '{{\"question\": \"How many days of annual leave do employees get?\"}}'",
        system.url()
    );
    tokio::select! {
        () = rag_telemetry::shutdown_signal() => {}
        (name, result) = system.stopped() => {
            system.shutdown().await;
            anyhow::bail!("the {name} stopped unexpectedly: {}", result.err().unwrap_or_default());
        }
    }
    println!("shutting down");
    system.shutdown().await;
    Ok(())
}
