//! How a [`SqliteStore`](crate::SqliteStore) opens its database.

use std::time::Duration;

/// When SQLite waits for the disk (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit is on disk before it is acknowledged: survives power loss.
    #[default]
    Full,
    /// Commits survive a crash of the process but the last ones may be lost on power
    /// loss; syncs only at checkpoints. Faster when fsync is slow.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Settings for [`SqliteStore::open_with`](crate::SqliteStore::open_with). The defaults
/// suit a server on one machine.
///
/// ```
/// use chat_sqlite::{Options, Synchronous};
///
/// let options = Options::default().synchronous(Synchronous::Normal).readers(2);
/// assert_eq!(options.synchronous, Synchronous::Normal);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Durability of each commit. Default: [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long a statement waits for a lock held by another process. Default: 5 s.
    pub busy_timeout: Duration,
    /// Read connections in the pool. Default: 4.
    pub readers: u32,
    /// Most operations the writer commits in one transaction. Default: 1000.
    pub max_batch: usize,
    /// Bytes of the file each connection maps into memory (`PRAGMA mmap_size`).
    /// Default: 0, no map. In WAL mode SQLite unmaps the whole map at the start of every
    /// read transaction that follows a commit, and maps and faults it in again: on a desk
    /// where messages keep coming that is every read, and it took 45% of a conversation
    /// read's time (166 µs against 109 µs without the map, at 10 messages/s; the unmap
    /// stops every thread of the process to flush its TLB). Read-only, the page cache
    /// serves as well as the map: 23,137-23,883 latest-50 reads/s without it, 23,693
    /// with 1 GiB.
    pub mmap_size: u64,
    /// Page cache of each read connection, in KiB, for the database and again for the
    /// search file; also the search indexer's and the checkpoints' connections' cache of
    /// the database. Default: 64 MiB.
    pub cache_kib: u64,
    /// Page cache of the write connection, in KiB. Default: 8 MiB. Smaller than the
    /// readers' on purpose: at every commit SQLite walks the writer's whole page-cache hash
    /// table (`pcache1TruncateUnsafe`), which took 9% of the writer thread's time with
    /// 64 MiB when commits are small; pages it misses are read from the file or the WAL.
    /// The search indexer's cache of the search file has this size too. Unlike the
    /// readers' caches, which SQLite drops whenever another connection has committed,
    /// these two keep their pages (nobody else writes their files), so each fills up to
    /// this size as the data grows.
    pub writer_cache_kib: u64,
    /// Conversations the writer thread keeps in memory so that posting a message does not
    /// read back and decode the row it wrote for the previous one (0 turns this off).
    /// Default: 16,384 (a few KiB each).
    pub conversation_cache: usize,
    /// Upper bound on the file size in pages (`PRAGMA max_page_count`); writes past it
    /// fail as on a full disk. Default: none.
    pub max_pages: Option<u64>,
    /// How long the search indexer waits, once a commit wakes it, before it applies the
    /// new events: at most one pass per interval, and none in the moment after a commit,
    /// when the server is fanning the new message out to its sockets (with the pass right
    /// on the commit, the chat server's p99 delivery latency at 10 messages/s was 3.2-6.5
    /// ms; a pass `interval` later, 3.1-3.3 ms). Searches never wait for it (they read the
    /// bodies of messages changed since the index's watermark), so this trades a little
    /// more of that reading for fewer, larger index transactions. After the interval the
    /// indexer goes on gathering until 256 operations have been committed or a second has
    /// passed since the wake (see `search::indexer::FLUSH_OPERATIONS`). Default: 50 ms.
    pub index_interval: Duration,
    /// How long the checkpoint thread waits, once a commit wakes it, before it copies the
    /// write-ahead log into the database: at most one copy per interval, and none in the
    /// moment after a commit (see [`index_interval`](Self::index_interval)). The writer never checkpoints on its commit path
    /// (`wal_autocheckpoint` is off); a longer interval copies a page written many times
    /// once instead of many times, and lets the log grow larger. Default: 50 ms.
    pub checkpoint_interval: Duration,
    /// Size of the write-ahead log, in pages, at which the writer copies what the checkpoint
    /// thread has not yet copied (after answering its callers, before its next transaction)
    /// so that its next transaction starts the log over. Under continuous writes the
    /// checkpoint thread never finds the log idle, so this is what bounds it; the log file
    /// is cut back to twice this size when it starts over (`journal_size_limit`), and to
    /// nothing when the writes stop. Each restart stalls one group of writes while the
    /// writer copies and syncs the last pages (5-25 ms measured), so a larger size means a
    /// lower p99 commit latency under continuous writes and a larger log. Default: 32,768
    /// (128 MiB of 4 KiB pages).
    pub wal_restart_pages: u64,
    /// Whether a read on a multi-threaded tokio runtime runs on the calling worker
    /// (`block_in_place`, when a read connection is free) instead of hopping to the
    /// blocking pool and back. In place is about twice as fast for short reads (the hop
    /// costs two thread wake-ups), but each such read starts a thread to take over the
    /// worker's other tasks, so a process serving many idle connections holds a little
    /// more memory (WebSocket bench: 8.9 instead of 7.5 KiB per idle socket).
    /// Default: true.
    pub reads_in_place: bool,
    /// Up to this many entries of a search's words in the word indexes (messages, titles,
    /// contacts' conversations), the search looks its conversations up there and counts
    /// them exactly; beyond, it walks the inbox newest first testing each conversation,
    /// and stops each mode's count at the query's cap (`ConversationQuery::count_cap`):
    /// a common word then costs about a page and a cap's worth of conversations instead
    /// of a walk of all its messages. Default: 5,000.
    pub search_candidates: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            max_batch: 1000,
            mmap_size: 0,
            cache_kib: 64 * 1024,
            writer_cache_kib: 8 * 1024,
            conversation_cache: 16 * 1024,
            max_pages: None,
            index_interval: Duration::from_millis(50),
            checkpoint_interval: Duration::from_millis(50),
            wal_restart_pages: 32 * 1024,
            reads_in_place: true,
            search_candidates: 5000,
        }
    }
}

