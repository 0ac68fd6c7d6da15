//! Every supported format through the real pipeline (`pipeline::prepare`), on the
//! real-looking fixtures in `tests/fixtures/` (written by `scripts/make-fixtures.py`): what
//! is extracted, what is cleaned away, and the reason given for what cannot be read.
//!
//! Chunks are counted with the MiniLM tokenizer when the model has been fetched
//! (`make models`), else with the approximation, as the worker would.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use rag_core::{ChunkRecord, ObjectKey};
use rag_embeddings::TokenCounter;
use rag_ingest_worker::chunk::ChunkOptions;
use rag_ingest_worker::extract::ExtractError;
use rag_ingest_worker::pipeline::{self, Chunking, Prepared};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn chunking() -> Chunking {
    Chunking {
        options: ChunkOptions {
            size: 200,
            overlap: 30,
        },
        tokens: TokenCounter::load_default().unwrap_or_else(|_| TokenCounter::approximate(254)),
    }
}

fn prepare(name: &str) -> Result<Prepared, ExtractError> {
    let key = ObjectKey::for_upload("acme", "hr", name);
    pipeline::prepare(&fixture(name), &key, &key.to_key(), 1, &chunking())
}

fn all_text(chunks: &[ChunkRecord]) -> String {
    chunks
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn sections(chunks: &[ChunkRecord]) -> Vec<&str> {
    let mut sections: Vec<&str> = chunks.iter().map(|c| c.section.as_str()).collect();
    sections.dedup();
    sections
}

fn assert_well_formed(prepared: &Prepared) {
    let tokens = chunking().tokens;
    for (i, chunk) in prepared.chunks.iter().enumerate() {
        assert_eq!(chunk.chunk_index as usize, i);
        assert!(chunk.has_consistent_id());
        assert_eq!(
            (chunk.char_end - chunk.char_start) as usize,
            chunk.text.chars().count()
        );
        let embedded = tokens.count(&chunk.embedding_text()).unwrap();
        assert!(embedded <= tokens.max_text_tokens(), "{embedded} tokens");
    }
}

#[test]
fn pdf_pages_without_headers_footers_or_page_numbers() {
    let prepared = prepare("handbook.pdf").unwrap();
    assert_eq!(prepared.kind, "pdf");
    assert_well_formed(&prepared);
    let text = all_text(&prepared.chunks);
    for noise in [
        "Acme Employee Handbook",
        "Confidential",
        "Page 1 of 4",
        "of 4",
    ] {
        assert!(!text.contains(noise), "{noise:?} left in:\n{text}");
    }
    // Body text from every page, hyphenation at a line end repaired, words drawn one by one
    // separated by spaces.
    for phrase in [
        "Every employee accrues 25 days of paid annual leave per calendar year",
        "Public holidays are not deducted from annual leave.",
        "must be taken by 31 March",
        "The reimbursement is paid with the next monthly salary",
        "never print confidential documents at home.",
    ] {
        assert!(text.contains(phrase), "{phrase:?} missing from:\n{text}");
    }
    let first_page_of = |phrase: &str| {
        prepared
            .chunks
            .iter()
            .find(|c| c.text.contains(phrase))
            .and_then(|c| c.page)
    };
    assert_eq!(first_page_of("Annual leave"), Some(1));
    // Every chunk cites the page it starts on.
    let pages: Vec<u32> = prepared.chunks.iter().filter_map(|c| c.page).collect();
    assert_eq!(pages.len(), prepared.chunks.len());
    assert!(pages.windows(2).all(|w| w[0] <= w[1]), "{pages:?}");
    for chunk in &prepared.chunks {
        let page = chunk.page.unwrap();
        let heading = [
            "Annual leave",
            "Carry-over",
            "Travel and expenses",
            "Remote work",
        ][page as usize - 1];
        assert!(
            chunk.text.starts_with(heading) || !chunk.text.contains(heading),
            "chunk on page {page} starts with {:?}",
            &chunk.text[..40.min(chunk.text.len())]
        );
    }
    assert_eq!(prepared.title, "handbook.pdf");
}

#[test]
fn small_chunks_of_the_pdf_cite_each_page() {
    let key = ObjectKey::for_upload("acme", "hr", "handbook.pdf");
    let mut small = chunking();
    small.options = ChunkOptions {
        size: 40,
        overlap: 8,
    };
    let prepared =
        pipeline::prepare(&fixture("handbook.pdf"), &key, &key.to_key(), 1, &small).unwrap();
    let mut pages: Vec<u32> = prepared.chunks.iter().filter_map(|c| c.page).collect();
    pages.dedup();
    assert_eq!(pages, [1, 2, 3, 4]);
    let travel = prepared
        .chunks
        .iter()
        .find(|c| c.text.contains("Hotels up to 150 EUR"))
        .unwrap();
    assert_eq!(travel.page, Some(3));
}

#[test]
fn docx_headings_lists_and_tables() {
    let prepared = prepare("security-policy.docx").unwrap();
    assert_eq!(prepared.kind, "docx");
    assert_well_formed(&prepared);
    // The Title paragraph wins over the "Microsoft Word - …" document property.
    assert_eq!(prepared.title, "Information Security Policy");
    assert_eq!(
        sections(&prepared.chunks),
        [
            "Information Security Policy",
            "Passwords",
            "Incident response times",
            "Laptops"
        ]
    );
    let passwords = &prepared.chunks[1].text;
    assert!(
        passwords.contains("- be at least 14 characters long;\n- never be reused across systems;"),
        "{passwords}"
    );
    assert!(
        passwords.contains(
            "password manager.\n\nMulti-factor authentication is mandatory for e-mail and the VPN."
        ),
        "{passwords}"
    );
    assert!(
        !passwords.contains("optional"),
        "deleted text kept: {passwords}"
    );
    let incidents = all_text(&prepared.chunks);
    assert!(
        incidents.contains("Severity | First response | Resolution target"),
        "{incidents}"
    );
    assert!(
        incidents.contains("Critical | 15 minutes | 4 hours"),
        "{incidents}"
    );
    assert!(prepared.chunks.iter().all(|c| c.page.is_none()));
}

#[test]
fn html_main_text_without_navigation_or_scripts() {
    let prepared = prepare("vpn-wiki.html").unwrap();
    assert_eq!(prepared.kind, "html");
    assert_well_formed(&prepared);
    assert_eq!(prepared.title, "VPN setup - Acme Wiki");
    assert_eq!(
        sections(&prepared.chunks),
        ["VPN setup", "First connection", "Troubleshooting"]
    );
    let text = all_text(&prepared.chunks);
    assert!(text.contains("- Open Acme Connect and enter vpn.acme.example as the server."));
    assert!(
        text.contains("switch the protocol to TCP in Settings → Advanced."),
        "{text}"
    );
    for junk in [
        "analytics",
        "Recent changes",
        "Search the wiki",
        "Page tools",
        "Privacy",
        "font-family",
    ] {
        assert!(!text.contains(junk), "{junk:?} leaked:\n{text}");
    }
}

#[test]
fn markdown_runbook_keeps_headings_and_code() {
    let prepared = prepare("db-failover.md").unwrap();
    assert_eq!(prepared.kind, "markdown");
    assert_well_formed(&prepared);
    assert_eq!(prepared.title, "Database failover runbook");
    assert_eq!(
        sections(&prepared.chunks),
        [
            "Database failover runbook",
            "Check",
            "Promote the standby",
            "Afterwards"
        ]
    );
    let text = all_text(&prepared.chunks);
    assert!(text.contains("pg_last_xact_replay_timestamp()"), "{text}");
    assert!(
        text.contains("- Lag under 30 seconds: go on with the failover."),
        "{text}"
    );
    assert!(
        text.contains("for more than two minutes."),
        "hard wrap not joined: {text}"
    );
}

#[test]
fn plain_text_wraps_joined_and_bullets_standardised() {
    let prepared = prepare("onboarding.txt").unwrap();
    assert_eq!(prepared.kind, "text");
    assert_well_formed(&prepared);
    let text = all_text(&prepared.chunks);
    assert!(
        text.contains("your manager orders your laptop and creates your accounts."),
        "{text}"
    );
    assert!(
        text.contains("- collect your badge at reception (bring an ID),\n- sign the security"),
        "{text}"
    );
    assert!(prepared.chunks.iter().all(|c| c.page.is_none()));
}

#[test]
fn form_feed_pages_lose_their_running_header() {
    let prepared = prepare("minutes.txt").unwrap();
    assert_well_formed(&prepared);
    let text = all_text(&prepared.chunks);
    assert!(!text.contains("STEERING COMMITTEE MINUTES"), "{text}");
    assert!(
        text.contains("approved the 2026 training budget of 40,000 EUR"),
        "{text}"
    );
    assert!(text.contains("Next meeting: 12 February"), "{text}");
    assert!(
        !text.lines().any(|l| l.trim() == "2"),
        "page number left: {text}"
    );
    assert_eq!(prepared.chunks[0].page, Some(1));
}

#[test]
fn unreadable_files_give_reasons() {
    let reason = |name: &str| prepare(name).unwrap_err().to_string();
    assert_eq!(
        reason("scanned.pdf"),
        "the PDF has no text layer (scanned?); run it through OCR first"
    );
    let corrupt = reason("corrupt.pdf");
    assert!(
        corrupt.starts_with("the PDF file is damaged or invalid: "),
        "{corrupt}"
    );
    assert_eq!(
        reason("budget.xlsx"),
        "unsupported file type: Excel workbook (.xlsx)"
    );
}

mod hostile {
    use proptest::prelude::*;

    use super::*;

    const FIXTURES: &[&str] = &[
        "handbook.pdf",
        "security-policy.docx",
        "vpn-wiki.html",
        "db-failover.md",
        "minutes.txt",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Damaged copies of the fixtures (bytes overwritten, the end cut off) never panic
        /// the pipeline: they are read, or refused with a reason.
        #[test]
        fn damaged_files_are_read_or_refused(
            which in 0..FIXTURES.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
            keep in 0.2f64..1.0,
        ) {
            let name = FIXTURES[which];
            let mut bytes = fixture(name);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(((bytes.len() as f64) * keep) as usize);
            let key = ObjectKey::for_upload("acme", "hr", name);
            let result = std::panic::catch_unwind(|| {
                pipeline::prepare(&bytes, &key, "k", 1, &chunking())
            });
            prop_assert!(result.is_ok(), "{name} panicked");
            if let Ok(Err(e)) = result {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}
