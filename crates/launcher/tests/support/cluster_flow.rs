//! The scenario both cluster tests run against a gateway: upload three sample documents,
//! wait until indexed, ask (cited), ask again (a cache hit), delete, and see the document
//! leave the answers and the cache.

use std::time::{Duration, Instant};

use rag_core::DocumentId;

use crate::support::{Client, sample_documents};

/// Runs the scenario; returns the id of the document it deleted.
pub async fn upload_ask_delete(client: &Client, model: &str) -> anyhow::Result<DocumentId> {
    let wanted = [
        "annual-leave-policy.md",
        "incident-response-runbook.md",
        "nda-template-summary.md",
    ];
    let uploads: Vec<_> = sample_documents()
        .into_iter()
        .filter(|(_, name, _)| wanted.contains(&name.as_str()))
        .collect();
    assert_eq!(uploads.len(), wanted.len(), "the sample corpus has changed");
    let started = Instant::now();
    for (domain, name, bytes) in &uploads {
        let (status, body) = client.upload(domain, name, bytes.clone()).await?;
        assert_eq!(status, 202, "{name}: {body}");
    }
    let listed = client
        .wait_indexed(uploads.len(), Duration::from_secs(300))
        .await?;
    eprintln!(
        "{} documents through S3 → SQS → worker → SQS → embedder in {:.2?}",
        listed.len(),
        started.elapsed()
    );

    let answer = client
        .ask("How many vacation days do I get per year?", Some("hr"))
        .await?;
    let leave_id = DocumentId::for_source("default", "hr", "annual-leave-policy.md");
    let leave = leave_id.to_string();
    let cited: Vec<_> = answer["citations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["document_id"].as_str())
        .collect();
    assert!(cited.contains(&leave.as_str()), "{answer}");
    assert_eq!(answer["model"], model, "{answer}");
    let again = client
        .ask("How many vacation days do I get per year?", Some("hr"))
        .await?;
    assert_eq!(again["cache"], "exact", "served from Redis: {again}");

    // Delete: S3 notifies ObjectRemoved through SQS; the document leaves answers and cache.
    let (status, body) = client.delete(&format!("/v1/documents/{leave}")).await?;
    assert!(status == 202 || status == 200, "{status}: {body}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = client.get(&format!("/v1/documents/{leave}")).await?;
        if status == 404 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the delete did not arrive");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = client
        .ask("How many vacation days do I get per year?", Some("hr"))
        .await?;
    assert_ne!(after["cache"], "exact", "{after}");
    assert!(!after.to_string().contains(&leave), "{after}");

    Ok(leave_id)
}
