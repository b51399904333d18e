use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    Agent, CannedResponse, Contact, Conversation, Mention, Message, ReadCursor, Tenant,
    TenantSettings, Webhook,
};
use crate::ids::{AgentId, CannedResponseId, ContactId, ConversationId, TenantId, WebhookId};
use crate::mode::Mode;

/// One entry of the tenant's event log. Every state change appends one in the same atomic
/// store operation; the realtime stream is this log, so a client resuming from its last
/// `seq` misses nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// An event before the store numbers it: everything but `seq`.
///
/// Its constructors are the one place that decides what each kind of event says, whom it
/// concerns, who may see it and when it happened, so every store logs the same events for
/// the same write; a store only gives each one the tenant's next `seq` ([`into_event`])
/// and persists it.
///
/// ```
/// use chat_core::{NewEvent, Agent, AgentId, Availability, Role, TenantId};
/// # let at = time::OffsetDateTime::UNIX_EPOCH;
/// let agent = Agent {
///     id: AgentId(uuid::Uuid::nil()),
///     tenant_id: TenantId(uuid::Uuid::nil()),
///     name: "Ann".into(),
///     email: "ann@desk.example".into(),
///     role: Role::Agent,
///     availability: Availability::Online,
///     capacity: None,
///     departments: Vec::new(),
///     active: true,
///     created_at: at,
///     updated_at: at,
/// };
/// let event = NewEvent::agent_updated(&agent).into_event(7);
/// assert_eq!((event.seq, event.staff_only, event.payload.kind()), (7, true, "agent_updated"));
/// ```
///
/// [`into_event`]: NewEvent::into_event
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The conversation concerned, if any.
    pub conversation_id: Option<ConversationId>,
    /// Only staff may see it.
    pub staff_only: bool,
    /// When.
    pub at: OffsetDateTime,
    /// What happened.
    pub payload: EventPayload,
}

impl NewEvent {
    /// A conversation was opened, as it was before its first messages.
    pub fn conversation_created(conversation: &Conversation) -> Self {
        Self {
            tenant_id: conversation.tenant_id,
            conversation_id: Some(conversation.id),
            staff_only: false,
            at: conversation.created_at,
            payload: EventPayload::ConversationCreated {
                conversation: Box::new(conversation.clone()),
            },
        }
    }

    /// A conversation changed; `conversation` is its stored state after the change.
    pub fn conversation_updated(conversation: &Conversation, change: ConversationChange) -> Self {
        Self {
            tenant_id: conversation.tenant_id,
            conversation_id: Some(conversation.id),
            staff_only: false,
            at: conversation.updated_at,
            payload: EventPayload::ConversationUpdated {
                conversation: Box::new(conversation.clone()),
                change,
            },
        }
    }

