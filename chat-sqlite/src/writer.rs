//! The one writer: a thread that owns the write connection and commits queued operations
//! in groups.
//!
//! Callers send a job (the operation and its reply channel, as in sqlx-sqlite's worker)
//! and wait. The thread takes whatever is queued, up to `max_batch` jobs, runs them in one
//! transaction, commits once, and only then answers every caller. One fsync thus
//! acknowledges many operations (group commit), while each operation still succeeds or
//! fails on its own and the others keep their writes. Sequence numbers are read inside the
//! transaction, so a failed operation leaves no gap.
//!
//! Isolating a failure takes a savepoint around each operation, and a savepoint copies
//! every page the operation touches into a statement journal (about a fifth of the cost
//! of a posted message, measured). Almost every failure (not found, version conflict,
//! taken e-mail) is found before the operation writes anything, so the thread first runs
//! the group without savepoints, checking `total_changes` after each failed operation. Only
//! if one failed after it had written does it roll the transaction back and run the group
//! again, this time with a savepoint around each operation; operations are closures that
//! can run more than once for that reason.
//!
//! Being the only writer, the thread also keeps what it wrote last ([`Cache`]): the
//! conversations it touched and each tenant's last event sequence, so a message does not
//! read back the rows the previous message just wrote. The cache follows the transaction:
//! an operation rolled back to its savepoint forgets what it put there, a transaction that
//! does not commit empties it, and so does a commit by any other connection (`PRAGMA
//! data_version`, checked at the start of every transaction).
//!
//! After each group the thread tells its [`Followers`]: the search indexer, which applies
//! the new events to the search file, and the checkpoint thread, which copies the log into
//! the database. Neither work is done on the commit path; the one exception is the rare
//! checkpoint the checkpoint thread asks for to keep the log bounded (see
//! [`crate::checkpoint`]), which the writer runs after answering its callers.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::thread::JoinHandle;

use chat_core::{Conversation, ConversationId, Error, Result, TenantId};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// What the writer remembers between operations; see the module documentation.
pub(crate) struct Cache {
    conversations: HashMap<ConversationId, Conversation>,
    event_seqs: HashMap<TenantId, u64>,
    /// Entries the running operation changed, forgotten if it is rolled back.
    touched: Vec<Key>,
    capacity: usize,
    /// `PRAGMA data_version` after this connection's last transaction.
    data_version: Option<i64>,
}

enum Key {
    Conversation(ConversationId),
    Tenant(TenantId),
}

impl Cache {
    fn new(capacity: usize) -> Self {
        Self {
            conversations: HashMap::new(),
            event_seqs: HashMap::new(),
            touched: Vec::new(),
            capacity,
            data_version: None,
        }
    }

    /// Takes the conversation out of the cache, as stored by the open transaction.
    pub(crate) fn take_conversation(&mut self, id: ConversationId) -> Option<Conversation> {
        let found = self.conversations.remove(&id);
        if found.is_some() {
            self.touched.push(Key::Conversation(id));
        }
        found
    }

    /// Remembers a conversation exactly as the open transaction stored it.
    pub(crate) fn put_conversation(&mut self, conversation: Conversation) {
        if self.capacity == 0 {
            return;
        }
        if self.conversations.len() >= self.capacity
            && !self.conversations.contains_key(&conversation.id)
        {
            // Dropping everything is coherent and keeps this O(1); the next reads of each
            // conversation refill it.
            self.conversations.clear();
        }
        self.touched.push(Key::Conversation(conversation.id));
        self.conversations.insert(conversation.id, conversation);
    }

    /// Forgets a conversation (deleted, or changed by SQL that did not go through here).
    pub(crate) fn forget_conversation(&mut self, id: ConversationId) {
        self.conversations.remove(&id);
    }

    /// The tenant's last event sequence, if known.
    pub(crate) fn event_seq(&self, tenant: TenantId) -> Option<u64> {
        self.event_seqs.get(&tenant).copied()
    }

    /// Records the tenant's last event sequence as of the open transaction.
    pub(crate) fn set_event_seq(&mut self, tenant: TenantId, seq: u64) {
        self.touched.push(Key::Tenant(tenant));
        self.event_seqs.insert(tenant, seq);
    }

    /// The running operation's writes stand (for now: until its transaction ends).
    fn keep_operation(&mut self) {
        self.touched.clear();
    }

