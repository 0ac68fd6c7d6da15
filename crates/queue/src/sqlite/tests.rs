use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use super::*;

const SHORT: Duration = Duration::from_millis(200);

fn options(visibility_timeout: Duration, max_receives: u32) -> QueueOptions {
    QueueOptions::new(visibility_timeout, max_receives)
}

fn open(dir: &TempDir, name: &str, options: QueueOptions) -> SqliteQueue {
    SqliteQueue::open(&dir.path().join("queues.db"), name, options).unwrap()
}

#[tokio::test]
async fn send_receive_ack() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "documents", QueueOptions::default());
    let id = q
        .send(Message::new("hello").with_attribute("kind", "upload"))
        .await
        .unwrap();

    let got = q.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    let d = &got[0];
    assert_eq!(d.message_id, id);
    assert_eq!(d.body, b"hello");
    assert_eq!(d.attributes.get("kind").map(String::as_str), Some("upload"));
    assert_eq!(d.receive_count, 1);
    assert!(d.enqueued_at_ms > 0);
    assert_eq!(q.stats().await.unwrap().in_flight, 1);

    q.ack(&d.receipt).await.unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!(stats, QueueStats::default());
    // Acking twice: the message is gone, the receipt is stale.
    assert!(q.ack(&d.receipt).await.unwrap_err().is_stale_receipt());
    assert!(q.receive(10, Duration::ZERO).await.unwrap().is_empty());
}

#[tokio::test]
async fn batches_keep_order_and_queues_are_separate() {
    let dir = tempfile::tempdir().unwrap();
    let docs = open(&dir, "documents", QueueOptions::default());
    let chunks = open(&dir, "chunks", QueueOptions::default());
    let ids = docs
        .send_batch((0..5).map(|i| Message::new(format!("m{i}"))).collect())
        .await
        .unwrap();
    assert_eq!(ids.len(), 5);
    assert!(docs.send_batch(Vec::new()).await.unwrap().is_empty());

    assert!(chunks.receive(10, Duration::ZERO).await.unwrap().is_empty());
    let got = docs.receive(3, Duration::ZERO).await.unwrap();
    let bodies: Vec<_> = got.iter().map(|d| d.body.clone()).collect();
    assert_eq!(bodies, vec![b"m0".to_vec(), b"m1".to_vec(), b"m2".to_vec()]);
    let rest = docs.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].message_id, ids[3]);
    assert!(
        docs.receive(0, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "q", QueueOptions::default());
    let err = q
        .send(Message::new(vec![0u8; MAX_MESSAGE_BYTES + 1]))
        .await
        .unwrap_err();
    assert!(matches!(err, QueueError::MessageTooLarge { .. }), "{err:?}");
    let service = rag_core::ServiceError::from(err);
    assert_eq!(service.code, rag_core::ErrorCode::PayloadTooLarge);
    // All or none: a batch with one oversized message sends nothing.
    let batch = vec![
        Message::new("ok"),
        Message::new(vec![0u8; MAX_MESSAGE_BYTES + 1]),
    ];
    assert!(q.send_batch(batch).await.is_err());
    assert_eq!(q.stats().await.unwrap().visible, 0);
}

#[tokio::test]
async fn invisible_during_timeout_then_redelivered_and_old_receipt_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "q", options(SHORT, 5));
    q.send(Message::new("x")).await.unwrap();

    let first = q.receive(1, Duration::ZERO).await.unwrap().remove(0);
    assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (0, 1));

    tokio::time::sleep(SHORT + Duration::from_millis(50)).await;
    let second = q.receive(1, Duration::ZERO).await.unwrap().remove(0);
    assert_eq!(second.message_id, first.message_id);
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt, first.receipt);

    let stale = q.ack(&first.receipt).await.unwrap_err();
    assert!(stale.is_stale_receipt(), "{stale:?}");
    assert!(
        q.extend_visibility(&first.receipt, SHORT)
            .await
            .unwrap_err()
            .is_stale_receipt()
    );
    assert!(
        q.dead_letter(&first, "x")
            .await
            .unwrap_err()
            .is_stale_receipt()
    );
    q.ack(&second.receipt).await.unwrap();
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}

#[tokio::test]
async fn long_poll_gets_a_message_that_becomes_visible_again() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "q", options(SHORT, 5));
    q.send(Message::new("x")).await.unwrap();
    let _first = q.receive(1, Duration::ZERO).await.unwrap();
    // Nothing is visible now; the poll finds it once the timeout runs out.
    let again = q.receive(1, Duration::from_secs(3)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn dead_letter_after_max_receives() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "q", options(Duration::from_secs(30), 2));
    let id = q
        .send(Message::new("poison").with_attribute("a", "b"))
        .await
        .unwrap();

    for expected in 1..=2u32 {
        let got = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].receive_count, expected);
        // A consumer giving up: visible again at once.
        q.extend_visibility(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    let keep = q.send(Message::new("fine")).await.unwrap();
    // Third receive: the poison message (received twice) goes to the DLQ instead, and the
    // next message is delivered in its place.
    let got = q.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, keep);
    assert_eq!(got[0].receive_count, 1);

    let stats = q.stats().await.unwrap();
    assert_eq!(stats.dead_lettered, 1);
    assert_eq!(stats.visible, 0);
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].body, b"poison");
    assert_eq!(dead[0].receive_count, 2);
    assert_eq!(dead[0].attributes.get("a").map(String::as_str), Some("b"));
    assert!(dead[0].attributes[DEAD_LETTER_REASON_ATTRIBUTE].contains("max_receives"));
}

