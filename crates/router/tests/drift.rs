//! Drift measured end to end from the stores it reads: question embeddings recorded in the
//! feedback store (SQLite) and documents' centres of mass in the catalog (SQLite), both
//! written through their real APIs with synthetic embeddings. One domain keeps its topics
//! (no drift may be flagged); the other gets questions and documents on a new topic.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::Duration;

use rag_backends::rag_catalog::{Catalog, NewUpload, VectorProfile, VersionDecision};
use rag_backends::rag_feedback::{AnswerRecord, FeedbackStore};
use rag_config::Settings;
use rag_core::ObjectKey;
use rag_drift::synthetic::{Rng, draw, topics};
use rag_router::drift::{self, Windows};

const TENANT: &str = "default";
const DIM: usize = 384;

async fn index(catalog: &dyn Catalog, domain: &str, name: &str, mean: Vec<f32>) {
    let key = ObjectKey::for_upload(TENANT, domain, name);
    let upload = NewUpload {
        id: key.document_id,
        tenant: TENANT.into(),
        domain: domain.into(),
        title: name.into(),
        object_key: key.to_key(),
        size_bytes: 1,
    };
    let decision = catalog
        .begin_version(upload, &format!("{name}-sha"))
        .await
        .unwrap();
    let VersionDecision::Ingest { version } = decision else {
        panic!("{name} is new");
    };
    let id = key.document_id;
    catalog
        .set_chunking(TENANT, id, version, 4, 1)
        .await
        .unwrap();
    let profile = VectorProfile { count: 4, mean };
    catalog
        .record_batch_profile(TENANT, id, version, 0, &profile)
        .await
        .unwrap();
    let complete = catalog
        .record_batch_indexed(TENANT, id, version, 0, 1)
        .await
        .unwrap();
    assert!(complete);
    catalog.mark_indexed(TENANT, id, version).await.unwrap();
}

async fn ask(feedback: &dyn FeedbackStore, domain: &str, at_ms: i64, embedding: Vec<f32>) {
    let record = AnswerRecord {
        query_id: format!("{domain}-{at_ms}"),
        tenant: TENANT.into(),
        domain: domain.into(),
        tier: "light".into(),
        tier_reasons: Vec::new(),
        route_score: 0.0,
        route_threshold: 3.0,
        features: BTreeMap::new(),
        model: "extractive-v1".into(),
        prompt_version: "extractive".into(),
        cache: "miss".into(),
        cache_key: None,
        grounded: true,
        input_tokens: 0,
        output_tokens: 0,
        cost_usd: 0.0,
        latency_ms: 20,
        created_at_ms: at_ms,
        question_embedding: Some(embedding),
    };
    feedback.record_answer(&record).await.unwrap();
}

#[tokio::test]
async fn a_new_topic_is_flagged_in_its_domain_only() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    let feedback = rag_backends::feedback_store(&settings).unwrap();
    let generation = rag_backends::generation::current(&settings).unwrap();
    let catalog = rag_backends::catalog(&generation.settings).unwrap();
    // Topics 0 and 1 are HR's, 2 and 3 legal's; 4 is new.
    let topics = topics(11, 5, DIM);
    let weights = |of: &[usize]| -> Vec<f64> {
        (0..5)
            .map(|t| if of.contains(&t) { 1.0 } else { 0.0 })
            .collect()
    };
    let (hr, legal, new) = (weights(&[0, 1]), weights(&[2, 3]), weights(&[4]));
    let mut rng = Rng::new(11, 1);

    // Documents indexed before the recent window.
    for (domain, topic) in [("hr", &hr), ("legal", &legal)] {
        let means = draw(&mut rng, &topics, topic, 0.04, 12);
        for (i, mean) in means.into_iter().enumerate() {
            index(catalog.as_ref(), domain, &format!("old-{i}.md"), mean).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = drift::now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // New documents: HR's on its topics, legal's on the new one.
    for (domain, topic) in [("hr", &hr), ("legal", &new)] {
        let means = draw(&mut rng, &topics, topic, 0.04, 8);
        for (i, mean) in means.into_iter().enumerate() {
            index(catalog.as_ref(), domain, &format!("new-{i}.md"), mean).await;
        }
    }

    // Questions: a baseline the day before the cut; HR keeps asking the same, legal moves on.
    let day_ms = 86_400_000;
    for (domain, before, after) in [("hr", &hr, &hr), ("legal", &legal, &new)] {
        let baseline = draw(&mut rng, &topics, before, 0.06, 80);
        for (i, q) in baseline.into_iter().enumerate() {
            ask(feedback.as_ref(), domain, cut - day_ms + i as i64, q).await;
        }
        let recent = draw(&mut rng, &topics, after, 0.06, 60);
        for (i, q) in recent.into_iter().enumerate() {
            ask(feedback.as_ref(), domain, cut + i as i64, q).await;
        }
    }

    let windows = Windows {
        baseline_from_ms: cut - 7 * day_ms,
        recent_from_ms: cut,
        now_ms: drift::now_ms() + 1_000,
    };
    let domains = vec!["hr".to_owned(), "legal".to_owned()];
    let reports = drift::measure(
        feedback.as_ref(),
        catalog.as_ref(),
        TENANT,
        &domains,
        &settings.drift,
        windows,
    )
    .await;
    for report in &reports {
        let q = report.queries.as_ref().unwrap();
        let c = report.corpus.as_ref().unwrap();
        println!(
            "{}: questions {} vs {}: D = {:.3}, p = {:.2e}, drifted = {}; \
             documents {} vs {}: centre moved {:.4}, p = {:.2e}, drifted = {}",
            report.domain,
            q.baseline,
            q.recent,
            q.statistic,
            q.p_value,
            q.drifted,
            c.existing_distance.count,
            c.new_distance.count,
            c.centroid_shift,
            c.ks.as_ref().map_or(1.0, |k| k.p_value),
            c.drifted,
        );
    }
    let (hr, legal) = (&reports[0], &reports[1]);
    assert_eq!((hr.domain.as_str(), legal.domain.as_str()), ("hr", "legal"));
    let hr_questions = hr.queries.as_ref().unwrap();
    assert_eq!((hr_questions.baseline, hr_questions.recent), (80, 60));
    assert!(!hr_questions.drifted, "{hr_questions:?}");
    assert!(!hr.corpus.as_ref().unwrap().drifted);
    assert!(legal.queries.as_ref().unwrap().drifted);
    assert!(legal.corpus.as_ref().unwrap().drifted);

    // The same figures as gauges.
    drift::export(&reports);
    let rendered = rag_telemetry::metrics::render();
    assert!(
        rendered.contains("rag_query_drift_p_value{tenant=\"default\",domain=\"legal\"}"),
        "{rendered}"
    );
    assert!(rendered.contains("rag_corpus_centroid_shift{tenant=\"default\",domain=\"hr\"}"));
}
