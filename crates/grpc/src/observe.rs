//! What every gRPC call carries and leaves behind: the caller's trace context in its
//! metadata ([`Channel`] writes it, [`ServerTelemetryLayer`] reads it), one span per call
//! served (the trace and request ids on every log line within), and the RED metrics per
//! method (`rag_grpc_server_requests_total{method,code}`,
//! `rag_grpc_server_request_duration_seconds{method}`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;

/// A client channel that sends the current span's trace context (and request id) with every
/// call. Connects on first use: see [`crate::lazy_channel`].
#[derive(Clone, Debug)]
pub struct Channel {
    inner: tonic::transport::Channel,
}

impl Channel {
    pub(crate) fn new(inner: tonic::transport::Channel) -> Self {
        Self { inner }
    }

    /// The plain transport channel (for clients that need no context, such as health checks).
    pub fn transport(&self) -> tonic::transport::Channel {
        self.inner.clone()
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Channel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future =
        <tonic::transport::Channel as tower::Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        rag_telemetry::trace::inject_headers(request.headers_mut());
        self.inner.call(request)
    }
}

/// Wraps a gRPC server's routes: a span per call, continuing the caller's trace, and the
/// call's metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerTelemetryLayer;

impl<S> tower::Layer<S> for ServerTelemetryLayer {
    type Service = ServerTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTelemetry { inner }
    }
}

#[derive(Clone, Debug)]
pub struct ServerTelemetry<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for ServerTelemetry<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().trim_start_matches('/').to_owned();
        // Health checks (probes every few seconds) are counted, not traced.
        let span = if method.starts_with("grpc.") {
            tracing::Span::none()
        } else {
            let span = tracing::info_span!(
                "grpc",
                otel.name = %method,
                otel.kind = "server",
                rpc.system = "grpc",
                rpc = %method,
                request_id = tracing::field::Empty,
                trace_id = tracing::field::Empty,
            );
            rag_telemetry::trace::continue_trace(
                &span,
                rag_telemetry::trace::extract_headers(request.headers()),
            );
            span
        };
        let started = Instant::now();
        let call = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let result = call.await;
            let code = match &result {
                Ok(response) => status_name(response.headers()),
                Err(_) => "UNKNOWN",
            };
            rag_telemetry::metrics::metrics().grpc_request(
                &method,
                code,
                started.elapsed().as_secs_f64(),
            );
            result
        })
    }
}

/// The status of a call from its response head: a failed call answers "trailers only", with
/// `grpc-status` in the head; a call whose head has none has started to succeed.
fn status_name(headers: &http::HeaderMap) -> &'static str {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map_or(tonic::Code::Ok, tonic::Code::from_i32);
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_come_from_the_head() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_name(&headers), "OK");
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert_eq!(status_name(&headers), "UNAVAILABLE");
        headers.insert("grpc-status", http::HeaderValue::from_static("junk"));
        assert_eq!(status_name(&headers), "OK");
    }
}

/// An accepted connection, counted in `rag_open_connections{protocol}` until it closes.
#[derive(Debug)]
pub struct CountedStream<T> {
    inner: T,
    open: prometheus_client::metrics::gauge::Gauge,
}

impl<T> CountedStream<T> {
    /// Counts `inner` as an open connection of `protocol`'s server (`http`, `grpc`).
    pub fn new(inner: T, protocol: &str) -> Self {
        let open = rag_telemetry::metrics::metrics().connections(protocol);
        open.inc();
        Self { inner, open }
    }
}

impl<T> Drop for CountedStream<T> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CountedStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for CountedStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected
    for CountedStream<T>
{
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
