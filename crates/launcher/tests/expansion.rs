//! Adjacent-chunk expansion end to end: a document whose answer sits in the chunk after the
//! one that best matches the question. With expansion on (per domain, or per request) the
//! retriever returns that next chunk beside the hit and the router gives it to the writer as
//! context; with it off, the writer never sees it. The writer is the OpenAI-compatible
//! stand-in, which quotes the first sentence of the first two passages it is given, so its
//! citations show exactly which chunks were in the context.

mod support;

use std::time::Duration;

use rag_config::GeneratorSettings;
use rag_proto::SearchRequest;
use rag_proto::retriever_service_client::RetrieverServiceClient;
use serde_json::{Value, json};
use support::{Client, settings, start};

/// Three paragraphs that do not fit two to a chunk (`chunk_size` 40 tokens): three chunks.
const NOTICE: &str = "\
Resignation notice: to hand in your resignation notice, write a signed letter of \
resignation to your line manager and copy the People Operations team on the same day.

The notice period then lasts exactly thirty calendar days, counted from the first day of \
the following month, and holiday cannot shorten it.

Company laptops, badges and parking cards are returned to the front desk at reception \
before the last working day ends.
";

const QUESTION: &str = "How do I hand in my resignation notice?";

fn cited_chunks(answer: &Value) -> Vec<u64> {
    answer["citations"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["chunk_index"].as_u64()).collect())
        .unwrap_or_default()
}

async fn ask(client: &Client, neighbours: Option<u32>) -> anyhow::Result<Value> {
    let mut body = json!({"question": QUESTION, "domain": "hr", "top_k": 1});
    if let Some(n) = neighbours {
        body["neighbours"] = n.into();
    }
    let (status, answer) = client.post_json("/v1/query", &body).await?;
    anyhow::ensure!(status == 200, "query failed with {status}: {answer}");
    Ok(answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chunk_after_the_best_hit_is_context_only_with_expansion() -> anyhow::Result<()> {
    let openai = rag_standins::openai::StandIn::start().await?;
    let dir = tempfile::tempdir()?;
    let mut s = settings(dir.path());
    s.ingest.chunk_size = 40;
    s.ingest.chunk_overlap = 0;
    s.cache.enabled = false;
    s.generation.light = GeneratorSettings::Openai {
        base_url: openai.url(),
        model: "local-llm".into(),
        api_key_env: None,
        max_attempts: 1,
        timeout_ms: 10_000,
    };
    s.generation.strong = s.generation.light.clone();
    let hr = s
        .domains
        .iter_mut()
        .find(|d| d.name == "hr")
        .ok_or_else(|| anyhow::anyhow!("no hr domain in the default settings"))?;
    hr.neighbours = Some(1);
    let system = start(s).await?;
    let client = Client::new(&system);
    let (status, body) = client
        .upload("hr", "resigning.txt", NOTICE.as_bytes().to_vec())
        .await?;
    assert_eq!(status, 202, "{body}");
    let documents = client.wait_indexed(1, Duration::from_secs(300)).await?;
    assert_eq!(documents[0]["chunk_count"], 3, "{documents:?}");

    // The retriever: the best hit is chunk 0; its neighbour comes beside it only when asked.
    let mut retriever = RetrieverServiceClient::new(rag_grpc::lazy_channel(
        &system.settings.router.retriever_url,
        Duration::from_secs(30),
    )?);
    let search = |neighbours| SearchRequest {
        query: QUESTION.into(),
        tenant: system.settings.default_tenant.clone(),
        domain: "hr".into(),
        top_k: 1,
        neighbours,
        ..SearchRequest::default()
    };
    let expanded = retriever.search(search(Some(1))).await?.into_inner().hits;
    assert_eq!(expanded.len(), 1);
    let hit = &expanded[0];
    assert_eq!(hit.chunk.as_ref().map(|c| c.chunk_index), Some(0));
    assert!(hit.before.is_empty());
    let after: Vec<u32> = hit.after.iter().map(|c| c.chunk_index).collect();
    assert_eq!(after, vec![1]);
    assert!(hit.after[0].text.contains("thirty calendar days"));
    for off in [Some(0), None] {
        let plain = retriever.search(search(off)).await?.into_inner().hits;
        assert_eq!(plain.len(), 1);
        assert!(plain[0].before.is_empty() && plain[0].after.is_empty());
    }
    // More than the configured bound is refused, naming the field.
    let refused = retriever.search(search(Some(4))).await;
    assert!(
        // 3: INVALID_ARGUMENT.
        matches!(&refused, Err(status) if i32::from(status.code()) == 3 && status.message().contains("neighbours")),
        "{refused:?}"
    );

    // The query path: on by the domain's setting, so the writer reads chunk 1 and cites it.
    let on = ask(&client, None).await?;
    assert_eq!(cited_chunks(&on), vec![0, 1], "{on}");
    assert!(
        on["answer"]
            .as_str()
            .is_some_and(|a| a.contains("thirty calendar days")),
        "{on}"
    );
    // Off by the request: the writer is given the hit alone.
    let off = ask(&client, Some(0)).await?;
    assert_eq!(cited_chunks(&off), vec![0], "{off}");
    assert!(
        off["answer"]
            .as_str()
            .is_some_and(|a| !a.contains("thirty")),
        "{off}"
    );
    // A bound the request may not exceed, as a 422 naming the field.
    let (status, error) = client
        .post_json(
            "/v1/query",
            &json!({"question": QUESTION, "domain": "hr", "neighbours": 9}),
        )
        .await?;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "neighbours", "{error}");

    system.shutdown().await;
    Ok(())
}
