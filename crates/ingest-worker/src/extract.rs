//! Text extraction: detect a document's type from its content (and name), and pull out its
//! text as sections, each with its heading and, for paged formats, its page number.
//!
//! One module per format. Every reader returns an [`ExtractError`] with a reason a person can
//! act on (the worker records it on the failed document); none may panic on hostile input,
//! and the PDF reader, which wraps a third-party parser, also catches the parser's panics.

mod docx;
mod html;
mod markdown;
mod pdf;

pub use rag_core::media::DocumentType;
use rag_core::media::{self, Unsupported};

use crate::normalize;

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

pub fn extract(bytes: &[u8], file_name: &str) -> Result<Extracted, ExtractError> {
    let kind = detect(bytes, file_name)?;
    let extracted = match kind {
        DocumentType::Pdf => pdf::extract(bytes)?,
        DocumentType::Docx => docx::extract(bytes)?,
        DocumentType::Text => text(utf8(bytes)?),
        DocumentType::Markdown => markdown::extract(utf8(bytes)?),
        DocumentType::Html => html::extract(utf8(bytes)?),
    };
    if extracted.sections.iter().all(|s| s.text.trim().is_empty()) {
        return Err(ExtractError::Empty);
    }
    Ok(extracted)
}

fn utf8(bytes: &[u8]) -> Result<&str, ExtractError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ExtractError::NotUtf8)?;
    Ok(text.trim_start_matches('\u{feff}'))
}

/// Plain text; form feeds (`\x0c`, as `pdftotext` and print spoolers write them) separate
/// pages, which then get page numbers and lose their running headers and footers.
fn text(text: &str) -> Extracted {
    let sections = if text.contains('\x0c') {
        let pages: Vec<String> = text.split('\x0c').map(str::to_owned).collect();
        paged_sections(normalize::strip_page_furniture(&pages))
    } else {
        vec![Section {
            text: text.to_owned(),
            ..Section::default()
        }]
    };
    Extracted {
        kind: DocumentType::Text,
        title: None,
        sections,
    }
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
