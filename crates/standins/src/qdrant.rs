//! A STAND-IN for a Qdrant server, for tests only. It is not Qdrant.
//!
//! There is no Qdrant server on the development machines or in CI, and none can be downloaded,
//! so the `QdrantVectorStore` tests talk to this instead: an in-process tonic server on
//! `127.0.0.1:<ephemeral>` that speaks Qdrant's real gRPC wire format. Its services are the
//! server traits and messages that `qdrant-client` generates from Qdrant's own `.proto` files
//! (`qdrant.Collections`, `qdrant.Points`, `qdrant.Qdrant`), so every request and answer crosses
//! a real HTTP/2 connection encoded exactly as it would to and from a Qdrant server.
//!
//! It implements exactly the calls the adapter makes, with Qdrant's semantics as documented:
//!
//! * collections: `Get` (NotFound when missing), `Create` (AlreadyExists when present; one
//!   unnamed dense vector, cosine only), `CollectionExists`;
//! * points: `Upsert` (all-or-nothing per request, dimension checked → InvalidArgument, vectors
//!   normalised for cosine like the server does), `Delete` (by filter or ids), `Query`
//!   (nearest to a dense vector, exact cosine scores, best first, `limit`/`offset`/
//!   `score_threshold`, payload only when asked: the server's default is none), `Scroll`
//!   (ordered by point id, `offset` = first id of the page, `next_page_offset`, payload by
//!   default), `Count`, `CreateFieldIndex` (keyword and integer; recorded, not used for speed);
//! * `HealthCheck`.
//!
//! Filters are really evaluated: `must`, `should`, `must_not`, `min_should`, nested filters,
//! `has_id`, and field matches (`keyword`, `integer`, `bool`, `keywords`/`integers` = any of,
//! and `text`, which without a full-text index matches when every term of the query is a
//! substring, as on the server) on flat
//! payload keys, matching any element of an array value. A filter using anything else is
//! answered `Unimplemented`, never silently ignored, so a wrong filter in the adapter fails the
//! tests. Every other RPC answers `Unimplemented`.
//!
//! Faults, for tests of what the callers do when Qdrant fails: [`StandIn::set_down`] answers
//! every call (health checks included) `Unavailable` until switched back, as a node that is
//! restarting or unreachable behind its load balancer does; [`StandIn::pause`] closes the
//! listener and its connections (calls are refused) and [`StandIn::resume`] listens again on
//! the same address with the same points, as a server that was restarted with its storage.
//!
//! What it cannot show: HNSW's approximate results, persistence, replication and write
//! ordering, the performance of payload indexes, and quirks of particular server versions.
//! Points live in memory, behind one mutex.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use qdrant_client::qdrant::collections_server::{Collections, CollectionsServer};
use qdrant_client::qdrant::points_server::{Points, PointsServer};
use qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use qdrant_client::qdrant::{self as pb, condition, r#match, value, vectors_config};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::Interceptor;
use tonic::transport::Server;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// A running stand-in. Dropping it stops the server.
pub struct StandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    api_key: Option<String>,
    /// While set, every call is answered `Unavailable`.
    down: Arc<AtomicBool>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

/// What the stand-in has seen and holds, for assertions.
#[derive(Default)]
pub struct State {
    collections: HashMap<String, Collection>,
    /// Every write request: (rpc, number of points or 0, `wait`).
    pub writes: Vec<(&'static str, usize, bool)>,
}

struct Collection {
    size: u64,
    distance: i32,
    points: BTreeMap<PointKey, StoredPoint>,
    payload_schema: HashMap<String, pb::PayloadSchemaInfo>,
}

/// A point id, ordered as Qdrant orders them: numbers first, then UUIDs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PointKey {
    Num(u64),
    Uuid(Uuid),
}

struct StoredPoint {
    /// Normalised (cosine), as the server stores it.
    vector: Vec<f32>,
    payload: HashMap<String, pb::Value>,
}

impl StandIn {
    /// Starts a stand-in on an ephemeral port of 127.0.0.1 that needs no API key.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, None).await
    }

    /// Starts a stand-in on `listener`; with `api_key`, every call must carry it in the
    /// `api-key` header (as Qdrant checks it) or is answered `Unauthenticated`.
    pub async fn start_on(listener: TcpListener, api_key: Option<String>) -> std::io::Result<Self> {
        let mut stand_in = Self {
            addr: listener.local_addr()?,
            state: Arc::new(Mutex::new(State::default())),
            api_key,
            down: Arc::new(AtomicBool::new(false)),
            shutdown: None,
            task: None,
        };
        stand_in.serve(listener);
        Ok(stand_in)
    }

    /// Serves the stand-in's state on `listener` until [`StandIn::shutdown_server`].
    fn serve(&mut self, listener: TcpListener) {
        let service = Service {
            state: Arc::clone(&self.state),
        };
        let check = ApiKeyCheck {
            api_key: self.api_key.clone(),
            down: Arc::clone(&self.down),
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = Server::builder()
            .add_service(CollectionsServer::with_interceptor(
                service.clone(),
                check.clone(),
            ))
            .add_service(PointsServer::with_interceptor(
                service.clone(),
                check.clone(),
            ))
            .add_service(QdrantServer::with_interceptor(service, check))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            );
        self.shutdown = Some(shutdown);
        self.task = Some(tokio::spawn(server));
    }

    /// Stops serving and waits (a few seconds at most) until the connections are closed.
    async fn shutdown_server(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// A fault: while `down`, every call, the health check included, is answered
    /// `Unavailable` (the points are kept, and served again once switched back).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// A fault: closes the listener and every connection, so calls are refused, keeping the
    /// points for [`StandIn::resume`].
    pub async fn pause(&mut self) {
        self.shutdown_server().await;
    }

    /// Listens again on the same address, with the points it held (after
    /// [`StandIn::pause`]; does nothing while serving).
    pub async fn resume(&mut self) -> std::io::Result<()> {
        if self.task.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.serve(listener);
        Ok(())
    }

    /// The URL to give `QdrantVectorStore::new`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs `f` on the stand-in's state.
    pub fn inspect<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock())
    }

    /// Stops the server and waits (a few seconds at most) until it has closed its connections.
    pub async fn stop(mut self) {
        self.shutdown_server().await;
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl State {
    /// The vector size and distance of a collection.
    pub fn collection_params(&self, name: &str) -> Option<(u64, pb::Distance)> {
        let c = self.collections.get(name)?;
        Some((c.size, pb::Distance::try_from(c.distance).ok()?))
    }

    /// The payload indexes of a collection: field → (type, keyword `is_tenant`).
    pub fn payload_indexes(&self, name: &str) -> BTreeMap<String, (pb::PayloadSchemaType, bool)> {
        let Some(c) = self.collections.get(name) else {
            return BTreeMap::new();
        };
        c.payload_schema
            .iter()
            .map(|(field, info)| {
                let ty = pb::PayloadSchemaType::try_from(info.data_type)
                    .unwrap_or(pb::PayloadSchemaType::UnknownType);
                let is_tenant = matches!(
                    info.params.as_ref().and_then(|p| p.index_params.as_ref()),
                    Some(pb::payload_index_params::IndexParams::KeywordIndexParams(k))
                        if k.is_tenant == Some(true)
                );
                (field.clone(), (ty, is_tenant))
            })
            .collect()
    }

    /// Number of points in a collection.
    pub fn points(&self, name: &str) -> usize {
        self.collections.get(name).map_or(0, |c| c.points.len())
    }
}

/// Checks the API key, and answers `Unavailable` while the stand-in is switched down.
#[derive(Clone)]
struct ApiKeyCheck {
    api_key: Option<String>,
    down: Arc<AtomicBool>,
}

impl Interceptor for ApiKeyCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable(
                "the Qdrant stand-in is switched down (a test fault)",
            ));
        }
        let Some(expected) = &self.api_key else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get("api-key")
            .and_then(|v| v.to_str().ok());
        if given == Some(expected.as_str()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("Invalid api-key"))
        }
    }
}

