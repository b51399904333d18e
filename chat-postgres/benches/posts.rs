//! Durable message posts per second through the `Store` trait, PostgreSQL beside SQLite,
//! with the event counter shared by every poster (one tenant) or not (a tenant each).
//!
//! ```text
//! CHAT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p chat-postgres --bench posts
//! ```
//!
//! - `BENCH_MESSAGES` (20000): messages posted per run;
//! - `BENCH_POSTERS` (16): concurrent posters, each on a conversation of its own.
//!
//! PostgreSQL runs with its defaults (`synchronous_commit = on`: a commit waits for its WAL
//! flush) in a schema made for the run and dropped after; SQLite with `synchronous = FULL`
//! in a temp dir. The bench, the database and the load share the machine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chat_core::{
    Contact, ContactId, Conversation, ConversationId, MessageId, MessageKind, Mode, NewMessage,
    Sender, Store, Tenant, TenantId, TenantSettings,
};
use chat_postgres::{Options, PostgresStore};
use time::OffsetDateTime;
use tokio_postgres::NoTls;
use uuid::Uuid;

const BODY: &str =
    "Hi, my order #48213 has not arrived yet and tracking shows no update since Monday.";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn tenant(store: &dyn Store) -> TenantId {
    let t = Tenant {
        id: TenantId(Uuid::now_v7()),
        name: "Bench".into(),
        settings: TenantSettings::default(),
        settings_version: 0,
        created_at: OffsetDateTime::now_utc(),
    };
    store.insert_tenant(&t).await.unwrap();
    t.id
}

async fn conversation(store: &dyn Store, tenant: TenantId) -> Conversation {
    let now = OffsetDateTime::now_utc();
    let contact = Contact {
        id: ContactId(Uuid::now_v7()),
        tenant_id: tenant,
        name: Some("Jo".into()),
        email: None,
        email_verified: false,
        phone: None,
        address: None,
        external_id: None,
        metadata: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    };
    store.insert_contact(&contact).await.unwrap();
    let c = Conversation::new(
        ConversationId(Uuid::now_v7()),
        tenant,
        contact.id,
        Mode::Agent,
        now,
    );
    store
        .create_conversation(&c, Vec::new())
        .await
        .unwrap()
        .conversation
}

/// Posts `messages` with `posters` concurrent posters; messages per second.
async fn run(store: Arc<dyn Store>, posters: usize, messages: usize, shared_tenant: bool) -> f64 {
    let shared = tenant(store.as_ref()).await;
    let mut conversations = Vec::new();
    for _ in 0..posters {
        let t = if shared_tenant {
            shared
        } else {
            tenant(store.as_ref()).await
        };
        conversations.push(conversation(store.as_ref(), t).await);
    }
    let each = messages / posters;
    let started = Instant::now();
    let tasks: Vec<_> = conversations
        .into_iter()
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    store
                        .append_message(NewMessage {
                            id: MessageId(Uuid::now_v7()),
                            tenant_id: c.tenant_id,
                            conversation_id: c.id,
                            sender: Sender::Customer,
                            kind: MessageKind::Text,
                            body: BODY.into(),
                            attachments: Vec::new(),
                            reply_to: None,
                            client_message_id: None,
                            entities: Vec::new(),
                            metadata: BTreeMap::new(),
                            created_at: OffsetDateTime::now_utc(),
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (each * posters) as f64 / started.elapsed().as_secs_f64()
}

async fn sql(url: &str, statement: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    client.batch_execute(statement).await.unwrap();
    drop(client);
    let _ = connection.await;
}

#[tokio::main]
async fn main() {
    let Some(url) = std::env::var("CHAT_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("skipped: CHAT_TEST_POSTGRES_URL unset");
        return;
    };
    let messages = env_usize("BENCH_MESSAGES", 20_000);
    let posters = env_usize("BENCH_POSTERS", 16).max(1);
    println!("{messages} posts, {posters} concurrent posters, one conversation each");
    println!(
        "{:<12} {:>22} {:>22}",
        "store", "one tenant (posts/s)", "a tenant each (posts/s)"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut figures = Vec::new();
    for shared in [true, false] {
        let path = dir.path().join(format!("bench-{shared}.db"));
        let store: Arc<dyn Store> = Arc::new(chat_sqlite::SqliteStore::open(&path).unwrap());
        figures.push(run(store, posters, messages, shared).await);
    }
    println!("{:<12} {:>22.0} {:>22.0}", "sqlite", figures[0], figures[1]);

    let schema = format!("chat_bench_{}", Uuid::new_v4().simple());
    sql(&url, &format!("CREATE SCHEMA {schema}")).await;
    let mut figures = Vec::new();
    for shared in [true, false] {
        let store = PostgresStore::connect_with(
            &url,
            Options::default().schema(&schema).pool_size(posters),
        )
        .await
        .unwrap();
        figures.push(run(Arc::new(store), posters, messages, shared).await);
    }
    println!(
        "{:<12} {:>22.0} {:>22.0}",
        "postgres", figures[0], figures[1]
    );
    sql(&url, &format!("DROP SCHEMA {schema} CASCADE")).await;
}
