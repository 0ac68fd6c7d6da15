//! Markdown: ATX headings (`#`…`######`) start sections; fenced code is kept as text.

use super::{DocumentType, ExtractError, Extracted, MAX_SECTIONS, Section, too_many_sections};

/// Splits Markdown at ATX headings (`#`…`######`), keeping each heading as section context.
/// One pass over the lines, no nesting; more than [`MAX_SECTIONS`] headings are refused as
/// they are met (ten million `# a` lines would otherwise cost gigabytes of sections).
pub(super) fn extract(text: &str) -> Result<Extracted, ExtractError> {
    let mut title = None;
    let mut sections = vec![Section::default()];
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
            if sections.len() >= MAX_SECTIONS {
                return Err(too_many_sections("Markdown"));
            }
            if level == 1 && title.is_none() {
                title = Some(heading.clone());
            }
            sections.push(Section {
                heading,
                ..Section::default()
            });
            continue;
        }
        if let Some(current) = sections.last_mut() {
            current.text.push_str(line);
            current.text.push('\n');
        }
    }
    sections.retain(|s| !s.text.trim().is_empty());
    Ok(Extracted {
        kind: DocumentType::Markdown,
        title,
        sections,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn millions_of_headings_are_refused_early() {
        let text = "# a\n".repeat(MAX_SECTIONS + 1);
        assert_eq!(
            extract(&text),
            Err(ExtractError::TooMany {
                kind: "Markdown",
                what: "sections or pages",
                limit: MAX_SECTIONS
            })
        );
    }

    #[test]
    fn a_gigantic_single_line_is_one_section() {
        let line = "x".repeat(8 * 1024 * 1024);
        let doc = extract(&line).unwrap();
        assert_eq!(doc.sections.len(), 1);
        assert_eq!(doc.sections[0].text.len(), line.len() + 1);
    }
}
