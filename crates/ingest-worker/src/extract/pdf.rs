//! PDF: the text layer, page by page, so chunks can cite their page.
//!
//! Text comes from `pdf-extract` (on `lopdf`), which places glyphs by their positions and so
//! puts spaces between words and line breaks between lines even when the PDF draws each word
//! or glyph separately (as Word's exporter does); `lopdf`'s own `extract_text` concatenates
//! the strings and runs such words together. The parser is not hardened against hostile
//! files and panics on some, so each page runs under `catch_unwind`: a page that cannot be
//! read is skipped with a warning, a document none of whose pages can be read is damaged.
//!
//! Running headers, footers and page numbers are removed here, across pages
//! ([`normalize::strip_page_furniture`]), before the per-page cleaning.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{Document, PlainTextOutput};

use super::{DocumentType, ExtractError, Extracted, paged_sections};
use crate::normalize;

const KIND: &str = "PDF";

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let pages = pages(bytes)?;
    if pages.iter().all(|p| p.trim().is_empty()) {
        return Err(ExtractError::NoTextLayer);
    }
    let pages = normalize::strip_page_furniture(&pages);
    Ok(Extracted {
        kind: DocumentType::Pdf,
        title: None,
        sections: paged_sections(pages),
    })
}

fn corrupt(detail: impl std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt {
        kind: KIND,
        detail: detail.to_string(),
    }
}

/// The text of every page, in page order (blank for a page without text).
fn pages(bytes: &[u8]) -> Result<Vec<String>, ExtractError> {
    let mut document = catch_unwind(|| Document::load_mem(bytes))
        .map_err(|_| corrupt("the parser could not read its structure"))?
        .map_err(|e| match e {
            pdf_extract::Error::Decryption(_) | pdf_extract::Error::InvalidPassword => {
                ExtractError::Encrypted
            }
            other => corrupt(other),
        })?;
    if document.is_encrypted() {
        // Many PDFs are "encrypted" with an empty user password only to restrict printing
        // or copying; those open without one.
        let decrypted = catch_unwind(AssertUnwindSafe(|| document.decrypt("")));
        if !matches!(decrypted, Ok(Ok(()))) {
            return Err(ExtractError::Encrypted);
        }
    }
    let numbers: Vec<u32> = document.get_pages().into_keys().collect();
    if numbers.is_empty() {
        return Err(corrupt("it has no pages"));
    }
    let mut pages = Vec::with_capacity(numbers.len());
    let mut unreadable = 0usize;
    for number in numbers {
        let mut text = String::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut output = PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(&document, &mut output, number)
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                unreadable += 1;
                tracing::warn!(page = number, error = %e, "skipping a PDF page that cannot be read");
                text.clear();
            }
            Err(_) => {
                unreadable += 1;
                tracing::warn!(page = number, "skipping a PDF page the parser failed on");
                text.clear();
            }
        }
        pages.push(text);
    }
    if unreadable == pages.len() {
        return Err(corrupt("none of its pages can be read"));
    }
    Ok(pages)
}