impl Options {
    /// Sets [`synchronous`](Self::synchronous).
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Sets [`busy_timeout`](Self::busy_timeout).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`readers`](Self::readers) (at least 1).
    pub fn readers(mut self, readers: u32) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// Sets [`max_batch`](Self::max_batch) (at least 1).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    /// Sets [`mmap_size`](Self::mmap_size).
    pub fn mmap_size(mut self, bytes: u64) -> Self {
        self.mmap_size = bytes;
        self
    }

    /// Sets [`cache_kib`](Self::cache_kib).
    pub fn cache_kib(mut self, kib: u64) -> Self {
        self.cache_kib = kib;
        self
    }

    /// Sets [`writer_cache_kib`](Self::writer_cache_kib).
    pub fn writer_cache_kib(mut self, kib: u64) -> Self {
        self.writer_cache_kib = kib;
        self
    }

    /// Sets [`conversation_cache`](Self::conversation_cache).
    pub fn conversation_cache(mut self, conversations: usize) -> Self {
        self.conversation_cache = conversations;
        self
    }

    /// Sets [`max_pages`](Self::max_pages).
    pub fn max_pages(mut self, pages: Option<u64>) -> Self {
        self.max_pages = pages;
        self
    }

    /// Sets [`index_interval`](Self::index_interval).
    pub fn index_interval(mut self, interval: Duration) -> Self {
        self.index_interval = interval;
        self
    }

    /// Sets [`checkpoint_interval`](Self::checkpoint_interval).
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    /// Sets [`wal_restart_pages`](Self::wal_restart_pages) (at least 1).
    pub fn wal_restart_pages(mut self, pages: u64) -> Self {
        self.wal_restart_pages = pages.max(1);
        self
    }

    /// Sets [`reads_in_place`](Self::reads_in_place).
    pub fn reads_in_place(mut self, in_place: bool) -> Self {
        self.reads_in_place = in_place;
        self
    }

    /// Sets [`search_candidates`](Self::search_candidates).
    pub fn search_candidates(mut self, entries: u64) -> Self {
        self.search_candidates = entries;
        self
    }
}
