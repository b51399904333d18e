//! The `events` table: how an event is stored, read back and compacted.
//!
//! **References, not copies** (migration 0014): a `message_created` event is the message
//! as posted, and the message's row is exactly that until the message is edited, deleted
//! or its conversation deleted. So its row holds no copy: `data` is `{}` and `message_pk`
//! names the message's row, and a read joins the row and rebuilds the event with
//! [`NewEvent::message_created`] (its time, visibility and conversation all follow from
//! the message). Such an event was about 800 bytes of JSON, most of the database. Before
//! anything changes or deletes the row, the event is written out in full again
//! ([`inline_message`], [`inline_conversation`]), so the log reads back the same whatever
//! happens to the row later: every slim event's `message_pk` names a row unchanged since
//! the event. Slim rows have no `conversation_id` (the message has it); the partial index
//! `events_message` finds a message's event.
//!
//! **Conversation events the same way** (migration 0019): a `conversation_created` or
//! `conversation_updated` event is the conversation as the same transaction wrote its
//! row's `data` (a posted message moves only the activity columns, never `data`). While
//! `data` is unchanged, the event's row holds only what the conversation cannot say (its
//! type, and for an update the change: `{"payload":{"type":…,"change":…}}`, about 60 bytes
//! against about 1,000; for a conversation opened with its first messages, which `data`
//! has counted, also the few fields that differ) and `conversation_row` set; a read decodes
//! the row's `data` and rebuilds the event with [`NewEvent::conversation_created`] or
//! [`NewEvent::conversation_updated`]. Before `data` is written again (the next update, a
//! moved read cursor) or the row deleted, the event is written out in full
//! ([`inline_conversation_event`]), so a conversation has at most one such event, its
//! latest, found by the partial index `events_conversation`.
//!
//! **Compaction** ([`compact`]) deletes the oldest events of a tenant, never the newest
//! (it numbers the next), never from the oldest pending webhook delivery on, never from the
//! search indexer's watermark on (the indexer follows the log by rowid, and checks the
//! event at its watermark to recognise its database).

use chat_core::store::SlimPayload;
use chat_core::{
    Conversation, ConversationId, Error, Event, EventPayload, Message, NewEvent, Result, TenantId,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::codec::{MESSAGE_COLUMNS, from_json, int, message_from_row, to_json};
use crate::error::Db;

/// What a slim event's `data` holds: valid JSON, so that the JSON functions other queries
/// apply to `data` see an object without fields rather than an error.
pub(crate) const SLIM: &str = "{}";

/// What a slim conversation event's `data` holds: its payload without the conversation.
/// Under `payload` as in a full event, so `data ->> '$.payload.type'` (the search
/// indexer's) reads the same from both.
#[derive(Serialize, Deserialize)]
struct SlimConversation {
    payload: SlimPayload,
    /// The fields of the event's conversation that differ from the row's `data`, which
    /// the same transaction wrote: a conversation opened with its first messages is
    /// stored with them counted, while its `conversation_created` shows it before them
    /// (a few counters and times, against the whole conversation).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    conversation: serde_json::Map<String, serde_json::Value>,
}

impl SlimConversation {
    /// The event's conversation: the row's `data` with [`SlimConversation::conversation`]
    /// over it.
    fn conversation(&self, data: &str) -> Result<Conversation> {
        if self.conversation.is_empty() {
            return from_json("conversation", data);
        }
        let mut fields: serde_json::Map<String, serde_json::Value> =
            from_json("conversation", data)?;
        fields.extend(self.conversation.clone());
        serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|e| crate::error::corrupt_row("conversation", e))
    }
}

/// The fields of `logged` (as JSON) that differ from `data`, if `data` with them over it
/// reads back as `logged`; `None` when it cannot (a field of `data` absent from
/// `logged`: the patch only adds and replaces).
fn patch(
    logged: &Conversation,
    json: &str,
    data: &str,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    if json == data {
        return Some(serde_json::Map::new());
    }
    let logged_fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).ok()?;
    let written: serde_json::Map<String, serde_json::Value> = serde_json::from_str(data).ok()?;
    if written.keys().any(|k| !logged_fields.contains_key(k)) {
        return None;
    }
    let differ: serde_json::Map<String, serde_json::Value> = logged_fields
        .into_iter()
        .filter(|(k, v)| written.get(k) != Some(v))
        .collect();
    let slim = SlimConversation {
        payload: SlimPayload::ConversationCreated,
        conversation: differ,
    };
    // Checked, not assumed: what a read will rebuild is the logged conversation.
    (slim.conversation(data).ok()? == *logged).then_some(slim.conversation)
}

