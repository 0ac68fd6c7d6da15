//! The HTTP client of the verbs that talk to a running gateway (`ingest`, `query`, `docs`):
//! where the gateway is, the API key, and the failures a shell script tells apart by exit code.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Exit codes of the verbs that talk to a gateway (clap exits with 2 on bad usage itself).
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;
pub const EXIT_REFUSED: u8 = 4;

/// What `ragctl --help` says about exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the operation failed (a document failed to index, a stream ended with an error, a 5xx)
  2  bad usage or input (unknown flag, missing or unreadable path)
  3  the server could not be reached (connection refused, timeout)
  4  the server refused the request (a 4xx: unknown document, invalid field, bad API key)

ingest, query and docs talk to a running gateway: --url (RAG_URL, default
http://127.0.0.1:8080) and --api-key (RAG_API_KEY, sent as `Authorization: Bearer`).
With --json they print one JSON value on stdout; errors go to stderr as one line.";

/// A failure with the exit code a script can rely on.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(EXIT_USAGE, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(EXIT_FAILED, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Where the gateway is and how to authenticate; shared by every remote verb.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// The gateway's base URL.
    #[arg(
        long,
        env = "RAG_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API key, sent as `Authorization: Bearer <key>`.
    #[arg(long, env = "RAG_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Print one JSON value on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client of one gateway.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    api_key: Option<String>,
}

impl Client {
    pub fn new(remote: &Remote) -> Result<Self, CliError> {
        let base = remote.url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CliError::usage(format!(
                "--url {base:?} is not an http:// or https:// URL"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| CliError::failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base,
            http,
            api_key: remote.api_key.clone().filter(|k| !k.is_empty()),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` with the API key when there is one.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Sends `request`; a 2xx answer is returned, anything else is the matching error.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CliError> {
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_of(response).await)
    }

    /// Sends `request` and reads a JSON answer.
    pub async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, CliError> {
        let response = self.send(request).await?;
        response
            .json()
            .await
            .map_err(|e| CliError::failed(format!("the gateway's answer is not JSON: {e}")))
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.json(self.request(reqwest::Method::GET, path)).await
    }

    /// A transport error: the server is not there (3), or the exchange broke (1).
    pub fn transport(&self, e: &reqwest::Error) -> CliError {
        if e.is_connect() || e.is_timeout() {
            CliError::new(
                EXIT_UNREACHABLE,
                format!(
                    "cannot reach the gateway at {}: {}",
                    self.base,
                    source_chain(e)
                ),
            )
        } else if e.is_builder() {
            CliError::usage(format!(
                "invalid request to {}: {}",
                self.base,
                source_chain(e)
            ))
        } else {
            CliError::new(
                EXIT_UNREACHABLE,
                format!(
                    "the gateway at {} did not answer: {}",
                    self.base,
                    source_chain(e)
                ),
            )
        }
    }
}

/// The error's message with its causes, on one line.
fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A non-2xx answer as an error: 4xx refused (4), anything else failed (1). The message is
/// the gateway's JSON error (`{"error": {"code", "message", "field"}}`) when it sent one.
pub async fn error_of(response: reqwest::Response) -> CliError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| {
            let error = body.get("error")?;
            let message = error.get("message")?.as_str()?.to_owned();
            Some(match error.get("field").and_then(Value::as_str) {
                Some(field) => format!("{field}: {message}"),
                None => message,
            })
        })
        .unwrap_or_else(|| {
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no body").to_owned()
            } else {
                text.chars().take(300).collect()
            }
        });
    let code = if status.is_client_error() {
        EXIT_REFUSED
    } else {
        EXIT_FAILED
    };
    CliError::new(
        code,
        format!("the gateway answered {}: {detail}", status.as_u16()),
    )
}

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(value: &Value) {
    println!("{value}");
}

/// A string field of a JSON object, or "".
pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}
