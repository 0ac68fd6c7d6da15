//! Recursive splitting with overlap: paragraphs first, then sentences, then words, then
//! characters, so a chunk breaks at the most natural boundary that keeps it under the size.
//!
//! Sizes are in tokens, as a caller-supplied function counts them (the embedding model's
//! tokenizer, see [`rag_embeddings::TokenCounter`]), so a chunk is never silently truncated
//! by the model. Token counts are not additive at every split (WordPiece splits a word cut in
//! two differently from the whole word), so every chunk and every overlap is counted again
//! as a whole before it is accepted. Chunks are exact slices of the input, so their offsets
//! are exact.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Most tokens in a chunk (at least 1).
    pub size: usize,
    /// Tokens shared with the previous chunk, at most (whole pieces only; at most half the
    /// size).
    pub overlap: usize,
}

/// A range this many times longer in characters than the size in tokens is split without
/// being counted first: it cannot be worth a tokenizer pass over, say, a whole book.
const UNCOUNTED_CHARS_PER_TOKEN: usize = 16;

/// Byte ranges of `text`, in order, each of at most `options.size` tokens as `count` counts
/// them, covering every non-blank part of `text`; consecutive chunks share at most
/// `options.overlap` tokens. Fails only if `count` fails.
pub fn split<E>(
    text: &str,
    options: ChunkOptions,
    count: &dyn Fn(&str) -> Result<usize, E>,
) -> Result<Vec<Range<usize>>, E> {
    let size = options.size.max(1);
    let splitter = Splitter { text, size, count };
    let mut atoms = Vec::new();
    splitter.pieces(0..text.len(), Level::Paragraph, &mut atoms)?;
    let mut chunks: Vec<Range<usize>> = Vec::new();
    for range in splitter.merge(&atoms, options.overlap.min(size / 2))? {
        let Some(range) = trim(text, range) else {
            continue;
        };
        // Overlap made of blank pieces only can make a chunk contain, or sit inside, the
        // previous one once both are trimmed: keep the larger.
        match chunks.last_mut() {
            Some(last) if range.end <= last.end => {}
            Some(last) if range.start <= last.start => *last = range,
            _ => chunks.push(range),
        }
    }
    Ok(chunks)
}

#[derive(Clone, Copy, Debug)]
enum Level {
    Paragraph,
    Sentence,
    Word,
    Char,
}

/// A piece that is never split further, with its token count.
#[derive(Clone, Debug)]
struct Atom {
    range: Range<usize>,
    tokens: usize,
}

struct Splitter<'a, E> {
    text: &'a str,
    size: usize,
    count: &'a dyn Fn(&str) -> Result<usize, E>,
}

