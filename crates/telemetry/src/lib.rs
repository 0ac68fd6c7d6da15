//! rag-telemetry
