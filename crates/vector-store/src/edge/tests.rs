use std::path::Path;
use std::sync::Arc;

use rag_core::{ChunkRecord, DocumentId, SearchFilter, point_id};

use super::*;

const DIMS: usize = 8;

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

/// The unit vector along `axis`.
fn unit(axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIMS];
    v[axis] = 1.0;
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

fn open(dir: &Path) -> Arc<EdgeVectorStore> {
    match EdgeVectorStore::open(dir, DIMS) {
        Ok(store) => store,
        Err(e) => panic!("open failed: {e}"),
    }
}

fn filter(tenant: &str, domain: Option<&str>) -> SearchFilter {
    SearchFilter {
        tenant: tenant.to_string(),
        domain: domain.map(str::to_string),
    }
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    }
}

#[tokio::test]
async fn upsert_then_search_returns_nearest_first_with_the_chunk() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let store = open(dir.path());
    let near = chunk("acme", "hr", "leave.md", 1, 0);
    let middle = chunk("acme", "hr", "leave.md", 1, 1);
    let far = chunk("acme", "hr", "leave.md", 1, 2);
    store
        .upsert(vec![
            point(unit(1), far.clone()),
            point(unit(0), near.clone()),
            point(mix(&unit(0), &unit(1)), middle.clone()),
        ])
        .await?;

    let hits = store.search(&unit(0), &filter("acme", None), 10).await?;
    let chunks: Vec<&ChunkRecord> = hits.iter().map(|h| &h.chunk).collect();
    assert_eq!(chunks, vec![&near, &middle, &far]);
    assert!((hits[0].score - 1.0).abs() < 1e-5, "{}", hits[0].score);
    assert!((hits[1].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-5);
    assert!(hits[2].score.abs() < 1e-5);

    let top = store.search(&unit(0), &filter("acme", None), 2).await?;
    assert_eq!(top.len(), 2);
    assert_eq!(top[0].chunk, near);
    assert!(
        store
            .search(&unit(0), &filter("acme", None), 0)
            .await?
            .is_empty()
    );
    store.health().await?;
    Ok(())
}

#[tokio::test]
async fn re_upsert_is_idempotent_and_overwrites() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let store = open(dir.path());
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
    store.upsert(vec![point(unit(5), changed.clone())]).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 3);
    let hits = store.search(&unit(5), &filter("acme", None), 1).await?;
    assert_eq!(hits[0].chunk, changed);
    assert!((hits[0].score - 1.0).abs() < 1e-5);

    store.upsert(Vec::new()).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 3);
    Ok(())
}

#[tokio::test]
async fn tenant_and_domain_filters_never_leak() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let store = open(dir.path());
    let a_hr = chunk("a", "hr", "x.md", 1, 0);
    let a_legal = chunk("a", "legal", "x.md", 1, 0);
    let b_hr = chunk("b", "hr", "x.md", 1, 0);
    // Same vector everywhere: only the filter can tell them apart.
    store
        .upsert(vec![
            point(unit(0), a_hr.clone()),
            point(unit(0), a_legal.clone()),
            point(unit(0), b_hr.clone()),
        ])
        .await?;

    let tenants = |hits: &[VectorHit]| -> Vec<(String, String)> {
        let mut v: Vec<_> = hits
            .iter()
            .map(|h| (h.chunk.tenant.clone(), h.chunk.domain.clone()))
            .collect();
        v.sort();
        v
    };
    let a = store.search(&unit(0), &filter("a", None), 10).await?;
    assert_eq!(
        tenants(&a),
        vec![("a".into(), "hr".into()), ("a".into(), "legal".into())]
    );
    let a_hr_hits = store.search(&unit(0), &filter("a", Some("hr")), 10).await?;
    assert_eq!(a_hr_hits.len(), 1);
    assert_eq!(a_hr_hits[0].chunk, a_hr);
    let b = store.search(&unit(0), &filter("b", None), 10).await?;
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].chunk, b_hr);
    assert!(
        store
            .search(&unit(0), &filter("b", Some("legal")), 10)
            .await?
            .is_empty()
    );
    assert!(
        store
            .search(&unit(0), &filter("c", None), 10)
            .await?
            .is_empty()
    );
    assert!(
        store
            .search(&unit(0), &filter("", None), 10)
            .await?
            .is_empty()
    );

    assert_eq!(store.count(&filter("a", None)).await?, 2);
    assert_eq!(store.count(&filter("a", Some("legal"))).await?, 1);
    assert_eq!(store.count(&filter("b", None)).await?, 1);
    assert_eq!(store.count(&filter("c", None)).await?, 0);
    Ok(())
}

#[tokio::test]
async fn delete_document_keeps_only_the_kept_version() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let store = open(dir.path());
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

    store.delete_document("acme", doc, None).await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 1);
    let hits = store.search(&unit(0), &filter("acme", None), 10).await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].chunk, other);

    // A version that cannot exist keeps nothing.
    store
        .delete_document("acme", other.document_id, Some(u64::MAX))
        .await?;
    assert_eq!(store.count(&filter("acme", None)).await?, 0);
    Ok(())
}

