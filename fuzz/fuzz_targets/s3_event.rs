//! The S3 event decoder the worker reads every documents-queue message with: never a
//! panic, and a decoded event encodes and decodes back to the same events.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rag_core::s3_event::{self, Notification};

fuzz_target!(|data: &[u8]| {
    if let Ok(Notification::Records(events)) = s3_event::decode(data) {
        let again = s3_event::decode(&s3_event::encode(&events, "eu-west-1"));
        let Ok(Notification::Records(again)) = again else {
            panic!("re-encoded events do not decode: {again:?}");
        };
        assert_eq!(events.len(), again.len());
        for (a, b) in events.iter().zip(&again) {
            assert_eq!(a.key, b.key);
            assert_eq!(a.event_name, b.event_name);
            assert_eq!(a.kind(), b.kind());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = s3_event::decode_key(text);
    }
});
