//! The `events` table: how a `message_created` event refers to its message's row instead of
//! copying it, how it is read back, and how it is written out before the row changes.
//!
//! **References, not copies** (schema version 10, chat-sqlite's schema 14): a
//! `message_created` event is the message as posted, and the message's row is exactly that
//! until the message is edited or deleted or its conversation deleted. So its row holds no
//! copy: `data` is `{}` and `message_id` names the message, and a read joins the row
//! ([`event_columns`], [`join_rows`]) and rebuilds the event with
//! [`NewEvent::message_created`] (its time, visibility and conversation all follow from the
//! message). Such an event was about 800 bytes of JSON, most of the database.
//!
//! Before anything changes or deletes the row, the event is written out in full again
//! ([`inline_message`], [`inline_conversations`]) in the transaction that makes the change,
//! after it has locked the message rows: PostgreSQL runs writers concurrently (unlike
//! SQLite's one writer), and the locks make "the row is still the event's message" hold
//! from the read to the commit. Locks go message, then its event, in every path, so an
//! edit racing a deletion waits rather than deadlocks. A reader's one statement sees one
//! snapshot: the slim event with the unchanged row, or the full event with the changed
//! one. No foreign key holds the paths to this (its check on every insert, and on every
//! deleted message, would run in the posts' serialized part): the tests of every path do,
//! and a read that finds the row missing says so (`Corrupt`) rather than guess.
//!
//! Only the insert decides slimness, and only for a message its transaction has just
//! stored, equal to the event's message ([`referable`]); any other event stays full.

use chat_core::{Event, EventPayload, Message, NewEvent, Result, StorageKind, TenantId};
use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use crate::codec::json;
use crate::error::Db;

/// The columns [`from_row`] reads: the event's `seq`, `data` and `message_id`, then the
/// referenced message's `data` (`NULL` when the event is full). A macro so `concat!` can
/// build constant queries with it; the events are `e`.
macro_rules! event_columns {
    () => {
        "e.seq, e.data, e.message_id, m.data"
    };
}
pub(crate) use event_columns;

/// The join that goes with [`event_columns`].
macro_rules! join_rows {
    () => {
        "LEFT JOIN messages m ON m.id = e.message_id"
    };
}
pub(crate) use join_rows;

/// Makes every `message_created` event slim whose message row is still exactly the event's
/// message: the event as stored must equal, field by field, what a read rebuilds from the
/// row (the JSON of [`NewEvent::message_created`]), so a read gives back the very event.
/// Events of edited or deleted messages, or of deleted conversations, stay full. Run by
/// migration 10 (after `migrations/0010_event_references.sql`) and by a copy from SQLite.
macro_rules! slim_logged {
    () => {
        "UPDATE events e SET data = '{}', message_id = m.id FROM messages m \
         WHERE e.message_id IS NULL \
           AND e.data -> 'payload' ->> 'type' = 'message_created' \
           AND m.id = (e.data -> 'payload' -> 'message' ->> 'id')::uuid \
           AND e.data = jsonb_build_object('seq', e.seq, 'tenant_id', m.data -> 'tenant_id', \
                 'conversation_id', m.data -> 'conversation_id', 'staff_only', m.kind = 'note', \
                 'at', m.data -> 'created_at', \
                 'payload', jsonb_build_object('type', 'message_created', 'message', m.data));"
    };
}
pub(crate) use slim_logged;

/// An event from a row of [`event_columns`].
pub(crate) fn from_row(row: &Row) -> Result<Event> {
    let seq: i64 = row.get(0);
    let message_id: Option<uuid::Uuid> = row.get(2);
    let Some(message_id) = message_id else {
        return json(row, 1, "event");
    };
    let message: Option<Json<Message>> = row
        .try_get(3)
        .map_err(|e| crate::error::corrupt_row("message", e))?;
    let Some(Json(message)) = message else {
        // Every path that deletes a message writes its event out first; should one not,
        // this says so rather than read back something else.
        return Err(chat_core::Error::storage_kind(
            StorageKind::Corrupt,
            format!("event {seq} refers to message {message_id}, which is missing"),
        ));
    };
    Ok(NewEvent::message_created(&message).into_event(seq.max(0) as u64))
}

/// The message whose row an event may refer to instead of copying it: a
/// `message_created` event that a read rebuilds exactly from its message, which is one of
/// `stored`, the messages the event's transaction has just inserted, as inserted.
pub(crate) fn referable(event: &Event, stored: &[Message]) -> Option<uuid::Uuid> {
    match &event.payload {
        EventPayload::MessageCreated { message }
            if stored.iter().any(|m| m == message.as_ref())
                && NewEvent::message_created(message).into_event(event.seq) == *event =>
        {
            Some(message.id.0)
        }
        _ => None,
    }
}

/// Writes out in full the slim `message_created` event of `message`, if it has one.
/// `message` is the row as stored, locked by this transaction (`FOR UPDATE`), before the
/// change about to be made to it.
pub(crate) async fn inline_message(tx: &Transaction<'_>, message: &Message) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "UPDATE events SET data = jsonb_set($2, '{seq}', to_jsonb(seq)), message_id = NULL \
             WHERE message_id = $1",
        )
        .await
        .db()?;
    let event = NewEvent::message_created(message).into_event(0);
    tx.execute(&stmt, &[&message.id.0, &Json(&event)])
        .await
        .db()?;
    Ok(())
}

/// Writes out in full the slim events of the messages of `conversations`, before the
/// conversations (and by cascade their messages) are deleted. The caller holds the
/// conversations' locks, so no message is added meanwhile; this locks the messages whose
/// events are slim, so none is edited between the read and the write.
pub(crate) async fn inline_conversations(
    tx: &Transaction<'_>,
    tenant: TenantId,
    conversations: &[uuid::Uuid],
) -> Result<()> {
    let rows = tx
        .query(
            "SELECT e.seq, m.data FROM messages m JOIN events e ON e.message_id = m.id \
             WHERE m.conversation_id = ANY($1) AND e.tenant_id = $2 FOR UPDATE OF m",
            &[&conversations, &tenant.0],
        )
        .await
        .db()?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut seqs = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = row.get(0);
        let message: Message = json(row, 1, "message")?;
        seqs.push(seq);
        ids.push(message.id.0);
        events.push(Json(
            NewEvent::message_created(&message).into_event(seq.max(0) as u64),
        ));
    }
    // `message_id = x.message_id`: an event an edit wrote out before this took the lock
    // stays as the edit wrote it.
    tx.execute(
        "UPDATE events e SET data = x.data, message_id = NULL \
         FROM unnest($2::int8[], $3::uuid[], $4::jsonb[]) AS x (seq, message_id, data) \
         WHERE e.tenant_id = $1 AND e.seq = x.seq AND e.message_id = x.message_id",
        &[&tenant.0, &seqs, &ids, &events],
    )
    .await
    .db()?;
    Ok(())
}
