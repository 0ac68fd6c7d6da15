//! `GET /v1/ops`: the figures of the web app's operations page in one JSON body.
//!
//! The cache hit ratio and the tier mix are the tenant's recorded answers (the feedback
//! store, through the router: durable, and the same in every process); the documents by
//! status are the catalog's. Cost so far and the queues' depths are this process's metrics
//! (`rag_cost_usd_total`, `rag_queue_messages`): in the embedded system the process runs every
//! service, so they are the system's since it started; a gateway running alone has neither
//! (Prometheus has them from the router and the consumers).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use rag_proto::{FeedbackSummaryRequest, ListDocumentsRequest};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::body::{DocumentList, DocumentView, ErrorBody};
use crate::error::ApiResult;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/v1/ops", get(ops))
}

/// The operations page's figures.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OpsSummary {
    /// Answers recorded for the tenant.
    pub answers: u64,
    pub cache: CacheFigures,
    /// Answers by tier, largest first.
    pub tiers: Vec<Share>,
    /// Estimated model cost since the process started (this process's `rag_cost_usd_total`).
    pub cost_usd: f64,
    /// Model cost by model since the process started.
    pub cost_by_model: BTreeMap<String, f64>,
    /// The tenant's documents by status.
    pub documents: BTreeMap<String, u64>,
    /// Messages waiting in each queue, as this process's consumers last saw them.
    pub queues: Vec<QueueDepth>,
}

/// Answers served from the cache.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CacheFigures {
    /// (exact + semantic) / answers; null before the first answer.
    pub hit_ratio: Option<f64>,
    pub exact: u64,
    pub semantic: u64,
    pub miss: u64,
}

/// A part of the answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Share {
    pub key: String,
    pub answers: u64,
    /// answers / all answers.
    pub share: f64,
}

/// One queue's messages by state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct QueueDepth {
    pub queue: String,
    pub visible: u64,
    pub in_flight: u64,
    pub dead_lettered: u64,
}

/// The operations figures: cache hit ratio, tier mix, cost so far, ingestion queue.
#[utoipa::path(
    get, path = "/v1/ops", tag = "operations",
    responses(
        (status = 200, description = "The figures", body = OpsSummary),
        (status = 503, description = "A dependency is unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn ops(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<OpsSummary>> {
    caller.require(Scope::Admin)?;
    let mut router = state.router();
    let mut documents = state.documents();
    let (summary, listed) = tokio::join!(
        router.get_feedback_summary(FeedbackSummaryRequest {
            tenant: caller.tenant.clone(),
        }),
        documents.list_documents(ListDocumentsRequest {
            tenant: caller.tenant.clone(),
            domain: String::new(),
        }),
    );
    let summary = summary?.into_inner();
    let listed = DocumentList::new(
        listed?
            .into_inner()
            .documents
            .iter()
            .map(DocumentView::from)
            .collect(),
    );
    let count = |key: &str| {
        summary
            .by_cache
            .iter()
            .filter(|b| b.key == key)
            .map(|b| b.answers)
            .sum::<u64>()
    };
    let (exact, semantic) = (count("exact"), count("semantic"));
    let ratio = |part: u64| {
        if summary.answers == 0 {
            0.0
        } else {
            part as f64 / summary.answers as f64
        }
    };
    let mut tiers: Vec<Share> = summary
        .by_tier
        .iter()
        .map(|b| Share {
            key: b.key.clone(),
            answers: b.answers,
            share: ratio(b.answers),
        })
        .collect();
    tiers.sort_by(|a, b| b.answers.cmp(&a.answers).then(a.key.cmp(&b.key)));
    let metrics = rag_telemetry::metrics::render();
    let cost_by_model = cost_by_model(&metrics);
    Ok(Json(OpsSummary {
        answers: summary.answers,
        cache: CacheFigures {
            hit_ratio: (summary.answers > 0).then(|| ratio(exact + semantic)),
            exact,
            semantic,
            miss: summary.answers.saturating_sub(exact + semantic),
        },
        tiers,
        cost_usd: cost_by_model.values().sum(),
        cost_by_model,
        documents: listed.counts,
        queues: queue_depths(&metrics),
    }))
}

/// One sample line of the OpenMetrics text: its name, labels and value.
#[derive(Debug, PartialEq)]
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

/// The samples of an OpenMetrics text (comments and lines it cannot read are skipped).
fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(sample)
}

