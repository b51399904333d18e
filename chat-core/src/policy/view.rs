//! What one actor may see of the desk's records, and which list filters it may use.
//!
//! Servers, sockets and templates serialize these views and nothing else, so a field
//! hidden from customers is hidden everywhere at once. The desk (staff, the bot, the
//! system) sees records whole; a customer sees its own records without the desk's
//! internal bookkeeping:
//!
//! | record | a customer does not see |
//! |--------|-------------------------|
//! | conversation | `tags`, `participants`, `unread_for_agent`, `agent_read_seq`, `metadata`, `priority`, `department`, `snooze`, `version` |
//! | contact | `metadata` (what the desk noted about the customer) |
//! | message | internal notes (no view at all) |
//! | event | staff-only events; inside the others, conversations, contacts and notes as above, and a transfer's department and reason |
//!
//! A customer may filter its list by mode, channel, pin and text only: filtering by a
//! field it cannot see (tag, department, priority, assignee, contact e-mail) would let it
//! probe that field one guess at a time, so such a filter is refused whatever its value.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use super::Actor;
use crate::error::{Error, Result};
use crate::ids::{AgentId, ContactId, ConversationId, TenantId};
use crate::mode::Mode;
use crate::model::{
    Agent, Channel, Contact, Conversation, ConversationChange, Event, EventPayload, Message,
    MessagePreview, Rating, ReadCursor, TransferTarget,
};

/// Who is looking: the one distinction the views make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// Staff, the bot and the system: everything, notes included.
    Desk,
    /// A customer: its own records, without the desk's internal fields.
    Customer,
}

impl Viewer {
    /// The viewer an actor is.
    pub fn of(actor: &Actor) -> Self {
        match actor {
            Actor::Customer { .. } => Viewer::Customer,
            Actor::Staff { .. } | Actor::Bot { .. } | Actor::System { .. } => Viewer::Desk,
        }
    }

    /// A conversation as this viewer may see it.
    pub fn conversation<'a>(self, conversation: &'a Conversation) -> ConversationView<'a> {
        ConversationView {
            conversation,
            viewer: self,
        }
    }

    /// A contact as this viewer may see it.
    pub fn contact<'a>(self, contact: &'a Contact) -> ContactView<'a> {
        ContactView {
            contact,
            viewer: self,
        }
    }

    /// A message as this viewer may see it; `None` for an internal note and a customer.
    pub fn message(self, message: &Message) -> Option<&Message> {
        (self == Viewer::Desk || !message.is_note()).then_some(message)
    }

    /// An event as this viewer may see it; `None` when the viewer may not see it at all
    /// (a staff-only event, or a note, for a customer). Whether the event's conversation
    /// is the viewer's is the engine's scope check, made before.
    pub fn event<'a>(self, event: &'a Event) -> Option<EventView<'a>> {
        if self == Viewer::Customer {
            let note = match &event.payload {
                EventPayload::MessageCreated { message }
                | EventPayload::MessageUpdated { message } => message.is_note(),
                _ => false,
            };
            if event.staff_only || note {
                return None;
            }
        }
        Some(EventView {
            event,
            viewer: self,
        })
    }

    /// `Ok` if this viewer may filter a conversation list by these fields; a customer
    /// may not use a filter on a field it cannot see ([`Error::Forbidden`], the same
    /// answer whatever the value, so nothing can be learned from it).
    pub fn check_filter(self, filter: &crate::ConversationFilter) -> Result<()> {
        if self == Viewer::Desk {
            return Ok(());
        }
        let staff_only = [
            (filter.tag.is_some(), "filter by tag"),
            (filter.department.is_some(), "filter by department"),
            (filter.priority.is_some(), "filter by priority"),
            (filter.assigned.is_some(), "filter by assignee"),
            (filter.contact_email.is_some(), "filter by contact e-mail"),
            (filter.snoozed.is_some(), "filter by snooze"),
        ];
        match staff_only.into_iter().find(|(used, _)| *used) {
            Some((_, what)) => Err(Error::Forbidden(what)),
            None => Ok(()),
        }
    }
}

