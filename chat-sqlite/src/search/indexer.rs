//! The indexer thread: one connection, a pass after each commit (at most one per
//! interval) and on a timer, and what it does when a pass fails.
//!
//! # The indexer
//!
//! One thread with one connection: the database as `main` (only read) and the search file
//! attached as `search`. The writer wakes it after a commit; it then gathers commits for
//! at least [`Options::index_interval`], and until [`FLUSH_OPERATIONS`] operations have
//! been committed or [`FLUSH_AFTER`] has passed (a waiter for the index cuts that short);
//! and a timer wakes it every [`TICK`].
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
//!
//! [`EVENT_BATCH`]: crate::search::pass::EVENT_BATCH
//! [`REBUILD_CHUNK`]: crate::search::pass::REBUILD_CHUNK

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chat_core::{Error, Result};
use rusqlite::{Connection, ErrorCode};
use tokio::sync::watch;

use super::known::KnownWords;
use super::{Progress, Shared, search_path};
use crate::checkpoint::checkpoint;
use crate::connection::{file_uri, in_file, open_helper};
use crate::error::Db;
use crate::options::Options;

/// What one indexer transaction did.
pub(super) enum Step {
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

/// The indexer looks for new events this often even if nobody wakes it (another process
/// may write the database), and truncates its log once it finds nothing to do.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// Operations committed (about one event each) after which a pass is worth its cost. Each
/// pass ends in FTS5 flushing its pending terms as a new segment, and each new segment
/// brings merges of the ones before it: a pass is cheap per event only when it applies
/// many. Measured with `post_cost` (posts one after the other, the worst case): a pass
/// every 50 ms cost about 204,000 instructions per post, a pass per second or per 256
/// operations (see the chat-server README for the figures).
pub(crate) const FLUSH_OPERATIONS: u64 = 256;
/// The longest a commit's events wait for their pass when fewer than
/// [`FLUSH_OPERATIONS`] come. Searches do not wait for it (they read the bodies of the
/// messages the index has not applied, at most this long's or [`FLUSH_OPERATIONS`]'
/// worth), and [`SqliteStore::wait_for_search_index`](crate::SqliteStore::wait_for_search_index)
/// cuts it short.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_secs(1);
/// After an error the indexer waits this long before it tries again.
const RETRY: Duration = Duration::from_secs(1);
/// A reader's report of a failed search makes the indexer check the file at most this
/// often.
const RECHECK: Duration = Duration::from_secs(10);
/// Failed passes in a row after which the indexer is reported stuck. The first failure
/// gets a remedy (the file is checked and rebuilt if damaged, or opened again: it may have
/// been replaced); only if the pass after it fails too is there something an operator has
/// to see to.
pub(super) const STUCK_AFTER: u32 = 2;

/// Why a pass of the indexer did not get through.
#[derive(Debug)]
pub(super) struct Failure {
    /// Another connection held a lock past the busy timeout: the indexer is held up, not
    /// stuck.
    pub(super) busy: bool,
    /// A file is damaged: the search file is checked (and rebuilt) before the next try.
    pub(super) damage: bool,
    pub(super) cause: String,
}

impl Failure {
    pub(super) fn busy(cause: String) -> Self {
        Self {
            busy: true,
            damage: false,
            cause,
        }
    }

    pub(super) fn other(cause: impl Into<String>) -> Self {
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
pub(super) fn describe(e: Error) -> String {
    match e {
        Error::Storage(failure) => failure.message().to_owned(),
        other => other.to_string(),
    }
}

/// The indexer's connection and what it knows about the attached file.
pub(super) struct Indexer {
    pub(super) conn: Connection,
    /// The database, for [`making_lock`](Self::making_lock).
    pub(super) db: PathBuf,
    pub(super) busy_timeout: Duration,
    pub(super) file: PathBuf,
    /// Read-write `file:` URI of the search file; `None` if it cannot be expressed.
    pub(super) uri: Option<String>,
    /// `store_meta.store_id` of the database.
    pub(super) store_id: String,
    pub(super) cache_kib: u64,
    pub(super) attached: bool,
    pub(super) file_id: i64,
    /// [`identity`](super::file::identity) of the attached file, taken right after attaching it.
    pub(super) identity: Option<(u64, u64)>,
    /// [`Options::index_interval`].
    pub(super) interval: Duration,
    /// What the attached file is known to hold of each conversation's words.
    pub(super) known: KnownWords,
}

impl Indexer {
    /// An indexer of the database at `db`, its search file not attached yet.
    pub(super) fn new(db: &Path, options: &Options) -> Result<Self> {
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
            known: KnownWords::default(),
        })
    }

    /// The index as it stands (after opening, before any step).
    pub(super) fn progress(&self) -> Result<Progress> {
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
}

impl Drop for Indexer {
    /// Folds the search file's log back into it and empties it as the store closes, so
    /// the file is whole on its own (a copy, a check or a damage test sees all of it)
    /// whichever connection to it closes last: a read-only reader closing last leaves the
    /// log as it is. It does not wait: another process's reader keeps the log for later.
    fn drop(&mut self) {
        if self.attached {
            let _ = self.conn.busy_timeout(Duration::ZERO);
            let _ = checkpoint(&self.conn, "search", "TRUNCATE");
        }
    }
}

/// Errors that say another connection holds a lock: the indexer is held up, not stuck.
pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Errors that say the file is damaged, as opposed to busy or out of space.
pub(super) fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
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
pub(super) fn run(
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
    // The first pass after opening runs at once; one woken by a commit gathers first.
    let mut gather = false;
    // Passes in a row that failed other than on a lock.
    let mut failing: u32 = first.is_some_and(|f| !f.busy).into();
    loop {
        // A pass per commit would cost a transaction (and a short FTS segment to merge
        // later) per commit when commits are small; and a pass right on a commit competes
        // with the fan-out of that commit, so it waits at least a whole interval from the
        // wake, and then until enough has been committed (or a waiter hurries it).
        if std::mem::take(&mut gather) && shared.gather(ix.interval) {
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
        if ix.attached
            && let Ok(p) = ix.progress()
        {
            publish(progress, p, false);
        }
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
            wake.waiting = true;
            while !wake.stop && wake.commits == seen && !wake.suspect && !wake.hurry {
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
            wake.waiting = false;
            if wake.stop {
                return;
            }
            let ticked = wake.commits == seen && !wake.suspect && !wake.hurry;
            seen = wake.commits;
            (ticked, std::mem::take(&mut wake.suspect))
        };
        // Woken by a commit (or a waiter, whose hurry the gathering takes at once). A
        // tick's pass (another process's commits) or a suspect's check goes at once.
        gather = !ticked && !suspect;
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
