//! The five services as five processes with the cluster backends, started by
//! `scripts/cluster.sh test` (`make cluster-test`): S3 and SQS on moto, the vectors in the
//! Qdrant stand-in process, Redis, the local model. This test only talks HTTP to the
//! gateway at `RAG_CLUSTER_URL`; it is ignored unless run by that script.

#[path = "support/cluster_flow.rs"]
mod cluster_flow;
mod support;

#[tokio::test]
#[ignore = "needs the processes of scripts/cluster.sh (make cluster-test)"]
async fn five_processes_ingest_answer_and_delete() -> anyhow::Result<()> {
    let base = std::env::var("RAG_CLUSTER_URL")
        .map_err(|_| anyhow::anyhow!("RAG_CLUSTER_URL is not set: run make cluster-test"))?;
    let client = support::Client {
        base,
        http: reqwest::Client::new(),
    };
    // Light-tier answers come from Nova Lite on the Bedrock stand-in (scripts/cluster.sh).
    cluster_flow::upload_ask_delete(&client, "amazon.nova-lite-v1:0").await?;
    Ok(())
}