#[tokio::test]
async fn explicit_dead_letter_with_reason_and_redrive() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "q", QueueOptions::default());
    q.send(Message::new("bad pdf")).await.unwrap();
    let d = q.receive(1, Duration::ZERO).await.unwrap().remove(0);
    q.dead_letter(&d, "parse failed: not a PDF").await.unwrap();

    // The receipt is spent and the message is not delivered any more.
    assert!(q.ack(&d.receipt).await.unwrap_err().is_stale_receipt());
    assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].attributes[DEAD_LETTER_REASON_ATTRIBUTE],
        "parse failed: not a PDF"
    );
    assert!(dead[0].receipt.is_empty());
    assert_eq!(q.stats().await.unwrap().dead_lettered, 1);

    assert_eq!(q.redrive_dead_letters(10).await.unwrap(), 1);
    let back = q.receive(1, Duration::ZERO).await.unwrap().remove(0);
    assert_eq!(back.message_id, d.message_id);
    assert_eq!(back.receive_count, 1);
    assert!(!back.attributes.contains_key(DEAD_LETTER_REASON_ATTRIBUTE));
    assert!(q.dead_letters(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn extend_visibility_keeps_or_releases_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "q", options(SHORT, 5));
    q.send(Message::new("slow")).await.unwrap();
    let d = q.receive(1, Duration::ZERO).await.unwrap().remove(0);

    // Keep working on it: still invisible after the original timeout.
    q.extend_visibility(&d.receipt, Duration::from_secs(30))
        .await
        .unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(50)).await;
    assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());

    // Give up on it: visible at once, and the old receipt still acks until redelivery.
    q.extend_visibility(&d.receipt, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(q.stats().await.unwrap().visible, 1);
    let again = q.receive(1, Duration::ZERO).await.unwrap().remove(0);
    assert_eq!(again.receive_count, 2);
    q.ack(&again.receipt).await.unwrap();
}

#[tokio::test]
async fn survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (in_flight_id, waiting_ids) = {
        let q = open(&dir, "q", options(SHORT, 5));
        let ids = q
            .send_batch((0..3).map(|i| Message::new(format!("m{i}"))).collect())
            .await
            .unwrap();
        let d = q.receive(1, Duration::ZERO).await.unwrap().remove(0);
        assert_eq!(d.message_id, ids[0]);
        (d.message_id, ids[1..].to_vec())
    };

    let q = open(&dir, "q", options(SHORT, 5));
    let stats = q.stats().await.unwrap();
    assert_eq!((stats.visible, stats.in_flight), (2, 1));
    assert!(stats.oldest_visible_age_ms.is_some());
    let got = q.receive(10, Duration::ZERO).await.unwrap();
    let got_ids: Vec<_> = got.iter().map(|d| d.message_id.clone()).collect();
    assert_eq!(got_ids, waiting_ids);
    for d in &got {
        q.ack(&d.receipt).await.unwrap();
    }

    // The one in flight at the "crash" comes back after its timeout.
    let back = q.receive(10, Duration::from_secs(3)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].message_id, in_flight_id);
    assert_eq!(back[0].receive_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumers_get_each_message_once() {
    const N: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let producer = open(&dir, "q", options(Duration::from_secs(30), 5));
    producer
        .send_batch((0..N).map(|i| Message::new(i.to_string())).collect())
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for _ in 0..2 {
        // Separate handles: separate SQLite connections contending for the file.
        let consumer = Arc::new(open(&dir, "q", options(Duration::from_secs(30), 5)));
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let got = consumer
                    .receive(7, Duration::from_millis(100))
                    .await
                    .unwrap();
                if got.is_empty() {
                    return seen;
                }
                for d in got {
                    assert_eq!(d.receive_count, 1);
                    consumer.ack(&d.receipt).await.unwrap();
                    seen.push(d.message_id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), N, "a message was delivered twice or lost");
    assert_eq!(unique.len(), N);
    assert_eq!(producer.stats().await.unwrap(), QueueStats::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_wakes_at_once_on_a_local_send() {
    let dir = tempfile::tempdir().unwrap();
    let slow_poll = QueueOptions {
        poll_interval: Duration::from_secs(2),
        ..QueueOptions::default()
    };
    let consumer = open(&dir, "q", slow_poll);
    // Another handle on the same file and queue, as another service in the process would.
    let producer = open(&dir, "q", slow_poll);

    let waiter = tokio::spawn(async move {
        let got = consumer.receive(1, Duration::from_secs(10)).await.unwrap();
        (Instant::now(), got)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent_at = Instant::now();
    producer.send(Message::new("wake up")).await.unwrap();
    let (received_at, got) = waiter.await.unwrap();
    assert_eq!(got.len(), 1);
    let latency = received_at - sent_at;
    assert!(
        latency < Duration::from_millis(500),
        "woke after {latency:?}"
    );
}

#[tokio::test]
async fn long_poll_picks_up_other_process_writes_by_polling() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queues.db");
    let consumer = open(&dir, "q", QueueOptions::default());

    // Another process: a plain connection writing a row, with no in-process notification.
    let other = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute(
            "INSERT INTO queue_messages
                (queue, message_id, body, attributes, enqueued_at_ms, visible_at_ms)
             VALUES ('q', 'from-elsewhere', x'00', '{}', ?1, ?1)",
            [now_ms()],
        )
        .unwrap();
    });
    let started = Instant::now();
    let got = consumer.receive(1, Duration::from_secs(5)).await.unwrap();
    other.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message_id, "from-elsewhere");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn long_poll_returns_empty_after_wait() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "q", QueueOptions::default());
    let started = Instant::now();
    assert!(
        q.receive(5, Duration::from_millis(150))
            .await
            .unwrap()
            .is_empty()
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[tokio::test]
async fn corrupt_rows_are_dead_lettered_not_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let q = open(&dir, "q", QueueOptions::default());
    let conn = rusqlite::Connection::open(dir.path().join("queues.db")).unwrap();
    conn.execute(
        "INSERT INTO queue_messages
            (queue, message_id, body, attributes, enqueued_at_ms, visible_at_ms)
         VALUES ('q', 'broken', x'00', 'not json', 1, 1)",
        [],
    )
    .unwrap();
    q.send(Message::new("ok")).await.unwrap();
    let got = q.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"ok");
    let dead = q.dead_letters(10).await.unwrap();
    assert_eq!(dead[0].message_id, "broken");
    assert!(dead[0].attributes[DEAD_LETTER_REASON_ATTRIBUTE].contains("corrupt"));
}

#[test]
fn invalid_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    for (name, options) in [
        ("", QueueOptions::default()),
        ("q", options(SHORT, 0)),
        (
            "q",
            QueueOptions {
                poll_interval: Duration::ZERO,
                ..QueueOptions::default()
            },
        ),
    ] {
        let err = SqliteQueue::open(&path, name, options).unwrap_err();
        assert!(matches!(err, QueueError::InvalidOptions(_)), "{err:?}");
    }
}

