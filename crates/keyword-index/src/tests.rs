//! Behaviour of [`TantivyIndex`] through the [`KeywordIndex`] trait.

use std::sync::Arc;

use rag_core::{ChunkRecord, DocumentId, SearchFilter, point_id};
use tempfile::TempDir;

use crate::{KeywordHit, KeywordIndex, KeywordMatch, TantivyIndex};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Spec<'a> {
    tenant: &'a str,
    domain: &'a str,
    file: &'a str,
    version: u64,
    index: u32,
    title: &'a str,
    section: &'a str,
    text: &'a str,
}

impl Default for Spec<'_> {
    fn default() -> Self {
        Self {
            tenant: "acme",
            domain: "hr",
            file: "doc.md",
            version: 1,
            index: 0,
            title: "Handbook",
            section: "",
            text: "",
        }
    }
}

fn chunk(s: Spec<'_>) -> ChunkRecord {
    let document_id = DocumentId::for_source(s.tenant, s.domain, s.file);
    ChunkRecord {
        id: point_id(document_id, s.version, s.index),
        document_id,
        version: s.version,
        chunk_index: s.index,
        text: s.text.to_string(),
        title: s.title.to_string(),
        domain: s.domain.to_string(),
        tenant: s.tenant.to_string(),
        section: s.section.to_string(),
        page: Some(s.index + 1),
        char_start: s.index * 100,
        char_end: s.index * 100 + 99,
        object_key: format!("uploads/{}/{}", s.domain, s.file),
    }
}

/// A chunk of `doc.md` in acme/hr with this index and text.
fn text_chunk(index: u32, file: &str, text: &str) -> ChunkRecord {
    chunk(Spec {
        index,
        file,
        text,
        ..Spec::default()
    })
}

fn acme() -> SearchFilter {
    SearchFilter::new("acme", None)
}

fn open() -> Result<(TempDir, Arc<TantivyIndex>), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let index = TantivyIndex::open(dir.path())?;
    Ok((dir, index))
}

fn texts(hits: &[KeywordHit]) -> Vec<&str> {
    hits.iter().map(|h| h.chunk.text.as_str()).collect()
}

#[tokio::test]
async fn upserted_chunks_are_searchable_at_once_and_come_back_whole() -> TestResult {
    let (_dir, index) = open()?;
    let c = chunk(Spec {
        title: "Leave policy",
        section: "Annual leave",
        text: "Employees get 25 days of annual leave per year.",
        ..Spec::default()
    });
    index.upsert(vec![c.clone()]).await?;
    let hits = index.search("annual leave", &acme(), 10).await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].chunk, c);
    assert!(hits[0].score > 0.0);
    assert_eq!(index.count(&acme()).await?, 1);
    index.health().await?;
    Ok(())
}

#[tokio::test]
async fn index_is_usable_as_a_trait_object() -> TestResult {
    let dir = tempfile::tempdir()?;
    let index: Arc<dyn KeywordIndex> = TantivyIndex::open(dir.path())?;
    assert_eq!(index.count(&acme()).await?, 0);
    assert!(index.search("anything", &acme(), 5).await?.is_empty());
    index.health().await?;
    Ok(())
}

