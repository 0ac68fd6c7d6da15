//! The `VectorStore` contract: every behaviour below runs against both backends.
//!
//! * `edge::*`: `EdgeVectorStore`, a qdrant-edge shard in a temporary directory.
//! * `qdrant::*`: `QdrantVectorStore` over gRPC to a STAND-IN server, not a real Qdrant.
//!   There is no Qdrant server on this machine or in CI and none can be downloaded, so
//!   `rag_standins::qdrant` is an in-process tonic server that speaks Qdrant's real gRPC
//!   wire format (the service traits and messages `qdrant-client` generates from Qdrant's
//!   `.proto` files) for exactly the calls the adapter makes. It really filters, scores and
//!   pages, and answers `Unimplemented` to anything else, so a wrong filter or request in the
//!   adapter fails here. It cannot show HNSW's approximation, persistence or cluster behaviour.
//!
//! `qdrant_only::*` checks what only the cluster adapter has: lazy connection, the collection
//! and index set-up, batching, the API key, and a server that goes away.

use std::sync::Arc;

use rag_core::{ChunkRecord, DocumentId, SearchFilter, point_id};
use rag_vector_store::{
    EdgeVectorStore, QdrantVectorStore, VectorHit, VectorMatch, VectorPoint, VectorStore,
    VectorStoreError,
};

use rag_standins::qdrant::StandIn;

const DIMS: usize = 8;
const COLLECTION: &str = "chunks";

// ---------------------------------------------------------------------------------------------
// Fixtures

fn chunk(tenant: &str, domain: &str, file: &str, version: u64, index: u32) -> ChunkRecord {
    let document_id = DocumentId::for_source(tenant, domain, file);
    ChunkRecord {
        id: point_id(document_id, version, index),
        document_id,
        version,
        chunk_index: index,
        text: format!("{file} v{version} chunk {index}"),
        title: file.to_string(),
        domain: domain.to_string(),
        tenant: tenant.to_string(),
        section: if index.is_multiple_of(2) {
            "Intro".into()
        } else {
            String::new()
        },
        page: if index.is_multiple_of(3) {
            Some(index + 1)
        } else {
            None
        },
        char_start: index * 100,
        char_end: index * 100 + 99,
        object_key: format!("uploads/{domain}/{file}"),
    }
}

/// The unit vector along `axis` (modulo the dimensions).
fn unit(axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIMS];
    v[axis % DIMS] = 1.0;
    v
}

/// The normalised sum of `a` and `b`.
fn mix(a: &[f32], b: &[f32]) -> Vec<f32> {
    let v: Vec<f32> = a.iter().zip(b).map(|(x, y)| x + y).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn point(vector: Vec<f32>, chunk: ChunkRecord) -> VectorPoint {
    VectorPoint { vector, chunk }
}

fn filter(tenant: &str, domain: Option<&str>) -> SearchFilter {
    SearchFilter {
        tenant: tenant.to_string(),
        domain: domain.map(str::to_string),
    }
}

fn invalid<T>(r: Result<T, VectorStoreError>) -> bool {
    matches!(r, Err(VectorStoreError::InvalidInput(_)))
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-5
}

/// A store under test and what keeps it alive.
struct Subject {
    store: Arc<dyn VectorStore>,
    _dir: Option<tempfile::TempDir>,
    _server: Option<StandIn>,
}

fn edge() -> Subject {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    };
    let store = match EdgeVectorStore::open(dir.path(), DIMS) {
        Ok(store) => store,
        Err(e) => panic!("open edge store: {e}"),
    };
    Subject {
        store,
        _dir: Some(dir),
        _server: None,
    }
}

async fn standin() -> StandIn {
    match StandIn::start().await {
        Ok(server) => server,
        Err(e) => panic!("start the Qdrant stand-in: {e}"),
    }
}

fn qdrant_store(url: &str, api_key: Option<&str>, dims: usize) -> QdrantVectorStore {
    match QdrantVectorStore::new(url, api_key.map(str::to_string), COLLECTION, dims) {
        Ok(store) => store,
        Err(e) => panic!("new Qdrant store: {e}"),
    }
}

