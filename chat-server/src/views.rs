//! The JSON views: what one caller may see of a conversation or an event, serialized
//! straight from the engine's types. Handlers, sockets and templates serialize these and
//! nothing else, so a field hidden from customers is hidden everywhere at once.

use chat_core::{
    AgentId, Channel, ContactId, Conversation, ConversationId, MessagePreview, Mode, Rating,
    TenantId,
};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// Customers see their conversation without the desk's internal bookkeeping.
pub fn conversation_view(c: &Conversation, staff: bool) -> ConversationView<'_> {
    ConversationView {
        conversation: c,
        staff,
    }
}

/// A conversation as one caller may see it, serialized straight from the conversation:
/// building a `serde_json::Value` and deleting keys from it cost more than the rest of
/// a posted message's answer.
#[derive(Debug, Clone, Copy)]
pub struct ConversationView<'a> {
    conversation: &'a Conversation,
    /// Staff see every field; customers all but the desk's internal bookkeeping.
    staff: bool,
}

impl Serialize for ConversationView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.staff {
            self.conversation.serialize(serializer)
        } else {
            CustomerConversation::from(self.conversation).serialize(serializer)
        }
    }
}

/// The fields of a [`Conversation`] a customer sees: all but `tags`, `participants`,
/// `unread_for_agent`, `agent_read_seq`, `metadata`, `priority`, `department` and
/// `version`. Listed rather than derived by removal, so a field added to `Conversation`
/// stays internal until it is added here (a test compares the two).
#[derive(Serialize)]
struct CustomerConversation<'a> {
    id: ConversationId,
    tenant_id: TenantId,
    contact_id: ContactId,
    channel: &'a Channel,
    title: &'a Option<String>,
    mode: Mode,
    pinned: bool,
    assigned_agent_id: Option<AgentId>,
    rating: &'a Option<Rating>,
    message_count: u64,
    unread_for_customer: u64,
    last_message: &'a Option<MessagePreview>,
    last_seq: u64,
    customer_read_seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    queued_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    assigned_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    first_response_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_message_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_customer_message_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_agent_message_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    closed_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a Conversation> for CustomerConversation<'a> {
    fn from(c: &'a Conversation) -> Self {
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            contact_id: c.contact_id,
            channel: &c.channel,
            title: &c.title,
            mode: c.mode,
            pinned: c.pinned,
            assigned_agent_id: c.assigned_agent_id,
            rating: &c.rating,
            message_count: c.message_count,
            unread_for_customer: c.unread_for_customer,
            last_message: &c.last_message,
            last_seq: c.last_seq,
            customer_read_seq: c.customer_read_seq,
            created_at: c.created_at,
            updated_at: c.updated_at,
            queued_at: c.queued_at,
            assigned_at: c.assigned_at,
            first_response_at: c.first_response_at,
            last_message_at: c.last_message_at,
            last_customer_message_at: c.last_customer_message_at,
            last_agent_message_at: c.last_agent_message_at,
            closed_at: c.closed_at,
        }
    }
}

/// An event as this caller may see it (conversation snapshots trimmed for customers).
pub fn event_view(event: &chat_core::Event, staff: bool) -> Value {
    let mut value = serde_json::to_value(event).expect("events serialize");
    if !staff
        && let Some(Value::Object(payload)) = value.get_mut("payload")
        && let Some(conversation) = payload.get_mut("conversation")
        && let Ok(c) = serde_json::from_value::<Conversation>(conversation.clone())
    {
        *conversation =
            serde_json::to_value(conversation_view(&c, false)).expect("conversations serialize");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::{Priority, Sender};

    /// A conversation with every optional field set, so no field hides behind `null`.
    fn full_conversation() -> Conversation {
        let at = OffsetDateTime::now_utc();
        let agent = AgentId(uuid::Uuid::now_v7());
        let mut c = Conversation::new(
            ConversationId(uuid::Uuid::now_v7()),
            TenantId(uuid::Uuid::now_v7()),
            ContactId(uuid::Uuid::now_v7()),
            Mode::Agent,
            at,
        );
        c.title = Some("Kettle".into());
        c.priority = Priority::High;
        c.department = Some("billing".into());
        c.tags = vec!["vip".into()];
        c.pinned = true;
        c.assigned_agent_id = Some(agent);
        c.participants = vec![AgentId(uuid::Uuid::now_v7())];
        c.rating = Some(Rating {
            score: 5,
            feedback: Some("quick".into()),
            rated_at: at,
        });
        c.message_count = 3;
        c.unread_for_agent = 1;
        c.unread_for_customer = 2;
        c.last_message = Some(MessagePreview {
            sender: Sender::Agent(agent),
            body: "Here it is".into(),
            at,
        });
        c.last_seq = 4;
        c.agent_read_seq = 3;
        c.customer_read_seq = 2;
        c.metadata.insert("order".into(), "4521-88".into());
        c.queued_at = Some(at);
        c.assigned_at = Some(at);
        c.first_response_at = Some(at);
        c.last_message_at = Some(at);
        c.last_customer_message_at = Some(at);
        c.last_agent_message_at = Some(at);
        c.closed_at = Some(at);
        c.version = 7;
        c
    }

    #[test]
    fn views_are_the_conversation_minus_the_internal_fields_for_customers() {
        let c = full_conversation();
        let all = serde_json::to_value(&c).unwrap();
        assert_eq!(
            serde_json::to_value(conversation_view(&c, true)).unwrap(),
            all
        );

        let mut expected = all;
        let map = expected.as_object_mut().unwrap();
        for internal in [
            "tags",
            "participants",
            "unread_for_agent",
            "agent_read_seq",
            "metadata",
            "priority",
            "department",
            "version",
        ] {
            assert!(map.remove(internal).is_some(), "{internal} is a field");
        }
        // A field added to `Conversation` shows up in `expected` and fails here until
        // it is either listed in `CustomerConversation` or named internal above.
        assert_eq!(
            serde_json::to_value(conversation_view(&c, false)).unwrap(),
            expected
        );
    }
}
