//! `BedrockTitan` and `BedrockRerank` against `rag_standins::bedrock`, a stand-in for Bedrock: Bedrock cannot run
//! on this machine, so an in-process HTTP server speaks Bedrock Runtime's `InvokeModel` wire
//! format as the SDK sends it (REST-JSON, SigV4-signed, Titan V2's bodies, errors as
//! `x-amzn-ErrorType` + JSON message). Its vectors and rerank scores are computable
//! (`rag_standins::bedrock::embedding`, `rerank_score`), so order and content are checked.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::primitives::Blob;
use rag_config::{AwsCredentials, AwsSettings};
use rag_embeddings::rerank::{AMAZON_RERANK_V1, COHERE_RERANK_V3_5};
use rag_embeddings::{
    BedrockRerank, BedrockRerankOptions, BedrockTitan, EmbeddingError, EmbeddingModel, Reranker,
    TitanOptions,
};
use rag_standins::bedrock::{StandIn, embedding, rerank_score};
use serde_json::{Value, json};

fn settings(stand_in: &StandIn) -> AwsSettings {
    AwsSettings {
        region: "us-east-1".into(),
        endpoint_url: Some(stand_in.url()),
        credentials: AwsCredentials::Emulator,
    }
}

fn titan(stand_in: &StandIn, options: TitanOptions) -> BedrockTitan {
    BedrockTitan::new(rag_aws::AwsConfig::new(&settings(stand_in)), options).unwrap()
}

