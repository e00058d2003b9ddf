//! The `BlobStore` contract over the local folder and a real S3-compatible
//! server (SeaweedFS in CI), plus presigned-URL checks against that server.

mod support;

use std::sync::Arc;
use std::time::Duration;

use dadly_agent::blob::*;
use uuid::Uuid;

async fn contract(blobs: Arc<dyn BlobStore>) {
    let (kim, lee) = (Uuid::now_v7(), Uuid::now_v7());
    let photo: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let stored = blobs.put(kim, photo.clone(), "image/jpeg", "jpg").await.unwrap();
    assert!(stored.key.starts_with(&format!("{kim}/")) && stored.key.ends_with(".jpg"), "{}", stored.key);
    assert_eq!((stored.size_bytes, stored.content_type.as_str()), (photo.len() as u64, "image/jpeg"));
    assert_eq!(stored.sha256, sha256_hex(&photo));
    assert_eq!(blobs.get(kim, &stored.key).await.unwrap(), photo);

    let other = blobs.put(kim, b"voice".to_vec(), "audio/ogg", "ogg").await.unwrap();
    assert_ne!(other.key, stored.key, "every put gets its own key");

    // Another family can neither read, delete nor link to it.
    assert!(matches!(blobs.get(lee, &stored.key).await, Err(BlobError::NotFound)));
    assert!(matches!(blobs.delete(lee, &stored.key).await, Err(BlobError::NotFound) | Ok(())));
    assert!(matches!(blobs.signed_url(lee, &stored.key, Duration::from_secs(60)).await, Err(BlobError::NotFound)));
    let sneaky = format!("{lee}/../{}", stored.key);
    assert!(matches!(blobs.get(lee, &sneaky).await, Err(BlobError::NotFound)));
    assert_eq!(blobs.get(kim, &stored.key).await.unwrap(), photo, "still there");

    blobs.delete(kim, &stored.key).await.unwrap();
    assert!(matches!(blobs.get(kim, &stored.key).await, Err(BlobError::NotFound)));
    blobs.delete(kim, &stored.key).await.unwrap();
    assert!(matches!(blobs.get(kim, &format!("{kim}/missing.jpg")).await, Err(BlobError::NotFound)));
}

#[tokio::test]
async fn local_folder() {
    let dir = tempfile::tempdir().unwrap();
    contract(Arc::new(LocalBlobs::new(dir.path().to_path_buf(), b"k".to_vec(), "http://x".into()))).await;
}

#[tokio::test]
async fn s3_compatible_server() {
    let Some(settings) = support::s3_settings() else { return };
    let blobs = S3Blobs::new(&settings).unwrap();
    blobs.check().await.expect("bucket reachable");
    contract(Arc::new(blobs)).await;
}

#[tokio::test]
async fn s3_presigned_urls_work_expire_and_cannot_be_tampered_with() {
    let Some(settings) = support::s3_settings() else { return };
    let blobs = S3Blobs::new(&settings).unwrap();
    let http = reqwest::Client::new();
    let (kim, lee) = (Uuid::now_v7(), Uuid::now_v7());
    let mine = blobs.put(kim, b"kim's photo".to_vec(), "image/png", "png").await.unwrap();
    let theirs = blobs.put(lee, b"lee's photo".to_vec(), "image/png", "png").await.unwrap();

    let url = blobs.signed_url(kim, &mine.key, Duration::from_secs(60)).await.unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"kim's photo");

    let unsigned = url.split('?').next().unwrap();
    assert_eq!(http.get(unsigned).send().await.unwrap().status(), 403, "the bucket is private");

    let sig_at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut tampered = url.clone();
    let flipped = if &url[sig_at..sig_at + 1] == "a" { "b" } else { "a" };
    tampered.replace_range(sig_at..sig_at + 1, flipped);
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);

    // Kim's link, pointed at Lee's object: the signature covers the path.
    let redirected = url.replace(&mine.key, &theirs.key);
    assert_ne!(redirected, url);
    assert_eq!(http.get(&redirected).send().await.unwrap().status(), 403);

    let short = blobs.signed_url(kim, &mine.key, Duration::from_secs(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(http.get(&short).send().await.unwrap().status(), 403, "expired");
}
