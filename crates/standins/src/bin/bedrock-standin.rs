//! The Bedrock stand-in as a process, for `make cluster-up` and `make cluster-test` only. It
//! is not Bedrock (see `rag_standins::bedrock`): its Titan vectors are word hashes.
//!
//! Usage: `bedrock-standin 127.0.0.1:PORT`

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .ok_or("usage: bedrock-standin 127.0.0.1:PORT")?
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let stand_in = rag_standins::bedrock::StandIn::start_on(listener)?;
    println!(
        "Bedrock stand-in (not Bedrock) listening on {}",
        stand_in.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
