//! A burst of reads does not start a thread per read. (A file of its own: it counts the
//! threads of a runtime it builds, and keeps other tests' work off the machine meanwhile.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chat_core::Store;
use chat_core::store::MessageQuery;
use chat_sqlite::{Options, SqliteStore};
use common::*;

const RUNTIME: &str = "read-burst";

/// Threads of this process named `RUNTIME` (tokio names its workers and its blocking
/// threads alike).
fn runtime_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .filter(|name| name.trim() == RUNTIME)
                .count()
        })
        .unwrap_or(0)
}

/// 300 reads at once over 2 connections, all through the blocking pool: reads wait for a
/// connection as tasks, so the runtime holds its 2 workers and at most one blocking
/// thread per connection (before, each waiting read held a thread of its own: 213 of them
/// while 3,000 WebSockets connected).
#[test]
fn a_burst_of_reads_waits_as_tasks_not_as_threads() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc here");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(RUNTIME)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open_with(
            dir.path().join("chat.db"),
            Options::default().readers(2).reads_in_place(false),
        )
        .unwrap(),
    );
    let c = runtime.block_on(async {
        let c = one_conversation(&store).await;
        for i in 0..20 {
            store
                .append_message(text(&c, 100 + i, chat_core::Sender::Customer, "hi", 1))
                .await
                .unwrap();
        }
        c
    });

    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (most, done) = (most.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                most.fetch_max(runtime_threads(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    runtime.block_on(async {
        let reads: Vec<_> = (0..300)
            .map(|_| {
                let store = store.clone();
                let query = MessageQuery::latest(c.tenant_id, c.id, 50);
                tokio::spawn(async move { store.messages(&query).await.unwrap().len() })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap(), 20);
        }
    });
    done.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let most = most.load(Ordering::SeqCst);
    // 2 workers and 2 reading threads, plus the threads the pool starts when a read hands
    // its slot on before its thread is back among the idle ones (7 to 10 here; 115
    // when every waiting read held a thread).
    assert!(
        most <= 16,
        "{most} runtime threads during the burst: reads wait on threads"
    );
}
