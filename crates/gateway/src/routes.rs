//! The HTTP routes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use rag_backends::rag_object_store::TENANT_METADATA;
use rag_core::{ErrorCode, ObjectKey, ServiceError, media, validate};
use rag_proto::{
    AnswerRequest, DeleteDocumentRequest, FeedbackRequest, FeedbackSummaryRequest,
    GetDocumentRequest, ListDocumentsRequest, ListDomainsRequest, RegisterUploadRequest,
    answer_event,
};
use serde::Deserialize;
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::body::{
    Answer, DocumentList, DocumentStatus, DocumentView, DomainView, Domains, ErrorBody, ErrorEvent,
    FeedbackStored, FeedbackSummary, Live, RatedAnswer, Ready, ReadyChecks, TokenEvent,
};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;

const REQUEST_ID: &str = "x-request-id";
/// Room for the multipart framing and the small fields around the file.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn router(state: AppState) -> axum::Router {
    let upload_limit = usize::try_from(state.settings.gateway.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MULTIPART_OVERHEAD);
    let body_limit = state.settings.gateway.max_body_bytes;
    let header = axum::http::HeaderName::from_static(REQUEST_ID);
    // The API: authenticated (the caller's tenant, scopes and domains, within its rate), and
    // shed with 503 past `gateway.max_in_flight` requests in progress. Probes, metrics, the
    // OpenAPI document and the web app's files are open.
    let api = axum::Router::new()
        .route("/v1/query", post(query))
        .route("/v1/query/stream", post(query_stream))
        .route(
            "/v1/documents",
            post(upload)
                .layer(DefaultBodyLimit::max(upload_limit))
                .get(list_documents),
        )
        .route(
            "/v1/documents/{id}",
            get(get_document).delete(delete_document),
        )
        .route("/v1/domains", get(domains))
        .route("/v1/feedback", post(feedback))
        .route("/v1/feedback/summary", get(feedback_summary))
        .merge(crate::ops::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), shed));
    axum::Router::new()
        .merge(api)
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .merge(crate::openapi::routes())
        .merge(crate::web::routes())
        .route_layer(axum::middleware::from_fn(track))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(trace_id_header))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .with_state(state)
}

/// The span every log line of a request carries: method, route, the request id (set by
/// `SetRequestIdLayer` before this span is made, and returned in `x-request-id`) and the
/// trace id (returned in `x-trace-id`). It continues a client's trace (`traceparent`), and
/// is the root of the request's trace through every service otherwise.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| request.uri().path(), |p| p.as_str());
    let request_id = request_id(request.headers());
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        method = %request.method(),
        route = %route,
        request_id = %request_id,
        trace_id = tracing::field::Empty,
    );
    rag_telemetry::trace::start_request(
        &span,
        rag_telemetry::trace::extract_client_headers(request.headers()),
        &request_id,
    );
    span
}

/// Tells the client its request's trace id (`x-trace-id`), to quote in a bug report or to
/// find the trace and the log lines by.
async fn trace_id_header(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let trace_id = rag_telemetry::trace::current_trace_id();
    let mut response = next.run(request).await;
    if let Some(value) = trace_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response
            .headers_mut()
            .insert(rag_telemetry::trace::TRACE_ID_HEADER, value);
    }
    response
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Refuses a request at once with 503 and `Retry-After` when `gateway.max_in_flight` are in
/// progress: a burst past capacity costs the callers a retry, not the process its memory.
/// The permit is held until the response body ends (an answer's stream included).
async fn shed(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(permit) = state.in_flight.clone().try_acquire_owned() else {
        rag_telemetry::metrics::metrics().http_shed.inc();
        return ApiError(ServiceError::unavailable(format!(
            "the gateway is at its limit of {} requests in progress; retry shortly",
            state.settings.gateway.max_in_flight
        )))
        .into_response();
    };
    let response = next.run(request).await;
    response.map(|body| {
        axum::body::Body::new(HoldingPermit {
            body,
            _permit: permit,
        })
    })
}

