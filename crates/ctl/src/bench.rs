//! `ragctl bench`: the speed of the embedded system on this machine, with a BEIR corpus
//! (SciFact by default) loaded. It starts the system itself and measures, through the
//! gateway's HTTP API:
//!
//! * query latency (p50/p95/p99) and throughput at each concurrency level, with the cache
//!   off, with exact hits and with semantic hits; the extractive writer (no model: generation
//!   off) and, with `--generator-url`, an OpenAI-compatible model server (generation on);
//! * time to the first streamed token;
//! * ingestion throughput (documents/s, chunks/s) and one upload's time until searchable;
//! * the service layers' overhead: the gateway's latency over the same retrieval done
//!   in-process (embed, vector store and BM25 index, fusion, reading the hits);
//! * peak RSS of the process (the whole system runs in it) and cold start to ready.
//!
//! It prints a table and one JSON line, and writes `<out>/<name>.json` and
//! `<out>/latency-vs-concurrency.svg`.

mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rag_config::{DomainSettings, Fusion, GeneratorSettings, Settings, Tier};
use rag_core::SearchFilter;
use rag_launcher::{Loader, load};
use rag_retriever::fusion::{self, Method};
use serde::Serialize;
use serde_json::{Value, json};

const DOMAIN: &str = "bench";

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A BEIR dataset folder (`corpus.jsonl(.gz)` and `queries.jsonl`).
    #[arg(long, default_value = "../shared/datasets/scifact")]
    dataset: PathBuf,
    /// Load only the first N documents of the corpus.
    #[arg(long)]
    docs: Option<usize>,
    /// Queries per concurrency level and cache mode.
    #[arg(long, default_value_t = 256)]
    queries: usize,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,128")]
    concurrency: Vec<usize>,
    /// Questions streamed one at a time for the time to first token.
    #[arg(long, default_value_t = 30)]
    stream_queries: usize,
    /// An OpenAI-compatible chat-completions server (e.g. `http://127.0.0.1:11434/v1`) for
    /// the generation-on measurements; without it only the extractive writer is measured.
    #[arg(long)]
    generator_url: Option<String>,
    /// The model to ask the `--generator-url` server for.
    #[arg(long, default_value = "local")]
    generator_model: String,
    /// A local GGUF model (e.g. `.cache/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf`,
    /// `make llm`) as both tiers' writer for the generation-on measurements, instead of a
    /// server. It answers one question at a time: keep `--queries` and `--concurrency` small.
    #[arg(long, conflicts_with = "generator_url")]
    local_generator: Option<PathBuf>,
    /// The results file is `<out>/<name>.json`.
    #[arg(long, default_value = "scifact")]
    name: String,
    /// Where the results and the chart go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Where the embedded system keeps its files (default: a temporary folder, removed at
    /// the end).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The embedding cache (vectors by model and text hash), kept between runs: a cold
    /// SciFact load embeds for about 23 minutes on 2 cores, a warm one about a minute.
    #[arg(long, default_value = ".rag-data/bench-embedding-cache.db")]
    embedding_cache: PathBuf,
}

/// One measured cell: a generation mode, a cache mode and a concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub generation: String,
    pub cache: String,
    pub concurrency: usize,
    pub queries: usize,
    pub errors: usize,
    /// The answers' `cache` field: how many were misses, exact and semantic hits.
    pub served: BTreeMap<String, usize>,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub queries_per_s: f64,
}

