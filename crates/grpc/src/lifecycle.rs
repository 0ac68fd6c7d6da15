//! A service's life: readiness from its dependencies, start-up that waits for them, and a
//! shutdown that drains within a deadline.
//!
//! * [`Readiness`] names a service's dependency checks. While serving, a probe loop runs
//!   them (backing off from 100 ms to 2 s while something fails, every 5 s once all pass)
//!   and sets the gRPC health status of the service and of the whole server (`""`) to
//!   SERVING or NOT_SERVING; `rag_telemetry::health` gets the same report for
//!   `GET /health/ready`, naming the failed checks.
//! * [`start_with_retries`] retries a start-up step that failed (backing off to 30 s) instead
//!   of ending the process, reporting the service as starting meanwhile.
//! * [`with_stop`] turns a shutdown future into a [`CancellationToken`] every part of a
//!   service can watch; on stop the service turns not-ready at once, then drains in-flight
//!   calls and the message being handled, and abandons what is left at the deadline
//!   (queue messages not acknowledged are delivered again: every step is idempotent).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// How long one dependency check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// The probe period once everything passes.
const READY_PERIOD: Duration = Duration::from_secs(5);
/// The first retry while something fails, doubling up to [`LAST_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(2);

/// A service's name and its dependency checks.
#[derive(Clone)]
pub struct Readiness {
    service: &'static str,
    checks: Vec<(&'static str, Check)>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Readiness")
            .field("service", &self.service)
            .field("checks", &names)
            .finish()
    }
}

impl Readiness {
    /// A service with no checks yet; it is reported as starting from now on.
    pub fn new(service: &'static str) -> Self {
        rag_telemetry::health::set(service, "starting", BTreeMap::new());
        Self {
            service,
            checks: Vec::new(),
        }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Adds a check: ready only while `check` succeeds.
    pub fn check<F, Fut, E>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let check = Arc::new(check);
        self.checks.push((
            name,
            Arc::new(move || {
                let future = check();
                Box::pin(async move { future.await.map_err(|e| e.to_string()) }) as CheckFuture
            }),
        ));
        self
    }

    /// Runs every check at once; each outcome is `ok` or the reason it failed.
    pub async fn probe(&self) -> (bool, BTreeMap<String, String>) {
        let results = futures::future::join_all(self.checks.iter().map(|(name, check)| {
            let check = Arc::clone(check);
            async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(Ok(())) => "ok".to_owned(),
                    Ok(Err(e)) => e,
                    Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
                };
                ((*name).to_owned(), outcome)
            }
        }))
        .await;
        let ready = results.iter().all(|(_, outcome)| outcome == "ok");
        (ready, results.into_iter().collect())
    }

    /// Probes until `stop`, keeping the health reporter and `rag_telemetry::health` current;
    /// on `stop`, reports not serving at once.
    pub(crate) async fn run(
        self,
        reporter: tonic_health::server::HealthReporter,
        names: Vec<&'static str>,
        stop: CancellationToken,
    ) {
        let mut was_ready = None;
        let mut retry = FIRST_RETRY;
        loop {
            let (ready, checks) = tokio::select! {
                () = stop.cancelled() => break,
                probed = self.probe() => probed,
            };
            let status = if ready {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for name in &names {
                reporter.set_service_status(*name, status).await;
            }
            if was_ready != Some(ready) {
                let failed: Vec<_> = checks
                    .iter()
                    .filter(|(_, outcome)| *outcome != "ok")
                    .map(|(name, outcome)| format!("{name}: {outcome}"))
                    .collect();
                if ready {
                    tracing::info!(service = self.service, "ready");
                } else {
                    tracing::warn!(service = self.service, failed = ?failed, "not ready");
                }
                was_ready = Some(ready);
            }
            rag_telemetry::health::set(
                self.service,
                if ready { "ready" } else { "not ready" },
                checks,
            );
            let wait = if ready {
                retry = FIRST_RETRY;
                READY_PERIOD
            } else {
                let wait = retry;
                retry = (retry * 2).min(LAST_RETRY);
                wait
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        for name in &names {
            reporter
                .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        rag_telemetry::health::set(self.service, "stopping", BTreeMap::new());
    }
}

/// Runs `body` with a token that is cancelled when `shutdown` resolves; returns what `body`
/// returns (it is expected to finish soon after the token is cancelled).
pub async fn with_stop<F, T>(
    shutdown: impl Future<Output = ()>,
    body: impl FnOnce(CancellationToken) -> F,
) -> T
where
    F: Future<Output = T>,
{
    let stop = CancellationToken::new();
    let body = body(stop.clone());
    tokio::pin!(body, shutdown);
    tokio::select! {
        out = &mut body => return out,
        () = &mut shutdown => stop.cancel(),
    }
    body.await
}

/// Runs the start-up step `attempt` until it succeeds, backing off from 500 ms to 30 s and
/// logging each failure; `service` is reported as starting, with the failure, meanwhile.
/// `None` if `stop` is cancelled first.
pub async fn start_with_retries<T, E, F, Fut>(
    service: &'static str,
    step: &'static str,
    stop: &CancellationToken,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let mut wait = Duration::from_millis(500);
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return None,
            outcome = attempt() => outcome,
        };
        match outcome {
            Ok(value) => return Some(value),
            Err(e) => {
                tracing::warn!(service, step, error = %e, retry_in = ?wait, "start-up step failed; retrying");
                rag_telemetry::health::set(
                    service,
                    "starting",
                    BTreeMap::from([(step.to_owned(), e.to_string())]),
                );
            }
        }
        tokio::select! {
            () = stop.cancelled() => return None,
            () = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn probe_names_what_failed() {
        let readiness = Readiness::new("probe-test")
            .check("fine", || async { Ok::<_, String>(()) })
            .check("down", || async { Err::<(), _>("connection refused") });
        let (ready, checks) = readiness.probe().await;
        assert!(!ready);
        assert_eq!(checks["fine"], "ok");
        assert_eq!(checks["down"], "connection refused");
    }

    #[tokio::test]
    async fn start_up_retries_until_it_succeeds() {
        let attempts = AtomicUsize::new(0);
        let stop = CancellationToken::new();
        let value = start_with_retries("retry-test", "open", &stop, || {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            async move { if n < 1 { Err("not yet") } else { Ok(n) } }
        })
        .await;
        assert_eq!(value, Some(1));
        let stopped: Option<()> = {
            stop.cancel();
            start_with_retries("retry-test", "open", &stop, || async {
                Err::<(), _>("never")
            })
            .await
        };
        assert_eq!(stopped, None);
    }

    #[tokio::test]
    async fn with_stop_cancels_the_token() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let out = with_stop(
            async {
                let _ = rx.await;
            },
            |stop| async move {
                stop.cancelled().await;
                7
            },
        );
        let _ = tx.send(());
        assert_eq!(out.await, 7);
    }
}
