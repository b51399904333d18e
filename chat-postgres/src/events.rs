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
//!
//! **Conversation events the same way** (schema version 11, chat-sqlite's schema 19): a
//! `conversation_created` or `conversation_updated` event is the conversation as its
//! transaction wrote the row's `data`. Here a post and a moved read cursor rewrite `data`
//! too (SQLite keeps their fields in activity columns beside it), but they move only the
//! conversation's activity ([`Activity`]: counters, read sequences, last-message times and
//! preview, `updated_at`, `version`). So a slim event's row keeps its type, its change and
//! the activity as logged (`{"payload":{"type":…,"change":…},"activity":[…]}`, a few
//! hundred bytes against about 1,000), `conversation_row` is true, and a read lays that
//! activity over the row's conversation and rebuilds the event with [`NewEvent`]'s
//! constructor.
//! Before anything else in `data` is written (the next update, a post or read move that
//! would change more than the activity, which none does today) or the row is deleted, the
//! event is written out in full ([`inline_conversation_events`]), so a conversation has at
//! most one slim event, its latest, found by the partial index `events_conversation`.

use chat_core::store::SlimPayload;
use chat_core::{
    Conversation, Event, EventPayload, Message, MessagePreview, NewEvent, Result, StorageKind,
    TenantId,
};
use deadpool_postgres::Transaction;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use crate::codec::json;
use crate::error::Db;

/// The columns [`from_row`] reads: the event's `seq`, `data` and `message_id`, the
/// referenced message's `data` (`NULL` unless the event refers to a message), the event's
/// `conversation_row` and the referenced conversation's `data` (`NULL` unless
/// `conversation_row`). A macro so `concat!` can build constant queries with it; the
/// events are `e`.
macro_rules! event_columns {
    () => {
        "e.seq, e.data, e.message_id, m.data, e.conversation_row, c.data"
    };
}
pub(crate) use event_columns;

/// The joins that go with [`event_columns`].
macro_rules! join_rows {
    () => {
        "LEFT JOIN messages m ON m.id = e.message_id \
         LEFT JOIN conversations c ON e.conversation_row AND c.id = e.conversation_id"
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
    let conversation_row: Option<bool> = row.get(4);
    if conversation_row == Some(true) {
        let Json(slim): Json<SlimConversation> = row
            .try_get(1)
            .map_err(|e| crate::error::corrupt_row("event", e))?;
        let data: Option<Json<Conversation>> = row
            .try_get(5)
            .map_err(|e| crate::error::corrupt_row("conversation", e))?;
        let Some(Json(data)) = data else {
            // Every path that deletes a conversation writes its event out first.
            return Err(chat_core::Error::storage_kind(
                StorageKind::Corrupt,
                format!("event {seq} refers to a conversation row, which is missing"),
            ));
        };
        return slim.rebuild(data, seq);
    }
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

/// Writes out in full the slim events of `conversations` and of their messages, before the
/// conversations (and by cascade their messages) are deleted. The caller holds the
/// conversations' locks, so no message is added meanwhile; this locks the messages whose
/// events are slim, so none is edited between the read and the write.
pub(crate) async fn inline_conversations(
    tx: &Transaction<'_>,
    tenant: TenantId,
    conversations: &[uuid::Uuid],
) -> Result<()> {
    inline_conversation_events(tx, tenant, conversations).await?;
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

/// The fields of a conversation that a post ([`Conversation::record_message`]) and a moved
/// read cursor (`ReadMove::apply`) change: its activity. A slim conversation event keeps
/// them as logged, because those two writes rewrite `data` after the event; every other
/// field of the event's conversation is the row's `data` until the event is written out.
/// Stored as a JSON array in this order, times as Unix nanoseconds: a third of the bytes
/// of the same fields as an object of RFC 3339 strings, and exact (the insert checks that
/// the event reads back, so a time this form cannot hold leaves the event a copy).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Activity(
    u64,
    i128,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    Option<MessagePreview>,
    Option<i128>,
    Option<i128>,
    Option<i128>,
    Option<i128>,
);

fn nanos(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos()
}

fn time(ns: i128) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(ns).map_err(|e| crate::error::corrupt_row("event", e))
}

impl Activity {
    fn of(c: &Conversation) -> Self {
        Self(
            c.last_seq,
            nanos(c.updated_at),
            c.version,
            c.unread_for_agent,
            c.unread_for_customer,
            c.agent_read_seq,
            c.customer_read_seq,
            c.message_count,
            c.last_message.clone(),
            c.last_message_at.map(nanos),
            c.last_customer_message_at.map(nanos),
            c.last_agent_message_at.map(nanos),
            c.first_response_at.map(nanos),
        )
    }

    /// `c` with this activity.
    fn apply(&self, c: &mut Conversation) -> Result<()> {
        c.last_seq = self.0;
        c.updated_at = time(self.1)?;
        c.version = self.2;
        c.unread_for_agent = self.3;
        c.unread_for_customer = self.4;
        c.agent_read_seq = self.5;
        c.customer_read_seq = self.6;
        c.message_count = self.7;
        c.last_message.clone_from(&self.8);
        c.last_message_at = self.9.map(time).transpose()?;
        c.last_customer_message_at = self.10.map(time).transpose()?;
        c.last_agent_message_at = self.11.map(time).transpose()?;
        c.first_response_at = self.12.map(time).transpose()?;
        Ok(())
    }
}

/// What a slim conversation event's `data` holds. Under `payload` as in a full event, so
/// `data -> 'payload' ->> 'type'` reads the same from both (chat-sqlite's shape).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SlimConversation {
    payload: SlimPayload,
    /// The [`Activity`] of the event's conversation, laid over the row's `data` when read.
    activity: Activity,
}

