//! Inboxes (admins): create, list, show, delete; and the inbound routes of an `api` inbox,
//! which an integration calls with the inbox's token, and of an `email` inbox, which the
//! operator's mail server calls (through `chat-server email-inbound`) with it. The engine decides who may and
//! what a message does; this adds the token's digest, the address check of the reply
//! webhook (a network rule of the server's, see [`crate::webhooks`]) and the JSON shapes.
//! The token and the webhook secret are answered once, by the create call.

use chat_core::{Inbound, Inbox, InboxId, InboxKind, NewInbox};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// An inbox as the API shows it: never its token or secrets.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Inbox)]
pub(crate) struct InboxView<'a> {
    id: InboxId,
    name: &'a str,
    kind: chat_core::InboxKind,
    /// The channel of its conversations.
    channel: chat_core::Channel,
    /// The webhook replies are delivered through: its delivery log is the inbox's.
    #[schema(required = true)]
    webhook_id: Option<chat_core::WebhookId>,
    /// Provider settings that are not secret (an API's URL, a phone-number id, a
    /// template, an email inbox's `from`).
    settings: &'a std::collections::BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// The create call's answer: the inbox, with its token and secret shown this once.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedInbox)]
pub(crate) struct CreatedInbox<'a> {
    #[serde(flatten)]
    inbox: InboxView<'a>,
    /// The inbox's token for `POST /v1/inboxes/{id}/messages`; never shown again.
    token: &'a str,
    /// api: the reply webhook's signing secret; never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    webhook_secret: Option<&'a str>,
}

fn view(i: &Inbox) -> InboxView<'_> {
    InboxView {
        id: i.id,
        name: &i.name,
        kind: i.kind,
        channel: i.kind.channel(),
        webhook_id: i.webhook_id,
        settings: &i.settings,
        created_at: i.created_at,
        updated_at: i.updated_at,
    }
}

pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let found = ctx.app.engine.inboxes(ctx.actor()?).await?;
    Ok(super::Items::answer(found.iter().map(view).collect()))
}

pub async fn create(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let input: NewInbox = ctx.json().await?;
    // Admins only, before any address is looked up for anyone.
    ctx.app.engine.inboxes(ctx.actor()?).await?;
    if input.kind == Some(InboxKind::Email) && ctx.app.config.mail.sender().is_none() {
        // Its replies could never leave: refused rather than failing later, unseen.
        return Err(crate::api::mail::not_configured());
    }
    if input.from.is_some() && input.kind != Some(InboxKind::Email) {
        // Before any address is looked up: the sender is the field that is wrong.
        return Err(ApiError::invalid("from", "only for an email inbox"));
    }
    check_sender(input.from.as_deref())?;
    let allow_private = ctx.app.config.webhooks.allow_private;
    // Where the server will post to: the reply webhook, or the provider's API.
    let (field, url) = match (input.kind.unwrap_or(InboxKind::Api), &input.webhook_url) {
        (InboxKind::Api, Some(url)) => ("webhook_url", Some(url.clone())),
        (InboxKind::Telegram, _) => (
            "api_url",
            Some(
                input
                    .api_url
                    .clone()
                    .unwrap_or_else(|| chat_core::TELEGRAM_API_URL.to_owned()),
            ),
        ),
        (InboxKind::Whatsapp, _) => (
            "api_url",
            Some(
                input
                    .api_url
                    .clone()
                    .unwrap_or_else(|| chat_core::WHATSAPP_API_URL.to_owned()),
            ),
        ),
        _ => ("webhook_url", None),
    };
    if let Some(url) = url.as_deref().map(str::trim)
        && (url.starts_with("http://") || url.starts_with("https://"))
    {
        crate::webhooks::check_url(url, allow_private)
            .await
            .map_err(|why| ApiError::from(chat_core::Error::validation(field, why)))?;
    }
    let (token, digest) = crate::auth::new_inbox_token();
    let (created, webhook) = ctx
        .app
        .engine
        .create_inbox(ctx.actor()?, input, digest)
        .await?;
    if created.kind == InboxKind::Telegram
        && let Some(public) = created.settings.get("public_url")
    {
        // Telegram posts the bot's updates to our route, with the token as its secret.
        let url = format!("{public}/v1/inboxes/{}/telegram", created.id);
        let client = crate::webhooks::client(allow_private);
        let timeout = ctx.app.config.webhooks.timeout;
        if let Err(why) =
            crate::channels::telegram::set_webhook(&client, timeout, &created, &url, &token).await
        {
            // Nothing half-made stays behind.
            ctx.app
                .engine
                .delete_inbox(ctx.actor()?, created.id)
                .await?;
            return Err(chat_core::Error::validation(
                "public_url",
                format!("setWebhook failed: {why}"),
            )
            .into());
        }
    }
    if created
        .settings
        .get(chat_core::MODE_KEY)
        .map(String::as_str)
        == Some(chat_core::POLLING)
    {
        // getUpdates answers 409 while a webhook is set: the bot's webhook goes (its
        // pending updates stay, for the first getUpdates).
        let client = crate::webhooks::client(allow_private);
        let timeout = ctx.app.config.webhooks.timeout;
        if let Err(why) =
            crate::channels::telegram::delete_webhook(&client, timeout, &created).await
        {
            ctx.app
                .engine
                .delete_inbox(ctx.actor()?, created.id)
                .await?;
            return Err(chat_core::Error::validation(
                "mode",
                format!("deleteWebhook failed: {why}"),
            )
            .into());
        }
    }
    let shown = CreatedInbox {
        inbox: view(&created),
        token: &token,
        webhook_secret: match created.kind {
            InboxKind::Api => webhook.as_ref().map(|w| w.secret.0.as_str()),
            InboxKind::Telegram | InboxKind::Whatsapp | InboxKind::Email => None,
        },
    };
    Ok(http::json(StatusCode::CREATED, &shown))
}

