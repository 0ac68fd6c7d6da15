//! The embedded default: answers and their ratings in one SQLite file (WAL, `synchronous=FULL`,
//! a busy timeout, so handles in several processes can share it).
//!
//! One table, `answers`, one row per (tenant, query id): the record, and the latest rating
//! with its comment (NULL until rated). Lists (`tier_reasons`) and maps (`features`) are JSON
//! text; the question embedding is a BLOB of little-endian `f32`s (4 bytes a dimension, exact).
//! rusqlite is blocking, so every call runs in `spawn_blocking`.
//!
//! Schema versions (`PRAGMA user_version`), each migrated in place on open: 1, the table;
//! 2, `question_embedding` and the index that serves the embedding window.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{Connection, Row, TransactionBehavior, params};

use crate::{
    AnswerRecord, EmbeddingQuery, Feedback, FeedbackError, FeedbackStore, FeedbackSummary,
    GroupCounts, QuestionEmbedding, Rating, check_embedding_query, check_feedback, check_id,
    check_record, corrupt, from_db, latency_to_db, parse_rating,
};

/// The schema this code writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;

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

/// Version 2: the question's embedding, and the index [`FeedbackStore::question_embeddings`]
/// reads (its entries also hold the key's `query_id`, so the order needs no sort).
const MIGRATE_V1_TO_V2: &str = "
ALTER TABLE answers ADD COLUMN question_embedding BLOB;
CREATE INDEX answers_embedded ON answers (tenant, created_at_ms)
    WHERE question_embedding IS NOT NULL;
";

/// The record's columns, in the order [`read_record`] reads them.
const RECORD_COLUMNS: &str = "query_id, tenant, domain, tier, tier_reasons, route_score, \
     route_threshold, features, model, prompt_version, cache, cache_key, grounded, \
     input_tokens, output_tokens, cost_usd, latency_ms, created_at_ms, question_embedding";

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
        if found < 2 {
            tx.execute_batch(MIGRATE_V1_TO_V2).map_err(unavailable)?;
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

/// An embedding as stored: its values as little-endian `f32`s, 4 bytes each.
fn embedding_to_blob(embedding: &[f32]) -> Vec<u8> {
    embedding.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A stored embedding back into its values.
fn embedding_from_blob(blob: &[u8]) -> Result<Vec<f32>, FeedbackError> {
    let (values, rest) = blob.as_chunks::<4>();
    if !rest.is_empty() {
        return Err(corrupt(format!(
            "question_embedding of {} bytes is not a whole number of f32s",
            blob.len()
        )));
    }
    Ok(values.iter().map(|b| f32::from_le_bytes(*b)).collect())
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
        question_embedding: row
            .get_ref(18)
            .map_err(get_err)?
            .as_blob_or_null()
            .map_err(|e| corrupt(format!("question_embedding: {e}")))?
            .map(embedding_from_blob)
            .transpose()?,
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
        let embedding = r.question_embedding.as_deref().map(embedding_to_blob);
        self.run(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO answers ({RECORD_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                     ?16, ?17, ?18, ?19) ON CONFLICT (tenant, query_id) DO NOTHING"
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
                    embedding,
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
                let rating: String = row.get(19).map_err(|e| corrupt(e.to_string()))?;
                out.push((read_record(row)?, parse_rating(&rating)?));
            }
            Ok(out)
        })
        .await
    }

    async fn question_embeddings(
        &self,
        tenant: &str,
        query: &EmbeddingQuery,
    ) -> Result<Vec<QuestionEmbedding>, FeedbackError> {
        let limit = check_embedding_query(tenant, query)?;
        if limit == 0 || query.to_ms <= query.from_ms {
            return Ok(Vec::new());
        }
        let (tenant, q) = (tenant.to_owned(), query.clone());
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(EMBEDDINGS_QUERY).map_err(unavailable)?;
            let mut rows = stmt
                .query(params![tenant, q.from_ms, q.to_ms, q.domain, limit])
                .map_err(unavailable)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(unavailable)? {
                let get_err = |e: rusqlite::Error| corrupt(e.to_string());
                let blob = row
                    .get_ref(2)
                    .map_err(get_err)?
                    .as_blob()
                    .map_err(|e| corrupt(format!("question_embedding: {e}")))?;
                out.push(QuestionEmbedding {
                    domain: row.get(0).map_err(get_err)?,
                    created_at_ms: row.get(1).map_err(get_err)?,
                    embedding: embedding_from_blob(blob)?,
                });
            }
            Ok(out)
        })
        .await
    }
}

