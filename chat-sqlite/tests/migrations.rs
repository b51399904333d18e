//! Schema migrations: an old database opens and upgrades; a newer one is refused.

mod common;

use chat_core::store::{ConversationQuery, MessageQuery, Scope};
use chat_core::{Error, Sender, Store};
use chat_sqlite::{SCHEMA_VERSION, SqliteStore};
use common::*;
use rusqlite::{Connection, params};

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_schema_one_opens_and_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let t = tenant(1);
    let k = contact(t.id, 2, "Ann", Some("ann@example.com"));
    let c = conversation(t.id, 3, k.id, 0);
    let mut stored = c.clone();
    {
        // What version 1 of chat-sqlite left on disk: its schema and a conversation with
        // one message, written with that schema's columns.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_init.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let json = |v: &dyn erased::Json| v.json();
        conn.execute(
            "INSERT INTO tenants (id, data) VALUES (?1, ?2)",
            params![t.id.0, json(&t)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO contacts (id, tenant_id, name, email_lc, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![k.id.0, t.id.0, k.name, k.email, json(&k)],
        )
        .unwrap();
        let m = text(
            &c,
            10,
            Sender::Customer,
            "My invoice shows the wrong amount",
            5,
        )
        .into_message(1);
        stored.record_message(&m);
        conn.execute(
            "INSERT INTO conversations (id, tenant_id, contact_id, channel, mode, priority, department, \
             assigned_agent_id, pinned, title, updated_at, queued_at, last_seq, version, data) \
             VALUES (?1, ?2, ?3, 'web', 'bot', 1, NULL, NULL, 0, NULL, ?4, NULL, 1, ?5, ?6)",
            params![c.id.0, t.id.0, k.id.0, stored.updated_at.unix_timestamp_nanos() as i64, stored.version as i64, json(&stored)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, created_at) \
             VALUES (?1, ?2, ?3, 1, 'customer', 'text', ?4, ?5)",
            params![m.id.0, t.id.0, c.id.0, m.body, m.created_at.unix_timestamp_nanos() as i64],
        )
        .unwrap();
    }
    assert_eq!(user_version(&path), 1);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    // Version 2 put an FTS table and its triggers in the file; version 5 took them out
    // (the index lives in the search file now) and named the database.
    let main = Connection::open(&path).unwrap();
    let leftovers: i64 = main
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'message_search%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leftovers, 0);
    let store_id: String = main
        .query_row(
            "SELECT value FROM store_meta WHERE key = 'store_id'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(store_id.len(), 32);
    // Version 4 moved the counters a message changes into columns, filled from the JSON:
    // the conversation reads back as it was written, preview and times included.
    assert_eq!(stored.message_count, 1);
    assert!(stored.last_message.is_some());
    assert_eq!(
        store.conversation(t.id, c.id).await.unwrap(),
        Some(stored.clone())
    );
    assert_eq!(
        store
            .contact_by_email(t.id, "ANN@example.com")
            .await
            .unwrap(),
        Some(k.clone())
    );
    // The message is found at once (by reading bodies while the search file is being
    // built) and through the index once it is: the rebuild copies the messages already
    // there, which have no events.
    let q = ConversationQuery {
        text: Some(" wrong amount".into()),
        ..ConversationQuery::new(t.id, Scope::Tenant)
    };
    assert_eq!(store.list_conversations(&q).await.unwrap().items.len(), 1);
    store.wait_for_search_index().await.unwrap();
    assert_eq!(store.list_conversations(&q).await.unwrap().items.len(), 1);
    let indexed: i64 = Connection::open(store.search_path())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM message_search WHERE message_search MATCH 'wrong'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 1);
    // And the conversation goes on where it was.
    let next = store
        .append_message(text(&c, 11, Sender::Bot, "Let me look", 6))
        .await
        .unwrap();
    assert_eq!(next.message.seq, 2);
    let mut expected = stored.clone();
    expected.record_message(&next.message);
    assert_eq!(next.conversation, expected);
    assert_eq!(
        store.conversation(t.id, c.id).await.unwrap(),
        Some(expected)
    );
    let all = store
        .messages(&MessageQuery::latest(t.id, c.id, 10))
        .await
        .unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match SqliteStore::open(&path) {
        Err(Error::Storage(message)) => {
            assert!(
                message.contains("newer") && message.contains("99"),
                "{message}"
            );
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    assert_eq!(
        user_version(&path),
        99,
        "the refused file is left untouched"
    );
}

#[test]
fn reopening_a_current_database_runs_no_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).unwrap());
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
}

/// `serde_json::to_string` behind a trait object, so the fixture rows above read as one call.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap()
        }
    }
}
