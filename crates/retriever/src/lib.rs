//! The retriever: hybrid search. Dense search in the vector store and BM25 in the keyword
//! index run concurrently; their scores are fused (weighted with alpha, or RRF).
//!
//! A search runs in two phases: both sides return only ids and scores for their candidates
//! (`search_ids`: no text is read or sent for the hundreds that fusion drops), the catalog
//! check and fusion pick the top k, and only then are those k chunks read, with one exact
//! lookup by point id in the keyword index. With adjacent-chunk expansion the hits'
//! neighbours come from the same lookup (`expansion`). A search that asks for reranking
//! reads the fused top `retriever.rerank_candidates` instead and has the reranker choose the
//! top k among them (`rerank`).
//!
//! Owns the fusion arithmetic and the search filters (tenant always, domain when asked).
//! Must not generate, cache or write to the indexes.

pub mod expansion;
pub mod fusion;
pub mod rerank;

use rag_grpc::Readiness;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument as _;

use rag_backends::generation::{self, Generation};
use rag_backends::rag_catalog::Catalog;
use rag_backends::rag_embeddings::Reranker;
use rag_backends::rag_keyword_index::KeywordIndex;
use rag_backends::rag_vector_store::VectorStore;
use rag_config::{Fusion, RetrieverSettings, Settings};
use rag_core::{ChunkRecord, DocumentId, SearchFilter, ServiceError, validate};
use rag_grpc::Channel;
use rag_proto::embedder_service_client::EmbedderServiceClient;
use rag_proto::retriever_service_server::{RetrieverService, RetrieverServiceServer};
use rag_proto::{FusionMode, ScoredChunk, SearchRequest, SearchResponse};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::fusion::Method;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4_000;
/// Most hits one search may ask for.
pub const MAX_TOP_K: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum RetrieverError {
    #[error(transparent)]
    Backend(#[from] rag_backends::BackendError),
    #[error(transparent)]
    Grpc(#[from] rag_grpc::GrpcError),
}

/// Serves the retriever on `listener` until `shutdown` resolves. Ready while both indexes,
/// the catalog and the embedder are.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RetrieverError> {
    let readiness = Readiness::new("retriever");
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    rag_grpc::with_stop(shutdown, |stop| async move {
        let following = rag_grpc::start_with_retries("retriever", "indexes", &stop, || {
            generation::follow(settings.clone(), |generation| async move {
                Indexes::open(&generation)
            })
        });
        let Some(indexes) = following.await else {
            return Ok(());
        };
        let embedder =
            rag_grpc::lazy_channel(&settings.retriever.embedder_url, Duration::from_secs(10))?;
        let current = indexes.receiver();
        let mut readiness = readiness.check("embedder", {
            let embedder = embedder.clone();
            move || rag_grpc::health_status(embedder.clone(), "")
        });
        for dependency in Indexes::DEPENDENCIES {
            let current = current.clone();
            readiness = readiness.check(dependency, move || {
                let indexes = Arc::clone(&current.borrow());
                async move { indexes.1.check(dependency).await }
            });
        }
        let retriever = Retriever {
            indexes: current,
            embedder: EmbedderServiceClient::new(embedder),
            reranker: rag_backends::reranker(&settings).await?,
            settings: settings.retriever.clone(),
            default_top_k: settings.router.top_k,
        };
        let service = RetrieverServiceServer::new(retriever);
        rag_grpc::serve_service(listener, service, readiness, stop, grace).await?;
        // The indexes are closed when this returns: another process may open them next.
        indexes.close().await;
        Ok(())
    })
    .await
}

/// The indexes of one generation, which a search uses together.
#[derive(Debug)]
struct Indexes {
    vectors: Arc<dyn VectorStore>,
    keywords: Arc<dyn KeywordIndex>,
    catalog: Arc<dyn Catalog>,
    /// The model that embedded the chunks, when the generation records it (generation 0
    /// is embedded with the configured one).
    model_id: Option<String>,
}

impl Indexes {
    /// What [`Indexes::check`] can check.
    const DEPENDENCIES: [&'static str; 3] = ["vector_store", "keyword_index", "catalog"];

    /// Whether `dependency` (one of [`Self::DEPENDENCIES`]) answers.
    async fn check(&self, dependency: &str) -> Result<(), String> {
        match dependency {
            "vector_store" => self.vectors.health().await.map_err(|e| e.to_string()),
            "keyword_index" => self.keywords.health().await.map_err(|e| e.to_string()),
            "catalog" => self.catalog.health().await.map_err(|e| e.to_string()),
            other => Err(format!("no such dependency: {other}")),
        }
    }

    fn open(generation: &Generation) -> Result<Self, rag_backends::BackendError> {
        let settings = &generation.settings;
        let dimensions = match &generation.manifest {
            Some(manifest) => manifest.dimensions,
            None => rag_backends::embedding_dimensions(settings),
        };
        Ok(Self {
            vectors: rag_backends::vector_store(settings, dimensions)?,
            keywords: rag_backends::keyword_index(settings)?,
            catalog: rag_backends::catalog(settings)?,
            model_id: generation.manifest.as_ref().map(|m| m.model_id.clone()),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Retriever {
    /// The current generation's indexes; a search takes them once and uses only them.
    indexes: watch::Receiver<Arc<(u64, Indexes)>>,
    embedder: EmbedderServiceClient<Channel>,
    /// `None` when `reranker.kind` is `none`.
    reranker: Option<Arc<dyn Reranker>>,
    settings: RetrieverSettings,
    default_top_k: u32,
}

impl Retriever {
    async fn search(&self, request: SearchRequest) -> Result<SearchResponse, ServiceError> {
        let query = request.query.trim();
        if query.is_empty() {
            return Err(ServiceError::invalid_field(
                "query",
                "query must not be empty",
            ));
        }
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(ServiceError::invalid_field(
                "query",
                format!("query is longer than {MAX_QUERY_CHARS} characters"),
            ));
        }
        validate::name("tenant", &request.tenant)?;
        if !request.domain.is_empty() {
            validate::name("domain", &request.domain)?;
        }
        let top_k = match request.top_k {
            0 => self.default_top_k,
            k if k > MAX_TOP_K => {
                return Err(ServiceError::invalid_field(
                    "top_k",
                    format!("top_k must be at most {MAX_TOP_K}"),
                ));
            }
            k => k,
        } as usize;
        let alpha = request.alpha.unwrap_or(self.settings.alpha);
        if !(0.0..=1.0).contains(&alpha) {
            return Err(ServiceError::invalid_field(
                "alpha",
                "alpha must be in [0, 1]",
            ));
        }
        let neighbours = request.neighbours.unwrap_or(self.settings.neighbours);
        if neighbours > self.settings.max_neighbours {
            return Err(ServiceError::invalid_field(
                "neighbours",
                format!(
                    "neighbours must be at most {}",
                    self.settings.max_neighbours
                ),
            ));
        }
        let reranker = match (
            request.rerank.unwrap_or(self.settings.rerank),
            &self.reranker,
        ) {
            (false, _) => None,
            (true, Some(reranker)) => Some(reranker.as_ref()),
            (true, None) => {
                return Err(ServiceError::failed_precondition(
                    "reranking was asked for, but this retriever has no reranker \
                     (reranker.kind = \"none\"); configure reranker.kind, or search without rerank",
                )
                .with_field("rerank"));
            }
        };
        // The fused hits read (and reranked): the top k, or the rerank's candidates.
        let pool = match reranker {
            Some(_) => top_k.max(self.settings.rerank_candidates as usize),
            None => top_k,
        };
        let mode = request.fusion();
        let filter = SearchFilter::new(request.tenant.clone(), Some(request.domain.clone()));
        let candidates = (top_k * self.settings.candidates_per_hit as usize)
            .max(self.settings.min_candidates as usize)
            .max(pool);

        let indexes = self.indexes.borrow().clone();
        let (generation, indexes) = (indexes.0, &indexes.1);
        let want_dense = mode != FusionMode::KeywordOnly;
        let want_keyword = mode != FusionMode::DenseOnly;
        let dense = async {
            if !want_dense {
                return Ok(Vec::new());
            }
            let usable = !request.query_vector.is_empty()
                && indexes
                    .model_id
                    .as_ref()
                    .is_none_or(|id| *id == request.query_model);
            let vector = if usable {
                request.query_vector.clone()
            } else {
                self.embed(query, generation).await?
            };
            indexes
                .vectors
                .search_ids(&vector, &filter, candidates)
                .await
                .map(|hits| {
                    hits.into_iter()
                        .map(|h| Candidate {
                            id: h.id,
                            document_id: h.document_id,
                            version: h.version,
                            chunk_index: Some(h.chunk_index),
                            score: h.score,
                        })
                        .collect::<Vec<_>>()
                })
                .map_err(ServiceError::from)
        }
        .instrument(tracing::info_span!("dense_search", candidates));
        let keyword = async {
            if !want_keyword {
                return Ok(Vec::new());
            }
            indexes
                .keywords
                .search_ids(query, &filter, candidates)
                .await
                .map(|hits| {
                    hits.into_iter()
                        .map(|h| Candidate {
                            id: h.id,
                            document_id: h.document_id,
                            version: h.version,
                            chunk_index: None,
                            score: h.score,
                        })
                        .collect::<Vec<_>>()
                })
                .map_err(ServiceError::from)
        }
        .instrument(tracing::info_span!("bm25_search", candidates));
        let (dense, keyword) = tokio::try_join!(dense, keyword)?;
        let (dense, keyword) = visible_only(indexes, &request.tenant, dense, keyword).await?;

        let method = match (mode, self.settings.fusion) {
            (FusionMode::Rrf, _) | (FusionMode::Unspecified, Fusion::Rrf) => Method::Rrf {
                k: self.settings.rrf_k,
            },
            (FusionMode::DenseOnly, _) => Method::Weighted { alpha: 1.0 },
            (FusionMode::KeywordOnly, _) => Method::Weighted { alpha: 0.0 },
            (_, Fusion::Zscore) => Method::Zscore { alpha },
            _ => Method::Weighted { alpha },
        };
        let ids = |list: &[Candidate]| list.iter().map(|c| (c.id, c.score)).collect::<Vec<_>>();
        let mut fused = tracing::info_span!("fuse", method = ?method)
            .in_scope(|| fusion::fuse(&ids(&dense), &ids(&keyword), method));
        fused.truncate(pool);

        // Only the chunks of the hits (and of their neighbours) are read.
        let mut chunks = load_chunks(indexes, &request.tenant, &fused, &dense)
            .instrument(tracing::info_span!("load_chunks", hits = fused.len()))
            .await?;
        let hits: Vec<(fusion::Fused, ChunkRecord)> = fused
            .into_iter()
            .filter_map(|f| chunks.remove(&f.id).map(|chunk| (f, chunk)))
            .collect();
        let hits: Vec<(fusion::Fused, ChunkRecord, Option<f32>)> = match reranker {
            Some(reranker) if !hits.is_empty() => {
                let span = tracing::info_span!(
                    "rerank",
                    candidates = hits.len(),
                    model = reranker.model_id()
                );
                rerank::rerank(reranker, query, hits, top_k)
                    .instrument(span)
                    .await?
                    .into_iter()
                    .map(|(f, chunk, score)| (f, chunk, Some(score)))
                    .collect()
            }
            _ => hits
                .into_iter()
                .map(|(f, chunk)| (f, chunk, None))
                .collect(),
        };
        let neighbours = if neighbours > 0 && !hits.is_empty() {
            let records: Vec<&ChunkRecord> = hits.iter().map(|(_, c, _)| c).collect();
            let wanted = expansion::wanted(&records, neighbours);
            let found = indexes
                .keywords
                .get(&request.tenant, &wanted)
                .instrument(tracing::info_span!("neighbours", wanted = wanted.len()))
                .await
                .map_err(ServiceError::from)?;
            expansion::attach(&records, found, neighbours)
        } else {
            Vec::new()
        };
        let mut neighbours = neighbours.into_iter();
        let hits = hits
            .into_iter()
            .map(|(f, chunk, rerank_score)| {
                let around = neighbours.next().unwrap_or_default();
                ScoredChunk {
                    chunk: Some(chunk.into()),
                    score: f.score,
                    dense_score: f.dense,
                    keyword_score: f.keyword,
                    before: around.before.into_iter().map(Into::into).collect(),
                    after: around.after.into_iter().map(Into::into).collect(),
                    rerank_score,
                }
            })
            .collect();
        Ok(SearchResponse { hits })
    }

    /// `query` embedded by the model of index generation `generation`.
    async fn embed(&self, query: &str, generation: u64) -> Result<Vec<f32>, ServiceError> {
        rag_grpc::embed_one(&self.embedder, query, Some(generation))
            .await
            .map(|embedding| embedding.values)
    }
}

/// A candidate of one side: its ids and raw score, no text.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Candidate {
    id: Uuid,
    document_id: DocumentId,
    version: u64,
    /// Known for dense candidates (the vector store's payload has it).
    chunk_index: Option<u32>,
    score: f32,
}

/// Keeps only chunks of the version of their document that the catalog says readers see:
/// a new version's chunks appear, and the old one's disappear, at the one moment the
/// catalog switches; a document being deleted disappears at once.
async fn visible_only(
    indexes: &Indexes,
    tenant: &str,
    dense: Vec<Candidate>,
    keyword: Vec<Candidate>,
) -> Result<(Vec<Candidate>, Vec<Candidate>), ServiceError> {
    let mut ids: Vec<_> = dense
        .iter()
        .chain(&keyword)
        .map(|c| c.document_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let visible = indexes
        .catalog
        .visible_versions(tenant, &ids)
        .await
        .map_err(ServiceError::from)?;
    let keep = |list: Vec<Candidate>| {
        list.into_iter()
            .filter(|c| visible.get(&c.document_id) == Some(&c.version))
            .collect::<Vec<_>>()
    };
    Ok((keep(dense), keep(keyword)))
}

/// The chunks of the fused hits by point id: one exact lookup in the keyword index; a dense
/// hit the keyword index does not have yet (a reader that has not caught up with a commit)
/// is read from the vector store.
async fn load_chunks(
    indexes: &Indexes,
    tenant: &str,
    hits: &[fusion::Fused],
    dense: &[Candidate],
) -> Result<HashMap<Uuid, ChunkRecord>, ServiceError> {
    if hits.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = hits.iter().map(|f| f.id).collect();
    let mut chunks: HashMap<Uuid, ChunkRecord> = indexes
        .keywords
        .get(tenant, &ids)
        .await
        .map_err(ServiceError::from)?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut missing: BTreeMap<(DocumentId, u64), Vec<u32>> = BTreeMap::new();
    for f in hits.iter().filter(|f| !chunks.contains_key(&f.id)) {
        if let Some(c) = dense.iter().find(|c| c.id == f.id)
            && let Some(index) = c.chunk_index
        {
            missing
                .entry((c.document_id, c.version))
                .or_default()
                .push(index);
        }
    }
    for ((document_id, version), indexes_wanted) in missing {
        let found = indexes
            .vectors
            .get_chunks(tenant, document_id, version, &indexes_wanted)
            .await
            .map_err(ServiceError::from)?;
        chunks.extend(found.into_iter().map(|c| (c.id, c)));
    }
    Ok(chunks)
}

#[tonic::async_trait]
impl RetrieverService for Retriever {
    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, domain = %request.get_ref().domain))]
    async fn search(
        &self,
        request: Request<SearchRequest>,
    ) -> Result<Response<SearchResponse>, Status> {
        Ok(Response::new(
            Retriever::search(self, request.into_inner()).await?,
        ))
    }
}