#[derive(Clone)]
struct Service {
    state: Arc<Mutex<State>>,
}

fn not_found(collection: &str) -> Status {
    Status::not_found(format!(
        "Not found: Collection `{collection}` doesn't exist!"
    ))
}

fn done() -> pb::PointsOperationResponse {
    pb::PointsOperationResponse {
        result: Some(pb::UpdateResult {
            operation_id: Some(0),
            status: pb::UpdateStatus::Completed as i32,
        }),
        time: 0.0,
        usage: None,
    }
}

/// Implements a generated service trait: the listed methods, and every other one (named with
/// its request and response types) as `Unimplemented`.
macro_rules! service_impl {
    (
        impl $trait:path {
            $($implemented:item)*
        }
        unimplemented { $($name:ident($req:ident) -> $resp:ident;)* }
    ) => {
        #[tonic::async_trait]
        impl $trait for Service {
            $($implemented)*
            $(
                async fn $name(
                    &self,
                    _request: Request<pb::$req>,
                ) -> Result<Response<pb::$resp>, Status> {
                    Err(Status::unimplemented(concat!(
                        "the Qdrant stand-in does not implement ",
                        stringify!($name)
                    )))
                }
            )*
        }
    };
}

service_impl! {
    impl Collections {
        async fn get(
            &self,
            request: Request<pb::GetCollectionInfoRequest>,
        ) -> Result<Response<pb::GetCollectionInfoResponse>, Status> {
            let name = request.into_inner().collection_name;
            let state = self.state.lock();
            let c = state.collections.get(&name).ok_or_else(|| not_found(&name))?;
            let params = pb::CollectionParams {
                shard_number: 1,
                vectors_config: Some(pb::VectorsConfig {
                    config: Some(vectors_config::Config::Params(pb::VectorParams {
                        size: c.size,
                        distance: c.distance,
                        ..Default::default()
                    })),
                }),
                replication_factor: Some(1),
                write_consistency_factor: Some(1),
                ..Default::default()
            };
            Ok(Response::new(pb::GetCollectionInfoResponse {
                result: Some(pb::CollectionInfo {
                    status: pb::CollectionStatus::Green as i32,
                    segments_count: 1,
                    config: Some(pb::CollectionConfig {
                        params: Some(params),
                        ..Default::default()
                    }),
                    payload_schema: c.payload_schema.clone(),
                    points_count: Some(c.points.len() as u64),
                    indexed_vectors_count: Some(0),
                    ..Default::default()
                }),
                time: 0.0,
            }))
        }

        async fn create(
            &self,
            request: Request<pb::CreateCollection>,
        ) -> Result<Response<pb::CollectionOperationResponse>, Status> {
            let request = request.into_inner();
            let params = match request.vectors_config.and_then(|v| v.config) {
                Some(vectors_config::Config::Params(params)) => params,
                Some(vectors_config::Config::ParamsMap(_)) => {
                    return Err(Status::unimplemented(
                        "the Qdrant stand-in supports only one unnamed vector",
                    ));
                }
                None => {
                    return Err(Status::invalid_argument(
                        "Wrong input: vectors configuration is required",
                    ));
                }
            };
            if params.size == 0 {
                return Err(Status::invalid_argument("Wrong input: vector size must be positive"));
            }
            if params.distance != pb::Distance::Cosine as i32 {
                return Err(Status::unimplemented(
                    "the Qdrant stand-in supports only cosine distance",
                ));
            }
            let mut state = self.state.lock();
            if state.collections.contains_key(&request.collection_name) {
                return Err(Status::already_exists(format!(
                    "Wrong input: Collection `{}` already exists!",
                    request.collection_name
                )));
            }
            state.collections.insert(
                request.collection_name,
                Collection {
                    size: params.size,
                    distance: params.distance,
                    points: BTreeMap::new(),
                    payload_schema: HashMap::new(),
                },
            );
            Ok(Response::new(pb::CollectionOperationResponse {
                result: true,
                time: 0.0,
            }))
        }

        async fn collection_exists(
            &self,
            request: Request<pb::CollectionExistsRequest>,
        ) -> Result<Response<pb::CollectionExistsResponse>, Status> {
            let name = request.into_inner().collection_name;
            let exists = self.state.lock().collections.contains_key(&name);
            Ok(Response::new(pb::CollectionExistsResponse {
                result: Some(pb::CollectionExists { exists }),
                time: 0.0,
            }))
        }
    }
    unimplemented {
        list(ListCollectionsRequest) -> ListCollectionsResponse;
        update(UpdateCollection) -> CollectionOperationResponse;
        delete(DeleteCollection) -> CollectionOperationResponse;
        update_aliases(ChangeAliases) -> CollectionOperationResponse;
        list_collection_aliases(ListCollectionAliasesRequest) -> ListAliasesResponse;
        list_aliases(ListAliasesRequest) -> ListAliasesResponse;
        collection_cluster_info(CollectionClusterInfoRequest) -> CollectionClusterInfoResponse;
        update_collection_cluster_setup(UpdateCollectionClusterSetupRequest)
            -> UpdateCollectionClusterSetupResponse;
        create_shard_key(CreateShardKeyRequest) -> CreateShardKeyResponse;
        delete_shard_key(DeleteShardKeyRequest) -> DeleteShardKeyResponse;
        list_shard_keys(ListShardKeysRequest) -> ListShardKeysResponse;
    }
}

