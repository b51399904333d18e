//! `list_conversations`: the query's filters as one SQL `WHERE`, shared by the page and
//! the counts per mode so both agree with [`ConversationQuery::matches_except_mode`].

use std::collections::BTreeMap;

use chat_core::store::{
    AssignedFilter, ConversationCursor, ConversationPage, ConversationQuery, Scope,
};
use chat_core::{Conversation, Mode, Result};
use rusqlite::Connection;
use rusqlite::types::Value;

use crate::codec::conversation_columns;
use crate::codec::{limit, priority_rank};
use crate::error::{Db, corrupt_row};
use crate::read::conversations;
use crate::search::WordIndex;

/// SQL text with its positional parameters.
struct Filter {
    sql: String,
    params: Vec<Value>,
}

impl Filter {
    fn and(&mut self, clause: &str, params: impl IntoIterator<Item = Value>) {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
        self.params.extend(params);
    }
}

fn blob(id: uuid::Uuid) -> Value {
    Value::Blob(id.as_bytes().to_vec())
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// The FTS5 query that finds every message whose body contains `needle` (and some that
/// do not), or `None` when the needle has no part the word index can look up.
///
/// The index holds words (`unicode61`). A word of the needle can be looked up only if the
/// needle shows where it starts: the part before it is a separator. If the needle also
/// shows where it ends, the word must be in the message as it is; if not (it ends the
/// needle, or runs into a character whose class the tokenizer may see differently), it
/// may be the start of a longer word: a prefix query. Only ASCII letters and digits are
/// taken as word characters and only ASCII punctuation and spaces as separators, where
/// Rust and SQLite's tokenizer agree to the letter. Whatever the index returns is then
/// checked with `contains_ci`, so results are exactly the reference store's.
pub(crate) fn word_query(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    let separator =
        |c: Option<&char>| c.is_some_and(|c| c.is_ascii() && !c.is_ascii_alphanumeric());
    let mut terms = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let starts_word = start > 0 && separator(chars.get(start - 1));
        if !starts_word {
            continue;
        }
        let word: String = chars[start..i].iter().collect();
        let star = if separator(chars.get(i)) { "" } else { "*" };
        terms.push(format!("\"{word}\"{star}"));
    }
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

/// Everything but the mode filter and the cursor. `index` says how the text filter may
/// use the search file in this read snapshot (see [`crate::search`]).
fn base_filter(q: &ConversationQuery, index: WordIndex) -> Filter {
    let mut f = Filter {
        sql: "c.tenant_id = ?".into(),
        params: vec![blob(q.tenant.0)],
    };
    match &q.scope {
        Scope::Tenant => {}
        Scope::Agent { agent, departments } => {
            let departments_sql = if departments.is_empty() {
                "c.department IS NULL".to_owned()
            } else {
                format!(
                    "(c.department IS NULL OR c.department IN ({}))",
                    vec!["?"; departments.len()].join(", ")
                )
            };
            f.and(
                &format!(
                    "(c.assigned_agent_id = ? OR c.id IN (SELECT conversation_id FROM conversation_participants \
                     WHERE agent_id = ?) OR (c.mode = 'queued' AND {departments_sql}))"
                ),
                [blob(agent.0), blob(agent.0)].into_iter().chain(departments.iter().map(|d| text(d))),
            );
        }
        Scope::Contact {
            contact,
            conversation,
        } => {
            f.and("c.contact_id = ?", [blob(contact.0)]);
            if let Some(id) = conversation {
                f.and("c.id = ?", [blob(id.0)]);
            }
        }
    }
    if let Some(p) = q.priority {
        f.and("c.priority = ?", [Value::Integer(priority_rank(p))]);
    }
    if let Some(d) = &q.department {
        f.and("c.department = ?", [text(d)]);
    }
    match &q.assigned {
        None => {}
        Some(AssignedFilter::Unassigned) => f.and("c.assigned_agent_id IS NULL", []),
        Some(AssignedFilter::Agent(id)) => f.and("c.assigned_agent_id = ?", [blob(id.0)]),
    }
    if let Some(tag) = &q.tag {
        f.and(
            "c.id IN (SELECT conversation_id FROM conversation_tags WHERE tag = ?)",
            [text(tag)],
        );
    }
    if let Some(ch) = q.channel {
        f.and("c.channel = ?", [text(ch.as_str())]);
    }
    if let Some(p) = q.pinned {
        f.and("c.pinned = ?", [Value::Integer(p.into())]);
    }
    // No column of its own: snoozes are few and always combined with other filters.
    match q.snoozed {
        None => {}
        Some(true) => f.and("json_extract(c.data, '$.snooze') IS NOT NULL", []),
        Some(false) => f.and("json_extract(c.data, '$.snooze') IS NULL", []),
    }
    if let Some(e) = &q.contact_email {
        f.and(
            "c.contact_id IN (SELECT id FROM contacts WHERE tenant_id = ? AND email_lc = ?)",
            [blob(q.tenant.0), text(&e.to_ascii_lowercase())],
        );
    }
    if let Some(t) = &q.text {
        // Customers never find a conversation through an internal note.
        let notes = if matches!(q.scope, Scope::Contact { .. }) {
            " AND m.kind <> 'note'"
        } else {
            ""
        };
        let scan = format!(
            "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.deleted_at IS NULL{notes} \
             AND contains_ci(m.body, ?))"
        );
        let mut message_params = Vec::new();
        let messages = match (word_query(t), index) {
            (Some(words), WordIndex::Since { watermark }) => {
                // The index for messages it is exact for; the messages of the events after
                // its watermark (created or edited since) by reading their bodies. Index
                // hits are checked against this snapshot's rows, so an entry that is stale
                // can only be a candidate. The events are a range of rowids; `+` keeps the
                // planner from walking the tenant's whole log by its key instead.
                message_params.extend([
                    text(&words),
                    text(t),
                    Value::Integer(watermark),
                    blob(q.tenant.0),
                    text(t),
                ]);
                format!(
                    "c.id IN (SELECT m.conversation_id FROM search.message_search s JOIN messages m \
                     ON m.pk = s.rowid WHERE message_search MATCH ? AND m.deleted_at IS NULL{notes} \
                     AND contains_ci(m.body, ?) \
                     UNION ALL SELECT m.conversation_id FROM events e JOIN messages m \
                     ON m.id = uuid_blob(e.data ->> '$.payload.message.id') WHERE e.rowid > ? \
                     AND +e.tenant_id = ? AND m.deleted_at IS NULL{notes} AND contains_ci(m.body, ?))"
                )
            }
            // Nothing to look up (e.g. "efun", the inside of a word), or no usable index:
            // read the bodies.
            _ => {
                message_params.push(text(t));
                scan
            }
        };
        let mut params = vec![text(t), text(t), text(t)];
        params.extend(message_params);
        f.and(
            &format!(
                "(contains_ci(c.title, ?) OR EXISTS (SELECT 1 FROM contacts k WHERE k.id = c.contact_id \
                 AND (contains_ci(k.name, ?) OR contains_ci(k.email_lc, ?))) OR {messages})"
            ),
            params,
        );
    }
    f
}

pub(crate) fn list_conversations(
    conn: &Connection,
    q: &ConversationQuery,
    index: WordIndex,
) -> Result<ConversationPage> {
    let base = base_filter(q, index);

    let mut counts = BTreeMap::new();
    let sql = format!(
        "SELECT c.mode, count(*) FROM conversations c WHERE {} GROUP BY c.mode",
        base.sql
    );
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&base.params)).db()?;
    while let Some(row) = rows.next().db()? {
        let mode: String = row.get(0).db()?;
        let n: i64 = row.get(1).db()?;
        counts.insert(
            mode.parse::<Mode>()
                .map_err(|e| corrupt_row("conversation", e))?,
            n as u64,
        );
    }
    drop(rows);

    let (sql, params) = page_sql(q, base);
    let mut page: Vec<Conversation> =
        conversations(conn, &sql, rusqlite::params_from_iter(&params))?;
    let more = page.len() > q.limit;
    page.truncate(q.limit);
    let next_cursor = if more {
        page.last().map(ConversationCursor::after)
    } else {
        None
    };
    Ok(ConversationPage {
        items: page,
        next_cursor,
        counts,
    })
}

