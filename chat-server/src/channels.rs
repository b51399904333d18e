//! What the server sends to an inbox's provider for a reply to its customer.
//!
//! An `api` inbox's reply goes to its webhook like an event delivery (same headers, same
//! `X-Chat-Signature`, `X-Chat-Event: reply`), with this body:
//!
//! ```json
//! {"id": "<tenant>.<seq>", "type": "reply", "inbox_id": "…", "conversation_id": "…",
//!  "contact": {"id": "<your id for the customer>"},
//!  "message": {"id": "…", "text": "…", "sender": "agent" | "bot", "agent_id": "…" | null,
//!              "attachments": [{"name": "…", "content_type": "…", "size": 123}],
//!              "created_at": "<RFC 3339>"}}
//! ```

use chat_core::{Reply, Sender};
use time::format_description::well_known::Rfc3339;

/// The JSON body of an `api` inbox's reply delivery.
pub fn api_reply_body(event_id: &str, reply: &Reply) -> Vec<u8> {
    let m = &reply.message;
    let agent_id = match m.sender {
        Sender::Agent(agent) => Some(agent.to_string()),
        _ => None,
    };
    let attachments: Vec<_> = m
        .attachments
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
            })
        })
        .collect();
    let body = serde_json::json!({
        "id": event_id,
        "type": "reply",
        "inbox_id": reply.inbox.id,
        "conversation_id": reply.conversation,
        "contact": { "id": reply.contact },
        "message": {
            "id": m.id,
            "text": m.body,
            "sender": m.sender.kind(),
            "agent_id": agent_id,
            "attachments": attachments,
            "created_at": m.created_at.format(&Rfc3339).unwrap_or_default(),
        },
    });
    serde_json::to_vec(&body).expect("JSON values serialize")
}
