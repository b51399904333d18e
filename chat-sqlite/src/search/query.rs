//! The readers' side of the index.
//!
//! # Searching without waiting
//!
//! A search reads, in one read transaction, first the state from the search file (its
//! snapshot), then the newest event rowid from the database (its snapshot). Every change to
//! a message appends an event about it in the same transaction, so a message without
//! events after the watermark has not changed since the indexer last read it, and its
//! entry is exact: the index is asked for those. The messages of the events after the
//! watermark (posted, edited or deleted since) are read (`text_matches` over their bodies).
//! That holds only if the indexer read those messages from a snapshot no newer than the
//! search's: the index could otherwise hold a body this snapshot does not show yet (an
//! edit) and miss the one it does. So the index is used only if the database snapshot has
//! every event up to the horizon. Since the search file's snapshot is taken first, and the
//! indexer commits only after its database snapshot ended, that is always so in practice;
//! the check makes it a guarantee instead of a property of the order in which SQLite opens
//! the two files' snapshots (the test `an_index_newer_than_the_database_snapshot_is_not_used`
//! shows the race it closes). Candidates from the index are joined with `messages` of the database snapshot and checked with
//! `text_matches`, so an entry that is stale (a deleted conversation's `pk`, reused) can
//! only be a candidate, never a result.

use std::sync::atomic::Ordering;

use rusqlite::{Connection, OptionalExtension};

use super::Shared;

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

impl Shared {
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
