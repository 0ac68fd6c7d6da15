//! [`TantivyIndex`]: the tantivy implementation of [`KeywordIndex`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rag_core::{ChunkRecord, DocumentId, SearchFilter};
use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::columnar::Column;
use tantivy::directory::MmapDirectory;
use tantivy::directory::error::LockError;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, NumericOptions, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, SegmentReader,
    TantivyDocument, TantivyError, Term,
};
use uuid::Uuid;

use crate::analysis::{ANALYZER_NAME, QueryPlan, TextFields, english_analyzer};
use crate::{KeywordHit, KeywordIndex, KeywordIndexError, KeywordMatch};

/// Memory budget of the one writer.
const WRITER_MEMORY_BYTES: usize = 50_000_000;
/// Indexing threads of the writer. Ingest commits small batches (tens of chunks); with more
/// threads every commit writes one tiny segment per thread and the merges that follow cost
/// more than the parallel indexing saves (measured: 5,000 chunks in batches of 64 took 9 s
/// with one thread and 12 s with two).
const WRITER_THREADS: usize = 1;
/// A search never asks tantivy for more than this many hits.
const MAX_LIMIT: usize = 10_000;
/// How long `open` retries a busy writer lock (another handle of this process being dropped
/// on another thread right now) before giving up.
const LOCK_RETRY_FOR: Duration = Duration::from_secs(5);

/// Field names of the schema.
mod names {
    pub const ID: &str = "id";
    pub const DOCUMENT_ID: &str = "document_id";
    pub const TENANT: &str = "tenant";
    pub const DOMAIN: &str = "domain";
    pub const VERSION: &str = "version";
    pub const TITLE: &str = "title";
    pub const SECTION: &str = "section";
    pub const BODY: &str = "body";
    pub const RECORD: &str = "record";
    /// The point id and the document id as fast u64 halves (high, low): a search reads its
    /// candidates' ids from these columns instead of loading their stored records.
    pub const ID_HI: &str = "id_hi";
    pub const ID_LO: &str = "id_lo";
    pub const DOCUMENT_HI: &str = "document_hi";
    pub const DOCUMENT_LO: &str = "document_lo";
}

#[derive(Clone, Copy, Debug)]
struct Fields {
    id: Field,
    document_id: Field,
    tenant: Field,
    domain: Field,
    version: Field,
    text: TextFields,
    /// The chunk's record as JSON: a stored text field, or in an index made before that, a
    /// stored bytes field (tantivy reads stored bytes one at a time, text in one copy: for
    /// the 100 records of a top-100 search that was ~7% of its CPU time).
    record: Field,
    record_is_text: bool,
    /// `None` for an index made before the fast id columns existed: its searches read the
    /// ids from the stored records (slower, same results).
    fast_ids: Option<FastIds>,
}

/// A search's top documents: (score, address), best first.
type TopHits = Vec<(f32, DocAddress)>;

/// The fast id columns (see [`names::ID_HI`]).
#[derive(Clone, Copy, Debug)]
struct FastIds {
    id_hi: Field,
    id_lo: Field,
    document_hi: Field,
    document_lo: Field,
}

/// One segment's fast id columns, opened once per search.
struct IdColumns {
    id_hi: Column<u64>,
    id_lo: Column<u64>,
    document_hi: Column<u64>,
    document_lo: Column<u64>,
    version: Column<u64>,
}

impl IdColumns {
    fn open(segment: &SegmentReader) -> Result<Self, KeywordIndexError> {
        let fast = segment.fast_fields();
        Ok(Self {
            id_hi: fast.u64(names::ID_HI)?,
            id_lo: fast.u64(names::ID_LO)?,
            document_hi: fast.u64(names::DOCUMENT_HI)?,
            document_lo: fast.u64(names::DOCUMENT_LO)?,
            version: fast.u64(names::VERSION)?,
        })
    }

