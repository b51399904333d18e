//! WAL checkpoints on their own thread, off the writer's commit path.
//!
//! With SQLite's automatic checkpoint, the commit that takes the log past 1000 pages also
//! copies the log into the database and fsyncs it, on the writer thread, before the writer
//! can answer the callers of that group: a few milliseconds added to one commit in every
//! few, which is most of the commit latency's p99. Here the writer runs with
//! `wal_autocheckpoint = 0` and tells this thread after each commit how large the log is
//! (SQLite's WAL hook, [`follow_log`]); once the commits since the last pass have added
//! [`Options::checkpoint_pages`](crate::Options::checkpoint_pages) to it, the thread runs
//! a `PASSIVE` checkpoint (it copies what it can without waiting for anyone)
//! [`Options::checkpoint_interval`](crate::Options::checkpoint_interval) later (not on the
//! commit: that is when the server fans the message out), and a `TRUNCATE` once commits
//! have stopped for [`IDLE`]. A pass per commit (or per interval) copied the pages every
//! post rewrites (the newest leaves of the messages and events, the conversation's row
//! and its inbox entries) again and again and paid the pass's own work each time (SQLite
//! sorts every frame of the log since it last started over): at one post after the other
//! it was about 25,000 instructions a post, 7% of the chat server's.
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

use std::cell::Cell;
use std::ffi::c_int;
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

thread_local! {
    /// Pages in the log after the last commit made on this thread (the writer's), as
    /// SQLite's WAL hook reports it: the hook is a plain function, so it leaves the count
    /// where the committing thread can take it.
    static LOG_PAGES: Cell<u64> = const { Cell::new(0) };
}

/// Makes `conn`'s commits report the log's size (see [`log_pages`]). Must come after
/// `PRAGMA wal_autocheckpoint`, which replaces the connection's WAL hook.
pub(crate) fn follow_log(conn: &Connection) {
    conn.wal_hook(Some(note_log_pages));
}

fn note_log_pages(wal: &rusqlite::hooks::Wal, pages: c_int) -> rusqlite::Result<()> {
    if wal.name() == c"main" {
        LOG_PAGES.set(u64::try_from(pages).unwrap_or(0));
    }
    Ok(())
}

/// Pages in the log after this thread's last commit on a connection that [`follow_log`]s.
pub(crate) fn log_pages() -> u64 {
    LOG_PAGES.get()
}

