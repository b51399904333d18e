//! Inboxes (admins): create, list, show, delete; and the inbound route of an `api` inbox,
//! which an integration calls with the inbox's token. The engine decides who may and
//! what a message does; this adds the token's digest, the address check of the reply
//! webhook (a network rule of the server's, see [`crate::webhooks`]) and the JSON shapes.
//! The token and the webhook secret are answered once, by the create call.

use chat_core::{Inbound, Inbox, InboxId, NewInbox};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// An inbox as the API shows it: never its token or secrets.
#[derive(Serialize)]
struct InboxView<'a> {
    id: InboxId,
    name: &'a str,
    kind: chat_core::InboxKind,
    channel: chat_core::Channel,
    webhook_id: Option<chat_core::WebhookId>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    /// Only in the create call's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    /// Only in the create call's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<&'a str>,
}

fn view(i: &Inbox) -> InboxView<'_> {
    InboxView {
        id: i.id,
        name: &i.name,
        kind: i.kind,
        channel: i.kind.channel(),
        webhook_id: i.webhook_id,
        created_at: i.created_at,
        updated_at: i.updated_at,
        token: None,
        webhook_secret: None,
    }
}

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let found = ctx.app.engine.inboxes(ctx.actor()?).await?;
    let items: Vec<_> = found.iter().map(view).collect();
    Ok(http::json(
        StatusCode::OK,
        &serde_json::json!({ "items": items }),
    ))
}

pub async fn create(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let input: NewInbox = ctx.json().await?;
    // Admins only, before the address is looked up for anyone.
    ctx.app.engine.inboxes(ctx.actor()?).await?;
    if let Some(url) = input.webhook_url.as_deref().map(str::trim)
        && (url.starts_with("http://") || url.starts_with("https://"))
    {
        crate::webhooks::check_url(url, ctx.app.config.webhooks.allow_private)
            .await
            .map_err(|why| ApiError::from(chat_core::Error::validation("webhook_url", why)))?;
    }
    let (token, digest) = crate::auth::new_inbox_token();
    let (created, webhook) = ctx
        .app
        .engine
        .create_inbox(ctx.actor()?, input, digest)
        .await?;
    let mut shown = view(&created);
    shown.token = Some(&token);
    shown.webhook_secret = webhook.as_ref().map(|w| w.secret.0.as_str());
    Ok(http::json(StatusCode::CREATED, &shown))
}

pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: InboxId = ctx.id("id")?;
    let found = ctx.app.engine.inbox(ctx.actor()?, id).await?;
    Ok(http::json(StatusCode::OK, &view(&found)))
}

pub async fn delete(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: InboxId = ctx.id("id")?;
    ctx.app.engine.delete_inbox(ctx.actor()?, id).await?;
    Ok(http::no_content())
}

/// What an integration posts: the provider's ids for the customer and the message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundMessage {
    contact: InboundContact,
    message: InboundText,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundContact {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundText {
    id: String,
    text: String,
}

#[derive(Serialize)]
struct ReceivedView {
    conversation_id: chat_core::ConversationId,
    message_id: chat_core::MessageId,
    created: bool,
    opened: bool,
}

/// `POST /v1/inboxes/{id}/messages`: the token is checked before the body is read, so a
/// caller without it learns nothing and stores nothing.
pub async fn receive(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: InboxId = ctx
        .id("id")
        .map_err(|_| ApiError::forbidden("unknown inbox or wrong token"))?;
    let token = crate::auth::bearer(&ctx.headers, None)?
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <the inbox's token>"))?;
    let inbox = ctx
        .app
        .engine
        .inbox_for_token(id, &crate::auth::token_digest(&token))
        .await
        .map_err(|_| ApiError::forbidden("unknown inbox or wrong token"))?;
    let input: InboundMessage = ctx.json().await?;
    let received = Box::pin(ctx.app.engine.receive(
        &inbox,
        Inbound {
            contact: input.contact.id,
            message: input.message.id,
            name: input.contact.name,
            body: input.message.text,
            attachments: Vec::new(),
        },
    ))
    .await?;
    let status = if received.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(http::json(
        status,
        &ReceivedView {
            conversation_id: received.conversation.id,
            message_id: received.message.id,
            created: received.created,
            opened: received.opened,
        },
    ))
}
