//! Faults of the dependencies, with the system running: what it does when Redis is killed
//! under load, when the vector store stops answering, when the ingest-worker and the embedder
//! are killed at random points of a bulk load, and when Bedrock throttles and fails. Each test
//! checks that nothing is lost and that the system recovers on its own.
//!
//! Already covered elsewhere, and not repeated here: a Redis that is never reachable
//! (`query_path::answers_go_on_when_redis_is_down`); a strong model that fails falling back
//! to the light one, both failing → 503 (`query_path::model_writers_stream_fall_back_and_cancel`);
//! the generation clients' retries of throttling (`providers::bedrock_throttling_is_retried_then_unavailable`
//! and the OpenAI one in `crates/generation/tests`); a process aborted at every step boundary of
//! ingestion (`crates/ctl/tests/crash_recovery.rs`).
//!
//! The ingest-worker and the embedder of the kill test run as processes of their own: this
//! test binary started again with [`CHILD_SERVICE`] set runs only [`fault_child_service`],
//! which serves one of them until it is killed (`SIGKILL`: no unwinding, no flush).

mod support;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rag_backends::rag_catalog::DocumentState;
use rag_config::{AwsCredentials, CacheBackend, GeneratorSettings, Settings, VectorStoreSettings};
use rag_core::{DocumentId, SearchFilter};
use rag_launcher::{Loader, Upload};
use serde_json::{Value, json};
use support::{Client, sample_documents, settings, start};

/// Set in a child process: which service it runs (`embedder` or `ingest-worker`).
const CHILD_SERVICE: &str = "RAG_FAULTS_CHILD_SERVICE";
/// Set in a child process: its settings, as JSON.
const CHILD_SETTINGS: &str = "RAG_FAULTS_CHILD_SETTINGS";

