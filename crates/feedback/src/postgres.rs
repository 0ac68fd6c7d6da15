//! The cluster backend: answers and their ratings in PostgreSQL, through `tokio-postgres`
//! (no TLS: the database is reached inside the cluster network; `sslmode=require` fails).
//!
//! Lazy, like every cluster backend here: [`PostgresFeedbackStore::connect`] only parses the
//! URL; the first call connects, creates the schema and table if they are missing and migrates
//! an older table in place (under an advisory lock, so replicas starting together do not race).
//! A connection that breaks or a call that hangs past [`CALL_TIMEOUT`] is dropped, and the next
//! call connects anew. Each statement is sent with its parameter types (`query_typed`): one
//! round trip, no prepare.
//!
//! The table mirrors the SQLite one: one row per (tenant, query id), the latest rating on it;
//! `tier_reasons` is a `TEXT[]` and `features` a `JSONB` object, so operators can query them.
//! `question_embedding` is a `REAL[]` rather than an opaque `BYTEA`: the same 4 bytes a value
//! (sent in binary, so exact), but typed, so operators can look at it in SQL
//! (`array_length(question_embedding, 1)`) and it casts straight to pgvector's `vector`.
//!
//! Schema versions, kept in the `feedback_schema` table beside `answers`: 1, the table (which
//! kept no version: an `answers` table without `feedback_schema` is version 1); 2,
//! `question_embedding` and the index that serves the embedding window. Each step is
//! additive, so replicas of the previous release keep working on a migrated table.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::Severity;
use tokio_postgres::types::{Json, ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Row};

use crate::{
    AnswerRecord, EmbeddingQuery, Feedback, FeedbackError, FeedbackStore, FeedbackSummary,
    GroupCounts, QuestionEmbedding, Rating, check_embedding_query, check_feedback, check_id,
    check_record, corrupt, from_db, latency_to_db, parse_rating,
};

/// The schema this code writes, kept in the `feedback_schema` table.
const SCHEMA_VERSION: i32 = 2;

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a call may take, connecting included; past it the connection is dropped.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The schema used unless [`PostgresFeedbackStore::with_schema`] names another.
pub const DEFAULT_SCHEMA: &str = "public";

/// The record's columns, in the order [`read_record`] reads them.
const RECORD_COLUMNS: &str = "query_id, tenant, domain, tier, tier_reasons, route_score, \
     route_threshold, features, model, prompt_version, cache, cache_key, grounded, \
     input_tokens, output_tokens, cost_usd, latency_ms, created_at_ms, question_embedding";

/// Answers and feedback in PostgreSQL; built without network I/O.
pub struct PostgresFeedbackStore {
    config: Config,
    /// The TLS client, for `sslmode=require`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    schema: String,
    client: Mutex<Option<Arc<Client>>>,
}

