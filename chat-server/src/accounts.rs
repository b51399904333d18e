//! Customer accounts: a customer who signs up with a username, an e-mail and a password,
//! logs in, and owns every conversation opened with the token it gets (personal chats,
//! as in seed 004). Staff accounts are agents; customers are contacts, so the engine's
//! rule "a customer sees only its own contact's conversations" is what keeps one user out
//! of another's chats.
//!
//! What is stored, without a schema change:
//! - the contact, with the username as `external_id` and the argon2id password hash in
//!   its metadata under [`PASSWORD_KEY`];
//! - a username record in the visitor-token table, keyed by a digest that no bearer
//!   token can ever produce (it is not a bare SHA-256 hex string) and already expired,
//!   so it can only be looked up by name, never presented as a credential. Its unique
//!   key is what makes two sign-ups with the same username conflict atomically.
//!
//! A login issues an ordinary visitor token (`vt_…`) scoped to the contact, not to one
//! conversation, so [`Context::authenticate`](crate::Context::authenticate) resolves it like any
//! other visitor token.

use chat_core::{Agent, Contact, ContactId, Engine, TenantId, VisitorToken};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::app::Config;
use crate::auth;

/// Contact metadata key holding the account's password hash.
pub const PASSWORD_KEY: &str = "account.password_hash";

/// Metadata keys the account keeps to itself: never shown by any API.
const PRIVATE_PREFIX: &str = "account.";

/// A contact as the API shows it: without the account's private metadata (the
/// password hash), which staff allowed to read contacts must not see either.
pub fn public_contact(contact: &Contact) -> Contact {
    let mut shown = contact.clone();
    shown
        .metadata
        .retain(|key, _| !key.starts_with(PRIVATE_PREFIX));
    shown
}

/// Why a sign-up was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Another account has this username.
    #[error("username already registered")]
    UsernameTaken,
    /// Another contact has this e-mail.
    #[error("email already registered")]
    EmailTaken,
    /// A field is empty, too long or not an e-mail address.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// The engine or the store failed.
    #[error(transparent)]
    Engine(#[from] chat_core::Error),
    /// Hashing the password failed.
    #[error("password hashing failed")]
    Hashing,
}

/// The username record's key: never a valid token digest (those are 64 hex digits).
fn username_key(tenant: TenantId, username: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}:{}", username.to_lowercase()).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("account:{hex}")
}

