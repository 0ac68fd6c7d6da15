//! HTML: the main text of a page, without scripts, styles and navigation boilerplate.

use scraper::{ElementRef, Html, Node, Selector};

use super::{DocumentType, Extracted, Section};

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
pub(super) fn extract(text: &str) -> Extracted {
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
    let mut sections = vec![Section::default()];
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
                        ..Section::default()
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
