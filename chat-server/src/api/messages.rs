//! Message, note and read-cursor routes.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use chat_core::{
    Attachment, ConversationId, EntityRef, Message, MessageId, MessageKind, MessagePage,
    PostMessage,
};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let page = MessagePage {
        before: ctx.query("before")?,
        after: ctx.query("after")?,
        limit: ctx.query("limit")?,
    };
    let items = ctx.app.engine.messages(ctx.actor()?, id, page).await?;
    Ok(super::Items::answer(items))
}

/// Body of `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
#[schema(as = PostMessageRequest)]
pub struct PostRequest {
    /// Trimmed, not empty, at most 10,000 characters, no control characters but line
    /// breaks and tabs (the engine's rule for messages, notes and canned responses).
    #[schema(
        required = true,
        max_length = 10000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f][^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    body: String,
    #[schema(schema_with = crate::openapi::rules::posted_kind)]
    kind: Option<MessageKind>,
    #[serde(deserialize_with = "http::objects")]
    attachments: Vec<Attachment>,
    reply_to: Option<MessageId>,
    client_message_id: Option<String>,
    #[serde(deserialize_with = "http::objects")]
    entities: Vec<EntityRef>,
    metadata: BTreeMap<String, String>,
}

pub async fn post(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let body: PostRequest = ctx.json().await?;
    let input = PostMessage {
        body: body.body,
        kind: body.kind,
        attachments: body.attachments,
        reply_to: body.reply_to,
        client_message_id: body.client_message_id,
        entities: body.entities,
        metadata: body.metadata,
    };
    let posted = ctx.app.engine.post_message(ctx.actor()?, id, input).await?;
    let status = if posted.created {
        ctx.app
            .metrics
            .messages_posted
            .fetch_add(1, Ordering::Relaxed);
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(http::json(
        status,
        &PostAnswer {
            message: &posted.message,
            created: posted.created,
            replies: &posted.replies,
            conversation: ctx.conversation_view(&posted.conversation),
        },
    ))
}

/// The answer to a post, serialized straight from the engine's result (the hottest
/// route: no intermediate `serde_json::Value`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = PostedMessage)]
pub(crate) struct PostAnswer<'a> {
    #[schema(value_type = Message)]
    pub(super) message: &'a Message,
    pub(super) created: bool,
    #[schema(value_type = Vec<Message>)]
    pub(super) replies: &'a [Message],
    #[schema(value_type = chat_core::Conversation)]
    pub(super) conversation: super::ConversationView<'a>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteRequest {
    #[serde(default)]
    body: String,
    /// Files uploaded with `purpose=note` to this conversation.
    #[serde(default, deserialize_with = "http::objects")]
    attachments: Vec<Attachment>,
}

pub async fn note(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let body: NoteRequest = ctx.json().await?;
    let note = ctx
        .app
        .engine
        .post_note_with_attachments(ctx.actor()?, id, &body.body, body.attachments)
        .await?;
    Ok(http::json(StatusCode::CREATED, &note))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EditMessageRequest)]
pub(crate) struct EditRequest {
    #[schema(max_length = 10000, pattern = r"\S")]
    body: String,
}

pub async fn edit(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: MessageId = ctx.id("id")?;
    let body: EditRequest = ctx.json().await?;
    let message = ctx
        .app
        .engine
        .edit_message(ctx.actor()?, id, &body.body)
        .await?;
    Ok(http::json(StatusCode::OK, &message))
}

pub async fn delete(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: MessageId = ctx.id("id")?;
    let message = ctx.app.engine.delete_message(ctx.actor()?, id).await?;
    Ok(http::json(StatusCode::OK, &message))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadRequest {
    seq: u64,
}

pub async fn mark_read(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let body: ReadRequest = ctx.json().await?;
    let c = ctx.app.engine.mark_read(ctx.actor()?, id, body.seq).await?;
    Ok(http::json(StatusCode::OK, &ctx.conversation_view(&c)))
}

pub async fn read_cursors(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let items = ctx.app.engine.read_cursors(ctx.actor()?, id).await?;
    Ok(super::Items::answer(items))
}
