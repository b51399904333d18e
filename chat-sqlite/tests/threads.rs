//! Dropping a store stops and joins its threads: the writer, the search indexer and the
//! checkpoint thread. (A file of its own: other tests' stores would be counted.)

mod common;

use chat_core::{Sender, Store};
use chat_sqlite::SqliteStore;
use common::*;

/// Threads of this process whose name starts with `chat-sqlite-`.
fn store_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with("chat-sqlite-"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_joins_its_threads() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc here");
        return;
    }
    assert_eq!(store_threads(), 0);
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let store = SqliteStore::open(dir.path().join("chat.db")).unwrap();
        // A new thread names itself once it runs: give them a moment.
        let named = std::time::Instant::now();
        while store_threads() < 3 && named.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(store_threads(), 3, "writer, indexer, checkpoints");
        let t = tenant(1);
        let _ = store.insert_tenant(&t).await;
        let k = contact(t.id, 2, "Ann", None);
        let _ = store.insert_contact(&k).await;
        let c = conversation(t.id, 3, k.id, 0);
        let _ = store.create_conversation(&c, vec![]).await;
        let n = store
            .messages(&chat_core::store::MessageQuery::latest(t.id, c.id, 1000))
            .await
            .unwrap()
            .len() as u64;
        store
            .append_message(text(&c, 100 + n, Sender::Customer, "hello there", 1))
            .await
            .unwrap();
        store.wait_for_search_index().await.unwrap();
        drop(store);
        assert_eq!(store_threads(), 0, "the threads are joined by the drop");
    }
}
