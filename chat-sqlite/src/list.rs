//! `list_conversations`: the query's filters as one SQL `WHERE`, shared by the page and
//! the counts per mode so both agree with [`ConversationQuery::matches_except_mode`].

use std::collections::BTreeMap;

use chat_core::store::{
    AssignedFilter, ConversationCursor, ConversationPage, ConversationQuery, Scope, TextQuery,
};
use chat_core::{Conversation, Mode, Result};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use crate::codec::conversation_columns;
use crate::codec::{limit, priority_rank};
use crate::error::{Db, corrupt_row};
use crate::read::conversations;
use crate::search::{WordIndex, flags, word_kinds};

/// SQL text with its positional parameters, and the tables it filters.
struct Filter {
    /// What the `FROM` of a statement over the filter's conversations (alias `c`) reads:
    /// [`CONVERSATIONS`], or [`TAGGED`] for a tag's conversations looked up first.
    from: &'static str,
    sql: String,
    params: Vec<Value>,
}

/// The conversations, in the order the planner picks.
const CONVERSATIONS: &str = "conversations c";

/// A tag's conversations: its entries in `conversation_tags_tag` first (`CROSS JOIN`
/// keeps that order), then each conversation by id. Without statistics SQLite otherwise
/// walked the tenant along another index and tested every conversation: 6.7 ms a page
/// for a tag on a few conversations at 10k conversations, against 0.6-1 ms looked up.
const TAGGED: &str = "conversation_tags t CROSS JOIN conversations c ON c.id = t.conversation_id";

/// The conversations of a contact, or of the contacts of an e-mail: few, so found by
/// `conversations_contact` and sorted. Without the tenant's newest-first index the planner
/// picked the department index for an e-mail (`contact_id IN (…)`), a sort of the whole
/// tenant; with it, it walked the whole tenant for a contact's few conversations.
const BY_CONTACT: &str = "conversations c INDEXED BY conversations_contact";

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

/// A time as the `updated_at` column holds it (Unix nanoseconds), saturated: a bound
/// beyond what a column can hold still compares as it should.
fn time_ns(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.unix_timestamp() > 0 {
        i64::MAX
    } else {
        i64::MIN
    })
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// The FTS5 query that finds every message the search text matches (and maybe a few it
/// does not: the index folds diacritics, chat-core's words do not), or `None` when the
/// text has no word and matches nothing.
///
/// Each phrase of [`TextQuery`] becomes an FTS5 phrase whose last word is a prefix
/// (`"late parc"*`), all joined with `AND`: the same meaning as [`TextQuery::matches`], so
/// every search goes through the index and the check of each candidate only removes what
/// the index's folding let in. The words are letters and digits only, so they need no
/// quoting beyond the phrase's own quotes (`AND`, `NEAR` inside quotes are words).
pub(crate) fn word_query(text: &TextQuery) -> Option<String> {
    let phrases: Vec<String> = text
        .phrases()
        .iter()
        .map(|words| format!("\"{}\"*", words.join(" ")))
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" AND "))
}

/// The query of the message index (`detail = none`: it knows which messages hold a word,
/// not where): every word of every phrase, the last of each as a prefix and the others
/// whole, joined with `AND`; `None` when the text has no word. A phrase's words found apart
/// are only a candidate, which the check against the row removes.
pub(crate) fn message_words(text: &TextQuery) -> Option<String> {
    let words: Vec<String> = text
        .phrases()
        .iter()
        .flat_map(|phrase| {
            let last = phrase.len() - 1;
            phrase.iter().enumerate().map(move |(n, word)| {
                if n == last {
                    format!("\"{word}\"*")
                } else {
                    format!("\"{word}\"")
                }
            })
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" AND "))
}

/// Whether the message index answers `text` exactly for a message whose body is ASCII
/// (see [`flags::NOT_ASCII`]): each of its words is ASCII and none is in a phrase of more
/// than one (the index does not know where words are).
fn index_is_exact(text: &TextQuery) -> bool {
    text.phrases()
        .iter()
        .all(|phrase| phrase.len() == 1 && phrase[0].is_ascii())
}