service_impl! {
    impl Points {
        async fn upsert(
            &self,
            request: Request<pb::UpsertPoints>,
        ) -> Result<Response<pb::PointsOperationResponse>, Status> {
            let request = request.into_inner();
            if request.update_filter.is_some() || request.shard_key_selector.is_some() {
                return Err(Status::unimplemented(
                    "the Qdrant stand-in does not implement conditional or sharded upserts",
                ));
            }
            let mut state = self.state.lock();
            let count = request.points.len();
            let c = state
                .collections
                .get_mut(&request.collection_name)
                .ok_or_else(|| not_found(&request.collection_name))?;
            // Validate everything first: a request is applied whole or not at all.
            let mut parsed = Vec::with_capacity(count);
            for point in request.points {
                let key = point_key(point.id.as_ref())?;
                let vector = dense_vector(point.vectors)?;
                if vector.len() as u64 != c.size {
                    return Err(Status::invalid_argument(format!(
                        "Wrong input: Vector dimension error: expected dim: {}, got {}",
                        c.size,
                        vector.len()
                    )));
                }
                let stored = StoredPoint {
                    vector: normalised(vector),
                    payload: point.payload,
                };
                parsed.push((key, stored));
            }
            c.points.extend(parsed);
            state.writes.push(("upsert", count, request.wait.unwrap_or(false)));
            Ok(Response::new(done()))
        }

        async fn delete(
            &self,
            request: Request<pb::DeletePoints>,
        ) -> Result<Response<pb::PointsOperationResponse>, Status> {
            let request = request.into_inner();
            let mut state = self.state.lock();
            let c = state
                .collections
                .get_mut(&request.collection_name)
                .ok_or_else(|| not_found(&request.collection_name))?;
            match request.points.and_then(|p| p.points_selector_one_of) {
                Some(pb::points_selector::PointsSelectorOneOf::Filter(filter)) => {
                    check_filter(&filter)?;
                    c.points.retain(|key, point| !eval_filter(&filter, key, &point.payload));
                }
                Some(pb::points_selector::PointsSelectorOneOf::Points(list)) => {
                    for id in &list.ids {
                        c.points.remove(&point_key(Some(id))?);
                    }
                }
                None => return Err(Status::invalid_argument("Wrong input: no points selector")),
            }
            state.writes.push(("delete", 0, request.wait.unwrap_or(false)));
            Ok(Response::new(done()))
        }

        async fn create_field_index(
            &self,
            request: Request<pb::CreateFieldIndexCollection>,
        ) -> Result<Response<pb::PointsOperationResponse>, Status> {
            let request = request.into_inner();
            let data_type = match request.field_type.map(pb::FieldType::try_from) {
                Some(Ok(pb::FieldType::Keyword)) => pb::PayloadSchemaType::Keyword,
                Some(Ok(pb::FieldType::Integer)) => pb::PayloadSchemaType::Integer,
                _ => {
                    return Err(Status::unimplemented(
                        "the Qdrant stand-in indexes only keyword and integer fields",
                    ));
                }
            };
            let mut state = self.state.lock();
            let c = state
                .collections
                .get_mut(&request.collection_name)
                .ok_or_else(|| not_found(&request.collection_name))?;
            c.payload_schema.insert(
                request.field_name,
                pb::PayloadSchemaInfo {
                    data_type: data_type as i32,
                    params: request.field_index_params,
                    points: None,
                },
            );
            state.writes.push(("create_field_index", 0, request.wait.unwrap_or(false)));
            Ok(Response::new(done()))
        }

        async fn query(
            &self,
            request: Request<pb::QueryPoints>,
        ) -> Result<Response<pb::QueryResponse>, Status> {
            let request = request.into_inner();
            if !request.prefetch.is_empty()
                || request.using.as_deref().is_some_and(|u| !u.is_empty())
                || request.lookup_from.is_some()
            {
                return Err(Status::unimplemented(
                    "the Qdrant stand-in does not implement prefetch, named vectors or lookups",
                ));
            }
            let query = match request.query.and_then(|q| q.variant) {
                Some(pb::query::Variant::Nearest(input)) => match input.variant {
                    Some(pb::vector_input::Variant::Dense(dense)) => dense.data,
                    _ => {
                        return Err(Status::unimplemented(
                            "the Qdrant stand-in implements only nearest to a dense vector",
                        ));
                    }
                },
                _ => {
                    return Err(Status::unimplemented(
                        "the Qdrant stand-in implements only nearest-vector queries",
                    ));
                }
            };
            if let Some(filter) = &request.filter {
                check_filter(filter)?;
            }
            let with_payload = payload_wanted(request.with_payload.as_ref(), false)?;
            let limit = usize::try_from(request.limit.unwrap_or(10)).unwrap_or(usize::MAX);
            let offset = usize::try_from(request.offset.unwrap_or(0)).unwrap_or(usize::MAX);

            let state = self.state.lock();
            let c = state
                .collections
                .get(&request.collection_name)
                .ok_or_else(|| not_found(&request.collection_name))?;
            if query.len() as u64 != c.size {
                return Err(Status::invalid_argument(format!(
                    "Wrong input: Vector dimension error: expected dim: {}, got {}",
                    c.size,
                    query.len()
                )));
            }
            let query = normalised(query);
            let mut scored: Vec<(f32, &PointKey, &StoredPoint)> = c
                .points
                .iter()
                .filter(|(key, point)| {
                    request
                        .filter
                        .as_ref()
                        .is_none_or(|f| eval_filter(f, key, &point.payload))
                })
                .map(|(key, point)| (dot(&query, &point.vector), key, point))
                .filter(|(score, _, _)| request.score_threshold.is_none_or(|t| *score >= t))
                .collect();
            // Best first; ties in id order so answers are deterministic.
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            let result = scored
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(score, key, point)| pb::ScoredPoint {
                    id: Some(point_id(key)),
                    payload: with_payload.select(&point.payload),
                    score,
                    version: 0,
                    vectors: None,
                    shard_key: None,
                    order_value: None,
                })
                .collect();
            Ok(Response::new(pb::QueryResponse {
                result,
                time: 0.0,
                usage: None,
            }))
        }

        async fn scroll(
            &self,
            request: Request<pb::ScrollPoints>,
        ) -> Result<Response<pb::ScrollResponse>, Status> {
            let request = request.into_inner();
            if request.order_by.is_some() {
                return Err(Status::unimplemented(
                    "the Qdrant stand-in does not implement order_by",
                ));
            }
            if let Some(filter) = &request.filter {
                check_filter(filter)?;
            }
            let with_payload = payload_wanted(request.with_payload.as_ref(), true)?;
            let limit = request.limit.unwrap_or(10) as usize;
            if limit == 0 {
                return Err(Status::invalid_argument("Wrong input: limit must be positive"));
            }
            let start = request.offset.as_ref().map(|id| point_key(Some(id))).transpose()?;

            let state = self.state.lock();
            let c = state
                .collections
                .get(&request.collection_name)
                .ok_or_else(|| not_found(&request.collection_name))?;
            let from = start.as_ref().map_or(Bound::Unbounded, Bound::Included);
            let mut matching = c
                .points
                .range((from, Bound::Unbounded))
                .filter(|(key, point)| {
                    request
                        .filter
                        .as_ref()
                        .is_none_or(|f| eval_filter(f, key, &point.payload))
                });
            let result: Vec<pb::RetrievedPoint> = matching
                .by_ref()
                .take(limit)
                .map(|(key, point)| pb::RetrievedPoint {
                    id: Some(point_id(key)),
                    payload: with_payload.select(&point.payload),
                    vectors: None,
                    shard_key: None,
                    order_value: None,
                })
                .collect();
            let next_page_offset = matching.next().map(|(key, _)| point_id(key));
            Ok(Response::new(pb::ScrollResponse {
                next_page_offset,
                result,
                time: 0.0,
                usage: None,
            }))
        }

        async fn count(
            &self,
            request: Request<pb::CountPoints>,
        ) -> Result<Response<pb::CountResponse>, Status> {
            let request = request.into_inner();
            if let Some(filter) = &request.filter {
                check_filter(filter)?;
            }
            let state = self.state.lock();
            let c = state
                .collections
                .get(&request.collection_name)
                .ok_or_else(|| not_found(&request.collection_name))?;
            let count = c
                .points
                .iter()
                .filter(|(key, point)| {
                    request
                        .filter
                        .as_ref()
                        .is_none_or(|f| eval_filter(f, key, &point.payload))
                })
                .count();
            Ok(Response::new(pb::CountResponse {
                result: Some(pb::CountResult { count: count as u64 }),
                time: 0.0,
                usage: None,
            }))
        }
    }
    unimplemented {
        get(GetPoints) -> GetResponse;
        update_vectors(UpdatePointVectors) -> PointsOperationResponse;
        delete_vectors(DeletePointVectors) -> PointsOperationResponse;
        set_payload(SetPayloadPoints) -> PointsOperationResponse;
        overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
        delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
        clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
        delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
        create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
        delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
        search(SearchPoints) -> SearchResponse;
        search_batch(SearchBatchPoints) -> SearchBatchResponse;
        search_groups(SearchPointGroups) -> SearchGroupsResponse;
        recommend(RecommendPoints) -> RecommendResponse;
        recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
        recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
        discover(DiscoverPoints) -> DiscoverResponse;
        discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
        update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
        query_batch(QueryBatchPoints) -> QueryBatchResponse;
        query_groups(QueryPointGroups) -> QueryGroupsResponse;
        facet(FacetCounts) -> FacetResponse;
        search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
        search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
    }
}

