//! DOCX (Office Open XML): the body of `word/document.xml`.
//!
//! Paragraphs become paragraphs; paragraphs styled as headings (`Heading1`…`Heading6`, or any
//! style whose name is "heading N" in `word/styles.xml`, as localised Word writes them) and
//! `Title` start sections; list paragraphs become `- ` bullets; each table row becomes one
//! paragraph, its cells joined by ` | `. Deleted text of tracked changes, field codes, table
//! of contents entries, drawings and text boxes are left out; headers, footers and footnotes
//! live in other parts of the package and are not read.
//!
//! A DOCX is a ZIP archive, so the reader caps what it decompresses (a zip bomb expands a
//! few kilobytes into gigabytes): it reads three parts by name, each through a reader that
//! stops one byte past the part's cap whatever the archive declares, so at most
//! `MAX_DOCUMENT_XML + 2 × MAX_PART_XML` bytes are ever inflated, however many entries the
//! archive has (and it may list at most `MAX_ENTRIES`). The XML parser's node count is
//! capped, and the tree may nest at most [`MAX_DEPTH`] levels (checked without recursion
//! before the reader, which recurses, walks it).

use std::collections::HashMap;
use std::io::{Cursor, Read};

use roxmltree::{Document, Node, ParsingOptions};

use super::{Budget, CLOCK_EVERY, DocumentType, ExtractError, Extracted, MAX_DEPTH, Section};

const KIND: &str = "DOCX";

/// Most bytes read from `word/document.xml` (a 1,000-page manual is ~20 MB of XML).
pub(crate) const MAX_DOCUMENT_XML: u64 = 32 * 1024 * 1024;
/// Most bytes read from the small parts (styles, properties).
const MAX_PART_XML: u64 = 4 * 1024 * 1024;
/// Most XML nodes the parser may build (bounds its memory; Word writes ~10 bytes of XML per
/// node, so a 1,000-page manual has ~2 million).
const MAX_XML_NODES: u32 = 4_000_000;
/// Most entries in the archive (a Word document has a few dozen, a few hundred with images).
const MAX_ENTRIES: usize = 10_000;

pub(super) fn extract(bytes: &[u8], budget: &Budget) -> Result<Extracted, ExtractError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(corrupt)?;
    if archive.len() > MAX_ENTRIES {
        return Err(ExtractError::TooMany {
            kind: KIND,
            what: "entries",
            limit: MAX_ENTRIES,
        });
    }
    let body = read_part(&mut archive, "word/document.xml", MAX_DOCUMENT_XML)?
        .ok_or_else(|| corrupt("it has no word/document.xml"))?;
    // Styles and properties only refine headings and the title: unreadable ones are ignored.
    let styles = read_part(&mut archive, "word/styles.xml", MAX_PART_XML)
        .ok()
        .flatten()
        .map(|xml| style_kinds(&xml))
        .unwrap_or_default();
    let core_title = read_part(&mut archive, "docProps/core.xml", MAX_PART_XML)
        .ok()
        .flatten()
        .and_then(|xml| core_title(&xml));

    budget.check_time()?;
    let document = parse(&body)?;
    check_depth(&document)?;
    budget.check_time()?;
    let mut reader = Reader {
        styles: &styles,
        title: None,
        sections: vec![Section::default()],
        budget,
        visited: 0,
    };
    if let Some(body) = document
        .root_element()
        .children()
        .find(|n| n.tag_name().name() == "body")
    {
        reader.blocks(body)?;
    }
    let Reader {
        title,
        mut sections,
        ..
    } = reader;
    sections.retain(|s| !s.text.trim().is_empty());
    Ok(Extracted {
        kind: DocumentType::Docx,
        title: title.or(core_title),
        sections,
    })
}

fn corrupt(detail: impl std::fmt::Display) -> ExtractError {
    ExtractError::Corrupt {
        kind: KIND,
        detail: detail.to_string(),
    }
}

