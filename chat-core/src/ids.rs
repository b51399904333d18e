//! Identifiers and their generation.
//!
//! Every entity id is a UUID v7: time-ordered (so indexes stay append-mostly) and
//! unguessable (so knowing one id never lets anyone guess the next, unlike the seeds'
//! `session_{len+1}`). Generation is injected through [`IdGenerator`] so tests can be
//! deterministic.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A mail in the mail outbox (a transcript, a reply to an e-mail customer).
    MailId
);
id_type!(
    /// A tenant: one business (or salon, or shop) with its own agents and conversations.
    TenantId
);
id_type!(
    /// A contact: the customer on the other side of a conversation.
    ContactId
);
id_type!(
    /// A staff member: agent, supervisor or admin.
    AgentId
);
id_type!(
    /// A conversation (the seeds' "session" or "chat").
    ConversationId
);
id_type!(
    /// A message, note or system event inside a conversation.
    MessageId
);
id_type!(
    /// A canned response: a saved answer staff insert by its shortcut.
    CannedResponseId
);

/// Source of new ids.
pub trait IdGenerator: Send + Sync + 'static {
    /// A fresh, unique id.
    fn new_id(&self) -> Uuid;
}

/// UUID v7 from the system clock and the operating system's random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct V7Ids;

impl IdGenerator for V7Ids {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Deterministic ids for tests: v7-shaped UUIDs from a counter, so two runs of the same
/// test produce the same ids in the same order.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> Uuid {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let ts =
            uuid::Timestamp::from_unix(uuid::NoContext, n / 1000, ((n % 1000) * 1_000_000) as u32);
        let mut bytes = *Uuid::new_v7(ts).as_bytes();
        // Replace the random tail with the counter so the id is reproducible.
        bytes[8..16].copy_from_slice(&n.to_be_bytes());
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid::from_bytes(bytes)
    }
}
id_type!(
    /// A webhook: an admin's endpoint that receives the desk's events.
    WebhookId
);
id_type!(
    /// An inbox: a channel (the API, Telegram, WhatsApp) through which customers write in.
    InboxId
);
