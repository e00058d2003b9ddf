//! `S3Blobs`: media in a private S3 / Cloudflare R2 / S3-compatible bucket
//! (rust-s3). Keys are namespaced by family; clients get presigned GET URLs
//! with a short expiry, never public ones. Uploads are SigV4-signed over the
//! payload's SHA-256, so the server rejects a body that does not match it.

use async_trait::async_trait;
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::{Bucket, Region};

use super::{BlobError, BlobStore, StoredBlob, key_belongs_to, new_key, sha256_hex};
use crate::domain::FamilyId;

#[derive(Clone)]
pub struct S3Settings {
    /// `https://<account>.r2.cloudflarestorage.com`, `http://127.0.0.1:9000`, …; `None` means AWS.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub path_style: bool,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key", &crate::REDACTED)
            .field("secret_key", &crate::REDACTED)
            .finish()
    }
}

pub struct S3Blobs {
    bucket: Box<Bucket>,
}

fn s3_err(e: S3Error) -> BlobError {
    match e {
        S3Error::HttpFailWithBody(404, _) => BlobError::NotFound,
        S3Error::HttpFailWithBody(status, _) if status >= 500 => BlobError::Unavailable(Box::new(e)),
        S3Error::Reqwest(_) | S3Error::Io(_) => BlobError::Unavailable(Box::new(e)),
        e => BlobError::Backend(Box::new(e)),
    }
}

impl S3Blobs {
    pub fn new(s: &S3Settings) -> Result<Self, BlobError> {
        let region = match &s.endpoint {
            Some(endpoint) => Region::Custom { region: s.region.clone(), endpoint: endpoint.clone() },
            None => s.region.parse().map_err(|e| BlobError::Backend(Box::new(e)))?,
        };
        let creds = Credentials::new(Some(&s.access_key), Some(&s.secret_key), None, None, None)
            .map_err(|e| BlobError::Backend(Box::new(S3Error::Credentials(e))))?;
        let bucket = Bucket::new(&s.bucket, region, creds).map_err(s3_err)?;
        Ok(Self { bucket: if s.path_style { bucket.with_path_style() } else { bucket } })
    }

    /// Checks the bucket is reachable with these credentials (for start-up and `/readyz`).
    pub async fn check(&self) -> Result<(), BlobError> {
        match self.bucket.head_object("dadly-readiness-probe").await {
            Ok(_) | Err(S3Error::HttpFailWithBody(404, _)) => Ok(()),
            Err(e) => Err(s3_err(e)),
        }
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn ping(&self) -> Result<(), BlobError> {
        self.check().await
    }

    async fn put(&self, family_id: FamilyId, bytes: Vec<u8>, content_type: &str, extension: &str) -> Result<StoredBlob, BlobError> {
        let key = new_key(family_id, extension);
        let sha256 = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        self.bucket.put_object_with_content_type(&key, &bytes, content_type).await.map_err(s3_err)?;
        Ok(StoredBlob { key, content_type: content_type.to_string(), size_bytes: size, sha256 })
    }

    async fn get(&self, family_id: FamilyId, key: &str) -> Result<Vec<u8>, BlobError> {
        if !key_belongs_to(family_id, key) {
            return Err(BlobError::NotFound);
        }
        Ok(self.bucket.get_object(key).await.map_err(s3_err)?.to_vec())
    }

    async fn delete(&self, family_id: FamilyId, key: &str) -> Result<(), BlobError> {
        if !key_belongs_to(family_id, key) {
            return Err(BlobError::NotFound);
        }
        match self.bucket.delete_object(key).await {
            Ok(_) | Err(S3Error::HttpFailWithBody(404, _)) => Ok(()),
            Err(e) => Err(s3_err(e)),
        }
    }

    async fn signed_url(&self, family_id: FamilyId, key: &str, ttl: std::time::Duration) -> Result<String, BlobError> {
        if !key_belongs_to(family_id, key) {
            return Err(BlobError::NotFound);
        }
        let secs = ttl.as_secs().clamp(1, 7 * 24 * 3600) as u32;
        self.bucket.presign_get(key, secs, None).await.map_err(s3_err)
    }
}
