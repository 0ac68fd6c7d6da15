//! The gateway: the public HTTP API (JSON and Server-Sent Events), upload validation, and
//! the writing of uploads to the object store. Everything else is a gRPC call to the router
//! (questions, domains) or the ingest-worker's document service (status, list, delete).
//!
//! Owns the HTTP contract: status codes (one map, in `error`), request ids, body limits.
//! Must not retrieve, generate or parse documents.

pub mod auth;
mod body;
mod error;
mod json;
pub mod openapi;
mod ops;
mod routes;
mod web;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use rag_backends::rag_object_store::ObjectStore;
use rag_config::Settings;
use rag_grpc::Channel;
use rag_proto::document_service_client::DocumentServiceClient;
use rag_proto::router_service_client::RouterServiceClient;
use tokio::net::TcpListener;

pub use routes::router;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Backend(#[from] rag_backends::BackendError),
    #[error(transparent)]
    Grpc(#[from] rag_grpc::GrpcError),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub router_channel: Channel,
    pub documents_channel: Channel,
    pub objects: Arc<dyn ObjectStore>,
    pub auth: auth::Authenticator,
    /// Permits for API requests in progress (`gateway.max_in_flight`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(settings: &Settings) -> Result<Self, GatewayError> {
        let timeout = Duration::from_millis(settings.gateway.request_timeout_ms);
        let router_channel = rag_grpc::lazy_channel(&settings.gateway.router_url, timeout)?;
        let documents_channel = rag_grpc::lazy_channel(&settings.gateway.documents_url, timeout)?;
        Ok(Self {
            settings: Arc::new(settings.clone()),
            router_channel,
            documents_channel,
            objects: rag_backends::object_store(settings)?,
            auth: auth::Authenticator::new(settings)?,
            in_flight: Arc::new(tokio::sync::Semaphore::new(settings.gateway.max_in_flight)),
        })
    }
}

impl AppState {
    /// A client of the router (clients are cheap views of the shared channel).
    pub fn router(&self) -> RouterServiceClient<Channel> {
        RouterServiceClient::new(self.router_channel.clone())
    }

    /// A client of the document service on the ingest-worker.
    pub fn documents(&self) -> DocumentServiceClient<Channel> {
        DocumentServiceClient::new(self.documents_channel.clone())
    }
}

/// Serves the HTTP API on `listener` until `shutdown` resolves, then drains in-flight
/// requests for at most `shutdown_grace_ms` (a stream still open then is cut).
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    let state = AppState::new(&settings)?;
    state.auth.check_listener(listener.local_addr()?)?;
    let grace = Duration::from_millis(settings.shutdown_grace_ms);
    tracing::info!(addr = ?listener.local_addr().ok(), "gateway listening");
    let listener = ApiListener(listener);
    rag_grpc::with_stop(shutdown, |stop| async move {
        tokio::spawn(state.auth.clone().follow(stop.clone()));
        let serving = axum::serve(listener, router(state))
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future();
        let deadline = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = serving => served?,
            () = deadline => {
                tracing::warn!(?grace, "requests still running at the drain deadline were cut");
            }
        }
        Ok(())
    })
    .await
}

/// The API's listener: every connection counted (`rag_open_connections{protocol="http"}`),
/// with Nagle's algorithm off (a small response must not wait for the client's delayed ACK).
struct ApiListener(TcpListener);

impl axum::serve::Listener for ApiListener {
    type Io = rag_grpc::CountedStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        (rag_grpc::CountedStream::new(stream, "http"), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}
