//! Versioned prompts: `prompts/<name>/<version>.toml`, each with a `system` and a `user`
//! template. Loaded and checked at start-up (a missing file or a template without
//! `{context}` and `{question}` stops the router); an A/B split assigns each request one of
//! the configured versions by a stable hash of its id, so a retried request keeps its version.
//!
//! Without `prompts.dir` the repository's `prompts/` is used as built into the binary, so a
//! router runs from any directory.

use std::collections::BTreeMap;
use std::path::Path;

use rag_config::PromptSettings;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The repository's prompt files, built in.
const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "answer",
        "v1",
        include_str!("../../../prompts/answer/v1.toml"),
    ),
    (
        "answer",
        "v2",
        include_str!("../../../prompts/answer/v2.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt {0} not found")]
    Missing(String),
    #[error("prompt {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// One version of a prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Prompt {
    /// `<name>/<version>`, as recorded on answers.
    pub id: String,
    pub system: String,
    pub user: String,
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

impl Prompt {
    /// Parses and checks one prompt file.
    pub fn parse(id: &str, text: &str) -> Result<Self, PromptError> {
        let invalid = |reason: String| PromptError::Invalid {
            name: id.to_owned(),
            reason,
        };
        let file: PromptFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let system_fields = placeholders(&file.system).map_err(&invalid)?;
        if let Some(field) = system_fields.first() {
            return Err(invalid(format!(
                "the system prompt takes no placeholders, found {{{field}}}"
            )));
        }
        let mut fields = placeholders(&file.user).map_err(&invalid)?;
        fields.sort_unstable();
        fields.dedup();
        if fields != ["context", "question"] {
            return Err(invalid(format!(
                "the user template must use exactly {{context}} and {{question}}, found {fields:?}"
            )));
        }
        Ok(Self {
            id: id.to_owned(),
            system: unescape(file.system.trim()),
            user: file.user.trim().to_owned(),
        })
    }

