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
//! **Compaction** ([`compact`]) deletes the oldest events of a tenant, never the newest
//! (it numbers the next), never from the oldest pending webhook delivery on, never from the
//! search indexer's watermark on (the indexer follows the log by rowid, and checks the
//! event at its watermark to recognise its database).

use chat_core::{ConversationId, Error, Event, EventPayload, Message, NewEvent, Result, TenantId};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::codec::{MESSAGE_COLUMNS, from_json, int, message_from_row, to_json};
use crate::error::Db;

/// What a slim event's `data` holds: valid JSON, so that the JSON functions other queries
/// apply to `data` see an object without fields rather than an error.
pub(crate) const SLIM: &str = "{}";

/// The columns [`from_row`] reads: the referenced message's ([`MESSAGE_COLUMNS`] of `m`,
/// all `NULL` when the event is full), then the event's. A macro so `concat!` can build
/// constant queries with it.
macro_rules! event_columns {
    () => {
        "m.id, m.tenant_id, m.conversation_id, m.seq, m.sender, m.kind, m.body, \
         m.client_message_id, m.reply_to, m.created_at, m.edited_at, m.deleted_at, m.extra, \
         e.seq, e.data, e.message_pk"
    };
}
pub(crate) use event_columns;

/// The join that goes with [`event_columns`]; the events are `e`.
macro_rules! join_message {
    () => {
        "LEFT JOIN messages m ON m.pk = e.message_pk"
    };
}
pub(crate) use join_message;

/// An event from a row of [`event_columns`].
pub(crate) fn from_row(row: &Row<'_>) -> Result<Event> {
    let n = MESSAGE_COLUMNS.split(',').count();
    let corrupt = |e: rusqlite::Error| crate::error::corrupt_row("event", e);
    let seq: i64 = row.get(n).map_err(corrupt)?;
    let pk: Option<i64> = row.get(n + 2).map_err(corrupt)?;
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
/// transaction has just stored (see the module's documentation).
pub(crate) fn insert(conn: &Connection, event: &Event) -> Result<()> {
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
        " FROM messages m JOIN events e ON e.message_pk = m.pk WHERE m.conversation_id = ?1"
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
        assert_eq!(event[message.len()..], ["e.seq", "e.data", "e.message_pk"]);
    }
}