/// Time to first token and to the whole answer, streamed.
#[derive(Debug, Clone, Serialize)]
pub struct Streaming {
    pub generation: String,
    pub queries: usize,
    pub first_token_p50_ms: f64,
    pub first_token_p95_ms: f64,
    pub done_p50_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ingestion {
    /// Whether the embedding cache existed before the run (warm: the corpus's vectors are
    /// looked up, not computed).
    pub embedding_cache_warm: bool,
    pub documents: usize,
    pub chunks: u64,
    pub seconds: f64,
    pub documents_per_s: f64,
    pub chunks_per_s: f64,
    /// One more document uploaded through the gateway into the loaded system: milliseconds
    /// from the upload's request until its status is `indexed` (searchable).
    pub time_to_searchable_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    pub queries: usize,
    pub direct_p50_ms: f64,
    pub direct_p95_ms: f64,
    pub gateway_p50_ms: f64,
    /// gateway p50 / direct p50, at concurrency 1 with the cache off.
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub name: String,
    pub dataset: String,
    pub profile: &'static str,
    pub machine: Value,
    pub cold_start_empty_s: f64,
    pub cold_start_loaded_s: f64,
    pub peak_rss_mib: f64,
    pub ingestion: Ingestion,
    pub overhead: Overhead,
    pub streaming: Vec<Streaming>,
    pub cells: Vec<Cell>,
    pub goals: Vec<report::Goal>,
    pub notes: Vec<String>,
}

pub async fn run(settings: Settings, args: BenchArgs) -> anyhow::Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs levels of at least 1");
    }
    let corpus = corpus_path(&args.dataset)?;
    let mut documents: Vec<rag_eval::Document> = rag_eval::beir::CorpusReader::open(&corpus)
        .with_context(|| format!("cannot open {}", corpus.display()))?
        .take(args.docs.unwrap_or(usize::MAX))
        .collect::<Result<_, _>>()?;
    if documents.is_empty() {
        bail!("{} has no documents", corpus.display());
    }
    let questions = read_questions(&args.dataset.join("queries.jsonl"))?;
    // The probe for time-to-searchable is the last document, loaded on its own later.
    let probe = documents.pop().context("a probe document")?;

    let temporary = args.data_dir.is_none();
    let data_dir = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ragctl-bench-{}", std::process::id()))
    });
    let result = measure(settings, &args, &data_dir, &documents, &probe, &questions).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let mut results = result?;
    results.dataset = args.dataset.display().to_string();
    results.goals = report::goals(&results);
    report::print_table(&results);
    let json = serde_json::to_value(&results)?;
    println!("{json}");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let file = args.out.join(format!("{}.json", args.name));
    std::fs::write(&file, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write {}", file.display()))?;
    let svg = args.out.join("latency-vs-concurrency.svg");
    std::fs::write(&svg, report::svg(&results))
        .with_context(|| format!("cannot write {}", svg.display()))?;
    eprintln!("wrote {} and {}", file.display(), svg.display());
    Ok(())
}

fn corpus_path(dataset: &Path) -> anyhow::Result<PathBuf> {
    if dataset.is_file() {
        return Ok(dataset.to_path_buf());
    }
    ["corpus.jsonl.gz", "corpus.jsonl"]
        .iter()
        .map(|name| dataset.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("{}: no corpus.jsonl(.gz) there", dataset.display()))
}

/// The distinct query texts of a BEIR `queries.jsonl`.
fn read_questions(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut seen = std::collections::HashSet::new();
    let mut questions = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let query: Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", path.display(), n + 1))?;
        let Some(q) = query["text"].as_str().map(str::trim) else {
            continue;
        };
        if !q.is_empty() && seen.insert(rag_router::normalise_question(q)) {
            questions.push(q.to_owned());
        }
    }
    if questions.is_empty() {
        bail!("{} has no queries", path.display());
    }
    Ok(questions)
}

fn settings_for(
    base: &Settings,
    args: &BenchArgs,
    data_dir: &Path,
    cache: bool,
) -> anyhow::Result<Settings> {
    let mut s = base.clone();
    s.data_dir = data_dir.to_path_buf();
    s.embedder.embedding_cache_path = std::path::absolute(&args.embedding_cache)?;
    s.gateway.listen = "127.0.0.1:0".parse()?;
    s.cache.enabled = cache;
    if s.domain(DOMAIN).is_none() {
        s.domains
            .push(DomainSettings::new(DOMAIN, "benchmark corpus", Tier::Light));
    }
    Ok(s)
}

