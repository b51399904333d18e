//! Conversions between domain values and column values.

use std::collections::BTreeMap;

use chat_core::{
    AgentId, Attachment, ConversationId, EntityRef, Error, Message, MessageId, Priority, Reader,
    Result, Revision, Sender, TenantId,
};
use rusqlite::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::corrupt_row;

/// Unix nanoseconds, the form every time column uses.
pub(crate) fn ns(at: OffsetDateTime) -> Result<i64> {
    i64::try_from(at.unix_timestamp_nanos()).map_err(|_| {
        Error::validation(
            "time",
            format!("{at} is outside the years 1677-2262 SQLite columns hold"),
        )
    })
}

/// [`ns`] for optional times.
pub(crate) fn ns_opt(at: Option<OffsetDateTime>) -> Result<Option<i64>> {
    at.map(ns).transpose()
}

/// The time of a column written by [`ns`], in UTC.
pub(crate) fn from_ns(value: i64) -> OffsetDateTime {
    // Every i64 of nanoseconds is a valid time (years 1677-2262), so this never fails.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Counters and sequences are `u64` in the domain and `INTEGER` (i64) in SQLite.
pub(crate) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `LIMIT` from a `usize`.
pub(crate) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The `sender` column: `customer`, `bot`, `system` or `agent:<uuid>`.
pub(crate) fn sender_key(sender: Sender) -> String {
    match sender {
        Sender::Agent(id) => format!("agent:{}", id.0),
        other => other.kind().to_owned(),
    }
}

fn parse_sender(text: &str) -> Result<Sender> {
    Ok(match text {
        "customer" => Sender::Customer,
        "bot" => Sender::Bot,
        "system" => Sender::System,
        _ => {
            let id = text
                .strip_prefix("agent:")
                .and_then(|id| id.parse::<Uuid>().ok());
            Sender::Agent(AgentId(
                id.ok_or_else(|| corrupt_row("message", format!("sender `{text}`")))?,
            ))
        }
    })
}

/// The `reader` column of read cursors: `customer` or `agent:<uuid>`.
pub(crate) fn reader_key(reader: Reader) -> String {
    match reader {
        Reader::Customer => "customer".to_owned(),
        Reader::Agent(id) => format!("agent:{}", id.0),
    }
}

/// The `priority` column: its rank, so the queue can sort on it.
pub(crate) fn priority_rank(priority: Priority) -> i64 {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .unwrap_or(0) as i64
}

/// JSON text of a value for a `data` column.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Storage(format!("cannot encode a row: {e}")))
}

/// A value from its `data` column.
pub(crate) fn from_json<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt_row(what, e))
}

/// The rarely used parts of a message, kept as one JSON column.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct Extra {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entities: Vec<EntityRef>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    revisions: Vec<Revision>,
}

/// The `extra` column of a message; `None` when there is nothing to keep (the usual case,
/// which saves a JSON round trip per message).
pub(crate) fn message_extra(message: &Message) -> Result<Option<String>> {
    if message.attachments.is_empty()
        && message.entities.is_empty()
        && message.metadata.is_empty()
        && message.revisions.is_empty()
    {
        return Ok(None);
    }
    #[derive(Serialize)]
    struct ExtraRef<'a> {
        #[serde(skip_serializing_if = "<[Attachment]>::is_empty")]
        attachments: &'a [Attachment],
        #[serde(skip_serializing_if = "<[EntityRef]>::is_empty")]
        entities: &'a [EntityRef],
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        metadata: &'a BTreeMap<String, String>,
        #[serde(skip_serializing_if = "<[Revision]>::is_empty")]
        revisions: &'a [Revision],
    }
    to_json(&ExtraRef {
        attachments: &message.attachments,
        entities: &message.entities,
        metadata: &message.metadata,
        revisions: &message.revisions,
    })
    .map(Some)
}

/// The columns [`message_from_row`] reads, in order.
pub(crate) const MESSAGE_COLUMNS: &str = "id, tenant_id, conversation_id, seq, sender, kind, body, client_message_id, \
     reply_to, created_at, edited_at, deleted_at, extra";

/// A message from a row of [`MESSAGE_COLUMNS`].
pub(crate) fn message_from_row(row: &Row<'_>) -> Result<Message> {
    let get = |e: rusqlite::Error| corrupt_row("message", e);
    let sender: String = row.get(4).map_err(get)?;
    let kind: String = row.get(5).map_err(get)?;
    let extra: Option<String> = row.get(12).map_err(get)?;
    let extra: Extra = match extra {
        Some(text) => from_json("message", &text)?,
        None => Extra::default(),
    };
    Ok(Message {
        id: MessageId(row.get(0).map_err(get)?),
        tenant_id: TenantId(row.get(1).map_err(get)?),
        conversation_id: ConversationId(row.get(2).map_err(get)?),
        seq: row.get::<_, i64>(3).map_err(get)? as u64,
        sender: parse_sender(&sender)?,
        kind: kind.parse().map_err(|e| corrupt_row("message", e))?,
        body: row.get(6).map_err(get)?,
        attachments: extra.attachments,
        reply_to: row.get::<_, Option<Uuid>>(8).map_err(get)?.map(MessageId),
        client_message_id: row.get(7).map_err(get)?,
        entities: extra.entities,
        metadata: extra.metadata,
        revisions: extra.revisions,
        created_at: from_ns(row.get(9).map_err(get)?),
        edited_at: row.get::<_, Option<i64>>(10).map_err(get)?.map(from_ns),
        deleted_at: row.get::<_, Option<i64>>(11).map_err(get)?.map(from_ns),
    })
}