#[tokio::test]
async fn stemming_and_stop_words() -> TestResult {
    let (_dir, index) = open()?;
    index
        .upsert(vec![
            text_chunk(0, "a.md", "The travel policy applies to every employee."),
            text_chunk(1, "a.md", "Running shoes are provided by the company."),
        ])
        .await?;
    assert_eq!(
        texts(&index.search("policies", &acme(), 10).await?).len(),
        1
    );
    assert_eq!(
        texts(&index.search("policies", &acme(), 10).await?),
        vec!["The travel policy applies to every employee."]
    );
    assert_eq!(
        texts(&index.search("employees", &acme(), 10).await?),
        vec!["The travel policy applies to every employee."]
    );
    assert_eq!(
        texts(&index.search("runs", &acme(), 10).await?),
        vec!["Running shoes are provided by the company."]
    );
    // Stop words alone find nothing, even though every chunk contains "the".
    assert!(index.search("the", &acme(), 10).await?.is_empty());
    assert!(index.search("The AND of to", &acme(), 10).await?.is_empty());
    // ... and do not get in the way of the other words.
    assert_eq!(
        index
            .search("the policies of the company", &acme(), 10)
            .await?
            .len(),
        2
    );
    // Case does not matter.
    assert_eq!(index.search("TRAVEL", &acme(), 10).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn error_codes_are_findable_and_the_exact_code_ranks_first() -> TestResult {
    let (_dir, index) = open()?;
    let exact = "If the upload fails with ERR-4102 the file exceeded the size limit.";
    index
        .upsert(vec![
            text_chunk(
                0,
                "a.md",
                "Invoice 4102 was paid in March; invoice 4102 is closed.",
            ),
            text_chunk(
                1,
                "b.md",
                "Set the log level to ERR to see only errors. ERR lines are red.",
            ),
            text_chunk(2, "c.md", exact),
            text_chunk(
                3,
                "d.md",
                "ERR messages from batch 4102 are archived nightly.",
            ),
            text_chunk(4, "e.md", "Unrelated text about parking spaces."),
        ])
        .await?;
    for query in [
        "ERR-4102",
        "err-4102",
        "what does ERR-4102 mean?",
        "\"ERR 4102\"",
        "ERR-4102:",
    ] {
        let hits = index.search(query, &acme(), 10).await?;
        assert_eq!(
            hits.first().map(|h| h.chunk.text.as_str()),
            Some(exact),
            "query {query:?}"
        );
        assert!(hits.len() >= 4, "query {query:?}");
    }
    // The parts on their own still match.
    assert_eq!(index.search("4102", &acme(), 10).await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn tenant_and_domain_filters_never_leak() -> TestResult {
    let (_dir, index) = open()?;
    let mut chunks = Vec::new();
    for tenant in ["acme", "globex"] {
        for domain in ["hr", "legal"] {
            for i in 0..3 {
                chunks.push(chunk(Spec {
                    tenant,
                    domain,
                    index: i,
                    text: "confidential salary bands",
                    ..Spec::default()
                }));
            }
        }
    }
    index.upsert(chunks).await?;

    for tenant in ["acme", "globex"] {
        let hits = index
            .search("salary", &SearchFilter::new(tenant, None), 100)
            .await?;
        assert_eq!(hits.len(), 6);
        assert!(hits.iter().all(|h| h.chunk.tenant == tenant));
        assert_eq!(index.count(&SearchFilter::new(tenant, None)).await?, 6);
        for domain in ["hr", "legal"] {
            let filter = SearchFilter::new(tenant, Some(domain.to_string()));
            let hits = index.search("salary", &filter, 100).await?;
            assert_eq!(hits.len(), 3);
            assert!(hits.iter().all(|h| filter.matches(&h.chunk)));
            assert_eq!(index.count(&filter).await?, 3);
        }
    }
    let nobody = SearchFilter::new("initech", None);
    assert!(index.search("salary", &nobody, 100).await?.is_empty());
    assert_eq!(index.count(&nobody).await?, 0);
    let no_domain = SearchFilter::new("acme", Some("finance".into()));
    assert!(index.search("salary", &no_domain, 100).await?.is_empty());
    // Filter values are exact: no prefix, case or tokenisation games.
    for tenant in ["acm", "ACME", "acme ", "*", ""] {
        let filter = SearchFilter::new(tenant, None);
        assert!(
            index.search("salary", &filter, 100).await?.is_empty(),
            "{tenant:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn filters_do_not_change_scores() -> TestResult {
    let (_dir, index) = open()?;
    index
        .upsert(vec![text_chunk(0, "a.md", "pension scheme details")])
        .await?;
    let all = index.search("pension", &acme(), 1).await?;
    let hr = index
        .search("pension", &SearchFilter::new("acme", Some("hr".into())), 1)
        .await?;
    assert_eq!(all.len(), 1);
    assert_eq!(hr.len(), 1);
    assert!((all[0].score - hr[0].score).abs() < 1e-6);
    Ok(())
}

#[tokio::test]
async fn upsert_is_idempotent_and_replaces_by_id() -> TestResult {
    let (_dir, index) = open()?;
    let batch: Vec<_> = (0..3)
        .map(|i| text_chunk(i, "a.md", "remote work rules"))
        .collect();
    index.upsert(batch.clone()).await?;
    index.upsert(batch.clone()).await?;
    assert_eq!(index.count(&acme()).await?, 3);
    assert_eq!(index.search("remote", &acme(), 10).await?.len(), 3);

    // The same id twice in one batch: the last one wins.
    let first = text_chunk(0, "a.md", "hybrid work rules");
    let last = text_chunk(0, "a.md", "office attendance rules");
    index.upsert(vec![first, last.clone()]).await?;
    assert_eq!(index.count(&acme()).await?, 3);
    assert!(index.search("hybrid", &acme(), 10).await?.is_empty());
    assert_eq!(
        index
            .search("attendance", &acme(), 10)
            .await?
            .first()
            .map(|h| &h.chunk),
        Some(&last)
    );
    assert_eq!(index.search("remote", &acme(), 10).await?.len(), 2);

    // An empty batch is a no-op.
    index.upsert(Vec::new()).await?;
    assert_eq!(index.count(&acme()).await?, 3);
    Ok(())
}

#[tokio::test]
async fn delete_document_keeps_only_the_given_version() -> TestResult {
    let (_dir, index) = open()?;
    let version = |version: u64, n: u32, file: &'static str| {
        (0..n).map(move |i| {
            chunk(Spec {
                file,
                version,
                index: i,
                text: "expense claims",
                ..Spec::default()
            })
        })
    };
    let mut chunks: Vec<_> = version(1, 3, "a.md").chain(version(2, 2, "a.md")).collect();
    chunks.extend(version(1, 4, "other.md"));
    index.upsert(chunks).await?;
    assert_eq!(index.count(&acme()).await?, 9);

    let doc = DocumentId::for_source("acme", "hr", "a.md");
    // The wrong tenant deletes nothing.
    index.delete_document("globex", doc, None).await?;
    assert_eq!(index.count(&acme()).await?, 9);

    index.delete_document("acme", doc, Some(2)).await?;
    assert_eq!(index.count(&acme()).await?, 6);
    let hits = index.search("expense", &acme(), 100).await?;
    let of_doc: Vec<_> = hits.iter().filter(|h| h.chunk.document_id == doc).collect();
    assert_eq!(of_doc.len(), 2);
    assert!(of_doc.iter().all(|h| h.chunk.version == 2));

    // Again: nothing more to delete.
    index.delete_document("acme", doc, Some(2)).await?;
    assert_eq!(index.count(&acme()).await?, 6);

    index.delete_document("acme", doc, None).await?;
    assert_eq!(index.count(&acme()).await?, 4);
    let hits = index.search("expense", &acme(), 100).await?;
    assert!(hits.iter().all(|h| h.chunk.document_id != doc));

    // Deleting an unknown document is fine.
    index
        .delete_document("acme", DocumentId::for_source("acme", "hr", "nope"), None)
        .await?;
    assert_eq!(index.count(&acme()).await?, 4);
    Ok(())
}

#[tokio::test]
async fn data_survives_drop_and_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let c = text_chunk(0, "a.md", "disaster recovery runbook");
    {
        let index = TantivyIndex::open(dir.path())?;
        index
            .upsert(vec![c.clone(), text_chunk(1, "a.md", "backup rotation")])
            .await?;
        index
            .delete_document("acme", DocumentId::for_source("acme", "hr", "nope"), None)
            .await?;
    }
    let index = TantivyIndex::open(dir.path())?;
    assert_eq!(index.count(&acme()).await?, 2);
    let hits = index.search("recovery", &acme(), 10).await?;
    assert_eq!(hits.first().map(|h| &h.chunk), Some(&c));
    // The reopened index can write again.
    index
        .upsert(vec![text_chunk(2, "a.md", "failover drill")])
        .await?;
    assert_eq!(index.count(&acme()).await?, 3);
    Ok(())
}

#[tokio::test]
async fn open_shares_one_handle_per_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = TantivyIndex::open(dir.path())?;
    // A different spelling of the same directory is the same index.
    let reader = TantivyIndex::open(&dir.path().join(".").join("sub").join(".."))?;
    assert!(Arc::ptr_eq(&writer, &reader));
    let other_dir = tempfile::tempdir()?;
    let other = TantivyIndex::open(other_dir.path())?;
    assert!(!Arc::ptr_eq(&writer, &other));

    writer
        .upsert(vec![text_chunk(0, "a.md", "shared handle")])
        .await?;
    assert_eq!(reader.search("shared", &acme(), 10).await?.len(), 1);
    assert_eq!(other.count(&acme()).await?, 0);

    // Opens racing on many threads all get the live handle.
    let path = dir.path().to_path_buf();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || TantivyIndex::open(&path).map_err(|e| e.to_string()))
        })
        .collect();
    for handle in handles {
        let opened = handle.join().map_err(|_| "open thread panicked")??;
        assert!(Arc::ptr_eq(&opened, &writer));
    }

    // Once every handle is gone, open reads the directory afresh (and can take the lock).
    drop(writer);
    drop(reader);
    let reopened = TantivyIndex::open(dir.path())?;
    assert_eq!(reopened.count(&acme()).await?, 1);
    reopened
        .upsert(vec![text_chunk(1, "a.md", "after restart")])
        .await?;
    assert_eq!(reopened.count(&acme()).await?, 2);
    Ok(())
}

