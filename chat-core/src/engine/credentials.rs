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
    /// A change made by another server on the same store moves it too, once this server's
    /// realtime follower reads the change's `credentials_changed` event from the tenant's
    /// log (see [`Engine::note_credential_change_elsewhere`]). A change written to the
    /// database behind the engines' backs moves nothing: holders re-check periodically as
    /// well.
    pub fn credential_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.credential_changes.subscribe()
    }

    /// How many credential changes [`credential_changes`](Self::credential_changes) has
    /// counted so far: compare with an earlier reading to tell whether to re-check.
    pub fn credential_epoch(&self) -> u64 {
        *self.inner.credential_changes.borrow()
    }

    /// After a store call that changed a credential and logged its `credentials_changed`
    /// event in the same transaction: moves [`credential_changes`](Self::credential_changes)
    /// here and publishes the event (the other servers read it from the log if the bus
    /// loses it, so a server that stops right after the change still leaves it noticed).
    pub(crate) fn credential_change_logged(&self, event: crate::model::Event) {
        self.note_credential_change();
        self.publish([event]);
    }

    /// After a successful change made by a store call that logs no event of its own (a
    /// disabled agent, merged or erased contacts): moves
    /// [`credential_changes`](Self::credential_changes) here, then tells the other servers
    /// through the tenant's log in a transaction of its own.
    pub(crate) async fn credential_changed<T>(
        &self,
        tenant: TenantId,
        result: Result<T>,
    ) -> Result<T> {
        if result.is_ok() {
            self.note_credential_change();
            self.log_credential_change(tenant).await;
        }
        result
    }

    /// Appends and publishes the `credentials_changed` event that makes other servers
    /// re-check their sockets (on the bus at once; from the log if the bus loses it).
    /// The change itself is committed already and stands if this fails: those servers then
    /// notice at their periodic re-check, so a failure here is no failure of the change.
    pub(crate) async fn log_credential_change(&self, tenant: TenantId) {
        if let Ok(event) = self
            .inner
            .store
            .log_credential_change(tenant, self.now())
            .await
        {
            self.publish([event]);
        }
    }

    /// Moves [`credential_changes`](Self::credential_changes) for a change another server
    /// made: its `credentials_changed` event was read from the log (the realtime follower
    /// calls this before it hands out anything logged after the event).
    pub fn note_credential_change_elsewhere(&self) {
        self.note_credential_change();
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
        let (version, event) = self
            .credentials()?
            .set_password(actor.tenant(), agent, hash, self.now())
            .await?;
        self.credential_change_logged(event);
        Ok(version)
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
        let (version, event) = self
            .credentials()?
            .set_password(actor.tenant(), agent, &hash, self.now())
            .await?;
        self.credential_change_logged(event);
        Ok(version)
    }

    /// Revokes every token issued to a staff member so far ("log out everywhere").
    pub async fn revoke_tokens(&self, actor: &Actor, agent: AgentId) -> Result<u64> {
        self.may_manage_credentials(actor, agent).await?;
        let (version, event) = self
            .credentials()?
            .revoke_tokens(actor.tenant(), agent, self.now())
            .await?;
        self.credential_change_logged(event);
        Ok(version)
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

    /// Marks a signed identity's signature as used, so it opens one conversation only,
    /// on every node sharing the store: `false` if it was used already and is still
    /// fresh. `digest` is the caller's digest of the signature (the secret that makes
    /// signatures is the server's; the signature itself is the proof, so there is no
    /// actor to check). `expires_at` is when the signature stops being accepted anyway
    /// and `now` the time on the same clock: both are the embedding site's wall-clock
    /// times, not the engine's clock.
    ///
    /// ```
    /// # tokio_test_block_on(async {
    /// use chat_core::{Engine, memory::MemoryStore};
    /// use time::{Duration, OffsetDateTime};
    ///
    /// let engine = Engine::builder_with_backend(std::sync::Arc::new(MemoryStore::new())).build();
    /// let now = OffsetDateTime::now_utc();
    /// let until = now + Duration::minutes(10);
    /// assert!(engine.claim_identity_signature("ab12", until, now).await?);
    /// assert!(!engine.claim_identity_signature("ab12", until, now).await?, "a replay");
    /// # Ok::<_, chat_core::Error>(()) });
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    /// # }
    /// ```
    pub async fn claim_identity_signature(
        &self,
        digest: &str,
        expires_at: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> Result<bool> {
        self.credentials()?
            .claim_signature(digest, expires_at, now)
            .await
    }

    /// Gives a signature claimed with
    /// [`claim_identity_signature`](Self::claim_identity_signature) back: the conversation
    /// it was for was not opened, and the visitor may try again with it.
    pub async fn release_identity_signature(&self, digest: &str) -> Result<()> {
        self.credentials()?.release_signature(digest).await
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
        let event = self
            .credentials()?
            .revoke_bot_token(actor.tenant(), id, self.now())
            .await?
            .ok_or(Error::NotFound("bot token"))?;
        self.credential_change_logged(event);
        Ok(())
    }

    async fn may_manage_bot_tokens(&self, actor: &Actor) -> Result<()> {
        match self.resolve(actor).await? {
            Resolved::System => Ok(()),
            Resolved::Staff(me) if me.role == Role::Admin => Ok(()),
            _ => Err(Error::Forbidden("manage bot tokens")),
        }
    }
}
