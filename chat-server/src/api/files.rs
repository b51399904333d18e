//! File routes: multipart upload to a conversation and authorized download.
//!
//! The engine decides everything (who may upload or read, the tenant's size, count and
//! type limits, the type from the bytes); these handlers only read the form within those
//! limits and shape the download so a browser never renders a customer's file as a page.

use chat_core::{ConversationId, FileUse, NewFile};
use hyper::StatusCode;
use hyper::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};
use crate::uploads::read_multipart;

/// `POST /v1/conversations/{id}/files`: every file part of the form (any field name) is
/// stored, all or none. `?purpose=note` (staff) stores them for an internal
/// note instead of a message.
pub async fn upload(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let actor = ctx.actor()?.clone();
    let engine = ctx.app.engine.clone();
    // The purpose is a query parameter, not a form field, so the caller is authorized
    // for it before a byte of the body is read; the reader is sized by the tenant's
    // limits, so an oversized file is refused while it arrives.
    let purpose = match ctx.query::<String>("purpose")?.as_deref() {
        None | Some("message") => FileUse::Message,
        Some("note") => FileUse::Note,
        Some(other) => {
            return Err(ApiError::invalid(
                "purpose",
                format!("`{other}` is not `message` or `note`"),
            ));
        }
    };
    let policy = engine.upload_policy(&actor, id, purpose).await?;
    let body = ctx
        .body
        .take()
        .ok_or_else(|| ApiError::bad_request("the body was already read"))?;
    let form = read_multipart(&ctx.headers, body, policy.max_files, policy.max_bytes).await?;
    if form.files.is_empty() {
        return Err(ApiError::invalid(
            "files",
            "send at least one file part (Content-Disposition: form-data; name=\"file\"; filename=\"...\")",
        ));
    }
    let files = form
        .files
        .into_iter()
        .map(|f| NewFile::new(&f.file_name, &f.content_type, f.bytes.to_vec()))
        .collect();
    let stored = engine.upload_files(&actor, id, purpose, files).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &super::Items { items: stored },
    ))
}

/// `GET /v1/conversations/{id}/files/{folder}/{name}`: the bytes of one file, as an
/// attachment with a safe name and `nosniff`, typed by its content.
pub async fn download(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let folder = ctx.params.get("folder").unwrap_or_default();
    let name = ctx.params.get("name").unwrap_or_default();
    let key = format!("{folder}/{name}");
    let bytes = ctx
        .app
        .engine
        .download_attachment(ctx.actor()?, id, &key)
        .await?;
    // The stored type was decided from these bytes at upload; deciding again gives the
    // same answer without trusting anything the uploader said.
    let content_type = chat_core::detect_content_type(&bytes).unwrap_or("application/octet-stream");
    let mut response = http::with_type(StatusCode::OK, bytes, "application/octet-stream");
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Never shown inline: a file is downloaded, not rendered in the desk's origin.
    let disposition = format!("attachment; filename=\"{}\"", download_name(name));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}

/// The file name to offer: the key's last segment without its `<owner>_` prefix, limited
/// to characters that need no quoting (keys are already made of them; this holds even if
/// a blob store one day keeps more).
fn download_name(last_segment: &str) -> String {
    let name = last_segment
        .split_once('_')
        .map_or(last_segment, |(_, rest)| rest);
    let safe: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if safe.trim_start_matches('.').is_empty() {
        "file".to_owned()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::download_name;

    #[test]
    fn the_offered_name_drops_the_owner_and_anything_needing_quotes() {
        assert_eq!(download_name("0190abcd_receipt.png"), "receipt.png");
        assert_eq!(download_name("0190-note_a_b.pdf"), "a_b.pdf");
        assert_eq!(download_name("x_\"evil\";.html"), "evil.html");
        assert_eq!(download_name("x_.."), "file");
    }
}
