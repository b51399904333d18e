//! Inboxes and the threads of their customers.

use std::collections::BTreeMap;

use chat_core::{ConversationId, Error, Inbox, InboxId, InboxSecrets, Result, TenantId, WebhookId};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use crate::codec::{from_ns, ns};
use crate::error::{Db, corrupt_row};

const COLUMNS: &str = "id, tenant_id, name, kind, token_digest, webhook_id, settings, secrets, \
    created_ns, updated_ns";

fn map(text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| corrupt_row("inbox", e))
}

fn inbox_from_row(row: &Row<'_>) -> Result<Inbox> {
    let bad = |e: rusqlite::Error| corrupt_row("inbox", e);
    Ok(Inbox {
        id: InboxId(row.get(0).map_err(bad)?),
        tenant_id: TenantId(row.get(1).map_err(bad)?),
        name: row.get(2).map_err(bad)?,
        kind: row.get::<_, String>(3).map_err(bad)?.parse()?,
        token_digest: row.get(4).map_err(bad)?,
        webhook_id: row
            .get::<_, Option<uuid::Uuid>>(5)
            .map_err(bad)?
            .map(WebhookId),
        settings: map(&row.get::<_, String>(6).map_err(bad)?)?,
        secrets: InboxSecrets(map(&row.get::<_, String>(7).map_err(bad)?)?),
        created_at: from_ns(row.get(8).map_err(bad)?),
        updated_at: from_ns(row.get(9).map_err(bad)?),
    })
}

/// The compare-and-swap of [`chat_core::Store::replace_inbox`]: one `UPDATE` guarded by
/// the tenant and the `updated_ns` the caller read.
pub(crate) fn replace_inbox(conn: &Connection, i: &Inbox, seen: OffsetDateTime) -> Result<bool> {
    let json = |m: &BTreeMap<String, String>| serde_json::to_string(m).expect("strings serialize");
    let n = conn
        .prepare_cached(
            "UPDATE inboxes SET name = ?3, token_digest = ?4, webhook_id = ?5, settings = ?6, \
                 secrets = ?7, updated_ns = ?8 \
             WHERE id = ?1 AND tenant_id = ?2 AND updated_ns = ?9",
        )
        .db()?
        .execute(params![
            i.id.0,
            i.tenant_id.0,
            i.name,
            i.token_digest,
            i.webhook_id.map(|w| w.0),
            json(&i.settings),
            json(&i.secrets.0),
            ns(i.updated_at)?,
            ns(seen)?
        ])
        .db()?;
    Ok(n == 1)
}

pub(crate) fn put_inbox(conn: &Connection, i: &Inbox) -> Result<()> {
    let owner: Option<uuid::Uuid> = conn
        .prepare_cached("SELECT tenant_id FROM inboxes WHERE id = ?1")
        .db()?
        .query_row([i.id.0], |row| row.get(0))
        .optional()
        .db()?;
    if owner.is_some_and(|t| t != i.tenant_id.0) {
        return Err(Error::duplicate("inbox exists"));
    }
    let json = |m: &BTreeMap<String, String>| serde_json::to_string(m).expect("strings serialize");
    conn.prepare_cached(
        "INSERT INTO inboxes (id, tenant_id, name, kind, token_digest, webhook_id, settings, \
             secrets, created_ns, updated_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
             token_digest = excluded.token_digest, webhook_id = excluded.webhook_id, \
             settings = excluded.settings, secrets = excluded.secrets, \
             updated_ns = excluded.updated_ns",
    )
    .db()?
    .execute(params![
        i.id.0,
        i.tenant_id.0,
        i.name,
        i.kind.as_str(),
        i.token_digest,
        i.webhook_id.map(|w| w.0),
        json(&i.settings),
        json(&i.secrets.0),
        ns(i.created_at)?,
        ns(i.updated_at)?
    ])
    .db()?;
    Ok(())
}

pub(crate) fn delete_inbox(conn: &Connection, tenant: TenantId, id: InboxId) -> Result<()> {
    // The threads go by the foreign key's cascade.
    let deleted = conn
        .prepare_cached("DELETE FROM inboxes WHERE id = ?1 AND tenant_id = ?2")
        .db()?
        .execute(params![id.0, tenant.0])
        .db()?;
    if deleted == 0 {
        return Err(Error::NotFound("inbox"));
    }
    Ok(())
}

pub(crate) fn inboxes(conn: &Connection, tenant: TenantId) -> Result<Vec<Inbox>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM inboxes WHERE tenant_id = ?1 ORDER BY created_ns, id"
        ))
        .db()?;
    let mut rows = stmt.query([tenant.0]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(inbox_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn inbox(conn: &Connection, id: InboxId) -> Result<Option<Inbox>> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM inboxes WHERE id = ?1"))
        .db()?;
    let mut rows = stmt.query([id.0]).db()?;
    match rows.next().db()? {
        Some(row) => Ok(Some(inbox_from_row(row)?)),
        None => Ok(None),
    }
}

pub(crate) fn inbox_thread(
    conn: &Connection,
    inbox: InboxId,
    external: &str,
) -> Result<Option<ConversationId>> {
    conn.prepare_cached(
        "SELECT conversation_id FROM inbox_threads WHERE inbox_id = ?1 AND external_id = ?2",
    )
    .db()?
    .query_row(params![inbox.0, external], |row| row.get(0))
    .optional()
    .db()
    .map(|id| id.map(ConversationId))
}

pub(crate) fn link_inbox_thread(
    conn: &Connection,
    tenant: TenantId,
    inbox: InboxId,
    external: &str,
    conversation: ConversationId,
) -> Result<ConversationId> {
    let known: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM inboxes WHERE id = ?1 AND tenant_id = ?2)")
        .db()?
        .query_row(params![inbox.0, tenant.0], |row| row.get(0))
        .db()?;
    if !known {
        return Err(Error::NotFound("inbox"));
    }
    conn.prepare_cached(
        "INSERT INTO inbox_threads (inbox_id, external_id, tenant_id, conversation_id) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (inbox_id, external_id) DO NOTHING",
    )
    .db()?
    .execute(params![inbox.0, external, tenant.0, conversation.0])
    .db()?;
    inbox_thread(conn, inbox, external)?.ok_or(Error::NotFound("inbox thread"))
}

pub(crate) fn poll_inbox(
    conn: &Connection,
    inbox: InboxId,
    node: &str,
    offset: i64,
    now: i64,
    until: i64,
) -> Result<Option<i64>> {
    // One statement: the lease check and the write cannot interleave with another node's.
    let stored: Option<i64> = conn
        .prepare_cached(
            "UPDATE inboxes SET poll_node = ?2, poll_until_ns = ?5, \
                 poll_offset = max(poll_offset, ?3) \
             WHERE id = ?1 AND (poll_node IS NULL OR poll_node = ?2 OR poll_until_ns <= ?4) \
             RETURNING poll_offset",
        )
        .db()?
        .query_row(params![inbox.0, node, offset, now, until], |row| row.get(0))
        .optional()
        .db()?;
    if stored.is_some() {
        return Ok(stored);
    }
    let known: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM inboxes WHERE id = ?1)")
        .db()?
        .query_row([inbox.0], |row| row.get(0))
        .db()?;
    if known {
        Ok(None)
    } else {
        Err(Error::NotFound("inbox"))
    }
}
