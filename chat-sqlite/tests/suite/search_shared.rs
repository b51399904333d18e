//! Two stores on one database file, each with its own writer and indexer on the same search
//! file: in one process, in two processes (the child is this test binary again, running
//! `child_churns_beside_the_parent` with `SEARCH_SHARED_DB` set; without it that test does
//! nothing), and a store opening while another is making the search file. Searches through
//! each store match a scan of the message bodies, and once the indexers have caught up the
//! search file holds exactly the live messages at the newest event: no event applied
//! twice or skipped, no file replaced by the other store.

use crate::common;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_core::{ContactId, Store, TenantId};
use chat_sqlite::SqliteStore;
use common::child::Child;
use common::scan::*;
use common::*;
use rusqlite::Connection;

const CHILD_ENV: &str = "SEARCH_SHARED_DB";
const OPS: usize = 300;

/// The warnings chat-sqlite has logged in this process. Sharing a file is not a failure:
/// an indexer that found the other one's commit in its way used to log "search indexing
/// failed" (and pause a second), which the tests here check does not happen.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CollectWarnings;

impl tracing::Subscriber for CollectWarnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN && metadata.target().starts_with("chat_sqlite")
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        WARNINGS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(fields.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Installs [`CollectWarnings`] for the whole process (the indexers log from their own
/// threads); once, whichever test comes first.
fn collect_warnings() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| tracing::subscriber::set_global_default(CollectWarnings).unwrap());
}

/// The warnings about files in `dir` (the tests of this file run at the same time).
fn warnings_about(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    WARNINGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .filter(|warning| warning.contains(&dir))
        .cloned()
        .collect()
}

fn assert_no_warnings(dir: &Path) {
    let warnings = warnings_about(dir);
    assert!(warnings.is_empty(), "chat-sqlite warned: {warnings:#?}");
}

/// The tenant and contact every store here writes for.
fn parties() -> (chat_core::Tenant, chat_core::Contact) {
    let t = tenant(1);
    let k = contact_of(t.id, 2);
    (t, k)
}

async fn seed(store: &SqliteStore) -> (TenantId, ContactId) {
    let (t, k) = parties();
    store.insert_tenant(&t).await.unwrap();
    store.insert_contact(&k).await.unwrap();
    (t.id, k.id)
}

fn search_of(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}-search", db.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_in_one_process_keep_one_search_file() {
    collect_warnings();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let search = search_of(&db);
    let a = Arc::new(SqliteStore::open(&db).unwrap());
    let (t, k) = seed(&a).await;
    let b = Arc::new(SqliteStore::open(&db).unwrap());
    let (file_id, _, _) = search_state(&search);

    let mut tasks = Vec::new();
    for (store, seed) in [(&a, 1), (&a, 2), (&b, 3), (&b, 4)] {
        tasks.push(tokio::spawn(churn(store.clone(), t, k, OPS, seed)));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let live = live_messages(&db);
    assert!(live.len() > 20, "{} live messages", live.len());
    // At once (the indexers may be behind), then once each store has waited.
    for store in [&a, &b] {
        assert_searches_match_bodies(store, t, &live).await;
    }
    a.wait_for_search_index().await.unwrap();
    b.wait_for_search_index().await.unwrap();
    assert_index_exact(&db, &search, &live);
    assert_eq!(
        search_state(&search).0,
        file_id,
        "the search file was replaced"
    );
    for store in [&a, &b] {
        assert_searches_match_bodies(store, t, &live).await;
    }

    // Writes through one store only: a wait through the other covers them too.
    churn(a.clone(), t, k, 60, 5).await;
    let live = live_messages(&db);
    b.wait_for_search_index().await.unwrap();
    assert_index_exact(&db, &search, &live);
    assert_searches_match_bodies(&b, t, &live).await;
    assert_no_warnings(dir.path());
}

/// The child: opens the store on the parent's file, says `ready`, churns, waits for the
/// index and says `done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_churns_beside_the_parent() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    println!("ready");
    let (t, k) = parties();
    let mut tasks = Vec::new();
    for seed in [101, 102] {
        tasks.push(tokio::spawn(churn(store.clone(), t.id, k.id, OPS, seed)));
    }
    for task in tasks {
        task.await.unwrap();
    }
    store.wait_for_search_index().await.unwrap();
    println!("done");
}

#[test]
fn a_store_in_another_process_shares_the_search_file() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    collect_warnings();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let search = search_of(&db);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (t, k) = runtime.block_on(async {
        let store = SqliteStore::open(&db).unwrap();
        seed(&store).await
    });
    // Both processes start without a search file, so both set out to make it.
    std::fs::remove_file(&search).unwrap();

    let mut child = Child::spawn(
        "search_shared::child_churns_beside_the_parent",
        CHILD_ENV,
        &db,
    );
    let deadline = Instant::now() + Duration::from_secs(120);

    runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(&db).unwrap());
        let mut tasks = Vec::new();
        for seed in [201, 202] {
            tasks.push(tokio::spawn(churn(store.clone(), t, k, OPS, seed)));
        }
        child.expect_line("ready", deadline);
        let (file_id, _, _) = search_state(&search);
        for task in tasks {
            task.await.unwrap();
        }
        child.expect_line("done", deadline);
        let status = child.wait();
        assert!(status.success(), "the child failed: {status}");

        let live = live_messages(&db);
        assert!(live.len() > 20, "{} live messages", live.len());
        assert_searches_match_bodies(&store, t, &live).await;
        store.wait_for_search_index().await.unwrap();
        assert_index_exact(&db, &search, &live);
        assert_eq!(
            search_state(&search).0,
            file_id,
            "the search file was replaced"
        );
        assert_searches_match_bodies(&store, t, &live).await;
    });
    assert_no_warnings(dir.path());
}

