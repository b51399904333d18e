//! [`Credentials`] in the same file: staff password hashes and token versions, the
//! digests of visitor and bot tokens, and customer accounts with their login names.

use async_trait::async_trait;
use chat_core::{
    Account, AgentId, BotToken, Contact, ContactId, Credential, Credentials, Error, Event,
    NewEvent, Result, Tenant, TenantId, VisitorToken,
};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::codec::{from_json, ns, to_json};
use crate::error::Db;
use crate::names::{legacy_name_digest, name_key};
use crate::store::SqliteStore;

/// Appends the `credentials_changed` event of a credential change in the change's own
/// transaction, so the change is never committed without it.
fn changed(
    s: &mut crate::writer::Session<'_>,
    tenant: TenantId,
    at: OffsetDateTime,
) -> Result<Event> {
    crate::write::append_event(s, NewEvent::credentials_changed(tenant, at))
}

fn agent_of(conn: &Connection, tenant: TenantId, agent: AgentId) -> Result<()> {
    let found = conn
        .prepare_cached("SELECT 1 FROM agents WHERE id = ?1 AND tenant_id = ?2")
        .db()?
        .query_row(params![agent.0, tenant.0], |_| Ok(()))
        .optional()
        .db()?;
    found.ok_or(Error::NotFound("agent"))
}

fn version(conn: &Connection, agent: AgentId) -> Result<u64> {
    let v: i64 = conn
        .prepare_cached("SELECT token_version FROM credentials WHERE agent_id = ?1")
        .db()?
        .query_row(params![agent.0], |row| row.get(0))
        .db()?;
    Ok(v as u64)
}

fn insert_token(conn: &Connection, table: &str, digest: &str, data: String) -> Result<()> {
    let sql = format!(
        "INSERT INTO {table} (digest, data) VALUES (?1, ?2) ON CONFLICT (digest) DO NOTHING"
    );
    let inserted = conn
        .prepare_cached(&sql)
        .db()?
        .execute(params![digest, data])
        .db()?;
    if inserted == 0 {
        return Err(Error::duplicate("token exists"));
    }
    Ok(())
}

fn insert_visitor_token(conn: &Connection, token: &VisitorToken) -> Result<()> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO visitor_tokens (digest, data, tenant_id, contact_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (digest) DO NOTHING",
        )
        .db()?
        .execute(params![
            token.digest,
            to_json(token)?,
            token.tenant_id.0,
            token.contact_id.0
        ])
        .db()?;
    if inserted == 0 {
        return Err(Error::duplicate("token exists"));
    }
    Ok(())
}

fn revoke_visitor_tokens(conn: &Connection, tenant: TenantId, contact: ContactId) -> Result<u64> {
    let deleted = conn
        .prepare_cached("DELETE FROM visitor_tokens WHERE tenant_id = ?1 AND contact_id = ?2")
        .db()?
        .execute(params![tenant.0, contact.0])
        .db()?;
    Ok(deleted as u64)
}

fn name_owner(conn: &Connection, tenant: TenantId, name: &str) -> Result<Option<ContactId>> {
    let key = name_key(name);
    let found: Option<uuid::Uuid> = conn
        .prepare_cached(
            "SELECT contact_id FROM account_names WHERE tenant_id = ?1 AND name_lc = ?2",
        )
        .db()?
        .query_row(params![tenant.0, key], |row| row.get(0))
        .optional()
        .db()?;
    if let Some(id) = found {
        return Ok(Some(ContactId(id)));
    }
    let legacy: Option<uuid::Uuid> = conn
        .prepare_cached(
            "SELECT d.contact_id FROM account_name_digests d JOIN accounts a ON a.contact_id = d.contact_id \
             WHERE d.digest = ?1 AND a.tenant_id = ?2",
        )
        .db()?
        .query_row(params![legacy_name_digest(tenant, &key), tenant.0], |row| {
            row.get(0)
        })
        .optional()
        .db()?;
    Ok(legacy.map(ContactId))
}

fn account_row(conn: &Connection, tenant: TenantId, contact: ContactId) -> Result<Option<Account>> {
    let data: Option<String> = conn
        .prepare_cached("SELECT data FROM accounts WHERE contact_id = ?1 AND tenant_id = ?2")
        .db()?
        .query_row(params![contact.0, tenant.0], |row| row.get(0))
        .optional()
        .db()?;
    data.map(|d| from_json("account", &d)).transpose()
}

fn put_account(conn: &Connection, account: &Account) -> Result<()> {
    conn.prepare_cached("UPDATE accounts SET data = ?2 WHERE contact_id = ?1")
        .db()?
        .execute(params![account.contact_id.0, to_json(account)?])
        .db()?;
    Ok(())
}

