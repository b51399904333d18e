//! Webhooks and their outbox (`webhook_deliveries`). The outbox rows themselves are
//! written by [`crate::write::append_event`], with every event.

use chat_core::{
    ConversationId, Delivery, DeliveryOutcome, DeliveryState, Error, Event, Result, TenantId,
    Webhook, WebhookId, WebhookSecret, WebhookState,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use crate::codec::{from_ns, int, limit, ns, ns_opt};
use crate::error::{Db, corrupt_row};
use crate::write::append_event;
use crate::writer::Session;

const WEBHOOK_COLUMNS: &str =
    "id, tenant_id, url, kinds, secret, state, failing_since_ns, created_ns, updated_ns";

const DELIVERY_COLUMNS: &str = "webhook_id, seq, tenant_id, conversation_id, kind, state, \
    attempts, next_attempt_ns, last_status, last_error, response_ms, created_ns, delivered_ns";

fn webhook_from_row(row: &Row<'_>) -> Result<Webhook> {
    let get = |row: &Row<'_>| -> rusqlite::Result<_> {
        Ok((
            row.get::<_, uuid::Uuid>(0)?,
            row.get::<_, uuid::Uuid>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, String>(5)?,
            row.get::<_, Option<i64>>(6)?,
            row.get::<_, i64>(7)?,
            row.get::<_, i64>(8)?,
        ))
    };
    let (id, tenant, url, kinds, secret, state, failing, created, updated) =
        get(row).map_err(|e| corrupt_row("webhook", e))?;
    Ok(Webhook {
        id: WebhookId(id),
        tenant_id: TenantId(tenant),
        url,
        events: kinds.split_whitespace().map(str::to_owned).collect(),
        secret: WebhookSecret(secret),
        state: state.parse()?,
        failing_since: failing.map(from_ns),
        created_at: from_ns(created),
        updated_at: from_ns(updated),
    })
}

pub(crate) fn delivery_from_row(row: &Row<'_>) -> Result<Delivery> {
    let bad = |e: rusqlite::Error| corrupt_row("webhook delivery", e);
    Ok(Delivery {
        webhook_id: WebhookId(row.get(0).map_err(bad)?),
        seq: row.get::<_, i64>(1).map_err(bad)? as u64,
        tenant_id: TenantId(row.get(2).map_err(bad)?),
        conversation_id: row
            .get::<_, Option<uuid::Uuid>>(3)
            .map_err(bad)?
            .map(ConversationId),
        kind: row.get(4).map_err(bad)?,
        state: row.get::<_, String>(5).map_err(bad)?.parse()?,
        attempts: row.get::<_, i64>(6).map_err(bad)? as u32,
        next_attempt_at: from_ns(row.get(7).map_err(bad)?),
        last_status: row.get::<_, Option<i64>>(8).map_err(bad)?.map(|s| s as u16),
        last_error: row.get(9).map_err(bad)?,
        response_ms: row
            .get::<_, Option<i64>>(10)
            .map_err(bad)?
            .map(|m| m as u64),
        created_at: from_ns(row.get(11).map_err(bad)?),
        delivered_at: row.get::<_, Option<i64>>(12).map_err(bad)?.map(from_ns),
    })
}

pub(crate) fn put_webhook(s: &mut Session<'_>, w: &Webhook) -> Result<()> {
    // Events of the tenant from now on go to the outbox (see `write::append_event`).
    s.cache.set_has_webhooks(w.tenant_id, true);
    let conn: &Connection = s;
    let owner: Option<uuid::Uuid> = conn
        .prepare_cached("SELECT tenant_id FROM webhooks WHERE id = ?1")
        .db()?
        .query_row([w.id.0], |row| row.get(0))
        .optional()
        .db()?;
    if owner.is_some_and(|t| t != w.tenant_id.0) {
        return Err(Error::duplicate("webhook exists"));
    }
    conn.prepare_cached(
        "INSERT INTO webhooks (id, tenant_id, url, kinds, secret, state, failing_since_ns, \
             created_ns, updated_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (id) DO UPDATE SET url = excluded.url, kinds = excluded.kinds, \
             secret = excluded.secret, state = excluded.state, \
             failing_since_ns = excluded.failing_since_ns, updated_ns = excluded.updated_ns",
    )
    .db()?
    .execute(params![
        w.id.0,
        w.tenant_id.0,
        w.url,
        w.kinds_key(),
        w.secret.0,
        w.state.as_str(),
        ns_opt(w.failing_since)?,
        ns(w.created_at)?,
        ns(w.updated_at)?
    ])
    .db()?;
    Ok(())
}

pub(crate) fn delete_webhook(s: &mut Session<'_>, tenant: TenantId, id: WebhookId) -> Result<()> {
    // Perhaps its last: looked up again at the tenant's next event.
    s.cache.forget_has_webhooks(tenant);
    let conn: &Connection = s;
    // The deliveries go by the foreign key's cascade.
    let deleted = conn
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1 AND tenant_id = ?2")
        .db()?
        .execute(params![id.0, tenant.0])
        .db()?;
    if deleted == 0 {
        return Err(Error::NotFound("webhook"));
    }
    Ok(())
}