/// Everything but the mode filter and the cursor. `index` says how the text filter may
/// use the search file in this read snapshot (see [`crate::search`]).
///
/// `newest_first` says how a tag filter is planned (see [`tag_walks`]): `false` lets the tag's index drive
/// (its conversations looked up, then sorted: [`TAGGED`]), `true` walks the inbox newest
/// first and probes each conversation's tags, which stops at a page for a common tag but
/// reads the whole inbox for a rare one. A text search or a contact's list always probes:
/// its own candidate set, walk or contact drives.
fn base_filter(
    q: &ConversationQuery,
    index: WordIndex,
    newest_first: bool,
    plan: TextPlan,
) -> Filter {
    let by_contact = matches!(q.scope, Scope::Contact { .. }) || q.contact_email.is_some();
    let mut f = Filter {
        from: if by_contact {
            BY_CONTACT
        } else {
            CONVERSATIONS
        },
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
        if newest_first || q.text.is_some() || by_contact {
            // Newest first, each conversation of the inbox is probed on the tags' primary
            // key, so a page costs what its rows do: `+c.id IN (SELECT …)` built the tag's
            // whole set first, which grew with the tag (6 ms a page at 100k conversations,
            // 0.3 at 10k).
            f.and(
                "EXISTS (SELECT 1 FROM conversation_tags t WHERE t.conversation_id = c.id AND t.tag = ?)",
                [text(tag)],
            );
        } else {
            f.from = TAGGED;
            f.and("t.tag = ?", [text(tag)]);
        }
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
    if let Some(from) = q.updated_from {
        f.and("c.updated_at >= ?", [Value::Integer(time_ns(from))]);
    }
    if let Some(to) = q.updated_to {
        f.and("c.updated_at < ?", [Value::Integer(time_ns(to))]);
    }
    if let Some(e) = &q.contact_email {
        f.and(
            "c.contact_id IN (SELECT id FROM contacts WHERE tenant_id = ? AND email_lc = ?)",
            [blob(q.tenant.0), text(&e.to_ascii_lowercase())],
        );
    }
    if let Some(t) = &q.text {
        let query = TextQuery::parse(t);
        let Some(words) = word_query(&query) else {
            // No word in the text: it matches nothing (chat-core's `TextQuery`).
            f.and("0", []);
            return f;
        };
        // Customers never find a conversation through an internal note.
        let notes = if matches!(q.scope, Scope::Contact { .. }) {
            " AND m.kind <> 'note'"
        } else {
            ""
        };
        if plan == TextPlan::Walk {
            // Each conversation the walk reaches is tested on its own: its title, its
            // contact (the contacts holding the words, looked up once), then its messages
            // (`walk_messages`). The walk is the inbox newest first (the page) or one
            // mode's part of it (a count), stopped by the `LIMIT`: for a word in most
            // conversations it reaches a page or the cap within a few more conversations
            // than that.
            //
            // The messages first: their test needs only the conversation's id, which the
            // index walked holds, and SQLite reads the row (1.2 KB, mostly outside the page
            // cache at 100k conversations) only when a term needs one of its columns, so a
            // conversation whose words have the text is counted without it.
            let (messages, message_params) = walk_messages(&query, t, index, !notes.is_empty());
            f.and(
                &format!(
                    "({messages} OR text_matches(c.title, ?) OR c.contact_id IN (SELECT k.id \
                     FROM contact_words w JOIN contacts k ON k.rowid = w.rowid WHERE contact_words MATCH ? \
                     AND k.tenant_id = ? AND (text_matches(k.name, ?) OR text_matches(k.email_lc, ?))))"
                ),
                message_params.into_iter().chain([
                    text(t),
                    text(&words),
                    blob(q.tenant.0),
                    text(t),
                    text(t),
                ]),
            );
            return f;
        }
        let mut message_params = Vec::new();
        let messages = match index {
            WordIndex::Since { watermark } => {
                // The index for messages it is exact for; the messages of the events after
                // its watermark (created or edited since) by reading their bodies. An
                // entry is taken as it is (its conversation from `search_rows`, no row
                // read) when the index answers this text exactly for its body and the
                // message has no event after the watermark; any other entry is a
                // candidate, checked against this snapshot's row, so an entry that is
                // stale can only be a candidate. Reading each hit's row was most of a
                // search that hits: a word in one message of 1,000 took 40 ms for the
                // counts and 20 ms for the page at a million messages (load 14), 3 ms
                // each without. The events are a range of rowids; `+` keeps the planner
                // from walking the tenant's whole log by its key instead.
                let Some(index_words) = message_words(&query) else {
                    f.and("0", []);
                    return f;
                };
                let unread = flags::NOT_ASCII | if notes.is_empty() { 0 } else { flags::NOTE };
                message_params.extend([
                    Value::Integer(index_is_exact(&query).into()),
                    Value::Integer(unread),
                    Value::Integer(watermark),
                    text(t),
                    text(&index_words),
                    Value::Integer(watermark),
                    blob(q.tenant.0),
                    text(t),
                ]);
                format!(
                    "SELECT CASE WHEN ? AND r.flags & ? = 0 AND s.rowid NOT IN (SELECT pk FROM \
                        (SELECT coalesce(e.message_pk, (SELECT pk FROM messages \
                           WHERE id = uuid_blob(e.data ->> '$.payload.message.id'))) AS pk \
                         FROM events e WHERE e.rowid > ?) WHERE pk IS NOT NULL) \
                       THEN r.conversation_id \
                       ELSE (SELECT m.conversation_id FROM messages m WHERE m.pk = s.rowid \
                         AND m.deleted_at IS NULL{notes} AND text_matches(m.body, ?)) END \
                     FROM search.message_search s JOIN search.search_rows r ON r.pk = s.rowid \
                     WHERE message_search MATCH ? \
                     UNION ALL SELECT m.conversation_id FROM events e JOIN messages m \
                     ON m.pk = coalesce(e.message_pk, \
                        (SELECT pk FROM messages WHERE id = uuid_blob(e.data ->> '$.payload.message.id'))) \
                     WHERE e.rowid > ? \
                     AND +e.tenant_id = ? AND m.deleted_at IS NULL{notes} AND text_matches(m.body, ?)"
                )
            }
            // No usable index in this snapshot (a rebuild under way): read the bodies.
            WordIndex::Scan => {
                message_params.extend([blob(q.tenant.0), text(t)]);
                format!(
                    "SELECT m.conversation_id FROM messages m WHERE m.tenant_id = ? AND m.deleted_at IS NULL{notes} \
                     AND text_matches(m.body, ?)"
                )
            }
        };
        // The conversations that can match, as one set the page and the counts start from
        // (rather than testing every conversation of the tenant): titles and contacts from
        // their word indexes (migration 0011), then the conversations of the contacts found
        // and those of the messages found. Each candidate is checked by `text_matches`
        // against its row, as messages are: the indexes fold diacritics, and a contact's
        // words must all be in its name or all in its e-mail, not some in each.
        let mut params = vec![
            text(&words),
            blob(q.tenant.0),
            text(t),
            text(&words),
            blob(q.tenant.0),
            text(t),
            text(t),
        ];
        params.extend(message_params);
        f.and(
            &format!(
                "c.rowid IN (SELECT t.rowid FROM conversation_title_words w JOIN conversations t \
                 ON t.rowid = w.rowid WHERE conversation_title_words MATCH ? AND t.tenant_id = ? \
                 AND text_matches(t.title, ?) \
                 UNION SELECT ck.rowid FROM conversations ck WHERE ck.contact_id IN (SELECT k.id \
                 FROM contact_words w JOIN contacts k ON k.rowid = w.rowid WHERE contact_words MATCH ? \
                 AND k.tenant_id = ? AND (text_matches(k.name, ?) OR text_matches(k.email_lc, ?))) \
                 UNION SELECT cm.rowid FROM conversations cm WHERE cm.id IN ({messages}))"
            ),
            params,
        );
    }
    f
}

/// A walk's test of conversation `c`'s messages, with its parameters: whether one message
/// the reader may see matches `t`.
///
/// Reading the bodies along `messages_seq` until one matches cost about 100 us of CPU a
/// conversation at a million messages (the bodies' pages are spread over the table), and
/// a common word's counts test thousands of conversations. So where the search file can
/// answer, a conversation is tested on its words (`conversation_words`, search file format
/// 4): one seek per word of the text for the words starting with it. Those words are
/// exact for a conversation none of whose messages has an event after the watermark (the
/// conversations of later events, posted or edited since, are few and have their bodies
/// read); they say that each word is in some message, not that all are in one or follow
/// each other, so they answer alone only a text of one word, and otherwise only rule a
/// conversation out before its bodies are read.
fn walk_messages(
    query: &TextQuery,
    t: &str,
    index: WordIndex,
    customer: bool,
) -> (String, Vec<Value>) {
    let notes = if customer {
        " AND m.kind <> 'note'"
    } else {
        ""
    };
    let bodies = format!(
        "EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id \
         AND m.deleted_at IS NULL{notes} AND text_matches(m.body, ?))"
    );
    let WordIndex::Since { watermark } = index else {
        return (bodies, vec![text(t)]);
    };
    let kinds = if customer {
        format!(" AND cw.kinds & {}", word_kinds::MESSAGE)
    } else {
        String::new()
    };
    let mut params = vec![Value::Integer(watermark)];
    let mut probes = Vec::new();
    for word in query.phrases().iter().flatten() {
        probes.push(format!(
            "EXISTS (SELECT 1 FROM search.search_conversations sc \
             JOIN search.conversation_words cw ON cw.conversation = sc.n \
             WHERE sc.id = c.id AND cw.word >= ? AND cw.word < ?{kinds})"
        ));
        // Every word that starts with `word` sorts from it up to it followed by the last
        // code point, which is no letter or digit and so in no word.
        params.push(text(word));
        params.push(text(&format!("{word}\u{10FFFF}")));
    }
    let one_word = query.phrases().len() == 1 && query.phrases()[0].len() == 1;
    let words = if one_word {
        probes.join(" AND ")
    } else {
        params.push(text(t));
        format!("{} AND {bodies}", probes.join(" AND "))
    };
    params.push(text(t));
    // The conversations of the messages with events after the watermark (a range of the
    // log's rowids), looked up once per statement.
    let sql = format!(
        "(CASE WHEN c.id IN (SELECT m.conversation_id FROM events e JOIN messages m \
           ON m.pk = coalesce(e.message_pk, \
              (SELECT pk FROM messages WHERE id = uuid_blob(e.data ->> '$.payload.message.id'))) \
           WHERE e.rowid > ?) \
         THEN {bodies} ELSE {words} END)"
    );
    // The parameters in the order of the text: the watermark, then the `THEN` (its body
    // text), then the `ELSE`.
    let then = params.pop().expect("the body text was pushed last");
    params.insert(1, then);
    (sql, params)
}

pub(crate) fn list_conversations(
    conn: &Connection,
    q: &ConversationQuery,
    index: WordIndex,
    candidates: u64,
) -> Result<ConversationPage> {
    let plan = text_plan(conn, q, index, candidates)?;
    let base = base_filter(q, index, false, plan);
    if plan == TextPlan::Candidates && q.text.is_some() {
        return candidate_page(conn, q, &base);
    }

    let mut counts = BTreeMap::new();
    if plan == TextPlan::Walk {
        // Each mode counted up to the cap by walking its part of the inbox
        // (`conversations_mode_updated`) and testing each conversation: for a common word
        // the cap is reached after about as many conversations, where counting every
        // match walked all of the word's messages (0.7-0.9 s for a word in a quarter of
        // a million messages).
        let cap = i64::try_from(q.count_cap).unwrap_or(i64::MAX);
        let sql = walk_count_sql(&base);
        let mut stmt = conn.prepare_cached(&sql).db()?;
        for mode in Mode::ALL {
            let mut params = base.params.clone();
            params.push(text(mode.as_str()));
            params.push(Value::Integer(cap));
            let n: i64 = stmt
                .query_row(rusqlite::params_from_iter(&params), |row| row.get(0))
                .db()?;
            if n > 0 {
                counts.insert(mode, n as u64);
            }
        }
    } else {
        count_rows(conn, q, &base, &mut counts)?;
    }
    let counts_capped = q.cap_counts(&mut counts);

    let base = if base.from == TAGGED && tag_walks(conn, q, &counts)? {
        base_filter(q, index, true, plan)
    } else {
        base
    };
    let (sql, params) = page_sql(q, base);
    let page: Vec<Conversation> = conversations(conn, &sql, rusqlite::params_from_iter(&params))?;
    Ok(ConversationPage::from_rows(
        page,
        q.limit,
        counts,
        counts_capped,
    ))
}

/// One mode's count of a walk: its conversations newest first, up to the cap (the last
/// two parameters: the mode and the cap). Newest first, not in the index's own order:
/// oldest first the walk began with the conversations that never got a message (29% of
/// the growth bench's, a third of a second of CPU for the closed ones before the first
/// match), newest first it meets the desk's active ones.
fn walk_count_sql(base: &Filter) -> String {
    format!(
        "SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} AND c.mode = ? \
         ORDER BY c.updated_at DESC, c.id DESC LIMIT +?)",
        base.from, base.sql
    )
}

/// The walk's page query and one mode's count query of `q`, with their parameters
/// (the count's without its mode and cap), for query-plan tests.
#[cfg(test)]
pub(crate) fn walk_queries(q: &ConversationQuery) -> [(String, Vec<Value>); 2] {
    let index = WordIndex::Since { watermark: 0 };
    let base = base_filter(q, index, false, TextPlan::Walk);
    let count = (walk_count_sql(&base), base.params.clone());
    [page_sql(q, base), count]
}

/// A text search's counts and page from one pass over its candidate set, where the counts
/// statement and the page statement each used to look the set up (every match's entry, its
/// row checked, its conversation's row): the pass reads each matching conversation's mode,
/// `updated_at` and id, counts the modes, sorts what the page may show in Rust, and reads
/// the page's rows by rowid.
fn candidate_page(
    conn: &Connection,
    q: &ConversationQuery,
    base: &Filter,
) -> Result<ConversationPage> {
    let sql = format!(
        "SELECT c.rowid, c.mode, c.updated_at, c.id FROM {} WHERE {}",
        base.from, base.sql
    );
    // Rows strictly after the cursor, as `cursor_filter` says in SQL: `None` for every
    // row, `Some(None)` for none.
    let after: Option<Option<(i64, [u8; 16])>> =
        q.cursor
            .and_then(|cursor| match i64::try_from(cursor.updated_at_ns) {
                Ok(ns) => Some(Some((ns, *cursor.id.0.as_bytes()))),
                // Past every storable time: everything comes after it.
                Err(_) if cursor.updated_at_ns > 0 => None,
                Err(_) => Some(None),
            });
    let mut counts = BTreeMap::new();
    let mut listed: Vec<(i64, Vec<u8>, i64)> = Vec::new();
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&base.params)).db()?;
    while let Some(row) = rows.next().db()? {
        let mode: String = row.get(1).db()?;
        let mode = mode
            .parse::<Mode>()
            .map_err(|e| corrupt_row("conversation", e))?;
        *counts.entry(mode).or_insert(0u64) += 1;
        if !q.modes.is_empty() && !q.modes.contains(&mode) {
            continue;
        }
        let updated_at: i64 = row.get(2).db()?;
        let id: Vec<u8> = row.get(3).db()?;
        let shown = match after {
            None => true,
            Some(None) => false,
            Some(Some((ns, cursor_id))) => (updated_at, id.as_slice()) < (ns, &cursor_id[..]),
        };
        if shown {
            listed.push((updated_at, id, row.get(0).db()?));
        }
    }
    drop(rows);
    let counts_capped = q.cap_counts(&mut counts);
    listed.sort_unstable_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    listed.truncate(q.limit.saturating_add(1));
    let by_rowid = concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations c WHERE c.rowid = ?1"
    );
    let mut page = Vec::with_capacity(listed.len());
    for (_, _, rowid) in &listed {
        page.extend(conversations(conn, by_rowid, [rowid])?);
    }
    Ok(ConversationPage::from_rows(
        page,
        q.limit,
        counts,
        counts_capped,
    ))
}