/// The text of one part of the package, or `None` if there is no such part. Reads at most
/// `limit` bytes whatever the archive declares.
fn read_part(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: u64,
) -> Result<Option<String>, ExtractError> {
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(corrupt(format!("{name}: {e}"))),
    };
    let too_large = ExtractError::TooLarge { kind: KIND, limit };
    if file.size() > limit {
        return Err(too_large);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(file.size()).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| corrupt(format!("{name}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(too_large);
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| corrupt(format!("{name} is not UTF-8 XML")))
}

fn parse(xml: &str) -> Result<Document<'_>, ExtractError> {
    let options = ParsingOptions {
        nodes_limit: MAX_XML_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(xml, options)
        .map_err(|e| corrupt(format!("word/document.xml: {e}")))
}

/// Fails if elements nest more than [`MAX_DEPTH`] deep. Walks the tree by its links (first
/// child, next sibling, parent): no recursion, no stack, whatever its shape.
fn check_depth(document: &Document<'_>) -> Result<(), ExtractError> {
    let mut node = document.root();
    let mut depth = 0usize;
    loop {
        if let Some(child) = node.first_element_child() {
            node = child;
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(ExtractError::TooDeep {
                    kind: KIND,
                    limit: MAX_DEPTH,
                });
            }
            continue;
        }
        loop {
            if let Some(next) = node.next_sibling_element() {
                node = next;
                break;
            }
            match node.parent() {
                Some(parent) => {
                    node = parent;
                    depth = depth.saturating_sub(1);
                }
                None => return Ok(()),
            }
        }
    }
}

/// What a paragraph style makes of a paragraph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StyleKind {
    Title,
    Heading(u8),
    List,
    /// Table of contents entries: a copy of the headings with page numbers.
    Contents,
}

fn val<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == "val")
        .map(|a| a.value())
}

fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|n| n.tag_name().name() == name)
}

/// The kind of a style from its name ("heading 2", "Title", "List Bullet", "toc 1") or, for
/// documents without `styles.xml`, from its id ("Heading2").
fn kind_from_name(name: &str) -> Option<StyleKind> {
    let name = name.trim().to_ascii_lowercase();
    let compact: String = name.chars().filter(|c| !c.is_whitespace()).collect();
    if compact == "title" {
        return Some(StyleKind::Title);
    }
    if let Some(level) = compact.strip_prefix("heading")
        && let Ok(level) = level.parse::<u8>()
        && (1..=6).contains(&level)
    {
        return Some(StyleKind::Heading(level));
    }
    if compact.starts_with("toc") || compact.starts_with("tableofcontents") {
        return Some(StyleKind::Contents);
    }
    if compact.starts_with("list") {
        return Some(StyleKind::List);
    }
    None
}

/// Paragraph style ids → kinds, from `word/styles.xml`: by the style's name, else by its
/// outline level (a custom heading style).
fn style_kinds(xml: &str) -> HashMap<String, StyleKind> {
    let Ok(document) = Document::parse(xml) else {
        return HashMap::new();
    };
    let mut kinds = HashMap::new();
    for style in document
        .descendants()
        .filter(|n| n.tag_name().name() == "style")
    {
        let Some(id) = style
            .attributes()
            .find(|a| a.name() == "styleId")
            .map(|a| a.value())
        else {
            continue;
        };
        let by_name = child(style, "name").and_then(val).and_then(kind_from_name);
        let by_outline = || {
            child(style, "pPr")
                .and_then(|p| child(p, "outlineLvl"))
                .and_then(val)
                .and_then(|v| v.parse::<u8>().ok())
                .filter(|level| *level < 6)
                .map(|level| StyleKind::Heading(level + 1))
        };
        if let Some(kind) = by_name.or_else(by_outline) {
            kinds.insert(id.to_owned(), kind);
        }
    }
    kinds
}

/// `dc:title` of `docProps/core.xml`, if set.
fn core_title(xml: &str) -> Option<String> {
    let document = Document::parse(xml).ok()?;
    let title = document
        .descendants()
        .find(|n| n.tag_name().name() == "title")?
        .text()?;
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then_some(title)
}

struct Reader<'s> {
    styles: &'s HashMap<String, StyleKind>,
    title: Option<String>,
    sections: Vec<Section>,
    budget: &'s Budget,
    /// Blocks read, to look at the clock now and then.
    visited: usize,
}

