//! Readiness of the services this process runs, as their probes last found it: what
//! `GET /health/ready` answers on the metrics listener (the gateway answers its own).
//!
//! A service is registered as starting when its process starts, and its probe loop (in
//! `rag-grpc`) records each round of dependency checks; a service that is stopping is not
//! ready, so traffic moves away while it drains.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use parking_lot::Mutex;
use serde::Serialize;

/// One service's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceHealth {
    /// `starting`, `ready`, `not ready` or `stopping`.
    pub status: &'static str,
    /// Each dependency check's outcome: `ok`, or why it failed.
    pub checks: BTreeMap<String, String>,
}

impl ServiceHealth {
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

static SERVICES: LazyLock<Mutex<BTreeMap<String, ServiceHealth>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// Records `service`'s state.
pub fn set(service: &str, status: &'static str, checks: BTreeMap<String, String>) {
    SERVICES
        .lock()
        .insert(service.to_owned(), ServiceHealth { status, checks });
}

/// Every registered service's state.
pub fn snapshot() -> BTreeMap<String, ServiceHealth> {
    SERVICES.lock().clone()
}

/// Whether every registered service is ready (false while none is registered: a process
/// that has not started one is not ready for traffic).
pub fn all_ready(services: &BTreeMap<String, ServiceHealth>) -> bool {
    !services.is_empty() && services.values().all(ServiceHealth::is_ready)
}

/// The `GET /health/ready` answer: 200 when every service is ready, else 503 with
/// `Retry-After`; the body names each service's status and failed checks.
pub fn ready_response() -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let services = snapshot();
    let ready = all_ready(&services);
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "services": services,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, axum::Json(body)).into_response();
    if !ready {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_service_is() {
        let mut services = BTreeMap::new();
        assert!(!all_ready(&services));
        services.insert(
            "router".to_owned(),
            ServiceHealth {
                status: "ready",
                checks: BTreeMap::new(),
            },
        );
        assert!(all_ready(&services));
        services.insert(
            "embedder".to_owned(),
            ServiceHealth {
                status: "not ready",
                checks: BTreeMap::from([("vector_store".to_owned(), "refused".to_owned())]),
            },
        );
        assert!(!all_ready(&services));
    }
}
