//! An OpenAI-compatible chat completions server ([`OpenAiChat`]): Ollama, vLLM, llama.cpp's
//! server, or a hosted API.
//!
//! `POST {base_url}/chat/completions` with `stream: true` and
//! `stream_options: {"include_usage": true}`; the answer arrives as Server-Sent Events, one
//! `chat.completion.chunk` per `data:` line, then `data: [DONE]`. 429 and 5xx answers (and
//! refused connections) are retried before the answer starts, with exponential backoff or
//! the server's `Retry-After`; the first token must arrive within `timeout` of the call,
//! retries included.

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;

use crate::sse::SseDecoder;
use crate::{
    GenerationError, GenerationEvent, GenerationRequest, GenerationStream, GenerationUsage,
    Generator, approximate_tokens, guard_stream,
};

/// The first retry waits this long, each next one twice as long, up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between attempts, `Retry-After` included.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// At most this much of an error body goes into an error message.
const MAX_ERROR_BODY: usize = 512;

/// How an [`OpenAiChat`] calls the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAiOptions {
    /// The API root, `/chat/completions` is appended: `http://localhost:11434/v1` (Ollama),
    /// `http://localhost:8000/v1` (vLLM), `https://api.openai.com/v1`.
    pub base_url: String,
    /// The `model` field of the request, also the model id reported on answers.
    pub model: String,
    /// Sent as `Authorization: Bearer …` when set.
    pub api_key: Option<String>,
    /// Connecting, and then until the first token (retries included); then between two
    /// chunks of the stream.
    pub timeout: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:11434/v1".into(),
            model: "llama3.2".into(),
            api_key: None,
            timeout: Duration::from_secs(30),
            max_attempts: 4,
        }
    }
}

/// A model behind an OpenAI-compatible chat completions API.
#[derive(Debug)]
pub struct OpenAiChat {
    http: reqwest::Client,
    options: OpenAiOptions,
    url: String,
}

