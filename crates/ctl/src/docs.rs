//! `ragctl docs list|status ID|delete ID`: the tenant's documents on a running gateway.

use serde_json::Value;

use crate::client::{CliError, Client, EXIT_FAILED, Remote, print_json, str_of};

#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    #[command(subcommand)]
    command: DocsCommand,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Debug, clap::Subcommand)]
enum DocsCommand {
    /// The documents with their status and chunk counts.
    List {
        /// Only this domain's documents.
        #[arg(long)]
        domain: Option<String>,
    },
    /// One document's status (exit 1 when it failed; the reason is printed).
    Status { id: String },
    /// Deletes a document: it leaves search results at once.
    Delete { id: String },
}

pub async fn run(args: DocsArgs) -> Result<(), CliError> {
    let client = Client::new(&args.remote)?;
    let json = args.remote.json;
    match args.command {
        DocsCommand::List { domain } => {
            let path = match domain {
                Some(d) => format!("/v1/documents?domain={}", encode(&d)),
                None => "/v1/documents".to_owned(),
            };
            let list = client.get(&path).await?;
            if json {
                print_json(&list);
            } else {
                let documents = list["documents"].as_array().cloned().unwrap_or_default();
                println!(
                    "{:<36}  {:<10}  {:<12}  {:>6}  title",
                    "id", "status", "domain", "chunks"
                );
                for d in &documents {
                    println!(
                        "{:<36}  {:<10}  {:<12}  {:>6}  {}",
                        str_of(d, "id"),
                        str_of(d, "status"),
                        str_of(d, "domain"),
                        d["chunk_count"].as_u64().unwrap_or(0),
                        str_of(d, "title")
                    );
                }
                let counts = list["counts"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{v} {k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                println!("{} documents ({counts})", documents.len());
            }
            Ok(())
        }
        DocsCommand::Status { id } => {
            let document = client
                .get(&format!("/v1/documents/{}", encode(&id)))
                .await?;
            if json {
                print_json(&document);
            } else {
                print_document(&document);
            }
            if document["status"] == "failed" {
                return Err(CliError::new(
                    EXIT_FAILED,
                    format!(
                        "document {id} failed: {}",
                        document["error"].as_str().unwrap_or("no reason given")
                    ),
                ));
            }
            Ok(())
        }
        DocsCommand::Delete { id } => {
            let request = client.request(
                reqwest::Method::DELETE,
                &format!("/v1/documents/{}", encode(&id)),
            );
            let document = client.json(request).await?;
            if json {
                print_json(&document);
            } else {
                println!(
                    "{} ({}): deleting",
                    str_of(&document, "id"),
                    str_of(&document, "title")
                );
            }
            Ok(())
        }
    }
}

fn print_document(d: &Value) {
    println!("id       {}", str_of(d, "id"));
    println!("title    {}", str_of(d, "title"));
    println!("domain   {}", str_of(d, "domain"));
    println!("status   {}", str_of(d, "status"));
    println!("version  {}", d["version"].as_u64().unwrap_or(0));
    println!("chunks   {}", d["chunk_count"].as_u64().unwrap_or(0));
    println!("bytes    {}", d["size_bytes"].as_u64().unwrap_or(0));
    if let Some(error) = d["error"].as_str() {
        println!("error    {error}");
    }
}

/// Percent-encodes a path segment or query value (ids are UUIDs; this keeps odd input from
/// changing the request's path).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
