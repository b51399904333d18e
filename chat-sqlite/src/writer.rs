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
//! Readers share what the writer knows ([`Committed`]): after each commit the thread
//! publishes the conversations that group wrote, exactly as committed, and a read of a
//! conversation is answered from there without a connection, a query or a JSON decode
//! (the read on every posted message). Such an answer must be what a read of the
//! database would give at that moment, also when another connection (another store or
//! process on the file) has committed since. Two cases, told apart under one lock:
//! - the writer is inside a transaction it began with `BEGIN IMMEDIATE` and has checked
//!   `data_version` since: it holds the database's write lock, so nobody else can commit,
//!   and what it had published is the committed state (its own open writes are not
//!   visible to readers either);
//! - otherwise a hit asks the write connection itself, if it is free (`try_lock`: a
//!   reader never waits for the writer), for `PRAGMA data_version`, which changes exactly
//!   when another connection has committed (this one's own commits do not change it, and
//!   the readers never write); if it changed, everything published is dropped, and the
//!   writer drops its own cache at its next transaction. If the connection is busy
//!   between two transactions the read goes to the database.
//!
//! Right before its `COMMIT` the writer withdraws the conversations the transaction
//! wrote, and publishes them once the `COMMIT` has returned: from the moment a commit is
//! visible in the database until its publication (microseconds, unless the thread is
//! preempted there, which on a loaded machine can be milliseconds) a read of them goes to
//! the database, so it is never older than a read of the database that began before it
//! (an agent's list showed a conversation the routing pass had just given it, the reply
//! right after read the queued copy and set out to claim it: 409 in the soak). The one
//! gap left: in those microseconds a conversation the transaction did not write would not
//! show a commit another process squeezed into them.
//!
//! After each group the thread tells its [`Followers`]: the search indexer, which applies
//! the new events to the search file, and the checkpoint thread, which copies the log into
//! the database. Neither work is done on the commit path; the one exception is the rare
//! checkpoint the checkpoint thread asks for to keep the log bounded (see
//! [`crate::checkpoint`]), which the writer runs after answering its callers.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use chat_core::{Conversation, ConversationId, Error, Result, TenantId};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// What the writer remembers between operations; see the module documentation.
pub(crate) struct Cache {
    conversations: HashMap<ConversationId, Conversation>,
    event_seqs: HashMap<TenantId, u64>,
    /// Whether each tenant has a webhook (any state), as of the open transaction: a tenant
    /// without one skips the outbox statement on every event. Set by
    /// [`append_event`](crate::write::append_event) from a look at `webhooks`, and by this
    /// store's webhook writes; a webhook another connection writes empties the cache
    /// (`data_version`), like everything else in it.
    has_webhooks: HashMap<TenantId, bool>,
    /// Entries the running operation changed, forgotten if it is rolled back.
    touched: Vec<Key>,
    capacity: usize,
    /// Conversations put, taken or forgotten since the last publication to [`Committed`].
    dirty: Vec<ConversationId>,
    /// The cache was emptied since the last publication.
    cleared: bool,
}

enum Key {
    Conversation(ConversationId),
    Tenant(TenantId),
    Webhooks(TenantId),
}

impl Cache {
    fn new(capacity: usize) -> Self {
        Self {
            conversations: HashMap::new(),
            event_seqs: HashMap::new(),
            has_webhooks: HashMap::new(),
            touched: Vec::new(),
            capacity,
            dirty: Vec::new(),
            cleared: false,
        }
    }

