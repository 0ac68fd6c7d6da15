//! The embedded default: named queues in one SQLite file (WAL, `synchronous=FULL`).
//!
//! Every message is one row of `queue_messages`; a message is visible when `dead = 0` and
//! `visible_at_ms <= now`. A receive is one `BEGIN IMMEDIATE` transaction that selects
//! visible rows and stamps them with a new receipt, a new `visible_at_ms` and an incremented
//! `receive_count`, so two consumers (in this process or another) never get the same message
//! in the same visibility window. The dead-letter queue is the same table with `dead = 1`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rag_core::now_ms;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{
    DEAD_LETTER_REASON_ATTRIBUTE, Delivery, MAX_MESSAGE_BYTES, Message, Queue, QueueError,
    QueueStats,
};

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queue_messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue          TEXT    NOT NULL,
    message_id     TEXT    NOT NULL UNIQUE,
    body           BLOB    NOT NULL,
    attributes     TEXT    NOT NULL,
    enqueued_at_ms INTEGER NOT NULL,
    visible_at_ms  INTEGER NOT NULL,
    receipt        TEXT,
    receive_count  INTEGER NOT NULL DEFAULT 0,
    dead           INTEGER NOT NULL DEFAULT 0,
    dead_at_ms     INTEGER,
    dead_reason    TEXT
);
CREATE INDEX IF NOT EXISTS queue_messages_visible
    ON queue_messages (queue, dead, visible_at_ms);
CREATE INDEX IF NOT EXISTS queue_messages_dead
    ON queue_messages (queue, dead, dead_at_ms, seq);
CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_receipt
    ON queue_messages (receipt);
";

/// Settings of one queue handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// How long a received message stays invisible unless acked or changed.
    pub visibility_timeout: Duration,
    /// Receives after which the next receive moves the message to the dead-letter queue
    /// (SQS `maxReceiveCount`). At least 1.
    pub max_receives: u32,
    /// How often a long-polling receive looks for messages sent by other processes (sends
    /// through a handle in this process wake it at once).
    pub poll_interval: Duration,
}

impl QueueOptions {
    pub fn new(visibility_timeout: Duration, max_receives: u32) -> Self {
        Self {
            visibility_timeout,
            max_receives,
            ..Self::default()
        }
    }
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            max_receives: 5,
            poll_interval: Duration::from_millis(50),
        }
    }
}

