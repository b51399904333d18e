//! Credential changes go through the policy like everything else: staff change their own
//! password, admins anyone's. Hashing and token formats are the caller's business.

use std::sync::Arc;

use super::Engine;
use crate::credentials::{BotToken, Credential, Credentials, VisitorToken};
use crate::error::{Error, Result};
use crate::ids::{AgentId, TenantId};
use crate::model::{Role, Tenant};
use crate::policy::{Actor, Resolved};

impl Engine {
    fn credentials(&self) -> Result<&Arc<dyn Credentials>> {
        self.inner.credentials.as_ref().ok_or_else(|| {
            Error::storage_kind(
                crate::error::StorageKind::Unavailable,
                "no credential store configured",
            )
        })
    }

    /// Sets a staff member's password hash, revoking its earlier tokens. Staff set their
    /// own; admins and the system anyone's. Returns the new token version.
    pub async fn set_password(&self, actor: &Actor, agent: AgentId, hash: &str) -> Result<u64> {
        self.may_manage_credentials(actor, agent).await?;
        self.credentials()?
            .set_password(actor.tenant(), agent, hash)
            .await
    }

    /// Revokes every token issued to a staff member so far ("log out everywhere").
    pub async fn revoke_tokens(&self, actor: &Actor, agent: AgentId) -> Result<u64> {
        self.may_manage_credentials(actor, agent).await?;
        self.credentials()?
            .revoke_tokens(actor.tenant(), agent)
            .await
    }

    async fn may_manage_credentials(&self, actor: &Actor, agent: AgentId) -> Result<()> {
        match self.resolve(actor).await? {
            Resolved::System => Ok(()),
            Resolved::Staff(me) if me.id == agent || me.role == Role::Admin => Ok(()),
            Resolved::Staff(_) => Err(Error::Forbidden(
                "change another staff member's credentials",
            )),
            _ => Err(Error::Forbidden("change staff credentials")),
        }
    }

    /// A staff member's credential, for authentication. Authentication happens before
    /// there is an actor, so this takes none; it reveals nothing but a hash.
    pub async fn credential(&self, tenant: TenantId, agent: AgentId) -> Result<Credential> {
        self.credentials()?.credential(tenant, agent).await
    }

    /// Stores a visitor token for a customer actor's own scope. Only the system (the
    /// server opening a conversation for a visitor) issues them.
    pub async fn store_visitor_token(&self, actor: &Actor, token: &VisitorToken) -> Result<()> {
        if !matches!(self.resolve(actor).await?, Resolved::System)
            || token.tenant_id != actor.tenant()
        {
            return Err(Error::Forbidden("issue visitor tokens"));
        }
        self.credentials()?.insert_visitor_token(token).await
    }

    /// The visitor token with this digest, for authentication.
    pub async fn visitor_token(&self, digest: &str) -> Result<Option<VisitorToken>> {
        self.credentials()?.visitor_token(digest).await
    }

    /// Every tenant, oldest first (for choosing a default tenant at start-up).
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        self.credentials()?.tenants().await
    }

    /// Stores a bot token (the caller made the token and its digest). Admins and the
    /// system only.
    pub async fn store_bot_token(&self, actor: &Actor, token: &BotToken) -> Result<()> {
        let allowed = match self.resolve(actor).await? {
            Resolved::System => true,
            Resolved::Staff(me) => me.role == Role::Admin,
            _ => false,
        };
        if !allowed || token.tenant_id != actor.tenant() {
            return Err(Error::Forbidden("issue bot tokens"));
        }
        self.credentials()?.insert_bot_token(token).await
    }

    /// The bot token with this digest, for authentication.
    pub async fn bot_token(&self, digest: &str) -> Result<Option<BotToken>> {
        self.credentials()?.bot_token(digest).await
    }
}
