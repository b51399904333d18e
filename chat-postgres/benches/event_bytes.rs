//! What the event log takes on disk when `message_created` events refer to their messages'
//! rows (schema version 10) and the latest conversation event of each conversation to its
//! row (schema version 11), against the same log with every event a full copy (as schema
//! version 9 stored them), in the same run and database.
//!
//! ```text
//! CHAT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p chat-postgres --bench event_bytes
//! ```
//!
//! - `BENCH_MESSAGES` (20000): messages posted, through the `Store` trait;
//! - `BENCH_POSTERS` (16): concurrent posters, each on a conversation of its own, one tenant;
//! - `BENCH_CONVERSATIONS` (2000): conversations that then go the desk's usual way, by the
//!   same number of workers: opened, queued, claimed by an agent, a customer message and an
//!   agent's answer, read by the customer, closed (three `conversation_updated` events,
//!   of which the last stays a reference).
//!
//! After the posts, `VACUUM FULL` rewrites the table and the figures are read; then every
//! event is written out in full (the rebuilt events, as an edit writes one out), `VACUUM
//! FULL` again, and the figures read again. Sizes are bytes on disk, not times, so the
//! machine's load does not move them.

use std::collections::BTreeMap;
use std::sync::Arc;

use chat_core::store::ConversationUpdate;
use chat_core::{
    AgentId, Contact, ContactId, Conversation, ConversationChange, ConversationId, Event,
    MessageId, MessageKind, Mode, NewMessage, ReadCursor, Reader, Sender, Store, Tenant, TenantId,
    TenantSettings,
};
use chat_postgres::{Options, PostgresStore};
use time::OffsetDateTime;
use tokio_postgres::NoTls;
use tokio_postgres::types::Json;
use uuid::Uuid;

const BODY: &str =
    "Hi, my order #48213 has not arrived yet and tracking shows no update since Monday.";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn text(c: &Conversation, sender: Sender) -> NewMessage {
    NewMessage {
        id: MessageId(Uuid::now_v7()),
        tenant_id: c.tenant_id,
        conversation_id: c.id,
        sender,
        kind: MessageKind::Text,
        body: BODY.into(),
        attachments: Vec::new(),
        reply_to: None,
        client_message_id: None,
        entities: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: OffsetDateTime::now_utc(),
    }
}

/// Moves `c` through `edit` as one update, logged as `change`.
async fn update(
    store: &dyn Store,
    c: Conversation,
    change: ConversationChange,
    edit: impl FnOnce(&mut Conversation),
) -> Conversation {
    let mut next = c;
    edit(&mut next);
    next.updated_at = OffsetDateTime::now_utc();
    store
        .update_conversation(ConversationUpdate {
            conversation: next,
            change,
            message: None,
        })
        .await
        .unwrap()
        .conversation
}

