//! Reads the real NQ-Open oracle subset when it is present (`../shared/datasets/nq-open-oracle`
//! beside the workspace, or `RAG_NQ_OPEN_FILE`); skipped, with a note, when it is not.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::PathBuf;

use rag_eval::QaDataset;
use rag_eval::answers::contains_answer;

fn nq_file() -> Option<PathBuf> {
    let name = "nq-open-oracle/nq-open-oracle.q0000-1999.jsonl.gz";
    [
        std::env::var_os("RAG_NQ_OPEN_FILE").map(PathBuf::from),
        Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/datasets")
                .join(name),
        ),
        Some(PathBuf::from("/work/shared/datasets").join(name)),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())
}

#[test]
fn nq_open_oracle_reads_whole() {
    let Some(path) = nq_file() else {
        eprintln!("NQ-Open oracle not found; skipping (set RAG_NQ_OPEN_FILE)");
        return;
    };
    let ds = QaDataset::open(&path).unwrap();
    // 2,000 questions, 3,519 gold answers, on 1,967 distinct passages (a few are shared by
    // up to three questions).
    assert_eq!(ds.items().len(), 2000);
    assert_eq!(
        ds.items().iter().map(|i| i.answers.len()).sum::<usize>(),
        3519
    );
    assert_eq!(ds.passages().len(), 1967);
    let first = &ds.items()[0];
    assert_eq!(first.question, "who got the first nobel prize in physics");
    assert_eq!(first.answers, ["Wilhelm Conrad Röntgen"]);
    assert_eq!(
        ds.passages()[first.passage].title,
        "List of Nobel laureates in Physics"
    );
    let ids: BTreeSet<&str> = ds.passages().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), 1967, "passage ids are distinct");

    // The dataset marks every gold passage `hasanswer`, and the answer-contains-gold metric
    // agrees on every one.
    let found = ds
        .items()
        .iter()
        .filter(|i| contains_answer(&ds.passages()[i.passage].text, &i.answers))
        .count();
    assert_eq!(found, 2000, "gold passages that contain a gold answer");

    // A 10 % holdout: 197 passages.
    assert_eq!(ds.holdout(0.1, 0).len(), 197);
}