/// The writer of the generation-on measurements, its label and where it is; `None` without
/// `--generator-url` or `--local-generator`.
fn generator(args: &BenchArgs) -> Option<(GeneratorSettings, String, String)> {
    if let Some(url) = &args.generator_url {
        let generator = GeneratorSettings::Openai {
            base_url: url.clone(),
            model: args.generator_model.clone(),
            api_key_env: None,
            max_attempts: 2,
            timeout_ms: 120_000,
        };
        return Some((generator, args.generator_model.clone(), url.clone()));
    }
    let path = args.local_generator.as_ref()?;
    let mut generator = GeneratorSettings::local(Some(path.clone()));
    if let GeneratorSettings::Local {
        max_waiting,
        timeout_ms,
        ..
    } = &mut generator
    {
        // Every concurrent question waits its turn instead of being refused.
        *max_waiting = u32::try_from(args.concurrency.iter().copied().max().unwrap_or(1))
            .unwrap_or(1024)
            .min(1024);
        *timeout_ms = 600_000;
    }
    let model = path
        .file_stem()
        .map_or_else(|| "local".to_owned(), |s| s.to_string_lossy().into_owned());
    Some((generator, model, path.display().to_string()))
}

/// `s` with `generator` as both tiers' writer, and the gateway waiting as long for a whole
/// answer as the writer may take (its 30 s default would cut queued local answers short and
/// count them as errors).
fn with_generator(mut s: Settings, generator: GeneratorSettings) -> Settings {
    let answer_ms = match &generator {
        GeneratorSettings::Openai {
            max_attempts,
            timeout_ms,
            ..
        }
        | GeneratorSettings::Bedrock {
            max_attempts,
            timeout_ms,
            ..
        } => timeout_ms.saturating_mul(u64::from(*max_attempts)),
        GeneratorSettings::Local { timeout_ms, .. } => *timeout_ms,
        GeneratorSettings::Extractive => 0,
    };
    s.gateway.request_timeout_ms = s.gateway.request_timeout_ms.max(answer_ms);
    s.generation.light = generator.clone();
    s.generation.strong = generator;
    s
}

async fn start(settings: Settings) -> anyhow::Result<(rag_launcher::System, f64)> {
    let started = Instant::now();
    let mut system = rag_launcher::start(settings).await?;
    system.wait_ready(Duration::from_secs(300)).await?;
    Ok((system, started.elapsed().as_secs_f64()))
}

