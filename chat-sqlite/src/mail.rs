//! The mail outbox (`mail_outbox`): queued, claimed and recorded here; its rows go with
//! their conversation by the foreign key's cascade.

use chat_core::{ConversationId, Error, Mail, MailId, MailOutcome, Result, TenantId};
use rusqlite::{Connection, Row, params};
use time::OffsetDateTime;

use crate::codec::{from_ns, limit, ns, ns_opt};
use crate::error::{Db, corrupt_row};

const COLUMNS: &str = "id, tenant_id, conversation_id, kind, requested_by, recipient, subject, \
    text_body, html_body, message_id, refs, state, attempts, next_attempt_ns, last_error, \
    created_ns, sent_ns";

fn mail_from_row(row: &Row<'_>) -> Result<Mail> {
    let bad = |e: rusqlite::Error| corrupt_row("mail", e);
    Ok(Mail {
        id: MailId(row.get(0).map_err(bad)?),
        tenant_id: TenantId(row.get(1).map_err(bad)?),
        conversation_id: ConversationId(row.get(2).map_err(bad)?),
        kind: row.get::<_, String>(3).map_err(bad)?.parse()?,
        requested_by: row.get(4).map_err(bad)?,
        to: row.get(5).map_err(bad)?,
        subject: row.get(6).map_err(bad)?,
        text: row.get(7).map_err(bad)?,
        html: row.get(8).map_err(bad)?,
        message_id: row.get(9).map_err(bad)?,
        references: row
            .get::<_, String>(10)
            .map_err(bad)?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        state: row.get::<_, String>(11).map_err(bad)?.parse()?,
        attempts: u32::try_from(row.get::<_, i64>(12).map_err(bad)?).unwrap_or(u32::MAX),
        next_attempt_at: from_ns(row.get(13).map_err(bad)?),
        last_error: row.get(14).map_err(bad)?,
        created_at: from_ns(row.get(15).map_err(bad)?),
        sent_at: row.get::<_, Option<i64>>(16).map_err(bad)?.map(from_ns),
    })
}

pub(crate) fn queue_mail(
    conn: &Connection,
    m: &Mail,
    once_since: Option<OffsetDateTime>,
) -> Result<bool> {
    let known: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1 AND tenant_id = ?2)",
        )
        .db()?
        .query_row(params![m.conversation_id.0, m.tenant_id.0], |row| {
            row.get(0)
        })
        .db()?;
    if !known {
        return Err(Error::NotFound("conversation"));
    }
    if let Some(since) = once_since {
        let recent: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM mail_outbox WHERE conversation_id = ?1 \
                 AND kind = ?2 AND requested_by = ?3 AND created_ns >= ?4)",
            )
            .db()?
            .query_row(
                params![
                    m.conversation_id.0,
                    m.kind.as_str(),
                    m.requested_by,
                    ns(since)?
                ],
                |row| row.get(0),
            )
            .db()?;
        if recent {
            return Ok(false);
        }
    }
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT INTO mail_outbox ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15, ?16, ?17) ON CONFLICT (id) DO NOTHING"
        ))
        .db()?
        .execute(params![
            m.id.0,
            m.tenant_id.0,
            m.conversation_id.0,
            m.kind.as_str(),
            m.requested_by,
            m.to,
            m.subject,
            m.text,
            m.html,
            m.message_id,
            m.references.join(" "),
            m.state.as_str(),
            i64::from(m.attempts),
            ns(m.next_attempt_at)?,
            m.last_error,
            ns(m.created_at)?,
            ns_opt(m.sent_at)?
        ])
        .db()?;
    Ok(inserted == 1)
}

pub(crate) fn any_due(conn: &Connection, now: OffsetDateTime) -> Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM mail_outbox WHERE state = 'pending' AND next_attempt_ns <= ?1 LIMIT 1",
    )
    .db()?
    .exists([ns(now)?])
    .db()
}

pub(crate) fn claim_mails(
    conn: &Connection,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    max: usize,
) -> Result<Vec<Mail>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE state = 'pending' AND next_attempt_ns <= ?1 \
             ORDER BY next_attempt_ns, id LIMIT ?2"
        ))
        .db()?;
    let mut rows = stmt.query(params![ns(now)?, limit(max)]).db()?;
    let mut due = Vec::new();
    while let Some(row) = rows.next().db()? {
        due.push(mail_from_row(row)?);
    }
    drop(rows);
    let mut lease = conn
        .prepare_cached("UPDATE mail_outbox SET next_attempt_ns = ?2 WHERE id = ?1")
        .db()?;
    for m in &due {
        lease.execute(params![m.id.0, ns(lease_until)?]).db()?;
    }
    Ok(due)
}

pub(crate) fn record_mail(conn: &Connection, o: &MailOutcome) -> Result<()> {
    conn.prepare_cached(
        "UPDATE mail_outbox SET state = ?3, attempts = ?4, next_attempt_ns = ?5, \
             last_error = ?6, sent_ns = ?7 WHERE id = ?1 AND tenant_id = ?2",
    )
    .db()?
    .execute(params![
        o.id.0,
        o.tenant_id.0,
        o.state.as_str(),
        i64::from(o.attempts),
        ns(o.next_attempt_at)?,
        o.last_error,
        ns_opt(o.sent_at)?
    ])
    .db()?;
    Ok(())
}

pub(crate) fn mails(conn: &Connection, tenant: TenantId, max: usize) -> Result<Vec<Mail>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM mail_outbox WHERE tenant_id = ?1 \
             ORDER BY created_ns DESC, id DESC LIMIT ?2"
        ))
        .db()?;
    let mut rows = stmt.query(params![tenant.0, limit(max)]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(mail_from_row(row)?);
    }
    Ok(out)
}