/// A conversation as one viewer may see it, serialized straight from the conversation:
/// building a `serde_json::Value` and deleting keys from it cost more than the rest of a
/// posted message's answer.
#[derive(Debug, Clone, Copy)]
pub struct ConversationView<'a> {
    conversation: &'a Conversation,
    viewer: Viewer,
}

impl Serialize for ConversationView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.viewer {
            Viewer::Desk => self.conversation.serialize(serializer),
            Viewer::Customer => CustomerConversation::from(self.conversation).serialize(serializer),
        }
    }
}

/// The fields of a [`Conversation`] a customer sees. Listed rather than derived by
/// removal, so a field added to `Conversation` stays internal until it is added here (a
/// test compares the two).
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

/// A contact as one viewer may see it.
#[derive(Debug, Clone, Copy)]
pub struct ContactView<'a> {
    contact: &'a Contact,
    viewer: Viewer,
}

impl Serialize for ContactView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.viewer {
            Viewer::Desk => self.contact.serialize(serializer),
            Viewer::Customer => CustomerContact::from(self.contact).serialize(serializer),
        }
    }
}

/// The fields of a [`Contact`] a customer sees of itself: what it told the desk, not what
/// the desk noted about it. Listed, like [`CustomerConversation`].
#[derive(Serialize)]
struct CustomerContact<'a> {
    id: ContactId,
    tenant_id: TenantId,
    name: &'a Option<String>,
    email: &'a Option<String>,
    email_verified: bool,
    phone: &'a Option<String>,
    address: &'a Option<String>,
    external_id: &'a Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a Contact> for CustomerContact<'a> {
    fn from(c: &'a Contact) -> Self {
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            name: &c.name,
            email: &c.email,
            email_verified: c.email_verified,
            phone: &c.phone,
            address: &c.address,
            external_id: &c.external_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// An event as one viewer may see it, from [`Viewer::event`]. Serializes as the event
/// does, with the conversations and contacts inside it in their views.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    event: &'a Event,
    viewer: Viewer,
}

impl<'a> EventView<'a> {
    /// The event seen.
    pub fn event(&self) -> &'a Event {
        self.event
    }
}

impl Serialize for EventView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.viewer == Viewer::Desk {
            return self.event.serialize(serializer);
        }
        let e = self.event;
        CustomerEvent {
            seq: e.seq,
            tenant_id: e.tenant_id,
            conversation_id: e.conversation_id,
            staff_only: e.staff_only,
            at: e.at,
            payload: PayloadView::customer(&e.payload),
        }
        .serialize(serializer)
    }
}

/// [`Event`]'s fields, for the customer's view.
#[derive(Serialize)]
struct CustomerEvent<'a> {
    seq: u64,
    tenant_id: TenantId,
    conversation_id: Option<ConversationId>,
    staff_only: bool,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    payload: PayloadView<'a>,
}

/// [`EventPayload`] with its records in the customer's views. The match in
/// [`PayloadView::customer`] is exhaustive, so a new event kind must be given its view.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PayloadView<'a> {
    ConversationCreated {
        conversation: ConversationView<'a>,
    },
    ConversationUpdated {
        conversation: ConversationView<'a>,
        change: ChangeView<'a>,
    },
    ConversationDeleted {
        conversation_id: ConversationId,
    },
    MessageCreated {
        message: &'a Message,
    },
    MessageUpdated {
        message: &'a Message,
    },
    ReadUpdated {
        cursor: &'a ReadCursor,
    },
    AgentUpdated {
        agent: &'a Agent,
    },
    ContactMerged {
        contact: ContactView<'a>,
        merged: ContactId,
    },
    // Staff-only, so no customer receives these; listed because the match below is exhaustive.
    ContactErased {
        contact_id: ContactId,
        erased_by: Option<AgentId>,
        conversations: u64,
    },
    SettingsUpdated {
        settings: &'a crate::model::TenantSettings,
    },
    Mentioned {
        mention: &'a crate::model::Mention,
    },
    CannedResponseUpdated {
        canned_response: &'a crate::model::CannedResponse,
    },
    CannedResponseDeleted {
        canned_response_id: crate::ids::CannedResponseId,
        owner_id: Option<AgentId>,
    },
    WebhookPaused {
        webhook_id: crate::ids::WebhookId,
        url: &'a str,
        #[serde(with = "crate::model::rfc3339")]
        failing_since: time::OffsetDateTime,
    },
    CredentialsChanged,
}