/// The value of a counter (summed over the series whose labels contain `labels`) in the
/// gateway's `/metrics`; the registry is the process's, so only differences mean anything.
async fn counter(client: &Client, name: &str, labels: &str) -> f64 {
    let text = client
        .http
        .get(format!("{}/metrics", client.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// POST /v1/query: (status, Retry-After header, body).
async fn query(client: &Client, question: &str, domain: &str) -> (u16, Option<String>, Value) {
    let response = client
        .http
        .post(format!("{}/v1/query", client.base))
        .json(&json!({ "question": question, "domain": domain }))
        .send()
        .await
        .expect("the gateway answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

// ---------------------------------------------------------------------------------------
// Redis killed mid-load

/// A private `redis-server` without persistence, for one test.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts one on `port`; `None` when `redis-server` is not installed (outside CI).
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--logfile", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() =>
            {
                eprintln!("skipped: redis-server is not installed");
                return None;
            }
            Err(e) => panic!("redis-server: {e}"),
        };
        let redis = Self {
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !redis.pong() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(redis)
    }

    fn pong(&self) -> bool {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 5];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG"
    }

    /// `kill -9`.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What one request of the load saw.
#[derive(Debug)]
struct Outcome {
    phase: u8,
    status: u16,
    cache: String,
}

const UP: u8 = 0;
const DOWN: u8 = 1;
const BACK: u8 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_load_answers_go_on_and_hits_resume() -> anyhow::Result<()> {
    let port = free_port();
    let Some(mut redis) = Redis::start(port) else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    settings.cache.backend = CacheBackend::Redis {
        url: format!("redis://127.0.0.1:{port}"),
        pool_size: 2,
        command_timeout_ms: 200,
        key_prefix: "faults:".into(),
        ca_file: None,
    };
    let system = start(settings).await?;
    let client = Arc::new(Client::new(&system));
    let (status, body) = client
        .upload(
            "hr",
            "canteen.md",
            b"# Canteen\n\nThe canteen opens at 8:00 and closes at 15:00 on working days. \
              Lunch is served from 11:30. The coffee bar on the second floor opens at 7:30.\n"
                .to_vec(),
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    client.wait_indexed(1, Duration::from_secs(120)).await?;
    let errors_before = counter(&client, "rag_cache_lookups_total", "result=\"error\"").await;

    // Four clients ask the same few questions in a loop, recording what each answer was.
    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
    let questions = [
        "When does the canteen open?",
        "When does the canteen close?",
        "When is lunch served?",
        "When does the coffee bar open?",
    ];
    let mut load = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (client, phase, stop, outcomes) = (
            Arc::clone(&client),
            Arc::clone(&phase),
            Arc::clone(&stop),
            Arc::clone(&outcomes),
        );
        load.spawn(async move {
            let mut i = worker;
            while !stop.load(Ordering::SeqCst) {
                let asked_in = phase.load(Ordering::SeqCst);
                let (status, _, body) = query(&client, questions[i % questions.len()], "hr").await;
                outcomes.lock().push(Outcome {
                    phase: asked_in,
                    status,
                    cache: body["cache"].as_str().unwrap_or("none").to_owned(),
                });
                i += 1;
            }
        });
    }
    let count = |phase: u8, cache: Option<&str>| {
        outcomes
            .lock()
            .iter()
            .filter(|o| o.phase == phase && cache.is_none_or(|c| o.cache.starts_with(c)))
            .count()
    };
    let hit = |o: &Outcome| o.cache == "exact" || o.cache == "semantic";

    wait_until(
        "cache hits before the kill",
        Duration::from_secs(60),
        async || outcomes.lock().iter().filter(|o| hit(o)).count() >= 8,
    )
    .await;
    redis.kill();
    phase.store(DOWN, Ordering::SeqCst);
    let killed = Instant::now();
    wait_until(
        "answers while Redis is down",
        Duration::from_secs(60),
        async || count(DOWN, Some("miss")) >= 12 && killed.elapsed() > Duration::from_secs(3),
    )
    .await;
    let errors_while_down =
        counter(&client, "rag_cache_lookups_total", "result=\"error\"").await - errors_before;

    let mut redis = Redis::start(port).expect("redis-server restarts");
    phase.store(BACK, Ordering::SeqCst);
    let restarted = Instant::now();
    wait_until(
        "cache hits after Redis is back",
        Duration::from_secs(60),
        async || {
            outcomes
                .lock()
                .iter()
                .filter(|o| o.phase == BACK && hit(o))
                .count()
                >= 4
        },
    )
    .await;
    let resumed_after = restarted.elapsed();
    stop.store(true, Ordering::SeqCst);
    while let Some(joined) = load.join_next().await {
        joined?;
    }

    let outcomes = std::mem::take(&mut *outcomes.lock());
    let failed: Vec<_> = outcomes.iter().filter(|o| o.status != 200).collect();
    assert!(failed.is_empty(), "requests failed: {failed:?}");
    let down_hits = outcomes
        .iter()
        .filter(|o| o.phase == DOWN && hit(o))
        .count();
    // A request that started just before the kill may have had its hit already.
    assert!(
        down_hits <= 4,
        "{down_hits} hits while Redis was down: {outcomes:?}"
    );
    assert!(
        errors_while_down >= 1.0,
        "cache failures are counted in rag_cache_lookups_total{{result=\"error\"}}"
    );
    eprintln!(
        "redis fault: {} requests, all 200; up {}, down {} ({} cache errors counted), back {} (hits again after {resumed_after:?})",
        outcomes.len(),
        outcomes.iter().filter(|o| o.phase == UP).count(),
        outcomes.iter().filter(|o| o.phase == DOWN).count(),
        errors_while_down,
        outcomes.iter().filter(|o| o.phase == BACK).count(),
    );
    redis.kill();
    system.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The vector store unavailable

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vector_store_unavailable_is_503_with_retry_after_then_recovers() -> anyhow::Result<()> {
    let mut qdrant = rag_standins::qdrant::StandIn::start().await?;
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    settings.vector_store = VectorStoreSettings::Qdrant {
        url: qdrant.url(),
        collection: "faults".into(),
        api_key_env: None,
    };
    // No cached answer may hide the outage.
    settings.cache.enabled = false;
    let system = start(settings).await?;
    let client = Client::new(&system);
    let (domain, name, bytes) = sample_documents()
        .into_iter()
        .find(|(_, name, _)| name == "annual-leave-policy.md")
        .expect("the sample corpus has the leave policy");
    let (status, body) = client.upload(&domain, &name, bytes).await?;
    assert_eq!(status, 202, "{body}");
    client.wait_indexed(1, Duration::from_secs(120)).await?;
    let question = "How many vacation days do I get per year?";
    let (status, _, before) = query(&client, question, &domain).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["grounded"], true, "{before}");

    let retriever = rag_grpc::lazy_channel(
        &system.settings.router.retriever_url,
        Duration::from_secs(5),
    )?;
    let ready = async || rag_grpc::check_health(retriever.clone(), "").await;

    // Two ways down: every call answered Unavailable (a node restarting), then the server
    // gone (connections refused).
    for mode in ["answers Unavailable", "refuses connections"] {
        if mode == "answers Unavailable" {
            qdrant.set_down(true);
        } else {
            qdrant.pause().await;
        }
        let went_down = Instant::now();
        wait_until(
            &format!("the retriever not ready when Qdrant {mode}"),
            Duration::from_secs(20),
            async || !ready().await,
        )
        .await;
        let noticed = went_down.elapsed();
        for _ in 0..3 {
            let (status, retry_after, body) = query(&client, question, &domain).await;
            assert_eq!(status, 503, "Qdrant {mode}: {body}");
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            assert!(
                retry_after
                    .as_deref()
                    .is_some_and(|s| s.parse::<u64>().is_ok()),
                "Qdrant {mode}: a 503 says when to retry: {retry_after:?}"
            );
        }

        if mode == "answers Unavailable" {
            qdrant.set_down(false);
        } else {
            qdrant.resume().await?;
        }
        let came_back = Instant::now();
        wait_until(
            &format!("the retriever ready again after Qdrant {mode}"),
            Duration::from_secs(30),
            async || ready().await,
        )
        .await;
        let recovered = came_back.elapsed();
        let mut answered = None;
        wait_until("answers again", Duration::from_secs(20), async || {
            let (status, _, body) = query(&client, question, &domain).await;
            answered = Some(body);
            status == 200
        })
        .await;
        let after = answered.expect("an answer");
        assert_eq!(after["grounded"], true, "{after}");
        assert_eq!(after["citations"], before["citations"], "the same passages");
        eprintln!(
            "qdrant {mode}: not ready after {noticed:?}, 503 + Retry-After meanwhile, ready again {recovered:?} after it came back"
        );
    }
    system.shutdown().await;
    qdrant.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The ingest-worker and the embedder killed at random points of a bulk load

/// In a child process (and only there: otherwise it returns at once), serves the service
/// named by [`CHILD_SERVICE`] with the settings in [`CHILD_SETTINGS`] until killed.
#[test]
#[ignore = "run by the kill test in a child process of its own"]
fn fault_child_service() {
    let (Ok(service), Ok(settings)) = (std::env::var(CHILD_SERVICE), std::env::var(CHILD_SETTINGS))
    else {
        return;
    };
    let settings: Settings = serde_json::from_str(&settings).expect("the child's settings");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        rag_telemetry::init_for_tests();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a listener");
        let forever = std::future::pending::<()>();
        let result = match service.as_str() {
            "embedder" => rag_embedder::run(settings, listener, forever)
                .await
                .map_err(|e| e.to_string()),
            "ingest-worker" => rag_ingest_worker::run(settings, listener, forever)
                .await
                .map_err(|e| e.to_string()),
            other => Err(format!("no such service: {other}")),
        };
        panic!("{service} stopped: {result:?}");
    });
}

/// One service in a child process.
struct ServiceProcess {
    name: &'static str,
    settings: String,
    log: PathBuf,
    child: Child,
    starts: usize,
}

impl ServiceProcess {
    fn spawn(name: &'static str, settings: &str, log: &Path, starts: usize) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("a log file");
        Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "fault_child_service",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_SERVICE, name)
            .env(CHILD_SETTINGS, settings)
            .env("RAG_FAULTS_CHILD_START", starts.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the child starts")
    }

    fn start(name: &'static str, settings: &Settings, dir: &Path) -> Self {
        let settings = serde_json::to_string(settings).expect("settings as JSON");
        let log = dir.join(format!("{name}.log"));
        let child = Self::spawn(name, &settings, &log, 1);
        Self {
            name,
            settings,
            log,
            child,
            starts: 1,
        }
    }

    /// `kill -9`; panics if it had already stopped (a service must not stop on its own).
    fn kill(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} had stopped on its own ({status}):\n{}",
                self.name,
                tail(&self.log)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.starts += 1;
        self.child = Self::spawn(self.name, &self.settings, &self.log, self.starts);
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// xorshift64*: the kill schedule is random, but printed and reproducible
/// (`RAG_FAULTS_SEED`).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A document of several chunks, each sentence naming the document.
fn bulk_document(n: usize) -> Vec<u8> {
    let mut text = format!("# Service manual {n}\n\n");
    for section in 1..=5 {
        text.push_str(&format!("## Procedure {n}.{section}\n\n"));
        for sentence in 1..=10 {
            text.push_str(&format!(
                "For unit {n}, procedure {section} asks the technician to inspect valve {sentence} of pump {n}-{section} and to log the pressure reading before the unit is restarted. "
            ));
        }
        text.push_str("\n\n");
    }
    text.into_bytes()
}

const BULK_DOCUMENTS: usize = 16;
const KILLS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_worker_and_the_embedder_mid_load_indexes_every_document_once() {
    rag_telemetry::init_for_tests();
    let seed = std::env::var("RAG_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    eprintln!("kill schedule seed: RAG_FAULTS_SEED={seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut settings = settings(&dir.path().join("data"));
    // Redeliveries come quickly; several messages per document; a message survives every
    // kill of this test without reaching the dead-letter queue (6 kills < 10 receives).
    settings.queues.visibility_timeout_secs = 2;
    settings.queues.wait_ms = 100;
    settings.queues.max_receives = 10;
    settings.ingest.chunks_per_batch = 2;
    std::fs::create_dir_all(&settings.data_dir).expect("the data directory");

    let mut worker = ServiceProcess::start("ingest-worker", &settings, dir.path());
    let mut embedder = ServiceProcess::start("embedder", &settings, dir.path());

    let mut loader = Loader::new(&settings).expect("a loader");
    let mut uploads = Vec::new();
    for n in 0..BULK_DOCUMENTS {
        uploads.push(Upload {
            domain: ["engineering", "hr", "legal"][n % 3].into(),
            file_name: format!("manual-{n:02}.md"),
            bytes: bulk_document(n),
        });
    }
    // Half now, half in the middle of the kills, which start once the first document is in.
    let started = Instant::now();
    for upload in &uploads[..BULK_DOCUMENTS / 2] {
        loader.put(upload.clone()).await.expect("stored");
    }
    wait_until(
        "the first document indexed",
        Duration::from_secs(120),
        async || loader.progress().await.expect("progress").indexed >= 1,
    )
    .await;
    let mut mid_load = 0;
    let mut schedule = Vec::new();
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1_700))).await;
        if kill == KILLS / 2 {
            for upload in &uploads[BULK_DOCUMENTS / 2..] {
                loader.put(upload.clone()).await.expect("stored");
            }
        }
        // Each is killed at least twice; otherwise at random.
        let victim = match kill {
            0 | 2 => &mut worker,
            1 | 3 => &mut embedder,
            _ if rng.below(2) == 0 => &mut worker,
            _ => &mut embedder,
        };
        let progress = loader.progress().await.expect("progress");
        victim.kill();
        if progress.pending > 0 {
            mid_load += 1;
        }
        schedule.push(format!(
            "{:.1}s {} ({} indexed, {} pending)",
            started.elapsed().as_secs_f64(),
            victim.name,
            progress.indexed,
            progress.pending
        ));
        tokio::time::sleep(Duration::from_millis(rng.below(500))).await;
        victim.restart();
    }
    eprintln!("kills: {}", schedule.join("; "));
    assert!(
        mid_load >= KILLS / 2,
        "most kills should land while documents are pending: {schedule:?}"
    );

    let progress = tokio::time::timeout(Duration::from_secs(180), loader.wait(|_| {}))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "not indexed in time.\ningest-worker:\n{}\nembedder:\n{}",
                tail(&worker.log),
                tail(&embedder.log)
            )
        })
        .expect("progress");
    let loaded = started.elapsed();
    worker.kill();
    embedder.kill();
    assert_eq!(
        (progress.indexed, progress.failed),
        (BULK_DOCUMENTS as u64, 0),
        "{progress:?}"
    );

    // Both indexes hold exactly the chunks the catalog records, for every document.
    let tenant = settings.default_tenant.clone();
    let catalog = rag_backends::catalog(&settings).expect("the catalog");
    let vectors =
        rag_backends::vector_store(&settings, rag_backends::embedding_dimensions(&settings))
            .expect("the vector store");
    let keywords = rag_backends::keyword_index(&settings).expect("the keyword index");
    let mut per_document = BTreeMap::new();
    let mut total = 0u64;
    for upload in &uploads {
        let id = DocumentId::for_source(&tenant, &upload.domain, &upload.file_name);
        let record = catalog
            .get(&tenant, id)
            .await
            .expect("catalog read")
            .expect("the document is in the catalog");
        assert_eq!(record.state, DocumentState::Indexed, "{}", upload.file_name);
        assert_eq!(record.version, 1, "{}: one version", upload.file_name);
        let chunks = record.chunk_count;
        assert!(chunks >= 3, "{}: several chunks", upload.file_name);
        // Indexes past the last chunk are asked for too: there must be none.
        let indexes: Vec<u32> = (0..chunks + 4).collect();
        let in_vectors = vectors
            .get_chunks(&tenant, id, record.version, &indexes)
            .await
            .expect("vector read")
            .len();
        let ids: Vec<_> = indexes
            .iter()
            .map(|&i| rag_core::point_id(id, record.version, i))
            .collect();
        let in_keywords = keywords
            .get(&tenant, &ids)
            .await
            .expect("keyword read")
            .len();
        assert_eq!(
            (in_vectors, in_keywords),
            (chunks as usize, chunks as usize),
            "{}: (vector, keyword) chunks vs the catalog's {chunks}",
            upload.file_name
        );
        per_document.insert(upload.file_name.clone(), chunks);
        total += u64::from(chunks);
    }
    let everything = SearchFilter::new(tenant.clone(), None);
    assert_eq!(
        (
            vectors.count(&everything).await.expect("vector count"),
            keywords.count(&everything).await.expect("keyword count")
        ),
        (total, total),
        "no point of any other document or version"
    );
    for queue in [
        rag_backends::documents_queue(&settings).expect("the documents queue"),
        rag_backends::chunks_queue(&settings).expect("the chunks queue"),
    ] {
        let stats = queue.stats().await.expect("queue stats");
        assert_eq!(
            (stats.visible, stats.dead_lettered),
            (0, 0),
            "nothing left or dead-lettered: {stats:?}"
        );
    }
    eprintln!(
        "{BULK_DOCUMENTS} documents, {total} chunks, indexed exactly once in {loaded:.1?} through {KILLS} kills ({} worker starts, {} embedder starts): {per_document:?}",
        worker.starts, embedder.starts
    );
}

