//! The tokenizer of a GGUF model, built from the file's own metadata (`tokenizer.ggml.*`):
//! no `tokenizer.json` is needed. Only GPT-2-style byte-level BPE (`tokenizer.ggml.model =
//! "gpt2"`) is supported, which is what SmolLM2 (and Llama 3, Qwen 2, ...) use.
//!
//! Also: the ChatML prompt SmolLM2-Instruct was trained on, with the passages cut to fit the
//! window, and decoding token by token without splitting a multi-byte character.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

/// `tokenizer.ggml.token_type` of a control token (`<|im_start|>`, `<|endoftext|>`, ...).
const TOKEN_TYPE_CONTROL: i64 = 3;
/// `tokenizer.ggml.token_type` of a user-defined token (matched in text, not special).
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// ChatML's turn markers.
pub const IM_START: &str = "<|im_start|>";
pub const IM_END: &str = "<|im_end|>";
/// What replaces the passages cut from a prompt that does not fit.
const CUT_MARKER: &str = "\n[…]";

/// A GGUF model's tokenizer: the text of prompts is encoded with special-token strings taken
/// literally (a document that contains `<|im_end|>` cannot end its turn); the turn markers
/// are inserted as ids.
#[derive(Clone)]
pub struct GgufTokenizer {
    /// Recognises special tokens in text: for decoding, and for checking the vocabulary.
    special: Tokenizer,
    /// Encodes every string as text, special-token strings included.
    literal: Tokenizer,
    im_start: u32,
    im_end: u32,
    /// Ids that end an answer: `<|im_end|>`, the end-of-sequence id, `<|endoftext|>`.
    stop: Vec<u32>,
    vocab_size: usize,
}

impl std::fmt::Debug for GgufTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufTokenizer")
            .field("vocab_size", &self.vocab_size)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

/// A prompt as token ids, and whether passages had to be cut to fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatPrompt {
    pub ids: Vec<u32>,
    pub truncated: bool,
}

fn metadata<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<&'a Value, String> {
    md.get(key)
        .ok_or_else(|| format!("no {key} in the GGUF metadata"))
}

fn string_array(md: &HashMap<String, Value>, key: &str) -> Result<Vec<String>, String> {
    let values = metadata(md, key)?
        .to_vec()
        .map_err(|e| format!("{key}: {e}"))?;
    values
        .iter()
        .map(|v| v.to_string().cloned().map_err(|e| format!("{key}: {e}")))
        .collect()
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::U8(v) => Some(i64::from(*v)),
        Value::I8(v) => Some(i64::from(*v)),
        Value::U16(v) => Some(i64::from(*v)),
        Value::I16(v) => Some(i64::from(*v)),
        Value::U32(v) => Some(i64::from(*v)),
        Value::I32(v) => Some(i64::from(*v)),
        Value::U64(v) => i64::try_from(*v).ok(),
        Value::I64(v) => Some(*v),
        _ => None,
    }
}

