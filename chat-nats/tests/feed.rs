//! Two engines on one store (two servers on one database), each with a `NatsBus`: a feed on
//! one follows what the other writes, and an event that no bus announced (a write whose
//! publisher was lost) is read from the store as soon as a later event arrives over NATS,
//! long before the feed would poll. Needs `CHAT_TEST_NATS_URL`; without it the test says
//! it was skipped (and fails under `CHAT_REQUIRE_SERVICES=1`).

use std::sync::Arc;
use std::time::Duration;

use chat_core::feed::{FeedConfig, FeedItem, FeedScope};
use chat_core::memory::MemoryStore;
use chat_core::{
    Actor, ContactInput, Engine, EventPayload, OpenConversation, PostMessage, Store, TenantSettings,
};
use chat_nats::{NatsBus, Options};

const URL_VAR: &str = "CHAT_TEST_NATS_URL";

fn nats_url() -> Option<String> {
    let url = std::env::var(URL_VAR).ok().filter(|v| !v.is_empty());
    if url.is_none() {
        let required = std::env::var("CHAT_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(!required, "CHAT_REQUIRE_SERVICES=1 but {URL_VAR} is unset");
        println!("skipped: {URL_VAR} unset");
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_event_makes_the_feed_read_what_no_bus_announced() {
    let Some(url) = nats_url() else { return };
    let options = Options::default().prefix(format!("test{}", uuid::Uuid::new_v4().simple()));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = Engine::builder(store.clone())
        .bus(Arc::new(
            NatsBus::connect(&url, options.clone()).await.unwrap(),
        ))
        .build();
    let b = Engine::builder(store.clone())
        .bus(Arc::new(NatsBus::connect(&url, options).await.unwrap()))
        .build();
    // A third writer on the same store whose events reach no other process.
    let silent = Engine::builder(store).build();
    let tenant = a
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let system = Actor::System { tenant };
    // The store is never polled: only what arrives over NATS moves this feed.
    let config = FeedConfig {
        poll: Duration::from_secs(3600),
        ..FeedConfig::default()
    };
    let mut feed = b
        .feed_with(&system, FeedScope::Tenant, None, config)
        .await
        .unwrap();

    let opened = a
        .open_conversation(
            &system,
            OpenConversation {
                contact: ContactInput {
                    email: Some("jo@example.com".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let visitor = Actor::Customer {
        tenant,
        contact: opened.contact.id,
        conversation: Some(opened.conversation.id),
    };
    let id = opened.conversation.id;
    silent
        .post_message(&visitor, id, PostMessage::text("unannounced"))
        .await
        .unwrap();
    a.post_message(&visitor, id, PostMessage::text("announced"))
        .await
        .unwrap();

    let mut seqs = Vec::new();
    let mut bodies = Vec::new();
    while bodies.last() != Some(&"announced".to_owned()) {
        let item = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed waited for its poll: the remote event did not wake it")
            .unwrap()
            .unwrap();
        let FeedItem::Event(e) = item else {
            panic!("{item:?}")
        };
        seqs.push(e.event.seq);
        if let EventPayload::MessageCreated { message } = &e.event.payload {
            // The default bot answers the first one; only the visitor's posts matter here.
            if message.body.contains("announced") {
                bodies.push(message.body.clone());
            }
        }
    }
    assert_eq!(bodies, ["unannounced", "announced"]);
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}
