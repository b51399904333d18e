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
    owner_only(path).map_err(|e| {
        in_file(
            path,
            Error::Storage(
                chat_core::StorageError::new(
                    chat_core::StorageKind::Io,
                    format!("cannot open the database file: {e}"),
                )
                .with_source(e),
            ),
        )
    })?;
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
            Error::storage(format!("cannot switch to WAL (journal_mode is {mode})")),
        ));
    }
    // Checkpoints run on their own thread (src/checkpoint.rs): with the automatic
    // checkpoint every commit that crosses 1000 WAL pages would also copy them into the
    // database and fsync it before the writer could answer its callers.
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .map_err(|e| in_file(path, map(e)))?;
    let page_size = u64::try_from(page_size).unwrap_or(4096);
    let pragmas = format!(
        "PRAGMA synchronous = {}; PRAGMA cache_size = -{}; PRAGMA wal_autocheckpoint = 0; \
         PRAGMA journal_size_limit = {};",
        options.synchronous.pragma(),
        options.writer_cache_kib,
        // Cut back, when the log starts over, to twice the restart size: the log passes
        // the restart size by what the last groups added before the restart, and cutting
        // that overshoot off at every restart cost the writer the page cache's truncation.
        options
            .wal_restart_pages
            .saturating_mul(page_size)
            .saturating_mul(2)
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

/// Opens another read-write connection to the database at `path` (which the writer has
/// made), for the threads beside the writer (the search indexer, the checkpoints). URI
/// file names are on so that the search file can be attached by URI, and `ATTACH` takes
/// these flags: `CREATE` is what lets it make a missing search file.
pub(crate) fn open_helper(path: &Path, options: &Options) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| in_file(path, map(e)))?;
    configure(&conn, options).map_err(|e| in_file(path, e))?;
    Ok(conn)
}

/// `file:` URI of `path` for `ATTACH`, with the query (`mode=ro`, say) appended. Only
/// unreserved characters and `/` are left as they are; `None` for a path that is not
/// UTF-8, which SQL text cannot carry faithfully.
pub(crate) fn file_uri(path: &Path, query: &str) -> Option<String> {
    let text = path.to_str()?;
    let mut uri = String::from("file:");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    Some(uri)
}

/// Settings shared by the writer and the readers.
pub(crate) fn configure(conn: &Connection, options: &Options) -> Result<()> {
    conn.busy_timeout(options.busy_timeout).db()?;
    // `secure_delete` on every connection (and every file attached to it, the search file
    // included): a deleted or rewritten row's bytes are zeroed in its page and freed pages
    // are overwritten, so what an erasure removes, and the old versions of rows that
    // earlier updates left in free space, cannot be read back from the file. Its cost is
    // a memset of what is deleted: within the noise in CPU (README, "Erasure").
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -{}; PRAGMA mmap_size = {};",
        options.cache_kib, options.mmap_size
    ))
    .db()?;
    conn.set_prepared_statement_cache_capacity(64);
    register_functions(conn).db()
}

/// `text_matches(haystack, text)`: chat-core's search text test
/// ([`chat_core::store::TextQuery`]), so every candidate the word index finds is checked
/// exactly as the in-memory store checks it.
///
/// `uuid_blob(text)`: the 16-byte blob of a UUID in text form (as event JSON holds message
/// ids), `NULL` for anything else; searches use it to find the messages of recent events.
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "uuid_blob",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|text| uuid::Uuid::parse_str(text).ok())
                    .map(|id| id.as_bytes().to_vec()),
                _ => None,
            })
        },
    )?;
    conn.create_scalar_function(
        "text_matches",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            // The text is the same for every row of a search: parsed once per statement.
            let query = ctx.get_or_create_aux(1, |value| -> rusqlite::Result<_> {
                Ok(chat_core::store::TextQuery::parse(
                    value.as_str().unwrap_or_default(),
                ))
            })?;
            Ok(match ctx.get_raw(0) {
                ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                    .ok()
                    .is_some_and(|haystack| query.matches(haystack)),
                _ => false,
            })
        },
    )
}

/// Prefixes a storage error with the file it concerns.
pub(crate) fn in_file(path: &Path, err: Error) -> Error {
    match err {
        Error::Storage(failure) => Error::Storage(failure.context(path.display())),
        other => other,
    }
}

/// Makes the database file at `path` (and its `-wal` and `-shm`, where they exist) readable
/// by its owner only: it holds password hashes and customers' messages. SQLite creates a
/// missing file with 0644 and gives the log files the database's mode, so a missing file
/// is created here first, empty (SQLite takes an empty file as a new database), with 0600;
/// a file someone left wider is narrowed. Off Unix there are no modes to set.
pub(crate) fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let name = std::path::PathBuf::from(name);
            let Ok(meta) = std::fs::metadata(&name) else {
                continue;
            };
            if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
                let mode = meta.permissions().mode() & 0o700;
                std::fs::set_permissions(&name, std::fs::Permissions::from_mode(mode))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
