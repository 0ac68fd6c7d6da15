//! rag-cache
