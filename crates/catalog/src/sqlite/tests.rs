use std::sync::Arc;

use tempfile::TempDir;

use super::*;
use crate::MAX_PROFILE_DIMS;

const TENANT: &str = "acme";

fn open(dir: &TempDir) -> SqliteCatalog {
    SqliteCatalog::open(&dir.path().join("catalog.db")).unwrap()
}

fn upload(tenant: &str, domain: &str, file: &str) -> NewUpload {
    NewUpload {
        id: DocumentId::for_source(tenant, domain, file),
        tenant: tenant.to_owned(),
        domain: domain.to_owned(),
        title: file.to_owned(),
        object_key: format!("uploads/{tenant}/{domain}/{file}"),
        size_bytes: 1234,
    }
}

/// Runs a version through the embedder's part: chunking and every batch.
async fn index_fully(catalog: &SqliteCatalog, up: &NewUpload, version: u64, batches: u32) {
    catalog
        .set_chunking(&up.tenant, up.id, version, batches * 10, batches)
        .await
        .unwrap();
    for i in 0..batches {
        let done = catalog
            .record_batch_indexed(&up.tenant, up.id, version, i, batches)
            .await
            .unwrap();
        assert_eq!(done, i + 1 == batches, "batch {i}");
    }
    catalog
        .mark_indexed(&up.tenant, up.id, version)
        .await
        .unwrap();
}

#[tokio::test]
async fn full_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");

    let rec = c.register_upload(up.clone()).await.unwrap();
    assert_eq!(rec.state, DocumentState::Queued);
    assert_eq!((rec.version, rec.pending_version), (0, None));
    assert_eq!(rec.title, "leave.md");
    assert_eq!(rec.size_bytes, 1234);
    assert!(rec.created_at_ms > 0);

    let decision = c.begin_version(up.clone(), "sha-a").await.unwrap();
    assert_eq!(decision, VersionDecision::Ingest { version: 1 });
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Processing);
    assert_eq!((rec.version, rec.pending_version), (0, Some(1)));
    assert_eq!(rec.content_sha256, "");

    c.set_chunking(TENANT, up.id, 1, 25, 3).await.unwrap();
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 1, 0, 3)
            .await
            .unwrap()
    );
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 1, 2, 3)
            .await
            .unwrap()
    );
    assert!(!c.is_stale(TENANT, up.id, 1).await.unwrap());
    assert!(
        c.record_batch_indexed(TENANT, up.id, 1, 1, 3)
            .await
            .unwrap()
    );
    c.mark_indexed(TENANT, up.id, 1).await.unwrap();

    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Indexed);
    assert_eq!((rec.version, rec.pending_version), (1, None));
    assert_eq!(rec.content_sha256, "sha-a");
    assert_eq!(rec.chunk_count, 25);
    assert_eq!(rec.error, None);
    assert!(rec.updated_at_ms >= rec.created_at_ms);
    c.health().await.unwrap();
}

#[tokio::test]
async fn unchanged_reupload_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.register_upload(up.clone()).await.unwrap();
    assert_eq!(
        c.begin_version(up.clone(), "sha-a").await.unwrap(),
        VersionDecision::Ingest { version: 1 }
    );
    index_fully(&c, &up, 1, 2).await;

    // The same bytes uploaded again: queued, then nothing to do, and indexed again.
    let rec = c.register_upload(up.clone()).await.unwrap();
    assert_eq!(rec.state, DocumentState::Queued);
    assert_eq!(rec.version, 1);
    assert_eq!(
        c.begin_version(up.clone(), "sha-a").await.unwrap(),
        VersionDecision::Unchanged
    );
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Indexed);
    assert_eq!((rec.version, rec.pending_version), (1, None));
}

#[tokio::test]
async fn changed_content_is_a_new_version_and_the_old_one_stays_visible() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    index_fully(&c, &up, 1, 1).await;

    assert_eq!(
        c.begin_version(up.clone(), "sha-b").await.unwrap(),
        VersionDecision::Ingest { version: 2 }
    );
    c.set_chunking(TENANT, up.id, 2, 7, 2).await.unwrap();
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 2, 0, 2)
            .await
            .unwrap()
    );
    // Readers still see version 1.
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.version, rec.pending_version), (1, Some(2)));
    assert_eq!(rec.content_sha256, "sha-a");
    assert_eq!(rec.chunk_count, 10);
    assert_eq!(rec.state, DocumentState::Processing);
    // Version 1 is superseded by the pending 2; the embedder skips it.
    assert!(c.is_stale(TENANT, up.id, 1).await.unwrap());
    assert!(!c.is_stale(TENANT, up.id, 2).await.unwrap());

    assert!(
        c.record_batch_indexed(TENANT, up.id, 2, 1, 2)
            .await
            .unwrap()
    );
    c.mark_indexed(TENANT, up.id, 2).await.unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.version, rec.pending_version), (2, None));
    assert_eq!(rec.content_sha256, "sha-b");
    assert_eq!(rec.chunk_count, 7);
    assert_eq!(rec.state, DocumentState::Indexed);

    // Going back to the first content is new content relative to version 2.
    assert_eq!(
        c.begin_version(up.clone(), "sha-a").await.unwrap(),
        VersionDecision::Ingest { version: 3 }
    );
}

