//! The `BlobStore` port: media (voice notes, photos) in a private store. Keys
//! are namespaced by family; clients only ever get short-lived signed URLs.

pub mod local;
mod s3;

pub use local::LocalBlobs;
pub use s3::{S3Blobs, S3Settings};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::domain::FamilyId;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    #[error("blob store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("blob store error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What was stored, as recorded in the `media` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBlob {
    pub key: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub sha256: String,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    fn backend(&self) -> &'static str;
    /// Stores bytes under a new key in the family's namespace.
    async fn put(&self, family_id: FamilyId, bytes: Vec<u8>, content_type: &str, extension: &str) -> Result<StoredBlob, BlobError>;
    /// Reads a blob; a key outside the family's namespace is `NotFound`.
    async fn get(&self, family_id: FamilyId, key: &str) -> Result<Vec<u8>, BlobError>;
    async fn delete(&self, family_id: FamilyId, key: &str) -> Result<(), BlobError>;
    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), BlobError> {
        Ok(())
    }
    /// A URL that serves the blob until `ttl` runs out.
    async fn signed_url(&self, family_id: FamilyId, key: &str, ttl: std::time::Duration) -> Result<String, BlobError>;
}

/// Builds a family-namespaced key for a new blob.
pub fn new_key(family_id: FamilyId, extension: &str) -> String {
    let ext: String = extension.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect();
    let ext = if ext.is_empty() { "bin".to_string() } else { ext.to_ascii_lowercase() };
    format!("{family_id}/{}.{ext}", uuid::Uuid::now_v7())
}

/// True when `key` is inside the family's namespace and has no path tricks.
pub fn key_belongs_to(family_id: FamilyId, key: &str) -> bool {
    let prefix = format!("{family_id}/");
    key.starts_with(&prefix)
        && !key.contains("..")
        && !key[prefix.len()..].contains('/')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-./".contains(&b))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
