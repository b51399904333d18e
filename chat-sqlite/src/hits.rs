//! `message_hits`: the newest messages of each conversation of a results page that the
//! search text matches, found through the word index so that a long conversation is not
//! read from its newest message back to its first.
//!
//! Walking a conversation's messages newest first and testing each body stops early when
//! the text is common in it, but reads its whole history when the conversation was found
//! by its title or contact and no message matches, or when its only match is old: 100,000
//! bodies for a conversation of 100,000 messages. That walk is kept for conversations of
//! up to [`SHORT_CONVERSATION`] messages. Through the index, a longer conversation's
//! candidates are the index entries between its first and last `pk` (a conversation's
//! messages get increasing `pk`s, as they get increasing sequences), newest first; each is
//! kept if the search file says it is this conversation's (`search_rows`, before the row is
//! read) and it passes chat-core's test against this snapshot's row. The walk stops at the
//! `per_conversation`-th hit, so it reads at most the word's entries in that range of
//! `pk`s and, for rows, only this conversation's candidates.
//!
//! Exactness is the list's argument ([`crate::search`]'s query module): an entry is exact
//! for every message without events after the watermark, so the messages of later events
//! are read and tested as they are; an entry checked against its row can only be a
//! candidate. The newest `per_conversation` checked entries, merged with the tested recent
//! messages, hold the newest `per_conversation` hits.

use chat_core::store::{HitQuery, TextQuery};
use chat_core::{Message, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::codec::{limit, message_from_row};
use crate::error::Db;
use crate::list::message_words;
use crate::search::WordIndex;

/// The columns of [`message_from_row`], of the message row `m`.
macro_rules! hit_columns {
    () => {
        "m.id, m.tenant_id, m.conversation_id, m.seq, m.sender, m.kind, m.body, \
         m.client_message_id, m.reply_to, m.created_at, m.edited_at, m.deleted_at, m.extra"
    };
}

/// Without an index: the conversation's messages newest first along `messages_seq`, each
/// body tested, stopping at the last hit wanted.
const HITS_BY_BODY: &str = concat!(
    "SELECT ",
    hit_columns!(),
    " FROM messages m WHERE m.conversation_id = ?1 AND m.tenant_id = ?2 AND m.deleted_at IS NULL \
     AND (?3 OR m.kind <> 'note') AND text_matches(m.body, ?4) ORDER BY m.seq DESC LIMIT +?5"
);

/// The `pk`s and sequences of a conversation's oldest and newest messages: the range its
/// index entries are in, and about how many messages it has. Two ends of `messages_seq`,
/// not a walk of it.
const ENDS: &str = "SELECT first.pk, first.seq, last.pk, last.seq FROM \
     (SELECT pk, seq FROM messages WHERE conversation_id = ?1 ORDER BY seq ASC LIMIT 1) AS first, \
     (SELECT pk, seq FROM messages WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT 1) AS last";

/// Up to this many messages, a conversation's bodies are read newest first (no more than
/// this many rows); beyond, its hits are looked up in the index. The index walk reads the
/// word's entries in the conversation's range of `pk`s, which for a common word in a
/// conversation as old as the desk can be more than a short conversation's rows.
const SHORT_CONVERSATION: i64 = 200;

/// Index entries in a range of `pk`s, newest first (FTS5 walks its rowids backwards and
/// seeks the range itself), kept if they are the conversation's and pass the test. `CROSS
/// JOIN` keeps the index outermost: left to itself the planner walks the conversation's
/// `search_rows` and probes the index for each, every message of a long conversation.
pub(crate) const HITS_BY_INDEX: &str = concat!(
    "SELECT ",
    hit_columns!(),
    ", m.pk FROM search.message_search s CROSS JOIN search.search_rows r ON r.pk = s.rowid \
     CROSS JOIN messages m ON m.pk = s.rowid \
     WHERE message_search MATCH ?1 AND s.rowid BETWEEN ?2 AND ?3 AND r.conversation_id = ?4 \
     AND m.conversation_id = ?4 AND m.tenant_id = ?5 AND m.deleted_at IS NULL \
     AND (?6 OR m.kind <> 'note') AND text_matches(m.body, ?7) \
     ORDER BY s.rowid DESC LIMIT +?8"
);

/// The messages of the events after the watermark that belong to the conversation, tested
/// as they are in this snapshot (as the list's search reads them).
const HITS_SINCE: &str = concat!(
    "SELECT DISTINCT ",
    hit_columns!(),
    ", m.pk FROM events e JOIN messages m ON m.pk = coalesce(e.message_pk, \
        (SELECT pk FROM messages WHERE id = uuid_blob(e.data ->> '$.payload.message.id'))) \
     WHERE e.rowid > ?1 AND +e.tenant_id = ?2 AND m.conversation_id = ?3 AND m.deleted_at IS NULL \
     AND (?4 OR m.kind <> 'note') AND text_matches(m.body, ?5)"
);

/// The hits of `q`, each conversation's newest first, in the order of `q.conversations`.
pub(crate) fn message_hits(
    conn: &Connection,
    q: &HitQuery,
    index: WordIndex,
) -> Result<Vec<Message>> {
    let mut out = Vec::new();
    let Some(words) = message_words(&TextQuery::parse(&q.text)) else {
        // No word: the text matches nothing (chat-core's `TextQuery`).
        return Ok(out);
    };
    let wanted = limit(q.per_conversation);
    for conversation in &q.conversations {
        let ends: Option<(i64, i64, i64, i64)> = conn
            .prepare_cached(ENDS)
            .db()?
            .query_row([conversation.0], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()
            .db()?;
        let Some((first, first_seq, last, last_seq)) = ends else {
            continue;
        };
        let index = if last_seq - first_seq < SHORT_CONVERSATION {
            WordIndex::Scan
        } else {
            index
        };
        match index {
            WordIndex::Scan => {
                let mut stmt = conn.prepare_cached(HITS_BY_BODY).db()?;
                let mut rows = stmt
                    .query(params![conversation.0, q.tenant.0, q.notes, q.text, wanted])
                    .db()?;
                while let Some(row) = rows.next().db()? {
                    out.push(message_from_row(row)?);
                }
            }
            WordIndex::Since { watermark } => {
                let mut found: Vec<(i64, Message)> = Vec::new();
                let mut collect = |sql: &str, params: &[&dyn rusqlite::ToSql]| -> Result<()> {
                    let mut stmt = conn.prepare_cached(sql).db()?;
                    let mut rows = stmt.query(params).db()?;
                    while let Some(row) = rows.next().db()? {
                        let pk: i64 = row.get(13).db()?;
                        if !found.iter().any(|(seen, _)| *seen == pk) {
                            found.push((pk, message_from_row(row)?));
                        }
                    }
                    Ok(())
                };
                collect(
                    HITS_BY_INDEX,
                    params![
                        words,
                        first.min(last),
                        first.max(last),
                        conversation.0,
                        q.tenant.0,
                        q.notes,
                        q.text,
                        wanted
                    ],
                )?;
                collect(
                    HITS_SINCE,
                    params![watermark, q.tenant.0, conversation.0, q.notes, q.text],
                )?;
                found.sort_by_key(|(_, m)| std::cmp::Reverse(m.seq));
                out.extend(found.into_iter().take(q.per_conversation).map(|(_, m)| m));
            }
        }
    }
    Ok(out)
}
