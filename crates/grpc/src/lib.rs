//! gRPC plumbing shared by the services: serving on a bound listener with health and
//! reflection, and lazily connected client channels with timeouts.
//!
//! Must not know any service's logic.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint, Server};

pub use tonic_health::ServingStatus;
pub use tonic_health::server::HealthReporter;

#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("invalid service url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("server reflection could not be built: {0}")]
    Reflection(String),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A health reporter and the health service it drives; the service name `""` stands for the
/// whole server, as the gRPC health protocol says.
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// Serves `routes` plus server reflection on `listener` until `shutdown` resolves, then
/// drains in-flight calls.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(rag_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| GrpcError::Reflection(e.to_string()))?;
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_routes(routes.add_service(reflection))
        .serve_with_incoming_shutdown(no_delay(listener), shutdown)
        .await?;
    Ok(())
}

/// Serves one gRPC service, reported as serving to the health service, plus health and
/// reflection, on `listener` until `shutdown` resolves.
pub async fn serve_service<S>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError>
where
    S: tonic::codegen::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    serve_service_with_worker(listener, service, shutdown, |_stop| async {}).await
}

/// [`serve_service`] with a background worker (a queue consumer) beside the server. On
/// shutdown the server drains first, then the worker is told to stop and awaited, so the
/// message it is handling finishes.
pub async fn serve_service_with_worker<S, W, F>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
    worker: W,
) -> Result<(), GrpcError>
where
    S: tonic::codegen::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    W: FnOnce(tokio_util::sync::CancellationToken) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (reporter, health) = health();
    reporter.set_serving::<S>().await;
    tracing::info!(service = S::NAME, addr = ?listener.local_addr().ok(), "listening");
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(worker(stop.clone()));
    let served = serve(listener, Routes::new(service).add_service(health), shutdown).await;
    stop.cancel();
    if let Err(e) = worker.await {
        tracing::error!(service = S::NAME, error = %e, "background worker ended abnormally");
    }
    served
}

/// Accepted connections with Nagle's algorithm off: small request/response messages must
/// not wait for the peer's delayed ACK (that costs ~40 ms per call).
fn no_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        })
    })
}

/// A channel that connects on first use and reconnects after failures, so a service can
/// start before its peers are up.
pub fn lazy_channel(url: &str, request_timeout: Duration) -> Result<Channel, GrpcError> {
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| GrpcError::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .timeout(request_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

/// The embedding of one text from the embedder service (the router and the retriever both
/// embed questions).
pub async fn embed_one(
    client: &rag_proto::embedder_service_client::EmbedderServiceClient<Channel>,
    text: &str,
    generation: Option<u64>,
) -> Result<QueryEmbedding, rag_core::ServiceError> {
    let request = rag_proto::EmbedRequest {
        texts: vec![text.to_owned()],
        generation,
    };
    let response = client
        .clone()
        .embed(request)
        .await
        .map_err(rag_core::ServiceError::from)?
        .into_inner();
    let values = response
        .embeddings
        .into_iter()
        .next()
        .map(|e| e.values)
        .ok_or_else(|| rag_core::ServiceError::internal("the embedder returned no embedding"))?;
    Ok(QueryEmbedding {
        values,
        model: response.model,
    })
}

/// One text's embedding and the model that computed it.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryEmbedding {
    pub values: Vec<f32>,
    pub model: String,
}

/// Asks a peer's gRPC health service whether `service` (or `""`, the whole server) serves.
pub async fn check_health(channel: Channel, service: &str) -> bool {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest {
        service: service.to_owned(),
    };
    matches!(
        client.check(request).await.map(|r| r.into_inner().status),
        Ok(s) if s == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    )
}
