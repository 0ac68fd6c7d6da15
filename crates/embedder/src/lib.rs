//! rag-embedder