/// The page query: `base` plus the mode filter and the cursor, newest first, one row
/// more than the page to tell whether another page follows.
fn page_sql(q: &ConversationQuery, base: Filter) -> (String, Vec<Value>) {
    let mut items = base;
    if !q.modes.is_empty() {
        let marks = vec!["?"; q.modes.len()].join(", ");
        items.and(
            &format!("c.mode IN ({marks})"),
            q.modes.iter().map(|m| text(m.as_str())),
        );
    }
    if let Some(cursor) = q.cursor {
        cursor_filter(&mut items, cursor);
    }
    let sql = format!(
        // `+?`: see the note on `LIMIT` in src/read.rs.
        "SELECT {} FROM conversations c WHERE {} ORDER BY c.updated_at DESC, c.id DESC LIMIT +?",
        conversation_columns!(),
        items.sql
    );
    items
        .params
        .push(Value::Integer(limit(q.limit).saturating_add(1)));
    (sql, items.params)
}

/// The page query of `q` with its parameters, for query-plan tests.
#[cfg(test)]
pub(crate) fn page_query(q: &ConversationQuery, index: WordIndex) -> (String, Vec<Value>) {
    page_sql(q, base_filter(q, index))
}

/// Rows strictly after the cursor in `(updated_at, id)` descending order.
fn cursor_filter(f: &mut Filter, cursor: ConversationCursor) {
    match i64::try_from(cursor.updated_at_ns) {
        Ok(ns) => f.and(
            "(c.updated_at, c.id) < (?, ?)",
            [Value::Integer(ns), blob(cursor.id.0)],
        ),
        // Past every storable time: everything comes after it.
        Err(_) if cursor.updated_at_ns > 0 => {}
        Err(_) => f.and("0", []),
    }
}

#[cfg(test)]
mod tests {
    use super::word_query;

    #[test]
    fn only_words_whose_start_the_needle_shows_are_looked_up() {
        assert_eq!(word_query("zipper"), None);
        assert_eq!(word_query("efun"), None);
        assert_eq!(word_query("MAX@shop"), Some("\"shop\"*".into()));
        assert_eq!(
            word_query("VIP customer, refund"),
            Some("\"customer\" AND \"refund\"*".into())
        );
        assert_eq!(
            word_query(" order 12"),
            Some("\"order\" AND \"12\"*".into())
        );
        assert_eq!(word_query(" café "), Some("\"caf\"*".into()));
        assert_eq!(
            word_query(" \"quoted\" AND"),
            Some("\"quoted\" AND \"AND\"*".into())
        );
    }
}
