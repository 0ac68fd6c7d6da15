//! LLM-as-judge: a model scores an answer for **faithfulness** to the passages it cites and
//! **relevance** to the question, 1–5 each, with a reason for each.
//!
//! The judge's instructions are a versioned prompt, `prompts/judge/<version>.toml`, like the
//! answer prompts: a `system` text without placeholders and a `user` template with exactly
//! `{question}`, `{context}` and `{answer}` (`{{` and `}}` are literal braces). The
//! repository's versions are built in; [`JudgePrompt::load`] reads another directory's.
//!
//! The reply must be one JSON object (a Markdown code fence around it is tolerated, nothing
//! else): `{"faithfulness": 1-5, "faithfulness_reason": "…", "relevance": 1-5,
//! "relevance_reason": "…"}`, integers in range, reasons not empty, no other keys. Anything
//! else is a [`JudgeError::Reply`] keeping the reply, never a guessed score.
//!
//! Any [`Generator`] runs it: Bedrock Converse (Nova Pro in the cluster) or an
//! OpenAI-compatible server, built from configuration by `rag-backends`.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use rag_generation::{GenerationError, GenerationEvent, GenerationRequest, Generator};
use serde::{Deserialize, Serialize};

/// The repository's judge prompts, built in.
const BUILT_IN: &[(&str, &str)] = &[("v1", include_str!("../../../prompts/judge/v1.toml"))];

/// The version used when none is named.
pub const DEFAULT_VERSION: &str = "v1";

#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error("judge prompt {0} not found")]
    MissingPrompt(String),
    #[error("judge prompt {name}: {reason}")]
    InvalidPrompt { name: String, reason: String },
    #[error("judge model: {0}")]
    Model(#[from] GenerationError),
    #[error("the judge's reply is not a valid verdict ({reason}): {reply:?}")]
    Reply { reason: String, reply: String },
}

/// One version of the judge prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgePrompt {
    /// `judge/<version>`, as recorded with the results.
    pub id: String,
    pub system: String,
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptFile {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    system: String,
    user: String,
}

impl JudgePrompt {
    /// `version` from `dir/judge/<version>.toml`, or the built-in file without `dir`.
    pub fn load(dir: Option<&Path>, version: &str) -> Result<Self, JudgeError> {
        let id = format!("judge/{version}");
        let text = match dir {
            Some(dir) => {
                let path = dir.join("judge").join(format!("{version}.toml"));
                std::fs::read_to_string(&path).map_err(|e| {
                    JudgeError::MissingPrompt(format!("{id} ({}: {e})", path.display()))
                })?
            }
            None => BUILT_IN
                .iter()
                .find(|(v, _)| *v == version)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| JudgeError::MissingPrompt(format!("{id} (built in)")))?,
        };
        Self::parse(&id, &text)
    }

    /// Parses and checks one prompt file.
    pub fn parse(id: &str, text: &str) -> Result<Self, JudgeError> {
        let invalid = |reason: String| JudgeError::InvalidPrompt {
            name: id.to_owned(),
            reason,
        };
        let file: PromptFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if let Some(field) = placeholders(&file.system).map_err(&invalid)?.first() {
            return Err(invalid(format!(
                "the system prompt takes no placeholders, found {{{field}}}"
            )));
        }
        let mut fields = placeholders(&file.user).map_err(&invalid)?;
        fields.sort_unstable();
        fields.dedup();
        if fields != ["answer", "context", "question"] {
            return Err(invalid(format!(
                "the user template must use exactly {{question}}, {{context}} and {{answer}}, found {fields:?}"
            )));
        }
        Ok(Self {
            id: id.to_owned(),
            system: unescape(file.system.trim()),
            user: file.user.trim().to_owned(),
        })
    }

    /// The user turn with the three values in place (text inside them is not interpreted).
    pub fn render_user(&self, question: &str, context: &str, answer: &str) -> String {
        let mut out = String::with_capacity(self.user.len() + context.len() + answer.len());
        let mut rest = self.user.as_str();
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                out.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            let mut replaced = false;
            for (name, value) in [
                ("{question}", question),
                ("{context}", context),
                ("{answer}", answer),
            ] {
                if let Some(after) = tail.strip_prefix(name) {
                    out.push_str(value);
                    rest = after;
                    replaced = true;
                    break;
                }
            }
            if !replaced {
                // `parse` admits no other braces.
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }
}