service_impl! {
    impl Qdrant {
        async fn health_check(
            &self,
            _request: Request<pb::HealthCheckRequest>,
        ) -> Result<Response<pb::HealthCheckReply>, Status> {
            Ok(Response::new(pb::HealthCheckReply {
                title: "qdrant - vector search engine (test stand-in)".into(),
                version: "1.16.0".into(),
                commit: None,
            }))
        }
    }
    unimplemented {}
}

fn point_key(id: Option<&pb::PointId>) -> Result<PointKey, Status> {
    match id.and_then(|id| id.point_id_options.as_ref()) {
        Some(pb::point_id::PointIdOptions::Num(n)) => Ok(PointKey::Num(*n)),
        Some(pb::point_id::PointIdOptions::Uuid(s)) => {
            Uuid::parse_str(s).map(PointKey::Uuid).map_err(|_| {
                Status::invalid_argument(format!("Wrong input: Unable to parse UUID: {s}"))
            })
        }
        None => Err(Status::invalid_argument(
            "Wrong input: point id is required",
        )),
    }
}

fn point_id(key: &PointKey) -> pb::PointId {
    let options = match key {
        PointKey::Num(n) => pb::point_id::PointIdOptions::Num(*n),
        PointKey::Uuid(u) => pb::point_id::PointIdOptions::Uuid(u.to_string()),
    };
    pb::PointId {
        point_id_options: Some(options),
    }
}

