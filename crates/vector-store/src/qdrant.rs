//! The cluster backend: a Qdrant server reached over gRPC (`qdrant-client`).
//!
//! Owns one collection with the same layout as the embedded store: one unnamed dense vector
//! (cosine distance), the `ChunkRecord` as the payload (its flat JSON object as Qdrant values),
//! keyword indexes on `tenant` (marked as the tenant field), `domain` and `document_id`, and an
//! integer index on `version`. Both backends answer the same contract (`tests/contract.rs`).
//!
//! Construction does no network I/O: services start before Qdrant is reachable. The first call
//! connects, creates the collection when it is missing and the payload indexes it lacks, and
//! refuses a collection made for other vectors. Until that succeeds every call fails (with
//! `Unavailable` while the server cannot be reached) and the next call tries again.
//!
//! Writes are sent with `wait = true`: they are applied (and in Qdrant's WAL) when they return.
//! Upserts go out in batches of [`UPSERT_BATCH`] points. The whole call is validated first, so a
//! bad point rejects all of it, but a failure in a later batch leaves the earlier ones written;
//! that is harmless because upserts are idempotent and the caller retries.
//!
//! Must not: create, change or drop any other collection; log the API key; decide which backend
//! runs (`rag-backends` does).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Distance, FieldType, Filter, GetCollectionInfoRequest, KeywordIndexParams,
    PayloadIncludeSelector, PayloadSchemaType, PointId, PointStruct, Query, QueryPointsBuilder,
    ScrollPointsBuilder, UpsertPointsBuilder, Value, VectorParamsBuilder, r#match::MatchValue,
    point_id::PointIdOptions, vectors_config,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use rag_core::{ChunkRecord, DocumentId, SearchFilter};
use tokio::sync::OnceCell;
use tonic::Code;

use crate::point::{
    FIELD_CHUNK_INDEX, FIELD_DOCUMENT_ID, FIELD_DOMAIN, FIELD_TENANT, FIELD_VERSION, ID_FIELDS,
    check_point, check_vector, match_from_fields,
};
use crate::{VectorHit, VectorMatch, VectorPoint, VectorStore, VectorStoreError};

/// The payload indexes the collection gets: the fields every filter uses.
const PAYLOAD_INDEXES: [(&str, IndexKind); 4] = [
    (FIELD_TENANT, IndexKind::Tenant),
    (FIELD_DOMAIN, IndexKind::Keyword),
    (FIELD_DOCUMENT_ID, IndexKind::Keyword),
    (FIELD_VERSION, IndexKind::Integer),
];

/// Points per upsert request.
const UPSERT_BATCH: usize = 256;

/// Page size of the scroll behind `get_chunks`.
const SCROLL_PAGE: usize = 256;

/// Time limit of one request (an upsert batch waits until it is applied).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Time limit of opening a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
enum IndexKind {
    /// A keyword index marked `is_tenant`: Qdrant keeps each tenant's points together.
    Tenant,
    Keyword,
    Integer,
}

impl IndexKind {
    fn field_type(self) -> FieldType {
        match self {
            IndexKind::Tenant | IndexKind::Keyword => FieldType::Keyword,
            IndexKind::Integer => FieldType::Integer,
        }
    }

    fn schema_type(self) -> PayloadSchemaType {
        match self {
            IndexKind::Tenant | IndexKind::Keyword => PayloadSchemaType::Keyword,
            IndexKind::Integer => PayloadSchemaType::Integer,
        }
    }
}

/// The cluster vector store: one collection on a Qdrant server.
pub struct QdrantVectorStore {
    client: Qdrant,
    url: String,
    collection: String,
    dimensions: usize,
    /// Set once the collection is known to exist with our vectors and indexes.
    ready: OnceCell<()>,
}

impl fmt::Debug for QdrantVectorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its configuration holds the API key.
        f.debug_struct("QdrantVectorStore")
            .field("url", &self.url)
            .field("collection", &self.collection)
            .field("dimensions", &self.dimensions)
            .field("ready", &self.ready.initialized())
            .finish_non_exhaustive()
    }
}

