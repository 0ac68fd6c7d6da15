//! Document types, decided from the content first and the file name second. The gateway
//! uses this to refuse what the worker could not read (415) before storing anything.
//!
//! Binary formats are recognised by their magic bytes. A ZIP container is looked into (its
//! central directory, which lists the entry names) to tell a Word document from a workbook
//! or any other archive; nothing is decompressed here.

/// Types the pipeline can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentType {
    Text,
    Markdown,
    Html,
    Pdf,
    /// Office Open XML word-processing document (Word 2007 and later).
    Docx,
}

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Html => "html",
            Self::Pdf => "pdf",
            Self::Docx => "docx",
        }
    }
}

/// What people may upload, for error messages.
pub const ACCEPTED: &str = ".txt, .md, .html, .pdf, .docx";

/// The file is of a type the pipeline cannot read; the text names it for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported file type: {}", self.0)
    }
}

/// Magic numbers of binary formats the pipeline cannot read, to name them in the error.
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG", "PNG image"),
    (b"\xFF\xD8\xFF", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"II*\0", "TIFF image"),
    (b"MM\0*", "TIFF image"),
    (b"\x1F\x8B", "gzip archive"),
    (
        b"\xD0\xCF\x11\xE0",
        "legacy Office document (.doc, .xls, .ppt)",
    ),
    (b"{\\rtf", "RTF document"),
    (b"\x7FELF", "executable"),
    (b"PK\x05\x06", "empty ZIP archive"),
];

/// A PDF may have up to this many bytes of junk before its `%PDF-` header.
const PDF_HEADER_WINDOW: usize = 1024;

/// The type of a document from its bytes and its name.
pub fn sniff(bytes: &[u8], file_name: &str) -> Result<DocumentType, Unsupported> {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if is_pdf(bytes) {
        return Ok(DocumentType::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return zip_kind(bytes);
    }
    if let Some((_, name)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Err(Unsupported((*name).to_owned()));
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || (head.starts_with('<') && head.contains("<body"))
    {
        return Ok(DocumentType::Html);
    }
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err(Unsupported("binary file".into()));
    }
    match extension.as_str() {
        "md" | "markdown" => Ok(DocumentType::Markdown),
        "html" | "htm" => Ok(DocumentType::Html),
        "txt" | "text" | "" => Ok(DocumentType::Text),
        "pdf" => Err(Unsupported(
            "a .pdf file without a PDF header (damaged or renamed?)".into(),
        )),
        "docx" => Err(Unsupported(
            "a .docx file that is not a ZIP container (damaged or renamed?)".into(),
        )),
        other => Err(Unsupported(format!(".{other} files"))),
    }
}

/// `%PDF-` at the start, or within the first KiB after binary junk (as readers allow), but not
/// in the middle of a text that merely mentions it.
fn is_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(PDF_HEADER_WINDOW)];
    let Some(at) = head.windows(5).position(|w| w == b"%PDF-") else {
        return false;
    };
    let junk = &head[..at];
    junk.iter().all(u8::is_ascii_whitespace)
        || junk
            .iter()
            .any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

/// Tells the Office Open XML and OpenDocument containers apart by their entry names.
fn zip_kind(bytes: &[u8]) -> Result<DocumentType, Unsupported> {
    let Some(names) = zip_entry_names(bytes) else {
        return Err(Unsupported(
            "ZIP archive whose table of contents cannot be read (damaged?)".into(),
        ));
    };
    let has = |name: &str| names.contains(&name.as_bytes());
    if has("word/document.xml") {
        return Ok(DocumentType::Docx);
    }
    let what = if has("xl/workbook.xml") {
        "Excel workbook (.xlsx)"
    } else if has("ppt/presentation.xml") {
        "PowerPoint presentation (.pptx)"
    } else if has("mimetype") && has("content.xml") {
        "OpenDocument file (.odt, .ods, .odp)"
    } else if has("[Content_Types].xml") {
        "Office Open XML package other than a Word document"
    } else {
        "ZIP archive (only .docx is read)"
    };
    Err(Unsupported(what.to_owned()))
}

const END_OF_CENTRAL_DIRECTORY: &[u8] = b"PK\x05\x06";
const CENTRAL_DIRECTORY_ENTRY: &[u8] = b"PK\x01\x02";
/// Fixed part of the end-of-central-directory record, and its largest trailing comment.
const EOCD_LEN: usize = 22;
const MAX_COMMENT: usize = 0xFFFF;
/// Entries listed at most; a Word document has a few dozen.
const MAX_ENTRIES: usize = 10_000;

