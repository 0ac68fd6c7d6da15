//! A STAND-IN for an OpenAI-compatible chat completions server (what Ollama, vLLM and
//! llama.cpp's server offer), for tests only. It is no language model.
//!
//! No such server runs here, so this in-process HTTP server on `127.0.0.1:<ephemeral>` speaks
//! the wire format: `POST /v1/chat/completions` with `{"model", "messages", "max_tokens" |
//! "max_completion_tokens", "temperature", "stream", "stream_options": {"include_usage"}}`.
//! Streaming answers are Server-Sent Events: a `chat.completion.chunk` with the role, one per
//! word of the answer, one with `finish_reason`, one with `usage` when `include_usage`, then
//! `data: [DONE]`. Otherwise one `chat.completion` JSON object. Errors are OpenAI's
//! `{"error": {"message", "type", "code"}}` with the status (400, 401, 429 with
//! `Retry-After: 0`, 500).
//!
//! It "answers" with [`crate::grounded_answer`]; tokens are words. Test controls: throttle
//! the first requests, fail a model, slow the stream down, require an API key, count the
//! streams a client abandoned.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Controls, chat_controls, count_words, deltas, limit, paced_body};

#[derive(Default)]
struct Server {
    controls: Arc<Controls>,
    api_key: Mutex<Option<String>>,
}

/// A running stand-in; dropping it stops the server.
pub struct StandIn {
    addr: SocketAddr,
    controls: Arc<Controls>,
    server: Arc<Server>,
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
        let server = Arc::new(Server::default());
        let app = axum::Router::new()
            .route(
                "/v1/chat/completions",
                axum::routing::post(chat_completions),
            )
            .with_state(server.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("openai stand-in stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            controls: server.controls.clone(),
            server,
            task,
        })
    }

    /// The API root to give a client (`base_url`): `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// From now on, refuses requests without `Authorization: Bearer {key}` (401).
    pub fn require_api_key(&self, key: &str) {
        *self.server.api_key.lock() = Some(key.to_owned());
    }

    chat_controls!();
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = Json(json!({
        "error": {"message": message, "type": kind, "param": null, "code": null}
    }));
    if status == StatusCode::TOO_MANY_REQUESTS {
        (status, [(header::RETRY_AFTER, "0")], body).into_response()
    } else {
        (status, body).into_response()
    }
}

/// The text of a message's `content`: a string, or an array of `{"type":"text","text"}`.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn sse(payload: &Value) -> Vec<u8> {
    format!("data: {payload}\n\n").into_bytes()
}

async fn chat_completions(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let controls = &server.controls;
    let throttled = controls.arrive();
    let required = server.api_key.lock().clone();
    if let Some(key) = required {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(key.as_str()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Incorrect API key provided.",
            );
        }
    }
    if throttled {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "Rate limit reached for requests.",
        );
    }
    let invalid = |message: &str| error(StatusCode::BAD_REQUEST, "invalid_request_error", message);
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid("We could not parse the JSON body of your request.");
    };
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    if model.is_empty() {
        return invalid("you must provide a model parameter");
    }
    if controls.is_failing(&model) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The model crashed while processing the request.",
        );
    }
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let text_of = |role: &str| {
        messages
            .iter()
            .filter(|m| m["role"] == role)
            .map(|m| content_text(&m["content"]))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (system, user) = (text_of("system"), text_of("user"));
    if user.trim().is_empty() {
        return invalid("messages must hold a user message with content");
    }
    if let Some(t) = request["temperature"].as_f64()
        && !(0.0..=2.0).contains(&t)
    {
        return invalid(&format!(
            "{t} is greater than the maximum of 2 - 'temperature'"
        ));
    }
    let max_tokens = request["max_completion_tokens"]
        .as_u64()
        .or_else(|| request["max_tokens"].as_u64());
    if max_tokens == Some(0) {
        return invalid("max_tokens must be at least 1");
    }

    let (answer, cut) = limit(controls.answer(&system, &user), max_tokens);
    let finish_reason = if cut { "length" } else { "stop" };
    let prompt_tokens = count_words(&system) + count_words(&user);
    let completion_tokens = count_words(&answer);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let id = format!(
        "chatcmpl-{}",
        controls.requests.load(std::sync::atomic::Ordering::SeqCst)
    );

    if request["stream"] != json!(true) {
        return Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": finish_reason,
            }],
            "usage": usage,
        }))
        .into_response();
    }

    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    // (is a token, frame): tokens are paced by `delay_per_token`.
    let mut frames = vec![(
        false,
        sse(&chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )),
    )];
    for delta in deltas(&answer) {
        frames.push((true, sse(&chunk(json!({"content": delta}), Value::Null))));
    }
    frames.push((false, sse(&chunk(json!({}), json!(finish_reason)))));
    if request["stream_options"]["include_usage"] == json!(true) {
        frames.push((
            false,
            sse(&json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": usage,
            })),
        ));
    }
    frames.push((false, b"data: [DONE]\n\n".to_vec()));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        paced_body(frames, controls.clone()),
    )
        .into_response()
}