impl QdrantVectorStore {
    /// A store for `collection` on the Qdrant server at `url` (its gRPC port, `http://` or
    /// `https://`, e.g. `http://qdrant:6334`), for vectors of `dimensions` dimensions.
    ///
    /// `api_key` is sent as the `api-key` header; `None` or an empty key sends none.
    ///
    /// Does no network I/O: the first call connects and prepares the collection. Fails only on
    /// unusable arguments (`InvalidInput`).
    pub fn new(
        url: &str,
        api_key: Option<String>,
        collection: &str,
        dimensions: usize,
    ) -> Result<Self, VectorStoreError> {
        if dimensions == 0 {
            return Err(VectorStoreError::InvalidInput(
                "vector dimensions must be positive".into(),
            ));
        }
        check_collection_name(collection)?;
        check_url(url)?;
        let api_key = api_key.filter(|key| !key.is_empty());
        if let Some(key) = &api_key
            && tonic::metadata::AsciiMetadataValue::try_from(key.as_str()).is_err()
        {
            // Never echo the key itself.
            return Err(VectorStoreError::InvalidInput(
                "the Qdrant API key is not a valid header value".into(),
            ));
        }
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // The compatibility check would call the server from the constructor.
            .skip_compatibility_check()
            .build()
            .map_err(|e| VectorStoreError::InvalidInput(format!("Qdrant URL {url:?}: {e}")))?;
        Ok(Self {
            client,
            url: url.to_string(),
            collection: collection.to_string(),
            dimensions,
            ready: OnceCell::new(),
        })
    }

    /// The collection this store reads and writes.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The dimension of every vector of this store.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The client, once the collection is ready; prepares it on the first call (and on every
    /// call after a failed one).
    async fn ready(&self) -> Result<&Qdrant, VectorStoreError> {
        // tonic connects on the caller's runtime; without one it would panic.
        tokio::runtime::Handle::try_current().map_err(|_| {
            VectorStoreError::Unavailable("the vector store needs a tokio runtime".into())
        })?;
        self.ready.get_or_try_init(|| self.prepare()).await?;
        Ok(&self.client)
    }

    /// Creates the collection if it is missing, checks its vectors and creates missing indexes.
    async fn prepare(&self) -> Result<(), VectorStoreError> {
        let info = match self.collection_info().await? {
            Some(info) => info,
            None => {
                let created = self
                    .client
                    .create_collection(
                        CreateCollectionBuilder::new(&self.collection).vectors_config(
                            VectorParamsBuilder::new(self.dimensions as u64, Distance::Cosine),
                        ),
                    )
                    .await;
                // Another process may have created it meanwhile: then it is there now, and its
                // vectors are checked below like any existing collection's.
                match (created, self.collection_info().await?) {
                    (_, Some(info)) => info,
                    (Err(err), None) => return Err(from_qdrant("create collection", err)),
                    (Ok(_), None) => {
                        return Err(VectorStoreError::Storage(format!(
                            "Qdrant collection {:?} is missing right after its creation",
                            self.collection
                        )));
                    }
                }
            }
        };
        self.check_vectors(&info)?;

        for (field, kind) in PAYLOAD_INDEXES {
            let present = info
                .payload_schema
                .get(field)
                .is_some_and(|schema| schema.data_type == kind.schema_type() as i32);
            if present {
                continue;
            }
            let mut request =
                CreateFieldIndexCollectionBuilder::new(&self.collection, field, kind.field_type())
                    .wait(true);
            if let IndexKind::Tenant = kind {
                request = request.field_index_params(KeywordIndexParams {
                    is_tenant: Some(true),
                    ..Default::default()
                });
            }
            self.client
                .create_field_index(request)
                .await
                .map_err(|e| from_qdrant("create payload index", e))?;
        }
        tracing::info!(
            url = %self.url,
            collection = %self.collection,
            dimensions = self.dimensions,
            "vector store ready"
        );
        Ok(())
    }

