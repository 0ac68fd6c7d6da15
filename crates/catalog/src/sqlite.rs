//! The embedded default: the catalog in one SQLite file (WAL, `synchronous=FULL`).
//!
//! Tables: `documents` (one row per (tenant, id): what readers see and what is pending, plus
//! `last_version`, the highest version ever allocated), `document_versions` (content hash,
//! chunk and batch counts of every allocated version), `indexed_batches` (which batches of
//! which version the embedder finished) and `batch_profiles` (each batch's chunk count and mean
//! vector, a BLOB of little-endian `f32`s, kept while its version is or may become visible).
//! Every write is one `BEGIN IMMEDIATE` transaction, so handles in several processes can share
//! the file.
//!
//! Schema versions (`PRAGMA user_version`), each migrated in place on open: 1, the first three
//! tables; 2, `batch_profiles`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use rag_core::{DocumentId, now_ms};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{
    Catalog, CatalogError, DocumentProfile, DocumentRecord, DocumentState, NewUpload,
    VectorProfile, VersionDecision,
};

/// The schema this code writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Failure reasons longer than this are cut (they come from parsers and may be huge).
const MAX_ERROR_CHARS: usize = 2000;

const SCHEMA_V1: &str = "
CREATE TABLE documents (
    tenant          TEXT    NOT NULL,
    id              TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    object_key      TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    version         INTEGER NOT NULL DEFAULT 0,
    pending_version INTEGER,
    last_version    INTEGER NOT NULL DEFAULT 0,
    content_sha256  TEXT    NOT NULL DEFAULT '',
    chunk_count     INTEGER NOT NULL DEFAULT 0,
    size_bytes      INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX documents_by_created ON documents (tenant, created_at_ms);
CREATE TABLE document_versions (
    tenant         TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    content_sha256 TEXT    NOT NULL,
    size_bytes     INTEGER NOT NULL,
    chunk_count    INTEGER,
    batch_count    INTEGER,
    created_at_ms  INTEGER NOT NULL,
    indexed_at_ms  INTEGER,
    PRIMARY KEY (tenant, id, version)
) WITHOUT ROWID;
CREATE TABLE indexed_batches (
    tenant        TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    batch_index   INTEGER NOT NULL,
    indexed_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, id, version, batch_index)
) WITHOUT ROWID;
";

/// Version 2: batch profiles. A rowid table, unlike the others: its rows hold a mean of up to
/// 16 KiB, and SQLite advises against `WITHOUT ROWID` for rows that large.
const MIGRATE_V1_TO_V2: &str = "
CREATE TABLE batch_profiles (
    tenant         TEXT    NOT NULL,
    id             TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    batch_index    INTEGER NOT NULL,
    chunk_count    INTEGER NOT NULL,
    mean           BLOB    NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, id, version, batch_index)
);
";

const RECORD_COLUMNS: &str = "id, tenant, domain, title, object_key, state, version, \
     pending_version, content_sha256, chunk_count, size_bytes, error, created_at_ms, \
     updated_at_ms, last_version";