#[tokio::test]
async fn embeds_in_order_through_the_wire_format() {
    let stand_in = StandIn::start().await.unwrap();
    // Bedrock's own endpoint wins over the one of the AWS configuration (nothing listens on
    // port 9), as a VPC endpoint would.
    let elsewhere = AwsSettings {
        endpoint_url: Some("http://127.0.0.1:9".into()),
        ..settings(&stand_in)
    };
    let options = TitanOptions {
        dimensions: 256,
        endpoint_url: Some(stand_in.url()),
        ..TitanOptions::default()
    };
    let model = BedrockTitan::new(rag_aws::AwsConfig::new(&elsewhere), options).unwrap();
    assert_eq!(
        (model.model_id(), model.dimensions()),
        ("amazon.titan-embed-text-v2:0", 256)
    );
    let texts: Vec<String> = (0..20)
        .map(|i| format!("chunk number {i} about leave"))
        .collect();
    let vectors = model.embed(&texts).await.unwrap();
    let expected: Vec<_> = texts.iter().map(|t| embedding(t, 256)).collect();
    assert_eq!(vectors, expected, "one vector per text, in order");
    assert_eq!(stand_in.requests(), 20);
    assert!(model.embed(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn throttling_is_retried_then_reported_unavailable() {
    let stand_in = StandIn::start().await.unwrap();
    stand_in.throttle_first(3);
    let options = TitanOptions {
        dimensions: 512,
        ..TitanOptions::default()
    };
    let model = titan(&stand_in, options);
    let vectors = model
        .embed(&["one".to_owned(), "two".to_owned()])
        .await
        .unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(stand_in.requests(), 3 + 2, "throttled calls were retried");

    // Throttled for longer than the attempts allow: unavailable, not a crash or a bad vector.
    stand_in.throttle_first(usize::MAX);
    let options = TitanOptions {
        max_attempts: 2,
        ..TitanOptions::default()
    };
    let impatient = titan(&stand_in, options);
    let err = impatient.embed(&["three".to_owned()]).await.unwrap_err();
    assert!(matches!(err, EmbeddingError::Unavailable(_)), "{err}");
    assert_eq!(stand_in.requests(), 2);
}

#[tokio::test]
async fn refused_input_is_invalid_and_bad_options_are_refused() {
    let stand_in = StandIn::start().await.unwrap();
    let model = titan(&stand_in, TitanOptions::default());
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
        let aws = rag_aws::AwsConfig::new(&settings(&stand_in));
        assert!(BedrockTitan::new(aws, options).is_err());
    }
}

fn reranker(stand_in: &StandIn, model_id: &str, max_attempts: u32) -> BedrockRerank {
    let options = BedrockRerankOptions {
        model_id: model_id.into(),
        max_attempts,
        endpoint_url: None,
    };
    BedrockRerank::new(rag_aws::AwsConfig::new(&settings(stand_in)), options).unwrap()
}

#[tokio::test]
async fn rerank_scores_come_back_in_the_passages_order() {
    let stand_in = StandIn::start().await.unwrap();
    let query = "how many days of parental leave";
    // The stand-in answers best first, so its results are out of the passages' order.
    let passages: Vec<String> = [
        "the office is in Lyon",
        "parental leave lasts sixteen weeks",
        "how many days of parental leave: sixteen weeks",
        "days off",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let expected: Vec<f32> = passages.iter().map(|p| rerank_score(query, p)).collect();
    for model_id in [COHERE_RERANK_V3_5, AMAZON_RERANK_V1] {
        let model = reranker(&stand_in, model_id, 1);
        assert_eq!(model.model_id(), model_id);
        assert_eq!(model.rerank(query, &passages).await.unwrap(), expected);
        assert!(model.rerank(query, &[]).await.unwrap().is_empty());
    }
    // The wire bodies, one per call with passages.
    let requests = stand_in.rerank_requests();
    let bodies: Vec<(&str, &Value)> = requests.iter().map(|(m, b)| (m.as_str(), b)).collect();
    assert_eq!(
        bodies,
        vec![
            (
                COHERE_RERANK_V3_5,
                &json!({"query": query, "documents": passages, "top_n": 4, "api_version": 2})
            ),
            (
                AMAZON_RERANK_V1,
                &json!({"query": query, "documents": passages, "top_n": 4})
            ),
        ]
    );
}

#[tokio::test]
async fn rerank_failures_are_unavailable_after_retries_and_never_scores() {
    let stand_in = StandIn::start().await.unwrap();
    let passages = vec!["a".to_owned(), "b".to_owned()];
    // Throttling is retried.
    stand_in.throttle_first(2);
    let model = reranker(&stand_in, COHERE_RERANK_V3_5, 3);
    assert_eq!(model.rerank("a", &passages).await.unwrap(), vec![1.0, 0.0]);
    // A failing model, an unknown one: unavailable.
    stand_in.fail_model(AMAZON_RERANK_V1);
    let err = reranker(&stand_in, AMAZON_RERANK_V1, 2)
        .rerank("a", &passages)
        .await
        .unwrap_err();
    assert!(matches!(err, EmbeddingError::Unavailable(_)), "{err}");
    let err = reranker(&stand_in, "cohere.rerank-v9:0", 1)
        .rerank("a", &passages)
        .await
        .unwrap_err();
    assert!(matches!(err, EmbeddingError::Unavailable(_)), "{err}");
    // More documents than Bedrock takes are refused before any call.
    let before = stand_in.requests();
    let many = vec!["x".to_owned(); 1_001];
    let err = model.rerank("a", &many).await.unwrap_err();
    assert!(matches!(err, EmbeddingError::InvalidInput(_)), "{err}");
    assert_eq!(stand_in.requests(), before);
}

/// The stand-in refuses what Bedrock refuses: raw bodies through the SDK's own client.
#[tokio::test]
async fn the_stand_in_validates_rerank_bodies_as_bedrock_does() {
    let stand_in = StandIn::start().await.unwrap();
    let aws = rag_aws::AwsConfig::new(&settings(&stand_in));
    let client = aws_sdk_bedrockruntime::Client::new(aws.sdk_config().await);
    let send = |model: &'static str, body: Value| {
        let client = client.clone();
        async move {
            client
                .invoke_model()
                .model_id(model)
                .content_type("application/json")
                .body(Blob::new(body.to_string()))
                .send()
                .await
        }
    };
    let documents: Vec<String> = (0..1_001).map(|i| format!("doc {i}")).collect();
    for (model, body) in [
        (
            AMAZON_RERANK_V1,
            json!({"query": "q", "documents": [], "top_n": 1}),
        ),
        (
            AMAZON_RERANK_V1,
            json!({"query": "q", "documents": ["a"], "top_n": 0}),
        ),
        (
            AMAZON_RERANK_V1,
            json!({"query": "q", "documents": ["a"], "top_n": 2}),
        ),
        (
            AMAZON_RERANK_V1,
            json!({"query": "q", "documents": documents, "top_n": 1}),
        ),
        (AMAZON_RERANK_V1, json!({"documents": ["a"], "top_n": 1})),
        (
            COHERE_RERANK_V3_5,
            json!({"query": "q", "documents": ["a"], "top_n": 1}),
        ),
        (
            COHERE_RERANK_V3_5,
            json!({"query": "q", "documents": ["a"], "top_n": 1, "api_version": 1}),
        ),
    ] {
        let err = send(model, body.clone()).await.unwrap_err();
        assert_eq!(
            err.as_service_error().and_then(|e| e.code()),
            Some("ValidationException"),
            "{body}"
        );
    }
    // top_n below the number of documents: only the best come back.
    let ok = send(
        AMAZON_RERANK_V1,
        json!({"query": "leave", "documents": ["a", "leave", "b"], "top_n": 1}),
    )
    .await
    .unwrap();
    let answer: Value = serde_json::from_slice(ok.body.as_ref()).unwrap();
    assert_eq!(
        answer,
        json!({"results": [{"index": 1, "relevanceScore": 1.0}]})
    );
}
