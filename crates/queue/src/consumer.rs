//! The one consumer loop every queue worker runs: receive a batch, handle its messages
//! concurrently, and settle each by what its handler says (ack, dead-letter, or redeliver
//! later with backoff). A receive failure backs off and tries again; it never ends the loop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Delivery, Queue};

/// How handling a message ended, which decides what happens to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: delete the message.
    Done,
    /// The message can never succeed (malformed, or its content is unusable): move it to the
    /// dead-letter queue with this reason.
    Poison(String),
    /// A dependency failed: leave the message to be delivered again after a pause that
    /// grows with its receive count; after `max_receives` the queue dead-letters it.
    Retry(String),
}

/// Consumes `queue` until `stop` is cancelled, handling the messages of each receive
/// concurrently; messages in progress finish first.
pub async fn consume<F, Fut>(
    queue: Arc<dyn Queue>,
    batch: usize,
    wait: Duration,
    stop: CancellationToken,
    handle: F,
) where
    F: Fn(Delivery) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let handle = &handle;
    consume_batches(queue, batch, wait, stop, |deliveries| {
        futures::future::join_all(deliveries.into_iter().map(handle))
    })
    .await;
}

/// Consumes `queue` until `stop` is cancelled, handing each receive (up to `batch` messages)
/// to `handle` at once, so that work can be shared across messages (one model call, one
/// index commit). `handle` returns one outcome per delivery, in order; a delivery it gives
/// no outcome for is retried later.
pub async fn consume_batches<F, Fut>(
    queue: Arc<dyn Queue>,
    batch: usize,
    wait: Duration,
    stop: CancellationToken,
    handle: F,
) where
    F: Fn(Vec<Delivery>) -> Fut,
    Fut: Future<Output = Vec<Outcome>>,
{
    let gauges = tokio::spawn(report_depth(queue.clone(), stop.clone()));
    let mut backoff = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let received = tokio::select! {
            () = stop.cancelled() => break,
            received = queue.receive(batch, wait) => received,
        };
        let deliveries = match received {
            Ok(deliveries) => {
                backoff = Duration::from_millis(100);
                deliveries
            }
            Err(e) => {
                tracing::warn!(queue = queue.name(), error = %e, "receive failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if deliveries.is_empty() {
            continue;
        }
        rag_telemetry::metrics::metrics()
            .queue_messages
            .get_or_create(&rag_telemetry::metrics::QueueLabels {
                queue: queue.name().to_owned(),
            })
            .inc_by(deliveries.len() as u64);
        // Kept to settle each message afterwards (dead-lettering may re-send the body).
        let received = deliveries.clone();
        let mut outcomes = keep_invisible(queue.as_ref(), &received, handle(deliveries))
            .await
            .into_iter();
        let queue = queue.as_ref();
        let mut done = Vec::new();
        let mut others = Vec::new();
        for delivery in &received {
            match outcomes
                .next()
                .unwrap_or_else(|| Outcome::Retry("the handler gave no outcome".into()))
            {
                Outcome::Done => done.push(delivery),
                outcome => others.push((delivery, outcome)),
            }
        }
        let acked = ack_all(queue, &done);
        let settled = futures::future::join_all(
            others
                .into_iter()
                .map(|(delivery, outcome)| settle(queue, delivery, outcome)),
        );
        futures::join!(acked, settled);
    }
    gauges.abort();
}

/// Deletes the handled messages in one batch call (SQS DeleteMessageBatch).
async fn ack_all(queue: &dyn Queue, done: &[&Delivery]) {
    if done.is_empty() {
        return;
    }
    let receipts: Vec<String> = done.iter().map(|d| d.receipt.clone()).collect();
    for (delivery, result) in done.iter().zip(queue.ack_batch(&receipts).await) {
        if let Err(e) = result {
            tracing::warn!(queue = queue.name(), message_id = %delivery.message_id, error = %e, "could not delete a handled message; it will be redelivered");
        }
    }
}

/// Runs `work`, extending the visibility of `deliveries` every half timeout meanwhile, so a
/// long document is not delivered to a second consumer while the first still works on it.
/// A consumer that dies stops extending, and its messages come back after one timeout.
async fn keep_invisible<F: Future>(
    queue: &dyn Queue,
    deliveries: &[Delivery],
    work: F,
) -> F::Output {
    let timeout = queue.visibility_timeout();
    let period = timeout / 2;
    if period.is_zero() {
        return work.await;
    }
    tokio::pin!(work);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticker.tick() => {
                for d in deliveries {
                    if let Err(e) = queue.extend_visibility(&d.receipt, timeout).await {
                        tracing::warn!(queue = queue.name(), message_id = %d.message_id, error = %e, "could not extend a message's visibility");
                    }
                }
            }
        }
    }
}

