//! A STAND-IN for Amazon Bedrock Runtime, for tests only. It is not Bedrock.
//!
//! Bedrock cannot run here, so this in-process HTTP server on `127.0.0.1:<ephemeral>` speaks
//! the wire format the AWS SDK uses (REST-JSON, model ids percent-encoded in the path,
//! requests signed with SigV4: the `Authorization` header is required, not verified) for:
//!
//! * `POST /model/{modelId}/invoke` with Titan Text Embeddings V2: body `{"inputText",
//!   "dimensions", "normalize"}`, answer `{"embedding", "inputTextTokenCount"}`. Its vectors
//!   are [`embedding`]: bag-of-words hashes, so texts sharing words are similar and tests can
//!   compute what to expect.
//! * `POST /model/{modelId}/invoke` with the rerank models ([`COHERE_RERANK`],
//!   [`AMAZON_RERANK`]): body `{"query", "documents", "top_n"}` (Cohere's also
//!   `"api_version": 2` or more), checked as Bedrock checks it (at least one and at most
//!   1,000 documents, `top_n` in 1..=documents); answer `{"results": [{"index",
//!   "relevance_score"}]}` best first (Amazon's spelled `relevanceScore`). The score is
//!   [`rerank_score`], the share of the query's words a document contains, so tests know the
//!   order to expect; requests are recorded ([`StandIn::rerank_requests`]).
//! * `POST /model/{modelId}/converse`: the Converse API's JSON (`messages`, `system`,
//!   `inferenceConfig` in; `output.message`, `stopReason`, `usage`, `metrics` out), for any
//!   model but an embedding one.
//! * `POST /model/{modelId}/converse-stream`: the same request, answered as an AWS event
//!   stream (`application/vnd.amazon.eventstream`, binary frames written by the SDK's own
//!   codec, `aws-smithy-eventstream`): `messageStart`, `contentBlockDelta` per word,
//!   `contentBlockStop`, `messageStop`, `metadata`.
//!
//! The chat models "answer" with [`crate::grounded_answer`]; tokens are words (system and
//! user in, answer out). Errors are sent as Bedrock sends them: the status, an
//! `x-amzn-ErrorType` header and `{"message"}` (ValidationException 400, AccessDeniedException
//! 403, ResourceNotFoundException 404, ThrottlingException 429, InternalServerException 500).
//! Test controls: throttle the first requests, fail a model, slow the stream down, count the
//! streams a client abandoned.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Controls, chat_controls, count_words, deltas, limit, paced_body};

/// The only embedding model the stand-in serves.
pub const MODEL_ID: &str = "amazon.titan-embed-text-v2:0";

/// The rerank models the stand-in serves.
pub const COHERE_RERANK: &str = "cohere.rerank-v3-5:0";
pub const AMAZON_RERANK: &str = "amazon.rerank-v1:0";

/// Most documents one rerank request may carry, as in Bedrock.
const MAX_RERANK_DOCUMENTS: usize = 1_000;

/// A running stand-in; dropping it stops the server.
pub struct StandIn {
    addr: SocketAddr,
    controls: Arc<Controls>,
    task: JoinHandle<()>,
}

impl StandIn {
    /// On an ephemeral loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?)
    }

    /// On a listener the caller bound.
    pub fn start_on(listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let controls = Arc::new(Controls::default());
        let app = axum::Router::new()
            .route("/model/{model_id}/invoke", axum::routing::post(invoke))
            .route("/model/{model_id}/converse", axum::routing::post(converse))
            .route(
                "/model/{model_id}/converse-stream",
                axum::routing::post(converse_stream),
            )
            .with_state(controls.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("bedrock stand-in stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            controls,
            task,
        })
    }

    /// The endpoint to give the SDK (`aws.endpoint_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    chat_controls!();

    /// The rerank requests received so far (refused ones included), as (model id, body).
    pub fn rerank_requests(&self) -> Vec<(String, Value)> {
        self.controls.reranks.lock().clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The stand-in's vector for `text`: each lower-cased word adds ±1 to three dimensions
/// chosen by FNV-1a hashes; the sum is L2-normalised.
pub fn embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; dimensions.max(1)];
    let len = v.len() as u64;
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        for seed in 0u8..3 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in std::iter::once(seed).chain(word.to_lowercase().bytes()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
            let index = usize::try_from(h % len).unwrap_or(0);
            if let Some(x) = v.get_mut(index) {
                *x += if h >> 63 == 0 { 1.0 } else { -1.0 };
            }
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else if let Some(first) = v.first_mut() {
        *first = 1.0;
    }
    v
}