/// The document registry in a SQLite file. Several handles and processes may share one file.
pub struct SqliteCatalog {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCatalog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteCatalog {
    /// Opens (creating the file and schema if needed) the catalog at `path`.
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        // Opening a file that another process is opening or closing at that moment (creating
        // or removing the WAL) can be BUSY without SQLite's busy handler being asked: retry.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
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
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                attempt => break attempt?,
            }
        };

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(CatalogError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < 1 {
            tx.execute_batch(SCHEMA_V1)?;
        }
        if found < 2 {
            tx.execute_batch(MIGRATE_V1_TO_V2)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(Self {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` in one immediate (write-locking) transaction in a blocking task.
    async fn write<T, F>(&self, f: F) -> Result<T, CatalogError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, CatalogError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| CatalogError::Task(e.to_string()))?
    }

    /// Runs `f` on the connection (reads) in a blocking task.
    async fn read<T, F>(&self, f: F) -> Result<T, CatalogError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, CatalogError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || f(&conn.lock()))
            .await
            .map_err(|e| CatalogError::Task(e.to_string()))?
    }
}

fn to_db(n: u64, what: &str) -> Result<i64, CatalogError> {
    i64::try_from(n).map_err(|_| CatalogError::InvalidArgument(format!("{what} {n} is too large")))
}

fn from_db<T: TryFrom<i64>>(n: i64, what: &str) -> Result<T, CatalogError> {
    T::try_from(n).map_err(|_| CatalogError::Corrupt(format!("{what} {n} is out of range")))
}

fn check_tenant(tenant: &str) -> Result<(), CatalogError> {
    if tenant.is_empty() {
        return Err(CatalogError::InvalidArgument("the tenant is empty".into()));
    }
    Ok(())
}

fn check_upload(upload: &NewUpload) -> Result<(), CatalogError> {
    check_tenant(&upload.tenant)?;
    to_db(upload.size_bytes, "size")?;
    Ok(())
}

/// A mean as stored: its values as little-endian `f32`s, 4 bytes each.
fn mean_to_blob(mean: &[f32]) -> Vec<u8> {
    mean.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A stored mean back into its values.
fn mean_from_blob(blob: &[u8]) -> Result<Vec<f32>, CatalogError> {
    let (values, rest) = blob.as_chunks::<4>();
    if !rest.is_empty() {
        return Err(CatalogError::Corrupt(format!(
            "a batch profile's mean of {} bytes is not a whole number of f32s",
            blob.len()
        )));
    }
    Ok(values.iter().map(|b| f32::from_le_bytes(*b)).collect())
}

fn truncate(reason: &str) -> String {
    match reason.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason.to_owned(),
    }
}

/// A `documents` row as stored.
struct RawRecord {
    id: String,
    tenant: String,
    domain: String,
    title: String,
    object_key: String,
    state: String,
    version: i64,
    pending_version: Option<i64>,
    content_sha256: String,
    chunk_count: i64,
    size_bytes: i64,
    error: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
    last_version: i64,
}

impl RawRecord {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            tenant: row.get(1)?,
            domain: row.get(2)?,
            title: row.get(3)?,
            object_key: row.get(4)?,
            state: row.get(5)?,
            version: row.get(6)?,
            pending_version: row.get(7)?,
            content_sha256: row.get(8)?,
            chunk_count: row.get(9)?,
            size_bytes: row.get(10)?,
            error: row.get(11)?,
            created_at_ms: row.get(12)?,
            updated_at_ms: row.get(13)?,
            last_version: row.get(14)?,
        })
    }

    /// The record and the highest version ever allocated.
    fn decode(self) -> Result<(DocumentRecord, u64), CatalogError> {
        let id = self
            .id
            .parse::<DocumentId>()
            .map_err(|e| CatalogError::Corrupt(format!("document id {:?}: {e}", self.id)))?;
        let record = DocumentRecord {
            id,
            tenant: self.tenant,
            domain: self.domain,
            title: self.title,
            object_key: self.object_key,
            state: self.state.parse()?,
            version: from_db(self.version, "version")?,
            pending_version: self
                .pending_version
                .map(|v| from_db(v, "pending version"))
                .transpose()?,
            content_sha256: self.content_sha256,
            chunk_count: from_db(self.chunk_count, "chunk count")?,
            size_bytes: from_db(self.size_bytes, "size")?,
            error: self.error,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
        };
        Ok((record, from_db(self.last_version, "last version")?))
    }
}

fn load(
    conn: &Connection,
    tenant: &str,
    id: DocumentId,
) -> Result<Option<(DocumentRecord, u64)>, CatalogError> {
    let raw = conn
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM documents WHERE tenant = ?1 AND id = ?2"
        ))?
        .query_row(params![tenant, id.to_string()], RawRecord::from_row)
        .optional()?;
    raw.map(RawRecord::decode).transpose()
}

fn load_record(
    conn: &Connection,
    tenant: &str,
    id: DocumentId,
) -> Result<DocumentRecord, CatalogError> {
    load(conn, tenant, id)?
        .map(|(record, _)| record)
        .ok_or(CatalogError::NotFound { id })
}

/// The stored facts about one version.
struct VersionRow {
    content_sha256: String,
    chunk_count: Option<i64>,
}

fn load_version(
    conn: &Connection,
    tenant: &str,
    id: DocumentId,
    version: u64,
) -> Result<Option<VersionRow>, CatalogError> {
    Ok(conn
        .prepare_cached(
            "SELECT content_sha256, chunk_count FROM document_versions
              WHERE tenant = ?1 AND id = ?2 AND version = ?3",
        )?
        .query_row(
            params![tenant, id.to_string(), to_db(version, "version")?],
            |row| {
                Ok(VersionRow {
                    content_sha256: row.get(0)?,
                    chunk_count: row.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Writes every mutable field of `record` (and `last_version`) back.
fn store(
    conn: &Connection,
    record: &DocumentRecord,
    last_version: u64,
) -> Result<(), CatalogError> {
    conn.prepare_cached(
        "UPDATE documents
            SET domain = ?3, title = ?4, object_key = ?5, state = ?6, version = ?7,
                pending_version = ?8, last_version = ?9, content_sha256 = ?10, chunk_count = ?11,
                size_bytes = ?12, error = ?13, updated_at_ms = ?14
          WHERE tenant = ?1 AND id = ?2",
    )?
    .execute(params![
        record.tenant,
        record.id.to_string(),
        record.domain,
        record.title,
        record.object_key,
        record.state.as_str(),
        to_db(record.version, "version")?,
        record
            .pending_version
            .map(|v| to_db(v, "version"))
            .transpose()?,
        to_db(last_version, "version")?,
        record.content_sha256,
        record.chunk_count,
        to_db(record.size_bytes, "size")?,
        record.error,
        record.updated_at_ms,
    ])?;
    Ok(())
}

fn insert_new(
    conn: &Connection,
    upload: &NewUpload,
    state: DocumentState,
    now: i64,
) -> Result<(), CatalogError> {
    conn.prepare_cached(
        "INSERT INTO documents
            (tenant, id, domain, title, object_key, state, size_bytes, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        upload.tenant,
        upload.id.to_string(),
        upload.domain,
        upload.title,
        upload.object_key,
        state.as_str(),
        to_db(upload.size_bytes, "size")?,
        now,
    ])?;
    Ok(())
}

/// Takes the upload's descriptive fields; a document being or already deleted also loses its
/// visible version (its points are gone or going), so new content starts a fresh version.
fn apply_upload(record: &mut DocumentRecord, upload: &NewUpload, now: i64) {
    if record.state.is_gone() {
        record.version = 0;
        record.pending_version = None;
        record.content_sha256.clear();
        record.chunk_count = 0;
    }
    record.domain.clone_from(&upload.domain);
    record.title.clone_from(&upload.title);
    record.object_key.clone_from(&upload.object_key);
    record.size_bytes = upload.size_bytes;
    record.error = None;
    record.updated_at_ms = now;
}

fn begin_version_tx(
    conn: &Connection,
    upload: &NewUpload,
    sha: &str,
) -> Result<VersionDecision, CatalogError> {
    let now = now_ms();
    let (mut record, last_version) = match load(conn, &upload.tenant, upload.id)? {
        Some(found) => found,
        None => {
            insert_new(conn, upload, DocumentState::Processing, now)?;
            load(conn, &upload.tenant, upload.id)?
                .ok_or(CatalogError::NotFound { id: upload.id })?
        }
    };
    apply_upload(&mut record, upload, now);

    if let Some(pending) = record.pending_version {
        let same = load_version(conn, &upload.tenant, upload.id, pending)?
            .is_some_and(|v| v.content_sha256 == sha);
        if same {
            record.state = DocumentState::Processing;
            store(conn, &record, last_version)?;
            return Ok(VersionDecision::Ingest { version: pending });
        }
    } else if record.version > 0 && record.content_sha256 == sha {
        record.state = DocumentState::Indexed;
        store(conn, &record, last_version)?;
        return Ok(VersionDecision::Unchanged);
    }

    let version = last_version
        .max(record.version)
        .max(record.pending_version.unwrap_or(0))
        .checked_add(1)
        .ok_or_else(|| CatalogError::Corrupt("version counter overflow".into()))?;
    conn.prepare_cached(
        "INSERT INTO document_versions (tenant, id, version, content_sha256, size_bytes, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        upload.tenant,
        upload.id.to_string(),
        to_db(version, "version")?,
        sha,
        to_db(upload.size_bytes, "size")?,
        now,
    ])?;
    record.pending_version = Some(version);
    record.state = DocumentState::Processing;
    store(conn, &record, version)?;
    Ok(VersionDecision::Ingest { version })
}

fn record_batch_tx(
    conn: &Connection,
    tenant: &str,
    id: DocumentId,
    version: u64,
    batch_index: u32,
    batch_count: u32,
) -> Result<bool, CatalogError> {
    let Some((record, _)) = load(conn, tenant, id)? else {
        return Ok(false);
    };
    if record.state.is_gone() || record.pending_version != Some(version) {
        return Ok(false);
    }
    let db_version = to_db(version, "version")?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO indexed_batches (tenant, id, version, batch_index, indexed_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        tenant,
        id.to_string(),
        db_version,
        batch_index,
        now_ms()
    ])?;
    let done: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM indexed_batches
              WHERE tenant = ?1 AND id = ?2 AND version = ?3 AND batch_index < ?4",
        )?
        .query_row(
            params![tenant, id.to_string(), db_version, batch_count],
            |row| row.get(0),
        )?;
    Ok(done == i64::from(batch_count))
}

fn mark_indexed_tx(
    conn: &Connection,
    tenant: &str,
    id: DocumentId,
    version: u64,
) -> Result<(), CatalogError> {
    let (mut record, last_version) =
        load(conn, tenant, id)?.ok_or(CatalogError::NotFound { id })?;
    if record.state.is_gone() {
        return Ok(());
    }
    let row = load_version(conn, tenant, id, version)?
        .ok_or(CatalogError::UnknownVersion { id, version })?;
    if version <= record.version {
        return Ok(());
    }
    let now = now_ms();
    record.version = version;
    record.content_sha256 = row.content_sha256;
    record.chunk_count = from_db(row.chunk_count.unwrap_or(0), "chunk count")?;
    record.updated_at_ms = now;
    if record
        .pending_version
        .is_none_or(|pending| pending <= version)
    {
        record.pending_version = None;
        record.state = DocumentState::Indexed;
        record.error = None;
    }
    store(conn, &record, last_version)?;
    let db_version = to_db(version, "version")?;
    conn.prepare_cached(
        "UPDATE document_versions SET indexed_at_ms = ?4
          WHERE tenant = ?1 AND id = ?2 AND version = ?3",
    )?
    .execute(params![tenant, id.to_string(), db_version, now])?;
    // Batches of this and older versions are never asked about again.
    conn.prepare_cached(
        "DELETE FROM indexed_batches WHERE tenant = ?1 AND id = ?2 AND version <= ?3",
    )?
    .execute(params![tenant, id.to_string(), db_version])?;
    // Older versions can never become visible again: their profiles go.
    conn.prepare_cached(
        "DELETE FROM batch_profiles WHERE tenant = ?1 AND id = ?2 AND version < ?3",
    )?
    .execute(params![tenant, id.to_string(), db_version])?;
    Ok(())
}

/// Stores (or overwrites) a batch's profile if its version is or may become visible.
fn record_profile_tx(
    conn: &Connection,
    tenant: &str,
    id: DocumentId,
    version: u64,
    batch_index: u32,
    profile: &VectorProfile,
) -> Result<(), CatalogError> {
    let Some((record, _)) = load(conn, tenant, id)? else {
        return Ok(());
    };
    if record.state.is_gone() || version < record.version {
        return Ok(());
    }
    let db_version = to_db(version, "version")?;
    let batch_count: Option<Option<i64>> = conn
        .prepare_cached(
            "SELECT batch_count FROM document_versions
              WHERE tenant = ?1 AND id = ?2 AND version = ?3",
        )?
        .query_row(params![tenant, id.to_string(), db_version], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(batch_count) = batch_count else {
        // Never allocated: no such version can become visible.
        return Ok(());
    };
    if let Some(count) = batch_count
        && i64::from(batch_index) >= count
    {
        return Err(CatalogError::InvalidArgument(format!(
            "batch index {batch_index} is not below version {version}'s batch count {count}"
        )));
    }
    let blob = mean_to_blob(&profile.mean);
    let other: Option<i64> = conn
        .prepare_cached(
            "SELECT length(mean) FROM batch_profiles
              WHERE tenant = ?1 AND id = ?2 AND version = ?3 AND batch_index != ?4 LIMIT 1",
        )?
        .query_row(
            params![tenant, id.to_string(), db_version, batch_index],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(bytes) = other
        && usize::try_from(bytes).ok() != Some(blob.len())
    {
        return Err(CatalogError::InvalidArgument(format!(
            "batch {batch_index}'s mean has {} dimensions; version {version}'s other batches \
             have {}",
            profile.mean.len(),
            bytes / 4
        )));
    }
    conn.prepare_cached(
        "INSERT INTO batch_profiles
            (tenant, id, version, batch_index, chunk_count, mean, recorded_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant, id, version, batch_index) DO UPDATE
            SET chunk_count = excluded.chunk_count, mean = excluded.mean,
                recorded_at_ms = excluded.recorded_at_ms",
    )?
    .execute(params![
        tenant,
        id.to_string(),
        db_version,
        batch_index,
        profile.count,
        blob,
        now_ms()
    ])?;
    Ok(())
}

/// A document's profile as it is summed up from its batches' rows.
struct ProfileSum {
    profile: DocumentProfile,
    /// Σ count × mean, per dimension.
    weighted: Vec<f64>,
    latest_batch_ms: i64,
    indexed_at_ms: Option<i64>,
}

impl ProfileSum {
    fn add(&mut self, count: u32, mean: &[f32], recorded_at_ms: i64) -> Result<(), CatalogError> {
        if mean.len() != self.weighted.len() {
            return Err(CatalogError::Corrupt(format!(
                "document {} version {} has batch means of {} and {} dimensions",
                self.profile.id,
                self.profile.version,
                self.weighted.len(),
                mean.len()
            )));
        }
        let weight = f64::from(count);
        for (sum, value) in self.weighted.iter_mut().zip(mean) {
            *sum += weight * f64::from(*value);
        }
        self.profile.chunks += u64::from(count);
        self.latest_batch_ms = self.latest_batch_ms.max(recorded_at_ms);
        Ok(())
    }

    fn finish(mut self) -> DocumentProfile {
        // `chunks` ≥ 1: every batch counts at least one chunk.
        let total = self.profile.chunks.max(1) as f64;
        self.profile.mean = self.weighted.iter().map(|s| (s / total) as f32).collect();
        self.profile.indexed_at_ms = self.indexed_at_ms.unwrap_or(self.latest_batch_ms);
        self.profile
    }
}

/// The rows [`document_profiles_tx`] reads: each profiled batch of each visible version.
const PROFILE_ROWS: &str = "
SELECT d.id, d.domain, d.title, d.version, v.indexed_at_ms,
       p.chunk_count, p.mean, p.recorded_at_ms
  FROM documents d
  JOIN batch_profiles p ON p.tenant = d.tenant AND p.id = d.id AND p.version = d.version
  LEFT JOIN document_versions v ON v.tenant = d.tenant AND v.id = d.id AND v.version = d.version
 WHERE d.tenant = ?1 AND d.version > 0 AND d.state NOT IN ('deleting', 'deleted')
   AND (?2 IS NULL OR d.domain = ?2)
 ORDER BY d.id, p.batch_index";

fn document_profiles_tx(
    conn: &Connection,
    tenant: &str,
    domain: Option<&str>,
) -> Result<Vec<DocumentProfile>, CatalogError> {
    let mut stmt = conn.prepare_cached(PROFILE_ROWS)?;
    let mut rows = stmt.query(params![tenant, domain])?;
    let mut out = Vec::new();
    // Rows come grouped by document: one sum at a time, however many batches there are.
    let mut current: Option<ProfileSum> = None;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let version: u64 = from_db(row.get(3)?, "version")?;
        let count: u32 = from_db(row.get(5)?, "chunk count")?;
        let blob = row.get_ref(6)?.as_blob().map_err(|e| {
            CatalogError::Corrupt(format!("a batch profile's mean is not a BLOB: {e}"))
        })?;
        let mean = mean_from_blob(blob)?;
        let recorded_at_ms: i64 = row.get(7)?;
        let id = id
            .parse::<DocumentId>()
            .map_err(|e| CatalogError::Corrupt(format!("document id {id:?}: {e}")))?;
        if current.as_ref().is_none_or(|sum| sum.profile.id != id) {
            out.extend(current.take().map(ProfileSum::finish));
            current = Some(ProfileSum {
                profile: DocumentProfile {
                    id,
                    domain: row.get(1)?,
                    title: row.get(2)?,
                    version,
                    chunks: 0,
                    mean: Vec::new(),
                    indexed_at_ms: 0,
                },
                weighted: vec![0.0; mean.len()],
                latest_batch_ms: recorded_at_ms,
                indexed_at_ms: row.get(4)?,
            });
        }
        if let Some(sum) = current.as_mut() {
            sum.add(count, &mean, recorded_at_ms)?;
        }
    }
    out.extend(current.map(ProfileSum::finish));
    Ok(out)
}

#[async_trait]
impl Catalog for SqliteCatalog {
    async fn register_upload(&self, upload: NewUpload) -> Result<DocumentRecord, CatalogError> {
        check_upload(&upload)?;
        self.write(move |conn| {
            let now = now_ms();
            match load(conn, &upload.tenant, upload.id)? {
                None => insert_new(conn, &upload, DocumentState::Queued, now)?,
                Some((mut record, last_version)) => {
                    apply_upload(&mut record, &upload, now);
                    record.state = DocumentState::Queued;
                    store(conn, &record, last_version)?;
                }
            }
            load_record(conn, &upload.tenant, upload.id)
        })
        .await
    }

    async fn get(
        &self,
        tenant: &str,
        id: DocumentId,
    ) -> Result<Option<DocumentRecord>, CatalogError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| Ok(load(conn, &tenant, id)?.map(|(record, _)| record)))
            .await
    }

    async fn list(
        &self,
        tenant: &str,
        domain: Option<&str>,
    ) -> Result<Vec<DocumentRecord>, CatalogError> {
        let tenant = tenant.to_owned();
        let domain = domain.map(str::to_owned);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM documents
                  WHERE tenant = ?1 AND state != 'deleted' AND (?2 IS NULL OR domain = ?2)
                  ORDER BY created_at_ms DESC, id"
            ))?;
            let rows = stmt.query_map(params![tenant, domain], RawRecord::from_row)?;
            rows.map(|raw| Ok(raw?.decode()?.0)).collect()
        })
        .await
    }

    async fn begin_version(
        &self,
        upload: NewUpload,
        content_sha256: &str,
    ) -> Result<VersionDecision, CatalogError> {
        check_upload(&upload)?;
        if content_sha256.is_empty() {
            return Err(CatalogError::InvalidArgument(
                "the content hash is empty".into(),
            ));
        }
        let sha = content_sha256.to_owned();
        self.write(move |conn| begin_version_tx(conn, &upload, &sha))
            .await
    }

    async fn set_chunking(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
        chunk_count: u32,
        batch_count: u32,
    ) -> Result<(), CatalogError> {
        let tenant = tenant.to_owned();
        let db_version = to_db(version, "version")?;
        self.write(move |conn| {
            load_record(conn, &tenant, id)?;
            let changed = conn
                .prepare_cached(
                    "UPDATE document_versions SET chunk_count = ?4, batch_count = ?5
                      WHERE tenant = ?1 AND id = ?2 AND version = ?3",
                )?
                .execute(params![
                    tenant,
                    id.to_string(),
                    db_version,
                    chunk_count,
                    batch_count
                ])?;
            if changed == 0 {
                return Err(CatalogError::UnknownVersion { id, version });
            }
            conn.prepare_cached(
                "UPDATE documents SET updated_at_ms = ?3 WHERE tenant = ?1 AND id = ?2",
            )?
            .execute(params![tenant, id.to_string(), now_ms()])?;
            Ok(())
        })
        .await
    }

    async fn record_batch_indexed(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
        batch_index: u32,
        batch_count: u32,
    ) -> Result<bool, CatalogError> {
        if batch_index >= batch_count {
            return Err(CatalogError::InvalidArgument(format!(
                "batch index {batch_index} is not below the batch count {batch_count}"
            )));
        }
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            record_batch_tx(conn, &tenant, id, version, batch_index, batch_count)
        })
        .await
    }

    async fn is_stale(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
    ) -> Result<bool, CatalogError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            Ok(match load(conn, &tenant, id)? {
                None => true,
                Some((record, _)) => {
                    record.state.is_gone()
                        || version < record.version
                        || record
                            .pending_version
                            .is_some_and(|pending| version < pending)
                }
            })
        })
        .await
    }

    async fn mark_indexed(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
    ) -> Result<(), CatalogError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| mark_indexed_tx(conn, &tenant, id, version))
            .await
    }

    async fn mark_failed(
        &self,
        tenant: &str,
        id: DocumentId,
        reason: &str,
    ) -> Result<(), CatalogError> {
        let tenant = tenant.to_owned();
        let reason = truncate(reason);
        self.write(move |conn| {
            let (mut record, last_version) =
                load(conn, &tenant, id)?.ok_or(CatalogError::NotFound { id })?;
            if record.state.is_gone() {
                return Ok(());
            }
            record.state = DocumentState::Failed;
            record.error = Some(reason);
            record.updated_at_ms = now_ms();
            store(conn, &record, last_version)
        })
        .await
    }

    async fn mark_deleting(
        &self,
        tenant: &str,
        id: DocumentId,
    ) -> Result<Option<DocumentRecord>, CatalogError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let Some((mut record, last_version)) = load(conn, &tenant, id)? else {
                return Ok(None);
            };
            record.state = DocumentState::Deleting;
            record.error = None;
            record.updated_at_ms = now_ms();
            store(conn, &record, last_version)?;
            Ok(Some(record))
        })
        .await
    }

    async fn mark_deleted(&self, tenant: &str, id: DocumentId) -> Result<(), CatalogError> {
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let Some((mut record, last_version)) = load(conn, &tenant, id)? else {
                return Ok(());
            };
            if record.state != DocumentState::Deleting {
                return Ok(());
            }
            record.state = DocumentState::Deleted;
            record.version = 0;
            record.pending_version = None;
            record.content_sha256.clear();
            record.chunk_count = 0;
            record.error = None;
            record.updated_at_ms = now_ms();
            store(conn, &record, last_version)?;
            conn.prepare_cached("DELETE FROM indexed_batches WHERE tenant = ?1 AND id = ?2")?
                .execute(params![tenant, id.to_string()])?;
            conn.prepare_cached("DELETE FROM batch_profiles WHERE tenant = ?1 AND id = ?2")?
                .execute(params![tenant, id.to_string()])?;
            Ok(())
        })
        .await
    }

    async fn visible_versions(
        &self,
        tenant: &str,
        ids: &[DocumentId],
    ) -> Result<BTreeMap<DocumentId, u64>, CatalogError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let tenant = tenant.to_owned();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.read(move |conn| {
            let placeholders = vec!["?"; ids.len()].join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT id, version FROM documents
                  WHERE tenant = ? AND version > 0 AND state NOT IN ('deleting', 'deleted')
                    AND id IN ({placeholders})"
            ))?;
            let values = std::iter::once(&tenant).chain(ids.iter());
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut visible = BTreeMap::new();
            for row in rows {
                let (id, version) = row?;
                if let (Ok(id), Ok(version)) = (id.parse::<DocumentId>(), u64::try_from(version)) {
                    visible.insert(id, version);
                }
            }
            Ok(visible)
        })
        .await
    }

    async fn counts(&self, tenant: &str) -> Result<BTreeMap<String, u64>, CatalogError> {
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            let mut counts: BTreeMap<String, u64> = DocumentState::ALL
                .into_iter()
                .map(|state| (state.as_str().to_owned(), 0))
                .collect();
            let mut stmt = conn.prepare_cached(
                "SELECT state, COUNT(*) FROM documents WHERE tenant = ?1 GROUP BY state",
            )?;
            let rows = stmt.query_map(params![tenant], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (state, n) = row?;
                let state: DocumentState = state.parse()?;
                counts.insert(state.as_str().to_owned(), from_db(n, "count")?);
            }
            Ok(counts)
        })
        .await
    }

    async fn record_batch_profile(
        &self,
        tenant: &str,
        id: DocumentId,
        version: u64,
        batch_index: u32,
        profile: &VectorProfile,
    ) -> Result<(), CatalogError> {
        check_tenant(tenant)?;
        profile.validate()?;
        let tenant = tenant.to_owned();
        let profile = profile.clone();
        self.write(move |conn| record_profile_tx(conn, &tenant, id, version, batch_index, &profile))
            .await
    }

    async fn document_profiles(
        &self,
        tenant: &str,
        domain: Option<&str>,
    ) -> Result<Vec<DocumentProfile>, CatalogError> {
        let tenant = tenant.to_owned();
        let domain = domain.map(str::to_owned);
        self.read(move |conn| document_profiles_tx(conn, &tenant, domain.as_deref()))
            .await
    }

    async fn health(&self) -> Result<(), CatalogError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
