//! The process-wide limit on SQLite's heap: what bounds the page caches of all the
//! store's connections together rather than each on its own.

use chat_core::{Error, Result};
use rusqlite::Connection;

use crate::error::map;

/// Asks SQLite to keep its whole heap, in this process, at or below `bytes` (0: no
/// limit, SQLite's default), and returns the limit now in force.
///
/// Each connection's page cache has its own cap (`Options::cache_kib`,
/// `Options::writer_cache_kib`), and a store has about eight of them (four readers with the
/// database and the search file each, the writer, the indexer, the checkpoints). The
/// readers' caches are emptied whenever another connection commits, so on a busy desk
/// they churn below their caps; but now and then several fill at once, and the heap's
/// high-water mark, which the allocator keeps, creeps towards the sum of all caps as the
/// database grows and queries touch more pages (the soak bench: SQLite's peak went from
/// 14 to 25 MiB in 30 minutes while what it held at any sample stayed at 3.5-8 MiB).
///
/// With a limit, once SQLite's heap reaches it, a cache that needs a page takes the least
/// recently used unpinned page of any connection instead of allocating (the bundled SQLite
/// is built with `SQLITE_ENABLE_MEMORY_MANAGEMENT`, which puts every connection's pages
/// in one group for this), so the sum stays near the limit. It is soft: pages in use by a
/// running statement are never taken. It applies to every SQLite connection of the
/// process, the embedding application's too: set it once, at start-up.
///
/// ```
/// let limit = chat_sqlite::set_heap_limit(64 << 20).unwrap();
/// assert_eq!(limit, 64 << 20);
/// chat_sqlite::set_heap_limit(0).unwrap();
/// ```
pub fn set_heap_limit(bytes: u64) -> Result<u64> {
    let bytes = i64::try_from(bytes).map_err(|_| {
        Error::validation(
            "heap_limit",
            format!("{bytes} bytes is more than SQLite takes"),
        )
    })?;
    let conn = Connection::open_in_memory().map_err(map)?;
    let now: i64 = conn
        .query_row(&format!("PRAGMA soft_heap_limit = {bytes}"), [], |row| {
            row.get(0)
        })
        .map_err(map)?;
    Ok(u64::try_from(now).unwrap_or(0))
}