async fn qdrant() -> Subject {
    let server = standin().await;
    let store = qdrant_store(&server.url(), None, DIMS);
    Subject {
        store: Arc::new(store),
        _dir: None,
        _server: Some(server),
    }
}

/// One test per behaviour and backend: `edge::<behaviour>` and `qdrant::<behaviour>`.
macro_rules! contract {
    ($($behaviour:ident),+ $(,)?) => {
        mod edge {
            $(
                #[tokio::test]
                async fn $behaviour() -> Result<(), super::VectorStoreError> {
                    let subject = super::edge();
                    super::$behaviour(subject.store.as_ref()).await
                }
            )+
        }
        mod qdrant {
            $(
                #[tokio::test]
                async fn $behaviour() -> Result<(), super::VectorStoreError> {
                    let subject = super::qdrant().await;
                    super::$behaviour(subject.store.as_ref()).await
                }
            )+
        }
    };
}

contract!(
    upsert_then_search_returns_best_first_with_cosine_scores,
    tenants_never_see_each_other,
    domain_filter_narrows_within_the_tenant,
    re_upsert_makes_no_duplicates_and_overwrites,
    delete_document_keeps_only_the_kept_version,
    get_chunks_returns_the_requested_indexes_of_one_version,
    search_ids_finds_what_search_finds,
    invalid_input_is_rejected_whole,
    large_upserts_and_reads_span_pages,
    empty_store_answers_empty,
    health_is_ok,
);

// ---------------------------------------------------------------------------------------------
// The contract

async fn upsert_then_search_returns_best_first_with_cosine_scores(
    store: &dyn VectorStore,
) -> Result<(), VectorStoreError> {
    let near = chunk("acme", "hr", "leave.md", 1, 0);
    let middle = chunk("acme", "hr", "leave.md", 1, 1);
    let far = chunk("acme", "hr", "leave.md", 1, 2);
    let opposite = chunk("acme", "hr", "leave.md", 1, 3);
    store
        .upsert(vec![
            point(unit(1), far.clone()),
            point(unit(0).iter().map(|x| -x).collect(), opposite.clone()),
            // Not normalised: cosine does not care about length.
            point(unit(0).iter().map(|x| x * 3.0).collect(), near.clone()),
            point(mix(&unit(0), &unit(1)), middle.clone()),
        ])
        .await?;

    let hits = store.search(&unit(0), &filter("acme", None), 10).await?;
    let chunks: Vec<&ChunkRecord> = hits.iter().map(|h| &h.chunk).collect();
    assert_eq!(chunks, vec![&near, &middle, &far, &opposite]);
    assert!(close(hits[0].score, 1.0), "{}", hits[0].score);
    assert!(close(hits[1].score, std::f32::consts::FRAC_1_SQRT_2));
    assert!(close(hits[2].score, 0.0));
    assert!(close(hits[3].score, -1.0));

    // The query's length does not matter either.
    let scaled: Vec<f32> = unit(1).iter().map(|x| x * 0.25).collect();
    let hits = store.search(&scaled, &filter("acme", None), 2).await?;
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].chunk, far);
    assert!(close(hits[0].score, 1.0));
    assert_eq!(hits[1].chunk, middle);

    assert!(
        store
            .search(&unit(0), &filter("acme", None), 0)
            .await?
            .is_empty()
    );
    Ok(())
}

