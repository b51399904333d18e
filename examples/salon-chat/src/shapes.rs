//! The document's JSON: integer ids for salons, chats, messages, staff and customers,
//! mapped onto the engine's UUIDs, and the chat and message objects.

use std::collections::HashMap;

use chat_core::{
    Actor, AgentId, ContactId, Conversation, Engine, Message, MessageKind, Mode, Sender, TenantId,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use chat_core::policy::Viewer;

use crate::{CUSTOMER_NUMBER, FILES_PATH};

/// Message ids are `chat number × MESSAGE_STRIDE + the message's position in its chat`:
/// integers as the document's, unique in a salon, ordered within a chat, and mapped back
/// without any lookup table.
pub const MESSAGE_STRIDE: u64 = 1_000_000;

/// The integer id of a chat's message.
pub fn message_number(chat: u64, seq: u64) -> u64 {
    chat * MESSAGE_STRIDE + seq
}

/// The chat number and position a message id stands for.
pub fn split_message_number(id: u64) -> Option<(u64, u64)> {
    let (chat, seq) = (id / MESSAGE_STRIDE, id % MESSAGE_STRIDE);
    (chat > 0 && seq > 0).then_some((chat, seq))
}

/// RFC 3339 time, or `null`.
pub fn time(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// Who is who in one salon: staff numbered by when they joined (stable: staff are
/// disabled, never deleted) and customers by the number kept on their contact.
#[derive(Default)]
pub struct Directory {
    staff: HashMap<AgentId, (u64, String)>,
    customers: HashMap<ContactId, (u64, Option<String>)>,
}

impl Directory {
    /// Reads the salon's staff.
    pub async fn load(engine: &Engine, tenant: TenantId) -> chat_core::Result<Self> {
        let mut agents = engine.agents(&Actor::System { tenant }).await?;
        agents.sort_by_key(|a| (a.created_at, a.id));
        Ok(Self {
            staff: agents
                .into_iter()
                .enumerate()
                .map(|(i, a)| (a.id, (i as u64 + 1, a.name)))
                .collect(),
            customers: HashMap::new(),
        })
    }

    /// A staff member's number.
    pub fn staff_number(&self, agent: AgentId) -> Option<u64> {
        self.staff.get(&agent).map(|(n, _)| *n)
    }

    /// A customer's number and name (read once per directory).
    pub async fn customer(
        &mut self,
        engine: &Engine,
        tenant: TenantId,
        contact: ContactId,
    ) -> (Option<u64>, Option<String>) {
        if let Some((n, name)) = self.customers.get(&contact) {
            return (Some(*n), name.clone());
        }
        let Ok(c) = engine.contact(&Actor::System { tenant }, contact).await else {
            return (None, None);
        };
        let number = c.metadata.get(CUSTOMER_NUMBER).and_then(|n| n.parse().ok());
        if let Some(n) = number {
            self.customers.insert(contact, (n, c.name.clone()));
        }
        (number, c.name)
    }

    /// `(sender_type, sender_id)` of a message.
    pub async fn sender(
        &mut self,
        engine: &Engine,
        tenant: TenantId,
        contact: ContactId,
        sender: Sender,
    ) -> (&'static str, Value) {
        match sender {
            Sender::Agent(agent) => ("user", json!(self.staff_number(agent))),
            Sender::Customer => (
                "customer",
                json!(self.customer(engine, tenant, contact).await.0),
            ),
            Sender::Bot | Sender::System => ("system", Value::Null),
        }
    }
}

/// The document's `message_type` for an engine message kind.
pub fn message_type(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Image => "image",
        MessageKind::Audio => "voice",
        MessageKind::File => "file",
        MessageKind::Note => "note",
        MessageKind::Event => "system",
    }
}

/// The engine message kind for the document's `message_type`.
pub fn message_kind(name: &str) -> Option<MessageKind> {
    Some(match name {
        "text" => MessageKind::Text,
        "image" => MessageKind::Image,
        "voice" | "audio" => MessageKind::Audio,
        "file" => MessageKind::File,
        _ => return None,
    })
}

/// A message as the document's clients read it. Deleted messages stay in the history
/// (soft delete) without their content.
pub async fn message_json(
    engine: &Engine,
    dir: &mut Directory,
    chat: u64,
    contact: ContactId,
    m: &Message,
) -> Value {
    let (sender_type, sender_id) = dir.sender(engine, m.tenant_id, contact, m.sender).await;
    let deleted = m.deleted_at.is_some();
    let media_url = m
        .attachments
        .first()
        .map(|a| format!("{FILES_PATH}/{chat}/{}", a.key));
    let entity = m.entities.first();
    json!({
        "id": message_number(chat, m.seq),
        "chat_id": chat,
        "sender_type": sender_type,
        "sender_id": sender_id,
        "content": if deleted { Value::Null } else { json!(m.body) },
        "message_type": message_type(m.kind),
        "media_url": media_url,
        "reply_to_id": m.metadata.get(crate::REPLY_TO).and_then(|n| n.parse::<u64>().ok()),
        "entity_type": entity.map(|e| e.kind.clone()),
        "entity_id": entity.map(|e| e.id.clone()),
        "is_edited": m.edited_at.is_some(),
        "edited_at": time(m.edited_at),
        "is_deleted": deleted,
        "deleted_at": time(m.deleted_at),
        "created_at": time(Some(m.created_at)),
    })
}

/// A chat as the document's clients read it, for `viewer`. Staff invited into the chat
/// are read from the policy's view of it, so a customer sees itself and its assigned
/// stylist, never who else the desk brought in. The entity reference is the document's
/// shared field (a customer opens a chat about its own appointment), kept under two
/// reserved metadata keys, so it is read from the chat itself.
pub async fn chat_json(
    engine: &Engine,
    dir: &mut Directory,
    salon: u64,
    c: &Conversation,
    viewer: Viewer,
) -> Value {
    let viewer_is_staff = viewer == Viewer::Desk;
    let seen = serde_json::to_value(viewer.conversation(c)).unwrap_or(Value::Null);
    let invited: Vec<AgentId> =
        serde_json::from_value(seen["participants"].clone()).unwrap_or_default();
    let (customer_id, customer_name) = dir.customer(engine, c.tenant_id, c.contact_id).await;
    let mut participants = vec![json!({
        "participant_type": "customer",
        "participant_id": customer_id,
        "name": customer_name,
    })];
    for agent in c.assigned_agent_id.iter().chain(&invited) {
        if let Some((n, name)) = dir.staff.get(agent) {
            participants.push(json!({
                "participant_type": "user",
                "participant_id": n,
                "name": name,
            }));
        }
    }
    let entity = c
        .metadata
        .get(crate::ENTITY_TYPE)
        .map(|kind| (kind, c.metadata.get(crate::ENTITY_ID)));
    json!({
        "id": chat_starter::numbering::number_of(c),
        "salon_id": salon,
        "customer_id": customer_id,
        "title": c.title,
        "status": status(c.mode),
        "is_active": !matches!(c.mode, Mode::Closed | Mode::Archived),
        "is_archived": c.mode == Mode::Archived,
        "entity_type": entity.map(|(k, _)| k),
        "entity_id": entity.and_then(|(_, id)| id),
        "participants": participants,
        "last_message": c.last_message.as_ref().map(|m| m.body.clone()),
        "last_message_at": time(c.last_message_at),
        "unread_count": if viewer_is_staff { c.unread_for_agent } else { c.unread_for_customer },
        "created_at": time(Some(c.created_at)),
        "updated_at": time(Some(c.updated_at)),
    })
}

/// `active`, `closed` or `archived`.
pub fn status(mode: Mode) -> &'static str {
    match mode {
        Mode::Closed => "closed",
        Mode::Archived => "archived",
        _ => "active",
    }
}
