//! The raw rusqlite baseline that the store's durable post is measured against: the rows
//! the store writes for one posted customer message (the message, the conversation's
//! activity columns, the event), with nothing else: no reads, no JSON encoding (the
//! caller encodes the event once up front), sequences kept by the caller.
//!
//! Shared, so that both comparisons use the same SQL and a change of the store's row
//! layout is made here once: chat-sqlite's `store` bench (1,000 posts per transaction)
//! and chat-server's `post_cost` bench (one transaction per post, under callgrind)
//! include this file with `#[path]`. It is not a bench of its own (a folder without
//! `main.rs` is not discovered as one).
//!
//! The search index is not written here: the store does not write it in the posting
//! transaction either (its indexer thread does, in another file).

use rusqlite::{Connection, params};
use uuid::Uuid;

/// One posted customer message, as the store writes it.
pub struct RawPost<'a> {
    pub tenant: Uuid,
    pub conversation: Uuid,
    /// The message's sequence in its conversation (also the conversation's `last_seq`).
    pub seq: i64,
    /// The event's sequence in its tenant.
    pub event_seq: i64,
    pub body: &'a str,
    pub client_message_id: Option<&'a str>,
    /// Unix nanoseconds, as the store keeps times.
    pub at: i64,
    /// The event's JSON (`messages.created`), encoded once by the caller.
    pub event_json: &'a str,
}

/// Writes `post`'s three rows on `conn`, inside the caller's transaction. Every message
/// is a customer's, so the conversation's counters and times move as
/// `Conversation::record_message` moves them for one; the store writes the activity
/// columns, not the conversation's JSON, since schema version 4.
pub fn insert(conn: &Connection, post: &RawPost<'_>) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, client_message_id, \
         reply_to, created_at, edited_at, deleted_at, extra) \
         VALUES (?1, ?2, ?3, ?4, 'customer', 'text', ?5, ?6, NULL, ?7, NULL, NULL, NULL)",
    )?
    .execute(params![
        Uuid::now_v7(),
        post.tenant,
        post.conversation,
        post.seq,
        post.body,
        post.client_message_id,
        post.at
    ])?;
    conn.prepare_cached(
        "UPDATE conversations SET updated_at = ?2, last_seq = ?3, version = ?4, message_count = ?5, \
         unread_for_agent = ?6, unread_for_customer = ?7, first_response_at = ?8, last_message_at = ?9, \
         last_customer_message_at = ?10, last_agent_message_at = ?11, preview_sender = ?12, \
         preview_body = ?13, preview_at = ?14 WHERE id = ?1",
    )?
    .execute(params![
        post.conversation,
        post.at,
        post.seq,
        post.seq + 1,
        post.seq,
        post.seq,
        0,
        None::<i64>,
        post.at,
        post.at,
        None::<i64>,
        "customer",
        post.body,
        post.at
    ])?;
    conn.prepare_cached(
        "INSERT INTO events (tenant_id, seq, conversation_id, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        post.tenant,
        post.event_seq,
        post.conversation,
        post.event_json
    ])?;
    Ok(())
}