impl SlimConversation {
    /// The event, as the engine decided it: the row's conversation with the logged
    /// activity over it, through the event's constructor.
    fn rebuild(&self, mut conversation: Conversation, seq: i64) -> Result<Event> {
        self.activity.apply(&mut conversation)?;
        Ok(self
            .payload
            .rebuild(&conversation)
            .into_event(seq.max(0) as u64))
    }
}

/// The slim form of `event` if it may refer to its conversation's row: a
/// `conversation_created` or `conversation_updated` of `written`, the conversation its
/// transaction has just written to the row, that a read rebuilds exactly from `written`
/// with the event's activity over it. Checked, not assumed.
pub(crate) fn slim_conversation(
    event: &Event,
    written: Option<&Conversation>,
) -> Result<Option<SlimConversation>> {
    let (Some(written), Some((payload, logged))) = (written, SlimPayload::of(&event.payload))
    else {
        return Ok(None);
    };
    if written.id != logged.id || written.tenant_id != logged.tenant_id {
        return Ok(None);
    }
    let slim = SlimConversation {
        payload,
        activity: Activity::of(logged),
    };
    let rebuilt = slim.rebuild(written.clone(), crate::codec::int(event.seq))?;
    Ok((rebuilt == *event).then_some(slim))
}

/// Whether `after` differs from `before` in more than its [`Activity`]: then the row's
/// `data` may no longer rebuild the conversation's slim event, which must be written out
/// before `after` is stored. Posts and read moves never do today; checked all the same, so
/// a field chat-core one day moves on a post cannot change the log.
pub(crate) fn moves_more_than_activity(
    before: &Conversation,
    after: &Conversation,
) -> Result<bool> {
    let mut probe = after.clone();
    Activity::of(before).apply(&mut probe)?;
    Ok(probe != *before)
}

/// Writes out in full the slim conversation events of `conversations` (each has at most
/// one, its latest), before their rows' `data` is written again or the rows are deleted.
/// The caller holds the conversations' row locks, so `data` is still what the events
/// refer to.
pub(crate) async fn inline_conversation_events(
    tx: &Transaction<'_>,
    tenant: TenantId,
    conversations: &[uuid::Uuid],
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "SELECT e.seq, e.data, c.data FROM events e \
             JOIN conversations c ON c.id = e.conversation_id \
             WHERE e.conversation_id = ANY($1) AND e.conversation_row AND e.tenant_id = $2",
        )
        .await
        .db()?;
    let rows = tx.query(&stmt, &[&conversations, &tenant.0]).await.db()?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut seqs = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = row.get(0);
        let slim: SlimConversation = json(row, 1, "event")?;
        let conversation: Conversation = json(row, 2, "conversation")?;
        seqs.push(seq);
        events.push(Json(slim.rebuild(conversation, seq)?));
    }
    tx.execute(
        "UPDATE events e SET data = x.data, conversation_row = NULL \
         FROM unnest($2::int8[], $3::jsonb[]) AS x (seq, data) \
         WHERE e.tenant_id = $1 AND e.seq = x.seq",
        &[&tenant.0, &seqs, &events],
    )
    .await
    .db()?;
    Ok(())
}

/// Makes slim the latest conversation event of every conversation that a read rebuilds
/// exactly from its row, by the very check an insert makes ([`slim_conversation`]): the
/// event as stored must equal the event of the row's conversation with the event's
/// activity over it. The others stay full. Run by migration 11 (after
/// `migrations/0011_conversation_event_references.sql`) and by a copy from SQLite, in
/// their transactions; a cursor keeps memory flat whatever the log's size.
pub(crate) async fn slim_logged_conversations(tx: &Transaction<'_>) -> Result<()> {
    tx.batch_execute(
        "DECLARE logged_conversations NO SCROLL CURSOR FOR \
         SELECT l.tenant_id, l.seq, l.data, c.data FROM ( \
             SELECT DISTINCT ON (e.conversation_id) e.tenant_id, e.seq, e.conversation_id, e.data \
             FROM events e \
             WHERE e.conversation_id IS NOT NULL AND e.message_id IS NULL \
               AND e.conversation_row IS NOT TRUE \
               AND e.data -> 'payload' ->> 'type' IN ('conversation_created', 'conversation_updated') \
             ORDER BY e.conversation_id, e.seq DESC \
         ) l JOIN conversations c ON c.id = l.conversation_id",
    )
    .await
    .db()?;
    loop {
        let rows = tx
            .query("FETCH 1000 FROM logged_conversations", &[])
            .await
            .db()?;
        if rows.is_empty() {
            break;
        }
        let (mut tenants, mut seqs, mut slims) = (Vec::new(), Vec::new(), Vec::new());
        for row in &rows {
            let event: Event = json(row, 2, "event")?;
            let stored: Conversation = json(row, 3, "conversation")?;
            // The event's own `seq` is checked too: the row's must be the event's.
            if event.seq != row.get::<_, i64>(1).max(0) as u64 {
                continue;
            }
            if let Some(slim) = slim_conversation(&event, Some(&stored))? {
                tenants.push(row.get::<_, uuid::Uuid>(0));
                seqs.push(row.get::<_, i64>(1));
                slims.push(Json(slim));
            }
        }
        tx.execute(
            "UPDATE events e SET data = x.data, conversation_row = true \
             FROM unnest($1::uuid[], $2::int8[], $3::jsonb[]) AS x (tenant_id, seq, data) \
             WHERE e.tenant_id = x.tenant_id AND e.seq = x.seq",
            &[&tenants, &seqs, &slims],
        )
        .await
        .db()?;
    }
    tx.batch_execute("CLOSE logged_conversations").await.db()
}
