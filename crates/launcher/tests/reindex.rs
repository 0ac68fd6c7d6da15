//! Re-indexing into a new index generation while the system serves: questions asked all the
//! way through are answered from one complete generation, never from a half-built one or
//! from none; an upload and a delete made during the build reach the new generation; and
//! afterwards both of its indexes hold exactly the chunks its catalog lists.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rag_backends::generation;
use rag_backends::rag_vector_store::VectorStore;
use rag_core::{DocumentId, SearchFilter};
use serde_json::Value;
use support::{Client, Question, questions, sample_documents, settings, start};

/// Chunk counts by document id, from `GET /v1/documents`.
fn chunk_counts(documents: &[Value]) -> HashMap<String, u64> {
    documents
        .iter()
        .filter_map(|d| Some((d["id"].as_str()?.to_owned(), d["chunk_count"].as_u64()?)))
        .collect()
}

fn has_citations(answer: &Value) -> bool {
    answer["citations"]
        .as_array()
        .is_some_and(|c| !c.is_empty())
}

/// The ids of `questions` answered with citations now.
async fn answered_with_citations(
    client: &Client,
    questions: &[Question],
) -> anyhow::Result<HashSet<String>> {
    let mut answered = HashSet::new();
    for q in questions {
        if has_citations(&client.ask(&q.question, q.domain.as_deref()).await?) {
            answered.insert(q.id.clone());
        }
    }
    Ok(answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reindex_with_smaller_chunks_switches_every_reader_at_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut settings = settings(dir.path());
    // Every question must reach the retriever, not the answer cache.
    settings.cache.enabled = false;
    let system = start(settings.clone()).await?;
    let client = Client::new(&system);

    let mut documents = sample_documents();
    let late = documents.pop().context("sample documents")?;
    let deleted = documents.remove(0);
    let deleted_id = DocumentId::for_source("default", &deleted.0, &deleted.1).to_string();
    let late_id = DocumentId::for_source("default", &late.0, &late.1).to_string();
    for (domain, name, bytes) in documents.iter().chain([&deleted]) {
        let (status, body) = client.upload(domain, name, bytes.clone()).await?;
        assert_eq!(status, 202, "{name}: {body}");
    }
    let before = chunk_counts(
        &client
            .wait_indexed(documents.len() + 1, Duration::from_secs(300))
            .await?,
    );

    // Readers, all the way through the re-index and the switch. Smaller chunks may rightly
    // change which questions find an answer, so the ones judged are those answered with
    // citations both before and after; questions about the documents that come and go are
    // left out.
    let changing = [deleted.1.clone(), late.1.clone()];
    let answerable: Vec<Question> = questions()
        .into_iter()
        .filter(|q| !q.answer_contains.is_empty())
        .filter(|q| q.document.as_ref().is_none_or(|d| !changing.contains(d)))
        .collect();
    let answered_before = answered_with_citations(&client, &answerable).await?;
    let asking = Arc::new(AtomicBool::new(true));
    let asker = tokio::spawn({
        let asking = asking.clone();
        let client = Client {
            base: client.base.clone(),
            http: reqwest::Client::new(),
        };
        let questions = answerable.clone();
        async move {
            let mut answers = Vec::new();
            for question in questions.iter().cycle() {
                if !asking.load(Ordering::Relaxed) {
                    break;
                }
                let answer = client
                    .ask(&question.question, question.domain.as_deref())
                    .await
                    .map(|a| has_citations(&a))
                    .map_err(|e| e.to_string());
                answers.push((question.id.clone(), answer));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        }
    });

    // Smaller chunks: the configuration the re-index builds with.
    let mut rebuilt = settings.clone();
    rebuilt.ingest.chunk_size = 64;
    rebuilt.ingest.chunk_overlap = 8;
    let reindex = tokio::spawn(async move { rag_launcher::reindex(&rebuilt, |_| {}).await });
    // Changes while it builds: they reach the current generation at once, the new one
    // through the catch-up.
    let (status, body) = client.upload(&late.0, &late.1, late.2.clone()).await?;
    assert_eq!(status, 202, "{body}");
    let (status, body) = client
        .delete(&format!("/v1/documents/{deleted_id}"))
        .await?;
    assert!(status == 200 || status == 202, "{status}: {body}");

    let report = reindex.await??;
    assert_eq!((report.previous, report.generation), (0, 1), "{report:?}");
    assert_eq!(generation::current_id(&settings)?, 1);

    // The services follow within a poll interval; the late upload may still be on its way.
    let started = Instant::now();
    let after = loop {
        let (_, list) = client.get("/v1/documents").await?;
        let listed = list["documents"].as_array().cloned().context("documents")?;
        let counts = chunk_counts(&listed);
        let settled = listed.iter().all(|d| d["status"] == "indexed")
            && counts.contains_key(&late_id)
            && !counts.contains_key(&deleted_id)
            && counts.len() == documents.len() + 1;
        if settled && counts.values().sum::<u64>() > before.values().sum::<u64>() {
            break counts;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the new generation did not settle: {list}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    asking.store(false, Ordering::Relaxed);
    let answers = asker.await?;
    let answered_after = answered_with_citations(&client, &answerable).await?;
    let judged: HashSet<&String> = answered_before.intersection(&answered_after).collect();
    assert!(
        judged.len() * 2 >= answerable.len(),
        "too few questions answered both before ({answered_before:?}) and after ({answered_after:?})"
    );
    let failures: Vec<_> = answers
        .iter()
        .filter(|(id, answer)| match answer {
            Ok(cited) => !cited && judged.contains(id),
            Err(_) => true,
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} questions failed during the re-index: {failures:#?}",
        failures.len(),
        answers.len()
    );
    assert!(answers.len() > judged.len(), "the readers asked too little");

    // Smaller chunks mean at least as many per document.
    for (id, count) in &after {
        if let Some(old) = before.get(id) {
            assert!(count >= old, "{id}: {old} chunks before, {count} after");
        }
    }
    // The new generation's indexes hold exactly the chunks its catalog lists.
    let current = generation::current(&settings)?;
    assert_eq!(current.settings.ingest.chunk_size, 64);
    let filter = SearchFilter::new("default", None);
    let dimensions = current.manifest.as_ref().context("a manifest")?.dimensions;
    let vectors = rag_backends::vector_store(&current.settings, dimensions)?;
    let keywords = rag_backends::keyword_index(&current.settings)?;
    let expected: u64 = after.values().sum();
    assert_eq!(
        (
            vectors.count(&filter).await?,
            keywords.count(&filter).await?
        ),
        (expected, expected),
        "(vector, keyword) chunks in generation 1"
    );

    // Writers and readers both moved: a document uploaded now is indexed into the new
    // generation only, and a question about it is answered from there.
    let (status, body) = client
        .upload(
            "engineering",
            "project-bluefin.md",
            b"# Project Bluefin\n\nThe Bluefin migration moves the fleet telemetry store to \
              the Kestrel cluster; its owner is the platform team in Utrecht.\n"
                .to_vec(),
        )
        .await?;
    assert_eq!(status, 202, "{body}");
    client
        .wait_indexed(after.len() + 1, Duration::from_secs(120))
        .await?;
    let answer = client
        .ask(
            "Which cluster does the Bluefin migration move telemetry to?",
            None,
        )
        .await?;
    let bluefin = DocumentId::for_source("default", "engineering", "project-bluefin.md");
    assert!(
        answer["citations"].as_array().is_some_and(|c| c
            .iter()
            .any(|c| c["document_id"] == bluefin.to_string().as_str())),
        "{answer}"
    );
    let in_generation = |vectors: Arc<dyn VectorStore>| async move {
        vectors
            .get_chunks("default", bluefin, 1, &[0])
            .await
            .map(|c| c.len())
    };
    let gen0 = rag_backends::vector_store(&settings, dimensions)?;
    assert_eq!(in_generation(vectors.clone()).await?, 1);
    assert_eq!(
        in_generation(gen0.clone()).await?,
        0,
        "generation 0 was written"
    );
    drop((vectors, keywords, gen0));
    system.shutdown().await;
    Ok(())
}