    /// Takes the conversation out of the cache, as stored by the open transaction.
    pub(crate) fn take_conversation(&mut self, id: ConversationId) -> Option<Conversation> {
        let found = self.conversations.remove(&id);
        if found.is_some() {
            self.touched.push(Key::Conversation(id));
            self.dirty.push(id);
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
        self.dirty.push(conversation.id);
        self.conversations.insert(conversation.id, conversation);
    }

    /// Forgets a conversation (deleted, or changed by SQL that did not go through here).
    pub(crate) fn forget_conversation(&mut self, id: ConversationId) {
        self.conversations.remove(&id);
        self.dirty.push(id);
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

    /// Whether the tenant has a webhook, if known.
    pub(crate) fn has_webhooks(&self, tenant: TenantId) -> Option<bool> {
        self.has_webhooks.get(&tenant).copied()
    }

    /// Records whether the tenant has a webhook as of the open transaction.
    pub(crate) fn set_has_webhooks(&mut self, tenant: TenantId, has: bool) {
        if self.has_webhooks.len() >= self.capacity && !self.has_webhooks.contains_key(&tenant) {
            // Bounded like the conversations: coherent, O(1), refilled by the next events.
            self.has_webhooks.clear();
        }
        self.touched.push(Key::Webhooks(tenant));
        self.has_webhooks.insert(tenant, has);
    }

    /// The tenant's webhooks changed: whether it has one is looked up again.
    pub(crate) fn forget_has_webhooks(&mut self, tenant: TenantId) {
        self.has_webhooks.remove(&tenant);
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
                    self.dirty.push(id);
                }
                Key::Tenant(tenant) => {
                    self.event_seqs.remove(&tenant);
                }
                Key::Webhooks(tenant) => {
                    self.has_webhooks.remove(&tenant);
                }
            }
        }
    }

    /// The transaction did not commit, or someone else wrote: forget everything.
    fn clear(&mut self) {
        self.conversations.clear();
        self.event_seqs.clear();
        self.has_webhooks.clear();
        self.touched.clear();
        self.dirty.clear();
        self.cleared = true;
    }
}

/// `PRAGMA data_version` of `conn`: changes when another connection has committed.
fn data_version(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(crate::error::map)
}

/// The conversations as the writer last committed them, for readers; see the module
/// documentation for why a hit is what the database holds.
pub(crate) struct Committed {
    state: Mutex<Published>,
    /// The write connection, held by the writer thread while it runs a group.
    conn: Mutex<Connection>,
}

struct Published {
    conversations: HashMap<ConversationId, Conversation>,
    capacity: usize,
    /// `PRAGMA data_version` of the write connection when last read (by the writer at the
    /// start of a transaction, or by a reader's check).
    data_version: Option<i64>,
    /// The writer holds the write lock and has checked `data_version` since it took it.
    locked: bool,
    /// A reader found another connection's commit: the writer must empty its own cache.
    foreign: bool,
}

impl Committed {
    fn new(conn: Connection, capacity: usize) -> Self {
        Self {
            state: Mutex::new(Published {
                conversations: HashMap::new(),
                capacity,
                data_version: None,
                locked: false,
                foreign: false,
            }),
            conn: Mutex::new(conn),
        }
    }

    fn state(&self) -> MutexGuard<'_, Published> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The conversation as committed, if the writer knows it for certain; `None` sends
    /// the caller to the database.
    pub(crate) fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Option<Conversation> {
        let mut state = self.state();
        let hit = state.conversations.get(&id)?;
        if hit.tenant_id != tenant {
            return None;
        }
        if !state.locked {
            // Between transactions: has anyone else committed since the writer looked?
            // Only the write connection can tell (its own commits do not count), and a
            // reader never waits for it.
            let conn = self.conn.try_lock().ok()?;
            let version = data_version(&conn).ok()?;
            drop(conn);
            if state.data_version != Some(version) {
                state.data_version = Some(version);
                state.conversations.clear();
                state.foreign = true;
                return None;
            }
        }
        state.conversations.get(&id).cloned()
    }

    /// Run right after `BEGIN IMMEDIATE`: empties both caches if another connection
    /// committed since the writer (or a reader) last looked, then marks the write lock as
    /// held.
    fn begin(&self, conn: &Connection, cache: &mut Cache) -> Result<()> {
        let version = data_version(conn)?;
        let mut state = self.state();
        if state.data_version != Some(version) || state.foreign {
            cache.clear();
            state.conversations.clear();
            state.data_version = Some(version);
            state.foreign = false;
        }
        state.locked = true;
        Ok(())
    }

    /// The transaction is about to end without a commit (or SQLite ended it): readers
    /// must check again. Nothing was published during it, so nothing is taken back.
    fn end(&self) {
        self.state().locked = false;
    }

    /// The transaction is about to commit: what it wrote is answered by the database
    /// until [`publish`](Self::publish), never from the copies before it (see the module
    /// documentation).
    fn withdraw(&self, cache: &Cache) {
        let mut state = self.state();
        if cache.cleared {
            state.conversations.clear();
        }
        for id in &cache.dirty {
            state.conversations.remove(id);
        }
    }

