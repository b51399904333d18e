//! [`SqliteStore`]: the [`Store`] on a SQLite file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::report::{Dimension, Feedback, ReportQuery, ReportRow, SeriesPoint};
use chat_core::store::{
    Appended, CannedQuery, Committed, ContactErasure, ConversationPage, ConversationQuery,
    ConversationUpdate, HitQuery, MessageQuery,
};
use chat_core::{
    Agent, AgentId, AgentLoad, CannedResponse, Contact, ContactId, Conversation, ConversationId,
    Delivery, DeliveryOutcome, Error, Event, Inbox, InboxId, Mail, MailOutcome, Mention, Message,
    MessageId, NewEvent, NewMessage, ReadCursor, Result, Store, Tenant, TenantId, Webhook,
    WebhookId,
};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use time::OffsetDateTime;

use crate::checkpoint::Checkpoints;
use crate::connection::{configure, in_file, open_helper, open_writer};
use crate::error::Db;
use crate::hits;
use crate::migrations::migrate;
use crate::options::Options;
use crate::readers::{Closed, Readers};
use crate::search::{Search, WordIndex, word_index};
use crate::writer::{Followers, Writer};
use crate::{inboxes, list, mail, read, reports, webhooks, write};

/// How long a compaction waits for the search indexer to reach the newest event.
const COMPACTION_WAITS_FOR_INDEX: Duration = Duration::from_secs(1);

/// A [`Store`] on one SQLite file: WAL, a pool of readers off the async runtime, one
/// writer thread that commits queued operations in groups, and beside it an indexer thread
/// keeping the search index in `<file>-search` and a thread running the WAL checkpoints.
/// Dropping the store finishes the queued writes and stops and joins the threads.
///
/// ```no_run
/// # async fn demo() -> chat_core::Result<()> {
/// use std::sync::Arc;
/// use chat_core::Store;
/// use chat_sqlite::SqliteStore;
///
/// let store: Arc<dyn Store> = Arc::new(SqliteStore::open("chat.db")?);
/// # Ok(()) }
/// ```
pub struct SqliteStore {
    path: PathBuf,
    // Dropped in this order: the writer finishes what is queued, the readers close, then
    // the threads that follow the writer's commits stop; their connections, closing last,
    // fold the logs back into the files and delete them.
    pub(crate) writer: Writer,
    readers: r2d2::Pool<Readers>,
    /// Waits, once the pool is dropped, for its last connection to close, wherever r2d2
    /// closes it (see [`crate::readers`]).
    _readers_closed: Closed,
    /// One permit per read connection, for reads that go to the blocking pool: see
    /// [`read`](Self::read).
    read_slots: Arc<tokio::sync::Semaphore>,
    /// [`Options::reads_in_place`].
    reads_in_place: bool,
    /// Reads run so far, by where they ran: see [`read_counts`](Self::read_counts).
    counts: ReadCounters,
    /// [`Options::search_candidates`].
    search_candidates: u64,
    pub(crate) search: Search,
    /// Held for its `Drop`, which stops and joins the checkpoint thread.
    _checkpoints: Checkpoints,
}

/// How many reads a [`SqliteStore`] ran, by where: see [`SqliteStore::read_counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadCounts {
    /// Reads run on the calling tokio worker (`block_in_place`; see
    /// [`Options::reads_in_place`]).
    pub in_place: u64,
    /// Reads that went to the blocking pool (no free connection, a current-thread
    /// runtime, or reads in place turned off).
    pub pooled: u64,
}

impl ReadCounts {
    /// The reads run since `earlier` was taken.
    pub fn since(self, earlier: ReadCounts) -> ReadCounts {
        ReadCounts {
            in_place: self.in_place.saturating_sub(earlier.in_place),
            pooled: self.pooled.saturating_sub(earlier.pooled),
        }
    }

    /// All of them.
    pub fn total(self) -> u64 {
        self.in_place + self.pooled
    }
}