async fn tenants_never_see_each_other(store: &dyn VectorStore) -> Result<(), VectorStoreError> {
    // Same vector and domain everywhere: only the tenant tells them apart. The tenant names
    // share words, so a word or substring match instead of an exact one would leak.
    let tenants = ["acme", "acme corp", "corp acme", "acme corp east"];
    let chunks: Vec<ChunkRecord> = tenants
        .iter()
        .map(|t| chunk(t, "hr", "x.md", 1, 0))
        .collect();
    store
        .upsert(chunks.iter().map(|c| point(unit(0), c.clone())).collect())
        .await?;

    for (tenant, own) in tenants.iter().zip(&chunks) {
        let hits = store.search(&unit(0), &filter(tenant, None), 10).await?;
        assert_eq!(
            hits.iter().map(|h| &h.chunk).collect::<Vec<_>>(),
            vec![own],
            "tenant {tenant:?}"
        );
        assert_eq!(store.count(&filter(tenant, None)).await?, 1, "{tenant:?}");
        assert_eq!(
            store
                .get_chunks(tenant, own.document_id, 1, &[0])
                .await?
                .len(),
            1
        );
    }
    for stranger in ["", "ACME", "acm", "corp", "b"] {
        assert!(
            store
                .search(&unit(0), &filter(stranger, None), 10)
                .await?
                .is_empty(),
            "{stranger:?}"
        );
        assert_eq!(store.count(&filter(stranger, None)).await?, 0);
    }
    // Another tenant can neither read nor delete a document by its id.
    let victim = &chunks[1];
    assert!(
        store
            .get_chunks("acme", victim.document_id, 1, &[0])
            .await?
            .is_empty()
    );
    store
        .delete_document("acme", victim.document_id, None)
        .await?;
    assert_eq!(store.count(&filter("acme corp", None)).await?, 1);
    Ok(())
}

async fn domain_filter_narrows_within_the_tenant(
    store: &dyn VectorStore,
) -> Result<(), VectorStoreError> {
    let a_hr = chunk("a", "hr", "x.md", 1, 0);
    let a_legal = chunk("a", "legal", "x.md", 1, 0);
    let a_legal_2 = chunk("a", "legal", "y.md", 1, 0);
    let b_hr = chunk("b", "hr", "x.md", 1, 0);
    store
        .upsert(vec![
            point(unit(0), a_hr.clone()),
            point(unit(1), a_legal.clone()),
            point(mix(&unit(0), &unit(1)), a_legal_2.clone()),
            point(unit(0), b_hr.clone()),
        ])
        .await?;

    let hr = store.search(&unit(0), &filter("a", Some("hr")), 10).await?;
    assert_eq!(hr.len(), 1);
    assert_eq!(hr[0].chunk, a_hr);
    let legal: Vec<ChunkRecord> = store
        .search(&unit(0), &filter("a", Some("legal")), 10)
        .await?
        .into_iter()
        .map(|h: VectorHit| h.chunk)
        .collect();
    assert_eq!(legal, vec![a_legal_2, a_legal]);
    assert!(
        store
            .search(&unit(0), &filter("b", Some("legal")), 10)
            .await?
            .is_empty()
    );
    assert!(
        store
            .search(&unit(0), &filter("a", Some("finance")), 10)
            .await?
            .is_empty()
    );
    assert_eq!(store.count(&filter("a", None)).await?, 3);
    assert_eq!(store.count(&filter("a", Some("legal"))).await?, 2);
    assert_eq!(store.count(&filter("a", Some("hr"))).await?, 1);
    assert_eq!(store.count(&filter("b", Some("hr"))).await?, 1);
    Ok(())
}

async fn re_upsert_makes_no_duplicates_and_overwrites(
    store: &dyn VectorStore,
) -> Result<(), VectorStoreError> {
    let chunks: Vec<ChunkRecord> = (0..3).map(|i| chunk("acme", "hr", "a.md", 1, i)).collect();
    let points: Vec<VectorPoint> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| point(unit(i), c.clone()))
        .collect();
    store.upsert(points.clone()).await?;
    store.upsert(points).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 3);

    let mut changed = chunks[0].clone();
    changed.text = "rewritten".into();
    changed.page = None;
    store.upsert(vec![point(unit(5), changed.clone())]).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 3);
    let hits = store.search(&unit(5), &filter("acme", None), 1).await?;
    assert_eq!(hits[0].chunk, changed);
    assert!(close(hits[0].score, 1.0));
    // The old vector is gone with the old payload.
    let hits = store.search(&unit(0), &filter("acme", None), 3).await?;
    assert!(hits.iter().all(|h| h.score < 0.5), "{hits:?}");

    store.upsert(Vec::new()).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 3);
    Ok(())
}