impl Reader<'_> {
    fn push(&mut self, text: &str) {
        if let Some(section) = self.sections.last_mut() {
            section.text.push_str(text);
        }
    }

    /// Block-level content: paragraphs, tables, and the containers that hold them (the
    /// recursion is as deep as the XML, at most [`MAX_DEPTH`]).
    fn blocks(&mut self, parent: Node<'_, '_>) -> Result<(), ExtractError> {
        for node in parent.children().filter(Node::is_element) {
            self.visited += 1;
            if self.visited.is_multiple_of(CLOCK_EVERY) {
                self.budget.check_time()?;
            }
            match node.tag_name().name() {
                "p" => self.paragraph(node),
                "tbl" => self.table(node),
                // Content controls, custom XML, tracked insertions: look inside.
                "sdt" | "sdtContent" | "customXml" | "ins" | "moveTo" => self.blocks(node)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn style(&self, paragraph: Node<'_, '_>) -> Option<StyleKind> {
        let properties = child(paragraph, "pPr")?;
        let by_style = child(properties, "pStyle")
            .and_then(val)
            .and_then(|id| self.styles.get(id).copied().or_else(|| kind_from_name(id)));
        let by_outline = || {
            child(properties, "outlineLvl")
                .and_then(val)
                .and_then(|v| v.parse::<u8>().ok())
                .filter(|level| *level < 6)
                .map(|level| StyleKind::Heading(level + 1))
        };
        let numbered = || child(properties, "numPr").map(|_| StyleKind::List);
        by_style.or_else(by_outline).or_else(numbered)
    }

    fn paragraph(&mut self, paragraph: Node<'_, '_>) {
        let mut text = String::new();
        inline_text(paragraph, &mut text);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            return;
        }
        match self.style(paragraph) {
            Some(StyleKind::Title) if self.title.is_none() => {
                self.title = Some(line.clone());
                self.sections.push(Section {
                    heading: line,
                    ..Section::default()
                });
            }
            Some(StyleKind::Title | StyleKind::Heading(_)) => self.sections.push(Section {
                heading: line,
                ..Section::default()
            }),
            Some(StyleKind::Contents) => {}
            Some(StyleKind::List) => {
                self.push("- ");
                self.push(text.trim());
                self.push("\n");
            }
            None => {
                // After list items (one per line), a paragraph starts a block of its own.
                if self
                    .sections
                    .last()
                    .is_some_and(|s| s.text.ends_with('\n') && !s.text.ends_with("\n\n"))
                {
                    self.push("\n");
                }
                self.push(text.trim());
                self.push("\n\n");
            }
        }
    }

    fn table(&mut self, table: Node<'_, '_>) {
        self.push("\n\n");
        for row in table
            .descendants()
            .filter(|n| n.tag_name().name() == "tr")
            // Rows of nested tables are part of their cell's text.
            .filter(|row| row.ancestors().find(|a| a.tag_name().name() == "tbl") == Some(table))
        {
            let cells: Vec<String> = row
                .descendants()
                .filter(|n| n.tag_name().name() == "tc")
                .filter(|cell| cell.ancestors().find(|a| a.tag_name().name() == "tr") == Some(row))
                .map(|cell| {
                    let mut text = String::new();
                    inline_text(cell, &mut text);
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect();
            if cells.iter().any(|c| !c.is_empty()) {
                self.push(&cells.join(" | "));
                self.push("\n\n");
            }
        }
    }
}

/// Appends the visible text under `node`: runs, tabs, breaks; paragraphs inside (table
/// cells) end with a space.
fn inline_text(node: Node<'_, '_>, out: &mut String) {
    for child in node.children() {
        if child.is_text() {
            // Text outside `w:t` is only formatting white space.
            continue;
        }
        match child.tag_name().name() {
            "t" => out.push_str(child.text().unwrap_or_default()),
            "tab" | "ptab" => out.push(' '),
            "br" | "cr" => out.push('\n'),
            "noBreakHyphen" => out.push('-'),
            // Properties, deleted text, field codes, drawings and text boxes (which Word also
            // writes twice, as a drawing and as a fallback).
            "pPr" | "rPr" | "del" | "moveFrom" | "delText" | "instrText" | "drawing" | "pict"
            | "object" | "AlternateContent" => {}
            "p" => {
                inline_text(child, out);
                out.push(' ');
            }
            _ => inline_text(child, out),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;
    use crate::extract::Limits;

    fn budget() -> Budget {
        Budget::start(Limits::default())
    }

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    fn docx(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, text) in parts {
            archive
                .start_file(*name, SimpleFileOptions::default())
                .unwrap();
            archive.write_all(text.as_bytes()).unwrap();
        }
        archive.finish().unwrap().into_inner()
    }

    fn body(inner: &str) -> String {
        format!(r#"<?xml version="1.0"?><w:document {W}><w:body>{inner}</w:body></w:document>"#)
    }

    fn para(style: Option<&str>, text: &str) -> String {
        let style = style
            .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
            .unwrap_or_default();
        format!("<w:p>{style}<w:r><w:t>{text}</w:t></w:r></w:p>")
    }

    #[test]
    fn headings_lists_and_tables() {
        let xml = body(&[
            para(Some("Title"), "Travel policy"),
            para(None, "Book through the portal."),
            para(Some("Heading2"), "Per diem"),
            r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>Meals are </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>covered</w:t></w:r><w:del><w:r><w:delText>not</w:delText></w:r></w:del></w:p>"#.to_owned(),
            "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>City</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Rate</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>Paris</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>90</w:t><w:tab/><w:t>EUR</w:t></w:r></w:p></w:tc></w:tr></w:tbl>".to_owned(),
        ].concat());
        let doc = extract(&docx(&[("word/document.xml", &xml)]), &budget()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("Travel policy"));
        let headings: Vec<_> = doc.sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(headings, ["Travel policy", "Per diem"]);
        let text = &doc.sections[1].text;
        assert!(text.contains("- Meals are covered\n"), "{text:?}");
        assert!(text.contains("City | Rate\n\nParis | 90 EUR"), "{text:?}");
        assert!(!text.contains("not"), "{text:?}");
    }

    #[test]
    fn localised_heading_styles_are_read_from_styles_xml() {
        let styles = format!(
            r#"<w:styles {W}><w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/></w:style><w:style w:type="paragraph" w:styleId="Custom"><w:name w:val="Chapter"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style></w:styles>"#
        );
        let xml = body(
            &[
                para(Some("berschrift1"), "Urlaub"),
                para(None, "Text."),
                para(Some("Custom"), "Kapitel"),
                para(None, "Mehr."),
            ]
            .concat(),
        );
        let doc = extract(
            &docx(&[("word/document.xml", &xml), ("word/styles.xml", &styles)]),
            &budget(),
        )
        .unwrap();
        let headings: Vec<_> = doc.sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(headings, ["Urlaub", "Kapitel"]);
    }

    #[test]
    fn readable_errors() {
        let no_body = docx(&[("word/other.xml", "<x/>")]);
        assert!(
            extract(&no_body, &budget())
                .unwrap_err()
                .to_string()
                .contains("no word/document.xml")
        );
        let bad_xml = docx(&[("word/document.xml", "<w:document><w:body>")]);
        assert!(matches!(
            extract(&bad_xml, &budget()),
            Err(ExtractError::Corrupt { kind: "DOCX", .. })
        ));
        assert!(matches!(
            extract(b"PK\x03\x04 truncated", &budget()),
            Err(ExtractError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_zip_bomb_is_refused_without_inflating_it() {
        let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        archive.start_file("word/document.xml", options).unwrap();
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..=(MAX_DOCUMENT_XML / zeros.len() as u64) {
            archive.write_all(&zeros).unwrap();
        }
        let bytes = archive.finish().unwrap().into_inner();
        assert!(bytes.len() < 200 * 1024, "{} bytes", bytes.len());
        assert_eq!(
            extract(&bytes, &budget()),
            Err(ExtractError::TooLarge {
                kind: "DOCX",
                limit: MAX_DOCUMENT_XML
            })
        );
    }

    #[test]
    fn deep_xml_is_refused_before_the_recursive_reader() {
        let depth = 50_000;
        let xml = body(&format!(
            "{}<w:p><w:r><w:t>x</w:t></w:r></w:p>{}",
            "<w:sdt>".repeat(depth),
            "</w:sdt>".repeat(depth)
        ));
        let bytes = docx(&[("word/document.xml", &xml)]);
        let result = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || extract(&bytes, &budget()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(
            result,
            Err(ExtractError::TooDeep {
                kind: "DOCX",
                limit: MAX_DEPTH
            })
        );
        // Nesting within the limit is read.
        let xml = body(&format!(
            "{}<w:p><w:r><w:t>inside</w:t></w:r></w:p>{}",
            "<w:sdt>".repeat(100),
            "</w:sdt>".repeat(100)
        ));
        let doc = extract(&docx(&[("word/document.xml", &xml)]), &budget()).unwrap();
        assert_eq!(doc.sections[0].text.trim(), "inside");
    }

    #[test]
    fn too_many_entries_are_refused() {
        let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        archive.start_file("word/document.xml", options).unwrap();
        archive
            .write_all(body(&para(None, "x")).as_bytes())
            .unwrap();
        for i in 0..=MAX_ENTRIES {
            archive.start_file(format!("media/{i}"), options).unwrap();
        }
        let bytes = archive.finish().unwrap().into_inner();
        assert_eq!(
            extract(&bytes, &budget()),
            Err(ExtractError::TooMany {
                kind: "DOCX",
                what: "entries",
                limit: MAX_ENTRIES
            })
        );
    }
}
