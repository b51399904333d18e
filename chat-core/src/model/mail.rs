//! The mail outbox: e-mails the desk sends (a transcript a customer asked for, an agent's
//! reply to an e-mail customer), kept as rows until a mail worker has handed them to the
//! SMTP relay, so a crash or a relay outage delays a mail but never drops it.
//!
//! A mail is written whole when it is asked for (its text and HTML rendered then: what the
//! customer asked for is what they get, even if the conversation changes later); the worker
//! only sends it and records each attempt ([`MailOutcome`]).

use time::OffsetDateTime;

use super::str_enum;
use crate::ids::{ConversationId, MailId, TenantId};

str_enum!(
    /// What a mail is.
    MailKind, "kind" {
        /// A conversation's transcript, sent to its contact.
        Transcript = "transcript",
        /// An agent's or the bot's message to a customer who wrote by e-mail.
        Reply = "reply",
    }
);

str_enum!(
    /// Where one mail stands.
    MailState, "state" {
        /// Waiting for its (next) attempt.
        Pending = "pending",
        /// The relay accepted it.
        Sent = "sent",
        /// The relay refused it for good (a 5xx answer), or it kept failing for the whole
        /// retry period.
        Failed = "failed",
    }
);

/// One e-mail in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Mail {
    /// Id.
    pub id: MailId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The conversation it is about (its erasure erases the mail).
    pub conversation_id: ConversationId,
    /// What it is.
    pub kind: MailKind,
    /// Who asked for it: `customer`, `agent:<id>`, `bot` or `system`; a customer's
    /// transcripts are limited per conversation by it.
    pub requested_by: String,
    /// The recipient's address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part, if any (then the mail is `multipart/alternative`).
    pub html: Option<String>,
    /// Its `Message-ID`, without the angle brackets: ours, so replies can be threaded.
    pub message_id: String,
    /// The `Message-ID`s it answers, oldest first (`References`; the last one is its
    /// `In-Reply-To`), without angle brackets.
    pub references: Vec<String>,
    /// Pending, sent or failed.
    pub state: MailState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending), or when it was claimed until.
    pub next_attempt_at: OffsetDateTime,
    /// Why the last attempt failed (the relay's answer or the connection error).
    pub last_error: Option<String>,
    /// Asked for.
    pub created_at: OffsetDateTime,
    /// Accepted by the relay.
    pub sent_at: Option<OffsetDateTime>,
}

/// What one attempt at a mail came to, as the store records it.
#[derive(Clone, Debug, PartialEq)]
pub struct MailOutcome {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The mail.
    pub id: MailId,
    /// Its state now.
    pub state: MailState,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// When the next attempt is due (pending).
    pub next_attempt_at: OffsetDateTime,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// When the relay accepted it, if it did.
    pub sent_at: Option<OffsetDateTime>,
}
