//! WAL checkpoints on their own thread, off the writer's commit path.
//!
//! With SQLite's automatic checkpoint, the commit that takes the log past 1000 pages also
//! copies the log into the database and fsyncs it, on the writer thread, before the writer
//! can answer the callers of that group: a few milliseconds added to one commit in every
//! few, which is most of the commit latency's p99. Here the writer runs with
//! `wal_autocheckpoint = 0` and tells this thread after each commit; the thread runs a
//! `PASSIVE` checkpoint (it copies what it can without waiting for anyone)
//! [`Options::checkpoint_interval`](crate::Options::checkpoint_interval) after a commit
//! wakes it (not on the commit: that is when the server fans the message out), and a
//! `TRUNCATE` once commits have stopped for [`IDLE`].
//!
//! A checkpoint that runs beside the writer never catches up with it: the writer has begun
//! its next transaction before the copy ends, so the log is never found fully copied at the
//! start of a transaction, which is the only moment SQLite starts it over. Left alone the
//! log would grow as long as the writes continue. So when a pass finds the log at
//! [`Options::wal_restart_pages`](crate::Options::wal_restart_pages) or more, it asks the
//! writer (see [`Shared::restart_if_asked`]) to run one `PASSIVE` checkpoint itself between
//! two transactions: that copies only what was committed since this thread's pass, and the
//! writer's next transaction then starts the log over (unless a reader still reads an older
//! snapshot from it; the request then comes again with the next pass). That checkpoint
//! stalls the writer's next group while it copies and syncs (5-25 ms measured at 256
//! posters), so before asking, the thread copies again what came in during its pass; the
//! stall is what a larger restart size makes rarer (see the crate README).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_core::{Error, Result};
use rusqlite::Connection;

/// Commits have stopped for this long: the thread truncates the log.
pub(crate) const IDLE: Duration = Duration::from_secs(1);

/// How long the idle `TRUNCATE` waits for the writer or a reader before giving up until the
/// next idle moment. While it waits holding the write lock, the writer waits too.
const TRUNCATE_PATIENCE: Duration = Duration::from_millis(50);

/// Before asking the writer to start the log over, the thread copies again (at most this
/// many times) while more than this many pages came in during its previous pass.
const MAX_CATCH_UP: usize = 4;
const CATCH_UP_PAGES: i64 = 256;

/// What the writer and the checkpoint thread share.
pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Set by a pass that found the log at the restart size; taken by the writer.
    restart: AtomicBool,
    /// Held while a checkpoint runs: SQLite lets one run at a time and a `PASSIVE` one
    /// gives up at once if another holds its lock, so the writer's would mostly fail if
    /// it did not wait for the thread's pass to end.
    running: Mutex<()>,
}

struct State {
    /// Commits the writer has reported.
    commits: u64,
    stop: bool,
    /// The thread waits for a commit (not in its interval's pause or a checkpoint): only
    /// then does a commit need to wake it.
    waiting: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writer committed a transaction.
    pub(crate) fn committed(&self) {
        let mut state = self.lock();
        state.commits += 1;
        // A commit during the pause or a pass is counted when the thread next looks;
        // waking it for nothing was a context switch per commit.
        if state.waiting {
            self.wake.notify_one();
        }
    }

    /// Whether a pass asked the writer to start the log over (see
    /// [`Shared::restart_if_asked`]); the writer takes its connection only then.
    pub(crate) fn restart_asked(&self) -> bool {
        self.restart.load(Ordering::Relaxed)
    }

    /// Run by the writer between two transactions: if a pass found the log at the restart
    /// size, copies what the thread has not, so that the writer's next transaction starts
    /// the log over (see the module documentation).
    pub(crate) fn restart_if_asked(&self, conn: &Connection) {
        if !self.restart.swap(false, Ordering::Relaxed) {
            return;
        }
        let _running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = checkpoint(conn, "main", "PASSIVE") {
            tracing::warn!(error = %e, "chat-sqlite: WAL checkpoint failed");
        }
    }

    fn checkpoint(&self, conn: &Connection, mode: &str) -> rusqlite::Result<(bool, i64, i64)> {
        let _running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        checkpoint(conn, "main", mode)
    }

    /// Waits until `until` unless told to stop first; `true` if told to stop.
    fn pause(&self, until: Instant) -> bool {
        pause_until(self.lock(), &self.wake, until, |state| state.stop)
    }
}