fn error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    (
        status,
        [("x-amzn-ErrorType", kind)],
        Json(json!({ "message": message })),
    )
        .into_response()
}

async fn invoke(
    State(controls): State<Arc<Controls>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let throttled = controls.arrive();
    if let Some(refused) = unsigned(&headers) {
        return refused;
    }
    if [COHERE_RERANK, AMAZON_RERANK].contains(&model_id.as_str()) {
        return rerank(&controls, &model_id, throttled, &body);
    }
    if model_id != MODEL_ID {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        );
    }
    if throttled {
        return throttling();
    }
    if controls.is_failing(&model_id) {
        return internal_error();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request",
        );
    };
    let text = request["inputText"].as_str().unwrap_or_default();
    let dimensions = request["dimensions"]
        .as_u64()
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(1024);
    if text.is_empty()
        || ![256, 512, 1024].contains(&dimensions)
        || request["normalize"] != json!(true)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request: inputText, dimensions or normalize",
        );
    }
    Json(json!({
        "embedding": embedding(text, dimensions),
        "inputTextTokenCount": text.split_whitespace().count(),
    }))
    .into_response()
}

/// The stand-in's relevance of `document` to `query`: the share of the query's distinct
/// words (lower-cased runs of letters and digits) that the document contains, in [0, 1].
pub fn rerank_score(query: &str, document: &str) -> f32 {
    let words = |text: &str| -> HashSet<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let query = words(query);
    if query.is_empty() {
        return 0.0;
    }
    let document = words(document);
    query.intersection(&document).count() as f32 / query.len() as f32
}

/// A rerank `InvokeModel` call (signed, counted and throttled by the caller).
fn rerank(controls: &Controls, model_id: &str, throttled: bool, body: &[u8]) -> Response {
    let invalid = |message: &str| error(StatusCode::BAD_REQUEST, "ValidationException", message);
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return invalid("Malformed input request");
    };
    controls
        .reranks
        .lock()
        .push((model_id.to_owned(), request.clone()));
    if throttled {
        return throttling();
    }
    if controls.is_failing(model_id) {
        return internal_error();
    }
    let Some(query) = request["query"].as_str().filter(|q| !q.trim().is_empty()) else {
        return invalid("Malformed input request: #/query: expected a non-empty string");
    };
    let Some(documents) = request["documents"].as_array() else {
        return invalid("Malformed input request: #/documents: expected an array");
    };
    let documents: Option<Vec<&str>> = documents.iter().map(Value::as_str).collect();
    let Some(documents) = documents else {
        return invalid("Malformed input request: #/documents: expected strings");
    };
    if documents.is_empty() || documents.len() > MAX_RERANK_DOCUMENTS {
        return invalid("Malformed input request: #/documents: expected 1 to 1000 items");
    }
    let top_n = request["top_n"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok());
    let Some(top_n) = top_n.filter(|n| (1..=documents.len()).contains(n)) else {
        return invalid("Malformed input request: #/top_n: expected 1 to the number of documents");
    };
    let cohere = model_id == COHERE_RERANK;
    if cohere && request["api_version"].as_u64().is_none_or(|v| v < 2) {
        return invalid("Malformed input request: #/api_version: expected 2 or more");
    }
    let mut scored: Vec<(usize, f32)> = documents
        .iter()
        .map(|d| rerank_score(query, d))
        .enumerate()
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let score_key = if cohere {
        "relevance_score"
    } else {
        "relevanceScore"
    };
    let results: Vec<Value> = scored
        .into_iter()
        .take(top_n)
        .map(|(index, score)| json!({"index": index, score_key: score}))
        .collect();
    Json(json!({ "results": results })).into_response()
}

fn unsigned(headers: &HeaderMap) -> Option<Response> {
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    (!signed).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "the request is not signed",
        )
    })
}

fn throttling() -> Response {
    error(
        StatusCode::TOO_MANY_REQUESTS,
        "ThrottlingException",
        "Too many requests, please wait before trying again.",
    )
}