async fn delete_document_keeps_only_the_kept_version(
    store: &dyn VectorStore,
) -> Result<(), VectorStoreError> {
    let doc = DocumentId::for_source("acme", "hr", "leave.md");
    let other = chunk("acme", "hr", "other.md", 1, 0);
    let mut points: Vec<VectorPoint> = (0..3)
        .map(|i| point(unit(i as usize), chunk("acme", "hr", "leave.md", 1, i)))
        .collect();
    points.extend((0..2).map(|i| point(unit(i as usize), chunk("acme", "hr", "leave.md", 2, i))));
    points.push(point(unit(0), other.clone()));
    store.upsert(points).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 6);

    // Another tenant cannot touch the document.
    store.delete_document("intruder", doc, None).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 6);

    store.delete_document("acme", doc, Some(2)).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 3);
    assert!(
        store
            .get_chunks("acme", doc, 1, &[0, 1, 2])
            .await?
            .is_empty()
    );
    assert_eq!(store.get_chunks("acme", doc, 2, &[0, 1]).await?.len(), 2);

    // Idempotent.
    store.delete_document("acme", doc, Some(2)).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 3);

    // A version the document does not have keeps nothing of it.
    store.delete_document("acme", doc, Some(7)).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 1);
    let hits = store.search(&unit(0), &filter("acme", None), 10).await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].chunk, other);

    // None deletes every version.
    let doc2 = chunk("acme", "hr", "two.md", 1, 0);
    store
        .upsert(vec![
            point(unit(1), doc2.clone()),
            point(unit(2), chunk("acme", "hr", "two.md", 2, 0)),
        ])
        .await?;
    store
        .delete_document("acme", doc2.document_id, None)
        .await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 1);

    // A version that cannot exist keeps nothing.
    store
        .delete_document("acme", other.document_id, Some(u64::MAX))
        .await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 0);
    Ok(())
}

async fn get_chunks_returns_the_requested_indexes_of_one_version(
    store: &dyn VectorStore,
) -> Result<(), VectorStoreError> {
    let doc = DocumentId::for_source("acme", "hr", "leave.md");
    let v1: Vec<ChunkRecord> = (0..5)
        .map(|i| chunk("acme", "hr", "leave.md", 1, i))
        .collect();
    let mut points: Vec<VectorPoint> = v1.iter().map(|c| point(unit(0), c.clone())).collect();
    points.extend((0..5).map(|i| point(unit(1), chunk("acme", "hr", "leave.md", 2, i))));
    // Another document with the same indexes.
    points.extend((0..5).map(|i| point(unit(2), chunk("acme", "hr", "other.md", 1, i))));
    store.upsert(points).await?;

    let mut got = store.get_chunks("acme", doc, 1, &[3, 1, 9, 3]).await?;
    got.sort_by_key(|c| c.chunk_index);
    assert_eq!(got, vec![v1[1].clone(), v1[3].clone()]);

    assert!(store.get_chunks("acme", doc, 1, &[]).await?.is_empty());
    assert!(store.get_chunks("acme", doc, 1, &[5, 6]).await?.is_empty());
    assert!(store.get_chunks("other", doc, 1, &[1, 3]).await?.is_empty());
    assert!(store.get_chunks("acme", doc, 7, &[1, 3]).await?.is_empty());
    assert!(
        store
            .get_chunks("acme", doc, u64::MAX, &[1])
            .await?
            .is_empty()
    );
    let v2 = store.get_chunks("acme", doc, 2, &[0, 4]).await?;
    assert_eq!(v2.len(), 2);
    assert!(v2.iter().all(|c| c.version == 2 && c.document_id == doc));

    // More indexes than one scroll page.
    let many: Vec<u32> = (0..1000).collect();
    assert_eq!(store.get_chunks("acme", doc, 2, &many).await?.len(), 5);
    Ok(())
}

