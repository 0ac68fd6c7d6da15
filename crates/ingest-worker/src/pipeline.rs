//! From bytes to chunk records: extract → clean → split, per section. Pure and synchronous
//! (run it off the async workers); the worker adds the I/O around it.
//!
//! Chunks are sized in tokens of the embedding model, and the embedder embeds each chunk
//! behind its title and section ([`rag_core::chunk::embedding_prefix`]), so the budget of a
//! chunk's text is the configured size or what the model takes less that prefix, whichever
//! is smaller: title, section and text together are never truncated by the model.

use rag_core::chunk::embedding_prefix;
use rag_core::{ChunkRecord, DocumentId, ObjectKey, point_id};
use rag_embeddings::TokenCounter;

use crate::chunk::{self, ChunkOptions};
use crate::extract::{self, Budget, ExtractError, Limits, Section};
use crate::normalize::normalize;

#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub title: String,
    pub kind: &'static str,
    pub chunks: Vec<ChunkRecord>,
}

/// How documents are cut into chunks: sizes in tokens, and what counts them.
#[derive(Clone, Debug)]
pub struct Chunking {
    /// Target size and overlap of a chunk's text, in tokens.
    pub options: ChunkOptions,
    pub tokens: TokenCounter,
}

/// Chunks shorter than this many alphanumeric characters carry no content (a lone "-" or a
/// page number) and are dropped.
const MIN_ALNUM: usize = 3;

/// The title and section in front of a chunk take at most this share of the model's input;
/// longer ones (a paragraph styled as a heading) are shortened on the chunk records.
const PREFIX_SHARE: usize = 4;

/// [`prepare_within`] with the default [`Limits`] (no deadline).
pub fn prepare(
    bytes: &[u8],
    key: &ObjectKey,
    object_key: &str,
    version: u64,
    chunking: &Chunking,
) -> Result<Prepared, ExtractError> {
    let budget = Budget::start(Limits::default());
    prepare_within(bytes, key, object_key, version, chunking, &budget)
}

/// Extracts, cleans and chunks a document within `budget`: its text limits, and its
/// deadline, which extraction checks as it goes and chunking on every token count.
pub fn prepare_within(
    bytes: &[u8],
    key: &ObjectKey,
    object_key: &str,
    version: u64,
    chunking: &Chunking,
    budget: &Budget,
) -> Result<Prepared, ExtractError> {
    let extracted = extract::extract_within(bytes, &key.file_name, budget)?;
    let title = extracted
        .title
        .clone()
        .unwrap_or_else(|| key.file_name.clone());
    let tokens = &chunking.tokens;
    let count = |text: &str| {
        budget.check_time()?;
        tokens
            .count(text)
            .map_err(|e| ExtractError::Tokenizer(e.to_string()))
    };
    let prefix_budget = tokens.max_text_tokens() / PREFIX_SHARE;
    let chunk_title = shorten(&title, &|t| {
        Ok(count(&embedding_prefix(t, ""))? <= prefix_budget)
    })?;
    let mut chunks = Vec::new();
    // Offsets are in characters of the cleaned document: the sections joined by blank lines.
    let mut document_chars = 0usize;
    for run in runs(&extracted.sections) {
        let heading = shorten(run.heading, &|h| {
            Ok(count(&embedding_prefix(&chunk_title, h))? <= prefix_budget)
        })?;
        let prefix = count(&embedding_prefix(&chunk_title, &heading))?;
        let size = chunking
            .options
            .size
            .min(tokens.max_text_tokens().saturating_sub(prefix))
            .max(1);
        let options = ChunkOptions {
            size,
            overlap: chunking.options.overlap,
        };
        let text = &run.text;
        let mut byte_cursor = 0usize;
        let mut char_cursor = 0usize;
        for range in chunk::split(text, options, &count)? {
            char_cursor += text[byte_cursor..range.start].chars().count();
            byte_cursor = range.start;
            let slice = &text[range.clone()];
            let length = slice.chars().count();
            if slice.chars().filter(|c| c.is_alphanumeric()).count() >= MIN_ALNUM {
                let mut chunk = record(
                    key,
                    object_key,
                    version,
                    &chunk_title,
                    &heading,
                    slice,
                    document_chars + char_cursor,
                    length,
                );
                chunk.page = run.page_at(range.start);
                chunks.push(chunk);
            }
        }
        document_chars += text.chars().count() + 2;
    }
    if chunks.is_empty() {
        return Err(ExtractError::Empty);
    }
    for (index, chunk) in chunks.iter_mut().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        chunk.chunk_index = index;
        chunk.id = point_id(chunk.document_id, version, index);
    }
    Ok(Prepared {
        title,
        kind: extracted.kind.as_str(),
        chunks,
    })
}

