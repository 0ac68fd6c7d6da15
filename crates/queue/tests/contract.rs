//! The queue contract, run against every implementation: the embedded SQLite queue and SQS
//! (against moto, the local AWS emulator that `scripts/with-aws.sh` starts: real SQS wire
//! protocol, real redrive to a dead-letter queue). A behaviour the services rely on is
//! checked here once, so the two cannot drift apart.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rag_queue::{
    DEAD_LETTER_REASON_ATTRIBUTE, Message, Queue, QueueError, QueueOptions, SqliteQueue, SqsQueue,
};

/// Makes a fresh, empty queue with the given options.
type Factory = Box<dyn Fn(QueueOptions) -> Arc<dyn Queue>>;

fn sqlite() -> (tempfile::TempDir, Factory) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queues.db");
    let factory: Factory = Box::new(move |options| {
        let name = format!("q{}", uuid::Uuid::new_v4().simple());
        Arc::new(SqliteQueue::open(&path, &name, options).unwrap()) as Arc<dyn Queue>
    });
    (dir, factory)
}

fn sqs() -> Factory {
    let settings = rag_aws::testing::emulator_settings().unwrap_or_else(|e| panic!("{e}"));
    let aws = rag_aws::AwsConfig::new(&settings);
    Box::new(move |options| {
        let name = format!("contract-{}", uuid::Uuid::new_v4().simple());
        Arc::new(SqsQueue::new(aws.clone(), &name, options, true)) as Arc<dyn Queue>
    })
}

/// Visibility timeouts are whole seconds on SQS.
fn options(visibility_secs: u64, max_receives: u32) -> QueueOptions {
    QueueOptions::new(Duration::from_secs(visibility_secs), max_receives)
}

async fn receive_one(q: &dyn Queue, wait: Duration) -> rag_queue::Delivery {
    let mut got = q.receive(1, wait).await.unwrap();
    assert_eq!(got.len(), 1, "expected one message on {}", q.name());
    got.remove(0)
}

async fn send_receive_ack(make: &Factory) {
    let q = make(options(30, 5));
    let text = Message::new("{\"event\": \"naïve ✓\"}").with_attribute("traceparent", "00-abc-01");
    let binary = Message::new(vec![0u8, 159, 146, 150, 1, 0xff]);
    let text_id = q.send(text.clone()).await.unwrap();
    let binary_id = q.send(binary.clone()).await.unwrap();

    let mut got = Vec::new();
    while got.len() < 2 {
        let batch = q.receive(10, Duration::from_secs(2)).await.unwrap();
        assert!(!batch.is_empty(), "messages were lost");
        got.extend(batch);
    }
    got.sort_by_key(|d| d.message_id != text_id);
    assert_eq!(got[0].message_id, text_id);
    assert_eq!(got[0].body, text.body);
    assert_eq!(got[0].attributes, text.attributes);
    assert_eq!(got[1].message_id, binary_id);
    assert_eq!(got[1].body, binary.body, "binary bodies arrive unchanged");
    assert!(
        got[1].attributes.is_empty(),
        "transport attributes are hidden"
    );
    for d in &got {
        assert_eq!(d.receive_count, 1);
        assert!(d.enqueued_at_ms > 0);
    }
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 2));
    for d in &got {
        q.ack(&d.receipt).await.unwrap();
    }
    let stats = q.stats().await.unwrap();
    assert_eq!(
        (stats.visible, stats.in_flight, stats.dead_lettered),
        (0, 0, 0)
    );
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
}

async fn batches_deliver_each_message_once(make: &Factory) {
    let q = make(options(30, 5));
    let sent: Vec<String> = (0..25).map(|i| format!("message {i}")).collect();
    let ids = q
        .send_batch(sent.iter().map(|b| Message::new(b.as_str())).collect())
        .await
        .unwrap();
    assert_eq!(ids.len(), 25);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 25);
    assert!(q.send_batch(Vec::new()).await.unwrap().is_empty());
    let mut bodies = BTreeSet::new();
    for _ in 0..20 {
        let got = q.receive(10, Duration::from_secs(1)).await.unwrap();
        let receipts: Vec<String> = got.iter().map(|d| d.receipt.clone()).collect();
        for d in got {
            assert!(
                bodies.insert(String::from_utf8(d.body).unwrap()),
                "delivered twice"
            );
        }
        // Deleted in one batch call; every entry succeeds.
        let acked = q.ack_batch(&receipts).await;
        assert_eq!(acked.len(), receipts.len());
        assert!(acked.iter().all(Result::is_ok), "{acked:?}");
        if bodies.len() == sent.len() {
            break;
        }
    }
    assert_eq!(bodies, sent.into_iter().collect());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 0), "all deleted");
}

