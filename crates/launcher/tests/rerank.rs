//! Reranking end to end, with `reranker.kind = "bedrock"` pointed at the Bedrock stand-in
//! (`rag_standins::bedrock`; Bedrock cannot be reached here). The stand-in scores a passage
//! by the share of the query's words it contains (`rerank_score`), so the order a reranked
//! search must return is known, and it differs from the fused order: the best fused chunk
//! lacks most of the query's words, a poor one has them all.
//!
//! Checked: a reranked search returns the hits in the stand-in's order with `rerank_score`
//! set, after one rerank call with the fused candidates; a search without rerank never calls
//! it; the domain's setting turns it on for the query path, a request's own `rerank` wins,
//! and the resolved value is part of the cache scope; without a reranker, asking for one is
//! the clear error of the one HTTP map.

mod support;

use std::time::Duration;

use rag_config::{AwsCredentials, RerankerSettings};
use rag_core::ErrorCode;
use rag_proto::SearchRequest;
use rag_proto::retriever_service_client::RetrieverServiceClient;
use rag_standins::bedrock::{COHERE_RERANK, StandIn, rerank_score};
use serde_json::{Value, json};
use support::{Client, settings, start};

const QUESTION: &str = "How long is parental leave?";

/// (file, text): one chunk each. `leave.txt` is what the question means but has few of its
/// words; `lobby.txt` has every word of the question and means nothing of it.
const DOCUMENTS: [(&str, &str); 3] = [
    (
        "leave.txt",
        "Parental leave: new parents get sixteen weeks off, fully paid, to be taken within a year of the birth.",
    ),
    (
        "lobby.txt",
        "Lobby notice: how long the queue is at the parking gate depends on the hour; leave bicycles outside, parental permission is needed for visits by children.",
    ),
    (
        "laptops.txt",
        "Laptops are returned to the front desk at reception before the last working day ends.",
    ),
];

/// What the retriever sends the reranker for a chunk: its embedding text.
fn embedding_text(chunk: &rag_proto::Chunk) -> String {
    format!(
        "{}{}",
        rag_core::chunk::embedding_prefix(&chunk.title, &chunk.section),
        chunk.text
    )
}

fn file_of(hit: &rag_proto::ScoredChunk) -> &str {
    hit.chunk
        .as_ref()
        .and_then(|c| c.object_key.rsplit('/').next())
        .unwrap_or_default()
}

async fn ask(client: &Client, rerank: Option<bool>) -> anyhow::Result<Value> {
    let mut body = json!({"question": QUESTION, "domain": "hr", "top_k": 2});
    if let Some(rerank) = rerank {
        body["rerank"] = rerank.into();
    }
    let (status, answer) = client.post_json("/v1/query", &body).await?;
    anyhow::ensure!(status == 200, "query failed with {status}: {answer}");
    Ok(answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reranked_searches_follow_the_reranker_and_only_when_asked() -> anyhow::Result<()> {
    let bedrock = StandIn::start().await?;
    let dir = tempfile::tempdir()?;
    let mut s = settings(dir.path());
    s.aws.endpoint_url = Some(bedrock.url());
    s.aws.credentials = AwsCredentials::Emulator;
    s.reranker = RerankerSettings::Bedrock {
        model_id: COHERE_RERANK.into(),
        max_attempts: 1,
        endpoint_url: None,
    };
    let hr = s
        .domains
        .iter_mut()
        .find(|d| d.name == "hr")
        .ok_or_else(|| anyhow::anyhow!("no hr domain in the default settings"))?;
    hr.rerank = Some(true);
    let system = start(s).await?;
    let client = Client::new(&system);
    for (file, text) in DOCUMENTS {
        let (status, body) = client.upload("hr", file, text.as_bytes().to_vec()).await?;
        assert_eq!(status, 202, "{body}");
    }
    client
        .wait_indexed(DOCUMENTS.len(), Duration::from_secs(300))
        .await?;

    let mut retriever = RetrieverServiceClient::new(rag_grpc::lazy_channel(
        &system.settings.router.retriever_url,
        Duration::from_secs(30),
    )?);
    let search = |rerank| SearchRequest {
        query: QUESTION.into(),
        tenant: system.settings.default_tenant.clone(),
        domain: "hr".into(),
        top_k: 2,
        rerank,
        ..SearchRequest::default()
    };

    // Without rerank (the retriever's default: the domain's setting is the router's to
    // apply): the fused order, no rerank scores, no call.
    let plain = retriever.search(search(None)).await?.into_inner().hits;
    assert_eq!(file_of(&plain[0]), "leave.txt", "{plain:?}");
    assert!(plain.iter().all(|h| h.rerank_score.is_none()), "{plain:?}");
    assert!(bedrock.rerank_requests().is_empty());

    // Reranked: the stand-in's order, its scores, the fused score kept.
    let reranked = retriever
        .search(search(Some(true)))
        .await?
        .into_inner()
        .hits;
    assert_eq!(reranked.len(), 2, "{reranked:?}");
    assert_eq!(file_of(&reranked[0]), "lobby.txt", "{reranked:?}");
    for hit in &reranked {
        let chunk = hit
            .chunk
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no chunk"))?;
        assert_eq!(
            hit.rerank_score,
            Some(rerank_score(QUESTION, &embedding_text(chunk))),
            "{hit:?}"
        );
        assert!(hit.score > 0.0);
    }
    assert!(reranked[0].rerank_score >= reranked[1].rerank_score);
    // One call, with every fused candidate (3 < retriever.rerank_candidates), as Cohere's body.
    let requests = bedrock.rerank_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (model, body) = &requests[0];
    assert_eq!(model, COHERE_RERANK);
    assert_eq!(body["query"], QUESTION);
    assert_eq!(
        body["documents"].as_array().map(Vec::len),
        Some(3),
        "{body}"
    );
    assert_eq!(
        (body["top_n"].clone(), body["api_version"].clone()),
        (json!(3), json!(2))
    );

    // The query path: off by the request, so no call...
    let off = ask(&client, Some(false)).await?;
    assert_eq!(off["cache"], "miss", "{off}");
    assert_eq!(bedrock.rerank_requests().len(), 1);
    // ... on by the domain's setting: a call, and not the answer cached for "off".
    let on = ask(&client, None).await?;
    assert_eq!(on["cache"], "miss", "{on}");
    assert_eq!(bedrock.rerank_requests().len(), 2);
    // Asked for explicitly, it resolves to the same scope: the cached answer, no call.
    let again = ask(&client, Some(true)).await?;
    assert_eq!(again["cache"], "exact", "{again}");
    assert_eq!(bedrock.rerank_requests().len(), 2);
    system.shutdown().await;

    // No reranker configured: asking for a rerank is refused, naming the setting.
    let dir = tempfile::tempdir()?;
    let system = start(settings(dir.path())).await?;
    let client = Client::new(&system);
    let (status, error) = client
        .post_json(
            "/v1/query",
            &json!({"question": QUESTION, "domain": "hr", "rerank": true}),
        )
        .await?;
    assert_eq!(
        status,
        ErrorCode::FailedPrecondition.http_status().as_u16(),
        "{error}"
    );
    assert_eq!(error["error"]["code"], "failed_precondition", "{error}");
    assert_eq!(error["error"]["field"], "rerank", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reranker.kind")),
        "{error}"
    );
    // Without asking, the same question is answered.
    let (status, answer) = client
        .post_json("/v1/query", &json!({"question": QUESTION, "domain": "hr"}))
        .await?;
    assert_eq!(status, 200, "{answer}");
    system.shutdown().await;
    Ok(())
}
