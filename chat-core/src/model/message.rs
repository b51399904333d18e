use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::str_enum;
use crate::ids::{AgentId, ConversationId, MessageId, TenantId};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Sender {
    /// The contact.
    Customer,
    /// A staff member.
    Agent(AgentId),
    /// The bot.
    Bot,
    /// The desk itself (assignment, transfer, close notices).
    System,
}

impl Sender {
    /// The snake_case name of the sender kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Sender::Customer => "customer",
            Sender::Agent(_) => "agent",
            Sender::Bot => "bot",
            Sender::System => "system",
        }
    }
}

str_enum!(
    /// What a message is.
    MessageKind, "kind" {
        /// Plain text.
        Text = "text",
        /// An image attachment (with optional caption in the body).
        Image = "image",
        /// An audio attachment.
        Audio = "audio",
        /// Any other file.
        File = "file",
        /// An internal note: staff only, never shown to the customer.
        Note = "note",
        /// A system event shown in the timeline (assigned, transferred, closed).
        Event = "event",
    }
);

/// A stored message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Gap-free, per conversation, from 1.
    pub seq: u64,
    /// Who wrote it.
    pub sender: Sender,
    /// What it is.
    pub kind: MessageKind,
    /// Text (caption for attachments). Empty once deleted.
    pub body: String,
    /// Attached files.
    pub attachments: Vec<Attachment>,
    /// The message this one answers.
    pub reply_to: Option<MessageId>,
    /// Idempotency key chosen by the client: the same key twice stores one message.
    pub client_message_id: Option<String>,
    /// References to business entities (order, booking, product ...).
    pub entities: Vec<EntityRef>,
    /// Free metadata.
    pub metadata: BTreeMap<String, String>,
    /// Earlier bodies, oldest first.
    pub revisions: Vec<Revision>,
    /// Created.
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last edit.
    #[serde(with = "super::rfc3339::option")]
    pub edited_at: Option<OffsetDateTime>,
    /// Soft delete time.
    #[serde(with = "super::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

impl Message {
    /// Internal notes are for staff only.
    pub fn is_note(&self) -> bool {
        self.kind == MessageKind::Note
    }
}

/// A message before the store gives it a sequence number.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    /// Id.
    pub id: MessageId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Who wrote it.
    pub sender: Sender,
    /// What it is.
    pub kind: MessageKind,
    /// Text.
    pub body: String,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// Answered message.
    pub reply_to: Option<MessageId>,
    /// Idempotency key.
    pub client_message_id: Option<String>,
    /// Entity references.
    pub entities: Vec<EntityRef>,
    /// Free metadata.
    pub metadata: BTreeMap<String, String>,
    /// Created.
    pub created_at: OffsetDateTime,
}

impl NewMessage {
    /// The stored message once the store has chosen its sequence number.
    pub fn into_message(self, seq: u64) -> Message {
        Message {
            id: self.id,
            tenant_id: self.tenant_id,
            conversation_id: self.conversation_id,
            seq,
            sender: self.sender,
            kind: self.kind,
            body: self.body,
            attachments: self.attachments,
            reply_to: self.reply_to,
            client_message_id: self.client_message_id,
            entities: self.entities,
            metadata: self.metadata,
            revisions: Vec::new(),
            created_at: self.created_at,
            edited_at: None,
            deleted_at: None,
        }
    }
}

/// Metadata of an attached file; the bytes live in a [`BlobStore`](crate::BlobStore).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// Key in the blob store.
    pub key: String,
    /// Original file name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// A reference from a message to a business entity (an order, a booking, a product).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityRef {
    /// Entity kind, e.g. `order`.
    pub kind: String,
    /// Its id in the business's system.
    pub id: String,
}

/// An earlier body of an edited message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revision {
    /// The text before the edit.
    pub body: String,
    /// When the edit replaced it.
    #[serde(with = "super::rfc3339")]
    pub replaced_at: OffsetDateTime,
}

/// Who a read cursor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Reader {
    /// The customer of the conversation.
    Customer,
    /// A staff member.
    Agent(AgentId),
}

/// How far one reader has read a conversation. Unread counts and read receipts derive
/// from these; there is no row per message per reader.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadCursor {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Reader.
    pub reader: Reader,
    /// Highest sequence read.
    pub seq: u64,
    /// When moved.
    #[serde(with = "super::rfc3339")]
    pub updated_at: OffsetDateTime,
}
