//! The one writer: a thread that owns the write connection and commits queued operations
//! in groups.
//!
//! Callers send a job (the operation and its reply channel, as in sqlx-sqlite's worker)
//! and wait. The thread takes whatever is queued, up to `max_batch` jobs, runs them in one
//! transaction with a savepoint around each, commits once, and only then answers every
//! caller. One fsync thus acknowledges many operations (group commit), while each
//! operation still succeeds or fails on its own: a failing one is rolled back to its
//! savepoint and the others keep their writes. Sequence numbers are read from the
//! database inside the transaction, so a rolled-back operation leaves no gap.

use std::thread::JoinHandle;

use chat_core::{Error, Result};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

/// A queued operation with its reply channel.
trait Job: Send {
    /// Runs the operation inside the open transaction; `true` if it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Turns a success into `error`: the transaction that held it did not commit.
    fn revoke(&mut self, error: Error);
    /// Sends the outcome to the caller.
    fn reply(self: Box<Self>);
}

struct Pending<T, F> {
    op: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let outcome = match self.op.take() {
            Some(op) => op(conn),
            None => Err(Error::Storage("operation ran twice".into())),
        };
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
        let outcome = self
            .outcome
            .unwrap_or_else(|| Err(Error::Storage("operation did not run".into())));
        // The caller may have given up waiting; the write stands either way.
        let _ = self.reply.send(outcome);
    }
}

/// Handle to the writer thread. Dropping it lets the thread finish the queued work,
/// close the connection and exit; `Drop` waits for that.
pub(crate) struct Writer {
    sender: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread on `conn`.
    pub(crate) fn start(conn: Connection, max_batch: usize) -> Result<Self> {
        // The queue bound only adds back-pressure; a batch takes at most `max_batch`.
        let (sender, receiver) = mpsc::channel(max_batch.max(1) * 4);
        let thread = std::thread::Builder::new()
            .name("chat-sqlite-writer".into())
            .spawn(move || run(conn, receiver, max_batch.max(1)))
            .map_err(|e| Error::Storage(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Runs `op` in the writer's next transaction; answers once that transaction has
    /// committed (or with the error that kept it from committing).
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let stopped = || Error::Storage("the writer thread has stopped".into());
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            op: Some(op),
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

fn run(conn: Connection, mut receiver: mpsc::Receiver<Box<dyn Job>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    while let Some(job) = receiver.blocking_recv() {
        batch.push(job);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, &mut batch);
        for job in batch.drain(..) {
            job.reply();
        }
    }
}

/// Runs `batch` in as few transactions as possible. Afterwards every job holds its final
/// outcome: a success only if its writes are committed.
fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) {
    // Jobs of the open transaction: batch[start..] up to the current one.
    let mut start = 0;
    let mut open = false;
    for i in 0..batch.len() {
        if !open {
            if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
                batch[i].revoke(e);
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
        let ok = batch[i].run(conn);
        if conn.is_autocommit() {
            // Some errors (a full disk, I/O) make SQLite roll back the whole transaction:
            // the jobs before this one lost their writes too.
            let why =
                "the transaction was rolled back by an error in another operation of its group";
            for job in &mut batch[start..i] {
                job.revoke(Error::Storage(why.into()));
            }
            if ok {
                batch[i].revoke(Error::Storage(why.into()));
            }
            open = false;
            continue;
        }
        let end = if ok {
            exec(conn, "RELEASE op")
        } else {
            exec(conn, "ROLLBACK TO op").and_then(|()| exec(conn, "RELEASE op"))
        };
        if let Err(e) = end {
            batch[i].revoke(e);
            rollback(conn, &mut batch[start..i]);
            open = false;
        }
    }
    if open {
        if let Err(e) = exec(conn, "COMMIT") {
            let message = format!("commit failed: {e}");
            for job in &mut batch[start..] {
                job.revoke(Error::Storage(message.clone()));
            }
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

/// Abandons the open transaction; its jobs are told they did not happen.
fn rollback(conn: &Connection, jobs: &mut [Box<dyn Job>]) {
    for job in jobs {
        job.revoke(Error::Storage(
            "the transaction was rolled back after a savepoint failed".into(),
        ));
    }
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]).map(drop))
        .map_err(crate::error::map)
}
