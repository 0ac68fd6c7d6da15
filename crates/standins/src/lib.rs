//! Stand-ins for services that cannot run on a development machine or in CI, **for tests
//! only**: each speaks the real service's wire format for the calls our adapters make, so
//! the adapters are tested over a real connection. Never deploy them.
//!
//! * [`qdrant`]: a Qdrant server's gRPC API (collections, points, health), in memory.
//! * [`bedrock`]: Bedrock Runtime's `InvokeModel` for Titan Text Embeddings V2, and
//!   `Converse` / `ConverseStream` for chat models.
//! * [`kubernetes`]: the Kubernetes API's list, get and merge-patch of namespaced objects
//!   (what `ragctl pause` and `ragctl resume` call), in memory.
//! * [`certificates`]: a CA and a server certificate for 127.0.0.1 (openssl), for tests of
//!   real servers over TLS.
//! * [`otlp`]: an OpenTelemetry collector's OTLP/gRPC trace receiver, keeping the spans it
//!   is sent (a collector is not installed here; the exporter's real gRPC calls reach this).
//! * [`openai`]: an OpenAI-compatible `POST /v1/chat/completions` (as Ollama, vLLM and
//!   llama.cpp's server offer), streaming or not.
//! * [`mlflow`]: an MLflow tracking server's REST calls for experiments and runs, in memory.
//!
//! The chat stand-ins "answer" with [`grounded_answer`]: deterministic, and citing the
//! numbered passages of the user turn, so end-to-end tests can check what comes back. A test
//! can give them another answerer (`answer_with`), e.g. a judge that replies in JSON.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

pub mod bedrock;
pub mod certificates;
pub mod kubernetes;
pub mod mlflow;
pub mod openai;
pub mod otlp;
pub mod qdrant;

/// What the chat stand-ins answer when the user turn holds no numbered passage.
pub const NO_ANSWER: &str = "I don't know based on the provided documents.";

