//! The `EmbeddingModel` contract, run against every implementation: the local
//! all-MiniLM-L6-v2 (real weights, fetched by `make models`), Bedrock Titan V2 (through
//! `rag_standins::bedrock`, a stand-in speaking Bedrock's wire format, as Bedrock cannot run
//! here) and the hashing model of the tests. What the indexer and the retriever rely on:
//! one unit vector per text, in order, of the advertised size; the same text gives the same
//! vector whether embedded alone or in a batch; related texts are closer than unrelated
//! ones; token counts grow with the text; oversized calls are refused.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use rag_config::{AwsCredentials, AwsSettings};
use rag_embeddings::{
    BedrockTitan, DEFAULT_MAX_TEXTS_PER_CALL, EmbeddingError, EmbeddingModel, HashEmbedding,
    LocalMiniLm, TitanOptions, default_model_dir,
};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

async fn contract(model: &dyn EmbeddingModel) {
    let name = model.model_id().to_owned();
    let texts: Vec<String> = [
        "Full-time employees accrue 25 days of paid annual leave per year.",
        "How many vacation days do I get per year?",
        "Roll back a failed deployment with the canary rollback runbook.",
        "Roll back a failed deployment with the canary rollback runbook.",
    ]
    .map(str::to_owned)
    .to_vec();
    let vectors = model.embed(&texts).await.unwrap();
    assert_eq!(vectors.len(), texts.len(), "{name}");
    for v in &vectors {
        assert_eq!(v.len(), model.dimensions(), "{name}");
        let norm = cosine(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{name}: norm {norm}");
    }
    assert_eq!(vectors[2], vectors[3], "{name}: same text, same vector");
    for (i, text) in texts.iter().enumerate() {
        let alone = model.embed(std::slice::from_ref(text)).await.unwrap();
        let diff = alone[0]
            .iter()
            .zip(&vectors[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "{name}: batch and single differ by {diff}");
    }
    let related = cosine(&vectors[0], &vectors[1]);
    let unrelated = cosine(&vectors[0], &vectors[2]);
    assert!(
        related > unrelated,
        "{name}: leave/vacation {related} <= leave/deployment {unrelated}"
    );
    assert!(model.embed(&[]).await.unwrap().is_empty(), "{name}");

    let short = model.count_tokens("annual leave").unwrap();
    let long = model.count_tokens(&texts[0]).unwrap();
    assert!(0 < short && short < long, "{name}: {short} vs {long}");
    assert!(model.max_text_tokens() <= model.max_tokens(), "{name}");

    let too_many = vec!["x".to_owned(); DEFAULT_MAX_TEXTS_PER_CALL + 1];
    assert!(
        matches!(
            model.embed(&too_many).await,
            Err(EmbeddingError::InvalidInput(_))
        ),
        "{name}"
    );
}

#[tokio::test]
async fn hash_embedding_keeps_the_contract() {
    contract(&HashEmbedding::new()).await;
}

#[tokio::test]
async fn local_minilm_keeps_the_contract() {
    let dir = default_model_dir();
    let model = LocalMiniLm::load(&dir).unwrap_or_else(|e| {
        panic!("{e}: fetch the weights with `make models` or set RAG_MODEL_DIR")
    });
    contract(&model).await;
}

#[tokio::test]
async fn bedrock_titan_keeps_the_contract() {
    let stand_in = rag_standins::bedrock::StandIn::start().await.unwrap();
    let settings = AwsSettings {
        region: "us-east-1".into(),
        endpoint_url: Some(stand_in.url()),
        credentials: AwsCredentials::Emulator,
    };
    let model = BedrockTitan::new(
        rag_aws::AwsConfig::new(&settings),
        TitanOptions {
            dimensions: 256,
            ..TitanOptions::default()
        },
    )
    .unwrap();
    contract(&model).await;
}