/// An email inbox's own sender must be one the mail library can write (the engine checks
/// its shape too): 422 on `from` otherwise. Empty is the engine's to judge (a change
/// removes the sender with it).
fn check_sender(from: Option<&str>) -> Result<(), ApiError> {
    match from.map(str::trim) {
        Some(from) if !from.is_empty() && from.parse::<lettre::message::Mailbox>().is_err() => {
            Err(ApiError::invalid(
                "from",
                "an e-mail address, or a name and an address: `Support <help@shop.example>`",
            ))
        }
        _ => Ok(()),
    }
}

pub async fn get(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: InboxId = ctx.id("id")?;
    let found = ctx.app.engine.inbox(ctx.actor()?, id).await?;
    Ok(with_etag(http::json(StatusCode::OK, &view(&found)), &found))
}

/// The inbox's version as a strong `ETag`, the value a `PATCH` sends back in `If-Match`.
fn with_etag(mut response: Resp, inbox: &Inbox) -> Resp {
    response.headers_mut().insert(
        hyper::header::ETAG,
        hyper::header::HeaderValue::from_str(&format!("\"{}\"", chat_core::inbox_version(inbox)))
            .expect("digits are a header value"),
    );
    response
}

/// Only what changes; a field of another kind's inbox is 422 on it, and nothing changes.
/// (Body of `PATCH /v1/inboxes/{id}`: [`chat_core::InboxPatch`] and `rotate_token`.)
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = InboxPatch)]
#[serde(deny_unknown_fields)]
pub(crate) struct InboxPatchBody {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S", nullable = false)]
    name: Option<String>,
    /// email: the inbox's own sender; empty: back to the server's `--mail-from`.
    #[serde(default)]
    #[schema(max_length = 320, nullable = false)]
    from: Option<String>,
    /// telegram: the bot's rotated token (the same bot: the digits before `:` unchanged);
    /// never shown.
    #[serde(default)]
    #[schema(nullable = false)]
    bot_token: Option<String>,
    /// whatsapp: a rotated access token; never shown.
    #[serde(default)]
    #[schema(nullable = false)]
    access_token: Option<String>,
    /// whatsapp: a rotated app secret; never shown.
    #[serde(default)]
    #[schema(nullable = false)]
    app_secret: Option<String>,
    /// whatsapp: with template_language; both empty remove the template.
    #[serde(default)]
    #[schema(max_length = 512, nullable = false)]
    template_name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 16, nullable = false)]
    template_language: Option<String>,
    /// true: a new inbox token, answered once as `token`; the old one stops working (not
    /// for a telegram inbox in webhook mode: 422).
    #[serde(default)]
    rotate_token: bool,
}

