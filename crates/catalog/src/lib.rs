//! rag-catalog