    /// The collection's description, `None` when it does not exist.
    async fn collection_info(
        &self,
    ) -> Result<Option<qdrant_client::qdrant::CollectionInfo>, VectorStoreError> {
        let request = GetCollectionInfoRequest {
            collection_name: self.collection.clone(),
        };
        match self.client.collection_info(request).await {
            Ok(response) => response.result.map(Some).ok_or_else(|| {
                VectorStoreError::Storage(format!(
                    "Qdrant described collection {:?} without its info",
                    self.collection
                ))
            }),
            Err(QdrantError::ResponseError { status }) if status.code() == Code::NotFound => {
                Ok(None)
            }
            Err(err) => Err(from_qdrant("get collection", err)),
        }
    }

    /// Rejects a collection made for other vectors than the ones this store is for.
    fn check_vectors(
        &self,
        info: &qdrant_client::qdrant::CollectionInfo,
    ) -> Result<(), VectorStoreError> {
        let config = info
            .config
            .as_ref()
            .and_then(|c| c.params.as_ref())
            .and_then(|p| p.vectors_config.as_ref())
            .and_then(|v| v.config.as_ref());
        match config {
            Some(vectors_config::Config::Params(params))
                if params.size == self.dimensions as u64
                    && params.distance == Distance::Cosine as i32 =>
            {
                Ok(())
            }
            Some(vectors_config::Config::Params(params)) => {
                Err(VectorStoreError::InvalidInput(format!(
                    "Qdrant collection {:?} holds {}-dimensional {} vectors, not \
                     {}-dimensional cosine",
                    self.collection,
                    params.size,
                    Distance::try_from(params.distance)
                        .map_or("unknown-distance", |d| d.as_str_name()),
                    self.dimensions
                )))
            }
            Some(vectors_config::Config::ParamsMap(_)) => {
                Err(VectorStoreError::InvalidInput(format!(
                    "Qdrant collection {:?} has named vectors, not one unnamed dense vector",
                    self.collection
                )))
            }
            None => Err(VectorStoreError::Storage(format!(
                "Qdrant collection {:?} has no vector configuration",
                self.collection
            ))),
        }
    }
}

