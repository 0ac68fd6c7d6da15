//! Markdown: ATX headings (`#`…`######`) start sections; fenced code is kept as text.

use super::{DocumentType, Extracted, Section};

/// Splits Markdown at ATX headings (`#`…`######`), keeping each heading as section context.
pub(super) fn extract(text: &str) -> Extracted {
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
    Extracted {
        kind: DocumentType::Markdown,
        title,
        sections,
    }
}
