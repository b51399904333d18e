//! The read operations, run on pooled connections off the async runtime.

use std::collections::HashMap;

use chat_core::store::MessageQuery;
use chat_core::{
    Agent, AgentId, AgentLoad, Contact, ContactId, Conversation, ConversationId, Error, Event,
    Message, MessageId, ReadCursor, Result, Tenant, TenantId,
};
use rusqlite::{Connection, OptionalExtension, Params, ToSql, params};
use serde::Deserialize;

use crate::codec::{
    MESSAGE_COLUMNS, conversation_columns, conversation_from_row, from_json, int, limit,
    message_from_row,
};
use crate::error::Db;

// Every `LIMIT` takes its bound value as `+?`: SQLite plans with a bare `LIMIT ?`'s value,
// so binding it (which a cached statement does at every run) expires the statement and the
// next run compiles it again; measured, that was most of a latest-50 read's time. The unary
// plus makes the limit an expression the planner does not look into.

/// Hot query: the newest messages of a conversation (the message window without `after`).
pub(crate) const LATEST_MESSAGES: &str = "SELECT id, tenant_id, conversation_id, seq, sender, kind, body, \
     client_message_id, reply_to, created_at, edited_at, deleted_at, extra FROM messages \
     WHERE conversation_id = ?1 AND tenant_id = ?2 AND seq < ?3 AND (?4 OR kind <> 'note') ORDER BY seq DESC LIMIT +?5";
/// The oldest messages after a sequence (the message window with `after`).
const MESSAGES_AFTER: &str = "SELECT id, tenant_id, conversation_id, seq, sender, kind, body, \
     client_message_id, reply_to, created_at, edited_at, deleted_at, extra FROM messages \
     WHERE conversation_id = ?1 AND tenant_id = ?2 AND seq > ?3 AND seq < ?4 AND (?5 OR kind <> 'note') \
     ORDER BY seq ASC LIMIT +?6";
/// Hot query: the event log after a sequence.
/// Slim events are joined to their message's row (src/events.rs).
pub(crate) const EVENTS_SINCE: &str = concat!(
    "SELECT ",
    crate::events::event_columns!(),
    " FROM events e ",
    crate::events::join_rows!(),
    " WHERE e.tenant_id = ?1 AND e.seq > ?2 ORDER BY e.seq LIMIT +?3"
);
/// The newest sequence of a tenant's log: the last row of the primary key's range.
pub(crate) const EVENT_HEAD: &str = "SELECT max(seq) FROM events WHERE tenant_id = ?1";
/// Hot query: the queue, highest priority first, then longest waiting.
pub(crate) const QUEUE: &str = concat!(
    "SELECT ",
    conversation_columns!(),
    " FROM conversations WHERE tenant_id = ?1 AND mode = 'queued' \
     ORDER BY priority DESC, queued_at ASC, id ASC LIMIT +?2"
);
/// Hot query: a contact by verified e-mail.
pub(crate) const VERIFIED_CONTACT: &str =
    "SELECT data FROM contacts WHERE tenant_id = ?1 AND email_lc = ?2 AND email_verified = 1";
/// Hot query: conversations held per agent, for routing.
pub(crate) const AGENT_LOADS: &str = "SELECT assigned_agent_id, count(*) FROM conversations \
     WHERE tenant_id = ?1 AND assigned_agent_id IS NOT NULL AND mode IN ('agent', 'paused') \
     GROUP BY assigned_agent_id";

/// One `data` column decoded, if the row exists.
fn one<T: for<'de> Deserialize<'de>>(
    conn: &Connection,
    what: &str,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>> {
    let data: Option<String> = conn
        .prepare_cached(sql)
        .db()?
        .query_row(params, |row| row.get(0))
        .optional()
        .db()?;
    data.map(|d| from_json(what, &d)).transpose()
}

/// Every `data` column of the rows, decoded.
pub(crate) fn all<T: for<'de> Deserialize<'de>>(
    conn: &Connection,
    what: &str,
    sql: &str,
    params: impl Params,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut rows = stmt.query(params).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        let data: String = row.get(0).db()?;
        out.push(from_json(what, &data)?);
    }
    Ok(out)
}

pub(crate) fn tenant(conn: &Connection, id: TenantId) -> Result<Option<Tenant>> {
    one(
        conn,
        "tenant",
        "SELECT data FROM tenants WHERE id = ?1",
        [id.0],
    )
}

pub(crate) fn contact(
    conn: &Connection,
    tenant: TenantId,
    id: ContactId,
) -> Result<Option<Contact>> {
    one(
        conn,
        "contact",
        "SELECT data FROM contacts WHERE id = ?1 AND tenant_id = ?2",
        params![id.0, tenant.0],
    )
}

