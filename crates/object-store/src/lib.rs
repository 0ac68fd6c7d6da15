//! rag-object-store
