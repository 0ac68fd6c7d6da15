//! S3 event notifications: the JSON that S3 sends to SQS, decoded and encoded.
//!
//! In the cluster S3 writes these messages; the embedded object store writes the same JSON,
//! so the ingest-worker has one decoder for both. Keys arrive form-encoded (`+` for a space,
//! `%XX` for other bytes); some emulators also encode `/` as `%2F`, which decoding undoes.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use rag_proto::ObjectEvent;
use rag_proto::object_event::Kind;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::ServiceError;

/// What one queue message held.
#[derive(Clone, Debug, PartialEq)]
pub enum Notification {
    /// `s3:TestEvent`, sent once when a notification is configured: nothing to do.
    Test,
    Records(Vec<ObjectEvent>),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(default)]
    records: Option<Vec<Record>>,
    #[serde(default)]
    event: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(default)]
    event_version: String,
    #[serde(default)]
    event_source: String,
    #[serde(default)]
    aws_region: String,
    #[serde(default)]
    event_time: String,
    event_name: String,
    s3: S3Entity,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Entity {
    #[serde(default)]
    s3_schema_version: String,
    #[serde(default)]
    configuration_id: String,
    bucket: Bucket,
    object: Object,
}

#[derive(Serialize, Deserialize)]
struct Bucket {
    name: String,
    #[serde(default)]
    arn: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    key: String,
    #[serde(default)]
    size: u64,
    #[serde(default, rename = "eTag", skip_serializing_if = "String::is_empty")]
    e_tag: String,
    #[serde(default)]
    sequencer: String,
}

/// Decodes one queue message body.
pub fn decode(body: &[u8]) -> Result<Notification, ServiceError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        ServiceError::invalid_argument(format!("not an S3 event notification: {e}"))
    })?;
    if envelope.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    let records = envelope
        .records
        .ok_or_else(|| ServiceError::invalid_argument("S3 event notification has no Records"))?;
    records
        .into_iter()
        .map(|r| {
            let kind = if r.event_name.starts_with("ObjectCreated:") {
                Kind::Created
            } else if r.event_name.starts_with("ObjectRemoved:") {
                Kind::Removed
            } else {
                Kind::Unspecified
            };
            Ok(ObjectEvent {
                kind: kind.into(),
                event_time_ms: parse_time_ms(&r.event_time),
                event_name: r.event_name,
                bucket: r.s3.bucket.name,
                key: decode_key(&r.s3.object.key)?,
                size: r.s3.object.size,
                etag: r.s3.object.e_tag,
                sequencer: r.s3.object.sequencer,
            })
        })
        .collect::<Result<_, _>>()
        .map(Notification::Records)
}

/// Encodes events as S3 does: one message, one record per event.
pub fn encode(events: &[ObjectEvent], region: &str) -> Vec<u8> {
    let records = events
        .iter()
        .map(|e| Record {
            event_version: "2.1".into(),
            event_source: "aws:s3".into(),
            aws_region: region.into(),
            event_time: format_time(e.event_time_ms),
            event_name: e.event_name.clone(),
            s3: S3Entity {
                s3_schema_version: "1.0".into(),
                configuration_id: "documents".into(),
                bucket: Bucket {
                    name: e.bucket.clone(),
                    arn: format!("arn:aws:s3:::{}", e.bucket),
                },
                object: Object {
                    key: encode_key(&e.key),
                    size: e.size,
                    e_tag: e.etag.clone(),
                    sequencer: e.sequencer.clone(),
                },
            },
        })
        .collect();
    let envelope = Envelope {
        records: Some(records),
        event: None,
    };
    // Serialising plain structs of strings and integers cannot fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// `uploads/hr/Leave+policy%282%29.md` → `uploads/hr/Leave policy(2).md`.
pub fn decode_key(key: &str) -> Result<String, ServiceError> {
    percent_decode_str(&key.replace('+', " "))
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| ServiceError::invalid_argument(format!("object key {key:?} is not UTF-8")))
}

const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b' ');

fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_SET)
        .to_string()
        .replace(' ', "+")
}

fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

fn parse_time_ms(text: &str) -> i64 {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(key: &str) -> ObjectEvent {
        ObjectEvent {
            kind: Kind::Created.into(),
            event_name: "ObjectCreated:Put".into(),
            bucket: "docs".into(),
            key: key.into(),
            size: 12,
            etag: "abc".into(),
            sequencer: "0000000000000001".into(),
            event_time_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn round_trips_keys_with_spaces_and_symbols() {
        let e = event("uploads/hr/3b2c/Leave policy (2024) + ü.md");
        let body = encode(std::slice::from_ref(&e), "us-east-1");
        let text = String::from_utf8(body.clone()).unwrap_or_default();
        assert!(
            text.contains("Leave+policy+%282024%29+%2B+%C3%BC.md"),
            "{text}"
        );
        assert_eq!(decode(&body).ok(), Some(Notification::Records(vec![e])));
    }

    #[test]
    fn decodes_a_real_s3_message_with_encoded_slashes() {
        // As seen from an emulator: `/` arrives as `%2F`.
        let body = br#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
            "eventTime":"2024-05-01T10:00:00.000Z","eventName":"ObjectRemoved:Delete",
            "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"b","arn":"arn:aws:s3:::b"},
            "object":{"key":"uploads%2Fhr%2Fa+b.md","sequencer":"0A"}}}]}"#;
        let Ok(Notification::Records(events)) = decode(body) else {
            panic!("expected records");
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].key, "uploads/hr/a b.md");
        assert_eq!(events[0].kind(), Kind::Removed);
        assert_eq!(events[0].event_time_ms, 1_714_557_600_000);
    }

    #[test]
    fn test_event_and_garbage() {
        let body = br#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-01-01T00:00:00.000Z","Bucket":"b"}"#;
        assert_eq!(decode(body).ok(), Some(Notification::Test));
        assert!(decode(b"not json").is_err());
        assert!(decode(b"{}").is_err());
    }
}