/// The one unnamed dense vector of a point, in either encoding clients send.
#[allow(deprecated)]
fn dense_vector(vectors: Option<pb::Vectors>) -> Result<Vec<f32>, Status> {
    match vectors.and_then(|v| v.vectors_options) {
        Some(pb::vectors::VectorsOptions::Vector(vector)) => match vector.vector {
            Some(pb::vector::Vector::Dense(dense)) => Ok(dense.data),
            None if vector.indices.is_none() && !vector.data.is_empty() => Ok(vector.data),
            _ => Err(Status::unimplemented(
                "the Qdrant stand-in stores only dense vectors",
            )),
        },
        Some(pb::vectors::VectorsOptions::Vectors(_)) => Err(Status::unimplemented(
            "the Qdrant stand-in does not implement named vectors",
        )),
        None => Err(Status::invalid_argument(
            "Wrong input: point without vector",
        )),
    }
}

/// Which payload a query or scroll returns: none, all, or only some fields (an include
/// selector).
enum PayloadWanted {
    None,
    All,
    Only(Vec<String>),
}

impl PayloadWanted {
    fn select(&self, payload: &HashMap<String, pb::Value>) -> HashMap<String, pb::Value> {
        match self {
            Self::None => HashMap::new(),
            Self::All => payload.clone(),
            Self::Only(fields) => payload
                .iter()
                .filter(|(key, _)| fields.contains(key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        }
    }
}

fn payload_wanted(
    selector: Option<&pb::WithPayloadSelector>,
    default: bool,
) -> Result<PayloadWanted, Status> {
    let all = |enable: bool| {
        if enable {
            PayloadWanted::All
        } else {
            PayloadWanted::None
        }
    };
    match selector.and_then(|s| s.selector_options.as_ref()) {
        None => Ok(all(default)),
        Some(pb::with_payload_selector::SelectorOptions::Enable(enable)) => Ok(all(*enable)),
        Some(pb::with_payload_selector::SelectorOptions::Include(include)) => {
            Ok(PayloadWanted::Only(include.fields.clone()))
        }
        Some(_) => Err(Status::unimplemented(
            "the Qdrant stand-in does not implement payload exclude selectors",
        )),
    }
}

/// The vector scaled to unit length, as Qdrant stores and queries cosine vectors (a zero
/// vector stays zero).
fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > f32::EPSILON {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Rejects a filter using anything this stand-in does not evaluate.
fn check_filter(filter: &pb::Filter) -> Result<(), Status> {
    let conditions = filter
        .must
        .iter()
        .chain(&filter.should)
        .chain(&filter.must_not);
    let min_should = filter.min_should.iter().flat_map(|m| m.conditions.iter());
    for c in conditions.chain(min_should) {
        match &c.condition_one_of {
            Some(condition::ConditionOneOf::Field(field)) => check_field(field)?,
            Some(condition::ConditionOneOf::Filter(inner)) => check_filter(inner)?,
            Some(condition::ConditionOneOf::HasId(has_id)) => {
                for id in &has_id.has_id {
                    point_key(Some(id))?;
                }
            }
            _ => {
                return Err(Status::unimplemented(format!(
                    "the Qdrant stand-in does not evaluate condition {c:?}"
                )));
            }
        }
    }
    Ok(())
}

fn check_field(field: &pb::FieldCondition) -> Result<(), Status> {
    let only_match = field.range.is_none()
        && field.geo_bounding_box.is_none()
        && field.geo_radius.is_none()
        && field.values_count.is_none()
        && field.geo_polygon.is_none()
        && field.datetime_range.is_none()
        && field.is_empty.is_none()
        && field.is_null.is_none();
    let flat_key = !field.key.is_empty() && !field.key.contains(['.', '[']);
    let supported = matches!(
        field.r#match.as_ref().and_then(|m| m.match_value.as_ref()),
        Some(
            r#match::MatchValue::Keyword(_)
                | r#match::MatchValue::Integer(_)
                | r#match::MatchValue::Boolean(_)
                | r#match::MatchValue::Text(_)
                | r#match::MatchValue::Keywords(_)
                | r#match::MatchValue::Integers(_)
        )
    );
    if only_match && flat_key && supported {
        Ok(())
    } else {
        Err(Status::unimplemented(format!(
            "the Qdrant stand-in does not evaluate field condition {field:?}"
        )))
    }
}

/// Qdrant's filter semantics; the filter has passed `check_filter`.
fn eval_filter(filter: &pb::Filter, key: &PointKey, payload: &HashMap<String, pb::Value>) -> bool {
    let holds = |c: &pb::Condition| eval_condition(c, key, payload);
    filter.must.iter().all(holds)
        && !filter.must_not.iter().any(holds)
        && (filter.should.is_empty() || filter.should.iter().any(holds))
        && filter
            .min_should
            .as_ref()
            .is_none_or(|m| m.conditions.iter().filter(|c| holds(c)).count() as u64 >= m.min_count)
}

fn eval_condition(
    condition: &pb::Condition,
    key: &PointKey,
    payload: &HashMap<String, pb::Value>,
) -> bool {
    match &condition.condition_one_of {
        Some(condition::ConditionOneOf::Field(field)) => {
            let Some(wanted) = field.r#match.as_ref().and_then(|m| m.match_value.as_ref()) else {
                return false;
            };
            // A field holding an array matches when any element does.
            let values: Vec<&pb::Value> =
                match payload.get(&field.key).and_then(|v| v.kind.as_ref()) {
                    Some(value::Kind::ListValue(list)) => list.values.iter().collect(),
                    Some(_) => payload.get(&field.key).into_iter().collect(),
                    None => Vec::new(),
                };
            values.into_iter().any(|v| match_value(wanted, v))
        }
        Some(condition::ConditionOneOf::Filter(inner)) => eval_filter(inner, key, payload),
        Some(condition::ConditionOneOf::HasId(has_id)) => has_id
            .has_id
            .iter()
            .any(|id| point_key(Some(id)).is_ok_and(|k| k == *key)),
        _ => false,
    }
}

fn match_value(wanted: &r#match::MatchValue, value: &pb::Value) -> bool {
    use r#match::MatchValue as M;
    use value::Kind as K;
    match (wanted, value.kind.as_ref()) {
        (M::Keyword(w), Some(K::StringValue(s))) => w == s,
        (M::Keywords(list), Some(K::StringValue(s))) => list.strings.contains(s),
        // Without a full-text index the server matches when every term is a substring.
        (M::Text(w), Some(K::StringValue(s))) => w.split_whitespace().all(|t| s.contains(t)),
        (M::Integer(w), Some(K::IntegerValue(i))) => w == i,
        (M::Integers(list), Some(K::IntegerValue(i))) => list.integers.contains(i),
        (M::Boolean(w), Some(K::BoolValue(b))) => w == b,
        _ => false,
    }
}
