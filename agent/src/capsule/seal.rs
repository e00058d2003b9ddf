//! Envelope encryption of sealed capsules: each capsule's message is
//! encrypted with its own random data key (XChaCha20-Poly1305), and the data
//! key with the master key, which lives outside the store (the environment or
//! a file in the data dir) — so a database dump alone reveals nothing.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE: usize = 24;

/// The master key and its public fingerprint (stored beside each capsule, so
/// a key rotation can tell which key wrapped what).
#[derive(Clone)]
pub struct CapsuleKey {
    key: [u8; 32],
    pub id: String,
}

impl std::fmt::Debug for CapsuleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapsuleKey").field("key", &crate::REDACTED).field("id", &self.id).finish()
    }
}

/// A sealed message: ciphertext and its wrapped data key, each `nonce || bytes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub key_id: String,
}

/// A photo or voice note sealed in a capsule beside its message.
#[derive(Clone, PartialEq)]
pub struct Attachment {
    /// `photo` or `voice`.
    pub kind: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Attachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachment").field("kind", &self.kind).field("content_type", &self.content_type).field("bytes", &self.bytes.len()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the capsule key is not 32 bytes of hex")]
    BadKey,
    #[error("the capsule was sealed with another key ({0})")]
    OtherKey(String),
    #[error("the capsule could not be opened (damaged, or the wrong key)")]
    Damaged,
}

impl CapsuleKey {
    /// From 64 hex characters.
    pub fn from_hex(hex_key: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self::from_bytes(key))
    }

    pub fn from_bytes(key: [u8; 32]) -> Self {
        let id = crate::blob::sha256_hex(&[b"dadly-capsule-key:".as_slice(), &key].concat())[..16].to_string();
        Self { key, id }
    }

    /// A fresh random key (hex), for a first start.
    pub fn generate_hex() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        hex::encode(key)
    }

    /// Encrypts `message` under a new data key, wrapped by this key. The
    /// capsule id is bound in as associated data, so a ciphertext cannot be
    /// moved to another capsule.
    pub fn seal(&self, capsule_id: uuid::Uuid, message: &str) -> Sealed {
        self.seal_bytes(capsule_id.as_bytes(), message.as_bytes())
    }

    /// The message of a sealed capsule.
    pub fn open(&self, capsule_id: uuid::Uuid, sealed: &Sealed) -> Result<String, SealError> {
        String::from_utf8(self.open_bytes(capsule_id.as_bytes(), sealed)?).map_err(|_| SealError::Damaged)
    }

    /// Encrypts a capsule's photo or voice note (its kind and content type
    /// inside the envelope too) under a new data key. Bound to the capsule
    /// and to its role, so it cannot pass for the message or another capsule.
    pub fn seal_attachment(&self, capsule_id: uuid::Uuid, attachment: &Attachment) -> Sealed {
        let plaintext = [attachment.kind.as_bytes(), b"\n", attachment.content_type.as_bytes(), b"\n", &attachment.bytes].concat();
        self.seal_bytes(&attachment_aad(capsule_id), &plaintext)
    }

    /// The photo or voice note of a sealed capsule.
    pub fn open_attachment(&self, capsule_id: uuid::Uuid, sealed: &Sealed) -> Result<Attachment, SealError> {
        let plain = self.open_bytes(&attachment_aad(capsule_id), sealed)?;
        let mut parts = plain.splitn(3, |b| *b == b'\n');
        let kind = parts.next().and_then(|k| std::str::from_utf8(k).ok()).ok_or(SealError::Damaged)?.to_string();
        let content_type = parts.next().and_then(|k| std::str::from_utf8(k).ok()).ok_or(SealError::Damaged)?.to_string();
        let bytes = parts.next().ok_or(SealError::Damaged)?.to_vec();
        Ok(Attachment { kind, content_type, bytes })
    }

    /// The envelope: `plaintext` under a fresh data key, the data key under
    /// this key, both bound to `aad`.
    fn seal_bytes(&self, aad: &[u8], plaintext: &[u8]) -> Sealed {
        let mut data_key = [0u8; 32];
        rand::rng().fill_bytes(&mut data_key);
        let ciphertext = encrypt(&data_key, aad, plaintext);
        let wrapped_key = encrypt(&self.key, aad, &data_key);
        Sealed { ciphertext, wrapped_key, key_id: self.id.clone() }
    }

    fn open_bytes(&self, aad: &[u8], sealed: &Sealed) -> Result<Vec<u8>, SealError> {
        if sealed.key_id != self.id {
            return Err(SealError::OtherKey(sealed.key_id.clone()));
        }
        let data_key: [u8; 32] = decrypt(&self.key, aad, &sealed.wrapped_key)?.try_into().map_err(|_| SealError::Damaged)?;
        decrypt(&data_key, aad, &sealed.ciphertext)
    }
}

