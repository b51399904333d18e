//! The process-wide SQLite heap limit (its own test binary: the limit is the process's).

use chat_core::Error;

#[test]
fn the_heap_limit_is_set_for_the_whole_process_and_can_be_lifted() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(chat_sqlite::set_heap_limit(8 << 20).unwrap(), 8 << 20);
    // Any other connection of the process sees the same limit: it is SQLite's, not one
    // connection's.
    let conn = rusqlite::Connection::open(dir.path().join("other.db")).unwrap();
    let seen: i64 = conn
        .query_row("PRAGMA soft_heap_limit", [], |row| row.get(0))
        .unwrap();
    assert_eq!(seen, 8 << 20);
    // A store opened under the limit works as usual.
    chat_sqlite::SqliteStore::open(dir.path().join("chat.db")).unwrap();
    assert_eq!(chat_sqlite::set_heap_limit(0).unwrap(), 0, "0 lifts it");
}

#[test]
fn a_heap_limit_sqlite_cannot_hold_is_refused() {
    let e = chat_sqlite::set_heap_limit(u64::MAX).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Validation {
                field: "heap_limit",
                ..
            }
        ),
        "{e}"
    );
}
