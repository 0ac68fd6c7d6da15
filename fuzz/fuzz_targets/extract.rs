//! Every reader (text, Markdown, HTML, PDF, DOCX) through the dispatcher the worker uses:
//! the first byte picks the file name (content wins over it when sniffing), the rest is the
//! file. Any result is fine; a panic that escapes the readers, a hang or an allocation past
//! libFuzzer's `-rss_limit_mb` is a crash.
//!
//! The PDF reader catches the third-party parser's panics on purpose, so the panic hook is
//! silenced and an escaping panic aborts explicitly.

#![no_main]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rag_ingest_worker::extract::{self, Budget, Limits};

const NAMES: [&str; 6] = ["a.txt", "a.md", "a.html", "a.pdf", "a.docx", "a"];

fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        let Some((&selector, bytes)) = data.split_first() else {
            return;
        };
        let name = NAMES[usize::from(selector) % NAMES.len()];
        let budget = Budget::start(Limits {
            max_text_bytes: 4 * 1024 * 1024,
            timeout: Some(Duration::from_secs(10)),
        });
        if catch_unwind(AssertUnwindSafe(|| extract::extract_within(bytes, name, &budget))).is_err() {
            std::process::abort();
        }
    }
);