/// The entry names of a ZIP archive, from its central directory; `None` if it cannot be
/// found or runs off the end of the bytes. ZIP64 archives (over 4 GiB) are not read.
fn zip_entry_names(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let search_from = bytes.len().saturating_sub(EOCD_LEN + MAX_COMMENT);
    let eocd = search_from
        + bytes
            .get(search_from..bytes.len().checked_sub(EOCD_LEN - 4)?)?
            .windows(4)
            .rposition(|w| w == END_OF_CENTRAL_DIRECTORY)?;
    let u16_at = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 2)?;
        Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let u32_at = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let entries = u16_at(eocd + 10)?.min(MAX_ENTRIES);
    let mut at = u32_at(eocd + 16)?;
    let mut names = Vec::with_capacity(entries);
    for _ in 0..entries {
        if bytes.get(at..at + 4)? != CENTRAL_DIRECTORY_ENTRY {
            return None;
        }
        let name_len = u16_at(at + 28)?;
        let extra_len = u16_at(at + 30)?;
        let comment_len = u16_at(at + 32)?;
        names.push(bytes.get(at + 46..at + 46 + name_len)?);
        at += 46 + name_len + extra_len + comment_len;
    }
    Some(names)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A stored (uncompressed) ZIP archive with these entries, each holding `x`.
    fn zip(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for name in names {
            let offset = u32::try_from(out.len()).unwrap();
            let name_len = u16::try_from(name.len()).unwrap();
            out.extend_from_slice(b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0");
            out.extend_from_slice(&[0; 4]); // crc (not checked here)
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&name_len.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(b'x');
            central.extend_from_slice(b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0");
            central.extend_from_slice(&[0; 4]);
            central.extend_from_slice(&1u32.to_le_bytes());
            central.extend_from_slice(&1u32.to_le_bytes());
            central.extend_from_slice(&name_len.to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = u32::try_from(out.len()).unwrap();
        let cd_len = u32::try_from(central.len()).unwrap();
        let count = u16::try_from(names.len()).unwrap();
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&cd_len.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn content_wins_over_the_name() {
        assert_eq!(
            sniff(b"<!DOCTYPE html><html><body>x</body></html>", "notes.txt"),
            Ok(DocumentType::Html)
        );
        assert_eq!(sniff(b"%PDF-1.7\n...", "report.txt"), Ok(DocumentType::Pdf));
        assert_eq!(sniff(b"\r\n%PDF-1.4\n...", "report"), Ok(DocumentType::Pdf));
        assert_eq!(
            sniff(b"\0\x01junk%PDF-1.4\n...", "report"),
            Ok(DocumentType::Pdf)
        );
        assert_eq!(
            sniff(b"# PDFs\nThey start with %PDF-1.7.", "pdf.md"),
            Ok(DocumentType::Markdown)
        );
        assert_eq!(sniff(b"# Title", "notes.md"), Ok(DocumentType::Markdown));
        assert_eq!(sniff(b"plain", "notes"), Ok(DocumentType::Text));
    }

    #[test]
    fn zip_containers_are_told_apart() {
        let docx = zip(&["[Content_Types].xml", "_rels/.rels", "word/document.xml"]);
        assert_eq!(sniff(&docx, "a.bin"), Ok(DocumentType::Docx));
        let xlsx = zip(&["[Content_Types].xml", "xl/workbook.xml"]);
        assert_eq!(
            sniff(&xlsx, "a.docx").unwrap_err().to_string(),
            "unsupported file type: Excel workbook (.xlsx)"
        );
        let odt = zip(&["mimetype", "content.xml"]);
        assert!(sniff(&odt, "a.odt").unwrap_err().0.contains("OpenDocument"));
        let plain = zip(&["notes.txt"]);
        assert!(
            sniff(&plain, "a.zip")
                .unwrap_err()
                .0
                .contains("ZIP archive")
        );
        let mut truncated = docx.clone();
        truncated.truncate(docx.len() - 30);
        assert!(
            sniff(&truncated, "a.docx")
                .unwrap_err()
                .0
                .contains("damaged")
        );
    }

    #[test]
    fn other_types_are_refused_with_a_name() {
        let refused = |bytes: &[u8], name: &str| sniff(bytes, name).unwrap_err().0;
        assert_eq!(refused(b"\x89PNG\r\n", "scan.pdf"), "PNG image");
        assert!(refused(b"\xD0\xCF\x11\xE0rest", "old.doc").contains("legacy Office"));
        assert_eq!(refused(b"a\0b", "x.txt"), "binary file");
        assert_eq!(refused(b"col1,col2", "x.csv"), ".csv files");
        assert!(refused(b"just text", "x.pdf").contains("without a PDF header"));
        assert!(refused(b"just text", "x.docx").contains("not a ZIP"));
    }

    #[test]
    fn central_directory_reading_never_panics_on_garbage() {
        for len in 0..64 {
            let mut bytes = b"PK\x03\x04".to_vec();
            bytes.extend(std::iter::repeat_n(b'P', len));
            bytes.extend_from_slice(b"PK\x05\x06\xFF\xFF\xFF\xFF\xFF\xFF");
            let _ = sniff(&bytes, "a.docx");
        }
    }
}