/// A named queue in a SQLite file. Many queues, handles and processes may share one file.
pub struct SqliteQueue {
    name: String,
    path: PathBuf,
    options: QueueOptions,
    conn: Arc<Mutex<Connection>>,
    /// Shared by every handle of this process on the same (file, queue name).
    notify: Arc<Notify>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

type NotifierKey = (PathBuf, String);

static NOTIFIERS: LazyLock<Mutex<HashMap<NotifierKey, Weak<Notify>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn notifier_for(path: &Path, name: &str) -> Arc<Notify> {
    let mut map = NOTIFIERS.lock();
    map.retain(|_, weak| weak.strong_count() > 0);
    let key = (path.to_path_buf(), name.to_owned());
    if let Some(existing) = map.get(&key).and_then(Weak::upgrade) {
        return existing;
    }
    let notify = Arc::new(Notify::new());
    map.insert(key, Arc::downgrade(&notify));
    notify
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Runs `attempt` again while SQLite answers BUSY, for up to [`BUSY_TIMEOUT`]. Opening a
/// file that another process is opening or closing at that moment (creating or removing the
/// WAL) can be BUSY without SQLite's busy handler being asked.
fn retry_busy<T>(
    mut attempt: impl FnMut() -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match attempt() {
            Err(e) if crate::is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// Opens `path` with the settings every handle of the embedded backends uses.
fn open_connection(path: &Path) -> Result<Connection, QueueError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let conn = retry_busy(|| {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "queue database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(conn)
    })?;
    Ok(conn)
}

impl SqliteQueue {
    /// Opens (creating if needed) the queue `name` in the SQLite file at `path`.
    pub fn open(path: &Path, name: &str, options: QueueOptions) -> Result<Self, QueueError> {
        if name.is_empty() {
            return Err(QueueError::InvalidOptions("the queue name is empty".into()));
        }
        if options.max_receives == 0 {
            return Err(QueueError::InvalidOptions(
                "max_receives must be at least 1".into(),
            ));
        }
        if options.poll_interval.is_zero() {
            return Err(QueueError::InvalidOptions(
                "poll_interval must not be zero".into(),
            ));
        }
        let mut conn = open_connection(path)?;
        retry_busy(|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(SCHEMA)?;
            tx.commit()
        })?;
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let notify = notifier_for(&path, name);
        Ok(Self {
            name: name.to_owned(),
            path,
            options,
            conn: Arc::new(Mutex::new(conn)),
            notify,
        })
    }

    pub fn options(&self) -> &QueueOptions {
        &self.options
    }

    /// Moves up to `max` dead letters back into the queue (oldest first) as fresh messages
    /// with a receive count of 0 (SQS "start DLQ redrive"). Returns how many moved.
    pub async fn redrive_dead_letters(&self, max: usize) -> Result<u64, QueueError> {
        let queue = self.name.clone();
        let moved = self
            .with_conn(move |conn| {
                let now = now_ms();
                let n = conn.execute(
                    "UPDATE queue_messages
                        SET dead = 0, dead_at_ms = NULL, dead_reason = NULL, receipt = NULL,
                            receive_count = 0, visible_at_ms = ?2
                      WHERE seq IN (SELECT seq FROM queue_messages
                                     WHERE queue = ?1 AND dead = 1
                                     ORDER BY dead_at_ms, seq LIMIT ?3)",
                    params![queue, now, limit(max)],
                )?;
                Ok(n as u64)
            })
            .await?;
        if moved > 0 {
            self.notify.notify_waiters();
        }
        Ok(moved)
    }

    /// Runs `f` on the connection in a blocking task.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, QueueError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock();
            f(&mut conn)
        })
        .await
        .map_err(|e| QueueError::Task(e.to_string()))?
    }

    async fn insert(&self, messages: Vec<Message>) -> Result<Vec<String>, QueueError> {
        for message in &messages {
            let size = message.size_bytes();
            if size > MAX_MESSAGE_BYTES {
                return Err(QueueError::MessageTooLarge {
                    size,
                    limit: MAX_MESSAGE_BYTES,
                });
            }
        }
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let queue = self.name.clone();
        let ids = self
            .with_conn(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now_ms();
                let mut ids = Vec::with_capacity(messages.len());
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO queue_messages
                            (queue, message_id, body, attributes, enqueued_at_ms, visible_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    )?;
                    for message in messages {
                        let id = new_id();
                        let attributes =
                            serde_json::to_string(&message.attributes).map_err(|e| {
                                QueueError::Corrupt {
                                    message_id: id.clone(),
                                    reason: format!("attributes do not encode: {e}"),
                                }
                            })?;
                        stmt.execute(params![queue, id, message.body, attributes, now])?;
                        ids.push(id);
                    }
                }
                tx.commit()?;
                Ok(ids)
            })
            .await?;
        self.notify.notify_waiters();
        Ok(ids)
    }

    /// One non-waiting receive attempt.
    async fn try_receive(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let queue = self.name.clone();
        let visibility = millis(self.options.visibility_timeout);
        let max_receives = self.options.max_receives;
        self.with_conn(move |conn| receive_now(conn, &queue, max, visibility, max_receives))
            .await
    }

    /// Runs `sql` with `?1` = queue, `?2` = receipt and `extra` as `?3`... on the live message
    /// holding `receipt`; no row changed means the receipt is stale.
    async fn update_by_receipt(
        &self,
        sql: &'static str,
        receipt: &str,
        extra: Vec<rusqlite::types::Value>,
    ) -> Result<(), QueueError> {
        use rusqlite::types::Value;
        let mut values = vec![
            Value::Text(self.name.clone()),
            Value::Text(receipt.to_owned()),
        ];
        values.extend(extra);
        let changed = self
            .with_conn(move |conn| Ok(conn.execute(sql, rusqlite::params_from_iter(values))?))
            .await?;
        if changed == 0 {
            return Err(QueueError::StaleReceipt);
        }
        Ok(())
    }
}

/// A row as a receive selects it.
struct Candidate {
    seq: i64,
    message_id: String,
    body: Vec<u8>,
    attributes: String,
    enqueued_at_ms: i64,
    receive_count: i64,
}