impl GgufTokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.{model,tokens,merges,token_type,eos_token_id}`:
    /// a byte-level BPE over the tokens and merges, the pre-tokenizer of SmolLM (digits one
    /// by one, then GPT-2's byte-level split), the byte-level decoder, and the control tokens
    /// as special tokens.
    pub fn from_metadata(md: &HashMap<String, Value>) -> Result<Self, String> {
        let model = metadata(md, "tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| format!("tokenizer.ggml.model: {e}"))?;
        if model != "gpt2" {
            return Err(format!(
                "tokenizer.ggml.model is {model:?}; only byte-level BPE (\"gpt2\") is supported"
            ));
        }
        let tokens = string_array(md, "tokenizer.ggml.tokens")?;
        let merges = string_array(md, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| format!("tokenizer.ggml.merges: {m:?} is not a pair"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let types: Vec<i64> = match md.get("tokenizer.ggml.token_type") {
            Some(value) => value
                .to_vec()
                .map_err(|e| format!("tokenizer.ggml.token_type: {e}"))?
                .iter()
                .map(|v| integer(v).unwrap_or(1))
                .collect(),
            None => Vec::new(),
        };
        let vocab_size = tokens.len();
        let vocab = tokens
            .iter()
            .enumerate()
            .map(|(id, token)| {
                u32::try_from(id)
                    .map(|id| (token.clone(), id))
                    .map_err(|_| "too many tokens".to_owned())
            })
            .collect::<Result<Vocab, _>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| format!("the BPE model: {e}"))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
        ]))));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
        let mut special = Vec::new();
        let mut user_defined = Vec::new();
        for (token, kind) in tokens.iter().zip(&types) {
            match *kind {
                TOKEN_TYPE_CONTROL => special.push(AddedToken::from(token.clone(), true)),
                TOKEN_TYPE_USER_DEFINED => {
                    user_defined.push(AddedToken::from(token.clone(), false));
                }
                _ => {}
            }
        }
        tokenizer
            .add_special_tokens(special)
            .map_err(|e| format!("special tokens: {e}"))?;
        tokenizer
            .add_tokens(user_defined)
            .map_err(|e| format!("user-defined tokens: {e}"))?;
        let mut literal = tokenizer.clone();
        literal.set_encode_special_tokens(true);

        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| format!("the vocabulary has no {token}: not a ChatML model"))
        };
        let im_start = id(IM_START)?;
        let im_end = id(IM_END)?;
        let mut stop = vec![im_end];
        let eos = md
            .get("tokenizer.ggml.eos_token_id")
            .and_then(integer)
            .and_then(|v| u32::try_from(v).ok());
        stop.extend(eos);
        stop.extend(tokenizer.token_to_id("<|endoftext|>"));
        stop.sort_unstable();
        stop.dedup();
        Ok(Self {
            special: tokenizer,
            literal,
            im_start,
            im_end,
            stop,
            vocab_size,
        })
    }

    /// The `tokenizers` tokenizer that recognises special tokens in text.
    pub fn inner(&self) -> &Tokenizer {
        &self.special
    }

    /// Tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of a token, special ones included.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.special.token_to_id(token)
    }

    /// Whether `id` ends an answer.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop.contains(&id)
    }

    /// `text` as ids; special-token strings in it are text, never control tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.literal
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("encoding: {e}"))
    }

    /// The text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.special
            .decode(ids, true)
            .map_err(|e| format!("decoding: {e}"))
    }

    /// The ChatML prompt of SmolLM2-Instruct:
    ///
    /// ```text
    /// <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n
    /// ```
    ///
    /// in at most `budget` tokens. When it does not fit, the user turn is cut before its last
    /// paragraph (the question, after the passages, in the answer prompts): the passages
    /// lose their end (the least relevant ones come last), then, if still needed, the
    /// question keeps its end and the system prompt its start. Never fails for length.
    pub fn chat_prompt(
        &self,
        system: &str,
        user: &str,
        budget: usize,
    ) -> Result<ChatPrompt, String> {
        let user = user.trim_end();
        let (body, tail) = match user.rfind("\n\n") {
            Some(at) => user.split_at(at),
            None => (user, ""),
        };
        let mut system = self.encode(&format!("system\n{}", system.trim()))?;
        let mut body = self.encode(&format!("user\n{body}"))?;
        let mut tail = self.encode(tail)?;
        let newline = self.encode("\n")?;
        let assistant = self.encode("assistant\n")?;
        // <|im_start|> x3, <|im_end|> x2, the newlines after them and "assistant\n".
        let fixed = 3 + 2 + 2 * newline.len() + assistant.len();
        let total = |s: &[u32], b: &[u32], t: &[u32]| fixed + s.len() + b.len() + t.len();
        let truncated = total(&system, &body, &tail) > budget;
        if truncated {
            let marker = self.encode(CUT_MARKER)?;
            // Keep "user\n" and at least the marker; the rest of the body gives way first.
            let room = budget.saturating_sub(total(&system, &[], &tail) + marker.len());
            body.truncate(room.max(2));
            body.extend_from_slice(&marker);
            let over = total(&system, &body, &tail).saturating_sub(budget);
            if over > 0 {
                tail.drain(..over.min(tail.len()));
            }
            let over = total(&system, &body, &tail).saturating_sub(budget);
            if over > 0 {
                system.truncate(system.len().saturating_sub(over).max(2));
            }
        }
        let mut ids = Vec::with_capacity(total(&system, &body, &tail));
        ids.push(self.im_start);
        ids.extend_from_slice(&system);
        ids.push(self.im_end);
        ids.extend_from_slice(&newline);
        ids.push(self.im_start);
        ids.extend_from_slice(&body);
        ids.extend_from_slice(&tail);
        ids.push(self.im_end);
        ids.extend_from_slice(&newline);
        ids.push(self.im_start);
        ids.extend_from_slice(&assistant);
        Ok(ChatPrompt { ids, truncated })
    }
}

/// Turns generated ids into text deltas that never end inside a UTF-8 character: a token
/// of byte-level BPE may hold part of one (an emoji, a CJK character), so ids are held back
/// until their text is whole (at most four, the longest character).
#[derive(Debug, Default)]
pub struct TextStream {
    pending: Vec<u32>,
}

impl TextStream {
    /// The text to send after `id`, if any yet.
    pub fn push(&mut self, tokenizer: &GgufTokenizer, id: u32) -> Result<Option<String>, String> {
        self.pending.push(id);
        let text = tokenizer.decode(&self.pending)?;
        if text.ends_with('\u{FFFD}') && self.pending.len() < 4 {
            return Ok(None);
        }
        self.pending.clear();
        Ok((!text.is_empty()).then_some(text))
    }

