//! E-mail the desk sends: transcripts asked for by a customer or staff, queued in the mail
//! outbox, and the mail worker's side (claiming due mails, recording attempts).
//!
//! The engine knows nothing of SMTP: how a mail is written and sent is the worker's. What
//! it decides is who may ask for what, to which address (only the contact's own: a
//! customer can never make the desk mail an address of their choosing, so the route is no
//! spam relay), how often, and what follows an attempt.

use std::time::Duration;

use super::Engine;
use super::transcripts::Transcript;
use crate::error::{Conflict, ConflictKind, Error, Result};
use crate::ids::{ConversationId, MailId};
use crate::mode::Mode;
use crate::model::{Mail, MailKind, MailOutcome, MailState, Role};
use crate::policy::{Action, Actor, Resolved};

/// How a transcript mail is asked for: the server's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct MailPolicy {
    /// A customer may have one conversation's transcript mailed once in this long.
    pub transcript_window: Duration,
    /// The domain of the `Message-ID`s the desk makes (the sender address's).
    pub domain: String,
}

/// What a mail says, as the server renders it.
#[derive(Clone, Debug, PartialEq)]
pub struct MailContent {
    /// Subject.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: Option<String>,
}

/// How mails are retried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MailRetry {
    /// Wait after the first failure; doubled after each next one.
    pub base: Duration,
    /// Longest wait between two attempts.
    pub max: Duration,
    /// A mail still failing this long after it was queued is given up (`failed`).
    pub give_up_after: Duration,
    /// How long a claimed mail is reserved for the worker that claimed it.
    pub lease: Duration,
}

impl Default for MailRetry {
    /// 30 s doubling to at most 1 h, given up after a day; a 2-minute lease (an SMTP
    /// exchange with a slow relay takes tens of seconds at worst).
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            max: Duration::from_secs(3_600),
            give_up_after: Duration::from_secs(86_400),
            lease: Duration::from_secs(120),
        }
    }
}

/// What one attempt at sending a mail came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailAttempt {
    /// The relay accepted it.
    Sent,
    /// Worth trying again: a 4xx answer, no connection, a timeout.
    Transient(String),
    /// Never worth trying again: a 5xx answer (no such mailbox, refused relaying).
    Permanent(String),
}

/// A `Message-ID` of ours (without angle brackets): `<id>.<conversation>@<domain>`, so a
/// customer's reply that names it says which conversation it answers.
pub fn mail_message_id(id: uuid::Uuid, conversation: ConversationId, domain: &str) -> String {
    format!("{id}.{conversation}@{domain}")
}

/// The conversation a `Message-ID` of ours (made by [`mail_message_id`] with `domain`)
/// belongs to; `None` for anyone else's.
///
/// ```
/// # use chat_core::{ConversationId, mail_message_id, conversation_of_message_id};
/// let conversation = ConversationId(uuid::Uuid::now_v7());
/// let id = mail_message_id(uuid::Uuid::now_v7(), conversation, "desk.example");
/// assert_eq!(conversation_of_message_id(&id, "desk.example"), Some(conversation));
/// assert_eq!(conversation_of_message_id(&id, "other.example"), None);
/// ```
pub fn conversation_of_message_id(message_id: &str, domain: &str) -> Option<ConversationId> {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (local, host) = id.rsplit_once('@')?;
    if !host.eq_ignore_ascii_case(domain) {
        return None;
    }
    let (_, conversation) = local.split_once('.')?;
    conversation.parse().ok()
}

