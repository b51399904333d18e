//! Inboxes: the channels through which customers outside the website widget write in (an
//! integration over the API, Telegram, WhatsApp, e-mail). Each has a token its inbound route is
//! authenticated with and, for replies, an outbound webhook whose deliveries ride the same
//! outbox as the event webhooks.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{Channel, str_enum};
use crate::ids::{InboxId, TenantId, WebhookId};

str_enum!(
    /// Which provider an inbox speaks to.
    InboxKind, "kind" {
        /// Any system, over our own API: messages in by `POST` with the inbox's token,
        /// agent replies out to its webhook.
        Api = "api",
        /// A Telegram bot, over the Bot API: updates in by its webhook (checked by the
        /// secret token), replies out by `sendMessage`.
        Telegram = "telegram",
        /// A WhatsApp Business number, over the WhatsApp Cloud API: messages in by its
        /// webhook (signed with the app secret), replies out by `/{phone-number-id}/messages`
        /// within the 24-hour customer-service window.
        Whatsapp = "whatsapp",
        /// A support address, over e-mail: RFC 5322 messages in from the operator's mail
        /// server (an MTA pipe, `chat-server email-inbound`, or the HTTP route), threaded by
        /// `In-Reply-To`/`References`; replies out through the mail outbox and the SMTP relay.
        Email = "email",
    }
);

impl InboxKind {
    /// The conversation channel of its conversations.
    pub fn channel(self) -> Channel {
        match self {
            InboxKind::Api => Channel::Api,
            InboxKind::Telegram => Channel::Telegram,
            InboxKind::Whatsapp => Channel::Whatsapp,
            InboxKind::Email => Channel::Email,
        }
    }
}

/// Provider settings that are secrets (bot tokens, app secrets). Its `Debug` form hides
/// the values, so they cannot reach a log by accident; no answer shows them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InboxSecrets(pub BTreeMap<String, String>);

impl std::fmt::Debug for InboxSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A channel customers write in through.
#[derive(Clone, Debug, PartialEq)]
pub struct Inbox {
    /// Id.
    pub id: InboxId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// What staff call it ("Shop app", "Support bot").
    pub name: String,
    /// The provider.
    pub kind: InboxKind,
    /// Hex digest of the token its inbound route is called with (the server chooses the
    /// hash, as for bot tokens); the token itself is shown once, at creation.
    pub token_digest: String,
    /// The webhook its outbound messages (agent replies) are delivered to: a webhook that
    /// follows `message_created`, whose deliveries the worker sends in the provider's form.
    pub webhook_id: Option<WebhookId>,
    /// Provider settings that are not secret (a base URL, a phone-number id).
    pub settings: BTreeMap<String, String>,
    /// Provider secrets.
    pub secrets: InboxSecrets,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}
