//! Generated gRPC types. They stay at the service edges: each service
//! converts them to domain types on receipt.

#![allow(clippy::all, clippy::unwrap_used)]

/// Encoded descriptors of every service, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

pub mod indexer {
    pub mod v1 {
        tonic::include_proto!("devops_mcp.indexer.v1");
    }
}

pub mod pull_requests {
    pub mod v1 {
        tonic::include_proto!("devops_mcp.pull_requests.v1");
    }
}

pub mod reviewer {
    pub mod v1 {
        tonic::include_proto!("devops_mcp.reviewer.v1");
    }
}

pub use tonic;