// ---------------------------------------------------------------------------------------
// Bedrock throttling and failing

const STRONG: &str = "amazon.nova-pro-v1:0";
const LIGHT: &str = "amazon.nova-lite-v1:0";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bedrock_throttling_is_retried_then_falls_back_then_fails_clearly() -> anyhow::Result<()> {
    let bedrock = rag_standins::bedrock::StandIn::start().await?;
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    settings.aws.endpoint_url = Some(bedrock.url());
    settings.aws.credentials = AwsCredentials::Emulator;
    for (tier, model) in [
        (&mut settings.generation.light, LIGHT),
        (&mut settings.generation.strong, STRONG),
    ] {
        *tier = GeneratorSettings::Bedrock {
            model_id: model.into(),
            streaming: true,
            max_attempts: 3,
            timeout_ms: 10_000,
            endpoint_url: None,
        };
    }
    settings.cache.enabled = false;
    let system = start(settings).await?;
    let client = Client::new(&system);
    let (domain, name, bytes) = sample_documents()
        .into_iter()
        .find(|(_, name, _)| name == "nda-template-summary.md")
        .expect("the sample corpus has the NDA summary");
    let (status, body) = client.upload(&domain, &name, bytes).await?;
    assert_eq!(status, 202, "{body}");
    client.wait_indexed(1, Duration::from_secs(120)).await?;
    // A strong-tier question (legal is a strong domain).
    let question = "If a partner asks us to return their confidential information under our NDA, how quickly must it be returned or destroyed?";
    let strong = client.ask(question, Some(&domain)).await?;
    assert_eq!(strong["model"], STRONG, "{strong}");
    let fallbacks_before = counter(&client, "rag_generation_fallbacks_total", "").await;

    // Throttled twice: the third attempt (after backoff) answers, with the strong model.
    bedrock.throttle_first(2);
    let started = Instant::now();
    let retried = client.ask(question, Some(&domain)).await?;
    let retried_in = started.elapsed();
    assert_eq!(retried["model"], STRONG, "{retried}");
    assert_eq!(retried["grounded"], true, "{retried}");
    assert_eq!(
        bedrock.requests(),
        3,
        "two throttled attempts, then the answer"
    );

    // Throttled for all three attempts of the strong model: the light one answers.
    bedrock.throttle_first(3);
    let fell_back = client.ask(question, Some(&domain)).await?;
    assert_eq!(fell_back["model"], LIGHT, "{fell_back}");
    assert_eq!(fell_back["tier"], "light", "{fell_back}");
    assert!(
        fell_back["tier_reasons"].to_string().contains("fell back"),
        "{fell_back}"
    );
    assert_eq!(fell_back["grounded"], true, "{fell_back}");
    assert_eq!(
        bedrock.requests(),
        3 + 1,
        "three strong attempts, one light"
    );
    assert!(
        counter(&client, "rag_generation_fallbacks_total", "").await > fallbacks_before,
        "the fallback is counted"
    );

    // Throttled for ever: both tiers give up after their attempts; a clear 503.
    bedrock.throttle_first(usize::MAX);
    let (status, retry_after, body) = query(&client, question, &domain).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(retry_after.is_some(), "503 without Retry-After: {body}");
    assert_eq!(bedrock.requests(), 3 + 3, "each tier tried three times");
    let throttled_message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Both models failing (500s): the same clear 503, no panic; the system still answers
    // once Bedrock is back.
    bedrock.throttle_first(0);
    bedrock.fail_model(STRONG);
    bedrock.fail_model(LIGHT);
    let (status, retry_after, body) = query(&client, question, &domain).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(retry_after.is_some(), "503 without Retry-After: {body}");
    let failed_message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for message in [&throttled_message, &failed_message] {
        assert!(!message.is_empty(), "{body}");
    }
    eprintln!(
        "bedrock: 2 throttles retried in {retried_in:?}; 3 throttles → {LIGHT}; both throttled → 503 {throttled_message:?}; both failing → 503 {failed_message:?}"
    );
    system.shutdown().await;
    Ok(())
}