pub(crate) fn verified_contact(
    conn: &Connection,
    tenant: TenantId,
    email: &str,
) -> Result<Option<Contact>> {
    one(
        conn,
        "contact",
        VERIFIED_CONTACT,
        params![tenant.0, email.to_ascii_lowercase()],
    )
}

/// A page of contacts, newest id first. The text filter scans the tenant's contacts
/// (there is no index for a substring); a desk has thousands of contacts, not millions,
/// and the page stops the scan early once it is full.
pub(crate) fn list_contacts(
    conn: &Connection,
    query: &chat_core::store::ContactQuery,
) -> Result<Vec<Contact>> {
    let text = query.text.as_deref().map(str::to_ascii_lowercase);
    all(
        conn,
        "contact",
        "SELECT data FROM contacts WHERE tenant_id = ?1 AND (?2 IS NULL OR id < ?2) \
         AND (?3 IS NULL OR instr(lower(coalesce(name, '')), ?3) > 0 \
              OR instr(coalesce(email_lc, ''), ?3) > 0 \
              OR instr(lower(coalesce(json_extract(data, '$.phone'), '')), ?3) > 0) \
         ORDER BY id DESC LIMIT ?4",
        params![
            query.tenant.0,
            query.before.map(|b| b.0),
            text,
            i64::try_from(query.limit).unwrap_or(i64::MAX)
        ],
    )
}

pub(crate) fn agent(conn: &Connection, tenant: TenantId, id: AgentId) -> Result<Option<Agent>> {
    one(
        conn,
        "agent",
        "SELECT data FROM agents WHERE id = ?1 AND tenant_id = ?2",
        params![id.0, tenant.0],
    )
}

pub(crate) fn agent_by_email(
    conn: &Connection,
    tenant: TenantId,
    email: &str,
) -> Result<Option<Agent>> {
    one(
        conn,
        "agent",
        "SELECT data FROM agents WHERE tenant_id = ?1 AND email_lc = ?2",
        params![tenant.0, email.to_ascii_lowercase()],
    )
}

pub(crate) fn agents(conn: &Connection, tenant: TenantId) -> Result<Vec<Agent>> {
    all(
        conn,
        "agent",
        "SELECT data FROM agents WHERE tenant_id = ?1 ORDER BY name, id",
        [tenant.0],
    )
}

pub(crate) fn agent_loads(conn: &Connection, tenant: TenantId) -> Result<Vec<AgentLoad>> {
    let agents: Vec<Agent> = all(
        conn,
        "agent",
        "SELECT data FROM agents WHERE tenant_id = ?1 AND active ORDER BY id",
        [tenant.0],
    )?;
    let mut open = HashMap::new();
    let mut stmt = conn.prepare_cached(AGENT_LOADS).db()?;
    let mut rows = stmt.query([tenant.0]).db()?;
    while let Some(row) = rows.next().db()? {
        let (agent, n): (uuid::Uuid, i64) = (row.get(0).db()?, row.get(1).db()?);
        open.insert(AgentId(agent), u32::try_from(n).unwrap_or(u32::MAX));
    }
    Ok(agents
        .into_iter()
        .map(|agent| AgentLoad {
            open: open.get(&agent.id).copied().unwrap_or(0),
            agent,
        })
        .collect())
}

