//! Snooze and wake a conversation (staff). The engine decides who may and when it ends.

use chat_core::ConversationId;
use hyper::StatusCode;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SnoozeRequest {
    /// RFC 3339; absent or null: until the customer's next message.
    #[serde(with = "time::serde::rfc3339::option")]
    until: Option<OffsetDateTime>,
}

pub async fn snooze(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let body: SnoozeRequest = ctx.json_or_default().await?;
    let c = ctx.app.engine.snooze(ctx.actor()?, id, body.until).await?;
    Ok(http::json(StatusCode::OK, &ctx.conversation_view(&c)))
}

pub async fn unsnooze(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let c = ctx.app.engine.unsnooze(ctx.actor()?, id).await?;
    Ok(http::json(StatusCode::OK, &ctx.conversation_view(&c)))
}