async fn measure(
    base: Settings,
    args: &BenchArgs,
    data_dir: &Path,
    documents: &[rag_eval::Document],
    probe: &rag_eval::Document,
    questions: &[String],
) -> anyhow::Result<Results> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .pool_max_idle_per_host(512)
        .build()?;
    let mut notes = Vec::new();
    let generation_off = "off (extractive)";

    // 1. Cold start into an empty data directory, the load, the cache-off queries.
    let embedding_cache_warm = args.embedding_cache.is_file();
    if let Some(parent) = args
        .embedding_cache
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    report::reset_peak_rss();
    eprintln!("starting the system (cache off) in {}", data_dir.display());
    let (system, cold_start_empty_s) = start(settings_for(&base, args, data_dir, false)?).await?;
    let url = system.url();
    eprintln!(
        "ready in {cold_start_empty_s:.2} s; loading {} documents",
        documents.len()
    );
    let ingestion = ingest(&system, &http, documents, probe).await;
    let ingestion = match ingestion {
        Ok(i) => Ingestion {
            embedding_cache_warm,
            ..i
        },
        Err(e) => {
            system.shutdown().await;
            return Err(e);
        }
    };
    eprintln!(
        "loaded: {} documents, {} chunks in {:.1} s",
        ingestion.documents, ingestion.chunks, ingestion.seconds
    );
    // Warm-up: connections, the model's first calls.
    level(&http, &url, questions, 10, 1, generation_off, "warm-up").await;
    let mut cells = Vec::new();
    for &c in &args.concurrency {
        let n = args.queries.max(c);
        let cell = level(&http, &url, questions, n, c, generation_off, "off").await;
        eprintln!("{}", report::cell_line(&cell));
        cells.push(cell);
    }
    let mut streaming =
        vec![stream_level(&http, &url, questions, args.stream_queries, generation_off).await?];
    let peak_after_load = report::peak_rss_mib();
    system.shutdown().await;

    // 2. The same retrieval in-process, against the indexes the system left on disk.
    let direct_settings = settings_for(&base, args, data_dir, false)?;
    let n_direct = args.queries.min(questions.len()).max(1);
    let direct = direct_retrieval(&direct_settings, &questions[..n_direct]).await?;
    let gateway_p50 = cells
        .iter()
        .find(|c| c.concurrency == 1 && c.cache == "off")
        .map_or(f64::NAN, |c| c.p50_ms);
    let direct_p50 = report::ms(rag_eval::latency::percentile(&direct, 50.0));
    let overhead = Overhead {
        queries: direct.len(),
        direct_p50_ms: direct_p50,
        direct_p95_ms: report::ms(rag_eval::latency::percentile(&direct, 95.0)),
        gateway_p50_ms: gateway_p50,
        ratio: gateway_p50 / direct_p50,
    };
    if !args.concurrency.contains(&1) {
        notes.push("no concurrency-1 level: the overhead ratio is undefined".into());
    }

    // 3. A restart with the corpus on disk and the cache on: exact and semantic hits.
    eprintln!("restarting with the cache on");
    let (system, cold_start_loaded_s) = start(settings_for(&base, args, data_dir, true)?).await?;
    let url = system.url();
    eprintln!("ready in {cold_start_loaded_s:.2} s");
    let mut offset = 0;
    for &c in &args.concurrency {
        let n = args.queries.max(c);
        // Questions of their own per level (as far as the set goes), asked once to fill the
        // cache; then again (exact hits) and reworded (semantic hits).
        let mine: Vec<String> = (0..n)
            .map(|i| questions[(offset + i) % questions.len()].clone())
            .collect();
        offset += n;
        let warm = level(&http, &url, &mine, n, 8, generation_off, "warm-up").await;
        if warm.errors > 0 {
            notes.push(format!("{} warm-up queries failed at c={c}", warm.errors));
        }
        let exact = level(&http, &url, &mine, n, c, generation_off, "exact").await;
        eprintln!("{}", report::cell_line(&exact));
        let reworded: Vec<String> = mine.iter().map(|q| reword(q)).collect();
        let semantic = level(&http, &url, &reworded, n, c, generation_off, "semantic").await;
        eprintln!("{}", report::cell_line(&semantic));
        cells.push(exact);
        cells.push(semantic);
    }
    let peak_rss_mib = report::peak_rss_mib().max(peak_after_load);
    system.shutdown().await;

    // 4. Generation on: a model server or a local model, when one is given.
    if let Some((generator, model, place)) = generator(args) {
        eprintln!("restarting with the model at {place}");
        let s = with_generator(settings_for(&base, args, data_dir, false)?, generator);
        let (system, _) = start(s).await?;
        let url = system.url();
        let label = format!("on ({model})");
        for &c in &args.concurrency {
            let n = args.queries.max(c);
            let cell = level(&http, &url, questions, n, c, &label, "off").await;
            eprintln!("{}", report::cell_line(&cell));
            cells.push(cell);
        }
        streaming.push(stream_level(&http, &url, questions, args.stream_queries, &label).await?);
        system.shutdown().await;
    } else {
        notes.push(
            "generation on was not measured: no model here (--generator-url names an OpenAI-compatible server, --local-generator a GGUF file); the offline default writer is extractive".into(),
        );
    }

    Ok(Results {
        name: args.name.clone(),
        dataset: String::new(),
        profile: if cfg!(debug_assertions) {
            "dev (dependencies opt-level 2, workspace crates opt-level 1)"
        } else {
            "release"
        },
        machine: report::machine(),
        cold_start_empty_s,
        cold_start_loaded_s,
        peak_rss_mib,
        ingestion,
        overhead,
        streaming,
        cells,
        goals: Vec::new(),
        notes,
    })
}

/// A rewording the exact cache does not match (its normalised form differs) but whose
/// embedding is nearly the same: a comma after the first word.
fn reword(question: &str) -> String {
    match question.split_once(' ') {
        Some((first, rest)) => format!("{first}, {rest}"),
        None => format!("{question}, please"),
    }
}

