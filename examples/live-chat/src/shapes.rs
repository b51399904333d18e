//! The document's JSON shapes, built from the engine's records.
//!
//! Vocabulary: `pending` is our `queued`, `active` is `agent` (and `paused`), `closed`
//! and `archived` are the same words; the department `general` is the engine's general
//! queue (no department), so agents without departments see those chats.

use std::collections::HashMap;

use chat_core::{
    Agent, AgentId, Conversation, Message, MessageKind, Mode, Priority, Rating, Sender,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The document's status word for a mode.
pub fn status(mode: Mode) -> &'static str {
    match mode {
        Mode::Bot | Mode::Queued => "pending",
        Mode::Agent | Mode::Paused => "active",
        Mode::Closed => "closed",
        Mode::Archived => "archived",
    }
}

/// The modes a status filter means.
pub fn modes(status: &str) -> Option<Vec<Mode>> {
    Some(match status {
        "pending" => vec![Mode::Bot, Mode::Queued],
        "active" => vec![Mode::Agent, Mode::Paused],
        "closed" => vec![Mode::Closed],
        "archived" => vec![Mode::Archived],
        _ => return None,
    })
}

/// The document's priorities.
pub fn priority(text: &str) -> Option<Priority> {
    Some(match text {
        "low" => Priority::Low,
        "medium" => Priority::Medium,
        "high" => Priority::High,
        "urgent" => Priority::Urgent,
        _ => return None,
    })
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

/// The document's departments.
pub const DEPARTMENTS: [&str; 5] = ["general", "sales", "support", "billing", "technical"];

/// The engine's department for a document department (`general` is the general queue).
pub fn department(text: &str) -> Option<Option<String>> {
    match text {
        "general" => Some(None),
        d if DEPARTMENTS.contains(&d) => Some(Some(d.to_owned())),
        _ => None,
    }
}

fn department_name(c: &Conversation) -> &str {
    c.department.as_deref().unwrap_or("general")
}

/// `2024-12-04T12:00:00.000Z`, as JavaScript's `Date#toISOString` writes it.
pub fn iso(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

fn iso_opt(at: Option<OffsetDateTime>) -> Value {
    at.map_or(Value::Null, |t| json!(iso(t)))
}

/// Conversation metadata keys holding the session's `user` block.
pub mod meta {
    /// Visitor's name as given for this session.
    pub const NAME: &str = "user.name";
    /// Visitor's e-mail.
    pub const EMAIL: &str = "user.email";
    /// Visitor's phone.
    pub const PHONE: &str = "user.phone";
    /// Browser user agent.
    pub const USER_AGENT: &str = "user.userAgent";
    /// Client address.
    pub const IP: &str = "user.ipAddress";
    /// Referrer.
    pub const REFERRER: &str = "user.referrer";
    /// Page where the chat started.
    pub const PAGE_URL: &str = "user.pageUrl";
}

fn meta<'a>(c: &'a Conversation, key: &str) -> Option<&'a str> {
    c.metadata.get(key).map(String::as_str)
}

/// `{ name, email, phone? }` and, for staff, `metadata`.
fn user(c: &Conversation, with_metadata: bool) -> Value {
    let mut user = json!({
        "name": meta(c, meta::NAME).unwrap_or(""),
        "email": meta(c, meta::EMAIL).unwrap_or(""),
    });
    if let Some(phone) = meta(c, meta::PHONE) {
        user["phone"] = json!(phone);
    }
    if with_metadata {
        let mut metadata = serde_json::Map::new();
        for (field, key) in [
            ("userAgent", meta::USER_AGENT),
            ("ipAddress", meta::IP),
            ("referrer", meta::REFERRER),
            ("pageUrl", meta::PAGE_URL),
        ] {
            if let Some(v) = meta(c, key) {
                metadata.insert(field.into(), json!(v));
            }
        }
        user["metadata"] = Value::Object(metadata);
    }
    user
}

fn split_name(name: &str) -> (&str, &str) {
    name.split_once(' ').unwrap_or((name, ""))
}

/// `{ _id, firstName, lastName }` (plus `email` for staff views).
pub fn agent_ref(agent: &Agent, with_email: bool) -> Value {
    let (first, last) = split_name(&agent.name);
    let mut value = json!({ "_id": agent.id.to_string(), "firstName": first, "lastName": last });
    if with_email {
        value["email"] = json!(agent.email);
    }
    value
}

fn rating(r: &Rating) -> Value {
    json!({ "score": r.score, "feedback": r.feedback, "ratedAt": iso(r.rated_at) })
}

/// Staff, by id, to name agents in messages and sessions.
pub type Agents = HashMap<AgentId, Agent>;

