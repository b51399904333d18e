//! The search file's lifecycle: its layout, and opening, checking, making, deleting and
//! replacing it, under the making lock when another store may be at it too.
//!
//! # The search file
//!
//! An FTS5 table `message_search` over message bodies (`unicode61` words, contentless with
//! `contentless_delete`, rowid = `messages.pk`, only messages not deleted, `detail = none`:
//! which messages hold a word, not where, so a phrase is looked up as its words and each
//! candidate checked), a side table `search_rows` saying which `pk` is indexed for which
//! conversation (a hard-deleted conversation takes its messages along without an event per
//! message, and a contentless index cannot be asked which rows are whose) and with which
//! [`flags`](super::flags), and one `search_state` row: the database it
//! indexes (`store_meta.store_id`), the **watermark** (the last `events` rowid applied), the
//! **horizon** (the newest `events` rowid of any snapshot the indexed bodies were read
//! from), the `(tenant, seq)` of the event at the watermark, and `rebuilt_to` while a
//! rebuild is under way. Since format 4 it also holds each conversation's words
//! (`conversation_words`: chat-core's words of its indexed bodies, keyed by a number per
//! conversation from `search_conversations`, with [`word_kinds`](super::word_kinds) saying
//! whether a word is in a note, in another message, or both): "does conversation C have a
//! word starting with W" is one seek. The index and the state change in the same transactions. The file
//! is a cache: when it is missing, unreadable, corrupt, of another layout, made for another
//! database, or ahead of this one (a restored backup), it is deleted and rebuilt from
//! `messages`; nothing in it is needed to open the store.
//!

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use chat_core::Result;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::Shared;
use super::indexer::{Failure, Indexer, describe, is_busy, is_damage};

/// `PRAGMA application_id` of a search file ("CHSX").
const APPLICATION_ID: i32 = 0x4348_5358;
/// `PRAGMA user_version` of a search file: the layout below. Any other is rebuilt.
/// Format 2: `detail = none` (no word positions: 62 to 20 bytes a message at a million
/// messages) and `search_rows.flags`. Format 3: no index of `search_rows` by conversation
/// (29 of the file's 90 MB at a million messages, about 28 bytes a message): only a
/// hard-deleted conversation needs it, and the indexer then scans `search_rows` once
/// (tens of milliseconds at a million messages, on the indexer's thread). Format 4: each
/// conversation's words (`conversation_words`), so that a search walking the inbox for a
/// common word tests a conversation with one seek instead of reading its bodies.
const FORMAT: i32 = 4;

/// The search file's tables.
const SCHEMA: &str = "
CREATE TABLE search.search_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    store_id    TEXT NOT NULL,
    file_id     INTEGER NOT NULL,
    watermark   INTEGER NOT NULL,
    horizon     INTEGER NOT NULL,
    mark_tenant BLOB,
    mark_seq    INTEGER,
    rebuilt_to  INTEGER
);
CREATE VIRTUAL TABLE search.message_search USING fts5 (
    body,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'unicode61'
);
CREATE TABLE search.search_rows (
    pk              INTEGER PRIMARY KEY,
    conversation_id BLOB NOT NULL,
    flags           INTEGER NOT NULL
);
CREATE TABLE search.search_conversations (
    n  INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE
);
CREATE TABLE search.conversation_words (
    conversation INTEGER NOT NULL,
    word         TEXT NOT NULL,
    kinds        INTEGER NOT NULL,
    PRIMARY KEY (conversation, word)
) WITHOUT ROWID;
";

/// Why a search file is not used as it is.
#[derive(Debug)]
enum Unusable {
    /// Empty (just created, or another store is making it): gets the schema in place.
    Empty,
    /// Another connection holds a lock the check needs: tried again later, never a reason
    /// to delete the file.
    Busy(String),
    /// Anything else: deleted and made again.
    Replace(String),
}