    /// The running operation was rolled back: forget what it changed.
    fn undo_operation(&mut self) {
        for key in self.touched.drain(..) {
            match key {
                Key::Conversation(id) => {
                    self.conversations.remove(&id);
                }
                Key::Tenant(tenant) => {
                    self.event_seqs.remove(&tenant);
                }
            }
        }
    }

    /// The transaction did not commit, or someone else wrote: forget everything.
    fn clear(&mut self) {
        self.conversations.clear();
        self.event_seqs.clear();
        self.touched.clear();
    }

    /// Empties the cache if another connection committed since this one last looked.
    fn check_data_version(&mut self, conn: &Connection) -> Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
            .map_err(crate::error::map)?;
        if self.data_version != Some(version) {
            self.clear();
            self.data_version = Some(version);
        }
        Ok(())
    }
}

/// What an operation runs on: the write connection (through `Deref`) inside the open
/// transaction, and the writer's [`Cache`].
pub(crate) struct Session<'a> {
    conn: &'a Connection,
    pub(crate) cache: &'a mut Cache,
}

impl Deref for Session<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// A queued operation with its reply channel.
trait Job: Send {
    /// Runs the operation inside the open transaction; `true` if it succeeded.
    fn run(&mut self, session: &mut Session<'_>) -> bool;
    /// Turns a success into `error`: the transaction that held it did not commit.
    fn revoke(&mut self, error: Error);
    /// Sends the outcome to the caller.
    fn reply(self: Box<Self>);
}

struct Pending<T, F> {
    op: F,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnMut(&mut Session<'_>) -> Result<T> + Send,
{
    fn run(&mut self, session: &mut Session<'_>) -> bool {
        let outcome = (self.op)(session);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn revoke(&mut self, error: Error) {
        if !matches!(self.outcome, Some(Err(_))) {
            self.outcome = Some(Err(error));
        }
    }

    fn reply(self: Box<Self>) {
        let outcome = self.outcome.unwrap_or_else(|| {
            Err(Error::storage_kind(
                chat_core::StorageKind::Unavailable,
                "operation did not run",
            ))
        });
        // The caller may have given up waiting; the write stands either way.
        let _ = self.reply.send(outcome);
    }
}

/// Who hears about every commit.
pub(crate) struct Followers {
    pub(crate) search: Arc<crate::search::Shared>,
    pub(crate) checkpoints: Arc<crate::checkpoint::Shared>,
}

/// Handle to the writer thread. Dropping it lets the thread finish the queued work,
/// close the connection and exit; `Drop` waits for that.
pub(crate) struct Writer {
    sender: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread on `conn`.
    pub(crate) fn start(
        conn: Connection,
        max_batch: usize,
        cached: usize,
        followers: Followers,
    ) -> Result<Self> {
        // The queue bound only adds back-pressure; a batch takes at most `max_batch`.
        let (sender, receiver) = mpsc::channel(max_batch.max(1) * 4);
        let thread = std::thread::Builder::new()
            .name("chat-sqlite-writer".into())
            .spawn(move || {
                run(
                    conn,
                    receiver,
                    max_batch.max(1),
                    Cache::new(cached),
                    &followers,
                )
            })
            .map_err(|e| {
                Error::storage_kind(
                    chat_core::StorageKind::Unavailable,
                    format!("cannot start the writer thread: {e}"),
                )
            })?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Runs `op` in the writer's next transaction; answers once that transaction has
    /// committed (or with the error that kept it from committing). `op` may run more than
    /// once (see the module documentation); only its last run's writes are kept.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Session<'_>) -> Result<T> + Send + 'static,
    {
        let stopped = || {
            Error::storage_kind(
                chat_core::StorageKind::Unavailable,
                "the writer thread has stopped",
            )
        };
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            op,
            outcome: None,
            reply,
        });
        let sender = self.sender.as_ref().ok_or_else(stopped)?;
        sender.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    conn: Connection,
    mut receiver: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    mut cache: Cache,
    followers: &Followers,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Some(job) = receiver.blocking_recv() {
        batch.push(job);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, &mut cache, &mut batch);
        for job in batch.drain(..) {
            job.reply();
        }
        followers.search.committed();
        followers.checkpoints.committed();
        followers.checkpoints.restart_if_asked(&conn);
    }
}

/// Runs `batch` in as few transactions as possible. Afterwards every job holds its final
/// outcome: a success only if its writes are committed.
fn commit_batch(conn: &Connection, cache: &mut Cache, batch: &mut [Box<dyn Job>]) {
    if !commit_without_savepoints(conn, cache, batch) {
        commit_with_savepoints(conn, cache, batch);
    }
}

/// The common case: runs the whole batch in one transaction with no savepoints. Returns
/// `false`, with the transaction rolled back and no outcome final, if an operation failed
/// after it had written something (only a savepoint can take that back alone, so the
/// caller runs the batch again with them); `true` once every job holds its final outcome.
fn commit_without_savepoints(
    conn: &Connection,
    cache: &mut Cache,
    batch: &mut [Box<dyn Job>],
) -> bool {
    if exec(conn, "BEGIN IMMEDIATE")
        .and_then(|()| cache.check_data_version(conn))
        .is_err()
    {
        // The savepoint path tries again and reports this job by job.
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return false;
    }
    for i in 0..batch.len() {
        let before = conn.total_changes();
        let ok = batch[i].run(&mut Session {
            conn,
            cache: &mut *cache,
        });
        if conn.is_autocommit() {
            // SQLite rolled back the whole transaction (a full disk, I/O): the jobs before
            // this one lost their writes too; the rest get a transaction of their own.
            cache.clear();
            let why =
                "the transaction was rolled back by an error in another operation of its group";
            for job in &mut batch[..i] {
                job.revoke(Error::storage(why));
            }
            if ok {
                batch[i].revoke(Error::storage(why));
            }
            commit_with_savepoints(conn, cache, &mut batch[i + 1..]);
            return true;
        }
        if ok {
            cache.keep_operation();
        } else if conn.total_changes() == before {
            // Failed before writing anything: the transaction holds none of it.
            cache.undo_operation();
        } else {
            cache.clear();
            let _ = conn.execute_batch("ROLLBACK");
            return false;
        }
    }
    if let Err(e) = exec(conn, "COMMIT") {
        cache.clear();
        let failure = commit_failure(e);
        for job in batch.iter_mut() {
            job.revoke(Error::Storage(failure.clone()));
        }
        let _ = conn.execute_batch("ROLLBACK");
    }
    true
}

/// Runs `batch` with a savepoint around each operation, so that one failing after it has
/// written is rolled back alone.
fn commit_with_savepoints(conn: &Connection, cache: &mut Cache, batch: &mut [Box<dyn Job>]) {
    // Jobs of the open transaction: batch[start..] up to the current one.
    let mut start = 0;
    let mut open = false;
    for i in 0..batch.len() {
        if !open {
            if let Err(e) =
                exec(conn, "BEGIN IMMEDIATE").and_then(|()| cache.check_data_version(conn))
            {
                batch[i].revoke(e);
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                start = i + 1;
                continue;
            }
            open = true;
            start = i;
        }
        if let Err(e) = exec(conn, "SAVEPOINT op") {
            batch[i].revoke(e);
            continue;
        }
        let ok = batch[i].run(&mut Session {
            conn,
            cache: &mut *cache,
        });
        if conn.is_autocommit() {
            cache.clear();
            // Some errors (a full disk, I/O) make SQLite roll back the whole transaction:
            // the jobs before this one lost their writes too.
            let why =
                "the transaction was rolled back by an error in another operation of its group";
            for job in &mut batch[start..i] {
                job.revoke(Error::storage(why));
            }
            if ok {
                batch[i].revoke(Error::storage(why));
            }
            open = false;
            continue;
        }
        let end = if ok {
            cache.keep_operation();
            exec(conn, "RELEASE op")
        } else {
            cache.undo_operation();
            exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"))
        };
        if let Err(e) = end {
            cache.clear();
            batch[i].revoke(e);
            rollback(conn, &mut batch[start..i]);
            open = false;
        }
    }
    if open && let Err(e) = exec(conn, "COMMIT") {
        cache.clear();
        let failure = commit_failure(e);
        for job in &mut batch[start..] {
            job.revoke(Error::Storage(failure.clone()));
        }
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// Abandons the open transaction; its jobs are told they did not happen.
fn rollback(conn: &Connection, jobs: &mut [Box<dyn Job>]) {
    for job in jobs {
        job.revoke(Error::storage(
            "the transaction was rolled back after a savepoint failed",
        ));
    }
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// A failed COMMIT for every job of its group: the same kind (a full disk stays `Full`).
fn commit_failure(e: Error) -> chat_core::StorageError {
    match e {
        Error::Storage(failure) => failure.context("commit failed"),
        other => chat_core::StorageError::new(
            chat_core::StorageKind::Other,
            format!("commit failed: {other}"),
        ),
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]).map(drop))
        .map_err(crate::error::map)
}
