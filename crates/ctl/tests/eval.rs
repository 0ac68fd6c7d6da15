//! `ragctl eval answers` and `ragctl eval sweep` end to end: the real binary starts the
//! embedded system, ingests a small dataset written here through the real pipeline, asks
//! through the real router or retriever, and records each run in the experiments log of its
//! working directory and, through `MLFLOW_TRACKING_URI`, in MLflow.
//!
//! MLflow and the judge's model cannot run here: `rag_standins::mlflow` speaks MLflow's REST
//! API, and `rag_standins::openai` an OpenAI-compatible server whose "model" is a test judge
//! replying in the verdict's JSON (the real MLflow server is tested in
//! `crates/eval/tests/mlflow.rs` when installed).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rag_eval::{ExperimentLog, QaDataset};
use rag_standins::{mlflow, openai};
use serde_json::{Value, json};

/// (question, answers, passage title, passage text): eight questions on seven passages.
const QA: &[(&str, &[&str], &str, &str)] = &[
    (
        "when was the zorblatt bridge in quenton opened",
        &["1887"],
        "Zorblatt Bridge",
        "The Zorblatt Bridge in Quenton was opened to traffic in 1887. It was designed by the engineer Mara Ellingsen and crosses the river Vell.",
    ),
    (
        "who designed the zorblatt bridge",
        &["Mara Ellingsen"],
        "Zorblatt Bridge",
        "The Zorblatt Bridge in Quenton was opened to traffic in 1887. It was designed by the engineer Mara Ellingsen and crosses the river Vell.",
    ),
    (
        "what is the capital of the republic of veltria",
        &["Ostrava Nova"],
        "Veltria",
        "Ostrava Nova is the capital of the Republic of Veltria and its largest city, with a population of two million.",
    ),
    (
        "how many moons does the planet kessin have",
        &["seven", "7"],
        "Kessin (planet)",
        "The planet Kessin has seven moons. The largest of its moons is called Taro and is covered in ice.",
    ),
    (
        "who wrote the novel the glass orchard",
        &["Ines Falkner"],
        "The Glass Orchard",
        "The Glass Orchard is a 1962 novel written by the Danish author Ines Falkner about a family of glassblowers.",
    ),
    (
        "what colours are on the flag of the duchy of amberlin",
        &["green and gold"],
        "Flag of Amberlin",
        "The flag of the Duchy of Amberlin is green and gold, with a white stag in the centre.",
    ),
    (
        "in which year did the trellmoor coal mine close",
        &["1954"],
        "Trellmoor mine",
        "The Trellmoor coal mine closed in 1954 after a flood destroyed its lower galleries.",
    ),
    (
        "what instrument did the composer lucian harrow play",
        &["cello", "the cello"],
        "Lucian Harrow",
        "Lucian Harrow was a composer who played the cello in the Vienna court orchestra for twenty years.",
    ),
];