fn sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                labels(line.get(open + 1..close)?)?,
                &line[close + 1..],
            )
        }
        None => {
            let (name, rest) = line.split_once(' ')?;
            (name, Vec::new(), rest)
        }
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// `a="x",b="y\"z"` → [(a, x), (b, y"z)].
fn labels(text: &str) -> Option<Vec<(&str, String)>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((key.trim(), value));
        rest = after[end + 1..].trim_start_matches(',').trim_start();
    }
    Some(out)
}

fn label<'a>(sample: &'a Sample<'_>, key: &str) -> Option<&'a str> {
    sample
        .labels
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.as_str())
}

fn cost_by_model(metrics: &str) -> BTreeMap<String, f64> {
    let mut cost = BTreeMap::new();
    for s in samples(metrics).filter(|s| s.name == "rag_cost_usd_total") {
        *cost
            .entry(label(&s, "model").unwrap_or_default().to_owned())
            .or_insert(0.0) += s.value;
    }
    cost
}

fn queue_depths(metrics: &str) -> Vec<QueueDepth> {
    let mut queues: BTreeMap<String, QueueDepth> = BTreeMap::new();
    for s in samples(metrics).filter(|s| s.name == "rag_queue_messages") {
        let Some(queue) = label(&s, "queue") else {
            continue;
        };
        let depth = queues
            .entry(queue.to_owned())
            .or_insert_with(|| QueueDepth {
                queue: queue.to_owned(),
                ..QueueDepth::default()
            });
        // A gauge of a count: never negative, and whole.
        let value = s.value.max(0.0).round() as u64;
        match label(&s, "state") {
            Some("visible") => depth.visible = value,
            Some("in_flight") => depth.in_flight = value,
            Some("dead_lettered") => depth.dead_lettered = value,
            _ => {}
        }
    }
    queues.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP rag_cost_usd Estimated model cost in US dollars, from the price table.
# TYPE rag_cost_usd counter
rag_cost_usd_total{model="light-model"} 0.25
rag_cost_usd_total{model="strong \"x\""} 1.5
# TYPE rag_queue_messages gauge
rag_queue_messages{queue="documents",state="visible"} 3
rag_queue_messages{queue="documents",state="in_flight"} 1
rag_queue_messages{queue="chunks",state="dead_lettered"} 2
rag_queue_messages_received_total{queue="documents"} 40
rag_http_in_flight_requests 1
# EOF
"#;

    #[test]
    fn reads_samples_with_and_without_labels() {
        let all: Vec<Sample<'_>> = samples(TEXT).collect();
        assert_eq!(all.len(), 7);
        assert_eq!(
            all[1],
            Sample {
                name: "rag_cost_usd_total",
                labels: vec![("model", "strong \"x\"".to_owned())],
                value: 1.5
            }
        );
        assert_eq!(all[6].name, "rag_http_in_flight_requests");
        assert!(all[6].labels.is_empty());
        assert!(sample("broken{model=\"x\" 1").is_none());
    }

    #[test]
    fn sums_cost_by_model() {
        let cost = cost_by_model(TEXT);
        assert_eq!(cost.len(), 2);
        assert_eq!(cost.get("light-model"), Some(&0.25));
        assert_eq!(cost.get("strong \"x\""), Some(&1.5));
    }

    #[test]
    fn groups_queue_depths_and_ignores_other_queue_metrics() {
        assert_eq!(
            queue_depths(TEXT),
            vec![
                QueueDepth {
                    queue: "chunks".into(),
                    visible: 0,
                    in_flight: 0,
                    dead_lettered: 2
                },
                QueueDepth {
                    queue: "documents".into(),
                    visible: 3,
                    in_flight: 1,
                    dead_lettered: 0
                },
            ]
        );
    }
}
