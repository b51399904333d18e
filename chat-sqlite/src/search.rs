//! Full-text search in a file of its own (`<database>-search`), kept by an indexer thread
//! that follows the event log.
//!
//! # The search file
//!
//! An FTS5 table `message_search` over message bodies (`unicode61` words, contentless with
//! `contentless_delete`, rowid = `messages.pk`, only messages not deleted), a side table
//! `search_rows` saying which `pk` is indexed for which conversation (a hard-deleted
//! conversation takes its messages along without an event per message, and a contentless
//! index cannot be asked which rows are whose), and one `search_state` row: the database it
//! indexes (`store_meta.store_id`), the **watermark** (the last `events` rowid applied), the
//! **horizon** (the newest `events` rowid of any snapshot the indexed bodies were read
//! from), the `(tenant, seq)` of the event at the watermark, and `rebuilt_to` while a
//! rebuild is under way. The index and the state change in the same transactions. The file
//! is a cache: when it is missing, unreadable, corrupt, of another layout, made for another
//! database, or ahead of this one (a restored backup), it is deleted and rebuilt from
//! `messages`; nothing in it is needed to open the store.
//!
//! # The indexer
//!
//! One thread with one connection: the database as `main` (only read) and the search file
//! attached as `search`. The writer wakes it after each commit (it then lets
//! [`Options::index_interval`] pass since its previous pass), and a timer every [`TICK`].
//! A pass reads, in one short read transaction, the `events` after the watermark (up to
//! [`EVENT_BATCH`]) and for each `message_created` / `message_updated` the message's current
//! row (to be indexed again, or removed if it is deleted or gone), and for each
//! `conversation_deleted` notes the conversation (its rows in `search_rows` are removed).
//! It then applies that to the search file in a transaction of its own, with the new
//! watermark and horizon: the database snapshot is let go before the slow FTS work, as a
//! reader holds back checkpoints while it reads. Event rowids only grow, in commit order:
//! SQLite runs one write transaction at a time (whichever store, or process, writes), a
//! new row takes the largest rowid plus one, and events are never deleted. A rebuild first
//! copies every message
//! in `pk` order, [`REBUILD_CHUNK`] per pass, then replays the events after the watermark it
//! started from; what changed while it copied is in those events, and applying an event
//! means reading the message as it is now, so the replay puts every row right whatever a
//! chunk saw.
//!
//! # When the indexer cannot make progress
//!
//! A pass that fails because another connection holds a lock it needs is only held up: it
//! has waited out the busy timeout, and tries again a second later. A pass that fails for
//! any other reason gets a remedy before the next try: a damaged file is checked and
//! rebuilt; otherwise the file is opened again, which checks it and makes a new one if it
//! has to. If that next pass fails too, the indexer reports itself stuck, with the cause,
//! until a pass gets through, and
//! [`SqliteStore::wait_for_search_index`](crate::SqliteStore::wait_for_search_index) fails
//! instead of waiting for progress that may never come (a directory where the file should
//! be, a directory the process cannot write, a full disk). The indexer keeps trying every
//! [`RETRY`]; searches do not notice, they read the bodies the index has not applied. Each
//! pass also checks that the file at the search path is still the one attached (device
//! and inode): a file deleted or replaced under the running store, by an operator or by
//! another store that found it damaged, is let go and the one at the path opened (or
//! made), where the indexer would otherwise go on indexing a file nobody reads.
//!
//! # Several stores on one database
//!
//! Two processes (or two stores in one) on the same database each run an indexer on the
//! same search file. SQLite's locks keep the file sound; what is left is that the two must
//! neither apply an event twice nor skip one, and must not take a file the other is making
//! for a foreign one. A pass applies its work in a transaction that takes the search file's
//! write lock first and then compares the state with the one the work was read from: the
//! second indexer to get there finds it moved and drops its work (and publishes the state
//! it found, so a wait through its store sees the other's progress). Making or deleting
//! the file happens only under the database's write lock, held on a connection of its own,
//! and after checking the file again: of two stores that set out to make or replace it at
//! once, the second takes the file the first made, where it used to delete it (log and
//! all) from under the first. A new file in WAL mode without a layout yet counts as empty,
//! not foreign, and the layout is committed by a transaction that takes the search file's
//! lock before it looks, which covers a maker that does not take the database's lock.
//! Searches through either store read the file's state and stay exact.
//!
//! # Searching without waiting
//!
//! A search reads, in one read transaction, first the state from the search file (its
//! snapshot), then the newest event rowid from the database (its snapshot). Every change to
//! a message appends an event about it in the same transaction, so a message without
//! events after the watermark has not changed since the indexer last read it, and its
//! entry is exact: the index is asked for those. The messages of the events after the
//! watermark (posted, edited or deleted since) are read (`contains_ci` over their bodies).
//! That holds only if the indexer read those messages from a snapshot no newer than the
//! search's: the index could otherwise hold a body this snapshot does not show yet (an
//! edit) and miss the one it does. So the index is used only if the database snapshot has
//! every event up to the horizon. Since the search file's snapshot is taken first, and the
//! indexer commits only after its database snapshot ended, that is always so in practice;
//! the check makes it a guarantee instead of a property of the order in which SQLite opens
//! the two files' snapshots (the test below shows the race it closes). Candidates from the
//! index are joined with `messages` of the database snapshot and checked with
//! `contains_ci`, so an entry that is stale (a deleted conversation's `pk`, reused) can
//! only be a candidate, never a result.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_core::{Error, Result};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, params};
use tokio::sync::watch;

use crate::checkpoint::checkpoint;
use crate::connection::{file_uri, in_file, open_helper};
use crate::error::Db;
use crate::options::Options;

