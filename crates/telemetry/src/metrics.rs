//! Prometheus metrics of this process: one registry, shared by every service the process
//! runs (all five under `ragctl up`), exposed in the OpenMetrics text format by the gateway's
//! `GET /metrics` and, for a service in a process of its own, by [`serve`] on
//! `telemetry.metrics_listen`.
//!
//! Names follow Prometheus conventions: base units (`_seconds`, `_bytes`), counters end in
//! `_total` (added by the encoder). Labels have few values each: routes are the matched
//! patterns (`/v1/documents/{id}`), never raw paths, and models, tiers and cache results are
//! closed sets from configuration.

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AnswerLabels {
    /// `miss`, `exact` or `semantic`.
    pub cache: String,
    /// `light` or `strong`.
    pub tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub model: String,
    pub prompt_version: String,
    /// `input` or `output`.
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// A cache lookup: `exact_hit`, `semantic_hit`, `miss` or `error`; or
    /// `semantic_refused`, a semantic candidate the guard refused (the lookup goes on).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoutingLabels {
    pub tier: String,
    pub domain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// A document: `indexed` or `failed`; a queue message: `dead_lettered`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueStateLabels {
    pub queue: String,
    /// `visible`, `in_flight` or `dead_lettered`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    /// `package.Service/Method`.
    pub method: String,
    /// The gRPC status code's name (`OK`, `UNAVAILABLE`, ...).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    /// `http` (the gateway's API) or `grpc`.
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// Where the configuration came from: `file` or `kubernetes`.
    pub source: String,
    /// `applied` or `invalid` (refused; the running configuration stayed).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriftLabels {
    pub tenant: String,
    /// The domain, or `all` for a tenant's whole corpus.
    pub domain: String,
}

