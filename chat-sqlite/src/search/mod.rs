//! Full-text search in a file of its own (`<database>-search`), kept by an indexer thread
//! that follows the event log.
//!
//! - [`file`](mod@file): the search file: its layout, and opening, checking, making and
//!   replacing it.
//! - [`indexer`]: the indexer thread, and what it does when a pass fails.
//! - [`pass`]: one pass of the indexer: what the log asks for, applied to the index.
//! - [`query`]: the readers' side: attaching the file, and when a search may use it.
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

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_core::{Error, Result};
use tokio::sync::watch;

use crate::connection::{file_uri, in_file};
use crate::options::Options;

mod file;
mod indexer;
mod known;
mod pass;
mod query;
#[cfg(test)]
mod tests;

use indexer::{Indexer, run};
pub(crate) use query::{WordIndex, word_index};

/// Bits of `search_rows.flags`: what a search needs to know of an indexed message without
/// reading its row.
pub(crate) mod flags {
    /// The message is an internal note, which customers never find.
    pub(crate) const NOTE: i64 = 1;
    /// The body has a character outside ASCII. The index folds diacritics and splits and
    /// folds words by its own Unicode tables, chat-core by Rust's, so for such a body an
    /// entry is only a candidate, checked against the row. In an ASCII body both see the
    /// same words (runs of `[0-9A-Za-z]`, lower-cased), so for a text of ASCII words, none
    /// quoted, an entry of an ASCII body is the answer itself (see `list.rs`).
    pub(crate) const NOT_ASCII: i64 = 2;

    /// The flags of a message of `kind` reading `body`.
    pub(crate) fn of(kind: &str, body: &str) -> i64 {
        let note = if kind == "note" { NOTE } else { 0 };
        let ascii = if body.is_ascii() { 0 } else { NOT_ASCII };
        note | ascii
    }
}

/// Bits of `conversation_words.kinds`: in which messages of the conversation a word is.
pub(crate) mod word_kinds {
    /// In a message that is not an internal note (what a customer may find).
    pub(crate) const MESSAGE: i64 = 1;
    /// In an internal note.
    pub(crate) const NOTE: i64 = 2;

    /// The bit of a message of `kind`.
    pub(crate) fn of(kind: &str) -> i64 {
        if kind == "note" { NOTE } else { MESSAGE }
    }
}

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
    /// Why the indexer cannot make progress: set once [`STUCK_AFTER`](indexer::STUCK_AFTER)
    /// passes in a row have failed for a reason other than another connection's lock,
    /// cleared by the next pass that gets through.
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
    /// Operations in those commits (each writes at most a few events): how much a pass
    /// would have to apply, without reading the database to find out.
    operations: u64,
    /// `operations` when the indexer last set out to apply what was committed.
    operations_applied: u64,
    /// The indexer gathers commits for its next pass (see [`indexer::FLUSH_AFTER`]): a
    /// commit that brings the gathered operations to [`indexer::FLUSH_OPERATIONS`] wakes it.
    gathering: bool,
    /// A reader's search failed on the index.
    suspect: bool,
    stop: bool,
    /// Someone waits for the index to catch up: the indexer runs its next pass without
    /// gathering more events first (see [`indexer::FLUSH_EVENTS`]).
    hurry: bool,
    /// The indexer waits for a commit (not in its interval's pause or a pass): only then
    /// does a commit need to wake it.
    waiting: bool,
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

    /// The writer committed a group of `operations`: events may follow the watermark.
    pub(crate) fn committed(&self, operations: usize) {
        let mut wake = self.lock();
        wake.commits += 1;
        wake.operations += operations as u64;
        // Under load the indexer is pausing or working when a commit comes; it counts the
        // commit when it next looks. Waking it anyway cost two context switches per
        // commit on a 2-core machine that the writer and the server share. While it
        // gathers, only the commit that makes a pass worth it wakes it.
        if wake.waiting
            || (wake.gathering
                && wake.operations - wake.operations_applied >= indexer::FLUSH_OPERATIONS)
        {
            self.cond.notify_one();
        }
    }

    /// Someone waits for the index: the next pass starts without gathering more events.
    pub(crate) fn hurry(&self) {
        self.lock().hurry = true;
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

    /// Waits, once a commit woke the indexer, until its next pass is worth its cost: at
    /// least `interval`, then until [`indexer::FLUSH_OPERATIONS`] operations have been
    /// committed since the last pass set out, or [`indexer::FLUSH_AFTER`] has passed, or
    /// someone waits for the index ([`hurry`](Self::hurry)). `true` if told to stop.
    fn gather(&self, interval: Duration) -> bool {
        let started = Instant::now();
        let earliest = started + interval;
        let latest = started + indexer::FLUSH_AFTER.max(interval);
        let mut wake = self.lock();
        wake.gathering = true;
        loop {
            if wake.stop {
                wake.gathering = false;
                return true;
            }
            if std::mem::take(&mut wake.hurry) {
                break;
            }
            let now = Instant::now();
            let enough = wake.operations - wake.operations_applied >= indexer::FLUSH_OPERATIONS;
            if now >= latest || (enough && now >= earliest) {
                break;
            }
            let until = if enough { earliest } else { latest };
            wake = self
                .cond
                .wait_timeout(wake, until - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        wake.gathering = false;
        // The pass that follows reads every commit counted so far.
        wake.operations_applied = wake.operations;
        false
    }
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
            .map_err(|e| {
                Error::storage_kind(
                    chat_core::StorageKind::Unavailable,
                    format!("cannot start the search indexer: {e}"),
                )
            })?;
        Ok(Self {
            shared,
            file,
            progress,
            thread: Some(thread),
        })
    }

    /// The last `events` rowid the index has applied (0 before the first pass): events
    /// from there on are still to be read by the indexer.
    pub(crate) fn watermark(&self) -> i64 {
        self.progress.borrow().watermark
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
        self.shared.hurry();
        let caught_up = |p: &Progress| p.ready && p.watermark >= target;
        let stuck = progress
            .wait_for(|p| caught_up(p) || (p.stuck.is_some() && p.failures > failures))
            .await
            .map(|p| if caught_up(&p) { None } else { p.stuck.clone() })
            .map_err(|_| {
                in_file(
                    &self.file,
                    Error::storage_kind(
                        chat_core::StorageKind::Unavailable,
                        "the search indexer has stopped",
                    ),
                )
            })?;
        match stuck {
            None => Ok(()),
            Some(cause) => Err(in_file(
                &self.file,
                Error::storage_kind(
                    chat_core::StorageKind::Unavailable,
                    format!(
                        "the search index cannot catch up (searches read message bodies meanwhile; \
                     the indexer tries again every second): {cause}"
                    ),
                ),
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
