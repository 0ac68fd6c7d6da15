//! Message queues with Amazon SQS semantics, behind one object-safe trait.
//!
//! Owns: the [`Queue`] trait (send, long-polling receive, ack, visibility changes, dead
//! letters, stats), its message and delivery types, [`QueueError`], and the embedded default
//! [`SqliteQueue`]: a durable on-disk queue in SQLite with the same semantics as SQS —
//! at-least-once delivery, a visibility timeout, redelivery, a dead-letter queue after
//! `max_receives` receives, and durability across restarts and crashes.
//!
//! Must not: know what the messages mean (documents, chunk batches — that belongs to the
//! ingest-worker and the embedder), deliver exactly once (consumers must be idempotent), or
//! hold messages only in memory. The cluster implementation, [`SqsQueue`], keeps the
//! semantics documented on [`Queue`]; the contract tests (`tests/contract.rs`) hold both to them.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use rag_core::ServiceError;

mod consumer;
mod sqlite;
mod sqs;

pub use consumer::{Outcome, consume, consume_batches};
pub use sqlite::{QueueOptions, SqliteQueue};
pub use sqs::{BODY_ENCODING_ATTRIBUTE, SqsQueue};

/// The attribute a dead-lettered message carries with the reason it was dead-lettered.
pub const DEAD_LETTER_REASON_ATTRIBUTE: &str = "dead_letter_reason";

/// The largest message accepted: body plus attribute names and values, in bytes (the SQS
/// limit, so code that works on the embedded queue also works on SQS).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// A message to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub body: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
}

impl Message {
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            attributes: BTreeMap::new(),
        }
    }

    pub fn with_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }

    /// Body plus attribute names and values, as counted against [`MAX_MESSAGE_BYTES`].
    pub fn size_bytes(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub message_id: String,
    /// Opaque; changes on every receive (like an SQS receipt handle). Empty for the entries
    /// returned by [`Queue::dead_letters`].
    pub receipt: String,
    pub body: Vec<u8>,
    pub attributes: BTreeMap<String, String>,
    /// 1 on the first delivery.
    pub receive_count: u32,
    pub enqueued_at_ms: i64,
}

/// Approximate counts, like SQS's `ApproximateNumberOfMessages*` attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages a receive could get now.
    pub visible: u64,
    /// Received messages whose visibility timeout has not run out.
    pub in_flight: u64,
    pub dead_lettered: u64,
    /// Age of the oldest visible message (how far behind the consumers are).
    pub oldest_visible_age_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The receipt no longer identifies a received message: it was redelivered (a newer
    /// receipt exists), deleted or dead-lettered since. Callers that ack may ignore it.
    #[error("stale receipt: the message was redelivered, deleted or dead-lettered since")]
    StaleReceipt,
    #[error("message of {size} bytes is larger than the limit of {limit} bytes")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("invalid queue options: {0}")]
    InvalidOptions(String),
    #[error("queue storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("queue storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt message {message_id}: {reason}")]
    Corrupt { message_id: String, reason: String },
    /// The blocking task that talks to the storage did not finish (runtime shutting down).
    #[error("queue task failed: {0}")]
    Task(String),
    /// The queue service cannot be reached (cluster implementations).
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

impl QueueError {
    /// True for [`QueueError::StaleReceipt`], which an acking consumer may ignore.
    pub fn is_stale_receipt(&self) -> bool {
        matches!(self, Self::StaleReceipt)
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Storage(e) => is_busy(e),
            Self::Unavailable(_) | Self::Task(_) => true,
            _ => false,
        }
    }
}

pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl From<QueueError> for ServiceError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::MessageTooLarge { .. } => {
                ServiceError::new(rag_core::ErrorCode::PayloadTooLarge, e.to_string())
            }
            QueueError::StaleReceipt | QueueError::InvalidOptions(_) => {
                ServiceError::invalid_argument(e.to_string())
            }
            e if e.is_transient() => ServiceError::unavailable("the queue is unavailable"),
            e => ServiceError::internal(e),
        }
    }
}

/// A queue with SQS semantics. Object-safe: services hold an `Arc<dyn Queue>`.
///
/// Delivery is at least once: a message received and not acked within its visibility
/// timeout (including one whose receive was cancelled midway) is delivered again, with a
/// higher `receive_count` and a new receipt. Consumers must be idempotent.
#[async_trait]
pub trait Queue: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;

    /// How long a received message stays invisible unless acked or extended; consumers
    /// extend it while they work ([`consume_batches`]).
    fn visibility_timeout(&self) -> Duration;

    /// Enqueues one message; returns its id.
    async fn send(&self, message: Message) -> Result<String, QueueError>;

    /// Enqueues messages; returns their ids in order. All or none on the local queue; on SQS,
    /// when an error is returned some may have been sent (consumers are idempotent).
    async fn send_batch(&self, messages: Vec<Message>) -> Result<Vec<String>, QueueError>;

    /// Up to `max` messages, waiting up to `wait` for the first one (long polling). Received
    /// messages become invisible for the visibility timeout; a message received more than
    /// `max_receives` times is moved to the dead-letter queue instead of being delivered.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;

    /// Deletes a received message (SQS DeleteMessage). A stale receipt (the message was
    /// redelivered since) is [`QueueError::StaleReceipt`], which the caller can ignore.
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;

    /// Deletes received messages (SQS DeleteMessageBatch); one result per receipt, in order.
    /// The default acks them one by one.
    async fn ack_batch(&self, receipts: &[String]) -> Vec<Result<(), QueueError>> {
        let mut results = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            results.push(self.ack(receipt).await);
        }
        results
    }

    /// Changes the visibility timeout of a received message, counted from now (0 = visible
    /// now, for a retry; longer = keep working on it).
    async fn extend_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError>;

    /// Moves a received message to the dead-letter queue now, with a reason attribute
    /// ([`DEAD_LETTER_REASON_ATTRIBUTE`]). Takes the whole delivery because a queue service
    /// may have to re-send its body (SQS has no "move now").
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError>;

    async fn stats(&self) -> Result<QueueStats, QueueError>;

    /// Messages currently in the dead-letter queue (for operators and tests), oldest first
    /// (in the order they were dead-lettered), up to `max`. They carry the
    /// [`DEAD_LETTER_REASON_ATTRIBUTE`] attribute and an empty receipt.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Delivery>, QueueError>;
}