/// The counters behind [`ReadCounts`]: two relaxed increments per read, next to a query
/// of tens of microseconds.
#[derive(Default)]
struct ReadCounters {
    in_place: std::sync::atomic::AtomicU64,
    pooled: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` with the default [`Options`]:
    /// `synchronous = FULL`, so an acknowledged write survives power loss.
    ///
    /// Fails with [`Error::Storage`] naming the file if it cannot be opened or created, is
    /// not a SQLite database, is corrupt, or was written by a newer schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Options::default())
    }

    /// Opens (or creates) the database at `path` with `options`.
    ///
    /// The search index lives beside it in `<path>-search` (`chat.db-search`): a cache,
    /// made or rebuilt in the background when it is missing, damaged or made for another
    /// database; it never keeps the store from opening, and searches stay exact while it
    /// catches up.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open_writer(&path, &options)?;
        migrate(&mut conn, &path)?;
        let search = Search::start(&path, &options)?;

        let init_options = options.clone();
        let shared = search.shared();
        let manager =
            SqliteConnectionManager::file(&path).with_init(move |conn: &mut Connection| {
                configure(conn, &init_options)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.to_string().into()))?;
                shared.attach_reader(conn);
                conn.execute_batch("PRAGMA query_only = ON")
            });
        let (manager, readers_closed) = Readers::new(manager);
        let readers = r2d2::Pool::builder()
            .max_size(options.readers.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| {
                in_file(
                    &path,
                    Error::Storage(
                        chat_core::StorageError::new(
                            chat_core::StorageKind::Io,
                            format!("cannot open a read connection: {e}"),
                        )
                        .with_source(e),
                    ),
                )
            })?;
        let checkpoints = Checkpoints::start(
            open_helper(&path, &options)?,
            options.checkpoint_interval,
            options.checkpoint_pages,
            options.wal_restart_pages,
        )?;
        let followers = Followers {
            search: search.shared(),
            checkpoints: checkpoints.shared(),
        };
        let writer = Writer::start(
            conn,
            options.max_batch,
            options.conversation_cache,
            followers,
        )?;
        Ok(Self {
            path,
            writer,
            readers,
            _readers_closed: readers_closed,
            read_slots: Arc::new(tokio::sync::Semaphore::new(options.readers.max(1) as usize)),
            reads_in_place: options.reads_in_place,
            counts: ReadCounters::default(),
            search_candidates: options.search_candidates,
            search,
            _checkpoints: checkpoints,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The search index's file, beside the database: `<path>-search`. It can be deleted
    /// while the store is closed (it is rebuilt) and need not be backed up.
    pub fn search_path(&self) -> PathBuf {
        crate::search::search_path(&self.path)
    }

    /// Waits until the search index has applied every event committed before the call
    /// (and finished a rebuild, if one is under way). For tests, benchmarks and operators'
    /// scripts: searches never need it, they are exact whatever the index has caught up
    /// with (they read the bodies of the conversations changed since).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] naming the search file and the cause when the indexer cannot
    /// make progress: two of its passes in a row have failed, with a remedy in between (a
    /// rebuild of a damaged file, or opening the file again), and a pass that began after
    /// this call has failed as well. For example a directory is where the search file
    /// should be, the directory cannot be written, or the disk is full. The indexer goes on
    /// trying every second, so a later call succeeds once the obstacle is gone. Also fails,
    /// naming the file, if the indexer thread has stopped.
    ///
    /// It keeps waiting while the indexer is only slow, or held up by another connection
    /// holding the search file's write lock (another store's indexer, a script): each try
    /// waits out [`Options::busy_timeout`](crate::Options::busy_timeout), and the next
    /// comes a second later. Bound the wait with a timeout where such a lock may be held
    /// for good.
    pub async fn wait_for_search_index(&self) -> Result<()> {
        let target = self
            .read(|conn| {
                conn.query_row("SELECT coalesce(max(rowid), 0) FROM events", [], |row| {
                    row.get::<_, i64>(0)
                })
                .db()
            })
            .await?;
        self.search.wait_for(target).await
    }

    /// Copies the live database to `to` (a file that must not exist), consistent as of
    /// the moment the copy starts, while writes go on; returns its size in bytes. See
    /// [`backup`](crate::backup()).
    pub async fn backup(&self, to: impl AsRef<Path>) -> Result<u64> {
        let to = to.as_ref().to_owned();
        self.read(move |conn| crate::backup::backup_with(conn, &to))
            .await
    }

    /// Runs SQLite's `PRAGMA integrity_check` on the database file (not the search file)
    /// and returns its findings (`["ok"]` for a sound file).
    pub async fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA main.integrity_check").db()?;
            let rows = stmt.query_map([], |row| row.get(0)).db()?;
            rows.collect::<rusqlite::Result<Vec<String>>>().db()
        })
        .await
    }

    /// How many reads this store has run on its read connections since it opened, by
    /// where they ran. Each read in place hands its tokio worker to another thread for
    /// its duration (a thread the runtime may have to start), so a count that grows with
    /// every request or socket of some kind tells where those threads come from; reads
    /// answered without a connection (a conversation the writer just committed) are not
    /// counted.
    ///
    /// ```no_run
    /// # async fn demo(store: &chat_sqlite::SqliteStore) {
    /// let before = store.read_counts();
    /// // ... serve some requests ...
    /// let reads = store.read_counts().since(before);
    /// println!("{} in place, {} on the blocking pool", reads.in_place, reads.pooled);
    /// # }
    /// ```
    pub fn read_counts(&self) -> ReadCounts {
        use std::sync::atomic::Ordering::Relaxed;
        ReadCounts {
            in_place: self.counts.in_place.load(Relaxed),
            pooled: self.counts.pooled.load(Relaxed),
        }
    }

