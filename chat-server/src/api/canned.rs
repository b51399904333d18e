//! Canned responses: list and search for the picker, create, read, change, delete, and
//! post one into a conversation with its placeholders filled by the engine.

use chat_core::{CannedPatch, CannedResponse, CannedResponseId, ConversationId, NewCannedResponse};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::Ctx;
use super::messages::PostAnswer;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// One picker entry: the response, and with `conversation_id` the text it would post there.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CannedResponseEntry)]
pub(crate) struct Entry {
    #[serde(flatten)]
    response: CannedResponse,
    /// With `conversation_id`: the text it would post there, placeholders filled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    preview: Option<String>,
}

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let prefix: Option<String> = ctx.query("q")?;
    let limit: Option<usize> = ctx.query("limit")?;
    let conversation: Option<ConversationId> = ctx.query("conversation_id")?;
    let engine = &ctx.app.engine;
    let actor = ctx.actor()?;
    let found = engine
        .canned_responses(actor, prefix.as_deref(), limit.unwrap_or(20))
        .await?;
    let mut items = Vec::with_capacity(found.len());
    for response in found {
        let preview = match conversation {
            Some(c) => Some(engine.render_canned_response(actor, c, response.id).await?),
            None => None,
        };
        items.push(Entry { response, preview });
    }
    Ok(super::Items::answer(items))
}

pub async fn create(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let input: NewCannedResponse = ctx.json().await?;
    let created = ctx
        .app
        .engine
        .create_canned_response(ctx.actor()?, input)
        .await?;
    Ok(http::json(StatusCode::CREATED, &created))
}

pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: CannedResponseId = ctx.id("id")?;
    let found = ctx.app.engine.canned_response(ctx.actor()?, id).await?;
    Ok(http::json(StatusCode::OK, &found))
}

pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: CannedResponseId = ctx.id("id")?;
    let patch: CannedPatch = ctx.json().await?;
    let changed = ctx
        .app
        .engine
        .update_canned_response(ctx.actor()?, id, patch)
        .await?;
    Ok(http::json(StatusCode::OK, &changed))
}

pub async fn delete(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: CannedResponseId = ctx.id("id")?;
    ctx.app
        .engine
        .delete_canned_response(ctx.actor()?, id)
        .await?;
    Ok(http::no_content())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostCannedRequest {
    canned_response_id: CannedResponseId,
    #[serde(default)]
    client_message_id: Option<String>,
}

pub async fn post(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let conversation: ConversationId = ctx.id("id")?;
    let body: PostCannedRequest = ctx.json().await?;
    let posted = ctx
        .app
        .engine
        .post_canned_response(
            ctx.actor()?,
            conversation,
            body.canned_response_id,
            body.client_message_id,
        )
        .await?;
    let status = if posted.created {
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
