//! Credential changes go through the policy like everything else: staff change their own
//! password, admins anyone's. Hashing and token formats are the caller's business.

use std::sync::Arc;

use super::Engine;
use crate::credentials::{BotToken, Credential, Credentials, VisitorToken};
use crate::error::{Error, Result};
use crate::ids::{AgentId, TenantId};
use crate::model::{Role, Tenant};
use crate::policy::{Actor, Resolved};

/// Shortest staff password accepted, in characters.
const MIN_PASSWORD: usize = 10;

impl Engine {
    /// Tells when a credential changed through this engine: a staff password set or
    /// changed, a staff member's or a bot's tokens revoked, a customer account's password
    /// changed, an account disabled or enabled, contacts merged. The value only counts;
    /// whoever holds a credential open (a socket) re-checks its own when it moves. The
    /// count moves before the change's call returns, so anything published after the
    /// change is seen after the count moved.
    ///
    /// Changes made by another process (another node, a command-line tool on the same
    /// database) do not move it: holders re-check periodically as well.
    pub fn credential_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.credential_changes.subscribe()
    }

    /// How many credential changes [`credential_changes`](Self::credential_changes) has
    /// counted so far: compare with an earlier reading to tell whether to re-check.
    pub fn credential_epoch(&self) -> u64 {
        *self.inner.credential_changes.borrow()
    }

    /// Moves [`credential_changes`](Self::credential_changes) after a successful change.
    pub(crate) fn credential_changed<T>(&self, result: Result<T>) -> Result<T> {
        if result.is_ok() {
            self.note_credential_change();
        }
        result
    }

    /// Moves [`credential_changes`](Self::credential_changes).
    pub(crate) fn note_credential_change(&self) {
        self.inner
            .credential_changes
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    fn credentials(&self) -> Result<&Arc<dyn Credentials>> {
        self.inner.credentials.as_ref().ok_or_else(|| {
            Error::storage_kind(
                crate::error::StorageKind::Unavailable,
                "no credential store configured",
            )
        })
    }

    /// Sets a staff member's password hash, revoking its earlier tokens: an admin's reset
    /// of another staff member, or the system's. Staff change their own password with
    /// [`change_staff_password`](Self::change_staff_password), which needs the current
    /// one. Returns the new token version.
    pub async fn set_password(&self, actor: &Actor, agent: AgentId, hash: &str) -> Result<u64> {
        if let Resolved::Staff(me) = self.resolve(actor).await?
            && me.id == agent
        {
            return Err(Error::Forbidden(
                "change one's own password without the current one",
            ));
        }
        self.may_manage_credentials(actor, agent).await?;
        let result = self
            .credentials()?
            .set_password(actor.tenant(), agent, hash)
            .await;
        self.credential_changed(result)
    }

    /// Changes a staff member's password through the engine's password hasher, revoking
    /// every token issued so far. Staff changing their own give the `current` password
    /// (a stolen token alone cannot lock its owner out); an admin resetting someone
    /// else's, or the system, need not. A wrong current password is
    /// [`Error::Forbidden`]. Returns the new token version.
    pub async fn change_staff_password(
        &self,
        actor: &Actor,
        agent: AgentId,
        current: Option<&str>,
        new: &str,
    ) -> Result<u64> {
        let chars = new.chars().count();
        if !(MIN_PASSWORD..=1024).contains(&chars) {
            return Err(Error::validation(
                "password",
                format!("use {MIN_PASSWORD} to 1024 characters"),
            ));
        }
        let who = self.resolve(actor).await?;
        let own = who.staff().is_some_and(|me| me.id == agent);
        if own {
            let Some(current) = current else {
                return Err(Error::validation(
                    "current_password",
                    "give the current password to change your own",
                ));
            };
            let stored = self.credential(actor.tenant(), agent).await?.password_hash;
            if !self.passwords()?.verify(current, stored.as_deref()).await? || stored.is_none() {
                return Err(Error::Forbidden(
                    "change the password: the current one is wrong",
                ));
            }
        } else {
            self.may_manage_credentials(actor, agent).await?;
        }
        let hash = self.passwords()?.hash(new).await?;
        let result = self
            .credentials()?
            .set_password(actor.tenant(), agent, &hash)
            .await;
        self.credential_changed(result)
    }

    /// Revokes every token issued to a staff member so far ("log out everywhere").
    pub async fn revoke_tokens(&self, actor: &Actor, agent: AgentId) -> Result<u64> {
        self.may_manage_credentials(actor, agent).await?;
        let result = self
            .credentials()?
            .revoke_tokens(actor.tenant(), agent)
            .await;
        self.credential_changed(result)
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
        self.may_manage_bot_tokens(actor).await?;
        if token.tenant_id != actor.tenant() {
            return Err(Error::Forbidden("issue bot tokens"));
        }
        self.credentials()?.insert_bot_token(token).await
    }

    /// The bot token with this digest, for authentication: `None` when unknown, revoked or
    /// expired by the engine's clock. Its last use is recorded, at most once a minute, so
    /// checking a token costs a write only that often.
    pub async fn bot_token(&self, digest: &str) -> Result<Option<BotToken>> {
        let credentials = self.credentials()?;
        let now = self.now();
        let Some(mut token) = credentials.bot_token(digest).await? else {
            return Ok(None);
        };
        if !token.is_valid_at(now) {
            return Ok(None);
        }
        if token
            .last_used_at
            .is_none_or(|at| now - at >= time::Duration::MINUTE)
        {
            credentials.touch_bot_token(digest, now).await?;
            token.last_used_at = Some(now);
        }
        Ok(Some(token))
    }

    /// The tenant's bot tokens, oldest first (admins and the system).
    pub async fn bot_tokens(&self, actor: &Actor) -> Result<Vec<BotToken>> {
        self.may_manage_bot_tokens(actor).await?;
        self.credentials()?.bot_tokens(actor.tenant()).await
    }

    /// Revokes the tenant's bot token with this [`BotToken::id`] (admins and the system):
    /// it authenticates nothing from then on. [`Error::NotFound`] if there is none.
    pub async fn revoke_bot_token(&self, actor: &Actor, id: &str) -> Result<()> {
        self.may_manage_bot_tokens(actor).await?;
        let revoked = self
            .credentials()?
            .revoke_bot_token(actor.tenant(), id)
            .await;
        if self.credential_changed(revoked)? {
            Ok(())
        } else {
            Err(Error::NotFound("bot token"))
        }
    }

    async fn may_manage_bot_tokens(&self, actor: &Actor) -> Result<()> {
        match self.resolve(actor).await? {
            Resolved::System => Ok(()),
            Resolved::Staff(me) if me.role == Role::Admin => Ok(()),
            _ => Err(Error::Forbidden("manage bot tokens")),
        }
    }
}
