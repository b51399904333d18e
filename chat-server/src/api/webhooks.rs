//! Event webhooks (admins): register, list, change, delete; the delivery log and
//! redelivery. The engine decides who may; this adds the address check (a network rule of
//! the server's, see [`crate::webhooks`]) and the JSON shapes. The secret is answered once,
//! by the create call.

use chat_core::{Delivery, NewWebhook, Webhook, WebhookId, WebhookPatch};
use hyper::StatusCode;
use serde::Serialize;
use time::OffsetDateTime;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// A webhook as the API shows it: never its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
pub(crate) struct WebhookView<'a> {
    id: WebhookId,
    url: &'a str,
    #[schema(schema_with = chat_core::openapi::webhook_events)]
    events: &'a [String],
    state: chat_core::WebhookState,
    /// since when every attempt has failed
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    failing_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// The create call's answer: the webhook and, this once, its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedWebhook)]
pub(crate) struct CreatedWebhook<'a> {
    #[serde(flatten)]
    webhook: WebhookView<'a>,
    /// The signing secret; never shown again.
    secret: &'a str,
}

fn view(w: &Webhook) -> WebhookView<'_> {
    WebhookView {
        id: w.id,
        url: &w.url,
        events: &w.events,
        state: w.state,
        failing_since: w.failing_since,
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

/// One line of the delivery log.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Delivery)]
pub(crate) struct DeliveryView<'a> {
    /// the event's sequence in the tenant's log
    seq: u64,
    /// `<tenant_id>.<seq>`: the `X-Chat-Event-Id` and `Idempotency-Key` sent
    event_id: String,
    #[serde(rename = "type")]
    kind: &'a str,
    #[schema(required = true)]
    conversation_id: Option<chat_core::ConversationId>,
    state: chat_core::DeliveryState,
    attempts: u32,
    /// pending ones: when the next attempt is due
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    next_attempt_at: Option<OffsetDateTime>,
    /// HTTP status of the last answer
    #[schema(required = true)]
    last_status: Option<u16>,
    #[schema(required = true)]
    last_error: Option<&'a str>,
    /// how long the last attempt took
    #[schema(required = true)]
    response_ms: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    delivered_at: Option<OffsetDateTime>,
}

fn delivery_view(d: &Delivery) -> DeliveryView<'_> {
    DeliveryView {
        seq: d.seq,
        event_id: format!("{}.{}", d.tenant_id, d.seq),
        kind: &d.kind,
        conversation_id: d.conversation_id,
        state: d.state,
        attempts: d.attempts,
        next_attempt_at: (d.state == chat_core::DeliveryState::Pending)
            .then_some(d.next_attempt_at),
        last_status: d.last_status,
        last_error: d.last_error.as_deref(),
        response_ms: d.response_ms,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }
}

/// 422 on `url` when its host resolves to an address this server refuses. Only for what
/// looks like an http(s) URL: anything else is left to the engine, whose 422 says what a
/// webhook URL must be.
async fn check_address(ctx: &Ctx, url: &str) -> Result<(), ApiError> {
    let url = url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Ok(());
    }
    crate::webhooks::check_url(url, ctx.app.config.webhooks.allow_private)
        .await
        .map_err(|why| chat_core::Error::validation("url", why).into())
}

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let found = ctx.app.engine.webhooks(ctx.actor()?).await?;
    let items: Vec<_> = found.iter().map(view).collect();
    Ok(super::Items::answer(items))
}

pub async fn create(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let input: NewWebhook = ctx.json().await?;
    // Admins only, before the address is looked up for anyone.
    ctx.app.engine.webhooks(ctx.actor()?).await?;
    check_address(&ctx, &input.url).await?;
    let created = ctx.app.engine.create_webhook(ctx.actor()?, input).await?;
    let shown = CreatedWebhook {
        webhook: view(&created),
        secret: &created.secret.0,
    };
    Ok(http::json(StatusCode::CREATED, &shown))
}

pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: WebhookId = ctx.id("id")?;
    let found = ctx.app.engine.webhook(ctx.actor()?, id).await?;
    Ok(http::json(StatusCode::OK, &view(&found)))
}

pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: WebhookId = ctx.id("id")?;
    let patch: WebhookPatch = ctx.json().await?;
    ctx.app.engine.webhook(ctx.actor()?, id).await?;
    if let Some(url) = &patch.url {
        check_address(&ctx, url).await?;
    }
    let changed = ctx
        .app
        .engine
        .update_webhook(ctx.actor()?, id, patch)
        .await?;
    Ok(http::json(StatusCode::OK, &view(&changed)))
}

pub async fn delete(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: WebhookId = ctx.id("id")?;
    ctx.app.engine.delete_webhook(ctx.actor()?, id).await?;
    Ok(http::no_content())
}

pub async fn deliveries(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: WebhookId = ctx.id("id")?;
    let before: Option<u64> = ctx.query("before")?;
    let limit: Option<usize> = ctx.query("limit")?;
    let found = ctx
        .app
        .engine
        .webhook_deliveries(ctx.actor()?, id, before, limit.unwrap_or(50))
        .await?;
    let items: Vec<_> = found.iter().map(delivery_view).collect();
    Ok(super::Items::answer(items))
}

pub async fn redeliver(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: WebhookId = ctx.id("id")?;
    let seq: u64 = ctx.id("seq")?;
    let again = ctx.app.engine.redeliver(ctx.actor()?, id, seq).await?;
    Ok(http::json(StatusCode::ACCEPTED, &delivery_view(&again)))
}
