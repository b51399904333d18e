//! Uploads and downloads: files kept by the engine as attachments, served back only to
//! those who may read their chat.

use chat_core::MessageKind;
use chat_server::Context;
use chat_server::http;
use chat_server::uploads::read_multipart;
use chat_starter::fastapi;
use hyper::body::Incoming;
use hyper::header::{CONTENT_DISPOSITION, HeaderValue};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::answers::{Answer, engine_error, ok, path_number};
use crate::shapes;
use crate::who::Who;
use crate::{FILE_TYPES, FILES_PATH, MAX_FILE_BYTES};

/// The message kind a file type calls for.
pub(crate) fn kind_of(content_type: &str) -> MessageKind {
    if content_type.starts_with("image/") {
        MessageKind::Image
    } else if content_type.starts_with("audio/") {
        MessageKind::Audio
    } else {
        MessageKind::File
    }
}

/// The MIME type of a file name with one of the accepted extensions.
pub fn file_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    FILE_TYPES
        .iter()
        .find(|(e, _)| *e == extension)
        .map(|(_, mime)| *mime)
}

/// The path segment that stands for "my own uploads, not yet in a chat" in file URLs:
/// `{FILES_PATH}/mine/{key}`.
pub(crate) const PENDING: &str = "mine";

/// `POST /api/v1/chat/upload`: a multipart form with `file` and, optionally, the `chat_id`
/// it is for. Without one (a chat app that uploads before it sends), the file stays
/// private to its uploader until a message of one of the uploader's chats uses it.
pub(crate) async fn upload(cx: &Context, who: &Who, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let form = read_multipart(&parts.headers, body, 1, MAX_FILE_BYTES)
        .await
        .map_err(|e| match e.status {
            StatusCode::PAYLOAD_TOO_LARGE => fastapi::detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "File too large. Maximum size is 10MB",
            ),
            status => fastapi::detail(status, &e.message),
        })?;
    let chat = match form
        .field("chat_id")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            fastapi::invalid(vec![fastapi::item(
                "int_parsing",
                "chat_id",
                "Input should be a valid integer",
                json!(v),
            )])
        })?),
    };
    let Some(file) = form.files.first() else {
        return Err(fastapi::invalid(vec![fastapi::item(
            "missing",
            "file",
            "Field required",
            Value::Null,
        )]));
    };
    let Some(mime) = file_type(&file.file_name) else {
        return Err(fastapi::detail(
            StatusCode::BAD_REQUEST,
            &format!(
                "File type not allowed. Allowed types: {}",
                FILE_TYPES.map(|(e, _)| e).join(", ")
            ),
        ));
    };
    if file.bytes.is_empty() {
        return Err(fastapi::detail(
            StatusCode::BAD_REQUEST,
            "The file is empty",
        ));
    }
    let engine = cx.engine();
    let bytes = file.bytes.to_vec();
    let (stored, place) = match chat {
        Some(chat) => {
            let c = who.chat(engine, chat).await?;
            let stored = engine
                .upload_attachment(&who.actor, c.id, &file.file_name, mime, bytes)
                .await
                .map_err(engine_error)?;
            (stored, chat.to_string())
        }
        None => {
            let stored = engine
                .upload_pending_attachment(&who.actor, &file.file_name, mime, bytes)
                .await
                .map_err(engine_error)?;
            (stored, PENDING.to_owned())
        }
    };
    Ok(ok(
        StatusCode::OK,
        json!({
            "url": format!("{FILES_PATH}/{place}/{}", stored.key),
            "filename": stored.name,
            "content_type": stored.content_type,
            "size": stored.size,
            "message_type": shapes::message_type(kind_of(mime)),
        }),
    ))
}

/// `GET /api/v1/chat/files/{chat}/{key}`: a chat's file, for those who may read the chat
/// (the token may come as `?token=` for `<img src>`).
pub(crate) async fn download(cx: &Context, who: &Who, chat: &str, key: &str) -> Answer {
    let not_found = || fastapi::detail(StatusCode::NOT_FOUND, "File not found");
    let mime = file_type(key).ok_or_else(not_found)?;
    let engine = cx.engine();
    let bytes = if chat == PENDING {
        engine.download_pending_attachment(&who.actor, key).await
    } else {
        let chat = path_number(chat, "chat_id")?;
        let c = who.chat(engine, chat).await.map_err(|_| not_found())?;
        engine.download_attachment(&who.actor, c.id, key).await
    }
    .map_err(|_| not_found())?;
    let mut response = http::with_type(StatusCode::OK, bytes, mime);
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if !mime.starts_with("image/") && !mime.starts_with("audio/") {
        headers.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    Ok(response)
}
