//! E-mail: a conversation's transcript mailed to its contact, and the mail log (admins).
//! The engine decides who may ask, to which address and how often; this renders the
//! transcript (the same text and HTML as `GET …/transcript`, as the customer sees it) and
//! answers in the API's shapes.

use chat_core::{ConversationId, Error, Mail, MailContent, MailPolicy};
use hyper::StatusCode;
use serde::Serialize;
use time::OffsetDateTime;

use super::Ctx;
use crate::error::ApiError;
use crate::http::{self, Resp};

/// A mail as the API shows it: never its body (the log is about delivery).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Mail)]
pub(crate) struct MailView<'a> {
    id: chat_core::MailId,
    kind: chat_core::MailKind,
    conversation_id: ConversationId,
    /// the contact's address
    to: &'a str,
    subject: &'a str,
    /// its Message-ID, without angle brackets
    message_id: &'a str,
    /// `customer`, `agent:<id>`, `bot` or `system`
    requested_by: &'a str,
    state: chat_core::MailState,
    attempts: u32,
    /// pending ones: when the next attempt is due
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    next_attempt_at: Option<OffsetDateTime>,
    /// the relay's last refusal or the connection error
    #[schema(required = true)]
    last_error: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    sent_at: Option<OffsetDateTime>,
}

fn view(m: &Mail) -> MailView<'_> {
    MailView {
        id: m.id,
        kind: m.kind,
        conversation_id: m.conversation_id,
        to: &m.to,
        subject: &m.subject,
        message_id: &m.message_id,
        requested_by: &m.requested_by,
        state: m.state,
        attempts: m.attempts,
        next_attempt_at: (m.state == chat_core::MailState::Pending).then_some(m.next_attempt_at),
        last_error: m.last_error.as_deref(),
        created_at: m.created_at,
        sent_at: m.sent_at,
    }
}

/// 409 `mail_not_configured`: the server has no SMTP relay.
pub(crate) fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "mail_not_configured",
        "this server sends no e-mail: it has no SMTP relay (--smtp-url and --mail-from)",
    )
}

/// `POST /v1/conversations/{id}/transcript/email`: queue the transcript for the contact's
/// address; 202 with the mail, which the mail worker sends.
pub async fn transcript(ctx: Ctx) -> Result<Resp, ApiError> {
    let id: ConversationId = ctx.id("id")?;
    let actor = ctx.actor()?;
    // Who may read it learns first whether mail can be sent; others get the policy's
    // answer, as for every conversation route.
    ctx.app.engine.conversation(actor, id).await?;
    let mail = &ctx.app.config.mail;
    let Some((_, domain)) = mail.sender() else {
        return Err(not_configured());
    };
    let policy = MailPolicy {
        transcript_window: mail.transcript_window,
        domain,
    };
    let window = mail.transcript_window.as_secs();
    let queued = ctx
        .app
        .engine
        .mail_transcript(actor, id, &policy, |t| MailContent {
            subject: match t.conversation.title.as_deref() {
                Some(title) => format!("Transcript of your conversation: {title}"),
                None => "Transcript of your conversation".to_owned(),
            },
            text: crate::transcript::text(t),
            html: Some(crate::transcript::html(t)),
        })
        .await
        .map_err(|e| match e {
            Error::Validation {
                field: "contact.email",
                message,
            } => ApiError {
                field: Some("contact.email".to_owned()),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "contact_has_no_email",
                    message,
                )
            },
            e => e.into(),
        })?;
    match queued {
        Some(mail) => Ok(http::json(StatusCode::ACCEPTED, &view(&mail))),
        None => Err(ApiError {
            retry_after: Some(window.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "transcript_mailed_recently",
                "this conversation's transcript was mailed to you recently; it is sent once \
                 per window",
            )
        }),
    }
}

/// `GET /v1/mail`: the tenant's mail log (admins), newest first.
pub async fn list(ctx: Ctx) -> Result<Resp, ApiError> {
    let limit: Option<usize> = ctx.query("limit")?;
    let found = ctx
        .app
        .engine
        .mails(ctx.actor()?, limit.unwrap_or(50))
        .await?;
    let items: Vec<_> = found.iter().map(view).collect();
    Ok(super::Items::answer(items))
}
