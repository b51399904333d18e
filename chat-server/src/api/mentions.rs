//! The caller's mentions: what colleagues wrote to it in notes, and the unread count.

use chat_core::Mention;
use hyper::StatusCode;
use serde::Serialize;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let limit: Option<usize> = ctx.query("limit")?;
    let (items, unread) = ctx
        .app
        .engine
        .mentions(ctx.actor()?, limit.unwrap_or(50))
        .await?;
    Ok(http::json(StatusCode::OK, &MentionList { unread, items }))
}

/// The caller's mentions, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MentionList {
    /// How many of all its mentions are unread.
    unread: u64,
    items: Vec<Mention>,
}

/// What marking the mentions read did.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MentionsRead {
    /// how many were unread
    read: u64,
    /// None are now.
    #[schema(minimum = 0, maximum = 0)]
    unread: u64,
}

pub async fn read(ctx: Ctx) -> Result<Resp, ApiError> {
    let read = ctx.app.engine.read_mentions(ctx.actor()?).await?;
    Ok(http::json(
        StatusCode::OK,
        &MentionsRead { read, unread: 0 },
    ))
}