async fn search_ids_finds_what_search_finds(
    store: &dyn VectorStore,
) -> Result<(), VectorStoreError> {
    let mut points = Vec::new();
    for (i, file) in (0u32..).zip(["a.md", "b.md", "c.md"]) {
        for index in 0..4 {
            let axis = (i + index) as usize;
            points.push(point(
                mix(&unit(axis), &unit(axis + 3)),
                chunk("acme", "hr", file, u64::from(i + 1), index),
            ));
        }
    }
    points.push(point(unit(0), chunk("acme", "legal", "d.md", 1, 0)));
    points.push(point(unit(0), chunk("globex", "hr", "a.md", 1, 0)));
    store.upsert(points).await?;
    for query in [unit(0), unit(2), mix(&unit(1), &unit(5))] {
        for (f, limit) in [
            (filter("acme", None), 100),
            (filter("acme", None), 3),
            (filter("acme", Some("hr")), 5),
            (filter("globex", None), 10),
            (filter("nobody", None), 10),
        ] {
            let full = store.search(&query, &f, limit).await?;
            let ids = store.search_ids(&query, &f, limit).await?;
            let expected: Vec<VectorMatch> = full
                .iter()
                .map(|h| VectorMatch {
                    id: h.chunk.id,
                    document_id: h.chunk.document_id,
                    version: h.chunk.version,
                    chunk_index: h.chunk.chunk_index,
                    score: h.score,
                })
                .collect();
            assert_eq!(ids, expected);
        }
    }
    assert_eq!(
        store
            .search_ids(&unit(0), &filter("acme", None), 100)
            .await?
            .len(),
        13
    );
    assert!(
        store
            .search_ids(&unit(0), &filter("acme", None), 0)
            .await?
            .is_empty()
    );
    assert!(invalid(
        store.search_ids(&[1.0; 3], &filter("acme", None), 10).await
    ));
    Ok(())
}

async fn invalid_input_is_rejected_whole(store: &dyn VectorStore) -> Result<(), VectorStoreError> {
    assert!(invalid(
        store.search(&[1.0; 3], &filter("acme", None), 10).await
    ));
    assert!(invalid(store.search(&[], &filter("acme", None), 10).await));
    let mut nan = unit(0);
    nan[1] = f32::NAN;
    assert!(invalid(store.search(&nan, &filter("acme", None), 10).await));
    let mut inf = unit(0);
    inf[2] = f32::INFINITY;
    assert!(invalid(store.search(&inf, &filter("acme", None), 10).await));

    let c = chunk("acme", "hr", "a.md", 1, 0);
    assert!(invalid(
        store
            .upsert(vec![point(vec![1.0; DIMS + 1], c.clone())])
            .await
    ));
    assert!(invalid(store.upsert(vec![point(nan, c.clone())]).await));
    let mut huge = c.clone();
    huge.version = u64::MAX;
    assert!(invalid(store.upsert(vec![point(unit(0), huge)]).await));
    // A bad point rejects the whole call, good points included.
    assert!(invalid(
        store
            .upsert(vec![point(unit(0), c.clone()), point(vec![0.5; 2], c)])
            .await
    ));
    assert_eq!(store.count(&filter("acme", None)).await?, 0);

    // A zero vector is stored and searchable without a panic.
    store
        .upsert(vec![point(
            vec![0.0; DIMS],
            chunk("acme", "hr", "z.md", 1, 0),
        )])
        .await?;
    let hits = store
        .search(&[0.0; DIMS], &filter("acme", None), 10)
        .await?;
    assert_eq!(hits.len(), 1);
    Ok(())
}