/// The full session as staff see it (list items, details, `new_session`).
pub fn session(session_id: &str, c: &Conversation, agents: &Agents) -> Value {
    let agent = c.assigned_agent_id.and_then(|a| agents.get(&a));
    json!({
        "sessionId": session_id,
        "user": user(c, true),
        "status": status(c.mode),
        "priority": priority_name(c.priority),
        "department": department_name(c),
        "assignedAgent": agent.map(|a| agent_ref(a, true)),
        "agentName": agent.map(|a| a.name.clone()),
        "tags": c.tags,
        "lastMessage": c.last_message.as_ref().map(|m| json!({
            "content": m.body,
            "type": sender_type(m.sender),
            "timestamp": iso(m.at),
        })),
        "messageCount": c.message_count,
        "unreadCount": c.unread_for_agent,
        "startedAt": iso(c.created_at),
        "endedAt": iso_opt(c.closed_at),
        "firstResponseAt": iso_opt(c.first_response_at),
        "rating": c.rating.as_ref().map(rating),
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
    })
}

/// The session as its visitor sees it (no internal metadata, tags or notes).
pub fn visitor_session(session_id: &str, c: &Conversation, agents: &Agents) -> Value {
    let agent = c.assigned_agent_id.and_then(|a| agents.get(&a));
    json!({
        "sessionId": session_id,
        "user": user(c, false),
        "status": status(c.mode),
        "priority": priority_name(c.priority),
        "department": department_name(c),
        "assignedAgent": agent.map(|a| agent_ref(a, false)),
        "messageCount": c.message_count,
        "unreadCount": c.unread_for_customer,
        "startedAt": iso(c.created_at),
        "endedAt": iso_opt(c.closed_at),
        "rating": c.rating.as_ref().map(rating),
    })
}

/// The session as the creating visitor gets it back (the document's create response).
pub fn created_session(session_id: &str, c: &Conversation) -> Value {
    json!({
        "sessionId": session_id,
        "user": user(c, true),
        "status": status(c.mode),
        "priority": priority_name(c.priority),
        "department": department_name(c),
        "messageCount": c.message_count,
        "unreadCount": c.unread_for_customer,
        "startedAt": iso(c.created_at),
    })
}

/// `user`, `agent` or `system`.
pub fn sender_type(sender: Sender) -> &'static str {
    match sender {
        Sender::Customer => "user",
        Sender::Agent(_) => "agent",
        Sender::Bot | Sender::System => "system",
    }
}

/// A message in the document's shape. `conversation` tells whether the other side has
/// read it; attachment URLs point at this template's download route.
pub fn message(session_id: &str, m: &Message, c: Option<&Conversation>, agents: &Agents) -> Value {
    let read = c.is_some_and(|c| match m.sender {
        Sender::Customer => c.agent_read_seq >= m.seq,
        _ => c.customer_read_seq >= m.seq,
    });
    let mut value = json!({
        "_id": m.id.to_string(),
        "sessionId": session_id,
        "type": sender_type(m.sender),
        "content": m.body,
        "attachments": m.attachments.iter().map(|a| {
            let url = format!("/api/live-chat/sessions/{session_id}/attachments/{}", a.key);
            json!({
                "id": a.key,
                "name": a.name,
                "type": a.content_type,
                "size": a.size,
                "url": url,
                "previewUrl": a.content_type.starts_with("image/").then_some(url.clone()),
            })
        }).collect::<Vec<_>>(),
        "isRead": read,
        "createdAt": iso(m.created_at),
    });
    match m.sender {
        Sender::Agent(id) => {
            value["agentId"] = json!(id.to_string());
            value["agentName"] = json!(agents.get(&id).map_or("Agent", |a| a.name.as_str()));
        }
        Sender::System | Sender::Bot => value["agentName"] = json!("System"),
        Sender::Customer => {}
    }
    if m.edited_at.is_some() || m.deleted_at.is_some() {
        value["metadata"] = json!({
            "isEdited": m.edited_at.is_some(),
            "editedAt": iso_opt(m.edited_at),
            "isDeleted": m.deleted_at.is_some(),
            "deletedAt": iso_opt(m.deleted_at),
        });
    }
    value
}

/// An internal note: `{ content, addedBy, addedAt }`.
pub fn note(m: &Message, agents: &Agents) -> Value {
    let added_by = match m.sender {
        Sender::Agent(id) => agents.get(&id).map_or_else(
            || json!({ "_id": id.to_string() }),
            |a| {
                let (first, last) = split_name(&a.name);
                json!({ "_id": a.id.to_string(), "firstName": first, "lastName": last })
            },
        ),
        _ => Value::Null,
    };
    json!({ "content": m.body, "addedBy": added_by, "addedAt": iso(m.created_at) })
}

/// Whether a message belongs in the chat transcript (notes are listed apart).
pub fn in_transcript(m: &Message) -> bool {
    m.kind != MessageKind::Note
}
