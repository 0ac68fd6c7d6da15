//! Drift, measured from what the system records: the embeddings of the questions it answered
//! (the feedback store) and each indexed document's centre of mass (the catalog).
//!
//! * **Query drift**, per domain: the recent window's questions against the baseline window
//!   just before it, on each question's distance to the nearest document centre and its
//!   projections on the principal directions of both windows (`rag_drift::query_drift`).
//! * **Corpus drift**, per domain: documents indexed in the recent window against those
//!   indexed before, by their distance to the older documents' centre of mass
//!   (`rag_drift::corpus_drift`).
//!
//! [`measure`] is what `ragctl drift` prints; [`run_periodically`] exports the same figures
//! as the `rag_query_drift_*` and `rag_corpus_*` gauges every `drift.interval_secs`.

use std::sync::Arc;
use std::time::Duration;

use rag_backends::rag_catalog::{Catalog, DocumentProfile};
use rag_backends::rag_feedback::{EmbeddingQuery, FeedbackStore};
use rag_config::{DriftSettings, Settings};
use rag_drift::{CorpusDriftReport, DriftConfig, QueryDriftReport, WeightedVector};
use rag_telemetry::metrics::{DriftLabels, metrics};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// The label of a measurement over every domain of a tenant.
pub const ALL_DOMAINS: &str = "all";

/// One domain's drift (or why it could not be measured: too few questions, say).
#[derive(Clone, Debug, Serialize)]
pub struct DomainDrift {
    pub tenant: String,
    /// A domain, or [`ALL_DOMAINS`].
    pub domain: String,
    pub queries: Result<QueryDriftReport, String>,
    pub corpus: Result<CorpusDriftReport, String>,
}

/// The windows of a measurement, in milliseconds since the Unix epoch: baseline
/// `[baseline_from, recent_from)`, recent `[recent_from, now)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Windows {
    pub baseline_from_ms: i64,
    pub recent_from_ms: i64,
    pub now_ms: i64,
}

impl Windows {
    pub fn ending_at(now_ms: i64, settings: &DriftSettings) -> Self {
        let hour_ms: i64 = 3_600_000;
        let recent = i64::try_from(settings.recent_hours).unwrap_or(i64::MAX / 4);
        let baseline = i64::try_from(settings.baseline_days).unwrap_or(i64::MAX / 4);
        let recent_from_ms = now_ms.saturating_sub(recent.saturating_mul(hour_ms));
        Self {
            baseline_from_ms: recent_from_ms.saturating_sub(baseline.saturating_mul(24 * hour_ms)),
            recent_from_ms,
            now_ms,
        }
    }
}

fn config(settings: &DriftSettings) -> DriftConfig {
    DriftConfig {
        components: settings.components,
        alpha: settings.alpha,
        min_samples: settings.min_questions,
        min_documents: settings.min_documents,
    }
}

/// Measures drift for `tenant` in each of `domains` (use [`ALL_DOMAINS`] for all at once).
pub async fn measure(
    feedback: &dyn FeedbackStore,
    catalog: &dyn Catalog,
    tenant: &str,
    domains: &[String],
    settings: &DriftSettings,
    windows: Windows,
) -> Vec<DomainDrift> {
    let config = config(settings);
    let mut out = Vec::with_capacity(domains.len());
    for domain in domains {
        let filter = (domain != ALL_DOMAINS).then_some(domain.as_str());
        let profiles = catalog
            .document_profiles(tenant, filter)
            .await
            .map_err(|e| format!("catalog: {e}"));
        let queries = match &profiles {
            Ok(profiles) => {
                query_drift(
                    feedback, tenant, filter, profiles, settings, &config, windows,
                )
                .await
            }
            Err(e) => Err(e.clone()),
        };
        let corpus = profiles.and_then(|profiles| corpus_drift(&profiles, &config, windows));
        out.push(DomainDrift {
            tenant: tenant.to_owned(),
            domain: domain.clone(),
            queries,
            corpus,
        });
    }
    out
}

async fn questions(
    feedback: &dyn FeedbackStore,
    tenant: &str,
    domain: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    limit: usize,
) -> Result<Vec<Vec<f32>>, String> {
    let query = EmbeddingQuery {
        domain: domain.map(str::to_owned),
        from_ms,
        to_ms,
        limit,
    };
    feedback
        .question_embeddings(tenant, &query)
        .await
        .map(|found| found.into_iter().map(|q| q.embedding).collect())
        .map_err(|e| format!("feedback store: {e}"))
}

