//! The uploaded files of a tenant export.
//!
//! An export (`chat-server export --to FILE`) is JSON Lines of the store's rows; the bytes
//! of the files its messages carry live in the blob store, not in the database. They go to
//! `FILE.files/`, a folder beside the export in the uploads folder's own layout
//! (`<random>/<name>`, owner-only), with each image's thumbnail; `chat-server import
//! --from FILE` copies that folder into the new database's uploads folder, so downloads
//! work after a move. The keys stay the same, so the imported messages find their files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chat_core::{BlobStore, Error, Result, thumbnail_key};
use serde_json::Value;

use crate::uploads::DirBlobStore;

/// The folder of the files that go with the export `export`: `<export>.files`.
pub fn files_dir(export: &Path) -> PathBuf {
    let mut name = export.as_os_str().to_owned();
    name.push(".files");
    PathBuf::from(name)
}

/// Adds to `keys` the blob keys of the files an export line's message carries; other
/// lines add nothing. The stores lay a message's row out differently (SQLite keeps the
/// attachments in a JSON text column, PostgreSQL in a `jsonb` one), so the row is walked
/// for attachments (objects with a `key`, a `content_type` and a `size`), JSON held in
/// text columns included.
pub fn attachment_keys(line: &str, keys: &mut BTreeSet<String>) {
    // Cheap test first: most lines are not messages, and most messages carry no file.
    if !line.starts_with(r#"{"kind":"messages""#) || !line.contains("content_type") {
        return;
    }
    if let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line)
        && let Some(row) = record.get("row")
    {
        collect(row, keys, 0);
    }
}

fn collect(value: &Value, keys: &mut BTreeSet<String>, depth: usize) {
    // Rows are shallow; the bound keeps a hostile line from recursing deeply.
    if depth > 8 {
        return;
    }
    match value {
        Value::Object(object) => {
            if let (Some(Value::String(key)), Some(Value::String(_)), Some(Value::Number(_))) = (
                object.get("key"),
                object.get("content_type"),
                object.get("size"),
            ) {
                keys.insert(key.clone());
            }
            object.values().for_each(|v| collect(v, keys, depth + 1));
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, keys, depth + 1)),
        Value::String(text) if text.starts_with(['{', '[']) && text.contains("content_type") => {
            if let Ok(inner) = serde_json::from_str::<Value>(text) {
                collect(&inner, keys, depth + 1);
            }
        }
        _ => {}
    }
}

/// What a copy of files did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Files copied (thumbnails included).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files a message names that the blob store no longer has (deleted by hand, or an
    /// upload folder that was not moved with the database): the export goes on without
    /// them and says how many.
    pub missing: u64,
}

/// Copies the files under `keys` (and their thumbnails, where there are some) from
/// `blobs` into the new folder `to`, which must not exist (an export never writes over
/// an earlier one).
pub async fn copy_out(blobs: &dyn BlobStore, keys: &BTreeSet<String>, to: &Path) -> Result<Copied> {
    if to.exists() {
        return Err(Error::storage(format!(
            "{} exists already (an export never overwrites)",
            to.display()
        )));
    }
    let folder = DirBlobStore::new(to).map_err(Error::storage)?;
    let mut copied = Copied::default();
    for key in keys {
        match blobs.get(key).await {
            Ok(bytes) => {
                copied.bytes += bytes.len() as u64;
                copied.files += 1;
                folder.put_at(key, bytes).await?;
            }
            Err(Error::NotFound(_)) => {
                copied.missing += 1;
                continue;
            }
            Err(e) => return Err(e),
        }
        // Not every file has a thumbnail (only images do).
        let thumbnail = thumbnail_key(key);
        match blobs.get(&thumbnail).await {
            Ok(bytes) => {
                copied.bytes += bytes.len() as u64;
                copied.files += 1;
                folder.put_at(&thumbnail, bytes).await?;
            }
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(copied)
}

/// Copies every file of the export folder `from` into `to` under the same keys.
pub async fn copy_in(from: &Path, to: &dyn BlobStore) -> Result<Copied> {
    let folder = DirBlobStore::new(from).map_err(Error::storage)?;
    let mut copied = Copied::default();
    for key in folder.keys().map_err(Error::storage)? {
        let bytes = folder.get(&key).await?;
        copied.bytes += bytes.len() as u64;
        copied.files += 1;
        if !to.put_at(&key, bytes).await? {
            return Err(Error::storage(
                "the uploads store cannot take files under given keys",
            ));
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_either_stores_message_rows_and_nothing_else() {
        let mut keys = BTreeSet::new();
        // SQLite: the attachments inside a JSON text column.
        let sqlite = r#"{"kind":"messages","row":{"id":"m1","extra":"{\"attachments\":[{\"key\":\"0123456789abcdef0123456789abcdef/a.png\",\"name\":\"a.png\",\"content_type\":\"image/png\",\"size\":3}]}"}}"#;
        // PostgreSQL: a jsonb column, an object in the line.
        let postgres = r#"{"kind":"messages","row":{"id":"m2","data":{"body":"x","attachments":[{"key":"fedcba9876543210fedcba9876543210/b.pdf","name":"b.pdf","content_type":"application/pdf","size":9}]}}}"#;
        // Another table that happens to have such an object is not a message.
        let other =
            r#"{"kind":"events","row":{"data":{"key":"k/other","content_type":"x","size":1}}}"#;
        for line in [
            sqlite,
            postgres,
            other,
            "not json",
            r#"{"kind":"messages","row":"#,
        ] {
            attachment_keys(line, &mut keys);
        }
        assert_eq!(
            keys.into_iter().collect::<Vec<_>>(),
            [
                "0123456789abcdef0123456789abcdef/a.png",
                "fedcba9876543210fedcba9876543210/b.pdf"
            ]
        );
    }

    #[test]
    fn the_folder_is_named_after_the_export() {
        assert_eq!(
            files_dir(Path::new("/backups/acme.jsonl")),
            Path::new("/backups/acme.jsonl.files")
        );
    }
}
