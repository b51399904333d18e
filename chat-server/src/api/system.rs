//! Health, metrics, documentation and event replay.

use hyper::StatusCode;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// The answer of the probes: `ok` (alive) or `ready` (the store answers).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    status: &'static str,
}

pub async fn health(_: Ctx) -> Result<Resp, ApiError> {
    Ok(http::json(StatusCode::OK, &Health { status: "ok" }))
}

pub async fn ready(ctx: Ctx) -> Result<Resp, ApiError> {
    // A real round trip to the store: reading the tenants touches the database.
    match ctx.app.engine.tenants().await {
        Ok(_) => Ok(http::json(StatusCode::OK, &Health { status: "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store does not answer",
            ))
        }
    }
}

pub async fn metrics(ctx: Ctx) -> Result<Resp, ApiError> {
    let mut queued = 0;
    if let Some(tenant) = ctx.app.config.default_tenant {
        // The list's count per mode is one aggregate query, not a read of the queue.
        let filter = chat_core::ConversationFilter {
            modes: vec![chat_core::Mode::Queued],
            limit: Some(1),
            ..Default::default()
        };
        queued = ctx
            .app
            .engine
            .list_conversations(&chat_core::Actor::System { tenant }, filter)
            .await
            .ok()
            .and_then(|page| page.counts.get(&chat_core::Mode::Queued).copied())
            .unwrap_or(0);
    }
    Ok(http::with_type(
        StatusCode::OK,
        ctx.app.metrics.render(queued),
        "text/plain; version=0.0.4",
    ))
}

pub async fn openapi(_: Ctx) -> Result<Resp, ApiError> {
    Ok(http::with_type(
        StatusCode::OK,
        crate::openapi::document_json(),
        "application/json",
    ))
}

pub async fn docs(_: Ctx) -> Result<Resp, ApiError> {
    Ok(http::with_type(
        StatusCode::OK,
        crate::openapi::DOCS_HTML,
        "text/html; charset=utf-8",
    ))
}

pub async fn events(ctx: Ctx) -> Result<Resp, ApiError> {
    let since: u64 = ctx.query("since")?.unwrap_or(0);
    let limit: usize = ctx.query("limit")?.unwrap_or(100);
    // Every cursor this log hands out (`next_since`, a `seq`) is at most its head, and
    // the head only grows: a `since` beyond it comes from another log (a restore, a wiped
    // server), never from a race with a write. One before the log's start was compacted
    // away (the engine's event retention): either way the client reloads.
    let head = ctx.app.engine.event_head(ctx.actor()?).await?;
    let page = ctx
        .app
        .engine
        .events_since(ctx.actor()?, since, limit)
        .await?;
    let viewer = ctx.viewer();
    // The engine hands out only events the caller may see; the view trims what is in them.
    let items: Vec<_> = page.events.iter().filter_map(|e| viewer.event(e)).collect();
    Ok(http::json(
        StatusCode::OK,
        &EventList {
            items,
            next_since: page.next_since,
            more: page.more,
            head,
            resync_required: since > head || page.resync_required,
        },
    ))
}

/// A page of `GET /v1/events`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct EventList<'a> {
    /// Oldest first, as the caller may see each.
    #[schema(value_type = Vec<chat_core::Event>)]
    items: Vec<chat_core::policy::view::EventView<'a>>,
    /// The `since` of the next page.
    next_since: u64,
    /// More events follow: ask again from `next_since`.
    more: bool,
    /// The newest event's seq when the page was read.
    head: u64,
    /// `since` is beyond `head` (the cursor comes from another database: a restore, a
    /// wiped server), or before the oldest event the log keeps (the event retention
    /// removed the events after it); reload, then continue from `head`.
    resync_required: bool,
}