#[tokio::test]
async fn get_chunks_returns_the_requested_chunks_of_one_version() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let store = open(dir.path());
    let doc = DocumentId::for_source("acme", "hr", "leave.md");
    let v1: Vec<ChunkRecord> = (0..5)
        .map(|i| chunk("acme", "hr", "leave.md", 1, i))
        .collect();
    let mut points: Vec<VectorPoint> = v1.iter().map(|c| point(unit(0), c.clone())).collect();
    points.extend((0..5).map(|i| point(unit(1), chunk("acme", "hr", "leave.md", 2, i))));
    store.upsert(points).await?;

    let mut got = store.get_chunks("acme", doc, 1, &[3, 1, 9, 3]).await?;
    got.sort_by_key(|c| c.chunk_index);
    assert_eq!(got, vec![v1[1].clone(), v1[3].clone()]);

    assert!(store.get_chunks("acme", doc, 1, &[]).await?.is_empty());
    assert!(store.get_chunks("other", doc, 1, &[1, 3]).await?.is_empty());
    assert!(store.get_chunks("acme", doc, 7, &[1, 3]).await?.is_empty());
    assert!(
        store
            .get_chunks("acme", doc, u64::MAX, &[1])
            .await?
            .is_empty()
    );

    // More indexes than one scroll page.
    let many: Vec<u32> = (0..1000).collect();
    assert_eq!(store.get_chunks("acme", doc, 2, &many).await?.len(), 5);
    Ok(())
}

#[tokio::test]
async fn data_survives_closing_and_reopening() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let kept = chunk("acme", "hr", "a.md", 1, 0);
    let deleted = chunk("acme", "hr", "b.md", 1, 0);
    {
        let store = open(dir.path());
        store
            .upsert(vec![
                point(unit(0), kept.clone()),
                point(unit(1), deleted.clone()),
            ])
            .await?;
        store
            .delete_document("acme", deleted.document_id, None)
            .await?;
    }
    assert!(
        REGISTRY
            .entries
            .lock()
            .get(&canonical(dir.path()))
            .is_none()
    );

    let store = open(dir.path());
    assert_eq!(store.count(&filter("acme", None)).await?, 1);
    let hits = store.search(&unit(0), &filter("acme", None), 5).await?;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].chunk, kept);
    // The payload indexes are still there (and not created twice).
    let schema = match store.inner.shard() {
        Ok(shard) => shard.info().payload_schema,
        Err(e) => return Err(e),
    };
    for (field, ty) in PAYLOAD_INDEXES {
        let key = json_path(field)?;
        assert_eq!(schema.get(&key).map(|i| i.data_type), Some(ty), "{field}");
    }
    drop(store);

    // Reopening with other dimensions is refused, not a panic.
    assert!(matches!(
        EdgeVectorStore::open(dir.path(), DIMS * 2),
        Err(VectorStoreError::InvalidInput(_))
    ));
    Ok(())
}

fn canonical(path: &Path) -> std::path::PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

#[tokio::test]
async fn one_shard_per_directory_per_process() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let writer = open(dir.path());
    // Another spelling of the same directory.
    let reader = open(
        &dir.path().join(".").join("..").join(
            dir.path()
                .file_name()
                .map(std::path::PathBuf::from)
                .unwrap_or_default(),
        ),
    );
    assert!(Arc::ptr_eq(&writer, &reader));
    // Without the registry, a second open of the directory fails on qdrant-edge's WAL lock.
    assert!(matches!(
        open_shard(writer.path(), DIMS),
        Err(VectorStoreError::Storage(msg)) if msg.contains("WAL")
    ));
    assert!(matches!(
        EdgeVectorStore::open(dir.path(), DIMS + 1),
        Err(VectorStoreError::InvalidInput(_))
    ));

    let c = chunk("acme", "hr", "a.md", 1, 0);
    writer.upsert(vec![point(unit(0), c.clone())]).await?;
    assert_eq!(
        reader.search(&unit(0), &filter("acme", None), 1).await?[0].chunk,
        c
    );

    // Still open while one handle lives.
    drop(writer);
    let again = open(dir.path());
    assert!(Arc::ptr_eq(&again, &reader));
    drop(again);
    drop(reader);

    // All dropped: a fresh instance reads the data from disk.
    let fresh = open(dir.path());
    assert_eq!(fresh.count(&filter("acme", None)).await?, 1);

    // A different directory is a different store.
    let other_dir = tempdir();
    let other = open(other_dir.path());
    assert!(!Arc::ptr_eq(&fresh, &other));
    assert_eq!(other.count(&filter("acme", None)).await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_writes_and_reads_share_one_shard() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let path = dir.path().to_path_buf();
    let mut tasks = Vec::new();
    for t in 0..4u32 {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let store = tokio::task::spawn_blocking(move || EdgeVectorStore::open(&path, DIMS))
                .await
                .map_err(|e| VectorStoreError::Storage(e.to_string()))??;
            for batch in 0..10u32 {
                let points = (0..8)
                    .map(|i| {
                        let index = batch * 8 + i;
                        let file = format!("f{t}.md");
                        point(unit(i as usize), chunk("acme", "hr", &file, 1, index))
                    })
                    .collect();
                store.upsert(points).await?;
                store.search(&unit(0), &filter("acme", None), 5).await?;
                store.count(&filter("acme", None)).await?;
            }
            Ok::<_, VectorStoreError>(store)
        }));
    }
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(
            task.await
                .map_err(|e| VectorStoreError::Storage(e.to_string()))??,
        );
    }
    assert!(stores.iter().all(|s| Arc::ptr_eq(s, &stores[0])));
    assert_eq!(stores[0].count(&filter("acme", None)).await?, 4 * 10 * 8);
    Ok(())
}