/// `PRAGMA application_id` of a search file ("CHSX").
const APPLICATION_ID: i32 = 0x4348_5358;
/// `PRAGMA user_version` of a search file: the layout below. Any other is rebuilt.
const FORMAT: i32 = 1;

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
    tokenize = 'unicode61'
);
CREATE TABLE search.search_rows (
    pk              INTEGER PRIMARY KEY,
    conversation_id BLOB NOT NULL
);
CREATE INDEX search.search_rows_conversation ON search_rows (conversation_id);
";

/// Events applied per transaction.
const EVENT_BATCH: i64 = 5000;
/// Messages copied per transaction of a rebuild.
const REBUILD_CHUNK: i64 = 5000;
/// The indexer looks for new events this often even if nobody wakes it (another process
/// may write the database), and truncates its log once it finds nothing to do.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// After an error the indexer waits this long before it tries again.
const RETRY: Duration = Duration::from_secs(1);
/// A reader's report of a failed search makes the indexer check the file at most this
/// often.
const RECHECK: Duration = Duration::from_secs(10);
/// Failed passes in a row after which the indexer is reported stuck. The first failure
/// gets a remedy (the file is checked and rebuilt if damaged, or opened again: it may have
/// been replaced); only if the pass after it fails too is there something an operator has
/// to see to.
const STUCK_AFTER: u32 = 2;

/// The search file of the database at `db`.
pub(crate) fn search_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-search");
    PathBuf::from(name)
}

/// How far the index is, as [`SqliteStore::wait_for_search_index`](crate::SqliteStore::wait_for_search_index)
/// sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The index holds every message as of `watermark` (no rebuild under way).
    pub(crate) ready: bool,
    /// The last `events` rowid applied.
    pub(crate) watermark: i64,
    /// Why the indexer cannot make progress: set once [`STUCK_AFTER`] passes in a row have
    /// failed for a reason other than another connection's lock, cleared by the next pass
    /// that gets through.
    pub(crate) stuck: Option<Arc<str>>,
    /// Passes that have failed so far, lock waits not counted. A waiter takes `stuck` only
    /// from a pass that failed after it began to wait, so that an obstacle removed in the
    /// meantime does not fail it.
    pub(crate) failures: u64,
}

impl Progress {
    fn at(ready: bool, watermark: i64) -> Self {
        Self {
            ready,
            watermark,
            ..Self::default()
        }
    }
}

/// How the text filter finds messages by their words, decided per read snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WordIndex {
    /// The attached index is exact for every message without events after `watermark`;
    /// the messages of later events are read.
    Since { watermark: i64 },
    /// No usable index (none attached, a rebuild under way, or an index newer than this
    /// snapshot): the bodies of every conversation the other filters let through are read.
    Scan,
}

/// Decides how this read transaction's text filter uses the index. Reads the search
/// file's state first, so that its snapshot is taken before the database's.
pub(crate) fn word_index(conn: &Connection) -> WordIndex {
    let state = conn
        .prepare_cached(
            "SELECT watermark, horizon, rebuilt_to FROM search.search_state WHERE id = 1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                ))
            })
        });
    let Ok((watermark, horizon, None)) = state else {
        return WordIndex::Scan;
    };
    let newest = conn
        .prepare_cached("SELECT coalesce(max(rowid), 0) FROM main.events")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)));
    match newest {
        Ok(newest) if newest >= horizon => WordIndex::Since { watermark },
        _ => WordIndex::Scan,
    }
}

/// What the store, its readers, the writer and the indexer thread share.
pub(crate) struct Shared {
    wake: Mutex<Wake>,
    cond: Condvar,
    /// `search_state.file_id` of the current search file; 0 while there is none.
    file_id: AtomicI64,
    /// `file:` URI the readers attach, read-only.
    reader_uri: Option<String>,
    /// Page cache of the attached file on each reader, in KiB.
    reader_cache_kib: u64,
}

#[derive(Default)]
struct Wake {
    /// Commits the writer has reported.
    commits: u64,
    /// A reader's search failed on the index.
    suspect: bool,
    stop: bool,
}

