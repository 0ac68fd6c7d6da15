//! Writing the answer from retrieved passages: the offline extractive answerer or a model
//! (Bedrock, an OpenAI-compatible server), the fallback from the strong tier to the light
//! one, citations read from the answer's `[n]` marks, and the PII mask on text as it streams.

use std::sync::Arc;

use futures::StreamExt;
use rag_backends::rag_generation::{
    GenerationError, GenerationEvent, GenerationRequest, GenerationUsage, Generator,
};
use rag_config::{GenerationSettings, Settings, Tier};
use rag_core::ServiceError;
use rag_guardrails::{find_pii, mask_pii_cow};
use rag_proto::{Citation, ScoredChunk};

use crate::extractive::{self, Answer, Passage};
use crate::prompts::Prompt;
use crate::{RouterError, Sink};

/// Characters of a chunk shown as a citation's snippet.
const SNIPPET_CHARS: usize = 240;

/// What "I don't know" sounds like from a model writer that was not called because nothing
/// retrieved was relevant enough.
pub const NOT_IN_DOCUMENTS: &str = "I don't know based on the provided documents.";

/// One tier's writer.
#[derive(Clone, Debug)]
pub enum Writer {
    Extractive,
    Model(Arc<dyn Generator>),
}

impl Writer {
    pub fn model(&self) -> &str {
        match self {
            Self::Extractive => extractive::MODEL,
            Self::Model(model) => model.model(),
        }
    }
}

/// The writers of both tiers.
#[derive(Clone, Debug)]
pub struct Writers {
    pub light: Writer,
    pub strong: Writer,
    pub settings: GenerationSettings,
}

impl Writers {
    pub fn from_settings(settings: &Settings) -> Result<Self, RouterError> {
        let writer = |tier| -> Result<Writer, RouterError> {
            Ok(rag_backends::generator(settings, tier)?.map_or(Writer::Extractive, Writer::Model))
        };
        Ok(Self {
            light: writer(&settings.generation.light)?,
            strong: writer(&settings.generation.strong)?,
            settings: settings.generation.clone(),
        })
    }

    pub fn for_tier(&self, tier: Tier) -> &Writer {
        match tier {
            Tier::Light => &self.light,
            Tier::Strong => &self.strong,
        }
    }
}

/// A written answer, before the router adds how it was made.
#[derive(Debug, Default)]
pub struct Written {
    pub text: String,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Whether the text already went to the sink as it was written.
    pub streamed: bool,
}

/// The passages a writer is given: each hit with its adjacent-chunk neighbours (from the
/// retriever's expansion) around it in document order. A neighbour is no hit of its own: it
/// has no dense or keyword score and carries the score of the hit it was added beside, so it
/// is cited like that hit. Without expansion, the hits unchanged.
pub fn with_neighbours(hits: &[ScoredChunk]) -> Vec<ScoredChunk> {
    let mut passages = Vec::with_capacity(hits.len());
    for hit in hits {
        let neighbour = |chunk: &rag_proto::Chunk| ScoredChunk {
            chunk: Some(chunk.clone()),
            score: hit.score,
            ..ScoredChunk::default()
        };
        passages.extend(hit.before.iter().map(neighbour));
        passages.push(ScoredChunk {
            before: Vec::new(),
            after: Vec::new(),
            ..hit.clone()
        });
        passages.extend(hit.after.iter().map(neighbour));
    }
    passages
}

/// The texts of `hits` as a writer sees them: instruction-like sentences removed when
/// `screen` is on (instructions inside documents are data); and how many were removed.
pub fn passages(hits: &[ScoredChunk], screen: bool) -> (Vec<String>, usize) {
    let mut removed = 0;
    let texts = hits
        .iter()
        .map(|hit| {
            let text = hit
                .chunk
                .as_ref()
                .map(|c| c.text.as_str())
                .unwrap_or_default();
            if screen {
                let screened = rag_guardrails::neutralise(text);
                removed += screened.findings;
                screened.text
            } else {
                text.to_owned()
            }
        })
        .collect();
    (texts, removed)
}