pub(crate) fn webhooks(conn: &Connection, tenant: TenantId) -> Result<Vec<Webhook>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = ?1 ORDER BY created_ns, id"
        ))
        .db()?;
    let mut rows = stmt.query([tenant.0]).db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(webhook_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn claim_deliveries(
    conn: &Connection,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    max: usize,
) -> Result<Vec<Delivery>> {
    // Oldest pending of its webhook and conversation: no pending one with a smaller seq
    // (a NULL conversation matches nothing, so those never wait).
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
             WHERE d.state = 'pending' AND d.next_attempt_ns <= ?1 \
               AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.state = 'active') \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
                   WHERE p.webhook_id = d.webhook_id AND p.conversation_id = d.conversation_id \
                     AND p.state = 'pending' AND p.seq < d.seq) \
             ORDER BY d.next_attempt_ns, d.seq LIMIT ?2"
        ))
        .db()?;
    let mut rows = stmt.query(params![ns(now)?, limit(max)]).db()?;
    let mut due = Vec::new();
    while let Some(row) = rows.next().db()? {
        due.push(delivery_from_row(row)?);
    }
    drop(rows);
    let mut lease = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_ns = ?3 WHERE webhook_id = ?1 AND seq = ?2",
        )
        .db()?;
    for d in &due {
        lease
            .execute(params![d.webhook_id.0, int(d.seq), ns(lease_until)?])
            .db()?;
    }
    Ok(due)
}

pub(crate) fn record_delivery(
    s: &mut Session<'_>,
    outcome: &DeliveryOutcome,
) -> Result<Option<Event>> {
    let updated = s
        .prepare_cached(
            "UPDATE webhook_deliveries SET state = ?3, attempts = ?4, next_attempt_ns = ?5, \
                 last_status = ?6, last_error = ?7, response_ms = ?8, \
                 delivered_ns = coalesce(?9, delivered_ns) \
             WHERE webhook_id = ?1 AND seq = ?2 AND tenant_id = ?10",
        )
        .db()?
        .execute(params![
            outcome.webhook_id.0,
            int(outcome.seq),
            outcome.state.as_str(),
            i64::from(outcome.attempts),
            ns(outcome.next_attempt_at)?,
            outcome.last_status.map(i64::from),
            outcome.last_error,
            int(outcome.response_ms),
            ns_opt(outcome.succeeded().then_some(outcome.at))?,
            outcome.tenant_id.0
        ])
        .db()?;
    if updated == 0 {
        return Ok(None);
    }
    if outcome.succeeded() {
        s.prepare_cached("UPDATE webhooks SET failing_since_ns = NULL WHERE id = ?1")
            .db()?
            .execute([outcome.webhook_id.0])
            .db()?;
        return Ok(None);
    }
    let (since, state): (i64, String) = s
        .prepare_cached(
            "UPDATE webhooks SET failing_since_ns = coalesce(failing_since_ns, ?2) \
             WHERE id = ?1 RETURNING failing_since_ns, state",
        )
        .db()?
        .query_row(params![outcome.webhook_id.0, ns(outcome.at)?], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .db()?;
    match &outcome.pause {
        Some((threshold, event))
            if since <= ns(*threshold)? && state == WebhookState::Active.as_str() =>
        {
            s.prepare_cached("UPDATE webhooks SET state = 'paused' WHERE id = ?1")
                .db()?
                .execute([outcome.webhook_id.0])
                .db()?;
            append_event(s, event.clone()).map(Some)
        }
        _ => Ok(None),
    }
}

pub(crate) fn deliveries(
    conn: &Connection,
    tenant: TenantId,
    webhook: WebhookId,
    before: Option<u64>,
    max: usize,
) -> Result<Vec<Delivery>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
             WHERE webhook_id = ?1 AND tenant_id = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"
        ))
        .db()?;
    let mut rows = stmt
        .query(params![
            webhook.0,
            tenant.0,
            before.map_or(i64::MAX, int),
            limit(max)
        ])
        .db()?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().db()? {
        out.push(delivery_from_row(row)?);
    }
    Ok(out)
}

pub(crate) fn redeliver(
    conn: &Connection,
    tenant: TenantId,
    webhook: WebhookId,
    seq: u64,
    now: OffsetDateTime,
) -> Result<Delivery> {
    conn.prepare_cached(&format!(
        "UPDATE webhook_deliveries SET state = ?4, next_attempt_ns = ?5 \
         WHERE webhook_id = ?1 AND seq = ?2 AND tenant_id = ?3 RETURNING {DELIVERY_COLUMNS}"
    ))
    .db()?
    .query_row(
        params![
            webhook.0,
            int(seq),
            tenant.0,
            DeliveryState::Pending.as_str(),
            ns(now)?
        ],
        |row| Ok(delivery_from_row(row)),
    )
    .optional()
    .db()?
    .ok_or(Error::NotFound("delivery"))?
}
