//! Helpers for end-to-end tests: a system on ephemeral ports in a temporary directory, and
//! an HTTP client for its gateway.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rag_config::{CacheBackend, Settings};
use rag_launcher::System;
use serde_json::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Settings for a test system whose data lives in `dir`.
pub fn settings(dir: &Path) -> Settings {
    let mut s = Settings {
        data_dir: dir.to_path_buf(),
        ..Settings::default()
    };
    s.gateway.listen = "127.0.0.1:0".parse().expect("a socket address");
    s.queues.wait_ms = 200;
    s.queues.visibility_timeout_secs = 10;
    s.gateway.max_upload_bytes = 256 * 1024;
    s
}

/// The cache on the test Redis (`RAG_TEST_REDIS_URL`, or the one on 127.0.0.1:6379 that
/// `make test` starts), under keys of the run's own (`rag-test-{run}:`).
pub fn test_redis_cache(run: &str) -> CacheBackend {
    CacheBackend::Redis {
        url: std::env::var("RAG_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        pool_size: 2,
        command_timeout_ms: 500,
        key_prefix: format!("rag-test-{run}:"),
        ca_file: None,
    }
}

pub async fn start(settings: Settings) -> anyhow::Result<System> {
    rag_telemetry::init_for_tests();
    let mut system = rag_launcher::start(settings).await?;
    system.wait_ready(Duration::from_secs(120)).await?;
    Ok(system)
}

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(system: &System) -> Self {
        Self {
            base: system.url(),
            http: reqwest::Client::new(),
        }
    }

    /// A client that sends `Authorization: Bearer <key>` with every request.
    pub fn with_key(system: &System, key: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        let value = format!("Bearer {key}").parse().expect("a header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Self {
            base: system.url(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("an HTTP client"),
        }
    }

    pub async fn upload(
        &self,
        domain: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        let form = reqwest::multipart::Form::new()
            .text("domain", domain.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
            );
        let response = self
            .http
            .post(format!("{}/v1/documents", self.base))
            .multipart(form)
            .send()
            .await?;
        Ok((
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        ))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        ))
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .delete(format!("{}{path}", self.base))
            .send()
            .await?;
        Ok((
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        ))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        Ok((
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        ))
    }

    pub async fn ask(&self, question: &str, domain: Option<&str>) -> anyhow::Result<Value> {
        let mut body = serde_json::json!({ "question": question });
        if let Some(domain) = domain {
            body["domain"] = domain.into();
        }
        let (status, answer) = self.post_json("/v1/query", &body).await?;
        if status != 200 {
            bail!("query {question:?} failed with {status}: {answer}");
        }
        Ok(answer)
    }

    /// Waits until every listed document is indexed (or one failed).
    pub async fn wait_indexed(
        &self,
        expected: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Value>> {
        let started = Instant::now();
        loop {
            let (_, list) = self.get("/v1/documents").await?;
            let documents = list["documents"].as_array().cloned().context("documents")?;
            if let Some(failed) = documents.iter().find(|d| d["status"] == "failed") {
                bail!("a document failed: {failed}");
            }
            if documents.len() >= expected && documents.iter().all(|d| d["status"] == "indexed") {
                return Ok(documents);
            }
            if started.elapsed() > timeout {
                bail!("not indexed within {timeout:?}: {list}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The sample corpus: (domain, file name, bytes).
pub fn sample_documents() -> Vec<(String, String, Vec<u8>)> {
    let mut documents = Vec::new();
    let root = repo_root().join("data/documents");
    for domain in ["engineering", "hr", "legal"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(domain))
            .expect("data/documents")
            .filter_map(Result::ok)
            .collect();
        files.sort_by_key(|f| f.file_name());
        for file in files {
            let bytes = std::fs::read(file.path()).expect("a sample document");
            documents.push((
                domain.to_owned(),
                file.file_name().to_string_lossy().into_owned(),
                bytes,
            ));
        }
    }
    documents
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct Question {
    pub id: String,
    pub question: String,
    pub domain: Option<String>,
    pub document: Option<String>,
    pub answer_contains: Vec<String>,
}

pub fn questions() -> Vec<Question> {
    let text = std::fs::read_to_string(repo_root().join("data/eval/questions.jsonl"))
        .expect("questions.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a question"))
        .collect()
}
