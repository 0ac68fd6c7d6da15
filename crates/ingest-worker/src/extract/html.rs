//! HTML: the main text of a page, without scripts, styles and navigation boilerplate.

use scraper::{ElementRef, Html, Node, Selector};

use super::{
    Budget, CLOCK_EVERY, DocumentType, ExtractError, Extracted, MAX_DEPTH, MAX_SECTIONS, Section,
    too_many_sections,
};

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
///
/// Deep nesting is refused before parsing: the HTML parser looks through every open element
/// for each start tag, so 100,000 nested `<div>`s take minutes (in one call the deadline
/// cannot interrupt) though they are only 500 KB. The tree is then walked with an explicit
/// stack, never by recursion (deep recursion overflows a thread's stack, an abort no
/// `catch_unwind` stops), checking the budget's clock every few thousand nodes and refusing
/// more than [`MAX_SECTIONS`] headings.
pub(super) fn extract(text: &str, budget: &Budget) -> Result<Extracted, ExtractError> {
    if nesting_exceeds(text, MAX_DEPTH) {
        return Err(ExtractError::TooDeep {
            kind: "HTML",
            limit: MAX_DEPTH,
        });
    }
    let document = Html::parse_document(text);
    budget.check_time()?;
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
        walk(root, &mut sections, budget)?;
    }
    sections.retain(|s| !s.text.trim().is_empty());
    Ok(Extracted {
        kind: DocumentType::Html,
        title,
        sections,
    })
}

/// Appends the text under `root` to the last section, depth first; `None` on the stack
/// closes a block element (a blank line after it).
fn walk(
    root: ElementRef<'_>,
    sections: &mut Vec<Section>,
    budget: &Budget,
) -> Result<(), ExtractError> {
    let mut stack: Vec<_> = root.children().rev().map(Some).collect();
    let mut visited = 0usize;
    while let Some(step) = stack.pop() {
        visited += 1;
        if visited.is_multiple_of(CLOCK_EVERY) {
            budget.check_time()?;
        }
        let Some(child) = step else {
            if let Some(current) = sections.last_mut() {
                current.text.push_str("\n\n");
            }
            continue;
        };
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
                let Some(element) = ElementRef::wrap(child) else {
                    continue;
                };
                if matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6") {
                    if sections.len() >= MAX_SECTIONS {
                        return Err(too_many_sections("HTML"));
                    }
                    sections.push(Section {
                        heading: collapse(&element.text().collect::<String>()),
                        ..Section::default()
                    });
                    continue;
                }
                if name == "li"
                    && let Some(current) = sections.last_mut()
                {
                    current.text.push_str("\n- ");
                }
                if BLOCK_TAGS.contains(&name) {
                    stack.push(None);
                }
                stack.extend(child.children().rev().map(Some));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Elements without content or whose end tag may be left out: they never deepen the tree
/// of a page that leaves them open.
const UNNESTED_TAGS: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot",
    "colgroup", "caption", "option", "optgroup", "rb", "rt", "rtc", "rp", "html", "head", "body",
];
/// Elements whose content is text up to their end tag.
const RAW_TEXT_TAGS: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
];

