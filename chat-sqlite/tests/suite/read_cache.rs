//! A conversation read answered from what the writer last committed (the read on every
//! posted message) is what the database holds at that moment: the writer's own commits
//! at once, a change by another connection (another store or process on the file) at
//! once too, and never an operation that was rolled back.

use crate::common;

use std::sync::Arc;

use chat_core::store::ConversationUpdate;
use chat_core::{
    Actor, ContactInput, ConversationChange, Engine, Error, Mode, OpenConversation, PostMessage,
    Sender, Store, TenantSettings,
};
use chat_sqlite::SqliteStore;
use common::*;
use rusqlite::{Connection, params};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_after_a_write_answers_the_committed_conversation() {
    let (store, _dir) = store();
    let c = one_conversation(&store).await;
    let appended = store
        .append_message(text(&c, 10, Sender::Customer, "hello", 1))
        .await
        .unwrap();
    assert_eq!(
        store.conversation(c.tenant_id, c.id).await.unwrap(),
        Some(appended.conversation.clone())
    );
    // Another tenant never gets it, cached or not.
    let other = tenant(9);
    store.insert_tenant(&other).await.unwrap();
    assert_eq!(store.conversation(other.id, c.id).await.unwrap(), None);

    // An update that fails after writing (the system message's id is taken) is rolled
    // back: the read still answers the committed state.
    let mut changed = appended.conversation.clone();
    changed.mode = Mode::Queued;
    let failed = store
        .update_conversation(ConversationUpdate {
            conversation: changed,
            change: ConversationChange::Mode {
                from: Mode::Bot,
                to: Mode::Queued,
            },
            message: Some(text(&c, 10, Sender::System, "queued", 2)),
        })
        .await;
    assert!(matches!(failed, Err(Error::Conflict(_))), "{failed:?}");
    assert_eq!(
        store.conversation(c.tenant_id, c.id).await.unwrap(),
        Some(appended.conversation)
    );

    // A deleted conversation is gone for readers at once.
    store
        .delete_conversation(c.tenant_id, c.id, at(3))
        .await
        .unwrap();
    assert_eq!(store.conversation(c.tenant_id, c.id).await.unwrap(), None);
}

