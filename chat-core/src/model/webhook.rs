//! Event webhooks: endpoints an admin registers to follow the desk's events, and the
//! outbox of their deliveries.
//!
//! A store writes one [`Delivery`] per matching webhook in the same transaction as the
//! event itself (see [`Store`](crate::Store)), so an event that was committed is delivered
//! even if the process dies right after; a delivery worker claims due deliveries, posts
//! them and records each attempt ([`DeliveryOutcome`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::str_enum;
use crate::ids::{ConversationId, TenantId, WebhookId};

/// The event kinds a webhook may follow (every kind an admin may see: `mentioned` is
/// addressed to one agent, so no endpoint receives it; nor do the canned-response events,
/// the desk's own tooling, of which a personal one is its owner's alone).
pub const WEBHOOK_EVENT_KINDS: &[&str] = &[
    "conversation_created",
    "conversation_updated",
    "conversation_deleted",
    "message_created",
    "message_updated",
    "read_updated",
    "agent_updated",
    "contact_merged",
    "contact_erased",
    "settings_updated",
    "webhook_paused",
];

str_enum!(
    /// Whether a webhook's deliveries go out.
    WebhookState, "state" {
        /// Deliveries are attempted.
        Active = "active",
        /// Failing for too long: new deliveries are still written, but none is attempted
        /// until an admin makes it active again.
        Paused = "paused",
    }
);

str_enum!(
    /// Where one delivery stands.
    DeliveryState, "state" {
        /// Waiting for its (next) attempt.
        Pending = "pending",
        /// The endpoint answered 2xx.
        Delivered = "delivered",
        /// Every attempt failed for the whole retry period; an admin may redeliver it.
        Failed = "failed",
    }
);

/// The shared secret a webhook's signatures are made with. Its `Debug` form hides it, so
/// it cannot end up in a log by accident; it is shown to the admin once, at creation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(pub String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// An endpoint that receives the tenant's events.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// Id.
    pub id: WebhookId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Where deliveries are posted: an `http://` or `https://` URL.
    pub url: String,
    /// The event kinds it follows (see [`WEBHOOK_EVENT_KINDS`]); empty = every kind.
    pub events: Vec<String>,
    /// What signatures are made with.
    pub secret: WebhookSecret,
    /// Active or paused.
    pub state: WebhookState,
    /// Since when every attempt has failed (`None` after a success): what pauses it.
    pub failing_since: Option<OffsetDateTime>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed by an admin.
    pub updated_at: OffsetDateTime,
}

impl Webhook {
    /// Whether it follows events of this kind.
    pub fn follows(&self, kind: &str) -> bool {
        WEBHOOK_EVENT_KINDS.contains(&kind)
            && (self.events.is_empty() || self.events.iter().any(|e| e == kind))
    }

    /// The kinds as stores keep them for matching in SQL: space-separated with a space at
    /// both ends (`" message_created conversation_created "`), or empty for every kind, so
    /// `instr(kinds, ' ' || kind || ' ')` finds one.
    pub fn kinds_key(&self) -> String {
        if self.events.is_empty() {
            String::new()
        } else {
            format!(" {} ", self.events.join(" "))
        }
    }
}

/// One event on its way to one webhook: a row of the outbox, and of the delivery log.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The webhook.
    pub webhook_id: WebhookId,
    /// The event's sequence in the tenant's log (with the webhook, the delivery's key).
    pub seq: u64,
    /// The event's conversation: deliveries of one conversation go out in order.
    pub conversation_id: Option<ConversationId>,
    /// The event's kind.
    pub kind: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it may be attempted (again); while claimed, when the claim lapses.
    pub next_attempt_at: OffsetDateTime,
    /// HTTP status of the last answer, if one came.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// How long the last attempt took, in milliseconds.
    pub response_ms: Option<u64>,
    /// When the event happened (the delivery was written with it).
    pub created_at: OffsetDateTime,
    /// When the endpoint accepted it.
    pub delivered_at: Option<OffsetDateTime>,
}

/// What one attempt of a delivery ended with, for
/// [`Store::record_delivery`](crate::Store::record_delivery). The engine decides
/// everything in it (next attempt, giving up, pausing); the store applies it atomically.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryOutcome {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The webhook.
    pub webhook_id: WebhookId,
    /// The event's sequence.
    pub seq: u64,
    /// The delivery's new state.
    pub state: DeliveryState,
    /// Attempts made, this one included.
    pub attempts: u32,
    /// When to try again (ignored unless `state` is pending).
    pub next_attempt_at: OffsetDateTime,
    /// HTTP status, if an answer came.
    pub last_status: Option<u16>,
    /// Why it failed; `None` on success.
    pub last_error: Option<String>,
    /// How long it took, in milliseconds.
    pub response_ms: u64,
    /// When the attempt ended.
    pub at: OffsetDateTime,
    /// On a failure: pause the webhook, appending this `webhook_paused` event, if it has
    /// been failing since this instant or earlier (its `failing_since` counting this
    /// failure) and is still active.
    pub pause: Option<(OffsetDateTime, super::NewEvent)>,
}

impl DeliveryOutcome {
    /// Whether the endpoint accepted the delivery.
    pub fn succeeded(&self) -> bool {
        self.state == DeliveryState::Delivered
    }
}