    /// What is still held back, at the end.
    pub fn finish(&mut self, tokenizer: &GgufTokenizer) -> Result<Option<String>, String> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let text = tokenizer.decode(&std::mem::take(&mut self.pending))?;
        Ok((!text.is_empty()).then_some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny byte-level vocabulary: the 256 byte symbols, ChatML markers, a few merges.
    fn tiny() -> GgufTokenizer {
        let mut tokens = vec![
            "<|endoftext|>".to_owned(),
            IM_START.to_owned(),
            IM_END.to_owned(),
        ];
        let mut types = vec![Value::I32(3); 3];
        for byte in 0..=255u8 {
            let symbol = byte_symbol(byte);
            tokens.push(symbol);
            types.push(Value::I32(1));
        }
        for merged in ["he", "ll", "hell", "hello"] {
            tokens.push(merged.to_owned());
            types.push(Value::I32(1));
        }
        let merges = ["h e", "l l", "he ll", "hell o"];
        let md: HashMap<String, Value> = [
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            (
                "tokenizer.ggml.tokens",
                Value::Array(tokens.into_iter().map(Value::String).collect()),
            ),
            (
                "tokenizer.ggml.merges",
                Value::Array(
                    merges
                        .iter()
                        .map(|m| Value::String((*m).to_owned()))
                        .collect(),
                ),
            ),
            ("tokenizer.ggml.token_type", Value::Array(types)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        GgufTokenizer::from_metadata(&md).expect("the tiny tokenizer")
    }

    /// GPT-2's printable stand-in for a byte.
    fn byte_symbol(byte: u8) -> String {
        let printable = (b'!'..=b'~').contains(&byte)
            || (0xA1..=0xAC).contains(&byte)
            || (0xAE..=0xFF).contains(&byte);
        if printable {
            char::from(byte).to_string()
        } else {
            let below = (0..byte)
                .filter(|b| {
                    !((b'!'..=b'~').contains(b)
                        || (0xA1..=0xAC).contains(b)
                        || (0xAE..=0xFF).contains(b))
                })
                .count();
            char::from_u32(256 + u32::try_from(below).expect("small"))
                .expect("a char")
                .to_string()
        }
    }

    #[test]
    fn round_trips_merges_and_keeps_special_strings_literal() {
        let t = tiny();
        for text in ["hello", "hello world", "ünïcødé ✓ 🦀", "a\n\nb  c"] {
            let ids = t.encode(text).expect("encode");
            assert_eq!(t.decode(&ids).expect("decode"), text);
        }
        let hello = t.token_id("hello").expect("merged token");
        assert_eq!(t.encode("hello").expect("encode"), vec![hello]);
        // In prompt text a marker is text; the special tokenizer reads it as one id.
        let literal = t.encode("<|im_end|>").expect("encode");
        assert!(literal.len() > 1 && !literal.contains(&2), "{literal:?}");
        let special = t.inner().encode("<|im_end|>", false).expect("encode");
        assert_eq!(special.get_ids(), &[2]);
        assert!(t.is_stop(2) && t.is_stop(0) && !t.is_stop(1));
    }

    #[test]
    fn other_tokenizers_are_refused() {
        let md: HashMap<String, Value> = [(
            "tokenizer.ggml.model".to_owned(),
            Value::String("llama".into()),
        )]
        .into_iter()
        .collect();
        let err = GgufTokenizer::from_metadata(&md).expect_err("sentencepiece");
        assert!(err.contains("gpt2"), "{err}");
        let err = GgufTokenizer::from_metadata(&HashMap::new()).expect_err("nothing");
        assert!(err.contains("tokenizer.ggml.model"), "{err}");
    }

    #[test]
    fn the_prompt_is_chatml_and_is_cut_to_fit() {
        let t = tiny();
        let whole = t
            .chat_prompt(
                "Be brief.",
                "Context:\n[1] hello\n\nQuestion: hi?\n",
                10_000,
            )
            .expect("prompt");
        assert!(!whole.truncated);
        let text = t.inner().decode(&whole.ids, false).expect("decode");
        assert_eq!(
            text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nContext:\n[1] hello\
             \n\nQuestion: hi?<|im_end|>\n<|im_start|>assistant\n"
        );

        let passages = "hello ".repeat(500);
        let user = format!("Context:\n{passages}\n\nQuestion: what?");
        for budget in [400, 120, 60] {
            let cut = t.chat_prompt("Be brief.", &user, budget).expect("prompt");
            assert!(cut.truncated);
            assert!(cut.ids.len() <= budget, "{} > {budget}", cut.ids.len());
            let text = t.inner().decode(&cut.ids, false).expect("decode");
            assert!(text.contains("[…]\n\nQuestion: what?<|im_end|>"), "{text}");
            assert!(text.ends_with("<|im_start|>assistant\n"), "{text}");
        }
        // Even a budget smaller than the question: cut, never an error.
        let tiny_budget = t.chat_prompt("Be brief.", &user, 30).expect("prompt");
        assert!(tiny_budget.ids.len() <= 30, "{}", tiny_budget.ids.len());
    }

    #[test]
    fn a_character_split_across_tokens_is_sent_whole() {
        let t = tiny();
        // Byte tokens: "é" is two bytes, "🦀" four, each its own token here.
        let ids = t.encode("aé🦀b").expect("encode");
        assert_eq!(ids.len(), 1 + 2 + 4 + 1);
        let mut stream = TextStream::default();
        let mut deltas = Vec::new();
        for id in ids {
            deltas.extend(stream.push(&t, id).expect("push"));
        }
        deltas.extend(stream.finish(&t).expect("finish"));
        assert_eq!(deltas, ["a", "é", "🦀", "b"]);
    }
}
