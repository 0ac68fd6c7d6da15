//! Telemetry in one place: the tracing subscriber every binary installs.
//!
//! Text logs locally, JSON in the cluster (`telemetry.log_format`); `RUST_LOG` overrides the
//! configured filter; `telemetry.log_span_timings` adds a line per closed span with its busy
//! and idle time. Metrics (`metrics`) and traces (`trace`) are set up here too, never in
//! the services.

pub mod health;
pub mod metrics;
pub mod trace;

use rag_config::{LogFormat, TelemetrySettings};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber for the process `service` (the `service.name` of its
/// spans): logs on standard output, and spans as OpenTelemetry spans (exported when
/// `otlp_endpoint` is set). Calling it twice (tests, the launcher) is harmless: the first
/// call wins.
pub fn init(settings: &TelemetrySettings, service: &str) {
    init_with_writer(settings, service, std::io::stdout);
}

/// [`init`] with logs written to `writer` (a test that reads what would be logged).
pub fn init_with_writer<W>(settings: &TelemetrySettings, service: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = trace::provider(settings, service);
    let span_events = if settings.log_span_timings {
        FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_span_events(span_events);
    let logs = match settings.log_format {
        LogFormat::Text => layer.with_target(false).compact().boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    // An error only means a subscriber is already installed.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(trace::layer(&provider))
        .with(logs)
        .try_init();
}

/// Log lines kept in memory, for a test that reads what was logged: pass a clone to
/// [`init_with_writer`] and read [`CapturedLogs::text`] afterwards.
#[derive(Clone, Debug, Default)]
pub struct CapturedLogs(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// For tests: spans get trace ids (nothing is exported), and logs go to the test harness's
/// captured output when `RAG_TEST_LOG` is set.
pub fn init_for_tests() {
    let provider = trace::provider(&TelemetrySettings::default(), "test");
    let logs = std::env::var_os("RAG_TEST_LOG").map(|_| {
        let filter =
            EnvFilter::try_from_env("RAG_TEST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
        tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(filter)
    });
    let _ = tracing_subscriber::registry()
        .with(trace::layer(&provider).with_filter(tracing_subscriber::filter::LevelFilter::INFO))
        .with(logs)
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM: the shutdown future every binary passes to its service.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
