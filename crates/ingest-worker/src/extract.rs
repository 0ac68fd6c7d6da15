//! Text extraction: detect a document's type from its content (and name), and pull out its
//! text with section headings.

use scraper::{ElementRef, Html, Node, Selector};

pub use rag_core::media::DocumentType;
use rag_core::media::{self, Unsupported};

/// Why a document cannot be read; the text is shown to people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("unsupported file type: {0}")]
    Unsupported(String),
    #[error("the file is not valid UTF-8 text")]
    NotUtf8,
    #[error("the document contains no text")]
    Empty,
}

impl From<Unsupported> for ExtractError {
    fn from(e: Unsupported) -> Self {
        Self::Unsupported(e.0)
    }
}

/// A block of text under a heading (empty when none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub heading: String,
    pub text: String,
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
    let text = std::str::from_utf8(bytes).map_err(|_| ExtractError::NotUtf8)?;
    let text = text.trim_start_matches('\u{feff}');
    let extracted = match kind {
        DocumentType::Text => Extracted {
            kind,
            title: None,
            sections: vec![Section {
                heading: String::new(),
                text: text.to_owned(),
            }],
        },
        DocumentType::Markdown => markdown(text),
        DocumentType::Html => html(text),
    };
    if extracted.sections.iter().all(|s| s.text.trim().is_empty()) {
        return Err(ExtractError::Empty);
    }
    Ok(extracted)
}

/// Splits Markdown at ATX headings (`#`…`######`), keeping each heading as section context.
fn markdown(text: &str) -> Extracted {
    let mut title = None;
    let mut sections = vec![Section {
        heading: String::new(),
        text: String::new(),
    }];
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        let level = trimmed.bytes().take_while(|&b| b == b'#').count();
        if !in_fence && (1..=6).contains(&level) && trimmed[level..].starts_with(' ') {
            let heading = trimmed[level..]
                .trim()
                .trim_end_matches('#')
                .trim()
                .to_owned();
            if level == 1 && title.is_none() {
                title = Some(heading.clone());
            }
            sections.push(Section {
                heading,
                text: String::new(),
            });
            continue;
        }
        if let Some(current) = sections.last_mut() {
            current.text.push_str(line);
            current.text.push('\n');
        }
    }
    sections.retain(|s| !s.text.trim().is_empty());
    Extracted {
        kind: DocumentType::Markdown,
        title,
        sections,
    }
}

/// Tags whose content is never document text.
const SKIPPED_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg",
    "iframe", "button",
];
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "table",
    "tr",
    "td",
    "th",
    "br",
    "pre",
    "blockquote",
    "dd",
    "dt",
    "dl",
];

/// Main text of an HTML page: `<main>` or `<article>` when present, else `<body>`, without
/// scripts, styles and navigation; `<h1>`–`<h6>` start sections.
fn html(text: &str) -> Extracted {
    let document = Html::parse_document(text);
    let select = |css: &str| {
        Selector::parse(css)
            .ok()
            .and_then(|s| document.select(&s).next())
    };
    let title = select("title")
        .map(|t| collapse(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty())
        .or_else(|| select("h1").map(|h| collapse(&h.text().collect::<String>())));
    let root = select("main")
        .or_else(|| select("article"))
        .or_else(|| select("body"));
    let mut sections = vec![Section {
        heading: String::new(),
        text: String::new(),
    }];
    if let Some(root) = root {
        walk(root, &mut sections);
    }
    sections.retain(|s| !s.text.trim().is_empty());
    Extracted {
        kind: DocumentType::Html,
        title,
        sections,
    }
}

fn walk(element: ElementRef<'_>, sections: &mut Vec<Section>) {
    for child in element.children() {
        match child.value() {
            Node::Text(text) => {
                if let Some(current) = sections.last_mut() {
                    current.text.push_str(text);
                }
            }
            Node::Element(e) => {
                let name = e.name();
                if SKIPPED_TAGS.contains(&name) {
                    continue;
                }
                let Some(child) = ElementRef::wrap(child) else {
                    continue;
                };
                if matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6") {
                    sections.push(Section {
                        heading: collapse(&child.text().collect::<String>()),
                        text: String::new(),
                    });
                    continue;
                }
                let block = BLOCK_TAGS.contains(&name);
                if name == "li"
                    && let Some(current) = sections.last_mut()
                {
                    current.text.push_str("\n- ");
                }
                walk(child, sections);
                if block && let Some(current) = sections.last_mut() {
                    current.text.push_str("\n\n");
                }
            }
            _ => {}
        }
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
        assert_eq!(
            detect(b"%PDF-1.7 ...", "report.txt"),
            Err(ExtractError::Unsupported("PDF".into()))
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
}