/// Buckets from 1 ms to about 33 s (doubling): fit for p50/p95/p99 of requests, retrieval
/// and generation alike.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_request_duration: Family<RouteLabels, Histogram>,
    pub http_in_flight: Gauge,
    pub http_shed: Counter,
    pub answer_duration: Family<AnswerLabels, Histogram>,
    pub time_to_first_token: Histogram,
    pub retrieval_duration: Histogram,
    pub rerank_duration: Family<ModelLabels, Histogram>,
    pub generation_duration: Family<ModelLabels, Histogram>,
    pub tokens: Family<TokenLabels, Counter>,
    pub cost_usd: Family<ModelLabels, Counter<f64, AtomicU64>>,
    pub cache_lookups: Family<ResultLabels, Counter>,
    pub routing_decisions: Family<RoutingLabels, Counter>,
    pub generation_fallbacks: Counter,
    pub refusals: Counter,
    pub injections_removed: Counter,
    pub documents: Family<OutcomeLabels, Counter>,
    pub chunks_indexed: Counter,
    pub queue_messages: Family<QueueLabels, Counter>,
    pub dead_lettered: Family<QueueLabels, Counter>,
    pub embedding_batch_size: Histogram,
    pub embedding_duration: Histogram,
    pub ingestion_lag: Histogram,
    pub queue_depth: Family<QueueStateLabels, Gauge>,
    pub queue_oldest_age: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    pub resident_memory: Gauge,
    pub grpc_requests: Family<GrpcLabels, Counter>,
    pub grpc_request_duration: Family<MethodLabels, Histogram>,
    pub open_connections: Family<ServerLabels, Gauge>,
    pub query_drift_statistic: Family<DriftLabels, Gauge<f64, AtomicU64>>,
    pub query_drift_p_value: Family<DriftLabels, Gauge<f64, AtomicU64>>,
    pub corpus_drift_statistic: Family<DriftLabels, Gauge<f64, AtomicU64>>,
    pub corpus_drift_p_value: Family<DriftLabels, Gauge<f64, AtomicU64>>,
    pub corpus_centroid_shift: Family<DriftLabels, Gauge<f64, AtomicU64>>,
    pub config_reloads: Family<ReloadLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("rag");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            http_requests.clone(),
        );
        let http_request_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency (to the response head; a stream's body is not counted)",
            http_request_duration.clone(),
        );
        let http_in_flight = Gauge::default();
        registry.register(
            "http_in_flight_requests",
            "HTTP requests being handled",
            http_in_flight.clone(),
        );
        let http_shed = Counter::default();
        registry.register(
            "http_requests_shed",
            "API requests refused with 503 because gateway.max_in_flight were in progress",
            http_shed.clone(),
        );
        let answer_duration =
            Family::<AnswerLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "answer_duration_seconds",
            "Time to a whole answer, by cache result and tier",
            answer_duration.clone(),
        );
        let time_to_first_token = latency();
        registry.register(
            "time_to_first_token_seconds",
            "Time from a streamed question to its first token",
            time_to_first_token.clone(),
        );
        let retrieval_duration = latency();
        registry.register(
            "retrieval_duration_seconds",
            "Hybrid retrieval latency as the router sees it",
            retrieval_duration.clone(),
        );
        let rerank_duration =
            Family::<ModelLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "rerank_duration_seconds",
            "Time to re-score a search's fused candidates, by reranker model (failed calls included)",
            rerank_duration.clone(),
        );
        let generation_duration =
            Family::<ModelLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "generation_duration_seconds",
            "Time to write an answer, by model",
            generation_duration.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens",
            "Model tokens by model, prompt version and direction",
            tokens.clone(),
        );
        let cost_usd = Family::<ModelLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "cost_usd",
            "Estimated model cost in US dollars, from the price table",
            cost_usd.clone(),
        );
        let cache_lookups = Family::<ResultLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Answer cache lookups by result (exact_hit, semantic_hit, miss, error; semantic_refused: a semantic candidate the guard refused)",
            cache_lookups.clone(),
        );
        let routing_decisions = Family::<RoutingLabels, Counter>::default();
        registry.register(
            "routing_decisions",
            "Questions routed, by tier and domain",
            routing_decisions.clone(),
        );
        let generation_fallbacks = Counter::default();
        registry.register(
            "generation_fallbacks",
            "Answers written by the light tier because the strong model was unavailable",
            generation_fallbacks.clone(),
        );
        let refusals = Counter::default();
        registry.register(
            "refusals",
            "Questions refused as a denied topic",
            refusals.clone(),
        );
        let injections_removed = Counter::default();
        registry.register(
            "injections_removed",
            "Instruction-like sentences removed from retrieved chunks",
            injections_removed.clone(),
        );
        let config_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Live configuration documents (domains, prompts, guardrails) the router applied or refused",
            config_reloads.clone(),
        );
        let documents = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "documents",
            "Document versions by outcome (indexed, failed)",
            documents.clone(),
        );
        let chunks_indexed = Counter::default();
        registry.register(
            "chunks_indexed",
            "Chunks written to both indexes",
            chunks_indexed.clone(),
        );
        let queue_messages = Family::<QueueLabels, Counter>::default();
        registry.register(
            "queue_messages_received",
            "Queue messages received, by queue",
            queue_messages.clone(),
        );
        let dead_lettered = Family::<QueueLabels, Counter>::default();
        registry.register(
            "queue_messages_dead_lettered",
            "Queue messages sent to the dead-letter queue, by queue",
            dead_lettered.clone(),
        );
        let embedding_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "embedding_batch_size",
            "Texts per embedding call",
            embedding_batch_size.clone(),
        );
        let embedding_duration = latency();
        registry.register(
            "embedding_duration_seconds",
            "Time per embedding call",
            embedding_duration.clone(),
        );
        let ingestion_lag = Histogram::new(exponential_buckets(0.1, 2.0, 16));
        registry.register(
            "ingestion_lag_seconds",
            "From an object's creation (its S3 event) to its version being searchable",
            ingestion_lag.clone(),
        );
        let queue_depth = Family::<QueueStateLabels, Gauge>::default();
        registry.register(
            "queue_messages",
            "Messages in a queue by state (visible, in_flight, dead_lettered), polled by its consumers",
            queue_depth.clone(),
        );
        let queue_oldest_age = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "queue_oldest_message_age_seconds",
            "Age of the oldest visible message of a queue (how far behind its consumers are)",
            queue_oldest_age.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident set size of the process",
            resident_memory.clone(),
        );
        let grpc_requests = Family::<GrpcLabels, Counter>::default();
        registry.register(
            "grpc_server_requests",
            "gRPC calls served, by method and status code",
            grpc_requests.clone(),
        );
        let grpc_request_duration =
            Family::<MethodLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "grpc_server_request_duration_seconds",
            "gRPC call latency by method (to the response head; a stream's body is not counted)",
            grpc_request_duration.clone(),
        );
        let open_connections = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "open_connections",
            "Connections accepted and not yet closed, by server (http, grpc)",
            open_connections.clone(),
        );
        let drift = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<DriftLabels, Gauge<f64, AtomicU64>>::default();
            registry.register(name, help, family.clone());
            family
        };
        let query_drift_statistic = drift(
            &mut registry,
            "query_drift_ks_statistic",
            "Query drift: the largest Kolmogorov-Smirnov statistic between the baseline and recent windows over the query-embedding features",
        );
        let query_drift_p_value = drift(
            &mut registry,
            "query_drift_p_value",
            "Query drift: the Bonferroni-adjusted p-value of the Kolmogorov-Smirnov tests (small: the recent questions differ)",
        );
        let corpus_drift_statistic = drift(
            &mut registry,
            "corpus_drift_ks_statistic",
            "Corpus drift: Kolmogorov-Smirnov statistic between new and existing documents' distances to the domain's centre of mass",
        );
        let corpus_drift_p_value = drift(
            &mut registry,
            "corpus_drift_p_value",
            "Corpus drift: the p-value of that test",
        );
        let corpus_centroid_shift = drift(
            &mut registry,
            "corpus_centroid_shift",
            "Corpus drift: cosine distance the new documents moved the domain's centre of mass",
        );
        Self {
            registry,
            grpc_requests,
            grpc_request_duration,
            open_connections,
            query_drift_statistic,
            query_drift_p_value,
            corpus_drift_statistic,
            corpus_drift_p_value,
            corpus_centroid_shift,
            config_reloads,
            http_requests,
            http_request_duration,
            http_in_flight,
            http_shed,
            answer_duration,
            time_to_first_token,
            retrieval_duration,
            rerank_duration,
            generation_duration,
            tokens,
            cost_usd,
            cache_lookups,
            routing_decisions,
            generation_fallbacks,
            refusals,
            injections_removed,
            documents,
            chunks_indexed,
            queue_messages,
            dead_lettered,
            embedding_batch_size,
            embedding_duration,
            ingestion_lag,
            queue_depth,
            queue_oldest_age,
            resident_memory,
        }
    }

    pub fn cache_lookup(&self, result: &str) {
        self.cache_lookups
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// A gRPC call that ended with `code` after `seconds`.
    pub fn grpc_request(&self, method: &str, code: &str, seconds: f64) {
        self.grpc_requests
            .get_or_create(&GrpcLabels {
                method: method.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.grpc_request_duration
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .observe(seconds);
    }

    /// The open-connections gauge of `protocol`'s server.
    pub fn connections(&self, protocol: &str) -> Gauge {
        self.open_connections
            .get_or_create(&ServerLabels {
                protocol: protocol.to_owned(),
            })
            .clone()
    }

    /// A live configuration document from `source`, `applied` or `invalid`.
    pub fn config_reload(&self, source: &str, result: &str) {
        self.config_reloads
            .get_or_create(&ReloadLabels {
                source: source.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn document(&self, outcome: &str) {
        self.documents
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// Every metric, in the OpenMetrics text format ([`CONTENT_TYPE`]).
pub fn render() -> String {
    let metrics = metrics();
    if let Some(rss) = resident_memory_bytes() {
        metrics.resident_memory.set(rss);
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &metrics.registry) {
        tracing::warn!(error = %e, "metrics could not be encoded");
    }
    out
}

/// The resident set size, from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident_memory_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Serves `GET /metrics`, `GET /health/live` and `GET /health/ready` (see [`crate::health`])
/// on `listener` until `shutdown` resolves: for a service that runs in a process of its own
/// (the gateway serves all three on its API port).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/health/live",
            axum::routing::get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    "{\"status\":\"ok\"}",
                )
            }),
        )
        .route(
            "/health/ready",
            axum::routing::get(|| async { crate::health::ready_response() }),
        )
        .route(
            "/metrics",
            axum::routing::get(|| async {
                ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], render())
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves `GET /metrics` in the background on `telemetry.metrics_listen`, if set, until the
/// process is asked to stop.
pub async fn serve_if_configured(settings: &rag_config::TelemetrySettings) -> std::io::Result<()> {
    let Some(addr) = settings.metrics_listen else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    tokio::spawn(async move {
        if let Err(e) = serve(listener, crate::shutdown_signal()).await {
            tracing::warn!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_prometheus_names() {
        metrics().cache_lookup("exact_hit");
        metrics().document("indexed");
        let text = render();
        assert!(
            text.contains("rag_cache_lookups_total{result=\"exact_hit\"}"),
            "{text}"
        );
        assert!(
            text.contains("rag_documents_total{outcome=\"indexed\"}"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE rag_retrieval_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains("rag_process_resident_memory_bytes"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// A service in a process of its own serves the same text over HTTP.
    #[tokio::test]
    async fn served_over_http() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, async {
            let _ = stopped.await;
        }));
        metrics().chunks_indexed.inc();
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("application/openmetrics-text"),
            "{response}"
        );
        assert!(response.contains("rag_chunks_indexed_total"), "{response}");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }

    /// Every family with one series, so that each appears in the rendered text.
    fn touch_all() {
        let m = metrics();
        let s = String::new;
        let _ = m.http_requests.get_or_create(&HttpLabels {
            method: s(),
            route: s(),
            status: 200,
        });
        let _ = m.http_request_duration.get_or_create(&RouteLabels {
            method: s(),
            route: s(),
        });
        let _ = m.answer_duration.get_or_create(&AnswerLabels {
            cache: s(),
            tier: s(),
        });
        let _ = m
            .generation_duration
            .get_or_create(&ModelLabels { model: s() });
        let _ = m.tokens.get_or_create(&TokenLabels {
            model: s(),
            prompt_version: s(),
            direction: s(),
        });
        let _ = m.cost_usd.get_or_create(&ModelLabels { model: s() });
        let _ = m.cache_lookups.get_or_create(&ResultLabels { result: s() });
        let _ = m.routing_decisions.get_or_create(&RoutingLabels {
            tier: s(),
            domain: s(),
        });
        let _ = m.documents.get_or_create(&OutcomeLabels { outcome: s() });
        let _ = m.queue_messages.get_or_create(&QueueLabels { queue: s() });
        let _ = m.dead_lettered.get_or_create(&QueueLabels { queue: s() });
        let _ = m.queue_depth.get_or_create(&QueueStateLabels {
            queue: s(),
            state: s(),
        });
        let _ = m
            .queue_oldest_age
            .get_or_create(&QueueLabels { queue: s() });
        m.grpc_request("", "OK", 0.0);
        let _ = m.connections("");
        let drift = DriftLabels {
            tenant: s(),
            domain: s(),
        };
        for family in [
            &m.query_drift_statistic,
            &m.query_drift_p_value,
            &m.corpus_drift_statistic,
            &m.corpus_drift_p_value,
            &m.corpus_centroid_shift,
        ] {
            let _ = family.get_or_create(&drift);
        }
    }

    /// One ServiceMonitor per service, each scraping `/metrics` from a named port.
    #[test]
    fn every_service_is_scraped() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../k8s/observability/servicemonitors.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let documents: Vec<&str> = text.split("\n---\n").skip(1).collect();
        for service in [
            "gateway",
            "router",
            "retriever",
            "embedder",
            "ingest-worker",
        ] {
            let monitor = documents
                .iter()
                .find(|d| d.contains(&format!("app.kubernetes.io/name: rag-{service}\n")))
                .unwrap_or_else(|| panic!("no ServiceMonitor selects rag-{service}"));
            assert!(monitor.contains("kind: ServiceMonitor"), "{monitor}");
            assert!(monitor.contains("path: /metrics"), "{monitor}");
            assert!(monitor.contains("- port: "), "{monitor}");
        }
        assert_eq!(documents.len(), 5);
    }

    /// The metric names a PromQL text uses (`rag_…`, without a histogram's series suffix).
    fn used_names(text: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(at) = text[i..].find("rag_") {
            let start = i + at;
            let boundary = start == 0
                || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            let end = text[start..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .map_or(text.len(), |e| start + e);
            if boundary {
                let name = &text[start..end];
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                names.insert(base.to_owned());
            }
            i = end;
        }
        names
    }

    /// The dashboards and alerts in `k8s/observability` use only metrics this process exports.
    #[test]
    fn dashboards_and_alerts_use_exported_metrics() {
        touch_all();
        let rendered = render();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/observability");
        let mut checked = 0;
        for file in ["dashboard.json", "alerts.yaml"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let names = used_names(&text);
            assert!(names.len() >= 5, "{file} uses only {names:?}");
            for name in names {
                // A counter `x_total` is exported as family `x` with series `x_total`.
                let family = name.strip_suffix("_total").unwrap_or(&name);
                assert!(
                    rendered.contains(&format!("# TYPE {family} ")),
                    "{file} uses {name}, which is not exported"
                );
                checked += 1;
            }
        }
        assert!(checked >= 15, "only {checked} metric uses checked");
        assert_eq!(
            used_names("rate(rag_x_total[5m]) / rag_y_bucket{le=\"1\"} not_rag_z"),
            ["rag_x_total", "rag_y"]
                .into_iter()
                .map(String::from)
                .collect()
        );
    }
}