async fn large_upserts_and_reads_span_pages(
    store: &dyn VectorStore,
) -> Result<(), VectorStoreError> {
    // More than two upsert batches and two scroll pages of the Qdrant adapter.
    let n: u32 = 600;
    let points: Vec<VectorPoint> = (0..n)
        .map(|i| point(unit(i as usize), chunk("acme", "hr", "big.md", 1, i)))
        .collect();
    store.upsert(points).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, u64::from(n));
    let doc = DocumentId::for_source("acme", "hr", "big.md");
    let all: Vec<u32> = (0..n).collect();
    let mut got: Vec<u32> = store
        .get_chunks("acme", doc, 1, &all)
        .await?
        .into_iter()
        .map(|c| c.chunk_index)
        .collect();
    got.sort_unstable();
    assert_eq!(got, all);
    // 75 chunks share `unit(3)`; the limit holds.
    let hits = store.search(&unit(3), &filter("acme", None), 50).await?;
    assert_eq!(hits.len(), 50);
    assert!(hits.iter().all(|h| h.chunk.chunk_index % 8 == 3));
    Ok(())
}

async fn empty_store_answers_empty(store: &dyn VectorStore) -> Result<(), VectorStoreError> {
    assert!(
        store
            .search(&unit(0), &filter("acme", None), 10)
            .await?
            .is_empty()
    );
    assert_eq!(store.count(&filter("acme", None)).await?, 0);
    let doc = DocumentId::for_source("a", "b", "c");
    assert!(store.get_chunks("acme", doc, 1, &[0]).await?.is_empty());
    store.delete_document("acme", doc, None).await?;
    store.delete_document("acme", doc, Some(1)).await?;
    Ok(())
}

async fn health_is_ok(store: &dyn VectorStore) -> Result<(), VectorStoreError> {
    store.health().await?;
    store
        .upsert(vec![point(unit(0), chunk("acme", "hr", "a.md", 1, 0))])
        .await?;
    store.health().await
}

// ---------------------------------------------------------------------------------------------
// The cluster adapter only

mod qdrant_only {
    use qdrant_client::qdrant::{Distance, PayloadSchemaType};

    use super::*;

    #[tokio::test]
    async fn creates_the_collection_and_its_indexes_on_first_use() -> Result<(), VectorStoreError> {
        let server = standin().await;
        let store = qdrant_store(&server.url(), None, DIMS);
        assert!(
            server
                .inspect(|s| s.collection_params(COLLECTION))
                .is_none()
        );

        store.health().await?;
        assert_eq!(
            server.inspect(|s| s.collection_params(COLLECTION)),
            Some((DIMS as u64, Distance::Cosine))
        );
        let indexes = server.inspect(|s| s.payload_indexes(COLLECTION));
        let expected = [
            ("document_id", PayloadSchemaType::Keyword, false),
            ("domain", PayloadSchemaType::Keyword, false),
            ("tenant", PayloadSchemaType::Keyword, true),
            ("version", PayloadSchemaType::Integer, false),
        ];
        assert_eq!(
            indexes,
            expected
                .iter()
                .map(|(f, t, tenant)| (f.to_string(), (*t, *tenant)))
                .collect()
        );

        // A second store (another process) finds everything in place and creates nothing.
        let writes = server.inspect(|s| s.writes.len());
        let again = qdrant_store(&server.url(), None, DIMS);
        again.health().await?;
        assert_eq!(server.inspect(|s| s.writes.len()), writes);
        Ok(())
    }

    #[tokio::test]
    async fn writes_wait_and_upserts_go_in_batches() -> Result<(), VectorStoreError> {
        let server = standin().await;
        let store = qdrant_store(&server.url(), None, DIMS);
        let points: Vec<VectorPoint> = (0..600)
            .map(|i| point(unit(i as usize), chunk("acme", "hr", "a.md", 1, i)))
            .collect();
        store.upsert(points).await?;
        store
            .delete_document(
                "acme",
                DocumentId::for_source("acme", "hr", "a.md"),
                Some(1),
            )
            .await?;
        let writes = server.inspect(|s| s.writes.clone());
        let upserts: Vec<usize> = writes
            .iter()
            .filter(|(rpc, _, _)| *rpc == "upsert")
            .map(|(_, n, _)| *n)
            .collect();
        assert_eq!(upserts, vec![256, 256, 88]);
        assert!(writes.iter().all(|(_, _, wait)| *wait), "{writes:?}");
        assert_eq!(server.inspect(|s| s.points(COLLECTION)), 600);
        Ok(())
    }

