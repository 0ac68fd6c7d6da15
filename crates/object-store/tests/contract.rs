//! The object-store contract, run against every implementation: the local directory and S3
//! (against moto, the local AWS emulator that `scripts/with-aws.sh` starts: the real S3 wire
//! protocol). Also: S3's own event notifications, delivered through SQS, arrive in the form
//! the ingest-worker decodes.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rag_core::s3_event::{Notification, decode};
use rag_object_store::{LocalObjectStore, ObjectStore, ObjectStoreError, S3ObjectStore};
use rag_queue::{Queue, QueueOptions, SqliteQueue, SqsQueue};

fn emulator() -> rag_aws::AwsConfig {
    let settings = rag_aws::testing::emulator_settings().unwrap_or_else(|e| panic!("{e}"));
    rag_aws::AwsConfig::new(&settings)
}

/// A new, empty bucket on the emulator.
async fn s3_store(aws: &rag_aws::AwsConfig) -> S3ObjectStore {
    let bucket = format!("contract-{}", uuid::Uuid::new_v4().simple());
    let store = S3ObjectStore::new(aws.clone(), &bucket, true);
    store
        .client()
        .await
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    store
}

async fn contract(store: &dyn ObjectStore) {
    store.health().await.unwrap();
    let meta = BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]);
    let key = "uploads/hr/0b6c/Leave policy+v2 (ünïcode).md";
    let info = store
        .put(key, b"first".to_vec(), meta.clone())
        .await
        .unwrap();
    assert_eq!((info.key.as_str(), info.size), (key, 5));
    assert!(!info.etag.is_empty());

    let got = store.get(key).await.unwrap().expect("stored");
    assert_eq!(got.bytes, b"first");
    assert_eq!(got.metadata, meta);
    assert_eq!(got.info.etag, info.etag);

    // Overwrite: the new bytes and a new etag.
    let second = store
        .put(key, b"second version".to_vec(), meta.clone())
        .await
        .unwrap();
    assert_ne!(second.etag, info.etag);
    assert_eq!(
        store.get(key).await.unwrap().unwrap().bytes,
        b"second version"
    );

    // Listing: by prefix, in key order, with sizes and etags.
    store
        .put("uploads/legal/b/z.txt", b"z".to_vec(), BTreeMap::new())
        .await
        .unwrap();
    store
        .put("uploads/legal/a/y.txt", b"yy".to_vec(), BTreeMap::new())
        .await
        .unwrap();
    store
        .put("other/x.txt", b"x".to_vec(), BTreeMap::new())
        .await
        .unwrap();
    let listed = store.list("uploads/").await.unwrap();
    let keys: Vec<_> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        [key, "uploads/legal/a/y.txt", "uploads/legal/b/z.txt"]
    );
    assert_eq!(listed[0].size, 14);
    assert_eq!(listed[0].etag, second.etag);
    assert_eq!(store.list("uploads/legal/a/").await.unwrap().len(), 1);
    assert!(store.list("nothing/").await.unwrap().is_empty());

    // Missing objects and deletes.
    assert!(store.get("uploads/hr/none.md").await.unwrap().is_none());
    store.delete(key).await.unwrap();
    assert!(store.get(key).await.unwrap().is_none());
    store.delete(key).await.unwrap();
    assert_eq!(store.list("uploads/").await.unwrap().len(), 2);

    for bad in [
        "",
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a/",
        "a/./b",
        "a\0b",
    ] {
        assert!(
            matches!(
                store.put(bad, vec![], BTreeMap::new()).await,
                Err(ObjectStoreError::InvalidKey(_))
            ),
            "{bad:?}"
        );
        assert!(matches!(
            store.get(bad).await,
            Err(ObjectStoreError::InvalidKey(_))
        ));
    }
    let long = "k".repeat(rag_object_store::MAX_KEY_BYTES + 1);
    assert!(matches!(
        store.put(&long, vec![], BTreeMap::new()).await,
        Err(ObjectStoreError::InvalidKey(_))
    ));
}

#[tokio::test]
async fn local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let events: Arc<dyn Queue> = Arc::new(
        SqliteQueue::open(
            &dir.path().join("q.db"),
            "documents",
            QueueOptions::default(),
        )
        .unwrap(),
    );
    let store = LocalObjectStore::open(&dir.path().join("objects"), "docs", events).unwrap();
    contract(&store).await;
}

#[tokio::test]
async fn s3_store_keeps_the_contract() {
    let aws = emulator();
    contract(&s3_store(&aws).await).await;
}

#[tokio::test]
async fn s3_store_is_unavailable_not_broken_when_the_bucket_is_missing() {
    let store = S3ObjectStore::new(emulator(), "no-such-bucket-here", true);
    assert!(matches!(
        store.health().await,
        Err(ObjectStoreError::Unavailable(_))
    ));
}

/// The path uploads take in the cluster: the bucket notifies SQS, the worker decodes.
#[tokio::test]
async fn s3_notifications_reach_the_documents_queue_through_sqs() {
    let aws = emulator();
    let store = s3_store(&aws).await;
    let queue = SqsQueue::new(
        aws.clone(),
        &format!("documents-{}", uuid::Uuid::new_v4().simple()),
        QueueOptions::new(Duration::from_secs(30), 5),
        true,
    );
    store
        .create_bucket_notifying(&queue.arn().await.unwrap())
        .await
        .unwrap();

    let key = "uploads/hr/0b6c/Leave policy+v2 (ünïcode).md";
    store
        .put(key, b"hello".to_vec(), BTreeMap::new())
        .await
        .unwrap();
    store.delete(key).await.unwrap();

    // S3 sends a test event when notifications are configured, then one per change.
    let mut seen = Vec::new();
    for _ in 0..20 {
        for d in queue.receive(10, Duration::from_secs(1)).await.unwrap() {
            match decode(&d.body).unwrap() {
                Notification::Test => seen.push(("test".to_owned(), String::new())),
                Notification::Records(records) => seen.extend(
                    records
                        .into_iter()
                        .map(|r| (r.event_name.clone(), r.key.clone())),
                ),
            }
            queue.ack(&d.receipt).await.unwrap();
        }
        if seen.len() >= 3 {
            break;
        }
    }
    assert_eq!(seen.first().map(|s| s.0.as_str()), Some("test"), "{seen:?}");
    let changes: Vec<_> = seen[1..]
        .iter()
        .map(|(name, k)| (name.split(':').next().unwrap_or_default(), k.as_str()))
        .collect();
    assert_eq!(
        changes,
        [("ObjectCreated", key), ("ObjectRemoved", key)],
        "keys decoded exactly (space, plus, non-ASCII)"
    );
}
