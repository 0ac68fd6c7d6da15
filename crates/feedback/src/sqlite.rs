//! The embedded default: answers and their ratings in one SQLite file (WAL, `synchronous=FULL`,
//! a busy timeout, so handles in several processes can share it).
//!
//! One table, `answers`, one row per (tenant, query id): the record, and the latest rating
//! with its comment (NULL until rated). Lists (`tier_reasons`) and maps (`features`) are JSON
//! text. rusqlite is blocking, so every call runs in `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{Connection, Row, TransactionBehavior, params};

use crate::{
    AnswerRecord, Feedback, FeedbackError, FeedbackStore, FeedbackSummary, GroupCounts, Rating,
    check_feedback, check_id, check_record, corrupt, from_db, latency_to_db, parse_rating,
};

/// The schema this code writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA_V1: &str = "
CREATE TABLE answers (
    tenant          TEXT    NOT NULL,
    query_id        TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    tier            TEXT    NOT NULL,
    tier_reasons    TEXT    NOT NULL,
    route_score     REAL    NOT NULL,
    route_threshold REAL    NOT NULL,
    features        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    prompt_version  TEXT    NOT NULL,
    cache           TEXT    NOT NULL,
    cache_key       TEXT,
    grounded        INTEGER NOT NULL,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    cost_usd        REAL    NOT NULL,
    latency_ms      INTEGER NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    rating          TEXT CHECK (rating IN ('up', 'down')),
    comment         TEXT,
    rated_at_ms     INTEGER,
    PRIMARY KEY (tenant, query_id)
) WITHOUT ROWID;
CREATE INDEX answers_rated ON answers (tenant, created_at_ms) WHERE rating IS NOT NULL;
";

/// The record's columns, in the order [`read_record`] reads them.
const RECORD_COLUMNS: &str = "query_id, tenant, domain, tier, tier_reasons, route_score, \
     route_threshold, features, model, prompt_version, cache, cache_key, grounded, \
     input_tokens, output_tokens, cost_usd, latency_ms, created_at_ms";

/// Answers and feedback in a SQLite file. Several handles and processes may share one file.
pub struct SqliteFeedbackStore {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteFeedbackStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteFeedbackStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> FeedbackError {
    FeedbackError::Unavailable(e.to_string())
}

impl SqliteFeedbackStore {
    /// Opens (creating the file, its directory and the schema if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, FeedbackError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| unavailable(format!("creating {}: {e}", parent.display())))?;
        }
        // Opening a file that another process is opening or closing at that moment (creating
        // or removing the WAL) can be BUSY without SQLite's busy handler being asked: retry.
        let deadline = Instant::now() + BUSY_TIMEOUT;
        let mut conn = loop {
            let attempt = Connection::open(path).and_then(|conn| {
                conn.busy_timeout(BUSY_TIMEOUT)?;
                let _mode: String =
                    conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                Ok(conn)
            });
            match attempt {
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                attempt => {
                    break attempt
                        .map_err(|e| unavailable(format!("opening {}: {e}", path.display())))?;
                }
            }
        };

        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let found: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(unavailable)?;
        if found > SCHEMA_VERSION {
            return Err(FeedbackError::Unavailable(format!(
                "{} has schema version {found}; this build reads up to {SCHEMA_VERSION}",
                path.display()
            )));
        }
        if found < 1 {
            tx.execute_batch(SCHEMA_V1).map_err(unavailable)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection in a blocking task (each statement is its own transaction).
    async fn run<T, F>(&self, f: F) -> Result<T, FeedbackError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, FeedbackError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&conn.lock()))
            .await
            .map_err(|e| unavailable(format!("feedback task failed: {e}")))?
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A JSON column back into its type.
fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, FeedbackError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("{what}: {e}")))
}

/// A record from a row that starts with [`RECORD_COLUMNS`].
fn read_record(row: &Row<'_>) -> Result<AnswerRecord, FeedbackError> {
    let get_err = |e: rusqlite::Error| corrupt(e.to_string());
    let reasons: String = row.get(4).map_err(get_err)?;
    let features: String = row.get(7).map_err(get_err)?;
    let route_score: f64 = row.get(5).map_err(get_err)?;
    let route_threshold: f64 = row.get(6).map_err(get_err)?;
    Ok(AnswerRecord {
        query_id: row.get(0).map_err(get_err)?,
        tenant: row.get(1).map_err(get_err)?,
        domain: row.get(2).map_err(get_err)?,
        tier: row.get(3).map_err(get_err)?,
        tier_reasons: from_json(&reasons, "tier_reasons")?,
        // Written from an f32, so the narrowing is exact.
        route_score: route_score as f32,
        route_threshold: route_threshold as f32,
        features: from_json(&features, "features")?,
        model: row.get(8).map_err(get_err)?,
        prompt_version: row.get(9).map_err(get_err)?,
        cache: row.get(10).map_err(get_err)?,
        cache_key: row.get(11).map_err(get_err)?,
        grounded: row.get(12).map_err(get_err)?,
        input_tokens: from_db(row.get(13).map_err(get_err)?, "input_tokens")?,
        output_tokens: from_db(row.get(14).map_err(get_err)?, "output_tokens")?,
        cost_usd: row.get(15).map_err(get_err)?,
        latency_ms: from_db(row.get(16).map_err(get_err)?, "latency_ms")?,
        created_at_ms: row.get(17).map_err(get_err)?,
    })
}

