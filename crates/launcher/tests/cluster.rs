//! The cluster backends end to end: the five services with S3 for uploads, S3's own event
//! notifications delivered through SQS, SQS for the chunks queue (with dead-letter queues
//! by redrive policy), a Qdrant server for the vectors and Redis for the cache — over the
//! real wire protocols: moto (the local AWS emulator that `scripts/with-aws.sh` starts), the
//! Redis of the tests, and for Qdrant, which cannot run here, the in-process stand-in of
//! `rag_standins::qdrant` (Qdrant's gRPC API, not Qdrant). Embeddings stay on the local
//! model. The services share this process; BM25 and the catalog stay on local disk.

#[path = "support/cluster_flow.rs"]
mod cluster_flow;
mod support;

use rag_config::{AwsSettings, ObjectStoreSettings, QueueBackend, Settings, VectorStoreSettings};
use rag_standins::qdrant::StandIn;
use support::{Client, settings, start};

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
    s.object_store = ObjectStoreSettings::S3 {
        bucket: format!("documents-{run}"),
        force_path_style: true,
    };
    s.queues.backend = QueueBackend::Sqs {
        create_missing: true,
    };
    s.queues.documents = format!("documents-{run}");
    s.queues.chunks = format!("chunks-{run}");
    s.queues.wait_ms = 1_000;
    s.cache.backend = support::test_redis_cache(&run);

    rag_backends::provision_aws(&s).await?;
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

    let leave_id = cluster_flow::upload_ask_delete(&client, "extractive-v1").await?;

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
