//! rag-config