/// Loads `documents` through the pipeline (as `ragctl load` does), waits until all are
/// searchable, then times one upload through the gateway until it is indexed.
async fn ingest(
    system: &rag_launcher::System,
    http: &reqwest::Client,
    documents: &[rag_eval::Document],
    probe: &rag_eval::Document,
) -> anyhow::Result<Ingestion> {
    let started = Instant::now();
    let mut loader = Loader::new(&system.settings)?;
    for document in documents {
        loader.put(load::corpus_upload(DOMAIN, document)).await?;
    }
    let progress = loader.wait(|_| {}).await?;
    let seconds = started.elapsed().as_secs_f64();
    if progress.failed > 0 {
        bail!("{} documents failed to load", progress.failed);
    }
    let catalog =
        rag_backends::catalog(&rag_backends::generation::current(&system.settings)?.settings)?;
    let chunks: u64 = catalog
        .list(&system.settings.default_tenant, Some(DOMAIN))
        .await?
        .iter()
        .map(|d| u64::from(d.chunk_count))
        .sum();

    let upload = load::corpus_upload(DOMAIN, probe);
    let form = reqwest::multipart::Form::new().text("domain", DOMAIN).part(
        "file",
        reqwest::multipart::Part::bytes(upload.bytes).file_name(upload.file_name),
    );
    let probe_started = Instant::now();
    let response = http
        .post(format!("{}/v1/documents", system.url()))
        .multipart(form)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("the probe upload failed: {}", response.text().await?);
    }
    let document: Value = response.json().await?;
    let id = document["id"]
        .as_str()
        .context("the upload's id")?
        .to_owned();
    let time_to_searchable_ms = loop {
        let status: Value = http
            .get(format!("{}/v1/documents/{id}", system.url()))
            .send()
            .await?
            .json()
            .await?;
        match status["status"].as_str() {
            Some("indexed") => break probe_started.elapsed().as_secs_f64() * 1000.0,
            Some("failed") => bail!("the probe document failed: {status}"),
            _ if probe_started.elapsed() > Duration::from_secs(120) => {
                bail!("the probe document was not indexed within 120 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    Ok(Ingestion {
        embedding_cache_warm: false,
        documents: documents.len(),
        chunks,
        seconds,
        documents_per_s: documents.len() as f64 / seconds,
        chunks_per_s: chunks as f64 / seconds,
        time_to_searchable_ms,
    })
}

/// `n` queries (`questions` in turn) through `POST /v1/query`, `c` at a time.
async fn level(
    http: &reqwest::Client,
    url: &str,
    questions: &[String],
    n: usize,
    c: usize,
    generation: &str,
    cache: &str,
) -> Cell {
    let questions = Arc::new(questions.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let endpoint = format!("{url}/v1/query");
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..c {
        let (http, questions, next, endpoint) = (
            http.clone(),
            questions.clone(),
            next.clone(),
            endpoint.clone(),
        );
        workers.spawn(async move {
            let mut out: Vec<(Duration, Option<String>)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return out;
                }
                let question = &questions[i % questions.len()];
                let asked = Instant::now();
                let answer = async {
                    let response = http
                        .post(&endpoint)
                        .json(&json!({ "question": question, "domain": DOMAIN }))
                        .send()
                        .await
                        .ok()?;
                    if !response.status().is_success() {
                        return None;
                    }
                    let body: Value = response.json().await.ok()?;
                    body["cache"].as_str().map(str::to_owned)
                }
                .await;
                out.push((asked.elapsed(), answer));
            }
        });
    }
    let mut samples = Vec::with_capacity(n);
    while let Some(joined) = workers.join_next().await {
        samples.extend(joined.unwrap_or_default());
    }
    let wall = started.elapsed().as_secs_f64();
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(samples.len());
    let mut errors = 0;
    for (latency, answer) in samples {
        match answer {
            Some(cache) => {
                *served.entry(cache).or_default() += 1;
                latencies.push(latency);
            }
            None => errors += 1,
        }
    }
    let p = |q| report::ms(rag_eval::latency::percentile(&latencies, q));
    Cell {
        generation: generation.to_owned(),
        cache: cache.to_owned(),
        concurrency: c,
        queries: n,
        errors,
        served,
        p50_ms: p(50.0),
        p95_ms: p(95.0),
        p99_ms: p(99.0),
        queries_per_s: latencies.len() as f64 / wall,
    }
}

