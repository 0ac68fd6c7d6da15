//! Both providers through their real clients (the AWS SDK, reqwest) over loopback, against
//! stand-ins: Bedrock and OpenAI-compatible servers cannot run here, so
//! `rag_standins::bedrock` speaks Bedrock Runtime's Converse / ConverseStream wire format
//! (REST-JSON, SigV4-signed requests, AWS event-stream frames written by the SDK's own codec,
//! errors as `x-amzn-ErrorType` + JSON) and `rag_standins::openai` the chat completions API
//! (JSON in, Server-Sent Events out). Their "model" answers with the first sentences of the
//! numbered passages (`rag_standins::grounded_answer`), so the text is checked exactly.

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

use std::time::{Duration, Instant};

use futures::StreamExt;
use rag_config::{AwsCredentials, AwsSettings};
use rag_generation::{
    BedrockConverse, BedrockOptions, GenerationError, GenerationEvent, GenerationRequest,
    GenerationUsage, Generator, OpenAiChat, OpenAiOptions,
};
use rag_standins::{NO_ANSWER, bedrock, count_words, grounded_answer, openai};

const SYSTEM: &str = "Answer only from the numbered passages and cite them like [1].";
const USER: &str = "Context:\n\
    [1] Employees get 25 days of paid leave per year. Leave must be booked two weeks ahead.\n\
    [2] Remote work requires a manager's approval. It is reviewed every year.\n\
    \n\
    Question: How many days of paid leave do employees get?";
const NOVA_LITE: &str = "amazon.nova-lite-v1:0";
const NOVA_PRO: &str = "amazon.nova-pro-v1:0";
const LOCAL_MODEL: &str = "llama3.2:3b";

fn request(user: &str) -> GenerationRequest {
    GenerationRequest {
        system: SYSTEM.into(),
        user: user.into(),
        max_output_tokens: 512,
        temperature: 0.2,
    }
}

/// What the stand-ins report for [`request`]: words in, words out.
fn expected_usage(model: &str, user: &str, stop_reason: &str) -> GenerationUsage {
    GenerationUsage {
        model: model.into(),
        input_tokens: u32::try_from(count_words(SYSTEM) + count_words(user)).unwrap(),
        output_tokens: u32::try_from(count_words(&grounded_answer(user))).unwrap(),
        stop_reason: stop_reason.into(),
    }
}

/// The controls both stand-ins offer.
trait Server {
    fn throttle_first(&self, n: usize);
    fn fail_model(&self, model: &str);
    fn delay_per_token(&self, delay: Duration);
    fn requests(&self) -> usize;
    fn cancelled_streams(&self) -> usize;
    fn completed_streams(&self) -> usize;
}

macro_rules! server {
    ($t:ty) => {
        impl Server for $t {
            fn throttle_first(&self, n: usize) {
                <$t>::throttle_first(self, n)
            }
            fn fail_model(&self, model: &str) {
                <$t>::fail_model(self, model)
            }
            fn delay_per_token(&self, delay: Duration) {
                <$t>::delay_per_token(self, delay)
            }
            fn requests(&self) -> usize {
                <$t>::requests(self)
            }
            fn cancelled_streams(&self) -> usize {
                <$t>::cancelled_streams(self)
            }
            fn completed_streams(&self) -> usize {
                <$t>::completed_streams(self)
            }
        }
    };
}
server!(bedrock::StandIn);
server!(openai::StandIn);

fn bedrock_model(stand_in: &bedrock::StandIn, options: BedrockOptions) -> BedrockConverse {
    let settings = AwsSettings {
        region: "us-east-1".into(),
        endpoint_url: Some(stand_in.url()),
        credentials: AwsCredentials::Emulator,
    };
    BedrockConverse::new(rag_aws::AwsConfig::new(&settings), options).unwrap()
}

fn nova(stand_in: &bedrock::StandIn, model_id: &str, max_attempts: u32) -> BedrockConverse {
    bedrock_model(
        stand_in,
        BedrockOptions {
            model_id: model_id.into(),
            streaming: true,
            max_attempts,
            timeout: Duration::from_secs(10),
            endpoint_url: None,
        },
    )
}

