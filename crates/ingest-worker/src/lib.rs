//! The ingest-worker: consumes S3-style object events from the documents queue, fetches each
//! object, extracts, cleans and chunks its text, and sends the chunks to the embedder through
//! the chunks queue. It also serves the document service (status, list, delete).
//!
//! Owns the document lifecycle up to "chunks queued": content hashing (an unchanged object is
//! not re-processed), versions, failures with their reasons, and removals. Must not embed or
//! write the indexes (the embedder does).

pub mod chunk;
pub mod extract;
pub mod normalize;

// Everything but the readers needs the backends; without the `service` feature the crate is
// the readers alone (extract, clean, chunk), which is what the fuzz targets build.
#[cfg(feature = "service")]
mod documents;
#[cfg(feature = "service")]
pub mod pipeline;
#[cfg(feature = "service")]
mod service;
#[cfg(feature = "service")]
mod worker;

#[cfg(feature = "service")]
pub use documents::Documents;
#[cfg(feature = "service")]
pub use service::{IngestError, run};
#[cfg(feature = "service")]
pub use worker::Worker;
