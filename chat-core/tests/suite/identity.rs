//! Who a contact is, at the engine: claims never join contacts; a verified identity, an
//! account login or a staff merge do. Customer accounts keep their hash to themselves.

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::{
    Actor, ContactInput, Engine, Error, NewAgent, OpenConversation, PasswordHasher, Role, SignUp,
    TenantSettings,
};

/// A hasher cheap enough for tests (the server's is argon2id). Not a real hash: the
/// engine only needs `verify` to accept what `hash` made.
struct Plain;

#[async_trait::async_trait]
impl PasswordHasher for Plain {
    async fn hash(&self, password: &str) -> chat_core::Result<String> {
        Ok(format!("plain:{password}"))
    }
    async fn verify(&self, password: &str, hash: Option<&str>) -> chat_core::Result<bool> {
        Ok(hash == Some(format!("plain:{password}").as_str()))
    }
}

async fn desk() -> (Engine, Actor) {
    let engine = Engine::builder_with_backend(Arc::new(MemoryStore::new()))
        .passwords(Arc::new(Plain))
        .build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    (engine, Actor::System { tenant })
}

async fn staff(engine: &Engine, system: &Actor, name: &str, role: Role) -> Actor {
    let agent = engine
        .create_agent(
            system,
            NewAgent {
                name: name.into(),
                email: format!("{name}@desk.example"),
                role,
                capacity: None,
                departments: Vec::new(),
            },
        )
        .await
        .unwrap();
    Actor::Staff {
        tenant: system.tenant(),
        agent: agent.id,
    }
}

fn claims(email: &str, name: &str) -> OpenConversation {
    OpenConversation {
        contact: ContactInput {
            email: Some(email.into()),
            name: Some(name.into()),
            ..ContactInput::default()
        },
        ..OpenConversation::default()
    }
}

#[tokio::test]
async fn an_open_with_a_claimed_email_always_makes_a_new_unverified_contact() {
    let (engine, system) = desk().await;
    let first = engine
        .open_conversation(&system, claims("jo@shop.example", "Jo"))
        .await
        .unwrap();
    let second = engine
        .open_conversation(&system, claims("JO@shop.example", "Mallory"))
        .await
        .unwrap();
    assert_ne!(first.contact.id, second.contact.id);
    assert!(!first.contact.email_verified && !second.contact.email_verified);
    let untouched = engine.contact(&system, first.contact.id).await.unwrap();
    assert_eq!(untouched.name.as_deref(), Some("Jo"));
}

#[tokio::test]
async fn a_verified_identity_finds_its_contact_and_ignores_claims_about_it() {
    let (engine, system) = desk().await;
    let input = ContactInput {
        name: Some("Alice".into()),
        ..ContactInput::default()
    };
    let alice = engine
        .identify(&system, " Alice@Example.com ", input)
        .await
        .unwrap();
    assert!(alice.email_verified);
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    let later = ContactInput {
        name: Some("Someone else".into()),
        ..ContactInput::default()
    };
    let again = engine
        .identify(&system, "alice@example.com", later)
        .await
        .unwrap();
    assert_eq!(again, alice, "the stored contact is returned unchanged");
    // Only the system vouches for identities.
    let admin = staff(&engine, &system, "ada", Role::Admin).await;
    assert!(matches!(
        engine
            .identify(&admin, "alice@example.com", ContactInput::default())
            .await,
        Err(Error::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_merge_moves_conversations_keeps_the_verified_email_and_is_audited() {
    let (engine, system) = desk().await;
    let supervisor = staff(&engine, &system, "sam", Role::Supervisor).await;
    let agent = staff(&engine, &system, "ann", Role::Agent).await;
    let anonymous = engine
        .open_conversation(&system, claims("bob@example.com", "Bob"))
        .await
        .unwrap();
    let bob = engine
        .identify(&system, "bob@example.com", ContactInput::default())
        .await
        .unwrap();
    assert!(matches!(
        engine
            .merge_contacts(&agent, bob.id, anonymous.contact.id)
            .await,
        Err(Error::Forbidden(_))
    ));
    let mut feed = engine.bus().subscribe();
    let kept = engine
        .merge_contacts(&supervisor, bob.id, anonymous.contact.id)
        .await
        .unwrap();
    assert!(kept.email_verified);
    assert_eq!(kept.name.as_deref(), Some("Bob"), "missing fields filled");
    let moved = engine
        .conversation(&system, anonymous.conversation.id)
        .await
        .unwrap();
    assert_eq!(moved.contact_id, bob.id);
    assert!(matches!(
        engine.contact(&system, anonymous.contact.id).await,
        Err(Error::NotFound(_))
    ));
    let mut kinds = Vec::new();
    while let Ok(event) = feed.try_recv() {
        kinds.push(event.payload.kind());
    }
    // The merge revoked the merged contact's history tokens: the servers' signal to
    // re-check sockets follows it.
    assert_eq!(
        kinds,
        [
            "conversation_updated",
            "contact_merged",
            "credentials_changed"
        ]
    );
}

#[tokio::test]
async fn accounts_sign_up_log_in_and_keep_their_hash_out_of_the_contact() {
    let (engine, system) = desk().await;
    let (account, contact) = engine
        .sign_up(
            &system,
            SignUp {
                username: "ada".into(),
                email: Some("ada@example.com".into()),
                password: "pw".into(),
                name: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(account.contact_id, contact.id);
    assert!(!format!("{contact:?}{account:?}").contains("plain:"));
    let taken = engine
        .sign_up(
            &system,
            SignUp {
                username: "ADA".into(),
                password: "x".into(),
                ..SignUp::default()
            },
        )
        .await;
    assert!(matches!(
        taken,
        Err(Error::Validation {
            field: "username",
            ..
        })
    ));
    let taken = engine
        .sign_up(
            &system,
            SignUp {
                username: "ada2".into(),
                email: Some("Ada@Example.com".into()),
                password: "x".into(),
                name: None,
            },
        )
        .await;
    assert!(matches!(
        taken,
        Err(Error::Validation { field: "email", .. })
    ));
    let tenant = system.tenant();
    assert!(
        engine
            .log_in(tenant, "ada", "wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        engine
            .log_in(tenant, "nobody", "pw")
            .await
            .unwrap()
            .is_none()
    );
    let (found, _) = engine.log_in(tenant, "Ada", "pw").await.unwrap().unwrap();
    assert_eq!(found, account);
    // A visitor cannot sign others up, see another's account or merge the account away.
    let customer = Actor::Customer {
        tenant,
        contact: contact.id,
        conversation: None,
    };
    assert!(matches!(
        engine.sign_up(&customer, SignUp::default()).await,
        Err(Error::Forbidden(_))
    ));
    let other = engine
        .open_conversation(&system, OpenConversation::default())
        .await
        .unwrap();
    let stranger = Actor::Customer {
        tenant,
        contact: other.contact.id,
        conversation: Some(other.conversation.id),
    };
    assert!(matches!(
        engine.account(&stranger, contact.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        engine
            .change_account_password(&stranger, contact.id, "pw", "new")
            .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        engine.account(&customer, contact.id).await.unwrap(),
        account
    );
    assert!(matches!(
        engine
            .merge_contacts(&system, other.contact.id, contact.id)
            .await,
        Err(Error::Conflict(_))
    ));
}
