//! What one hybrid search costs in the indexes, before and after the two-phase search, on a
//! realistic index: the first 1,000 SciFact documents (`../shared/datasets/scifact`, or
//! `$SCIFACT_DIR`), cut into chunks of 150 words, embedded with all-MiniLM-L6-v2, in a
//! tantivy index and a qdrant-edge shard in a temporary directory.
//!
//! * **before**: what the retriever did until now: both sides return their candidates
//!   (`retriever.candidates_per_hit` × top-k, at least `min_candidates`) with their whole
//!   chunks (`search`), then fusion, then the top k.
//! * **after**: both sides return ids and scores only (`search_ids`: tantivy fast fields, a
//!   payload selector in Qdrant), fusion, then the top k's chunks in one exact lookup by
//!   point id (`KeywordIndex::get`), which the retriever now does.
//!
//! The query embedding is computed once per query outside the timings (it is the same for
//! both) and its own median is printed. Medians over the test queries whose judged documents
//! are all in the subset; every query's ranking must be identical before and after (checked:
//! the bench fails otherwise), and so nDCG@10 is too (printed).
//!
//!     cargo bench --profile dev -p rag-retriever --bench search
//!
//! (`--profile dev`: the workspace's dependencies are optimised at level 2 there.)

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rag_backends::rag_embeddings::{EmbeddingModel, LocalMiniLm};
use rag_backends::rag_keyword_index::{KeywordIndex, TantivyIndex};
use rag_backends::rag_vector_store::{EdgeVectorStore, VectorPoint, VectorStore};
use rag_core::{ChunkRecord, DocumentId, SearchFilter, point_id};
use rag_eval::{BeirDataset, Evaluator, Qrels};
use rag_retriever::fusion::{self, Method};
use uuid::Uuid;

const DOCUMENTS: usize = 1_000;
const CHUNK_WORDS: usize = 150;
const TENANT: &str = "bench";
const DOMAIN: &str = "scifact";
/// The retriever's defaults (`retriever.candidates_per_hit`, `min_candidates`, `alpha`).
const CANDIDATES_PER_HIT: usize = 4;
const MIN_CANDIDATES: usize = 20;
const ALPHA: f32 = 0.7;
const ROUNDS: usize = 3;

struct Indexes {
    keywords: std::sync::Arc<TantivyIndex>,
    vectors: std::sync::Arc<EdgeVectorStore>,
    /// Chunk id → SciFact document id.
    documents: HashMap<Uuid, String>,
}

fn dataset_dir() -> PathBuf {
    std::env::var_os("SCIFACT_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/scifact"),
        PathBuf::from,
    )
}

fn chunks_of(id: &str, title: &str, text: &str) -> Vec<ChunkRecord> {
    let document_id = DocumentId::for_source(TENANT, DOMAIN, id);
    let words: Vec<&str> = text.split_whitespace().collect();
    let pieces: Vec<String> = if words.is_empty() {
        vec![title.to_owned()]
    } else {
        words.chunks(CHUNK_WORDS).map(|w| w.join(" ")).collect()
    };
    (0u32..)
        .zip(pieces)
        .map(|(index, text)| ChunkRecord {
            id: point_id(document_id, 1, index),
            document_id,
            version: 1,
            chunk_index: index,
            char_start: 0,
            char_end: u32::try_from(text.len()).unwrap_or(u32::MAX),
            text,
            title: title.to_owned(),
            domain: DOMAIN.into(),
            tenant: TENANT.into(),
            section: String::new(),
            page: None,
            object_key: format!("uploads/{DOMAIN}/{id}.txt"),
        })
        .collect()
}

async fn build(
    dataset: &BeirDataset,
    model: &LocalMiniLm,
    dir: &std::path::Path,
) -> anyhow::Result<Indexes> {
    let keywords = TantivyIndex::open(&dir.join("keywords"))?;
    let vectors = EdgeVectorStore::open(&dir.join("vectors"), model.dimensions())?;
    let mut documents = HashMap::new();
    let mut chunks = Vec::new();
    for document in dataset.corpus()?.take(DOCUMENTS) {
        let document = document?;
        for chunk in chunks_of(&document.id, &document.title, &document.text) {
            documents.insert(chunk.id, document.id.clone());
            chunks.push(chunk);
        }
    }
    let started = Instant::now();
    for batch in chunks.chunks(64) {
        let texts: Vec<String> = batch
            .iter()
            .map(|c| format!("{}\n\n{}", c.title, c.text))
            .collect();
        let vectors_of = model.embed(&texts).await?;
        let points = batch
            .iter()
            .cloned()
            .zip(vectors_of)
            .map(|(chunk, vector)| VectorPoint { vector, chunk })
            .collect();
        vectors.upsert(points).await?;
        keywords.upsert(batch.to_vec()).await?;
    }
    eprintln!(
        "indexed {} documents as {} chunks in {:.1?}",
        DOCUMENTS,
        chunks.len(),
        started.elapsed()
    );
    Ok(Indexes {
        keywords,
        vectors,
        documents,
    })
}

