use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Agent, Contact, Conversation, Message, ReadCursor};
use crate::ids::{AgentId, ContactId, ConversationId, TenantId};
use crate::mode::Mode;

/// One entry of the tenant's event log. Every state change appends one in the same atomic
/// store operation; the realtime stream is this log, so a client resuming from its last
/// `seq` misses nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic per tenant, from 1, gap-free.
    pub seq: u64,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The conversation concerned, if any.
    pub conversation_id: Option<ConversationId>,
    /// Only staff may see it (internal notes, staff changes).
    pub staff_only: bool,
    /// When.
    #[serde(with = "super::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub payload: EventPayload,
}

/// What happened, with the state after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventPayload {
    /// A conversation was opened.
    ConversationCreated {
        /// Its state.
        conversation: Box<Conversation>,
    },
    /// A conversation changed.
    ConversationUpdated {
        /// Its new state.
        conversation: Box<Conversation>,
        /// What changed.
        change: ConversationChange,
    },
    /// A conversation was deleted for good.
    ConversationDeleted {
        /// Its id.
        conversation_id: ConversationId,
    },
    /// A message, note or system event was posted.
    MessageCreated {
        /// The message.
        message: Box<Message>,
    },
    /// A message was edited or deleted.
    MessageUpdated {
        /// Its new state.
        message: Box<Message>,
    },
    /// A read cursor moved.
    ReadUpdated {
        /// The cursor.
        cursor: ReadCursor,
    },
    /// A staff member was created or changed (availability included).
    AgentUpdated {
        /// Its new state.
        agent: Box<Agent>,
    },
    /// Staff merged one contact into another: the audit record of who the desk decided
    /// two contacts are. Staff-only.
    ContactMerged {
        /// The contact that remains, after the merge.
        contact: Box<Contact>,
        /// The contact that was merged into it and deleted.
        merged: ContactId,
    },
}

impl EventPayload {
    /// The snake_case name of the event, as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            EventPayload::ConversationCreated { .. } => "conversation_created",
            EventPayload::ConversationUpdated { .. } => "conversation_updated",
            EventPayload::ConversationDeleted { .. } => "conversation_deleted",
            EventPayload::MessageCreated { .. } => "message_created",
            EventPayload::MessageUpdated { .. } => "message_updated",
            EventPayload::ReadUpdated { .. } => "read_updated",
            EventPayload::AgentUpdated { .. } => "agent_updated",
            EventPayload::ContactMerged { .. } => "contact_merged",
        }
    }
}

/// What changed in a [`EventPayload::ConversationUpdated`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ConversationChange {
    /// Mode moved along the state machine.
    Mode {
        /// Before.
        from: Mode,
        /// After.
        to: Mode,
    },
    /// Assigned, claimed or unassigned.
    Assigned {
        /// Previous owner.
        from: Option<AgentId>,
        /// New owner.
        to: Option<AgentId>,
    },
    /// Transferred to another agent or department.
    Transferred {
        /// Previous owner.
        from: Option<AgentId>,
        /// Where it went.
        to: TransferTarget,
        /// Why.
        reason: Option<String>,
    },
    /// Priority, department, tags, pin, title or participants changed.
    Details,
    /// The customer rated it.
    Rated,
    /// Closed.
    Closed,
    /// Reopened after close.
    Reopened,
    /// Archived.
    Archived,
    /// Moved to another contact by a staff merge.
    Contact {
        /// The merged contact.
        from: ContactId,
        /// The contact it belongs to now.
        to: ContactId,
    },
}

/// Where a transfer sends a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum TransferTarget {
    /// A specific agent.
    Agent(AgentId),
    /// A department's queue.
    Department(String),
}