fn internal_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerException",
        "The server encountered an internal error while processing the request.",
    )
}

/// A Converse request the stand-in accepts.
struct Conversation {
    system: String,
    user: String,
    max_tokens: Option<u64>,
}

/// Reads and checks a Converse / ConverseStream request as Bedrock would, or the error to
/// send (after the request was counted, signed, throttled or failed as the test asked).
fn conversation(
    controls: &Controls,
    model_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Conversation, Box<Response>> {
    let throttled = controls.arrive();
    if let Some(refused) = unsigned(headers) {
        return Err(Box::new(refused));
    }
    if throttled {
        return Err(Box::new(throttling()));
    }
    if controls.is_failing(model_id) {
        return Err(Box::new(internal_error()));
    }
    let invalid = |message: &str| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            message,
        ))
    };
    if model_id.contains("embed") {
        return Err(invalid(
            "The provided model doesn't support the Converse operation.",
        ));
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("Malformed input request"));
    };
    let texts = |blocks: &Value| -> String {
        blocks
            .as_array()
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|b| b["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    };
    let system = texts(&request["system"]);
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let Some(last) = messages.last() else {
        return Err(invalid("A conversation must start with a user message."));
    };
    let user = texts(&last["content"]);
    if last["role"] != "user" || user.trim().is_empty() {
        return Err(invalid(
            "The last message must be a user message with non-blank text content.",
        ));
    }
    let inference = &request["inferenceConfig"];
    let max_tokens = inference["maxTokens"].as_u64();
    if max_tokens == Some(0) {
        return Err(invalid("maxTokens must be at least 1."));
    }
    if let Some(t) = inference["temperature"].as_f64()
        && !(0.0..=1.0).contains(&t)
    {
        return Err(invalid("temperature must be between 0 and 1."));
    }
    Ok(Conversation {
        system,
        user,
        max_tokens,
    })
}

impl Conversation {
    /// The answer, its stop reason, and the usage.
    fn answer(&self, controls: &Controls) -> (String, &'static str, Value) {
        let (answer, cut) = limit(controls.answer(&self.system, &self.user), self.max_tokens);
        let input = count_words(&self.system) + count_words(&self.user);
        let output = count_words(&answer);
        let usage = json!({
            "inputTokens": input,
            "outputTokens": output,
            "totalTokens": input + output,
        });
        (answer, if cut { "max_tokens" } else { "end_turn" }, usage)
    }
}

async fn converse(
    State(controls): State<Arc<Controls>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let conversation = match conversation(&controls, &model_id, &headers, &body) {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    let (answer, stop_reason, usage) = conversation.answer(&controls);
    Json(json!({
        "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
        "stopReason": stop_reason,
        "usage": usage,
        "metrics": {"latencyMs": 1},
    }))
    .into_response()
}

/// One event-stream message of type `event_type`, as Bedrock frames it.
fn event_frame(event_type: &'static str, payload: &Value) -> Vec<u8> {
    let message = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ));
    let mut frame = Vec::new();
    // Writing fails only for headers or payloads beyond the format's limits (16 MiB).
    if let Err(e) = aws_smithy_eventstream::frame::write_message_to(&message, &mut frame) {
        eprintln!("bedrock stand-in: cannot frame {event_type}: {e}");
    }
    frame
}

async fn converse_stream(
    State(controls): State<Arc<Controls>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let conversation = match conversation(&controls, &model_id, &headers, &body) {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    let (answer, stop_reason, usage) = conversation.answer(&controls);
    // (is a token, frame): tokens are paced by `delay_per_token`.
    let mut frames = vec![(
        false,
        event_frame("messageStart", &json!({"role": "assistant"})),
    )];
    for delta in deltas(&answer) {
        frames.push((
            true,
            event_frame(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"text": delta}}),
            ),
        ));
    }
    frames.push((
        false,
        event_frame("contentBlockStop", &json!({"contentBlockIndex": 0})),
    ));
    frames.push((
        false,
        event_frame("messageStop", &json!({"stopReason": stop_reason})),
    ));
    frames.push((
        false,
        event_frame(
            "metadata",
            &json!({"usage": usage, "metrics": {"latencyMs": 1}}),
        ),
    ));
    (
        [(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")],
        paced_body(frames, controls),
    )
        .into_response()
}
