//! The OpenAI-compatible chat stand-in as a process, for local runs only. It is no language
//! model (see `rag_standins::openai`): it answers with the first sentences of the numbered
//! passages it is given.
//!
//! Usage: `openai-standin 127.0.0.1:PORT` (the API root is then `http://127.0.0.1:PORT/v1`)

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .ok_or("usage: openai-standin 127.0.0.1:PORT")?
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let stand_in = rag_standins::openai::StandIn::start_on(listener)?;
    println!(
        "OpenAI-compatible stand-in (not a model) listening on {}",
        stand_in.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
