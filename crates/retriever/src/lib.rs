//! rag-retriever