/// How a text search finds its conversations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextPlan {
    /// The conversations its words are found in, looked up in the word indexes as one set
    /// that the page and the counts start from: what a rare word needs. Also every list
    /// without text.
    Candidates,
    /// The inbox walked newest first, each conversation tested, stopping at the page (and
    /// each mode's count at the cap): what a common word needs, whose set would be most of
    /// the desk.
    Walk,
}

/// Chooses the plan of `q`'s text filter by counting, up to `candidates`
/// ([`Options::search_candidates`](crate::Options::search_candidates)), the entries its
/// words have in the word indexes (walks of the indexes that stop there). Looking a
/// candidate up costs about 7 us of CPU per entry at a million messages; walking costs
/// about the cap's worth of conversations per mode whatever the word, so the limit is
/// where the two meet. Without a usable index the bodies are read either way and the
/// candidate set is kept.
fn text_plan(
    conn: &Connection,
    q: &ConversationQuery,
    index: WordIndex,
    candidates: u64,
) -> Result<TextPlan> {
    let Some(t) = &q.text else {
        return Ok(TextPlan::Candidates);
    };
    if index == WordIndex::Scan {
        return Ok(TextPlan::Candidates);
    }
    let query = TextQuery::parse(t);
    let (Some(words), Some(index_words)) = (word_query(&query), message_words(&query)) else {
        return Ok(TextPlan::Candidates);
    };
    let limit = i64::try_from(candidates).unwrap_or(i64::MAX);
    // A prefix (`"parcel"*`) is looked up by merging the doclists of every word that starts
    // with it before the first row comes out, all of a common word's entries (a million at
    // five million messages); the words taken whole are read lazily and stop at the
    // limit. Their matches are a part of the prefix's, so more than the limit of them
    // settles it; fewer leave it to the prefix count below.
    let whole: Vec<String> = query
        .phrases()
        .iter()
        .flatten()
        .map(|word| format!("\"{word}\""))
        .collect();
    let whole_entries: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM search.message_search \
             WHERE message_search MATCH ?1 LIMIT +?2)",
        )
        .db()?
        .query_row(
            params![whole.join(" AND "), limit.saturating_add(1)],
            |row| row.get(0),
        )
        .db()?;
    if whole_entries > limit {
        return Ok(TextPlan::Walk);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM search.message_search                WHERE message_search MATCH ?1 LIMIT +?3))              + (SELECT count(*) FROM (SELECT 1 FROM conversation_title_words                WHERE conversation_title_words MATCH ?2 LIMIT +?3))              + (SELECT count(*) FROM (SELECT 1 FROM contact_words w JOIN conversations ck                ON ck.contact_id = (SELECT id FROM contacts WHERE rowid = w.rowid)                WHERE contact_words MATCH ?2 LIMIT +?3))",
        )
        .db()?;
    // Each index counted up to one past the limit: counted up to the limit, a word in the
    // message index alone (a common word's usual case: in bodies, not in titles) summed
    // to the limit exactly and was never walked.
    let entries: i64 = stmt
        .query_row(
            params![index_words, words, limit.saturating_add(1)],
            |row| row.get(0),
        )
        .db()?;
    Ok(if entries > limit {
        TextPlan::Walk
    } else {
        TextPlan::Candidates
    })
}