#[tokio::test]
async fn redelivery_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");

    let first = c.begin_version(up.clone(), "sha-a").await.unwrap();
    let again = c.begin_version(up.clone(), "sha-a").await.unwrap();
    assert_eq!(first, VersionDecision::Ingest { version: 1 });
    assert_eq!(again, first);
    c.set_chunking(TENANT, up.id, 1, 20, 2).await.unwrap();
    c.set_chunking(TENANT, up.id, 1, 20, 2).await.unwrap();

    // A non-final batch recorded twice never completes the version.
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 1, 0, 2)
            .await
            .unwrap()
    );
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 1, 0, 2)
            .await
            .unwrap()
    );
    // The final batch completes it once...
    assert!(
        c.record_batch_indexed(TENANT, up.id, 1, 1, 2)
            .await
            .unwrap()
    );
    // ...and a redelivery of it before `mark_indexed` (the embedder crashed in between) says
    // so again, so the redelivery finishes the job.
    assert!(
        c.record_batch_indexed(TENANT, up.id, 1, 1, 2)
            .await
            .unwrap()
    );
    c.mark_indexed(TENANT, up.id, 1).await.unwrap();
    c.mark_indexed(TENANT, up.id, 1).await.unwrap();
    // After that, every redelivered batch is a no-op.
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 1, 1, 2)
            .await
            .unwrap()
    );
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 1, 0, 2)
            .await
            .unwrap()
    );
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.version, rec.state), (1, DocumentState::Indexed));

    // A redelivered document message after indexing: unchanged.
    assert_eq!(
        c.begin_version(up.clone(), "sha-a").await.unwrap(),
        VersionDecision::Unchanged
    );
}

#[tokio::test]
async fn stale_versions_are_detected_and_never_complete() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    c.set_chunking(TENANT, up.id, 1, 10, 2).await.unwrap();
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 1, 0, 2)
            .await
            .unwrap()
    );

    // New content arrives before version 1 finished.
    assert_eq!(
        c.begin_version(up.clone(), "sha-b").await.unwrap(),
        VersionDecision::Ingest { version: 2 }
    );
    assert!(c.is_stale(TENANT, up.id, 1).await.unwrap());
    assert!(!c.is_stale(TENANT, up.id, 2).await.unwrap());
    // Version 1's last batch lands late: stale, so false.
    assert!(
        !c.record_batch_indexed(TENANT, up.id, 1, 1, 2)
            .await
            .unwrap()
    );

    index_fully(&c, &up, 2, 1).await;
    assert!(c.is_stale(TENANT, up.id, 1).await.unwrap());
    assert!(!c.is_stale(TENANT, up.id, 2).await.unwrap());
    // A late mark_indexed of the old version changes nothing.
    c.mark_indexed(TENANT, up.id, 1).await.unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.version, rec.content_sha256.as_str()), (2, "sha-b"));

    // Unknown documents are stale; unknown versions cannot be marked.
    let other = DocumentId::for_source(TENANT, "hr", "nope.md");
    assert!(c.is_stale(TENANT, other, 1).await.unwrap());
    assert!(
        !c.record_batch_indexed(TENANT, other, 1, 0, 1)
            .await
            .unwrap()
    );
    assert!(matches!(
        c.mark_indexed(TENANT, up.id, 99).await,
        Err(CatalogError::UnknownVersion { version: 99, .. })
    ));
    assert!(matches!(
        c.set_chunking(TENANT, up.id, 99, 1, 1).await,
        Err(CatalogError::UnknownVersion { .. })
    ));
    assert!(matches!(
        c.set_chunking(TENANT, other, 1, 1, 1).await,
        Err(CatalogError::NotFound { .. })
    ));
    assert!(matches!(
        c.record_batch_indexed(TENANT, up.id, 2, 3, 3).await,
        Err(CatalogError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn an_older_version_finishing_under_a_newer_pending_one_becomes_visible() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    c.set_chunking(TENANT, up.id, 1, 5, 1).await.unwrap();
    // The embedder got `true` for version 1, then version 2 began before mark_indexed.
    assert!(
        c.record_batch_indexed(TENANT, up.id, 1, 0, 1)
            .await
            .unwrap()
    );
    c.begin_version(up.clone(), "sha-b").await.unwrap();
    c.mark_indexed(TENANT, up.id, 1).await.unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.version, rec.pending_version), (1, Some(2)));
    assert_eq!(rec.state, DocumentState::Processing);
    assert_eq!(rec.content_sha256, "sha-a");
}

