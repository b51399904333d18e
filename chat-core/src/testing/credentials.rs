//! The [`Credentials`](crate::Credentials) conformance tests: staff secrets, tokens and
//! customer accounts.
#![allow(missing_docs, clippy::missing_panics_doc)]

use super::*;

/// Expands the [`Credentials`](crate::Credentials) conformance tests. `$factory` is an
/// `async fn()` returning `(Arc<dyn Backend>, G)`.
#[macro_export]
macro_rules! credentials_conformance_tests {
    ($factory:path) => {
        $crate::credentials_conformance_tests!(@expand $factory;
            tenants_are_listed_oldest_first,
            password_changes_bump_the_token_version,
            credential_changes_log_their_notice_in_the_same_write,
            credentials_of_unknown_or_foreign_agents_are_not_found,
            visitor_tokens_are_found_by_digest_only,
            bot_tokens_are_found_by_digest_only,
            bot_tokens_are_listed_touched_and_revoked_per_tenant,
            accounts_are_created_with_their_contact_and_found_by_any_name,
            account_names_and_emails_are_unique_per_tenant,
            password_changes_and_disabling_revoke_the_contacts_visitor_tokens,
            a_merge_moves_single_conversation_tokens_and_revokes_whole_history_ones,
            erasing_a_contact_deletes_its_conversations_account_tokens_and_scrubs_the_log,
            identity_signatures_are_claimed_once_until_they_expire,
            concurrent_claims_of_one_identity_signature_let_one_through,
        );
    };
    (@expand $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (backend, _guard) = $factory().await;
                $crate::testing::$name(backend).await;
            }
        )*
    };
}

type B = Arc<dyn crate::Backend>;

fn as_store(b: &B) -> S {
    b.clone()
}

pub async fn tenants_are_listed_oldest_first(backend: B) {
    let store = as_store(&backend);
    let mut made = Vec::new();
    for (i, name) in ["First", "Second", "Third"].into_iter().enumerate() {
        let t = Tenant {
            id: TenantId(id()),
            name: name.into(),
            settings: TenantSettings::default(),
            settings_version: 0,
            created_at: at(i as i64),
        };
        store.insert_tenant(&t).await.unwrap();
        made.push(t);
    }
    let listed = backend.tenants().await.unwrap();
    let ours: Vec<&Tenant> = listed
        .iter()
        .filter(|t| made.iter().any(|m| m.id == t.id))
        .collect();
    assert_eq!(ours, made.iter().collect::<Vec<_>>());
}

pub async fn password_changes_bump_the_token_version(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let fresh = backend.credential(t, a.id).await.unwrap();
    assert_eq!(
        fresh,
        crate::Credential {
            password_hash: None,
            token_version: 0
        }
    );
    assert_eq!(
        backend
            .set_password(t, a.id, "$argon2id$v=19$one", at(1))
            .await
            .unwrap()
            .0,
        1
    );
    assert_eq!(
        backend
            .set_password(t, a.id, "$argon2id$v=19$two", at(2))
            .await
            .unwrap()
            .0,
        2
    );
    assert_eq!(backend.revoke_tokens(t, a.id, at(3)).await.unwrap().0, 3);
    let now = backend.credential(t, a.id).await.unwrap();
    assert_eq!(
        now,
        crate::Credential {
            password_hash: Some("$argon2id$v=19$two".into()),
            token_version: 3
        }
    );
}

