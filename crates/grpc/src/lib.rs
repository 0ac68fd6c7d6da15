//! gRPC plumbing shared by the services: serving on a bound listener with health,
//! reflection, a span and metrics per call (`observe`); readiness from a service's
//! dependencies, start-up retries and draining within a deadline (`lifecycle`); and lazily
//! connected client channels with timeouts that carry the caller's trace context.
//!
//! Must not know any service's logic.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic::transport::{Endpoint, Server};

mod lifecycle;
mod observe;

pub use lifecycle::{Readiness, start_with_retries, with_stop};
pub use observe::{Channel, CountedStream, ServerTelemetryLayer};
pub use tokio_util::sync::CancellationToken;

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

/// Calls in progress per client connection, at most (the gateway's own limit,
/// `gateway.max_in_flight`, is below it, so this bounds other and misbehaving clients).
pub const MAX_CALLS_PER_CONNECTION: usize = 1024;

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
        // Bounded work per caller: past this many calls in progress on one connection a call
        // is refused at once (RESOURCE_EXHAUSTED) instead of queueing without bound.
        .concurrency_limit_per_connection(MAX_CALLS_PER_CONNECTION)
        .load_shed(true)
        .layer(ServerTelemetryLayer)
        .add_routes(routes.add_service(reflection))
        .serve_with_incoming_shutdown(no_delay(listener), shutdown)
        .await?;
    Ok(())
}

/// Serves one gRPC service plus health and reflection on `listener` until `stop` is
/// cancelled, then drains in-flight calls for at most `grace`. The service (and the server,
/// `""`) is reported SERVING only while `readiness`' checks pass.
pub async fn serve_service<S>(
    listener: TcpListener,
    service: S,
    readiness: Readiness,
    stop: CancellationToken,
    grace: Duration,
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
    serve_service_with_worker(listener, service, readiness, stop, grace, |_stop| async {}).await
}

/// [`serve_service`] with a background worker (a queue consumer) beside the server. On
/// stop, the server drains its calls and the worker finishes the message it is handling,
/// together, within `grace`; what is still running then is abandoned (an unacknowledged
/// message is delivered again later).
pub async fn serve_service_with_worker<S, W, F>(
    listener: TcpListener,
    service: S,
    readiness: Readiness,
    stop: CancellationToken,
    grace: Duration,
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
    W: FnOnce(CancellationToken) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (reporter, health) = health();
    reporter.set_not_serving::<S>().await;
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    tracing::info!(service = S::NAME, addr = ?listener.local_addr().ok(), "listening");
    let probe = tokio::spawn(readiness.run(reporter, vec![S::NAME, ""], stop.clone()));
    let mut worker = tokio::spawn(worker(stop.clone()));
    let deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::pin!(deadline);
    let served = serve(
        listener,
        Routes::new(service).add_service(health),
        stop.clone().cancelled_owned(),
    );
    let served = tokio::select! {
        served = served => served,
        () = &mut deadline => {
            tracing::warn!(service = S::NAME, ?grace, "calls still running at the drain deadline were abandoned");
            Ok(())
        }
    };
    // Stops the worker and the probe too when the server ended on its own (an error).
    stop.cancel();
    tokio::select! {
        finished = &mut worker => if let Err(e) = finished {
            tracing::error!(service = S::NAME, error = %e, "background worker ended abnormally");
        },
        () = &mut deadline => {
            worker.abort();
            tracing::warn!(service = S::NAME, ?grace, "the background worker did not stop by the drain deadline; its message will be delivered again");
        }
    }
    let _ = probe.await;
    served
}

/// Accepted connections, counted, with Nagle's algorithm off: small request/response
/// messages must not wait for the peer's delayed ACK (that costs ~40 ms per call).
fn no_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<CountedStream<tokio::net::TcpStream>>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.map(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            CountedStream::new(stream, "grpc")
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
    Ok(Channel::new(
        endpoint
            .connect_timeout(Duration::from_secs(2))
            .timeout(request_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .connect_lazy(),
    ))
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
    health_status(channel, service).await.is_ok()
}

/// A peer's health as a readiness check: `Ok` when `service` (or `""`, the whole server)
/// is SERVING; otherwise what it said, or why it could not be asked.
pub async fn health_status(channel: Channel, service: &str) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus as Status;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel.transport());
    let request = tonic_health::pb::HealthCheckRequest {
        service: service.to_owned(),
    };
    match client.check(request).await {
        Ok(response) => match response.into_inner().status() {
            Status::Serving => Ok(()),
            other => Err(format!("reports {}", other.as_str_name())),
        },
        Err(status) => Err(format!("unreachable: {}", status.message())),
    }
}
