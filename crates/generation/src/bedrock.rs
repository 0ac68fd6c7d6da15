//! Amazon Bedrock's Converse API ([`BedrockConverse`]): `ConverseStream` when streaming,
//! `Converse` otherwise, for any model that supports it (Nova, Claude, Llama, ...).
//!
//! The client is built on first use from the process's AWS configuration (`rag-aws`), as the
//! Titan embeddings client is. Throttling and transient failures before the answer starts are
//! retried by the SDK's standard retry strategy (`max_attempts`, exponential backoff with
//! jitter); the SDK's operation timeout bounds the whole call, retries included. The SDK's
//! stalled-stream protection is off: the crate enforces its own timeouts on the first token
//! and between tokens, which suit a model that thinks before it writes.

use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::StalledStreamProtectionConfig;
use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseOutput as ConverseMessage,
    ConverseStreamOutput as StreamEvent, InferenceConfiguration, Message, SystemContentBlock,
    TokenUsage,
};
use rag_aws::AwsConfig;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::{
    GenerationError, GenerationEvent, GenerationRequest, GenerationStream, GenerationUsage,
    Generator, approximate_tokens, guard_stream,
};

/// Amazon Nova Lite's model id in Bedrock.
pub const NOVA_LITE_MODEL_ID: &str = "amazon.nova-lite-v1:0";

/// Amazon Nova Pro's model id in Bedrock.
pub const NOVA_PRO_MODEL_ID: &str = "amazon.nova-pro-v1:0";

/// How a [`BedrockConverse`] calls Bedrock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BedrockOptions {
    /// A model id or an inference profile id (`us.amazon.nova-lite-v1:0`).
    pub model_id: String,
    /// `ConverseStream` (deltas as they arrive) rather than `Converse` (one delta).
    pub streaming: bool,
    /// Attempts per call, the first included (throttling is retried with backoff).
    pub max_attempts: u32,
    /// `Converse`: the whole call. `ConverseStream`: until the first token, then between
    /// two events.
    pub timeout: Duration,
    /// Another endpoint than the AWS configuration's (a VPC endpoint, a stand-in).
    pub endpoint_url: Option<String>,
}

impl Default for BedrockOptions {
    fn default() -> Self {
        Self {
            model_id: NOVA_LITE_MODEL_ID.into(),
            streaming: true,
            max_attempts: 4,
            timeout: Duration::from_secs(30),
            endpoint_url: None,
        }
    }
}

/// A model on Bedrock through the Converse API.
#[derive(Debug)]
pub struct BedrockConverse {
    aws: AwsConfig,
    options: BedrockOptions,
    client: OnceCell<Client>,
}

impl BedrockConverse {
    /// A client of Bedrock in the configured region; talks to nothing until first used.
    pub fn new(aws: AwsConfig, options: BedrockOptions) -> Result<Self, GenerationError> {
        if options.model_id.is_empty() {
            return Err(GenerationError::Rejected(
                "the Bedrock model id is empty".into(),
            ));
        }
        if options.max_attempts == 0 || options.timeout.is_zero() {
            return Err(GenerationError::Rejected(
                "Bedrock max_attempts and timeout must be positive".into(),
            ));
        }
        Ok(Self {
            aws,
            options,
            client: OnceCell::new(),
        })
    }

