//! After an erasure has committed: making sure its bytes are gone from the files too.
//!
//! `secure_delete` (src/connection.rs) zeroes what the erasure's transaction deleted in
//! the pages it wrote, but two places keep copies a while longer:
//! - the write-ahead logs (`<db>-wal`, `<db>-search-wal`) still hold the earlier versions
//!   of those pages, until a `TRUNCATE` checkpoint copies the log into the file and cuts
//!   the log to nothing;
//! - the search index (FTS5, contentless with `contentless_delete`) records a deletion as
//!   a tombstone beside the words, which stay in their segments until a merge rewrites
//!   them: `optimize` merges every segment into one, dropping the deleted rows' words.
//!
//! `optimize` rewrites the whole index, so it costs in proportion to the index (see the
//! crate README); erasures are rare, and they wait for it.

use std::path::Path;
use std::time::Duration;

use chat_core::Result;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::checkpoint::checkpoint;
use crate::error::Db;

/// How long a checkpoint waits for readers and the writer, per try.
const PATIENCE: Duration = Duration::from_secs(5);
/// Tries of a `TRUNCATE` checkpoint that readers keep blocking.
const TRIES: usize = 20;

/// Purges the search file's index of deleted rows, then truncates both logs.
pub(crate) fn purge(db: &Path, search: &Path) -> Result<()> {
    if search.exists() {
        let conn = open(search)?;
        let indexed: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE name = 'message_search'",
                [],
                |r| r.get(0),
            )
            .optional()
            .db()?;
        if indexed.is_some() {
            conn.execute(
                "INSERT INTO message_search (message_search) VALUES ('optimize')",
                [],
            )
            .db()?;
        }
        truncate(&conn)?;
    }
    truncate(&open(db)?)
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .db()?;
    conn.busy_timeout(PATIENCE).db()?;
    conn.execute_batch("PRAGMA secure_delete = ON").db()?;
    Ok(conn)
}

/// A `TRUNCATE` checkpoint, tried again while a reader still reads an older snapshot.
fn truncate(conn: &Connection) -> Result<()> {
    for _ in 0..TRIES {
        match checkpoint(conn, "main", "TRUNCATE") {
            Ok((false, _, _)) => return Ok(()),
            Ok((true, _, _)) => {}
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
            Err(e) => return Err(crate::error::map(e)),
        }
    }
    Err(chat_core::Error::storage_kind(
        chat_core::StorageKind::Busy,
        "readers kept the write-ahead log from being truncated after an erasure",
    ))
}