fn write_qa(dir: &Path) -> PathBuf {
    let path = dir.join("tiny-qa.jsonl");
    let lines: Vec<String> = QA
        .iter()
        .map(|(q, answers, title, text)| {
            json!({
                "question": q,
                "answers": answers,
                "ctxs": [{"title": title, "text": text, "hasanswer": true, "isgold": true}],
            })
            .to_string()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn model_dir() -> PathBuf {
    std::env::var_os("RAG_MODEL_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models/all-minilm-l6-v2"),
        PathBuf::from,
    )
}

/// Runs `ragctl` in `cwd` with `args`; returns its standard output, failing with its
/// standard error when it fails.
async fn ragctl(cwd: &Path, mlflow: &str, args: &[&str]) -> String {
    let (out, err) = (cwd.join("ragctl.out"), cwd.join("ragctl.err"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ragctl"))
        .args(args)
        .current_dir(cwd)
        .env("RAG_MODEL_DIR", model_dir())
        .env("RAG__QUEUES__WAIT_MS", "200")
        .env("MLFLOW_TRACKING_URI", mlflow)
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .env_remove("RAG_CONFIG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ragctl {args:?} did not finish within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stdout = std::fs::read_to_string(&out).unwrap();
    assert!(
        status.success(),
        "ragctl {args:?} failed ({status}):\n{stdout}\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    stdout
}

fn last_json(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the last line is not JSON ({e}):\n{stdout}"))
}

/// The test judge: faithfulness is the number of passages it was shown (1 to 5), relevance
/// 5 when the answer shares a word of four letters or more with the question, else 1; the
/// reasons repeat the question and the answer, so the test sees what the judge was sent.
fn test_judge(_system: &str, user: &str) -> String {
    let line = |prefix: &str| {
        user.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_default()
            .to_owned()
    };
    let (question, answer) = (line("Question: "), line("Answer: "));
    let passages = user.lines().filter(|l| l.starts_with('[')).count();
    let shared = question
        .split_whitespace()
        .filter(|w| w.len() >= 4)
        .any(|w| answer.to_lowercase().contains(w));
    json!({
        "faithfulness": passages.clamp(1, 5),
        "faithfulness_reason": format!("{passages} passages for: {answer}"),
        "relevance": if shared { 5 } else { 1 },
        "relevance_reason": format!("asked: {question}"),
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_scored_judged_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_qa(dir.path());
    let tracking = mlflow::StandIn::start().await.unwrap();
    let judge = openai::StandIn::start().await.unwrap();
    judge.answer_with(test_judge);
    let details = dir.path().join("details.jsonl");

    let stdout = ragctl(
        dir.path(),
        &tracking.url(),
        &[
            "eval",
            "answers",
            "--dataset",
            dataset.to_str().unwrap(),
            "--holdout",
            "0.25",
            "--seed",
            "1",
            "--details",
            details.to_str().unwrap(),
            "--judge",
            "openai",
            "--judge-base-url",
            &judge.url(),
            "--judge-model",
            "judge-standin",
            "--json",
        ],
    )
    .await;
    assert!(stdout.contains("| answer contains gold"), "{stdout}");
    let report = last_json(&stdout);

    // The held-out passages are the library's choice for this seed and share: 2 of 7.
    let qa = QaDataset::open(&dataset).unwrap();
    let held = qa.holdout(0.25, 1);
    assert_eq!(held.len(), 2);
    let held_questions = qa
        .items()
        .iter()
        .filter(|i| held.contains(&i.passage))
        .count();
    assert_eq!(report["questions"], 8, "{report}");
    assert_eq!(report["held_out"], held_questions, "{report}");
    assert_eq!(report["answerable"], 8 - held_questions, "{report}");
    assert_eq!(report["passages"], 5, "{report}");
    // Distinct made-up facts, one passage each: the extractive answerer finds most of them.
    let at_least = |key: &str, floor: f64| {
        let v = report[key].as_f64().unwrap_or(-1.0);
        assert!(v >= floor, "{key} = {v} < {floor}: {report}");
    };
    at_least("contains_gold", 0.5);
    at_least("context_recall", 0.5);
    at_least("citation_precision", 0.5);
    assert_eq!(report["judge"]["judged"], 8, "{report}");
    assert_eq!(report["judge"]["failed"], 0, "{report}");
    assert_eq!(report["params"]["judge_prompt"], "judge/v1");
    assert_eq!(report["params"]["judge_model"], "judge-standin");
    assert_eq!(report["params"]["prompt_versions"], "extractive");
    assert_eq!(judge.requests(), 8);

    // Every question in the details, with what the judge was sent and said.
    let lines: Vec<Value> = std::fs::read_to_string(&details)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    for (line, (question, ..)) in lines.iter().zip(QA) {
        assert_eq!(line["question"], *question);
        let cited = line["citations"].as_array().unwrap().len();
        let verdict = &line["judge"]["scored"];
        assert_eq!(verdict["faithfulness"], cited.clamp(1, 5), "{line}");
        assert_eq!(verdict["relevance_reason"], format!("asked: {question}"));
        let answer = line["answer"].as_str().unwrap();
        assert!(
            verdict["faithfulness_reason"]
                .as_str()
                .unwrap()
                .ends_with(answer),
            "{line}"
        );
        let gold_cited = line["citations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["gold"] == true);
        assert_eq!(line["scores"]["gold_cited"], gold_cited, "{line}");
        if line["held_out"] == true {
            assert!(!gold_cited, "a held-out passage cannot be cited: {line}");
        }
    }

    // Recorded: one line in the working directory's log, one MLflow run.
    let log = ExperimentLog::in_data_dir(&dir.path().join(".rag-data"));
    let records = log.read_all().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].kind, "answers");
    assert_eq!(records[0].params["judge_prompt"], "judge/v1");
    assert_eq!(records[0].params["holdout"], "0.25");
    assert_eq!(records[0].metrics["questions"], 8.0);
    assert_eq!(tracking.run_count("rag-answers"), 1);

    // A quick second run reuses the corpus; no judge, no judge figures.
    let stdout = ragctl(
        dir.path(),
        &tracking.url(),
        &[
            "eval",
            "answers",
            "--dataset",
            dataset.to_str().unwrap(),
            "--holdout",
            "0.25",
            "--seed",
            "1",
            "--limit",
            "3",
            "--json",
        ],
    )
    .await;
    let report = last_json(&stdout);
    assert_eq!(report["questions"], 3, "{report}");
    assert!(report.get("judge").is_none(), "{report}");
    assert_eq!(log.read_all().unwrap().len(), 2);
    assert_eq!(tracking.run_count("rag-answers"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_records_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tiny-beir");
    std::fs::create_dir_all(data.join("qrels")).unwrap();
    let corpus: Vec<String> = QA
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(i, (_, _, title, text))| {
            json!({"_id": format!("d{i}"), "title": title, "text": text}).to_string()
        })
        .collect();
    std::fs::write(data.join("corpus.jsonl"), corpus.join("\n")).unwrap();
    let queries = [
        ("q1", "bridge over the river Vell opened in 1887", "d0"),
        ("q2", "largest city of Veltria", "d2"),
        ("q3", "moons of Kessin", "d3"),
    ];
    let lines: Vec<String> = queries
        .iter()
        .map(|(id, text, _)| json!({"_id": id, "text": text}).to_string())
        .collect();
    std::fs::write(data.join("queries.jsonl"), lines.join("\n")).unwrap();
    let qrels: String = queries
        .iter()
        .map(|(q, _, d)| format!("{q}\t{d}\t1\n"))
        .collect();
    std::fs::write(
        data.join("qrels/test.tsv"),
        format!("query-id\tcorpus-id\tscore\n{qrels}"),
    )
    .unwrap();
    let tracking = mlflow::StandIn::start().await.unwrap();

    let stdout = ragctl(
        dir.path(),
        &tracking.url(),
        &[
            "eval",
            "sweep",
            "--dataset",
            data.to_str().unwrap(),
            "--alphas",
            "0.3,0.7",
            "--fusions",
            "minmax,zscore,rrf",
            "--chunk-sizes",
            "64,128",
            "--top-k",
            "10",
            "--json",
        ],
    )
    .await;
    assert!(stdout.contains("| mode"), "{stdout}");
    assert!(stdout.contains("best nDCG@10"), "{stdout}");
    let reports = last_json(&stdout);
    let reports = reports.as_array().unwrap();
    // Per chunk size: minmax × 2 alphas, zscore × 2 alphas, rrf once.
    assert_eq!(reports.len(), 10, "{stdout}");
    let points: Vec<(String, String, String)> = reports
        .iter()
        .map(|r| {
            let p = &r["params"];
            (
                r["mode"].as_str().unwrap().to_owned(),
                p["chunk_size"].as_str().unwrap().to_owned(),
                p["alpha"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = ["64", "128"]
        .iter()
        .flat_map(|size| {
            [
                ("minmax", "0.3"),
                ("minmax", "0.7"),
                ("zscore", "0.3"),
                ("zscore", "0.7"),
                ("rrf", "-"),
            ]
            .map(|(m, a)| (m.to_owned(), (*size).to_owned(), a.to_owned()))
        })
        .collect();
    assert_eq!(points, expected);
    for r in reports {
        assert_eq!(r["queries"], 3, "{r}");
        assert_eq!(r["docs"], 7, "{r}");
        // Three easy queries over seven unrelated passages.
        assert!(r["ndcg@10"].as_f64().unwrap() >= 0.6, "{r}");
    }
    assert!(
        dir.path()
            .join(".rag-data/eval/tiny-beir/sweep/chunk-64")
            .is_dir()
    );
    assert!(
        dir.path()
            .join(".rag-data/eval/tiny-beir/sweep/chunk-128")
            .is_dir()
    );

    let log = ExperimentLog::in_data_dir(&dir.path().join(".rag-data"));
    let records = log.read_all().unwrap();
    assert_eq!(records.len(), 10);
    assert!(
        records
            .iter()
            .all(|r| r.kind == "retrieval" && r.params["sweep"] == "true")
    );
    assert_eq!(tracking.run_count("rag-retrieval"), 10);
}