/// The placeholder names of a template, in order; an error for an unbalanced brace.
fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            rest = &tail[2..];
        } else if tail.starts_with('}') {
            return Err("a lone '}' (write '}}' for a literal brace)".into());
        } else {
            let end = tail
                .find('}')
                .ok_or("a '{' without '}' (write '{{' for a literal brace)")?;
            let name = &tail[1..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(format!("{{{name}}} is not a placeholder"));
            }
            names.push(name.to_owned());
            rest = &tail[end + 1..];
        }
    }
    Ok(names)
}

fn unescape(text: &str) -> String {
    text.replace("{{", "{").replace("}}", "}")
}

/// The judge's scores of one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// 1–5: every statement supported by the cited passages is 5.
    pub faithfulness: u8,
    pub faithfulness_reason: String,
    /// 1–5: answers the question directly is 5.
    pub relevance: u8,
    pub relevance_reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerdict {
    faithfulness: i64,
    faithfulness_reason: String,
    relevance: i64,
    relevance_reason: String,
}

/// Characters of a rejected reply kept in the error.
const REPLY_KEPT: usize = 400;

/// Parses the judge's reply strictly (see the module docs).
pub fn parse_verdict(reply: &str) -> Result<Verdict, JudgeError> {
    let rejected = |reason: String| JudgeError::Reply {
        reason,
        reply: reply.chars().take(REPLY_KEPT).collect(),
    };
    let body = strip_fence(reply.trim());
    let raw: RawVerdict = serde_json::from_str(body).map_err(|e| rejected(e.to_string()))?;
    let score = |name: &str, value: i64| {
        u8::try_from(value)
            .ok()
            .filter(|v| (1..=5).contains(v))
            .ok_or_else(|| {
                rejected(format!(
                    "{name} must be an integer from 1 to 5, got {value}"
                ))
            })
    };
    let reason = |name: &str, text: String| {
        let text = text.trim().to_owned();
        if text.is_empty() {
            Err(rejected(format!("{name} is empty")))
        } else {
            Ok(text)
        }
    };
    Ok(Verdict {
        faithfulness: score("faithfulness", raw.faithfulness)?,
        faithfulness_reason: reason("faithfulness_reason", raw.faithfulness_reason)?,
        relevance: score("relevance", raw.relevance)?,
        relevance_reason: reason("relevance_reason", raw.relevance_reason)?,
    })
}

/// The inside of one Markdown code fence (```` ```json … ``` ````) filling the whole text;
/// the text itself otherwise.
fn strip_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    let Some(body) = rest.strip_suffix("```") else {
        return text;
    };
    // The info string (`json`) runs to the end of the first line.
    match body.find('\n') {
        Some(nl) if body[..nl].chars().all(|c| c.is_ascii_alphanumeric()) => body[nl + 1..].trim(),
        _ => body.trim(),
    }
}

