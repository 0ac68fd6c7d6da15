//! Stand-ins for services that cannot run on a development machine or in CI, **for tests
//! only**: each speaks the real service's wire format for the calls our adapters make, so
//! the adapters are tested over a real connection. Never deploy them.
//!
//! * [`qdrant`]: a Qdrant server's gRPC API (collections, points, health), in memory.
//! * [`bedrock`]: Bedrock Runtime's `InvokeModel` for Titan Text Embeddings V2.

pub mod bedrock;
pub mod qdrant;
