//! Cleaning of extracted text before chunking: line endings, hard line-wraps, hyphenation at
//! line ends, bullets, and runs of blank space. Paragraph breaks (blank lines) are kept, since
//! the chunker splits at them first.

/// Characters used as list bullets, written as `- ` after cleaning.
const BULLETS: &[char] = &['•', '◦', '▪', '‣', '●', '○', '■', '*', '–'];

pub fn normalize(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = collapse_spaces(raw);
        if line.is_empty() {
            flush(&mut current, &mut paragraphs);
            continue;
        }
        current.push(standardise_bullet(&line));
    }
    flush(&mut current, &mut paragraphs);
    paragraphs.join("\n\n")
}

/// Joins the lines of one paragraph: hard-wrapped prose becomes one line; a word split by
/// a hyphen at a line end is rejoined; list items keep their own lines.
fn flush(lines: &mut Vec<String>, paragraphs: &mut Vec<String>) {
    if lines.is_empty() {
        return;
    }
    let mut out = String::new();
    for line in lines.drain(..) {
        if out.is_empty() {
            out = line;
            continue;
        }
        if line.starts_with("- ") {
            out.push('\n');
            out.push_str(&line);
        } else if out.ends_with('-')
            && ends_with_word_hyphen(&out)
            && line.starts_with(|c: char| c.is_lowercase())
        {
            out.pop();
            out.push_str(&line);
        } else {
            out.push(' ');
            out.push_str(&line);
        }
    }
    paragraphs.push(out);
}

/// `…exam-` (a letter before the hyphen) but not `… -` or `--`.
fn ends_with_word_hyphen(text: &str) -> bool {
    let mut chars = text.chars().rev();
    chars.next() == Some('-') && chars.next().is_some_and(char::is_alphabetic)
}

fn collapse_spaces(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn standardise_bullet(line: &str) -> String {
    let mut chars = line.chars();
    match (chars.next(), chars.next()) {
        (Some(c), Some(' ')) if BULLETS.contains(&c) => format!("- {}", chars.as_str()),
        _ => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_hard_wraps_and_keeps_paragraphs() {
        let text = "Employees accrue leave\nmonthly, in  arrears.\r\n\r\n\n\nSecond   paragraph.\n";
        assert_eq!(
            normalize(text),
            "Employees accrue leave monthly, in arrears.\n\nSecond paragraph."
        );
    }

    #[test]
    fn fixes_hyphenation_at_line_ends_only_inside_words() {
        assert_eq!(
            normalize("the reimburse-\nment is paid"),
            "the reimbursement is paid"
        );
        assert_eq!(normalize("pre-\nApproved"), "pre- Approved");
        assert_eq!(normalize("a range 10 -\nmore"), "a range 10 - more");
    }

    #[test]
    fn standardises_bullets_and_keeps_items_apart() {
        let text = "Bring:\n• a laptop\n* a badge\n- a charger";
        assert_eq!(
            normalize(text),
            "Bring:\n- a laptop\n- a badge\n- a charger"
        );
    }
}