/// A conversation the desk's usual way (see the module's documentation).
async fn handled(store: &dyn Store, tenant: TenantId, agent: AgentId) {
    let mut c = conversation(store, tenant).await;
    c = update(
        store,
        c,
        ConversationChange::Mode {
            from: Mode::Agent,
            to: Mode::Queued,
        },
        |c| {
            c.mode = Mode::Queued;
            c.queued_at = Some(OffsetDateTime::now_utc());
        },
    )
    .await;
    c = update(
        store,
        c,
        ConversationChange::Assigned {
            from: None,
            to: Some(agent),
        },
        |c| {
            c.mode = Mode::Agent;
            c.queued_at = None;
            c.assigned_agent_id = Some(agent);
            c.assigned_at = Some(OffsetDateTime::now_utc());
        },
    )
    .await;
    store
        .append_message(text(&c, Sender::Customer))
        .await
        .unwrap();
    c = store
        .append_message(text(&c, Sender::Agent(agent)))
        .await
        .unwrap()
        .conversation;
    let (read, _) = store
        .set_read_cursor(&ReadCursor {
            tenant_id: tenant,
            conversation_id: c.id,
            reader: Reader::Customer,
            seq: c.last_seq,
            updated_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    update(
        store,
        read,
        ConversationChange::Mode {
            from: Mode::Agent,
            to: Mode::Closed,
        },
        |c| {
            c.mode = Mode::Closed;
            c.closed_at = Some(OffsetDateTime::now_utc());
        },
    )
    .await;
}

/// `(conversation events, their rows' bytes)`.
async fn conversation_rows(db: &tokio_postgres::Client, schema: &str) -> (i64, i64) {
    let row = db
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sum(pg_column_size(e.*)), 0)::int8 FROM {schema}.events e \
                 WHERE e.data -> 'payload' ->> 'type' IN ('conversation_created', 'conversation_updated')"
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
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

/// `(events with indexes and TOAST, events' rows, messages with indexes and TOAST)` in
/// bytes, after `VACUUM FULL` of the events.
async fn sizes(db: &tokio_postgres::Client, schema: &str) -> (i64, i64, i64) {
    db.batch_execute(&format!("VACUUM FULL {schema}.events"))
        .await
        .unwrap();
    let row = db
        .query_one(
            &format!(
                "SELECT pg_total_relation_size('{schema}.events'), \
                        (SELECT sum(pg_column_size(e.*))::int8 FROM {schema}.events e), \
                        pg_total_relation_size('{schema}.messages')"
            ),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
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
    let desk = env_usize("BENCH_CONVERSATIONS", 2_000);
    let (db, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    let connection = tokio::spawn(connection);
    let schema = format!("chat_bench_{}", Uuid::new_v4().simple());
    db.batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::connect_with(&url, Options::default().schema(&schema).pool_size(posters))
            .await
            .unwrap(),
    );
    let tenant = Tenant {
        id: TenantId(Uuid::now_v7()),
        name: "Bench".into(),
        settings: TenantSettings::default(),
        settings_version: 0,
        created_at: OffsetDateTime::now_utc(),
    };
    store.insert_tenant(&tenant).await.unwrap();
    let mut conversations = Vec::new();
    for _ in 0..posters {
        conversations.push(conversation(store.as_ref(), tenant.id).await);
    }
    let each = messages / posters;
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
    let agent = AgentId(Uuid::now_v7());
    let workers: Vec<_> = (0..posters)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in (w..desk).step_by(posters) {
                    handled(store.as_ref(), tenant.id, agent).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let mut logged: Vec<Event> = Vec::new();
    loop {
        let after = logged.last().map_or(0, |e| e.seq);
        let page = store.events_since(tenant.id, after, 5_000).await.unwrap();
        if page.is_empty() {
            break;
        }
        logged.extend(page);
    }
    let slim = sizes(&db, &schema).await;
    let slim_conversations = conversation_rows(&db, &schema).await;
    let references: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM {schema}.events WHERE conversation_row"),
            &[],
        )
        .await
        .unwrap()
        .get(0);

    // Every event a full copy: what schema version 9 stored.
    let seqs: Vec<i64> = logged.iter().map(|e| e.seq as i64).collect();
    let data: Vec<Json<&Event>> = logged.iter().map(Json).collect();
    db.execute(
        &format!(
            "UPDATE {schema}.events e SET data = x.data, message_id = NULL, conversation_row = NULL \
             FROM unnest($2::int8[], $3::jsonb[]) AS x (seq, data) \
             WHERE e.tenant_id = $1 AND e.seq = x.seq"
        ),
        &[&tenant.id.0, &seqs, &data],
    )
    .await
    .unwrap();
    let full = sizes(&db, &schema).await;
    let full_conversations = conversation_rows(&db, &schema).await;
    // The copies must read back as the references did, or the comparison means nothing.
    let again = store
        .events_since(tenant.id, 0, logged.len())
        .await
        .unwrap();
    assert_eq!(again, logged, "the written-out log reads back the same");

    println!(
        "{} events ({} messages, {posters} posters, one tenant; {desk} conversations handled \
         by {posters} workers)",
        logged.len(),
        each * posters
    );
    println!(
        "{:<18} {:>16} {:>16} {:>18}",
        "events stored as", "events (bytes)", "rows (bytes)", "messages (bytes)"
    );
    println!(
        "{:<18} {:>16} {:>16} {:>18}",
        "full copies", full.0, full.1, full.2
    );
    println!(
        "{:<18} {:>16} {:>16} {:>18}",
        "references", slim.0, slim.1, slim.2
    );
    println!(
        "events table: {:.1}x smaller; per event {} -> {} bytes of row",
        full.0 as f64 / slim.0 as f64,
        full.1 / logged.len() as i64,
        slim.1 / logged.len() as i64
    );
    println!(
        "conversation events: {} rows ({} references); per row {} -> {} bytes ({:.1}x); \
         all of them {} -> {} bytes",
        slim_conversations.0,
        references,
        full_conversations.1 / full_conversations.0.max(1),
        slim_conversations.1 / slim_conversations.0.max(1),
        full_conversations.1 as f64 / slim_conversations.1.max(1) as f64,
        full_conversations.1,
        slim_conversations.1
    );
    drop(store);
    db.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(db);
    let _ = connection.await;
}