#[async_trait::async_trait]
impl VectorStore for QdrantVectorStore {
    async fn upsert(&self, points: Vec<VectorPoint>) -> Result<(), VectorStoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let points = points
            .into_iter()
            .map(|point| to_point(point, self.dimensions))
            .collect::<Result<Vec<_>, _>>()?;
        let client = self.ready().await?;
        let mut points = points.into_iter().peekable();
        while points.peek().is_some() {
            let batch: Vec<PointStruct> = points.by_ref().take(UPSERT_BATCH).collect();
            client
                .upsert_points(UpsertPointsBuilder::new(&self.collection, batch).wait(true))
                .await
                .map_err(|e| from_qdrant("upsert", e))?;
        }
        Ok(())
    }

    async fn search(
        &self,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<VectorHit>, VectorStoreError> {
        check_vector(vector, self.dimensions)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.ready().await?;
        let response = client
            .query(
                QueryPointsBuilder::new(&self.collection)
                    .query(Query::new_nearest(vector.to_vec()))
                    .filter(search_filter(filter))
                    .limit(u64::try_from(limit).unwrap_or(u64::MAX))
                    .with_payload(true),
            )
            .await
            .map_err(|e| from_qdrant("search", e))?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|point| {
                let chunk = chunk_from_payload(point.id.as_ref(), point.payload)?;
                Some(VectorHit {
                    chunk,
                    score: point.score,
                })
            })
            .collect())
    }

    async fn search_ids(
        &self,
        vector: &[f32],
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<VectorMatch>, VectorStoreError> {
        check_vector(vector, self.dimensions)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let client = self.ready().await?;
        let fields = PayloadIncludeSelector {
            fields: ID_FIELDS.iter().map(|f| (*f).to_owned()).collect(),
        };
        let response = client
            .query(
                QueryPointsBuilder::new(&self.collection)
                    .query(Query::new_nearest(vector.to_vec()))
                    .filter(search_filter(filter))
                    .limit(u64::try_from(limit).unwrap_or(u64::MAX))
                    .with_payload(fields),
            )
            .await
            .map_err(|e| from_qdrant("search", e))?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|mut point| {
                let id = match point.id.as_ref().and_then(|id| id.point_id_options.as_ref()) {
                    Some(PointIdOptions::Uuid(id)) => id.parse().ok(),
                    _ => None,
                };
                let payload = std::mem::take(&mut point.payload);
                let json = |field: &str| payload.get(field).cloned().map(Value::into_json);
                let found = id.and_then(|id| match_from_fields(id, json, point.score));
                if found.is_none() {
                    tracing::warn!(point = %DisplayId(point.id.as_ref()), "vector store point without readable ids skipped");
                }
                found
            })
            .collect())
    }

    async fn delete_document(
        &self,
        tenant: &str,
        document_id: DocumentId,
        keep_version: Option<u64>,
    ) -> Result<(), VectorStoreError> {
        // A version beyond i64 cannot be stored (upsert rejects it), so keeping it keeps nothing.
        let keep = keep_version.and_then(|v| i64::try_from(v).ok());
        let mut filter = Filter::must([
            keyword(FIELD_TENANT, tenant),
            keyword(FIELD_DOCUMENT_ID, &document_id.to_string()),
        ]);
        if let Some(version) = keep {
            filter.must_not = vec![Condition::matches(FIELD_VERSION, version)];
        }
        let client = self.ready().await?;
        client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map_err(|e| from_qdrant("delete document", e))?;
        Ok(())
    }

    async fn get_chunks(
        &self,
        tenant: &str,
        document_id: DocumentId,
        version: u64,
        chunk_indexes: &[u32],
    ) -> Result<Vec<ChunkRecord>, VectorStoreError> {
        let indexes: BTreeSet<i64> = chunk_indexes.iter().map(|&i| i64::from(i)).collect();
        let Ok(version) = i64::try_from(version) else {
            return Ok(Vec::new());
        };
        if indexes.is_empty() {
            return Ok(Vec::new());
        }
        let page = u32::try_from(indexes.len().min(SCROLL_PAGE)).unwrap_or(u32::MAX);
        let filter = Filter::must([
            keyword(FIELD_TENANT, tenant),
            keyword(FIELD_DOCUMENT_ID, &document_id.to_string()),
            Condition::matches(FIELD_VERSION, version),
            Condition::matches(FIELD_CHUNK_INDEX, indexes.into_iter().collect::<Vec<i64>>()),
        ]);
        let client = self.ready().await?;
        let mut chunks = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(&self.collection)
                .filter(filter.clone())
                .limit(page)
                .with_payload(true)
                .with_vectors(false);
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let response = client
                .scroll(request)
                .await
                .map_err(|e| from_qdrant("get chunks", e))?;
            chunks.extend(
                response
                    .result
                    .into_iter()
                    .filter_map(|point| chunk_from_payload(point.id.as_ref(), point.payload)),
            );
            match response.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(chunks),
            }
        }
    }

    async fn count(&self, filter: &SearchFilter) -> Result<u64, VectorStoreError> {
        let client = self.ready().await?;
        let response = client
            .count(
                CountPointsBuilder::new(&self.collection)
                    .filter(search_filter(filter))
                    .exact(true),
            )
            .await
            .map_err(|e| from_qdrant("count", e))?;
        response
            .result
            .map(|result| result.count)
            .ok_or_else(|| VectorStoreError::Storage("Qdrant answered a count without one".into()))
    }

    async fn health(&self) -> Result<(), VectorStoreError> {
        let client = self.ready().await?;
        client
            .health_check()
            .await
            .map_err(|e| from_qdrant("health check", e))?;
        Ok(())
    }
}

