//! The WebSocket protocol: JSON text frames with a `type` field. Documented in
//! `chat-server/PROTOCOL.md`.

use chat_core::{Attachment, ConversationId, MessageId};
use serde::Deserialize;
use serde_json::{Value, json};

/// A frame from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Start receiving events of one conversation, or of everything visible (the inbox)
    /// when `conversation_id` is absent; with `since`, first replay what was missed.
    Subscribe {
        /// Echoed in the answer.
        #[serde(default)]
        id: Option<String>,
        /// The conversation; absent = inbox.
        #[serde(default)]
        conversation_id: Option<ConversationId>,
        /// Last event sequence seen.
        #[serde(default)]
        since: Option<u64>,
    },
    /// Stop receiving a conversation (or the inbox).
    Unsubscribe {
        /// Echoed.
        #[serde(default)]
        id: Option<String>,
        /// The conversation; absent = inbox.
        #[serde(default)]
        conversation_id: Option<ConversationId>,
    },
    /// Post a message; answered with `ack`.
    SendMessage {
        /// Echoed.
        #[serde(default)]
        id: Option<String>,
        /// Where.
        conversation_id: ConversationId,
        /// Idempotency key.
        #[serde(default)]
        client_message_id: Option<String>,
        /// Text.
        #[serde(default)]
        body: String,
        /// Answered message.
        #[serde(default)]
        reply_to: Option<MessageId>,
        /// Attachments already uploaded.
        #[serde(default)]
        attachments: Vec<Attachment>,
    },
    /// Typing indicator: relayed, never stored.
    Typing {
        /// Where.
        conversation_id: ConversationId,
        /// Started (`true`) or stopped.
        #[serde(default = "yes")]
        typing: bool,
    },
    /// Move the read cursor.
    Read {
        /// Echoed.
        #[serde(default)]
        id: Option<String>,
        /// Where.
        conversation_id: ConversationId,
        /// Highest sequence read.
        seq: u64,
    },
    /// Application-level ping; answered with `pong`.
    Ping {
        /// Echoed.
        #[serde(default)]
        id: Option<String>,
    },
}

impl ClientFrame {
    /// Decodes a client's text frame: the one parser of what a socket sends, before any
    /// rule runs (fuzzed by `fuzz/fuzz_targets/client_frame.rs`).
    pub fn decode(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

fn yes() -> bool {
    true
}

/// An `error` frame answering request `id`.
pub fn error(id: Option<&str>, code: &str, message: &str) -> Value {
    json!({ "type": "error", "id": id, "code": code, "message": message })
}

/// Close code for a consumer that fell behind: resume with `since`.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code for a connection whose token stopped being valid.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
/// Close code for a socket whose cursor the log cannot serve (beyond its head, or too
/// old) on protocols without a `resync_required` frame: reload, then reconnect without a
/// cursor.
pub const CLOSE_RESYNC: u16 = 4009;
