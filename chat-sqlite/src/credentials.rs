//! [`Credentials`] in the same file: staff password hashes and token versions, and the
//! digests of visitor and bot tokens.

use async_trait::async_trait;
use chat_core::{
    AgentId, BotToken, Credential, Credentials, Error, Result, Tenant, TenantId, VisitorToken,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::codec::{from_json, to_json};
use crate::error::Db;
use crate::store::SqliteStore;

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
        return Err(Error::Conflict("token exists".into()));
    }
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

    async fn set_password(&self, tenant: TenantId, agent: AgentId, hash: &str) -> Result<u64> {
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
                version(conn, agent)
            })
            .await
    }

    async fn revoke_tokens(&self, tenant: TenantId, agent: AgentId) -> Result<u64> {
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
                version(conn, agent)
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
        let (digest, data) = (token.digest.clone(), to_json(token)?);
        self.writer
            .write(move |conn| insert_token(conn, "visitor_tokens", &digest, data.clone()))
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
}