/// The background threads' wait (this one and the search indexer's): sleeps on `cond`
/// until `until`, waking early to check `stopped`; `true` if it returned because of it.
pub(crate) fn pause_until<T>(
    mut guard: MutexGuard<'_, T>,
    cond: &Condvar,
    until: Instant,
    stopped: impl Fn(&T) -> bool,
) -> bool {
    loop {
        if stopped(&guard) {
            return true;
        }
        let now = Instant::now();
        if now >= until {
            return false;
        }
        guard = cond
            .wait_timeout(guard, until - now)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
    }
}

/// Handle to the checkpoint thread; dropping it stops and joins the thread.
pub(crate) struct Checkpoints {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpoints {
    /// Starts the thread on its own connection to the database.
    pub(crate) fn start(conn: Connection, interval: Duration, restart_pages: u64) -> Result<Self> {
        // The idle TRUNCATE is the only mode here that waits (PASSIVE never does).
        conn.busy_timeout(TRUNCATE_PATIENCE)
            .map_err(crate::error::map)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                commits: 0,
                stop: false,
                waiting: false,
            }),
            wake: Condvar::new(),
            restart: AtomicBool::new(false),
            running: Mutex::new(()),
        });
        let thread = std::thread::Builder::new()
            .name("chat-sqlite-checkpoint".into())
            .spawn({
                let shared = shared.clone();
                move || run(&conn, &shared, interval, restart_pages)
            })
            .map_err(|e| {
                Error::storage_kind(
                    chat_core::StorageKind::Unavailable,
                    format!("cannot start the checkpoint thread: {e}"),
                )
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// What the writer reports to and takes requests from.
    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `PRAGMA schema.wal_checkpoint(mode)`: whether it was blocked, the pages in the log, the
/// pages copied.
pub(crate) fn checkpoint(
    conn: &Connection,
    schema: &str,
    mode: &str,
) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row(
        &format!("PRAGMA {schema}.wal_checkpoint({mode})"),
        [],
        |row| Ok((row.get::<_, i64>(0)? != 0, row.get(1)?, row.get(2)?)),
    )
}

fn run(conn: &Connection, shared: &Shared, interval: Duration, restart_pages: u64) {
    let restart_pages = i64::try_from(restart_pages).unwrap_or(i64::MAX);
    let mut seen = 0;
    // The first pass after opening runs at once; the next ones wait for their interval.
    let mut passed = false;
    // The log holds pages an idle TRUNCATE should clear.
    let mut dirty = false;
    loop {
        let commits = {
            let mut state = shared.lock();
            let idle_at = Instant::now() + IDLE;
            state.waiting = true;
            while !state.stop && state.commits == seen {
                let now = Instant::now();
                if now >= idle_at {
                    break;
                }
                state = shared
                    .wake
                    .wait_timeout(state, idle_at - now)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0;
            }
            state.waiting = false;
            if state.stop {
                return;
            }
            state.commits
        };
        if commits != seen {
            seen = commits;
            // Commits that arrive during the pause are copied by this same pass, which
            // waits a whole interval from the wake rather than from the last pass: a copy
            // (and its fsync) right on a commit competes with the fan-out of that commit.
            if passed && shared.pause(Instant::now() + interval) {
                return;
            }
            passed = true;
            match shared.checkpoint(conn, "PASSIVE") {
                Ok((_, log, copied)) => {
                    dirty = log > 0;
                    if log >= restart_pages {
                        // The writer's own checkpoint stalls its next group for as long
                        // as it copies: first copy what came in during this pass, and
                        // again, so that little is left for it.
                        let mut left = log - copied;
                        for _ in 0..MAX_CATCH_UP {
                            if left <= CATCH_UP_PAGES {
                                break;
                            }
                            match shared.checkpoint(conn, "PASSIVE") {
                                Ok((_, log, copied)) => left = log - copied,
                                Err(_) => break,
                            }
                        }
                        shared.restart.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "chat-sqlite: WAL checkpoint failed"),
            }
        } else if dirty {
            // Idle: copy the rest and cut the log file to nothing. Busy (a reader, or the
            // writer back at work) is fine: the next idle moment tries again.
            match shared.checkpoint(conn, "TRUNCATE") {
                Ok((false, _, _)) => dirty = false,
                Ok((true, _, _)) => {}
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "chat-sqlite: WAL checkpoint failed");
                    dirty = false;
                }
            }
        }
    }
}
