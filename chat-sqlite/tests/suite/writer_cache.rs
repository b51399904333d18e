//! The writer thread's cache of conversations and event sequences never shows anything
//! but the committed database: not the writes of an operation that was rolled back, and
//! not a stale row after another connection changed the file.

use crate::common;

use chat_core::store::{ConversationUpdate, MessageQuery};
use chat_core::{ConversationChange, Error, Mode, Sender, Store};
use common::*;
use rusqlite::{Connection, params};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_rolled_back_after_writing_leaves_nothing_behind() {
    let (store, _dir) = store();
    let t = tenant(1);
    store.insert_tenant(&t).await.unwrap();
    let k = contact(t.id, 2, "Ann", None);
    store.insert_contact(&k).await.unwrap();
    let c = store
        .create_conversation(&conversation(t.id, 3, k.id, 0), vec![])
        .await
        .unwrap()
        .conversation;
    let first = store
        .append_message(text(&c, 10, Sender::Customer, "hello", 1))
        .await
        .unwrap();

    // This update writes the conversation and its event, then fails on the system
    // message, whose id is taken: its savepoint is rolled back.
    let mut changed = first.conversation.clone();
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

    // The next write starts from the committed state: same version, next sequences.
    let next = store
        .append_message(text(&c, 11, Sender::Customer, "still there?", 3))
        .await
        .unwrap();
    assert_eq!(next.message.seq, 2);
    assert_eq!(next.conversation.mode, Mode::Bot);
    assert_eq!(next.conversation.version, first.conversation.version + 1);
    let event = next.event.unwrap();
    assert_eq!(event.seq, first.event.unwrap().seq + 1, "no gap in the log");
    assert_eq!(
        store.conversation(t.id, c.id).await.unwrap(),
        Some(next.conversation)
    );
    let events = store.events_since(t.id, 0, 100).await.unwrap();
    assert_eq!(events.last().map(|e| e.seq), Some(event.seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_by_another_connection_is_seen_by_the_next_write() {
    let (store, dir) = store();
    let t = tenant(1);
    store.insert_tenant(&t).await.unwrap();
    let k = contact(t.id, 2, "Ann", None);
    store.insert_contact(&k).await.unwrap();
    let c = store
        .create_conversation(&conversation(t.id, 3, k.id, 0), vec![])
        .await
        .unwrap()
        .conversation;
    let first = store
        .append_message(text(&c, 10, Sender::Customer, "hello", 1))
        .await
        .unwrap();

    // Another process posts a message and retitles the conversation behind the store's
    // back, as a second `SqliteStore` on the same file would.
    let mut elsewhere = first.conversation.clone();
    elsewhere.title = Some("Changed elsewhere".into());
    let second = text(&c, 11, Sender::Customer, "from elsewhere", 2).into_message(2);
    elsewhere.record_message(&second);
    {
        let conn = Connection::open(dir.path().join("chat.db")).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn.execute(
            "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, created_at) \
             VALUES (?1, ?2, ?3, 2, 'customer', 'text', ?4, ?5)",
            params![
                second.id.0,
                t.id.0,
                c.id.0,
                second.body,
                second.created_at.unix_timestamp_nanos() as i64
            ],
        )
        .unwrap();
        conn.execute(
            "UPDATE conversations SET title = ?2, last_seq = 2, version = ?3, message_count = 2, \
             unread_for_agent = 2, data = ?4 WHERE id = ?1",
            params![
                c.id.0,
                "Changed elsewhere",
                elsewhere.version as i64,
                serde_json::to_string(&elsewhere).unwrap()
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO events (tenant_id, seq, conversation_id, data) \
             SELECT tenant_id, seq + 1, conversation_id, data FROM events WHERE tenant_id = ?1 \
             ORDER BY seq DESC LIMIT 1",
            [t.id.0],
        )
        .unwrap();
    }

    let next = store
        .append_message(text(&c, 12, Sender::Customer, "and here", 3))
        .await
        .unwrap();
    assert_eq!(
        next.message.seq, 3,
        "the sequence follows the other writer's"
    );
    assert_eq!(
        next.conversation.title.as_deref(),
        Some("Changed elsewhere")
    );
    assert_eq!(next.conversation.version, elsewhere.version + 1);
    assert_eq!(next.conversation.message_count, 3);
    assert_eq!(
        next.event.unwrap().seq,
        first.event.unwrap().seq + 2,
        "the event follows the other writer's"
    );
    let all = store
        .messages(&MessageQuery::latest(t.id, c.id, 10))
        .await
        .unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
}

/// A post writes `first_response_at` (the reports' indexed column) only when it moves it:
/// the first agent reply sets it, and the messages before and after leave it as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_response_column_is_written_by_the_first_reply_only() {
    let (store, dir) = store();
    let t = tenant(1);
    store.insert_tenant(&t).await.unwrap();
    let k = contact(t.id, 2, "Ann", None);
    store.insert_contact(&k).await.unwrap();
    let c = store
        .create_conversation(&conversation(t.id, 3, k.id, 0), vec![])
        .await
        .unwrap()
        .conversation;
    let bo = agent(t.id, 4, "Bo", "bo@x.example", &[]);
    store.insert_agent(&bo).await.unwrap();
    let agent = bo.id;
    let column = || -> Option<i64> {
        let conn = Connection::open(dir.path().join("chat.db")).unwrap();
        conn.query_row(
            "SELECT first_response_at FROM conversations WHERE id = ?1",
            [c.id.0],
            |row| row.get(0),
        )
        .unwrap()
    };
    store
        .append_message(text(&c, 10, Sender::Customer, "hello", 1))
        .await
        .unwrap();
    assert_eq!(column(), None, "no reply yet");
    let reply = store
        .append_message(text(&c, 11, Sender::Agent(agent), "hi!", 2))
        .await
        .unwrap();
    let first = reply
        .conversation
        .first_response_at
        .expect("the first reply");
    assert_eq!(column(), Some(first.unix_timestamp_nanos() as i64));
    for (n, sender, secs) in [(12, Sender::Customer, 3), (13, Sender::Agent(agent), 4)] {
        let later = store
            .append_message(text(&c, n, sender, "and then", secs))
            .await
            .unwrap();
        assert_eq!(later.conversation.first_response_at, Some(first));
        assert_eq!(column(), Some(first.unix_timestamp_nanos() as i64));
    }
}