impl<E> Splitter<'_, E> {
    fn tokens(&self, range: &Range<usize>) -> Result<usize, E> {
        (self.count)(&self.text[range.clone()])
    }

    /// Splits `range` into pieces of at most `size` tokens at the coarsest possible level.
    fn pieces(&self, range: Range<usize>, level: Level, out: &mut Vec<Atom>) -> Result<(), E> {
        if range.is_empty() {
            return Ok(());
        }
        let slice = &self.text[range.clone()];
        if slice.len() <= self.size.saturating_mul(UNCOUNTED_CHARS_PER_TOKEN) {
            let tokens = self.tokens(&range)?;
            if tokens <= self.size {
                out.push(Atom { range, tokens });
                return Ok(());
            }
        }
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
            Level::Char => return self.characters(range, out),
        };
        let mut start = 0;
        for bound in bounds.into_iter().chain(std::iter::once(slice.len())) {
            if bound > start && bound <= slice.len() {
                self.pieces(base + start..base + bound, next, out)?;
                start = bound;
            }
        }
        Ok(())
    }

    /// Cuts a run without word boundaries (a URL, a hash, a word in a script without
    /// spaces) into the longest prefixes that fit, found by binary search on characters.
    fn characters(&self, range: Range<usize>, out: &mut Vec<Atom>) -> Result<(), E> {
        let mut start = range.start;
        while start < range.end {
            // Character boundaries after `start`, up to a bounded window.
            let ends: Vec<usize> = self.text[start..range.end]
                .char_indices()
                .skip(1)
                .map(|(i, _)| start + i)
                .chain(std::iter::once(range.end))
                .take(self.size.saturating_mul(UNCOUNTED_CHARS_PER_TOKEN).max(1))
                .collect();
            // Invariant: the first `lo` characters fit (one always goes, whatever it counts);
            // more than `hi` do not.
            let (mut lo, mut hi) = (1, ends.len());
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                if self.tokens(&(start..ends[mid - 1]))? <= self.size {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            let end = ends[lo - 1];
            let tokens = self.tokens(&(start..end))?;
            out.push(Atom {
                range: start..end,
                tokens,
            });
            start = end;
        }
        Ok(())
    }

    /// Greedily packs consecutive atoms into chunks of at most `size` tokens (counted again
    /// whole); each next chunk starts with the trailing atoms of the previous one whose text
    /// counts at most `overlap` tokens.
    fn merge(&self, atoms: &[Atom], overlap: usize) -> Result<Vec<Range<usize>>, E> {
        let mut chunks = Vec::new();
        let mut i = 0;
        while i < atoms.len() {
            let mut j = i;
            let mut sum = 0;
            while j < atoms.len() && sum + atoms[j].tokens <= self.size {
                sum += atoms[j].tokens;
                j += 1;
            }
            // A single atom always fits; more may not, counted together.
            while j > i + 1
                && self.tokens(&(atoms[i].range.start..atoms[j - 1].range.end))? > self.size
            {
                j -= 1;
            }
            let j = j.max(i + 1);
            chunks.push(atoms[i].range.start..atoms[j - 1].range.end);
            if j >= atoms.len() {
                break;
            }
            let end = atoms[j - 1].range.end;
            let mut k = j;
            while k - 1 > i
                && atoms[k - 1].tokens <= overlap
                && self.tokens(&(atoms[k - 1].range.start..end))? <= overlap
            {
                k -= 1;
            }
            i = k;
        }
        Ok(chunks)
    }
}

