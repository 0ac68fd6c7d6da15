//! The gateway's JSON request bodies, decoded as its `ValidJson` extractor does
//! (`serde_path_to_error` over `serde_json`, then the field named from the error). The body
//! types are `pub(crate)` in `rag-gateway` (`routes.rs`), and the crate pulls in every
//! backend, so they are mirrored here field for field with the same serde attributes; a
//! public decoding function in the gateway would let this target call the real ones.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    question: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    alpha: Option<f32>,
    #[serde(default)]
    neighbours: Option<u32>,
    #[serde(default)]
    rerank: Option<bool>,
    #[serde(default)]
    stream: bool,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    query_id: String,
    rating: String,
    #[serde(default)]
    comment: Option<String>,
}

/// "missing field `question` at line 1 column 2" → "question" (as `json::missing_field`).
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// The extractor's decoding: the value, or the message and the field it names.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, (String, String)> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let field = missing_field(&message).map(str::to_owned).unwrap_or(path);
        (message, field)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = decode::<QueryBody>(data);
    let _ = decode::<FeedbackBody>(data);
    let _ = decode::<serde_json::Value>(data);
});