/// Whether `q` walks the inbox (`true`) or looks its candidates up, for tests.
#[cfg(test)]
pub(crate) fn walks(
    conn: &Connection,
    q: &ConversationQuery,
    index: WordIndex,
    candidates: u64,
) -> Result<bool> {
    Ok(text_plan(conn, q, index, candidates)? == TextPlan::Walk)
}

/// Counts per mode of `base`: kept ones where they answer it, else the rows counted.
fn count_rows(
    conn: &Connection,
    q: &ConversationQuery,
    base: &Filter,
    counts: &mut BTreeMap<Mode, u64>,
) -> Result<()> {
    let (sql, params) = match kept_counts(q) {
        Some((facet, value)) => (
            "SELECT mode, n FROM conversation_counts WHERE tenant_id = ? AND facet = ? AND value = ? AND n > 0"
                .to_owned(),
            vec![blob(q.tenant.0), text(facet), value],
        ),
        None => (
            format!(
                "SELECT c.mode, count(*) FROM {} WHERE {} GROUP BY c.mode",
                base.from, base.sql
            ),
            base.params.clone(),
        ),
    };
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&params)).db()?;
    while let Some(row) = rows.next().db()? {
        let mode: String = row.get(0).db()?;
        let n: i64 = row.get(1).db()?;
        counts.insert(
            mode.parse::<Mode>()
                .map_err(|e| corrupt_row("conversation", e))?,
            n as u64,
        );
    }
    Ok(())
}