async fn unacked_messages_come_back(make: &Factory) {
    let q = make(options(1, 5));
    q.send(Message::new("again")).await.unwrap();
    let first = receive_one(q.as_ref(), Duration::from_secs(2)).await;
    assert!(
        q.receive(1, Duration::ZERO).await.unwrap().is_empty(),
        "invisible while in flight"
    );
    let second = receive_one(q.as_ref(), Duration::from_secs(5)).await;
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt);

    // Visibility 0 releases it at once; a longer one keeps it.
    q.extend_visibility(&second.receipt, Duration::ZERO)
        .await
        .unwrap();
    let third = receive_one(q.as_ref(), Duration::from_secs(2)).await;
    assert_eq!(third.receive_count, 3);
    q.extend_visibility(&third.receipt, Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        q.receive(1, Duration::ZERO).await.unwrap().is_empty(),
        "extension held"
    );
    q.ack(&third.receipt).await.unwrap();
}

async fn poison_messages_are_dead_lettered_with_a_reason(make: &Factory) {
    let q = make(options(30, 5));
    q.send(Message::new(vec![1u8, 2, 3, 0xfe]).with_attribute("kind", "chunks"))
        .await
        .unwrap();
    let d = receive_one(q.as_ref(), Duration::from_secs(2)).await;
    q.dead_letter(&d, "parse failed: not a PDF").await.unwrap();
    assert!(
        q.receive(1, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    let letters = q.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].body, vec![1u8, 2, 3, 0xfe]);
    assert_eq!(
        letters[0].attributes.get("kind").map(String::as_str),
        Some("chunks")
    );
    assert_eq!(
        letters[0]
            .attributes
            .get(DEAD_LETTER_REASON_ATTRIBUTE)
            .map(String::as_str),
        Some("parse failed: not a PDF")
    );
    assert_eq!(q.stats().await.unwrap().dead_lettered, 1);
}

async fn messages_received_too_often_are_dead_lettered(make: &Factory) {
    let q = make(options(1, 2));
    q.send(Message::new("poison")).await.unwrap();
    for count in 1..=2 {
        let d = receive_one(q.as_ref(), Duration::from_secs(5)).await;
        assert_eq!(d.receive_count, count);
        q.extend_visibility(&d.receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    // The third receive finds it gone to the dead-letter queue.
    assert!(
        q.receive(1, Duration::from_secs(2))
            .await
            .unwrap()
            .is_empty()
    );
    let letters = q.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "moved to the dead-letter queue");
    assert_eq!(letters[0].body, b"poison");
    assert!(
        letters[0]
            .attributes
            .contains_key(DEAD_LETTER_REASON_ATTRIBUTE)
    );
}

async fn oversized_messages_are_refused(make: &Factory) {
    let q = make(options(30, 5));
    let big = Message::new(vec![b'x'; rag_queue::MAX_MESSAGE_BYTES + 1]);
    assert!(matches!(
        q.send(big.clone()).await,
        Err(QueueError::MessageTooLarge { .. })
    ));
    assert!(matches!(
        q.send_batch(vec![Message::new("small"), big]).await,
        Err(QueueError::MessageTooLarge { .. })
    ));
    assert!(
        q.receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty(),
        "none sent"
    );
}

async fn contract(make: Factory) {
    send_receive_ack(&make).await;
    batches_deliver_each_message_once(&make).await;
    unacked_messages_come_back(&make).await;
    poison_messages_are_dead_lettered_with_a_reason(&make).await;
    messages_received_too_often_are_dead_lettered(&make).await;
    oversized_messages_are_refused(&make).await;
}

#[tokio::test]
async fn sqlite_queue_keeps_the_contract() {
    let (_dir, make) = sqlite();
    contract(make).await;
}

#[tokio::test]
async fn sqs_queue_keeps_the_contract() {
    contract(sqs()).await;
}