#[tokio::test]
async fn usable_as_a_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let q: Arc<dyn Queue> = Arc::new(open(&dir, "documents", QueueOptions::default()));
    assert_eq!(q.name(), "documents");
    q.send(Message::new("x")).await.unwrap();
    assert_eq!(q.receive(1, Duration::ZERO).await.unwrap().len(), 1);
    assert!(format!("{q:?}").contains("documents"));
}

/// Set in the child processes of `consumers_in_separate_processes_get_each_message_once`.
const CHILD_DB: &str = "RAG_QUEUE_TEST_CHILD_DB";
const CHILD_OUT: &str = "RAG_QUEUE_TEST_CHILD_OUT";

/// A consumer in a child process (does nothing when run as an ordinary test).
#[tokio::test]
async fn child_consumer_process() {
    let (Some(db), Some(out)) = (std::env::var_os(CHILD_DB), std::env::var_os(CHILD_OUT)) else {
        return;
    };
    let q = SqliteQueue::open(Path::new(&db), "q", QueueOptions::default()).unwrap();
    let mut seen = Vec::new();
    loop {
        let got = q.receive(5, Duration::from_millis(300)).await.unwrap();
        if got.is_empty() {
            break;
        }
        for d in got {
            q.ack(&d.receipt).await.unwrap();
            seen.push(d.message_id);
        }
    }
    std::fs::write(out, seen.join("\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_in_separate_processes_get_each_message_once() {
    const N: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queues.db");
    let q = SqliteQueue::open(&db, "q", QueueOptions::default()).unwrap();
    let ids = q
        .send_batch((0..N).map(|i| Message::new(i.to_string())).collect())
        .await
        .unwrap();

    let exe = std::env::current_exe().unwrap();
    let outs: Vec<_> = (0..2).map(|i| dir.path().join(format!("out{i}"))).collect();
    let children: Vec<_> = outs
        .iter()
        .map(|out| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "sqlite::tests::child_consumer_process",
                    "--quiet",
                ])
                .env(CHILD_DB, &db)
                .env(CHILD_OUT, out)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
    }
    let mut all: Vec<String> = Vec::new();
    for out in &outs {
        let text = std::fs::read_to_string(out).unwrap();
        all.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    }
    assert_eq!(all.len(), N, "a message was delivered twice or lost");
    let unique: HashSet<_> = all.into_iter().collect();
    assert_eq!(unique, ids.into_iter().collect::<HashSet<_>>());
    assert_eq!(q.stats().await.unwrap(), QueueStats::default());
}