#[tokio::test]
async fn failed_with_reason_and_retry_of_the_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "legal", "contract.pdf");
    c.register_upload(up.clone()).await.unwrap();
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    c.mark_failed(TENANT, up.id, "parse failed: encrypted PDF")
        .await
        .unwrap();

    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Failed);
    assert_eq!(rec.error.as_deref(), Some("parse failed: encrypted PDF"));
    assert_eq!((rec.version, rec.pending_version), (0, Some(1)));

    // The same content again retries the same version and clears the error.
    assert_eq!(
        c.begin_version(up.clone(), "sha-a").await.unwrap(),
        VersionDecision::Ingest { version: 1 }
    );
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.error), (DocumentState::Processing, None));

    // Very long reasons are cut.
    c.mark_failed(TENANT, up.id, &"x".repeat(10_000))
        .await
        .unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert!(rec.error.unwrap().chars().count() <= MAX_ERROR_CHARS + 1);
    assert!(matches!(
        c.mark_failed(TENANT, DocumentId::for_source(TENANT, "x", "y"), "r")
            .await,
        Err(CatalogError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_failed_new_version_keeps_the_old_one_visible() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    index_fully(&c, &up, 1, 1).await;
    c.begin_version(up.clone(), "sha-b").await.unwrap();
    c.mark_failed(TENANT, up.id, "embedder down").await.unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Failed);
    assert_eq!((rec.version, rec.content_sha256.as_str()), (1, "sha-a"));

    // The embedder's retry of the pending version still completes it.
    c.set_chunking(TENANT, up.id, 2, 3, 1).await.unwrap();
    assert!(
        c.record_batch_indexed(TENANT, up.id, 2, 0, 1)
            .await
            .unwrap()
    );
    c.mark_indexed(TENANT, up.id, 2).await.unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.version, rec.error),
        (DocumentState::Indexed, 2, None)
    );
}

#[tokio::test]
async fn delete_and_resurrect() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.register_upload(up.clone()).await.unwrap();
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    index_fully(&c, &up, 1, 1).await;

    let rec = c.mark_deleting(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Deleting);
    assert_eq!(rec.version, 1, "the deleter needs to know what to remove");
    assert!(c.is_stale(TENANT, up.id, 1).await.unwrap());
    c.mark_deleted(TENANT, up.id).await.unwrap();
    c.mark_deleted(TENANT, up.id).await.unwrap();

    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Deleted);
    assert_eq!((rec.version, rec.pending_version), (0, None));
    assert!(c.list(TENANT, None).await.unwrap().is_empty());
    // Marking a deleted document changes nothing.
    c.mark_failed(TENANT, up.id, "late failure").await.unwrap();
    c.mark_indexed(TENANT, up.id, 1).await.unwrap();
    assert_eq!(
        c.get(TENANT, up.id).await.unwrap().unwrap().state,
        DocumentState::Deleted
    );

    // Uploaded again with the very same content: a new version, not `Unchanged`.
    let rec = c.register_upload(up.clone()).await.unwrap();
    assert_eq!(rec.state, DocumentState::Queued);
    assert_eq!(
        c.begin_version(up.clone(), "sha-a").await.unwrap(),
        VersionDecision::Ingest { version: 2 }
    );
    index_fully(&c, &up, 2, 1).await;
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.state, rec.version), (DocumentState::Indexed, 2));
    assert_eq!(c.list(TENANT, None).await.unwrap().len(), 1);

    // Unknown documents: nothing to delete.
    let other = DocumentId::for_source(TENANT, "hr", "other.md");
    assert!(c.mark_deleting(TENANT, other).await.unwrap().is_none());
    c.mark_deleted(TENANT, other).await.unwrap();
}

#[tokio::test]
async fn an_upload_during_a_delete_wins() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    index_fully(&c, &up, 1, 1).await;

    c.mark_deleting(TENANT, up.id).await.unwrap();
    // Same content again while the deleter removes version 1.
    assert_eq!(
        c.begin_version(up.clone(), "sha-a").await.unwrap(),
        VersionDecision::Ingest { version: 2 }
    );
    // The deleter finishing does not undo the new upload.
    c.mark_deleted(TENANT, up.id).await.unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Processing);
    assert_eq!((rec.version, rec.pending_version), (0, Some(2)));
    assert!(c.is_stale(TENANT, up.id, 1).await.unwrap());
    assert!(!c.is_stale(TENANT, up.id, 2).await.unwrap());
}