    /// The options it was built with.
    pub fn options(&self) -> &BedrockOptions {
        &self.options
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let mut config =
                    aws_sdk_bedrockruntime::config::Builder::from(self.aws.sdk_config().await)
                        .retry_config(
                            RetryConfig::standard().with_max_attempts(self.options.max_attempts),
                        )
                        .timeout_config(
                            TimeoutConfig::builder()
                                .connect_timeout(self.options.timeout)
                                .operation_timeout(self.options.timeout)
                                .build(),
                        )
                        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
                if let Some(url) = &self.options.endpoint_url {
                    config = config.endpoint_url(url);
                }
                Client::from_conf(config.build())
            })
            .await
    }

    fn what(&self, operation: &str) -> String {
        format!("Bedrock {operation} {}", self.options.model_id)
    }

    fn inputs(
        request: &GenerationRequest,
    ) -> Result<(Vec<SystemContentBlock>, Message, InferenceConfiguration), GenerationError> {
        // Bedrock refuses empty text blocks: no system prompt is no system block.
        let system = if request.system.is_empty() {
            Vec::new()
        } else {
            vec![SystemContentBlock::Text(request.system.clone())]
        };
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(request.user.clone()))
            .build()
            .map_err(|e| GenerationError::Rejected(format!("Bedrock message: {e}")))?;
        let inference = InferenceConfiguration::builder()
            .max_tokens(i32::try_from(request.max_output_tokens).unwrap_or(i32::MAX))
            .temperature(request.temperature)
            .build();
        Ok((system, message, inference))
    }

    async fn converse(
        &self,
        request: GenerationRequest,
    ) -> Result<GenerationStream, GenerationError> {
        let what = self.what("Converse");
        let (system, message, inference) = Self::inputs(&request)?;
        let output = self
            .client()
            .await
            .converse()
            .model_id(&self.options.model_id)
            .set_system(Some(system))
            .messages(message)
            .inference_config(inference)
            .send()
            .await
            .map_err(|e| {
                let status = e.raw_response().map(|r| r.status().as_u16());
                map_sdk_error(&what, e, status)
            })?;
        let text: String = match output.output() {
            Some(ConverseMessage::Message(message)) => message
                .content()
                .iter()
                .filter_map(|block| match block {
                    ContentBlock::Text(text) => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
            _ => {
                return Err(GenerationError::Unavailable(format!(
                    "{what}: the response holds no message"
                )));
            }
        };
        let usage = usage_of(
            &self.options.model_id,
            output.usage(),
            output.stop_reason().as_str(),
            &request,
            &text,
        );
        let mut events = Vec::with_capacity(2);
        if !text.is_empty() {
            events.push(Ok(GenerationEvent::Delta(text)));
        }
        events.push(Ok(GenerationEvent::Done(usage)));
        Ok(Box::pin(futures::stream::iter(events)))
    }

    async fn converse_stream(
        &self,
        request: GenerationRequest,
        deadline: Instant,
    ) -> Result<GenerationStream, GenerationError> {
        let what = self.what("ConverseStream");
        let (system, message, inference) = Self::inputs(&request)?;
        let call = self
            .client()
            .await
            .converse_stream()
            .model_id(&self.options.model_id)
            .set_system(Some(system))
            .messages(message)
            .inference_config(inference)
            .send();
        let output = match tokio::time::timeout_at(deadline, call).await {
            Err(_) => {
                return Err(GenerationError::Unavailable(format!(
                    "{what}: no response before the timeout"
                )));
            }
            Ok(result) => result.map_err(|e| {
                let status = e.raw_response().map(|r| r.status().as_u16());
                map_sdk_error(&what, e, status)
            })?,
        };
        let state = StreamState {
            receiver: output.stream,
            model: self.options.model_id.clone(),
            what: what.clone(),
            request,
            text_so_far: String::new(),
            stop_reason: None,
            usage: None,
            ended: false,
        };
        let raw = futures::stream::unfold(state, |mut state| async move {
            let item = state.next_event().await?;
            Some((item, state))
        });
        guard_stream(raw, deadline, self.options.timeout, what).await
    }
}

/// Usage as Bedrock reports it, or approximated (see [`approximate_tokens`]) when it does not.
fn usage_of(
    model: &str,
    usage: Option<&TokenUsage>,
    stop_reason: &str,
    request: &GenerationRequest,
    text: &str,
) -> GenerationUsage {
    let (input_tokens, output_tokens) = match usage {
        Some(u) => (
            u32::try_from(u.input_tokens()).unwrap_or(0),
            u32::try_from(u.output_tokens()).unwrap_or(0),
        ),
        None => (
            approximate_tokens(&request.system).saturating_add(approximate_tokens(&request.user)),
            approximate_tokens(text),
        ),
    };
    GenerationUsage {
        model: model.to_owned(),
        input_tokens,
        output_tokens,
        stop_reason: stop_reason.to_owned(),
    }
}

/// Reads `ConverseStream` events: text deltas pass through; `messageStop` gives the stop
/// reason, `metadata` (after it) the usage; the end of the event stream makes `Done`.
struct StreamState {
    receiver: aws_sdk_bedrockruntime::primitives::event_stream::EventReceiver<
        StreamEvent,
        aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError,
    >,
    model: String,
    what: String,
    request: GenerationRequest,
    text_so_far: String,
    stop_reason: Option<String>,
    usage: Option<TokenUsage>,
    ended: bool,
}

impl StreamState {
    async fn next_event(&mut self) -> Option<Result<GenerationEvent, GenerationError>> {
        if self.ended {
            return None;
        }
        loop {
            match self.receiver.recv().await {
                Err(e) => {
                    self.ended = true;
                    return Some(Err(map_sdk_error(&self.what, e, None)));
                }
                Ok(None) => {
                    self.ended = true;
                    // A stream cut before `messageStop` is left for `guard_stream` to report.
                    let stop_reason = self.stop_reason.take()?;
                    return Some(Ok(GenerationEvent::Done(usage_of(
                        &self.model,
                        self.usage.as_ref(),
                        &stop_reason,
                        &self.request,
                        &self.text_so_far,
                    ))));
                }
                Ok(Some(StreamEvent::ContentBlockDelta(event))) => {
                    if let Some(ContentBlockDelta::Text(text)) = event.delta()
                        && !text.is_empty()
                    {
                        self.text_so_far.push_str(text);
                        return Some(Ok(GenerationEvent::Delta(text.clone())));
                    }
                }
                Ok(Some(StreamEvent::MessageStop(event))) => {
                    self.stop_reason = Some(event.stop_reason().as_str().to_owned());
                }
                Ok(Some(StreamEvent::Metadata(event))) => {
                    self.usage = event.usage().cloned();
                }
                // messageStart, contentBlockStart/Stop, and events newer than this SDK.
                Ok(Some(_)) => {}
            }
        }
    }
}

impl std::fmt::Debug for StreamState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamState")
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Generator for BedrockConverse {
    fn model(&self) -> &str {
        &self.options.model_id
    }

    #[tracing::instrument(skip_all, fields(model = %self.options.model_id, streaming = self.options.streaming))]
    async fn generate(
        &self,
        request: GenerationRequest,
    ) -> Result<GenerationStream, GenerationError> {
        let deadline = Instant::now() + self.options.timeout;
        if self.options.streaming {
            self.converse_stream(request, deadline).await
        } else {
            self.converse(request).await
        }
    }
}

/// Whether a failed Bedrock call is worth another model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Unavailable,
    Rejected,
}

