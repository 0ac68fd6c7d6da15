//! rag-ingest-worker