/// The offline answer: the best-supported sentences, each followed by its passage's number.
pub fn extractive(
    question: &str,
    hits: &[ScoredChunk],
    texts: &[String],
    options: extractive::Options,
) -> Written {
    let passages: Vec<Passage<'_>> = hits
        .iter()
        .zip(texts)
        .map(|(h, text)| Passage {
            text,
            dense: h.dense_score,
            score: h.score,
        })
        .collect();
    let mut written = Written {
        model: extractive::MODEL.into(),
        ..Written::default()
    };
    match extractive::answer(question, &passages, options) {
        Answer::DontKnow => written.text = extractive::DONT_KNOW.into(),
        Answer::Grounded(sentences) => {
            written.text = sentences
                .iter()
                .map(|s| format!("{} [{}]", s.text, s.passage + 1))
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    written
}

/// Whether the best hit clears the relevance floor (dense similarity where the dense search
/// found it, else the fused score).
pub fn relevant_enough(hits: &[ScoredChunk], min_relevance: f32) -> bool {
    hits.iter()
        .map(|h| h.dense_score.unwrap_or(h.score))
        .any(|s| s >= min_relevance)
}

/// The numbered context a model reads: `[n] Title — section (p. N)` then the passage.
pub fn context(hits: &[ScoredChunk], texts: &[String]) -> String {
    let mut out = String::new();
    for (i, (hit, text)) in hits.iter().zip(texts).enumerate() {
        let mut heading = format!("[{}]", i + 1);
        if let Some(chunk) = &hit.chunk {
            if !chunk.title.is_empty() {
                heading.push(' ');
                heading.push_str(&chunk.title);
            }
            if !chunk.section.is_empty() {
                heading.push_str(" — ");
                heading.push_str(&chunk.section);
            }
            if let Some(page) = chunk.page {
                heading.push_str(&format!(" (p. {page})"));
            }
        }
        if i > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&heading);
        out.push('\n');
        out.push_str(text.trim());
    }
    out
}

/// Asks a model, streaming its text (PII-masked when `mask`) to `sink` as it comes.
/// `Err(Ok(e))` is a model failure before any text was sent, so another model may still
/// answer; `Err(Err(e))` is final (text was sent, or the client went away).
pub async fn generate(
    model: &dyn Generator,
    prompt: &Prompt,
    context: &str,
    question: &str,
    settings: &GenerationSettings,
    mask: bool,
    sink: Sink<'_>,
) -> Result<Written, Result<GenerationError, ServiceError>> {
    let request = GenerationRequest {
        system: prompt.system.clone(),
        user: prompt.render_user(context, question),
        max_output_tokens: settings.max_output_tokens,
        temperature: settings.temperature,
    };
    let mut stream = model.generate(request).await.map_err(Ok)?;
    let mut masker = MaskingStream::new(mask);
    let mut text = String::new();
    let mut usage: Option<GenerationUsage> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(GenerationEvent::Delta(delta)) => {
                let safe = masker.push(&delta);
                if !safe.is_empty() {
                    text.push_str(&safe);
                    crate::emit(sink, safe).await.map_err(Err)?;
                }
            }
            Ok(GenerationEvent::Done(done)) => usage = Some(done),
            Err(e) if text.is_empty() => return Err(Ok(e)),
            Err(e) => {
                return Err(Err(ServiceError::unavailable(format!(
                    "the answer model failed while answering: {e}"
                ))));
            }
        }
    }
    let rest = masker.finish();
    if !rest.is_empty() {
        text.push_str(&rest);
        crate::emit(sink, rest).await.map_err(Err)?;
    }
    let usage = usage.unwrap_or_else(|| GenerationUsage {
        model: model.model().to_owned(),
        input_tokens: 0,
        output_tokens: rag_backends::rag_generation::approximate_tokens(&text),
        stop_reason: String::new(),
    });
    Ok(Written {
        text,
        model: model.model().to_owned(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        streamed: true,
    })
}

