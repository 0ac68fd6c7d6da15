//! rag-launcher