    /// Runs `f` on a pooled read connection, off the async workers' other tasks.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        // A read takes tens of microseconds; the hop to the blocking pool and back (two
        // thread wake-ups) cost as much again. On a multi-threaded runtime, when a
        // connection is free, the read runs right here instead: `block_in_place` hands
        // this worker's other tasks to another thread while it blocks (latest-50 reads,
        // 2 readers: 10,500 -> 24,600-25,200 queries/s). Only with a free connection:
        // each such read also starts a thread to take over the worker, so reads that
        // would wait for a connection wait on the blocking pool instead, and a burst of
        // them (10,000 sockets subscribing) does not multiply threads. A current-thread
        // runtime cannot block in place: the blocking pool it is.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if self.reads_in_place
            && multi_thread
            && let Some(conn) = self.readers.try_get()
        {
            self.counts
                .in_place
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return tokio::task::block_in_place(|| f(&conn));
        }
        self.counts
            .pooled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A blocking thread that waits for a connection is a thread (a stack, a malloc
        // arena) doing nothing: with a burst of reads the pool started one per read (213
        // for 3,000 sockets connecting). Reads wait for a slot here instead, as tasks, so
        // at most one thread per connection waits.
        let slot = self.read_slots.clone().acquire_owned().await.map_err(|_| {
            Error::storage_kind(chat_core::StorageKind::Unavailable, "the store is closed")
        })?;
        let pool = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let conn = pool.get().map_err(|e| {
                in_file(
                    &path,
                    Error::Storage(
                        chat_core::StorageError::new(
                            chat_core::StorageKind::Busy,
                            format!("no read connection: {e}"),
                        )
                        .with_source(e),
                    ),
                )
            })?;
            f(&conn)
        })
        .await
        .map_err(|e| {
            Error::storage_kind(
                chat_core::StorageKind::Unavailable,
                format!("read task failed: {e}"),
            )
        })?
    }

    /// [`read`](Self::read) inside one read transaction, for reads of several statements
    /// that must see one state.
    async fn read_snapshot<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.read(|conn| {
            let tx = conn.unchecked_transaction().db()?;
            let out = f(&tx)?;
            tx.finish().db()?;
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn hold_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agents: &[AgentId],
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>> {
        let agents = agents.to_vec();
        self.writer
            .write(move |c| {
                crate::presence::hold_presence(c, tenant, node, &agents, expires_at, at)
            })
            .await
    }

    async fn release_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<Option<Event>> {
        self.writer
            .write(move |c| crate::presence::release_presence(c, tenant, node, agent, at))
            .await
    }

    async fn lapse_presence(&self, tenant: TenantId, at: OffsetDateTime) -> Result<Vec<Event>> {
        self.writer
            .write(move |c| crate::presence::lapse_presence(c, tenant, at))
            .await
    }

    async fn export_tenant(
        &self,
        tenant: TenantId,
        options: chat_core::export::ExportOptions,
        out: chat_core::export::ExportSink,
    ) -> Result<u64> {
        // Not `read`: that may block in place on an async worker, where the sink's
        // blocking send is not allowed. One read slot and connection is held for the
        // whole export; the other readers go on serving.
        let slot = self.read_slots.clone().acquire_owned().await.map_err(|_| {
            Error::storage_kind(chat_core::StorageKind::Unavailable, "the store is closed")
        })?;
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let conn = pool.get().map_err(|e| {
                Error::storage_kind(
                    chat_core::StorageKind::Busy,
                    format!("no read connection: {e}"),
                )
            })?;
            crate::export::export_tenant(&conn, tenant, options, &out)
        })
        .await
        .map_err(|e| {
            Error::storage_kind(
                chat_core::StorageKind::Unavailable,
                format!("export task failed: {e}"),
            )
        })?
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> Result<()> {
        let tenant = tenant.clone();
        self.writer
            .write(move |c| write::insert_tenant(c, &tenant))
            .await
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        let tenant = tenant.clone();
        self.writer
            .write(move |c| write::update_tenant(c, &tenant))
            .await
    }

    async fn update_tenant_settings(&self, tenant: &Tenant, at: OffsetDateTime) -> Result<Event> {
        let tenant = tenant.clone();
        self.writer
            .write(move |s| write::update_tenant_settings(s, &tenant, at))
            .await
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        self.read(move |c| read::tenant(c, id)).await
    }

    async fn log_credential_change(&self, tenant: TenantId, at: OffsetDateTime) -> Result<Event> {
        self.writer
            .write(move |s| write::append_event(s, NewEvent::credentials_changed(tenant, at)))
            .await
    }

    async fn insert_contact(&self, contact: &Contact) -> Result<()> {
        let contact = contact.clone();
        self.writer
            .write(move |c| write::insert_contact(c, &contact))
            .await
    }

    async fn update_contact(&self, contact: &Contact) -> Result<()> {
        let contact = contact.clone();
        self.writer
            .write(move |c| write::update_contact(c, &contact))
            .await
    }

    async fn contact(&self, tenant: TenantId, id: ContactId) -> Result<Option<Contact>> {
        self.read(move |c| read::contact(c, tenant, id)).await
    }

    async fn list_contacts(&self, query: &chat_core::store::ContactQuery) -> Result<Vec<Contact>> {
        let query = query.clone();
        self.read(move |c| read::list_contacts(c, &query)).await
    }

    async fn verified_contact(&self, tenant: TenantId, email: &str) -> Result<Option<Contact>> {
        let email = email.to_owned();
        self.read(move |c| read::verified_contact(c, tenant, &email))
            .await
    }

    async fn merge_contact(
        &self,
        into: &Contact,
        from: ContactId,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let into = into.clone();
        self.writer
            .write(move |s| write::merge_contact(s, &into, from, at))
            .await
    }

    async fn erase_contact(&self, erasure: &ContactErasure) -> Result<Vec<Event>> {
        let erasure = erasure.clone();
        let events = self
            .writer
            .write(move |s| write::erase_contact(s, &erasure))
            .await?;
        // Committed; now out of the search file and the logs (src/erasure.rs). Once the
        // indexer has applied the `conversation_deleted` events, the words it held are
        // tombstones only, which the purge's `optimize` drops.
        // A failure here must not fail the erasure, which has committed (the engine still
        // has files to remove): it is logged, the checkpoint thread's idle `TRUNCATE`
        // clears the log within a second of quiet, and the next erasure's `optimize`
        // drops what this one left in the index.
        let purged = match self.wait_for_search_index().await {
            Ok(()) => {
                let (db, search) = (self.path.clone(), self.search_path());
                tokio::task::spawn_blocking(move || crate::erasure::purge(&db, &search))
                    .await
                    .map_err(Error::storage)
                    .and_then(|r| r)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = purged {
            tracing::warn!(error = %e, "chat-sqlite: an erasure committed but its purge failed");
        }
        Ok(events)
    }

    async fn insert_agent(&self, agent: &Agent) -> Result<Event> {
        let agent = agent.clone();
        self.writer
            .write(move |c| write::insert_agent(c, &agent))
            .await
    }

    async fn update_agent(&self, agent: &Agent) -> Result<Event> {
        let agent = agent.clone();
        self.writer
            .write(move |c| write::update_agent(c, &agent))
            .await
    }

    async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<Agent>> {
        self.read(move |c| read::agent(c, tenant, id)).await
    }

    async fn agent_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Agent>> {
        let email = email.to_owned();
        self.read(move |c| read::agent_by_email(c, tenant, &email))
            .await
    }

    async fn agents(&self, tenant: TenantId) -> Result<Vec<Agent>> {
        self.read(move |c| read::agents(c, tenant)).await
    }

    async fn agent_loads(&self, tenant: TenantId) -> Result<Vec<AgentLoad>> {
        self.read_snapshot(move |c| read::agent_loads(c, tenant))
            .await
    }

    async fn create_conversation(
        &self,
        conversation: &Conversation,
        messages: Vec<NewMessage>,
    ) -> Result<Committed> {
        let conversation = conversation.clone();
        self.writer
            .write(move |c| write::create_conversation(c, &conversation, messages.clone()))
            .await
    }

    async fn update_conversation(&self, update: ConversationUpdate) -> Result<Committed> {
        self.writer
            .write(move |c| write::update_conversation(c, update.clone()))
            .await
    }

    async fn assign_within_capacity(
        &self,
        update: ConversationUpdate,
        capacity: u32,
    ) -> Result<Committed> {
        self.writer
            .write(move |c| write::assign_within_capacity(c, update.clone(), capacity))
            .await
    }

    async fn assign_in_turn(
        &self,
        update: ConversationUpdate,
        capacity: u32,
        turn: Option<AgentId>,
    ) -> Result<Committed> {
        self.writer
            .write(move |c| crate::presence::assign_in_turn(c, update.clone(), capacity, turn))
            .await
    }

    async fn routing_turn(&self, tenant: TenantId) -> Result<Option<AgentId>> {
        self.read(move |c| crate::presence::routing_turn(c, tenant))
            .await
    }

    async fn delete_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
        at: OffsetDateTime,
    ) -> Result<Event> {
        self.writer
            .write(move |c| write::delete_conversation(c, tenant, id, at))
            .await
    }

    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        // Every posted message reads its conversation first: the state the writer last
        // committed answers without a connection, a query or a decode when the writer can
        // vouch for it (`writer::Committed`); otherwise the database does.
        if let Some(conversation) = self.writer.committed().conversation(tenant, id) {
            return Ok(Some(conversation));
        }
        self.read(move |c| read::conversation(c, tenant, id)).await
    }

    async fn list_conversations(&self, query: &ConversationQuery) -> Result<ConversationPage> {
        let query = query.clone();
        if query.text.is_none() {
            return self
                .read_snapshot(move |c| list::list_conversations(c, &query, WordIndex::Scan, 0))
                .await;
        }
        let search = self.search.shared();
        let candidates = self.search_candidates;
        self.read(move |conn| {
            search.attach_reader(conn);
            let tx = conn.unchecked_transaction().db()?;
            let index = word_index(&tx);
            let page = match list::list_conversations(&tx, &query, index, candidates) {
                // The index failed (a damaged search file, say): the same snapshot can
                // still answer by reading bodies, and the indexer checks the file.
                Err(_) if index != WordIndex::Scan => {
                    search.suspect();
                    list::list_conversations(&tx, &query, WordIndex::Scan, candidates)
                }
                other => other,
            }?;
            tx.finish().db()?;
            Ok(page)
        })
        .await
    }

    async fn queue(&self, tenant: TenantId, limit: usize) -> Result<Vec<Conversation>> {
        self.read(move |c| read::queue(c, tenant, limit)).await
    }

    async fn append_message(&self, message: NewMessage) -> Result<Appended> {
        self.writer
            .write(move |c| write::append_message(c, message.clone()))
            .await
    }

    async fn update_message(&self, message: &Message) -> Result<Event> {
        let message = message.clone();
        self.writer
            .write(move |c| write::update_message(c, &message))
            .await
    }

    async fn message(&self, tenant: TenantId, id: MessageId) -> Result<Option<Message>> {
        self.read(move |c| read::message(c, tenant, id)).await
    }

    async fn messages(&self, query: &MessageQuery) -> Result<Vec<Message>> {
        let query = query.clone();
        self.read(move |c| read::messages(c, &query)).await
    }

    async fn message_hits(&self, query: &HitQuery) -> Result<Vec<Message>> {
        let query = query.clone();
        let search = self.search.shared();
        // As a text search: one snapshot of both files, the index where it is exact.
        self.read(move |conn| {
            search.attach_reader(conn);
            let tx = conn.unchecked_transaction().db()?;
            let index = word_index(&tx);
            let hits = match hits::message_hits(&tx, &query, index) {
                Err(_) if index != WordIndex::Scan => {
                    search.suspect();
                    hits::message_hits(&tx, &query, WordIndex::Scan)
                }
                other => other,
            }?;
            tx.finish().db()?;
            Ok(hits)
        })
        .await
    }

    async fn set_read_cursor(&self, cursor: &ReadCursor) -> Result<(Conversation, Option<Event>)> {
        let cursor = cursor.clone();
        self.writer
            .write(move |c| write::set_read_cursor(c, &cursor))
            .await
    }

    async fn read_cursors(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<ReadCursor>> {
        self.read_snapshot(move |c| read::read_cursors(c, tenant, conversation))
            .await
    }

    async fn events_since(&self, tenant: TenantId, after: u64, limit: usize) -> Result<Vec<Event>> {
        self.read(move |c| read::events_since(c, tenant, after, limit))
            .await
    }

    async fn event_head(&self, tenant: TenantId) -> Result<u64> {
        self.read(move |c| read::event_head(c, tenant)).await
    }

    async fn compact_events(&self, tenant: TenantId, through: u64, limit: usize) -> Result<u64> {
        // The indexer follows the log by rowid and must find the event at its watermark:
        // nothing from there on goes. It is given a moment to catch up first (a busy
        // indexer only makes this pass keep more; the next one takes the rest).
        let _ =
            tokio::time::timeout(COMPACTION_WAITS_FOR_INDEX, self.wait_for_search_index()).await;
        let indexed = self.search.watermark();
        self.writer
            .write(move |s| crate::events::compact(s, tenant, through, limit, indexed))
            .await
    }

    async fn put_canned_response(&self, response: &CannedResponse) -> Result<Event> {
        let response = response.clone();
        self.writer
            .write(move |s| write::put_canned_response(s, &response))
            .await
    }

    async fn delete_canned_response(
        &self,
        response: &CannedResponse,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let response = response.clone();
        self.writer
            .write(move |s| write::delete_canned_response(s, &response, at))
            .await
    }

    async fn canned_responses(&self, query: &CannedQuery) -> Result<Vec<CannedResponse>> {
        let query = query.clone();
        self.read(move |c| read::canned_responses(c, &query)).await
    }

    async fn record_mentions(&self, mentions: &[Mention]) -> Result<Vec<Event>> {
        let mentions = mentions.to_vec();
        self.writer
            .write(move |s| write::record_mentions(s, &mentions))
            .await
    }

    async fn mentions(
        &self,
        tenant: TenantId,
        agent: AgentId,
        limit: usize,
    ) -> Result<(Vec<Mention>, u64)> {
        self.read(move |c| read::mentions(c, tenant, agent, limit))
            .await
    }

    async fn read_mentions(
        &self,
        tenant: TenantId,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<u64> {
        self.writer
            .write(move |c| write::read_mentions(c, tenant, agent, at))
            .await
    }

    async fn put_webhook(&self, webhook: &Webhook) -> Result<()> {
        let webhook = webhook.clone();
        self.writer
            .write(move |c| webhooks::put_webhook(c, &webhook))
            .await
    }

    async fn delete_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<()> {
        self.writer
            .write(move |c| webhooks::delete_webhook(c, tenant, id))
            .await
    }

    async fn put_inbox(&self, inbox: &Inbox) -> Result<()> {
        let inbox = inbox.clone();
        self.writer
            .write(move |c| inboxes::put_inbox(c, &inbox))
            .await
    }

    async fn replace_inbox(&self, inbox: &Inbox, seen: OffsetDateTime) -> Result<bool> {
        let inbox = inbox.clone();
        self.writer
            .write(move |c| inboxes::replace_inbox(c, &inbox, seen))
            .await
    }

    async fn delete_inbox(&self, tenant: TenantId, id: InboxId) -> Result<()> {
        self.writer
            .write(move |c| inboxes::delete_inbox(c, tenant, id))
            .await
    }

    async fn inboxes(&self, tenant: TenantId) -> Result<Vec<Inbox>> {
        self.read(move |c| inboxes::inboxes(c, tenant)).await
    }

    async fn inbox(&self, id: InboxId) -> Result<Option<Inbox>> {
        self.read(move |c| inboxes::inbox(c, id)).await
    }

    async fn inbox_thread(&self, inbox: InboxId, external: &str) -> Result<Option<ConversationId>> {
        let external = external.to_owned();
        self.read(move |c| inboxes::inbox_thread(c, inbox, &external))
            .await
    }

    async fn link_inbox_thread(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        external: &str,
        conversation: ConversationId,
    ) -> Result<ConversationId> {
        let external = external.to_owned();
        self.writer
            .write(move |c| inboxes::link_inbox_thread(c, tenant, inbox, &external, conversation))
            .await
    }

    async fn poll_inbox(
        &self,
        inbox: InboxId,
        node: &str,
        offset: i64,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<i64>> {
        let node = node.to_owned();
        let (now, until) = (crate::codec::ns(now)?, crate::codec::ns(until)?);
        self.writer
            .write(move |c| inboxes::poll_inbox(c, inbox, &node, offset, now, until))
            .await
    }

    async fn queue_mail(&self, m: &Mail, once_since: Option<OffsetDateTime>) -> Result<bool> {
        let m = m.clone();
        self.writer
            .write(move |c| mail::queue_mail(c, &m, once_since))
            .await
    }

    async fn claim_mails(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Mail>> {
        // Asked every second or so and mostly nothing is due: look on a reader first, so
        // an idle server commits nothing.
        if !self.read(move |c| mail::any_due(c, now)).await? {
            return Ok(Vec::new());
        }
        self.writer
            .write(move |c| mail::claim_mails(c, now, lease_until, limit))
            .await
    }

    async fn record_mail(&self, outcome: &MailOutcome) -> Result<()> {
        let outcome = outcome.clone();
        self.writer
            .write(move |c| mail::record_mail(c, &outcome))
            .await
    }

    async fn mails(&self, tenant: TenantId, limit: usize) -> Result<Vec<Mail>> {
        self.read(move |c| mail::mails(c, tenant, limit)).await
    }

    async fn webhooks(&self, tenant: TenantId) -> Result<Vec<Webhook>> {
        self.read(move |c| webhooks::webhooks(c, tenant)).await
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        // A worker asks every half second; mostly nothing is due. Look first on a reader
        // (one seek on the partial index), so an idle server commits nothing.
        let due_ns = crate::codec::ns(now)?;
        let any_due = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' \
                     AND next_attempt_ns <= ?1 LIMIT 1",
                )
                .db()?
                .exists([due_ns])
                .db()
            })
            .await?;
        if !any_due {
            return Ok(Vec::new());
        }
        // On the writer: the claim reads and leases in one transaction, so two workers
        // never claim the same delivery.
        self.writer
            .write(move |c| webhooks::claim_deliveries(c, now, lease_until, limit))
            .await
    }

    async fn record_delivery(&self, outcome: &DeliveryOutcome) -> Result<Option<Event>> {
        let outcome = outcome.clone();
        self.writer
            .write(move |s| webhooks::record_delivery(s, &outcome))
            .await
    }

    async fn deliveries(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.read(move |c| webhooks::deliveries(c, tenant, webhook, before, limit))
            .await
    }

    async fn redeliver(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        seq: u64,
        now: OffsetDateTime,
    ) -> Result<Delivery> {
        self.writer
            .write(move |c| webhooks::redeliver(c, tenant, webhook, seq, now))
            .await
    }

    async fn report_rows(
        &self,
        query: &ReportQuery,
        by: Option<Dimension>,
    ) -> Result<Vec<ReportRow>> {
        let query = query.clone();
        self.read_snapshot(move |c| reports::report_rows(c, &query, by))
            .await
    }

    async fn report_series(
        &self,
        query: &ReportQuery,
        bounds: &[OffsetDateTime],
    ) -> Result<Vec<SeriesPoint>> {
        let (query, bounds) = (query.clone(), bounds.to_vec());
        self.read_snapshot(move |c| reports::report_series(c, &query, &bounds))
            .await
    }

    async fn report_feedback(&self, query: &ReportQuery, limit: usize) -> Result<Vec<Feedback>> {
        let query = query.clone();
        self.read(move |c| reports::report_feedback(c, &query, limit))
            .await
    }
}

/// `Arc<SqliteStore>` is what the engine holds; this keeps the conversion one call.
impl From<SqliteStore> for Arc<dyn Store> {
    fn from(store: SqliteStore) -> Self {
        Arc::new(store)
    }
}
