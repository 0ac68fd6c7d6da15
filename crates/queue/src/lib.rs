//! rag-queue