#[tokio::test]
async fn concurrent_writers_through_one_handle() -> TestResult {
    let (_dir, index) = open()?;
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let index = Arc::clone(&index);
        tasks.push(tokio::spawn(async move {
            let file = format!("f{t}.md");
            let batch: Vec<_> = (0..10)
                .map(|i| text_chunk(i, &file, "parallel ingest"))
                .collect();
            index.upsert(batch).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    assert_eq!(index.count(&acme()).await?, 80);
    assert_eq!(index.search("ingest", &acme(), 1000).await?.len(), 80);
    Ok(())
}

/// A deterministic pseudo-random string of about `len` bytes mixing ASCII, punctuation,
/// query syntax, and non-ASCII characters.
fn noise(len: usize, mut seed: u64) -> String {
    const PIECES: &[&str] = &[
        "a", "Z", "9", " ", "  ", "\"", "(", ")", ":", "^", "~", "*", "?", "\\", "/", "+", "-",
        "[", "]", "{", "}", "!", "AND", "OR", "NOT", "TO", "é", "ß", "中", "🎉", "\u{0}", "\n",
        "\t", "title:", "IN [", "policy", "ERR-4102", "'", "`", "<", ">", "&&", "||", ".",
    ];
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let pick = usize::try_from(seed >> 33).unwrap_or(0) % PIECES.len();
        out.push_str(PIECES[pick]);
    }
    out
}

#[tokio::test]
async fn hostile_queries_never_error() -> TestResult {
    let (_dir, index) = open()?;
    index
        .upsert(vec![
            text_chunk(0, "a.md", "The policy on remote work."),
            text_chunk(1, "b.md", "Error ERR-4102 means the upload was too large."),
        ])
        .await?;
    let long_word = "x".repeat(20_000);
    let mut queries: Vec<String> = [
        "",
        " ",
        "\"",
        "\"\"",
        "(((",
        ")))",
        "AND OR NOT",
        "NOT policy",
        "-policy",
        "+policy",
        "title:",
        "title:policy",
        "body:(",
        "policy^",
        "policy~",
        "*",
        "?",
        "[1 TO",
        "{",
        "\\",
        "🎉🎉🎉",
        "\u{0}",
        "\n\t",
        "IN [a b",
        "a:b:c:",
        "policy AND",
        "'",
        "<script>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    queries.push(long_word);
    for seed in 0..20 {
        queries.push(noise(10_240, seed));
    }
    for query in &queries {
        let hits = index.search(query, &acme(), 10).await;
        assert!(
            hits.is_ok(),
            "query {:?}: {hits:?}",
            query.chars().take(40).collect::<String>()
        );
    }
    for empty in ["", " ", "\"", "(((", "AND OR NOT", "🎉", "the", "title:"] {
        assert!(
            index.search(empty, &acme(), 10).await?.is_empty(),
            "{empty:?}"
        );
    }
    // Syntax characters are just separators: the words around them still count.
    assert_eq!(index.search("NOT policy", &acme(), 10).await?.len(), 1);
    assert_eq!(index.search("title:policy", &acme(), 10).await?.len(), 1);
    // Extreme limits.
    assert!(index.search("policy", &acme(), 0).await?.is_empty());
    assert_eq!(index.search("policy", &acme(), usize::MAX).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn results_are_ordered_by_bm25() -> TestResult {
    let (_dir, index) = open()?;
    let filler = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor";
    index
        .upsert(vec![
            text_chunk(
                0,
                "a.md",
                &format!("overtime is paid once. {filler} {filler}"),
            ),
            text_chunk(1, "b.md", "overtime overtime overtime: overtime pay rules"),
            text_chunk(2, "c.md", &format!("overtime and {filler}")),
            text_chunk(3, "d.md", "holiday calendar"),
        ])
        .await?;
    let hits = index.search("overtime", &acme(), 10).await?;
    assert_eq!(hits.len(), 3);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(hits[0].chunk.chunk_index, 1, "highest term frequency first");
    assert_eq!(hits[2].chunk.chunk_index, 0, "longest chunk last");

    // More matching terms beat fewer.
    let hits = index.search("holiday calendar", &acme(), 10).await?;
    assert_eq!(hits.first().map(|h| h.chunk.chunk_index), Some(3));
    // limit cuts the tail, not the head.
    let top1 = index.search("overtime", &acme(), 1).await?;
    assert_eq!(top1.first().map(|h| h.chunk.chunk_index), Some(1));
    Ok(())
}

#[tokio::test]
async fn title_and_section_weigh_less_than_body_but_still_count() -> TestResult {
    let (_dir, index) = open()?;
    let in_title = chunk(Spec {
        file: "travel.md",
        title: "Travel policy",
        text: "Reimbursement rules for trips.",
        ..Spec::default()
    });
    let in_body = chunk(Spec {
        file: "handbook.md",
        title: "Handbook",
        text: "Travel is booked through the portal.",
        ..Spec::default()
    });
    let in_both = chunk(Spec {
        file: "guide.md",
        title: "Travel guide",
        text: "Travel needs approval.",
        ..Spec::default()
    });
    let in_section = chunk(Spec {
        file: "misc.md",
        title: "Misc",
        section: "Travel",
        text: "Ask your manager first.",
        ..Spec::default()
    });
    index
        .upsert(vec![
            in_title.clone(),
            in_body.clone(),
            in_both.clone(),
            in_section.clone(),
        ])
        .await?;
    let hits = index.search("travel", &acme(), 10).await?;
    let order: Vec<_> = hits.iter().map(|h| h.chunk.title.as_str()).collect();
    assert_eq!(hits.len(), 4, "{order:?}");
    assert_eq!(order[0], "Travel guide", "{order:?}");
    let pos = |title: &str| order.iter().position(|t| *t == title);
    assert!(pos("Handbook") < pos("Travel policy"), "{order:?}");
    assert!(pos("Handbook") < pos("Misc"), "{order:?}");
    Ok(())
}

#[tokio::test]
async fn a_read_only_handle_follows_another_writers_commits() -> TestResult {
    let dir = TempDir::new()?;
    // Opened before any writer exists, as a retriever process may be.
    let reader = TantivyIndex::open_read_only(dir.path())?;
    assert!(reader.search("leave", &acme(), 10).await?.is_empty());
    let refused = reader
        .upsert(vec![chunk(Spec {
            text: "Annual leave is 25 days.",
            ..Spec::default()
        })])
        .await;
    assert!(
        matches!(refused, Err(crate::KeywordIndexError::ReadOnly { .. })),
        "{refused:?}"
    );

    let writer = TantivyIndex::open(dir.path())?;
    assert!(
        !Arc::ptr_eq(&reader, &writer),
        "the reader took no writer lock"
    );
    writer
        .upsert(vec![chunk(Spec {
            text: "Annual leave is 25 days.",
            ..Spec::default()
        })])
        .await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while reader.search("leave", &acme(), 10).await?.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reader never saw the commit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Within a process that has the writer, the writer's handle is shared.
    assert!(Arc::ptr_eq(
        &TantivyIndex::open_read_only(dir.path())?,
        &writer
    ));
    Ok(())
}

/// Chunks of three documents about leave, travel and parking; several match "leave".
fn corpus() -> Vec<ChunkRecord> {
    let mut chunks = Vec::new();
    for (file, texts) in [
        (
            "leave.md",
            [
                "Annual leave is 25 days a year.",
                "Unused leave carries over to March.",
                "Sick leave needs a note after three days.",
            ],
        ),
        (
            "travel.md",
            [
                "Book travel through the portal.",
                "Travel on leave days is not reimbursed.",
                "Receipts are due within a month.",
            ],
        ),
        (
            "parking.md",
            [
                "Parking spaces are assigned yearly.",
                "Visitors park on level two.",
                "Bicycles go to the basement.",
            ],
        ),
    ] {
        for (i, text) in (0u32..).zip(texts) {
            chunks.push(text_chunk(i, file, text));
        }
    }
    chunks
}

async fn ids_match_full_search(index: &TantivyIndex) -> TestResult {
    for query in [
        "leave",
        "travel leave days",
        "parking level",
        "nothing here",
        "the",
    ] {
        for limit in [1, 2, 5, 100] {
            let full = index.search(query, &acme(), limit).await?;
            let ids = index.search_ids(query, &acme(), limit).await?;
            let expected: Vec<KeywordMatch> = full
                .iter()
                .map(|h| KeywordMatch {
                    id: h.chunk.id,
                    document_id: h.chunk.document_id,
                    version: h.chunk.version,
                    score: h.score,
                })
                .collect();
            assert_eq!(ids, expected, "query {query:?}, limit {limit}");
        }
    }
    assert!(
        index
            .search_ids("leave", &SearchFilter::new("globex", None), 10)
            .await?
            .is_empty()
    );
    assert!(index.search_ids("leave", &acme(), 0).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn search_ids_finds_what_search_finds_in_the_same_order() -> TestResult {
    let (_dir, index) = open()?;
    index.upsert(corpus()).await?;
    // Several segments: the columns are read per segment.
    index
        .upsert(vec![text_chunk(
            9,
            "late.md",
            "Leave requests go to the manager.",
        )])
        .await?;
    let found = index.search_ids("leave", &acme(), 10).await?;
    assert_eq!(found.len(), 5);
    ids_match_full_search(&index).await
}

#[tokio::test]
async fn an_index_without_fast_id_columns_still_searches_by_id() -> TestResult {
    let dir = tempfile::tempdir()?;
    crate::tantivy_index::create_legacy(dir.path())?;
    let index = TantivyIndex::open(dir.path())?;
    let chunks = corpus();
    index.upsert(chunks.clone()).await?;
    assert_eq!(index.search_ids("leave", &acme(), 10).await?.len(), 4);
    ids_match_full_search(&index).await?;
    // Its records are stored bytes, and read back whole.
    let got = index.get("acme", &[chunks[1].id]).await?;
    assert_eq!(got, vec![chunks[1].clone()]);
    // Reopened, it keeps its schema.
    drop(index);
    let index = TantivyIndex::open(dir.path())?;
    assert_eq!(index.count(&acme()).await?, 9);
    ids_match_full_search(&index).await
}

#[tokio::test]
async fn get_returns_the_chunks_with_these_ids_in_the_tenant() -> TestResult {
    let (_dir, index) = open()?;
    let chunks = corpus();
    index.upsert(chunks.clone()).await?;
    let other = chunk(Spec {
        tenant: "globex",
        file: "leave.md",
        text: "Globex leave.",
        ..Spec::default()
    });
    index.upsert(vec![other.clone()]).await?;

    let wanted = [
        chunks[1].id,
        chunks[4].id,
        chunks[1].id,
        uuid::Uuid::from_u128(7),
    ];
    let mut got = index.get("acme", &wanted).await?;
    got.sort_by_key(|c| c.id);
    let mut expected = vec![chunks[1].clone(), chunks[4].clone()];
    expected.sort_by_key(|c| c.id);
    assert_eq!(got, expected);
    // Another tenant's chunk is not found by id alone.
    assert!(index.get("acme", &[other.id]).await?.is_empty());
    assert_eq!(index.get("globex", &[other.id]).await?, vec![other]);
    assert!(index.get("acme", &[]).await?.is_empty());
    // A neighbour's id follows from the document, version and index.
    let next = point_id(chunks[0].document_id, 1, 1);
    assert_eq!(index.get("acme", &[next]).await?, vec![chunks[1].clone()]);
    Ok(())
}