async fn query_drift(
    feedback: &dyn FeedbackStore,
    tenant: &str,
    domain: Option<&str>,
    profiles: &[DocumentProfile],
    settings: &DriftSettings,
    config: &DriftConfig,
    windows: Windows,
) -> Result<QueryDriftReport, String> {
    let limit = settings.max_questions;
    let baseline = questions(
        feedback,
        tenant,
        domain,
        windows.baseline_from_ms,
        windows.recent_from_ms,
        limit,
    )
    .await?;
    let recent = questions(
        feedback,
        tenant,
        domain,
        windows.recent_from_ms,
        windows.now_ms,
        limit,
    )
    .await?;
    let centres: Vec<Vec<f32>> = profiles.iter().map(|p| p.mean.clone()).collect();
    rag_drift::query_drift(&baseline, &recent, &centres, config).map_err(|e| e.to_string())
}

fn corpus_drift(
    profiles: &[DocumentProfile],
    config: &DriftConfig,
    windows: Windows,
) -> Result<CorpusDriftReport, String> {
    let weighted = |p: &DocumentProfile| WeightedVector {
        vector: p.mean.clone(),
        weight: p.chunks as f64,
    };
    let (new, existing): (Vec<&DocumentProfile>, Vec<&DocumentProfile>) = profiles
        .iter()
        .partition(|p| p.indexed_at_ms >= windows.recent_from_ms);
    let existing: Vec<_> = existing.into_iter().map(weighted).collect();
    let new: Vec<_> = new.into_iter().map(weighted).collect();
    rag_drift::corpus_drift(&existing, &new, config).map_err(|e| e.to_string())
}

/// Sets the drift gauges from `reports` (a domain that could not be measured keeps its
/// last figures).
pub fn export(reports: &[DomainDrift]) {
    let m = metrics();
    for report in reports {
        let labels = DriftLabels {
            tenant: report.tenant.clone(),
            domain: report.domain.clone(),
        };
        if let Ok(queries) = &report.queries {
            m.query_drift_statistic
                .get_or_create(&labels)
                .set(queries.statistic);
            m.query_drift_p_value
                .get_or_create(&labels)
                .set(queries.p_value);
        }
        if let Ok(corpus) = &report.corpus {
            m.corpus_centroid_shift
                .get_or_create(&labels)
                .set(corpus.centroid_shift);
            if let Some(ks) = &corpus.ks {
                m.corpus_drift_statistic
                    .get_or_create(&labels)
                    .set(ks.statistic);
                m.corpus_drift_p_value
                    .get_or_create(&labels)
                    .set(ks.p_value);
            }
        }
    }
}

/// The domains a measurement covers: every configured one, and all of them together.
pub fn domains(settings: &Settings) -> Vec<String> {
    settings
        .domains
        .iter()
        .map(|d| d.name.clone())
        .chain([ALL_DOMAINS.to_owned()])
        .collect()
}

/// Measures the default tenant's drift every `drift.interval_secs` until `stop`, and exports
/// it. The catalog is the current index generation's, opened anew each round; the domains
/// are the live configuration's at that moment.
pub async fn run_periodically(
    settings: Arc<Settings>,
    live: Arc<crate::live::LiveConfig>,
    feedback: Arc<dyn FeedbackStore>,
    stop: CancellationToken,
) {
    let interval = Duration::from_secs(settings.drift.interval_secs);
    if interval.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let catalog = rag_backends::generation::current(&settings)
            .and_then(|generation| rag_backends::catalog(&generation.settings));
        let catalog = match catalog {
            Ok(catalog) => catalog,
            Err(e) => {
                tracing::warn!(error = %e, "drift not measured: the catalog could not be opened");
                continue;
            }
        };
        let domains = domains(&live.current().settings);
        let windows = Windows::ending_at(now_ms(), &settings.drift);
        let reports = measure(
            feedback.as_ref(),
            catalog.as_ref(),
            &settings.default_tenant,
            &domains,
            &settings.drift,
            windows,
        )
        .await;
        for report in reports.iter().filter(|r| {
            r.queries.as_ref().is_ok_and(|q| q.drifted)
                || r.corpus.as_ref().is_ok_and(|c| c.drifted)
        }) {
            tracing::warn!(tenant = %report.tenant, domain = %report.domain, "drift detected");
        }
        export(&reports);
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