/// The citations of the passages an answer cites by `[n]` (numbers are the passages'
/// positions in the context, so they match the text), in order of first citation.
/// Marks naming no passage are ignored. Snippets are PII-masked when `mask` is on.
pub fn citations(text: &str, hits: &[ScoredChunk], mask: bool) -> Vec<Citation> {
    cited_numbers(text)
        .into_iter()
        .filter_map(|n| {
            let hit = hits.get(n.checked_sub(1)?)?;
            let chunk = hit.chunk.as_ref()?;
            Some(Citation {
                document_id: chunk.document_id.clone(),
                title: chunk.title.clone(),
                chunk_index: chunk.chunk_index,
                score: hit.score,
                snippet: if mask {
                    snippet(&mask_pii_cow(&chunk.text))
                } else {
                    snippet(&chunk.text)
                },
                domain: chunk.domain.clone(),
                page: chunk.page,
                number: u32::try_from(n).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

/// The numbers in `[1]`, `[2][3]` and `[1, 4]` marks, each once, in order of appearance.
pub fn cited_numbers(text: &str) -> Vec<usize> {
    let mut numbers: Vec<usize> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else { break };
        let inside = &rest[..close];
        let parsed: Option<Vec<usize>> = inside
            .split(',')
            .map(|n| n.trim().parse::<usize>().ok())
            .collect();
        if let Some(parsed) = parsed {
            for n in parsed {
                if !numbers.contains(&n) {
                    numbers.push(n);
                }
            }
        }
        rest = &rest[close + 1..];
    }
    numbers
}

pub fn snippet(text: &str) -> String {
    if text.chars().count() <= SNIPPET_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(SNIPPET_CHARS).collect();
    let cut = cut.rsplit_once(' ').map(|(head, _)| head).unwrap_or(&cut);
    format!("{cut}…")
}

/// Splits a finished answer into the pieces streamed as tokens: one sentence (with its
/// citation mark) at a time, each but the first led by its separating space.
pub fn stream_pieces(answer: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for part in answer.split_inclusive("] ") {
        current.push_str(part);
        if part.ends_with("] ") {
            pieces.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// Masks PII in text that arrives in pieces. Holds back only the tail that a PII match could
/// still grow from: the unfinished last word, and before it the words that could be part of
/// a phone number, a card number or an IBAN (words with a digit or `+`, `(`, `)`, and
/// upper-case groups such as an IBAN's `WEST`). Everything before is masked and released, so
/// ordinary prose streams word by word.
#[derive(Debug)]
pub struct MaskingStream {
    buffer: String,
    mask: bool,
}

/// Whether `word` could belong to a phone, card or IBAN match that is still being written.
fn could_continue_pii(word: &str) -> bool {
    word.chars()
        .any(|c| c.is_ascii_digit() || matches!(c, '+' | '(' | ')'))
        || (word.len() <= 4 && word.chars().all(|c| c.is_ascii_uppercase()))
}

/// Where the held-back tail of `buffer` starts (a whitespace position, or 0).
fn pending_start(buffer: &str) -> usize {
    let Some(mut start) = buffer.rfind(char::is_whitespace) else {
        return 0;
    };
    loop {
        let before = buffer[..start].trim_end();
        let word_start = before.rfind(char::is_whitespace).unwrap_or(0);
        let word = before[word_start..].trim();
        if word.is_empty() || !could_continue_pii(word) {
            return start;
        }
        start = word_start;
        if start == 0 {
            return 0;
        }
    }
}

impl MaskingStream {
    pub fn new(mask: bool) -> Self {
        Self {
            buffer: String::new(),
            mask,
        }
    }

    /// Adds `delta`; returns the text that is safe to send now.
    pub fn push(&mut self, delta: &str) -> String {
        self.buffer.push_str(delta);
        if !self.mask {
            return std::mem::take(&mut self.buffer);
        }
        let mut cut = pending_start(&self.buffer);
        // A match reaching over the cut (one the rule above did not foresee) is held whole.
        for m in find_pii(&self.buffer) {
            if m.start < cut && cut < m.end {
                cut = m.start;
            }
        }
        if cut == 0 {
            return String::new();
        }
        let head: String = self.buffer.drain(..cut).collect();
        mask_pii_cow(&head).into_owned()
    }

    /// The rest, masked.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.buffer);
        if self.mask {
            mask_pii_cow(&rest).into_owned()
        } else {
            rest
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(index: u32, text: &str) -> rag_proto::Chunk {
        rag_proto::Chunk {
            document_id: "d".into(),
            chunk_index: index,
            text: text.into(),
            ..rag_proto::Chunk::default()
        }
    }

    #[test]
    fn neighbours_become_passages_around_their_hit() {
        let hits = vec![
            ScoredChunk {
                chunk: Some(chunk(4, "four")),
                score: 0.9,
                dense_score: Some(0.8),
                keyword_score: Some(3.0),
                before: vec![chunk(3, "three")],
                after: vec![chunk(5, "five"), chunk(6, "six")],
                rerank_score: None,
            },
            ScoredChunk {
                chunk: Some(chunk(9, "nine")),
                score: 0.5,
                ..ScoredChunk::default()
            },
        ];
        let passages = with_neighbours(&hits);
        let order: Vec<(u32, f32, Option<f32>)> = passages
            .iter()
            .map(|p| {
                let index = p.chunk.as_ref().map_or(u32::MAX, |c| c.chunk_index);
                (index, p.score, p.dense_score)
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (3, 0.9, None),
                (4, 0.9, Some(0.8)),
                (5, 0.9, None),
                (6, 0.9, None),
                (9, 0.5, None),
            ]
        );
        assert!(
            passages
                .iter()
                .all(|p| p.before.is_empty() && p.after.is_empty())
        );
        // The context numbers them as the citations do: [3] is chunk 5.
        let (texts, _) = passages_of(&passages);
        let context = context(&passages, &texts);
        assert!(context.contains("[3]\nfive"), "{context}");
        let cited = citations("See [3].", &passages, false);
        assert_eq!(cited.first().map(|c| c.chunk_index), Some(5));
        // Without expansion, the hits are the passages.
        let plain = vec![hits[1].clone()];
        assert_eq!(with_neighbours(&plain), plain);
    }

    fn passages_of(hits: &[ScoredChunk]) -> (Vec<String>, usize) {
        passages(hits, false)
    }

    #[test]
    fn citation_marks_are_read_in_order_once() {
        assert_eq!(cited_numbers("A [2]. B [1][2]. C [3, 1]."), vec![2, 1, 3]);
        assert_eq!(cited_numbers("no marks [x] [] [1"), Vec::<usize>::new());
    }

    #[test]
    fn pieces_rebuild_the_answer() {
        let answer = "One thing. [1] Another thing. [2] Last. [1]";
        let pieces = stream_pieces(answer);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), answer);
        assert_eq!(
            stream_pieces(extractive::DONT_KNOW).concat(),
            extractive::DONT_KNOW
        );
    }

    #[test]
    fn snippets_cut_at_a_word() {
        let long = "word ".repeat(100);
        let s = snippet(&long);
        assert!(s.ends_with('…'));
        assert!(s.chars().count() <= SNIPPET_CHARS + 1);
        assert_eq!(snippet("short"), "short");
    }

    /// PII split over many deltas is masked whole, and everything else arrives unchanged.
    #[test]
    fn streamed_pii_is_masked_whatever_the_split() {
        let text = "Write to jane.doe@example.com — or call +44 20 7946 0958 today in Zürich. \
                    Card 4111 1111 1111 1111 is on file; IBAN GB82 WEST 1234 5698 7654 32 too. \
                    Ünïcödé — “quoted” 日本語のテキスト — ends here.";
        let expected = rag_guardrails::mask_pii(text).text;
        for size in [1, 2, 3, 5, 8, 13, 40, 200] {
            let mut masker = MaskingStream::new(true);
            let mut out = String::new();
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(size) {
                out.push_str(&masker.push(&piece.iter().collect::<String>()));
            }
            out.push_str(&masker.finish());
            assert_eq!(out, expected, "pieces of {size}");
            assert!(!out.contains("jane.doe") && !out.contains("4111"), "{out}");
        }
    }

    #[test]
    fn text_is_released_while_streaming() {
        let prose = "the quick brown fox jumps over the lazy dog ".repeat(10);
        let mut masker = MaskingStream::new(true);
        let mut released = 0;
        for word in prose.split_inclusive(' ') {
            released += masker.push(word).len();
        }
        assert_eq!(released, prose.len() - 1, "prose streams word by word");
        // Digits are held until it is clear they are not PII, then masked whole.
        let mut masker = MaskingStream::new(true);
        assert_eq!(masker.push("call +44 20 "), "call");
        assert_eq!(masker.push("7946 0958"), "");
        assert_eq!(masker.push(" now "), " [PHONE] now");
        let mut off = MaskingStream::new(false);
        assert_eq!(off.push("a@b.co "), "a@b.co ");
    }
}