/// `n` questions streamed one at a time (`POST /v1/query/stream`): time to the first `token`
/// event and to the `done` event.
async fn stream_level(
    http: &reqwest::Client,
    url: &str,
    questions: &[String],
    n: usize,
    generation: &str,
) -> anyhow::Result<Streaming> {
    let mut first = Vec::new();
    let mut done = Vec::new();
    // Questions from the end of the set: not asked before, whatever the cache.
    for question in questions.iter().rev().take(n) {
        let started = Instant::now();
        let mut response = http
            .post(format!("{url}/v1/query/stream"))
            .json(&json!({ "question": question, "domain": DOMAIN }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("streaming failed: {}", response.status());
        }
        let mut buffer = String::new();
        let mut first_token = None;
        'stream: while let Some(chunk) = response.chunk().await? {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            for event in crate::query::drain_events(&mut buffer) {
                match event.event.as_str() {
                    "token" => {
                        first_token.get_or_insert_with(|| started.elapsed());
                    }
                    "done" => {
                        let elapsed = started.elapsed();
                        first.push(first_token.unwrap_or(elapsed));
                        done.push(elapsed);
                        break 'stream;
                    }
                    "error" => bail!("the stream failed: {}", event.data),
                    _ => {}
                }
            }
        }
    }
    let p = |samples: &[Duration], q| report::ms(rag_eval::latency::percentile(samples, q));
    Ok(Streaming {
        generation: generation.to_owned(),
        queries: done.len(),
        first_token_p50_ms: p(&first, 50.0),
        first_token_p95_ms: p(&first, 95.0),
        done_p50_ms: p(&done, 50.0),
    })
}

/// The retriever's search without the services: embed the question with the model, search
/// the vector store and the BM25 index of the current generation concurrently, fuse as the
/// retriever is configured to, and read the top-k chunks. One at a time.
async fn direct_retrieval(
    settings: &Settings,
    questions: &[String],
) -> anyhow::Result<Vec<Duration>> {
    let generation = rag_backends::generation::current(settings)?;
    let dimensions = match &generation.manifest {
        Some(manifest) => manifest.dimensions,
        None => rag_backends::embedding_dimensions(&generation.settings),
    };
    let vectors = rag_backends::vector_store(&generation.settings, dimensions)?;
    let keywords = rag_backends::keyword_index(&generation.settings)?;
    let model = rag_backends::embedding_model(settings).await?;
    let tenant = settings.default_tenant.clone();
    let filter = SearchFilter::new(tenant.clone(), Some(DOMAIN.to_owned()));
    let top_k = settings.router.top_k as usize;
    let r = &settings.retriever;
    let candidates = (top_k * r.candidates_per_hit as usize).max(r.min_candidates as usize);
    let method = match r.fusion {
        Fusion::Rrf => Method::Rrf { k: r.rrf_k },
        Fusion::Zscore => Method::Zscore { alpha: r.alpha },
        Fusion::Weighted => Method::Weighted { alpha: r.alpha },
    };
    // Warm-up, as the gateway's levels had.
    for question in questions.iter().take(5) {
        model.embed(std::slice::from_ref(question)).await?;
    }
    let mut latencies = Vec::with_capacity(questions.len());
    for question in questions {
        let started = Instant::now();
        let vector = model
            .embed(std::slice::from_ref(question))
            .await?
            .pop()
            .context("no embedding")?;
        let (dense, keyword) = tokio::join!(
            vectors.search_ids(&vector, &filter, candidates),
            keywords.search_ids(question, &filter, candidates),
        );
        let dense: Vec<_> = dense?.into_iter().map(|h| (h.id, h.score)).collect();
        let keyword: Vec<_> = keyword?.into_iter().map(|h| (h.id, h.score)).collect();
        let mut fused = fusion::fuse(&dense, &keyword, method);
        fused.truncate(top_k);
        let ids: Vec<_> = fused.iter().map(|f| f.id).collect();
        let chunks = keywords.get(&tenant, &ids).await?;
        std::hint::black_box(chunks);
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}