fn attachment_aad(capsule_id: uuid::Uuid) -> Vec<u8> {
    [capsule_id.as_bytes().as_slice(), b":attachment"].concat()
}

fn encrypt(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher.encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad }).expect("XChaCha20-Poly1305 encrypts any length in memory");
    [nonce.as_slice(), &sealed].concat()
}

fn decrypt(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < NONCE {
        return Err(SealError::Damaged);
    }
    let (nonce, body) = sealed.split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| SealError::Damaged)?;
    XChaCha20Poly1305::new(key.into()).decrypt(&XNonce::from(nonce), Payload { msg: body, aad }).map_err(|_| SealError::Damaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_only_with_its_key_and_its_capsule() {
        let key = CapsuleKey::from_hex(&CapsuleKey::generate_hex()).unwrap();
        let id = uuid::Uuid::now_v7();
        let sealed = key.seal(id, "민지야, 열여덟 살 축하해 💌");
        let bytes = [sealed.ciphertext.clone(), sealed.wrapped_key.clone()].concat();
        assert!(!String::from_utf8_lossy(&bytes).contains("축하"), "no plaintext in what is stored");
        assert_eq!(key.open(id, &sealed).unwrap(), "민지야, 열여덟 살 축하해 💌");
        assert!(matches!(key.open(uuid::Uuid::now_v7(), &sealed), Err(SealError::Damaged)), "bound to its capsule");
        let other = CapsuleKey::from_hex(&CapsuleKey::generate_hex()).unwrap();
        assert!(matches!(other.open(id, &sealed), Err(SealError::OtherKey(_))));
        let forged = Sealed { key_id: other.id.clone(), ..sealed.clone() };
        assert!(matches!(other.open(id, &forged), Err(SealError::Damaged)));
        assert_ne!(key.seal(id, "same").ciphertext, key.seal(id, "same").ciphertext, "fresh nonces and data keys");
        assert!(format!("{key:?}").contains("[redacted]"));
        assert!(CapsuleKey::from_hex("abcd").is_err());
    }

    #[test]
    fn an_attachment_opens_only_as_the_attachment_of_its_capsule() {
        let key = CapsuleKey::from_hex(&CapsuleKey::generate_hex()).unwrap();
        let id = uuid::Uuid::now_v7();
        let photo = Attachment { kind: "photo".into(), content_type: "image/png".into(), bytes: b"\x89PNG\r\n\x1a\nSECRET-PIXELS\n\n".to_vec() };
        let sealed = key.seal_attachment(id, &photo);
        assert!(!sealed.ciphertext.windows(13).any(|w| w == b"SECRET-PIXELS"), "no plaintext in what is stored");
        assert_eq!(key.open_attachment(id, &sealed).unwrap(), photo, "newlines inside the bytes survive");
        assert!(matches!(key.open_attachment(uuid::Uuid::now_v7(), &sealed), Err(SealError::Damaged)));
        assert!(key.open(id, &sealed).is_err(), "an attachment never passes for the message");
        assert!(key.open_attachment(id, &key.seal(id, "text")).is_err(), "nor the message for an attachment");
        assert!(!format!("{photo:?}").contains("SECRET"));
    }
}
