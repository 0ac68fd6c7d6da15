//! `BedrockTitan` against `rag_standins::bedrock`, a stand-in for Bedrock: Bedrock cannot run
//! on this machine, so an in-process HTTP server speaks Bedrock Runtime's `InvokeModel` wire
//! format as the SDK sends it (REST-JSON, SigV4-signed, Titan V2's bodies, errors as
//! `x-amzn-ErrorType` + JSON message). Its vectors are computable
//! (`rag_standins::bedrock::embedding`), so order and content are checked.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use rag_config::{AwsCredentials, AwsSettings};
use rag_embeddings::{BedrockTitan, EmbeddingError, EmbeddingModel, TitanOptions};
use rag_standins::bedrock::{StandIn, embedding};

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
