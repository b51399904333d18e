//! The caller's mentions: what colleagues wrote to it in notes, and the unread count.

use hyper::StatusCode;
use serde_json::json;

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
    Ok(http::json(
        StatusCode::OK,
        &json!({ "unread": unread, "items": items }),
    ))
}

pub async fn read(ctx: Ctx) -> Result<Resp, ApiError> {
    let read = ctx.app.engine.read_mentions(ctx.actor()?).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({ "read": read, "unread": 0 }),
    ))
}
