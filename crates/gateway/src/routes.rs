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
    AnswerRequest, AnswerResponse, DeleteDocumentRequest, Document, FeedbackBreakdown,
    FeedbackRequest, FeedbackSummaryRequest, GetDocumentRequest, ListDocumentsRequest,
    ListDomainsRequest, RegisterUploadRequest, answer_event,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::AppState;
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
    axum::Router::new()
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
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
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

/// The caller's tenant. Until API keys exist every caller is the configured default tenant.
fn tenant(state: &AppState) -> String {
    state.settings.default_tenant.clone()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    question: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    alpha: Option<f32>,
    #[serde(default)]
    stream: bool,
}

impl QueryBody {
    fn into_request(self, tenant: String, request_id: String) -> AnswerRequest {
        AnswerRequest {
            question: self.question,
            domain: self.domain.unwrap_or_default(),
            top_k: self.top_k.unwrap_or(0),
            tenant,
            request_id,
            alpha: self.alpha,
        }
    }
}

async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<QueryBody>,
) -> ApiResult<Response> {
    if body.stream {
        return stream_answer(state, headers, body).await;
    }
    let request = body.into_request(tenant(&state), request_id(&headers));
    let response = state.router().answer_unary(request).await?.into_inner();
    Ok(Json(answer_json(&response)).into_response())
}

async fn query_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<QueryBody>,
) -> ApiResult<Response> {
    stream_answer(state, headers, body).await
}