    /// A conversation was deleted for good.
    pub fn conversation_deleted(
        tenant: TenantId,
        conversation: ConversationId,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant_id: tenant,
            conversation_id: Some(conversation),
            staff_only: false,
            at,
            payload: EventPayload::ConversationDeleted {
                conversation_id: conversation,
            },
        }
    }

    /// A message was stored. Notes are staff-only: customers never learn of them.
    pub fn message_created(message: &Message) -> Self {
        Self {
            tenant_id: message.tenant_id,
            conversation_id: Some(message.conversation_id),
            staff_only: message.is_note(),
            at: message.created_at,
            payload: EventPayload::MessageCreated {
                message: Box::new(message.clone()),
            },
        }
    }

    /// A message was edited or deleted; `message` is its stored state after that. It
    /// happened at the deletion, else the last edit.
    pub fn message_updated(message: &Message) -> Self {
        Self {
            tenant_id: message.tenant_id,
            conversation_id: Some(message.conversation_id),
            staff_only: message.is_note(),
            at: message
                .deleted_at
                .or(message.edited_at)
                .unwrap_or(message.created_at),
            payload: EventPayload::MessageUpdated {
                message: Box::new(message.clone()),
            },
        }
    }

    /// A read cursor moved; `cursor` is as stored.
    pub fn read_updated(cursor: ReadCursor) -> Self {
        Self {
            tenant_id: cursor.tenant_id,
            conversation_id: Some(cursor.conversation_id),
            staff_only: false,
            at: cursor.updated_at,
            payload: EventPayload::ReadUpdated { cursor },
        }
    }

    /// A staff member was created or changed. Staff-only: customers see no staff roster.
    pub fn agent_updated(agent: &Agent) -> Self {
        Self {
            tenant_id: agent.tenant_id,
            conversation_id: None,
            staff_only: true,
            at: agent.updated_at,
            payload: EventPayload::AgentUpdated {
                agent: Box::new(agent.clone()),
            },
        }
    }

    /// Staff merged contact `merged` into `contact` (as stored after the merge).
    /// Staff-only: it records who the desk decided a customer is.
    pub fn contact_merged(contact: &Contact, merged: ContactId, at: OffsetDateTime) -> Self {
        Self {
            tenant_id: contact.tenant_id,
            conversation_id: None,
            staff_only: true,
            at,
            payload: EventPayload::ContactMerged {
                contact: Box::new(contact.clone()),
                merged,
            },
        }
    }

    /// A contact's personal data was erased (see [`Store::erase_contact`](crate::Store::erase_contact)):
    /// the audit record, carrying the contact's id and who erased it, nothing of the data.
    /// Staff-only.
    pub fn contact_erased(
        tenant: TenantId,
        contact: ContactId,
        erased_by: Option<AgentId>,
        conversations: u64,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            tenant_id: tenant,
            conversation_id: None,
            staff_only: true,
            at,
            payload: EventPayload::ContactErased {
                contact_id: contact,
                erased_by,
                conversations,
            },
        }
    }

    /// An admin changed the tenant's settings; `tenant` is as stored after the change.
    /// Staff-only: hours, timers and capacity are the desk's business.
    pub fn settings_updated(tenant: &Tenant, at: OffsetDateTime) -> Self {
        Self {
            tenant_id: tenant.id,
            conversation_id: None,
            staff_only: true,
            at,
            payload: EventPayload::SettingsUpdated {
                settings: Box::new(tenant.settings.clone()),
            },
        }
    }

    /// A canned response was created or changed; `response` is as stored. Staff-only, and a
    /// personal one only its owner receives (see
    /// [`Engine::may_see_event`](crate::Engine::may_see_event)), so consoles update their
    /// pickers live without learning a colleague's own answers.
    pub fn canned_response_updated(response: &CannedResponse) -> Self {
        Self {
            tenant_id: response.tenant_id,
            conversation_id: None,
            staff_only: true,
            at: response.updated_at,
            payload: EventPayload::CannedResponseUpdated {
                canned_response: Box::new(response.clone()),
            },
        }
    }

    /// A canned response was deleted at `at`; `response` is as it was. Seen as
    /// [`NewEvent::canned_response_updated`] is.
    pub fn canned_response_deleted(response: &CannedResponse, at: OffsetDateTime) -> Self {
        Self {
            tenant_id: response.tenant_id,
            conversation_id: None,
            staff_only: true,
            at,
            payload: EventPayload::CannedResponseDeleted {
                canned_response_id: response.id,
                owner_id: response.owner_id,
            },
        }
    }

    /// An agent was mentioned in a note. Staff-only, and only the mentioned agent receives
    /// it (see [`Engine::may_see_event`](crate::Engine::may_see_event)).
    pub fn mentioned(mention: &Mention) -> Self {
        Self {
            tenant_id: mention.tenant_id,
            // Not tied to the conversation's visibility: the mention is addressed to the
            // agent whether or not the conversation is in its list.
            conversation_id: None,
            staff_only: true,
            at: mention.at,
            payload: EventPayload::Mentioned {
                mention: mention.clone(),
            },
        }
    }

    /// A webhook kept failing and was paused; `webhook` is as it was before the pause.
    /// Staff-only, and only admins receive it (they alone manage webhooks).
    pub fn webhook_paused(webhook: &Webhook, at: OffsetDateTime) -> Self {
        Self {
            tenant_id: webhook.tenant_id,
            conversation_id: None,
            staff_only: true,
            at,
            payload: EventPayload::WebhookPaused {
                webhook_id: webhook.id,
                url: webhook.url.clone(),
                failing_since: webhook.failing_since.unwrap_or(at),
            },
        }
    }

    /// A credential of the tenant stopped holding or changed (a password set, tokens or a
    /// bot token revoked, an account disabled, contacts merged): every server following
    /// the log re-checks the credentials of its open sockets before it hands out anything
    /// logged after it. Nobody but the system receives it; it carries nothing, not even
    /// whose credential, since a socket re-checks only its own.
    pub fn credentials_changed(tenant: TenantId, at: OffsetDateTime) -> Self {
        Self {
            tenant_id: tenant,
            conversation_id: None,
            staff_only: true,
            at,
            payload: EventPayload::CredentialsChanged,
        }
    }

    /// The logged event once the store has chosen its sequence number.
    pub fn into_event(self, seq: u64) -> Event {
        Event {
            seq,
            tenant_id: self.tenant_id,
            conversation_id: self.conversation_id,
            staff_only: self.staff_only,
            at: self.at,
            payload: self.payload,
        }
    }
}