fn chat(stand_in: &openai::StandIn, model: &str, max_attempts: u32) -> OpenAiChat {
    OpenAiChat::new(OpenAiOptions {
        base_url: stand_in.url(),
        model: model.into(),
        api_key: None,
        timeout: Duration::from_secs(10),
        max_attempts,
    })
    .unwrap()
}

/// Every event of a generation, errors included.
async fn run(
    model: &dyn Generator,
    request: GenerationRequest,
) -> Result<Vec<Result<GenerationEvent, GenerationError>>, GenerationError> {
    Ok(model.generate(request).await?.collect().await)
}

/// The deltas and the usage of a generation that must succeed.
async fn answer(
    model: &dyn Generator,
    request: GenerationRequest,
) -> (Vec<String>, GenerationUsage) {
    let events = run(model, request).await.unwrap();
    let mut deltas = Vec::new();
    let mut usage = None;
    for event in events {
        match event.unwrap() {
            GenerationEvent::Delta(text) => {
                assert!(usage.is_none(), "a delta after Done");
                deltas.push(text);
            }
            GenerationEvent::Done(u) => {
                assert!(usage.is_none(), "Done twice");
                usage = Some(u);
            }
        }
    }
    (deltas, usage.expect("Done last"))
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ----- the checks, for any provider -----

async fn streams_the_grounded_answer_with_usage(
    model: &dyn Generator,
    server: &dyn Server,
    stop_reason: &str,
) {
    let (deltas, usage) = answer(model, request(USER)).await;
    let expected = grounded_answer(USER);
    assert!(expected.ends_with("[2]"), "{expected}");
    assert!(deltas.len() > 3, "streamed in several deltas: {deltas:?}");
    assert_eq!(deltas.concat(), expected);
    assert_eq!(usage, expected_usage(model.model(), USER, stop_reason));
    wait_for("the stream to complete", || server.completed_streams() == 1).await;
    assert_eq!(server.cancelled_streams(), 0);

    let (deltas, _) = answer(model, request("Question: what is the leave policy?")).await;
    assert_eq!(deltas.concat(), NO_ANSWER, "no passages, no answer");
}

async fn throttling_is_retried_then_unavailable(
    patient: &dyn Generator,
    impatient: &dyn Generator,
    server: &dyn Server,
) {
    server.throttle_first(2);
    let (deltas, _) = answer(patient, request(USER)).await;
    assert_eq!(deltas.concat(), grounded_answer(USER));
    assert_eq!(server.requests(), 2 + 1, "throttled calls were retried");

    server.throttle_first(usize::MAX);
    let err = run(impatient, request(USER)).await.unwrap_err();
    assert!(matches!(err, GenerationError::Unavailable(_)), "{err}");
    assert_eq!(server.requests(), 2, "max_attempts = 2");
    server.throttle_first(0);
}

async fn a_failing_model_is_unavailable_and_another_still_answers(
    failing: &dyn Generator,
    other: &dyn Generator,
    server: &dyn Server,
) {
    server.fail_model(failing.model());
    let err = run(failing, request(USER)).await.unwrap_err();
    assert!(matches!(err, GenerationError::Unavailable(_)), "{err}");
    let (deltas, usage) = answer(other, request(USER)).await;
    assert_eq!(deltas.concat(), grounded_answer(USER));
    assert_eq!(usage.model, other.model());
}

async fn an_invalid_request_is_rejected_without_retries(
    model: &dyn Generator,
    server: &dyn Server,
) {
    let before = server.requests();
    let invalid = GenerationRequest {
        temperature: 5.0,
        ..request(USER)
    };
    let err = run(model, invalid).await.unwrap_err();
    assert!(matches!(err, GenerationError::Rejected(_)), "{err}");
    assert!(err.to_string().contains("temperature"), "{err}");
    assert_eq!(server.requests(), before + 1, "a rejection is not retried");
}

async fn dropping_the_stream_cancels_upstream(model: &dyn Generator, server: &dyn Server) {
    server.delay_per_token(Duration::from_millis(50));
    let mut stream = model.generate(request(USER)).await.unwrap();
    for _ in 0..2 {
        let event = stream.next().await.unwrap().unwrap();
        assert!(matches!(event, GenerationEvent::Delta(_)), "{event:?}");
    }
    drop(stream);
    wait_for("the stand-in to see the stream cancelled", || {
        server.cancelled_streams() == 1
    })
    .await;
    assert_eq!(server.completed_streams(), 0);
    server.delay_per_token(Duration::ZERO);
}

async fn no_first_token_before_the_timeout_is_unavailable(
    model: &dyn Generator,
    server: &dyn Server,
) {
    server.delay_per_token(Duration::from_secs(3));
    let started = Instant::now();
    let err = run(model, request(USER)).await.unwrap_err();
    assert!(matches!(err, GenerationError::Unavailable(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout fired, not the first token: {:?}",
        started.elapsed()
    );
    wait_for("the abandoned stream", || server.cancelled_streams() == 1).await;
    server.delay_per_token(Duration::ZERO);
}

// ----- Bedrock -----

#[tokio::test]
async fn bedrock_converse_stream_streams_the_answer_with_usage() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    let model = nova(&stand_in, NOVA_LITE, 3);
    assert_eq!(model.model(), NOVA_LITE);
    streams_the_grounded_answer_with_usage(&model, &stand_in, "end_turn").await;
}

#[tokio::test]
async fn bedrock_converse_answers_in_one_delta() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    let model = bedrock_model(
        &stand_in,
        BedrockOptions {
            model_id: NOVA_PRO.into(),
            streaming: false,
            ..BedrockOptions::default()
        },
    );
    let (deltas, usage) = answer(&model, request(USER)).await;
    assert_eq!(deltas, vec![grounded_answer(USER)]);
    assert_eq!(usage, expected_usage(NOVA_PRO, USER, "end_turn"));

    let short = GenerationRequest {
        max_output_tokens: 3,
        ..request(USER)
    };
    let (deltas, usage) = answer(&model, short).await;
    assert_eq!(deltas.concat(), "Employees get 25");
    assert_eq!(
        (usage.output_tokens, usage.stop_reason.as_str()),
        (3, "max_tokens")
    );
}

#[tokio::test]
async fn bedrock_throttling_is_retried_then_unavailable() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    let patient = nova(&stand_in, NOVA_LITE, 4);
    let impatient = nova(&stand_in, NOVA_LITE, 2);
    throttling_is_retried_then_unavailable(&patient, &impatient, &stand_in).await;
}

