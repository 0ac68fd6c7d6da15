//! rag-router