/// `text` itself if it `fits`, else its longest run of leading words that fits followed by
/// an ellipsis (empty if not even one word does).
fn shorten(
    text: &str,
    fits: &dyn Fn(&str) -> Result<bool, ExtractError>,
) -> Result<String, ExtractError> {
    if fits(text)? {
        return Ok(text.to_owned());
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let cut = |n: usize| format!("{}…", words[..n].join(" "));
    // The first `lo` words fit; `hi` or more do not.
    let (mut lo, mut hi) = (0, words.len());
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if fits(&cut(mid))? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(if lo == 0 { String::new() } else { cut(lo) })
}

/// Cleaned text chunked as one: a section, or consecutive pages under the same heading, so
/// that a paragraph running over a page break can stay in one chunk.
struct Run<'a> {
    heading: &'a str,
    text: String,
    /// (byte offset in `text`, page) where each page starts, ascending.
    pages: Vec<(usize, u32)>,
}

impl Run<'_> {
    /// The page on which the text at byte `offset` is.
    fn page_at(&self, offset: usize) -> Option<u32> {
        self.pages
            .iter()
            .take_while(|(start, _)| *start <= offset)
            .last()
            .map(|(_, page)| *page)
    }
}

fn runs(sections: &[Section]) -> Vec<Run<'_>> {
    let mut runs: Vec<Run<'_>> = Vec::new();
    for section in sections {
        let text = normalize(&section.text);
        if text.is_empty() {
            continue;
        }
        match (runs.last_mut(), section.page) {
            (Some(run), Some(page)) if run.heading == section.heading && !run.pages.is_empty() => {
                run.text.push_str("\n\n");
                run.pages.push((run.text.len(), page));
                run.text.push_str(&text);
            }
            _ => runs.push(Run {
                heading: &section.heading,
                pages: section.page.map(|p| (0, p)).into_iter().collect(),
                text,
            }),
        }
    }
    runs
}