impl<'a> PayloadView<'a> {
    fn customer(payload: &'a EventPayload) -> Self {
        let customer = Viewer::Customer;
        match payload {
            EventPayload::ConversationCreated { conversation } => {
                PayloadView::ConversationCreated {
                    conversation: customer.conversation(conversation),
                }
            }
            EventPayload::ConversationUpdated {
                conversation,
                change,
            } => PayloadView::ConversationUpdated {
                conversation: customer.conversation(conversation),
                change: ChangeView(change),
            },
            EventPayload::ConversationDeleted { conversation_id } => {
                PayloadView::ConversationDeleted {
                    conversation_id: *conversation_id,
                }
            }
            EventPayload::MessageCreated { message } => PayloadView::MessageCreated { message },
            EventPayload::MessageUpdated { message } => PayloadView::MessageUpdated { message },
            EventPayload::ReadUpdated { cursor } => PayloadView::ReadUpdated { cursor },
            EventPayload::AgentUpdated { agent } => PayloadView::AgentUpdated { agent },
            EventPayload::ContactMerged { contact, merged } => PayloadView::ContactMerged {
                contact: customer.contact(contact),
                merged: *merged,
            },
            EventPayload::ContactErased {
                contact_id,
                erased_by,
                conversations,
            } => PayloadView::ContactErased {
                contact_id: *contact_id,
                erased_by: *erased_by,
                conversations: *conversations,
            },
            EventPayload::SettingsUpdated { settings } => PayloadView::SettingsUpdated { settings },
            EventPayload::Mentioned { mention } => PayloadView::Mentioned { mention },
            EventPayload::CannedResponseUpdated { canned_response } => {
                PayloadView::CannedResponseUpdated { canned_response }
            }
            EventPayload::CannedResponseDeleted {
                canned_response_id,
                owner_id,
            } => PayloadView::CannedResponseDeleted {
                canned_response_id: *canned_response_id,
                owner_id: *owner_id,
            },
            EventPayload::WebhookPaused {
                webhook_id,
                url,
                failing_since,
            } => PayloadView::WebhookPaused {
                webhook_id: *webhook_id,
                url,
                failing_since: *failing_since,
            },
            EventPayload::CredentialsChanged => PayloadView::CredentialsChanged,
        }
    }
}

/// A conversation change as a customer sees it: a transfer to a department shows no
/// department (internal routing) and no reason (written for colleagues).
struct ChangeView<'a>(&'a ConversationChange);

