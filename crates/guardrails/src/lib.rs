//! Guardrails on the query path: PII masking, topic boundaries, prompt-injection screening.
//!
//! Three independent, pure functions families, all CPU-only (no I/O, no async, no model):
//!
//! * [`pii`]: find and mask e-mail addresses, phone numbers, US SSNs, payment-card numbers
//!   (Luhn-checked) and IBANs (mod-97-checked). Runs on every answer and log line, so the
//!   patterns are compiled once and text without PII is returned without allocating
//!   ([`mask_pii_cow`]).
//! * [`topics`]: a [`TopicPolicy`] built from configuration refuses questions about denied
//!   topics ([`refusal`] words the answer).
//! * [`injection`]: instructions found inside retrieved documents are data, not commands;
//!   [`find_injections`] spots the common shapes and [`neutralise`] removes the sentences that
//!   hold them before the chunk reaches the prompt.
//!
//! This crate decides nothing about *when* to apply a guardrail (that is the router's job) and
//! must stay free of I/O so it can run anywhere, including inside log formatting.

pub mod injection;
pub mod pii;
pub mod topics;

pub use injection::{InjectionFinding, Neutralised, find_injections, neutralise};
pub use pii::{Masked, PiiKind, PiiMatch, find_pii, mask_pii, mask_pii_cow};
pub use topics::{DeniedTopic, TopicPolicy, refusal};

/// A guardrail could not be built from its configuration (checked at start-up).
#[derive(Debug, thiserror::Error)]
pub enum GuardrailError {
    #[error("invalid guardrail configuration: {0}")]
    Invalid(String),
}
