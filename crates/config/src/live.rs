//! The part of the configuration the router reloads while it runs (`[router.live]`): the
//! domains, the prompts and the guardrails. Everything else needs a restart.
//!
//! The live sections come from a TOML document with the same `[[domains]]`, `[prompts]` and
//! `[guardrails]` sections as the configuration file: a file on the embedded default, a
//! ConfigMap watched through the Kubernetes API in a cluster. A section the document leaves
//! out keeps its start-up value; a document that does not validate changes nothing.

use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::{Deserialize, Serialize};

use crate::{ConfigError, DomainSettings, GuardrailSettings, PromptSettings, Settings};

/// Where the live sections come from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveConfigSource {
    /// Nothing reloads: the configuration file's sections stay as they were at start-up.
    #[default]
    None,
    /// A TOML file of live sections, read at start-up and again whenever its contents
    /// change (checked every `poll_interval_ms`). Prompt files are read from `prompts.dir`.
    File {
        path: PathBuf,
        #[serde(default = "default_poll_interval_ms")]
        poll_interval_ms: u64,
    },
    /// A ConfigMap watched through the Kubernetes API (in-cluster credentials, or the
    /// kubeconfig outside a cluster). Its key [`LIVE_DOCUMENT_KEY`] holds the live sections;
    /// its keys `<name>.<version>.toml` (e.g. `answer.v2.toml`) hold prompt files, which win
    /// over the built-in ones.
    Kubernetes {
        config_map: String,
        /// Unset: the namespace the router runs in (or the kubeconfig's).
        #[serde(default)]
        namespace: Option<String>,
    },
}

fn default_poll_interval_ms() -> u64 {
    2_000
}

/// The ConfigMap key of the live sections.
pub const LIVE_DOCUMENT_KEY: &str = "domains.toml";

/// The ConfigMap key of the prompt file `name`/`version`.
pub fn prompt_key(name: &str, version: &str) -> String {
    format!("{name}.{version}.toml")
}

/// The live sections of one document; `None` for a section it leaves out.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSections {
    #[serde(default)]
    pub domains: Option<Vec<DomainSettings>>,
    #[serde(default)]
    pub prompts: Option<PromptSettings>,
    #[serde(default)]
    pub guardrails: Option<GuardrailSettings>,
}

impl LiveSections {
    /// Parses a document; a key outside the live sections is an error (it would otherwise
    /// look applied and not be).
    pub fn parse(document: &str) -> Result<Self, ConfigError> {
        Figment::from(Toml::string(document))
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// `base` with this document's sections in place of its own, validated as a whole.
    pub fn apply(self, base: &Settings) -> Result<Settings, ConfigError> {
        let mut settings = base.clone();
        if let Some(domains) = self.domains {
            settings.domains = domains;
        }
        if let Some(prompts) = self.prompts {
            settings.prompts = prompts;
        }
        if let Some(guardrails) = self.guardrails {
            settings.guardrails = guardrails;
        }
        settings.validate()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_replaces_only_the_sections_it_has() {
        let base = Settings::default();
        let live = LiveSections::parse(
            "[[domains]]\nname = \"support\"\ndescription = \"Tickets\"\n\
             [prompts]\nname = \"answer\"\nversions = [{ version = \"v2\", weight = 100 }]\n",
        )
        .unwrap();
        let settings = live.apply(&base).unwrap();
        assert_eq!(settings.domains.len(), 1);
        assert_eq!(settings.domains[0].name, "support");
        assert_eq!(settings.prompts.versions[0].version, "v2");
        assert_eq!(settings.guardrails, base.guardrails);
        assert_eq!(settings.router, base.router);
    }

    #[test]
    fn an_empty_document_changes_nothing() {
        let base = Settings::default();
        assert_eq!(LiveSections::parse("").unwrap().apply(&base).unwrap(), base);
    }

    #[test]
    fn keys_outside_the_live_sections_are_refused() {
        let err = LiveSections::parse("[router]\ntop_k = 3\n").unwrap_err();
        assert!(err.to_string().contains("router"), "{err}");
    }

    #[test]
    fn a_document_that_does_not_validate_is_refused() {
        let base = Settings::default();
        let duplicate = "[[domains]]\nname = \"a\"\n[[domains]]\nname = \"a\"\n";
        let err = LiveSections::parse(duplicate)
            .unwrap()
            .apply(&base)
            .unwrap_err();
        assert!(err.to_string().contains("domains.name"), "{err}");
        let no_domains = LiveSections::parse("domains = []\n").unwrap();
        assert!(no_domains.apply(&base).is_err());
        assert!(LiveSections::parse("[[domains]]\nname = 3\n").is_err());
    }

    fn parse_source(text: &str) -> Result<LiveConfigSource, String> {
        Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sources_parse_from_the_router_section() {
        let parsed =
            parse_source("source = \"kubernetes\"\nconfig_map = \"rag-domains\"\n").unwrap();
        assert_eq!(
            parsed,
            LiveConfigSource::Kubernetes {
                config_map: "rag-domains".into(),
                namespace: None
            }
        );
        let parsed = parse_source("source = \"file\"\npath = \"live.toml\"\n").unwrap();
        assert_eq!(
            parsed,
            LiveConfigSource::File {
                path: "live.toml".into(),
                poll_interval_ms: 2_000
            }
        );
        assert!(parse_source("source = \"etcd\"\n").is_err());
    }
}
