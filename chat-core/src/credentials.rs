//! Persistence for secrets the server needs to authenticate people: staff password
//! hashes, token versions (to revoke tokens) and hashed visitor tokens. The engine never
//! reads these; hashing and token formats belong to the server, so this trait stores
//! opaque strings and digests only.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::ids::{AgentId, ContactId, ConversationId, TenantId};
use crate::model::Tenant;

/// A staff member's login secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// PHC-format password hash, if a password is set.
    pub password_hash: Option<String>,
    /// Bumped on password change, disable and "log out everywhere"; tokens carrying an
    /// older version are refused.
    pub token_version: u64,
}

/// A visitor's bearer token, stored as a digest so a leaked database grants nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitorToken {
    /// Hex digest of the token (the server chooses the hash).
    pub digest: String,
    /// Tenant.
    pub tenant_id: TenantId,
    /// The contact it speaks for.
    pub contact_id: ContactId,
    /// The one conversation it grants, or all of the contact's.
    pub conversation_id: Option<ConversationId>,
    /// Issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Refused after this time, if set.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A bearer token for an external bot service (answers through the API as the bot),
/// stored as a digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotToken {
    /// Hex digest of the token.
    pub digest: String,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Label shown to admins (e.g. the service's name).
    pub name: String,
    /// Issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Storage of credentials. Object-safe.
#[async_trait]
pub trait Credentials: Send + Sync + 'static {
    /// Every tenant, oldest first (the server picks its default tenant from these).
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    /// Sets a staff member's password hash and bumps its token version; returns the new
    /// version. [`Error::NotFound`](crate::Error::NotFound) if the agent does not exist.
    async fn set_password(&self, tenant: TenantId, agent: AgentId, hash: &str) -> Result<u64>;
    /// Bumps the token version (revokes every token issued so far); returns it.
    async fn revoke_tokens(&self, tenant: TenantId, agent: AgentId) -> Result<u64>;
    /// The credential of a staff member (version 0 and no hash if never set).
    async fn credential(&self, tenant: TenantId, agent: AgentId) -> Result<Credential>;
    /// Stores a visitor token. [`Error::Conflict`](crate::Error::Conflict) if the digest exists.
    async fn insert_visitor_token(&self, token: &VisitorToken) -> Result<()>;
    /// The visitor token with this digest.
    async fn visitor_token(&self, digest: &str) -> Result<Option<VisitorToken>>;
    /// Stores a bot token. [`Error::Conflict`](crate::Error::Conflict) if the digest exists.
    async fn insert_bot_token(&self, token: &BotToken) -> Result<()>;
    /// The bot token with this digest.
    async fn bot_token(&self, digest: &str) -> Result<Option<BotToken>>;
}

/// A store that also keeps credentials: what the server runs on.
pub trait Backend: crate::store::Store + Credentials {}

impl<T: crate::store::Store + Credentials> Backend for T {}