fn receive_now(
    conn: &mut Connection,
    queue: &str,
    max: usize,
    visibility_ms: i64,
    max_receives: u32,
) -> Result<Vec<Delivery>, QueueError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    let visible_until = now.saturating_add(visibility_ms);
    let mut out = Vec::new();
    while out.len() < max {
        let candidates = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, message_id, body, attributes, enqueued_at_ms, receive_count
                   FROM queue_messages
                  WHERE queue = ?1 AND dead = 0 AND visible_at_ms <= ?2
                  ORDER BY enqueued_at_ms, seq
                  LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![queue, now, limit(max - out.len())], |row| {
                Ok(Candidate {
                    seq: row.get(0)?,
                    message_id: row.get(1)?,
                    body: row.get(2)?,
                    attributes: row.get(3)?,
                    enqueued_at_ms: row.get(4)?,
                    receive_count: row.get(5)?,
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        if candidates.is_empty() {
            break;
        }
        let mut dead_lettered = false;
        for c in candidates {
            let parsed = serde_json::from_str::<BTreeMap<String, String>>(&c.attributes);
            let reason = if c.receive_count >= i64::from(max_receives) {
                Some(format!(
                    "max_receives exceeded: received {} times (limit {max_receives})",
                    c.receive_count
                ))
            } else {
                // A row this crate did not write would otherwise block the queue forever.
                parsed
                    .as_ref()
                    .err()
                    .map(|e| format!("corrupt attributes: {e}"))
            };
            if let Some(reason) = reason {
                tx.execute(
                    "UPDATE queue_messages
                        SET dead = 1, dead_at_ms = ?2, dead_reason = ?3, receipt = NULL
                      WHERE seq = ?1",
                    params![c.seq, now, reason],
                )?;
                tracing::warn!(queue, message_id = %c.message_id, reason, "message dead-lettered");
                dead_lettered = true;
                continue;
            }
            let receipt = new_id();
            tx.execute(
                "UPDATE queue_messages
                    SET receipt = ?2, visible_at_ms = ?3, receive_count = receive_count + 1
                  WHERE seq = ?1",
                params![c.seq, receipt, visible_until],
            )?;
            out.push(Delivery {
                message_id: c.message_id,
                receipt,
                body: c.body,
                attributes: parsed.unwrap_or_default(),
                receive_count: u32::try_from(c.receive_count.saturating_add(1)).unwrap_or(u32::MAX),
                enqueued_at_ms: c.enqueued_at_ms,
            });
        }
        if !dead_lettered {
            // A short page means nothing else is visible; a full one means `out` is full.
            break;
        }
    }
    tx.commit()?;
    Ok(out)
}

#[async_trait]
impl Queue for SqliteQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn visibility_timeout(&self) -> Duration {
        self.options.visibility_timeout
    }

    async fn send(&self, message: Message) -> Result<String, QueueError> {
        let mut ids = self.insert(vec![message]).await?;
        ids.pop()
            .ok_or_else(|| QueueError::Task("the insert returned no message id".into()))
    }

    async fn send_batch(&self, messages: Vec<Message>) -> Result<Vec<String>, QueueError> {
        self.insert(messages).await
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let start = Instant::now();
        // `wait` may be huge (Duration::MAX): then wait "forever" (a year).
        let deadline = start
            .checked_add(wait)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
        loop {
            // Register for wake-ups before looking, so a send between the look and the
            // wait is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.try_receive(max).await?;
            if !got.is_empty() {
                return Ok(got);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(got);
            }
            let nap = self.options.poll_interval.min(deadline - now);
            // Either a local send woke us or the poll interval passed: look again.
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        self.update_by_receipt(
            "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2 AND dead = 0",
            receipt,
            Vec::new(),
        )
        .await
    }

    async fn extend_visibility(&self, receipt: &str, timeout: Duration) -> Result<(), QueueError> {
        self.update_by_receipt(
            "UPDATE queue_messages SET visible_at_ms = ?3
              WHERE queue = ?1 AND receipt = ?2 AND dead = 0",
            receipt,
            vec![rusqlite::types::Value::Integer(
                now_ms().saturating_add(millis(timeout)),
            )],
        )
        .await?;
        if timeout.is_zero() {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), QueueError> {
        let receipt = delivery.receipt.as_str();
        self.update_by_receipt(
            "UPDATE queue_messages
                SET dead = 1, dead_at_ms = ?3, dead_reason = ?4, receipt = NULL
              WHERE queue = ?1 AND receipt = ?2 AND dead = 0",
            receipt,
            vec![
                rusqlite::types::Value::Integer(now_ms()),
                rusqlite::types::Value::Text(reason.to_owned()),
            ],
        )
        .await
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let queue = self.name.clone();
        self.with_conn(move |conn| {
            let now = now_ms();
            let (visible, in_flight, dead, oldest): (i64, i64, i64, Option<i64>) = conn
                .query_row(
                    "SELECT
                        COALESCE(SUM(dead = 0 AND visible_at_ms <= ?2), 0),
                        COALESCE(SUM(dead = 0 AND visible_at_ms > ?2), 0),
                        COALESCE(SUM(dead = 1), 0),
                        MIN(CASE WHEN dead = 0 AND visible_at_ms <= ?2 THEN enqueued_at_ms END)
                       FROM queue_messages WHERE queue = ?1",
                    params![queue, now],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()?
                .unwrap_or((0, 0, 0, None));
            Ok(QueueStats {
                visible: count(visible),
                in_flight: count(in_flight),
                dead_lettered: count(dead),
                oldest_visible_age_ms: oldest.map(|t| now.saturating_sub(t).max(0)),
            })
        })
        .await
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let queue = self.name.clone();
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT message_id, body, attributes, enqueued_at_ms, receive_count, dead_reason
                   FROM queue_messages
                  WHERE queue = ?1 AND dead = 1
                  ORDER BY dead_at_ms, seq
                  LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![queue, limit(max)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (message_id, body, attributes, enqueued_at_ms, receive_count, reason) = row?;
                // A message dead-lettered for corrupt attributes is still shown, without them.
                let mut attributes: BTreeMap<String, String> =
                    serde_json::from_str(&attributes).unwrap_or_default();
                attributes.insert(
                    DEAD_LETTER_REASON_ATTRIBUTE.to_owned(),
                    reason.unwrap_or_default(),
                );
                out.push(Delivery {
                    message_id,
                    receipt: String::new(),
                    body,
                    attributes,
                    receive_count: u32::try_from(receive_count).unwrap_or(u32::MAX),
                    enqueued_at_ms,
                });
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
