//! The LLM judge through both providers' real clients (the AWS SDK's Converse, reqwest's chat
//! completions) over loopback. Bedrock and an OpenAI-compatible server cannot run here, so
//! `rag-standins` speaks their wire formats; the stand-ins' "model" is a test judge that
//! reads the rendered prompt and replies in the verdict's JSON, so the test checks what the
//! judge is sent and how its reply is parsed.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use rag_config::{AwsCredentials, AwsSettings};
use rag_eval::judge::{self, Judge, JudgeError, JudgePrompt};
use rag_generation::{BedrockConverse, BedrockOptions, Generator, OpenAiChat, OpenAiOptions};
use rag_standins::{bedrock, openai};

const QUESTION: &str = "when is the next deadpool movie being released";
const PASSAGE: &str =
    "Deadpool 2 is scheduled to be released in the United States on May 18, 2018.";

/// A judge that scores faithfulness 5 when the answer's sentence (without its citation mark)
/// is in the passages and 1 otherwise, and relevance 5 when the answer names a date-like
/// number, else 2. It reads the three parts from the user turn the prompt rendered.
fn test_judge(system: &str, user: &str) -> String {
    assert!(system.contains("faithfulness"), "{system}");
    let question = user
        .lines()
        .find_map(|l| l.strip_prefix("Question: "))
        .unwrap_or_default();
    let answer = user
        .lines()
        .find_map(|l| l.strip_prefix("Answer: "))
        .unwrap_or_default();
    let passages = user
        .split("Passages:")
        .nth(1)
        .and_then(|rest| rest.split("\nAnswer: ").next())
        .unwrap_or_default();
    let claim = answer.split(" [").next().unwrap_or_default();
    let supported = !claim.is_empty() && passages.contains(claim);
    let dated = answer.chars().any(|c| c.is_ascii_digit());
    serde_json::json!({
        "faithfulness": if supported { 5 } else { 1 },
        "faithfulness_reason": if supported { "stated in passage 1" } else { "not in the passages" },
        "relevance": if dated && question.contains("when") { 5 } else { 2 },
        "relevance_reason": format!("asked: {question}"),
    })
    .to_string()
}

fn context() -> String {
    judge::render_context(&[(1, "Deadpool 2".into(), PASSAGE.into())])
}

async fn scores_faithful_and_unfaithful_answers(generator: Arc<dyn Generator>) {
    let judge = Judge::new(generator, JudgePrompt::load(None, "v1").unwrap());
    let faithful = judge
        .judge(
            QUESTION,
            &context(),
            "Deadpool 2 is scheduled to be released in the United States on May 18, 2018. [1]",
        )
        .await
        .unwrap();
    assert_eq!((faithful.faithfulness, faithful.relevance), (5, 5));
    assert_eq!(faithful.faithfulness_reason, "stated in passage 1");
    assert_eq!(faithful.relevance_reason, format!("asked: {QUESTION}"));

    let invented = judge
        .judge(QUESTION, &context(), "It comes out on 1 April 2030. [1]")
        .await
        .unwrap();
    assert_eq!((invented.faithfulness, invented.relevance), (1, 5));

    let declined = judge
        .judge(QUESTION, &judge::render_context(&[]), "I don't know.")
        .await
        .unwrap();
    assert_eq!(declined.relevance, 2);
}

fn nova_pro(stand_in: &bedrock::StandIn, streaming: bool) -> Arc<dyn Generator> {
    let aws = AwsSettings {
        region: "us-east-1".into(),
        endpoint_url: Some(stand_in.url()),
        credentials: AwsCredentials::Emulator,
    };
    Arc::new(
        BedrockConverse::new(
            rag_aws::AwsConfig::new(&aws),
            BedrockOptions {
                model_id: "amazon.nova-pro-v1:0".into(),
                streaming,
                max_attempts: 2,
                timeout: Duration::from_secs(10),
                endpoint_url: None,
            },
        )
        .unwrap(),
    )
}

fn local_model(stand_in: &openai::StandIn) -> Arc<dyn Generator> {
    Arc::new(
        OpenAiChat::new(OpenAiOptions {
            base_url: stand_in.url(),
            model: "llama3.1:8b".into(),
            api_key: None,
            timeout: Duration::from_secs(10),
            max_attempts: 2,
        })
        .unwrap(),
    )
}

#[tokio::test]
async fn bedrock_converse_judges() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    stand_in.answer_with(test_judge);
    scores_faithful_and_unfaithful_answers(nova_pro(&stand_in, false)).await;
    scores_faithful_and_unfaithful_answers(nova_pro(&stand_in, true)).await;
    assert_eq!(stand_in.requests(), 6);
}

#[tokio::test]
async fn openai_compatible_server_judges() {
    let stand_in = openai::StandIn::start().await.unwrap();
    stand_in.answer_with(test_judge);
    scores_faithful_and_unfaithful_answers(local_model(&stand_in)).await;
    assert_eq!(stand_in.requests(), 3);
}

#[tokio::test]
async fn a_reply_that_is_not_a_verdict_is_an_error_that_keeps_it() {
    let stand_in = openai::StandIn::start().await.unwrap();
    stand_in.answer_with(|_, _| "The answer looks good, 5/5.".into());
    let judge = Judge::new(
        local_model(&stand_in),
        JudgePrompt::load(None, "v1").unwrap(),
    );
    let err = judge
        .judge(QUESTION, &context(), "May 18, 2018 [1]")
        .await
        .unwrap_err();
    match err {
        JudgeError::Reply { reply, .. } => assert_eq!(reply, "The answer looks good, 5/5."),
        other => panic!("expected a reply error, got {other:?}"),
    }

    // Without an answerer of its own the stand-in writes a grounded answer, not JSON.
    let plain = openai::StandIn::start().await.unwrap();
    let judge = Judge::new(local_model(&plain), JudgePrompt::load(None, "v1").unwrap());
    assert!(matches!(
        judge.judge(QUESTION, &context(), "May 18, 2018 [1]").await,
        Err(JudgeError::Reply { .. })
    ));
}

#[tokio::test]
async fn a_failing_model_is_a_model_error() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    stand_in.fail_model("amazon.nova-pro-v1:0");
    let judge = Judge::new(
        nova_pro(&stand_in, false),
        JudgePrompt::load(None, "v1").unwrap(),
    );
    let err = judge.judge(QUESTION, &context(), "x").await.unwrap_err();
    assert!(matches!(err, JudgeError::Model(_)), "{err:?}");
}