#[tokio::test]
async fn tenants_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let mine = upload(TENANT, "hr", "leave.md");
    c.register_upload(mine.clone()).await.unwrap();
    c.begin_version(mine.clone(), "sha-a").await.unwrap();

    assert!(c.get("globex", mine.id).await.unwrap().is_none());
    assert!(c.list("globex", None).await.unwrap().is_empty());
    assert!(c.list("globex", Some("hr")).await.unwrap().is_empty());
    assert!(c.is_stale("globex", mine.id, 1).await.unwrap());
    assert!(
        !c.record_batch_indexed("globex", mine.id, 1, 0, 1)
            .await
            .unwrap()
    );
    assert!(c.mark_deleting("globex", mine.id).await.unwrap().is_none());
    assert!(matches!(
        c.mark_indexed("globex", mine.id, 1).await,
        Err(CatalogError::NotFound { .. })
    ));
    assert_eq!(c.counts("globex").await.unwrap().values().sum::<u64>(), 0);
    // Nothing the other tenant did touched the record.
    let rec = c.get(TENANT, mine.id).await.unwrap().unwrap();
    assert_eq!(rec.state, DocumentState::Processing);

    // Even a record under the same id for another tenant stays separate.
    let mut theirs = mine.clone();
    theirs.tenant = "globex".into();
    c.register_upload(theirs).await.unwrap();
    assert_eq!(
        c.get(TENANT, mine.id).await.unwrap().unwrap().state,
        DocumentState::Processing
    );
    assert_eq!(
        c.get("globex", mine.id).await.unwrap().unwrap().state,
        DocumentState::Queued
    );
    assert!(matches!(
        c.register_upload(upload("", "hr", "x.md")).await,
        Err(CatalogError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn list_filters_and_orders_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    for file in ["a.md", "b.md", "c.md"] {
        c.register_upload(upload(TENANT, "hr", file)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    c.register_upload(upload(TENANT, "legal", "d.md"))
        .await
        .unwrap();

    let all: Vec<_> = c
        .list(TENANT, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.title)
        .collect();
    assert_eq!(all, ["d.md", "c.md", "b.md", "a.md"]);
    let hr: Vec<_> = c
        .list(TENANT, Some("hr"))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.title)
        .collect();
    assert_eq!(hr, ["c.md", "b.md", "a.md"]);
    assert!(c.list(TENANT, Some("nope")).await.unwrap().is_empty());
}

#[tokio::test]
async fn counts_by_state() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let a = upload(TENANT, "hr", "a.md");
    let b = upload(TENANT, "hr", "b.md");
    let d = upload(TENANT, "hr", "d.md");
    c.register_upload(a.clone()).await.unwrap();
    c.register_upload(b.clone()).await.unwrap();
    c.begin_version(b.clone(), "sha").await.unwrap();
    c.begin_version(d.clone(), "sha").await.unwrap();
    c.mark_failed(TENANT, d.id, "bad").await.unwrap();
    c.register_upload(upload("globex", "hr", "z.md"))
        .await
        .unwrap();

    let counts = c.counts(TENANT).await.unwrap();
    assert_eq!(counts.len(), 6);
    assert_eq!(counts["queued"], 1);
    assert_eq!(counts["processing"], 1);
    assert_eq!(counts["failed"], 1);
    assert_eq!(counts["indexed"], 0);
    assert_eq!(counts["deleted"], 0);
}

#[tokio::test]
async fn objects_without_an_upload_get_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "runbooks", "deploy.md");
    assert_eq!(
        c.begin_version(up.clone(), "sha").await.unwrap(),
        VersionDecision::Ingest { version: 1 }
    );
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(rec.domain, "runbooks");
    assert_eq!(rec.object_key, up.object_key);
    assert_eq!(rec.state, DocumentState::Processing);
    assert!(matches!(
        c.begin_version(up.clone(), "").await,
        Err(CatalogError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn survives_reopen_and_shares_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let up = upload(TENANT, "hr", "leave.md");
    {
        let c = open(&dir);
        c.begin_version(up.clone(), "sha-a").await.unwrap();
        index_fully(&c, &up, 1, 2).await;
        c.begin_version(up.clone(), "sha-b").await.unwrap();
        c.set_chunking(TENANT, up.id, 2, 4, 2).await.unwrap();
        assert!(
            !c.record_batch_indexed(TENANT, up.id, 2, 0, 2)
                .await
                .unwrap()
        );
    }
    let c = open(&dir);
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.version, rec.pending_version), (1, Some(2)));
    assert_eq!(rec.content_sha256, "sha-a");
    // The recorded batch survived too: the other one completes the version.
    assert!(
        c.record_batch_indexed(TENANT, up.id, 2, 1, 2)
            .await
            .unwrap()
    );

    // A second handle (as another process would have) sees the same data at once.
    let other = Arc::new(open(&dir));
    other.mark_indexed(TENANT, up.id, 2).await.unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!((rec.version, rec.state), (2, DocumentState::Indexed));
    let user_version: i64 = c
        .read(|conn| Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(user_version, SCHEMA_VERSION);
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    drop(SqliteCatalog::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    assert!(matches!(
        SqliteCatalog::open(&path),
        Err(CatalogError::SchemaTooNew { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_batches_complete_exactly_once() {
    const BATCHES: u32 = 40;
    let dir = tempfile::tempdir().unwrap();
    let up = upload(TENANT, "hr", "big.pdf");
    let first = open(&dir);
    first.begin_version(up.clone(), "sha").await.unwrap();
    first
        .set_chunking(TENANT, up.id, 1, BATCHES * 8, BATCHES)
        .await
        .unwrap();

    // Four embedders (separate connections) each record a share of the batches.
    let mut tasks = Vec::new();
    for worker in 0..4u32 {
        let c = open(&dir);
        let id = up.id;
        tasks.push(tokio::spawn(async move {
            let mut completions = 0;
            for batch in (worker..BATCHES).step_by(4) {
                if c.record_batch_indexed(TENANT, id, 1, batch, BATCHES)
                    .await
                    .unwrap()
                {
                    completions += 1;
                }
            }
            completions
        }));
    }
    let mut completions = 0;
    for task in tasks {
        completions += task.await.unwrap();
    }
    assert_eq!(completions, 1);
}

#[test]
fn states_round_trip() {
    for state in DocumentState::ALL {
        assert_eq!(state.as_str().parse::<DocumentState>().unwrap(), state);
        assert_eq!(state.to_string(), state.as_str());
    }
    assert!("bogus".parse::<DocumentState>().is_err());
}

#[tokio::test]
async fn usable_as_a_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let c: Arc<dyn Catalog> = Arc::new(open(&dir));
    c.health().await.unwrap();
    assert!(format!("{c:?}").contains("catalog.db"));
    let err = rag_core::ServiceError::from(CatalogError::NotFound {
        id: DocumentId::for_source("t", "d", "f"),
    });
    assert_eq!(err.code, rag_core::ErrorCode::NotFound);
}

#[tokio::test]
async fn visible_versions_switch_only_when_indexed_and_vanish_on_delete() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let a = upload(TENANT, "hr", "a.md");
    let b = upload(TENANT, "hr", "b.md");
    let other = upload("other", "hr", "a.md");
    let ids = [a.id, b.id, other.id];

    assert!(c.visible_versions(TENANT, &ids).await.unwrap().is_empty());
    c.begin_version(a.clone(), "sha-1").await.unwrap();
    // Pending only: nothing visible yet.
    assert!(c.visible_versions(TENANT, &ids).await.unwrap().is_empty());
    index_fully(&c, &a, 1, 1).await;
    c.begin_version(b.clone(), "sha-b").await.unwrap();
    index_fully(&c, &b, 1, 2).await;
    c.begin_version(other.clone(), "sha-o").await.unwrap();
    index_fully(&c, &other, 1, 1).await;

    // A new version of `a` is pending: readers still see version 1 until it is indexed.
    assert_eq!(
        c.begin_version(a.clone(), "sha-2").await.unwrap(),
        VersionDecision::Ingest { version: 2 }
    );
    let visible = c.visible_versions(TENANT, &ids).await.unwrap();
    assert_eq!(visible.get(&a.id), Some(&1));
    assert_eq!(visible.get(&b.id), Some(&1));
    assert!(
        !visible.contains_key(&other.id),
        "another tenant's document is visible"
    );
    index_fully(&c, &a, 2, 1).await;
    assert_eq!(
        c.visible_versions(TENANT, &ids).await.unwrap().get(&a.id),
        Some(&2)
    );

    // Deleting hides the document at once, before its chunks are gone.
    c.mark_deleting(TENANT, b.id).await.unwrap();
    assert!(
        !c.visible_versions(TENANT, &ids)
            .await
            .unwrap()
            .contains_key(&b.id)
    );
    assert!(c.visible_versions(TENANT, &[]).await.unwrap().is_empty());
}

/// Records batch `batch`'s profile: `count` chunks around `mean`.
async fn profile(
    catalog: &SqliteCatalog,
    up: &NewUpload,
    version: u64,
    batch: u32,
    count: u32,
    mean: &[f32],
) -> Result<(), CatalogError> {
    let profile = VectorProfile {
        count,
        mean: mean.to_vec(),
    };
    catalog
        .record_batch_profile(&up.tenant, up.id, version, batch, &profile)
        .await
}

/// The document profiles of `tenant` (optionally one domain) as (title, version, chunks, mean).
async fn profiles(
    catalog: &SqliteCatalog,
    tenant: &str,
    domain: Option<&str>,
) -> Vec<(String, u64, u64, Vec<f32>)> {
    catalog
        .document_profiles(tenant, domain)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.title, p.version, p.chunks, p.mean))
        .collect()
}

/// How many batch profile rows the file holds for the document (any version).
async fn stored_profiles(catalog: &SqliteCatalog, up: &NewUpload) -> i64 {
    let (tenant, id) = (up.tenant.clone(), up.id.to_string());
    catalog
        .read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM batch_profiles WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn profiles_are_chunk_weighted_and_a_redelivered_batch_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    c.set_chunking(TENANT, up.id, 1, 6, 3).await.unwrap();

    profile(&c, &up, 1, 0, 2, &[1.0, 0.0, -2.0]).await.unwrap();
    profile(&c, &up, 1, 1, 1, &[9.0, 9.0, 9.0]).await.unwrap();
    // Redelivered: the same batch again, with what the embedder computed this time.
    profile(&c, &up, 1, 1, 1, &[4.0, 3.0, 1.0]).await.unwrap();
    profile(&c, &up, 1, 0, 2, &[1.0, 0.0, -2.0]).await.unwrap();
    assert_eq!(stored_profiles(&c, &up).await, 2);
    // Pending: not visible yet.
    assert!(profiles(&c, TENANT, None).await.is_empty());

    for batch in 0..3 {
        c.record_batch_indexed(TENANT, up.id, 1, batch, 3)
            .await
            .unwrap();
    }
    let before = now_ms();
    c.mark_indexed(TENANT, up.id, 1).await.unwrap();
    // (2 × [1, 0, -2] + 1 × [4, 3, 1]) / 3; batch 2 was never profiled.
    assert_eq!(
        profiles(&c, TENANT, None).await,
        [("leave.md".into(), 1, 3, vec![2.0, 1.0, -1.0])]
    );
    // A batch profiled after `mark_indexed` (the visible version's) still counts.
    profile(&c, &up, 1, 2, 3, &[2.0, 1.0, -1.0]).await.unwrap();
    let all = c.document_profiles(TENANT, None).await.unwrap();
    assert_eq!(all.len(), 1);
    let p = &all[0];
    assert_eq!((p.id, p.domain.as_str(), p.version), (up.id, "hr", 1));
    assert_eq!(
        (p.chunks, p.mean.as_slice()),
        (6, [2.0, 1.0, -1.0].as_slice())
    );
    // When the version became visible, not when its last batch was profiled.
    let indexed = c.get(TENANT, up.id).await.unwrap().unwrap().updated_at_ms;
    assert_eq!(p.indexed_at_ms, indexed);
    assert!(p.indexed_at_ms >= before);
}

#[tokio::test]
async fn only_the_visible_versions_profile_counts() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    profile(&c, &up, 1, 0, 4, &[1.0, 1.0]).await.unwrap();
    index_fully(&c, &up, 1, 1).await;

    // Version 2 is being indexed: its batches do not show, version 1 stays.
    c.begin_version(up.clone(), "sha-b").await.unwrap();
    c.set_chunking(TENANT, up.id, 2, 2, 2).await.unwrap();
    profile(&c, &up, 2, 0, 1, &[5.0, 5.0]).await.unwrap();
    assert_eq!(
        profiles(&c, TENANT, None).await,
        [("leave.md".into(), 1, 4, vec![1.0, 1.0])]
    );
    profile(&c, &up, 2, 1, 1, &[7.0, 3.0]).await.unwrap();
    c.record_batch_indexed(TENANT, up.id, 2, 0, 2)
        .await
        .unwrap();
    c.record_batch_indexed(TENANT, up.id, 2, 1, 2)
        .await
        .unwrap();
    assert_eq!(profiles(&c, TENANT, None).await[0].1, 1);

    // Visible now: version 2 replaces version 1, whose profile is gone for good.
    c.mark_indexed(TENANT, up.id, 2).await.unwrap();
    assert_eq!(
        profiles(&c, TENANT, None).await,
        [("leave.md".into(), 2, 2, vec![6.0, 4.0])]
    );
    assert_eq!(stored_profiles(&c, &up).await, 2);
    // A late batch of version 1 can never be seen: dropped, not stored.
    profile(&c, &up, 1, 0, 4, &[1.0, 1.0]).await.unwrap();
    assert_eq!(stored_profiles(&c, &up).await, 2);
    // So is a batch of a version never allocated.
    profile(&c, &up, 9, 0, 1, &[1.0, 1.0]).await.unwrap();
    assert_eq!(stored_profiles(&c, &up).await, 2);

    // A visible version with no profiled batch is not listed.
    let bare = upload(TENANT, "hr", "bare.md");
    c.begin_version(bare.clone(), "sha").await.unwrap();
    index_fully(&c, &bare, 1, 1).await;
    assert_eq!(profiles(&c, TENANT, None).await.len(), 1);
}

#[tokio::test]
async fn an_older_version_made_visible_keeps_the_newer_pending_ones_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    c.set_chunking(TENANT, up.id, 1, 1, 1).await.unwrap();
    profile(&c, &up, 1, 0, 1, &[1.0]).await.unwrap();
    assert!(
        c.record_batch_indexed(TENANT, up.id, 1, 0, 1)
            .await
            .unwrap()
    );
    // Version 2 begins (and is profiled) before version 1 is marked indexed.
    c.begin_version(up.clone(), "sha-b").await.unwrap();
    profile(&c, &up, 2, 0, 1, &[3.0]).await.unwrap();
    c.mark_indexed(TENANT, up.id, 1).await.unwrap();
    assert_eq!(
        profiles(&c, TENANT, None).await,
        [("leave.md".into(), 1, 1, vec![1.0])]
    );
    assert_eq!(
        stored_profiles(&c, &up).await,
        2,
        "version 2 may still become visible"
    );
    index_fully(&c, &up, 2, 1).await;
    assert_eq!(
        profiles(&c, TENANT, None).await,
        [("leave.md".into(), 2, 1, vec![3.0])]
    );
    assert_eq!(stored_profiles(&c, &up).await, 1);
}

#[tokio::test]
async fn deleted_documents_lose_their_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    profile(&c, &up, 1, 0, 1, &[1.0, 2.0]).await.unwrap();
    index_fully(&c, &up, 1, 1).await;
    assert_eq!(profiles(&c, TENANT, None).await.len(), 1);

    // Hidden as soon as the delete starts; gone once it is done.
    c.mark_deleting(TENANT, up.id).await.unwrap();
    assert!(profiles(&c, TENANT, None).await.is_empty());
    profile(&c, &up, 1, 0, 1, &[1.0, 2.0]).await.unwrap();
    c.mark_deleted(TENANT, up.id).await.unwrap();
    assert!(profiles(&c, TENANT, None).await.is_empty());
    assert_eq!(stored_profiles(&c, &up).await, 0);
    // A late batch of the deleted document is dropped.
    profile(&c, &up, 1, 0, 1, &[1.0, 2.0]).await.unwrap();
    assert_eq!(stored_profiles(&c, &up).await, 0);

    // Uploaded again: the new version's profile, once it is visible.
    c.begin_version(up.clone(), "sha-a").await.unwrap();
    profile(&c, &up, 2, 0, 1, &[0.5, 0.5]).await.unwrap();
    index_fully(&c, &up, 2, 1).await;
    assert_eq!(
        profiles(&c, TENANT, None).await,
        [("leave.md".into(), 2, 1, vec![0.5, 0.5])]
    );
}

#[tokio::test]
async fn profiles_filter_by_domain_and_stay_within_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let hr = upload(TENANT, "hr", "leave.md");
    let legal = upload(TENANT, "legal", "nda.md");
    let mut theirs = hr.clone();
    theirs.tenant = "globex".into();
    for (up, value) in [(&hr, 1.0), (&legal, 2.0), (&theirs, 3.0)] {
        c.begin_version(up.clone(), "sha").await.unwrap();
        profile(&c, up, 1, 0, 1, &[value]).await.unwrap();
        index_fully(&c, up, 1, 1).await;
    }
    // Another tenant's attempt on our document id lands on its own record, not ours.
    profile(&c, &theirs, 1, 0, 1, &[30.0]).await.unwrap();
    let stranger = upload("initech", "hr", "leave.md");
    profile(&c, &stranger, 1, 0, 1, &[99.0]).await.unwrap();

    let titles = |ps: Vec<(String, u64, u64, Vec<f32>)>| -> Vec<(String, Vec<f32>)> {
        ps.into_iter().map(|(t, _, _, m)| (t, m)).collect()
    };
    let mut all = titles(profiles(&c, TENANT, None).await);
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        all,
        [("leave.md".into(), vec![1.0]), ("nda.md".into(), vec![2.0])]
    );
    assert_eq!(
        titles(profiles(&c, TENANT, Some("legal")).await),
        [("nda.md".into(), vec![2.0])]
    );
    assert!(profiles(&c, TENANT, Some("nope")).await.is_empty());
    assert_eq!(
        titles(profiles(&c, "globex", None).await),
        [("leave.md".into(), vec![30.0])]
    );
    assert!(profiles(&c, "initech", None).await.is_empty());
}