/// The columns [`from_row`] reads: the referenced message's ([`MESSAGE_COLUMNS`] of `m`,
/// all `NULL` when the event is full), then the event's, then the referenced
/// conversation's `data` (`NULL` unless `conversation_row` is set). A macro so `concat!`
/// can build constant queries with it.
macro_rules! event_columns {
    () => {
        "m.id, m.tenant_id, m.conversation_id, m.seq, m.sender, m.kind, m.body, \
         m.client_message_id, m.reply_to, m.created_at, m.edited_at, m.deleted_at, m.extra, \
         e.seq, e.data, e.message_pk, e.conversation_row, c.data"
    };
}
pub(crate) use event_columns;

/// The joins that go with [`event_columns`]; the events are `e`.
macro_rules! join_rows {
    () => {
        "LEFT JOIN messages m ON m.pk = e.message_pk \
         LEFT JOIN conversations c ON e.conversation_row IS NOT NULL AND c.id = e.conversation_id"
    };
}
pub(crate) use join_rows;

/// An event from a row of [`event_columns`].
pub(crate) fn from_row(row: &Row<'_>) -> Result<Event> {
    let n = MESSAGE_COLUMNS.split(',').count();
    let corrupt = |e: rusqlite::Error| crate::error::corrupt_row("event", e);
    let seq: i64 = row.get(n).map_err(corrupt)?;
    let pk: Option<i64> = row.get(n + 2).map_err(corrupt)?;
    let conversation_row: Option<i64> = row.get(n + 3).map_err(corrupt)?;
    if conversation_row.is_some() {
        let slim: SlimConversation =
            from_json("event", &row.get::<_, String>(n + 1).map_err(corrupt)?)?;
        let data: Option<String> = row.get(n + 4).map_err(corrupt)?;
        let data = data.ok_or_else(|| {
            Error::storage_kind(
                chat_core::StorageKind::Corrupt,
                format!("event {seq} refers to a conversation row, which is missing"),
            )
        })?;
        let conversation = slim.conversation(&data)?;
        return Ok(slim.payload.rebuild(&conversation).into_event(seq as u64));
    }
    if pk.is_none() {
        return from_json("event", &row.get::<_, String>(n + 1).map_err(corrupt)?);
    }
    let message = message_from_row(row).map_err(|_| {
        Error::storage_kind(
            chat_core::StorageKind::Corrupt,
            format!("event {seq} refers to message row {pk:?}, which is missing"),
        )
    })?;
    Ok(NewEvent::message_created(&message).into_event(seq as u64))
}

/// Inserts a numbered event: slim when it is the `message_created` of a message this
/// transaction has just stored, or a conversation event whose conversation is what this
/// transaction wrote to the row's `data` (see the module's documentation).
pub(crate) fn insert(conn: &Connection, event: &Event) -> Result<()> {
    if let Some((slim, conversation)) = SlimPayload::of(&event.payload)
        && slim.rebuild(conversation).into_event(event.seq) == *event
    {
        let data: Option<String> = conn
            .prepare_cached("SELECT data FROM conversations WHERE id = ?1 AND tenant_id = ?2")
            .db()?
            .query_row(
                params![conversation.id.0, conversation.tenant_id.0],
                |row| row.get(0),
            )
            .optional()
            .db()?;
        // The same text is the same value: `data` is `to_json` of what was written.
        let json = to_json(conversation)?;
        if let Some(differ) = data.and_then(|data| patch(conversation, &json, &data)) {
            conn.prepare_cached(
                "INSERT INTO events (tenant_id, seq, conversation_id, data, conversation_row) \
                 VALUES (?1, ?2, ?3, ?4, 1)",
            )
            .db()?
            .execute(params![
                event.tenant_id.0,
                int(event.seq),
                conversation.id.0,
                to_json(&SlimConversation {
                    payload: slim,
                    conversation: differ
                })?
            ])
            .db()?;
            return Ok(());
        }
    }
    if let EventPayload::MessageCreated { message } = &event.payload
        && NewEvent::message_created(message).into_event(event.seq) == *event
    {
        let pk: Option<i64> = conn
            .prepare_cached("SELECT pk FROM messages WHERE id = ?1")
            .db()?
            .query_row([message.id.0], |row| row.get(0))
            .optional()
            .db()?;
        if let Some(pk) = pk {
            conn.prepare_cached(
                "INSERT INTO events (tenant_id, seq, conversation_id, data, message_pk) \
                 VALUES (?1, ?2, NULL, ?3, ?4)",
            )
            .db()?
            .execute(params![event.tenant_id.0, int(event.seq), SLIM, pk])
            .db()?;
            return Ok(());
        }
    }
    conn.prepare_cached(
        "INSERT INTO events (tenant_id, seq, conversation_id, data) VALUES (?1, ?2, ?3, ?4)",
    )
    .db()?
    .execute(params![
        event.tenant_id.0,
        int(event.seq),
        event.conversation_id.map(|c| c.0),
        to_json(event)?
    ])
    .db()?;
    Ok(())
}

