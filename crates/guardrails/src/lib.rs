//! Guardrails on the query path: PII masking, topic boundaries, prompt-injection screening.
