use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Channel, Message, MessageKind, Priority, Sender};
use crate::ids::{AgentId, ContactId, ConversationId, TenantId};
use crate::mode::Mode;

/// Longest last-message preview kept on a conversation, in characters.
pub const PREVIEW_CHARS: usize = 140;

/// A support conversation between a contact and the desk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The customer.
    pub contact_id: ContactId,
    /// Where the customer wrote from.
    pub channel: Channel,
    /// Optional subject or title.
    pub title: Option<String>,
    /// Who answers now.
    pub mode: Mode,
    /// Queue priority.
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub priority: Priority,
    /// Department it is routed to; `None` is the general queue.
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub department: Option<String>,
    /// Free labels.
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub tags: Vec<String>,
    /// Pinned to the top of an inbox.
    pub pinned: bool,
    /// The agent that owns it.
    pub assigned_agent_id: Option<AgentId>,
    /// Other staff invited in (they see it too).
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub participants: Vec<AgentId>,
    /// The customer's rating, once given.
    pub rating: Option<Rating>,
    /// Customer-visible messages (notes and events excluded).
    pub message_count: u64,
    /// Customer messages the staff side has not read.
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub unread_for_agent: u64,
    /// Staff and bot messages the customer has not read.
    pub unread_for_customer: u64,
    /// Last customer-visible message, for inbox lists.
    pub last_message: Option<MessagePreview>,
    /// Sequence of the newest message of any kind.
    pub last_seq: u64,
    /// Highest sequence the staff side has read.
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub agent_read_seq: u64,
    /// Highest sequence the customer has read.
    pub customer_read_seq: u64,
    /// Free metadata (entity references, channel thread ids, ...).
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub metadata: BTreeMap<String, String>,
    /// Created.
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change of any kind.
    #[serde(with = "super::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When it entered the queue (set while queued).
    #[serde(with = "super::rfc3339::option")]
    pub queued_at: Option<OffsetDateTime>,
    /// When the current agent was assigned.
    #[serde(with = "super::rfc3339::option")]
    pub assigned_at: Option<OffsetDateTime>,
    /// First agent reply.
    #[serde(with = "super::rfc3339::option")]
    pub first_response_at: Option<OffsetDateTime>,
    /// Newest customer-visible message.
    #[serde(with = "super::rfc3339::option")]
    pub last_message_at: Option<OffsetDateTime>,
    /// Newest customer message.
    #[serde(with = "super::rfc3339::option")]
    pub last_customer_message_at: Option<OffsetDateTime>,
    /// Newest agent message.
    #[serde(with = "super::rfc3339::option")]
    pub last_agent_message_at: Option<OffsetDateTime>,
    /// When closed (cleared on reopen).
    #[serde(with = "super::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Set aside by staff until a time or the customer's next message. Internal: customers
    /// never see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snooze: Option<Snooze>,
    /// Optimistic-concurrency version; every stored change adds one.
    /// Staff only: the customer's view leaves it out.
    #[cfg_attr(feature = "openapi", schema(required = false))]
    pub version: u64,
}

/// Why a conversation is out of the active list for now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snooze {
    /// When it comes back by itself; `None`: only when the customer writes. The customer's
    /// next message ends every snooze.
    #[serde(with = "super::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// Who snoozed it.
    pub by: Option<AgentId>,
    /// When it was snoozed.
    #[serde(with = "super::rfc3339")]
    pub at: OffsetDateTime,
}

impl Snooze {
    /// Whether the snooze is over at `now` for `conversation`: its time has come, or the
    /// customer wrote since it began.
    pub fn is_over(&self, conversation: &Conversation, now: OffsetDateTime) -> bool {
        self.until.is_some_and(|until| until <= now)
            || conversation
                .last_customer_message_at
                .is_some_and(|m| m > self.at)
    }
}

/// The customer's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rating {
    /// 1 to 5.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 5))]
    pub score: u8,
    /// Free text.
    pub feedback: Option<String>,
    /// When given.
    #[serde(with = "super::rfc3339")]
    pub rated_at: OffsetDateTime,
}

