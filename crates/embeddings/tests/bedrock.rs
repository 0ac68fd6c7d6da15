//! `BedrockTitan` against a stand-in for Bedrock: Bedrock cannot run on this machine, so an
//! in-process HTTP server speaks Bedrock Runtime's `InvokeModel` wire format as the SDK
//! sends it (REST-JSON, SigV4-signed, `POST /model/{modelId}/invoke`, Titan V2's request
//! and response bodies, errors as `x-amzn-ErrorType` + JSON message). The vectors it returns
//! are `HashEmbedding`s of the input, so the test can check order and content.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rag_config::{AwsCredentials, AwsSettings};
use rag_embeddings::{BedrockTitan, EmbeddingError, EmbeddingModel, HashEmbedding, TitanOptions};
use serde_json::{Value, json};

#[derive(Default)]
struct StandIn {
    requests: AtomicUsize,
    /// Requests answered with 429 ThrottlingException before any succeeds.
    throttle_first: AtomicUsize,
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("x-amzn-ErrorType", kind)],
        Json(json!({ "message": message })),
    )
        .into_response()
}

async fn invoke(
    State(state): State<Arc<StandIn>>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let n = state.requests.fetch_add(1, Ordering::SeqCst);
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    if !signed {
        return error(StatusCode::FORBIDDEN, "AccessDeniedException", "not signed");
    }
    if model_id != "amazon.titan-embed-text-v2:0" {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            "no such model",
        );
    }
    if n < state.throttle_first.load(Ordering::SeqCst) {
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
    let dimensions = request["dimensions"].as_u64().unwrap_or(1024) as usize;
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
    let vector = HashEmbedding::with_dimensions(dimensions)
        .unwrap()
        .embed(&[text.to_owned()])
        .await
        .unwrap()
        .remove(0);
    Json(json!({ "embedding": vector, "inputTextTokenCount": text.split_whitespace().count() }))
        .into_response()
}

async fn start(state: Arc<StandIn>) -> AwsSettings {
    let app = axum::Router::new()
        .route("/model/{model_id}/invoke", axum::routing::post(invoke))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    AwsSettings {
        region: "us-east-1".into(),
        endpoint_url: Some(format!("http://{addr}")),
        credentials: AwsCredentials::Emulator,
    }
}

fn titan(settings: &AwsSettings, options: TitanOptions) -> BedrockTitan {
    BedrockTitan::new(rag_aws::AwsConfig::new(settings), options).unwrap()
}

#[tokio::test]
async fn embeds_in_order_through_the_wire_format() {
    let state = Arc::new(StandIn::default());
    let settings = start(state.clone()).await;
    let model = titan(
        &settings,
        TitanOptions {
            dimensions: 256,
            ..TitanOptions::default()
        },
    );
    assert_eq!(
        (model.model_id(), model.dimensions()),
        ("amazon.titan-embed-text-v2:0", 256)
    );
    let texts: Vec<String> = (0..20)
        .map(|i| format!("chunk number {i} about leave"))
        .collect();
    let vectors = model.embed(&texts).await.unwrap();
    let expected = HashEmbedding::with_dimensions(256)
        .unwrap()
        .embed(&texts)
        .await
        .unwrap();
    assert_eq!(vectors, expected, "one vector per text, in order");
    assert_eq!(state.requests.load(Ordering::SeqCst), 20);
    assert!(model.embed(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn throttling_is_retried_then_reported_unavailable() {
    let state = Arc::new(StandIn::default());
    state.throttle_first.store(3, Ordering::SeqCst);
    let settings = start(state.clone()).await;
    let model = titan(
        &settings,
        TitanOptions {
            dimensions: 512,
            ..TitanOptions::default()
        },
    );
    let vectors = model
        .embed(&["one".to_owned(), "two".to_owned()])
        .await
        .unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(
        state.requests.load(Ordering::SeqCst),
        3 + 2,
        "throttled calls were retried"
    );

    // Throttled for longer than the attempts allow: unavailable, not a crash or a bad vector.
    state.requests.store(0, Ordering::SeqCst);
    state.throttle_first.store(usize::MAX, Ordering::SeqCst);
    let impatient = titan(
        &settings,
        TitanOptions {
            max_attempts: 2,
            ..TitanOptions::default()
        },
    );
    let err = impatient.embed(&["three".to_owned()]).await.unwrap_err();
    assert!(matches!(err, EmbeddingError::Unavailable(_)), "{err}");
    assert_eq!(state.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn refused_input_is_invalid_and_bad_options_are_refused() {
    let settings = start(Arc::new(StandIn::default())).await;
    let model = titan(&settings, TitanOptions::default());
    let err = model.embed(&[String::new()]).await.unwrap_err();
    assert!(matches!(err, EmbeddingError::InvalidInput(_)), "{err}");
    for options in [
        TitanOptions {
            dimensions: 384,
            ..TitanOptions::default()
        },
        TitanOptions {
            concurrency: 0,
            ..TitanOptions::default()
        },
    ] {
        assert!(BedrockTitan::new(rag_aws::AwsConfig::new(&settings), options).is_err());
    }
}
