//! rag-core