impl Serialize for ChangeView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ConversationChange::Transferred { from, to, .. } => {
                #[derive(Serialize)]
                #[serde(tag = "change", rename = "transferred")]
                struct Transferred<'a> {
                    from: &'a Option<AgentId>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    to: Option<&'a TransferTarget>,
                }
                Transferred {
                    from,
                    to: matches!(to, TransferTarget::Agent(_)).then_some(to),
                }
                .serialize(serializer)
            }
            // Snoozing is the desk's own bookkeeping: the customer learns only that
            // something about the conversation changed.
            ConversationChange::Snoozed { .. } | ConversationChange::Unsnoozed { .. } => {
                ConversationChange::Details.serialize(serializer)
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConversationFilter;
    use crate::model::{Priority, Sender};

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
            metadata: Default::default(),
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
        c.snooze = Some(crate::model::Snooze {
            until: Some(at),
            by: Some(agent),
            at,
        });
        c.version = 7;
        c
    }

    #[test]
    fn views_are_the_conversation_minus_the_internal_fields_for_customers() {
        let c = full_conversation();
        let all = serde_json::to_value(&c).unwrap();
        assert_eq!(
            serde_json::to_value(Viewer::Desk.conversation(&c)).unwrap(),
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
            "snooze",
            "version",
        ] {
            assert!(map.remove(internal).is_some(), "{internal} is a field");
        }
        // A field added to `Conversation` shows up in `expected` and fails here until
        // it is either listed in `CustomerConversation` or named internal above.
        assert_eq!(
            serde_json::to_value(Viewer::Customer.conversation(&c)).unwrap(),
            expected
        );
    }

    fn contact(c: &Conversation) -> Contact {
        let at = c.created_at;
        Contact {
            id: c.contact_id,
            tenant_id: c.tenant_id,
            name: Some("Alice".into()),
            email: Some("alice@example.com".into()),
            email_verified: true,
            phone: Some("+1 555 0100".into()),
            address: Some("1 Main St".into()),
            external_id: Some("site-42".into()),
            metadata: [("desk.note".into(), "asked for a refund twice".into())].into(),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn customers_see_their_contact_without_what_the_desk_noted() {
        let c = full_conversation();
        let contact = contact(&c);
        let all = serde_json::to_value(&contact).unwrap();
        assert_eq!(
            serde_json::to_value(Viewer::Desk.contact(&contact)).unwrap(),
            all
        );
        let mut expected = all;
        assert!(
            expected
                .as_object_mut()
                .unwrap()
                .remove("metadata")
                .is_some()
        );
        // A field added to `Contact` fails here until it is listed in `CustomerContact`
        // or named internal above.
        assert_eq!(
            serde_json::to_value(Viewer::Customer.contact(&contact)).unwrap(),
            expected
        );
    }

    fn event(c: &Conversation, staff_only: bool, payload: EventPayload) -> Event {
        Event {
            seq: 9,
            tenant_id: c.tenant_id,
            conversation_id: Some(c.id),
            staff_only,
            at: c.created_at,
            payload,
        }
    }

    fn message(c: &Conversation, kind: crate::model::MessageKind) -> Message {
        crate::model::NewMessage {
            id: crate::ids::MessageId(uuid::Uuid::now_v7()),
            tenant_id: c.tenant_id,
            conversation_id: c.id,
            sender: Sender::Customer,
            kind,
            body: "hello".into(),
            attachments: Vec::new(),
            reply_to: None,
            client_message_id: None,
            entities: Vec::new(),
            metadata: Default::default(),
            created_at: c.created_at,
        }
        .into_message(5)
    }

    #[test]
    fn the_desk_sees_events_exactly_as_logged() {
        let c = full_conversation();
        let e = event(
            &c,
            false,
            EventPayload::ConversationUpdated {
                conversation: Box::new(c.clone()),
                change: ConversationChange::Details,
            },
        );
        assert_eq!(
            serde_json::to_value(Viewer::Desk.event(&e).unwrap()).unwrap(),
            serde_json::to_value(&e).unwrap()
        );
    }

    #[test]
    fn customers_see_events_with_their_records_trimmed() {
        let c = full_conversation();
        let e = event(
            &c,
            false,
            EventPayload::ConversationUpdated {
                conversation: Box::new(c.clone()),
                change: ConversationChange::Details,
            },
        );
        let seen = serde_json::to_value(Viewer::Customer.event(&e).unwrap()).unwrap();
        let mut expected = serde_json::to_value(&e).unwrap();
        expected["payload"]["conversation"] =
            serde_json::to_value(Viewer::Customer.conversation(&c)).unwrap();
        assert_eq!(seen, expected);
        assert!(seen["payload"]["conversation"].get("tags").is_none());

        let merged = event(
            &c,
            false,
            EventPayload::ContactMerged {
                contact: Box::new(contact(&c)),
                merged: ContactId(uuid::Uuid::now_v7()),
            },
        );
        let seen = serde_json::to_value(Viewer::Customer.event(&merged).unwrap()).unwrap();
        assert_eq!(seen["payload"]["type"], "contact_merged");
        assert!(seen["payload"]["contact"].get("metadata").is_none());
    }

    #[test]
    fn customers_see_no_staff_only_event_and_no_note() {
        let c = full_conversation();
        let agent = c.assigned_agent_id.unwrap();
        let agent_record = Agent {
            id: agent,
            tenant_id: c.tenant_id,
            name: "Bob".into(),
            email: "bob@example.com".into(),
            role: crate::model::Role::Agent,
            availability: crate::model::Availability::Online,
            capacity: None,
            departments: Vec::new(),
            active: true,
            created_at: c.created_at,
            updated_at: c.created_at,
        };
        let staff = event(
            &c,
            true,
            EventPayload::AgentUpdated {
                agent: Box::new(agent_record),
            },
        );
        assert!(Viewer::Customer.event(&staff).is_none());
        assert!(Viewer::Desk.event(&staff).is_some());
        // A note is hidden even if an event carrying it were not marked staff-only.
        let note = message(&c, crate::model::MessageKind::Note);
        let unmarked = event(
            &c,
            false,
            EventPayload::MessageCreated {
                message: Box::new(note.clone()),
            },
        );
        assert!(Viewer::Customer.event(&unmarked).is_none());
        assert!(Viewer::Customer.message(&note).is_none());
        assert!(Viewer::Desk.message(&note).is_some());
        let text = message(&c, crate::model::MessageKind::Text);
        assert!(Viewer::Customer.message(&text).is_some());
    }

    #[test]
    fn customers_see_a_transfer_without_its_department_and_reason() {
        let c = full_conversation();
        let to_billing = event(
            &c,
            false,
            EventPayload::ConversationUpdated {
                conversation: Box::new(c.clone()),
                change: ConversationChange::Transferred {
                    from: c.assigned_agent_id,
                    to: TransferTarget::Department("billing".into()),
                    reason: Some("angry, VIP".into()),
                },
            },
        );
        let seen = serde_json::to_value(Viewer::Customer.event(&to_billing).unwrap()).unwrap();
        let change = &seen["payload"]["change"];
        assert_eq!(change["change"], "transferred");
        assert_eq!(change["from"], serde_json::json!(c.assigned_agent_id));
        assert!(change.get("to").is_none() && change.get("reason").is_none());
        assert!(!seen.to_string().contains("billing") && !seen.to_string().contains("VIP"));

        let bob = AgentId(uuid::Uuid::now_v7());
        let to_bob = event(
            &c,
            false,
            EventPayload::ConversationUpdated {
                conversation: Box::new(c.clone()),
                change: ConversationChange::Transferred {
                    from: None,
                    to: TransferTarget::Agent(bob),
                    reason: Some("shift change".into()),
                },
            },
        );
        let seen = serde_json::to_value(Viewer::Customer.event(&to_bob).unwrap()).unwrap();
        assert_eq!(
            seen["payload"]["change"]["to"],
            serde_json::json!({"type": "agent", "id": bob})
        );
        assert!(!seen.to_string().contains("shift change"));
    }

    #[test]
    fn customers_may_not_filter_by_what_they_cannot_see() {
        let filters = [
            ConversationFilter {
                tag: Some("refund".into()),
                ..Default::default()
            },
            ConversationFilter {
                department: Some("billing".into()),
                ..Default::default()
            },
            ConversationFilter {
                priority: Some(Priority::Urgent),
                ..Default::default()
            },
            ConversationFilter {
                assigned: Some(crate::store::AssignedFilter::Unassigned),
                ..Default::default()
            },
            ConversationFilter {
                contact_email: Some("a@example.com".into()),
                ..Default::default()
            },
        ];
        for filter in &filters {
            assert!(matches!(
                Viewer::Customer.check_filter(filter),
                Err(Error::Forbidden(_))
            ));
            assert!(Viewer::Desk.check_filter(filter).is_ok());
        }
        let visible = ConversationFilter {
            modes: vec![Mode::Closed],
            channel: Some(Channel::Web),
            pinned: Some(true),
            text: Some("kettle".into()),
            ..Default::default()
        };
        assert!(Viewer::Customer.check_filter(&visible).is_ok());
    }
}