/// How often a consumer reports its queue's depth to the metrics.
const DEPTH_INTERVAL: Duration = Duration::from_secs(10);

/// Reports the queue's depth and the age of its oldest message until `stop`.
async fn report_depth(queue: Arc<dyn Queue>, stop: CancellationToken) {
    use rag_telemetry::metrics::{QueueLabels, QueueStateLabels, metrics};
    let name = queue.name().to_owned();
    loop {
        match queue.stats().await {
            Ok(stats) => {
                let m = metrics();
                for (state, count) in [
                    ("visible", stats.visible),
                    ("in_flight", stats.in_flight),
                    ("dead_lettered", stats.dead_lettered),
                ] {
                    m.queue_depth
                        .get_or_create(&QueueStateLabels {
                            queue: name.clone(),
                            state: state.into(),
                        })
                        .set(i64::try_from(count).unwrap_or(i64::MAX));
                }
                m.queue_oldest_age
                    .get_or_create(&QueueLabels {
                        queue: name.clone(),
                    })
                    .set(stats.oldest_visible_age_ms.unwrap_or(0) as f64 / 1000.0);
            }
            Err(e) => tracing::debug!(queue = %name, error = %e, "queue depth unavailable"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(DEPTH_INTERVAL) => {}
        }
    }
}

async fn settle(queue: &dyn Queue, delivery: &Delivery, outcome: Outcome) {
    let name = queue.name();
    let id = delivery.message_id.as_str();
    let receipt = delivery.receipt.as_str();
    let result = match outcome {
        Outcome::Done => queue.ack(receipt).await,
        Outcome::Poison(reason) => {
            tracing::warn!(queue = name, message_id = id, %reason, "message dead-lettered");
            rag_telemetry::metrics::metrics()
                .dead_lettered
                .get_or_create(&rag_telemetry::metrics::QueueLabels {
                    queue: name.to_owned(),
                })
                .inc();
            queue.dead_letter(delivery, &reason).await
        }
        Outcome::Retry(reason) => {
            let delay = retry_delay(delivery.receive_count);
            tracing::warn!(queue = name, message_id = id, %reason, retry_in = ?delay, "message will be retried");
            queue.extend_visibility(receipt, delay).await
        }
    };
    if let Err(e) = result {
        tracing::warn!(queue = name, message_id = id, error = %e, "could not settle a message; it will be redelivered");
    }
}

/// 1 s, 4 s, 9 s, … capped at 36 s: long enough for a dependency to come back, short
/// enough that a message is not parked for long.
fn retry_delay(receive_count: u32) -> Duration {
    Duration::from_secs(u64::from(receive_count.clamp(1, 6)).pow(2))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::{Message, QueueOptions, SqliteQueue};

    /// A queue (in a directory that lives as long as the returned guard) holding `bodies`.
    async fn queue_with(bodies: &[&str]) -> (tempfile::TempDir, Arc<dyn Queue>) {
        let dir = tempfile::tempdir().unwrap();
        let options = QueueOptions::new(Duration::from_secs(30), 3);
        let queue: Arc<dyn Queue> =
            Arc::new(SqliteQueue::open(&dir.path().join("q.db"), "jobs", options).unwrap());
        for body in bodies {
            queue
                .send(Message::new(body.as_bytes().to_vec()))
                .await
                .unwrap();
        }
        (dir, queue)
    }

    #[tokio::test]
    async fn settles_by_outcome_and_stops_when_asked() {
        let (_dir, queue) = queue_with(&["ok", "poison", "retry"]).await;
        let stop = CancellationToken::new();
        let seen = Arc::new(AtomicU32::new(0));
        let worker = tokio::spawn(consume(
            queue.clone(),
            10,
            Duration::from_millis(50),
            stop.clone(),
            {
                let seen = seen.clone();
                move |d: Delivery| {
                    let seen = seen.clone();
                    async move {
                        seen.fetch_add(1, Ordering::SeqCst);
                        match d.body.as_slice() {
                            b"ok" => Outcome::Done,
                            b"poison" => Outcome::Poison("bad".into()),
                            _ => Outcome::Retry("later".into()),
                        }
                    }
                }
            },
        ));
        tokio::time::timeout(Duration::from_secs(5), async {
            while seen.load(Ordering::SeqCst) < 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        stop.cancel();
        worker.await.unwrap();
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            (stats.visible, stats.in_flight, stats.dead_lettered),
            (0, 1, 1),
            "{stats:?}"
        );
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(100), Duration::from_secs(36));
    }

    #[tokio::test]
    async fn batches_are_handled_together_and_unanswered_messages_retried() {
        let (_dir, queue) = queue_with(&["a", "b", "c"]).await;
        let stop = CancellationToken::new();
        let sizes = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let worker = tokio::spawn(consume_batches(
            queue.clone(),
            10,
            Duration::from_millis(50),
            stop.clone(),
            {
                let sizes = sizes.clone();
                move |batch: Vec<Delivery>| {
                    sizes.lock().push(batch.len());
                    // Answers all but the last: that one must be retried, not lost.
                    let outcomes = vec![Outcome::Done; batch.len() - 1];
                    async move { outcomes }
                }
            },
        ));
        tokio::time::timeout(Duration::from_secs(5), async {
            while sizes.lock().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        stop.cancel();
        worker.await.unwrap();
        assert_eq!(sizes.lock().first(), Some(&3));
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            (stats.visible + stats.in_flight, stats.dead_lettered),
            (1, 0),
            "{stats:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_stay_invisible_while_their_handler_works() {
        let dir = tempfile::tempdir().unwrap();
        let options = QueueOptions::new(Duration::from_secs(1), 3);
        let queue: Arc<dyn Queue> =
            Arc::new(SqliteQueue::open(&dir.path().join("q.db"), "jobs", options).unwrap());
        queue.send(Message::new("long document")).await.unwrap();
        let stop = CancellationToken::new();
        let started = Arc::new(AtomicU32::new(0));
        let handled = Arc::new(AtomicU32::new(0));
        let worker = tokio::spawn(consume(
            queue.clone(),
            1,
            Duration::from_millis(50),
            stop.clone(),
            {
                let (started, handled) = (started.clone(), handled.clone());
                move |_d: Delivery| {
                    let handled = handled.clone();
                    started.fetch_add(1, Ordering::SeqCst);
                    async move {
                        // Three visibility timeouts of work.
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        handled.fetch_add(1, Ordering::SeqCst);
                        Outcome::Done
                    }
                }
            },
        ));
        // Once the worker has it, a second consumer never sees it meanwhile.
        tokio::time::timeout(Duration::from_secs(5), async {
            while started.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        let other = queue
            .receive(1, Duration::from_millis(2_800))
            .await
            .unwrap();
        assert!(other.is_empty(), "redelivered while being handled");
        tokio::time::timeout(Duration::from_secs(5), async {
            while handled.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        stop.cancel();
        worker.await.unwrap();
        assert_eq!(queue.stats().await.unwrap(), crate::QueueStats::default());
        assert_eq!(handled.load(Ordering::SeqCst), 1);
    }
}