fn check_url(url: &str) -> Result<(), VectorStoreError> {
    let uri: tonic::codegen::http::Uri = url
        .parse()
        .map_err(|e| VectorStoreError::InvalidInput(format!("Qdrant URL {url:?}: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err(VectorStoreError::InvalidInput(format!(
            "Qdrant URL {url:?} must be http:// or https:// with a host (the gRPC port, e.g. \
             http://qdrant:6334)"
        ))),
    }
}

/// A name Qdrant can take (1 to 255 characters, no path or reserved characters), so that a bad
/// configured name fails at start-up, not on the first call.
fn check_collection_name(name: &str) -> Result<(), VectorStoreError> {
    let bad_char = |c: char| "<>:\"/\\|?*\0".contains(c);
    if name.is_empty() || name.len() > 255 || name.contains(bad_char) || name == "." || name == ".."
    {
        return Err(VectorStoreError::InvalidInput(format!(
            "{name:?} is not a valid Qdrant collection name"
        )));
    }
    Ok(())
}

fn to_point(point: VectorPoint, dimensions: usize) -> Result<PointStruct, VectorStoreError> {
    let point = check_point(point, dimensions)?;
    Ok(PointStruct::new(
        point.chunk.id.to_string(),
        point.vector,
        Payload::from(point.payload),
    ))
}

fn chunk_from_payload(
    id: Option<&PointId>,
    payload: HashMap<String, Value>,
) -> Option<ChunkRecord> {
    let json = serde_json::Value::Object(
        payload
            .into_iter()
            .map(|(key, value)| (key, value.into_json()))
            .collect(),
    );
    match serde_json::from_value(json) {
        Ok(chunk) => Some(chunk),
        Err(e) => {
            tracing::warn!(
                point = %DisplayId(id),
                error = %e,
                "vector store point with unreadable payload skipped"
            );
            None
        }
    }
}

/// A point id for logs.
struct DisplayId<'a>(Option<&'a PointId>);

impl fmt::Display for DisplayId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.and_then(|id| id.point_id_options.as_ref()) {
            Some(PointIdOptions::Uuid(uuid)) => f.write_str(uuid),
            Some(PointIdOptions::Num(num)) => write!(f, "{num}"),
            None => f.write_str("(no id)"),
        }
    }
}

fn search_filter(filter: &SearchFilter) -> Filter {
    let mut must = vec![keyword(FIELD_TENANT, &filter.tenant)];
    if let Some(domain) = &filter.domain {
        must.push(keyword(FIELD_DOMAIN, domain));
    }
    Filter::must(must)
}

/// An exact keyword match. Not `Condition::matches(field, String)`: that turns a value with
/// whitespace into a full-text match, which would let tenant "a" see tenant "a b".
fn keyword(field: &str, value: &str) -> Condition {
    Condition::matches(field, MatchValue::Keyword(value.to_string()))
}

/// Maps a client error to ours: no connection → `Unavailable`, rejected input →
/// `InvalidInput`, anything else → `Storage`.
fn from_qdrant(operation: &str, err: QdrantError) -> VectorStoreError {
    match err {
        QdrantError::ResponseError { status } => from_status(operation, &status),
        QdrantError::ResourceExhaustedError {
            status,
            retry_after_seconds,
        } => VectorStoreError::Unavailable(format!(
            "Qdrant {operation}: rate limited, retry after {retry_after_seconds} s: {}",
            status.message()
        )),
        QdrantError::Io(e) => VectorStoreError::Unavailable(format!("Qdrant {operation}: {e}")),
        QdrantError::InvalidUri(e) => {
            VectorStoreError::InvalidInput(format!("Qdrant {operation}: {e}"))
        }
        other => VectorStoreError::Storage(format!("Qdrant {operation}: {other}")),
    }
}

