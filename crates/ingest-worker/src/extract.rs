//! Text extraction: detect a document's type from its content (and name), and pull out its
//! text as sections, each with its heading and, for paged formats, its page number.
//!
//! One module per format. Every reader returns an [`ExtractError`] with a reason a person can
//! act on (the worker records it on the failed document); none may panic on hostile input,
//! and the PDF reader, which wraps a third-party parser, also catches the parser's panics.
//!
//! Hostile files are bounded by [`Limits`]: the bytes of text a document may yield, the
//! sections (or pages) it may have, how deeply it may nest, how far its compressed parts may
//! expand, and a deadline that every reader checks as it goes (between pages, every few
//! thousand nodes, on every token count while chunking). No reader recurses on the input's
//! nesting: HTML is walked with an explicit stack, DOCX refuses nesting past
//! [`MAX_DEPTH`], and a PDF's page tree, inherited attributes and form XObjects are checked
//! for loops before the third-party parser, which recurses through them, sees the pages.

mod docx;
mod html;
mod markdown;
mod pdf;

use std::time::{Duration, Instant};

pub use rag_core::media::DocumentType;
use rag_core::media::{self, Unsupported};

use crate::normalize;

/// Sections (or pages) a document may have, at most: each costs a heading and a buffer, so
/// ten million one-line Markdown headings or form feeds would cost gigabytes.
pub const MAX_SECTIONS: usize = 100_000;
/// How deeply a structured document (DOCX XML, a PDF's form XObjects) may nest.
pub const MAX_DEPTH: usize = 256;
/// How often (in nodes visited) a reader looks at the clock.
const CLOCK_EVERY: usize = 4096;

/// What reading one document may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of text a document may yield (and of a text format's input).
    pub max_text_bytes: u64,
    /// How long extraction and chunking may take; `None` for no limit.
    pub timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_bytes: 32 * 1024 * 1024,
            timeout: None,
        }
    }
}

/// The limits of one running extraction, with its deadline.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    limits: Limits,
    deadline: Option<Instant>,
}