/// The chunk ids of the top `top_k`, best first: the retriever before the change.
async fn before(
    indexes: &Indexes,
    query: &str,
    vector: &[f32],
    top_k: usize,
) -> anyhow::Result<Vec<ChunkRecord>> {
    let filter = SearchFilter::new(TENANT, Some(DOMAIN.into()));
    let candidates = (top_k * CANDIDATES_PER_HIT).max(MIN_CANDIDATES);
    let (dense, keyword) = tokio::try_join!(
        async { anyhow::Ok(indexes.vectors.search(vector, &filter, candidates).await?,) },
        async { anyhow::Ok(indexes.keywords.search(query, &filter, candidates).await?,) },
    )?;
    let ids_d: Vec<(Uuid, f32)> = dense.iter().map(|h| (h.chunk.id, h.score)).collect();
    let ids_k: Vec<(Uuid, f32)> = keyword.iter().map(|h| (h.chunk.id, h.score)).collect();
    let fused = fusion::fuse(&ids_d, &ids_k, Method::Weighted { alpha: ALPHA });
    let mut chunks: HashMap<Uuid, ChunkRecord> = dense
        .into_iter()
        .map(|h| h.chunk)
        .chain(keyword.into_iter().map(|h| h.chunk))
        .map(|c| (c.id, c))
        .collect();
    Ok(fused
        .into_iter()
        .filter_map(|f| chunks.remove(&f.id))
        .take(top_k)
        .collect())
}

/// The same with ids first and the top k's chunks read last: the retriever now.
async fn after(
    indexes: &Indexes,
    query: &str,
    vector: &[f32],
    top_k: usize,
) -> anyhow::Result<Vec<ChunkRecord>> {
    let filter = SearchFilter::new(TENANT, Some(DOMAIN.into()));
    let candidates = (top_k * CANDIDATES_PER_HIT).max(MIN_CANDIDATES);
    let (dense, keyword) = tokio::try_join!(
        async {
            anyhow::Ok(
                indexes
                    .vectors
                    .search_ids(vector, &filter, candidates)
                    .await?,
            )
        },
        async {
            anyhow::Ok(
                indexes
                    .keywords
                    .search_ids(query, &filter, candidates)
                    .await?,
            )
        },
    )?;
    let ids_d: Vec<(Uuid, f32)> = dense.iter().map(|h| (h.id, h.score)).collect();
    let ids_k: Vec<(Uuid, f32)> = keyword.iter().map(|h| (h.id, h.score)).collect();
    let mut fused = fusion::fuse(&ids_d, &ids_k, Method::Weighted { alpha: ALPHA });
    fused.truncate(top_k);
    let ids: Vec<Uuid> = fused.iter().map(|f| f.id).collect();
    let mut chunks: HashMap<Uuid, ChunkRecord> = indexes
        .keywords
        .get(TENANT, &ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    Ok(fused
        .into_iter()
        .filter_map(|f| chunks.remove(&f.id))
        .collect())
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples
        .get(samples.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// Documents ranked by their best chunk.
fn ranking(indexes: &Indexes, chunks: &[ChunkRecord]) -> Vec<String> {
    let mut seen = HashSet::new();
    chunks
        .iter()
        .filter_map(|c| indexes.documents.get(&c.id))
        .filter(|d| seen.insert(d.as_str()))
        .cloned()
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let dir = dataset_dir();
    let dataset = BeirDataset::open(&dir)
        .with_context(|| format!("no SciFact at {} (set SCIFACT_DIR)", dir.display()))?;
    let model = tokio::task::spawn_blocking(LocalMiniLm::load_default).await??;
    let temp = tempfile::tempdir()?;
    let indexes = build(&dataset, &model, temp.path()).await?;

    // Queries whose judged documents are all in the subset, with those judgments only.
    let subset: HashSet<&String> = indexes.documents.values().collect();
    let mut qrels = Qrels::new();
    let mut queries = Vec::new();
    for query in dataset.queries() {
        let Some(judgments) = dataset.qrels().judgments(&query.id) else {
            continue;
        };
        if judgments.keys().all(|d| subset.contains(d)) {
            for (document, grade) in judgments {
                qrels.insert(&query.id, document, *grade);
            }
            queries.push(query.clone());
        }
    }
    let mut embed_times = Vec::new();
    let mut vectors = Vec::new();
    for query in &queries {
        let started = Instant::now();
        let vector = model
            .embed(std::slice::from_ref(&query.text))
            .await?
            .pop()
            .context("no embedding")?;
        embed_times.push(started.elapsed());
        vectors.push(vector);
    }
    println!(
        "{} documents, {} queries judged within them; query embedding median {:.2} ms",
        DOCUMENTS,
        queries.len(),
        median(embed_times)
    );
    println!("top-k  candidates  before p50 ms  after p50 ms  nDCG@10 before  nDCG@10 after");
    for top_k in [10, 100] {
        let mut times = (Vec::new(), Vec::new());
        let mut evaluators = (Evaluator::new(&qrels), Evaluator::new(&qrels));
        for round in 0..ROUNDS {
            for (query, vector) in queries.iter().zip(&vectors) {
                let started = Instant::now();
                let old = before(&indexes, &query.text, vector, top_k).await?;
                times.0.push(started.elapsed());
                let started = Instant::now();
                let new = after(&indexes, &query.text, vector, top_k).await?;
                times.1.push(started.elapsed());
                let ids = |chunks: &[ChunkRecord]| chunks.iter().map(|c| c.id).collect::<Vec<_>>();
                anyhow::ensure!(
                    ids(&old) == ids(&new) && old == new,
                    "query {} ranks differently after the change",
                    query.id
                );
                if round == 0 {
                    evaluators.0.add(&query.id, &ranking(&indexes, &old))?;
                    evaluators.1.add(&query.id, &ranking(&indexes, &new))?;
                }
            }
        }
        let (old, new) = (evaluators.0.finish(), evaluators.1.finish());
        anyhow::ensure!(old.ndcg_at_10 == new.ndcg_at_10, "nDCG@10 changed");
        println!(
            "{top_k:>5}  {:>10}  {:>13.2}  {:>12.2}  {:>14.4}  {:>13.4}",
            (top_k * CANDIDATES_PER_HIT).max(MIN_CANDIDATES),
            median(times.0),
            median(times.1),
            old.ndcg_at_10,
            new.ndcg_at_10
        );
    }
    Ok(())
}
