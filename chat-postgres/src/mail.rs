//! The mail outbox (`mail_outbox`): queued, claimed and recorded here; its rows go with
//! their conversation by the foreign key's cascade.

use chat_core::{ConversationId, Error, Mail, MailId, MailOutcome, Result, TenantId};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::codec::{limit, ns, ns_opt};
use crate::error::Db;
use crate::outbox::Claim;
use crate::store::PostgresStore;

const COLUMNS: &str = "id, tenant_id, conversation_id, kind, requested_by, recipient, subject, \
    text_body, html_body, message_id, refs, state, attempts, next_attempt_ns, last_error, \
    created_ns, sent_ns";

fn from_ns(value: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn mail_from_row(row: &Row) -> Result<Mail> {
    Ok(Mail {
        id: MailId(row.get(0)),
        tenant_id: TenantId(row.get(1)),
        conversation_id: ConversationId(row.get(2)),
        kind: row.get::<_, String>(3).parse()?,
        requested_by: row.get(4),
        to: row.get(5),
        subject: row.get(6),
        text: row.get(7),
        html: row.get(8),
        message_id: row.get(9),
        references: row
            .get::<_, String>(10)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        state: row.get::<_, String>(11).parse()?,
        attempts: u32::try_from(row.get::<_, i64>(12)).unwrap_or(u32::MAX),
        next_attempt_at: from_ns(row.get(13)),
        last_error: row.get(14),
        created_at: from_ns(row.get(15)),
        sent_at: row.get::<_, Option<i64>>(16).map(from_ns),
    })
}

impl PostgresStore {
    pub(crate) async fn queue_mail_row(
        &self,
        m: &Mail,
        once_since: Option<OffsetDateTime>,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // The conversation's row lock orders two requests for one conversation, so the
        // second sees the first's mail.
        let known = tx
            .query_opt(
                "SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
                &[&m.conversation_id.0, &m.tenant_id.0],
            )
            .await
            .db()?;
        if known.is_none() {
            return Err(Error::NotFound("conversation"));
        }
        if let Some(since) = once_since {
            let recent = tx
                .query_opt(
                    "SELECT 1 FROM mail_outbox WHERE conversation_id = $1 AND kind = $2 \
                     AND requested_by = $3 AND created_ns >= $4 LIMIT 1",
                    &[
                        &m.conversation_id.0,
                        &m.kind.as_str(),
                        &m.requested_by,
                        &ns(since)?,
                    ],
                )
                .await
                .db()?;
            if recent.is_some() {
                return Ok(false);
            }
        }
        let inserted = tx
            .execute(
            &format!(
                "INSERT INTO mail_outbox ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                     $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (id) DO NOTHING"
            ),
            &[
                &m.id.0,
                &m.tenant_id.0,
                &m.conversation_id.0,
                &m.kind.as_str(),
                &m.requested_by,
                &m.to,
                &m.subject,
                &m.text,
                &m.html,
                &m.message_id,
                &m.references.join(" "),
                &m.state.as_str(),
                &i64::from(m.attempts),
                &ns(m.next_attempt_at)?,
                &m.last_error,
                &ns(m.created_at)?,
                &ns_opt(m.sent_at)?,
            ],
        )
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(inserted == 1)
    }

    pub(crate) async fn claim_mail_rows(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<Mail>> {
        let claim = Claim {
            table: "mail_outbox",
            alias: "m",
            key: &["id"],
            also_when: None,
            order: "m.next_attempt_ns, m.id",
            columns: COLUMNS,
        };
        let rows = self.claim_outbox(&claim, now, lease_until, max).await?;
        let mut due = rows
            .iter()
            .map(|row| {
                let mut m = mail_from_row(row)?;
                m.next_attempt_at = from_ns(row.get(claim.was_index()));
                Ok(m)
            })
            .collect::<Result<Vec<_>>>()?;
        due.sort_by_key(|m| (m.next_attempt_at, m.id));
        Ok(due)
    }

    pub(crate) async fn record_mail_row(&self, o: &MailOutcome) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE mail_outbox SET state = $3, attempts = $4, next_attempt_ns = $5, \
                     last_error = $6, sent_ns = $7 WHERE id = $1 AND tenant_id = $2",
                &[
                    &o.id.0,
                    &o.tenant_id.0,
                    &o.state.as_str(),
                    &i64::from(o.attempts),
                    &ns(o.next_attempt_at)?,
                    &o.last_error,
                    &ns_opt(o.sent_at)?,
                ],
            )
            .await
            .db()?;
        Ok(())
    }

    pub(crate) async fn mail_rows(&self, tenant: TenantId, max: usize) -> Result<Vec<Mail>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM mail_outbox WHERE tenant_id = $1 \
                     ORDER BY created_ns DESC, id DESC LIMIT $2"
                ),
                &[&tenant.0, &limit(max)],
            )
            .await
            .db()?;
        rows.iter().map(mail_from_row).collect()
    }
}
