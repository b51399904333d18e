//! Attachment bytes live behind [`BlobStore`]; messages only carry their metadata.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};

/// Storage for attachment bytes.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores bytes under a fresh key and returns the key.
    async fn put(&self, key_hint: &str, bytes: Vec<u8>) -> Result<String>;
    /// The bytes under `key`, [`Error::NotFound`] if absent.
    async fn get(&self, key: &str) -> Result<Vec<u8>>;
    /// Removes `key`; absent keys are fine.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Stores bytes under exactly `key`, a key derived from one this store handed out
    /// (a thumbnail beside its file, [`thumbnail_key`]). `Ok(false)` when the store cannot
    /// (the default), and the engine then keeps no thumbnail.
    async fn put_at(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        let _ = (key, bytes);
        Ok(false)
    }
}

/// Makes preview images of uploads. Injected (the engine has none by default) because
/// decoding images is heavy work that belongs on a blocking thread of the embedder's
/// runtime, and not every embedder wants the decoders in its binary.
#[async_trait]
pub trait Thumbnailer: Send + Sync + 'static {
    /// A small PNG preview of an image of `content_type` (as decided from its bytes), or
    /// `None` when it cannot be previewed (not an image, or not decodable).
    /// [`Error::Validation`] on `file` when the image must be refused outright: one whose
    /// header declares more pixels than the thumbnailer will decode (a decompression bomb).
    async fn thumbnail(&self, content_type: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>>;
}

/// Where the thumbnail of the file under `key` is kept: beside it, so that whoever may
/// read the file finds its preview by the same rule and deleting one finds the other.
pub fn thumbnail_key(key: &str) -> String {
    format!("{key}.thumb.png")
}

/// Blobs in memory. For tests and demos; everything is gone when the process ends.
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<String, Vec<u8>>>,
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key_hint: &str, bytes: Vec<u8>) -> Result<String> {
        let key = format!(
            "{}/{}",
            uuid::Uuid::now_v7().simple(),
            safe_path_segment(key_hint)
        );
        self.blobs
            .lock()
            .map_err(Error::storage)?
            .insert(key.clone(), bytes);
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.blobs
            .lock()
            .map_err(Error::storage)?
            .get(key)
            .cloned()
            .ok_or(Error::NotFound("attachment"))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.blobs.lock().map_err(Error::storage)?.remove(key);
        Ok(())
    }

    async fn put_at(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        self.blobs
            .lock()
            .map_err(Error::storage)?
            .insert(key.to_owned(), bytes);
        Ok(true)
    }
}

/// Keeps only characters safe in a path segment, so a key hint can never escape a folder.
pub fn safe_path_segment(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.chars().take(100).collect()
    }
}