/// The range without leading and trailing white space; `None` if nothing is left.
fn trim(text: &str, range: Range<usize>) -> Option<Range<usize>> {
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.end - (slice.len() - slice.trim_end().len());
    (start < end).then_some(start..end)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use rag_embeddings::TokenCounter;

    use super::*;

    /// One token per character: the old character-sized behaviour, easy to reason about.
    fn chars(text: &str) -> Result<usize, Infallible> {
        Ok(text.chars().count())
    }

    const OPTIONS: ChunkOptions = ChunkOptions {
        size: 40,
        overlap: 10,
    };

    fn split_chars(text: &str, options: ChunkOptions) -> Vec<Range<usize>> {
        split(text, options, &chars).unwrap()
    }

    /// The real MiniLM tokenizer when the model has been fetched (`make models`), else the
    /// documented approximation, so the property holds for what the worker will use.
    fn counter() -> &'static TokenCounter {
        static COUNTER: OnceLock<TokenCounter> = OnceLock::new();
        COUNTER.get_or_init(|| {
            TokenCounter::load_default().unwrap_or_else(|e| {
                eprintln!("using the approximate token counter: {e}");
                TokenCounter::approximate(254)
            })
        })
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split_chars("  Hello world.  ", OPTIONS), vec![2..14]);
        assert!(split_chars(" \n\n ", OPTIONS).is_empty());
    }

    #[test]
    fn prefers_paragraph_then_sentence_boundaries() {
        let text = "First paragraph is here.\n\nSecond one. It has two sentences in it.";
        let chunks: Vec<&str> = split_chars(text, OPTIONS)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(chunks[0], "First paragraph is here.");
        assert!(chunks[1].starts_with("Second one."), "{chunks:?}");
    }

    #[test]
    fn overlap_repeats_the_tail() {
        let text =
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
        let chunks = split_chars(
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

    #[test]
    fn a_long_unbroken_run_is_cut_by_characters() {
        let text = "x".repeat(95);
        let chunks = split_chars(
            &text,
            ChunkOptions {
                size: 40,
                overlap: 0,
            },
        );
        assert_eq!(chunks, vec![0..40, 40..80, 80..95]);
    }

    #[test]
    fn counts_in_real_tokens() {
        let counter = counter();
        let text =
            "Reimbursement of international travel expenses requires pre-approval. ".repeat(30);
        let options = ChunkOptions {
            size: 50,
            overlap: 10,
        };
        let chunks = split(&text, options, &|t| counter.count(t)).unwrap();
        assert!(chunks.len() > 3);
        for range in &chunks {
            let tokens = counter.count(&text[range.clone()]).unwrap();
            assert!(tokens <= 50, "{tokens} tokens");
            // Packed near the limit, not at a character-derived guess.
            assert!(
                tokens >= 30 || range.end == text.trim_end().len(),
                "{tokens} tokens"
            );
        }
    }

    #[test]
    fn count_errors_are_returned() {
        let failing = |_: &str| -> Result<usize, &'static str> { Err("boom") };
        assert_eq!(split("some text", OPTIONS, &failing), Err("boom"));
    }

    fn covered(text: &str, chunks: &[Range<usize>]) -> bool {
        let mut covered = vec![false; text.len()];
        for r in chunks {
            covered[r.clone()].iter_mut().for_each(|c| *c = true);
        }
        text.char_indices()
            .all(|(i, c)| c.is_whitespace() || covered[i])
    }

    fn check(
        text: &str,
        options: ChunkOptions,
        count: &dyn Fn(&str) -> usize,
        chunks: &[Range<usize>],
    ) -> Result<(), TestCaseError> {
        for r in chunks {
            let tokens = count(&text[r.clone()]);
            prop_assert!(
                tokens <= options.size,
                "{tokens} > {} in {:?}",
                options.size,
                &text[r.clone()]
            );
            prop_assert!(!text[r.clone()].trim().is_empty());
        }
        for pair in chunks.windows(2) {
            prop_assert!(
                pair[0].start < pair[1].start && pair[0].end < pair[1].end,
                "out of order: {pair:?}"
            );
            if pair[1].start < pair[0].end {
                let shared = count(&text[pair[1].start..pair[0].end]);
                prop_assert!(
                    shared <= options.overlap.min(options.size / 2),
                    "overlap {shared} > {}",
                    options.overlap
                );
            }
        }
        prop_assert!(covered(text, chunks));
        Ok(())
    }

    proptest! {
        #[test]
        fn chunks_cover_in_order_and_respect_the_size(
            text in "([a-zé€ ]{0,12}[.!?]? ?(\n\n)?){0,60}",
            size in 20usize..200,
            overlap_pct in 0usize..50,
        ) {
            let options = ChunkOptions { size, overlap: size * overlap_pct / 100 };
            let chunks = split_chars(&text, options);
            check(&text, options, &|t| t.chars().count(), &chunks)?;
        }

        #[test]
        fn real_tokens_cover_in_order_and_respect_the_limit(
            text in "([A-Za-zéü€0-9]{1,14}[-.,!?;:]? (\n\n)?){0,120}",
            size in 8usize..80,
            overlap_pct in 0usize..50,
        ) {
            let counter = counter();
            let options = ChunkOptions { size, overlap: size * overlap_pct / 100 };
            let chunks = split(&text, options, &|t| counter.count(t)).unwrap();
            check(&text, options, &|t| counter.count(t).unwrap(), &chunks)?;
        }

        #[test]
        fn overlap_is_used_when_it_fits(
            words in proptest::collection::vec("[a-z]{1,4}", 30..120),
            size in 20usize..60,
        ) {
            // A word of at most 4 letters is at most 4 tokens, less than the overlap: the
            // last word of a chunk always starts the next one.
            let counter = counter();
            let text = words.join(" ");
            let options = ChunkOptions { size, overlap: size / 2 - 1 };
            let chunks = split(&text, options, &|t| counter.count(t)).unwrap();
            for pair in chunks.windows(2) {
                prop_assert!(pair[1].start < pair[0].end, "no overlap between {pair:?}");
            }
        }
    }
}
