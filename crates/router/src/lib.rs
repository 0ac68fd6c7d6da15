//! The router: the query path. Guardrails → exact cache → embedding → semantic cache →
//! retrieval → the tier's writer → citations, and the metadata that says how each answer
//! was made (model, tier and why, prompt version, cache status, tokens and cost). Every
//! answer is recorded for feedback.
//!
//! Owns the answer cache's keys (and so its invariants: never across tenants, domains,
//! epochs or index generations, never below the semantic threshold, never past the semantic
//! guard: [`lexical`]) and the writers. A semantic hit is filed under the asking question's
//! exact key as an alias of the answer it found, so that question asked again is an exact
//! hit. Must not touch the indexes directly: retrieval goes through the retriever.

pub mod drift;
pub mod extractive;
pub mod lexical;
pub mod live;
pub mod prompts;
pub mod routing;
pub mod writer;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::Stream;
use prost::Message as _;
use rag_backends::rag_cache::Cache;
use rag_backends::rag_feedback::{AnswerRecord, Feedback, FeedbackError, FeedbackStore, Rating};
use rag_config::{Settings, Tier};
use rag_core::{ErrorCode, ServiceError, validate};
use rag_grpc::Channel;
use rag_grpc::Readiness;
use rag_guardrails::DeniedTopic;
use rag_proto::embedder_service_client::EmbedderServiceClient;
use rag_proto::retriever_service_client::RetrieverServiceClient;
use rag_proto::router_service_server::{RouterService, RouterServiceServer};
use rag_proto::{
    AnswerEvent, AnswerRequest, AnswerResponse, CacheStatus, Domain, FeedbackBreakdown,
    FeedbackRequest, FeedbackResponse, FeedbackSummary, FeedbackSummaryRequest, ListDomainsRequest,
    ListDomainsResponse, ScoredChunk, SearchRequest, TokenDelta, Usage, answer_event,
};
use rag_telemetry::metrics::{AnswerLabels, ModelLabels, RoutingLabels, TokenLabels, metrics};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::live::{LiveConfig, LiveError};
use crate::prompts::PromptError;
use crate::routing::RoutingDecision;
use crate::writer::{Writer, Writers, Written};