#[tokio::test]
async fn empty_store_and_bad_vectors() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let store = open(dir.path());
    assert!(
        store
            .search(&unit(0), &filter("acme", None), 10)
            .await?
            .is_empty()
    );
    assert_eq!(store.count(&filter("acme", None)).await?, 0);
    assert!(
        store
            .get_chunks("acme", DocumentId::for_source("a", "b", "c"), 1, &[0])
            .await?
            .is_empty()
    );
    store
        .delete_document("acme", DocumentId::for_source("a", "b", "c"), None)
        .await?;

    fn invalid<T>(r: Result<T, VectorStoreError>) -> bool {
        matches!(r, Err(VectorStoreError::InvalidInput(_)))
    }
    assert!(invalid(
        store.search(&[1.0; 3], &filter("acme", None), 10).await
    ));
    assert!(invalid(store.search(&[], &filter("acme", None), 10).await));
    let mut nan = unit(0);
    nan[1] = f32::NAN;
    assert!(invalid(store.search(&nan, &filter("acme", None), 10).await));

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
    // A bad point rejects the whole batch.
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

    assert!(matches!(
        EdgeVectorStore::open(&dir.path().join("zero"), 0),
        Err(VectorStoreError::InvalidInput(_))
    ));
    Ok(())
}

#[test]
fn calls_without_a_runtime_are_errors_not_panics() {
    let dir = tempdir();
    let store = open(dir.path());
    let result = futures_lite_block_on(store.health());
    assert!(matches!(result, Err(VectorStoreError::Unavailable(_))));
}

/// Polls a future to completion on this thread without any runtime.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

/// Set by `acknowledged_writes_survive_a_crash` for its child process.
const CRASH_DIR_ENV: &str = "RAG_VECTOR_STORE_TEST_CRASH_DIR";

/// The child of `acknowledged_writes_survive_a_crash`: writes, then dies without any cleanup.
#[tokio::test]
#[ignore = "run by acknowledged_writes_survive_a_crash in a child process"]
async fn crash_child() -> Result<(), VectorStoreError> {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return Ok(());
    };
    let dir = std::path::PathBuf::from(dir);
    let store = open(&dir.join("shard"));
    let points = (0..20u32)
        .map(|i| point(unit(i as usize % DIMS), chunk("acme", "hr", "a.md", 1, i)))
        .collect();
    store.upsert(points).await?;
    store
        .upsert(vec![point(unit(0), chunk("acme", "hr", "b.md", 1, 0))])
        .await?;
    store
        .delete_document("acme", DocumentId::for_source("acme", "hr", "b.md"), None)
        .await?;
    // Everything above is acknowledged; mark it and die without dropping anything.
    if let Err(e) = std::fs::write(dir.join("acknowledged"), b"") {
        panic!("marker: {e}");
    }
    std::process::abort();
}

#[tokio::test]
async fn acknowledged_writes_survive_a_crash() -> Result<(), VectorStoreError> {
    let dir = tempdir();
    let exe = std::env::current_exe().map_err(|e| VectorStoreError::Storage(e.to_string()))?;
    let status = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "edge::tests::crash_child",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| VectorStoreError::Storage(e.to_string()))?;
    assert!(!status.success(), "the child must die by abort");
    assert!(
        dir.path().join("acknowledged").exists(),
        "the child did not get to write"
    );

    let store = open(&dir.path().join("shard"));
    assert_eq!(store.count(&filter("acme", None)).await?, 20);
    let doc = DocumentId::for_source("acme", "hr", "a.md");
    let all: Vec<u32> = (0..20).collect();
    assert_eq!(store.get_chunks("acme", doc, 1, &all).await?.len(), 20);
    // Chunks 3, 11 and 19 share the vector `unit(3)`.
    let hits = store
        .search(&unit(3), &filter("acme", Some("hr")), 3)
        .await?;
    let mut found: Vec<u32> = hits.iter().map(|h| h.chunk.chunk_index).collect();
    found.sort_unstable();
    assert_eq!(found, vec![3, 11, 19]);
    assert!(hits.iter().all(|h| (h.score - 1.0).abs() < 1e-5));
    let c = chunk("acme", "hr", "a.md", 1, 3);
    assert!(hits.iter().any(|h| h.chunk == c));
    Ok(())
}