impl std::fmt::Debug for PostgresFeedbackStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Config`'s own Debug hides the password.
        f.debug_struct("PostgresFeedbackStore")
            .field("config", &self.config)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> FeedbackError {
    FeedbackError::Unavailable(e.to_string())
}

/// The server's own message when there is one (`Display` alone says only "db error"),
/// else the error and its cause.
fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match (e.as_db_error(), e.source()) {
        (Some(db), _) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// Whether `e` means the session is gone (closed, a socket error, or ended by the server: a
/// restart, a failover, an administrator), so the call may be retried on a new connection.
fn session_lost(e: &tokio_postgres::Error, client: &Client) -> bool {
    use std::error::Error as _;
    e.is_closed()
        || client.is_closed()
        || e.source().is_some_and(|cause| cause.is::<std::io::Error>())
        || e.as_db_error().is_some_and(|db| {
            matches!(
                db.parsed_severity(),
                Some(Severity::Fatal | Severity::Panic)
            )
        })
}

/// Drives a connection until it closes.
fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "feedback: PostgreSQL connection closed");
        }
    });
}

fn tls_connector(
    roots: rustls::RootCertStore,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, FeedbackError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FeedbackError::Invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The system's CA certificates.
fn system_roots() -> Result<rustls::RootCertStore, FeedbackError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(FeedbackError::Invalid(format!(
            "no system CA certificate could be read: {:?}",
            found.errors
        )));
    }
    Ok(roots)
}

/// The CA certificates in a PEM file.
fn roots_from(ca_file: &Path) -> Result<rustls::RootCertStore, FeedbackError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let invalid = |e: String| FeedbackError::Invalid(format!("CA file {}: {e}", ca_file.display()));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| invalid(e.to_string()))? {
        roots
            .add(cert.map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no certificate in it".into()));
    }
    Ok(roots)
}

impl PostgresFeedbackStore {
    /// A store for the database at `url` (`postgres://user:password@host:port/db?...` or
    /// `host=... user=...`), in the `public` schema. Parses only: nothing is connected
    /// until the first call, so a service starts while PostgreSQL is down.
    pub fn connect(url: &str) -> Result<Self, FeedbackError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| FeedbackError::Invalid(format!("PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("rag-feedback");
        }
        // Without system roots, `trusting` must name a CA file (or the first use says so).
        let tls = match config.get_ssl_mode() {
            SslMode::Require => system_roots().ok().map(tls_connector).transpose()?,
            _ => None,
        };
        Ok(Self {
            config,
            tls,
            schema: DEFAULT_SCHEMA.to_owned(),
            client: Mutex::new(None),
        })
    }

    /// Verifies the server's certificate against the CA certificates in `ca_file` (PEM)
    /// instead of the system's; for a URL with `sslmode=require`.
    pub fn trusting(mut self, ca_file: &Path) -> Result<Self, FeedbackError> {
        if self.config.get_ssl_mode() != SslMode::Require {
            return Err(FeedbackError::Invalid(
                "a CA file needs sslmode=require in the PostgreSQL URL".into(),
            ));
        }
        self.tls = Some(tls_connector(roots_from(ca_file)?)?);
        Ok(self)
    }

    /// Keeps the table in `schema` (created on first use if missing), so that deployments or
    /// tests can share a database without sharing rows. A lower-case SQL identifier:
    /// `[a-z_][a-z0-9_]*`, at most 63 bytes.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, FeedbackError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(FeedbackError::Invalid(format!(
                "schema {schema:?} is not a lower-case SQL identifier"
            )));
        }
        self.schema = schema.to_owned();
        Ok(self)
    }

    /// The schema that holds the table.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The table, qualified (the schema is a checked identifier, so quoting it is enough).
    fn table(&self) -> String {
        format!("\"{}\".answers", self.schema)
    }

    /// The one-row table that keeps the schema version, qualified.
    fn version_table(&self) -> String {
        format!("\"{}\".feedback_schema", self.schema)
    }

    /// The live client, connecting (and migrating) first if there is none or it broke.
    async fn client(&self) -> Result<Arc<Client>, FeedbackError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        *slot = None;
        let failed = |e: tokio_postgres::Error| {
            unavailable(format!("connecting to PostgreSQL: {}", describe(&e)))
        };
        let mut client = match &self.tls {
            Some(tls) => {
                let (client, connection) =
                    self.config.connect(tls.clone()).await.map_err(failed)?;
                spawn_connection(connection);
                client
            }
            None if self.config.get_ssl_mode() == SslMode::Require => {
                return Err(FeedbackError::Invalid(
                    "sslmode=require, but no system CA certificate could be read; set feedback.ca_file"
                        .into(),
                ));
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(failed)?;
                spawn_connection(connection);
                client
            }
        };
        self.migrate(&mut client).await?;
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Creates the schema (if missing; `public` is never created, it may not be ours to create),
    /// the table and its indexes, or migrates an older table to [`SCHEMA_VERSION`], under a
    /// transaction-scoped advisory lock. A table of a newer version is refused.
    async fn migrate(&self, client: &mut Client) -> Result<(), FeedbackError> {
        let migrating =
            |e: tokio_postgres::Error| unavailable(format!("creating tables: {}", describe(&e)));
        let tx = client.transaction().await.map_err(migrating)?;
        let lock_key = format!("rag-feedback:{}", self.schema);
        tx.execute_typed(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[(&lock_key, Type::TEXT)],
        )
        .await
        .map_err(migrating)?;
        let exists = tx
            .query_typed_opt(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                &[(&self.schema, Type::TEXT)],
            )
            .await
            .map_err(migrating)?
            .is_some();
        if !exists {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.schema))
                .await
                .map_err(migrating)?;
        }
        let (table, versions) = (self.table(), self.version_table());
        let tables: Vec<String> = tx
            .query_typed(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 \
                 AND tablename IN ('answers', 'feedback_schema')",
                &[(&self.schema, Type::TEXT)],
            )
            .await
            .map_err(migrating)?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(migrating)?;
        let found: i32 = if tables.iter().any(|t| t == "feedback_schema") {
            tx.query_typed_opt(&format!("SELECT max(version) FROM {versions}"), &[])
                .await
                .map_err(migrating)?
                .map(|row| row.try_get::<_, Option<i32>>(0))
                .transpose()
                .map_err(migrating)?
                .flatten()
                .unwrap_or(0)
        } else if tables.iter().any(|t| t == "answers") {
            1
        } else {
            0
        };
        if found > SCHEMA_VERSION {
            return Err(FeedbackError::Unavailable(format!(
                "PostgreSQL schema {:?} has feedback schema version {found}; this build reads \
                 up to {SCHEMA_VERSION}",
                self.schema
            )));
        }
        if found < 1 {
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    tenant          TEXT             NOT NULL,
                    query_id        TEXT             NOT NULL,
                    domain          TEXT             NOT NULL,
                    tier            TEXT             NOT NULL,
                    tier_reasons    TEXT[]           NOT NULL,
                    route_score     REAL             NOT NULL,
                    route_threshold REAL             NOT NULL,
                    features        JSONB            NOT NULL,
                    model           TEXT             NOT NULL,
                    prompt_version  TEXT             NOT NULL,
                    cache           TEXT             NOT NULL,
                    cache_key       TEXT,
                    grounded        BOOLEAN          NOT NULL,
                    input_tokens    BIGINT           NOT NULL,
                    output_tokens   BIGINT           NOT NULL,
                    cost_usd        DOUBLE PRECISION NOT NULL,
                    latency_ms      BIGINT           NOT NULL,
                    created_at_ms   BIGINT           NOT NULL,
                    rating          TEXT CHECK (rating IN ('up', 'down')),
                    comment         TEXT,
                    rated_at_ms     BIGINT,
                    PRIMARY KEY (tenant, query_id)
                );
                CREATE INDEX IF NOT EXISTS answers_rated
                    ON {table} (tenant, created_at_ms) WHERE rating IS NOT NULL;"
            ))
            .await
            .map_err(migrating)?;
        }
        if found < 2 {
            // A nullable column without a default: a catalogue change, no table rewrite. The
            // index serves the embedding window in its order (query_id breaks ties).
            tx.batch_execute(&format!(
                "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS question_embedding REAL[];
                CREATE INDEX IF NOT EXISTS answers_embedded
                    ON {table} (tenant, created_at_ms, query_id)
                    WHERE question_embedding IS NOT NULL;"
            ))
            .await
            .map_err(migrating)?;
        }
        if found < SCHEMA_VERSION {
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {versions} (version INTEGER NOT NULL);
                DELETE FROM {versions};
                INSERT INTO {versions} (version) VALUES ({SCHEMA_VERSION});"
            ))
            .await
            .map_err(migrating)?;
        }
        tx.commit().await.map_err(migrating)
    }

    /// Runs one call on the live client within [`CALL_TIMEOUT`]. A call that finds the session
    /// gone is run once more on a new connection (every call here is idempotent); a call that
    /// times out drops the connection (it may be half-open), so the next one reconnects.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, FeedbackError>
    where
        F: Fn(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let attempt = async {
            let mut retried = false;
            loop {
                let client = self.client().await?;
                match f(Arc::clone(&client)).await {
                    Ok(out) => return Ok(out),
                    Err(e) if session_lost(&e, &client) => {
                        self.forget(&client).await;
                        if retried {
                            return Err(unavailable(describe(&e)));
                        }
                        let error = describe(&e);
                        tracing::info!(%error, "feedback: PostgreSQL session lost; reconnecting");
                        retried = true;
                    }
                    Err(e) => return Err(unavailable(describe(&e))),
                }
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => {
                *self.client.lock().await = None;
                Err(FeedbackError::Unavailable(format!(
                    "PostgreSQL did not answer within {CALL_TIMEOUT:?}"
                )))
            }
        }
    }

    /// Drops `client` from the slot unless another call already replaced it.
    async fn forget(&self, client: &Arc<Client>) {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, client)) {
            *slot = None;
        }
    }
}

