//! Logins for templates: a staff member's e-mail and password to an access token, and a
//! customer account's login name and password to a visitor token for all of its
//! conversations (personal chats, as in seed 004).
//!
//! Customer accounts themselves (sign-up, login check, password change, disable, login
//! names) are engine operations (`Engine::sign_up`, `Engine::log_in`, ...): the password
//! hash lives in the credential store's own table, never in a contact, so no contact
//! input, view or merge can reach it. What is left here is issuing the server's tokens.

use chat_core::{Account, Actor, Agent, Contact, Engine, TenantId, VisitorToken};

use crate::app::Config;
use crate::auth;

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
    let Some((agent, token_version)) = engine.staff_log_in(tenant, email, password).await? else {
        return Ok(None);
    };
    let token = auth::issue_token(&config.jwt, tenant, agent.id, agent.role, token_version)?;
    Ok(Some((agent, token)))
}

/// Issues a visitor token for a contact's whole history (every conversation it has and
/// opens), after a login or a verified identity. Only the system issues tokens, so this
/// acts as the system of the contact's tenant. A password change or a disabled account
/// revokes it.
pub async fn issue_contact_token(
    engine: &Engine,
    config: &Config,
    contact: &Contact,
) -> chat_core::Result<String> {
    let (token, digest) = auth::new_visitor_token();
    let now = engine.clock().now();
    let record = VisitorToken {
        digest,
        tenant_id: contact.tenant_id,
        contact_id: contact.id,
        conversation_id: None,
        created_at: now,
        expires_at: Some(now + config.visitor_token_ttl),
    };
    let system = Actor::System {
        tenant: contact.tenant_id,
    };
    engine.store_visitor_token(&system, &record).await?;
    Ok(token)
}

/// Checks a login name and password ([`Engine::log_in`]) and issues a visitor token for
/// the whole account. `None` for a wrong name or password or a disabled account.
pub async fn login(
    engine: &Engine,
    config: &Config,
    tenant: TenantId,
    name: &str,
    password: &str,
) -> chat_core::Result<Option<(Account, Contact, String)>> {
    let Some((account, contact)) = engine.log_in(tenant, name, password).await? else {
        return Ok(None);
    };
    let token = issue_contact_token(engine, config, &contact).await?;
    Ok(Some((account, contact, token)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chat_core::memory::MemoryStore;
    use chat_core::{OpenConversation, SignUp, TenantSettings};

    use super::*;
    use crate::auth::Caller;

    async fn engine() -> (Engine, TenantId) {
        let engine = Engine::builder_with_backend(Arc::new(MemoryStore::new()))
            .passwords(Arc::new(auth::Argon2Passwords))
            .build();
        let tenant = engine
            .create_tenant("Acme", TenantSettings::default())
            .await
            .unwrap()
            .id;
        (engine, tenant)
    }

    fn sign_up(username: &str, email: Option<&str>, password: &str) -> SignUp {
        SignUp {
            username: username.into(),
            email: email.map(str::to_owned),
            password: password.into(),
            name: None,
        }
    }

    async fn actor_of(engine: &Engine, config: &Config, token: &str) -> Actor {
        let caller = auth::authenticate(
            engine,
            &config.jwt,
            &auth::TokenCache::default(),
            Some(token),
        )
        .await
        .unwrap();
        let Caller::Actor(actor) = caller else {
            panic!("a login token authenticates");
        };
        actor
    }

    #[tokio::test]
    async fn a_customer_signs_up_logs_in_and_sees_only_its_own_chats() {
        let (engine, tenant) = engine().await;
        let config = Config::new(b"test-secret-test-secret-test-secret!");
        let system = Actor::System { tenant };
        let (ada, _) = engine
            .sign_up(&system, sign_up("ada", Some("ada@example.com"), "pw-ada"))
            .await
            .unwrap();
        engine
            .sign_up(&system, sign_up("bob", Some("bob@example.com"), "pw-bob"))
            .await
            .unwrap();

        let (found, _, token) = login(&engine, &config, tenant, "ADA", "pw-ada")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.contact_id, ada.contact_id);
        let actor = actor_of(&engine, &config, &token).await;
        assert_eq!(
            actor,
            Actor::Customer {
                tenant,
                contact: ada.contact_id,
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
        assert_eq!(first.contact.id, ada.contact_id);
        assert_eq!(second.contact.id, ada.contact_id);

        let (_, _, bob_token) = login(&engine, &config, tenant, "bob", "pw-bob")
            .await
            .unwrap()
            .unwrap();
        let bob = actor_of(&engine, &config, &bob_token).await;
        assert!(matches!(
            engine.conversation(&bob, first.conversation.id).await,
            Err(chat_core::Error::NotFound(_))
        ));
    }

    async fn authenticates(engine: &Engine, config: &Config, token: &str) -> bool {
        let cache = auth::TokenCache::default();
        auth::authenticate(engine, &config.jwt, &cache, Some(token))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_password_change_needs_the_current_one_and_ends_every_session() {
        let (engine, tenant) = engine().await;
        let config = Config::new(b"test-secret-test-secret-test-secret!");
        let system = Actor::System { tenant };
        let (ada, _) = engine
            .sign_up(&system, sign_up("ada", None, "old-pw"))
            .await
            .unwrap();
        let (_, _, token) = login(&engine, &config, tenant, "ada", "old-pw")
            .await
            .unwrap()
            .unwrap();
        let me = actor_of(&engine, &config, &token).await;
        assert!(matches!(
            engine
                .change_account_password(&me, ada.contact_id, "wrong", "new-pw")
                .await,
            Err(chat_core::Error::Forbidden(_))
        ));
        engine
            .change_account_password(&me, ada.contact_id, "old-pw", "new-pw")
            .await
            .unwrap();
        // The old session is gone; the old password too.
        assert!(!authenticates(&engine, &config, &token).await);
        assert!(
            login(&engine, &config, tenant, "ada", "old-pw")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            login(&engine, &config, tenant, "ada", "new-pw")
                .await
                .unwrap()
                .is_some()
        );
        // Disabled: no login, and its sessions end.
        let (_, _, token) = login(&engine, &config, tenant, "ada", "new-pw")
            .await
            .unwrap()
            .unwrap();
        engine
            .set_account_disabled(&system, ada.contact_id, true)
            .await
            .unwrap();
        assert!(
            login(&engine, &config, tenant, "ada", "new-pw")
                .await
                .unwrap()
                .is_none()
        );
        assert!(!authenticates(&engine, &config, &token).await);
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
