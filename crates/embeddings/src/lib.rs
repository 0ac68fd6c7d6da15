//! rag-embeddings