    /// The transaction committed: readers get what it wrote.
    fn publish(&self, cache: &mut Cache) {
        let mut state = self.state();
        if std::mem::take(&mut cache.cleared) {
            state.conversations.clear();
        }
        for id in cache.dirty.drain(..) {
            match cache.conversations.get(&id) {
                Some(conversation) => {
                    if state.conversations.len() >= state.capacity
                        && !state.conversations.contains_key(&id)
                    {
                        // As in the writer's cache: coherent, O(1), refilled by writes.
                        state.conversations.clear();
                    }
                    if state.capacity > 0 {
                        state.conversations.insert(id, conversation.clone());
                    }
                }
                None => {
                    state.conversations.remove(&id);
                }
            }
        }
        state.locked = false;
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
    committed: Arc<Committed>,
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
        // The checkpoint thread copies the log once the commits have added enough to it:
        // each commit tells it the log's size.
        crate::checkpoint::follow_log(&conn);
        let committed = Arc::new(Committed::new(conn, cached));
        let thread = std::thread::Builder::new()
            .name("chat-sqlite-writer".into())
            .spawn({
                let committed = committed.clone();
                move || {
                    run(
                        &committed,
                        receiver,
                        max_batch.max(1),
                        Cache::new(cached),
                        &followers,
                    )
                }
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
            committed,
        })
    }

    /// What the writer last committed, for readers.
    pub(crate) fn committed(&self) -> &Committed {
        &self.committed
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
    committed: &Committed,
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
        {
            // Held for the transaction and no longer: a reader that finds it held
            // (`try_lock`, see `Committed`) goes to the database, and the read that comes
            // right after an answer (a client's next post) used to find it held while the
            // thread answered and woke its followers.
            let conn = committed.connection();
            let tx = Tx {
                conn: &conn,
                committed,
            };
            commit_batch(&tx, &mut cache, &mut batch);
        }
        let operations = batch.len();
        for job in batch.drain(..) {
            job.reply();
        }
        followers.search.committed(operations);
        followers
            .checkpoints
            .committed(crate::checkpoint::log_pages());
        if followers.checkpoints.restart_asked() {
            followers
                .checkpoints
                .restart_if_asked(&committed.connection());
        }
    }
}

/// The write connection and the readers' view of it, for one group.
struct Tx<'a> {
    conn: &'a Connection,
    committed: &'a Committed,
}

impl Tx<'_> {
    /// `BEGIN IMMEDIATE`, then the check for other connections' commits.
    fn begin(&self, cache: &mut Cache) -> Result<()> {
        exec(self.conn, "BEGIN IMMEDIATE")?;
        self.committed.begin(self.conn, cache)
    }

    /// `COMMIT`; on success readers get what it wrote.
    fn commit(&self, cache: &mut Cache) -> Result<()> {
        self.committed.withdraw(cache);
        match exec(self.conn, "COMMIT") {
            Ok(()) => {
                self.committed.publish(cache);
                Ok(())
            }
            Err(e) => {
                self.committed.end();
                Err(e)
            }
        }
    }

    /// Rolls the open transaction back, if SQLite has not already.
    fn rollback(&self) {
        self.committed.end();
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Runs `batch` in as few transactions as possible. Afterwards every job holds its final
/// outcome: a success only if its writes are committed.
fn commit_batch(tx: &Tx<'_>, cache: &mut Cache, batch: &mut [Box<dyn Job>]) {
    if !commit_without_savepoints(tx, cache, batch) {
        commit_with_savepoints(tx, cache, batch);
    }
}

/// The common case: runs the whole batch in one transaction with no savepoints. Returns
/// `false`, with the transaction rolled back and no outcome final, if an operation failed
/// after it had written something (only a savepoint can take that back alone, so the
/// caller runs the batch again with them); `true` once every job holds its final outcome.
fn commit_without_savepoints(tx: &Tx<'_>, cache: &mut Cache, batch: &mut [Box<dyn Job>]) -> bool {
    let conn = tx.conn;
    if tx.begin(cache).is_err() {
        // The savepoint path tries again and reports this job by job.
        tx.rollback();
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
            tx.committed.end();
            cache.clear();
            let why =
                "the transaction was rolled back by an error in another operation of its group";
            for job in &mut batch[..i] {
                job.revoke(Error::storage(why));
            }
            if ok {
                batch[i].revoke(Error::storage(why));
            }
            commit_with_savepoints(tx, cache, &mut batch[i + 1..]);
            return true;
        }
        if ok {
            cache.keep_operation();
        } else if conn.total_changes() == before {
            // Failed before writing anything: the transaction holds none of it.
            cache.undo_operation();
        } else {
            cache.clear();
            tx.rollback();
            return false;
        }
    }
    if let Err(e) = tx.commit(cache) {
        cache.clear();
        let failure = commit_failure(e);
        for job in batch.iter_mut() {
            job.revoke(Error::Storage(failure.clone()));
        }
        tx.rollback();
    }
    true
}

