//! Recursive splitting with overlap: paragraphs first, then sentences, then words, then
//! characters, so a chunk breaks at the most natural boundary that keeps it under the size.
//! Sizes are in characters. Chunks are exact slices of the input, so their offsets are exact.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Most characters in a chunk.
    pub size: usize,
    /// Characters shared with the previous chunk, at most (whole pieces only).
    pub overlap: usize,
}

/// Byte ranges of `text`, in order, each at most `options.size` characters, covering every
/// non-blank part of `text`; consecutive chunks share up to `options.overlap` characters.
pub fn split(text: &str, options: ChunkOptions) -> Vec<Range<usize>> {
    let size = options.size.max(1);
    let mut atoms = Vec::new();
    pieces(text, 0..text.len(), Level::Paragraph, size, &mut atoms);
    let mut chunks: Vec<Range<usize>> = Vec::new();
    for range in merge(text, &atoms, size, options.overlap.min(size / 2))
        .into_iter()
        .filter_map(|r| trim(text, r))
    {
        // Overlap made of blank pieces only can make a chunk contain, or sit inside, the
        // previous one once both are trimmed: keep the larger.
        match chunks.last_mut() {
            Some(last) if range.end <= last.end => {}
            Some(last) if range.start <= last.start => *last = range,
            _ => chunks.push(range),
        }
    }
    chunks
}

#[derive(Clone, Copy, Debug)]
enum Level {
    Paragraph,
    Sentence,
    Word,
    Char,
}

fn chars(text: &str, range: &Range<usize>) -> usize {
    text[range.clone()].chars().count()
}

/// Splits `range` into pieces of at most `size` characters at the coarsest possible level.
fn pieces(text: &str, range: Range<usize>, level: Level, size: usize, out: &mut Vec<Range<usize>>) {
    if chars(text, &range) <= size {
        if !range.is_empty() {
            out.push(range);
        }
        return;
    }
    let slice = &text[range.clone()];
    let base = range.start;
    let (bounds, next): (Vec<usize>, Level) = match level {
        Level::Paragraph => (
            slice
                .match_indices("\n\n")
                .map(|(i, s)| i + s.len())
                .collect(),
            Level::Sentence,
        ),
        Level::Sentence => (
            slice
                .split_sentence_bound_indices()
                .map(|(i, _)| i)
                .skip(1)
                .collect(),
            Level::Word,
        ),
        Level::Word => (
            slice
                .split_word_bound_indices()
                .filter(|(_, w)| w.chars().all(char::is_whitespace))
                .map(|(i, w)| i + w.len())
                .collect(),
            Level::Char,
        ),
        Level::Char => {
            let mut start = 0;
            let mut count = 0;
            for (i, _) in slice.char_indices() {
                if count == size {
                    out.push(base + start..base + i);
                    start = i;
                    count = 0;
                }
                count += 1;
            }
            out.push(base + start..range.end);
            return;
        }
    };
    let mut start = 0;
    for bound in bounds.into_iter().chain(std::iter::once(slice.len())) {
        if bound > start && bound <= slice.len() {
            pieces(text, base + start..base + bound, next, size, out);
            start = bound;
        }
    }
}

/// Greedily packs consecutive pieces into chunks; each next chunk starts with the trailing
/// pieces of the previous one that fit in `overlap`.
fn merge(text: &str, atoms: &[Range<usize>], size: usize, overlap: usize) -> Vec<Range<usize>> {
    let lengths: Vec<usize> = atoms.iter().map(|a| chars(text, a)).collect();
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < atoms.len() {
        let mut j = i;
        let mut length = 0;
        while j < atoms.len() && length + lengths[j] <= size {
            length += lengths[j];
            j += 1;
        }
        if j == i {
            j = i + 1;
        }
        chunks.push(atoms[i].start..atoms[j - 1].end);
        if j >= atoms.len() {
            break;
        }
        let mut k = j;
        let mut shared = 0;
        while k - 1 > i && shared + lengths[k - 1] <= overlap {
            shared += lengths[k - 1];
            k -= 1;
        }
        i = k;
    }
    chunks
}

/// The range without leading and trailing white space; `None` if nothing is left.
fn trim(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.end - (slice.len() - slice.trim_end().len());
    (start < end).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const OPTIONS: ChunkOptions = ChunkOptions {
        size: 40,
        overlap: 10,
    };

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split("  Hello world.  ", OPTIONS), vec![2..14]);
        assert!(split(" \n\n ", OPTIONS).is_empty());
    }

    #[test]
    fn prefers_paragraph_then_sentence_boundaries() {
        let text = "First paragraph is here.\n\nSecond one. It has two sentences in it.";
        let chunks: Vec<&str> = split(text, OPTIONS).into_iter().map(|r| &text[r]).collect();
        assert_eq!(chunks[0], "First paragraph is here.");
        assert!(chunks[1].starts_with("Second one."), "{chunks:?}");
    }

    #[test]
    fn overlap_repeats_the_tail() {
        let text =
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
        let chunks = split(
            text,
            ChunkOptions {
                size: 30,
                overlap: 12,
            },
        );
        assert!(chunks.len() > 2);
        for pair in chunks.windows(2) {
            assert!(pair[1].start < pair[0].end, "no overlap in {pair:?}");
        }
    }

    fn covered(text: &str, chunks: &[Range<usize>]) -> bool {
        let mut covered = vec![false; text.len()];
        for r in chunks {
            covered[r.clone()].iter_mut().for_each(|c| *c = true);
        }
        text.char_indices()
            .all(|(i, c)| c.is_whitespace() || covered[i])
    }

    proptest! {
        #[test]
        fn chunks_cover_in_order_and_respect_the_size(
            text in "([a-zé€ ]{0,12}[.!?]? ?(\n\n)?){0,60}",
            size in 20usize..200,
            overlap_pct in 0usize..50,
        ) {
            let options = ChunkOptions { size, overlap: size * overlap_pct / 100 };
            let chunks = split(&text, options);
            for r in &chunks {
                prop_assert!(text[r.clone()].chars().count() <= size);
                prop_assert!(!text[r.clone()].trim().is_empty());
            }
            for pair in chunks.windows(2) {
                prop_assert!(pair[0].start < pair[1].start && pair[0].end < pair[1].end, "out of order: {pair:?}");
                if pair[1].start < pair[0].end {
                    let shared = text[pair[1].start..pair[0].end].chars().count();
                    prop_assert!(shared <= options.overlap.min(size / 2), "overlap {shared} > {}", options.overlap);
                }
            }
            prop_assert!(covered(&text, &chunks));
        }
    }
}
