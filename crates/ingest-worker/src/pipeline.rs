//! From bytes to chunk records: extract → normalise → split, per section. Pure and
//! synchronous (run it off the async workers); the worker adds the I/O around it.

use rag_core::{ChunkRecord, DocumentId, ObjectKey, point_id};

use crate::chunk::{self, ChunkOptions};
use crate::extract::{self, ExtractError};
use crate::normalize::normalize;

#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub title: String,
    pub kind: &'static str,
    pub chunks: Vec<ChunkRecord>,
}

/// Chunks shorter than this many alphanumeric characters carry no content (a lone "-" or a
/// page number) and are dropped.
const MIN_ALNUM: usize = 3;

pub fn prepare(
    bytes: &[u8],
    key: &ObjectKey,
    object_key: &str,
    version: u64,
    options: ChunkOptions,
) -> Result<Prepared, ExtractError> {
    let extracted = extract::extract(bytes, &key.file_name)?;
    let title = extracted
        .title
        .clone()
        .unwrap_or_else(|| key.file_name.clone());
    let mut chunks = Vec::new();
    // Offsets are in characters of the cleaned document: the sections joined by blank lines.
    let mut document_chars = 0usize;
    for section in &extracted.sections {
        let text = normalize(&section.text);
        if text.is_empty() {
            continue;
        }
        let mut byte_cursor = 0usize;
        let mut char_cursor = 0usize;
        for range in chunk::split(&text, options) {
            char_cursor += text[byte_cursor..range.start].chars().count();
            byte_cursor = range.start;
            let slice = &text[range.clone()];
            let length = slice.chars().count();
            if slice.chars().filter(|c| c.is_alphanumeric()).count() >= MIN_ALNUM {
                chunks.push(record(
                    key,
                    object_key,
                    version,
                    &title,
                    &section.heading,
                    slice,
                    document_chars + char_cursor,
                    length,
                ));
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
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_numbered_chunks_with_sections() {
        let key = ObjectKey::for_upload("acme", "hr", "leave.md");
        let text = "# Leave\nEveryone gets 25 days.\n\n## Carry-over\nUp to 5 days carry over until 31 March.\n";
        let prepared = prepare(
            text.as_bytes(),
            &key,
            &key.to_key(),
            3,
            ChunkOptions {
                size: 200,
                overlap: 20,
            },
        )
        .unwrap();
        assert_eq!(prepared.title, "Leave");
        assert_eq!(prepared.chunks.len(), 2);
        let second = &prepared.chunks[1];
        assert_eq!(second.chunk_index, 1);
        assert_eq!(second.section, "Carry-over");
        assert_eq!(second.version, 3);
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
            prepare(
                b"-\n\n12\n",
                &key,
                "k",
                1,
                ChunkOptions {
                    size: 200,
                    overlap: 0
                }
            ),
            Err(ExtractError::Empty)
        );
    }
}
