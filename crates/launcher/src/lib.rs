//! Runs the whole system in one process: the five services on loopback, each on its own
//! listener and talking gRPC to the others exactly as in the cluster, on the embedded
//! backends. Used by `ragctl up` and by the end-to-end tests.
//!
//! Owns start-up order, readiness, seeding the sample documents, and shutdown. Must not
//! contain service logic.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use rag_config::Settings;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub mod load;
pub mod memory;
pub mod reindex;

pub use load::{Loader, Upload};
pub use reindex::reindex;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot bind {what}: {source}")]
    Bind {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the {0} stopped during start-up: {1}")]
    ServiceFailed(&'static str, String),
    #[error("the system was not ready within {0:?}: {1}")]
    NotReady(Duration, String),
    #[error(transparent)]
    Backend(#[from] rag_backends::BackendError),
    #[error("loading documents failed: {0}")]
    Load(String),
}

/// The running system.
#[derive(Debug)]
pub struct System {
    pub settings: Settings,
    pub gateway: SocketAddr,
    stop: CancellationToken,
    services: JoinSet<(&'static str, Result<(), String>)>,
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, LaunchError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| LaunchError::Bind { what, source })
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Starts the five services. The gateway binds `settings.gateway.listen` (port 0 picks
/// one); the others bind ephemeral loopback ports and learn each other's addresses.
pub async fn start(mut settings: Settings) -> Result<System, LaunchError> {
    let gateway = bind("the gateway", settings.gateway.listen).await?;
    let router = bind("the router", loopback()).await?;
    let retriever = bind("the retriever", loopback()).await?;
    let embedder = bind("the embedder", loopback()).await?;
    let ingest = bind("the ingest-worker", loopback()).await?;
    let addr = |l: &TcpListener| {
        l.local_addr().map_err(|source| LaunchError::Bind {
            what: "a service",
            source,
        })
    };
    let (gateway_addr, router_addr, retriever_addr, embedder_addr, ingest_addr) = (
        addr(&gateway)?,
        addr(&router)?,
        addr(&retriever)?,
        addr(&embedder)?,
        addr(&ingest)?,
    );
    settings.gateway.listen = gateway_addr;
    settings.gateway.router_url = url(router_addr);
    settings.gateway.documents_url = url(ingest_addr);
    settings.router.listen = router_addr;
    settings.router.retriever_url = url(retriever_addr);
    settings.router.embedder_url = url(embedder_addr);
    settings.retriever.listen = retriever_addr;
    settings.retriever.embedder_url = url(embedder_addr);
    settings.embedder.listen = embedder_addr;
    settings.ingest.listen = ingest_addr;
    std::fs::create_dir_all(&settings.data_dir)
        .map_err(|e| LaunchError::Load(format!("{}: {e}", settings.data_dir.display())))?;

    let stop = CancellationToken::new();
    let mut services = JoinSet::new();
    fn spawn<F, E>(
        set: &mut JoinSet<(&'static str, Result<(), String>)>,
        name: &'static str,
        run: F,
    ) where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        set.spawn(async move { (name, run.await.map_err(|e| e.to_string())) });
    }
    let s = &settings;
    let stopped = |stop: &CancellationToken| stop.clone().cancelled_owned();
    spawn(
        &mut services,
        "embedder",
        rag_embedder::run(s.clone(), embedder, stopped(&stop)),
    );
    spawn(
        &mut services,
        "retriever",
        rag_retriever::run(s.clone(), retriever, stopped(&stop)),
    );
    spawn(
        &mut services,
        "router",
        rag_router::run(s.clone(), router, stopped(&stop)),
    );
    spawn(
        &mut services,
        "ingest-worker",
        rag_ingest_worker::run(s.clone(), ingest, stopped(&stop)),
    );
    spawn(
        &mut services,
        "gateway",
        rag_gateway::run(s.clone(), gateway, stopped(&stop)),
    );
    Ok(System {
        settings,
        gateway: gateway_addr,
        stop,
        services,
    })
}

impl System {
    pub fn url(&self) -> String {
        url(self.gateway)
    }

    /// Waits until every gRPC service reports serving (the embedder does once its model is
    /// loaded) and the gateway accepts connections; fails early if a service stops.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, LaunchError> {
        let started = Instant::now();
        let mut channels = Vec::new();
        for (name, url) in [
            ("router", &self.settings.gateway.router_url),
            ("retriever", &self.settings.router.retriever_url),
            ("embedder", &self.settings.router.embedder_url),
            ("ingest-worker", &self.settings.gateway.documents_url),
        ] {
            let channel = rag_grpc::lazy_channel(url, Duration::from_secs(1))
                .map_err(|e| LaunchError::NotReady(timeout, e.to_string()))?;
            channels.push((name, channel));
        }
        let mut waiting: Vec<&str> = Vec::new();
        while started.elapsed() < timeout {
            if let Some(Ok((name, result))) = self.services.try_join_next() {
                return Err(LaunchError::ServiceFailed(
                    name,
                    result.err().unwrap_or_else(|| "exited".into()),
                ));
            }
            waiting.clear();
            for (name, channel) in &channels {
                if !rag_grpc::check_health(channel.clone(), "").await {
                    waiting.push(name);
                }
            }
            if tokio::net::TcpStream::connect(self.gateway).await.is_err() {
                waiting.push("gateway");
            }
            if waiting.is_empty() {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(LaunchError::NotReady(
            timeout,
            format!("waiting for {}", waiting.join(", ")),
        ))
    }

    /// Resolves when any service stops on its own (an error: they run until shut down).
    pub async fn stopped(&mut self) -> (&'static str, Result<(), String>) {
        match self.services.join_next().await {
            Some(Ok(result)) => result,
            Some(Err(e)) => ("a service", Err(e.to_string())),
            None => ("every service", Ok(())),
        }
    }

    /// Stops every service, letting in-flight requests and queue messages finish.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        let deadline = tokio::time::sleep(Duration::from_secs(20));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = self.services.join_next() => match next {
                    Some(Ok((name, Err(e)))) => tracing::warn!(service = name, error = %e, "service stopped with an error"),
                    Some(_) => {}
                    None => break,
                },
                () = &mut deadline => {
                    tracing::warn!("services did not stop in time; aborting them");
                    self.services.abort_all();
                    while self.services.join_next().await.is_some() {}
                    break;
                }
            }
        }
    }
}

/// What seeding did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub uploaded: usize,
    pub unchanged: usize,
    pub skipped: usize,
}

/// Data as code, locally: puts every file under `<dir>/<domain>/` into the object store (as
/// the data-sync workflow does with S3), so the usual events ingest it. Files whose stored
/// copy is identical are left alone, so running it again costs nothing.
pub async fn seed(settings: &Settings, dir: &Path) -> Result<SeedReport, LaunchError> {
    let mut loader = Loader::new(settings)?;
    let skipped = load::put_domain_folders(&mut loader, settings, dir).await?;
    let report = loader.report();
    Ok(SeedReport {
        uploaded: report.uploaded,
        unchanged: report.unchanged,
        skipped,
    })
}