/// Writes out in full the slim `message_created` event of `message` (as stored, before
/// the change about to be made to its row), if it has one.
pub(crate) fn inline_message(conn: &Connection, message: &Message) -> Result<()> {
    let found: Option<(uuid::Uuid, i64)> = conn
        .prepare_cached(
            "SELECT tenant_id, seq FROM events \
             WHERE message_pk = (SELECT pk FROM messages WHERE id = ?1)",
        )
        .db()?
        .query_row([message.id.0], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .db()?;
    if let Some((tenant, seq)) = found {
        write_out(conn, TenantId(tenant), seq, message)?;
    }
    Ok(())
}

/// Writes out in full the slim events of a conversation's messages, before the
/// conversation (and with it its message rows) is deleted.
pub(crate) fn inline_conversation(conn: &Connection, conversation: ConversationId) -> Result<()> {
    let sql = concat!(
        "SELECT ",
        event_columns!(),
        " FROM messages m JOIN events e ON e.message_pk = m.pk \
         LEFT JOIN conversations c ON 0 WHERE m.conversation_id = ?1"
    );
    let n = MESSAGE_COLUMNS.split(',').count();
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut rows = stmt.query([conversation.0]).db()?;
    let mut slim = Vec::new();
    while let Some(row) = rows.next().db()? {
        let seq: i64 = row.get(n).db()?;
        slim.push((message_from_row(row)?, seq));
    }
    drop(rows);
    drop(stmt);
    for (message, seq) in slim {
        write_out(conn, message.tenant_id, seq, &message)?;
    }
    inline_conversation_event(conn, conversation)
}

/// Writes out in full the slim event of a conversation (its latest conversation event, if
/// it still refers to the row), before the row's `data` is written again or the row
/// deleted.
pub(crate) fn inline_conversation_event(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<()> {
    let found: Option<(uuid::Uuid, i64, String, String)> = conn
        .prepare_cached(
            "SELECT e.tenant_id, e.seq, e.data, c.data FROM events e \
             JOIN conversations c ON c.id = e.conversation_id \
             WHERE e.conversation_id = ?1 AND e.conversation_row IS NOT NULL",
        )
        .db()?
        .query_row([conversation.0], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()
        .db()?;
    let Some((tenant, seq, slim, data)) = found else {
        return Ok(());
    };
    let slim: SlimConversation = from_json("event", &slim)?;
    let event = slim
        .payload
        .rebuild(&slim.conversation(&data)?)
        .into_event(seq as u64);
    conn.prepare_cached(
        "UPDATE events SET data = ?3, conversation_row = NULL WHERE tenant_id = ?1 AND seq = ?2",
    )
    .db()?
    .execute(params![tenant, seq, to_json(&event)?])
    .db()?;
    Ok(())
}

fn write_out(conn: &Connection, tenant: TenantId, seq: i64, message: &Message) -> Result<()> {
    let event = NewEvent::message_created(message).into_event(seq as u64);
    conn.prepare_cached(
        "UPDATE events SET data = ?3, conversation_id = ?4, message_pk = NULL \
         WHERE tenant_id = ?1 AND seq = ?2",
    )
    .db()?
    .execute(params![
        tenant.0,
        seq,
        to_json(&event)?,
        message.conversation_id.0
    ])
    .db()?;
    Ok(())
}

/// Deletes the tenant's oldest events with `seq <= through`, at most `limit`, keeping the
/// newest, those from the oldest pending webhook delivery on and those from rowid
/// `indexed` (the search watermark) on. Returns how many went.
pub(crate) fn compact(
    conn: &Connection,
    tenant: TenantId,
    through: u64,
    limit: usize,
    indexed: i64,
) -> Result<u64> {
    let head: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM events WHERE tenant_id = ?1")
        .db()?
        .query_row([tenant.0], |row| row.get(0))
        .db()?;
    let pending: Option<i64> = conn
        .prepare_cached(
            "SELECT min(seq) FROM webhook_deliveries WHERE tenant_id = ?1 AND state = 'pending'",
        )
        .db()?
        .query_row([tenant.0], |row| row.get(0))
        .db()?;
    let through = int(through)
        .min(head - 1)
        .min(pending.map_or(i64::MAX, |p| p - 1));
    if through < 1 || limit == 0 {
        return Ok(0);
    }
    // Rowids grow with `seq` within a tenant, so the range stops at the watermark.
    let deleted = conn
        .prepare_cached(
            "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events \
             WHERE tenant_id = ?1 AND seq <= ?2 AND rowid < ?3 ORDER BY seq LIMIT ?4)",
        )
        .db()?
        .execute(params![tenant.0, through, indexed, limit as i64])
        .db()?;
    Ok(deleted as u64)
}

/// Migration 0013 (and an import): makes every `message_created` event whose message row
/// is still exactly the event's message slim. The others (edited, deleted, of deleted
/// conversations) stay full.
pub(crate) fn slim_logged(conn: &Connection) -> Result<()> {
    let mut select = conn
        .prepare(
            "SELECT rowid, data FROM events WHERE message_pk IS NULL \
             AND instr(data, '\"type\":\"message_created\"') > 0",
        )
        .db()?;
    let sql = format!("SELECT {MESSAGE_COLUMNS}, pk FROM messages WHERE id = ?1");
    let n = MESSAGE_COLUMNS.split(',').count();
    let mut message = conn.prepare(&sql).db()?;
    let mut update = conn
        .prepare(
            "UPDATE events SET data = ?2, conversation_id = NULL, message_pk = ?3 WHERE rowid = ?1",
        )
        .db()?;
    let mut rows = select.query([]).db()?;
    while let Some(row) = rows.next().db()? {
        let rowid: i64 = row.get(0).db()?;
        let event: Event = from_json("event", &row.get::<_, String>(1).db()?)?;
        let EventPayload::MessageCreated { message: logged } = &event.payload else {
            continue;
        };
        if NewEvent::message_created(logged).into_event(event.seq) != event {
            continue;
        }
        let stored: Option<(i64, Message)> = {
            let mut found = message.query([logged.id.0]).db()?;
            match found.next().db()? {
                Some(r) => Some((r.get(n).db()?, message_from_row(r)?)),
                None => None,
            }
        };
        if let Some((pk, stored)) = stored
            && stored == **logged
        {
            update.execute(params![rowid, SLIM, pk]).db()?;
        }
    }
    Ok(())
}

/// Migration 0019 (and an import): makes slim every conversation event whose conversation
/// is exactly its row's `data`: the latest conversation event of each conversation whose
/// `data` nothing has written since (every write of `data` adds one to its version, so
/// no two events match). The others stay full.
pub(crate) fn slim_logged_conversations(conn: &Connection) -> Result<()> {
    let mut select = conn
        .prepare(
            "SELECT e.rowid, e.data, c.data FROM events e \
             JOIN conversations c ON c.id = e.conversation_id \
             WHERE e.message_pk IS NULL AND e.conversation_row IS NULL \
             AND (instr(e.data, '\"type\":\"conversation_created\"') > 0 \
                  OR instr(e.data, '\"type\":\"conversation_updated\"') > 0)",
        )
        .db()?;
    let mut update = conn
        .prepare("UPDATE events SET data = ?2, conversation_row = 1 WHERE rowid = ?1")
        .db()?;
    let mut slimmed = std::collections::HashSet::new();
    let mut rows = select.query([]).db()?;
    while let Some(row) = rows.next().db()? {
        let rowid: i64 = row.get(0).db()?;
        let event: Event = from_json("event", &row.get::<_, String>(1).db()?)?;
        let Some((slim, logged)) = SlimPayload::of(&event.payload) else {
            continue;
        };
        let stored: Conversation = from_json("conversation", &row.get::<_, String>(2).db()?)?;
        if stored == *logged
            && slim.rebuild(&stored).into_event(event.seq) == event
            && slimmed.insert(stored.id)
        {
            update
                .execute(params![
                    rowid,
                    to_json(&SlimConversation {
                        payload: slim,
                        conversation: serde_json::Map::new()
                    })?
                ])
                .db()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::codec::MESSAGE_COLUMNS;

    #[test]
    fn event_columns_start_with_every_message_column_in_order() {
        let message: Vec<String> = MESSAGE_COLUMNS
            .split(',')
            .map(|c| format!("m.{}", c.trim()))
            .collect();
        let event: Vec<String> = event_columns!()
            .split(',')
            .map(|c| c.trim().to_owned())
            .collect();
        assert_eq!(event[..message.len()], message[..]);
        assert_eq!(
            event[message.len()..],
            [
                "e.seq",
                "e.data",
                "e.message_pk",
                "e.conversation_row",
                "c.data"
            ]
        );
    }
}