impl Shared {
    fn new(reader_uri: Option<String>, reader_cache_kib: u64) -> Self {
        Self {
            wake: Mutex::new(Wake::default()),
            cond: Condvar::new(),
            file_id: AtomicI64::new(0),
            reader_uri,
            reader_cache_kib,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Wake> {
        self.wake
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writer committed: events may follow the watermark.
    pub(crate) fn committed(&self) {
        self.lock().commits += 1;
        self.cond.notify_one();
    }

    /// A search failed while it used the index: the indexer checks the file (and rebuilds
    /// it if it is damaged).
    pub(crate) fn suspect(&self) {
        self.lock().suspect = true;
        self.cond.notify_one();
    }

    fn stopping(&self) -> bool {
        self.lock().stop
    }

    /// Waits until `until` unless told to stop first; `true` if told to stop.
    fn pause(&self, until: Instant) -> bool {
        crate::checkpoint::pause_until(self.lock(), &self.cond, until, |wake| wake.stop)
    }

    /// Makes sure a read connection has the current search file attached as `search`
    /// (read-only); never fails: a connection without it searches by reading bodies.
    /// Called when a reader connection opens and before each text search, outside any
    /// transaction (`ATTACH` and `DETACH` cannot run inside one).
    pub(crate) fn attach_reader(&self, conn: &Connection) {
        let current = self.file_id.load(Ordering::Acquire);
        let attached: Option<i64> = conn
            .prepare_cached("SELECT file_id FROM search.search_state WHERE id = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .ok();
        if current == 0 || attached == Some(current) {
            return;
        }
        let Some(uri) = &self.reader_uri else { return };
        if attached.is_some() || is_attached(conn) {
            // The indexer replaced the file (it was damaged): let go of the old one.
            let _ = conn.execute_batch("DETACH DATABASE search");
        }
        let attach = conn
            .execute("ATTACH DATABASE ?1 AS search", [uri])
            .and_then(|_| {
                conn.execute_batch(&format!(
                    "PRAGMA search.cache_size = -{}",
                    self.reader_cache_kib
                ))
            });
        if let Err(e) = attach {
            tracing::debug!(error = %e, "chat-sqlite: search file not attached; searches read bodies");
        }
    }
}

fn is_attached(conn: &Connection) -> bool {
    conn.query_row(
        "SELECT 1 FROM pragma_database_list WHERE name = 'search'",
        [],
        |_| Ok(()),
    )
    .optional()
    .ok()
    .flatten()
    .is_some()
}

/// Handle to the indexer thread; dropping it stops and joins the thread.
pub(crate) struct Search {
    shared: Arc<Shared>,
    /// The search file, for errors.
    file: PathBuf,
    progress: watch::Receiver<Progress>,
    thread: Option<JoinHandle<()>>,
}

impl Search {
    /// Prepares the search file of the database at `db` (checks it, or creates it empty
    /// and due for a rebuild) and starts the indexer on it. Fails only if the database
    /// itself cannot be opened or read: a search file that cannot be used is logged, and
    /// searches read bodies until the indexer manages to make one.
    pub(crate) fn start(db: &Path, options: &Options) -> Result<Self> {
        let mut indexer = Indexer::new(db, options)?;
        let file = indexer.file.clone();
        let shared = Arc::new(Shared::new(file_uri(&file, "mode=ro"), options.cache_kib));
        let first = indexer.open_file(&shared).err();
        match &first {
            // Another store is making or checking the file: the indexer tries again soon.
            Some(failure) if failure.busy => tracing::debug!(
                file = %file.display(),
                error = %failure.cause,
                "chat-sqlite: search file busy at start; searches read bodies until it is open"
            ),
            Some(failure) => tracing::warn!(
                file = %file.display(),
                error = %failure.cause,
                "chat-sqlite: search file unavailable for now; searches read bodies"
            ),
            None => {}
        }
        let (sender, progress) = watch::channel(Progress::default());
        let thread = std::thread::Builder::new()
            .name("chat-sqlite-indexer".into())
            .spawn({
                let shared = shared.clone();
                move || run(indexer, &shared, &sender, first)
            })
            .map_err(|e| Error::Storage(format!("cannot start the search indexer: {e}")))?;
        Ok(Self {
            shared,
            file,
            progress,
            thread: Some(thread),
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Waits until the index is complete and has applied every event up to rowid
    /// `target`, or until a pass that began after the call has found the indexer stuck
    /// (see [`Progress::stuck`]).
    pub(crate) async fn wait_for(&self, target: i64) -> Result<()> {
        let mut progress = self.progress.clone();
        let failures = progress.borrow().failures;
        self.shared.committed();
        let caught_up = |p: &Progress| p.ready && p.watermark >= target;
        let stuck = progress
            .wait_for(|p| caught_up(p) || (p.stuck.is_some() && p.failures > failures))
            .await
            .map(|p| if caught_up(&p) { None } else { p.stuck.clone() })
            .map_err(|_| {
                in_file(
                    &self.file,
                    Error::Storage("the search indexer has stopped".into()),
                )
            })?;
        match stuck {
            None => Ok(()),
            Some(cause) => Err(in_file(
                &self.file,
                Error::Storage(format!(
                    "the search index cannot catch up (searches read message bodies meanwhile; \
                     the indexer tries again every second): {cause}"
                )),
            )),
        }
    }
}

impl Drop for Search {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cond.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

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

/// Why a pass of the indexer did not get through.
#[derive(Debug)]
struct Failure {
    /// Another connection held a lock past the busy timeout: the indexer is held up, not
    /// stuck.
    busy: bool,
    /// A file is damaged: the search file is checked (and rebuilt) before the next try.
    damage: bool,
    cause: String,
}

impl Failure {
    fn busy(cause: String) -> Self {
        Self {
            busy: true,
            damage: false,
            cause,
        }
    }

    fn other(cause: impl Into<String>) -> Self {
        Self {
            busy: false,
            damage: false,
            cause: cause.into(),
        }
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Self {
            busy: is_busy(&e),
            damage: is_damage(&e),
            cause: describe(crate::error::map(e)),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::other(describe(e))
    }
}

/// A storage error's message without the variant's prefix, to be put inside another.
fn describe(e: Error) -> String {
    match e {
        Error::Storage(message) => message,
        other => other.to_string(),
    }
}

/// The device and inode of the file at `path`, to tell whether the file the indexer has
/// attached is still the one there; `None` if there is none, or off Unix.
fn identity(path: &Path) -> Option<(u64, u64)> {
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

/// The indexer's connection and what it knows about the attached file.
struct Indexer {
    conn: Connection,
    /// The database, for [`making_lock`](Self::making_lock).
    db: PathBuf,
    busy_timeout: Duration,
    file: PathBuf,
    /// Read-write `file:` URI of the search file; `None` if it cannot be expressed.
    uri: Option<String>,
    /// `store_meta.store_id` of the database.
    store_id: String,
    cache_kib: u64,
    attached: bool,
    file_id: i64,
    /// [`identity`] of the attached file, taken right after attaching it.
    identity: Option<(u64, u64)>,
    /// [`Options::index_interval`].
    interval: Duration,
}

/// What one indexer transaction did.
enum Step {
    /// Nothing to apply; the index is here.
    Idle(Progress),
    /// Committed; the index is now here.
    Applied(Progress),
    /// Another store's indexer applied the same events first; nothing was written. The
    /// index is here.
    Overtaken(Progress),
    /// The database has fewer events than the index has seen: it was replaced under the
    /// running store. Nothing was applied; the file must be rebuilt.
    Diverged,
}

impl Indexer {
    /// An indexer of the database at `db`, its search file not attached yet.
    fn new(db: &Path, options: &Options) -> Result<Self> {
        let conn = open_helper(db, options)?;
        let store_id: String = conn
            .query_row(
                "SELECT value FROM store_meta WHERE key = 'store_id'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| in_file(db, crate::error::map(e)))?;
        let file = search_path(db);
        let uri = file_uri(&file, "");
        if uri.is_none() {
            tracing::warn!(
                file = %file.display(),
                "chat-sqlite: the search file's path is not UTF-8; searches read bodies"
            );
        }
        Ok(Self {
            conn,
            db: db.to_path_buf(),
            busy_timeout: options.busy_timeout,
            file,
            uri,
            store_id,
            cache_kib: options.writer_cache_kib,
            attached: false,
            file_id: 0,
            identity: None,
            interval: options.index_interval,
        })
    }

    fn attach(&mut self) -> std::result::Result<(), Failure> {
        let uri = self
            .uri
            .clone()
            .ok_or_else(|| Failure::other("the search file's path is not UTF-8"))?;
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

    fn detach(&mut self) {
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
    fn moved(&self) -> bool {
        self.attached && identity(&self.file) != self.identity
    }

    /// Attaches the search file, checks it and if need be makes a new one; publishes its
    /// `file_id` for the readers. On failure the file is left detached, so that the next
    /// pass opens it again.
    fn open_file(&mut self, shared: &Shared) -> std::result::Result<(), Failure> {
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

    /// Runs one pass: reads what to change from one snapshot of the database, then applies
    /// it to the search file in a transaction of its own, with the new state. The database
    /// snapshot is let go before the index is written (FTS work is the slow part): a reader
    /// of the database holds back checkpoints while it reads.
    fn step(&mut self) -> rusqlite::Result<Step> {
        match self.read_work()? {
            Read::Work(work) => self.apply(work),
            Read::Idle(progress) => Ok(Step::Idle(progress)),
            Read::Diverged => Ok(Step::Diverged),
        }
    }

    /// Applies what [`read_work`](Self::read_work) read, unless the state has moved since.
    fn apply(&mut self, work: Work) -> rusqlite::Result<Step> {
        let Work {
            from,
            newest,
            changes,
            to,
        } = work;
        let tx = self.conn.unchecked_transaction()?;
        // Another store's indexer, in this process or another, may follow the same file
        // and have read the same events. The write lock is taken first (a write as the
        // transaction's first statement waits for it, up to the busy timeout), then the
        // state compared with the one the work starts from: the indexer that comes second
        // finds the state moved and drops its work, rather than apply events again from an
        // older reading and take the watermark back. Reading the state first would be as
        // safe but fail instead of wait: SQLite refuses at once to upgrade a read
        // transaction when another connection writes or has written since, which cost a
        // failed pass, a warning and a second's pause.
        tx.prepare_cached("UPDATE search.search_state SET id = id WHERE id = 1")?
            .execute([])?;
        let now = read_state(&tx)?.position();
        if now != from {
            return Ok(Step::Overtaken(now.progress()));
        }
        for change in &changes {
            match change {
                Change::Put {
                    pk,
                    conversation,
                    body,
                } => {
                    remove(&tx, *pk)?;
                    add(&tx, *pk, conversation, body)?;
                }
                Change::Remove { pk } => remove(&tx, *pk)?,
                Change::RemoveConversation { conversation } => {
                    remove_conversation(&tx, conversation)?
                }
            }
        }
        match &to {
            Position::Rebuilding { rebuilt_to, .. } => tx
                .prepare_cached(
                    "UPDATE search.search_state SET rebuilt_to = ?1, horizon = max(horizon, ?2) \
                     WHERE id = 1",
                )?
                .execute(params![rebuilt_to, newest])?,
            Position::Indexed { watermark, mark } => tx
                .prepare_cached(
                    "UPDATE search.search_state SET watermark = ?1, horizon = max(horizon, ?2), \
                     mark_tenant = ?3, mark_seq = ?4, rebuilt_to = NULL WHERE id = 1",
                )?
                .execute(params![watermark, newest, mark.0, mark.1])?,
        };
        tx.commit()?;
        Ok(Step::Applied(to.progress()))
    }

    /// What the next pass should change, read in one read transaction of both files.
    fn read_work(&mut self) -> rusqlite::Result<Read> {
        let tx = self.conn.unchecked_transaction()?;
        let state = read_state(&tx)?;
        let newest: i64 = tx
            .prepare_cached("SELECT coalesce(max(rowid), 0) FROM main.events")?
            .query_row([], |row| row.get(0))?;
        if newest < state.horizon {
            return Ok(Read::Diverged);
        }
        let from = state.position();
        let (changes, to) = match &from {
            Position::Rebuilding {
                watermark,
                mark,
                rebuilt_to,
            } => {
                let (changes, rebuilt_to) = rebuild_chunk(&tx, rebuilt_to.unwrap_or(0))?;
                let to = match rebuilt_to {
                    Some(pk) => Position::Rebuilding {
                        watermark: *watermark,
                        mark: mark.clone(),
                        rebuilt_to: Some(pk),
                    },
                    // Every message copied: the events after the watermark come next.
                    None => Position::Indexed {
                        watermark: *watermark,
                        mark: mark.clone(),
                    },
                };
                (changes, to)
            }
            Position::Indexed { watermark, mark } if newest > *watermark => {
                let (changes, watermark, mark) = event_changes(&tx, *watermark, mark)?;
                (changes, Position::Indexed { watermark, mark })
            }
            Position::Indexed { .. } => return Ok(Read::Idle(from.progress())),
        };
        tx.finish()?;
        Ok(Read::Work(Work {
            from,
            newest,
            changes,
            to,
        }))
    }

    /// The index as it stands (after opening, before any step).
    fn progress(&self) -> Result<Progress> {
        let (watermark, rebuilt_to): (i64, Option<i64>) = self
            .conn
            .query_row(
                "SELECT watermark, rebuilt_to FROM search.search_state WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .db()?;
        Ok(Progress::at(rebuilt_to.is_none(), watermark))
    }

    /// Replaces the search file with a new one due for a rebuild, and tells the readers.
    fn rebuild(&mut self, shared: &Shared, why: &str) -> std::result::Result<(), Failure> {
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
    fn sound(&self) -> Result<bool> {
        let mut stmt = self.conn.prepare("PRAGMA search.quick_check").db()?;
        let findings = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .db()?
            .collect::<rusqlite::Result<Vec<_>>>();
        match findings {
            Ok(lines) => Ok(lines == ["ok"]),
            Err(e) if is_damage(&e) => Ok(false),
            Err(e) => Err(crate::error::map(e)),
        }
    }
}

/// Errors that say another connection holds a lock: the indexer is held up, not stuck.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Errors that say the file is damaged, as opposed to busy or out of space.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// The `search_state` row.
struct State {
    watermark: i64,
    horizon: i64,
    mark: (Option<Vec<u8>>, Option<i64>),
    rebuilt_to: Option<i64>,
}

impl State {
    fn position(&self) -> Position {
        match self.rebuilt_to {
            // `rebuilt_to` 0: nothing copied yet.
            Some(pk) => Position::Rebuilding {
                watermark: self.watermark,
                mark: self.mark.clone(),
                rebuilt_to: (pk > 0).then_some(pk),
            },
            None => Position::Indexed {
                watermark: self.watermark,
                mark: self.mark.clone(),
            },
        }
    }
}

fn read_state(tx: &Transaction<'_>) -> rusqlite::Result<State> {
    tx.prepare_cached(
        "SELECT watermark, horizon, mark_tenant, mark_seq, rebuilt_to FROM search.search_state \
         WHERE id = 1",
    )?
    .query_row([], |row| {
        Ok(State {
            watermark: row.get(0)?,
            horizon: row.get(1)?,
            mark: (row.get(2)?, row.get(3)?),
            rebuilt_to: row.get(4)?,
        })
    })
}

/// Where the index is: copying messages (up to `rebuilt_to`, due to replay the events
/// after `watermark` next), or applying events (up to `watermark`). `mark` is the
/// `(tenant, seq)` of the event at the watermark.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Position {
    Rebuilding {
        watermark: i64,
        mark: (Option<Vec<u8>>, Option<i64>),
        rebuilt_to: Option<i64>,
    },
    Indexed {
        watermark: i64,
        mark: (Option<Vec<u8>>, Option<i64>),
    },
}

impl Position {
    fn progress(&self) -> Progress {
        match self {
            Position::Rebuilding { watermark, .. } => Progress::at(false, *watermark),
            Position::Indexed { watermark, .. } => Progress::at(true, *watermark),
        }
    }
}

/// One change to the index, in the order the log had them.
enum Change {
    /// The message at `pk` now reads `body` (whatever was indexed at `pk` goes).
    Put {
        pk: i64,
        conversation: Vec<u8>,
        body: String,
    },
    /// The message at `pk` is deleted.
    Remove { pk: i64 },
    /// The conversation and its messages are gone.
    RemoveConversation { conversation: Vec<u8> },
}

/// A pass's reading: the changes, and the position they take the index from and to.
struct Work {
    from: Position,
    /// The newest event of the snapshot the changes were read from: the new horizon.
    newest: i64,
    changes: Vec<Change>,
    to: Position,
}

enum Read {
    Work(Work),
    /// Nothing to apply; the index is here.
    Idle(Progress),
    /// The database has fewer events than the index has seen.
    Diverged,
}

/// The next [`REBUILD_CHUNK`] messages after `pk`, and the last `pk` read (`None` once
/// every message has been read).
fn rebuild_chunk(tx: &Transaction<'_>, after: i64) -> rusqlite::Result<(Vec<Change>, Option<i64>)> {
    let mut stmt = tx.prepare_cached(
        "SELECT pk, conversation_id, body FROM main.messages \
         WHERE pk > ?1 AND deleted_at IS NULL ORDER BY pk LIMIT +?2",
    )?;
    let mut found = stmt.query(params![after, REBUILD_CHUNK])?;
    let mut changes = Vec::new();
    let mut last = None;
    while let Some(row) = found.next()? {
        let pk = row.get(0)?;
        last = Some(pk);
        changes.push(Change::Put {
            pk,
            conversation: row.get(1)?,
            body: row.get(2)?,
        });
    }
    let more = changes.len() as i64 == REBUILD_CHUNK;
    Ok((changes, if more { last } else { None }))
}

/// The changes the events after `watermark` (up to [`EVENT_BATCH`]) ask for, with the
/// rowid and `(tenant, seq)` of the last of them.
#[allow(clippy::type_complexity)]
fn event_changes(
    tx: &Transaction<'_>,
    watermark: i64,
    mark: &(Option<Vec<u8>>, Option<i64>),
) -> rusqlite::Result<(Vec<Change>, i64, (Option<Vec<u8>>, Option<i64>))> {
    struct Row {
        rowid: i64,
        tenant: Vec<u8>,
        seq: i64,
        conversation: Option<Vec<u8>>,
        kind: Option<String>,
        message: Option<String>,
    }
    let mut rows = Vec::new();
    {
        // Only the payload's type and message id are needed; SQLite parses the JSON once
        // per row for both.
        let mut stmt = tx.prepare_cached(
            "SELECT rowid, tenant_id, seq, conversation_id, data ->> '$.payload.type', \
             data ->> '$.payload.message.id' FROM main.events WHERE rowid > ?1 ORDER BY rowid LIMIT +?2",
        )?;
        let mut found = stmt.query(params![watermark, EVENT_BATCH])?;
        while let Some(row) = found.next()? {
            rows.push(Row {
                rowid: row.get(0)?,
                tenant: row.get(1)?,
                seq: row.get(2)?,
                conversation: row.get(3)?,
                kind: row.get(4)?,
                message: row.get(5)?,
            });
        }
    }
    // Each message is read as it is in this snapshot, so one read per message is enough
    // however many events it has in the batch.
    let mut done: HashSet<uuid::Uuid> = HashSet::new();
    let mut changes = Vec::new();
    let mut message = tx.prepare_cached(
        "SELECT pk, conversation_id, body, deleted_at IS NOT NULL FROM main.messages WHERE id = ?1",
    )?;
    for row in &rows {
        match row.kind.as_deref() {
            Some("message_created" | "message_updated") => {
                let Some(id) = row
                    .message
                    .as_deref()
                    .and_then(|id| id.parse::<uuid::Uuid>().ok())
                else {
                    continue;
                };
                if !done.insert(id) {
                    continue;
                }
                let found: Option<(i64, Vec<u8>, String, bool)> = message
                    .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()?;
                // Gone: its conversation was deleted later in the log, and that event
                // removes its entry.
                match found {
                    Some((pk, conversation, body, false)) => changes.push(Change::Put {
                        pk,
                        conversation,
                        body,
                    }),
                    Some((pk, _, _, true)) => changes.push(Change::Remove { pk }),
                    None => {}
                }
            }
            Some("conversation_deleted") => {
                if let Some(conversation) = &row.conversation {
                    changes.push(Change::RemoveConversation {
                        conversation: conversation.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(match rows.last() {
        Some(last) => (
            changes,
            last.rowid,
            (Some(last.tenant.clone()), Some(last.seq)),
        ),
        None => (changes, watermark, mark.clone()),
    })
}

fn remove(tx: &Transaction<'_>, pk: i64) -> rusqlite::Result<()> {
    let was_indexed = tx
        .prepare_cached("DELETE FROM search.search_rows WHERE pk = ?1")?
        .execute([pk])?
        > 0;
    if was_indexed {
        tx.prepare_cached("DELETE FROM search.message_search WHERE rowid = ?1")?
            .execute([pk])?;
    }
    Ok(())
}

fn add(tx: &Transaction<'_>, pk: i64, conversation: &[u8], body: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO search.message_search (rowid, body) VALUES (?1, ?2)")?
        .execute(params![pk, body])?;
    tx.prepare_cached("INSERT INTO search.search_rows (pk, conversation_id) VALUES (?1, ?2)")?
        .execute(params![pk, conversation])?;
    Ok(())
}

/// A deleted conversation took its messages along: drops their entries.
fn remove_conversation(tx: &Transaction<'_>, conversation: &[u8]) -> rusqlite::Result<()> {
    let pks: Vec<i64> = tx
        .prepare_cached("SELECT pk FROM search.search_rows WHERE conversation_id = ?1")?
        .query_map([conversation], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = tx.prepare_cached("DELETE FROM search.message_search WHERE rowid = ?1")?;
    for pk in pks {
        delete.execute([pk])?;
    }
    tx.prepare_cached("DELETE FROM search.search_rows WHERE conversation_id = ?1")?
        .execute([conversation])?;
    Ok(())
}

/// Publishes where the index is. `through` says a pass got through, which ends a stuck
/// report; otherwise (a position read at the start of a pass) the report stands.
fn publish(progress: &watch::Sender<Progress>, at: Progress, through: bool) {
    progress.send_if_modified(|old| {
        let new = Progress {
            stuck: if through { None } else { old.stuck.clone() },
            failures: old.failures,
            ..at
        };
        let changed = *old != new;
        *old = new;
        changed
    });
}

/// The indexer thread: works until there is nothing to apply, then waits for a commit,
/// a reader's report or the [`TICK`]. `first` is how opening the file at start-up failed.
fn run(
    mut ix: Indexer,
    shared: &Shared,
    progress: &watch::Sender<Progress>,
    first: Option<Failure>,
) {
    let mut seen = 0;
    // A file found usable at open is checked once, off the open path: a damaged page
    // elsewhere than the header and the state shows only when something reads it.
    let mut verify = ix.attached;
    let mut checked_at: Option<Instant> = None;
    // The search file's log has pages an idle TRUNCATE should clear.
    let mut dirty = false;
    // The first pass after opening runs at once; the next ones wait for their interval.
    let mut passed = false;
    // Passes in a row that failed other than on a lock.
    let mut failing: u32 = first.is_some_and(|f| !f.busy).into();
    loop {
        // A pass per commit would cost a transaction (and a short FTS segment to merge
        // later) per commit when commits are small; and a pass right on a commit competes
        // with the fan-out of that commit, so it waits a whole interval from the wake.
        if passed && shared.pause(Instant::now() + ix.interval) {
            return;
        }
        let mut failed: Option<Failure> = None;
        if verify {
            verify = false;
            checked_at = Some(Instant::now());
            match ix.sound() {
                Ok(true) => {}
                Ok(false) => failed = ix.rebuild(shared, "the search file is damaged").err(),
                Err(e) => tracing::warn!(error = %e, "chat-sqlite: cannot check the search file"),
            }
        }
        if failed.is_none() && ix.moved() {
            tracing::warn!(
                file = %ix.file.display(),
                "chat-sqlite: the search file was deleted or replaced while in use; opening the one at its path"
            );
            ix.detach();
        }
        if failed.is_none() && !ix.attached {
            failed = ix.open_file(shared).err();
        }
        if ix.attached {
            if let Ok(p) = ix.progress() {
                publish(progress, p, false);
            }
        }
        passed = true;
        while ix.attached && failed.is_none() {
            if shared.stopping() {
                return;
            }
            match ix.step() {
                Ok(Step::Idle(p)) => {
                    failing = 0;
                    publish(progress, p, true);
                    break;
                }
                Ok(Step::Applied(p)) => {
                    failing = 0;
                    dirty = true;
                    publish(progress, p, true);
                }
                Ok(Step::Overtaken(p)) => {
                    failing = 0;
                    publish(progress, p, true);
                }
                Ok(Step::Diverged) => {
                    failed = ix
                        .rebuild(
                            shared,
                            "the database has fewer events than the index has seen",
                        )
                        .err();
                }
                Err(e) => failed = Some(Failure::from(e)),
            }
        }
        if let Some(failure) = failed {
            if failure.busy {
                tracing::debug!(
                    error = %failure.cause,
                    "chat-sqlite: search indexing held up by another connection's lock; retrying"
                );
            } else {
                failing += 1;
                tracing::warn!(
                    file = %ix.file.display(),
                    error = %failure.cause,
                    "chat-sqlite: search indexing failed; searches read bodies; retrying"
                );
                if failure.damage && ix.attached {
                    // The check tells whether the damage is the search file's (rebuilt) or
                    // the database's (nothing the index can do about it).
                    verify = true;
                } else {
                    // Opened again, the file is checked, and made anew if it has to be.
                    ix.detach();
                }
                progress.send_modify(|p| {
                    p.failures += 1;
                    if failing >= STUCK_AFTER {
                        p.stuck = Some(failure.cause.into());
                    }
                });
            }
            if shared.pause(Instant::now() + RETRY) {
                return;
            }
            continue;
        }
        let (ticked, suspect) = {
            let mut wake = shared.lock();
            let tick_at = Instant::now() + TICK;
            while !wake.stop && wake.commits == seen && !wake.suspect {
                let now = Instant::now();
                if now >= tick_at {
                    break;
                }
                wake = shared
                    .cond
                    .wait_timeout(wake, tick_at - now)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
            if wake.stop {
                return;
            }
            let ticked = wake.commits == seen && !wake.suspect;
            seen = wake.commits;
            (ticked, std::mem::take(&mut wake.suspect))
        };
        if suspect && checked_at.is_none_or(|at| at.elapsed() >= RECHECK) {
            verify = true;
        }
        if ticked && dirty && ix.attached {
            // Quiet: fold the search file's log back into it and cut it to nothing.
            if let Ok((false, _, _)) = checkpoint(&ix.conn, "search", "TRUNCATE") {
                dirty = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chat_core::store::{ConversationQuery, Scope};
    use chat_core::{
        Contact, ContactId, Conversation, ConversationId, MessageId, MessageKind, Mode, NewMessage,
        Sender, Store, Tenant, TenantId, TenantSettings,
    };
    use rusqlite::Connection;
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::{Indexer, Progress, Read, Shared, Step, WordIndex, search_path, word_index};
    use crate::{Options, SqliteStore, list};

    /// A reader connection as the pool makes them (`query_only`) moves to a new search
    /// file when the indexer has replaced the one it attached.
    #[test]
    fn readers_follow_a_replaced_search_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let store = SqliteStore::open(&path).unwrap();
        let shared = store.search.shared();
        let reader = Connection::open(&path).unwrap();
        crate::connection::configure(&reader, &Options::default()).unwrap();
        shared.attach_reader(&reader);
        reader.execute_batch("PRAGMA query_only = ON").unwrap();
        let attached = |conn: &Connection| -> i64 {
            conn.query_row("SELECT file_id FROM search.search_state", [], |r| r.get(0))
                .unwrap()
        };
        let first = attached(&reader);
        assert_eq!(
            first,
            shared.file_id.load(std::sync::atomic::Ordering::Acquire)
        );

        // What the indexer does with a damaged file, done here by hand: a new file, under
        // the same name, with a new id.
        drop(store);
        std::fs::remove_file(search_path(&path)).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        let shared = store.search.shared();
        let second = shared.file_id.load(std::sync::atomic::Ordering::Acquire);
        assert_ne!(second, first);
        assert_eq!(attached(&reader), first, "still on the old file");
        shared.attach_reader(&reader);
        assert_eq!(attached(&reader), second);
    }

    /// A tenant, a contact and a conversation of theirs.
    async fn conversation(store: &SqliteStore) -> Conversation {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let tenant = TenantId(Uuid::from_u128(1));
        store
            .insert_tenant(&Tenant {
                id: tenant,
                name: "T".into(),
                settings: TenantSettings::default(),
                created_at: now,
            })
            .await
            .unwrap();
        let contact = ContactId(Uuid::from_u128(2));
        store
            .insert_contact(&Contact {
                id: contact,
                tenant_id: tenant,
                name: None,
                email: None,
                email_verified: false,
                phone: None,
                address: None,
                external_id: None,
                metadata: BTreeMap::new(),
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        let c = Conversation::new(
            ConversationId(Uuid::from_u128(3)),
            tenant,
            contact,
            Mode::Bot,
            now,
        );
        store.create_conversation(&c, vec![]).await.unwrap();
        c
    }

    async fn post(
        store: &SqliteStore,
        c: &Conversation,
        n: u128,
        body: &str,
    ) -> chat_core::Message {
        store
            .append_message(NewMessage {
                id: MessageId(Uuid::from_u128(n)),
                tenant_id: c.tenant_id,
                conversation_id: c.id,
                sender: Sender::Customer,
                kind: MessageKind::Text,
                body: body.into(),
                attachments: Vec::new(),
                reply_to: None,
                client_message_id: None,
                entities: Vec::new(),
                metadata: BTreeMap::new(),
                created_at: c.created_at,
            })
            .await
            .unwrap()
            .message
    }

    /// A store whose own indexer has caught up with an empty log and stopped, so that
    /// what the test runs is the only indexing.
    async fn store_without_indexer() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store.wait_for_search_index().await.unwrap();
        stop_indexer(&mut store);
        (dir, path, store)
    }

    /// Stops and joins the store's indexer thread, as dropping the store does.
    fn stop_indexer(store: &mut SqliteStore) {
        store.search.shared.lock().stop = true;
        store.search.shared.cond.notify_all();
        store.search.thread.take().unwrap().join().unwrap();
    }

    fn newest_event(path: &std::path::Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT max(rowid) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    /// A wait on an indexer thread that has stopped fails, naming the search file, rather
    /// than waiting for progress that cannot come.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wait_on_a_stopped_indexer_fails() {
        let (_dir, path, store) = store_without_indexer().await;
        // Events the stopped indexer will never apply.
        conversation(&store).await;

        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            store.wait_for_search_index(),
        )
        .await
        .expect("the wait hung on a stopped indexer");
        let Err(chat_core::Error::Storage(message)) = outcome else {
            panic!("expected Error::Storage, got {outcome:?}");
        };
        let file = search_path(&path).display().to_string();
        assert!(
            message.contains(&file) && message.contains("stopped"),
            "{message}"
        );
    }

    /// Two indexers on one search file (two stores, or two processes) that have read the
    /// same events: the one that applies second finds the state moved and drops its work,
    /// instead of applying its older reading again and taking the watermark back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_indexer_overtaken_by_another_drops_its_work() {
        let (_dir, path, store) = store_without_indexer().await;
        // Only the two indexers below write the file.
        let c = conversation(&store).await;
        post(&store, &c, 10, "alpha").await;
        let options = Options::default();
        let (first, second) = (Shared::new(None, 0), Shared::new(None, 0));
        let mut a = Indexer::new(&path, &options).unwrap();
        let mut b = Indexer::new(&path, &options).unwrap();
        a.open_file(&first).unwrap();
        b.open_file(&second).unwrap();
        while !matches!(a.step().unwrap(), Step::Idle(_)) {}

        post(&store, &c, 11, "bravo").await;
        let Read::Work(stale) = b.read_work().unwrap() else {
            panic!("b found nothing to do");
        };
        post(&store, &c, 12, "charlie").await;
        let newest = newest_event(&path);
        let Step::Applied(applied) = a.step().unwrap() else {
            panic!("a applied nothing");
        };
        assert_eq!(applied.watermark, newest);

        match b.apply(stale).unwrap() {
            Step::Overtaken(found) => assert_eq!(found.watermark, newest),
            _ => panic!("the stale work was applied"),
        }
        assert_eq!(b.progress().unwrap(), Progress::at(true, newest));
        let indexed: i64 = a
            .conn
            .query_row("SELECT count(*) FROM search.search_rows", [], |r| r.get(0))
            .unwrap();
        assert_eq!(indexed, 3);
    }

    /// An indexer that finds another connection writing the search file (with two stores
    /// on one file, the other's indexer often is) waits for it, up to the busy timeout,
    /// and then applies its work, rather than failing the pass.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_indexer_waits_for_another_writer_of_the_search_file() {
        let (_dir, path, store) = store_without_indexer().await;
        let c = conversation(&store).await;
        post(&store, &c, 10, "alpha").await;
        let mut a = Indexer::new(&path, &Options::default()).unwrap();
        a.open_file(&Shared::new(None, 0)).unwrap();
        let Read::Work(work) = a.read_work().unwrap() else {
            panic!("nothing to do");
        };

        let holder = Connection::open(search_path(&path)).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let hold = std::time::Duration::from_millis(300);
        let release = std::thread::spawn(move || {
            std::thread::sleep(hold);
            holder.execute_batch("COMMIT").unwrap();
        });
        let started = std::time::Instant::now();
        let step = a.apply(work);
        let waited = started.elapsed();
        release.join().unwrap();
        assert!(
            matches!(step, Ok(Step::Applied(_))),
            "the pass did not apply its work: {:?}",
            step.err()
        );
        assert!(
            waited >= hold / 2,
            "applied after {waited:?} without waiting"
        );
        assert_eq!(
            a.progress().unwrap(),
            Progress::at(true, newest_event(&path))
        );
    }

    /// The edit race: a reader whose database snapshot is older than the index. The
    /// index already holds the edited body ("banana") while the reader's snapshot still
    /// shows the old one ("apple"), and the conversation has no event after the watermark
    /// in that snapshot. Searching through the index would miss the message; the horizon
    /// check sends the search to the bodies instead.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_index_newer_than_the_database_snapshot_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let store = SqliteStore::open(&path).unwrap();
        let c = conversation(&store).await;
        let (tenant, now) = (c.tenant_id, c.created_at);
        let posted = post(&store, &c, 4, "an apple pie").await;
        store.wait_for_search_index().await.unwrap();

        // A reader as the pool has them, whose database snapshot predates the edit.
        let reader = Connection::open(&path).unwrap();
        crate::connection::configure(&reader, &Options::default()).unwrap();
        reader
            .execute(
                "ATTACH DATABASE ?1 AS search",
                [search_path(&path).to_str().unwrap()],
            )
            .unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM main.messages", [], |r| r.get(0))
            .unwrap();

        let mut edited = posted.clone();
        edited.body = "a banana split".into();
        edited.edited_at = Some(now);
        store.update_message(&edited).await.unwrap();
        store.wait_for_search_index().await.unwrap();

        let q = ConversationQuery {
            text: Some(" apple".into()),
            ..ConversationQuery::new(tenant, Scope::Tenant)
        };
        let index = word_index(&reader);
        assert_eq!(
            index,
            WordIndex::Scan,
            "the index is newer than the snapshot"
        );
        let found = list::list_conversations(&reader, &q, index).unwrap();
        assert_eq!(found.items.len(), 1, "the snapshot shows \"an apple pie\"");
        // What the index alone would have said.
        let watermark: i64 = reader
            .query_row("SELECT watermark FROM search.search_state", [], |r| {
                r.get(0)
            })
            .unwrap();
        let through_index =
            list::list_conversations(&reader, &q, WordIndex::Since { watermark }).unwrap();
        assert!(through_index.items.is_empty());
        reader.execute_batch("COMMIT").unwrap();
    }
}