/// Whether a tag filter's page walks the inbox newest first, probing each conversation's
/// tags, rather than looking the tag's conversations up and sorting them ([`TAGGED`]).
///
/// The counts say how many conversations the page can come from (`matching`, in the
/// modes asked for) and the kept counts how many the walk passes (`total`): the walk
/// probes about `page × total / matching` conversations, the lookup reads and sorts
/// `matching` rows, at about the same cost each (growth bench databases, 2026-12-07: 1.8
/// and 2.3-7 µs), so it walks when `matching² > page × total`. A fixed limit (2,000 tagged
/// conversations) sorted a tag on one conversation in ten of 10,000 (8 ms a page, where
/// the walk takes 0.9) and walked a tenant's whole inbox for a tag a little above it.
pub(crate) fn tag_walks(
    conn: &Connection,
    q: &ConversationQuery,
    counts: &BTreeMap<Mode, u64>,
) -> Result<bool> {
    let asked = |mode: &Mode| q.modes.is_empty() || q.modes.contains(mode);
    let matching: u64 = counts
        .iter()
        .filter(|(m, _)| asked(m))
        .map(|(_, n)| n)
        .sum();
    if matching == 0 {
        return Ok(false);
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT mode, n FROM conversation_counts WHERE tenant_id = ? AND facet = '' AND value = ''",
        )
        .db()?;
    let mut rows = stmt.query([q.tenant.0.as_bytes().as_slice()]).db()?;
    let mut total = 0u64;
    while let Some(row) = rows.next().db()? {
        let mode: String = row.get(0).db()?;
        let n: i64 = row.get(1).db()?;
        if mode.parse::<Mode>().is_ok_and(|m| asked(&m)) {
            total = total.saturating_add(u64::try_from(n).unwrap_or(0));
        }
    }
    let page = u64::try_from(limit(q.limit))
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    Ok(matching.saturating_mul(matching) > page.saturating_mul(total))
}