/// Every conversation of the rows of a query selecting [`conversation_columns!`].
pub(crate) fn conversations(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<Conversation>> {
    let mut stmt = conn.prepare_cached(sql).db()?;
    let mut rows = stmt.query(params).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(conversation_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn conversation(
    conn: &Connection,
    tenant: TenantId,
    id: ConversationId,
) -> Result<Option<Conversation>> {
    let sql = concat!(
        "SELECT ",
        conversation_columns!(),
        " FROM conversations WHERE id = ?1 AND tenant_id = ?2"
    );
    Ok(conversations(conn, sql, params![id.0, tenant.0])?.pop())
}

fn conversation_exists(conn: &Connection, tenant: TenantId, id: ConversationId) -> Result<()> {
    let found = conn
        .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1 AND tenant_id = ?2")
        .db()?
        .exists(params![id.0, tenant.0])
        .db()?;
    if found {
        Ok(())
    } else {
        Err(Error::NotFound("conversation"))
    }
}

pub(crate) fn queue(conn: &Connection, tenant: TenantId, n: usize) -> Result<Vec<Conversation>> {
    conversations(conn, QUEUE, params![tenant.0, limit(n)])
}

pub(crate) fn message(
    conn: &Connection,
    tenant: TenantId,
    id: MessageId,
) -> Result<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND tenant_id = ?2");
    let mut stmt = conn.prepare_cached(&sql).db()?;
    let mut rows = stmt.query(params![id.0, tenant.0]).db()?;
    rows.next().db()?.map(message_from_row).transpose()
}

pub(crate) fn messages(conn: &Connection, q: &MessageQuery) -> Result<Vec<Message>> {
    let before = q.before.map_or(i64::MAX, int);
    let mut out = Vec::with_capacity(q.limit.min(256));
    let mut collect = |sql: &str, params: &[&dyn ToSql]| -> Result<()> {
        let mut stmt = conn.prepare_cached(sql).db()?;
        let mut rows = stmt.query(params).db()?;
        while let Some(row) = rows.next().db()? {
            out.push(message_from_row(row)?);
        }
        Ok(())
    };
    match q.after {
        Some(after) => collect(
            MESSAGES_AFTER,
            params![
                q.conversation.0,
                q.tenant.0,
                int(after),
                before,
                q.include_notes,
                limit(q.limit)
            ],
        )?,
        None => collect(
            LATEST_MESSAGES,
            params![
                q.conversation.0,
                q.tenant.0,
                before,
                q.include_notes,
                limit(q.limit)
            ],
        )?,
    }
    if q.after.is_none() {
        out.reverse();
    }
    if out.is_empty() {
        // Messages carry their tenant, so rows prove the conversation exists; only an
        // empty window needs the extra look-up to tell "none" from "no such conversation".
        conversation_exists(conn, q.tenant, q.conversation)?;
    }
    Ok(out)
}

pub(crate) fn read_cursors(
    conn: &Connection,
    tenant: TenantId,
    conversation: ConversationId,
) -> Result<Vec<ReadCursor>> {
    conversation_exists(conn, tenant, conversation)?;
    all(
        conn,
        "read cursor",
        "SELECT data FROM read_cursors WHERE conversation_id = ?1 ORDER BY updated_at, seq, reader",
        [conversation.0],
    )
}

pub(crate) fn events_since(
    conn: &Connection,
    tenant: TenantId,
    after: u64,
    n: usize,
) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(EVENTS_SINCE).db()?;
    let mut rows = stmt.query(params![tenant.0, int(after), limit(n)]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(crate::events::from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn event_head(conn: &Connection, tenant: TenantId) -> Result<u64> {
    let head: Option<i64> = conn
        .prepare_cached(EVENT_HEAD)
        .db()?
        .query_row([tenant.0], |row| row.get(0))
        .db()?;
    // Sequences are stored from u64s that start at 1: never negative.
    Ok(head.map_or(0, |h| u64::try_from(h).unwrap_or(0)))
}

pub(crate) fn canned_responses(
    conn: &Connection,
    query: &chat_core::store::CannedQuery,
) -> Result<Vec<chat_core::CannedResponse>> {
    let own = query
        .agent
        .map_or_else(Vec::new, |a| a.0.as_bytes().to_vec());
    let prefix = query.prefix.as_deref().map(str::to_lowercase);
    let mut stmt = conn
        .prepare_cached(
            "SELECT data FROM canned_responses WHERE tenant_id = ?1 \
             AND (owner_key = x'' OR owner_key = ?2) \
             AND (?3 IS NULL OR id = ?3) \
             AND (?4 IS NULL OR substr(shortcut_lc, 1, length(?4)) = ?4 \
                  OR substr(title_lc, 1, length(?4)) = ?4) \
             ORDER BY shortcut_lc, id LIMIT ?5",
        )
        .db()?;
    let mut rows = stmt
        .query(rusqlite::params![
            query.tenant.0,
            own,
            query.id.map(|id| id.0),
            prefix,
            i64::try_from(query.limit).unwrap_or(i64::MAX)
        ])
        .db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(from_json(
            "canned_responses",
            &row.get::<_, String>(0).db()?,
        )?);
    }
    Ok(out)
}

pub(crate) fn mentions(
    conn: &Connection,
    tenant: chat_core::TenantId,
    agent: chat_core::AgentId,
    limit: usize,
) -> Result<(Vec<chat_core::Mention>, u64)> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT data FROM mentions WHERE tenant_id = ?1 AND agent_id = ?2 \
             ORDER BY at DESC, message_id DESC LIMIT ?3",
        )
        .db()?;
    let mut rows = stmt
        .query(rusqlite::params![
            tenant.0,
            agent.0,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])
        .db()?;
    let mut items = Vec::new();
    while let Some(row) = rows.next().db()? {
        items.push(from_json("mentions", &row.get::<_, String>(0).db()?)?);
    }
    let unread: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM mentions WHERE tenant_id = ?1 AND agent_id = ?2 AND read_at IS NULL",
        )
        .db()?
        .query_row(rusqlite::params![tenant.0, agent.0], |r| r.get(0))
        .db()?;
    Ok((items, unread as u64))
}
