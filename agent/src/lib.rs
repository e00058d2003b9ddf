//! Dadly's brain: the domain, the ports (`Store`, `VectorIndex`, `BlobStore`,
//! `ChatModel`, `Embedder`, `Transcriber`, `TraceSink`), their adapters, and the
//! record / enrich / answer pipelines that every channel shares.

pub mod agent;
pub mod blob;
pub mod capsule;
pub mod channel;
pub mod domain;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod pricing;
pub mod ratelimit;
pub mod prompts;
pub mod store;
pub mod text;
pub mod trace;
pub mod validate;
pub mod vector;

pub use agent::{Agent, AgentError, Backends};

/// What `Debug` prints in place of a secret.
pub const REDACTED: &str = "[redacted]";

#[cfg(test)]
mod properties;
