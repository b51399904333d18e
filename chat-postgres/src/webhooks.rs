//! Webhooks and their outbox (`webhook_deliveries`). The outbox rows themselves are
//! written by the events' insert (`store::log_events`), in the events' transaction.

use chat_core::{
    ConversationId, Delivery, DeliveryOutcome, DeliveryState, Error, Event, Result, TenantId,
    Webhook, WebhookId, WebhookSecret, WebhookState,
};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::codec::{int, limit, ns, ns_opt};
use crate::error::Db;
use crate::outbox::Claim;
use crate::store::{PostgresStore, log_one};

const WEBHOOK_COLUMNS: &str =
    "id, tenant_id, url, kinds, secret, state, failing_since_ns, created_ns, updated_ns";

const DELIVERY_COLUMNS: &str = "webhook_id, seq, tenant_id, conversation_id, kind, state, \
    attempts, next_attempt_ns, last_status, last_error, response_ms, created_ns, delivered_ns";

fn from_ns(value: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn webhook_from_row(row: &Row) -> Result<Webhook> {
    Ok(Webhook {
        id: WebhookId(row.get(0)),
        tenant_id: TenantId(row.get(1)),
        url: row.get(2),
        events: row
            .get::<_, String>(3)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        secret: WebhookSecret(row.get(4)),
        state: row.get::<_, String>(5).parse()?,
        failing_since: row.get::<_, Option<i64>>(6).map(from_ns),
        created_at: from_ns(row.get(7)),
        updated_at: from_ns(row.get(8)),
    })
}

fn delivery_from_row(row: &Row) -> Result<Delivery> {
    Ok(Delivery {
        webhook_id: WebhookId(row.get(0)),
        seq: row.get::<_, i64>(1) as u64,
        tenant_id: TenantId(row.get(2)),
        conversation_id: row.get::<_, Option<uuid::Uuid>>(3).map(ConversationId),
        kind: row.get(4),
        state: row.get::<_, String>(5).parse()?,
        attempts: row.get::<_, i32>(6) as u32,
        next_attempt_at: from_ns(row.get(7)),
        last_status: row.get::<_, Option<i32>>(8).map(|s| s as u16),
        last_error: row.get(9),
        response_ms: row.get::<_, Option<i64>>(10).map(|m| m as u64),
        created_at: from_ns(row.get(11)),
        delivered_at: row.get::<_, Option<i64>>(12).map(from_ns),
    })
}

impl PostgresStore {
    pub(crate) async fn put_webhook_row(&self, w: &Webhook) -> Result<()> {
        let client = self.client().await?;
        // The tenant condition makes an id of another tenant's webhook update nothing.
        let n = client
            .execute(
                "INSERT INTO webhooks (id, tenant_id, url, kinds, secret, state, failing_since_ns, \
                     created_ns, updated_ns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, kinds = excluded.kinds, \
                     secret = excluded.secret, state = excluded.state, \
                     failing_since_ns = excluded.failing_since_ns, updated_ns = excluded.updated_ns \
                 WHERE webhooks.tenant_id = excluded.tenant_id",
                &[
                    &w.id.0,
                    &w.tenant_id.0,
                    &w.url,
                    &w.kinds_key(),
                    &w.secret.0,
                    &w.state.as_str(),
                    &ns_opt(w.failing_since)?,
                    &ns(w.created_at)?,
                    &ns(w.updated_at)?,
                ],
            )
            .await
            .db()?;
        if n == 0 {
            return Err(Error::duplicate("webhook exists"));
        }
        Ok(())
    }

    pub(crate) async fn delete_webhook_row(&self, tenant: TenantId, id: WebhookId) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2",
                &[&id.0, &tenant.0],
            )
            .await
            .db()?;
        if n == 0 {
            return Err(Error::NotFound("webhook"));
        }
        Ok(())
    }

    pub(crate) async fn webhook_rows(&self, tenant: TenantId) -> Result<Vec<Webhook>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 \
                     ORDER BY created_ns, id"
                ),
                &[&tenant.0],
            )
            .await
            .db()?;
        rows.iter().map(webhook_from_row).collect()
    }

    pub(crate) async fn claim_delivery_rows(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        // A later delivery of a conversation whose head another node holds is still
        // excluded by NOT EXISTS (the head is pending until its attempt is recorded).
        let claim = Claim {
            table: "webhook_deliveries",
            alias: "d",
            key: &["webhook_id", "seq"],
            also_when: Some(
                "EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id \
                     AND w.state = 'active') \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
                     WHERE p.webhook_id = d.webhook_id \
                       AND p.conversation_id = d.conversation_id \
                       AND p.state = 'pending' AND p.seq < d.seq)",
            ),
            order: "d.next_attempt_ns, d.seq",
            columns: DELIVERY_COLUMNS,
        };
        let rows = self.claim_outbox(&claim, now, lease_until, max).await?;
        let mut due = rows
            .iter()
            .map(|row| {
                let mut d = delivery_from_row(row)?;
                d.next_attempt_at = from_ns(row.get(claim.was_index()));
                Ok(d)
            })
            .collect::<Result<Vec<_>>>()?;
        due.sort_by_key(|d| (d.next_attempt_at, d.seq));
        Ok(due)
    }

    pub(crate) async fn record_delivery_row(
        &self,
        outcome: &DeliveryOutcome,
    ) -> Result<Option<Event>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let updated = tx
            .execute(
                "UPDATE webhook_deliveries SET state = $3, attempts = $4, next_attempt_ns = $5, \
                     last_status = $6, last_error = $7, response_ms = $8, \
                     delivered_ns = coalesce($9, delivered_ns) \
                 WHERE webhook_id = $1 AND seq = $2 AND tenant_id = $10",
                &[
                    &outcome.webhook_id.0,
                    &int(outcome.seq),
                    &outcome.state.as_str(),
                    &(outcome.attempts as i32),
                    &ns(outcome.next_attempt_at)?,
                    &outcome.last_status.map(i32::from),
                    &outcome.last_error,
                    &int(outcome.response_ms),
                    &ns_opt(outcome.succeeded().then_some(outcome.at))?,
                    &outcome.tenant_id.0,
                ],
            )
            .await
            .db()?;
        if updated == 0 {
            return Ok(None);
        }
        let mut event = None;
        if outcome.succeeded() {
            tx.execute(
                "UPDATE webhooks SET failing_since_ns = NULL WHERE id = $1",
                &[&outcome.webhook_id.0],
            )
            .await
            .db()?;
        } else {
            let row = tx
                .query_one(
                    "UPDATE webhooks SET failing_since_ns = coalesce(failing_since_ns, $2) \
                     WHERE id = $1 RETURNING failing_since_ns, state",
                    &[&outcome.webhook_id.0, &ns(outcome.at)?],
                )
                .await
                .db()?;
            let since: i64 = row.get(0);
            let state: String = row.get(1);
            if let Some((threshold, pause)) = &outcome.pause
                && since <= ns(*threshold)?
                && state == WebhookState::Active.as_str()
            {
                tx.execute(
                    "UPDATE webhooks SET state = 'paused' WHERE id = $1",
                    &[&outcome.webhook_id.0],
                )
                .await
                .db()?;
                event = Some(log_one(&tx, pause.clone()).await?);
            }
        }
        tx.commit().await.db()?;
        Ok(event)
    }

    pub(crate) async fn delivery_rows(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        before: Option<u64>,
        max: usize,
    ) -> Result<Vec<Delivery>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                     WHERE webhook_id = $1 AND tenant_id = $2 AND seq < $3 \
                     ORDER BY seq DESC LIMIT $4"
                ),
                &[
                    &webhook.0,
                    &tenant.0,
                    &before.map_or(i64::MAX, int),
                    &limit(max),
                ],
            )
            .await
            .db()?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub(crate) async fn redeliver_row(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        seq: u64,
        now: OffsetDateTime,
    ) -> Result<Delivery> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE webhook_deliveries SET state = $4, next_attempt_ns = $5 \
                     WHERE webhook_id = $1 AND seq = $2 AND tenant_id = $3 \
                     RETURNING {DELIVERY_COLUMNS}"
                ),
                &[
                    &webhook.0,
                    &int(seq),
                    &tenant.0,
                    &DeliveryState::Pending.as_str(),
                    &ns(now)?,
                ],
            )
            .await
            .db()?
            .ok_or(Error::NotFound("delivery"))?;
        delivery_from_row(&row)
    }
}