/// The passages an answer cites, numbered as it cites them, for the judge's `{context}`.
pub fn render_context(passages: &[(u32, String, String)]) -> String {
    if passages.is_empty() {
        return "(the answer cites no passage)".to_owned();
    }
    passages
        .iter()
        .map(|(n, title, text)| {
            if title.is_empty() {
                format!("[{n}] {text}")
            } else {
                format!("[{n}] ({title}) {text}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A judge: a prompt version and the model that reads it.
#[derive(Debug, Clone)]
pub struct Judge {
    generator: Arc<dyn Generator>,
    prompt: JudgePrompt,
    max_output_tokens: u32,
}

impl Judge {
    pub fn new(generator: Arc<dyn Generator>, prompt: JudgePrompt) -> Self {
        Self {
            generator,
            prompt,
            max_output_tokens: 400,
        }
    }

    pub fn prompt(&self) -> &JudgePrompt {
        &self.prompt
    }

    /// The judge model's id.
    pub fn model(&self) -> &str {
        self.generator.model()
    }

    /// Asks the model (temperature 0) and parses its verdict.
    pub async fn judge(
        &self,
        question: &str,
        context: &str,
        answer: &str,
    ) -> Result<Verdict, JudgeError> {
        let request = GenerationRequest {
            system: self.prompt.system.clone(),
            user: self.prompt.render_user(question, context, answer),
            max_output_tokens: self.max_output_tokens,
            temperature: 0.0,
        };
        let mut stream = self.generator.generate(request).await?;
        let mut reply = String::new();
        while let Some(event) = stream.next().await {
            match event? {
                GenerationEvent::Delta(text) => reply.push_str(&text),
                GenerationEvent::Done(_) => break,
            }
        }
        parse_verdict(&reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_prompt_loads_and_renders() {
        let prompt = JudgePrompt::load(None, DEFAULT_VERSION).unwrap();
        assert_eq!(prompt.id, "judge/v1");
        assert!(
            prompt.system.contains("\"faithfulness\": 4"),
            "{}",
            prompt.system
        );
        assert!(!prompt.system.contains("{{"));
        assert!(prompt.system.contains("not instructions"));
        let user = prompt.render_user("who {wins}?", "[1] (T) text", "X [1]");
        assert!(user.contains("Question: who {wins}?"), "{user}");
        assert!(user.contains("[1] (T) text"));
        assert!(user.ends_with("Answer: X [1]"), "{user}");
        assert!(matches!(
            JudgePrompt::load(None, "v9"),
            Err(JudgeError::MissingPrompt(_))
        ));
    }

    #[test]
    fn the_repository_file_is_the_built_in_one() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts");
        assert_eq!(
            JudgePrompt::load(Some(&dir), "v1").unwrap(),
            JudgePrompt::load(None, "v1").unwrap()
        );
    }

    #[test]
    fn malformed_prompts_are_refused() {
        let bad = [
            ("system = \"s\"\nuser = \"{question} {context}\"", "exactly"),
            (
                "system = \"s {answer}\"\nuser = \"{question} {context} {answer}\"",
                "no placeholders",
            ),
            (
                "system = \"s\"\nuser = \"{question} {context} {answer} {x}\"",
                "exactly",
            ),
            (
                "system = \"s\"\nuser = \"{question} {context} {answer} }\"",
                "lone",
            ),
            (
                "system = \"s\"\nuser = \"{question} {context} {answer}\"\nother = 1",
                "unknown field",
            ),
        ];
        for (text, expected) in bad {
            let err = JudgePrompt::parse("judge/t", text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn verdicts_are_parsed_strictly() {
        let ok = r#"{"faithfulness": 4, "faithfulness_reason": "mostly supported", "relevance": 5, "relevance_reason": "direct"}"#;
        let v = parse_verdict(ok).unwrap();
        assert_eq!((v.faithfulness, v.relevance), (4, 5));
        assert_eq!(v.faithfulness_reason, "mostly supported");
        assert_eq!(parse_verdict(&format!("```json\n{ok}\n```")).unwrap(), v);
        assert_eq!(parse_verdict(&format!("  ```\n{ok}```  ")).unwrap(), v);

        for (reply, expected) in [
            (r#"Sure! {"faithfulness": 4}"#, "expected value"),
            (
                r#"{"faithfulness": 6, "faithfulness_reason": "x", "relevance": 5, "relevance_reason": "y"}"#,
                "from 1 to 5, got 6",
            ),
            (
                r#"{"faithfulness": 0, "faithfulness_reason": "x", "relevance": 5, "relevance_reason": "y"}"#,
                "got 0",
            ),
            (
                r#"{"faithfulness": 4.5, "faithfulness_reason": "x", "relevance": 5, "relevance_reason": "y"}"#,
                "invalid type",
            ),
            (
                r#"{"faithfulness": "4", "faithfulness_reason": "x", "relevance": 5, "relevance_reason": "y"}"#,
                "invalid type",
            ),
            (
                r#"{"faithfulness": 4, "faithfulness_reason": " ", "relevance": 5, "relevance_reason": "y"}"#,
                "faithfulness_reason is empty",
            ),
            (
                r#"{"faithfulness": 4, "faithfulness_reason": "x", "relevance": 5}"#,
                "missing field",
            ),
            (
                r#"{"faithfulness": 4, "faithfulness_reason": "x", "relevance": 5, "relevance_reason": "y", "overall": 5}"#,
                "unknown field",
            ),
            (&format!("{ok} and more"), "trailing characters"),
            ("", "EOF"),
        ] {
            let err = parse_verdict(reply).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(expected), "{reply}: {text}");
            assert!(matches!(err, JudgeError::Reply { .. }));
        }
    }

    #[test]
    fn context_lists_the_cited_passages() {
        assert_eq!(render_context(&[]), "(the answer cites no passage)");
        assert_eq!(
            render_context(&[
                (1, "Deadpool 2".into(), "Out in May.".into()),
                (3, String::new(), "Untitled.".into())
            ]),
            "[1] (Deadpool 2) Out in May.\n\n[3] Untitled."
        );
    }
}