/// Whether start tags nest deeper than `limit`, by a scan of the tags alone: a stack of the
/// open elements' names, which an end tag pops down to its element (an end tag of nothing
/// open is ignored, as the parser ignores it); comments and raw text are skipped; `/>`
/// closes an element only in SVG and MathML, as in the parser. An approximation of the
/// parser's tree, on the side of depth; one pass, the stack never past `limit`.
fn nesting_exceeds(text: &str, limit: usize) -> bool {
    let bytes = text.as_bytes();
    let find = |from: usize, needle: &[u8]| {
        bytes
            .get(from..)
            .and_then(|rest| {
                rest.windows(needle.len())
                    .position(|w| w.eq_ignore_ascii_case(needle))
            })
            .map(|at| from + at)
    };
    let mut open: Vec<String> = Vec::new();
    // How many elements were open below the outermost open <svg> or <math>, if any.
    let mut foreign_at: Option<usize> = None;
    let mut at = 0usize;
    while let Some(lt) = bytes[at..].iter().position(|&b| b == b'<').map(|i| at + i) {
        let rest = &bytes[lt + 1..];
        if rest.starts_with(b"!--") {
            at = find(lt + 4, b"-->").map_or(bytes.len(), |end| end + 3);
            continue;
        }
        let end_tag = rest.first() == Some(&b'/');
        let name_bytes: Vec<u8> = rest[usize::from(end_tag)..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .map(u8::to_ascii_lowercase)
            .collect();
        let Some(gt) = find(lt, b">") else {
            break;
        };
        at = gt + 1;
        let Ok(name) = String::from_utf8(name_bytes) else {
            continue;
        };
        if name.is_empty() || !name.as_bytes()[0].is_ascii_alphabetic() {
            continue;
        }
        if end_tag {
            if let Some(position) = open.iter().rposition(|n| *n == name) {
                open.truncate(position);
                if foreign_at.is_some_and(|f| open.len() <= f) {
                    foreign_at = None;
                }
            }
            continue;
        }
        if RAW_TEXT_TAGS.contains(&name.as_str()) {
            at = find(at, format!("</{name}").as_bytes()).unwrap_or(bytes.len());
            continue;
        }
        let foreign = matches!(name.as_str(), "svg" | "math");
        if bytes[gt - 1] == b'/' && (foreign || foreign_at.is_some()) {
            continue;
        }
        if UNNESTED_TAGS.contains(&name.as_str()) {
            continue;
        }
        if foreign && foreign_at.is_none() {
            foreign_at = Some(open.len());
        }
        open.push(name);
        if open.len() > limit {
            return true;
        }
    }
    false
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::extract::Limits;

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    fn nested(depth: usize) -> String {
        format!(
            "<html><body>{}deep text{}</body></html>",
            "<div>".repeat(depth),
            "</div>".repeat(depth)
        )
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let started = std::time::Instant::now();
        assert_eq!(
            extract(&nested(100_000), &budget()),
            Err(ExtractError::TooDeep {
                kind: "HTML",
                limit: MAX_DEPTH
            })
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Within the limit, on a small stack: the walk does not recurse.
        let page = nested(MAX_DEPTH - 2);
        let doc = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || extract(&page, &budget()))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        let text: String = doc.sections.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(text.trim(), "deep text");
    }

    #[test]
    fn the_nesting_scan_follows_tags_only() {
        let limit = 3;
        assert!(!nesting_exceeds(
            "<div><div><div>x</div></div></div><div>y</div>",
            limit
        ));
        assert!(nesting_exceeds("<div><div><span><b>x", limit));
        // Void, self-closing and optional-end elements, comments, raw text and stray `<`.
        let flat = concat!(
            "<!doctype html><html><head><meta charset=utf-8><title><div><div><div><div></title>",
            "<script>if (a < b) { x = '<div><div><div><div>'; }</script></head><body>",
            "<p>one<p>two<ul><li>a<li>b</ul><br><img src=x/><svg><path/><path/><path/><path/></svg>",
            "<!-- <div><div><div><div> --> 1 < 2 <table><tr><td>c<td>d</table></body></html>"
        );
        assert!(!nesting_exceeds(flat, limit));
        // Outside SVG and MathML, `/>` does not close an element.
        assert!(nesting_exceeds("<div/><div/><div/><div/>", limit));
        assert!(!nesting_exceeds("<svg/><svg/><svg/><svg/><math/>", limit));
        // An end tag of nothing open closes nothing.
        assert!(nesting_exceeds(
            "<div></x><div></x><div></x><div></x>",
            limit
        ));
        assert!(!nesting_exceeds(
            "<div><span><b></div><div><span><b></div>",
            limit
        ));
    }

    #[test]
    fn block_order_is_kept() {
        let doc = extract(
            "<body><div><p>one</p>two<ul><li>a</li><li>b</li></ul></div><h2>Next</h2><p>three</p></body>",
            &budget(),
        )
        .unwrap();
        assert_eq!(doc.sections[0].text.trim(), "one\n\ntwo\n- a\n\n\n- b");
        assert_eq!(doc.sections[1].heading, "Next");
        assert_eq!(doc.sections[1].text.trim(), "three");
    }

    #[test]
    fn an_expired_deadline_stops_the_walk() {
        let budget = Budget::start(Limits {
            timeout: Some(std::time::Duration::ZERO),
            ..Limits::default()
        });
        let page = format!("<body>{}</body>", "<p>x</p>".repeat(10_000));
        assert!(matches!(
            extract(&page, &budget),
            Err(ExtractError::TimedOut(_))
        ));
    }
}