#[allow(clippy::too_many_arguments)]
fn record(
    key: &ObjectKey,
    object_key: &str,
    version: u64,
    title: &str,
    section: &str,
    text: &str,
    start: usize,
    length: usize,
) -> ChunkRecord {
    let document_id: DocumentId = key.document_id;
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ChunkRecord {
        id: point_id(document_id, version, 0),
        document_id,
        version,
        chunk_index: 0,
        text: text.to_owned(),
        title: title.to_owned(),
        domain: key.domain.clone(),
        tenant: key.tenant.clone(),
        section: section.to_owned(),
        page: None,
        char_start: to_u32(start),
        char_end: to_u32(start + length),
        object_key: object_key.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chunking(size: usize, overlap: usize) -> Chunking {
        Chunking {
            options: ChunkOptions { size, overlap },
            tokens: TokenCounter::approximate(254),
        }
    }

    #[test]
    fn markdown_becomes_numbered_chunks_with_sections() {
        let key = ObjectKey::for_upload("acme", "hr", "leave.md");
        let text = "# Leave\nEveryone gets 25 days.\n\n## Carry-over\nUp to 5 days carry over until 31 March.\n";
        let prepared =
            prepare(text.as_bytes(), &key, &key.to_key(), 3, &chunking(200, 20)).unwrap();
        assert_eq!(prepared.title, "Leave");
        assert_eq!(prepared.chunks.len(), 2);
        let second = &prepared.chunks[1];
        assert_eq!(second.chunk_index, 1);
        assert_eq!(second.section, "Carry-over");
        assert_eq!(second.version, 3);
        assert_eq!(second.page, None);
        assert!(second.has_consistent_id());
        assert!(second.char_start > prepared.chunks[0].char_end);
        assert_eq!(
            (second.char_end - second.char_start) as usize,
            second.text.chars().count()
        );
    }

    #[test]
    fn nothing_but_noise_is_an_error() {
        let key = ObjectKey::for_upload("acme", "hr", "blank.txt");
        assert_eq!(
            prepare(b"-\n\n12\n", &key, "k", 1, &chunking(200, 0)),
            Err(ExtractError::Empty)
        );
    }

    #[test]
    fn pages_flow_into_one_run_and_chunks_cite_their_first_page() {
        let key = ObjectKey::for_upload("acme", "hr", "report.txt");
        let text = ["alpha", "bravo", "charlie", "delta"]
            .iter()
            .enumerate()
            .map(|(i, word)| {
                let n = i + 1;
                format!("Page {n} {word} opens here. Page {n} {word} ends here.\n")
            })
            .collect::<Vec<_>>()
            .join("\x0c");
        // A page is 12 pieces: a 30-piece chunk holds two pages, 20 only one.
        let prepared = prepare(text.as_bytes(), &key, "k", 1, &chunking(30, 0)).unwrap();
        let pages: Vec<_> = prepared.chunks.iter().map(|c| c.page).collect();
        assert_eq!(pages, [Some(1), Some(3)], "{:#?}", prepared.chunks);
        assert!(prepared.chunks[0].text.contains("Page 2 bravo ends here."));
        let prepared = prepare(text.as_bytes(), &key, "k", 1, &chunking(20, 0)).unwrap();
        let pages: Vec<_> = prepared.chunks.iter().map(|c| c.page).collect();
        assert_eq!(pages, [Some(1), Some(2), Some(3), Some(4)]);
        for chunk in &prepared.chunks {
            let page = chunk.page.unwrap();
            assert!(
                chunk.text.starts_with(&format!("Page {page} ")),
                "{}",
                chunk.text
            );
        }
    }

    #[test]
    fn the_budget_leaves_room_for_title_and_section() {
        let key = ObjectKey::for_upload("acme", "hr", "leave.md");
        let body = "word ".repeat(600);
        let text = format!(
            "# Leave policy of Acme Corp\n\n## Carry over rules for every region\n{body}\n"
        );
        let chunking = chunking(1_000, 0);
        let prepared = prepare(text.as_bytes(), &key, "k", 1, &chunking).unwrap();
        for chunk in &prepared.chunks {
            let embedded = format!(
                "{}{}",
                embedding_prefix(&chunk.title, &chunk.section),
                chunk.text
            );
            let tokens = chunking.tokens.count(&embedded).unwrap();
            assert!(tokens <= 254, "{tokens}");
        }
        assert!(prepared.chunks.len() >= 3);
    }

    #[test]
    fn chunking_stops_at_the_deadline() {
        let key = ObjectKey::for_upload("acme", "hr", "long.txt");
        let text = "Many words in a sentence. ".repeat(20_000);
        let budget = Budget::start(Limits {
            timeout: Some(std::time::Duration::from_millis(1)),
            ..Limits::default()
        });
        std::thread::sleep(std::time::Duration::from_millis(5));
        let result = prepare_within(text.as_bytes(), &key, "k", 1, &chunking(200, 0), &budget);
        assert_eq!(
            result.unwrap_err().to_string(),
            "extraction timed out after 0.001 s"
        );
    }

    #[test]
    fn an_overlong_heading_is_shortened() {
        let key = ObjectKey::for_upload("acme", "hr", "bad.md");
        let heading = "very ".repeat(200);
        let text = format!("# Title\n\n## {heading}\nSome body text here.\n");
        let prepared = prepare(text.as_bytes(), &key, "k", 1, &chunking(200, 0)).unwrap();
        let chunk = &prepared.chunks[0];
        assert!(chunk.section.ends_with('…'), "{}", chunk.section);
        let prefix = TokenCounter::approximate(254)
            .count(&embedding_prefix(&chunk.title, &chunk.section))
            .unwrap();
        assert!(prefix <= 254 / PREFIX_SHARE, "{prefix}");
        assert_eq!(chunk.text, "Some body text here.");
    }
}