/// The read that follows an answered write (a client's next post reads its conversation
/// first) is answered from what the writer committed: the writer lets go of its
/// connection before it answers, so that read never finds it busy and goes to the
/// database instead. (It used to hold it while it answered and woke its followers.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_after_an_answered_post_is_answered_without_the_database() {
    let (store, _dir) = store();
    let c = one_conversation(&store).await;
    let before = store.read_counts();
    for n in 0..300 {
        let appended = store
            .append_message(text(&c, 10 + n, Sender::Customer, "hello", n as i64))
            .await
            .unwrap();
        assert_eq!(
            store.conversation(c.tenant_id, c.id).await.unwrap(),
            Some(appended.conversation)
        );
    }
    assert_eq!(store.read_counts().since(before).total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_another_connection_is_read_at_once_without_a_write_between() {
    let (store, dir) = store();
    let c = one_conversation(&store).await;
    let appended = store
        .append_message(text(&c, 10, Sender::Customer, "hello", 1))
        .await
        .unwrap();
    assert_eq!(
        store.conversation(c.tenant_id, c.id).await.unwrap(),
        Some(appended.conversation.clone())
    );

    // Another process retitles it; this store writes nothing afterwards.
    let mut elsewhere = appended.conversation.clone();
    elsewhere.title = Some("Changed elsewhere".into());
    elsewhere.version += 1;
    let conn = Connection::open(dir.path().join("chat.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute(
        "UPDATE conversations SET title = ?2, version = ?3, data = ?4 WHERE id = ?1",
        params![
            c.id.0,
            "Changed elsewhere",
            elsewhere.version as i64,
            serde_json::to_string(&elsewhere).unwrap()
        ],
    )
    .unwrap();

    let read = store
        .conversation(c.tenant_id, c.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.title.as_deref(), Some("Changed elsewhere"));
    assert_eq!(read.version, elsewhere.version);
    // And the next write builds on it too.
    let next = store
        .append_message(text(&c, 11, Sender::Customer, "still there?", 2))
        .await
        .unwrap();
    assert_eq!(
        next.conversation.title.as_deref(),
        Some("Changed elsewhere")
    );
    assert_eq!(next.conversation.version, elsewhere.version + 1);
    assert_eq!(
        store.conversation(c.tenant_id, c.id).await.unwrap(),
        Some(next.conversation)
    );
}

/// An engine on `store` with a tenant whose bot is off and which reopens closed
/// conversations, and a visitor's conversation in the queue.
async fn desk(store: Arc<SqliteStore>) -> (Engine, Actor, chat_core::ConversationId) {
    let engine = Engine::builder_with_backend(store).build();
    let settings = TenantSettings {
        bot_enabled: false,
        ..TenantSettings::default()
    };
    let tenant = engine.create_tenant("Desk", settings).await.unwrap().id;
    let opened = engine
        .open_conversation(
            &Actor::System { tenant },
            OpenConversation {
                contact: ContactInput {
                    name: Some("Ann".into()),
                    ..ContactInput::default()
                },
                ..OpenConversation::default()
            },
        )
        .await
        .unwrap();
    let customer = Actor::Customer {
        tenant,
        contact: opened.contact.id,
        conversation: Some(opened.conversation.id),
    };
    (engine, customer, opened.conversation.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_follows_a_close_made_by_another_engine_on_the_same_store() {
    let (store, _dir) = store();
    let (engine, customer, id) = desk(store.clone()).await;
    let posted = engine
        .post_message(&customer, id, PostMessage::text("hello"))
        .await
        .unwrap();
    assert_eq!(posted.conversation.mode, Mode::Queued);

    let other = Engine::builder_with_backend(store.clone()).build();
    let system = Actor::System {
        tenant: customer.tenant(),
    };
    let closed = other.close(&system, id, None).await.unwrap();
    assert_eq!(closed.mode, Mode::Closed);

    assert_eq!(
        engine.conversation(&customer, id).await.unwrap().mode,
        Mode::Closed
    );
    // Writing after the close reopens it: the post saw the closed state.
    let again = engine
        .post_message(&customer, id, PostMessage::text("one more thing"))
        .await
        .unwrap();
    assert_ne!(again.conversation.mode, Mode::Closed);
    assert!(again.conversation.version > closed.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_follows_a_close_made_by_another_store_on_the_same_file() {
    let (store, dir) = store();
    let (engine, customer, id) = desk(store.clone()).await;
    engine
        .post_message(&customer, id, PostMessage::text("hello"))
        .await
        .unwrap();
    // Cached by this store's writer now.
    assert_eq!(
        engine.conversation(&customer, id).await.unwrap().mode,
        Mode::Queued
    );

    // A second process on the file closes it.
    let elsewhere = Arc::new(SqliteStore::open(dir.path().join("chat.db")).unwrap());
    let other = Engine::builder_with_backend(elsewhere).build();
    let system = Actor::System {
        tenant: customer.tenant(),
    };
    let closed = other.close(&system, id, None).await.unwrap();

    assert_eq!(
        engine.conversation(&customer, id).await.unwrap(),
        other.conversation(&system, id).await.unwrap(),
        "the same state through both stores"
    );
    let again = engine
        .post_message(&customer, id, PostMessage::text("one more thing"))
        .await
        .unwrap();
    assert_ne!(again.conversation.mode, Mode::Closed, "reopened");
    assert!(again.conversation.version > closed.version);
}

/// The writer remembers that a tenant has no webhook, to skip the outbox on its events.
/// A webhook another store (another process) on the file adds gets the next event all the
/// same: that commit empties what the writer remembers, as any other connection's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_another_store_adds_gets_the_next_event() {
    use chat_core::{Webhook, WebhookId, WebhookSecret, WebhookState};
    let (store, dir) = store();
    let c = one_conversation(&store).await;
    // The tenant has no webhook: remembered by this store's writer now.
    store
        .append_message(text(&c, 10, Sender::Customer, "hello", 1))
        .await
        .unwrap();

    let elsewhere = SqliteStore::open(dir.path().join("chat.db")).unwrap();
    let hook = Webhook {
        id: WebhookId(uuid::Uuid::from_u128(77)),
        tenant_id: c.tenant_id,
        url: "https://hooks.example/desk".into(),
        events: Vec::new(),
        secret: WebhookSecret("s3cret-s3cret-s3cret".into()),
        state: WebhookState::Active,
        failing_since: None,
        created_at: c.created_at,
        updated_at: c.created_at,
    };
    elsewhere.put_webhook(&hook).await.unwrap();

    let posted = store
        .append_message(text(&c, 11, Sender::Customer, "anyone there?", 2))
        .await
        .unwrap();
    let deliveries = store
        .deliveries(c.tenant_id, hook.id, None, 10)
        .await
        .unwrap();
    assert_eq!(
        deliveries.iter().map(|d| d.seq).collect::<Vec<_>>(),
        [posted.event.unwrap().seq],
        "the event after the other store's webhook was not put in the outbox"
    );
}