#[tokio::test]
async fn bedrock_failing_model_is_unavailable() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    let failing = nova(&stand_in, NOVA_PRO, 2);
    let other = nova(&stand_in, NOVA_LITE, 2);
    a_failing_model_is_unavailable_and_another_still_answers(&failing, &other, &stand_in).await;
}

#[tokio::test]
async fn bedrock_invalid_request_is_rejected() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    let model = nova(&stand_in, NOVA_LITE, 3);
    an_invalid_request_is_rejected_without_retries(&model, &stand_in).await;
    let embedder = nova(&stand_in, bedrock::MODEL_ID, 3);
    let err = run(&embedder, request(USER)).await.unwrap_err();
    assert!(matches!(err, GenerationError::Rejected(_)), "{err}");
}

#[tokio::test]
async fn bedrock_dropping_the_stream_cancels_it() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    let model = nova(&stand_in, NOVA_LITE, 3);
    dropping_the_stream_cancels_upstream(&model, &stand_in).await;
}

#[tokio::test]
async fn bedrock_first_token_timeout_is_unavailable() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    let model = bedrock_model(
        &stand_in,
        BedrockOptions {
            timeout: Duration::from_millis(400),
            ..BedrockOptions::default()
        },
    );
    no_first_token_before_the_timeout_is_unavailable(&model, &stand_in).await;
}

#[tokio::test]
async fn bedrock_unreachable_is_unavailable() {
    let stand_in = bedrock::StandIn::start().await.unwrap();
    // Nothing listens on port 9.
    let model = bedrock_model(
        &stand_in,
        BedrockOptions {
            max_attempts: 1,
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..BedrockOptions::default()
        },
    );
    let err = run(&model, request(USER)).await.unwrap_err();
    assert!(matches!(err, GenerationError::Unavailable(_)), "{err}");
}

