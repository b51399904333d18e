//! Files on disk and `multipart/form-data` bodies.
//!
//! [`DirBlobStore`] keeps attachment bytes in a folder (the engine's default keeps them
//! in memory, which loses them on restart). [`read_multipart`] reads an upload form
//! within a file count and a total size, so no body can grow memory without bound.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chat_core::{BlobStore, safe_path_segment};
use chat_core::{Error, Result};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{HeaderMap, StatusCode};

use crate::error::ApiError;

/// Attachment bytes as files under one folder: `<folder>/<random>/<name>`.
///
/// Writes go to a temporary file that is synced and then renamed, so a crash never
/// leaves a half-written file under a key the store handed out.
#[derive(Debug, Clone)]
pub struct DirBlobStore {
    root: PathBuf,
}

impl DirBlobStore {
    /// A store in `root`, created if missing.
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<Self> {
        let root = root.into();
        private_dir(&root)?;
        Ok(Self { root })
    }

    /// The file behind `key`, refusing any key that is not `<hex>/<safe name>` (so no
    /// key can reach outside the folder).
    fn path(&self, key: &str) -> Result<PathBuf> {
        let mut parts = key.split('/');
        let (Some(dir), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::NotFound("attachment"));
        };
        let dir_ok = dir.len() == 32 && dir.bytes().all(|b| b.is_ascii_hexdigit());
        if !dir_ok || name.is_empty() || safe_path_segment(name) != name {
            return Err(Error::NotFound("attachment"));
        }
        Ok(self.root.join(dir).join(name))
    }

    /// Every key stored here (`<random>/<name>`), for copying the folder file by file; a
    /// write still in progress (its temporary file) is not a key.
    pub fn keys(&self) -> std::io::Result<Vec<String>> {
        let mut keys = Vec::new();
        for dir in std::fs::read_dir(&self.root)? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            let dir_name = dir.file_name().to_string_lossy().into_owned();
            for file in std::fs::read_dir(dir.path())? {
                let file = file?;
                let key = format!("{dir_name}/{}", file.file_name().to_string_lossy());
                if file.file_type()?.is_file() && self.path(&key).is_ok() {
                    keys.push(key);
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn put(&self, key_hint: &str, bytes: Vec<u8>) -> Result<String> {
        // The file's address inside this store, not domain data: random so that keys of
        // two processes or restarts never collide, whatever id generator the engine uses.
        let key = format!(
            "{}/{}",
            uuid::Uuid::new_v4().simple(),
            safe_path_segment(key_hint)
        );
        let path = self.path(&key)?;
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(Error::storage)?
            .map_err(Error::storage)?;
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound("attachment"))
            }
            Err(e) => Err(Error::storage(e)),
        }
    }

    async fn put_at(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(Error::storage)?
            .map_err(Error::storage)?;
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let Ok(path) = self.path(key) else {
            return Ok(());
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    let _ = tokio::fs::remove_dir(dir).await;
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::storage(e)),
        }
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("keys have a folder");
    private_dir(dir)?;
    let temporary = dir.join(".partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    // Customers' files: readable by the server's user only.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents owner-only (0700 on Unix): uploads are customers'
/// files.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// One file of an upload form.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The form field it came in.
    pub field: String,
    /// The client's file name (not trusted: the blob store sanitizes it).
    pub file_name: String,
    /// The declared MIME type (`application/octet-stream` if none).
    pub content_type: String,
    /// The bytes.
    pub bytes: Bytes,
}

/// An upload form: its files and its plain fields.
#[derive(Debug, Clone, Default)]
pub struct Form {
    /// File parts, in order.
    pub files: Vec<UploadedFile>,
    /// Text parts, in order.
    pub fields: Vec<(String, String)>,
}

impl Form {
    /// The first text field called `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a `multipart/form-data` body with at most `max_files` files of at most
/// `max_file_bytes` each.
///
/// - not multipart → 415 `unsupported_media_type`;
/// - a file over the size, or a body over `max_files × max_file_bytes` plus 64 KiB of
///   fields and headers → 413 `payload_too_large`;
/// - more files than allowed → 422 `validation_failed` on `files`;
/// - a broken body → 400 `malformed_multipart`.
pub async fn read_multipart(
    headers: &HeaderMap,
    body: Incoming,
    max_files: usize,
    max_file_bytes: u64,
) -> std::result::Result<Form, ApiError> {
    let boundary = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: multipart/form-data",
            )
        })?;
    let total = (max_files as u64)
        .saturating_mul(max_file_bytes)
        .saturating_add(64 * 1024);
    let bytes = crate::http::collect(body, usize::try_from(total).unwrap_or(usize::MAX)).await?;
    parse_multipart(bytes, boundary, max_files, max_file_bytes).await
}

/// Reads a whole `multipart/form-data` body split by `boundary` (the second half of
/// [`read_multipart`], apart so the fuzz target `fuzz/fuzz_targets/multipart.rs` reaches
/// the parsing without a socket). Its errors are those of [`read_multipart`].
pub async fn parse_multipart(
    bytes: Bytes,
    boundary: String,
    max_files: usize,
    max_file_bytes: u64,
) -> std::result::Result<Form, ApiError> {
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = Form::default();
    let malformed = |e: multer::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_multipart",
            format!("the form could not be read: {e}"),
        )
    };
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                if form.files.len() == max_files {
                    return Err(ApiError::invalid(
                        "files",
                        format!("at most {max_files} files per upload"),
                    ));
                }
                let content_type = field.content_type().map_or_else(
                    || "application/octet-stream".to_owned(),
                    ToString::to_string,
                );
                let bytes = field.bytes().await.map_err(malformed)?;
                if bytes.len() as u64 > max_file_bytes {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!("`{file_name}` is larger than {max_file_bytes} bytes"),
                    ));
                }
                form.files.push(UploadedFile {
                    field: name,
                    file_name,
                    content_type,
                    bytes,
                });
            }
            None => {
                let text = field.text().await.map_err(malformed)?;
                form.fields.push((name, text));
            }
        }
    }
    Ok(form)
}