fn from_status(operation: &str, status: &tonic::Status) -> VectorStoreError {
    let message = format!(
        "Qdrant {operation}: {:?}: {}",
        status.code(),
        status.message()
    );
    if is_transport_failure(status) {
        return VectorStoreError::Unavailable(message);
    }
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::ResourceExhausted
        | Code::Aborted => VectorStoreError::Unavailable(message),
        Code::InvalidArgument | Code::OutOfRange => VectorStoreError::InvalidInput(message),
        _ => VectorStoreError::Storage(message),
    }
}

/// Whether the status was made on this side for a connection that failed, not sent by Qdrant:
/// tonic attaches the transport error as the source, and qdrant-client reports a failed connect
/// as `Internal` "Failed to connect to ...".
fn is_transport_failure(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some()
        || (status.code() == Code::Internal && status.message().starts_with("Failed to connect to"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid<T: fmt::Debug>(r: Result<T, VectorStoreError>) -> bool {
        matches!(r, Err(VectorStoreError::InvalidInput(_)))
    }

    #[test]
    fn constructor_validates_without_connecting() {
        // Nothing listens there; construction must still succeed.
        assert!(QdrantVectorStore::new("http://127.0.0.1:9", None, "chunks", 8).is_ok());
        assert!(QdrantVectorStore::new("https://q.example:6334", Some("k".into()), "c", 8).is_ok());
        assert!(invalid(QdrantVectorStore::new(
            "http://127.0.0.1:9",
            None,
            "chunks",
            0
        )));
        for url in ["", "127.0.0.1:6334", "ftp://h:1", "http://", "not a url"] {
            assert!(
                invalid(QdrantVectorStore::new(url, None, "chunks", 8)),
                "{url:?}"
            );
        }
        for name in ["", "a/b", "..", "x?"] {
            assert!(
                invalid(QdrantVectorStore::new("http://h:6334", None, name, 8)),
                "{name:?}"
            );
        }
        let bad_key = QdrantVectorStore::new("http://h:6334", Some("sec\nret".into()), "c", 8);
        match bad_key {
            Err(VectorStoreError::InvalidInput(msg)) => assert!(!msg.contains("sec")),
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn debug_does_not_show_the_api_key() -> Result<(), VectorStoreError> {
        let store = QdrantVectorStore::new("http://h:6334", Some("s3cr3t".into()), "c", 8)?;
        let shown = format!("{store:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("http://h:6334"), "{shown}");
        Ok(())
    }

    #[test]
    fn statuses_map_to_store_errors() {
        let unavailable = |s: tonic::Status| {
            matches!(
                from_qdrant("x", QdrantError::ResponseError { status: s }),
                VectorStoreError::Unavailable(_)
            )
        };
        let storage = |s: tonic::Status| {
            matches!(
                from_qdrant("x", QdrantError::ResponseError { status: s }),
                VectorStoreError::Storage(_)
            )
        };
        assert!(unavailable(tonic::Status::unavailable("down")));
        assert!(unavailable(tonic::Status::deadline_exceeded("slow")));
        assert!(unavailable(tonic::Status::internal(
            "Failed to connect to http://h:6334/: transport error"
        )));
        assert!(unavailable(tonic::Status::from_error(Box::new(
            std::io::Error::other("connection reset")
        ))));
        assert!(storage(tonic::Status::internal("Service internal error")));
        assert!(storage(tonic::Status::not_found(
            "Collection `c` doesn't exist!"
        )));
        assert!(storage(tonic::Status::unknown("server said so")));
        assert!(matches!(
            from_qdrant(
                "x",
                QdrantError::ResponseError {
                    status: tonic::Status::invalid_argument("Wrong input: Vector dimension error")
                }
            ),
            VectorStoreError::InvalidInput(_)
        ));
    }

    #[test]
    fn keyword_conditions_stay_exact_with_whitespace() {
        let condition = keyword(FIELD_TENANT, "acme corp");
        let Some(qdrant_client::qdrant::condition::ConditionOneOf::Field(field)) =
            condition.condition_one_of
        else {
            panic!("not a field condition");
        };
        assert_eq!(
            field.r#match.and_then(|m| m.match_value),
            Some(MatchValue::Keyword("acme corp".into()))
        );
    }
}
