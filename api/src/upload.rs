//! Uploads from the browser: a body that is either JSON or
//! `multipart/form-data` with a photo and/or an audio file. A file's type is
//! recognised from its bytes (never the declared type): what is neither a
//! known image nor a known audio format is refused with 415, what is over the
//! limit with 413 — read in chunks, so an oversized upload is never buffered.

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest photo or audio file the API takes (the Telegram Bot API's own download limit).
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;
/// The body limit of a route that takes uploads: a photo, an audio file and the form around them.
pub const MAX_FORM_BYTES: usize = 2 * MAX_UPLOAD_BYTES + 1024 * 1024;
/// Largest text field of a form.
const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Most fields a form may have.
const MAX_FIELDS: usize = 32;

/// A file recognised by its bytes.
#[derive(Clone)]
pub struct Upload {
    /// `photo` or `voice`.
    pub kind: &'static str,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("kind", &self.kind).field("content_type", &self.content_type).field("bytes", &self.bytes.len()).finish()
    }
}

/// A multipart form: its text fields (repeated names keep every value) and
/// at most one photo and one audio file.
#[derive(Debug, Default)]
pub struct Form {
    pub fields: HashMap<String, Vec<String>>,
    pub photo: Option<Upload>,
    pub audio: Option<Upload>,
}

impl Form {
    /// A single text field, trimmed; empty counts as absent.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|v| v.last()).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// Every value of a field, also split on commas (`member_ids=a,b` or repeated).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.fields.get(name).into_iter().flatten().flat_map(|v| v.split(',')).map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    }
}

/// What a file's bytes are: `(kind, content type)`.
pub fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if at(0, b"\xFF\xD8\xFF") {
        return Some(("photo", "image/jpeg"));
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Some(("photo", "image/png"));
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Some(("photo", "image/webp"));
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some(("voice", "audio/wav"));
    }
    if at(0, b"OggS") {
        return Some(("voice", "audio/ogg"));
    }
    if at(0, b"\x1A\x45\xDF\xA3") {
        // Matroska/WebM: what MediaRecorder writes in Chromium and Firefox.
        return Some(("voice", "audio/webm"));
    }
    if at(4, b"ftyp") {
        let brand = bytes.get(8..12)?;
        return match brand {
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" => Some(("photo", "image/heic")),
            b"M4A " | b"M4B " | b"mp42" | b"isom" | b"iso5" | b"dash" => Some(("voice", "audio/mp4")),
            _ => None,
        };
    }
    if at(0, b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        return Some(("voice", "audio/mpeg"));
    }
    None
}

/// Reads a whole multipart form; files are recognised by their bytes and
/// filed as `photo` or `audio` whatever their field was called.
pub async fn read_form(mut multipart: Multipart, max_upload: usize) -> Result<Form, ApiError> {
    let mut form = Form::default();
    let mut count = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        count += 1;
        if count > MAX_FIELDS {
            return Err(ApiError::BadRequest(format!("a form has at most {MAX_FIELDS} fields")));
        }
        let name = field.name().unwrap_or("").to_string();
        let is_file = field.file_name().is_some() || matches!(name.as_str(), "photo" | "audio" | "voice" | "file");
        let limit = if is_file { max_upload } else { MAX_FIELD_BYTES };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if bytes.len() + chunk.len() > limit {
                return Err(if is_file {
                    ApiError::TooLarge
                } else {
                    ApiError::Invalid(format!("the form field `{name}` is longer than {MAX_FIELD_BYTES} bytes"))
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if !is_file {
            let text = String::from_utf8(bytes).map_err(|_| ApiError::Invalid(format!("the form field `{name}` is not UTF-8 text")))?;
            if text.contains('\0') {
                return Err(ApiError::Invalid(format!("the form field `{name}` contains a NUL character")));
            }
            form.fields.entry(name).or_default().push(text);
            continue;
        }
        if bytes.is_empty() {
            // A file input left empty by the browser.
            continue;
        }
        let Some((kind, content_type)) = sniff(&bytes) else {
            return Err(ApiError::Unsupported(format!(
                "the file in `{name}` is not a photo (JPEG, PNG, HEIC, WebP) or a voice recording (Ogg/Opus, WebM, M4A, MP3, WAV)"
            )));
        };
        let slot = if kind == "photo" { &mut form.photo } else { &mut form.audio };
        if slot.is_some() {
            return Err(ApiError::Invalid(format!("send at most one {}", if kind == "photo" { "photo" } else { "audio file" })));
        }
        *slot = Some(Upload { kind, content_type, bytes });
    }
    Ok(form)
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE { ApiError::TooLarge } else { ApiError::BadRequest(format!("the form could not be read: {}", e.body_text())) }
}

/// A body that is JSON (`T`) or a multipart form.
pub enum JsonOrForm<T> {
    Json(T),
    Form(Form),
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let multipart = Multipart::from_request(req, state).await.map_err(|r| ApiError::BadRequest(r.body_text()))?;
            return Ok(JsonOrForm::Form(read_form(multipart, MAX_UPLOAD_BYTES).await?));
        }
        if !crate::extract::is_json(req.headers()) {
            return Err(ApiError::Unsupported("send JSON (`Content-Type: application/json`) or a form (`multipart/form-data`)".into()));
        }
        // The route takes uploads, so its body limit is theirs: JSON keeps the usual one.
        let bytes = axum::body::to_bytes(req.into_body(), crate::MAX_BODY_BYTES).await.map_err(|_| ApiError::TooLarge)?;
        crate::extract::refuse_nul(&bytes)?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(JsonOrForm::Json(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_recognised_by_their_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\x00\x10JFIF"), Some(("photo", "image/jpeg")));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\x00\x00"), Some(("photo", "image/png")));
        assert_eq!(sniff(b"RIFF\x10\x00\x00\x00WEBPVP8 "), Some(("photo", "image/webp")));
        assert_eq!(sniff(b"RIFF\x10\x00\x00\x00WAVEfmt "), Some(("voice", "audio/wav")));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypheic\x00\x00"), Some(("photo", "image/heic")));
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypM4A \x00\x00"), Some(("voice", "audio/mp4")));
        assert_eq!(sniff(b"OggS\x00\x02"), Some(("voice", "audio/ogg")));
        assert_eq!(sniff(b"\x1A\x45\xDF\xA3\x9f"), Some(("voice", "audio/webm")));
        assert_eq!(sniff(b"ID3\x04\x00"), Some(("voice", "audio/mpeg")));
        assert_eq!(sniff(b"<html><script>"), None, "a declared image/png that is HTML is not a photo");
        assert_eq!(sniff(b"\x00\x00\x00\x18ftypqt  "), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF"), None);
    }
}