/// Semantic-cache candidates read per question (the best that still has its answer wins).
const SEMANTIC_CANDIDATES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Backend(#[from] rag_backends::BackendError),
    #[error(transparent)]
    Grpc(#[from] rag_grpc::GrpcError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Guardrail(#[from] rag_guardrails::GuardrailError),
    #[error(transparent)]
    Live(#[from] LiveError),
}

/// Serves the router on `listener` until `shutdown` resolves, measuring drift beside it
/// (`drift`). Ready while the retriever and the embedder are (the cache and the feedback
/// store are not required: answers go on without them).
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RouterError> {
    let readiness = Readiness::new("router");
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    rag_grpc::with_stop(shutdown, |stop| async move {
        // The cache key names the index generation; following it keeps file reads off the
        // query path.
        let following = rag_grpc::start_with_retries("router", "index generation", &stop, || {
            rag_backends::generation::follow(settings.clone(), |_| async {
                Ok::<_, rag_backends::BackendError>(())
            })
        });
        let Some(generation) = following.await else {
            return Ok(());
        };
        let router = Router::new(&settings, generation.receiver())?;
        let timeout = Duration::from_secs(2);
        let retriever = rag_grpc::lazy_channel(&settings.router.retriever_url, timeout)?;
        let embedder = rag_grpc::lazy_channel(&settings.router.embedder_url, timeout)?;
        let readiness = readiness
            .check("retriever", move || {
                rag_grpc::health_status(retriever.clone(), "")
            })
            .check("embedder", move || {
                rag_grpc::health_status(embedder.clone(), "")
            });
        let live = Arc::clone(&router.live);
        let loaded = Arc::clone(&live);
        let readiness = readiness.check("live configuration", move || {
            let loaded = loaded.is_loaded();
            async move {
                if loaded {
                    Ok(())
                } else {
                    Err("its first document has not been applied (see the log)")
                }
            }
        });
        let feedback = Arc::clone(&router.feedback);
        let service = RouterServiceServer::new(router);
        let settings = Arc::new(settings);
        rag_grpc::serve_service_with_worker(
            listener,
            service,
            readiness,
            stop,
            grace,
            |stop| async move {
                tokio::join!(
                    drift::run_periodically(settings, Arc::clone(&live), feedback, stop.clone()),
                    live::follow(live, stop),
                );
            },
        )
        .await?;
        generation.close().await;
        Ok(())
    })
    .await
}

/// The gRPC stream of an `Answer` call, which streamed text goes to.
#[derive(Debug)]
pub struct TokenSink {
    tx: mpsc::Sender<Result<AnswerEvent, Status>>,
    started: Instant,
    first_sent: AtomicBool,
}

/// Where streamed text goes: a token stream, or nowhere.
pub type Sink<'a> = Option<&'a TokenSink>;

/// Sends `text` as a token event. Fails when the client went away, which stops the answer
/// (and so the model call) upstream.
pub(crate) async fn emit(sink: Sink<'_>, text: String) -> Result<(), ServiceError> {
    let Some(sink) = sink else { return Ok(()) };
    let event = AnswerEvent {
        event: Some(answer_event::Event::Token(TokenDelta { text })),
    };
    sink.tx
        .send(Ok(event))
        .await
        .map_err(|_| ServiceError::unavailable("the client went away"))?;
    if !sink.first_sent.swap(true, Ordering::Relaxed) {
        metrics()
            .time_to_first_token
            .observe(sink.started.elapsed().as_secs_f64());
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Router {
    /// The start-up settings, for everything but the live sections (domains, prompts,
    /// guardrails), which are read from `live` once per request.
    settings: Arc<Settings>,
    live: Arc<LiveConfig>,
    retriever: RetrieverServiceClient<Channel>,
    embedder: EmbedderServiceClient<Channel>,
    cache: Option<Arc<dyn Cache>>,
    /// The current index generation (answers of another generation are other answers).
    generation: watch::Receiver<Arc<(u64, ())>>,
    writers: Arc<Writers>,
    feedback: Arc<dyn FeedbackStore>,
}

/// Where an answer came from.
struct Made {
    response: AnswerResponse,
    decision: RoutingDecision,
    cache_key: Option<String>,
    /// The question's embedding, when it was computed (recorded for drift detection).
    embedding: Option<Vec<f32>>,
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
            live: Arc::new(LiveConfig::new(settings)?),
            writers: Arc::new(Writers::from_settings(settings)?),
            feedback: rag_backends::feedback_store(settings)?,
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
        let live = self.live.current();
        if !request.domain.is_empty() && live.settings.domain(&request.domain).is_none() {
            let known: Vec<&str> = live
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
        let max_neighbours = self.settings.retriever.max_neighbours;
        if request.neighbours.is_some_and(|n| n > max_neighbours) {
            return Err(ServiceError::invalid_field(
                "neighbours",
                format!("neighbours must be at most {max_neighbours}"),
            ));
        }
        Ok(())
    }

    /// Answers one question, from the cache when it can, streaming the text to `sink` as it
    /// is written.
    pub async fn answer(
        &self,
        request: AnswerRequest,
        sink: Sink<'_>,
    ) -> Result<AnswerResponse, ServiceError> {
        self.validate(&request)?;
        self.answer_valid(request, sink).await
    }

    /// [`Router::answer`] for a request already validated.
    async fn answer_valid(
        &self,
        request: AnswerRequest,
        sink: Sink<'_>,
    ) -> Result<AnswerResponse, ServiceError> {
        let started = Instant::now();
        let request = self.with_domain_options(request);
        let query_id = if request.request_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            request.request_id.clone()
        };
        let mut made = self.make(&request, &query_id, sink).await?;
        made.response.query_id = query_id;
        made.response.latency_ms = elapsed_ms(started);
        observe(&request, &made.response, started);
        self.record(&request, &made).await;
        Ok(made.response)
    }

    async fn make(
        &self,
        request: &AnswerRequest,
        query_id: &str,
        sink: Sink<'_>,
    ) -> Result<Made, ServiceError> {
        let question = request.question.trim();
        tracing::debug!(question = %rag_guardrails::mask_pii_cow(question), "question");
        let decision = self.route(&request.domain, question);

        // Topic boundaries first: a refused question costs nothing and is not cached.
        if let Some(topic) = self.denied_topic(&request.domain, question) {
            metrics().refusals.inc();
            let response = AnswerResponse {
                answer: rag_guardrails::refusal(&topic),
                model: "guardrail".into(),
                tier: decision.tier.as_str().into(),
                tier_reasons: vec![format!("denied topic: {}", topic.name)],
                cache: CacheStatus::Miss.into(),
                usage: Some(Usage::default()),
                ..AnswerResponse::default()
            };
            stream_whole(sink, &response.answer).await?;
            return Ok(Made {
                response,
                decision,
                cache_key: None,
                embedding: None,
            });
        }

        let scope = self.cache_scope(request).await;
        let exact_key = scope
            .as_deref()
            .map(|scope| format!("answer:{scope}:{}", question_hash(question)));
        if let Some(key) = &exact_key
            && let Some((key, response)) = self
                .cached(key, CacheStatus::Exact)
                .instrument(tracing::info_span!("cache_lookup", layer = "exact"))
                .await
        {
            metrics().cache_lookup("exact_hit");
            stream_whole(sink, &response.answer).await?;
            return Ok(Made {
                response,
                decision,
                cache_key: Some(key),
                embedding: None,
            });
        }

        let embedding = self.embed(question).await?;
        if let Some(scope) = &scope
            && let Some((key, response)) = self
                .semantic_hit(scope, &request.domain, question, &embedding.values)
                .instrument(tracing::info_span!("cache_lookup", layer = "semantic"))
                .await
        {
            metrics().cache_lookup("semantic_hit");
            stream_whole(sink, &response.answer).await?;
            if let Some(alias) = &exact_key {
                self.file_alias(alias, &key).await;
            }
            return Ok(Made {
                response,
                decision,
                cache_key: Some(key),
                embedding: Some(embedding.values),
            });
        }
        if scope.is_some() {
            metrics().cache_lookup("miss");
        }

        let top_k = if request.top_k == 0 {
            self.settings.router.top_k
        } else {
            request.top_k
        };
        let retrieval = Instant::now();
        let hits = self
            .retriever
            .clone()
            .search(SearchRequest {
                query: question.to_owned(),
                tenant: request.tenant.clone(),
                domain: request.domain.clone(),
                top_k,
                query_vector: embedding.values.clone(),
                query_model: embedding.model,
                alpha: request.alpha,
                fusion: 0,
                neighbours: request.neighbours,
                rerank: request.rerank,
            })
            .instrument(tracing::info_span!("retrieve", top_k))
            .await
            .map_err(ServiceError::from)?
            .into_inner()
            .hits;
        metrics()
            .retrieval_duration
            .observe(retrieval.elapsed().as_secs_f64());

        let writing = Instant::now();
        let mut response = self
            .write(question, &hits, &decision, query_id, sink)
            .instrument(tracing::info_span!(
                "generate",
                tier = decision.tier.as_str()
            ))
            .await?;
        metrics()
            .generation_duration
            .get_or_create(&ModelLabels {
                model: response.model.clone(),
            })
            .observe(writing.elapsed().as_secs_f64());
        response.cache = CacheStatus::Miss.into();

        if let (Some(cache), Some(key), Some(scope)) = (&self.cache, &exact_key, &scope) {
            let ttl = Duration::from_secs(self.settings.cache.ttl_secs);
            let stored = async {
                cache.put(key, response.encode_to_vec(), ttl).await?;
                // As the logs show it: the cache holds no personal data the guardrails know.
                let text = rag_guardrails::mask_pii_cow(question);
                cache
                    .remember_question(scope, &embedding.values, key, &text, ttl)
                    .await
            };
            if let Err(e) = stored.await {
                metrics().cache_lookup("error");
                tracing::warn!(error = %e, "cache store failed");
            }
        }
        Ok(Made {
            response,
            decision,
            cache_key: exact_key,
            embedding: Some(embedding.values),
        })
    }

    /// Writes the answer with the tier's writer (falling back from strong to light when the
    /// strong model is unavailable) and adds citations, usage and cost.
    async fn write(
        &self,
        question: &str,
        hits: &[ScoredChunk],
        decision: &RoutingDecision,
        query_id: &str,
        sink: Sink<'_>,
    ) -> Result<AnswerResponse, ServiceError> {
        let writers = &self.writers;
        let live = self.live.current();
        let guardrails = &live.settings.guardrails;
        let hits = &hits[..hits.len().min(writers.settings.max_context_passages)];
        // Whether anything is relevant is the hits' say; their neighbours only add context.
        let relevant = writer::relevant_enough(hits, self.settings.router.min_relevance);
        let hits = &writer::with_neighbours(hits);
        let (texts, removed) = writer::passages(hits, guardrails.screen_injections);
        if removed > 0 {
            metrics().injections_removed.inc_by(removed as u64);
            tracing::info!(
                removed,
                "instruction-like text removed from retrieved chunks"
            );
        }
        let mut tier = decision.tier;
        let mut reasons = decision.reasons.clone();
        let prompt = live.prompts.choose(query_id);
        let mut prompt_version = String::new();
        let written = match writers.for_tier(tier) {
            Writer::Extractive => self.extractive(question, hits, &texts),
            Writer::Model(model) => {
                if !relevant {
                    Written {
                        text: writer::NOT_IN_DOCUMENTS.into(),
                        model: model.model().to_owned(),
                        ..Written::default()
                    }
                } else {
                    prompt_version.clone_from(&prompt.id);
                    let context = writer::context(hits, &texts);
                    let mask = guardrails.mask_pii;
                    let settings = &writers.settings;
                    match writer::generate(
                        model.as_ref(),
                        prompt,
                        &context,
                        question,
                        settings,
                        mask,
                        sink,
                    )
                    .await
                    {
                        Ok(written) => written,
                        Err(Err(final_error)) => return Err(final_error),
                        Err(Ok(model_error)) => {
                            let fallback = tier == Tier::Strong
                                && settings.fallback_to_light
                                && matches!(
                                    model_error,
                                    rag_backends::rag_generation::GenerationError::Unavailable(_)
                                );
                            if !fallback {
                                return Err(model_failed(&model_error));
                            }
                            metrics().generation_fallbacks.inc();
                            tracing::warn!(error = %model_error, "strong model unavailable; falling back to the light tier");
                            tier = Tier::Light;
                            reasons.push(format!(
                                "fell back to the light tier: {} unavailable",
                                model.model()
                            ));
                            match &writers.light {
                                Writer::Extractive => {
                                    prompt_version.clear();
                                    self.extractive(question, hits, &texts)
                                }
                                Writer::Model(light) => writer::generate(
                                    light.as_ref(),
                                    prompt,
                                    &context,
                                    question,
                                    settings,
                                    mask,
                                    sink,
                                )
                                .await
                                .map_err(|e| e.map_or_else(|fatal| fatal, |e| model_failed(&e)))?,
                            }
                        }
                    }
                }
            }
        };
        let text = if guardrails.mask_pii {
            rag_guardrails::mask_pii_cow(&written.text).into_owned()
        } else {
            written.text
        };
        if !written.streamed {
            stream_whole(sink, &text).await?;
        }
        let citations = writer::citations(&text, hits, guardrails.mask_pii);
        let cost_usd =
            self.settings
                .cost_usd(&written.model, written.input_tokens, written.output_tokens);
        Ok(AnswerResponse {
            grounded: !citations.is_empty(),
            answer: text,
            citations,
            model: written.model,
            tier: tier.as_str().into(),
            tier_reasons: reasons,
            prompt_version: if prompt_version.is_empty() {
                "extractive".into()
            } else {
                prompt_version
            },
            usage: Some(Usage {
                input_tokens: written.input_tokens,
                output_tokens: written.output_tokens,
                cost_usd,
            }),
            ..AnswerResponse::default()
        })
    }

    fn extractive(&self, question: &str, hits: &[ScoredChunk], texts: &[String]) -> Written {
        let r = &self.settings.router;
        writer::extractive(
            question,
            hits,
            texts,
            extractive::Options {
                min_relevance: r.min_relevance,
                confident_relevance: r.confident_relevance,
                min_support: r.min_support,
                max_sentences: r.max_answer_sentences,
            },
        )
    }

    /// The model tier for a question: the complexity analyser under its domain's rules.
    fn route(&self, domain: &str, question: &str) -> RoutingDecision {
        let live = self.live.current();
        let decision = routing::analyse(
            question,
            live.settings.domain(domain),
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
        decision
    }

    fn denied_topic(&self, domain: &str, question: &str) -> Option<DeniedTopic> {
        self.live
            .current()
            .topics
            .get(domain)?
            .check(question)
            .cloned()
    }

    /// `request` with the retrieval options it leaves unset taken from its domain
    /// (adjacent-chunk expansion, reranking), read from one live configuration, so the search
    /// and the cache scope see the same values; still unset means the retriever's default.
    fn with_domain_options(&self, mut request: AnswerRequest) -> AnswerRequest {
        let live = self.live.current();
        if let Some(domain) = live.settings.domain(&request.domain) {
            request.neighbours = request.neighbours.or(domain.neighbours);
            request.rerank = request.rerank.or(domain.rerank);
        }
        request
    }

    /// The scope every cached answer of this request must share: tenant, domain, the
    /// domain's epoch (which every document change bumps), the index generation and the
    /// retrieval parameters. `None` (no caching) when the cache is off or the epoch cannot be
    /// read, so a stale answer is never served.
    async fn cache_scope(&self, request: &AnswerRequest) -> Option<String> {
        let cache = self.cache.as_ref()?;
        let generation = self.generation.borrow().0;
        let domain = if request.domain.is_empty() {
            "*"
        } else {
            request.domain.as_str()
        };
        let epoch = match cache.epoch(&format!("{}/{domain}", request.tenant)).await {
            Ok(epoch) => epoch,
            Err(e) => {
                metrics().cache_lookup("error");
                tracing::warn!(error = %e, "cache epoch unreadable; answering without the cache");
                return None;
            }
        };
        let alpha = request.alpha.map(f32::to_bits).unwrap_or(u32::MAX);
        let neighbours = request.neighbours.map_or(-1, i64::from);
        let rerank = request.rerank.map_or(-1, i64::from);
        Some(format!(
            "{}:{domain}:e{epoch}:g{generation}:k{}:a{alpha:x}:n{neighbours}:r{rerank}",
            request.tenant, request.top_k
        ))
    }

    /// The cached answer under `key`, marked as served from the cache (at no cost), with the
    /// key of the answer itself: `key`, or the key an alias there names (see
    /// [`Router::file_alias`]), which is what a thumbs-down must evict.
    async fn cached(&self, key: &str, status: CacheStatus) -> Option<(String, AnswerResponse)> {
        let mut bytes = self.read(key).await?;
        let mut key = key.to_owned();
        if let Some(answer_key) = alias_target(&bytes) {
            key = answer_key.to_owned();
            bytes = self.read(&key).await?;
        }
        // An alias always names an answer; were one found here instead, it does not decode
        // (an alias is not a protobuf message) and reads as a miss.
        let mut cached = AnswerResponse::decode(bytes.as_slice()).ok()?;
        cached.cache = status.into();
        cached.usage = Some(Usage::default());
        Some((key, cached))
    }

    /// The value under `key`; `None` when there is none or the cache failed (counted, logged).
    async fn read(&self, key: &str) -> Option<Vec<u8>> {
        let cache = self.cache.as_ref()?;
        match cache.get(key).await {
            Ok(value) => value,
            Err(e) => {
                metrics().cache_lookup("error");
                tracing::warn!(error = %e, "cache lookup failed; answering without it");
                None
            }
        }
    }

    /// Files a semantic hit under the asking question's exact key (`alias`, of the same
    /// scope), so the question asked again is an exact hit: no embedding, no semantic lookup.
    /// The alias names the answer's key instead of copying the answer, so it lives no longer
    /// than the answer: when a thumbs-down evicts the answer, or it expires, the alias reads
    /// as a miss. A failure is logged, never returned: the user has their answer.
    async fn file_alias(&self, alias: &str, answer_key: &str) {
        let Some(cache) = &self.cache else { return };
        // A concurrent miss may have just stored this very question's answer: keep it.
        if alias == answer_key {
            return;
        }
        let ttl = Duration::from_secs(self.settings.cache.ttl_secs);
        if let Err(e) = cache.put(alias, alias_value(answer_key), ttl).await {
            metrics().cache_lookup("error");
            tracing::warn!(error = %e, "cache alias store failed");
        }
    }

    /// The answer of an earlier question of the same scope whose embedding is at least the
    /// domain's threshold close (exact cosine) to this one's (`vector`), and whose text passes
    /// the domain's guard against `question` ([`lexical`]), with the answer's key.
    async fn semantic_hit(
        &self,
        scope: &str,
        domain: &str,
        question: &str,
        vector: &[f32],
    ) -> Option<(String, AnswerResponse)> {
        let cache = self.cache.as_ref()?;
        let (threshold, guard) = {
            let live = self.live.current();
            let domain = live.settings.domain(domain);
            (
                domain
                    .and_then(|d| d.semantic_threshold)
                    .unwrap_or(self.settings.cache.semantic_threshold),
                domain
                    .and_then(|d| d.semantic_guard)
                    .unwrap_or(self.settings.cache.semantic_guard),
            )
        };
        if threshold >= 1.0 {
            return None;
        }
        let hits = match cache
            .similar_questions(scope, vector, threshold, SEMANTIC_CANDIDATES)
            .await
        {
            Ok(hits) => hits,
            Err(e) => {
                metrics().cache_lookup("error");
                tracing::warn!(error = %e, "semantic cache lookup failed; answering without it");
                return None;
            }
        };
        // Compared as stored: PII masked.
        let asked = lexical::Guard::new(guard, &rag_guardrails::mask_pii_cow(question));
        for hit in hits {
            if !asked.allows(&hit.question) {
                metrics().cache_lookup("semantic_refused");
                tracing::debug!(
                    cosine = hit.cosine,
                    guard = guard.as_str(),
                    "semantic cache candidate refused: its question's content terms differ"
                );
                continue;
            }
            if let Some(found) = self.cached(&hit.key, CacheStatus::Semantic).await {
                tracing::debug!(cosine = hit.cosine, "semantic cache hit");
                return Some(found);
            }
        }
        None
    }

    /// Records how the answer was made, for feedback. A failure is logged, never returned:
    /// the user has their answer.
    async fn record(&self, request: &AnswerRequest, made: &Made) {
        let r = &made.response;
        let usage = r.usage.unwrap_or_default();
        let f = &made.decision.features;
        let features: BTreeMap<String, f64> = [
            ("words", f.words as f64),
            ("sentences", f.sentences as f64),
            ("question_marks", f.question_marks as f64),
            ("technical_terms", f.technical_terms as f64),
            ("technical_density", f64::from(f.technical_density)),
            ("logical_operators", f.logical_operators as f64),
            ("multi_part", f64::from(u8::from(f.multi_part.is_some()))),
            ("negations", f.negations as f64),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let record = AnswerRecord {
            query_id: r.query_id.clone(),
            tenant: request.tenant.clone(),
            domain: request.domain.clone(),
            tier: r.tier.clone(),
            tier_reasons: r.tier_reasons.clone(),
            route_score: made.decision.score,
            route_threshold: made.decision.threshold,
            features,
            model: r.model.clone(),
            prompt_version: r.prompt_version.clone(),
            cache: cache_name(r.cache()).into(),
            cache_key: made.cache_key.clone(),
            grounded: r.grounded,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_usd: usage.cost_usd,
            latency_ms: r.latency_ms,
            created_at_ms: now_ms(),
            question_embedding: made.embedding.clone(),
        };
        if let Err(e) = self.feedback.record_answer(&record).await {
            tracing::warn!(error = %e, "answer not recorded for feedback");
        }
    }

    /// Stores a rating. A thumbs-down evicts the cached answer it rated, so it is not served
    /// again (to this question or a similar one, nor through an alias to it).
    pub async fn submit_feedback(
        &self,
        request: FeedbackRequest,
    ) -> Result<FeedbackResponse, ServiceError> {
        validate::name("tenant", &request.tenant)?;
        let rating: Rating = request
            .rating
            .parse()
            .map_err(|e: FeedbackError| ServiceError::invalid_field("rating", e.to_string()))?;
        let feedback = Feedback {
            query_id: request.query_id.clone(),
            tenant: request.tenant.clone(),
            rating,
            comment: request.comment.filter(|c| !c.trim().is_empty()),
        };
        let record = self
            .feedback
            .record_feedback(&feedback)
            .await
            .map_err(feedback_error)?;
        let mut evicted = false;
        if rating == Rating::Down
            && let (Some(cache), Some(key)) = (&self.cache, &record.cache_key)
        {
            match cache.delete(key).await {
                Ok(()) => evicted = true,
                Err(e) => {
                    metrics().cache_lookup("error");
                    tracing::warn!(error = %e, "disliked answer not evicted from the cache");
                }
            }
        }
        Ok(FeedbackResponse {
            query_id: record.query_id,
            rating: rating.as_str().into(),
            tier: record.tier,
            prompt_version: record.prompt_version,
            cache: match record.cache.as_str() {
                "exact" => CacheStatus::Exact,
                "semantic" => CacheStatus::Semantic,
                _ => CacheStatus::Miss,
            }
            .into(),
            model: record.model,
            evicted,
        })
    }

    pub async fn feedback_summary(&self, tenant: &str) -> Result<FeedbackSummary, ServiceError> {
        validate::name("tenant", tenant)?;
        let s = self
            .feedback
            .summary(tenant)
            .await
            .map_err(feedback_error)?;
        let breakdowns = |b: Vec<rag_backends::rag_feedback::Breakdown>| {
            b.into_iter()
                .map(|b| FeedbackBreakdown {
                    key: b.key,
                    answers: b.answers,
                    up: b.up,
                    down: b.down,
                })
                .collect()
        };
        Ok(FeedbackSummary {
            answers: s.answers,
            rated: s.rated,
            up: s.up,
            down: s.down,
            by_tier: breakdowns(s.by_tier),
            by_prompt_version: breakdowns(s.by_prompt_version),
            by_cache: breakdowns(s.by_cache),
            by_model: breakdowns(s.by_model),
        })
    }

    async fn embed(&self, question: &str) -> Result<rag_grpc::QueryEmbedding, ServiceError> {
        rag_grpc::embed_one(&self.embedder, question, None).await
    }
}

/// Counts an answer in the metrics: latency by cache result and tier, the routing
/// decision, and the tokens and cost of a model call.
fn observe(request: &AnswerRequest, response: &AnswerResponse, started: Instant) {
    let m = metrics();
    m.answer_duration
        .get_or_create(&AnswerLabels {
            cache: cache_name(response.cache()).into(),
            tier: response.tier.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.routing_decisions
        .get_or_create(&RoutingLabels {
            tier: response.tier.clone(),
            domain: request.domain.clone(),
        })
        .inc();
    let usage = response.usage.unwrap_or_default();
    for (direction, tokens) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
    ] {
        if tokens > 0 {
            m.tokens
                .get_or_create(&TokenLabels {
                    model: response.model.clone(),
                    prompt_version: response.prompt_version.clone(),
                    direction: direction.into(),
                })
                .inc_by(u64::from(tokens));
        }
    }
    if usage.cost_usd > 0.0 {
        m.cost_usd
            .get_or_create(&ModelLabels {
                model: response.model.clone(),
            })
            .inc_by(usage.cost_usd);
    }
}

fn model_failed(e: &rag_backends::rag_generation::GenerationError) -> ServiceError {
    use rag_backends::rag_generation::GenerationError;
    match e {
        // The provider's error (SDK internals, endpoints) is for the logs, not the client.
        GenerationError::Unavailable(_) => {
            tracing::warn!(error = %e, "no model could answer");
            ServiceError::unavailable(
                "the answer models are unavailable or throttled; retry after Retry-After seconds",
            )
            .with_retry_after(5)
        }
        GenerationError::Rejected(_) => ServiceError::internal(e),
    }
}

fn feedback_error(e: FeedbackError) -> ServiceError {
    match e {
        FeedbackError::UnknownQuery(_) => {
            ServiceError::new(ErrorCode::NotFound, e.to_string()).with_field("query_id")
        }
        FeedbackError::Invalid(_) => ServiceError::invalid_argument(e.to_string()),
        FeedbackError::Unavailable(_) => {
            ServiceError::unavailable(e.to_string()).with_retry_after(5)
        }
    }
}

fn cache_name(status: CacheStatus) -> &'static str {
    match status {
        CacheStatus::Exact => "exact",
        CacheStatus::Semantic => "semantic",
        CacheStatus::Miss | CacheStatus::Unspecified => "miss",
    }
}

/// Streams a finished answer one sentence at a time.
async fn stream_whole(sink: Sink<'_>, answer: &str) -> Result<(), ServiceError> {
    if sink.is_none() {
        return Ok(());
    }
    for piece in writer::stream_pieces(answer) {
        emit(sink, piece).await?;
    }
    Ok(())
}

fn question_hash(question: &str) -> String {
    hex::encode(Sha256::digest(normalise_question(question).as_bytes()))
}

/// How an alias's value starts. A protobuf message cannot start with a zero byte (field
/// number 0 is invalid), so an alias is never taken for an answer, and a router that does
/// not know aliases reads one as a miss.
const ALIAS: &[u8] = b"\0alias:";

/// The cache value of an alias of the answer under `answer_key`.
fn alias_value(answer_key: &str) -> Vec<u8> {
    [ALIAS, answer_key.as_bytes()].concat()
}

/// The answer key an alias's value names; `None` for an answer.
fn alias_target(value: &[u8]) -> Option<&str> {
    std::str::from_utf8(value.strip_prefix(ALIAS)?).ok()
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
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

type AnswerStream = Pin<Box<dyn Stream<Item = Result<AnswerEvent, Status>> + Send>>;

#[tonic::async_trait]
impl RouterService for Router {
    type AnswerStream = AnswerStream;

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id, tenant = %request.get_ref().tenant, domain = %request.get_ref().domain))]
    async fn answer(
        &self,
        request: Request<AnswerRequest>,
    ) -> Result<Response<Self::AnswerStream>, Status> {
        let request = request.into_inner();
        // Bad requests fail the call itself, before any event.
        self.validate(&request)?;
        let (tx, rx) = mpsc::channel(32);
        let router = self.clone();
        let sink = TokenSink {
            tx,
            started: Instant::now(),
            first_sent: AtomicBool::new(false),
        };
        let span = tracing::Span::current();
        tokio::spawn(async move {
            // Tokens go out as they are written; when the client goes away a send fails,
            // which ends the answer and drops the model's stream (cancelling it upstream).
            let event = match router
                .answer_valid(request, Some(&sink))
                .instrument(span)
                .await
            {
                Ok(response) => Ok(AnswerEvent {
                    event: Some(answer_event::Event::Complete(response)),
                }),
                Err(e) => Err(Status::from(e)),
            };
            let _ = sink.tx.send(event).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id, tenant = %request.get_ref().tenant, domain = %request.get_ref().domain))]
    async fn answer_unary(
        &self,
        request: Request<AnswerRequest>,
    ) -> Result<Response<AnswerResponse>, Status> {
        Ok(Response::new(
            Router::answer(self, request.into_inner(), None).await?,
        ))
    }

    async fn submit_feedback(
        &self,
        request: Request<FeedbackRequest>,
    ) -> Result<Response<FeedbackResponse>, Status> {
        Ok(Response::new(
            Router::submit_feedback(self, request.into_inner()).await?,
        ))
    }

    async fn get_feedback_summary(
        &self,
        request: Request<FeedbackSummaryRequest>,
    ) -> Result<Response<FeedbackSummary>, Status> {
        Ok(Response::new(
            self.feedback_summary(&request.into_inner().tenant).await?,
        ))
    }

    async fn list_domains(
        &self,
        _request: Request<ListDomainsRequest>,
    ) -> Result<Response<ListDomainsResponse>, Status> {
        let domains = self
            .live
            .current()
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
        assert_eq!(
            question_hash("How many days?"),
            question_hash("how many  days")
        );
    }

    #[test]
    fn aliases_and_answers_are_told_apart() {
        let key = "answer:default:hr:e0:g0:k0:affffffff:n-1:r-1:ab12";
        let alias = alias_value(key);
        assert_eq!(alias_target(&alias), Some(key));
        assert!(
            AnswerResponse::decode(alias.as_slice()).is_err(),
            "a router that does not know aliases reads one as a miss"
        );
        for answer in [
            AnswerResponse::default(),
            AnswerResponse {
                answer: "25 days [1]".into(),
                model: "extractive-v1".into(),
                cache: CacheStatus::Miss.into(),
                ..AnswerResponse::default()
            },
        ] {
            assert_eq!(alias_target(&answer.encode_to_vec()), None, "{answer:?}");
        }
    }
}
