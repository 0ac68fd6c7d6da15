//! `telemetry.log_span_timings`: a closed span is logged with its busy and idle time.
//! Its own test binary: the global subscriber can be installed once per process.

use rag_config::{LogFormat, TelemetrySettings};
use rag_telemetry::CapturedLogs;

#[test]
fn a_closed_span_is_logged_with_its_busy_and_idle_time() -> Result<(), Box<dyn std::error::Error>> {
    let settings = TelemetrySettings {
        log_format: LogFormat::Json,
        log_filter: "info".into(),
        log_span_timings: true,
        ..TelemetrySettings::default()
    };
    let captured = CapturedLogs::default();
    rag_telemetry::init_with_writer(&settings, "rag-test", captured.clone());

    tracing::info_span!("load_chunks", hits = 3).in_scope(|| {
        std::thread::sleep(std::time::Duration::from_millis(2));
    });

    let logged = captured.text();
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