impl Engine {
    /// Queues a conversation's transcript for its contact's e-mail address, rendered by
    /// `render` from what the customer may read (never internal notes, whoever asks).
    ///
    /// A customer of the conversation may ask once it is closed, once per
    /// `policy.transcript_window` (`Ok(None)` when asked again within it); staff who can
    /// read the conversation may ask any time. The mail goes to the contact's address
    /// only: [`Error::Validation`] on `contact.email` if the contact gave none.
    pub async fn mail_transcript(
        &self,
        actor: &Actor,
        id: ConversationId,
        policy: &MailPolicy,
        render: impl FnOnce(&Transcript) -> MailContent + Send,
    ) -> Result<Option<Mail>> {
        let (who, conversation) = self.authorized(actor, id, Action::Read).await?;
        let tenant = actor.tenant();
        let (requested_by, once_since) = match &who {
            Resolved::Customer { .. } => {
                if !matches!(conversation.mode, Mode::Closed | Mode::Archived) {
                    return Err(Error::Conflict(Conflict::new(
                        ConflictKind::State,
                        "the transcript can be mailed once the conversation is closed",
                    )));
                }
                let window = time::Duration::try_from(policy.transcript_window)
                    .unwrap_or(time::Duration::DAY);
                ("customer".to_owned(), Some(self.now() - window))
            }
            Resolved::Staff(me) => (format!("agent:{}", me.id), None),
            Resolved::Bot => ("bot".to_owned(), None),
            Resolved::System => ("system".to_owned(), None),
        };
        let contact = self
            .inner
            .store
            .contact(tenant, conversation.contact_id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        let to = contact
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| {
                Error::validation("contact.email", "the conversation's contact has no e-mail")
            })?
            .to_owned();
        let customer = Actor::Customer {
            tenant,
            contact: conversation.contact_id,
            conversation: Some(id),
        };
        let transcript = self.transcript(&customer, id).await?;
        let content = render(&transcript);
        let now = self.now();
        let mail_id = self.new_id();
        let mail = Mail {
            id: MailId(mail_id),
            tenant_id: tenant,
            conversation_id: id,
            kind: MailKind::Transcript,
            requested_by,
            to,
            subject: content.subject,
            text: content.text,
            html: content.html,
            message_id: mail_message_id(mail_id, id, &policy.domain),
            references: Vec::new(),
            state: MailState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        };
        if self.inner.store.queue_mail(&mail, once_since).await? {
            Ok(Some(mail))
        } else {
            Ok(None)
        }
    }

    /// The tenant's mail log (admins), newest first.
    pub async fn mails(&self, actor: &Actor, limit: usize) -> Result<Vec<Mail>> {
        match self.resolve(actor).await? {
            Resolved::System => {}
            Resolved::Staff(me) if me.role == Role::Admin => {}
            _ => return Err(Error::Forbidden("read the mail log")),
        }
        let limit = limit.clamp(1, self.inner.limits.max_page);
        self.inner.store.mails(actor.tenant(), limit).await
    }

    /// Claims up to `limit` due mails of every tenant for a mail worker, each reserved for
    /// `retry.lease`.
    pub async fn claim_mails(&self, retry: &MailRetry, limit: usize) -> Result<Vec<Mail>> {
        let now = self.now();
        self.inner
            .store
            .claim_mails(now, now + retry.lease, limit)
            .await
    }

    /// Records how an attempt went and decides what follows: sent; failed for good on a
    /// permanent refusal or once the mail is older than `give_up_after`; else another
    /// attempt after a backoff (doubling, with jitter, as for webhooks).
    pub async fn record_mail_attempt(
        &self,
        retry: &MailRetry,
        mail: &Mail,
        attempt: MailAttempt,
    ) -> Result<MailOutcome> {
        let now = self.now();
        let attempts = mail.attempts + 1;
        let backoff = super::WebhookRetry {
            base: retry.base,
            max: retry.max,
            ..super::WebhookRetry::default()
        };
        let (state, next, error, sent_at) = match attempt {
            MailAttempt::Sent => (MailState::Sent, now, None, Some(now)),
            MailAttempt::Permanent(e) => (MailState::Failed, now, Some(e), None),
            MailAttempt::Transient(e) => {
                let state = if now - mail.created_at >= retry.give_up_after {
                    MailState::Failed
                } else {
                    MailState::Pending
                };
                let random = uuid::Uuid::new_v4().as_u128() as u64;
                (
                    state,
                    now + backoff.backoff(attempts, random),
                    Some(e),
                    None,
                )
            }
        };
        let outcome = MailOutcome {
            tenant_id: mail.tenant_id,
            id: mail.id,
            state,
            attempts,
            next_attempt_at: next,
            last_error: error,
            sent_at,
        };
        self.inner.store.record_mail(&outcome).await?;
        Ok(outcome)
    }
}