/// A record from a row that starts with [`RECORD_COLUMNS`].
fn read_record(row: &Row) -> Result<AnswerRecord, FeedbackError> {
    let get_err = |e: tokio_postgres::Error| corrupt(e.to_string());
    let features: Json<BTreeMap<String, f64>> = row.try_get(7).map_err(get_err)?;
    Ok(AnswerRecord {
        query_id: row.try_get(0).map_err(get_err)?,
        tenant: row.try_get(1).map_err(get_err)?,
        domain: row.try_get(2).map_err(get_err)?,
        tier: row.try_get(3).map_err(get_err)?,
        tier_reasons: row.try_get(4).map_err(get_err)?,
        route_score: row.try_get(5).map_err(get_err)?,
        route_threshold: row.try_get(6).map_err(get_err)?,
        features: features.0,
        model: row.try_get(8).map_err(get_err)?,
        prompt_version: row.try_get(9).map_err(get_err)?,
        cache: row.try_get(10).map_err(get_err)?,
        cache_key: row.try_get(11).map_err(get_err)?,
        grounded: row.try_get(12).map_err(get_err)?,
        input_tokens: from_db(row.try_get(13).map_err(get_err)?, "input_tokens")?,
        output_tokens: from_db(row.try_get(14).map_err(get_err)?, "output_tokens")?,
        cost_usd: row.try_get(15).map_err(get_err)?,
        latency_ms: from_db(row.try_get(16).map_err(get_err)?, "latency_ms")?,
        created_at_ms: row.try_get(17).map_err(get_err)?,
        question_embedding: row.try_get(18).map_err(get_err)?,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[async_trait]
impl FeedbackStore for PostgresFeedbackStore {
    async fn record_answer(&self, record: &AnswerRecord) -> Result<(), FeedbackError> {
        check_record(record)?;
        let r = record;
        let latency = latency_to_db(r.latency_ms)?;
        let (input, output) = (i64::from(r.input_tokens), i64::from(r.output_tokens));
        let features = Json(&r.features);
        let sql = format!(
            "INSERT INTO {} ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             ON CONFLICT (tenant, query_id) DO NOTHING",
            self.table()
        );
        let params: [(&(dyn ToSql + Sync), Type); 19] = [
            (&r.query_id, Type::TEXT),
            (&r.tenant, Type::TEXT),
            (&r.domain, Type::TEXT),
            (&r.tier, Type::TEXT),
            (&r.tier_reasons, Type::TEXT_ARRAY),
            (&r.route_score, Type::FLOAT4),
            (&r.route_threshold, Type::FLOAT4),
            (&features, Type::JSONB),
            (&r.model, Type::TEXT),
            (&r.prompt_version, Type::TEXT),
            (&r.cache, Type::TEXT),
            (&r.cache_key, Type::TEXT),
            (&r.grounded, Type::BOOL),
            (&input, Type::INT8),
            (&output, Type::INT8),
            (&r.cost_usd, Type::FLOAT8),
            (&latency, Type::INT8),
            (&r.created_at_ms, Type::INT8),
            (&r.question_embedding, Type::FLOAT4_ARRAY),
        ];
        let (sql, params) = (&sql, &params);
        self.call(|client| async move { client.execute_typed(sql, params).await })
            .await?;
        Ok(())
    }

    async fn record_feedback(&self, feedback: &Feedback) -> Result<AnswerRecord, FeedbackError> {
        let comment = check_feedback(feedback)?;
        let rating = feedback.rating.as_str();
        let now = now_ms();
        let sql = format!(
            "UPDATE {} SET rating = $3, comment = $4, rated_at_ms = $5 \
             WHERE tenant = $1 AND query_id = $2 RETURNING {RECORD_COLUMNS}",
            self.table()
        );
        let params: [(&(dyn ToSql + Sync), Type); 5] = [
            (&feedback.tenant, Type::TEXT),
            (&feedback.query_id, Type::TEXT),
            (&rating, Type::TEXT),
            (&comment, Type::TEXT),
            (&now, Type::INT8),
        ];
        let (sql, params) = (&sql, &params);
        let row = self
            .call(|client| async move { client.query_typed_opt(sql, params).await })
            .await?;
        match row {
            Some(row) => read_record(&row),
            None => Err(FeedbackError::UnknownQuery(feedback.query_id.clone())),
        }
    }

    async fn summary(&self, tenant: &str) -> Result<FeedbackSummary, FeedbackError> {
        check_id("tenant", tenant)?;
        let sql = format!(
            "SELECT tier, prompt_version, cache, model, COUNT(*), \
             COUNT(*) FILTER (WHERE rating = 'up'), COUNT(*) FILTER (WHERE rating = 'down') \
             FROM {} WHERE tenant = $1 GROUP BY tier, prompt_version, cache, model",
            self.table()
        );
        let sql = &sql;
        let rows = self
            .call(|client| async move { client.query_typed(sql, &[(&tenant, Type::TEXT)]).await })
            .await?;
        let get_err = |e: tokio_postgres::Error| corrupt(e.to_string());
        let groups = rows
            .iter()
            .map(|row| {
                Ok(GroupCounts {
                    tier: row.try_get(0).map_err(get_err)?,
                    prompt_version: row.try_get(1).map_err(get_err)?,
                    cache: row.try_get(2).map_err(get_err)?,
                    model: row.try_get(3).map_err(get_err)?,
                    answers: from_db(row.try_get(4).map_err(get_err)?, "count")?,
                    up: from_db(row.try_get(5).map_err(get_err)?, "count")?,
                    down: from_db(row.try_get(6).map_err(get_err)?, "count")?,
                })
            })
            .collect::<Result<Vec<_>, FeedbackError>>()?;
        Ok(FeedbackSummary::from_groups(&groups))
    }

    async fn rated_answers(
        &self,
        tenant: &str,
    ) -> Result<Vec<(AnswerRecord, Rating)>, FeedbackError> {
        check_id("tenant", tenant)?;
        let sql = format!(
            "SELECT {RECORD_COLUMNS}, rating FROM {} \
             WHERE tenant = $1 AND rating IS NOT NULL ORDER BY created_at_ms, query_id",
            self.table()
        );
        let sql = &sql;
        let rows = self
            .call(|client| async move { client.query_typed(sql, &[(&tenant, Type::TEXT)]).await })
            .await?;
        rows.iter()
            .map(|row| {
                let rating: &str = row.try_get(19).map_err(|e| corrupt(e.to_string()))?;
                Ok((read_record(row)?, parse_rating(rating)?))
            })
            .collect()
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
        let sql = format!(
            "SELECT domain, created_at_ms, question_embedding FROM {} \
             WHERE tenant = $1 AND question_embedding IS NOT NULL \
             AND created_at_ms >= $2 AND created_at_ms < $3 AND ($4::text IS NULL OR domain = $4) \
             ORDER BY created_at_ms DESC, query_id DESC LIMIT $5",
            self.table()
        );
        let params: [(&(dyn ToSql + Sync), Type); 5] = [
            (&tenant, Type::TEXT),
            (&query.from_ms, Type::INT8),
            (&query.to_ms, Type::INT8),
            (&query.domain, Type::TEXT),
            (&limit, Type::INT8),
        ];
        let (sql, params) = (&sql, &params);
        let rows = self
            .call(|client| async move { client.query_typed(sql, params).await })
            .await?;
        let get_err = |e: tokio_postgres::Error| corrupt(e.to_string());
        rows.iter()
            .map(|row| {
                Ok(QuestionEmbedding {
                    domain: row.try_get(0).map_err(get_err)?,
                    created_at_ms: row.try_get(1).map_err(get_err)?,
                    embedding: row.try_get(2).map_err(get_err)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn connect_parses_only() {
        let store = PostgresFeedbackStore::connect("postgres://u:secret@db.invalid:5432/rag")
            .unwrap()
            .with_schema("tenant_feedback_1")
            .unwrap();
        assert_eq!(store.schema(), "tenant_feedback_1");
        let shown = format!("{store:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(matches!(
            PostgresFeedbackStore::connect("postgres://[bad"),
            Err(FeedbackError::Invalid(_))
        ));
    }

    #[test]
    fn schemas_are_plain_identifiers() {
        for bad in ["", "Public", "1abc", "a-b", "a\"b", &"a".repeat(64)] {
            let store = PostgresFeedbackStore::connect("host=localhost").unwrap();
            assert!(
                matches!(store.with_schema(bad), Err(FeedbackError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreachable_database_is_unavailable() {
        // Port 1 on loopback: refused at once.
        let store =
            PostgresFeedbackStore::connect("postgres://postgres@127.0.0.1:1/postgres").unwrap();
        let err = store.summary("acme").await.unwrap_err();
        assert!(matches!(err, FeedbackError::Unavailable(_)), "{err}");
    }
}
