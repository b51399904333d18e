//! Plain data types of the support desk. They carry no behaviour beyond small,
//! pure helpers; the [`Engine`](crate::Engine) is the only way to change them.

mod actor;
mod agent;
mod canned;
mod contact;
mod conversation;
mod event;
mod hours;
mod inbox;
mod mail;
mod mention;
mod message;
mod notice;
mod tenant;
mod webhook;

pub use actor::Actor;
pub use agent::{Agent, AgentLoad, Availability, NewAgent, Role};
pub use canned::{
    CannedResponse, PLACEHOLDERS, Placeholders, check_placeholders, fill_placeholders,
};
pub use contact::{Contact, ContactInput};
pub use conversation::{Conversation, MessagePreview, PREVIEW_CHARS, Rating, Snooze};
pub use event::{ConversationChange, Event, EventPayload, NewEvent, TransferTarget, WakeReason};
pub use hours::{BusinessHours, MAX_OFFLINE_CHARS, OpenRange, WeeklyHours, is_open, next_opening};
pub use inbox::{Inbox, InboxKind, InboxSecrets};
pub use mail::{Mail, MailKind, MailOutcome, MailState};
pub use mention::{Mention, handles, mentioned_handles};
pub use message::{
    Attachment, EntityRef, Message, MessageKind, NewMessage, ReadCursor, Reader, Revision, Sender,
};
pub use notice::{NOTICE_KEY, NOTICE_NAME_KEY, Notice, Party};
pub use tenant::{AttributeType, Tenant, TenantSettings, UPLOAD_TYPES};
pub use webhook::{
    Delivery, DeliveryOutcome, DeliveryState, WEBHOOK_EVENT_KINDS, Webhook, WebhookSecret,
    WebhookState,
};

/// Declares a closed, snake_case string enum with `as_str`, `Display` and `FromStr`,
/// so the same word is used in Rust, JSON and SQL.
macro_rules! str_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name used in JSON and SQL.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> crate::Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(crate::Error::validation($field, format!("unknown value `{s}`"))),
                }
            }
        }
    };
}
pub(crate) use str_enum;

str_enum!(
    /// Where the customer reaches the business.
    Channel, "channel" {
        /// The website widget.
        Web = "web",
        /// WhatsApp.
        Whatsapp = "whatsapp",
        /// Telegram.
        Telegram = "telegram",
        /// E-mail.
        Email = "email",
        /// SMS.
        Sms = "sms",
        /// Created through the API by an integration.
        Api = "api",
        /// Any other channel.
        Other = "other",
    }
);

#[allow(clippy::derivable_impls)] // the enum comes from a macro shared with enums that have no default
impl Default for Channel {
    fn default() -> Self {
        Channel::Web
    }
}

str_enum!(
    /// How urgent a conversation is; the queue serves higher priorities first.
    Priority, "priority" {
        /// Low.
        Low = "low",
        /// Medium (the default).
        Medium = "medium",
        /// High.
        High = "high",
        /// Urgent.
        Urgent = "urgent",
    }
);

#[allow(clippy::derivable_impls)]
impl Default for Priority {
    fn default() -> Self {
        Priority::Medium
    }
}

/// Shorthand for the fields that hold timestamps as RFC 3339 in JSON.
pub(crate) mod rfc3339 {
    pub use time::serde::rfc3339::*;
}
