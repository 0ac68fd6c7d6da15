//! `telemetry.log_span_timings`: a closed span is logged with its busy and idle time.
//! Its own test binary: the global subscriber can be installed once per process.

use std::io::Write;
use std::sync::{Arc, Mutex};

use rag_config::{LogFormat, TelemetrySettings};

/// Everything logged, shared with the subscriber's writer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_closed_span_is_logged_with_its_busy_and_idle_time() -> Result<(), Box<dyn std::error::Error>> {
    let settings = TelemetrySettings {
        log_format: LogFormat::Json,
        log_filter: "info".into(),
        log_span_timings: true,
        ..TelemetrySettings::default()
    };
    let captured = Captured::default();
    let writer = captured.clone();
    rag_telemetry::init_with_writer(&settings, "rag-test", move || writer.clone());

    tracing::info_span!("load_chunks", hits = 3).in_scope(|| {
        std::thread::sleep(std::time::Duration::from_millis(2));
    });

    let logged = String::from_utf8(captured.0.lock().map_err(|_| "poisoned")?.clone())?;
    let close = logged
        .lines()
        .map(serde_json::from_str::<serde_json::Value>)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|line| line["message"] == "close" && line.to_string().contains("load_chunks"))
        .ok_or_else(|| format!("no close line for the span in {logged:?}"))?;
    let busy = close["time.busy"]
        .as_str()
        .ok_or_else(|| format!("no busy time in {close}"))?;
    assert!(busy.ends_with("ms"), "busy {busy} (the span slept 2 ms)");
    assert!(close["time.idle"].is_string(), "{close}");
    Ok(())
}
