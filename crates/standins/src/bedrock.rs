//! A STAND-IN for Amazon Bedrock Runtime's `InvokeModel` with Titan Text Embeddings V2, for
//! tests only. It is not Bedrock.
//!
//! Bedrock cannot run here, so this in-process HTTP server on `127.0.0.1:<ephemeral>` speaks
//! the wire format the AWS SDK uses: REST-JSON `POST /model/{modelId}/invoke`, requests
//! signed with SigV4 (the `Authorization` header is required, not verified), Titan V2's body
//! `{"inputText", "dimensions", "normalize"}` and answer `{"embedding",
//! "inputTextTokenCount"}`, and errors as Bedrock sends them: the status, an
//! `x-amzn-ErrorType` header and `{"message"}` (ValidationException 400,
//! ThrottlingException 429, AccessDeniedException 403, ResourceNotFoundException 404).
//!
//! Its vectors are [`embedding`]: bag-of-words hashes, so texts sharing words are similar and
//! tests can compute what to expect. It can throttle the first requests to test retries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The only model the stand-in serves.
pub const MODEL_ID: &str = "amazon.titan-embed-text-v2:0";

#[derive(Default)]
struct Counters {
    requests: AtomicUsize,
    throttle_first: AtomicUsize,
}

/// A running stand-in; dropping it stops the server.
pub struct StandIn {
    addr: SocketAddr,
    counters: Arc<Counters>,
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
        let counters = Arc::new(Counters::default());
        let app = axum::Router::new()
            .route("/model/{model_id}/invoke", axum::routing::post(invoke))
            .with_state(counters.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("bedrock stand-in stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            counters,
            task,
        })
    }

    /// The endpoint to give the SDK (`aws.endpoint_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far, throttled ones included.
    pub fn requests(&self) -> usize {
        self.counters.requests.load(Ordering::SeqCst)
    }

    /// Answers requests with 429 ThrottlingException until `n` requests (counted from the
    /// start) have been received; `usize::MAX` throttles for ever.
    pub fn throttle_first(&self, n: usize) {
        self.counters.requests.store(0, Ordering::SeqCst);
        self.counters.throttle_first.store(n, Ordering::SeqCst);
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
    State(counters): State<Arc<Counters>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let n = counters.requests.fetch_add(1, Ordering::SeqCst);
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    if !signed {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "the request is not signed",
        );
    }
    if model_id != MODEL_ID {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "Could not resolve the foundation model from the provided model identifier.",
        );
    }
    if n < counters.throttle_first.load(Ordering::SeqCst) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        );
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
