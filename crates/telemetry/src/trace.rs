//! Traces: `tracing` spans become OpenTelemetry spans, exported over OTLP/gRPC when
//! `telemetry.otlp_endpoint` is set. Trace ids exist either way: they are propagated across
//! services and queues and returned to clients, so one request's log lines can be found by
//! its trace id even with no collector.
//!
//! Context crosses process boundaries as W3C Trace Context (`traceparent`, `tracestate`)
//! plus W3C Baggage carrying the request id (`baggage: request_id=…`): in gRPC metadata
//! ([`inject_headers`] / [`extract_headers`]), and in queue-message attributes and object
//! metadata ([`inject_map`] / [`extract_map`]). Context from outside (an HTTP client) is
//! read with [`extract_client_headers`], which takes the trace context and never baggage:
//! a caller does not get to put entries in what our services pass each other.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use rag_config::TelemetrySettings;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The baggage entry that carries the gateway's request id to every service.
const REQUEST_ID: &str = "request_id";

/// The response header that tells a client its request's trace id.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The tracer provider of this process: exporting to `settings.otlp_endpoint` if set, else
/// exporting nothing (ids are still made and propagated). `service` names the process
/// (`service.name` of every span it exports).
pub(crate) fn provider(settings: &TelemetrySettings, service: &str) -> SdkTracerProvider {
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = match &settings.otlp_endpoint {
        None => builder.with_sampler(Sampler::AlwaysOn),
        Some(endpoint) => {
            let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.trace_sample_ratio,
            )));
            match opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
            {
                Ok(exporter) => builder.with_sampler(sampler).with_batch_exporter(exporter),
                Err(e) => {
                    // Validated at start-up; a failure here costs traces, never the service.
                    eprintln!("the OTLP exporter for {endpoint} could not be built: {e}");
                    builder
                }
            }
        }
    };
    let provider = builder.build();
    // The first provider of the process is the one flushed at exit (tests and the launcher
    // may build more than one; later ones are dropped with their layer).
    let _ = PROVIDER.set(provider.clone());
    provider
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub(crate) fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("llmops-rag-pipeline"))
        .with_location(false)
        .with_threads(false)
}

/// Exports the spans still buffered: call before the process exits (and in tests, before
/// looking at what a collector received).
pub fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.force_flush()
    {
        tracing::warn!(error = %e, "spans could not be flushed");
    }
}

/// Flushes and stops the exporter; spans made afterwards are dropped.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::debug!(error = %e, "the tracer provider did not shut down cleanly");
    }
}

fn internal_propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

/// The trace id (32 hex digits) of the current span, if it has one.
pub fn current_trace_id() -> Option<String> {
    trace_id_of(&tracing::Span::current())
}

/// The trace id (32 hex digits) of `span`, if it has one.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let span_context = cx.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// The request id the gateway gave the request `span` belongs to, if any.
pub fn request_id_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    cx.baggage()
        .get(REQUEST_ID)
        .map(|value| value.as_str().to_owned())
        .filter(|id| !id.is_empty())
}

/// Makes `span` continue the trace in `parent`, and records the trace id and the request id
/// on it (as the `trace_id` and `request_id` fields, where the span declares them) so every
/// log line within shows them.
pub fn continue_trace(span: &tracing::Span, parent: Context) {
    if parent.span().span_context().is_valid() || !parent.baggage().is_empty() {
        // Fails only when the span is disabled, which leaves nothing to continue.
        let _ = span.set_parent(parent);
    }
    record_ids(span);
}

/// Links `span` to the span in `other` (work done for several traces at once, such as one
/// embedding call for the chunks of several uploads, belongs to one and links the others).
pub fn link(span: &tracing::Span, other: &Context) {
    let span_context = other.span().span_context().clone();
    if span_context.is_valid() {
        span.add_link(span_context);
    }
}

/// Records the trace id and the request id (from baggage) on `span`'s fields.
pub fn record_ids(span: &tracing::Span) {
    if let Some(trace_id) = trace_id_of(span) {
        span.record("trace_id", trace_id.as_str());
    }
    if let Some(request_id) = request_id_of(span) {
        span.record("request_id", request_id.as_str());
    }
}

/// Gives `span` (a request's root span at the edge) the request id, carried from here on
/// as baggage, and records both ids on it.
pub fn start_request(span: &tracing::Span, parent: Context, request_id: &str) {
    let parent = if request_id.is_empty() {
        parent
    } else {
        parent.with_baggage(vec![KeyValue::new(REQUEST_ID, request_id.to_owned())])
    };
    let _ = span.set_parent(parent);
    record_ids(span);
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes the current span's context into `headers` (an outgoing gRPC call's metadata).
pub fn inject_headers(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    internal_propagator().inject_context(&cx, &mut HeaderInjector(headers));
}