/// Two stores opening at once on a search file that has to be replaced (another layout):
/// one of them replaces it and the other takes the new file. Both replacing it would have
/// the second delete the first one's new file and its log from under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_opening_at_once_replace_a_foreign_search_file_once() {
    collect_warnings();
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chat.db");
        let search = search_of(&db);
        let (t, k) = seed(&SqliteStore::open(&db).unwrap()).await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", search.display()));
        }
        Connection::open(&search)
            .unwrap()
            .execute_batch(
                "CREATE TABLE search_state (id INTEGER PRIMARY KEY, watermark INTEGER); \
                 INSERT INTO search_state VALUES (1, 999999);",
            )
            .unwrap();

        let start = Arc::new(std::sync::Barrier::new(2));
        let opening: Vec<_> = (0..2)
            .map(|_| {
                let (db, start) = (db.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    SqliteStore::open(&db).unwrap()
                })
            })
            .collect();
        let stores: Vec<Arc<SqliteStore>> = opening
            .into_iter()
            .map(|thread| Arc::new(thread.join().unwrap()))
            .collect();
        let tasks: Vec<_> = stores
            .iter()
            .zip([1, 2])
            .map(|(store, seed)| tokio::spawn(churn(store.clone(), t, k, 60, seed)))
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let live = live_messages(&db);
        for store in &stores {
            assert_searches_match_bodies(store, t, &live).await;
            store.wait_for_search_index().await.unwrap();
        }
        assert_index_exact(&db, &search, &live);
        for store in &stores {
            assert_searches_match_bodies(store, t, &live).await;
        }
        let warnings = warnings_about(dir.path());
        assert!(
            warnings.len() == 1 && warnings[0].contains("rebuilding the search index"),
            "round {round}: expected one rebuild, got {warnings:#?}"
        );
    }
}

/// What a store making the search file commits, made by hand from a search file of the
/// same database (`donor`): the layout, and a state due for a rebuild. The transaction is
/// held open until `commit` says so, to stand for a store caught between switching the
/// new file to WAL and committing its schema.
struct Maker {
    conn: Connection,
}

impl Maker {
    fn start(search: &Path, donor: &Path) -> Self {
        let conn = Connection::open(search).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute("ATTACH DATABASE ?1 AS donor", [donor.to_str().unwrap()])
            .unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        Self { conn }
    }

    fn commit(self) {
        let pragma = |name: &str| -> i64 {
            self.conn
                .query_row(&format!("PRAGMA donor.{name}"), [], |r| r.get(0))
                .unwrap()
        };
        let (application_id, format) = (pragma("application_id"), pragma("user_version"));
        self.conn
            .execute_batch(&format!(
                "PRAGMA main.application_id = {application_id}; PRAGMA main.user_version = {format};"
            ))
            .unwrap();
        // The FTS table makes its own shadow tables.
        let schema: Vec<String> = self
            .conn
            .prepare(
                "SELECT sql FROM donor.sqlite_master WHERE sql IS NOT NULL \
                 AND name NOT LIKE 'message_search_%' ORDER BY rowid",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for sql in schema {
            self.conn.execute_batch(&sql).unwrap();
        }
        self.conn
            .execute_batch(
                "INSERT INTO main.search_state SELECT id, store_id, file_id, watermark, horizon, \
                 mark_tenant, mark_seq, 0 FROM donor.search_state; COMMIT;",
            )
            .unwrap();
    }
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_takes_the_search_file_another_store_is_making() {
    collect_warnings();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let search = search_of(&db);
    let donor = dir.path().join("donor");
    let t = {
        let store = Arc::new(SqliteStore::open(&db).unwrap());
        let (t, k) = seed(&store).await;
        churn(store.clone(), t, k, 100, 7).await;
        store.wait_for_search_index().await.unwrap();
        t
    };
    // A copy with whatever the log still holds; then no search file at all.
    Connection::open(&search)
        .unwrap()
        .execute("VACUUM INTO ?1", [donor.to_str().unwrap()])
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", search.display()));
    }
    let (donor_file_id, _, _) = search_state(&donor);

    // The file exists, in WAL mode, with no layout yet: what another store leaves between
    // its `journal_mode = WAL` and its commit. Before the fix a store opening now took it
    // for a foreign file and deleted it under its maker.
    let maker = Maker::start(&search, &donor);
    let made = inode(&search);
    let opening = std::thread::spawn({
        let db = db.clone();
        move || SqliteStore::open(&db).unwrap()
    });
    // Long enough for the opening store to find the file half made (it then waits for the
    // maker's lock, up to its busy timeout of 5 s).
    std::thread::sleep(Duration::from_millis(1000));
    maker.commit();
    let store = opening.join().unwrap();

    assert_eq!(
        inode(&search),
        made,
        "the store replaced the file being made"
    );
    store.wait_for_search_index().await.unwrap();
    let (file_id, _, rebuilt_to) = search_state(&search);
    assert_eq!(
        (file_id, rebuilt_to),
        (donor_file_id, None),
        "the store took the file it found and rebuilt it"
    );
    let live = live_messages(&db);
    assert_index_exact(&db, &search, &live);
    assert_searches_match_bodies(&store, t, &live).await;
    assert_no_warnings(dir.path());
}
