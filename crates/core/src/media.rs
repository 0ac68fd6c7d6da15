//! Document types, decided from the content first and the file name second. The gateway
//! uses this to refuse what the worker could not read (415) before storing anything.

/// Types the pipeline can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentType {
    Text,
    Markdown,
    Html,
}

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Markdown => "markdown",
            Self::Html => "html",
        }
    }
}

/// The file is of a type the pipeline cannot read; the text names it for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unsupported file type: {}", self.0)
    }
}

/// Magic numbers of common binary formats, to name them in the error.
const MAGIC: &[(&[u8], &str)] = &[
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "ZIP container (DOCX, XLSX, ...)"),
    (b"\x89PNG", "PNG image"),
    (b"\xFF\xD8\xFF", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"\x1F\x8B", "gzip archive"),
    (b"\xD0\xCF\x11\xE0", "legacy Office document"),
    (b"\x7FELF", "executable"),
];

/// The type of a document from its first bytes and its name.
pub fn sniff(bytes: &[u8], file_name: &str) -> Result<DocumentType, Unsupported> {
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
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "md" | "markdown" => Ok(DocumentType::Markdown),
        "html" | "htm" => Ok(DocumentType::Html),
        "txt" | "text" | "" => Ok(DocumentType::Text),
        other => Err(Unsupported(format!(".{other} files"))),
    }
}