/// A response body that keeps its request's in-flight permit until it ends (or the client
/// goes away), and passes on everything else of the body it wraps: its size hint above all,
/// so a sized response keeps its `Content-Length` instead of turning chunked.
struct HoldingPermit {
    body: axum::body::Body,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for HoldingPermit {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A question.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryBody {
    /// The question, in plain language.
    question: String,
    /// Only this domain's documents (and cache); every domain when absent.
    #[serde(default)]
    domain: Option<String>,
    /// How many passages to retrieve; the configured default when absent.
    #[serde(default)]
    top_k: Option<u32>,
    /// The dense retrieval's weight in the hybrid fusion, in [0, 1].
    #[serde(default)]
    alpha: Option<f32>,
    /// Adjacent-chunk expansion: the chunks up to this many positions before and after each
    /// retrieved chunk join the context (0 = off); the domain's setting when absent.
    #[serde(default)]
    neighbours: Option<u32>,
    /// Reranking: the configured reranker re-scores the fused top candidates and the best
    /// `top_k` of its order are the context; the domain's setting when absent. Without a
    /// reranker configured, `true` is a 400 (`failed_precondition`).
    #[serde(default)]
    rerank: Option<bool>,
    /// Answer as Server-Sent Events, like `POST /v1/query/stream`.
    #[serde(default)]
    stream: bool,
}

impl QueryBody {
    /// The router's request, as the caller: its tenant, and a domain its key may use.
    fn into_request(self, caller: &Caller, request_id: String) -> ApiResult<AnswerRequest> {
        caller.require(Scope::Query)?;
        Ok(AnswerRequest {
            question: self.question,
            domain: caller.query_domain(self.domain)?.unwrap_or_default(),
            top_k: self.top_k.unwrap_or(0),
            tenant: caller.tenant.clone(),
            request_id,
            alpha: self.alpha,
            neighbours: self.neighbours,
            rerank: self.rerank,
        })
    }
}

/// Answers a question with citations.
#[utoipa::path(
    post, path = "/v1/query", tag = "query",
    request_body = QueryBody,
    responses(
        (status = 200, description = "The answer (`text/event-stream` instead when `stream` is true)", body = Answer),
        (status = 400, description = "`rerank` was asked for, but no reranker is configured (`failed_precondition`)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn query(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(body): ValidJson<QueryBody>,
) -> ApiResult<Response> {
    if body.stream {
        return stream_answer(state, caller, headers, body).await;
    }
    let request = body.into_request(&caller, request_id(&headers))?;
    let response = state.router().answer_unary(request).await?.into_inner();
    Ok(Json(Answer::from(&response)).into_response())
}

/// Answers a question as Server-Sent Events: `token` events (`TokenEvent`) as the answer is
/// written, then one `done` event (`Answer`), or one `error` event (`ErrorEvent`).
#[utoipa::path(
    post, path = "/v1/query/stream", tag = "query",
    request_body = QueryBody,
    responses(
        (status = 200, description = "`event: token` (data: TokenEvent) as the answer is written, then `event: done` (data: Answer) or `event: error` (data: ErrorEvent)", content_type = "text/event-stream", body = String),
        (status = 400, description = "`rerank` was asked for, but no reranker is configured (`failed_precondition`)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn query_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ValidJson(body): ValidJson<QueryBody>,
) -> ApiResult<Response> {
    stream_answer(state, caller, headers, body).await
}

/// `token` events as the answer is generated, then one `done` event with the whole answer
/// and its metadata, or one `error` event. Dropping the response (a client that goes away)
/// drops the gRPC stream, which cancels the call upstream.
async fn stream_answer(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    body: QueryBody,
) -> ApiResult<Response> {
    let request = body.into_request(&caller, request_id(&headers))?;
    // Errors before the first event (validation, dependencies down) are plain HTTP errors.
    let upstream = state.router().answer(request).await?.into_inner();
    let events = upstream.map(|item| -> Result<Event, Infallible> {
        Ok(match item {
            Ok(event) => match event.event {
                Some(answer_event::Event::Token(token)) => {
                    sse_event("token", &TokenEvent { text: token.text })
                }
                Some(answer_event::Event::Complete(done)) => {
                    sse_event("done", &Answer::from(&done))
                }
                None => Event::default().comment("empty event"),
            },
            Err(status) => {
                let e = ServiceError::from(status);
                sse_event(
                    "error",
                    &ErrorEvent {
                        code: e.code.as_str().to_owned(),
                        message: e.message,
                    },
                )
            }
        })
    });
    Ok(sse(events).into_response())
}

fn sse(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> impl IntoResponse {
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// One SSE event whose data is `data` as JSON.
fn sse_event(name: &str, data: &impl serde::Serialize) -> Event {
    match serde_json::to_string(data) {
        Ok(json) => Event::default().event(name).data(json),
        Err(e) => Event::default().event("error").data(
            json!({ "code": "internal", "message": format!("unencodable event: {e}") }).to_string(),
        ),
    }
}

/// A rating of an answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackBody {
    /// The answer's `query_id`.
    query_id: String,
    /// `up` or `down`.
    rating: String,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /v1/feedback`: a rating of one of the caller's answers, joined to how it was made.
#[utoipa::path(
    post, path = "/v1/feedback", tag = "feedback",
    request_body = FeedbackBody,
    responses(
        (status = 200, description = "The rating is stored", body = FeedbackStored),
        (status = 404, description = "No such answer of this tenant", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody),
    )
)]
pub(crate) async fn feedback(
    State(state): State<AppState>,
    caller: Caller,
    ValidJson(body): ValidJson<FeedbackBody>,
) -> ApiResult<Json<FeedbackStored>> {
    caller.require(Scope::Query)?;
    let stored = state
        .router()
        .submit_feedback(FeedbackRequest {
            query_id: body.query_id,
            tenant: caller.tenant,
            rating: body.rating,
            comment: body.comment,
        })
        .await?
        .into_inner();
    let cache = stored.cache().into();
    Ok(Json(FeedbackStored {
        query_id: stored.query_id,
        rating: stored.rating,
        answer: RatedAnswer {
            tier: stored.tier,
            prompt_version: stored.prompt_version,
            cache,
            model: stored.model,
        },
        evicted_from_cache: stored.evicted,
    }))
}

/// `GET /v1/feedback/summary`: ratings by tier, prompt version, cache status and model.
#[utoipa::path(
    get, path = "/v1/feedback/summary", tag = "feedback",
    responses(
        (status = 200, description = "The tenant's answers and ratings", body = FeedbackSummary),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn feedback_summary(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<FeedbackSummary>> {
    caller.require(Scope::Admin)?;
    let s = state
        .router()
        .get_feedback_summary(FeedbackSummaryRequest {
            tenant: caller.tenant,
        })
        .await?
        .into_inner();
    Ok(Json(FeedbackSummary::from(&s)))
}

/// An upload: the file and the domain it belongs to.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the multipart form; the handler reads its fields one by one
pub(crate) struct UploadForm {
    /// The document (.txt, .md, .html, .pdf, .docx); its file name names it.
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
    /// The domain; `general` when absent.
    domain: Option<String>,
}

/// `POST /v1/documents`: multipart with `file` and optional `domain`. Validates size and
/// type, records the upload as queued, writes the object (whose event starts ingestion),
/// and answers 202 with the document's id.
#[utoipa::path(
    post, path = "/v1/documents", tag = "documents",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Recorded and queued for ingestion; poll `GET /v1/documents/{id}`", body = DocumentView),
        (status = 413, description = "The file is too large", body = ErrorBody),
        (status = 415, description = "Not a type the pipeline reads", body = ErrorBody),
        (status = 422, description = "A field is invalid; `field` names it", body = ErrorBody),
    )
)]
pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    mut multipart: Multipart,
) -> ApiResult<Response> {
    caller.require(Scope::Upload)?;
    let max = state.settings.gateway.max_upload_bytes;
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut domain: Option<String> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e.body_text(), e.status())),
        };
        match field.name().unwrap_or_default() {
            "file" => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| multipart_error(&e.body_text(), e.status()))?;
                file = Some((name, bytes.to_vec()));
            }
            "domain" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| multipart_error(&e.body_text(), e.status()))?;
                domain = Some(text.trim().to_owned());
            }
            other => {
                return Err(ServiceError::invalid_field(
                    other,
                    format!("unexpected field {other:?}; expected `file` and `domain`"),
                )
                .into());
            }
        }
    }
    let Some((file_name, bytes)) = file else {
        return Err(ServiceError::invalid_field("file", "a `file` field is required").into());
    };
    // Only the last path segment: browsers on some systems send full paths.
    let file_name = file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    validate::file_name("file", &file_name)?;
    if bytes.len() as u64 > max {
        return Err(ServiceError::new(
            ErrorCode::PayloadTooLarge,
            format!("the file is larger than {max} bytes"),
        )
        .into());
    }
    if bytes.is_empty() {
        return Err(ServiceError::invalid_field("file", "the file is empty").into());
    }
    media::sniff(&bytes, &file_name).map_err(|e| {
        ServiceError::new(
            ErrorCode::UnsupportedMediaType,
            format!("{e}; accepted: {}", media::ACCEPTED),
        )
    })?;
    let domain = domain
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| rag_core::object_key::FALLBACK_DOMAIN.to_owned());
    validate::name("domain", &domain)?;
    caller.check_domain(&domain)?;
    let known = known_domains(&state).await;
    if !known.contains(&domain) {
        return Err(ServiceError::invalid_field(
            "domain",
            format!(
                "unknown domain {domain:?}; known domains: {}",
                known.join(", ")
            ),
        )
        .into());
    }

    let tenant = caller.tenant;
    let document = state
        .documents()
        .register_upload(RegisterUploadRequest {
            tenant: tenant.clone(),
            domain: domain.clone(),
            file_name: file_name.clone(),
            size_bytes: bytes.len() as u64,
        })
        .await?
        .into_inner();
    let key = ObjectKey::for_upload(&tenant, &domain, &file_name).to_key();
    let mut metadata = BTreeMap::from([(TENANT_METADATA.to_owned(), tenant)]);
    // The upload's trace goes on with the object: the ingest-worker continues it from here.
    rag_telemetry::trace::inject_map(&mut metadata);
    state
        .objects
        .put(&key, bytes, metadata)
        .await
        .map_err(|e| ApiError(ServiceError::from(e)))?;
    Ok((StatusCode::ACCEPTED, Json(DocumentView::from(&document))).into_response())
}

fn multipart_error(text: &str, status: StatusCode) -> ApiError {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::InvalidArgument
    };
    ApiError(ServiceError::new(code, format!("malformed upload: {text}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this domain's documents.
    #[serde(default)]
    domain: Option<String>,
}

/// The tenant's documents with their status.
#[utoipa::path(
    get, path = "/v1/documents", tag = "documents",
    params(ListParams),
    responses(
        (status = 200, description = "The documents", body = DocumentList),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<DocumentList>> {
    caller.require(Scope::Upload)?;
    let domain = params.domain.filter(|d| !d.is_empty());
    if let Some(domain) = &domain {
        caller.check_domain(domain)?;
    }
    let documents = state
        .documents()
        .list_documents(ListDocumentsRequest {
            tenant: caller.tenant.clone(),
            domain: domain.unwrap_or_default(),
        })
        .await?
        .into_inner()
        .documents;
    Ok(Json(DocumentList::new(
        documents
            .iter()
            .filter(|d| caller.may_use(&d.domain))
            .map(DocumentView::from)
            .collect(),
    )))
}

/// The caller's document `id`: 404 for another tenant's, or for one in a domain the key may
/// not use (whether it exists is not the caller's business).
async fn callers_document(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> ApiResult<rag_proto::Document> {
    caller.require(Scope::Upload)?;
    let document = state
        .documents()
        .get_document(GetDocumentRequest {
            tenant: caller.tenant.clone(),
            id,
        })
        .await?
        .into_inner();
    if !caller.may_use(&document.domain) {
        return Err(ServiceError::not_found("no such document").into());
    }
    Ok(document)
}

/// One document: its status, and why it failed when it did.
#[utoipa::path(
    get, path = "/v1/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The document", body = DocumentView),
        (status = 404, description = "No such document of this tenant", body = ErrorBody),
    )
)]
pub(crate) async fn get_document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DocumentView>> {
    let document = callers_document(&state, &caller, id).await?;
    Ok(Json(DocumentView::from(&document)))
}

/// Deletes a document: it leaves search results at once, its chunks soon after.
#[utoipa::path(
    delete, path = "/v1/documents/{id}", tag = "documents",
    params(("id" = String, Path, description = "The document's id")),
    responses(
        (status = 202, description = "Being deleted", body = DocumentView),
        (status = 404, description = "No such document of this tenant", body = ErrorBody),
    )
)]
pub(crate) async fn delete_document(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let document = callers_document(&state, &caller, id).await?;
    let document = state
        .documents()
        .delete_document(DeleteDocumentRequest {
            tenant: caller.tenant,
            id: document.id,
        })
        .await?
        .into_inner();
    let mut body = DocumentView::from(&document);
    body.status = DocumentStatus::Deleting;
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The configured domains.
#[utoipa::path(
    get, path = "/v1/domains", tag = "query",
    responses(
        (status = 200, description = "The domains", body = Domains),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn domains(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Domains>> {
    let domains = state
        .router()
        .list_domains(ListDomainsRequest {})
        .await?
        .into_inner()
        .domains;
    Ok(Json(Domains {
        domains: domains
            .into_iter()
            .filter(|d| caller.may_use(&d.name))
            .map(|d| DomainView {
                name: d.name,
                description: d.description,
                default_tier: d.default_tier,
            })
            .collect(),
    }))
}

/// The domains documents may go to: the router's (which reloads them while it runs, see
/// `router.live`), or this gateway's configuration when the router cannot be asked.
async fn known_domains(state: &AppState) -> Vec<String> {
    match state.router().list_domains(ListDomainsRequest {}).await {
        Ok(response) => response
            .into_inner()
            .domains
            .into_iter()
            .map(|d| d.name)
            .collect(),
        Err(status) => {
            tracing::warn!(error = %status.message(), "cannot ask the router for its domains; using this gateway's");
            state
                .settings
                .domains
                .iter()
                .map(|d| d.name.clone())
                .collect()
        }
    }
}

/// Counts each routed request by method, route pattern and status, and times it.
async fn track(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use rag_telemetry::metrics::{HttpLabels, RouteLabels, metrics};
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let m = metrics();
    m.http_in_flight.inc();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    m.http_in_flight.dec();
    m.http_request_duration
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`: this process's metrics in the OpenMetrics text format.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The process's metrics (OpenMetrics text)", content_type = "application/openmetrics-text", body = String))
)]
pub(crate) async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            rag_telemetry::metrics::CONTENT_TYPE,
        )],
        rag_telemetry::metrics::render(),
    )
        .into_response()
}

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "Alive", body = Live))
)]
pub(crate) async fn live() -> Json<Live> {
    Json(Live {
        status: "ok".to_owned(),
    })
}