/// The embedding window, newest first; `answers_embedded` serves it (the partial index's
/// condition is repeated word for word, so SQLite knows it may use it).
const EMBEDDINGS_QUERY: &str = "SELECT domain, created_at_ms, question_embedding FROM answers \
     WHERE tenant = ?1 AND question_embedding IS NOT NULL \
     AND created_at_ms >= ?2 AND created_at_ms < ?3 AND (?4 IS NULL OR domain = ?4) \
     ORDER BY created_at_ms DESC, query_id DESC LIMIT ?5";

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

    /// A file as version 1 of this store left it: the v1 table, one rated answer, one not.
    fn write_v1_database(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        for (query_id, rating) in [("old-1", Some("down")), ("old-2", None)] {
            conn.execute(
                "INSERT INTO answers (query_id, tenant, domain, tier, tier_reasons, route_score, \
                 route_threshold, features, model, prompt_version, cache, cache_key, grounded, \
                 input_tokens, output_tokens, cost_usd, latency_ms, created_at_ms, rating) \
                 VALUES (?1, 'acme', 'hr', 'light', '[\"short\"]', 1.5, 2.0, '{\"words\":7.0}', \
                 'm', 'v1', 'miss', NULL, 1, 10, 20, 0.25, 30, 1000, ?2)",
                params![query_id, rating],
            )
            .unwrap();
        }
        conn.pragma_update(None, "user_version", 1).unwrap();
    }

    #[tokio::test]
    async fn a_version_1_file_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feedback.db");
        write_v1_database(&path);

        let store = SqliteFeedbackStore::open(&path).unwrap();
        // The old rows read back whole, without an embedding.
        let rated = store.rated_answers("acme").await.unwrap();
        assert_eq!(rated.len(), 1);
        let (old, rating) = &rated[0];
        assert_eq!((old.query_id.as_str(), *rating), ("old-1", Rating::Down));
        assert_eq!(old.tier_reasons, ["short"]);
        assert_eq!(old.features["words"], 7.0);
        assert_eq!(old.question_embedding, None);
        let old_2 = store
            .record_feedback(&Feedback {
                query_id: "old-2".into(),
                tenant: "acme".into(),
                rating: Rating::Up,
                comment: None,
            })
            .await
            .unwrap();
        assert_eq!(
            (old_2.created_at_ms, old_2.question_embedding),
            (1000, None)
        );
        let window = EmbeddingQuery {
            domain: None,
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 10,
        };
        assert!(
            store
                .question_embeddings("acme", &window)
                .await
                .unwrap()
                .is_empty()
        );

        // New answers keep theirs, next to the old ones.
        let new = AnswerRecord {
            query_id: "new-1".into(),
            created_at_ms: 2000,
            question_embedding: Some(vec![0.5, -1.0]),
            ..old.clone()
        };
        store.record_answer(&new).await.unwrap();
        let got = store.question_embeddings("acme", &window).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].created_at_ms, got[0].embedding.as_slice()),
            (2000, [0.5, -1.0].as_slice())
        );
        assert_eq!(store.summary("acme").await.unwrap().answers, 3);
        drop(store);

        // The migration is recorded, so reopening does not run it again (it would fail).
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(conn);
        let again = SqliteFeedbackStore::open(&path).unwrap();
        assert_eq!(again.summary("acme").await.unwrap().answers, 3);
    }

    #[test]
    fn the_embedding_window_is_read_through_its_index_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteFeedbackStore::open(&dir.path().join("feedback.db")).unwrap();
        let conn = store.conn.lock();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {EMBEDDINGS_QUERY}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["acme", 0, 1, "hr", 10], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("answers_embedded"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "the rows are sorted: {plan}");
    }

    #[test]
    fn embeddings_round_trip_through_blobs_exactly() {
        let values = [
            0.0,
            -0.0,
            1.0 / 3.0,
            f32::MIN_POSITIVE,
            f32::from_bits(1),
            f32::MAX,
            -1e-7,
        ];
        let blob = embedding_to_blob(&values);
        assert_eq!(blob.len(), 4 * values.len());
        assert_eq!(&blob[8..12], (1.0f32 / 3.0).to_le_bytes());
        let back = embedding_from_blob(&blob).unwrap();
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));
        let err = embedding_from_blob(&blob[..5]).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
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