/// The kept count (migration 0007, `conversation_counts`) that answers `q`'s counts per
/// mode, as `(facet, value)`: a list of the whole tenant with no filter but the mode and at
/// most one of department, assigned agent or tag. Any other list counts its rows.
fn kept_counts(q: &ConversationQuery) -> Option<(&'static str, Value)> {
    let ConversationQuery {
        tenant: _,
        scope: Scope::Tenant,
        modes: _,
        priority: None,
        department,
        assigned,
        tag,
        channel: None,
        contact_email: None,
        pinned: None,
        snoozed: None,
        text: None,
        updated_from: None,
        updated_to: None,
        cursor: _,
        limit: _,
        count_cap: _,
    } = q
    else {
        return None;
    };
    match (department, assigned, tag) {
        (None, None, None) => Some(("", text(""))),
        (Some(d), None, None) => Some(("department", text(d))),
        (None, Some(AssignedFilter::Agent(a)), None) => Some(("agent", blob(a.0))),
        (None, None, Some(t)) => Some(("tag", text(t))),
        _ => None,
    }
}

/// The page query: `base` plus the mode filter and the cursor, newest first, one row
/// more than the page to tell whether another page follows.
///
/// Where no filter has an index of its own to start from, the page is each mode's inbox
/// (`conversations_mode_updated`, newest first) merged: one query per mode in a compound
/// statement whose `ORDER BY` SQLite answers by merging the parts as they come
/// (`MERGE (UNION ALL)`), so a page reads about its rows plus one per mode. The tenant's
/// own newest-first index (`conversations_updated`) went with migration 0020: every
/// posted message rewrote its entry (about one page a message at 100k conversations).
fn page_sql(q: &ConversationQuery, base: Filter) -> (String, Vec<Value>) {
    let modes: Vec<Mode> = Mode::ALL
        .into_iter()
        .filter(|m| q.modes.is_empty() || q.modes.contains(m))
        .collect();
    if base.from == CONVERSATIONS && modes.len() > 1 && merges_modes(q) {
        let mut sql = Vec::with_capacity(modes.len());
        let mut params = Vec::new();
        for mode in modes {
            let mut part = Filter {
                from: base.from,
                sql: base.sql.clone(),
                params: base.params.clone(),
            };
            part.and("c.mode = ?", [text(mode.as_str())]);
            if let Some(cursor) = q.cursor {
                cursor_filter(&mut part, cursor);
            }
            // `INDEXED BY`: with an equality on two of its columns, the department's index
            // looks better to the planner, and it would sort the department's
            // conversations where the mode's index gives them in order.
            sql.push(format!(
                "SELECT {}, c.id AS id FROM conversations c INDEXED BY conversations_mode_updated \
                 WHERE {}",
                conversation_columns!(),
                part.sql
            ));
            params.extend(part.params);
        }
        params.push(Value::Integer(limit(q.limit).saturating_add(1)));
        // `+?`: see the note on `LIMIT` in src/read.rs.
        let sql = format!(
            "{} ORDER BY updated_at DESC, id DESC LIMIT +?",
            sql.join(" UNION ALL ")
        );
        return (sql, params);
    }
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
        "SELECT {} FROM {} WHERE {} ORDER BY c.updated_at DESC, c.id DESC LIMIT +?",
        conversation_columns!(),
        items.from,
        items.sql
    );
    items
        .params
        .push(Value::Integer(limit(q.limit).saturating_add(1)));
    (sql, items.params)
}

