//! Concurrent writers through the group-committing writer: sequences stay gap-free,
//! idempotency and compare-and-swap hold, and a failing operation in a group leaves no trace.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chat_core::store::{ConversationUpdate, MessageQuery};
use chat_core::{ConversationChange, Error, Mode, Sender, Store};
use common::*;

async fn seeded() -> (
    Arc<chat_sqlite::SqliteStore>,
    tempfile::TempDir,
    chat_core::Conversation,
) {
    let (store, dir) = store();
    let c = one_conversation(&store).await;
    (store, dir, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_appends_get_sequences_one_to_fifty() {
    let (store, _dir, c) = seeded().await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, m) = (
                store.clone(),
                text(
                    &c,
                    100 + i,
                    Sender::Customer,
                    &format!("message {i}"),
                    i as i64 + 1,
                ),
            );
            tokio::spawn(async move { store.append_message(m).await.unwrap().message.seq })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    let stored = store
        .messages(&MessageQuery::latest(c.tenant_id, c.id, 100))
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<u64>>()
    );
    let now = store
        .conversation(c.tenant_id, c.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            now.last_seq,
            now.message_count,
            now.unread_for_agent,
            now.version
        ),
        (50, 50, 50, 50)
    );
    let events = store.events_since(c.tenant_id, 0, 1000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=51).collect::<Vec<u64>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_client_message_id_sent_concurrently_stores_one_message() {
    let (store, _dir, c) = seeded().await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let mut m = text(&c, 100 + i, Sender::Customer, "hello", 1);
            m.client_message_id = Some("retry-me".into());
            let store = store.clone();
            tokio::spawn(async move { store.append_message(m).await.unwrap() })
        })
        .collect();
    let mut created = 0;
    let mut ids = BTreeSet::new();
    for t in tasks {
        let appended = t.await.unwrap();
        created += usize::from(appended.created);
        assert_eq!(appended.event.is_some(), appended.created);
        ids.insert(appended.message.id);
    }
    assert_eq!((created, ids.len()), (1, 1));
    let stored = store
        .messages(&MessageQuery::latest(c.tenant_id, c.id, 100))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_updates_from_the_same_version_one_wins_one_conflicts() {
    let (store, _dir, c) = seeded().await;
    let update = |mode| {
        let mut next = c.clone();
        next.mode = mode;
        ConversationUpdate {
            conversation: next,
            change: ConversationChange::Mode {
                from: Mode::Bot,
                to: mode,
            },
            message: None,
        }
    };
    let (a, b) = tokio::join!(
        store.update_conversation(update(Mode::Queued)),
        store.update_conversation(update(Mode::Agent))
    );
    let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{a:?} / {b:?}");
    let loser = a.err().or(b.err()).expect("one update lost");
    assert!(matches!(loser, Error::Conflict(_)), "{loser:?}");
    let now = store
        .conversation(c.tenant_id, c.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.version, c.version + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_operations_in_a_group_leave_no_gap_in_sequences() {
    let (store, _dir, c) = seeded().await;
    let stale = ConversationUpdate {
        conversation: c.clone(),
        change: ConversationChange::Details,
        message: None,
    };
    // Win the first update so every later one is stale and fails inside the writer's group.
    let mut first = stale.clone();
    first.conversation.title = Some("first".into());
    store.update_conversation(first).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let store = store.clone();
        let c = c.clone();
        let stale = stale.clone();
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                0 => store.update_conversation(stale).await.map(|_| false),
                1 => {
                    let mut lost = text(&c, 10_000 + i, Sender::Customer, "to nowhere", 1);
                    lost.conversation_id = chat_core::ConversationId(id(777));
                    store.append_message(lost).await.map(|_| false)
                }
                _ => store
                    .append_message(text(&c, 10_000 + i, Sender::Customer, "kept", 1))
                    .await
                    .map(|a| a.created),
            }
        }));
    }
    let mut kept = 0;
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => kept += 1,
            Ok(false) => unreachable!("stale updates and lost messages must fail"),
            Err(Error::Conflict(_) | Error::NotFound(_)) => failed += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((kept, failed), (100, 100));
    let stored = store
        .messages(&MessageQuery::latest(c.tenant_id, c.id, 1000))
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<u64>>()
    );
    let events = store.events_since(c.tenant_id, 0, 1000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=102).collect::<Vec<u64>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_failing_after_they_wrote_are_undone_alone_in_their_group() {
    // The writer runs a group without savepoints and falls back to them only when an
    // operation fails after writing: each of these updates writes its conversation and
    // event, then fails on a system message whose id is taken.
    let (store, _dir, c) = seeded().await;
    let taken = store
        .append_message(text(&c, 9_000, Sender::Customer, "first", 1))
        .await
        .unwrap();
    let mut others = Vec::new();
    for n in 0..50u64 {
        let other = conversation(c.tenant_id, 5_000 + n, c.contact_id, 0);
        others.push(
            store
                .create_conversation(&other, vec![])
                .await
                .unwrap()
                .conversation,
        );
    }
    let events_before = store
        .events_since(c.tenant_id, 0, 1000)
        .await
        .unwrap()
        .len();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let store = store.clone();
        let c = c.clone();
        let other = others[(i / 4) as usize % others.len()].clone();
        let taken_id = taken.message.id;
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                let mut changed = other.clone();
                changed.title = Some("never stored".into());
                let mut notice = text(&other, 20_000 + i, Sender::System, "renamed", 2);
                notice.id = taken_id;
                store
                    .update_conversation(ConversationUpdate {
                        conversation: changed,
                        change: ConversationChange::Details,
                        message: Some(notice),
                    })
                    .await
                    .map(|_| false)
            } else {
                store
                    .append_message(text(&c, 10_000 + i, Sender::Customer, "kept", 1))
                    .await
                    .map(|a| a.created)
            }
        }));
    }
    let (mut kept, mut failed) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => kept += 1,
            Ok(false) => unreachable!("updates with a taken message id must fail"),
            Err(Error::Conflict(_)) => failed += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((kept, failed), (150, 50));
    let stored = store
        .messages(&MessageQuery::latest(c.tenant_id, c.id, 1000))
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=151).collect::<Vec<u64>>()
    );
    let events = store.events_since(c.tenant_id, 0, 1000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=(events_before as u64 + 150)).collect::<Vec<u64>>()
    );
    for other in &others {
        assert_eq!(
            store.conversation(other.tenant_id, other.id).await.unwrap(),
            Some(other.clone()),
            "a failed update leaves its conversation as it was"
        );
    }
}

/// Many more concurrent reads than pooled connections on a multi-threaded runtime: those
/// that find a free connection run in place, the others wait on the blocking pool; with
/// `reads_in_place(false)` all of them go there. Every read sees the same messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_agree_in_place_or_on_the_blocking_pool() {
    for in_place in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            chat_sqlite::SqliteStore::open_with(
                dir.path().join("chat.db"),
                chat_sqlite::Options::default()
                    .readers(2)
                    .reads_in_place(in_place),
            )
            .unwrap(),
        );
        let c = one_conversation(&store).await;
        for i in 0..60 {
            let m = text(
                &c,
                100 + i,
                Sender::Customer,
                &format!("m{i}"),
                i as i64 + 1,
            );
            store.append_message(m).await.unwrap();
        }
        let reads: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                let q = MessageQuery::latest(c.tenant_id, c.id, 50);
                tokio::spawn(async move {
                    let got = store.messages(&q).await.unwrap();
                    got.iter().map(|m| m.seq).collect::<Vec<_>>()
                })
            })
            .collect();
        for r in reads {
            assert_eq!(
                r.await.unwrap(),
                (11..=60).collect::<Vec<u64>>(),
                "in place: {in_place}"
            );
        }
    }
}