#[tokio::test]
async fn invalid_profiles_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(&dir);
    let up = upload(TENANT, "hr", "leave.md");
    c.begin_version(up.clone(), "sha").await.unwrap();
    c.set_chunking(TENANT, up.id, 1, 4, 2).await.unwrap();
    let widest = vec![0.25; MAX_PROFILE_DIMS];
    profile(&c, &up, 1, 0, 1, &widest).await.unwrap();

    let refused: [(u32, u32, Vec<f32>, &str); 7] = [
        (1, 0, vec![1.0], "count is 0"),
        (1, 1, Vec::new(), "mean is empty"),
        (
            1,
            1,
            vec![0.0; MAX_PROFILE_DIMS + 1],
            "4097 dimensions; at most 4096",
        ),
        (1, 1, vec![1.0, f32::NAN], "value 1 is NaN"),
        (1, 1, vec![f32::INFINITY], "value 0 is inf"),
        (2, 1, vec![1.0], "not below version 1's batch count 2"),
        (
            1,
            1,
            vec![1.0; 3],
            "3 dimensions; version 1's other batches have 4096",
        ),
    ];
    for (batch, count, mean, reason) in refused {
        let err = profile(&c, &up, 1, batch, count, &mean).await.unwrap_err();
        assert!(matches!(err, CatalogError::InvalidArgument(_)), "{err}");
        assert!(err.to_string().contains(reason), "{err}");
        let service = rag_core::ServiceError::from(err);
        assert_eq!(service.code, rag_core::ErrorCode::InvalidArgument);
    }
    let empty_tenant = NewUpload {
        tenant: String::new(),
        ..up.clone()
    };
    let err = profile(&c, &empty_tenant, 1, 0, 1, &[1.0])
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::InvalidArgument(_)), "{err}");
    assert_eq!(stored_profiles(&c, &up).await, 1);

    // The one batch a version has may change its dimensions on redelivery.
    profile(&c, &up, 1, 0, 2, &[1.0, 2.0]).await.unwrap();
    index_fully(&c, &up, 1, 1).await;
    assert_eq!(
        profiles(&c, TENANT, None).await,
        [("leave.md".into(), 1, 2, vec![1.0, 2.0])]
    );
}