/// The answer of `PATCH /v1/inboxes/{id}`: the inbox, with its new token if rotated.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UpdatedInbox)]
pub(crate) struct UpdatedInbox<'a> {
    #[serde(flatten)]
    inbox: InboxView<'a>,
    /// Only with `rotate_token: true`: the new token; never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    token: Option<&'a str>,
}

/// `PATCH /v1/inboxes/{id}` (admins). With `If-Match`, only over the version it names:
/// otherwise 412 `precondition_failed` with the current version, and nothing changes.
pub async fn update(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: InboxId = ctx.id("id")?;
    // Admins only, and the inbox must be theirs, before the body says anything.
    let current = ctx.app.engine.inbox(ctx.actor()?, id).await?;
    let body: InboxPatchBody = ctx.json().await?;
    check_sender(body.from.as_deref())?;
    let version = chat_core::inbox_version(&current);
    // Without `If-Match` the client asked for no check: the patch applies to the inbox as
    // the engine reads it.
    let expected = match super::settings::if_match(&ctx.headers)? {
        Some(tags) if !tags.contains(&Some(version)) => return Err(inbox_changed(version)),
        Some(_) => Some(version),
        None => None,
    };
    let webhook_mode = current.kind == InboxKind::Telegram
        && current
            .settings
            .get(chat_core::MODE_KEY)
            .map(String::as_str)
            != Some(chat_core::POLLING);
    if body.rotate_token && webhook_mode {
        // Telegram holds that token as its webhook's secret: a new one would refuse its
        // posts until the webhook is registered again.
        return Err(ApiError::invalid(
            "rotate_token",
            "a telegram inbox in webhook mode keeps its token (Telegram's webhook secret): \
             create another inbox to change it",
        ));
    }
    let token = body.rotate_token.then(crate::auth::new_inbox_token);
    let patch = chat_core::InboxPatch {
        name: body.name,
        from: body.from,
        bot_token: body.bot_token,
        access_token: body.access_token,
        app_secret: body.app_secret,
        template_name: body.template_name,
        template_language: body.template_language,
    };
    let updated = ctx
        .app
        .engine
        .update_inbox(
            ctx.actor()?,
            id,
            patch,
            expected,
            token.as_ref().map(|(_, digest)| digest.clone()),
        )
        .await
        .map_err(|e| match e {
            chat_core::Error::Conflict(c) if c.kind() == chat_core::ConflictKind::VersionRace => {
                inbox_changed(c.current_version().unwrap_or(version))
            }
            e => e.into(),
        })?;
    let shown = UpdatedInbox {
        inbox: view(&updated),
        token: token.as_ref().map(|(token, _)| token.as_str()),
    };
    Ok(with_etag(http::json(StatusCode::OK, &shown), &updated))
}

/// 412 `precondition_failed`: the inbox changed since the client read it.
fn inbox_changed(current: u64) -> ApiError {
    ApiError {
        current_version: Some(current),
        ..ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            format!(
                "the inbox changed since it was read (now version {current}); read it again and reapply the change"
            ),
        )
    }
}

pub async fn delete(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: InboxId = ctx.id("id")?;
    ctx.app.engine.delete_inbox(ctx.actor()?, id).await?;
    Ok(http::no_content())
}