impl Budget {
    /// Starts the clock.
    pub fn start(limits: Limits) -> Self {
        Self {
            limits,
            deadline: limits.timeout.map(|t| Instant::now() + t),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Fails once the deadline has passed.
    pub fn check_time(&self) -> Result<(), ExtractError> {
        match (self.deadline, self.limits.timeout) {
            (Some(deadline), Some(timeout)) if Instant::now() >= deadline => {
                Err(ExtractError::TimedOut(timeout))
            }
            _ => Ok(()),
        }
    }

    /// Fails if `bytes` of text are more than a document may yield.
    pub fn check_text(&self, kind: &'static str, bytes: usize) -> Result<(), ExtractError> {
        let limit = self.limits.max_text_bytes;
        if u64::try_from(bytes).unwrap_or(u64::MAX) > limit {
            return Err(ExtractError::TooLarge { kind, limit });
        }
        Ok(())
    }
}

/// Seconds as people write them: `30`, `0.5`.
fn seconds(duration: &Duration) -> String {
    duration.as_secs_f64().to_string()
}

/// Why a document cannot be read; the text is shown to people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("unsupported file type: {0}")]
    Unsupported(String),
    #[error("the file is not valid UTF-8 text")]
    NotUtf8,
    #[error("the document contains no text")]
    Empty,
    /// The file has the right type but cannot be parsed.
    #[error("the {kind} file is damaged or invalid: {detail}")]
    Corrupt { kind: &'static str, detail: String },
    #[error("the PDF is protected by a password")]
    Encrypted,
    #[error("the PDF has no text layer (scanned?); run it through OCR first")]
    NoTextLayer,
    /// A container expands to more than the reader accepts (a zip bomb, or a huge document).
    #[error("the {kind} file expands to more than {limit} bytes of text")]
    TooLarge { kind: &'static str, limit: u64 },
    /// Compressed parts (a PDF's streams) expand past what the reader decompresses.
    #[error("the {kind} file's compressed data expands to more than {limit} bytes")]
    Bomb { kind: &'static str, limit: u64 },
    #[error("the {kind} file has more than {limit} {what}")]
    TooMany {
        kind: &'static str,
        what: &'static str,
        limit: usize,
    },
    #[error("the {kind} file is nested more than {limit} levels deep")]
    TooDeep { kind: &'static str, limit: usize },
    /// Extraction and chunking ran past [`Limits::timeout`].
    #[error("extraction timed out after {} s", seconds(.0))]
    TimedOut(Duration),
    /// Chunking could not measure the text.
    #[error("the tokenizer failed: {0}")]
    Tokenizer(String),
}

impl From<Unsupported> for ExtractError {
    fn from(e: Unsupported) -> Self {
        Self::Unsupported(e.0)
    }
}

/// A block of text under a heading (empty when none), on a page when the format has pages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub heading: String,
    pub text: String,
    /// 1-based page number (PDF pages, form-feed separated text pages).
    pub page: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    pub kind: DocumentType,
    pub title: Option<String>,
    pub sections: Vec<Section>,
}

/// Decides the type from the bytes first, the file name second.
pub fn detect(bytes: &[u8], file_name: &str) -> Result<DocumentType, ExtractError> {
    Ok(media::sniff(bytes, file_name)?)
}

/// Extracts with the default [`Limits`] (no deadline).
pub fn extract(bytes: &[u8], file_name: &str) -> Result<Extracted, ExtractError> {
    extract_within(bytes, file_name, &Budget::start(Limits::default()))
}

/// Extracts within `budget`: its text, section and time limits.
pub fn extract_within(
    bytes: &[u8],
    file_name: &str,
    budget: &Budget,
) -> Result<Extracted, ExtractError> {
    let kind = detect(bytes, file_name)?;
    let name = kind_name(kind);
    if matches!(
        kind,
        DocumentType::Text | DocumentType::Markdown | DocumentType::Html
    ) {
        // Text formats never yield more text than they hold.
        budget.check_text(name, bytes.len())?;
    }
    let extracted = match kind {
        DocumentType::Pdf => pdf::extract(bytes, budget)?,
        DocumentType::Docx => docx::extract(bytes, budget)?,
        DocumentType::Text => text(utf8(bytes)?)?,
        DocumentType::Markdown => markdown::extract(utf8(bytes)?)?,
        DocumentType::Html => html::extract(utf8(bytes)?, budget)?,
    };
    if extracted.sections.len() > MAX_SECTIONS {
        return Err(too_many_sections(name));
    }
    budget.check_text(name, extracted.sections.iter().map(|s| s.text.len()).sum())?;
    if extracted.sections.iter().all(|s| s.text.trim().is_empty()) {
        return Err(ExtractError::Empty);
    }
    Ok(extracted)
}

/// The format's name in reasons.
fn kind_name(kind: DocumentType) -> &'static str {
    match kind {
        DocumentType::Text => "text",
        DocumentType::Markdown => "Markdown",
        DocumentType::Html => "HTML",
        DocumentType::Pdf => "PDF",
        DocumentType::Docx => "DOCX",
    }
}

fn too_many_sections(kind: &'static str) -> ExtractError {
    ExtractError::TooMany {
        kind,
        what: "sections or pages",
        limit: MAX_SECTIONS,
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, ExtractError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ExtractError::NotUtf8)?;
    Ok(text.trim_start_matches('\u{feff}'))
}

/// Plain text; form feeds (`\x0c`, as `pdftotext` and print spoolers write them) separate
/// pages, which then get page numbers and lose their running headers and footers.
fn text(text: &str) -> Result<Extracted, ExtractError> {
    if text.bytes().filter(|&b| b == 0x0c).count() >= MAX_SECTIONS {
        return Err(too_many_sections("text"));
    }
    let sections = if text.contains('\x0c') {
        let pages: Vec<String> = text.split('\x0c').map(str::to_owned).collect();
        paged_sections(normalize::strip_page_furniture(&pages))
    } else {
        vec![Section {
            text: text.to_owned(),
            ..Section::default()
        }]
    };
    Ok(Extracted {
        kind: DocumentType::Text,
        title: None,
        sections,
    })
}

/// One section per non-blank page, numbered from 1 in the order given.
fn paged_sections(pages: Vec<String>) -> Vec<Section> {
    pages
        .into_iter()
        .enumerate()
        .filter(|(_, text)| !text.trim().is_empty())
        .map(|(i, text)| Section {
            heading: String::new(),
            text,
            page: Some(u32::try_from(i + 1).unwrap_or(u32::MAX)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_by_content_before_name() {
        assert_eq!(
            detect(b"<!DOCTYPE html><html><body>x</body></html>", "notes.txt"),
            Ok(DocumentType::Html)
        );
        assert_eq!(detect(b"# Title", "notes.md"), Ok(DocumentType::Markdown));
        assert_eq!(detect(b"plain", "notes.txt"), Ok(DocumentType::Text));
        assert_eq!(detect(b"%PDF-1.7 ...", "report.txt"), Ok(DocumentType::Pdf));
        assert_eq!(
            detect(b"\x89PNG\r\n", "scan.pdf"),
            Err(ExtractError::Unsupported("PNG image".into()))
        );
        assert!(matches!(
            detect(b"a\0b", "x.txt"),
            Err(ExtractError::Unsupported(_))
        ));
        assert!(matches!(
            detect(b"col1,col2", "x.csv"),
            Err(ExtractError::Unsupported(_))
        ));
    }

    #[test]
    fn markdown_sections_follow_headings() {
        let doc = extract(
            b"# Leave policy\nIntro.\n\n## Carry-over\nFive days.\n```\n# not a heading\n```\n",
            "a.md",
        )
        .unwrap();
        assert_eq!(doc.title.as_deref(), Some("Leave policy"));
        let headings: Vec<_> = doc.sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(headings, ["Leave policy", "Carry-over"]);
        assert!(doc.sections[1].text.contains("Five days."));
    }

    #[test]
    fn html_drops_boilerplate() {
        let page = br#"<!doctype html><html><head><title>Runbook</title><style>p{color:red}</style></head>
            <body><nav><a href="/">Home</a> Menu</nav><script>var secret = 1;</script>
            <main><h1>Deploys</h1><p>Roll back with <b>deploy undo</b>.</p><ul><li>One</li><li>Two</li></ul></main>
            <footer>Copyright</footer></body></html>"#;
        let doc = extract(page, "r.html").unwrap();
        assert_eq!(doc.title.as_deref(), Some("Runbook"));
        let all: String = doc
            .sections
            .iter()
            .map(|s| format!("{}|{}", s.heading, s.text))
            .collect();
        assert!(all.contains("Roll back with deploy undo."), "{all}");
        assert!(all.contains("- One"), "{all}");
        for junk in ["Home", "Menu", "secret", "color", "Copyright"] {
            assert!(!all.contains(junk), "{junk} leaked: {all}");
        }
    }

    #[test]
    fn errors_are_readable() {
        assert_eq!(
            extract(b"   \n", "a.txt").unwrap_err().to_string(),
            "the document contains no text"
        );
        assert_eq!(
            extract(&[0xC3, 0x28, b'a'], "a.txt").unwrap_err(),
            ExtractError::NotUtf8
        );
    }

    #[test]
    fn form_feeds_make_numbered_pages() {
        let text = "Handbook\nFirst page text.\n1\x0cHandbook\nSecond page text.\n2\x0c\x0cHandbook\nFourth.\n4\x0c";
        let doc = extract(text.as_bytes(), "h.txt").unwrap();
        let pages: Vec<_> = doc
            .sections
            .iter()
            .map(|s| (s.page, s.text.as_str()))
            .collect();
        assert_eq!(
            pages,
            [
                (Some(1), "First page text."),
                (Some(2), "Second page text."),
                (Some(4), "Fourth.")
            ]
        );
    }
}