/// Ready when the router, the document service and the object store all are; the body
/// names what is not.
#[utoipa::path(
    get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready; `checks` names what is not", body = Ready),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let (router, documents, objects) = tokio::join!(
        rag_grpc::check_health(state.router_channel.clone(), ""),
        rag_grpc::check_health(state.documents_channel.clone(), ""),
        state.objects.health(),
    );
    let checks = ReadyChecks {
        router,
        documents,
        object_store: objects.is_ok(),
    };
    let ready = router && documents && objects.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (
        status,
        Json(Ready {
            status: if ready { "ready" } else { "not ready" }.to_owned(),
            checks,
        }),
    )
        .into_response();
    if !ready {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        );
    }
    response
}

/// The message of the fallback's 404, which the OpenAPI test tells from a handler's 404 by.
pub(crate) const NO_SUCH_ROUTE: &str = "no such route";

async fn not_found() -> ApiError {
    ApiError(ServiceError::not_found(NO_SUCH_ROUTE))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use super::*;

    /// A gateway whose router accepts connections and never answers, with room for one
    /// request in progress.
    async fn stalled_gateway(dir: &std::path::Path) -> (axum::Router, tokio::net::TcpListener) {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}", silent.local_addr().expect("an address"));
        let mut settings = rag_config::Settings {
            data_dir: dir.to_path_buf(),
            ..rag_config::Settings::default()
        };
        settings.gateway.router_url = url.clone();
        settings.gateway.documents_url = url;
        settings.gateway.request_timeout_ms = 1_500;
        settings.gateway.max_in_flight = 1;
        let state = AppState::new(&settings).expect("valid settings");
        (router(state), silent)
    }

    fn question() -> Request<Body> {
        Request::post("/v1/query")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"question": "Who is on call?"}"#))
            .expect("a request")
    }

    async fn message(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[tokio::test]
    async fn past_max_in_flight_requests_are_shed_at_once_and_probes_still_answer() {
        let dir = tempfile::tempdir().expect("a directory");
        let (app, _silent) = stalled_gateway(dir.path()).await;
        // The first request holds the only permit while the router does not answer.
        let first = tokio::spawn(app.clone().oneshot(question()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        let shed = app.clone().oneshot(question()).await.expect("infallible");
        assert!(started.elapsed() < Duration::from_secs(1), "shed at once");
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            shed.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("1"))
        );
        assert!(message(shed).await.contains("limit of 1 requests"));
        let probe = Request::get("/health/live")
            .body(Body::empty())
            .expect("a request");
        let live = app.clone().oneshot(probe).await.expect("infallible");
        assert_eq!(live.status(), StatusCode::OK, "probes are not shed");
        // The first one ends at the router's deadline, and its permit comes back: the next
        // request reaches the (silent) router again instead of being shed.
        let first = first.await.expect("the task").expect("infallible");
        assert!(!message(first).await.contains("limit of 1 requests"));
        let after = app.clone().oneshot(question()).await.expect("infallible");
        assert!(!message(after).await.contains("limit of 1 requests"));
    }

    #[tokio::test]
    async fn a_sized_response_keeps_its_length_through_the_in_flight_limit() {
        use http_body::Body as _;

        let dir = tempfile::tempdir().expect("a directory");
        let (app, _silent) = stalled_gateway(dir.path()).await;
        // Rejected by the JSON extractor, inside the limit's middleware.
        let malformed = Request::post("/v1/query")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{"))
            .expect("a request");
        let response = app.clone().oneshot(malformed).await.expect("infallible");
        assert!(response.status().is_client_error(), "{}", response.status());
        let hinted = response.body().size_hint().exact();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        assert_eq!(
            hinted,
            Some(bytes.len() as u64),
            "the length is known up front"
        );
        // The permit came back when the body ended: the next request is not shed.
        let next = app.clone().oneshot(question()).await.expect("infallible");
        assert!(!message(next).await.contains("limit of 1 requests"));
    }
}