/// What an integration posts: the provider's ids for the customer and the message.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InboundMessage {
    #[schema(inline)]
    contact: InboundContact,
    #[schema(inline)]
    message: InboundText,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct InboundContact {
    /// Your id for the customer: their messages share one conversation.
    #[schema(min_length = 1, max_length = 200)]
    id: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct InboundText {
    /// Your id for the message: the idempotency key.
    #[schema(min_length = 1, max_length = 200)]
    id: String,
    #[schema(min_length = 1, max_length = 10000, pattern = r"\S")]
    text: String,
    /// Files the server fetches by `GET` from your URLs before anything is stored, within
    /// the tenant's upload limits (with multipart parts, at most its file count); a URL
    /// that is not http(s), cannot be fetched or resolves inside the server's network
    /// (unless `--webhooks-allow-private`) is 422 on `attachments`, a file too large or
    /// of a refused type 422 on `file`.
    #[serde(default)]
    #[schema(inline)]
    attachments: Vec<InboundAttachment>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct InboundAttachment {
    #[schema(schema_with = crate::openapi::rules::url)]
    url: String,
    /// The file's name; the URL's last segment when absent.
    #[serde(default)]
    #[schema(max_length = 200)]
    name: Option<String>,
}

/// What an inbound message did.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ReceivedMessage)]
pub(crate) struct ReceivedView {
    conversation_id: chat_core::ConversationId,
    message_id: chat_core::MessageId,
    /// false: a repeat of a message already stored
    created: bool,
    /// true: this message opened the conversation
    opened: bool,
}

/// `POST /v1/inboxes/{id}/messages`: the token is checked before the body is read, so a
/// caller without it learns nothing and stores nothing.
pub async fn receive(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let inbox = inbox_by_token(&ctx).await?;
    let (mut input, mut files) = if is_multipart(&ctx.headers) {
        inbound_form(&mut ctx, &inbox).await?
    } else {
        (ctx.json::<InboundMessage>().await?, Vec::new())
    };
    let linked = std::mem::take(&mut input.message.attachments);
    if !linked.is_empty() {
        files.extend(fetch_attachments(&ctx, &inbox, linked, files.len()).await?);
    }
    let received = Box::pin(ctx.app.engine.receive(
        &inbox,
        Inbound {
            contact: input.contact.id,
            message: input.message.id,
            name: input.contact.name,
            body: input.message.text,
            attachments: Vec::new(),
            files,
        },
    ))
    .await?;
    Ok(received_answer(&received))
}

/// Fetches the files a message names by URL, before anything is stored: each with `GET`
/// through the webhooks' client (so an address inside the server's network is refused
/// unless `--webhooks-allow-private`), within the tenant's upload limits, its type decided
/// from the bytes later like any upload's. A file that cannot be fetched refuses the
/// message (422 on `attachments`, nothing stored): the integration gave the URL.
async fn fetch_attachments(
    ctx: &Ctx,
    inbox: &chat_core::Inbox,
    linked: Vec<InboundAttachment>,
    parts: usize,
) -> Result<Vec<chat_core::NewFile>, ApiError> {
    let policy = ctx.app.engine.inbox_upload_policy(inbox).await?;
    if parts + linked.len() > policy.max_files {
        return Err(ApiError::invalid(
            "attachments",
            format!("at most {} files a message", policy.max_files),
        ));
    }
    let client = crate::webhooks::client(ctx.app.config.webhooks.allow_private);
    let timeout = ctx.app.config.webhooks.timeout;
    let mut files = Vec::with_capacity(linked.len());
    for (n, attachment) in linked.into_iter().enumerate() {
        let url = attachment.url.trim();
        let uri = url
            .parse::<hyper::Uri>()
            .ok()
            .filter(|u| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
            .ok_or_else(|| {
                ApiError::invalid(
                    "attachments",
                    format!("attachment {n}: `url` must be an http(s) URL"),
                )
            })?;
        let bytes = crate::channels::get_bytes(&client, timeout, url, None, policy.max_bytes)
            .await
            .map_err(|e| match e {
                crate::channels::FetchError::Provider(why) => ApiError::invalid(
                    "attachments",
                    format!("attachment {n} could not be fetched: {why}"),
                ),
                too_large => ApiError::from(too_large),
            })?;
        let name = attachment
            .name
            .filter(|n| !n.trim().is_empty())
            .or_else(|| {
                uri.path()
                    .rsplit('/')
                    .next()
                    .filter(|last| !last.is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "attachment".to_owned());
        files.push(chat_core::NewFile::new(
            &name,
            "application/octet-stream",
            bytes,
        ));
    }
    Ok(files)
}

/// What an unknown inbox, a wrong token and another kind's inbox are all told alike.
const WRONG_TOKEN: &str = "unknown inbox or wrong token";

/// The inbox of the path whose token the request carries (`Authorization: Bearer`),
/// checked before the body is read, so a caller without it learns nothing and stores
/// nothing.
async fn inbox_by_token(ctx: &Ctx) -> Result<chat_core::Inbox, ApiError> {
    let id: InboxId = ctx.id("id").map_err(|_| ApiError::forbidden(WRONG_TOKEN))?;
    let token = crate::auth::bearer(&ctx.headers, None)?
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <the inbox's token>"))?;
    ctx.app
        .engine
        .inbox_for_token(id, &crate::auth::token_digest(&token))
        .await
        .map_err(|_| ApiError::forbidden(WRONG_TOKEN))
}

/// 201 with the stored message, or 200 for a provider's repeat.
fn received_answer(received: &chat_core::Received) -> Resp {
    let status = if received.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    http::json(
        status,
        &ReceivedView {
            conversation_id: received.conversation.id,
            message_id: received.message.id,
            created: received.created,
            opened: received.opened,
        },
    )
}

fn is_multipart(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// A message with files: `multipart/form-data` with the usual JSON in a `message` field
/// and the files as file parts (any field name), read within the tenant's upload limits.
async fn inbound_form(
    ctx: &mut Ctx,
    inbox: &chat_core::Inbox,
) -> Result<(InboundMessage, Vec<chat_core::NewFile>), ApiError> {
    let policy = ctx.app.engine.inbox_upload_policy(inbox).await?;
    let body = ctx
        .body
        .take()
        .ok_or_else(|| ApiError::bad_request("the body was already read"))?;
    let form =
        crate::uploads::read_multipart(&ctx.headers, body, policy.max_files, policy.max_bytes)
            .await?;
    let json = form.field("message").ok_or_else(|| {
        ApiError::invalid(
            "message",
            "send the message's JSON (`contact` and `message`) in a form field called `message`",
        )
    })?;
    let input = serde_json::from_str(json)
        .map_err(|e| ApiError::invalid("message", format!("not a valid inbound message: {e}")))?;
    let files = form
        .files
        .into_iter()
        .map(|f| chat_core::NewFile::new(&f.file_name, &f.content_type, f.bytes.to_vec()))
        .collect();
    Ok((input, files))
}

/// What the Telegram route answers: whether a message was stored (updates without text,
/// such as stickers or edits, are acknowledged and not stored).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TelegramReceived {
    /// false: an update without a text, photo, document or voice message, acknowledged
    stored: bool,
    #[schema(required = true)]
    conversation_id: Option<chat_core::ConversationId>,
    #[schema(required = true)]
    message_id: Option<chat_core::MessageId>,
}

/// `POST /v1/inboxes/{id}/telegram`: an `Update` from Telegram, authenticated by
/// `X-Telegram-Bot-Api-Secret-Token` (the inbox's token, given to `setWebhook` as
/// `secret_token`), checked before the body is read.
pub async fn receive_telegram(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let refused = || ApiError::forbidden("unknown inbox or wrong secret token");
    let id: InboxId = ctx.id("id").map_err(|_| refused())?;
    let secret = ctx
        .headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?
        .to_owned();
    let inbox = ctx
        .app
        .engine
        .inbox_for_token(id, &crate::auth::token_digest(&secret))
        .await
        .map_err(|_| refused())?;
    if inbox.kind != InboxKind::Telegram {
        return Err(refused());
    }
    let update: crate::channels::telegram::Update = ctx.json().await?;
    let received = take_update(&ctx.app, &inbox, update).await?;
    Ok(http::json(StatusCode::OK, &received))
}

/// Posts a Telegram update's message as its chat's customer: from the webhook route, or
/// from the poller ([`crate::polling`]). The message's file, if any, is fetched first: one
/// over the tenant's limit (or of a type it does not take) is 422 and nothing happens;
/// Telegram not giving it is 502. Updates without a text, photo, document or voice
/// message are acknowledged and not stored.
pub(crate) async fn take_update(
    app: &crate::app::App,
    inbox: &Inbox,
    update: crate::channels::telegram::Update,
) -> Result<TelegramReceived, ApiError> {
    let skipped = TelegramReceived {
        stored: false,
        conversation_id: None,
        message_id: None,
    };
    let Some(message) = update.message else {
        return Ok(skipped);
    };
    let file = message.file();
    let text = message
        .text
        .or(message.caption)
        .filter(|t| !t.trim().is_empty());
    if text.is_none() && file.is_none() {
        return Ok(skipped);
    }
    let files = match file {
        Some(file) => {
            let max = app.engine.inbox_upload_policy(inbox).await?.max_bytes;
            let client = crate::webhooks::client(app.config.webhooks.allow_private);
            let timeout = app.config.webhooks.timeout;
            let bytes =
                crate::channels::telegram::download(&client, timeout, inbox, &file, max).await?;
            vec![chat_core::NewFile::new(
                &file.name,
                &file.content_type,
                bytes,
            )]
        }
        None => Vec::new(),
    };
    let name = message.from.map(|u| match u.last_name {
        Some(last) => format!("{} {last}", u.first_name),
        None => u.first_name,
    });
    let received = Box::pin(app.engine.receive(
        inbox,
        Inbound {
            contact: message.chat.id.to_string(),
            message: message.message_id.to_string(),
            name,
            body: text.unwrap_or_default(),
            attachments: Vec::new(),
            files,
        },
    ))
    .await?;
    Ok(TelegramReceived {
        stored: true,
        conversation_id: Some(received.conversation.id),
        message_id: Some(received.message.id),
    })
}

/// `GET /v1/inboxes/{id}/whatsapp`: Meta's verify handshake. With `hub.mode=subscribe` and
/// `hub.verify_token` the inbox's token, the answer is `hub.challenge` as plain text; else
/// 403.
pub async fn verify_whatsapp(ctx: Ctx) -> Result<Resp, ApiError> {
    let refused = || ApiError::forbidden("unknown inbox or wrong verify token");
    let id: InboxId = ctx.id("id").map_err(|_| refused())?;
    let query = ctx.query.as_deref().unwrap_or("");
    let mode = http::query_param(query, "hub.mode");
    let token = http::query_param(query, "hub.verify_token").ok_or_else(refused)?;
    let challenge = http::query_param(query, "hub.challenge").unwrap_or_default();
    if mode.as_deref() != Some("subscribe") {
        return Err(refused());
    }
    let inbox = ctx
        .app
        .engine
        .inbox_for_token(id, &crate::auth::token_digest(&token))
        .await
        .map_err(|_| refused())?;
    if inbox.kind != InboxKind::Whatsapp {
        return Err(refused());
    }
    Ok(http::with_type(
        StatusCode::OK,
        challenge.chars().take(200).collect::<String>(),
        "text/plain; charset=utf-8",
    ))
}

/// What the WhatsApp route answers: how many messages it stored.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct WhatsappReceived {
    /// text, image, document and audio messages stored (repeats included)
    stored: usize,
}

/// `POST /v1/inboxes/{id}/whatsapp`: a Cloud API notification, authenticated by
/// `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app secret), checked
/// before anything in it is read. Each text message is posted as the customer of its
/// sender's number, idempotent on its `wamid`; statuses and other types are acknowledged.
pub async fn receive_whatsapp(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let refused = || ApiError::forbidden("unknown inbox or bad X-Hub-Signature-256");
    let id: InboxId = ctx.id("id").map_err(|_| refused())?;
    let signature = ctx
        .headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?
        .to_owned();
    let inbox = ctx
        .app
        .engine
        .inbox_for_signature(id)
        .await
        .map_err(|_| refused())?;
    if inbox.kind != InboxKind::Whatsapp {
        return Err(refused());
    }
    let body = ctx
        .body
        .take()
        .ok_or_else(|| ApiError::bad_request("the body was already read"))?;
    let raw = http::read_body(&ctx.headers, body, ctx.app.config.limits.body_bytes).await?;
    if !crate::channels::whatsapp::signature_is_valid(&inbox, &signature, &raw) {
        return Err(refused());
    }
    let notification: crate::channels::whatsapp::Notification = http::parse_json(&raw)?;
    if notification.object != "whatsapp_business_account" {
        return Err(chat_core::Error::validation("object", "not whatsapp_business_account").into());
    }
    let mut stored = 0;
    let client = crate::webhooks::client(ctx.app.config.webhooks.allow_private);
    let timeout = ctx.app.config.webhooks.timeout;
    for change in notification.entry.iter().flat_map(|e| &e.changes) {
        if change.field != "messages" {
            continue;
        }
        for message in &change.value.messages {
            let (body, files) = match (message.kind.as_str(), &message.text, message.file()) {
                ("text", Some(text), _) => (text.body.clone(), Vec::new()),
                (_, _, Some((file, caption))) => {
                    // Fetched before anything is stored: too large is 422, nothing kept;
                    // the Cloud API not giving it is 502, and WhatsApp notifies again.
                    let max = ctx.app.engine.inbox_upload_policy(&inbox).await?.max_bytes;
                    let bytes =
                        crate::channels::whatsapp::download(&client, timeout, &inbox, &file, max)
                            .await?;
                    (
                        caption.unwrap_or_default(),
                        vec![chat_core::NewFile::new(
                            &file.name,
                            &file.content_type,
                            bytes,
                        )],
                    )
                }
                _ => continue,
            };
            let name = change
                .value
                .contacts
                .iter()
                .find(|c| c.wa_id == message.from)
                .and_then(|c| c.profile.as_ref())
                .map(|p| p.name.clone());
            Box::pin(ctx.app.engine.receive(
                &inbox,
                Inbound {
                    contact: message.from.clone(),
                    message: message.id.clone(),
                    name,
                    body,
                    attachments: Vec::new(),
                    files,
                },
            ))
            .await?;
            stored += 1;
        }
    }
    Ok(http::json(StatusCode::OK, &WhatsappReceived { stored }))
}

/// `POST /v1/inboxes/{id}/email`: a raw RFC 5322 message for an `email` inbox. The token is
/// checked before the body is read; the mail is parsed whole before anything is stored.
pub async fn receive_email(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let inbox = inbox_by_token(&ctx).await?;
    if inbox.kind != InboxKind::Email {
        return Err(ApiError::forbidden(WRONG_TOKEN));
    }
    let is_mail = ctx
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("message/rfc822"));
    if !is_mail {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the raw message with Content-Type: message/rfc822",
        ));
    }
    // Threading needs the domain of our Message-IDs, which only a relay gives.
    let Some((_, domain)) = ctx.app.config.mail.sender() else {
        return Err(crate::api::mail::not_configured());
    };
    let body = ctx
        .body
        .take()
        .ok_or_else(|| ApiError::bad_request("the body was already read"))?;
    let raw = http::collect(body, crate::email::MAX_MAIL_BYTES).await?;
    let mail = crate::email::parse(&raw).map_err(|e| ApiError::invalid(e.field, e.reason))?;
    let received = Box::pin(ctx.app.engine.receive_mail(&inbox, mail, &domain)).await?;
    Ok(received_answer(&received))
}

/// Body of `POST /v1/conversations/{id}/whatsapp-template`.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TemplateRequest {
    /// The same id twice stores (and sends) one message.
    #[schema(max_length = 200)]
    client_message_id: Option<String>,
    /// The template's body variables `{{1}}`, `{{2}}`, … in order, sent as the Cloud
    /// API's `components: [{type: body, parameters: [{type: text, text}]}]` and shown in
    /// the stored message; each 1 to 1024 characters, without new lines, tabs or more
    /// than four spaces in a row (422 on `parameters`).
    #[schema(max_items = 20)]
    parameters: Vec<String>,
}

/// `POST /v1/conversations/{id}/whatsapp-template`: the inbox's template to the customer
/// (agents who may reply), the one message WhatsApp takes outside the 24-hour window, with
/// its body variables from `parameters`.
pub async fn send_template(mut ctx: Ctx) -> Result<Resp, ApiError> {
    let id: chat_core::ConversationId = ctx.id("id")?;
    let body: TemplateRequest = ctx.json_or_default().await?;
    let posted = Box::pin(ctx.app.engine.send_template(
        ctx.actor()?,
        id,
        body.client_message_id,
        body.parameters,
    ))
    .await?;
    let status = if posted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(http::json(
        status,
        &super::messages::PostAnswer {
            message: &posted.message,
            created: posted.created,
            replies: &posted.replies,
            conversation: ctx.conversation_view(&posted.conversation),
        },
    ))
}
