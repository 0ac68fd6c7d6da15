//! rag-vector-store