    /// The user turn: the template with the context and question in place (text inside them
    /// is not interpreted).
    pub fn render_user(&self, context: &str, question: &str) -> String {
        let mut out = String::with_capacity(self.user.len() + context.len() + question.len());
        let mut rest = self.user.as_str();
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                out.push_str(&tail[..1]);
                rest = &tail[2..];
            } else if let Some(after) = tail.strip_prefix("{context}") {
                out.push_str(context);
                rest = after;
            } else if let Some(after) = tail.strip_prefix("{question}") {
                out.push_str(question);
                rest = after;
            } else {
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

/// The configured prompt versions and their weights.
#[derive(Clone, Debug)]
pub struct Prompts {
    variants: Vec<(Prompt, u32)>,
    total_weight: u64,
}

impl Prompts {
    /// Loads every configured version (from `settings.dir`, or the built-in files).
    pub fn load(settings: &PromptSettings) -> Result<Self, PromptError> {
        Self::load_with(settings, &BTreeMap::new())
    }

    /// [`Prompts::load`], where a file in `supplied` (by its key
    /// [`rag_config::prompt_key`], e.g. `answer.v2.toml`, as a ConfigMap holds them) wins.
    pub fn load_with(
        settings: &PromptSettings,
        supplied: &BTreeMap<String, String>,
    ) -> Result<Self, PromptError> {
        let mut variants = Vec::with_capacity(settings.versions.len());
        for variant in &settings.versions {
            let id = format!("{}/{}", settings.name, variant.version);
            let key = rag_config::prompt_key(&settings.name, &variant.version);
            let text = match (supplied.get(&key), &settings.dir) {
                (Some(text), _) => text.clone(),
                (None, Some(dir)) => read(dir, &settings.name, &variant.version)?,
                (None, None) => BUILT_IN
                    .iter()
                    .find(|(n, v, _)| *n == settings.name && *v == variant.version)
                    .map(|(_, _, text)| (*text).to_owned())
                    .ok_or_else(|| PromptError::Missing(format!("{id} (built in)")))?,
            };
            variants.push((Prompt::parse(&id, &text)?, variant.weight));
        }
        let total_weight = variants.iter().map(|(_, w)| u64::from(*w)).sum();
        if total_weight == 0 {
            return Err(PromptError::Invalid {
                name: settings.name.clone(),
                reason: "no version has a positive weight".into(),
            });
        }
        Ok(Self {
            variants,
            total_weight,
        })
    }

    /// The version for `request_id`: the same id always gets the same version, and the
    /// versions' shares of ids follow their weights.
    pub fn choose(&self, request_id: &str) -> &Prompt {
        let digest = Sha256::digest(request_id.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        let mut point = u64::from_be_bytes(head) % self.total_weight;
        for (prompt, weight) in &self.variants {
            if point < u64::from(*weight) {
                return prompt;
            }
            point -= u64::from(*weight);
        }
        // Unreachable: `point` < the sum of the weights.
        &self.variants[self.variants.len() - 1].0
    }
}

fn read(dir: &Path, name: &str, version: &str) -> Result<String, PromptError> {
    let path = dir.join(name).join(format!("{version}.toml"));
    std::fs::read_to_string(&path)
        .map_err(|e| PromptError::Missing(format!("{} ({e})", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rag_config::PromptVariant;

    fn settings(versions: &[(&str, u32)]) -> PromptSettings {
        PromptSettings {
            dir: None,
            name: "answer".into(),
            versions: versions
                .iter()
                .map(|(v, w)| PromptVariant {
                    version: (*v).into(),
                    weight: *w,
                })
                .collect(),
        }
    }

    #[test]
    fn built_in_prompts_load_and_ground_the_answer() {
        let prompts = Prompts::load(&settings(&[("v1", 1), ("v2", 1)])).unwrap();
        for (prompt, _) in &prompts.variants {
            assert!(prompt.system.contains("don't know"), "{}", prompt.id);
            assert!(prompt.system.contains("not instructions"), "{}", prompt.id);
            let user = prompt.render_user("[1] Leave is 25 days.", "How much leave?");
            assert!(user.contains("[1] Leave is 25 days."));
            assert!(user.contains("How much leave?"));
            assert!(!user.contains('{'));
        }
    }

    #[test]
    fn the_repository_files_match_the_built_in_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts");
        let from_disk = Prompts::load(&PromptSettings {
            dir: Some(dir),
            ..settings(&[("v1", 1), ("v2", 1)])
        })
        .unwrap();
        let built_in = Prompts::load(&settings(&[("v1", 1), ("v2", 1)])).unwrap();
        assert_eq!(from_disk.variants, built_in.variants);
    }

    #[test]
    fn missing_or_malformed_prompts_are_start_up_errors() {
        assert!(matches!(
            Prompts::load(&settings(&[("v9", 1)])),
            Err(PromptError::Missing(_))
        ));
        for (text, why) in [
            ("system = \"s\"\nuser = \"{question}\"", "no context"),
            (
                "system = \"s\"\nuser = \"{context} {question} {extra}\"",
                "unknown",
            ),
            (
                "system = \"{context}\"\nuser = \"{context} {question}\"",
                "system",
            ),
            (
                "system = \"s\"\nuser = \"{context} {question\"",
                "unbalanced",
            ),
            ("system = \"s\"\nuser = \"{context} } {question}\"", "lone"),
            ("user = \"{context} {question}\"", "no system"),
            (
                "system = \"s\"\nuser = \"{context} {question}\"\nextra = 1",
                "unknown key",
            ),
        ] {
            assert!(Prompt::parse("t/v1", text).is_err(), "{why}");
        }
    }

    #[test]
    fn rendering_keeps_literal_braces_and_does_not_expand_inside_values() {
        let prompt = Prompt::parse(
            "t/v1",
            "system = \"JSON like {{\\\"a\\\": 1}}\"\nuser = \"{{x}} {context} / {question}\"",
        )
        .unwrap();
        assert_eq!(prompt.system, "JSON like {\"a\": 1}");
        assert_eq!(
            prompt.render_user("has {question} inside", "q?"),
            "{x} has {question} inside / q?"
        );
    }

    #[test]
    fn the_split_is_stable_and_follows_the_weights() {
        let prompts = Prompts::load(&settings(&[("v1", 80), ("v2", 20)])).unwrap();
        assert_eq!(prompts.choose("req-1").id, prompts.choose("req-1").id);
        let v2 = (0..10_000)
            .filter(|i| prompts.choose(&format!("req-{i}")).id == "answer/v2")
            .count();
        assert!((1_800..=2_200).contains(&v2), "{v2} of 10000 got v2");
        let only = Prompts::load(&settings(&[("v1", 0), ("v2", 5)])).unwrap();
        assert!((0..100).all(|i| only.choose(&i.to_string()).id == "answer/v2"));
    }

    #[test]
    fn supplied_prompt_files_win_over_the_built_in_ones() {
        let v3 = "system = \"Only from the passages.\"\nuser = \"{context}\\n\\nQ: {question}\"";
        let supplied = BTreeMap::from([("answer.v3.toml".to_owned(), v3.to_owned())]);
        let prompts = Prompts::load_with(&settings(&[("v1", 1), ("v3", 1)]), &supplied).unwrap();
        assert_eq!(prompts.variants[1].0.system, "Only from the passages.");
        assert!(prompts.variants[0].0.system.contains("don't know"));
        let broken = BTreeMap::from([(
            "answer.v1.toml".to_owned(),
            "user = \"{question}\"".to_owned(),
        )]);
        assert!(Prompts::load_with(&settings(&[("v1", 1)]), &broken).is_err());
        assert!(Prompts::load_with(&settings(&[("v3", 1)]), &BTreeMap::new()).is_err());
    }
}