/// The context an internal caller sent in `headers` (trace context and baggage).
pub fn extract_headers(headers: &http::HeaderMap) -> Context {
    internal_propagator().extract(&HeaderExtractor(headers))
}

/// The trace context an outside client sent (`traceparent`), without its baggage.
pub fn extract_client_headers(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// A string map that carries context: queue-message attributes, object metadata, the
/// `trace_context` field of an index job.
pub trait ContextCarrier {
    fn carrier_get(&self, key: &str) -> Option<&str>;
    fn carrier_keys(&self) -> Vec<&str>;
    fn carrier_set(&mut self, key: String, value: String);
}

/// The same three methods for both map types (their `get`, `keys` and `insert` agree).
macro_rules! string_map_carrier {
    ($($map:ty $(where $param:ident: $bound:path)?),*) => {$(
        impl$(<$param: $bound>)? ContextCarrier for $map {
            fn carrier_get(&self, key: &str) -> Option<&str> {
                self.get(key).map(String::as_str)
            }
            fn carrier_keys(&self) -> Vec<&str> {
                self.keys().map(String::as_str).collect()
            }
            fn carrier_set(&mut self, key: String, value: String) {
                self.insert(key, value);
            }
        }
    )*};
}

string_map_carrier!(
    BTreeMap<String, String>,
    HashMap<String, String, S> where S: std::hash::BuildHasher
);

struct MapInjector<'a, M>(&'a mut M);

impl<M: ContextCarrier> Injector for MapInjector<'_, M> {
    fn set(&mut self, key: &str, value: String) {
        self.0.carrier_set(key.to_owned(), value);
    }
}

struct MapExtractor<'a, M>(&'a M);

impl<M: ContextCarrier> Extractor for MapExtractor<'_, M> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.carrier_get(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.carrier_keys()
    }
}

/// Writes the current span's context into `map`.
pub fn inject_map(map: &mut impl ContextCarrier) {
    let cx = tracing::Span::current().context();
    internal_propagator().inject_context(&cx, &mut MapInjector(map));
}

/// The context written into `map` by [`inject_map`] (empty when there is none).
pub fn extract_map(map: &impl ContextCarrier) -> Context {
    internal_propagator().extract(&MapExtractor(map))
}

/// The keys [`inject_map`] may write: a store that keeps other metadata can tell these apart.
pub const CONTEXT_KEYS: [&str; 3] = ["traceparent", "tracestate", "baggage"];

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn with_tracing(f: impl FnOnce()) {
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOn)
            .build();
        let subscriber = tracing_subscriber::registry().with(layer(&provider));
        tracing::subscriber::with_default(subscriber, f);
    }

    #[test]
    fn context_and_request_id_cross_a_map_and_headers() {
        with_tracing(|| {
            let root = tracing::info_span!("request", trace_id = tracing::field::Empty);
            start_request(&root, Context::new(), "req-42");
            let trace_id = trace_id_of(&root).expect("a trace id");
            assert_eq!(trace_id.len(), 32);

            let child = root.in_scope(|| tracing::info_span!("child"));
            let mut attributes = BTreeMap::new();
            child.in_scope(|| inject_map(&mut attributes));
            assert!(attributes["traceparent"].contains(&trace_id));
            assert_eq!(attributes["baggage"], "request_id=req-42");

            let consumer = tracing::info_span!(
                "consume",
                trace_id = tracing::field::Empty,
                request_id = tracing::field::Empty
            );
            continue_trace(&consumer, extract_map(&attributes));
            assert_eq!(trace_id_of(&consumer), Some(trace_id.clone()));
            assert_eq!(request_id_of(&consumer).as_deref(), Some("req-42"));

            let mut headers = http::HeaderMap::new();
            consumer.in_scope(|| inject_headers(&mut headers));
            let server = tracing::info_span!("server");
            continue_trace(&server, extract_headers(&headers));
            assert_eq!(trace_id_of(&server), Some(trace_id));
            assert_eq!(request_id_of(&server).as_deref(), Some("req-42"));
        });
    }

    #[test]
    fn a_client_cannot_send_baggage() {
        with_tracing(|| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                "traceparent",
                http::HeaderValue::from_static(
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            );
            headers.insert(
                "baggage",
                http::HeaderValue::from_static("request_id=forged"),
            );
            let span = tracing::info_span!("request");
            start_request(&span, extract_client_headers(&headers), "ours");
            assert_eq!(
                trace_id_of(&span).as_deref(),
                Some("0af7651916cd43dd8448eb211c80319c")
            );
            assert_eq!(request_id_of(&span).as_deref(), Some("ours"));
        });
    }

    #[test]
    fn an_empty_map_starts_nothing() {
        with_tracing(|| {
            let span = tracing::info_span!("consume");
            continue_trace(&span, extract_map(&BTreeMap::new()));
            // A span of its own, in a new trace.
            assert!(trace_id_of(&span).is_some());
            assert_eq!(request_id_of(&span), None);
        });
    }
}
