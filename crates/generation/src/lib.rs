//! Answer generation providers behind one streaming trait, [`Generator`].
//!
//! Owns: calling a large language model with a system prompt and a rendered user turn, and
//! streaming its answer back as [`GenerationEvent`]s, with usage last. Providers:
//!
//! * [`BedrockConverse`]: Amazon Bedrock's `Converse` / `ConverseStream` (Nova, Claude, ...),
//!   through the AWS SDK configured by `rag-aws`.
//! * [`OpenAiChat`]: an OpenAI-compatible `POST /chat/completions` with Server-Sent Events
//!   (Ollama, vLLM, llama.cpp's server, hosted APIs).
//! * [`LocalLlm`]: a GGUF model (SmolLM2-135M-Instruct by default) in this process on the
//!   CPU with candle: offline, one answer at a time, a bounded queue.
//!
//! Errors say whether another model may help ([`GenerationError::Unavailable`]) or not
//! ([`GenerationError::Rejected`]). Must not know about retrieval, prompts, citations, caching
//! or which model to pick: the router owns those.
//!
//! Timing: a provider's `timeout` bounds the wait for the first token (connecting, retries,
//! the response head and the first event), and then every wait between two events. Dropping
//! a [`GenerationStream`] drops the HTTP response, which closes the connection and so cancels
//! the upstream generation (for [`LocalLlm`], stops the model's thread).

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;

pub mod bedrock;
pub mod local;
pub mod openai;
mod sse;

pub use bedrock::{BedrockConverse, BedrockOptions};
pub use local::{LocalLlm, LocalOptions};
pub use openai::{OpenAiChat, OpenAiOptions};

/// What to ask the model.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationRequest {
    /// The system prompt (the grounding instruction).
    pub system: String,
    /// The rendered user turn: numbered context passages and the question.
    pub user: String,
    pub max_output_tokens: u32,
    pub temperature: f32,
}

/// One item of a [`GenerationStream`].
#[derive(Clone, Debug, PartialEq)]
pub enum GenerationEvent {
    /// Text as the model emits it; the deltas concatenated are the answer.
    Delta(String),
    /// The end: exactly once, last.
    Done(GenerationUsage),
}

/// What a generation cost and why it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationUsage {
    /// The model id, as [`Generator::model`] reports it.
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// The provider's own words: `end_turn`, `max_tokens` (Bedrock); `stop`, `length` (OpenAI).
    pub stop_reason: String,
}

/// The answer as it is generated; dropping it cancels the upstream request.
pub type GenerationStream =
    Pin<Box<dyn Stream<Item = Result<GenerationEvent, GenerationError>> + Send>>;

/// Why a generation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenerationError {
    /// Worth falling back to another model / retrying later: throttled after retries,
    /// timeout, 5xx, connection refused, stream cut.
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (4xx validation, access denied, unknown model):
    /// falling back won't help on the same provider.
    #[error("model rejected the request: {0}")]
    Rejected(String),
}

/// A model that answers a [`GenerationRequest`] as a stream.
#[async_trait::async_trait]
pub trait Generator: Send + Sync + std::fmt::Debug {
    /// The model id recorded on answers and used for pricing.
    fn model(&self) -> &str;

    /// Starts generating. Errors before the first token are returned here; later ones
    /// arrive in the stream. Dropping the stream must cancel the upstream request (close the
    /// HTTP connection / stream).
    async fn generate(
        &self,
        request: GenerationRequest,
    ) -> Result<GenerationStream, GenerationError>;
}

/// An approximate token count for servers that report none: whitespace-separated words
/// × 4/3 (English averages about three words per four tokens), rounded up. Only for usage
/// accounting, never for limits.
pub fn approximate_tokens(text: &str) -> u32 {
    let words = u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX);
    u32::try_from(words.saturating_mul(4).div_ceil(3)).unwrap_or(u32::MAX)
}

