//! Online backup: a consistent copy of a live database, taken while the server keeps
//! reading and writing it.
//!
//! The copy is SQLite's `VACUUM INTO`, run inside one read transaction: it holds exactly
//! what was committed when that transaction began (every acknowledged write before the
//! backup started, nothing half-written), takes no write lock (WAL readers never block the
//! writer), and comes out compact and self-contained, with no `-wal` beside it. The search
//! file (`<db>-search`) is not copied: a store opened on the copy rebuilds it from the
//! messages. The copy is created owner-only (0600) before SQLite writes a byte into it.

use std::path::Path;

use chat_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};

use crate::error::Db;

/// Copies the database at `db` to `to`, a file that must not exist yet; returns the
/// copy's size in bytes. Works from another process than the one serving the database.
///
/// ```no_run
/// # fn demo() -> chat_core::Result<()> {
/// let bytes = chat_sqlite::backup("chat.db".as_ref(), "chat-backup.db".as_ref())?;
/// # Ok(()) }
/// ```
pub fn backup(db: &Path, to: &Path) -> Result<u64> {
    // Read-only and never creating: a mistyped path is an error, not a new empty database.
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::storage(format!("{}: {e}", db.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).db()?;
    backup_with(&conn, to)
}

/// [`backup`] on an open connection (one of a store's readers).
pub(crate) fn backup_with(conn: &Connection, to: &Path) -> Result<u64> {
    let target = to
        .to_str()
        .ok_or_else(|| Error::validation("to", "a path SQLite can name (UTF-8)"))?;
    create_owner_only(to)?;
    let copied = conn
        .execute("VACUUM INTO ?1", [target])
        .map(|_| ())
        .map_err(|e| Error::storage(format!("backup to {}: {e}", to.display())));
    let copied = copied.and_then(|()| reindex_words(to));
    if let Err(e) = copied {
        // Leave no empty or partial file that looks like a backup.
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    let bytes = std::fs::metadata(to)
        .map_err(|e| Error::storage(format!("{}: {e}", to.display())))?
        .len();
    Ok(bytes)
}

/// Rebuilds the title and contact word indexes (migration 0011) of a copy: they are keyed
/// by their tables' rowids, which `VACUUM` may renumber in a table without an `INTEGER
/// PRIMARY KEY`, and an entry under a stale rowid would hide its conversation from a
/// search (never show a wrong one: every candidate is checked against its row).
fn reindex_words(copy: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(
        copy,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::storage(format!("{}: {e}", copy.display())))?;
    let has_words = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'conversation_title_words'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .db()?;
    if has_words == 0 {
        return Ok(());
    }
    conn.execute_batch(
        "BEGIN;
         INSERT INTO conversation_title_words (conversation_title_words) VALUES ('delete-all');
         INSERT INTO conversation_title_words (rowid, title)
             SELECT rowid, title FROM conversations WHERE title IS NOT NULL;
         INSERT INTO contact_words (contact_words) VALUES ('delete-all');
         INSERT INTO contact_words (rowid, name, email)
             SELECT rowid, name, email_lc FROM contacts WHERE name IS NOT NULL OR email_lc IS NOT NULL;
         COMMIT;",
    )
    .db()
}

/// Creates `path` empty with mode 0600 (SQLite accepts an empty file as the target of
/// `VACUUM INTO` and keeps its mode). a duplicate [`Error::Conflict`] if it exists.
fn create_owner_only(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::duplicate(format!(
            "{} exists; a backup never overwrites a file",
            path.display()
        ))),
        Err(e) => Err(Error::storage(format!("{}: {e}", path.display()))),
    }
}
