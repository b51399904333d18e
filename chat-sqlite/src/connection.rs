//! Opening connections: the pragmas every connection needs and the SQL functions the
//! queries call.

use std::path::Path;

use chat_core::{Error, Result};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Db, map};
use crate::options::Options;

/// Opens the writer's connection: creates the file if needed, switches it to WAL and sets
/// the durability the options ask for. Errors name the file.
pub(crate) fn open_writer(path: &Path, options: &Options) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| in_file(path, map(e)))?;
    configure(&conn, options).map_err(|e| in_file(path, e))?;
    // The first statement that reads the header: a file that is not SQLite fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| in_file(path, map(e)))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(in_file(
            path,
            Error::Storage(format!("cannot switch to WAL (journal_mode is {mode})")),
        ));
    }
    let pragmas = format!(
        "PRAGMA synchronous = {}; PRAGMA cache_size = -{};",
        options.synchronous.pragma(),
        options.writer_cache_kib
    );
    conn.execute_batch(&pragmas)
        .map_err(|e| in_file(path, map(e)))?;
    if let Some(pages) = options.max_pages {
        let _: i64 = conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                row.get(0)
            })
            .map_err(|e| in_file(path, map(e)))?;
    }
    Ok(conn)
}

/// Settings shared by the writer and the readers.
pub(crate) fn configure(conn: &Connection, options: &Options) -> Result<()> {
    conn.busy_timeout(options.busy_timeout).db()?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{}; PRAGMA mmap_size = {};",
        options.cache_kib, options.mmap_size
    ))
    .db()?;
    conn.set_prepared_statement_cache_capacity(64);
    register_functions(conn).db()
}

/// `contains_ci(haystack, needle)`: chat-core's case-insensitive substring test, so SQL
/// filters agree with [`chat_core::store::contains_ci`] to the letter (SQLite's `LIKE`
/// folds ASCII only).
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "contains_ci",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text = |i| match ctx.get_raw(i) {
                ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok(),
                _ => None,
            };
            Ok(match (text(0), text(1)) {
                (Some(haystack), Some(needle)) => chat_core::store::contains_ci(haystack, needle),
                _ => false,
            })
        },
    )
}

/// Prefixes a storage error with the file it concerns.
pub(crate) fn in_file(path: &Path, err: Error) -> Error {
    match err {
        Error::Storage(message) => Error::Storage(format!("{}: {message}", path.display())),
        other => other,
    }
}
