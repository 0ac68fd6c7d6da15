//! API keys and tenancy through the whole system: the key names the tenant, and no tenant
//! reads, is answered from, rates, or deletes another's documents; scopes, domains and rates
//! limit a key; a key removed from the keys file stops working without a restart.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use rag_config::AuthMode;
use rag_gateway::auth::{KeyEntry, KeysFile, Scope, generate_key};
use serde_json::{Value, json};
use support::Client;

const QUESTION: &str = "What is the launch code of the Zorblat reactor?";
const SECRET_DOCUMENT: &str = "# Zorblat reactor\n\nThe launch code of the Zorblat reactor is \
    7741-ALPHA. Only the reactor crew may know the launch code of the Zorblat reactor.\n";

fn key(id: &str, tenant: &str, scopes: &[Scope], domains: &[&str]) -> (String, KeyEntry) {
    generate_key(
        id,
        tenant,
        scopes.to_vec(),
        domains.iter().map(|d| (*d).to_owned()).collect(),
    )
    .expect("randomness")
}

fn write_keys(path: &Path, keys: &[&KeyEntry]) {
    let file = KeysFile {
        keys: keys.iter().map(|k| (*k).clone()).collect(),
    };
    // Through a rename, as `ragctl keys` does: the gateway never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, toml::to_string(&file).expect("TOML")).expect("keys file");
    std::fs::rename(&tmp, path).expect("keys file");
}

async fn status_of(client: &Client, method: &str, path: &str) -> u16 {
    let url = format!("{}{path}", client.base);
    let request = match method {
        "DELETE" => client.http.delete(url),
        _ => client.http.get(url),
    };
    request.send().await.expect("a response").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_kept_apart_by_their_keys() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keys_file = dir.path().join("api-keys.toml");
    let (acme_secret, acme) = key("acme-app", "acme", &[Scope::Query, Scope::Upload], &[]);
    let (globex_secret, globex) = key("globex-admin", "globex", &[Scope::Admin], &[]);
    let (reader_secret, reader) = key("acme-hr-reader", "acme", &[Scope::Query], &["hr"]);
    let (slow_secret, mut slow) = key("acme-slow", "acme", &[Scope::Query], &[]);
    slow.rate_per_second = Some(1);
    slow.burst = Some(2);
    write_keys(&keys_file, &[&acme, &globex, &reader, &slow]);

    let mut settings = support::settings(&dir.path().join("data"));
    settings.gateway.auth.mode = AuthMode::ApiKeys;
    settings.gateway.auth.keys_file = Some(keys_file.clone());
    settings.gateway.auth.reload_interval_ms = 100;
    let system = support::start(settings).await?;
    let anonymous = Client::new(&system);
    let acme_client = Client::with_key(&system, &acme_secret);
    let globex_client = Client::with_key(&system, &globex_secret);
    let reader_client = Client::with_key(&system, &reader_secret);

    // No key, or a wrong one: 401 with a challenge; probes stay open.
    let response = anonymous
        .http
        .post(format!("{}/v1/query", anonymous.base))
        .json(&json!({ "question": QUESTION }))
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let wrong = Client::with_key(&system, "rag_not-a-key");
    assert_eq!(status_of(&wrong, "GET", "/v1/documents").await, 401);
    assert_eq!(status_of(&anonymous, "GET", "/health/live").await, 200);

    // acme uploads a document and it is indexed.
    let (status, uploaded) = acme_client
        .upload(
            "engineering",
            "zorblat.md",
            SECRET_DOCUMENT.as_bytes().to_vec(),
        )
        .await?;
    assert_eq!(status, 202, "{uploaded}");
    let document_id = uploaded["id"].as_str().expect("an id").to_owned();
    let documents = acme_client.wait_indexed(1, Duration::from_secs(60)).await?;
    assert_eq!(documents.len(), 1);

    // acme is answered from it, the second time from the cache.
    let answer = acme_client.ask(QUESTION, None).await?;
    let cites = |answer: &Value| {
        answer["citations"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["document_id"] == document_id.as_str()))
    };
    assert!(cites(&answer), "{answer}");
    assert!(
        answer["answer"].as_str().unwrap_or("").contains("7741"),
        "{answer}"
    );
    let again = acme_client.ask(QUESTION, None).await?;
    assert_eq!(again["cache"], "exact", "{again}");

    // globex, even as an admin, sees none of it: not in search, not from the cache.
    let theirs = globex_client.ask(QUESTION, None).await?;
    assert!(!cites(&theirs), "{theirs}");
    assert_ne!(theirs["cache"], "exact", "{theirs}");
    assert!(
        !theirs["answer"].as_str().unwrap_or("").contains("7741"),
        "{theirs}"
    );
    let (_, listed) = globex_client.get("/v1/documents").await?;
    assert_eq!(listed["documents"], json!([]), "{listed}");
    let path = format!("/v1/documents/{document_id}");
    assert_eq!(status_of(&globex_client, "GET", &path).await, 404);
    assert_eq!(status_of(&globex_client, "DELETE", &path).await, 404);
    let (status, _) = globex_client
        .post_json(
            "/v1/feedback",
            &json!({ "query_id": answer["query_id"], "rating": "down" }),
        )
        .await?;
    assert_eq!(status, 404, "another tenant's answer cannot be rated");
    let (_, ops) = globex_client.get("/v1/ops").await?;
    assert_eq!(ops["documents"], json!({}), "{ops}");
    // ... and acme's document is still there and still answers.
    let (status, document) = acme_client.get(&path).await?;
    assert_eq!(
        (status, document["status"].clone()),
        (200, json!("indexed"))
    );

    // Scopes: a query-only key cannot upload or see the operations; domains: the hr reader
    // cannot ask engineering, and asking without a domain asks hr.
    let (status, body) = reader_client
        .upload("hr", "x.md", b"# x\n\ntext".to_vec())
        .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(status_of(&reader_client, "GET", "/v1/ops").await, 403);
    assert_eq!(status_of(&acme_client, "GET", "/v1/ops").await, 403);
    let (status, body) = reader_client
        .post_json(
            "/v1/query",
            &json!({ "question": QUESTION, "domain": "engineering" }),
        )
        .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["field"], "domain", "{body}");
    let scoped = reader_client.ask(QUESTION, None).await?;
    assert!(!cites(&scoped), "hr only: {scoped}");
    let (_, domains) = reader_client.get("/v1/domains").await?;
    assert_eq!(
        domains["domains"].as_array().map(Vec::len),
        Some(1),
        "{domains}"
    );

    // Rate: burst 2 at 1/s, then 429 with Retry-After.
    let slow_client = Client::with_key(&system, &slow_secret);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let response = slow_client
            .http
            .get(format!("{}/v1/domains", slow_client.base))
            .send()
            .await?;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
    }
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("1")
    );

    // Revoking acme's key (rewriting the file) locks it out within the reload interval.
    write_keys(&keys_file, &[&globex, &reader, &slow]);
    let started = Instant::now();
    while status_of(&acme_client, "GET", "/v1/documents").await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the revoked key still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The document is untouched by all of this; acme's new key may delete it.
    let (acme_secret, acme) = key("acme-app-2", "acme", &[Scope::Upload], &[]);
    write_keys(&keys_file, &[&acme, &globex, &reader, &slow]);
    let acme_client = Client::with_key(&system, &acme_secret);
    let started = Instant::now();
    loop {
        let (status, _) = acme_client.delete(&path).await?;
        if status == 202 {
            break;
        }
        assert_eq!(status, 401);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "new key unused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    system.shutdown().await;
    Ok(())
}
