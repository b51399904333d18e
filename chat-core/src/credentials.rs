//! Persistence for secrets used to authenticate people: staff password hashes, token
//! versions (to revoke tokens), hashed visitor and bot tokens, and customer accounts.
//! Token formats belong to the server and password hashing to a [`PasswordHasher`] the
//! embedder supplies, so this trait stores opaque strings and digests only.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::ids::{AgentId, ContactId, ConversationId, TenantId};
use crate::model::{Contact, Event, Tenant};

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
    /// Refused after this time, if set.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it last authenticated a request (to the minute: see
    /// [`Credentials::touch_bot_token`]), so admins can tell a forgotten token.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl BotToken {
    /// The token's public handle for listing and revoking: the first 16 hex digits of its
    /// digest. The digest is of a 256-bit random secret, so its prefix helps nobody find
    /// the token, and tokens issued before handles existed have one too.
    pub fn id(&self) -> &str {
        self.digest.get(..16).unwrap_or(&self.digest)
    }

    /// Whether it may still be used at `now`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// A customer account: a contact that signs up with a username and a password and logs
/// in to reach all of its conversations (personal chats, as in the seed documents). The
/// password hash is kept apart (see [`Credentials::account_password_hash`]), so an
/// `Account` can be shown as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The contact the account logs in as.
    pub contact_id: ContactId,
    /// Login name as typed at sign-up; unique per tenant, compared case-insensitively,
    /// and shared with the account's other login names.
    pub username: String,
    /// E-mail given at sign-up (lower-case), unique among the tenant's accounts. Not
    /// verified: it never joins the account to another contact.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub email: Option<String>,
    /// A disabled account cannot log in and its tokens are revoked.
    pub disabled: bool,
    /// Signed up.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change (password, disabled).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Turns passwords into stored hashes and checks them. Slow on purpose, so implementations
/// run it off the async threads; the server's is argon2id.
#[async_trait]
pub trait PasswordHasher: Send + Sync + 'static {
    /// A new hash of `password` (PHC string or any format `verify` reads).
    async fn hash(&self, password: &str) -> Result<String>;
    /// Whether `password` matches `hash`. With no hash (an unknown login name) it takes as
    /// long as a real check and answers `false`, so timing does not reveal which names
    /// exist.
    async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool>;
}

/// Storage of credentials. Object-safe.
#[async_trait]
pub trait Credentials: Send + Sync + 'static {
    /// Every tenant, oldest first (the server picks its default tenant from these).
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    /// Sets a staff member's password hash and bumps its token version, and appends a
    /// `credentials_changed` event at `at` in the same transaction (see
    /// [`NewEvent::credentials_changed`](crate::NewEvent::credentials_changed)): a server
    /// that stops right after the change cannot leave other servers' sockets unaware of
    /// it. Returns the new version and the event.
    /// [`Error::NotFound`](crate::Error::NotFound) if the agent does not exist.
    async fn set_password(
        &self,
        tenant: TenantId,
        agent: AgentId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<(u64, Event)>;
    /// Bumps the token version (revokes every token issued so far) and appends a
    /// `credentials_changed` event at `at` in the same transaction; returns the version
    /// and the event.
    async fn revoke_tokens(
        &self,
        tenant: TenantId,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<(u64, Event)>;
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
    /// Every bot token of a tenant, oldest first.
    async fn bot_tokens(&self, tenant: TenantId) -> Result<Vec<BotToken>>;
    /// Deletes the tenant's bot token whose [`BotToken::id`] is `id` and appends a
    /// `credentials_changed` event at `at` in the same transaction; returns the event, or
    /// `None` (and appends nothing) if there is no such token.
    async fn revoke_bot_token(
        &self,
        tenant: TenantId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<Option<Event>>;
    /// Records that the bot token with this digest was used at `at`.
    async fn touch_bot_token(&self, digest: &str, at: OffsetDateTime) -> Result<()>;
    /// Records an identity signature (by its digest) as used until `expires_at`, in one
    /// step that no other node can interleave with: `true` if it was not recorded yet, or
    /// its earlier record had expired by `now`; `false` if it is still recorded (a
    /// replay). Records expired by `now` are deleted on the way, so the ledger holds only
    /// signatures that are still fresh. Not tenant data: the signing secret is the
    /// server's, and a signature is refused again in any tenant.
    async fn claim_signature(
        &self,
        digest: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// Forgets a claimed signature: what it was claimed for did not happen.
    async fn release_signature(&self, digest: &str) -> Result<()>;
    /// Deletes every visitor token of a contact (password change, disabled account);
    /// returns how many.
    async fn revoke_visitor_tokens(&self, tenant: TenantId, contact: ContactId) -> Result<u64>;
    /// After a merge of `from` into `into`: tokens of one conversation now speak for
    /// `into`; tokens for all of `from`'s conversations are deleted, because they would
    /// otherwise reach `into`'s whole history. Returns how many were deleted.
    async fn reassign_visitor_tokens(
        &self,
        tenant: TenantId,
        from: ContactId,
        into: ContactId,
    ) -> Result<u64>;

    /// Creates a contact and its account in one write; the username is the account's first
    /// login name. [`Error::Conflict`](crate::Error::Conflict) if the username (or another
    /// login name equal to it), the account e-mail or the contact id is taken.
    async fn create_account(
        &self,
        contact: &Contact,
        account: &Account,
        password_hash: &str,
    ) -> Result<()>;
    /// The account of a contact.
    async fn account(&self, tenant: TenantId, contact: ContactId) -> Result<Option<Account>>;
    /// The account with this login name (username or alias, case-insensitive).
    async fn account_by_name(&self, tenant: TenantId, name: &str) -> Result<Option<Account>>;
    /// The account with this e-mail (case-insensitive).
    async fn account_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Account>>;
    /// The account's password hash.
    async fn account_password_hash(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Result<Option<String>>;
    /// Replaces the password hash, revokes the contact's visitor tokens and appends a
    /// `credentials_changed` event at `at`, in one transaction; returns the event.
    /// [`Error::NotFound`](crate::Error::NotFound) without an account.
    async fn set_account_password(
        &self,
        tenant: TenantId,
        contact: ContactId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Event>;
    /// Enables or disables an account (disabling revokes the contact's visitor tokens) and
    /// appends a `credentials_changed` event at `at`, in one transaction. Returns the
    /// account after the change and the event.
    async fn set_account_disabled(
        &self,
        tenant: TenantId,
        contact: ContactId,
        disabled: bool,
        at: OffsetDateTime,
    ) -> Result<(Account, Event)>;
    /// Gives an account another login name (a customer number beside a phone number).
    /// [`Error::Conflict`](crate::Error::Conflict) if any account has that name.
    async fn add_account_name(
        &self,
        tenant: TenantId,
        contact: ContactId,
        name: &str,
    ) -> Result<()>;
}

/// A store that also keeps credentials: what the server runs on.
pub trait Backend: crate::store::Store + Credentials {}

impl<T: crate::store::Store + Credentials> Backend for T {}
