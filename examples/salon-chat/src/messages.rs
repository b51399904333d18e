//! Messages: posting, editing within the window, deleting softly.

use chat_server::Context;
use chat_starter::fastapi;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use crate::answers::{Answer, engine_error, json_body, ok, path_number};
use crate::who::Who;

/// `POST /api/v1/chat/chats/{id}/messages`.
pub(crate) async fn post(cx: &Context, who: &mut Who, req: Request<Incoming>, id: &str) -> Answer {
    let number = path_number(id, "chat_id")?;
    let body = json_body(req).await?;
    let (c, m) = who.send(cx.engine(), number, &body).await?;
    Ok(ok(
        StatusCode::CREATED,
        who.message_json(cx.engine(), number, c.contact_id, &m)
            .await,
    ))
}

/// `PUT /api/v1/chat/messages/{id}`: the sender edits within 15 minutes.
pub(crate) async fn edit(cx: &Context, who: &mut Who, req: Request<Incoming>, id: &str) -> Answer {
    let id = path_number(id, "message_id")?;
    let body = json_body(req).await?;
    let content = fastapi::strings(&body, &["content"])?.remove(0);
    let engine = cx.engine();
    let (chat, c, m) = who.message(engine, id).await?;
    if m.deleted_at.is_some() {
        return Err(fastapi::detail(
            StatusCode::BAD_REQUEST,
            "Cannot edit a deleted message",
        ));
    }
    let edited = engine
        .edit_message(&who.actor, m.id, &content)
        .await
        .map_err(|e| match e {
            chat_core::Error::Forbidden("edit after the edit window") => fastapi::detail(
                StatusCode::BAD_REQUEST,
                "Messages can only be edited within 15 minutes",
            ),
            chat_core::Error::Forbidden(_) => {
                fastapi::detail(StatusCode::FORBIDDEN, "You can only edit your own messages")
            }
            other => engine_error(other),
        })?;
    Ok(ok(
        StatusCode::OK,
        who.message_json(engine, chat, c.contact_id, &edited).await,
    ))
}

/// `DELETE /api/v1/chat/messages/{id}`: soft delete by the sender (or a salon admin).
pub(crate) async fn delete(cx: &Context, who: &mut Who, id: &str) -> Answer {
    let id = path_number(id, "message_id")?;
    let engine = cx.engine();
    let (_, _, m) = who.message(engine, id).await?;
    if m.deleted_at.is_some() {
        return Err(fastapi::detail(StatusCode::NOT_FOUND, "Message not found"));
    }
    engine
        .delete_message(&who.actor, m.id)
        .await
        .map_err(|e| match e {
            chat_core::Error::Forbidden(_) => fastapi::detail(
                StatusCode::FORBIDDEN,
                "You can only delete your own messages",
            ),
            other => engine_error(other),
        })?;
    Ok(ok(
        StatusCode::OK,
        json!({ "success": true, "message": "Message deleted", "id": id }),
    ))
}
