//! `wait_for_search_index` when the indexer cannot make progress: with a directory where
//! the search file should be (from the start, or put there while the store runs) the wait
//! fails with an `Error::Storage` naming the file and the cause instead of hanging, and
//! succeeds once the obstacle is gone; a search file deleted while the store runs is made
//! again; a wait while the indexer is only held up by another connection's lock keeps
//! waiting. Searches stay exact throughout (they read the bodies the index has not
//! applied), which each test checks against a scan of the message bodies.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chat_core::{Error, Store, TenantId};
use chat_sqlite::{Options, SqliteStore};
use common::scan::*;
use common::*;
use rusqlite::Connection;

/// Far longer than a wait should take here (the indexer retries every second): a wait that
/// hangs fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

/// A tenant and a contact; returns the tenant and the contact's id.
async fn seed(store: &SqliteStore) -> (TenantId, chat_core::ContactId) {
    let t = tenant(1);
    store.insert_tenant(&t).await.unwrap();
    let k = contact_of(t.id, 2);
    store.insert_contact(&k).await.unwrap();
    (t.id, k.id)
}

/// A directory in the search file's place, with a file in it so that nothing that
/// removes empty directories can clear it by accident.
fn block_with_directory(search: &Path) {
    std::fs::create_dir(search).unwrap();
    std::fs::write(search.join("keep"), b"not a search file").unwrap();
}

/// The wait ends with an `Error::Storage` that names the search file and says a
/// directory is in its place.
async fn assert_wait_fails_on_directory(store: &SqliteStore, search: &Path) {
    let outcome = tokio::time::timeout(PATIENCE, store.wait_for_search_index())
        .await
        .expect("wait_for_search_index hung although the index cannot be made");
    let Err(Error::Storage(failure)) = outcome else {
        panic!("expected Error::Storage, got {outcome:?}");
    };
    assert_eq!(failure.kind(), chat_core::StorageKind::Unavailable);
    let message = failure.message();
    assert!(
        message.contains(&search.display().to_string()),
        "the error does not name the search file: {message}"
    );
    assert!(
        message.contains("directory"),
        "the error does not give the cause: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_in_place_of_the_search_file_fails_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let search = dir.path().join("chat.db-search");
    block_with_directory(&search);

    // The search file is a cache: the store opens and works without it.
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    assert_eq!(store.search_path(), search);
    let (t, k) = seed(&store).await;
    churn(store.clone(), t, k, 200, 11).await;
    let live = live_messages(&db);
    assert!(live.len() > 10, "{} live messages", live.len());
    assert_searches_match_bodies(&store, t, &live).await;

    assert_wait_fails_on_directory(&store, &search).await;
    // Still failing, not a one-off; and writes and searches go on.
    churn(store.clone(), t, k, 50, 12).await;
    let live = live_messages(&db);
    assert_wait_fails_on_directory(&store, &search).await;
    assert_searches_match_bodies(&store, t, &live).await;

    clears_and_catches_up(&store, &db, &search, t, &live).await;
}

/// Removes the directory in the search file's place: the indexer, which kept trying,
/// makes the file and catches up, and the index and searches are exact.
async fn clears_and_catches_up(
    store: &SqliteStore,
    db: &Path,
    search: &Path,
    tenant: TenantId,
    live: &Live,
) {
    std::fs::remove_dir_all(search).unwrap();
    tokio::time::timeout(PATIENCE, store.wait_for_search_index())
        .await
        .expect("the wait hung after the obstacle was removed")
        .unwrap();
    assert_index_exact(db, search, live);
    assert_searches_match_bodies(store, tenant, live).await;
}

/// Deletes the search file and its log under a running store.
fn delete_search_file(search: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", search.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_put_in_place_of_the_search_file_while_the_store_runs_fails_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let search = dir.path().join("chat.db-search");
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let (t, k) = seed(&store).await;
    churn(store.clone(), t, k, 100, 21).await;
    store.wait_for_search_index().await.unwrap();

    // The indexer and the readers still hold the deleted file open; the indexer must notice
    // that it is no longer the one at the path rather than report progress on it.
    delete_search_file(&search);
    block_with_directory(&search);
    churn(store.clone(), t, k, 100, 22).await;
    let live = live_messages(&db);
    assert_searches_match_bodies(&store, t, &live).await;
    assert_wait_fails_on_directory(&store, &search).await;
    assert_searches_match_bodies(&store, t, &live).await;

    clears_and_catches_up(&store, &db, &search, t, &live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_file_deleted_while_the_store_runs_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let search = dir.path().join("chat.db-search");
    let store = Arc::new(SqliteStore::open(&db).unwrap());
    let (t, k) = seed(&store).await;
    churn(store.clone(), t, k, 100, 31).await;
    store.wait_for_search_index().await.unwrap();
    let (file_id, _, _) = search_state(&search);

    delete_search_file(&search);
    churn(store.clone(), t, k, 100, 32).await;
    let live = live_messages(&db);
    assert_searches_match_bodies(&store, t, &live).await;
    tokio::time::timeout(PATIENCE, store.wait_for_search_index())
        .await
        .expect("the wait hung")
        .unwrap();
    // Without noticing, the indexer would have kept writing to the deleted file and the
    // wait would have reported that.
    assert_ne!(search_state(&search).0, file_id, "a new search file");
    assert_index_exact(&db, &search, &live);
    assert_searches_match_bodies(&store, t, &live).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_while_another_connection_holds_the_search_file_keeps_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let search = dir.path().join("chat.db-search");
    // Short, so that the indexer's attempts fail with SQLITE_BUSY many times during the
    // wait below: being held up is not being stuck.
    let options = Options::default().busy_timeout(Duration::from_millis(20));
    let store = Arc::new(SqliteStore::open_with(&db, options).unwrap());
    let (t, k) = seed(&store).await;
    churn(store.clone(), t, k, 100, 41).await;
    store.wait_for_search_index().await.unwrap();

    let holder = Connection::open(&search).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    churn(store.clone(), t, k, 100, 42).await;
    let live = live_messages(&db);
    let early =
        tokio::time::timeout(Duration::from_millis(3500), store.wait_for_search_index()).await;
    assert!(
        early.is_err(),
        "the wait returned {early:?} while the indexer was only held up by a lock"
    );
    assert_searches_match_bodies(&store, t, &live).await;

    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    tokio::time::timeout(PATIENCE, store.wait_for_search_index())
        .await
        .expect("the wait hung after the lock was released")
        .unwrap();
    assert_index_exact(&db, &search, &live);
    assert_searches_match_bodies(&store, t, &live).await;
}