/// What happened, with the state after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A contact's personal data, conversations and files were erased. The audit record:
    /// who, when (the event's `at`) and which contact, without any of the data. Staff-only.
    ContactErased {
        /// The erased contact (it stays, blank, so its id keeps answering).
        contact_id: ContactId,
        /// The admin who erased it; `None` when the system did.
        erased_by: Option<AgentId>,
        /// How many conversations were deleted with it.
        conversations: u64,
    },
    /// An agent was mentioned in an internal note; only that agent receives it.
    Mentioned {
        /// Who, where and by whom.
        mention: Mention,
    },
    /// An admin changed the tenant's settings. Staff-only.
    SettingsUpdated {
        /// Every setting after the change.
        settings: Box<TenantSettings>,
    },
    /// A canned response was created or changed. Staff-only; a personal one only its
    /// owner receives.
    CannedResponseUpdated {
        /// Its state after the change.
        canned_response: Box<CannedResponse>,
    },
    /// A canned response was deleted. Staff-only; a personal one only its owner receives.
    CannedResponseDeleted {
        /// Its id.
        canned_response_id: CannedResponseId,
        /// Its owner; `None` for a shared one.
        owner_id: Option<AgentId>,
    },
    /// A webhook kept failing and was paused until an admin resumes it. Admins only.
    WebhookPaused {
        /// The webhook.
        webhook_id: WebhookId,
        /// Its URL.
        url: String,
        /// Since when every attempt had failed.
        #[serde(with = "super::rfc3339")]
        failing_since: OffsetDateTime,
    },
    /// A credential changed (see [`NewEvent::credentials_changed`]). The system alone
    /// receives it: clients and webhooks never do.
    CredentialsChanged,
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
            EventPayload::ContactErased { .. } => "contact_erased",
            EventPayload::SettingsUpdated { .. } => "settings_updated",
            EventPayload::Mentioned { .. } => "mentioned",
            EventPayload::CannedResponseUpdated { .. } => "canned_response_updated",
            EventPayload::CannedResponseDeleted { .. } => "canned_response_deleted",
            EventPayload::WebhookPaused { .. } => "webhook_paused",
            EventPayload::CredentialsChanged => "credentials_changed",
        }
    }
}

/// What changed in a [`EventPayload::ConversationUpdated`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
        /// Where it went. A customer sees only a transfer to an agent (a department is
        /// internal routing).
        #[cfg_attr(feature = "openapi", schema(required = false))]
        to: TransferTarget,
        /// Why (staff only: written for colleagues).
        #[cfg_attr(feature = "openapi", schema(required = false))]
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
    /// Snoozed by staff: out of the active list until `until` (or, when `null`, the
    /// customer's next message).
    Snoozed {
        /// When it comes back by itself.
        #[serde(with = "super::rfc3339::option")]
        until: Option<OffsetDateTime>,
    },
    /// Back from a snooze.
    Unsnoozed {
        /// What brought it back.
        reason: WakeReason,
    },
    /// Moved to another contact by a staff merge.
    Contact {
        /// The merged contact.
        from: ContactId,
        /// The contact it belongs to now.
        to: ContactId,
    },
}

/// What ended a snooze.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WakeReason {
    /// Its time came.
    Time,
    /// The customer wrote.
    CustomerMessage,
    /// Staff woke it by hand.
    Staff,
}

/// Where a transfer sends a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum TransferTarget {
    /// A specific agent.
    Agent(AgentId),
    /// A department's queue.
    Department(String),
}