/// By the exception's name first, then by the HTTP status; unknown failures count as
/// unavailable (a fallback is cheap, a wrong "rejected" loses the answer).
fn verdict(code: Option<&str>, status: Option<u16>) -> Verdict {
    match code {
        Some(
            "ValidationException"
            | "AccessDeniedException"
            | "ResourceNotFoundException"
            | "UnrecognizedClientException"
            | "SerializationException"
            | "validationException",
        ) => Verdict::Rejected,
        Some(
            "ThrottlingException"
            | "ServiceUnavailableException"
            | "InternalServerException"
            | "ModelErrorException"
            | "ModelNotReadyException"
            | "ModelTimeoutException"
            | "ModelStreamErrorException"
            | "ServiceQuotaExceededException"
            | "throttlingException"
            | "serviceUnavailableException"
            | "internalServerException"
            | "modelStreamErrorException",
        ) => Verdict::Unavailable,
        _ => match status {
            Some(408 | 429) => Verdict::Unavailable,
            Some(400..=499) => Verdict::Rejected,
            _ => Verdict::Unavailable,
        },
    }
}

fn map_sdk_error<E, R>(what: &str, err: SdkError<E, R>, status: Option<u16>) -> GenerationError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let verdict = match &err {
        SdkError::ServiceError(service) => verdict(service.err().code(), status),
        // The request could not even be built: the same request fails on any model.
        SdkError::ConstructionFailure(_) => Verdict::Rejected,
        // Timeouts, connection failures, unreadable responses.
        _ => Verdict::Unavailable,
    };
    let message = format!("{what}: {}", DisplayErrorContext(&err));
    match verdict {
        Verdict::Unavailable => GenerationError::Unavailable(message),
        Verdict::Rejected => GenerationError::Rejected(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceptions_decide_before_statuses() {
        for code in [
            "ValidationException",
            "AccessDeniedException",
            "ResourceNotFoundException",
        ] {
            assert_eq!(verdict(Some(code), Some(400)), Verdict::Rejected, "{code}");
        }
        for code in [
            "ThrottlingException",
            "ServiceUnavailableException",
            "InternalServerException",
            "ModelTimeoutException",
            "ModelNotReadyException",
            "modelStreamErrorException",
        ] {
            assert_eq!(
                verdict(Some(code), Some(400)),
                Verdict::Unavailable,
                "{code}"
            );
        }
    }

    #[test]
    fn unknown_exceptions_go_by_status() {
        assert_eq!(verdict(Some("NewException"), Some(403)), Verdict::Rejected);
        assert_eq!(verdict(None, Some(404)), Verdict::Rejected);
        assert_eq!(verdict(None, Some(429)), Verdict::Unavailable);
        assert_eq!(verdict(None, Some(408)), Verdict::Unavailable);
        assert_eq!(verdict(None, Some(503)), Verdict::Unavailable);
        assert_eq!(verdict(None, None), Verdict::Unavailable);
    }

    #[test]
    fn sdk_failures_outside_the_service_are_unavailable_or_rejected() {
        use aws_sdk_bedrockruntime::operation::converse::ConverseError;
        let timeout: SdkError<ConverseError, ()> = SdkError::timeout_error("slow");
        assert!(matches!(
            map_sdk_error("t", timeout, None),
            GenerationError::Unavailable(_)
        ));
        let construction: SdkError<ConverseError, ()> = SdkError::construction_failure("bad");
        assert!(matches!(
            map_sdk_error("t", construction, None),
            GenerationError::Rejected(_)
        ));
        let throttled: SdkError<ConverseError, ()> = SdkError::service_error(
            ConverseError::ThrottlingException(
                aws_sdk_bedrockruntime::types::error::ThrottlingException::builder()
                    .message("slow down")
                    .meta(
                        aws_sdk_bedrockruntime::error::ErrorMetadata::builder()
                            .code("ThrottlingException")
                            .build(),
                    )
                    .build(),
            ),
            (),
        );
        let err = map_sdk_error("Bedrock Converse m", throttled, Some(429));
        assert!(
            matches!(&err, GenerationError::Unavailable(m) if m.contains("Bedrock Converse m")),
            "{err}"
        );
    }

    #[test]
    fn options_are_checked() {
        let aws = AwsConfig::new(&Default::default());
        assert!(BedrockConverse::new(aws.clone(), BedrockOptions::default()).is_ok());
        for options in [
            BedrockOptions {
                max_attempts: 0,
                ..BedrockOptions::default()
            },
            BedrockOptions {
                model_id: String::new(),
                ..BedrockOptions::default()
            },
            BedrockOptions {
                timeout: Duration::ZERO,
                ..BedrockOptions::default()
            },
        ] {
            assert!(matches!(
                BedrockConverse::new(aws.clone(), options),
                Err(GenerationError::Rejected(_))
            ));
        }
    }
}
