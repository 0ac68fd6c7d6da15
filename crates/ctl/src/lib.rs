//! rag-ctl