impl OpenAiChat {
    /// A client of the server; connects on first use.
    pub fn new(options: OpenAiOptions) -> Result<Self, GenerationError> {
        if options.model.is_empty() || options.base_url.is_empty() {
            return Err(GenerationError::Rejected(
                "the OpenAI-compatible base_url and model must be set".into(),
            ));
        }
        if options.max_attempts == 0 || options.timeout.is_zero() {
            return Err(GenerationError::Rejected(
                "OpenAI-compatible max_attempts and timeout must be positive".into(),
            ));
        }
        let url = format!(
            "{}/chat/completions",
            options.base_url.trim_end_matches('/')
        );
        reqwest::Url::parse(&url).map_err(|e| {
            GenerationError::Rejected(format!("OpenAI-compatible base_url {url}: {e}"))
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(options.timeout)
            .build()
            .map_err(|e| GenerationError::Rejected(format!("HTTP client: {e}")))?;
        Ok(Self { http, options, url })
    }

    /// The options it was built with.
    pub fn options(&self) -> &OpenAiOptions {
        &self.options
    }

    fn what(&self) -> String {
        format!("chat completions {} at {}", self.options.model, self.url)
    }

    /// Sends the request until an attempt answers 2xx, retrying what is worth it.
    async fn send(
        &self,
        request: &GenerationRequest,
    ) -> Result<reqwest::Response, GenerationError> {
        let body = json!({
            "model": self.options.model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "max_tokens": request.max_output_tokens,
            "temperature": request.temperature,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let what = self.what();
        let mut attempt = 1;
        loop {
            let mut call = self
                .http
                .post(&self.url)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .json(&body);
            if let Some(key) = &self.options.api_key {
                call = call.bearer_auth(key);
            }
            let (error, retry_after) = match call.send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let text = error_text(response).await;
                    let message = format!("{what}: HTTP {status}: {text}");
                    if !retryable_status(status.as_u16()) {
                        return Err(if status.is_client_error() {
                            GenerationError::Rejected(message)
                        } else {
                            GenerationError::Unavailable(message)
                        });
                    }
                    (message, retry_after)
                }
                Err(e) if e.is_connect() => (format!("{what}: {e}"), None),
                Err(e) if e.is_builder() => {
                    return Err(GenerationError::Rejected(format!("{what}: {e}")));
                }
                Err(e) => return Err(GenerationError::Unavailable(format!("{what}: {e}"))),
            };
            if attempt >= self.options.max_attempts {
                return Err(GenerationError::Unavailable(format!(
                    "{error} (after {attempt} attempts)"
                )));
            }
            let wait = retry_after
                .unwrap_or_else(|| backoff(attempt))
                .min(MAX_BACKOFF);
            tracing::debug!(attempt, wait_ms = wait.as_millis(), error, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

#[async_trait::async_trait]
impl Generator for OpenAiChat {
    fn model(&self) -> &str {
        &self.options.model
    }

    #[tracing::instrument(skip_all, fields(model = %self.options.model))]
    async fn generate(
        &self,
        request: GenerationRequest,
    ) -> Result<GenerationStream, GenerationError> {
        let deadline = Instant::now() + self.options.timeout;
        let what = self.what();
        let response = match tokio::time::timeout_at(deadline, self.send(&request)).await {
            Err(_) => {
                return Err(GenerationError::Unavailable(format!(
                    "{what}: no response before the timeout"
                )));
            }
            Ok(response) => response?,
        };
        let state = ChunkReader {
            body: Box::pin(response.bytes_stream().map(|chunk| chunk.map(Vec::from))),
            decoder: SseDecoder::new(),
            pending: std::collections::VecDeque::new(),
            model: self.options.model.clone(),
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

/// 408, 409 (a lock conflict, as OpenAI uses it), 429 and 5xx are worth another attempt.
fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500..=599)
}

/// `Retry-After` in seconds (the HTTP date form is not used by these servers).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds.min(MAX_BACKOFF.as_secs_f64())))
}

/// Before attempt `attempt + 1`: 200 ms, 400 ms, 800 ms, ... up to [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    INITIAL_BACKOFF
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// The start of an error body, for the message; OpenAI-style `{"error":{"message"}}` is
/// unwrapped.
async fn error_text(response: reqwest::Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
    truncate(message.trim(), MAX_ERROR_BODY)
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u32,
    #[serde(default)]
    completion_tokens: u32,
}

/// What one `data:` payload means.
#[derive(Debug, PartialEq)]
enum Parsed {
    /// `[DONE]`.
    End,
    Chunk {
        text: Option<String>,
        finish_reason: Option<String>,
        usage: Option<(u32, u32)>,
    },
    /// An error reported inside the stream.
    Error(String),
}

fn parse_data(data: &str) -> Result<Parsed, String> {
    if data.trim() == "[DONE]" {
        return Ok(Parsed::End);
    }
    let chunk: Chunk =
        serde_json::from_str(data).map_err(|e| format!("unreadable chunk ({e}): {data}"))?;
    if let Some(error) = chunk.error {
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| error.to_string(), str::to_owned);
        return Ok(Parsed::Error(message));
    }
    let first = chunk.choices.into_iter().next();
    let (text, finish_reason) = match first {
        Some(choice) => (
            choice
                .delta
                .and_then(|d| d.content)
                .filter(|t| !t.is_empty()),
            choice.finish_reason,
        ),
        None => (None, None),
    };
    Ok(Parsed::Chunk {
        text,
        finish_reason,
        usage: chunk.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
    })
}

type Body = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Vec<u8>, reqwest::Error>> + Send>>;

/// Reads the event stream: content deltas pass through, the finish reason and the usage
/// chunk are kept for `Done`, which `[DONE]` (or the end of the body after a finish reason)
/// produces.
struct ChunkReader {
    body: Body,
    decoder: SseDecoder,
    pending: std::collections::VecDeque<String>,
    model: String,
    what: String,
    request: GenerationRequest,
    text_so_far: String,
    stop_reason: Option<String>,
    usage: Option<(u32, u32)>,
    ended: bool,
}

impl ChunkReader {
    async fn next_event(&mut self) -> Option<Result<GenerationEvent, GenerationError>> {
        if self.ended {
            return None;
        }
        loop {
            while let Some(data) = self.pending.pop_front() {
                match parse_data(&data) {
                    Err(e) => return Some(self.fail(e)),
                    Ok(Parsed::Error(e)) => {
                        return Some(self.fail(format!("the server reported: {e}")));
                    }
                    Ok(Parsed::End) => return Some(Ok(self.done())),
                    Ok(Parsed::Chunk {
                        text,
                        finish_reason,
                        usage,
                    }) => {
                        if finish_reason.is_some() {
                            self.stop_reason = finish_reason;
                        }
                        if usage.is_some() {
                            self.usage = usage;
                        }
                        if let Some(text) = text {
                            self.text_so_far.push_str(&text);
                            return Some(Ok(GenerationEvent::Delta(text)));
                        }
                    }
                }
            }
            match self.body.next().await {
                Some(Ok(bytes)) => match self.decoder.push(&bytes) {
                    Ok(events) => self.pending.extend(events.into_iter().map(|e| e.data)),
                    Err(e) => return Some(self.fail(e.to_string())),
                },
                Some(Err(e)) => return Some(self.fail(format!("reading the stream: {e}"))),
                None => {
                    // Some servers close without `[DONE]`; a finish reason says it was the end.
                    // Without one the stream was cut, which `guard_stream` reports.
                    self.ended = true;
                    return self.stop_reason.is_some().then(|| Ok(self.done()));
                }
            }
        }
    }

    fn fail(&mut self, message: String) -> Result<GenerationEvent, GenerationError> {
        self.ended = true;
        Err(GenerationError::Unavailable(format!(
            "{}: {message}",
            self.what
        )))
    }

    /// The usage the server sent, or else approximated (see [`approximate_tokens`]).
    fn done(&mut self) -> GenerationEvent {
        self.ended = true;
        let (input_tokens, output_tokens) = self.usage.unwrap_or_else(|| {
            (
                approximate_tokens(&self.request.system)
                    .saturating_add(approximate_tokens(&self.request.user)),
                approximate_tokens(&self.text_so_far),
            )
        });
        GenerationEvent::Done(GenerationUsage {
            model: self.model.clone(),
            input_tokens,
            output_tokens,
            stop_reason: self.stop_reason.take().unwrap_or_else(|| "stop".to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_worth_retrying() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!retryable_status(status), "{status}");
        }
    }

    #[test]
    fn retry_after_is_seconds_capped() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "0".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(reqwest::header::RETRY_AFTER, "1.5".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "3600".parse().expect("header"),
        );
        assert_eq!(retry_after(&headers), Some(MAX_BACKOFF));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "-1".parse().expect("header"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn parses_chunks_usage_done_and_errors() {
        assert_eq!(parse_data("[DONE]"), Ok(Parsed::End));
        assert_eq!(
            parse_data(
                r#"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#
            ),
            Ok(Parsed::Chunk {
                text: Some("Hi".into()),
                finish_reason: None,
                usage: None
            })
        );
        assert_eq!(
            parse_data(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#),
            Ok(Parsed::Chunk {
                text: None,
                finish_reason: Some("length".into()),
                usage: None
            })
        );
        assert_eq!(
            parse_data(
                r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#
            ),
            Ok(Parsed::Chunk {
                text: None,
                finish_reason: None,
                usage: Some((12, 3))
            })
        );
        assert_eq!(
            parse_data(r#"{"error":{"message":"model crashed","type":"server_error"}}"#),
            Ok(Parsed::Error("model crashed".into()))
        );
        assert!(parse_data("{not json").is_err());
    }

    #[test]
    fn long_error_bodies_are_truncated_on_a_character() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }

    #[test]
    fn options_are_checked() {
        assert!(OpenAiChat::new(OpenAiOptions::default()).is_ok());
        for options in [
            OpenAiOptions {
                max_attempts: 0,
                ..OpenAiOptions::default()
            },
            OpenAiOptions {
                model: String::new(),
                ..OpenAiOptions::default()
            },
            OpenAiOptions {
                base_url: "not a url".into(),
                ..OpenAiOptions::default()
            },
        ] {
            assert!(matches!(
                OpenAiChat::new(options),
                Err(GenerationError::Rejected(_))
            ));
        }
        let chat = OpenAiChat::new(OpenAiOptions {
            base_url: "http://h:1/v1/".into(),
            ..OpenAiOptions::default()
        })
        .expect("valid");
        assert_eq!(chat.url, "http://h:1/v1/chat/completions");
    }
}
