//! chat-core's [`Credentials`] on PostgreSQL: staff password hashes and token versions,
//! visitor and bot tokens (digests only), customer accounts and their login names.

use async_trait::async_trait;
use chat_core::{
    Account, AgentId, BotToken, Contact, ContactId, Credential, Credentials, Error, Event,
    NewEvent, Result, Tenant, TenantId, VisitorToken,
};
use deadpool_postgres::Transaction;
use time::OffsetDateTime;
use tokio_postgres::types::Json;

use crate::codec::{all, json, ns, one};
use crate::error::Db;
use crate::store::{PostgresStore, insert_contact_in, log_one};

/// Appends the `credentials_changed` event of a credential change in the change's own
/// transaction, so the change is never committed without it.
async fn changed(tx: &Transaction<'_>, tenant: TenantId, at: OffsetDateTime) -> Result<Event> {
    log_one(tx, NewEvent::credentials_changed(tenant, at)).await
}

/// A login name as stored and looked up: trimmed and lower-case.
fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// [`Error::NotFound`] unless the agent belongs to the tenant.
async fn check_agent(tx: &Transaction<'_>, tenant: TenantId, agent: AgentId) -> Result<()> {
    let found = tx
        .query_opt(
            "SELECT 1 FROM agents WHERE id = $1 AND tenant_id = $2",
            &[&agent.0, &tenant.0],
        )
        .await
        .db()?;
    found.map(|_| ()).ok_or(Error::NotFound("agent"))
}

/// Bumps an agent's token version (setting the hash too, if given) and logs the change;
/// returns the version and the event.
async fn bump(
    store: &PostgresStore,
    tenant: TenantId,
    agent: AgentId,
    hash: Option<&str>,
    at: OffsetDateTime,
) -> Result<(u64, Event)> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.db()?;
    check_agent(&tx, tenant, agent).await?;
    let version: i64 = tx
        .query_one(
            "INSERT INTO credentials (agent_id, password_hash, token_version) VALUES ($1, $2, 1) \
             ON CONFLICT (agent_id) DO UPDATE SET \
             password_hash = coalesce(EXCLUDED.password_hash, credentials.password_hash), \
             token_version = credentials.token_version + 1 RETURNING token_version",
            &[&agent.0, &hash],
        )
        .await
        .db()?
        .get(0);
    let event = changed(&tx, tenant, at).await?;
    tx.commit().await.db()?;
    Ok((version.max(0) as u64, event))
}

/// The account of a contact, locked for this transaction.
async fn lock_account(
    tx: &Transaction<'_>,
    tenant: TenantId,
    contact: ContactId,
) -> Result<Account> {
    let row = tx
        .query_opt(
            "SELECT data FROM accounts WHERE contact_id = $1 AND tenant_id = $2 FOR UPDATE",
            &[&contact.0, &tenant.0],
        )
        .await
        .db()?;
    one(row)?.ok_or(Error::NotFound("account"))
}

async fn delete_visitor_tokens(
    tx: &Transaction<'_>,
    tenant: TenantId,
    contact: ContactId,
) -> Result<u64> {
    tx.execute(
        "DELETE FROM visitor_tokens WHERE tenant_id = $1 AND contact_id = $2",
        &[&tenant.0, &contact.0],
    )
    .await
    .db()
}