#[async_trait]
impl FeedbackStore for SqliteFeedbackStore {
    async fn record_answer(&self, record: &AnswerRecord) -> Result<(), FeedbackError> {
        check_record(record)?;
        let r = record.clone();
        let reasons = serde_json::to_string(&r.tier_reasons).map_err(unavailable)?;
        let features = serde_json::to_string(&r.features).map_err(unavailable)?;
        let latency = latency_to_db(r.latency_ms)?;
        self.run(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO answers ({RECORD_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                     ?16, ?17, ?18) ON CONFLICT (tenant, query_id) DO NOTHING"
                ),
                params![
                    r.query_id,
                    r.tenant,
                    r.domain,
                    r.tier,
                    reasons,
                    f64::from(r.route_score),
                    f64::from(r.route_threshold),
                    features,
                    r.model,
                    r.prompt_version,
                    r.cache,
                    r.cache_key,
                    r.grounded,
                    i64::from(r.input_tokens),
                    i64::from(r.output_tokens),
                    r.cost_usd,
                    latency,
                    r.created_at_ms,
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn record_feedback(&self, feedback: &Feedback) -> Result<AnswerRecord, FeedbackError> {
        let comment = check_feedback(feedback)?.map(str::to_owned);
        let (tenant, query_id) = (feedback.tenant.clone(), feedback.query_id.clone());
        let rating = feedback.rating.as_str();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "UPDATE answers SET rating = ?3, comment = ?4, rated_at_ms = ?5 \
                     WHERE tenant = ?1 AND query_id = ?2 RETURNING {RECORD_COLUMNS}"
                ))
                .map_err(unavailable)?;
            let mut rows = stmt
                .query(params![tenant, query_id, rating, comment, now_ms()])
                .map_err(unavailable)?;
            let record = match rows.next().map_err(unavailable)? {
                Some(row) => read_record(row)?,
                None => return Err(FeedbackError::UnknownQuery(query_id)),
            };
            // Stepping to the end finishes the statement, which commits the update.
            while rows.next().map_err(unavailable)?.is_some() {}
            Ok(record)
        })
        .await
    }

    async fn summary(&self, tenant: &str) -> Result<FeedbackSummary, FeedbackError> {
        check_id("tenant", tenant)?;
        let tenant = tenant.to_owned();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT tier, prompt_version, cache, model, COUNT(*), \
                     COUNT(CASE WHEN rating = 'up' THEN 1 END), \
                     COUNT(CASE WHEN rating = 'down' THEN 1 END) \
                     FROM answers WHERE tenant = ?1 \
                     GROUP BY tier, prompt_version, cache, model",
                )
                .map_err(unavailable)?;
            let mut rows = stmt.query([tenant]).map_err(unavailable)?;
            let mut groups = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let get_err = |e: rusqlite::Error| corrupt(e.to_string());
                groups.push(GroupCounts {
                    tier: row.get(0).map_err(get_err)?,
                    prompt_version: row.get(1).map_err(get_err)?,
                    cache: row.get(2).map_err(get_err)?,
                    model: row.get(3).map_err(get_err)?,
                    answers: from_db(row.get(4).map_err(get_err)?, "count")?,
                    up: from_db(row.get(5).map_err(get_err)?, "count")?,
                    down: from_db(row.get(6).map_err(get_err)?, "count")?,
                });
            }
            Ok(FeedbackSummary::from_groups(&groups))
        })
        .await
    }

    async fn rated_answers(
        &self,
        tenant: &str,
    ) -> Result<Vec<(AnswerRecord, Rating)>, FeedbackError> {
        check_id("tenant", tenant)?;
        let tenant = tenant.to_owned();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS}, rating FROM answers \
                     WHERE tenant = ?1 AND rating IS NOT NULL ORDER BY created_at_ms, query_id"
                ))
                .map_err(unavailable)?;
            let mut rows = stmt.query([tenant]).map_err(unavailable)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let rating: String = row.get(18).map_err(|e| corrupt(e.to_string()))?;
                out.push((read_record(row)?, parse_rating(&rating)?));
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/feedback.db");
        drop(SqliteFeedbackStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = SqliteFeedbackStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("schema version"), "{err}");
    }

    #[test]
    fn reopening_keeps_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feedback.db");
        drop(SqliteFeedbackStore::open(&path).unwrap());
        let _again = SqliteFeedbackStore::open(&path).unwrap();
        let _and_another_handle = SqliteFeedbackStore::open(&path).unwrap();
    }
}