/// Runs `batch` with a savepoint around each operation, so that one failing after it has
/// written is rolled back alone.
fn commit_with_savepoints(tx: &Tx<'_>, cache: &mut Cache, batch: &mut [Box<dyn Job>]) {
    let conn = tx.conn;
    // Jobs of the open transaction: batch[start..] up to the current one.
    let mut start = 0;
    let mut open = false;
    for i in 0..batch.len() {
        if !open {
            if let Err(e) = tx.begin(cache) {
                batch[i].revoke(e);
                tx.rollback();
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
            tx.committed.end();
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
            rollback(tx, &mut batch[start..i]);
            open = false;
        }
    }
    if open && let Err(e) = tx.commit(cache) {
        cache.clear();
        let failure = commit_failure(e);
        for job in &mut batch[start..] {
            job.revoke(Error::Storage(failure.clone()));
        }
        tx.rollback();
    }
}

/// Abandons the open transaction; its jobs are told they did not happen.
fn rollback(tx: &Tx<'_>, jobs: &mut [Box<dyn Job>]) {
    for job in jobs {
        job.revoke(Error::storage(
            "the transaction was rolled back after a savepoint failed",
        ));
    }
    tx.rollback();
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

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::{ContactId, Mode};

    fn conversation(version: u64) -> Conversation {
        Conversation {
            version,
            ..Conversation::new(
                ConversationId(uuid::Uuid::from_u128(7)),
                TenantId(uuid::Uuid::from_u128(1)),
                ContactId(uuid::Uuid::from_u128(2)),
                Mode::Queued,
                time::OffsetDateTime::UNIX_EPOCH,
            )
        }
    }

    /// What the module documentation promises for the moment between a commit becoming
    /// visible and its publication: a conversation the transaction wrote is not answered
    /// from the copy before it. [`Tx::commit`] withdraws right before its `COMMIT`; the
    /// state there (no hook reaches inside the `COMMIT` itself) is checked here.
    #[test]
    fn a_conversation_being_committed_is_read_from_the_database_until_published() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x)")
            .unwrap();
        let committed = Committed::new(conn, 16);
        let mut cache = Cache::new(16);
        let first = conversation(1);
        let (tenant, id) = (first.tenant_id, first.id);

        // Version 1 committed and published.
        {
            let conn = committed.connection();
            let tx = Tx {
                conn: &conn,
                committed: &committed,
            };
            tx.begin(&mut cache).unwrap();
            cache.put_conversation(first.clone());
            cache.keep_operation();
            tx.commit(&mut cache).unwrap();
        }
        assert_eq!(committed.conversation(tenant, id), Some(first));

        // Version 2 written; on the way into COMMIT version 1 is no longer an answer.
        let second = conversation(2);
        {
            let conn = committed.connection();
            let tx = Tx {
                conn: &conn,
                committed: &committed,
            };
            tx.begin(&mut cache).unwrap();
            exec(&conn, "INSERT INTO t VALUES (2)").unwrap();
            cache.put_conversation(second.clone());
            cache.keep_operation();
            committed.withdraw(&cache);
            assert_eq!(
                committed.conversation(tenant, id),
                None,
                "a read in the gap goes to the database"
            );
            tx.commit(&mut cache).unwrap();
        }
        assert_eq!(committed.conversation(tenant, id), Some(second));
    }
}