/// Every credential change appends its `credentials_changed` event in its own write, so
/// no server can commit the change and stop before the other servers' notice is logged;
/// a change that fails logs nothing.
pub async fn credential_changes_log_their_notice_in_the_same_write(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let (ada, account) = account_value(t, "ada", None);
    backend.create_account(&ada, &account, "old").await.unwrap();
    let bot = crate::BotToken {
        digest: "b2".repeat(32),
        tenant_id: t,
        name: "notifier".into(),
        created_at: at(0),
        expires_at: None,
        last_used_at: None,
    };
    backend.insert_bot_token(&bot).await.unwrap();
    let head = |tenant| {
        let store = store.clone();
        async move {
            store
                .events_since(tenant, 0, 10_000)
                .await
                .unwrap()
                .last()
                .map_or(0, |e| e.seq)
        }
    };
    let before = head(t).await;

    let (_, e1) = backend.set_password(t, a.id, "h1", at(11)).await.unwrap();
    let (_, e2) = backend.revoke_tokens(t, a.id, at(12)).await.unwrap();
    let e3 = backend
        .set_account_password(t, ada.id, "h2", at(13))
        .await
        .unwrap();
    let (_, e4) = backend
        .set_account_disabled(t, ada.id, true, at(14))
        .await
        .unwrap();
    let e5 = backend
        .revoke_bot_token(t, bot.id(), at(15))
        .await
        .unwrap()
        .expect("the token existed");
    let returned = [e1, e2, e3, e4, e5];
    let logged = store.events_since(t, before, 100).await.unwrap();
    assert_eq!(
        logged, returned,
        "each change logged exactly its event, in order"
    );
    for (i, e) in logged.iter().enumerate() {
        assert_eq!(e.payload, EventPayload::CredentialsChanged);
        assert_eq!(e.tenant_id, t);
        assert_eq!(e.conversation_id, None);
        assert!(e.staff_only);
        assert_eq!(e.at, at(11 + i as i64));
        assert_eq!(e.seq, before + 1 + i as u64);
    }

    // Changes that change nothing log nothing.
    let head_now = head(t).await;
    let other_head = head(other).await;
    assert!(matches!(
        backend.set_password(other, a.id, "x", at(20)).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        backend.revoke_tokens(t, AgentId(id()), at(20)).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        backend.revoke_bot_token(t, bot.id(), at(20)).await.unwrap(),
        None
    );
    assert!(matches!(
        backend
            .set_account_password(other, ada.id, "x", at(20))
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        backend
            .set_account_disabled(other, ada.id, true, at(20))
            .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(head(t).await, head_now);
    assert_eq!(head(other).await, other_head);
}

pub async fn credentials_of_unknown_or_foreign_agents_are_not_found(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let ghost = AgentId(id());
    assert!(matches!(
        backend.credential(t, ghost).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        backend.set_password(t, ghost, "x", at(1)).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        backend.credential(other, a.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        backend.set_password(other, a.id, "x", at(1)).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        backend.revoke_tokens(other, a.id, at(1)).await,
        Err(Error::NotFound(_))
    ));
}

pub async fn visitor_tokens_are_found_by_digest_only(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let token = crate::VisitorToken {
        digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        tenant_id: t,
        contact_id: k.id,
        conversation_id: Some(c.id),
        created_at: T0,
        expires_at: Some(at(3600)),
    };
    backend.insert_visitor_token(&token).await.unwrap();
    assert_eq!(
        backend.visitor_token(&token.digest).await.unwrap(),
        Some(token.clone())
    );
    assert!(matches!(
        backend.insert_visitor_token(&token).await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
    ));
    assert_eq!(backend.visitor_token("00").await.unwrap(), None);
    let contact_wide = crate::VisitorToken {
        digest: "ab".repeat(32),
        conversation_id: None,
        expires_at: None,
        ..token
    };
    backend.insert_visitor_token(&contact_wide).await.unwrap();
    assert_eq!(
        backend.visitor_token(&contact_wide.digest).await.unwrap(),
        Some(contact_wide)
    );
}

pub async fn bot_tokens_are_found_by_digest_only(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let token = crate::BotToken {
        digest: "cd".repeat(32),
        tenant_id: t,
        name: "order-status bot".into(),
        created_at: T0,
        expires_at: Some(T0 + time::Duration::days(30)),
        last_used_at: None,
    };
    backend.insert_bot_token(&token).await.unwrap();
    assert_eq!(
        backend.bot_token(&token.digest).await.unwrap(),
        Some(token.clone())
    );
    assert!(matches!(
        backend.insert_bot_token(&token).await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
    ));
    assert_eq!(backend.bot_token(&"ef".repeat(32)).await.unwrap(), None);
}

pub async fn bot_tokens_are_listed_touched_and_revoked_per_tenant(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let token = |digest: &str, tenant, at| crate::BotToken {
        digest: digest.repeat(32),
        tenant_id: tenant,
        name: format!("bot {digest}"),
        created_at: at,
        expires_at: None,
        last_used_at: None,
    };
    let newer = token("b2", t, T0 + time::Duration::minutes(1));
    let older = token("a1", t, T0);
    let foreign = token("c3", other, T0);
    for tk in [&newer, &older, &foreign] {
        backend.insert_bot_token(tk).await.unwrap();
    }
    assert_eq!(
        backend.bot_tokens(t).await.unwrap(),
        vec![older.clone(), newer.clone()]
    );

    let used = T0 + time::Duration::hours(2);
    backend.touch_bot_token(&older.digest, used).await.unwrap();
    let touched = backend.bot_token(&older.digest).await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(used));
    assert_eq!(touched.name, older.name);
    // Touching an unknown digest changes nothing and is no error.
    backend
        .touch_bot_token(&"ff".repeat(32), used)
        .await
        .unwrap();

    // Another tenant's handle, an unknown one and a malformed one revoke nothing.
    let when = at(9);
    assert_eq!(
        backend
            .revoke_bot_token(t, foreign.id(), when)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        backend
            .revoke_bot_token(t, "0123456789abcdef", when)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        backend.revoke_bot_token(t, "a1a1", when).await.unwrap(),
        None
    );
    assert!(backend.bot_token(&foreign.digest).await.unwrap().is_some());

    assert!(
        backend
            .revoke_bot_token(t, older.id(), when)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(backend.bot_token(&older.digest).await.unwrap(), None);
    assert_eq!(backend.bot_tokens(t).await.unwrap(), vec![newer]);
    assert_eq!(
        backend.revoke_bot_token(t, older.id(), when).await.unwrap(),
        None
    );
    assert_eq!(backend.bot_tokens(other).await.unwrap(), vec![foreign]);
}

fn account_value(
    tenant: TenantId,
    username: &str,
    email: Option<&str>,
) -> (Contact, crate::Account) {
    let contact = Contact {
        id: ContactId(id()),
        tenant_id: tenant,
        name: Some(username.into()),
        email: email.map(str::to_owned),
        email_verified: false,
        phone: None,
        address: None,
        external_id: Some(username.into()),
        metadata: BTreeMap::new(),
        created_at: T0,
        updated_at: T0,
    };
    let account = crate::Account {
        tenant_id: tenant,
        contact_id: contact.id,
        username: username.into(),
        email: email.map(str::to_owned),
        disabled: false,
        created_at: T0,
        updated_at: T0,
    };
    (contact, account)
}

fn visitor_token(
    tenant: TenantId,
    contact: ContactId,
    conversation: Option<ConversationId>,
) -> crate::VisitorToken {
    crate::VisitorToken {
        digest: format!("{:064x}", id().as_u128()),
        tenant_id: tenant,
        contact_id: contact,
        conversation_id: conversation,
        created_at: T0,
        expires_at: None,
    }
}

pub async fn accounts_are_created_with_their_contact_and_found_by_any_name(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let (contact, account) = account_value(t, "Ada", Some("ada@example.com"));
    backend
        .create_account(&contact, &account, "$argon2id$v=19$ada")
        .await
        .unwrap();
    assert_eq!(
        store.contact(t, contact.id).await.unwrap(),
        Some(contact.clone())
    );
    assert_eq!(
        backend.account(t, contact.id).await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        backend.account_by_name(t, "  aDA ").await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        backend
            .account_by_email(t, "ADA@example.com")
            .await
            .unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        backend
            .account_password_hash(t, contact.id)
            .await
            .unwrap()
            .as_deref(),
        Some("$argon2id$v=19$ada")
    );
    // The hash lives apart from the contact: nothing of it is in the contact's data.
    let stored = store.contact(t, contact.id).await.unwrap().unwrap();
    assert!(!format!("{stored:?}").contains("argon2"));
    // Another login name finds the same account.
    backend
        .add_account_name(t, contact.id, "customer:7")
        .await
        .unwrap();
    assert_eq!(
        backend.account_by_name(t, "CUSTOMER:7").await.unwrap(),
        Some(account.clone())
    );
    // Nothing is found from another tenant.
    assert_eq!(backend.account(other, contact.id).await.unwrap(), None);
    assert_eq!(backend.account_by_name(other, "ada").await.unwrap(), None);
    assert_eq!(
        backend
            .account_by_email(other, "ada@example.com")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        backend
            .account_password_hash(other, contact.id)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        backend.add_account_name(other, contact.id, "x").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(backend.account_by_name(t, "nobody").await.unwrap(), None);
    // A contact without an account has none.
    let plain = contact_fixture(&store, t).await;
    assert_eq!(backend.account(t, plain.id).await.unwrap(), None);
}

async fn contact_fixture(store: &S, t: TenantId) -> Contact {
    contact(store, t, None).await
}

pub async fn account_names_and_emails_are_unique_per_tenant(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let (ada, ada_account) = account_value(t, "ada", Some("ada@example.com"));
    backend
        .create_account(&ada, &ada_account, "h1")
        .await
        .unwrap();
    backend.add_account_name(t, ada.id, "+1555").await.unwrap();

    for (name, email) in [
        ("ADA", None),
        ("+1555", None),
        ("bob", Some("Ada@Example.com")),
    ] {
        let (c, a) = account_value(t, name, email);
        assert!(
            matches!(
                backend.create_account(&c, &a, "h2").await,
                Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
            ),
            "{name} {email:?}"
        );
        // Nothing of a refused sign-up is written.
        assert_eq!(store.contact(t, c.id).await.unwrap(), None);
    }
    let (bob, bob_account) = account_value(t, "bob", None);
    backend
        .create_account(&bob, &bob_account, "h2")
        .await
        .unwrap();
    assert!(matches!(
        backend.add_account_name(t, bob.id, "Ada").await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
    ));
    // Another tenant has its own names.
    let (c, a) = account_value(other, "ada", Some("ada@example.com"));
    backend.create_account(&c, &a, "h3").await.unwrap();
}

pub async fn password_changes_and_disabling_revoke_the_contacts_visitor_tokens(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let (ada, account) = account_value(t, "ada", None);
    backend.create_account(&ada, &account, "old").await.unwrap();
    let bystander = contact(&store, t, None).await;
    let kept = visitor_token(t, bystander.id, None);
    backend.insert_visitor_token(&kept).await.unwrap();

    let session = visitor_token(t, ada.id, None);
    backend.insert_visitor_token(&session).await.unwrap();
    backend
        .set_account_password(t, ada.id, "new", at(10))
        .await
        .unwrap();
    assert_eq!(backend.visitor_token(&session.digest).await.unwrap(), None);
    assert_eq!(
        backend
            .account_password_hash(t, ada.id)
            .await
            .unwrap()
            .as_deref(),
        Some("new")
    );
    assert_eq!(
        backend
            .account(t, ada.id)
            .await
            .unwrap()
            .unwrap()
            .updated_at,
        at(10)
    );

    let session = visitor_token(t, ada.id, None);
    backend.insert_visitor_token(&session).await.unwrap();
    let (disabled, _) = backend
        .set_account_disabled(t, ada.id, true, at(20))
        .await
        .unwrap();
    assert!(disabled.disabled);
    assert_eq!(backend.account(t, ada.id).await.unwrap(), Some(disabled));
    assert_eq!(backend.visitor_token(&session.digest).await.unwrap(), None);
    let (enabled, _) = backend
        .set_account_disabled(t, ada.id, false, at(30))
        .await
        .unwrap();
    assert!(!enabled.disabled);
    // Other contacts' tokens are untouched.
    assert_eq!(
        backend.visitor_token(&kept.digest).await.unwrap(),
        Some(kept.clone())
    );
    assert_eq!(
        backend
            .revoke_visitor_tokens(t, bystander.id)
            .await
            .unwrap(),
        1
    );
    assert_eq!(backend.visitor_token(&kept.digest).await.unwrap(), None);
    // No account, nothing to change.
    assert!(matches!(
        backend
            .set_account_password(t, bystander.id, "x", at(40))
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        backend
            .set_account_disabled(t, bystander.id, true, at(40))
            .await,
        Err(Error::NotFound(_))
    ));
}

pub async fn a_merge_moves_single_conversation_tokens_and_revokes_whole_history_ones(backend: B) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let from = contact(&store, t, None).await;
    let into = contact(&store, t, None).await;
    let c = conversation(&store, t, from.id, |_| {}).await;
    let one = visitor_token(t, from.id, Some(c.id));
    let whole = visitor_token(t, from.id, None);
    let theirs = visitor_token(t, into.id, None);
    for token in [&one, &whole, &theirs] {
        backend.insert_visitor_token(token).await.unwrap();
    }
    assert_eq!(
        backend
            .reassign_visitor_tokens(t, from.id, into.id)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        backend.visitor_token(&one.digest).await.unwrap(),
        Some(crate::VisitorToken {
            contact_id: into.id,
            ..one
        })
    );
    assert_eq!(backend.visitor_token(&whole.digest).await.unwrap(), None);
    assert_eq!(
        backend.visitor_token(&theirs.digest).await.unwrap(),
        Some(theirs)
    );
}

pub async fn erasing_a_contact_deletes_its_conversations_account_tokens_and_scrubs_the_log(
    backend: B,
) {
    let store = as_store(&backend);
    let t = tenant(&store).await;
    let (ada, account) = account_value(t, "Ada", Some("ada-marker@example.com"));
    backend.create_account(&ada, &account, "h1").await.unwrap();
    let bystander = contact(&store, t, Some("bob@example.com")).await;
    let mine = conversation(&store, t, ada.id, |_| {}).await;
    let kept = conversation(&store, t, bystander.id, |_| {}).await;
    store
        .append_message(text(&mine, Sender::Customer, "adamarker words", 1))
        .await
        .unwrap();
    store
        .append_message(text(&kept, Sender::Customer, "bob stays", 1))
        .await
        .unwrap();
    let token = visitor_token(t, ada.id, None);
    let theirs = visitor_token(t, bystander.id, None);
    for token in [&token, &theirs] {
        backend.insert_visitor_token(token).await.unwrap();
    }
    let mut erasure = crate::store::ContactErasure {
        tenant: t,
        contact: ada.id,
        conversations: Vec::new(),
        erased_by: None,
        at: at(50),
    };
    // The list must name every conversation of the contact.
    let before = head(&store, t).await;
    assert!(matches!(
        store.erase_contact(&erasure).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        head(&store, t).await,
        before,
        "a refused erasure logs nothing"
    );
    assert!(matches!(
        store
            .erase_contact(&crate::store::ContactErasure {
                contact: ContactId(id()),
                ..erasure.clone()
            })
            .await,
        Err(Error::NotFound(_))
    ));
    erasure.conversations = vec![mine.id];
    let events = store.erase_contact(&erasure).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.payload.kind()).collect();
    assert_eq!(kinds, ["conversation_deleted", "contact_erased"]);
    assert_eq!(
        events[1].payload,
        EventPayload::ContactErased {
            contact_id: ada.id,
            erased_by: None,
            conversations: 1
        }
    );
    assert!(events[1].staff_only);
    let log = all_events(&store, t).await;
    assert_gap_free(&log);
    // Nothing of Ada's is left in the log: her conversation's events say only that it
    // was deleted; Bob's are untouched.
    for event in &log {
        let json = serde_json::to_string(event).unwrap();
        assert!(!json.contains("marker"), "{json}");
        if event.conversation_id == Some(mine.id) {
            assert_eq!(event.payload.kind(), "conversation_deleted");
        }
    }
    assert!(log.iter().any(|e| matches!(&e.payload,
        EventPayload::MessageCreated { message } if message.body == "bob stays")));
    assert_eq!(store.conversation(t, mine.id).await.unwrap(), None);
    assert!(store.conversation(t, kept.id).await.unwrap().is_some());
    let left = store
        .contact(t, ada.id)
        .await
        .unwrap()
        .expect("stays, blank");
    assert!(left.is_blank());
    assert_eq!(left, ada.erased(at(50)));
    assert_eq!(backend.account(t, ada.id).await.unwrap(), None);
    assert_eq!(backend.account_by_name(t, "ada").await.unwrap(), None);
    assert_eq!(backend.visitor_token(&token.digest).await.unwrap(), None);
    assert_eq!(
        backend.visitor_token(&theirs.digest).await.unwrap(),
        Some(theirs)
    );
    assert_eq!(
        store.contact(t, bystander.id).await.unwrap(),
        Some(bystander)
    );
}

pub async fn identity_signatures_are_claimed_once_until_they_expire(backend: B) {
    let digest = hex_digest();
    let minutes = |m: i64| T0 + time::Duration::minutes(m);
    assert!(
        backend
            .claim_signature(&digest, minutes(10), T0)
            .await
            .unwrap()
    );
    assert!(
        !backend
            .claim_signature(&digest, minutes(10), minutes(1))
            .await
            .unwrap(),
        "a replay while fresh"
    );
    assert!(
        !backend
            .claim_signature(&digest, minutes(10), minutes(10))
            .await
            .unwrap(),
        "still fresh at its expiry"
    );
    // Past its expiry the record is no proof of anything: the claim's own age check
    // refuses stale signatures before they get here.
    let later = minutes(10) + time::Duration::SECOND;
    assert!(
        backend
            .claim_signature(&digest, minutes(30), later)
            .await
            .unwrap()
    );
    assert!(
        !backend
            .claim_signature(&digest, minutes(30), minutes(20))
            .await
            .unwrap()
    );

    // Given back, it can be claimed again; giving back an unknown one is no error.
    backend.release_signature(&digest).await.unwrap();
    assert!(
        backend
            .claim_signature(&digest, minutes(30), minutes(20))
            .await
            .unwrap()
    );
    backend.release_signature(&hex_digest()).await.unwrap();

    // Another signature is its own.
    assert!(
        backend
            .claim_signature(&hex_digest(), minutes(30), minutes(20))
            .await
            .unwrap()
    );
}

pub async fn concurrent_claims_of_one_identity_signature_let_one_through(backend: B) {
    let digest = hex_digest();
    let claims = (0..8).map(|_| {
        let (backend, digest) = (backend.clone(), digest.clone());
        tokio::spawn(async move {
            backend
                .claim_signature(&digest, T0 + time::Duration::minutes(10), T0)
                .await
                .unwrap()
        })
    });
    let mut won = 0;
    for claim in claims.collect::<Vec<_>>() {
        won += usize::from(claim.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one of the concurrent claims wins");
}

/// A fresh digest in the form the server stores (64 hex characters).
fn hex_digest() -> String {
    id().simple().to_string().repeat(2)
}