/// Signs a customer up. Usernames are case-insensitive. The e-mail is optional (a
/// salon customer may only have a phone number); when given it must be unique per tenant
/// among all contacts, so an account can never take over an existing contact's history.
pub async fn register(
    engine: &Engine,
    tenant: TenantId,
    username: &str,
    email: Option<&str>,
    password: &str,
) -> Result<Contact, AccountError> {
    let username = username.trim();
    check_username(username)?;
    let email = match email.map(|e| e.trim().to_lowercase()) {
        None => None,
        Some(e) if e.len() > 254 || !e.contains('@') || e.contains(char::is_whitespace) => {
            return Err(AccountError::Invalid {
                field: "email",
                message: "not an e-mail address",
            });
        }
        Some(e) => Some(e),
    };
    if password.is_empty() || password.len() > 1024 {
        return Err(AccountError::Invalid {
            field: "password",
            message: "must be 1 to 1024 bytes",
        });
    }
    let store = engine.store();
    if let Some(email) = &email
        && store.contact_by_email(tenant, email).await?.is_some()
    {
        return Err(AccountError::EmailTaken);
    }
    let hash = auth::hash_password(password).map_err(|_| AccountError::Hashing)?;
    let now = OffsetDateTime::now_utc();
    let contact = Contact {
        id: ContactId(uuid::Uuid::now_v7()),
        tenant_id: tenant,
        name: Some(username.to_owned()),
        email,
        phone: None,
        address: None,
        external_id: Some(username.to_owned()),
        metadata: [(PASSWORD_KEY.to_owned(), hash)].into(),
        created_at: now,
        updated_at: now,
    };
    // Claim the username first: its unique key settles concurrent sign-ups.
    claim(engine, tenant, username, contact.id).await?;
    match store.insert_contact(&contact).await {
        Ok(()) => Ok(contact),
        // Someone took the e-mail between the check and now (the username stays
        // reserved: there is no way to delete a record without a schema change).
        Err(chat_core::Error::Conflict(_)) => Err(AccountError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

fn check_username(username: &str) -> Result<(), AccountError> {
    if username.is_empty() || username.chars().count() > 64 {
        return Err(AccountError::Invalid {
            field: "username",
            message: "must be 1 to 64 characters",
        });
    }
    Ok(())
}

/// Writes the record that makes `username` find `contact`; its unique key refuses a name
/// already taken.
async fn claim(
    engine: &Engine,
    tenant: TenantId,
    username: &str,
    contact: ContactId,
) -> Result<(), AccountError> {
    let record = VisitorToken {
        digest: username_key(tenant, username),
        tenant_id: tenant,
        contact_id: contact,
        conversation_id: None,
        created_at: OffsetDateTime::now_utc(),
        expires_at: Some(OffsetDateTime::UNIX_EPOCH),
    };
    let system = chat_core::Actor::System { tenant };
    match engine.store_visitor_token(&system, &record).await {
        Ok(()) => Ok(()),
        Err(chat_core::Error::Conflict(_)) => Err(AccountError::UsernameTaken),
        Err(e) => Err(e.into()),
    }
}

/// Gives an existing account a second name that [`find`] and [`login`] accept too: a
/// customer who logs in with a phone number but is named by a customer number elsewhere.
/// Names are shared with usernames, so an alias already taken is
/// [`AccountError::UsernameTaken`].
pub async fn alias(
    engine: &Engine,
    tenant: TenantId,
    name: &str,
    contact: ContactId,
) -> Result<(), AccountError> {
    let name = name.trim();
    check_username(name)?;
    if engine.store().contact(tenant, contact).await?.is_none() {
        return Err(chat_core::Error::NotFound("contact").into());
    }
    claim(engine, tenant, name, contact).await
}

/// Checks a staff member's e-mail and password in `tenant` and issues an access token, as
/// `/v1/auth/login` does. `None` for an unknown e-mail, a wrong password or a disabled
/// staff member; all take as long (a decoy hash is verified when there is no one to check).
pub async fn staff_login(
    engine: &Engine,
    config: &Config,
    tenant: TenantId,
    email: &str,
    password: &str,
) -> Result<Option<(Agent, String)>, crate::error::Error> {
    let agent = engine
        .store()
        .agent_by_email(tenant, &email.trim().to_lowercase())
        .await?
        .filter(|a| a.active);
    let credential = match &agent {
        Some(a) => Some(engine.credential(tenant, a.id).await?),
        None => None,
    };
    let hash = credential.as_ref().and_then(|c| c.password_hash.clone());
    // Argon2 is slow on purpose: keep it off the async threads.
    let password = password.to_owned();
    let valid = tokio::task::spawn_blocking(move || {
        let ok = auth::verify_password(&password, hash.as_deref().unwrap_or(auth::decoy_hash()));
        ok && hash.is_some()
    })
    .await?;
    let (Some(agent), Some(credential), true) = (agent, credential, valid) else {
        return Ok(None);
    };
    let token = auth::issue_token(
        &config.jwt,
        tenant,
        agent.id,
        agent.role,
        credential.token_version,
    )?;
    Ok(Some((agent, token)))
}

/// The account with this username.
pub async fn find(
    engine: &Engine,
    tenant: TenantId,
    username: &str,
) -> chat_core::Result<Option<Contact>> {
    let Some(record) = engine
        .visitor_token(&username_key(tenant, username.trim()))
        .await?
    else {
        return Ok(None);
    };
    engine.store().contact(tenant, record.contact_id).await
}

/// Checks a username and password and issues a visitor token for the whole account
/// (every conversation of the contact). `None` for a wrong username or password; both
/// take as long (a decoy hash is verified for unknown usernames).
pub async fn login(
    engine: &Engine,
    config: &Config,
    tenant: TenantId,
    username: &str,
    password: &str,
) -> chat_core::Result<Option<(Contact, String)>> {
    let contact = find(engine, tenant, username).await?;
    let hash = contact
        .as_ref()
        .and_then(|c| c.metadata.get(PASSWORD_KEY))
        .map_or(auth::decoy_hash(), String::as_str);
    let valid = auth::verify_password(password, hash);
    let Some(contact) = contact.filter(|_| valid) else {
        return Ok(None);
    };
    let (token, digest) = auth::new_visitor_token();
    let now = OffsetDateTime::now_utc();
    let record = VisitorToken {
        digest,
        tenant_id: tenant,
        contact_id: contact.id,
        conversation_id: None,
        created_at: now,
        expires_at: Some(now + config.visitor_token_ttl),
    };
    let system = chat_core::Actor::System { tenant };
    engine.store_visitor_token(&system, &record).await?;
    Ok(Some((contact, token)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chat_core::memory::MemoryStore;
    use chat_core::{Actor, OpenConversation, TenantSettings};

    use super::*;
    use crate::auth::Caller;

    async fn engine() -> (Engine, TenantId) {
        let engine = Engine::builder_with_backend(Arc::new(MemoryStore::new())).build();
        let tenant = engine
            .create_tenant("Acme", TenantSettings::default())
            .await
            .unwrap()
            .id;
        (engine, tenant)
    }

    #[tokio::test]
    async fn a_customer_signs_up_logs_in_and_sees_only_its_own_chats() {
        let (engine, tenant) = engine().await;
        let config = Config::new(b"test-secret-test-secret-test-secret!");
        let ada = register(&engine, tenant, "ada", Some("ada@example.com"), "pw-ada")
            .await
            .unwrap();
        assert_eq!(ada.external_id.as_deref(), Some("ada"));
        register(&engine, tenant, "bob", Some("bob@example.com"), "pw-bob")
            .await
            .unwrap();

        let (found, token) = login(&engine, &config, tenant, "ADA", "pw-ada")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, ada.id);
        let Caller::Actor(actor) = auth::authenticate(
            &engine,
            &config.jwt,
            &auth::TokenCache::default(),
            Some(&token),
        )
        .await
        .unwrap() else {
            panic!("a login token authenticates");
        };
        assert_eq!(
            actor,
            Actor::Customer {
                tenant,
                contact: ada.id,
                conversation: None
            }
        );
        // The account token opens as many chats as it likes, all its own.
        let first = engine
            .open_conversation(&actor, OpenConversation::default())
            .await
            .unwrap();
        let second = engine
            .open_conversation(&actor, OpenConversation::default())
            .await
            .unwrap();
        assert_eq!(first.contact.id, ada.id);
        assert_eq!(second.contact.id, ada.id);

        let (_, bob_token) = login(&engine, &config, tenant, "bob", "pw-bob")
            .await
            .unwrap()
            .unwrap();
        let Caller::Actor(bob) = auth::authenticate(
            &engine,
            &config.jwt,
            &auth::TokenCache::default(),
            Some(&bob_token),
        )
        .await
        .unwrap() else {
            panic!("a login token authenticates");
        };
        assert!(matches!(
            engine.conversation(&bob, first.conversation.id).await,
            Err(chat_core::Error::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn wrong_passwords_taken_names_and_the_username_record_grant_nothing() {
        let (engine, tenant) = engine().await;
        let config = Config::new(b"test-secret-test-secret-test-secret!");
        register(&engine, tenant, "ada", Some("ada@example.com"), "pw-ada")
            .await
            .unwrap();
        assert!(
            login(&engine, &config, tenant, "ada", "wrong")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            login(&engine, &config, tenant, "nobody", "pw-ada")
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            register(&engine, tenant, "Ada", Some("other@example.com"), "x").await,
            Err(AccountError::UsernameTaken)
        ));
        assert!(matches!(
            register(&engine, tenant, "ada2", Some("ADA@example.com"), "x").await,
            Err(AccountError::EmailTaken)
        ));
        assert!(matches!(
            register(&engine, tenant, "carl", Some("not-an-email"), "x").await,
            Err(AccountError::Invalid { field: "email", .. })
        ));
        // The username record's key is not a token anyone can present.
        let key = username_key(tenant, "ada");
        for presented in [key.clone(), format!("vt_{key}")] {
            assert!(
                auth::authenticate(
                    &engine,
                    &config.jwt,
                    &auth::TokenCache::default(),
                    Some(&presented)
                )
                .await
                .is_err()
            );
        }
    }

    #[tokio::test]
    async fn the_password_hash_never_leaves_through_the_api_view() {
        let (engine, tenant) = engine().await;
        let mut ada = register(&engine, tenant, "ada", Some("ada@example.com"), "pw-ada")
            .await
            .unwrap();
        ada.metadata.insert("plan".into(), "gold".into());
        let shown = public_contact(&ada);
        assert!(ada.metadata.contains_key(PASSWORD_KEY));
        assert!(!shown.metadata.contains_key(PASSWORD_KEY));
        assert_eq!(shown.metadata.get("plan").map(String::as_str), Some("gold"));
        let text = serde_json::to_string(&shown).unwrap();
        assert!(!text.contains("argon2"), "{text}");
    }

    #[tokio::test]
    async fn a_phone_account_without_email_is_found_by_its_alias_too() {
        let (engine, tenant) = engine().await;
        let config = Config::new(b"test-secret-test-secret-test-secret!");
        let ada = register(&engine, tenant, "+1234567890", None, "pw")
            .await
            .unwrap();
        assert_eq!(ada.email, None);
        alias(&engine, tenant, "customer:1", ada.id).await.unwrap();
        let found = find(&engine, tenant, "customer:1").await.unwrap().unwrap();
        assert_eq!(found.id, ada.id);
        let (by_phone, _) = login(&engine, &config, tenant, "+1234567890", "pw")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_phone.id, ada.id);
        // Names are shared: an alias cannot take a username, nor a username an alias.
        let bob = register(&engine, tenant, "bob", None, "pw").await.unwrap();
        assert!(matches!(
            alias(&engine, tenant, "+1234567890", bob.id).await,
            Err(AccountError::UsernameTaken)
        ));
        assert!(matches!(
            register(&engine, tenant, "customer:1", None, "pw").await,
            Err(AccountError::UsernameTaken)
        ));
        // No alias for a contact that does not exist.
        assert!(
            alias(&engine, tenant, "ghost", ContactId(uuid::Uuid::now_v7()))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn staff_login_checks_the_password_and_the_active_flag() {
        let (engine, tenant) = engine().await;
        let config = Config::new(b"test-secret-test-secret-test-secret!");
        let agent = crate::staff::ensure_staff(
            &engine,
            tenant,
            "Ada",
            "ada@salon.example",
            "secret",
            chat_core::Role::Admin,
        )
        .await
        .unwrap();
        let (found, token) = staff_login(&engine, &config, tenant, " ADA@salon.example", "secret")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, agent.id);
        let claims = auth::verify_token(&config.jwt, &token).unwrap();
        assert_eq!(claims.tid, tenant.to_string());
        assert!(
            staff_login(&engine, &config, tenant, "ada@salon.example", "wrong")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            staff_login(&engine, &config, tenant, "nobody@salon.example", "secret")
                .await
                .unwrap()
                .is_none()
        );
    }
}
