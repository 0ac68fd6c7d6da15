//! The gRPC contract of llmops-rag-pipeline: the code generated from `proto/rag/v1/rag.proto`.
//!
//! Generated at build time by `protox` + `tonic-prost-build`, so no `protoc` is needed.
//! This crate owns nothing but the wire types; conversions live with the domain types.

#![allow(clippy::all, missing_docs, unreachable_pub)]

pub mod v1 {
    tonic::include_proto!("rag.v1");

    /// The encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rag_descriptor");
}

pub use v1::*;
