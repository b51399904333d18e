//! Files the store cannot use give the caller a clear `Error::Storage`, never a panic, and
//! a failed write leaves nothing half-written.

use crate::common;

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chat_core::store::MessageQuery;
use chat_core::{Error, Sender, Store};
use chat_sqlite::{Options, SqliteStore};
use common::*;

fn storage_error(result: chat_core::Result<SqliteStore>) -> String {
    match result {
        Err(Error::Storage(failure)) => failure.message().to_owned(),
        Err(other) => panic!("expected a storage error, got {other:?}"),
        Ok(_) => panic!("expected a storage error, the store opened"),
    }
}

#[test]
fn a_file_that_is_not_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    fs::write(&path, "Dear diary, this is not a database.\n".repeat(200)).unwrap();
    let opened = SqliteStore::open(&path);
    assert_eq!(
        opened.as_ref().err().and_then(Error::storage_kind_of),
        Some(chat_core::StorageKind::Corrupt),
        "{:?}",
        opened.as_ref().err()
    );
    let message = storage_error(opened);
    assert!(message.contains("not a SQLite database"), "{message}");
    assert!(
        message.contains("notes.txt"),
        "the error names the file: {message}"
    );
}

async fn filled(path: &Path) {
    let store = SqliteStore::open(path).unwrap();
    let c = one_conversation(&store).await;
    for i in 0..200 {
        store
            .append_message(text(&c, 100 + i, Sender::Customer, &"x".repeat(500), 1))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_corrupt_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    filled(&path).await;
    let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all(b"garbage garbage!").unwrap();
    drop(file);
    let message = storage_error(SqliteStore::open(&path));
    assert!(message.contains("chat.db"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_pages_give_storage_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    filled(&path).await;
    // Keep the header and the schema page, scribble over everything after them.
    let len = fs::metadata(&path).unwrap().len();
    let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(4096)).unwrap();
    let noise: Vec<u8> = (0..len - 4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    file.write_all(&noise).unwrap();
    drop(file);
    match SqliteStore::open(&path) {
        Err(Error::Storage(_)) => {}
        Err(other) => panic!("expected a storage error, got {other:?}"),
        Ok(store) => {
            let t = tenant(1).id;
            let c = chat_core::ConversationId(id(3));
            let read = store.messages(&MessageQuery::latest(t, c, 50)).await;
            assert!(matches!(read, Err(Error::Storage(_))), "{read:?}");
            let write = store
                .append_message(text(
                    &conversation(t, 3, chat_core::ContactId(id(2)), 0),
                    9,
                    Sender::Bot,
                    "hi",
                    2,
                ))
                .await;
            assert!(matches!(write, Err(Error::Storage(_))), "{write:?}");
        }
    }
}

/// A directory nobody may create files in: a `0555` temp dir, or `/sys` when running as
/// root (which ignores permission bits).
fn read_only_dir() -> Option<(PathBuf, Option<tempfile::TempDir>)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
    if fs::File::create(dir.path().join("probe")).is_err() {
        return Some((dir.path().to_path_buf(), Some(dir)));
    }
    fs::remove_file(dir.path().join("probe")).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let sys = Path::new("/sys");
    (sys.is_dir() && fs::File::create(sys.join("chat-sqlite-probe")).is_err())
        .then(|| (sys.to_path_buf(), None))
}

#[test]
fn a_read_only_directory_is_refused() {
    let Some((dir, guard)) = read_only_dir() else {
        eprintln!("skipped: no directory here refuses new files");
        return;
    };
    let message = storage_error(SqliteStore::open(dir.join("chat.db")));
    assert!(message.contains("cannot open"), "{message}");
    if let Some(guard) = guard {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(guard.path(), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_write_and_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let (t, c) = {
        let store = SqliteStore::open(&path).unwrap();
        let t = tenant(1);
        store.insert_tenant(&t).await.unwrap();
        let k = contact(t.id, 2, "Ann", None);
        store.insert_contact(&k).await.unwrap();
        let c = store
            .create_conversation(&conversation(t.id, 3, k.id, 0), vec![])
            .await
            .unwrap()
            .conversation;
        (t, c)
    };
    let pages: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let pages = pages as u64;
    let store =
        SqliteStore::open_with(&path, Options::default().max_pages(Some(pages + 20))).unwrap();
    let mut acknowledged = Vec::new();
    let failure = loop {
        let n = acknowledged.len() as u64;
        assert!(n < 10_000, "the page limit never hit");
        match store
            .append_message(text(&c, 100 + n, Sender::Customer, &"full ".repeat(300), 1))
            .await
        {
            Ok(appended) => acknowledged.push(appended.message),
            Err(e) => break e,
        }
    };
    let Error::Storage(failure) = &failure else {
        panic!("expected a storage error, got {failure:?}")
    };
    // The kind says what happened without parsing the message; the source is SQLite's.
    assert_eq!(failure.kind(), chat_core::StorageKind::Full, "{failure}");
    assert!(std::error::Error::source(failure).is_some());
    let message = failure.message();
    assert!(message.contains("full"), "{message}");
    assert!(!acknowledged.is_empty());
    // Reads still work, and the failed message left no trace.
    let stored = store
        .messages(&MessageQuery::latest(t.id, c.id, 100_000))
        .await
        .unwrap();
    assert_eq!(stored, acknowledged);
    let now = store.conversation(t.id, c.id).await.unwrap().unwrap();
    assert_eq!(now.last_seq, acknowledged.len() as u64);
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(
        reopened
            .messages(&MessageQuery::latest(t.id, c.id, 100_000))
            .await
            .unwrap(),
        acknowledged
    );
    assert_eq!(reopened.integrity_check().await.unwrap(), ["ok"]);
}

/// Once a dropped store's drop has returned, every connection it had is closed: the log is
/// folded back into the file and deleted, so the file alone is the whole database (a copy
/// of it, as one backs up a stopped server, has every acknowledged message). r2d2 opens
/// read connections on a thread of its own when a read finds none idle; one still opening
/// as the store was dropped used to close there later, keeping the log until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_store_has_closed_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let path = dir.path().join(format!("chat-{round}.db"));
        let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
        let c = one_conversation(&store).await;
        for i in 0..5 {
            store
                .append_message(text(&c, 100 + i, Sender::Customer, "kept", 1))
                .await
                .unwrap();
        }
        // More reads at once than idle connections: the pool opens more on its thread.
        let reads: Vec<_> = (0..16)
            .map(|_| {
                let (store, c) = (store.clone(), c.clone());
                tokio::spawn(async move {
                    store
                        .messages(&MessageQuery::latest(c.tenant_id, c.id, 50))
                        .await
                        .unwrap()
                        .len()
                })
            })
            .collect();
        for read in reads {
            assert_eq!(read.await.unwrap(), 5);
        }
        drop(std::sync::Arc::into_inner(store).expect("the last handle"));
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        assert!(
            !wal.exists(),
            "round {round}: the log is still there after the store was dropped"
        );
        // The file alone, copied away from any log, holds every message.
        let copy = dir.path().join(format!("copy-{round}.db"));
        fs::copy(&path, &copy).unwrap();
        let messages: i64 = rusqlite::Connection::open(&copy)
            .unwrap()
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(messages, 5, "round {round}");
    }
}