/// A short view of the newest message for inbox lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessagePreview {
    /// Who sent it.
    pub sender: Sender,
    /// The first [`PREVIEW_CHARS`] characters of its body.
    pub body: String,
    /// When.
    #[serde(with = "super::rfc3339")]
    pub at: OffsetDateTime,
    /// For a desk notice ("Assigned to Dana"), the notice's metadata (`notice` and its
    /// `notice.*` parameters, see [`crate::model::Notice::metadata`]), so a client writes the
    /// preview in its reader's language as it does the notice itself; empty otherwise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Conversation {
    /// A conversation that has just been opened: web channel, medium priority, nothing
    /// posted, read or assigned yet, version 1, queued since `at` if `mode` is queued.
    /// Callers set what they know beyond that (channel, title, department ...).
    pub fn new(
        id: ConversationId,
        tenant: TenantId,
        contact: ContactId,
        mode: Mode,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            tenant_id: tenant,
            contact_id: contact,
            channel: Channel::default(),
            title: None,
            mode,
            priority: Priority::default(),
            department: None,
            tags: Vec::new(),
            pinned: false,
            assigned_agent_id: None,
            participants: Vec::new(),
            rating: None,
            message_count: 0,
            unread_for_agent: 0,
            unread_for_customer: 0,
            last_message: None,
            last_seq: 0,
            agent_read_seq: 0,
            customer_read_seq: 0,
            metadata: BTreeMap::new(),
            created_at: at,
            updated_at: at,
            queued_at: (mode == Mode::Queued).then_some(at),
            assigned_at: None,
            first_response_at: None,
            last_message_at: None,
            last_customer_message_at: None,
            last_agent_message_at: None,
            closed_at: None,
            snooze: None,
            version: 1,
        }
    }

    /// Applies the effect of a newly stored message on the counters, preview and times.
    ///
    /// Every store calls this inside the transaction that stores the message, so the
    /// counting rule exists once.
    pub fn record_message(&mut self, message: &Message) {
        self.last_seq = self.last_seq.max(message.seq);
        self.updated_at = message.created_at;
        self.version += 1;
        if message.kind == MessageKind::Note {
            return;
        }
        match message.sender {
            Sender::Customer => {
                self.unread_for_agent += 1;
                self.last_customer_message_at = Some(message.created_at);
            }
            Sender::Agent(_) | Sender::Bot => {
                self.unread_for_customer += 1;
                if let Sender::Agent(_) = message.sender {
                    self.first_response_at.get_or_insert(message.created_at);
                    self.last_agent_message_at = Some(message.created_at);
                }
            }
            Sender::System => {}
        }
        if message.kind != MessageKind::Event {
            self.message_count += 1;
        }
        self.last_message = Some(MessagePreview {
            sender: message.sender,
            body: preview_of(&message.body).to_owned(),
            at: message.created_at,
            metadata: notice_metadata(message),
        });
        self.last_message_at = Some(message.created_at);
    }

    /// Whether `agent` owns or participates in this conversation.
    pub fn involves(&self, agent: AgentId) -> bool {
        self.assigned_agent_id == Some(agent) || self.participants.contains(&agent)
    }
}

/// The first [`PREVIEW_CHARS`] characters of `body`, as a slice: one copy of the bytes
/// where collecting the characters pushed them one at a time (about 4,500 instructions of
/// every posted message, `post_cost` in chat-server's README).
fn preview_of(body: &str) -> &str {
    match body.char_indices().nth(PREVIEW_CHARS) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

/// The notice keys of a system message's metadata (`notice`, `notice.*`): what a preview
/// keeps of it. A customer's or agent's own metadata stays out of inbox lists.
fn notice_metadata(message: &Message) -> BTreeMap<String, String> {
    if message.sender != Sender::System {
        return BTreeMap::new();
    }
    message
        .metadata
        .iter()
        .filter(|(k, _)| {
            k.as_str() == super::NOTICE_KEY
                || k.strip_prefix(super::NOTICE_KEY)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{PREVIEW_CHARS, preview_of};

    #[test]
    fn a_preview_keeps_the_first_characters_not_bytes() {
        assert_eq!(preview_of("short"), "short");
        let long: String = "é".repeat(PREVIEW_CHARS + 10);
        let preview = preview_of(&long);
        assert_eq!(preview.chars().count(), PREVIEW_CHARS);
        assert_eq!(preview, "é".repeat(PREVIEW_CHARS));
        let exact = "a".repeat(PREVIEW_CHARS);
        assert_eq!(preview_of(&exact), exact);
    }
}