/// What the writer and the checkpoint thread share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Pages the commits add to the log before a pass copies them: the smaller of
    /// `Options::checkpoint_pages` and `Options::wal_restart_pages` (a pass is what finds
    /// the log at the restart size).
    pass_pages: u64,
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
    /// The log's size after the writer's last commit, in pages.
    log: u64,
    /// Pages the commits added to the log since the thread's last pass began.
    added: u64,
    /// The thread's `PASSIVE` passes and idle `TRUNCATE`s that copied, so that the tests
    /// can tell which ran.
    passes: u64,
    truncates: u64,
    stop: bool,
    /// The thread waits for the log to fill (not in its interval's pause or a
    /// checkpoint): only then does a commit need to wake it.
    waiting: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The writer committed a transaction, which left `log` pages in the log
    /// ([`log_pages`]).
    pub(crate) fn committed(&self, log: u64) {
        let mut state = self.lock();
        state.commits += 1;
        // A smaller log than the last commit left has started over: all of it is new. (A
        // log that started over and already grew past the old size is undercounted by
        // the old size, which is at most about a pass's worth: the next pass comes late
        // by that much, never not at all.)
        state.added += if log >= state.log {
            log - state.log
        } else {
            log
        };
        state.log = log;
        // A commit during the pause or a pass is counted when the thread next looks;
        // waking it for every commit was a context switch per commit.
        if state.waiting && state.added >= self.pass_pages {
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
        // What comes in from now on is for the next pass (some of it this one copies:
        // the next pass then comes a little early).
        self.lock().added = 0;
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
    pub(crate) fn start(
        conn: Connection,
        interval: Duration,
        pass_pages: u64,
        restart_pages: u64,
    ) -> Result<Self> {
        // The idle TRUNCATE is the only mode here that waits (PASSIVE never does).
        conn.busy_timeout(TRUNCATE_PATIENCE)
            .map_err(crate::error::map)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                commits: 0,
                log: 0,
                added: 0,
                passes: 0,
                truncates: 0,
                stop: false,
                waiting: false,
            }),
            pass_pages: pass_pages.min(restart_pages).max(1),
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
    // Commits the thread has seen at its last look.
    let mut seen = 0;
    // The first pass after opening runs at once; the next ones wait for their interval.
    let mut passed = false;
    // The log holds pages an idle TRUNCATE should clear.
    let mut dirty = false;
    loop {
        // Waits until the commits have added a pass's worth to the log, or for [`IDLE`]:
        // the commits below that do not wake the thread.
        let (full, commits) = {
            let mut state = shared.lock();
            let idle_at = Instant::now() + IDLE;
            state.waiting = true;
            while !state.stop && state.added < shared.pass_pages {
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
            (state.added >= shared.pass_pages, state.commits)
        };
        // Commits since the last look: the log is not idle yet, so a `TRUNCATE` waits
        // for a whole [`IDLE`] without any (between one and two of them after the last
        // commit, since the commits no longer wake the thread).
        let idle = commits == seen;
        if !idle {
            seen = commits;
            dirty = true;
        }
        if full {
            // Commits that arrive during the pause are copied by this same pass, which
            // waits a whole interval from the wake rather than from the last pass: a copy
            // (and its fsync) right on a commit competes with the fan-out of that commit.
            if passed && shared.pause(Instant::now() + interval) {
                return;
            }
            passed = true;
            match shared.checkpoint(conn, "PASSIVE") {
                Ok((_, log, copied)) => {
                    shared.lock().passes += 1;
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
        } else if idle && dirty {
            // Idle: copy the rest and cut the log file to nothing. Busy (a reader, or the
            // writer back at work) is fine: the next idle moment tries again.
            match shared.checkpoint(conn, "TRUNCATE") {
                Ok((false, _, _)) => {
                    shared.lock().truncates += 1;
                    dirty = false;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in WAL mode whose writer follows the log as the store's does.
    fn database(dir: &std::path::Path) -> (Connection, Connection) {
        let path = dir.join("chat.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE messages (pk INTEGER PRIMARY KEY, body TEXT NOT NULL);",
            )
            .unwrap();
        follow_log(&writer);
        (writer, Connection::open(&path).unwrap())
    }

    /// One posted message in its own transaction, reported as the writer thread does.
    fn post(writer: &Connection, shared: &Shared, n: usize) {
        writer
            .execute(
                "INSERT INTO messages (body) VALUES (?1)",
                [format!("message {n}")],
            )
            .unwrap();
        shared.committed(log_pages());
    }

    fn counts(shared: &Shared) -> (u64, u64) {
        let state = shared.lock();
        (state.passes, state.truncates)
    }

    fn wait_for(shared: &Shared, done: impl Fn(u64, u64) -> bool) -> (u64, u64) {
        // Bounded, so that a thread that never copies fails the test instead of hanging it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (passes, truncates) = counts(shared);
            if done(passes, truncates) {
                return (passes, truncates);
            }
            assert!(
                Instant::now() < deadline,
                "the checkpoint thread did not copy"
            );
            // Polled: the thread's counts change under its lock, with no signal to wait on.
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_writer_reports_the_log_size_sqlite_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, other) = database(dir.path());
        for n in 0..5 {
            writer
                .execute("INSERT INTO messages (body) VALUES (?1)", [format!("{n}")])
                .unwrap();
        }
        let (_, log, _) = checkpoint(&other, "main", "PASSIVE").unwrap();
        assert!(log > 0);
        assert_eq!(log_pages(), log as u64);
    }

    #[test]
    fn commits_below_the_pass_size_are_copied_only_once_they_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, helper) = database(dir.path());
        let checkpoints =
            Checkpoints::start(helper, Duration::from_millis(1), 1000, 32 * 1024).unwrap();
        let shared = checkpoints.shared();
        for n in 0..20 {
            post(&writer, &shared, n);
        }
        assert!(
            log_pages() < 1000,
            "the posts filled a pass: {}",
            log_pages()
        );
        // A pass per commit would have copied 1 ms after the first one; these twenty
        // wait for the idle truncate, which is the first and only copy.
        let (passes, truncates) = wait_for(&shared, |_, truncates| truncates > 0);
        assert_eq!((passes, truncates), (0, 1));
        let wal = dir.path().join("chat.db-wal");
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "the log was cut");
        // After the cut, a commit's pages are new ones again.
        post(&writer, &shared, 20);
        assert_eq!(shared.lock().added, log_pages());
    }

    #[test]
    fn commits_that_fill_a_pass_are_copied_without_waiting_for_them_to_stop() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, helper) = database(dir.path());
        let checkpoints =
            Checkpoints::start(helper, Duration::from_millis(1), 8, 32 * 1024).unwrap();
        let shared = checkpoints.shared();
        // The commits go on while the thread copies: a pass comes although they never
        // stop (the idle truncate needs a second without any).
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut n = 0;
        while counts(&shared).0 == 0 {
            assert!(Instant::now() < deadline, "no pass after {n} commits");
            post(&writer, &shared, n);
            n += 1;
        }
    }

    #[test]
    fn the_pass_size_is_at_most_the_restart_size() {
        let dir = tempfile::tempdir().unwrap();
        let (_writer, helper) = database(dir.path());
        let checkpoints = Checkpoints::start(helper, Duration::from_millis(1), 1000, 64).unwrap();
        assert_eq!(checkpoints.shared().pass_pages, 64);
    }
}