/// Turns a provider's raw event stream into a [`GenerationStream`] with the crate's
/// guarantees, waiting here for the first event so that errors before the first token are
/// returned by `generate`:
///
/// * the first event must come before `deadline` (set when the call started), each later
///   one within `idle` of the previous one, or the result is [`GenerationError::Unavailable`];
/// * the stream ends after `Done` or after the first error; a raw stream that ends without
///   `Done` yields an `Unavailable` error (the connection was cut).
pub(crate) async fn guard_stream<S>(
    raw: S,
    deadline: Instant,
    idle: Duration,
    what: String,
) -> Result<GenerationStream, GenerationError>
where
    S: Stream<Item = Result<GenerationEvent, GenerationError>> + Send + 'static,
{
    let mut raw = Box::pin(raw);
    let first = match tokio::time::timeout_at(deadline, raw.next()).await {
        Err(_) => {
            return Err(GenerationError::Unavailable(format!(
                "{what}: no output before the timeout"
            )));
        }
        Ok(None) => {
            return Err(GenerationError::Unavailable(format!(
                "{what}: the stream ended before any output"
            )));
        }
        Ok(Some(Err(e))) => return Err(e),
        Ok(Some(Ok(event))) => event,
    };
    struct State {
        raw: Pin<Box<dyn Stream<Item = Result<GenerationEvent, GenerationError>> + Send>>,
        pending: Option<GenerationEvent>,
        finished: bool,
        idle: Duration,
        what: String,
    }
    let state = State {
        raw,
        pending: Some(first),
        finished: false,
        idle,
        what,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        if state.finished {
            return None;
        }
        let item = match state.pending.take() {
            Some(event) => Ok(event),
            None => match tokio::time::timeout(state.idle, state.raw.next()).await {
                Err(_) => Err(GenerationError::Unavailable(format!(
                    "{}: the stream stalled",
                    state.what
                ))),
                Ok(None) => Err(GenerationError::Unavailable(format!(
                    "{}: the stream ended before the end of the answer",
                    state.what
                ))),
                Ok(Some(item)) => item,
            },
        };
        state.finished = !matches!(item, Ok(GenerationEvent::Delta(_)));
        Some((item, state))
    });
    Ok(Box::pin(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> GenerationUsage {
        GenerationUsage {
            model: "m".into(),
            input_tokens: 1,
            output_tokens: 2,
            stop_reason: "stop".into(),
        }
    }

    async fn collect(stream: GenerationStream) -> Vec<Result<GenerationEvent, GenerationError>> {
        stream.collect().await
    }

    #[test]
    fn approximate_tokens_are_four_thirds_of_words() {
        assert_eq!(approximate_tokens(""), 0);
        assert_eq!(approximate_tokens("one"), 2);
        assert_eq!(approximate_tokens("one two three"), 4);
        assert_eq!(approximate_tokens("  a\tb\nc  d e f "), 8);
    }

    #[tokio::test]
    async fn ends_after_done_and_after_an_error() {
        let raw = futures::stream::iter(vec![
            Ok(GenerationEvent::Delta("a".into())),
            Ok(GenerationEvent::Done(usage())),
            Ok(GenerationEvent::Delta("late".into())),
        ]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = guard_stream(raw, deadline, Duration::from_secs(5), "t".into())
            .await
            .expect("first event");
        assert_eq!(
            collect(stream).await,
            vec![
                Ok(GenerationEvent::Delta("a".into())),
                Ok(GenerationEvent::Done(usage()))
            ]
        );

        let raw = futures::stream::iter(vec![
            Ok(GenerationEvent::Delta("a".into())),
            Err(GenerationError::Unavailable("cut".into())),
            Ok(GenerationEvent::Done(usage())),
        ]);
        let stream = guard_stream(raw, deadline, Duration::from_secs(5), "t".into())
            .await
            .expect("first event");
        let items = collect(stream).await;
        assert_eq!(items.len(), 2);
        assert!(matches!(items[1], Err(GenerationError::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_stream_without_done_is_cut() {
        let raw = futures::stream::iter(vec![Ok(GenerationEvent::Delta("a".into()))]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = guard_stream(raw, deadline, Duration::from_secs(5), "t".into())
            .await
            .expect("first event");
        let items = collect(stream).await;
        assert!(
            matches!(&items[..], [Ok(GenerationEvent::Delta(_)), Err(GenerationError::Unavailable(m))] if m.contains("ended")),
            "{items:?}"
        );
        let empty = futures::stream::iter(Vec::new());
        let err = guard_stream(empty, deadline, Duration::from_secs(5), "t".into())
            .await
            .err();
        assert!(matches!(err, Some(GenerationError::Unavailable(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn first_event_and_stalls_time_out() {
        let never = futures::stream::pending();
        let deadline = Instant::now() + Duration::from_secs(2);
        let err = guard_stream(never, deadline, Duration::from_secs(60), "t".into())
            .await
            .err();
        assert!(
            matches!(&err, Some(GenerationError::Unavailable(m)) if m.contains("timeout")),
            "{err:?}"
        );

        let stalls = futures::stream::iter(vec![Ok(GenerationEvent::Delta("a".into()))])
            .chain(futures::stream::pending());
        let deadline = Instant::now() + Duration::from_secs(2);
        let stream = guard_stream(stalls, deadline, Duration::from_secs(1), "t".into())
            .await
            .expect("first event");
        let items = collect(stream).await;
        assert!(
            matches!(&items[..], [Ok(_), Err(GenerationError::Unavailable(m))] if m.contains("stalled")),
            "{items:?}"
        );
    }
}
