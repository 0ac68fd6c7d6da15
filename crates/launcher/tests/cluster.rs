//! The cluster backends end to end: the five services with S3 for uploads, S3's own event
//! notifications delivered through SQS, SQS for the chunks queue (with dead-letter queues
//! by redrive policy), a Qdrant server for the vectors and Redis for the cache — over the
//! real wire protocols: moto (the local AWS emulator that `scripts/with-aws.sh` starts), the
//! Redis of the tests, and for Qdrant, which cannot run here, the in-process stand-in of
//! `rag_standins::qdrant` (Qdrant's gRPC API, not Qdrant). Embeddings stay on the local
//! model. The services share this process; BM25 and the catalog stay on local disk.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use rag_backends::rag_object_store::S3ObjectStore;
use rag_backends::rag_queue::{QueueOptions, SqsQueue};
use rag_config::{
    AwsSettings, CacheBackend, ObjectStoreSettings, QueueBackend, Settings, VectorStoreSettings,
};
use rag_core::DocumentId;
use rag_standins::qdrant::StandIn;
use support::{Client, sample_documents, settings, start};

/// A fresh bucket and queues on the emulator, the bucket notifying the documents queue, as
/// Terraform sets them up in AWS.
async fn cluster_settings(
    dir: &std::path::Path,
    aws: AwsSettings,
    qdrant: &StandIn,
) -> anyhow::Result<Settings> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut s = settings(dir);
    s.aws = aws;
    s.vector_store = VectorStoreSettings::Qdrant {
        url: qdrant.url(),
        collection: format!("chunks-{run}"),
        api_key_env: None,
    };
    let bucket = format!("documents-{run}");
    s.object_store = ObjectStoreSettings::S3 {
        bucket: bucket.clone(),
        force_path_style: true,
    };
    s.queues.backend = QueueBackend::Sqs {
        create_missing: true,
    };
    s.queues.documents = format!("documents-{run}");
    s.queues.chunks = format!("chunks-{run}");
    s.queues.wait_ms = 1_000;
    s.cache.backend = CacheBackend::Redis {
        url: std::env::var("RAG_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        pool_size: 2,
        command_timeout_ms: 500,
        key_prefix: format!("rag-test-{run}:"),
    };

    let config = rag_aws::AwsConfig::new(&s.aws);
    let documents = SqsQueue::new(
        config.clone(),
        &s.queues.documents,
        QueueOptions::new(
            Duration::from_secs(s.queues.visibility_timeout_secs),
            s.queues.max_receives,
        ),
        true,
    );
    let store = S3ObjectStore::new(config, &bucket, true);
    let s3 = store.client().await;
    s3.create_bucket().bucket(&bucket).send().await?;
    s3.put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(documents.arn().await?)
                        .events(Event::S3ObjectCreated)
                        .events(Event::S3ObjectRemoved)
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;
    Ok(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_flow_through_s3_and_sqs_and_answers_cite_them() -> anyhow::Result<()> {
    let aws = rag_aws::testing::emulator_settings().map_err(anyhow::Error::msg)?;
    let dir = tempfile::tempdir()?;
    let qdrant = StandIn::start().await?;
    let settings = cluster_settings(dir.path(), aws, &qdrant).await?;
    let documents_queue = rag_backends::documents_queue(&settings)?;
    let system = start(settings.clone()).await?;
    let client = Client::new(&system);

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

    // The vectors are in Qdrant: the two documents left, none of the deleted one.
    let VectorStoreSettings::Qdrant { collection, .. } = &settings.vector_store else {
        unreachable!("set above");
    };
    let points = qdrant.inspect(|state| state.points(collection));
    assert!(points > 0, "no vectors reached the Qdrant stand-in");
    let vectors = rag_backends::vector_store(&settings, 384)?;
    let filter = rag_core::SearchFilter::new("default", None);
    assert_eq!(vectors.count(&filter).await?, points as u64);
    let left = vectors
        .get_chunks("default", leave_id, 1, &[0, 1, 2, 3])
        .await?;
    assert!(
        left.is_empty(),
        "the deleted document's vectors are still there"
    );

    // Everything was taken off the queues; nothing was dead-lettered.
    let stats = documents_queue.stats().await?;
    assert_eq!((stats.visible, stats.dead_lettered), (0, 0), "{stats:?}");
    system.shutdown().await;
    Ok(())
}