#[test]
fn means_round_trip_through_blobs_exactly() {
    let values = [
        0.0,
        -0.0,
        1.0 / 3.0,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::MAX,
    ];
    let blob = mean_to_blob(&values);
    assert_eq!(&blob[8..12], (1.0f32 / 3.0).to_le_bytes());
    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&mean_from_blob(&blob).unwrap()), bits(&values));
    assert!(matches!(
        mean_from_blob(&blob[..6]),
        Err(CatalogError::Corrupt(_))
    ));
}

#[tokio::test]
async fn a_version_1_file_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let up = upload(TENANT, "hr", "leave.md");
    {
        // The file as version 1 of this crate left it: one document, version 1 visible.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO documents (tenant, id, domain, title, object_key, state, version,
                last_version, content_sha256, chunk_count, size_bytes, created_at_ms,
                updated_at_ms)
             VALUES (?1, ?2, 'hr', 'leave.md', ?3, 'indexed', 1, 1, 'sha-a', 3, 1234, 10, 20)",
            params![TENANT, up.id.to_string(), up.object_key],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO document_versions (tenant, id, version, content_sha256, size_bytes,
                chunk_count, batch_count, created_at_ms, indexed_at_ms)
             VALUES (?1, ?2, 1, 'sha-a', 1234, 3, 1, 10, 20)",
            params![TENANT, up.id.to_string()],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }

    let c = SqliteCatalog::open(&path).unwrap();
    let rec = c.get(TENANT, up.id).await.unwrap().unwrap();
    assert_eq!(
        (rec.state, rec.version, rec.chunk_count),
        (DocumentState::Indexed, 1, 3)
    );
    // Indexed before profiles were kept: none until its batches are profiled (a re-index).
    assert!(profiles(&c, TENANT, None).await.is_empty());
    profile(&c, &up, 1, 0, 3, &[1.0, 2.0]).await.unwrap();
    let all = c.document_profiles(TENANT, None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].version, all[0].chunks, all[0].indexed_at_ms),
        (1, 3, 20)
    );
    drop(c);

    // Recorded as migrated: reopening does not run the migration again (it would fail).
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let c = SqliteCatalog::open(&path).unwrap();
    assert_eq!(profiles(&c, TENANT, None).await.len(), 1);
}