    /// The ids of document `doc` of the segment; `None` when a column has no value for it.
    fn read(&self, doc: u32, score: f32) -> Option<KeywordMatch> {
        let id = Uuid::from_u64_pair(self.id_hi.first(doc)?, self.id_lo.first(doc)?);
        let document =
            Uuid::from_u64_pair(self.document_hi.first(doc)?, self.document_lo.first(doc)?);
        Some(KeywordMatch {
            id,
            document_id: document.hyphenated().to_string().parse().ok()?,
            version: self.version.first(doc)?,
            score,
        })
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        id: b.add_text_field(names::ID, STRING | STORED),
        document_id: b.add_text_field(names::DOCUMENT_ID, STRING),
        tenant: b.add_text_field(names::TENANT, STRING),
        domain: b.add_text_field(names::DOMAIN, STRING),
        version: b.add_u64_field(names::VERSION, NumericOptions::from(INDEXED).set_fast()),
        text: TextFields {
            title: b.add_text_field(names::TITLE, text.clone()),
            section: b.add_text_field(names::SECTION, text.clone()),
            body: b.add_text_field(names::BODY, text),
        },
        record: b.add_text_field(names::RECORD, STORED),
        record_is_text: true,
        fast_ids: Some(FastIds {
            id_hi: b.add_u64_field(names::ID_HI, FAST),
            id_lo: b.add_u64_field(names::ID_LO, FAST),
            document_hi: b.add_u64_field(names::DOCUMENT_HI, FAST),
            document_lo: b.add_u64_field(names::DOCUMENT_LO, FAST),
        }),
    };
    (b.build(), fields)
}

/// Creates, in `dir`, an empty index with the schema from before the fast id columns and
/// the text records (records as stored bytes), as an older version made it.
#[cfg(test)]
pub(crate) fn create_legacy(dir: &Path) -> Result<(), KeywordIndexError> {
    let (schema, _) = schema();
    let mut b = Schema::builder();
    for (_, entry) in schema.fields() {
        if entry.name() == names::RECORD {
            b.add_bytes_field(names::RECORD, STORED);
        } else if !entry.name().ends_with("_hi") && !entry.name().ends_with("_lo") {
            b.add_field(entry.clone());
        }
    }
    let directory = MmapDirectory::open(dir).map_err(TantivyError::from)?;
    Index::create(directory, b.build(), tantivy::IndexSettings::default())?;
    Ok(())
}

/// The fields of an existing index's schema, found by name: the current schema, or the one
/// before the fast id columns (whose searches then read ids from the stored records).
fn fields_of(schema: &Schema) -> Result<Fields, KeywordIndexError> {
    let field = |name: &str| schema.get_field(name).map_err(KeywordIndexError::from);
    let fast = |name: &str| schema.get_field(name).ok();
    let fast_ids = match (
        fast(names::ID_HI),
        fast(names::ID_LO),
        fast(names::DOCUMENT_HI),
        fast(names::DOCUMENT_LO),
    ) {
        (Some(id_hi), Some(id_lo), Some(document_hi), Some(document_lo)) => Some(FastIds {
            id_hi,
            id_lo,
            document_hi,
            document_lo,
        }),
        _ => None,
    };
    let record = field(names::RECORD)?;
    Ok(Fields {
        id: field(names::ID)?,
        document_id: field(names::DOCUMENT_ID)?,
        tenant: field(names::TENANT)?,
        domain: field(names::DOMAIN)?,
        version: field(names::VERSION)?,
        text: TextFields {
            title: field(names::TITLE)?,
            section: field(names::SECTION)?,
            body: field(names::BODY)?,
        },
        record,
        record_is_text: schema.get_field_entry(record).field_type().value_type()
            == tantivy::schema::Type::Str,
        fast_ids,
    })
}

