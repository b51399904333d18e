//! Inboxes and the threads of their customers.

use std::collections::BTreeMap;

use chat_core::{
    ConversationId, Error, Inbox, InboxId, InboxSecrets, Result, StorageKind, TenantId, WebhookId,
};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::codec::ns;
use crate::error::Db;
use crate::store::PostgresStore;

const COLUMNS: &str = "id, tenant_id, name, kind, token_digest, webhook_id, settings, secrets, \
    created_ns, updated_ns";

fn from_ns(value: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn map(text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| {
        Error::storage_kind(StorageKind::Corrupt, format!("unreadable inbox row: {e}"))
    })
}

fn inbox_from_row(row: &Row) -> Result<Inbox> {
    Ok(Inbox {
        id: InboxId(row.get(0)),
        tenant_id: TenantId(row.get(1)),
        name: row.get(2),
        kind: row.get::<_, String>(3).parse()?,
        token_digest: row.get(4),
        webhook_id: row.get::<_, Option<uuid::Uuid>>(5).map(WebhookId),
        settings: map(row.get(6))?,
        secrets: InboxSecrets(map(row.get(7))?),
        created_at: from_ns(row.get(8)),
        updated_at: from_ns(row.get(9)),
    })
}

impl PostgresStore {
    /// The compare-and-swap of [`chat_core::Store::replace_inbox`]: one `UPDATE` guarded
    /// by the tenant and the `updated_ns` the caller read.
    pub(crate) async fn replace_inbox_row(&self, i: &Inbox, seen: OffsetDateTime) -> Result<bool> {
        let client = self.client().await?;
        let json =
            |m: &BTreeMap<String, String>| serde_json::to_string(m).expect("strings serialize");
        let n = client
            .execute(
                "UPDATE inboxes SET name = $3, token_digest = $4, webhook_id = $5, settings = $6, \
                     secrets = $7, updated_ns = $8 \
                 WHERE id = $1 AND tenant_id = $2 AND updated_ns = $9",
                &[
                    &i.id.0,
                    &i.tenant_id.0,
                    &i.name,
                    &i.token_digest,
                    &i.webhook_id.map(|w| w.0),
                    &json(&i.settings),
                    &json(&i.secrets.0),
                    &ns(i.updated_at)?,
                    &ns(seen)?,
                ],
            )
            .await
            .db()?;
        Ok(n == 1)
    }

    pub(crate) async fn put_inbox_row(&self, i: &Inbox) -> Result<()> {
        let client = self.client().await?;
        let json =
            |m: &BTreeMap<String, String>| serde_json::to_string(m).expect("strings serialize");
        // The tenant condition makes an id of another tenant's inbox update nothing.
        let n = client
            .execute(
                "INSERT INTO inboxes (id, tenant_id, name, kind, token_digest, webhook_id, \
                     settings, secrets, created_ns, updated_ns) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                     token_digest = excluded.token_digest, webhook_id = excluded.webhook_id, \
                     settings = excluded.settings, secrets = excluded.secrets, \
                     updated_ns = excluded.updated_ns \
                 WHERE inboxes.tenant_id = excluded.tenant_id",
                &[
                    &i.id.0,
                    &i.tenant_id.0,
                    &i.name,
                    &i.kind.as_str(),
                    &i.token_digest,
                    &i.webhook_id.map(|w| w.0),
                    &json(&i.settings),
                    &json(&i.secrets.0),
                    &ns(i.created_at)?,
                    &ns(i.updated_at)?,
                ],
            )
            .await
            .db()?;
        if n == 0 {
            return Err(Error::duplicate("inbox exists"));
        }
        Ok(())
    }

    pub(crate) async fn delete_inbox_row(&self, tenant: TenantId, id: InboxId) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM inboxes WHERE id = $1 AND tenant_id = $2",
                &[&id.0, &tenant.0],
            )
            .await
            .db()?;
        if n == 0 {
            return Err(Error::NotFound("inbox"));
        }
        Ok(())
    }

    pub(crate) async fn inbox_rows(&self, tenant: TenantId) -> Result<Vec<Inbox>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM inboxes WHERE tenant_id = $1 ORDER BY created_ns, id"
                ),
                &[&tenant.0],
            )
            .await
            .db()?;
        rows.iter().map(inbox_from_row).collect()
    }

    pub(crate) async fn inbox_row(&self, id: InboxId) -> Result<Option<Inbox>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM inboxes WHERE id = $1"),
                &[&id.0],
            )
            .await
            .db()?;
        row.as_ref().map(inbox_from_row).transpose()
    }

    pub(crate) async fn inbox_thread_row(
        &self,
        inbox: InboxId,
        external: &str,
    ) -> Result<Option<ConversationId>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT conversation_id FROM inbox_threads \
                 WHERE inbox_id = $1 AND external_id = $2",
                &[&inbox.0, &external],
            )
            .await
            .db()?;
        Ok(row.map(|r| ConversationId(r.get(0))))
    }

    pub(crate) async fn link_inbox_thread_row(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        external: &str,
        conversation: ConversationId,
    ) -> Result<ConversationId> {
        let client = self.client().await?;
        // Insert unless linked, then read whichever link stands: two servers racing for
        // one customer agree on the first.
        let row = client
            .query_opt(
                "WITH known AS (SELECT id FROM inboxes WHERE id = $1 AND tenant_id = $3), \
                 added AS (INSERT INTO inbox_threads (inbox_id, external_id, tenant_id, \
                     conversation_id) SELECT id, $2, $3, $4 FROM known \
                     ON CONFLICT (inbox_id, external_id) DO NOTHING RETURNING conversation_id) \
                 SELECT conversation_id FROM added \
                 UNION ALL SELECT conversation_id FROM inbox_threads \
                     WHERE inbox_id = $1 AND external_id = $2 \
                 LIMIT 1",
                &[&inbox.0, &external, &tenant.0, &conversation.0],
            )
            .await
            .db()?;
        row.map(|r| ConversationId(r.get(0)))
            .ok_or(Error::NotFound("inbox"))
    }

    pub(crate) async fn poll_inbox_row(
        &self,
        inbox: InboxId,
        node: &str,
        offset: i64,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<i64>> {
        let client = self.client().await?;
        // One statement: the row lock orders two nodes' steps, and the second sees the
        // first's lease.
        let row = client
            .query_opt(
                "WITH stepped AS (UPDATE inboxes SET poll_node = $2, poll_until_ns = $5, \
                     poll_offset = greatest(poll_offset, $3) \
                     WHERE id = $1 AND (poll_node IS NULL OR poll_node = $2 \
                         OR poll_until_ns <= $4) \
                     RETURNING poll_offset) \
                 SELECT (SELECT poll_offset FROM stepped), \
                     EXISTS (SELECT 1 FROM inboxes WHERE id = $1)",
                &[&inbox.0, &node, &offset, &ns(now)?, &ns(until)?],
            )
            .await
            .db()?;
        match row {
            Some(r) if r.get::<_, bool>(1) => Ok(r.get::<_, Option<i64>>(0)),
            _ => Err(Error::NotFound("inbox")),
        }
    }
}
