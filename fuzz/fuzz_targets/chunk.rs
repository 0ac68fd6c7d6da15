//! The chunker on arbitrary text, with sizes from the input and a counter that, like a
//! WordPiece tokenizer, is not additive across cuts. Checks its promises: ranges are in
//! order, on character boundaries, non-blank, cover every non-blank character, and fit the
//! size unless a single character is already over it.

#![no_main]

use std::convert::Infallible;

use libfuzzer_sys::fuzz_target;
use rag_ingest_worker::chunk::{ChunkOptions, split};

/// Words count one per 4 characters (rounded up), punctuation one each.
fn count(text: &str) -> Result<usize, Infallible> {
    Ok(text
        .split(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
        .map(|w| w.chars().count().div_ceil(4))
        .sum::<usize>()
        + text.chars().filter(char::is_ascii_punctuation).count())
}

fuzz_target!(|data: &[u8]| {
    let [size, overlap, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let size = usize::from(*size % 64) + 1;
    let options = ChunkOptions {
        size,
        overlap: usize::from(*overlap) % (size / 2 + 1),
    };
    let Ok(ranges) = split(&text, options, &count);
    let mut covered = 0;
    let mut last_start = None;
    // Only blank text may fall between chunks.
    for range in &ranges {
        assert!(
            range.start < range.end && range.end <= text.len(),
            "{range:?}"
        );
        assert!(text.is_char_boundary(range.start) && text.is_char_boundary(range.end));
        if let Some(last) = last_start {
            assert!(range.start > last, "{ranges:?}");
        }
        last_start = Some(range.start);
        let slice = &text[range.clone()];
        assert!(!slice.trim().is_empty());
        if range.start > covered {
            assert!(
                text[covered..range.start].trim().is_empty(),
                "text between chunks was dropped: {ranges:?}"
            );
        }
        covered = covered.max(range.end);
        let tokens = count(slice).unwrap_or(0);
        assert!(
            tokens <= size || slice.chars().count() == 1,
            "{tokens} > {size}: {slice:?}"
        );
    }
    assert!(text[covered..].trim().is_empty(), "the end was dropped");
});
