//! rag-gateway
