//! Conversions between domain values and column values.

use std::collections::BTreeMap;

use chat_core::{
    AgentId, Attachment, Conversation, ConversationId, EntityRef, Error, Message, MessageId,
    MessagePreview, Priority, Reader, Result, Revision, Sender, TenantId,
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

pub(crate) fn parse_sender(text: &str) -> Result<Sender> {
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
    serde_json::to_string(value).map_err(|e| Error::storage(format!("cannot encode a row: {e}")))
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

/// The columns [`conversation_from_row`] reads, in order: the `data` JSON, then the
/// activity columns every posted message moves (schema version 4), then the preview's
/// notice metadata (version 17). A macro so `concat!` can build constant queries with it.
macro_rules! conversation_columns {
    () => {
        "data, updated_at, last_seq, version, message_count, unread_for_agent, unread_for_customer, \
         first_response_at, last_message_at, last_customer_message_at, last_agent_message_at, \
         preview_sender, preview_body, preview_at, preview_metadata"
    };
}
pub(crate) use conversation_columns;

/// A conversation from a row of [`conversation_columns!`]. The activity columns are the
/// truth for the fields [`Conversation::record_message`] moves: a posted message writes
/// only them, so the same fields in `data` are as of the last full write.
pub(crate) fn conversation_from_row(row: &Row<'_>) -> Result<Conversation> {
    let get = |e: rusqlite::Error| corrupt_row("conversation", e);
    let data: String = row.get(0).map_err(get)?;
    let mut c: Conversation = from_json("conversation", &data)?;
    let time = |i: usize| -> Result<Option<OffsetDateTime>> {
        Ok(row.get::<_, Option<i64>>(i).map_err(get)?.map(from_ns))
    };
    let count = |i: usize| -> Result<u64> { Ok(row.get::<_, i64>(i).map_err(get)? as u64) };
    c.updated_at = from_ns(row.get(1).map_err(get)?);
    c.last_seq = count(2)?;
    c.version = count(3)?;
    c.message_count = count(4)?;
    c.unread_for_agent = count(5)?;
    c.unread_for_customer = count(6)?;
    c.first_response_at = time(7)?;
    c.last_message_at = time(8)?;
    c.last_customer_message_at = time(9)?;
    c.last_agent_message_at = time(10)?;
    let sender: Option<String> = row.get(11).map_err(get)?;
    let body: Option<String> = row.get(12).map_err(get)?;
    c.last_message = match (sender, body, time(13)?) {
        (Some(sender), Some(body), Some(at)) => Some(MessagePreview {
            sender: parse_sender(&sender)?,
            body,
            at,
            metadata: match row.get::<_, Option<String>>(14).map_err(get)? {
                Some(json) => from_json("conversation preview", &json)?,
                None => Default::default(),
            },
        }),
        _ => None,
    };
    Ok(c)
}

/// The report columns of a conversation (schema version 9), as `?2` to `?5` of
/// [`REPORT_ASSIGNMENTS`] (`?1` is the conversation id): written by every full write.
pub(crate) struct ReportColumns {
    created_at: i64,
    closed_at: Option<i64>,
    rated_at: Option<i64>,
    rating_score: Option<i64>,
}

/// `SET` list of an `UPDATE` that writes [`ReportColumns`] as `?2` to `?5`.
pub(crate) const REPORT_ASSIGNMENTS: &str =
    "created_at = ?2, closed_at = ?3, rated_at = ?4, rating_score = ?5";

impl ReportColumns {
    pub(crate) fn of(c: &Conversation) -> Result<Self> {
        Ok(Self {
            created_at: ns(c.created_at)?,
            closed_at: ns_opt(c.closed_at)?,
            rated_at: ns_opt(c.rating.as_ref().map(|r| r.rated_at))?,
            rating_score: c.rating.as_ref().map(|r| i64::from(r.score)),
        })
    }

    /// The parameters, `?2` onwards.
    pub(crate) fn params(&self) -> [&dyn rusqlite::ToSql; 4] {
        [
            &self.created_at,
            &self.closed_at,
            &self.rated_at,
            &self.rating_score,
        ]
    }
}

/// Parameters `?2` to `?14` of the activity columns, in the order of
/// [`ACTIVITY_ASSIGNMENTS`] (`?1` is the conversation id).
pub(crate) struct Activity {
    updated_at: i64,
    last_seq: i64,
    version: i64,
    message_count: i64,
    unread_for_agent: i64,
    unread_for_customer: i64,
    first_response_at: Option<i64>,
    last_message_at: Option<i64>,
    last_customer_message_at: Option<i64>,
    last_agent_message_at: Option<i64>,
    preview_sender: Option<String>,
    preview_body: Option<String>,
    preview_at: Option<i64>,
}

/// The preview's notice metadata (schema version 17) as JSON, `None` when there is none:
/// written beside [`Activity`], which stays as migration 4 fills it.
pub(crate) fn preview_metadata(c: &Conversation) -> Result<Option<String>> {
    match &c.last_message {
        Some(p) if !p.metadata.is_empty() => Ok(Some(to_json(&p.metadata)?)),
        _ => Ok(None),
    }
}

/// `SET` list of an `UPDATE` that writes [`Activity`] as `?2` to `?14`.
pub(crate) const ACTIVITY_ASSIGNMENTS: &str = "updated_at = ?2, last_seq = ?3, version = ?4, \
     message_count = ?5, unread_for_agent = ?6, unread_for_customer = ?7, first_response_at = ?8, \
     last_message_at = ?9, last_customer_message_at = ?10, last_agent_message_at = ?11, \
     preview_sender = ?12, preview_body = ?13, preview_at = ?14";

impl Activity {
    pub(crate) fn of(c: &Conversation) -> Result<Self> {
        let preview = c.last_message.as_ref();
        Ok(Self {
            updated_at: ns(c.updated_at)?,
            last_seq: int(c.last_seq),
            version: int(c.version),
            message_count: int(c.message_count),
            unread_for_agent: int(c.unread_for_agent),
            unread_for_customer: int(c.unread_for_customer),
            first_response_at: ns_opt(c.first_response_at)?,
            last_message_at: ns_opt(c.last_message_at)?,
            last_customer_message_at: ns_opt(c.last_customer_message_at)?,
            last_agent_message_at: ns_opt(c.last_agent_message_at)?,
            preview_sender: preview.map(|p| sender_key(p.sender)),
            preview_body: preview.map(|p| p.body.clone()),
            preview_at: preview.map(|p| ns(p.at)).transpose()?,
        })
    }

    /// The parameters, `?2` onwards.
    pub(crate) fn params(&self) -> [&dyn rusqlite::ToSql; 13] {
        [
            &self.updated_at,
            &self.last_seq,
            &self.version,
            &self.message_count,
            &self.unread_for_agent,
            &self.unread_for_customer,
            &self.first_response_at,
            &self.last_message_at,
            &self.last_customer_message_at,
            &self.last_agent_message_at,
            &self.preview_sender,
            &self.preview_body,
            &self.preview_at,
        ]
    }
}