// ----- OpenAI-compatible -----

#[tokio::test]
async fn openai_streams_the_answer_with_usage() {
    let stand_in = openai::StandIn::start().await.unwrap();
    let model = chat(&stand_in, LOCAL_MODEL, 3);
    assert_eq!(model.model(), LOCAL_MODEL);
    streams_the_grounded_answer_with_usage(&model, &stand_in, "stop").await;
}

#[tokio::test]
async fn openai_sends_the_api_key_and_a_wrong_one_is_rejected() {
    let stand_in = openai::StandIn::start().await.unwrap();
    stand_in.require_api_key("sk-test");
    let keyed = OpenAiChat::new(OpenAiOptions {
        api_key: Some("sk-test".into()),
        ..chat(&stand_in, LOCAL_MODEL, 3).options().clone()
    })
    .unwrap();
    let (deltas, _) = answer(&keyed, request(USER)).await;
    assert_eq!(deltas.concat(), grounded_answer(USER));
    let err = run(&chat(&stand_in, LOCAL_MODEL, 3), request(USER))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, GenerationError::Rejected(m) if m.contains("401")),
        "{err}"
    );
}

#[tokio::test]
async fn openai_length_limit_is_the_stop_reason() {
    let stand_in = openai::StandIn::start().await.unwrap();
    let model = chat(&stand_in, LOCAL_MODEL, 3);
    let short = GenerationRequest {
        max_output_tokens: 3,
        ..request(USER)
    };
    let (deltas, usage) = answer(&model, short).await;
    assert_eq!(deltas.concat(), "Employees get 25");
    assert_eq!(
        (usage.output_tokens, usage.stop_reason.as_str()),
        (3, "length")
    );
}

#[tokio::test]
async fn openai_throttling_is_retried_then_unavailable() {
    let stand_in = openai::StandIn::start().await.unwrap();
    let patient = chat(&stand_in, LOCAL_MODEL, 4);
    let impatient = chat(&stand_in, LOCAL_MODEL, 2);
    throttling_is_retried_then_unavailable(&patient, &impatient, &stand_in).await;
}

#[tokio::test]
async fn openai_failing_model_is_unavailable() {
    let stand_in = openai::StandIn::start().await.unwrap();
    let failing = chat(&stand_in, "qwen2.5:7b", 2);
    let other = chat(&stand_in, LOCAL_MODEL, 2);
    a_failing_model_is_unavailable_and_another_still_answers(&failing, &other, &stand_in).await;
}

#[tokio::test]
async fn openai_invalid_request_is_rejected() {
    let stand_in = openai::StandIn::start().await.unwrap();
    let model = chat(&stand_in, LOCAL_MODEL, 3);
    an_invalid_request_is_rejected_without_retries(&model, &stand_in).await;
}

#[tokio::test]
async fn openai_dropping_the_stream_cancels_it() {
    let stand_in = openai::StandIn::start().await.unwrap();
    let model = chat(&stand_in, LOCAL_MODEL, 3);
    dropping_the_stream_cancels_upstream(&model, &stand_in).await;
}

#[tokio::test]
async fn openai_first_token_timeout_is_unavailable() {
    let stand_in = openai::StandIn::start().await.unwrap();
    let model = OpenAiChat::new(OpenAiOptions {
        timeout: Duration::from_millis(400),
        ..chat(&stand_in, LOCAL_MODEL, 3).options().clone()
    })
    .unwrap();
    no_first_token_before_the_timeout_is_unavailable(&model, &stand_in).await;
}

#[tokio::test]
async fn openai_unreachable_is_unavailable() {
    let model = OpenAiChat::new(OpenAiOptions {
        base_url: "http://127.0.0.1:9/v1".into(),
        model: LOCAL_MODEL.into(),
        max_attempts: 2,
        ..OpenAiOptions::default()
    })
    .unwrap();
    let err = run(&model, request(USER)).await.unwrap_err();
    assert!(matches!(err, GenerationError::Unavailable(_)), "{err}");
}
