//! Crash recovery, for real: the whole system runs as a `ragctl up` process told to abort (no
//! unwinding, no flushes: what `kill -9` does) at one step of ingestion, an update or a
//! delete. A fresh system on the same data directory must then finish the job from the
//! queues' redeliveries and leave exactly the chunks of the right version in both indexes:
//! no duplicates, no orphans, nothing missing. Every step boundary of the ingest-worker and
//! the embedder is tried.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rag_backends::rag_catalog::DocumentState;
use rag_config::{Environment, Settings};
use rag_core::fault::CRASH_AT_ENV;
use rag_core::{ObjectKey, SearchFilter};
use rag_launcher::{Loader, Upload};

const DOMAIN: &str = "engineering";
const FILE: &str = "runbook.md";

/// Small visibility timeout and polling interval, so redeliveries come quickly; two chunks
/// per queue message, so a document spans several messages.
const CONFIG: &str = r#"
[queues]
visibility_timeout_secs = 1
wait_ms = 100

[ingest]
chunks_per_batch = 2
"#;

/// Sections long enough to make several chunks; `edition` changes every one of them.
fn document(edition: u32) -> Vec<u8> {
    let mut text = format!("# Failover runbook, edition {edition}\n\n");
    for section in 1..=6 {
        text.push_str(&format!("## Step {section}\n\n"));
        for sentence in 1..=12 {
            text.push_str(&format!(
                "In edition {edition}, step {section} requires the operator to check replica {sentence} for lag before promoting it, and to record the result in the incident log. "
            ));
        }
        text.push_str("\n\n");
    }
    text.into_bytes()
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
    settings: Settings,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("config.toml");
        let data_dir = dir.path().join("data");
        std::fs::write(
            &config,
            format!("data_dir = {:?}\n{CONFIG}", data_dir.display().to_string()),
        )
        .expect("the config file is written");
        let mut settings = Settings::load(Some(&config), &Environment::Map(Default::default()))
            .expect("the config is valid");
        settings.gateway.listen = "127.0.0.1:0".parse().expect("an address");
        Self {
            _dir: dir,
            config,
            settings,
        }
    }

    fn key(&self) -> ObjectKey {
        ObjectKey::for_upload(&self.settings.default_tenant, DOMAIN, FILE)
    }

    async fn put(&self, edition: u32) {
        let mut loader = Loader::new(&self.settings).expect("a loader");
        loader
            .put(Upload {
                domain: DOMAIN.into(),
                file_name: FILE.into(),
                bytes: document(edition),
            })
            .await
            .expect("the upload is stored");
    }

    async fn delete(&self) {
        rag_backends::object_store(&self.settings)
            .expect("the object store")
            .delete(&self.key().to_key())
            .await
            .expect("the object is deleted");
    }

    /// Runs `ragctl up` with a crash point armed, does `act`, and waits for the crash.
    async fn crash_during(&self, point: &str, act: impl AsyncFnOnce(&Self)) {
        let log_path = self.config.with_file_name(format!("{point}.log"));
        let log = std::fs::File::create(&log_path).expect("a log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ragctl"))
            .args(["--config"])
            .arg(&self.config)
            .args(["up", "--no-seed", "--listen", "127.0.0.1:0"])
            .env(CRASH_AT_ENV, point)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ragctl starts");
        act(self).await;
        let deadline = Instant::now() + Duration::from_secs(180);
        let status = loop {
            if let Some(status) = child.try_wait().expect("the child can be waited for") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{point}: the system did not reach the crash point:\n{}",
                    tail(&log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(6),
            "{point}: expected an abort (SIGABRT), got {status}:\n{}",
            tail(&log_path)
        );
    }

    /// Starts a fresh system on the data directory and waits until the document reaches
    /// `state` (at `version`, if indexed); returns the chunk count the catalog records.
    async fn recover(&self, point: &str, state: DocumentState, version: u64) -> u32 {
        let system = rag_launcher::start(self.settings.clone())
            .await
            .expect("the system restarts");
        let catalog = rag_backends::catalog(&self.settings).expect("the catalog");
        let tenant = &self.settings.default_tenant;
        let id = self.key().document_id;
        let deadline = Instant::now() + Duration::from_secs(120);
        let record = loop {
            let record = catalog
                .get(tenant, id)
                .await
                .expect("catalog read")
                .expect("the document is known");
            if record.state == state
                && (state != DocumentState::Indexed || record.version == version)
            {
                break record;
            }
            assert!(
                Instant::now() < deadline,
                "{point}: after the restart the document stayed {:?} at version {}",
                record.state,
                record.version
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let chunks = if state == DocumentState::Indexed {
            record.chunk_count
        } else {
            0
        };
        // Both indexes hold exactly the visible version's chunks.
        let filter = SearchFilter::new(tenant.clone(), None);
        let vectors = rag_backends::vector_store(
            &self.settings,
            rag_backends::embedding_dimensions(&self.settings),
        )
        .expect("the vector store");
        let keywords = rag_backends::keyword_index(&self.settings).expect("the keyword index");
        let in_vectors = vectors.count(&filter).await.expect("vector count");
        let in_keywords = keywords.count(&filter).await.expect("keyword count");
        assert_eq!(
            (in_vectors, in_keywords),
            (u64::from(chunks), u64::from(chunks)),
            "{point}: (vector, keyword) chunk counts after recovery"
        );
        if chunks > 0 {
            let indexes: Vec<u32> = (0..chunks).collect();
            let current = vectors
                .get_chunks(tenant, id, version, &indexes)
                .await
                .expect("chunks of the visible version");
            assert_eq!(
                current.len(),
                chunks as usize,
                "{point}: visible version complete"
            );
        }
        drop((vectors, keywords));
        system.shutdown().await;
        chunks
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Indexes edition 1 with a system that does not crash.
async fn indexed_first_edition(fixture: &Fixture) {
    let system = rag_launcher::start(fixture.settings.clone())
        .await
        .expect("the system starts");
    fixture.put(1).await;
    let loader = Loader::new(&fixture.settings).expect("a loader");
    tokio::time::timeout(Duration::from_secs(120), loader.wait(|_| {}))
        .await
        .expect("edition 1 is indexed in time")
        .expect("progress can be read");
    system.shutdown().await;
}

const INGEST_POINTS: &[&str] = &[
    "ingest.after_begin_version",
    "ingest.after_set_chunking",
    "ingest.after_send_chunks",
    "embedder.after_embed",
    "embedder.after_vector_upsert",
    "embedder.after_keyword_upsert",
    "embedder.after_record_batch",
    "embedder.after_mark_indexed",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_indexing_a_new_document_is_repaired() {
    rag_telemetry::init_for_tests();
    for point in INGEST_POINTS {
        let fixture = Fixture::new();
        fixture.crash_during(point, async |f| f.put(1).await).await;
        let chunks = fixture.recover(point, DocumentState::Indexed, 1).await;
        assert!(
            chunks >= 3,
            "{point}: the document should span several chunks"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_replacing_a_version_leaves_only_the_new_one() {
    rag_telemetry::init_for_tests();
    let points = INGEST_POINTS
        .iter()
        .chain(&["embedder.after_retire_old_versions"]);
    for point in points {
        let fixture = Fixture::new();
        indexed_first_edition(&fixture).await;
        fixture.crash_during(point, async |f| f.put(2).await).await;
        fixture.recover(point, DocumentState::Indexed, 2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_deleting_leaves_nothing_behind() {
    rag_telemetry::init_for_tests();
    for point in [
        "ingest.after_mark_deleting",
        "ingest.after_send_removal",
        "embedder.after_remove_vectors",
        "embedder.after_remove_keywords",
        "embedder.after_mark_deleted",
    ] {
        let fixture = Fixture::new();
        indexed_first_edition(&fixture).await;
        fixture
            .crash_during(point, async |f| f.delete().await)
            .await;
        fixture.recover(point, DocumentState::Deleted, 0).await;
    }
}
