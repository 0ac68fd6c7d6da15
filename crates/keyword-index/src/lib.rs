//! rag-keyword-index