/// Whether the page of `q` (of several modes, found neither by a tag nor by contact: see
/// [`TAGGED`], [`BY_CONTACT`]) merges each mode's inbox: unless an assignment filter has
/// an index that gives its conversations newest first (an agent, or none:
/// `conversations_assigned_updated`).
fn merges_modes(q: &ConversationQuery) -> bool {
    q.assigned.is_none()
}

/// The page query of `q` with its parameters, for query-plan tests.
#[cfg(test)]
pub(crate) fn page_query(q: &ConversationQuery, index: WordIndex) -> (String, Vec<Value>) {
    page_sql(q, base_filter(q, index, false, TextPlan::Candidates))
}

/// The page query of `q` as planned for a tag of many conversations (newest first), for
/// query-plan tests.
#[cfg(test)]
pub(crate) fn common_tag_page_query(q: &ConversationQuery) -> (String, Vec<Value>) {
    page_sql(
        q,
        base_filter(q, WordIndex::Scan, true, TextPlan::Candidates),
    )
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
    use chat_core::store::TextQuery;

    use super::word_query;

    fn query(text: &str) -> Option<String> {
        word_query(&TextQuery::parse(text))
    }

    #[test]
    fn every_word_is_looked_up_as_a_prefix_and_quotes_make_phrases() {
        assert_eq!(query("zipper"), Some("\"zipper\"*".into()));
        assert_eq!(query("MAX@shop"), Some("\"max\"* AND \"shop\"*".into()));
        assert_eq!(
            query("refund \"late Parcel\""),
            Some("\"refund\"* AND \"late parcel\"*".into())
        );
        assert_eq!(
            query(" \"quoted\" AND"),
            Some("\"quoted\"* AND \"and\"*".into())
        );
        assert_eq!(query(" café "), Some("\"café\"*".into()));
        assert_eq!(query("?! \"\""), None);
    }
}
