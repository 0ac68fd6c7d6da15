//! Loads the real SciFact test split when it is present (`../shared/datasets/scifact` beside
//! the workspace, or `RAG_SCIFACT_DIR`); skipped, with a note, when it is not.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rag_eval::metrics::evaluate;
use rag_eval::{BeirDataset, Qrels};

fn scifact_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("RAG_SCIFACT_DIR").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/scifact")),
        Some(PathBuf::from("/work/shared/datasets/scifact")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|dir| dir.join("qrels/test.tsv").is_file())
}

#[test]
fn scifact_test_split_counts() {
    let Some(dir) = scifact_dir() else {
        eprintln!("SciFact not found; skipping (set RAG_SCIFACT_DIR)");
        return;
    };
    let ds = BeirDataset::open(&dir).unwrap();
    assert!(ds.corpus_path().ends_with("corpus.jsonl.gz"));

    // 300 test queries (of 1,109 in queries.jsonl), 339 judgments, all of grade 1.
    assert_eq!(ds.queries().len(), 300);
    let qrels: &Qrels = ds.qrels();
    assert_eq!(qrels.query_count(), 300);
    assert_eq!(qrels.judgment_count(), 339);
    assert!(qrels.iter().all(|(_, j)| j.values().all(|&g| g == 1)));
    assert_eq!(qrels.doc_ids().len(), 283);
    assert_eq!(ds.queries()[0].id, "1");
    assert_eq!(
        ds.queries()[0].text,
        "0-dimensional biomaterials show inductive properties."
    );

    // 5,183 documents, every judged one among them.
    let stats = ds.corpus_stats().unwrap();
    assert_eq!(stats.docs, 5183);
    assert!(stats.missing_judged_docs.is_empty(), "{stats:?}");
    let first = ds.corpus().unwrap().next().unwrap().unwrap();
    assert_eq!(first.id, "4983");
    assert!(
        first
            .title
            .starts_with("Microstructural development of human newborn")
    );

    // The train split opens too: 809 queries, 919 judgments.
    let train = BeirDataset::open_split(&dir, "train").unwrap();
    assert_eq!(train.queries().len(), 809);
    assert_eq!(train.qrels().judgment_count(), 919);

    // An oracle run (the judged documents, in any order) is perfect; an empty one scores 0.
    let oracle: BTreeMap<&str, Vec<&str>> = qrels
        .iter()
        .map(|(q, j)| (q, j.keys().map(String::as_str).collect()))
        .collect();
    let eval = evaluate(qrels, &oracle).unwrap();
    assert_eq!(eval.queries(), 300);
    assert!((eval.ndcg_at_10 - 1.0).abs() < 1e-12);
    assert!((eval.recall_at_100 - 1.0).abs() < 1e-12);
    assert!((eval.mrr_at_10 - 1.0).abs() < 1e-12);
    let nothing = evaluate(qrels, BTreeMap::<String, Vec<String>>::new()).unwrap();
    assert_eq!((nothing.queries(), nothing.not_ranked.len()), (300, 300));
    assert_eq!(nothing.ndcg_at_10, 0.0);
}
