//! The router: the query path. Exact cache → retrieval → generation, and the metadata that
//! says how each answer was made (citations, model, tier, cache status, usage).
//!
//! Owns the answer cache's keys (and so its invariants: never across tenants or domains,
//! never older than the domain's last document change) and the generator. Must not touch
//! the indexes directly: retrieval goes through the retriever.

pub mod extractive;
pub mod routing;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use prost::Message as _;
use rag_backends::rag_cache::Cache;
use rag_config::{Settings, Tier};
use rag_core::{ServiceError, validate};
use rag_proto::embedder_service_client::EmbedderServiceClient;
use rag_proto::retriever_service_client::RetrieverServiceClient;
use rag_proto::router_service_server::{RouterService, RouterServiceServer};
use rag_proto::{
    AnswerEvent, AnswerRequest, AnswerResponse, CacheStatus, Citation, Domain, ListDomainsRequest,
    ListDomainsResponse, ScoredChunk, SearchRequest, TokenDelta, Usage, answer_event,
};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::extractive::{Answer, Passage};

/// Characters of a chunk shown as a citation's snippet.
const SNIPPET_CHARS: usize = 240;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Backend(#[from] rag_backends::BackendError),
    #[error(transparent)]
    Grpc(#[from] rag_grpc::GrpcError),
}

/// Serves the router on `listener` until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RouterError> {
    // The cache key names the index generation; following it keeps file reads off the
    // query path.
    let generation = rag_backends::generation::follow(settings.clone(), |_| async {
        Ok::<_, rag_backends::BackendError>(())
    })
    .await?;
    let router = Router::new(&settings, generation.receiver())?;
    rag_grpc::serve_service(listener, RouterServiceServer::new(router), shutdown).await?;
    generation.close().await;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Router {
    settings: Arc<Settings>,
    retriever: RetrieverServiceClient<Channel>,
    embedder: EmbedderServiceClient<Channel>,
    cache: Option<Arc<dyn Cache>>,
    /// The current index generation (answers of another generation are other answers).
    generation: watch::Receiver<Arc<(u64, ())>>,
}

impl Router {
    pub fn new(
        settings: &Settings,
        generation: watch::Receiver<Arc<(u64, ())>>,
    ) -> Result<Self, RouterError> {
        let timeout = Duration::from_secs(30);
        Ok(Self {
            generation,
            retriever: RetrieverServiceClient::new(rag_grpc::lazy_channel(
                &settings.router.retriever_url,
                timeout,
            )?),
            embedder: EmbedderServiceClient::new(rag_grpc::lazy_channel(
                &settings.router.embedder_url,
                timeout,
            )?),
            cache: if settings.cache.enabled {
                Some(rag_backends::cache(settings)?)
            } else {
                None
            },
            settings: Arc::new(settings.clone()),
        })
    }

    fn validate(&self, request: &AnswerRequest) -> Result<(), ServiceError> {
        let question = request.question.trim();
        if question.is_empty() {
            return Err(ServiceError::invalid_field(
                "question",
                "question must not be empty",
            ));
        }
        let max = self.settings.router.max_question_chars;
        if question.chars().count() > max {
            return Err(ServiceError::invalid_field(
                "question",
                format!("question is longer than {max} characters"),
            ));
        }
        validate::name("tenant", &request.tenant)?;
        if !request.domain.is_empty() && self.settings.domain(&request.domain).is_none() {
            let known: Vec<&str> = self
                .settings
                .domains
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            return Err(ServiceError::invalid_field(
                "domain",
                format!(
                    "unknown domain {:?}; known domains: {}",
                    request.domain,
                    known.join(", ")
                ),
            ));
        }
        if request.top_k > self.settings.router.max_top_k {
            return Err(ServiceError::invalid_field(
                "top_k",
                format!("top_k must be at most {}", self.settings.router.max_top_k),
            ));
        }
        if request.alpha.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
            return Err(ServiceError::invalid_field(
                "alpha",
                "alpha must be in [0, 1]",
            ));
        }
        Ok(())
    }

    /// Answers one question, from the cache when it can.
    pub async fn answer(&self, request: AnswerRequest) -> Result<AnswerResponse, ServiceError> {
        let started = Instant::now();
        self.validate(&request)?;
        let query_id = if request.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            request.request_id.clone()
        };
        let cache_key = self.cache_key(&request).await;
        if let (Some(cache), Some(key)) = (&self.cache, &cache_key) {
            match cache.get(key).await {
                Ok(Some(bytes)) => {
                    if let Ok(mut cached) = AnswerResponse::decode(bytes.as_slice()) {
                        cached.query_id = query_id;
                        cached.cache = CacheStatus::Exact.into();
                        cached.usage = Some(Usage::default());
                        cached.latency_ms = elapsed_ms(started);
                        return Ok(cached);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cache lookup failed; answering without it"),
            }
        }

        let question = request.question.trim().to_owned();
        let embedding = self.embed(&question).await?;
        let hits = self
            .retriever
            .clone()
            .search(SearchRequest {
                query: question.clone(),
                tenant: request.tenant.clone(),
                domain: request.domain.clone(),
                top_k: if request.top_k == 0 {
                    self.settings.router.top_k
                } else {
                    request.top_k
                },
                query_vector: embedding.values,
                query_model: embedding.model,
                alpha: request.alpha,
                fusion: 0,
            })
            .await
            .map_err(ServiceError::from)?
            .into_inner()
            .hits;

        let (tier, tier_reasons) = self.route(&request.domain, &question);
        let mut response = compose(&question, &hits, self.options());
        response.query_id = query_id;
        response.tier = tier.as_str().into();
        response.tier_reasons = tier_reasons;
        response.cache = CacheStatus::Miss.into();
        response.latency_ms = elapsed_ms(started);

        if let (Some(cache), Some(key)) = (&self.cache, cache_key) {
            let ttl = Duration::from_secs(self.settings.cache.ttl_secs);
            if let Err(e) = cache.put(&key, response.encode_to_vec(), ttl).await {
                tracing::warn!(error = %e, "cache store failed");
            }
        }
        Ok(response)
    }

    fn options(&self) -> extractive::Options {
        extractive::Options {
            min_relevance: self.settings.router.min_relevance,
            confident_relevance: self.settings.router.confident_relevance,
            min_support: self.settings.router.min_support,
            max_sentences: self.settings.router.max_answer_sentences,
        }
    }

    /// The model tier for a question: the complexity analyser under its domain's rules.
    fn route(&self, domain: &str, question: &str) -> (Tier, Vec<String>) {
        let decision = routing::analyse(
            question,
            self.settings.domain(domain),
            &self.settings.router.routing,
        );
        tracing::debug!(
            tier = decision.tier.as_str(),
            score = decision.score,
            threshold = decision.threshold,
            words = decision.features.words,
            logical_operators = decision.features.logical_operators,
            technical_terms = decision.features.technical_terms,
            "routed"
        );
        (decision.tier, decision.reasons)
    }

    /// The exact-cache key: tenant, domain, retrieval parameters, the normalised question,
    /// the epoch of the scope, which every document change bumps, and the index generation
    /// (a re-index changes answers too). `None` (no caching) when the epoch cannot be read,
    /// so a stale answer is never served.
    async fn cache_key(&self, request: &AnswerRequest) -> Option<String> {
        let cache = self.cache.as_ref()?;
        let generation = self.generation.borrow().0;
        let domain = if request.domain.is_empty() {
            "*"
        } else {
            request.domain.as_str()
        };
        let scope = format!("{}/{domain}", request.tenant);
        let epoch = match cache.epoch(&scope).await {
            Ok(epoch) => epoch,
            Err(e) => {
                tracing::warn!(error = %e, "cache epoch unreadable; not caching");
                return None;
            }
        };
        let mut hash = Sha256::new();
        hash.update(normalise_question(&request.question).as_bytes());
        hash.update([0]);
        hash.update(request.top_k.to_be_bytes());
        hash.update(
            request
                .alpha
                .map(f32::to_bits)
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        Some(format!(
            "answer:{}:{domain}:{epoch}:g{generation}:{}",
            request.tenant,
            hex::encode(hash.finalize())
        ))
    }

    async fn embed(&self, question: &str) -> Result<rag_grpc::QueryEmbedding, ServiceError> {
        rag_grpc::embed_one(&self.embedder, question, None).await
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Lower-case, single spaces, no trailing punctuation: "How many days?" ≡ "how many  days".
pub fn normalise_question(question: &str) -> String {
    question
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .trim_end_matches(['?', '!', '.', ' '])
        .to_owned()
}

/// Builds the answer and its citations from the retrieved chunks.
fn compose(question: &str, hits: &[ScoredChunk], options: extractive::Options) -> AnswerResponse {
    let passages: Vec<Passage<'_>> = hits
        .iter()
        .map(|h| Passage {
            text: h
                .chunk
                .as_ref()
                .map(|c| c.text.as_str())
                .unwrap_or_default(),
            dense: h.dense_score,
            score: h.score,
        })
        .collect();
    let mut response = AnswerResponse {
        model: extractive::MODEL.into(),
        prompt_version: "extractive-v1".into(),
        usage: Some(Usage::default()),
        ..AnswerResponse::default()
    };
    match extractive::answer(question, &passages, options) {
        Answer::DontKnow => {
            response.answer = extractive::DONT_KNOW.into();
            response.grounded = false;
        }
        Answer::Grounded(sentences) => {
            // Number the cited chunks in order of first use.
            let mut cited: Vec<usize> = Vec::new();
            let mut parts = Vec::with_capacity(sentences.len());
            for sentence in &sentences {
                let number = match cited.iter().position(|&p| p == sentence.passage) {
                    Some(i) => i + 1,
                    None => {
                        cited.push(sentence.passage);
                        cited.len()
                    }
                };
                parts.push(format!("{} [{number}]", sentence.text));
            }
            response.answer = parts.join(" ");
            response.grounded = true;
            response.citations = cited
                .iter()
                .enumerate()
                .filter_map(|(i, &p)| {
                    let hit = &hits[p];
                    let chunk = hit.chunk.as_ref()?;
                    Some(Citation {
                        document_id: chunk.document_id.clone(),
                        title: chunk.title.clone(),
                        chunk_index: chunk.chunk_index,
                        score: hit.score,
                        snippet: snippet(&chunk.text),
                        domain: chunk.domain.clone(),
                        page: chunk.page,
                        number: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    })
                })
                .collect();
        }
    }
    response
}

fn snippet(text: &str) -> String {
    if text.chars().count() <= SNIPPET_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(SNIPPET_CHARS).collect();
    let cut = cut.rsplit_once(' ').map(|(head, _)| head).unwrap_or(&cut);
    format!("{cut}…")
}

/// Splits an answer into the pieces streamed as tokens: one sentence (with its citation
/// mark) at a time, each but the first led by its separating space.
fn stream_pieces(answer: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for part in answer.split_inclusive("] ") {
        current.push_str(part);
        if part.ends_with("] ") {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

type AnswerStream = Pin<Box<dyn Stream<Item = Result<AnswerEvent, Status>> + Send>>;

#[tonic::async_trait]
impl RouterService for Router {
    type AnswerStream = AnswerStream;

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, domain = %request.get_ref().domain))]
    async fn answer(
        &self,
        request: Request<AnswerRequest>,
    ) -> Result<Response<Self::AnswerStream>, Status> {
        let response = Router::answer(self, request.into_inner()).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            for piece in stream_pieces(&response.answer) {
                let event = AnswerEvent {
                    event: Some(answer_event::Event::Token(TokenDelta { text: piece })),
                };
                if tx.send(Ok(event)).await.is_err() {
                    return; // The client went away.
                }
            }
            let _ = tx
                .send(Ok(AnswerEvent {
                    event: Some(answer_event::Event::Complete(response)),
                }))
                .await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, domain = %request.get_ref().domain))]
    async fn answer_unary(
        &self,
        request: Request<AnswerRequest>,
    ) -> Result<Response<AnswerResponse>, Status> {
        Ok(Response::new(
            Router::answer(self, request.into_inner()).await?,
        ))
    }

    async fn list_domains(
        &self,
        _request: Request<ListDomainsRequest>,
    ) -> Result<Response<ListDomainsResponse>, Status> {
        let domains = self
            .settings
            .domains
            .iter()
            .map(|d| Domain {
                name: d.name.clone(),
                description: d.description.clone(),
                default_tier: d.default_tier.as_str().into(),
            })
            .collect();
        Ok(Response::new(ListDomainsResponse { domains }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_normalise() {
        assert_eq!(normalise_question("  How many   DAYS? "), "how many days");
        assert_eq!(normalise_question("how many days"), "how many days");
    }

    #[test]
    fn pieces_rebuild_the_answer() {
        let answer = "One thing. [1] Another thing. [2] Last. [1]";
        let pieces = stream_pieces(answer);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), answer);
        assert_eq!(
            stream_pieces(extractive::DONT_KNOW).concat(),
            extractive::DONT_KNOW
        );
    }

    #[test]
    fn snippets_cut_at_a_word() {
        let long = "word ".repeat(100);
        let s = snippet(&long);
        assert!(s.ends_with('…'));
        assert!(s.chars().count() <= SNIPPET_CHARS + 1);
        assert_eq!(snippet("short"), "short");
    }
}
