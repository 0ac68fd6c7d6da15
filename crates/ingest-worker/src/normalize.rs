//! Cleaning of extracted text before chunking: running headers, footers and page numbers
//! of paged documents ([`strip_page_furniture`], across pages), then per section
//! ([`normalize`]) line endings, hard line-wraps, hyphenation at line ends, bullets, and runs
//! of blank space. Paragraph breaks (blank lines) are kept, since the chunker splits at them
//! first.

use std::collections::HashMap;

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

/// Lines looked at on each edge (top and bottom) of a page: a running header or footer is
/// at most a title line, a chapter line and a page number.
const EDGE_LINES: usize = 3;

/// Removes running headers, footers and page numbers from the pages of one document.
///
/// A line near the top or the bottom of a page (among its first or last [`EDGE_LINES`]
/// non-blank lines; PDF text comes in drawing order, which is not always top to bottom) is
/// furniture when, with digits masked ("Page 3 of 12" → "page # of #"), it is on the edges
/// of at least two pages and of more than half of them. A line that is only a page number
/// ("12", "- 12 -", "Page 12", "3/12") at the very top or bottom is removed too, whether or
/// not it recurs. A document of one page is returned as it is.
pub fn strip_page_furniture(pages: &[String]) -> Vec<String> {
    if pages.len() < 2 {
        return pages.to_vec();
    }
    let edges: Vec<Vec<usize>> = pages.iter().map(|p| edge_lines(p)).collect();
    let mut pages_with: HashMap<String, usize> = HashMap::new();
    for (page, edge) in pages.iter().zip(&edges) {
        let mut keys: Vec<String> = edge
            .iter()
            .filter_map(|&i| page.lines().nth(i).map(mask))
            .filter(|key| !key.is_empty())
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            *pages_with.entry(key).or_default() += 1;
        }
    }
    let recurring = |key: &str| {
        pages_with
            .get(key)
            .is_some_and(|&n| n >= 2 && n * 2 > pages.len())
    };
    pages
        .iter()
        .zip(&edges)
        .map(|(page, edge)| {
            let outermost = [edge.first().copied(), edge.last().copied()];
            page.lines()
                .enumerate()
                .filter(|(i, line)| {
                    !(edge.contains(i)
                        && (recurring(&mask(line))
                            || (outermost.contains(&Some(*i)) && is_page_number(line))))
                })
                .map(|(_, line)| line)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Indexes of the first and last [`EDGE_LINES`] non-blank lines, in order, without repeats.
fn edge_lines(page: &str) -> Vec<usize> {
    let filled: Vec<usize> = page
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, _)| i)
        .collect();
    let mut edge: Vec<usize> = filled.iter().take(EDGE_LINES).copied().collect();
    let tail = filled.len().saturating_sub(EDGE_LINES).max(edge.len());
    edge.extend(filled.iter().skip(tail).copied());
    edge
}

/// The line compared across pages: white space collapsed, lower case, every run of digits
/// replaced by `#`.
fn mask(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_digits = false;
    for word in line.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            if c.is_ascii_digit() {
                if !in_digits {
                    out.push('#');
                }
                in_digits = true;
            } else {
                in_digits = false;
                out.extend(c.to_lowercase());
            }
        }
        in_digits = false;
    }
    out
}

/// "12", "- 12 -", "[12]", "Page 12", "page 3 of 12", "3 / 12", "p. 4".
fn is_page_number(line: &str) -> bool {
    let masked = mask(line);
    let words: Vec<&str> = masked
        .split(|c: char| {
            c.is_whitespace() || matches!(c, '-' | '–' | '—' | '[' | ']' | '(' | ')' | '/' | '|')
        })
        .filter(|w| !w.is_empty())
        .collect();
    let numbers = words.iter().filter(|w| **w == "#").count();
    (1..=2).contains(&numbers)
        && words
            .iter()
            .all(|w| matches!(*w, "#" | "page" | "p." | "pg." | "of" | "seite" | "von"))
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

    fn pages(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| (*t).to_owned()).collect()
    }

    #[test]
    fn running_headers_footers_and_page_numbers_go() {
        let input = pages(&[
            "Acme Employee Handbook\nLeave policy\nEveryone gets 25 days of leave.\nConfidential\n1",
            "Acme Employee Handbook\nCarry-over is allowed until\n31 March of the next year.\nConfidential\n2",
            "Acme Employee Handbook\nSick leave needs a note\nafter three days.\nConfidential\n3",
        ]);
        let out = strip_page_furniture(&input);
        assert_eq!(out[0], "Leave policy\nEveryone gets 25 days of leave.");
        assert_eq!(out[2], "Sick leave needs a note\nafter three days.");
    }

    #[test]
    fn masked_digits_match_changing_page_numbers() {
        let input = pages(&[
            "Acme Handbook — page 1 of 3\nIntro text here.",
            "Travel is booked centrally.\nAcme Handbook — page 2 of 3",
            "Acme Handbook — page 3 of 3\nExpenses are paid monthly.",
        ]);
        let out = strip_page_furniture(&input);
        assert_eq!(
            out,
            [
                "Intro text here.",
                "Travel is booked centrally.",
                "Expenses are paid monthly."
            ]
        );
    }

    #[test]
    fn content_that_does_not_recur_stays() {
        // The first page has no header; "Leave" is on only one page's edge.
        let input = pages(&[
            "Leave\nPolicy text one.",
            "Handbook\nPolicy text two.\n- 2 -",
            "Handbook\nPolicy text three.\n- 3 -",
        ]);
        let out = strip_page_furniture(&input);
        assert_eq!(
            out,
            [
                "Leave\nPolicy text one.",
                "Policy text two.",
                "Policy text three."
            ]
        );
        // A number in a sentence, or on a single page, is not a page number.
        let one = pages(&["Total\n42"]);
        assert_eq!(strip_page_furniture(&one), one);
        assert!(!is_page_number("Call 555 1234 now"));
        assert!(is_page_number("Page 4 of 12"));
        assert!(is_page_number("– 7 –"));
        assert!(!is_page_number("Chapter 4"));
    }

    #[test]
    fn form_feed_pages_then_normalise() {
        let text = "ACME CORP\nThe reimburse-\nment is paid monthly.\n\x0cACME CORP\nTravel is booked\ncentrally.\n";
        let pages: Vec<String> = text.split('\x0c').map(str::to_owned).collect();
        let cleaned: Vec<String> = strip_page_furniture(&pages)
            .iter()
            .map(|p| normalize(p))
            .collect();
        assert_eq!(
            cleaned,
            [
                "The reimbursement is paid monthly.",
                "Travel is booked centrally."
            ]
        );
    }
}
