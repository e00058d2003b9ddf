//! `LocalBlobs`: media in a local folder. Signed URLs carry an expiry and an
//! HMAC over key and expiry; the API serves them after `verify`.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{BlobError, BlobStore, StoredBlob, key_belongs_to, new_key, sha256_hex};
use crate::domain::FamilyId;

pub struct LocalBlobs {
    root: PathBuf,
    secret: Vec<u8>,
    /// Public base URL of the API, e.g. `http://127.0.0.1:8080`.
    base_url: String,
}

/// Why a signed URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum UrlRejection {
    Expired,
    BadSignature,
}

impl LocalBlobs {
    pub fn new(root: PathBuf, secret: Vec<u8>, base_url: String) -> Self {
        Self { root, secret, base_url: base_url.trim_end_matches('/').to_string() }
    }

    fn signature(&self, key: &str, expires: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks a signed URL's parts; on success the key may be served.
    pub fn verify(&self, key: &str, expires: i64, signature: &str) -> Result<(), UrlRejection> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        let sig = hex::decode(signature).map_err(|_| UrlRejection::BadSignature)?;
        mac.verify_slice(&sig).map_err(|_| UrlRejection::BadSignature)?;
        if expires < Utc::now().timestamp() {
            return Err(UrlRejection::Expired);
        }
        Ok(())
    }

    /// Reads a blob by key alone, after `verify` accepted its URL.
    pub async fn read_verified(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let family = key.split('/').next().and_then(|f| f.parse().ok()).ok_or(BlobError::NotFound)?;
        self.get(family, key).await
    }

    fn path(&self, family_id: FamilyId, key: &str) -> Result<PathBuf, BlobError> {
        if !key_belongs_to(family_id, key) {
            return Err(BlobError::NotFound);
        }
        Ok(self.root.join(key))
    }
}

fn io_err(e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound { BlobError::NotFound } else { BlobError::Backend(Box::new(e)) }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    async fn ping(&self) -> Result<(), BlobError> {
        // The folder exists (it is made at start-up) and is a folder.
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(BlobError::Unavailable(format!("{} is not a folder", self.root.display()).into())),
            Err(e) => Err(BlobError::Unavailable(Box::new(e))),
        }
    }

    fn backend(&self) -> &'static str {
        "local"
    }

    async fn put(&self, family_id: FamilyId, bytes: Vec<u8>, content_type: &str, extension: &str) -> Result<StoredBlob, BlobError> {
        let key = new_key(family_id, extension);
        let path = self.path(family_id, &key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io_err)?;
        }
        // Write then rename, so a reader never sees half a file.
        let tmp = path.with_extension("partial");
        tokio::fs::write(&tmp, &bytes).await.map_err(io_err)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io_err)?;
        Ok(StoredBlob { key, content_type: content_type.to_string(), size_bytes: bytes.len() as u64, sha256: sha256_hex(&bytes) })
    }

    async fn get(&self, family_id: FamilyId, key: &str) -> Result<Vec<u8>, BlobError> {
        tokio::fs::read(self.path(family_id, key)?).await.map_err(io_err)
    }

    async fn delete(&self, family_id: FamilyId, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(family_id, key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(e)),
            _ => Ok(()),
        }
    }

    async fn signed_url(&self, family_id: FamilyId, key: &str, ttl: std::time::Duration) -> Result<String, BlobError> {
        self.path(family_id, key)?;
        let expires = Utc::now().timestamp() + ttl.as_secs() as i64;
        let sig = self.signature(key, expires);
        Ok(format!("{}/media/{key}?expires={expires}&sig={sig}", self.base_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn blobs(dir: &tempfile::TempDir) -> LocalBlobs {
        LocalBlobs::new(dir.path().to_path_buf(), b"secret".to_vec(), "http://x".into())
    }

    fn url_parts(url: &str) -> (String, i64, String) {
        let rest = url.strip_prefix("http://x/media/").unwrap();
        let (key, query) = rest.split_once('?').unwrap();
        let mut exp = 0;
        let mut sig = String::new();
        for kv in query.split('&') {
            match kv.split_once('=').unwrap() {
                ("expires", v) => exp = v.parse().unwrap(),
                ("sig", v) => sig = v.to_string(),
                _ => {}
            }
        }
        (key.to_string(), exp, sig)
    }

    #[tokio::test]
    async fn stored_blob_round_trips_and_records_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let b = blobs(&dir);
        let fam = Uuid::now_v7();
        let stored = b.put(fam, b"hello".to_vec(), "text/plain", "txt").await.unwrap();
        assert_eq!(stored.size_bytes, 5);
        assert_eq!(stored.sha256, sha256_hex(b"hello"));
        assert_eq!(b.get(fam, &stored.key).await.unwrap(), b"hello");
        b.delete(fam, &stored.key).await.unwrap();
        assert!(matches!(b.get(fam, &stored.key).await, Err(BlobError::NotFound)));
    }

    #[tokio::test]
    async fn another_familys_key_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let b = blobs(&dir);
        let (a, other) = (Uuid::now_v7(), Uuid::now_v7());
        let stored = b.put(a, b"secret photo".to_vec(), "image/jpeg", "jpg").await.unwrap();
        assert!(matches!(b.get(other, &stored.key).await, Err(BlobError::NotFound)));
        let traversal = format!("{other}/../{}", stored.key);
        assert!(matches!(b.get(other, &traversal).await, Err(BlobError::NotFound)));
    }

    #[tokio::test]
    async fn signed_url_verifies_and_rejects_tampering_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let b = blobs(&dir);
        let fam = Uuid::now_v7();
        let stored = b.put(fam, b"x".to_vec(), "image/png", "png").await.unwrap();
        let url = b.signed_url(fam, &stored.key, std::time::Duration::from_secs(60)).await.unwrap();
        let (key, exp, sig) = url_parts(&url);
        assert_eq!(b.verify(&key, exp, &sig), Ok(()));
        assert_eq!(b.verify(&key, exp + 1000, &sig), Err(UrlRejection::BadSignature));
        let other_key = format!("{}/{}", Uuid::now_v7(), key.split('/').nth(1).unwrap());
        assert_eq!(b.verify(&other_key, exp, &sig), Err(UrlRejection::BadSignature));
        let past = Utc::now().timestamp() - 5;
        assert_eq!(b.verify(&key, past, &b.signature(&key, past)), Err(UrlRejection::Expired));
    }
}