    #[tokio::test]
    async fn unreachable_until_the_server_starts_then_ready() -> Result<(), VectorStoreError> {
        // A port nobody listens on (bound, then released).
        let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr.port(),
            Err(e) => panic!("bind: {e}"),
        };
        let store = qdrant_store(&format!("http://127.0.0.1:{port}"), None, DIMS);
        let c = chunk("acme", "hr", "a.md", 1, 0);
        for _ in 0..2 {
            assert!(matches!(
                store.health().await,
                Err(VectorStoreError::Unavailable(_))
            ));
            assert!(matches!(
                store.upsert(vec![point(unit(0), c.clone())]).await,
                Err(VectorStoreError::Unavailable(_))
            ));
            assert!(matches!(
                store.search(&unit(0), &filter("acme", None), 1).await,
                Err(VectorStoreError::Unavailable(_))
            ));
        }
        // Input is validated before any connection.
        assert!(invalid(
            store.search(&[1.0], &filter("acme", None), 1).await
        ));

        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => listener,
            Err(e) => panic!("rebind {port}: {e}"),
        };
        let server = match StandIn::start_on(listener, None).await {
            Ok(server) => server,
            Err(e) => panic!("start: {e}"),
        };
        store.health().await?;
        store.upsert(vec![point(unit(0), c.clone())]).await?;
        assert_eq!(
            store.search(&unit(0), &filter("acme", None), 1).await?[0].chunk,
            c
        );

        // The server goes away: calls fail as unavailable, not as storage errors or panics.
        server.stop().await;
        assert!(matches!(
            store.count(&filter("acme", None)).await,
            Err(VectorStoreError::Unavailable(_))
        ));
        Ok(())
    }

    #[tokio::test]
    async fn a_collection_with_other_vectors_is_refused() -> Result<(), VectorStoreError> {
        let server = standin().await;
        // Made by a store for other vectors (another embedding model).
        qdrant_store(&server.url(), None, DIMS * 2).health().await?;

        let store = qdrant_store(&server.url(), None, DIMS);
        for _ in 0..2 {
            match store.count(&filter("acme", None)).await {
                Err(VectorStoreError::InvalidInput(msg)) => {
                    assert!(msg.contains("16-dimensional"), "{msg}");
                    assert!(msg.contains(COLLECTION), "{msg}");
                }
                other => panic!("expected InvalidInput, got {other:?}"),
            }
        }
        assert_eq!(
            server.inspect(|s| s.collection_params(COLLECTION)),
            Some((DIMS as u64 * 2, Distance::Cosine))
        );
        Ok(())
    }

    #[tokio::test]
    async fn concurrent_first_calls_prepare_one_collection() -> Result<(), VectorStoreError> {
        let server = standin().await;
        let a = qdrant_store(&server.url(), None, DIMS);
        let b = qdrant_store(&server.url(), None, DIMS);
        let (ra, rb) = tokio::join!(
            a.upsert(vec![point(unit(0), chunk("acme", "hr", "a.md", 1, 0))]),
            b.upsert(vec![point(unit(1), chunk("acme", "hr", "b.md", 1, 0))]),
        );
        ra?;
        rb?;
        assert_eq!(a.count(&filter("acme", None)).await?, 2);
        Ok(())
    }

    #[tokio::test]
    async fn the_api_key_is_sent() -> Result<(), VectorStoreError> {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(e) => panic!("bind: {e}"),
        };
        let server = match StandIn::start_on(listener, Some("s3cret".into())).await {
            Ok(server) => server,
            Err(e) => panic!("start: {e}"),
        };
        qdrant_store(&server.url(), Some("s3cret"), DIMS)
            .health()
            .await?;
        for key in [None, Some("wrong")] {
            let store = qdrant_store(&server.url(), key, DIMS);
            match store.health().await {
                Err(VectorStoreError::Storage(msg)) => {
                    assert!(msg.contains("Unauthenticated"), "{msg}");
                    assert!(!msg.contains("s3cret"), "{msg}");
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        Ok(())
    }
}
