//! `ragctl query "…"`: asks a running gateway (`POST /v1/query/stream`), prints the answer's
//! text as its `token` events arrive, then the numbered citations; `--json` prints the final
//! answer object (the `done` event) instead.

use std::io::Write as _;

use serde_json::{Value, json};

use crate::client::{CliError, Client, EXIT_FAILED, Remote, print_json, str_of};

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The question.
    question: String,
    /// Only this domain's documents.
    #[arg(long)]
    domain: Option<String>,
    /// Passages to retrieve (the server's default when absent).
    #[arg(long)]
    top_k: Option<u32>,
    #[command(flatten)]
    remote: Remote,
}

/// One Server-Sent Event: its name and data.
#[derive(Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Splits complete events off the front of `buffer` (events end with a blank line);
/// comments and keep-alives are dropped, an incomplete event stays in the buffer.
pub fn drain_events(buffer: &mut String) -> Vec<SseEvent> {
    let mut events = Vec::new();
    if buffer.contains("\r\n") {
        *buffer = buffer.replace("\r\n", "\n");
    }
    loop {
        let Some(end) = buffer.find("\n\n") else {
            return events;
        };
        let block: String = buffer.drain(..end + 2).collect();
        let mut event = String::from("message");
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                event = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push(value.strip_prefix(' ').unwrap_or(value));
            }
        }
        if !data.is_empty() {
            events.push(SseEvent {
                event,
                data: data.join("\n"),
            });
        }
    }
}

pub async fn run(args: QueryArgs) -> Result<(), CliError> {
    if args.question.trim().is_empty() {
        return Err(CliError::usage("the question is empty"));
    }
    let client = Client::new(&args.remote)?;
    let mut body = json!({ "question": args.question });
    if let Some(domain) = &args.domain {
        body["domain"] = domain.as_str().into();
    }
    if let Some(k) = args.top_k {
        body["top_k"] = k.into();
    }
    let request = client
        .request(reqwest::Method::POST, "/v1/query/stream")
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&body);
    let mut response = client.send(request).await?;
    let mut buffer = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut stdout = std::io::stdout();
    let mut written = false;
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| CliError::failed(format!("the answer stream broke: {e}")))?;
        let Some(chunk) = chunk else {
            return Err(CliError::failed(
                "the answer stream ended without an answer",
            ));
        };
        // Bytes of a character split across chunks wait for the rest.
        pending.extend_from_slice(&chunk);
        let valid = match std::str::from_utf8(&pending) {
            Ok(text) => text.len(),
            Err(e) => e.valid_up_to(),
        };
        buffer.push_str(&String::from_utf8_lossy(&pending[..valid]));
        pending.drain(..valid);
        for event in drain_events(&mut buffer) {
            match event.event.as_str() {
                "token" if !args.remote.json => {
                    let token: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                    let _ = write!(stdout, "{}", str_of(&token, "text"));
                    let _ = stdout.flush();
                    written = true;
                }
                "done" => {
                    let answer: Value = serde_json::from_str(&event.data)
                        .map_err(|e| CliError::failed(format!("the answer is not JSON: {e}")))?;
                    if args.remote.json {
                        print_json(&answer);
                    } else {
                        if !written {
                            let _ = write!(stdout, "{}", str_of(&answer, "answer"));
                        }
                        println!();
                        print_citations(&answer);
                    }
                    return Ok(());
                }
                "error" => {
                    if written {
                        println!();
                    }
                    let error: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
                    return Err(CliError::new(
                        EXIT_FAILED,
                        format!(
                            "the answer failed ({}): {}",
                            str_of(&error, "code"),
                            str_of(&error, "message")
                        ),
                    ));
                }
                _ => {}
            }
        }
    }
}

fn print_citations(answer: &Value) {
    let citations = answer["citations"].as_array().cloned().unwrap_or_default();
    if citations.is_empty() {
        return;
    }
    println!();
    for c in &citations {
        let page = c["page"]
            .as_u64()
            .map(|p| format!(", page {p}"))
            .unwrap_or_default();
        println!(
            "[{}] {} ({}{page}; document {})",
            c["number"].as_u64().unwrap_or(0),
            str_of(c, "title"),
            str_of(c, "domain"),
            str_of(c, "document_id"),
        );
        let snippet: String = str_of(c, "snippet").chars().take(200).collect();
        if !snippet.is_empty() {
            println!("    {}", snippet.replace('\n', " "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_at_blank_lines_and_partial_ones_wait() {
        let mut buffer = String::from(
            "event: token\ndata: {\"text\":\"Hi\"}\n\n: keep-alive\n\nevent: done\r\ndata: {}\r\n\r\nevent: tok",
        );
        let events = drain_events(&mut buffer);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: "token".into(),
                    data: "{\"text\":\"Hi\"}".into()
                },
                SseEvent {
                    event: "done".into(),
                    data: "{}".into()
                },
            ]
        );
        assert_eq!(buffer, "event: tok");
    }
}
