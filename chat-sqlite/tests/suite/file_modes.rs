//! The files that hold a desk's data are readable by their owner only: the database (with
//! password hashes and messages), its log and shared-memory files, and the search index.
#![cfg(unix)]

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use chat_sqlite::SqliteStore;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_its_log_and_its_search_index_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).unwrap();
    common::one_conversation(&store).await;
    for suffix in ["", "-wal", "-shm"] {
        let file = with_suffix(&path, suffix);
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // The index is made in the background: wait for it (bounded), then check it.
    let search = with_suffix(&path, "-search");
    let mut waited = 0;
    while !search.exists() {
        assert!(waited < 12_000, "the search index was never made");
        waited += 1;
        tokio::task::yield_now().await;
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(mode(&search), 0o600, "{}", search.display());
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_left_readable_by_others_is_narrowed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    common::one_conversation(&store).await;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&with_suffix(&path, "-wal")), 0o600);
}