/// `token` events as the answer is generated, then one `done` event with the whole answer
/// and its metadata, or one `error` event. Dropping the response (a client that goes away)
/// drops the gRPC stream, which cancels the call upstream.
async fn stream_answer(
    state: AppState,
    headers: HeaderMap,
    body: QueryBody,
) -> ApiResult<Response> {
    let request = body.into_request(tenant(&state), request_id(&headers));
    // Errors before the first event (validation, dependencies down) are plain HTTP errors.
    let upstream = state.router().answer(request).await?.into_inner();
    let events = upstream.map(|item| -> Result<Event, Infallible> {
        Ok(match item {
            Ok(event) => match event.event {
                Some(answer_event::Event::Token(token)) => Event::default()
                    .event("token")
                    .data(json!({ "text": token.text }).to_string()),
                Some(answer_event::Event::Complete(done)) => Event::default()
                    .event("done")
                    .data(answer_json(&done).to_string()),
                None => Event::default().comment("empty event"),
            },
            Err(status) => {
                let e = ServiceError::from(status);
                Event::default()
                    .event("error")
                    .data(json!({ "code": e.code.as_str(), "message": e.message }).to_string())
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

fn answer_json(r: &AnswerResponse) -> Value {
    let usage = r.usage.unwrap_or_default();
    json!({
        "query_id": r.query_id,
        "answer": r.answer,
        "grounded": r.grounded,
        "citations": r.citations.iter().map(|c| json!({
            "number": c.number,
            "document_id": c.document_id,
            "title": c.title,
            "domain": c.domain,
            "chunk_index": c.chunk_index,
            "page": c.page,
            "score": c.score,
            "snippet": c.snippet,
        })).collect::<Vec<_>>(),
        "model": r.model,
        "tier": r.tier,
        "tier_reasons": r.tier_reasons,
        "prompt_version": r.prompt_version,
        "cache": cache_name(r.cache()),
        "usage": { "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "cost_usd": usage.cost_usd },
        "latency_ms": r.latency_ms,
    })
}

fn cache_name(status: rag_proto::CacheStatus) -> &'static str {
    match status {
        rag_proto::CacheStatus::Exact => "exact",
        rag_proto::CacheStatus::Semantic => "semantic",
        rag_proto::CacheStatus::Miss | rag_proto::CacheStatus::Unspecified => "miss",
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    query_id: String,
    /// "up" or "down".
    rating: String,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /v1/feedback`: a rating of one of the caller's answers, joined to how it was made.
async fn feedback(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<FeedbackBody>,
) -> ApiResult<Json<Value>> {
    let stored = state
        .router()
        .submit_feedback(FeedbackRequest {
            query_id: body.query_id,
            tenant: tenant(&state),
            rating: body.rating,
            comment: body.comment,
        })
        .await?
        .into_inner();
    Ok(Json(json!({
        "query_id": stored.query_id,
        "rating": stored.rating,
        "answer": {
            "tier": stored.tier,
            "prompt_version": stored.prompt_version,
            "cache": cache_name(stored.cache()),
            "model": stored.model,
        },
        "evicted_from_cache": stored.evicted,
    })))
}

/// `GET /v1/feedback/summary`: ratings by tier, prompt version, cache status and model.
async fn feedback_summary(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let s = state
        .router()
        .get_feedback_summary(FeedbackSummaryRequest {
            tenant: tenant(&state),
        })
        .await?
        .into_inner();
    let rows = |b: &[FeedbackBreakdown]| -> Vec<Value> {
        b.iter()
            .map(|b| {
                let rated = b.up + b.down;
                json!({
                    "key": b.key,
                    "answers": b.answers,
                    "up": b.up,
                    "down": b.down,
                    "down_share": (rated > 0).then(|| b.down as f64 / rated as f64),
                })
            })
            .collect()
    };
    Ok(Json(json!({
        "answers": s.answers,
        "rated": s.rated,
        "up": s.up,
        "down": s.down,
        "by_tier": rows(&s.by_tier),
        "by_prompt_version": rows(&s.by_prompt_version),
        "by_cache": rows(&s.by_cache),
        "by_model": rows(&s.by_model),
    })))
}

fn document_json(d: &Document) -> Value {
    let state = match d.state() {
        rag_proto::DocumentState::Queued => "queued",
        rag_proto::DocumentState::Processing => "processing",
        rag_proto::DocumentState::Indexed => "indexed",
        rag_proto::DocumentState::Failed => "failed",
        rag_proto::DocumentState::Deleting => "deleting",
        rag_proto::DocumentState::Deleted => "deleted",
        rag_proto::DocumentState::Unspecified => "unknown",
    };
    json!({
        "id": d.id,
        "title": d.title,
        "domain": d.domain,
        "status": state,
        "version": d.version,
        "chunk_count": d.chunk_count,
        "size_bytes": d.size_bytes,
        "error": (!d.error.is_empty()).then_some(&d.error),
        "content_sha256": (!d.content_sha256.is_empty()).then_some(&d.content_sha256),
        "created_at_ms": d.created_at_ms,
        "updated_at_ms": d.updated_at_ms,
    })
}

/// `POST /v1/documents`: multipart with `file` and optional `domain`. Validates size and
/// type, records the upload as queued, writes the object (whose event starts ingestion),
/// and answers 202 with the document's id.
async fn upload(State(state): State<AppState>, mut multipart: Multipart) -> ApiResult<Response> {
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
    if state.settings.domain(&domain).is_none() {
        let known: Vec<&str> = state
            .settings
            .domains
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        return Err(ServiceError::invalid_field(
            "domain",
            format!(
                "unknown domain {domain:?}; known domains: {}",
                known.join(", ")
            ),
        )
        .into());
    }

    let tenant = tenant(&state);
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
    Ok((StatusCode::ACCEPTED, Json(document_json(&document))).into_response())
}

fn multipart_error(text: &str, status: StatusCode) -> ApiError {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::InvalidArgument
    };
    ApiError(ServiceError::new(code, format!("malformed upload: {text}")))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    #[serde(default)]
    domain: Option<String>,
}

async fn list_documents(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Value>> {
    let documents = state
        .documents()
        .list_documents(ListDocumentsRequest {
            tenant: tenant(&state),
            domain: params.domain.unwrap_or_default(),
        })
        .await?
        .into_inner()
        .documents;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let listed: Vec<Value> = documents.iter().map(document_json).collect();
    for d in &listed {
        *counts
            .entry(d["status"].as_str().unwrap_or("unknown"))
            .or_default() += 1;
    }
    Ok(Json(json!({ "documents": listed, "counts": counts })))
}

async fn get_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let document = state
        .documents()
        .get_document(GetDocumentRequest {
            tenant: tenant(&state),
            id,
        })
        .await?
        .into_inner();
    Ok(Json(document_json(&document)))
}

async fn delete_document(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let document = state
        .documents()
        .delete_document(DeleteDocumentRequest {
            tenant: tenant(&state),
            id,
        })
        .await?
        .into_inner();
    let mut body = document_json(&document);
    body["status"] = json!("deleting");
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn domains(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let domains = state
        .router()
        .list_domains(ListDomainsRequest {})
        .await?
        .into_inner()
        .domains;
    Ok(Json(json!({
        "domains": domains.iter().map(|d| json!({ "name": d.name, "description": d.description, "default_tier": d.default_tier })).collect::<Vec<_>>()
    })))
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
async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            rag_telemetry::metrics::CONTENT_TYPE,
        )],
        rag_telemetry::metrics::render(),
    )
        .into_response()
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the router, the document service and the object store all are; the body
/// names what is not.
async fn ready(State(state): State<AppState>) -> Response {
    let (router, documents, objects) = tokio::join!(
        rag_grpc::check_health(state.router_channel.clone(), ""),
        rag_grpc::check_health(state.documents_channel.clone(), ""),
        state.objects.health(),
    );
    let checks =
        json!({ "router": router, "documents": documents, "object_store": objects.is_ok() });
    let ready = router && documents && objects.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (
        status,
        Json(json!({ "status": if ready { "ready" } else { "not ready" }, "checks": checks })),
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

async fn not_found() -> ApiError {
    ApiError(ServiceError::not_found("no such route"))
}