#[async_trait]
impl Credentials for PostgresStore {
    async fn tenants(&self) -> Result<Vec<Tenant>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT data FROM tenants ORDER BY created_at_ns, id", &[])
            .await
            .db()?;
        all(&rows)
    }

    async fn set_password(
        &self,
        tenant: TenantId,
        agent: AgentId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<(u64, Event)> {
        bump(self, tenant, agent, Some(hash), at).await
    }

    async fn revoke_tokens(
        &self,
        tenant: TenantId,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<(u64, Event)> {
        bump(self, tenant, agent, None, at).await
    }

    async fn credential(&self, tenant: TenantId, agent: AgentId) -> Result<Credential> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT c.password_hash, c.token_version, a.id IS NOT NULL FROM agents a \
                 LEFT JOIN credentials c ON c.agent_id = a.id WHERE a.id = $1 AND a.tenant_id = $2",
                &[&agent.0, &tenant.0],
            )
            .await
            .db()?
            .ok_or(Error::NotFound("agent"))?;
        Ok(Credential {
            password_hash: row.get(0),
            token_version: row.get::<_, Option<i64>>(1).unwrap_or(0).max(0) as u64,
        })
    }

    async fn insert_visitor_token(&self, token: &VisitorToken) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO visitor_tokens (digest, tenant_id, contact_id, conversation_id, data) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &token.digest,
                    &token.tenant_id.0,
                    &token.contact_id.0,
                    &token.conversation_id.map(|c| c.0),
                    &Json(token),
                ],
            )
            .await
            .db()?;
        Ok(())
    }

    async fn visitor_token(&self, digest: &str) -> Result<Option<VisitorToken>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM visitor_tokens WHERE digest = $1",
                &[&digest],
            )
            .await
            .db()?;
        one(row)
    }

    async fn insert_bot_token(&self, token: &BotToken) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO bot_tokens (digest, tenant_id, created_at_ns, data) VALUES ($1, $2, $3, $4)",
                &[
                    &token.digest,
                    &token.tenant_id.0,
                    &ns(token.created_at)?,
                    &Json(token),
                ],
            )
            .await
            .db()?;
        Ok(())
    }

    async fn bot_token(&self, digest: &str) -> Result<Option<BotToken>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT data FROM bot_tokens WHERE digest = $1", &[&digest])
            .await
            .db()?;
        one(row)
    }

    async fn bot_tokens(&self, tenant: TenantId) -> Result<Vec<BotToken>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT data FROM bot_tokens WHERE tenant_id = $1 \
                 ORDER BY created_at_ns, digest COLLATE \"C\"",
                &[&tenant.0],
            )
            .await
            .db()?;
        all(&rows)
    }

    async fn revoke_bot_token(
        &self,
        tenant: TenantId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<Option<Event>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // `BotToken::id`: the digest's first 16 characters (the whole digest if shorter).
        let n = tx
            .execute(
                "DELETE FROM bot_tokens WHERE tenant_id = $1 AND left(digest, 16) = $2",
                &[&tenant.0, &id],
            )
            .await
            .db()?;
        if n == 0 {
            // Nothing changed: no event either (the transaction rolls back on drop).
            return Ok(None);
        }
        let event = changed(&tx, tenant, at).await?;
        tx.commit().await.db()?;
        Ok(Some(event))
    }

    async fn touch_bot_token(&self, digest: &str, at: OffsetDateTime) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let row = tx
            .query_opt(
                "SELECT data FROM bot_tokens WHERE digest = $1 FOR UPDATE",
                &[&digest],
            )
            .await
            .db()?;
        if let Some(mut token) = one::<BotToken>(row)? {
            token.last_used_at = Some(at);
            tx.execute(
                "UPDATE bot_tokens SET data = $2 WHERE digest = $1",
                &[&digest, &Json(&token)],
            )
            .await
            .db()?;
        }
        tx.commit().await.db()
    }

    async fn claim_signature(
        &self,
        digest: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let (expires_at, now) = (ns(expires_at)?, ns(now)?);
        let client = self.client().await?;
        // One statement decides, so two nodes claiming at once cannot both win: the
        // second insert waits for the first and then finds its row. A row that expired
        // is no replay of a fresh signature, so it is taken over.
        let claimed = client
            .execute(
                "INSERT INTO identity_signatures (digest, expires_at_ns) VALUES ($1, $2) \
                 ON CONFLICT (digest) DO UPDATE SET expires_at_ns = excluded.expires_at_ns \
                 WHERE identity_signatures.expires_at_ns < $3",
                &[&digest, &expires_at, &now],
            )
            .await
            .db()?;
        client
            .execute(
                "DELETE FROM identity_signatures WHERE expires_at_ns < $1",
                &[&now],
            )
            .await
            .db()?;
        Ok(claimed == 1)
    }

    async fn release_signature(&self, digest: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM identity_signatures WHERE digest = $1",
                &[&digest],
            )
            .await
            .db()?;
        Ok(())
    }

    async fn revoke_visitor_tokens(&self, tenant: TenantId, contact: ContactId) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let n = delete_visitor_tokens(&tx, tenant, contact).await?;
        tx.commit().await.db()?;
        Ok(n)
    }

    async fn reassign_visitor_tokens(
        &self,
        tenant: TenantId,
        from: ContactId,
        into: ContactId,
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let deleted = tx
            .execute(
                "DELETE FROM visitor_tokens WHERE tenant_id = $1 AND contact_id = $2 \
                 AND conversation_id IS NULL",
                &[&tenant.0, &from.0],
            )
            .await
            .db()?;
        let rows = tx
            .query(
                "SELECT data FROM visitor_tokens WHERE tenant_id = $1 AND contact_id = $2 FOR UPDATE",
                &[&tenant.0, &from.0],
            )
            .await
            .db()?;
        for row in rows {
            let mut token: VisitorToken = json(&row, 0, "visitor token")?;
            token.contact_id = into;
            tx.execute(
                "UPDATE visitor_tokens SET contact_id = $2, data = $3 WHERE digest = $1",
                &[&token.digest, &into.0, &Json(&token)],
            )
            .await
            .db()?;
        }
        tx.commit().await.db()?;
        Ok(deleted)
    }

    async fn create_account(
        &self,
        contact: &Contact,
        account: &Account,
        password_hash: &str,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        insert_contact_in(&tx, contact).await?;
        tx.execute(
            "INSERT INTO accounts (contact_id, tenant_id, email_lc, password_hash, data) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &contact.id.0,
                &account.tenant_id.0,
                &account.email.as_deref().map(str::to_ascii_lowercase),
                &password_hash,
                &Json(account),
            ],
        )
        .await
        .db()?;
        tx.execute(
            "INSERT INTO account_names (tenant_id, name_lc, contact_id) VALUES ($1, $2, $3)",
            &[
                &account.tenant_id.0,
                &name_key(&account.username),
                &contact.id.0,
            ],
        )
        .await
        .map_err(|e| match crate::error::map(e) {
            Error::Conflict(_) => Error::duplicate("username taken"),
            other => other,
        })?;
        tx.commit().await.db()
    }

    async fn account(&self, tenant: TenantId, contact: ContactId) -> Result<Option<Account>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM accounts WHERE contact_id = $1 AND tenant_id = $2",
                &[&contact.0, &tenant.0],
            )
            .await
            .db()?;
        one(row)
    }

    async fn account_by_name(&self, tenant: TenantId, name: &str) -> Result<Option<Account>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT a.data FROM account_names n JOIN accounts a ON a.contact_id = n.contact_id \
                 WHERE n.tenant_id = $1 AND n.name_lc = $2",
                &[&tenant.0, &name_key(name)],
            )
            .await
            .db()?;
        one(row)
    }

    async fn account_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Account>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM accounts WHERE tenant_id = $1 AND email_lc = $2",
                &[&tenant.0, &email.to_ascii_lowercase()],
            )
            .await
            .db()?;
        one(row)
    }

    async fn account_password_hash(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Result<Option<String>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT password_hash FROM accounts WHERE contact_id = $1 AND tenant_id = $2",
                &[&contact.0, &tenant.0],
            )
            .await
            .db()?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_account_password(
        &self,
        tenant: TenantId,
        contact: ContactId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let mut account = lock_account(&tx, tenant, contact).await?;
        account.updated_at = at;
        tx.execute(
            "UPDATE accounts SET password_hash = $2, data = $3 WHERE contact_id = $1",
            &[&contact.0, &hash, &Json(&account)],
        )
        .await
        .db()?;
        delete_visitor_tokens(&tx, tenant, contact).await?;
        let event = changed(&tx, tenant, at).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn set_account_disabled(
        &self,
        tenant: TenantId,
        contact: ContactId,
        disabled: bool,
        at: OffsetDateTime,
    ) -> Result<(Account, Event)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let mut account = lock_account(&tx, tenant, contact).await?;
        account.disabled = disabled;
        account.updated_at = at;
        tx.execute(
            "UPDATE accounts SET data = $2 WHERE contact_id = $1",
            &[&contact.0, &Json(&account)],
        )
        .await
        .db()?;
        if disabled {
            delete_visitor_tokens(&tx, tenant, contact).await?;
        }
        let event = changed(&tx, tenant, at).await?;
        tx.commit().await.db()?;
        Ok((account, event))
    }

    async fn add_account_name(
        &self,
        tenant: TenantId,
        contact: ContactId,
        name: &str,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        lock_account(&tx, tenant, contact).await?;
        tx.execute(
            "INSERT INTO account_names (tenant_id, name_lc, contact_id) VALUES ($1, $2, $3)",
            &[&tenant.0, &name_key(name), &contact.0],
        )
        .await
        .db()?;
        tx.commit().await.db()
    }
}