fn token<T: for<'de> serde::Deserialize<'de>>(
    conn: &Connection,
    table: &str,
    digest: &str,
) -> Result<Option<T>> {
    let sql = format!("SELECT data FROM {table} WHERE digest = ?1");
    let data: Option<String> = conn
        .prepare_cached(&sql)
        .db()?
        .query_row(params![digest], |row| row.get(0))
        .optional()
        .db()?;
    data.map(|d| from_json(table, &d)).transpose()
}

#[async_trait]
impl Credentials for SqliteStore {
    async fn tenants(&self) -> Result<Vec<Tenant>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT data FROM tenants").db()?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0)).db()?;
            let mut tenants = Vec::new();
            for data in rows {
                tenants.push(from_json::<Tenant>("tenant", &data.db()?)?);
            }
            // Few rows: sorting here saves a column.
            tenants.sort_by_key(|t| (t.created_at, t.id));
            Ok(tenants)
        })
        .await
    }

    async fn set_password(
        &self,
        tenant: TenantId,
        agent: AgentId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<(u64, Event)> {
        let hash = hash.to_owned();
        self.writer
            .write(move |conn| {
                agent_of(conn, tenant, agent)?;
                conn.prepare_cached(
                    "INSERT INTO credentials (agent_id, password_hash, token_version) VALUES (?1, ?2, 1)
                     ON CONFLICT (agent_id) DO UPDATE SET password_hash = excluded.password_hash,
                                                          token_version = token_version + 1",
                )
                .db()?
                .execute(params![agent.0, hash])
                .db()?;
                let version = version(conn, agent)?;
                Ok((version, changed(conn, tenant, at)?))
            })
            .await
    }

    async fn revoke_tokens(
        &self,
        tenant: TenantId,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<(u64, Event)> {
        self.writer
            .write(move |conn| {
                agent_of(conn, tenant, agent)?;
                conn.prepare_cached(
                    "INSERT INTO credentials (agent_id, password_hash, token_version) VALUES (?1, NULL, 1)
                     ON CONFLICT (agent_id) DO UPDATE SET token_version = token_version + 1",
                )
                .db()?
                .execute(params![agent.0])
                .db()?;
                let version = version(conn, agent)?;
                Ok((version, changed(conn, tenant, at)?))
            })
            .await
    }

    async fn credential(&self, tenant: TenantId, agent: AgentId) -> Result<Credential> {
        self.read(move |conn| {
            agent_of(conn, tenant, agent)?;
            let row: Option<(Option<String>, i64)> = conn
                .prepare_cached(
                    "SELECT password_hash, token_version FROM credentials WHERE agent_id = ?1",
                )
                .db()?
                .query_row(params![agent.0], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .db()?;
            Ok(match row {
                Some((password_hash, v)) => Credential {
                    password_hash,
                    token_version: v as u64,
                },
                None => Credential {
                    password_hash: None,
                    token_version: 0,
                },
            })
        })
        .await
    }

    async fn insert_visitor_token(&self, token: &VisitorToken) -> Result<()> {
        let token = token.clone();
        self.writer
            .write(move |conn| insert_visitor_token(conn, &token))
            .await
    }

    async fn visitor_token(&self, digest: &str) -> Result<Option<VisitorToken>> {
        let digest = digest.to_owned();
        self.read(move |conn| token(conn, "visitor_tokens", &digest))
            .await
    }

    async fn insert_bot_token(&self, token: &BotToken) -> Result<()> {
        let (digest, data) = (token.digest.clone(), to_json(token)?);
        self.writer
            .write(move |conn| insert_token(conn, "bot_tokens", &digest, data.clone()))
            .await
    }

    async fn bot_token(&self, digest: &str) -> Result<Option<BotToken>> {
        let digest = digest.to_owned();
        self.read(move |conn| token(conn, "bot_tokens", &digest))
            .await
    }

    async fn bot_tokens(&self, tenant: TenantId) -> Result<Vec<BotToken>> {
        // A tenant has a handful of bot tokens and admins list them rarely: reading the
        // small table beats a column and an index every token write would keep.
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT data FROM bot_tokens").db()?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0)).db()?;
            let mut tokens = Vec::new();
            for data in rows {
                let token: BotToken = from_json("bot_tokens", &data.db()?)?;
                if token.tenant_id == tenant {
                    tokens.push(token);
                }
            }
            tokens.sort_by(|a, b| (a.created_at, &a.digest).cmp(&(b.created_at, &b.digest)));
            Ok(tokens)
        })
        .await
    }

    async fn revoke_bot_token(
        &self,
        tenant: TenantId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<Option<Event>> {
        let id = id.to_owned();
        self.writer
            .write(move |conn| {
                // Digests are lower-case hex: the handle is a prefix, found on the key's
                // index as the range [id, id + "g").
                if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Ok(None);
                }
                let upper = format!("{id}g");
                let candidates: Vec<(String, String)> = {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT digest, data FROM bot_tokens WHERE digest >= ?1 AND digest < ?2",
                        )
                        .db()?;
                    let rows = stmt
                        .query_map(params![id, upper], |row| Ok((row.get(0)?, row.get(1)?)))
                        .db()?;
                    rows.collect::<rusqlite::Result<_>>().db()?
                };
                let mut revoked = false;
                for (digest, data) in candidates {
                    let token: BotToken = from_json("bot_tokens", &data)?;
                    if token.tenant_id == tenant {
                        conn.prepare_cached("DELETE FROM bot_tokens WHERE digest = ?1")
                            .db()?
                            .execute(params![digest])
                            .db()?;
                        revoked = true;
                    }
                }
                if revoked {
                    changed(conn, tenant, at).map(Some)
                } else {
                    Ok(None)
                }
            })
            .await
    }

    async fn touch_bot_token(&self, digest: &str, at: OffsetDateTime) -> Result<()> {
        let digest = digest.to_owned();
        self.writer
            .write(move |conn| {
                let Some(mut token) = token::<BotToken>(conn, "bot_tokens", &digest)? else {
                    return Ok(());
                };
                token.last_used_at = Some(at);
                conn.prepare_cached("UPDATE bot_tokens SET data = ?2 WHERE digest = ?1")
                    .db()?
                    .execute(params![digest, to_json(&token)?])
                    .db()?;
                Ok(())
            })
            .await
    }

    async fn claim_signature(
        &self,
        digest: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let (digest, expires_at, now) = (digest.to_owned(), ns(expires_at)?, ns(now)?);
        self.writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM identity_signatures WHERE expires_at_ns < ?1")
                    .db()?
                    .execute(params![now])
                    .db()?;
                // One statement decides: a row that is there (and fresh, since expired
                // ones were just deleted) makes the insert do nothing.
                let claimed = conn
                    .prepare_cached(
                        "INSERT INTO identity_signatures (digest, expires_at_ns) VALUES (?1, ?2)
                         ON CONFLICT (digest) DO NOTHING",
                    )
                    .db()?
                    .execute(params![digest, expires_at])
                    .db()?;
                Ok(claimed == 1)
            })
            .await
    }

    async fn release_signature(&self, digest: &str) -> Result<()> {
        let digest = digest.to_owned();
        self.writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM identity_signatures WHERE digest = ?1")
                    .db()?
                    .execute(params![digest])
                    .db()?;
                Ok(())
            })
            .await
    }

    async fn revoke_visitor_tokens(&self, tenant: TenantId, contact: ContactId) -> Result<u64> {
        self.writer
            .write(move |conn| revoke_visitor_tokens(conn, tenant, contact))
            .await
    }

    async fn reassign_visitor_tokens(
        &self,
        tenant: TenantId,
        from: ContactId,
        into: ContactId,
    ) -> Result<u64> {
        self.writer
            .write(move |conn| {
                let mut select = conn
                    .prepare_cached(
                        "SELECT digest, data FROM visitor_tokens WHERE tenant_id = ?1 AND contact_id = ?2",
                    )
                    .db()?;
                let rows = select
                    .query_map(params![tenant.0, from.0], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                    })
                    .db()?;
                let mut deleted = 0;
                for row in rows {
                    let (digest, data) = row.db()?;
                    let mut token: VisitorToken = from_json("visitor_tokens", &data)?;
                    if token.conversation_id.is_none() {
                        conn.prepare_cached("DELETE FROM visitor_tokens WHERE digest = ?1")
                            .db()?
                            .execute([&digest])
                            .db()?;
                        deleted += 1;
                    } else {
                        token.contact_id = into;
                        conn.prepare_cached(
                            "UPDATE visitor_tokens SET contact_id = ?2, data = ?3 WHERE digest = ?1",
                        )
                        .db()?
                        .execute(params![digest, into.0, to_json(&token)?])
                        .db()?;
                    }
                }
                Ok(deleted)
            })
            .await
    }

    async fn create_account(
        &self,
        contact: &Contact,
        account: &Account,
        password_hash: &str,
    ) -> Result<()> {
        let (contact, account, hash) = (contact.clone(), account.clone(), password_hash.to_owned());
        self.writer
            .write(move |conn| {
                let tenant = account.tenant_id;
                // Every check before the first write, so a refusal writes nothing.
                if name_owner(conn, tenant, &account.username)?.is_some() {
                    return Err(Error::duplicate("username taken"));
                }
                if let Some(email) = &account.email
                    && conn
                        .prepare_cached(
                            "SELECT 1 FROM accounts WHERE tenant_id = ?1 AND email_lc = ?2",
                        )
                        .db()?
                        .exists(params![tenant.0, email.to_ascii_lowercase()])
                        .db()?
                {
                    return Err(Error::duplicate("account e-mail taken"));
                }
                crate::write::insert_contact(conn, &contact)?;
                conn.prepare_cached(
                    "INSERT INTO accounts (contact_id, tenant_id, email_lc, password_hash, data) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .db()?
                .execute(params![
                    contact.id.0,
                    tenant.0,
                    account.email.as_deref().map(str::to_ascii_lowercase),
                    hash,
                    to_json(&account)?
                ])
                .db()?;
                conn.prepare_cached(
                    "INSERT INTO account_names (tenant_id, name_lc, contact_id) VALUES (?1, ?2, ?3)",
                )
                .db()?
                .execute(params![tenant.0, name_key(&account.username), contact.id.0])
                .db()?;
                Ok(())
            })
            .await
    }

    async fn account(&self, tenant: TenantId, contact: ContactId) -> Result<Option<Account>> {
        self.read(move |conn| account_row(conn, tenant, contact))
            .await
    }

    async fn account_by_name(&self, tenant: TenantId, name: &str) -> Result<Option<Account>> {
        let name = name.to_owned();
        self.read(move |conn| match name_owner(conn, tenant, &name)? {
            Some(contact) => account_row(conn, tenant, contact),
            None => Ok(None),
        })
        .await
    }

    async fn account_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Account>> {
        let email = email.to_ascii_lowercase();
        self.read(move |conn| {
            let data: Option<String> = conn
                .prepare_cached("SELECT data FROM accounts WHERE tenant_id = ?1 AND email_lc = ?2")
                .db()?
                .query_row(params![tenant.0, email], |row| row.get(0))
                .optional()
                .db()?;
            data.map(|d| from_json("account", &d)).transpose()
        })
        .await
    }

    async fn account_password_hash(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Result<Option<String>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT password_hash FROM accounts WHERE contact_id = ?1 AND tenant_id = ?2",
            )
            .db()?
            .query_row(params![contact.0, tenant.0], |row| row.get(0))
            .optional()
            .db()
        })
        .await
    }

    async fn set_account_password(
        &self,
        tenant: TenantId,
        contact: ContactId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let hash = hash.to_owned();
        self.writer
            .write(move |conn| {
                let mut account =
                    account_row(conn, tenant, contact)?.ok_or(Error::NotFound("account"))?;
                account.updated_at = at;
                put_account(conn, &account)?;
                conn.prepare_cached("UPDATE accounts SET password_hash = ?2 WHERE contact_id = ?1")
                    .db()?
                    .execute(params![contact.0, hash])
                    .db()?;
                revoke_visitor_tokens(conn, tenant, contact)?;
                changed(conn, tenant, at)
            })
            .await
    }

    async fn set_account_disabled(
        &self,
        tenant: TenantId,
        contact: ContactId,
        disabled: bool,
        at: OffsetDateTime,
    ) -> Result<(Account, Event)> {
        self.writer
            .write(move |conn| {
                let mut account =
                    account_row(conn, tenant, contact)?.ok_or(Error::NotFound("account"))?;
                account.disabled = disabled;
                account.updated_at = at;
                put_account(conn, &account)?;
                if disabled {
                    revoke_visitor_tokens(conn, tenant, contact)?;
                }
                Ok((account, changed(conn, tenant, at)?))
            })
            .await
    }

    async fn add_account_name(
        &self,
        tenant: TenantId,
        contact: ContactId,
        name: &str,
    ) -> Result<()> {
        let name = name.to_owned();
        self.writer
            .write(move |conn| {
                if account_row(conn, tenant, contact)?.is_none() {
                    return Err(Error::NotFound("account"));
                }
                if name_owner(conn, tenant, &name)?.is_some() {
                    return Err(Error::duplicate("account name taken"));
                }
                conn.prepare_cached(
                    "INSERT INTO account_names (tenant_id, name_lc, contact_id) VALUES (?1, ?2, ?3)",
                )
                .db()?
                .execute(params![tenant.0, name_key(&name), contact.0])
                .db()?;
                Ok(())
            })
            .await
    }
}
