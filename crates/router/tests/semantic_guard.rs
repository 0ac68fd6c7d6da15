//! The semantic cache's guard on labelled question pairs (`fixtures/semantic_pairs.tsv`),
//! with the real embedding model: all-MiniLM-L6-v2 puts questions and their opposites above
//! the 0.95 threshold, so the cosine alone (`none`) serves them each other's answers; with
//! the `lexical` guard no pair of different meaning is served. Prints every pair's cosine and
//! what each guard does with it, and the counts.
//!
//! Needs the model's files (`make models`, or `RAG_MODEL_DIR`).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use rag_backends::rag_cache::semantic::cosine;
use rag_backends::rag_embeddings::{EmbeddingModel, LocalMiniLm, default_model_dir};
use rag_config::{SemanticGuard, Settings};
use rag_router::lexical::Guard;

struct Pair {
    kind: String,
    first: String,
    second: String,
}

fn pairs() -> Vec<Pair> {
    include_str!("fixtures/semantic_pairs.tsv")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "kind, first, second: {line:?}");
            assert!(
                ["same", "different", "reversal"].contains(&fields[0]),
                "{line:?}"
            );
            Pair {
                kind: fields[0].to_owned(),
                first: fields[1].to_owned(),
                second: fields[2].to_owned(),
            }
        })
        .collect()
}

#[tokio::test]
async fn the_lexical_guard_serves_no_pair_of_different_meaning() {
    let dir = default_model_dir();
    let model = LocalMiniLm::load(&dir).unwrap_or_else(|e| {
        panic!(
            "cannot load all-MiniLM-L6-v2 from {}: {e}; fetch it with `make models` or set RAG_MODEL_DIR",
            dir.display()
        )
    });
    let threshold = Settings::default().cache.semantic_threshold;
    let pairs = pairs();
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|p| [p.first.clone(), p.second.clone()])
        .collect();
    let vectors = model.embed(&texts).await.unwrap();

    // kind → (pairs, at or above the threshold, served with none, served with lexical)
    let mut counts: std::collections::BTreeMap<&str, [usize; 4]> = Default::default();
    let mut wrongly_served = Vec::new();
    println!("kind       cosine  none  lexical  first | second");
    for (pair, vectors) in pairs.iter().zip(vectors.chunks_exact(2)) {
        let c = cosine(&vectors[0], &vectors[1]);
        // The answer cached for the first question, asked the second (the guard is symmetric).
        let served = |guard| c >= threshold && Guard::new(guard, &pair.second).allows(&pair.first);
        let (none, lexical) = (served(SemanticGuard::None), served(SemanticGuard::Lexical));
        let row = counts.entry(pair.kind.as_str()).or_default();
        row[0] += 1;
        row[1] += usize::from(c >= threshold);
        row[2] += usize::from(none);
        row[3] += usize::from(lexical);
        println!(
            "{:<10} {c:.3}   {:<5} {:<8} {} | {}",
            pair.kind,
            if none { "hit" } else { "-" },
            if lexical { "hit" } else { "-" },
            pair.first,
            pair.second
        );
        if pair.kind == "different" && lexical {
            wrongly_served.push(format!("{} | {} ({c:.3})", pair.first, pair.second));
        }
    }
    println!("\nat threshold {threshold}:");
    for (kind, [total, above, none, lexical]) in &counts {
        println!(
            "{kind:<10} {total} pairs, {above} at or above the threshold; served with none: {none}, with lexical: {lexical}"
        );
    }
    assert!(
        wrongly_served.is_empty(),
        "served with the lexical guard: {wrongly_served:#?}"
    );
    assert!(
        counts.get("same").is_some_and(|row| row[3] > 0),
        "the guard still lets some rewordings hit"
    );
}
