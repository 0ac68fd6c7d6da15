//! The whole system on one machine: five services on ephemeral loopback ports, embedded
//! backends in a temporary directory, the real embedding model. Upload the sample corpus
//! through the gateway, ask the questions the corpus answers, delete, restart.

mod support;

use std::time::{Duration, Instant};

use rag_core::DocumentId;
use serde_json::{Value, json};
use support::{Client, questions, sample_documents, settings, start};

fn citation_ids(answer: &Value) -> Vec<String> {
    answer["citations"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c["document_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn expected_id(domain: &str, file: &str) -> String {
    DocumentId::for_source("default", domain, file).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_ask_delete_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let system = start(settings(dir.path())).await?;
    let client = Client::new(&system);

    // Upload the corpus through the HTTP API.
    let documents = sample_documents();
    let started = Instant::now();
    for (domain, name, bytes) in &documents {
        let (status, body) = client.upload(domain, name, bytes.clone()).await?;
        assert_eq!(status, 202, "{name}: {body}");
        assert_eq!(body["id"], expected_id(domain, name), "{body}");
        assert!(
            matches!(
                body["status"].as_str(),
                Some("queued" | "processing" | "indexed")
            ),
            "{body}"
        );
    }
    let listed = client
        .wait_indexed(documents.len(), Duration::from_secs(300))
        .await?;
    eprintln!(
        "ingested {} documents in {:.2?}",
        documents.len(),
        started.elapsed()
    );
    assert_eq!(listed.len(), documents.len());
    assert!(
        listed
            .iter()
            .all(|d| d["version"] == 1 && d["chunk_count"].as_u64() > Some(0))
    );

    // Every answerable question cites its document and contains its answer.
    let mut wrong = Vec::new();
    let mut answerable = 0;
    for q in questions() {
        let answer = client.ask(&q.question, q.domain.as_deref()).await?;
        let Some(document) = &q.document else {
            if answer["grounded"] != false || !citation_ids(&answer).is_empty() {
                wrong.push(format!(
                    "{}: expected \"I don't know\", got {}",
                    q.id, answer["answer"]
                ));
            }
            continue;
        };
        answerable += 1;
        let domain = q.domain.as_deref().unwrap_or("general");
        let cited = citation_ids(&answer).contains(&expected_id(domain, document));
        let text = answer["answer"].as_str().unwrap_or_default().to_lowercase();
        let contains = q
            .answer_contains
            .iter()
            .all(|s| text.contains(&s.to_lowercase()));
        if !cited || !contains {
            wrong.push(format!(
                "{}: cited={cited} contains={contains}: {}",
                q.id, answer["answer"]
            ));
        }
        assert_eq!(answer["model"], "extractive-v1");
        assert!(answer["query_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
    eprintln!(
        "{} of {} questions wrong:\n{}",
        wrong.len(),
        answerable + 6,
        wrong.join("\n")
    );
    // The offline extractive answerer gets a few paraphrased or near-miss questions wrong
    // (measured: 4 of 30); a regression in retrieval or extraction shows up as many more.
    assert!(
        wrong.len() <= 5,
        "too many wrong answers:\n{}",
        wrong.join("\n")
    );

    // The same question again is an exact cache hit with the same answer.
    let first = client
        .ask("How many vacation days do I get per year?", Some("hr"))
        .await?;
    let again = client
        .ask("how many vacation days do I get per year", Some("hr"))
        .await?;
    assert_eq!(again["cache"], "exact");
    assert_eq!(again["answer"], first["answer"]);

    // Delete the annual leave policy: gone from status, answers and the cache.
    let leave = expected_id("hr", "annual-leave-policy.md");
    let (status, _) = client.delete(&format!("/v1/documents/{leave}")).await?;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(&format!("/v1/documents/{leave}")).await?.0 != 404 {
        assert!(
            Instant::now() < deadline,
            "the document was not deleted in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = client
        .ask("How many vacation days do I get per year?", Some("hr"))
        .await?;
    assert_ne!(
        after["cache"], "exact",
        "a cached answer outlived its document"
    );
    assert!(
        !citation_ids(&after).contains(&leave),
        "deleted document still cited: {after}"
    );
    let (status, _) = client.delete(&format!("/v1/documents/{leave}")).await?;
    assert_eq!(status, 404);

    // Restart on the same data: nothing lost, the deletion holds.
    system.shutdown().await;
    let system = start(settings(dir.path())).await?;
    let client = Client::new(&system);
    let listed = client
        .wait_indexed(documents.len() - 1, Duration::from_secs(60))
        .await?;
    assert_eq!(listed.len(), documents.len() - 1);
    let answer = client
        .ask(
            "What is the liability cap in our vendor contracts?",
            Some("legal"),
        )
        .await?;
    assert!(
        citation_ids(&answer).contains(&expected_id("legal", "vendor-contract-standard-terms.txt")),
        "{answer}"
    );
    let after = client
        .ask("How many vacation days do I get per year?", Some("hr"))
        .await?;
    assert!(!citation_ids(&after).contains(&leave));

    // Re-uploading an unchanged document does no work: same version.
    let (domain, name, bytes) = &documents[0];
    let (status, _) = client.upload(domain, name, bytes.clone()).await?;
    assert_eq!(status, 202);
    let listed = client
        .wait_indexed(documents.len() - 1, Duration::from_secs(30))
        .await?;
    let id = expected_id(domain, name);
    let doc = listed
        .iter()
        .find(|d| d["id"] == id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(doc["version"], 1, "{doc}");

    // A changed document becomes version 2, and answers follow it: the old text is gone.
    let (domain, name, bytes) = documents
        .iter()
        .find(|(_, name, _)| name == "parental-leave-policy.txt")
        .cloned()
        .unwrap_or_default();
    let changed = String::from_utf8(bytes)?.replace("6 weeks", "9 weeks");
    assert!(changed.contains("9 weeks"));
    let (status, _) = client.upload(&domain, &name, changed.into_bytes()).await?;
    assert_eq!(status, 202);
    let id = expected_id(&domain, &name);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, doc) = client.get(&format!("/v1/documents/{id}")).await?;
        if doc["version"] == 2 && doc["status"] == "indexed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "version 2 was not indexed in time: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = client
        .ask(
            "How much paid leave does the secondary caregiver get after a baby is born?",
            Some("hr"),
        )
        .await?;
    let text = answer["answer"].as_str().unwrap_or_default();
    assert!(
        text.contains("9 weeks") && !text.contains("6 weeks"),
        "{answer}"
    );
    system.shutdown().await;
    Ok(())
}

/// PDF and DOCX go through the whole system: answers cite the PDF's page, and a damaged
/// PDF is marked failed with its reason while the others are indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pdf_and_docx_are_searchable_and_a_damaged_pdf_fails() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let system = start(settings(dir.path())).await?;
    let client = Client::new(&system);
    let fixtures = support::repo_root().join("crates/ingest-worker/tests/fixtures");
    for name in ["handbook.pdf", "security-policy.docx", "corrupt.pdf"] {
        let (status, body) = client
            .upload("hr", name, std::fs::read(fixtures.join(name))?)
            .await?;
        assert_eq!(status, 202, "{name}: {body}");
    }
    let status_of = |name: &str| format!("/v1/documents/{}", expected_id("hr", name));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut settled = Vec::new();
    for name in ["handbook.pdf", "security-policy.docx", "corrupt.pdf"] {
        loop {
            let (_, doc) = client.get(&status_of(name)).await?;
            if matches!(doc["status"].as_str(), Some("indexed" | "failed")) {
                settled.push(doc);
                break;
            }
            assert!(Instant::now() < deadline, "{name} not settled: {doc}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(settled[0]["status"], "indexed", "{}", settled[0]);
    assert_eq!(settled[1]["status"], "indexed", "{}", settled[1]);
    assert_eq!(settled[2]["status"], "failed", "{}", settled[2]);
    let reason = settled[2]["error"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("the PDF file is damaged or invalid"),
        "{}",
        settled[2]
    );

    let answer = client
        .ask("By when must carried-over leave days be taken?", Some("hr"))
        .await?;
    let handbook = expected_id("hr", "handbook.pdf");
    let cited_pages: Vec<&Value> = answer["citations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["document_id"] == handbook.as_str())
        .map(|c| &c["page"])
        .collect();
    assert!(!cited_pages.is_empty(), "{answer}");
    assert!(cited_pages.iter().all(|p| p.as_u64().is_some()), "{answer}");
    system.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_clear_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let system = start(settings(dir.path())).await?;
    let client = Client::new(&system);

    let (status, body) = client.post_json("/v1/query", &json!({})).await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "question", "{body}");
    let (status, body) = client
        .post_json("/v1/query", &json!({ "question": 42 }))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("question")),
        "{body}"
    );
    let (status, body) = client
        .post_json("/v1/query", &json!({ "question": "   " }))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("question")),
        "{body}"
    );
    let (status, body) = client
        .post_json("/v1/query", &json!({ "question": "hi", "domain": "nope" }))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("domain")),
        "{body}"
    );
    let (status, body) = client
        .post_json("/v1/query", &json!({ "question": "hi", "top_k": 100000 }))
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("top_k")),
        "{body}"
    );
    let response = client
        .http
        .post(format!("{}/v1/query", client.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(response.status(), 422);
    let response = client
        .http
        .post(format!("{}/v1/query", client.base))
        .body("question=hi")
        .send()
        .await?;
    assert_eq!(response.status(), 415);
    let (status, _) = client
        .post_json("/v1/query", &json!({ "question": "x".repeat(100_000) }))
        .await?;
    assert_eq!(status, 413);

    let (status, body) = client
        .upload("hr", "scan.pdf", b"\x89PNG\r\n\x1a\n binary".to_vec())
        .await?;
    assert_eq!(status, 415, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unsupported file type: PNG image")),
        "{body}"
    );
    let (status, body) = client
        .upload("hr", "big.txt", vec![b'a'; 300 * 1024])
        .await?;
    assert_eq!(status, 413, "{body}");
    let (status, body) = client
        .upload("Not A Domain", "a.txt", b"hello".to_vec())
        .await?;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("domain")),
        "{body}"
    );
    let (status, body) = client.upload("hr", "empty.txt", Vec::new()).await?;
    assert_eq!(status, 422, "{body}");

    let (status, _) = client.get("/v1/documents/not-a-uuid").await?;
    assert_eq!(status, 422);
    let (status, _) = client
        .get(&format!(
            "/v1/documents/{}",
            expected_id("hr", "missing.md")
        ))
        .await?;
    assert_eq!(status, 404);
    let (status, body) = client.get("/v1/domains").await?;
    assert_eq!(status, 200);
    assert!(
        body["domains"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["name"] == "legal"))
    );
    let (status, body) = client.get("/health/ready").await?;
    assert_eq!((status, &body["status"]), (200, &json!("ready")));

    // With nothing indexed, the system says it does not know and cites nothing.
    let answer = client.ask("What is the notice period?", None).await?;
    assert_eq!(answer["grounded"], false);
    assert!(citation_ids(&answer).is_empty());
    system.shutdown().await;
    Ok(())
}