/// Open handles by canonical directory, so one process has one writer per directory.
static REGISTRY: LazyLock<Mutex<HashMap<PathBuf, Weak<TantivyIndex>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// A tantivy index on disk with its one writer.
///
/// Writes (upsert, delete) are serialised through the writer's mutex, commit, and reload the
/// reader before returning. Searches take a searcher without locking. All tantivy work runs
/// in `spawn_blocking`.
pub struct TantivyIndex {
    /// Itself, so an operation can move an `Arc` into its blocking task (the handle, and
    /// hence the writer lock, lives until every running operation has finished).
    me: Weak<TantivyIndex>,
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    /// `None` for a handle opened for reading only.
    writer: Option<Mutex<IndexWriter>>,
    fields: Fields,
    analyzer: TextAnalyzer,
}

impl fmt::Debug for TantivyIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TantivyIndex")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl TantivyIndex {
    /// Opens the index in `dir`, creating the directory and the index when missing.
    ///
    /// Within one process every caller gets the same handle while any is alive; once all are
    /// dropped the next `open` reads the index from disk again. Fails with
    /// [`KeywordIndexError::Locked`] when another process holds the writer lock.
    pub fn open(dir: &Path) -> Result<Arc<Self>, KeywordIndexError> {
        let io = |source| KeywordIndexError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let dir = dir.canonicalize().map_err(io)?;

        let mut registry = REGISTRY.lock();
        registry.retain(|_, handle| handle.strong_count() > 0);
        if let Some(existing) = registry.get(&dir).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        let opened = Self::open_uncached(&dir)?;
        registry.insert(dir, Arc::downgrade(&opened));
        Ok(opened)
    }

    /// Opens the index in `dir` for searching only, for a process that shares the directory
    /// with the one that writes it (the retriever beside the embedder on one machine). Takes
    /// no writer lock; the reader follows the writer's commits within about a second
    /// (tantivy watches `meta.json`). Within one process that already has a writing handle,
    /// that handle is returned, which sees its commits at once. Writes fail with
    /// [`KeywordIndexError::ReadOnly`]. Creates an empty index when there is none yet.
    pub fn open_read_only(dir: &Path) -> Result<Arc<Self>, KeywordIndexError> {
        let io = |source| KeywordIndexError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let dir = dir.canonicalize().map_err(io)?;
        if let Some(existing) = REGISTRY.lock().get(&dir).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        Self::open_with(&dir, false)
    }

    /// The canonical directory of this index.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn open_uncached(dir: &Path) -> Result<Arc<Self>, KeywordIndexError> {
        Self::open_with(dir, true)
    }

    fn open_with(dir: &Path, writable: bool) -> Result<Arc<Self>, KeywordIndexError> {
        let directory = MmapDirectory::open(dir).map_err(TantivyError::from)?;
        let exists = Index::exists(&directory).map_err(TantivyError::from)?;
        let (index, fields) = if exists {
            // An index made by an older version keeps its schema (see `fields_of`).
            let index = Index::open(directory)?;
            let fields = fields_of(&index.schema())?;
            (index, fields)
        } else {
            let (schema, fields) = schema();
            let index = Index::open_or_create(directory, schema)?;
            (index, fields)
        };
        if fields.fast_ids.is_none() {
            tracing::warn!(dir = %dir.display(), "keyword index has no fast id columns (made by an older version): searches read stored records; re-index to speed them up");
        }
        let analyzer = english_analyzer()?;
        index.tokenizers().register(ANALYZER_NAME, analyzer.clone());

        let writer = if writable {
            Some(Mutex::new(open_writer(&index, dir)?))
        } else {
            None
        };
        // The writer reloads its reader after each commit; a read-only handle follows the
        // commits of another process.
        let reload = if writable {
            ReloadPolicy::Manual
        } else {
            ReloadPolicy::OnCommitWithDelay
        };
        let reader = index.reader_builder().reload_policy(reload).try_into()?;
        tracing::info!(dir = %dir.display(), docs = reader.searcher().num_docs(), "keyword index opened");
        Ok(Arc::new_cyclic(|me| Self {
            me: me.clone(),
            dir: dir.to_path_buf(),
            index,
            reader,
            writer,
            fields,
            analyzer,
        }))
    }

    /// Runs `op` on a blocking thread with a strong handle to `self`.
    async fn blocking<T, F>(&self, op: F) -> Result<T, KeywordIndexError>
    where
        T: Send + 'static,
        F: FnOnce(&TantivyIndex) -> Result<T, KeywordIndexError> + Send + 'static,
    {
        let me = self.me.upgrade().ok_or(KeywordIndexError::Closed)?;
        tokio::task::spawn_blocking(move || op(&me))
            .await
            .map_err(|e| KeywordIndexError::Task(e.to_string()))?
    }

    fn document(&self, chunk: &ChunkRecord) -> Result<TantivyDocument, KeywordIndexError> {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, chunk.id.to_string());
        doc.add_text(f.document_id, chunk.document_id.to_string());
        doc.add_text(f.tenant, &chunk.tenant);
        doc.add_text(f.domain, &chunk.domain);
        doc.add_u64(f.version, chunk.version);
        doc.add_text(f.text.title, &chunk.title);
        doc.add_text(f.text.section, &chunk.section);
        doc.add_text(f.text.body, &chunk.text);
        if f.record_is_text {
            doc.add_text(f.record, serde_json::to_string(chunk)?);
        } else {
            doc.add_bytes(f.record, &serde_json::to_vec(chunk)?);
        }
        if let Some(fast) = &f.fast_ids {
            let (hi, lo) = chunk.id.as_u64_pair();
            doc.add_u64(fast.id_hi, hi);
            doc.add_u64(fast.id_lo, lo);
            let (hi, lo) = chunk.document_id.as_uuid().as_u64_pair();
            doc.add_u64(fast.document_hi, hi);
            doc.add_u64(fast.document_lo, lo);
        }
        Ok(doc)
    }

    /// Filter clauses that match but add nothing to the score.
    fn filter_clauses(&self, filter: &SearchFilter) -> Vec<(Occur, Box<dyn Query>)> {
        let mut clauses = vec![(Occur::Must, raw_term(self.fields.tenant, &filter.tenant))];
        if let Some(domain) = &filter.domain {
            clauses.push((Occur::Must, raw_term(self.fields.domain, domain)));
        }
        clauses
    }

    /// Applies `ops` with the writer, commits, and reloads the reader. On any failure the
    /// writer is rolled back so nothing of this batch leaks into a later commit.
    fn write<F>(&self, ops: F) -> Result<(), KeywordIndexError>
    where
        F: FnOnce(&IndexWriter) -> Result<(), KeywordIndexError>,
    {
        let Some(writer) = &self.writer else {
            return Err(KeywordIndexError::ReadOnly {
                path: self.dir.clone(),
            });
        };
        {
            let mut writer = writer.lock();
            let result = ops(&writer).and_then(|()| writer.commit().map(drop).map_err(Into::into));
            if let Err(e) = result {
                if let Err(rollback) = writer.rollback() {
                    tracing::warn!(error = %rollback, "keyword index rollback failed");
                }
                return Err(e);
            }
        }
        self.reader.reload()?;
        Ok(())
    }

    fn upsert_blocking(&self, chunks: &[ChunkRecord]) -> Result<(), KeywordIndexError> {
        if chunks.is_empty() {
            return Ok(());
        }
        let docs = chunks
            .iter()
            .map(|c| {
                Ok((
                    Term::from_field_text(self.fields.id, &c.id.to_string()),
                    self.document(c)?,
                ))
            })
            .collect::<Result<Vec<_>, KeywordIndexError>>()?;
        self.write(|writer| {
            // A delete only affects documents added before it, so a repeated id within one
            // batch also ends up once (the last one wins).
            for (id, doc) in docs {
                writer.delete_term(id);
                writer.add_document(doc)?;
            }
            Ok(())
        })
    }

    fn delete_blocking(
        &self,
        tenant: &str,
        document_id: DocumentId,
        keep_version: Option<u64>,
    ) -> Result<(), KeywordIndexError> {
        let f = &self.fields;
        let mut clauses = vec![
            (
                Occur::Must,
                raw_term(f.document_id, &document_id.to_string()),
            ),
            (Occur::Must, raw_term(f.tenant, tenant)),
        ];
        if let Some(keep) = keep_version {
            let keep: Box<dyn Query> = Box::new(TermQuery::new(
                Term::from_field_u64(f.version, keep),
                IndexRecordOption::Basic,
            ));
            clauses.push((Occur::MustNot, keep));
        }
        let query = BooleanQuery::new(clauses);
        self.write(|writer| {
            writer.delete_query(Box::new(query))?;
            Ok(())
        })
    }

    /// The top `limit` matches of `query` within `filter`, best first, with the searcher they
    /// come from; `None` when the query has no terms or the index is empty.
    fn top(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Option<(Searcher, TopHits)>, KeywordIndexError> {
        let plan = QueryPlan::new(&self.analyzer, query);
        let Some(text_query) = plan.to_query(&self.fields.text) else {
            return Ok(None);
        };
        let searcher = self.reader.searcher();
        let num_docs = usize::try_from(searcher.num_docs()).unwrap_or(usize::MAX);
        let limit = limit.min(MAX_LIMIT).min(num_docs);
        if limit == 0 {
            return Ok(None);
        }
        let mut clauses = self.filter_clauses(filter);
        clauses.push((Occur::Must, text_query));
        let top = searcher.search(&BooleanQuery::new(clauses), &TopDocs::with_limit(limit))?;
        Ok(Some((searcher, top)))
    }

    /// The stored record of `address`; `None` (logged) when it is missing or unreadable.
    fn record(
        &self,
        searcher: &Searcher,
        address: DocAddress,
    ) -> Result<Option<ChunkRecord>, KeywordIndexError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let record = doc.get_first(self.fields.record).and_then(|v| {
            v.as_str()
                .map(serde_json::from_str::<ChunkRecord>)
                .or_else(|| v.as_bytes().map(serde_json::from_slice::<ChunkRecord>))
        });
        Ok(match record {
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(e)) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "skipping unreadable keyword hit");
                None
            }
            None => {
                tracing::warn!(dir = %self.dir.display(), "skipping keyword hit without record");
                None
            }
        })
    }

    fn search_blocking(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<KeywordHit>, KeywordIndexError> {
        let Some((searcher, top)) = self.top(query, filter, limit)? else {
            return Ok(Vec::new());
        };
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            if let Some(chunk) = self.record(&searcher, address)? {
                hits.push(KeywordHit { chunk, score });
            }
        }
        Ok(hits)
    }

    fn search_ids_blocking(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<KeywordMatch>, KeywordIndexError> {
        let Some((searcher, top)) = self.top(query, filter, limit)? else {
            return Ok(Vec::new());
        };
        // Each segment's columns are opened the first time one of its documents comes up.
        let mut columns: Vec<Option<Option<IdColumns>>> = std::iter::repeat_with(|| None)
            .take(searcher.segment_readers().len())
            .collect();
        let mut matches = Vec::with_capacity(top.len());
        for (score, address) in top {
            let fast = match (
                self.fields.fast_ids,
                columns.get_mut(address.segment_ord as usize),
            ) {
                (Some(_), Some(slot)) => {
                    if slot.is_none() {
                        let segment = searcher.segment_reader(address.segment_ord);
                        *slot = Some(Some(IdColumns::open(segment)?));
                    }
                    slot.as_ref()
                        .and_then(Option::as_ref)
                        .and_then(|c| c.read(address.doc_id, score))
                }
                _ => None,
            };
            match fast {
                Some(found) => matches.push(found),
                // An index (or a document) without the fast columns: read the stored record.
                None => {
                    if let Some(chunk) = self.record(&searcher, address)? {
                        matches.push(KeywordMatch {
                            id: chunk.id,
                            document_id: chunk.document_id,
                            version: chunk.version,
                            score,
                        });
                    }
                }
            }
        }
        Ok(matches)
    }

    fn get_blocking(
        &self,
        tenant: &str,
        ids: &[Uuid],
    ) -> Result<Vec<ChunkRecord>, KeywordIndexError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let terms = ids
            .iter()
            .take(MAX_LIMIT)
            .map(|id| Term::from_field_text(self.fields.id, &id.hyphenated().to_string()));
        let ids: Box<dyn Query> = Box::new(TermSetQuery::new(terms));
        let query = BooleanQuery::new(vec![
            (Occur::Must, raw_term(self.fields.tenant, tenant)),
            (Occur::Must, ids),
        ]);
        let searcher = self.reader.searcher();
        let mut addresses: Vec<DocAddress> = searcher
            .search(&query, &DocSetCollector)?
            .into_iter()
            .collect();
        // Document order reads each block of the store once.
        addresses.sort_unstable();
        let mut chunks = Vec::with_capacity(addresses.len());
        for address in addresses {
            if let Some(chunk) = self.record(&searcher, address)? {
                chunks.push(chunk);
            }
        }
        Ok(chunks)
    }

    fn count_blocking(&self, filter: &SearchFilter) -> Result<u64, KeywordIndexError> {
        let query = BooleanQuery::new(self.filter_clauses(filter));
        let count = self.reader.searcher().search(&query, &Count)?;
        Ok(u64::try_from(count).unwrap_or(u64::MAX))
    }

    fn health_blocking(&self) -> Result<(), KeywordIndexError> {
        std::fs::metadata(self.dir.join("meta.json")).map_err(|source| KeywordIndexError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let _ = self.reader.searcher().num_docs();
        let _ = self.index.searchable_segment_ids()?;
        Ok(())
    }
}