/// The device and inode of the file at `path`, to tell whether the file the indexer has
/// attached is still the one there; `None` if there is none, or off Unix.
pub(super) fn identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl Indexer {
    fn attach(&mut self) -> std::result::Result<(), Failure> {
        let uri = self
            .uri
            .clone()
            .ok_or_else(|| Failure::other("the search file's path is not UTF-8"))?;
        // Made owner-only before SQLite makes it 0644: it holds every message's words.
        crate::connection::owner_only(&self.file)
            .map_err(|e| Failure::other(format!("{}: {e}", self.file.display())))?;
        // Whatever was known of words is of another file, or of this one as it was.
        self.known.clear();
        self.conn.execute("ATTACH DATABASE ?1 AS search", [uri])?;
        self.attached = true;
        self.identity = identity(&self.file);
        // A cache: losing the last commits to a power cut only moves the watermark back
        // with them (they are undone together), so commits need not wait for the disk.
        self.conn.execute_batch(&format!(
            "PRAGMA search.synchronous = NORMAL; PRAGMA search.cache_size = -{};",
            self.cache_kib
        ))?;
        Ok(())
    }

    pub(super) fn detach(&mut self) {
        self.known.clear();
        if self.attached {
            // Statements on the old file must be finalized before it can be detached.
            self.conn.flush_prepared_statement_cache();
            let _ = self.conn.execute_batch("DETACH DATABASE search");
            self.attached = false;
        }
    }

    /// Whether the attached file has been deleted or replaced (by an operator, or by
    /// another store that found it damaged): the indexer would go on writing a file that
    /// nobody reads, and report progress on it.
    pub(super) fn moved(&self) -> bool {
        self.attached && identity(&self.file) != self.identity
    }

    /// Attaches the search file, checks it and if need be makes a new one; publishes its
    /// `file_id` for the readers. On failure the file is left detached, so that the next
    /// pass opens it again.
    pub(super) fn open_file(&mut self, shared: &Shared) -> std::result::Result<(), Failure> {
        self.detach();
        shared.file_id.store(0, Ordering::Release);
        match self.open_checked() {
            Ok(file_id) => {
                self.file_id = file_id;
                shared.file_id.store(file_id, Ordering::Release);
                Ok(())
            }
            Err(failure) => {
                self.detach();
                Err(failure)
            }
        }
    }

    /// The work of [`open_file`](Self::open_file): takes the file as it is, gives an
    /// empty one its layout, or deletes anything else and makes it again. Another store,
    /// in this process or another, may be opening, making or replacing the same file at
    /// this moment. Making and deleting happen only under [`making_lock`](Self::making_lock),
    /// after checking the file again: a store that waited for it finds the file the other
    /// made and takes it. A file in WAL mode without a layout counts as empty, not as
    /// foreign, and a lock another connection holds is waited for (the busy timeout), never
    /// a reason to delete the file.
    fn open_checked(&mut self) -> std::result::Result<i64, Failure> {
        match self.attach_and_check() {
            Ok(file_id) => return Ok(file_id),
            Err(Unusable::Busy(cause)) => return Err(Failure::busy(cause)),
            Err(Unusable::Empty | Unusable::Replace(_)) => {}
        }
        let _making = self.making_lock()?;
        self.detach();
        let mut deleted = false;
        // A round takes the file, or makes it, or deletes it and starts over, or (when a
        // connection that is not a store's made it meanwhile) checks it again.
        for _ in 0..3 {
            match self.attach_and_check() {
                Ok(file_id) => return Ok(file_id),
                Err(Unusable::Empty) => {
                    if let Some(file_id) = self.create()? {
                        return Ok(file_id);
                    }
                }
                Err(Unusable::Busy(cause)) => return Err(Failure::busy(cause)),
                Err(Unusable::Replace(why)) if deleted => {
                    return Err(Failure::other(format!(
                        "cannot make a usable search file: {why}"
                    )));
                }
                Err(Unusable::Replace(why)) => {
                    // Nothing to rebuild where there is no file (one that cannot be made).
                    if std::fs::symlink_metadata(&self.file).is_ok() {
                        tracing::warn!(
                            file = %self.file.display(),
                            why = %why,
                            "chat-sqlite: rebuilding the search index"
                        );
                    }
                    self.delete_file()?;
                    deleted = true;
                }
            }
        }
        Err(Failure::other(
            "the search file kept changing while it was being opened",
        ))
    }

    /// Attaches the file if it is not, and [`check`](Self::check)s it. A file that cannot
    /// be attached is to be replaced (unless the failure is a lock).
    fn attach_and_check(&mut self) -> std::result::Result<i64, Unusable> {
        if !self.attached {
            match self.attach() {
                Ok(()) => {}
                Err(failure) if failure.busy => return Err(Unusable::Busy(failure.cause)),
                Err(failure) => return Err(Unusable::Replace(failure.cause)),
            }
        }
        self.check()
    }

    /// The database's write lock, on a connection of its own (`ATTACH` cannot run inside a
    /// transaction), held while the search file is made or deleted. Two stores doing that
    /// at once could otherwise leave a file with two logs: one deleting the `-wal` and
    /// `-shm` of the file the other has just made and opened, and making its own beside
    /// them. Writers wait for it as for any write; making the file takes milliseconds.
    fn making_lock(&self) -> std::result::Result<Connection, Failure> {
        let conn = Connection::open_with_flags(
            &self.db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(conn)
    }

    /// The attached file's `file_id` if it is a usable index of this database.
    fn check(&self) -> std::result::Result<i64, Unusable> {
        let unusable = |e: rusqlite::Error| {
            if is_busy(&e) {
                Unusable::Busy(describe(crate::error::map(e)))
            } else {
                Unusable::Replace(e.to_string())
            }
        };
        let pragma = |name: &str| -> std::result::Result<i64, Unusable> {
            self.conn
                .query_row(&format!("PRAGMA search.{name}"), [], |row| row.get(0))
                .map_err(unusable)
        };
        if pragma("page_count")? == 0 {
            return Err(Unusable::Empty);
        }
        let (application_id, format) = (pragma("application_id")?, pragma("user_version")?);
        if application_id == 0 && format == 0 {
            // Switching a new file to WAL writes its first page before the layout is
            // committed: a file with nothing in it is one another store is making (or one
            // whose maker died), not a foreign file.
            let objects: i64 = self
                .conn
                .query_row("SELECT count(*) FROM search.sqlite_master", [], |row| {
                    row.get(0)
                })
                .map_err(unusable)?;
            if objects == 0 {
                return Err(Unusable::Empty);
            }
        }
        if application_id != i64::from(APPLICATION_ID) || format != i64::from(FORMAT) {
            return Err(Unusable::Replace(format!(
                "not a search file of this version (application_id {application_id:#x}, format {format})"
            )));
        }
        type State = (String, i64, i64, i64, Option<uuid::Uuid>, Option<i64>);
        let (store_id, file_id, watermark, horizon, mark_tenant, mark_seq): State = self
            .conn
            .query_row(
                "SELECT store_id, file_id, watermark, horizon, mark_tenant, mark_seq \
                 FROM search.search_state WHERE id = 1",
                [],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                },
            )
            .map_err(unusable)?;
        if store_id != self.store_id {
            return Err(Unusable::Replace(format!(
                "made for another database (store id {store_id}, this one is {})",
                self.store_id
            )));
        }
        // The same database, but is it the same history? A restored backup has fewer
        // events than the index has seen, or other ones at the same rowids.
        let newest: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(max(rowid), 0) FROM main.events",
                [],
                |row| row.get(0),
            )
            .map_err(unusable)?;
        let at_watermark: Option<(uuid::Uuid, i64)> = self
            .conn
            .query_row(
                "SELECT tenant_id, seq FROM main.events WHERE rowid = ?1",
                [watermark],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(unusable)?;
        let mark = mark_tenant.zip(mark_seq);
        if newest < horizon || (watermark > 0 && at_watermark != mark) {
            return Err(Unusable::Replace(format!(
                "the database's events differ from those indexed (newest event {newest}, index \
                 watermark {watermark}, horizon {horizon}): a restored or replaced database"
            )));
        }
        Ok(file_id)
    }

    /// Detaches and deletes the search file and its log, so that the next open makes a
    /// new one.
    fn delete_file(&mut self) -> std::result::Result<(), Failure> {
        self.detach();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = self.file.as_os_str().to_owned();
            name.push(suffix);
            let name = PathBuf::from(name);
            match std::fs::remove_file(&name) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    let why = if std::fs::symlink_metadata(&name).is_ok_and(|m| m.is_dir()) {
                        if suffix.is_empty() {
                            "a directory is in its place".to_owned()
                        } else {
                            format!("{} is a directory", name.display())
                        }
                    } else {
                        format!("cannot delete {}: {e}", name.display())
                    };
                    return Err(Failure::other(format!(
                        "cannot make a new search file: {why}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Gives the attached empty file the schema and a state that asks for a rebuild from
    /// the first message, starting at the database's newest event; `None` if another
    /// store gave it its layout first (the file is then to be checked again and taken).
    fn create(&mut self) -> std::result::Result<Option<i64>, Failure> {
        // Random, so that a reader can tell a new file from the one it attached; never 0,
        // which means "no file".
        let file_id = (uuid::Uuid::new_v4().as_u64_pair().0 >> 1) as i64 | 1;
        let mode: String = self
            .conn
            .query_row("PRAGMA search.journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Failure::other(format!(
                "cannot switch the search file to WAL (journal_mode is {mode})"
            )));
        }
        let tx = self.conn.unchecked_transaction()?;
        // The write lock first (a write as the transaction's first statement waits for
        // it), then the look: of two stores making the file at once, the second to get
        // the lock finds the first one's layout and takes it.
        tx.execute_batch(&format!("PRAGMA search.application_id = {APPLICATION_ID}"))?;
        let objects: i64 =
            tx.query_row("SELECT count(*) FROM search.sqlite_master", [], |row| {
                row.get(0)
            })?;
        if objects > 0 {
            return Ok(None);
        }
        tx.execute_batch(&format!("PRAGMA search.user_version = {FORMAT}; {SCHEMA}"))?;
        // The rebuild starts from this snapshot's newest event: whatever happens after it
        // is replayed once every message has been copied.
        tx.execute(
            "INSERT INTO search.search_state \
             (id, store_id, file_id, watermark, horizon, mark_tenant, mark_seq, rebuilt_to) \
             SELECT 1, ?1, ?2, coalesce(e.rowid, 0), coalesce(e.rowid, 0), e.tenant_id, e.seq, 0 \
             FROM (SELECT 1) LEFT JOIN (SELECT rowid, tenant_id, seq FROM main.events \
             ORDER BY rowid DESC LIMIT 1) e",
            params![self.store_id, file_id],
        )?;
        tx.commit()?;
        Ok(Some(file_id))
    }
    /// Replaces the search file with a new one due for a rebuild, and tells the readers.
    pub(super) fn rebuild(
        &mut self,
        shared: &Shared,
        why: &str,
    ) -> std::result::Result<(), Failure> {
        tracing::warn!(file = %self.file.display(), why, "chat-sqlite: rebuilding the search index");
        shared.file_id.store(0, Ordering::Release);
        {
            let _making = self.making_lock()?;
            if self.moved() {
                // Another store has replaced it already: its file is the one to open.
                self.detach();
            } else {
                self.delete_file()?;
            }
        }
        self.open_file(shared)
    }

    /// `PRAGMA quick_check` of the search file: `Ok(false)` if it found damage.
    pub(super) fn sound(&self) -> Result<bool> {
        // Damage can fail the statement before it checks anything (FTS5 reads its
        // configuration when the table is first used: "vtable constructor failed"), and
        // that is damage too.
        let findings = self
            .conn
            .prepare("PRAGMA search.quick_check")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            });
        match findings {
            Ok(lines) => Ok(lines == ["ok"]),
            Err(e) if is_damage(&e) => Ok(false),
            Err(e) => Err(crate::error::map(e)),
        }
    }
}
