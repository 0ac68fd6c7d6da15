//! The Qdrant stand-in as a process, for `make cluster-up` and `make cluster-test` only. It is
//! not Qdrant (see `rag_standins::qdrant`): points live in memory and vanish with it.
//!
//! Usage: `qdrant-standin 127.0.0.1:PORT`

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .ok_or("usage: qdrant-standin 127.0.0.1:PORT")?
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let stand_in = rag_standins::qdrant::StandIn::start_on(listener, None).await?;
    println!(
        "Qdrant stand-in (not Qdrant) listening on {}",
        stand_in.url()
    );
    tokio::signal::ctrl_c().await?;
    stand_in.stop().await;
    Ok(())
}