/// The chat stand-ins' answer to a user turn: the first sentence of the first numbered
/// passage followed by its citation (` [1]`), then the same for the second passage if there
/// is one; [`NO_ANSWER`] without passages.
///
/// A passage is a block starting with a line `[n] ...` and running to the next such line or
/// to a blank line; its lines are joined. Whitespace in the answer is single spaces.
pub fn grounded_answer(user: &str) -> String {
    let passages = passages(user);
    if passages.is_empty() {
        return NO_ANSWER.to_owned();
    }
    passages
        .iter()
        .take(2)
        .map(|(n, text)| format!("{} [{n}]", first_sentence(text)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whitespace-separated words: the chat stand-ins' token count.
pub fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// `(number, text)` of each numbered passage, in order.
fn passages(user: &str) -> Vec<(u32, String)> {
    let mut passages: Vec<(u32, String)> = Vec::new();
    let mut open = false;
    for line in user.lines() {
        let trimmed = line.trim();
        if let Some((n, rest)) = passage_start(trimmed) {
            passages.push((n, rest.trim().to_owned()));
            open = true;
        } else if trimmed.is_empty() {
            open = false;
        } else if open && let Some((_, text)) = passages.last_mut() {
            text.push(' ');
            text.push_str(trimmed);
        }
    }
    passages
}

/// `[12] rest` → `(12, "rest")`.
fn passage_start(line: &str) -> Option<(u32, &str)> {
    let inner = line.strip_prefix('[')?;
    let close = inner.find(']')?;
    let n = inner[..close].parse().ok()?;
    Some((n, &inner[close + 1..]))
}

/// Up to the first `.`, `!` or `?` followed by whitespace or the end, whitespace collapsed.
fn first_sentence(text: &str) -> String {
    let mut end = text.len();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|(_, next)| next.is_whitespace())
        {
            end = i + c.len_utf8();
            break;
        }
    }
    text[..end].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How a chat stand-in streams `answer`: word by word, each word after the first with its
/// leading space, so the pieces concatenate to the answer.
fn deltas(answer: &str) -> Vec<String> {
    answer
        .split_whitespace()
        .enumerate()
        .map(|(i, word)| {
            if i == 0 {
                word.to_owned()
            } else {
                format!(" {word}")
            }
        })
        .collect()
}

/// The answer cut to `max_tokens` words, and whether it was cut.
fn limit(answer: String, max_tokens: Option<u64>) -> (String, bool) {
    match max_tokens.and_then(|m| usize::try_from(m).ok()) {
        Some(max) if count_words(&answer) > max => (
            answer
                .split_whitespace()
                .take(max)
                .collect::<Vec<_>>()
                .join(" "),
            true,
        ),
        _ => (answer, false),
    }
}

/// What a chat stand-in answers to a (system, user) turn instead of [`grounded_answer`].
type Answerer = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

/// Test controls and counters shared by a chat stand-in's handlers.
#[derive(Default)]
struct Controls {
    answerer: Mutex<Option<Answerer>>,
    requests: AtomicUsize,
    throttle_first: AtomicUsize,
    failing: Mutex<HashSet<String>>,
    delay_per_token: Mutex<Duration>,
    cancelled_streams: AtomicUsize,
    completed_streams: AtomicUsize,
    /// Bedrock rerank requests received, as (model id, body).
    reranks: Mutex<Vec<(String, serde_json::Value)>>,
}

impl Controls {
    /// Counts a request; true if it is to be throttled.
    fn arrive(&self) -> bool {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        n < self.throttle_first.load(Ordering::SeqCst)
    }

    fn throttle_first(&self, n: usize) {
        self.requests.store(0, Ordering::SeqCst);
        self.throttle_first.store(n, Ordering::SeqCst);
    }

    fn is_failing(&self, model: &str) -> bool {
        self.failing.lock().contains(model)
    }

    fn delay(&self) -> Duration {
        *self.delay_per_token.lock()
    }

    /// The answer to a turn: the test's answerer's, else [`grounded_answer`].
    fn answer(&self, system: &str, user: &str) -> String {
        let answerer = self.answerer.lock().clone();
        match answerer {
            Some(answer) => answer(system, user),
            None => grounded_answer(user),
        }
    }
}

/// Lives as long as a streamed response body: dropped before [`StreamGuard::finish`], the
/// client went away (hyper drops the body when the connection closes) and it is counted.
struct StreamGuard {
    controls: Arc<Controls>,
    finished: bool,
}

impl StreamGuard {
    fn new(controls: Arc<Controls>) -> Self {
        Self {
            controls,
            finished: false,
        }
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.controls
                .completed_streams
                .fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.controls
                .cancelled_streams
                .fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A streamed body: `frames` in order, each token frame (`true`) after `delay`, then the
/// guard is finished. Hyper drops it early if the client goes away.
fn paced_body(frames: Vec<(bool, Vec<u8>)>, controls: Arc<Controls>) -> axum::body::Body {
    let delay = controls.delay();
    let guard = StreamGuard::new(controls);
    let stream = futures::stream::unfold(
        (frames.into_iter(), guard),
        move |(mut frames, mut guard)| async move {
            match frames.next() {
                Some((is_token, frame)) => {
                    if is_token && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Some((Ok::<_, std::convert::Infallible>(frame), (frames, guard)))
                }
                None => {
                    guard.finish();
                    None
                }
            }
        },
    );
    axum::body::Body::from_stream(stream)
}

/// The controls every chat stand-in offers, as methods of its `StandIn`.
macro_rules! chat_controls {
    () => {
        /// Requests received so far, throttled and failed ones included.
        pub fn requests(&self) -> usize {
            self.controls
                .requests
                .load(std::sync::atomic::Ordering::SeqCst)
        }

        /// Answers requests as throttled until `n` requests (counted from now, the counter
        /// is reset) have been received; `usize::MAX` throttles for ever.
        pub fn throttle_first(&self, n: usize) {
            self.controls.throttle_first(n);
        }

        /// From now on, answers each request with `answer(system, user)` (whitespace is
        /// collapsed when it streams, word by word) instead of [`crate::grounded_answer`].
        pub fn answer_with(&self, answer: impl Fn(&str, &str) -> String + Send + Sync + 'static) {
            *self.controls.answerer.lock() = Some(std::sync::Arc::new(answer));
        }

        /// Answers every request for `model` with a 500 from now on.
        pub fn fail_model(&self, model: &str) {
            self.controls.failing.lock().insert(model.to_owned());
        }

        /// Waits this long before each streamed token (the first one included).
        pub fn delay_per_token(&self, delay: std::time::Duration) {
            *self.controls.delay_per_token.lock() = delay;
        }

        /// Streamed responses whose client went away before their end.
        pub fn cancelled_streams(&self) -> usize {
            self.controls
                .cancelled_streams
                .load(std::sync::atomic::Ordering::SeqCst)
        }

        /// Streamed responses sent to their end.
        pub fn completed_streams(&self) -> usize {
            self.controls
                .completed_streams
                .load(std::sync::atomic::Ordering::SeqCst)
        }
    };
}
pub(crate) use chat_controls;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_the_first_sentences_of_the_first_two_passages() {
        let user = "Context:\n[1] Employees get 25 days of leave. Leave must be\nbooked early.\n[2] Remote work needs approval!\n[3] Ignored.\n\nQuestion: how much leave?";
        assert_eq!(
            grounded_answer(user),
            "Employees get 25 days of leave. [1] Remote work needs approval! [2]"
        );
        let one = "[1] The office  is in\n  Lyon, France\n\nQuestion: where?";
        assert_eq!(grounded_answer(one), "The office is in Lyon, France [1]");
        assert_eq!(grounded_answer("What is 3.5 + 1?"), NO_ANSWER);
        assert_eq!(grounded_answer("[x] not a passage"), NO_ANSWER);
    }

    #[test]
    fn a_sentence_ends_at_punctuation_before_a_space() {
        assert_eq!(
            first_sentence("Version 1.2 is out. Next"),
            "Version 1.2 is out."
        );
        assert_eq!(first_sentence("No end"), "No end");
    }

    #[test]
    fn deltas_concatenate_to_the_answer_and_limits_cut_words() {
        let answer = grounded_answer("[1] One two three. Four.");
        assert_eq!(deltas(&answer).concat(), answer);
        assert_eq!(deltas(&answer).len(), count_words(&answer));
        assert_eq!(limit("a b c".into(), Some(2)), ("a b".to_owned(), true));
        assert_eq!(limit("a b".into(), Some(2)), ("a b".to_owned(), false));
        assert_eq!(limit("a b".into(), None), ("a b".to_owned(), false));
    }
}
