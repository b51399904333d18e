//! The store's pool of read connections, and knowing when the last of them has closed.
//!
//! r2d2 opens connections on a thread pool of its own: a read that finds no idle
//! connection, or one that leaves fewer than `min_idle`, asks for a new one there, and that
//! task holds the pool while it connects. A pool dropped meanwhile is not closed by the
//! drop: its connections close on r2d2's thread when the task ends, after the store's drop
//! has returned. The last connection to a database to close folds the log back into the
//! file and deletes it, so until then the file alone is not the database: a copy taken
//! right after the store was dropped (a backup by file copy, as an operator takes one of a
//! stopped server) could miss the last commits, and a restore copied over it could have the
//! old log folded into it. So every connection (and the pool's manager, which a pending
//! connect needs) holds an [`Open`] token, and [`Closed`], dropped after the pool, waits for
//! the last token to go.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

/// How long a dropped store waits for a connection r2d2 is opening or closing elsewhere
/// (milliseconds each) or that a blocking read still uses (a cancelled read runs on to its
/// end).
const PATIENCE: Duration = Duration::from_secs(30);

/// The read connections' manager: [`SqliteConnectionManager`]'s connections, each holding
/// an [`Open`] token.
pub(crate) struct Readers {
    inner: SqliteConnectionManager,
    open: Open,
}

/// A read connection from the pool; derefs to the [`Connection`].
pub(crate) struct Reader {
    // Declared first: it closes (and may fold the log back) before its token goes.
    conn: Connection,
    _open: Open,
}

impl Readers {
    /// The manager, and the [`Closed`] to drop after the pool.
    pub(crate) fn new(inner: SqliteConnectionManager) -> (Self, Closed) {
        let count = Arc::new(Count::default());
        let open = Open::new(&count);
        (Self { inner, open }, Closed(count))
    }
}

impl r2d2::ManageConnection for Readers {
    type Connection = Reader;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Reader, rusqlite::Error> {
        Ok(Reader {
            conn: self.inner.connect()?,
            _open: self.open.clone(),
        })
    }

    fn is_valid(&self, reader: &mut Reader) -> Result<(), rusqlite::Error> {
        self.inner.is_valid(&mut reader.conn)
    }

    fn has_broken(&self, reader: &mut Reader) -> bool {
        self.inner.has_broken(&mut reader.conn)
    }
}

impl Deref for Reader {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// How many tokens are out.
#[derive(Default)]
struct Count {
    open: Mutex<usize>,
    none: Condvar,
}

/// A token held by the manager and by every connection it made.
struct Open(Arc<Count>);

impl Open {
    fn new(count: &Arc<Count>) -> Self {
        *count.open.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Self(count.clone())
    }
}

impl Clone for Open {
    fn clone(&self) -> Self {
        Self::new(&self.0)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut open = self.0.open.lock().unwrap_or_else(|p| p.into_inner());
        *open -= 1;
        if *open == 0 {
            self.0.none.notify_all();
        }
    }
}

/// Dropped after the pool: waits until the pool's manager and every connection it made
/// are gone, wherever they were dropped.
pub(crate) struct Closed(Arc<Count>);

impl Closed {
    /// Connections (and the manager) not closed yet.
    #[cfg(test)]
    fn open(&self) -> usize {
        *self.0.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Closed {
    fn drop(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        let mut open = self.0.open.lock().unwrap_or_else(|p| p.into_inner());
        while *open > 0 {
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(
                    connections = *open,
                    "chat-sqlite: read connections still open after the store closed; the \
                     database's log stays until they close"
                );
                return;
            }
            open = self
                .0
                .none
                .wait_timeout(open, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that outlives the pool's handle (as one r2d2 is opening on its own
    /// thread does) holds the drop of [`Closed`] until it has closed.
    #[test]
    fn closed_waits_for_a_connection_closing_elsewhere() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let (readers, closed) =
            Readers::new(SqliteConnectionManager::file(dir.path().join("x.db")));
        let pool = r2d2::Pool::builder().max_size(2).build(readers).unwrap();
        let held = pool.get().unwrap();
        assert!(closed.open() >= 2, "the manager and the connection");
        drop(pool);
        assert!(closed.open() >= 1, "the connection still out");
        let released = Arc::new(AtomicBool::new(false));
        let elsewhere = std::thread::spawn({
            let released = released.clone();
            move || {
                std::thread::yield_now();
                released.store(true, Ordering::SeqCst);
                drop(held);
            }
        });
        drop(closed);
        assert!(
            released.load(Ordering::SeqCst),
            "the drop returned before the connection closed"
        );
        elsewhere.join().unwrap();
    }
}
