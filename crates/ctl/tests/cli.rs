//! The `ragctl` verbs that talk to a running gateway, end to end: the embedded system runs in
//! this test on ephemeral ports and the real `ragctl` binary talks to it over HTTP. Checks the
//! output (text and `--json`) and the exit codes scripts rely on.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

const DOMAIN: &str = "engineering";

/// Runs `ragctl args…` against `url` off the runtime's threads (the system serves on them).
async fn ragctl(url: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ragctl"));
    command
        .args(args)
        .env("RAG_URL", url)
        .env_remove("RAG_API_KEY")
        .env_remove("RAG_CONFIG");
    tokio::task::spawn_blocking(move || command.output().expect("ragctl runs"))
        .await
        .expect("the command's thread")
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON value ({e}): {}\nstderr: {}",
            stdout(output),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn ok(output: &Output) {
    assert_eq!(
        code(output),
        0,
        "stdout: {}\nstderr: {}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write_documents(dir: &Path) {
    std::fs::create_dir_all(dir.join("nested")).expect("a folder");
    std::fs::write(
        dir.join("deployments.md"),
        "# Deployment policy\n\nProduction deployments happen on Tuesdays and Thursdays, after the change advisory board has approved them. A deployment that fails its health checks is rolled back within fifteen minutes.\n",
    )
    .expect("a document");
    std::fs::write(
        dir.join("nested/oncall.txt"),
        "On-call engineers acknowledge a page within five minutes. The secondary on-call engineer is paged when the primary does not acknowledge within ten minutes.\n",
    )
    .expect("a document");
    // Not a type the pipeline reads: skipped by the folder walk.
    std::fs::write(dir.join("nested/image.bin"), [0u8, 159, 146, 150, 0, 1]).expect("a file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ragctl_talks_to_a_running_gateway() {
    rag_telemetry::init_for_tests();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut settings = rag_config::Settings {
        data_dir: dir.path().join("data"),
        ..rag_config::Settings::default()
    };
    settings.gateway.listen = "127.0.0.1:0".parse().expect("an address");
    settings.queues.wait_ms = 200;
    let mut system = rag_launcher::start(settings)
        .await
        .expect("the system starts");
    system
        .wait_ready(Duration::from_secs(120))
        .await
        .expect("the system is ready");
    let url = system.url();
    let docs = dir.path().join("docs");
    write_documents(&docs);
    let docs_arg = docs.display().to_string();

    // Ingest a folder (recursively) and wait until both documents are indexed.
    let ingested = ragctl(
        &url,
        &[
            "ingest",
            &docs_arg,
            "--domain",
            DOMAIN,
            "--json",
            "--timeout",
            "120",
        ],
    )
    .await;
    ok(&ingested);
    let report = json(&ingested);
    assert_eq!(report["uploaded"], 2, "{report}");
    assert_eq!(report["indexed"], 2, "{report}");
    assert_eq!(report["failed"], 0, "{report}");

    // The list shows them indexed.
    let listed = ragctl(&url, &["docs", "list", "--json"]).await;
    ok(&listed);
    let list = json(&listed);
    let documents = list["documents"].as_array().expect("documents");
    assert_eq!(documents.len(), 2, "{list}");
    assert!(documents.iter().all(|d| d["status"] == "indexed"), "{list}");
    let text_list = ragctl(&url, &["docs", "list"]).await;
    ok(&text_list);
    assert!(stdout(&text_list).contains("deployments.md"));

    // A question: the answer streams to stdout, then numbered citations.
    let question = "When do production deployments happen?";
    let asked = ragctl(&url, &["query", question, "--domain", DOMAIN]).await;
    ok(&asked);
    let text = stdout(&asked);
    assert!(text.contains("Tuesdays"), "{text}");
    assert!(text.contains("[1] "), "{text}");
    // Citations name the document's title (the Markdown heading).
    assert!(text.contains("] Deployment policy (engineering"), "{text}");
    let asked = ragctl(&url, &["query", question, "--domain", DOMAIN, "--json"]).await;
    ok(&asked);
    let answer = json(&asked);
    let citations = answer["citations"].as_array().expect("citations");
    assert!(!citations.is_empty(), "{answer}");
    assert!(
        citations.iter().any(|c| c["title"] == "Deployment policy"),
        "{answer}"
    );

    // Status and delete of one document.
    let id = documents
        .iter()
        .find(|d| d["title"] == "deployments.md" || d["title"] == "Deployment policy")
        .and_then(|d| d["id"].as_str())
        .expect("the document's id")
        .to_owned();
    let status = ragctl(&url, &["docs", "status", &id]).await;
    ok(&status);
    assert!(stdout(&status).contains("indexed"));
    let deleted = ragctl(&url, &["docs", "delete", &id, "--json"]).await;
    ok(&deleted);
    assert_eq!(json(&deleted)["status"], "deleting");

    // Exit codes: refused (4), bad input (2), unreachable (3).
    let missing = ragctl(
        &url,
        &["docs", "status", "00000000-0000-0000-0000-000000000000"],
    )
    .await;
    assert_eq!(code(&missing), 4, "{missing:?}");
    let unknown_domain = ragctl(&url, &["ingest", &docs_arg, "--domain", "nosuchdomain"]).await;
    assert_eq!(code(&unknown_domain), 4, "{unknown_domain:?}");
    let bad_path = ragctl(&url, &["ingest", "/no/such/path"]).await;
    assert_eq!(code(&bad_path), 2, "{bad_path:?}");
    let stderr = String::from_utf8_lossy(&bad_path.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let unreachable = ragctl("http://127.0.0.1:1", &["docs", "list"]).await;
    assert_eq!(code(&unreachable), 3, "{unreachable:?}");
    let no_verb_arg = ragctl(&url, &["query"]).await;
    assert_eq!(code(&no_verb_arg), 2);

    system.shutdown().await;
}

/// `ragctl bench` in a tiny smoke mode: a six-document corpus, a few queries per level; the
/// results file and the chart are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_writes_results_and_chart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dataset = dir.path().join("tiny");
    std::fs::create_dir_all(&dataset).expect("a folder");
    let topics = [
        (
            "d1",
            "Aspirin",
            "Aspirin lowers the risk of a second heart attack.",
        ),
        (
            "d2",
            "Vitamin D",
            "Vitamin D deficiency is common in northern winters.",
        ),
        (
            "d3",
            "Sleep",
            "Adults who sleep less than six hours have higher blood pressure.",
        ),
        (
            "d4",
            "Exercise",
            "Regular exercise improves insulin sensitivity in adults.",
        ),
        (
            "d5",
            "Coffee",
            "Moderate coffee drinking is not linked to heart disease.",
        ),
        (
            "d6",
            "Salt",
            "A high-salt diet raises blood pressure in most people.",
        ),
    ];
    let corpus: String = topics
        .iter()
        .map(|(id, title, text)| {
            serde_json::json!({ "_id": id, "title": title, "text": text }).to_string() + "\n"
        })
        .collect();
    std::fs::write(dataset.join("corpus.jsonl"), corpus).expect("the corpus");
    let queries: String = [
        "Does aspirin prevent heart attacks?",
        "Is vitamin D deficiency common in winter?",
        "Does short sleep raise blood pressure?",
        "Does exercise improve insulin sensitivity?",
    ]
    .iter()
    .enumerate()
    .map(|(i, q)| serde_json::json!({ "_id": i.to_string(), "text": q }).to_string() + "\n")
    .collect();
    std::fs::write(dataset.join("queries.jsonl"), queries).expect("the queries");
    let out = dir.path().join("results");
    let (dataset_arg, out_arg, cache_arg) = (
        dataset.display().to_string(),
        out.display().to_string(),
        dir.path().join("cache.db").display().to_string(),
    );
    let output = ragctl(
        "http://127.0.0.1:1",
        &[
            "bench",
            "--dataset",
            &dataset_arg,
            "--queries",
            "4",
            "--concurrency",
            "1,2",
            "--stream-queries",
            "2",
            "--name",
            "smoke",
            "--out",
            &out_arg,
            "--embedding-cache",
            &cache_arg,
        ],
    )
    .await;
    ok(&output);
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("smoke.json")).expect("the results file"),
    )
    .expect("JSON results");
    assert_eq!(results["ingestion"]["documents"], 5, "{results}");
    let cells = results["cells"].as_array().expect("cells");
    assert_eq!(
        cells.len(),
        6,
        "off, exact and semantic at two levels: {results}"
    );
    assert!(cells.iter().all(|c| c["errors"] == 0), "{results}");
    assert!(results["machine"]["cores"].as_u64().unwrap_or(0) >= 1);
    let svg = std::fs::read_to_string(out.join("latency-vs-concurrency.svg")).expect("the chart");
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    // The JSON line on stdout parses too.
    let last = stdout(&output)
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .map(str::to_owned)
        .expect("a JSON line");
    serde_json::from_str::<Value>(&last).expect("the JSON line parses");
}