fn open_writer(index: &Index, dir: &Path) -> Result<IndexWriter, KeywordIndexError> {
    let started = Instant::now();
    loop {
        match index.writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY_BYTES) {
            Ok(writer) => return Ok(writer),
            Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                if started.elapsed() >= LOCK_RETRY_FOR {
                    return Err(KeywordIndexError::Locked {
                        path: dir.to_path_buf(),
                    });
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// An exact match on a raw string field, scored 0 so filters do not change BM25 scores.
fn raw_term(field: Field, value: &str) -> Box<dyn Query> {
    let query = TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    );
    Box::new(ConstScoreQuery::new(Box::new(query), 0.0))
}

#[async_trait::async_trait]
impl KeywordIndex for TantivyIndex {
    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<(), KeywordIndexError> {
        if chunks.is_empty() {
            return Ok(());
        }
        self.blocking(move |me| me.upsert_blocking(&chunks)).await
    }

    async fn search(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<KeywordHit>, KeywordIndexError> {
        if limit == 0 || query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let query = query.to_owned();
        let filter = filter.clone();
        self.blocking(move |me| me.search_blocking(&query, &filter, limit))
            .await
    }

    async fn search_ids(
        &self,
        query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<KeywordMatch>, KeywordIndexError> {
        if limit == 0 || query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let query = query.to_owned();
        let filter = filter.clone();
        self.blocking(move |me| me.search_ids_blocking(&query, &filter, limit))
            .await
    }

    async fn get(&self, tenant: &str, ids: &[Uuid]) -> Result<Vec<ChunkRecord>, KeywordIndexError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let tenant = tenant.to_owned();
        let ids = ids.to_vec();
        self.blocking(move |me| me.get_blocking(&tenant, &ids))
            .await
    }

    async fn delete_document(
        &self,
        tenant: &str,
        document_id: DocumentId,
        keep_version: Option<u64>,
    ) -> Result<(), KeywordIndexError> {
        let tenant = tenant.to_owned();
        self.blocking(move |me| me.delete_blocking(&tenant, document_id, keep_version))
            .await
    }

    async fn count(&self, filter: &SearchFilter) -> Result<u64, KeywordIndexError> {
        let filter = filter.clone();
        self.blocking(move |me| me.count_blocking(&filter)).await
    }

    async fn health(&self) -> Result<(), KeywordIndexError> {
        self.blocking(TantivyIndex::health_blocking).await
    }
}
