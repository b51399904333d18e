//! [`PostgresStore`]: chat-core's [`Store`] on PostgreSQL.
//!
//! Every write is one transaction at `READ COMMITTED` that locks what it changes before it
//! reads it (`SELECT ... FOR UPDATE` on the conversation row), so a check and the write it
//! guards see the same row, also across servers. The tenant's event sequences are taken
//! last, from its `event_heads` row (see `migrations/0001_init.sql` for why), which keeps
//! the time a tenant's writers wait on each other to the end of each transaction. Locks are
//! always taken in the order conversation, then event head, so writers never deadlock. The
//! counter moves and the events are inserted in one statement (one round trip), then the
//! transaction commits.

use std::time::Duration;

use async_trait::async_trait;
use chat_core::report::{Dimension, Feedback, ReportQuery, ReportRow, SeriesPoint};
use chat_core::store::{
    Appended, CannedQuery, Committed, ContactErasure, ConversationPage, ConversationQuery,
    ConversationUpdate, HitQuery, MessageQuery, TextQuery,
};
use chat_core::write::{ConversationWrite, MessageWrite, ReadMove, edit_message};
use chat_core::{
    Agent, AgentId, AgentLoad, CannedResponse, Contact, ContactId, Conversation,
    ConversationChange, ConversationId, Delivery, DeliveryOutcome, Error, Event, Inbox, InboxId,
    Mail, MailOutcome, Mention, Message, MessageId, MessageKind, NewEvent, NewMessage, ReadCursor,
    Reader, Result, Store, Tenant, TenantId, Webhook, WebhookId,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use time::OffsetDateTime;
use tokio_postgres::NoTls;
use tokio_postgres::types::Json;

use crate::codec::{all, int, json, limit, ns, ns_opt, one, priority_rank, reader_key, sender_key};
use crate::error::Db;
use crate::reports;
use crate::search::Indexed;

/// How long opening a connection may take (unless the URL says `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request waits for a pooled connection when all are busy.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// How [`PostgresStore::connect_with`] connects.
#[derive(Clone, Debug)]
pub struct Options {
    pool_size: usize,
    schema: Option<String>,
    ca_file: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            pool_size: 16,
            schema: None,
            ca_file: None,
        }
    }
}

impl Options {
    /// Most connections the pool opens (16 by default). Each server node holds its own
    /// pool, so PostgreSQL's `max_connections` bounds nodes × this.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// Keeps the store's tables in this schema (which must exist) instead of the user's
    /// default `search_path`: several desks, or tests, in one database. Lower-case ASCII
    /// letters, digits and `_` only.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Trusts only the CA certificates (PEM) of this file for the server's certificate,
    /// as the URL's `sslrootcert` does (this wins over it); with `sslmode=require` it also
    /// turns the check on, as `verify-ca`. See the crate README's TLS section.
    pub fn ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
}

/// The store on a pool of PostgreSQL connections. Several processes may share one database:
/// every rule that must hold across them (sequences, versions, unique keys) is enforced by
/// PostgreSQL inside the write's transaction.
///
/// ```no_run
/// # async fn run() -> chat_core::Result<()> {
/// let store = chat_postgres::PostgresStore::connect("postgres://postgres@127.0.0.1:5432/chat").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's configuration holds the password, if the URL had one.
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// `update_conversation`, with the capacity check of `assign_within_capacity` when
    /// `capacity` is given, and the routing turn's move of `assign_in_turn` when `turn` is.
    async fn write_update(
        &self,
        update: ConversationUpdate,
        capacity: Option<u32>,
        turn: Option<Option<AgentId>>,
    ) -> Result<Committed> {
        let new = &update.conversation;
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let current = lock_conversation(&tx, new.tenant_id, new.id).await?;
        if current.version != new.version {
            return Err(Error::version_race(
                "conversation",
                new.version,
                current.version,
            ));
        }
        if let Some(capacity) = capacity {
            check_capacity(&tx, new, capacity).await?;
        }
        if let (Some(turn), Some(agent)) = (turn, new.assigned_agent_id) {
            crate::presence::move_turn(&tx, new.tenant_id, turn, agent).await?;
        }
        // The update rewrites `data`: the conversation's slim event, which reads it, is
        // written out first (the row is locked).
        crate::events::inline_conversation_events(&tx, new.tenant_id, &[new.id.0]).await?;
        let reopened = matches!(update.change, ConversationChange::Reopened);
        let write = ConversationWrite::update(update)?;
        let committed = store_write(&tx, write, false).await?;
        if reopened {
            let c = &committed.conversation;
            tx.execute(
                "INSERT INTO conversation_reopens (conversation_id, tenant_id, at_ns) \
                 VALUES ($1, $2, $3)",
                &[&c.id.0, &c.tenant_id.0, &ns(c.updated_at)?],
            )
            .await
            .db()?;
        }
        tx.commit().await.db()?;
        Ok(committed)
    }

    /// Connects to the database at `url` (`postgres://user:password@host:port/database`,
    /// or the key-value form) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, Options::default()).await
    }

    /// [`connect`](Self::connect) with options. [`Error::Validation`] on `store` for a URL
    /// or schema name that cannot be used; a storage error if the database cannot be
    /// reached or migrated.
    pub async fn connect_with(url: &str, options: Options) -> Result<Self> {
        // `sslmode=verify-ca|verify-full` and `sslrootcert` are read here: tokio-postgres
        // parses neither.
        let (url, verify, root) = crate::tls::split_url(url);
        let ca_file = options.ca_file.clone().or(root);
        let tls = crate::tls::connector(verify, ca_file.as_deref())?;
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            // The parser's message never repeats the URL, so no password leaks through it.
            Error::validation("store", format!("not a PostgreSQL URL: {e}"))
        })?;
        if let Some(schema) = &options.schema {
            let valid = !schema.is_empty()
                && schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(Error::validation(
                    "store",
                    "schema names are lower-case ASCII letters, digits and _",
                ));
            }
            config.options(format!("-c search_path={schema}"));
        }
        if config.get_application_name().is_none() {
            config.application_name("chat-postgres");
        }
        // An unreachable host must fail a request, not hold it until TCP gives up.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            Some(tls) => Manager::from_config(config, tls, manager_config),
            None => Manager::from_config(config, NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            // Every connection busy for this long: the store is overloaded; say so
            // (`Unavailable`) rather than queue requests without end.
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .build()
            .map_err(|e| Error::validation("store", format!("connection pool: {e}")))?;
        let mut client = pool.get().await.db()?;
        crate::migrations::migrate(&mut client).await?;
        drop(client);
        Ok(Self { pool })
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.db()
    }
}

/// Numbers `events` (one write's, in log order, all of one tenant) with the tenant's next
/// sequences and stores them, in one statement: the tenant's `event_heads` row moves by
/// their number, and its lock is held until the transaction ends. One round trip, so the
/// tenant's other writers wait for little more than this write's commit. `stored` are the
/// messages this transaction has just inserted: a `message_created` event of one of them,
/// as it was stored, refers to its row instead of copying it (see `events.rs`); so does a
/// conversation event of `written`, the conversation this transaction has just written.
async fn log_events(
    tx: &Transaction<'_>,
    events: &mut [Event],
    stored: &[Message],
    written: Option<&Conversation>,
) -> Result<()> {
    let Some(tenant) = events.first().map(|e| e.tenant_id) else {
        return Ok(());
    };
    let stmt = tx
        .prepare_cached(
            "WITH head AS ( \
                 INSERT INTO event_heads (tenant_id, last_seq) VALUES ($1, $2) \
                 ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_heads.last_seq + EXCLUDED.last_seq \
                 RETURNING last_seq - $2 AS before \
             ), input AS ( \
                 SELECT * FROM unnest($3::uuid[], $4::jsonb[], $5::text[], $6::int8[], $7::uuid[], \
                     $8::bool[]) \
                     WITH ORDINALITY AS e (conversation_id, data, kind, at_ns, message_id, \
                         conversation_row, ord) \
             ), logged AS ( \
                 INSERT INTO events (tenant_id, seq, conversation_id, data, message_id, \
                     conversation_row) \
                 SELECT $1, head.before + e.ord, e.conversation_id, \
                        CASE WHEN e.message_id IS NOT NULL THEN '{}' \
                             WHEN e.conversation_row THEN e.data \
                             ELSE jsonb_set(e.data, '{seq}', to_jsonb(head.before + e.ord)) END, \
                        e.message_id, e.conversation_row \
                 FROM head, input e \
                 RETURNING 1 \
             ), outbox AS ( \
                 INSERT INTO webhook_deliveries (webhook_id, seq, tenant_id, conversation_id, kind, \
                     state, attempts, next_attempt_ns, created_ns) \
                 SELECT w.id, head.before + e.ord, $1, e.conversation_id, e.kind, 'pending', 0, \
                        e.at_ns, e.at_ns \
                 FROM head, input e JOIN webhooks w ON w.tenant_id = $1 \
                     AND (w.kinds = '' OR strpos(w.kinds, ' ' || e.kind || ' ') > 0) \
                 WHERE e.kind NOT IN ('mentioned', 'canned_response_updated', 'canned_response_deleted', \
                                      'credentials_changed') \
                 RETURNING 1 \
             ) SELECT before FROM head",
        )
        .await
        .db()?;
    let conversations: Vec<Option<uuid::Uuid>> = events
        .iter()
        .map(|e| e.conversation_id.map(|c| c.0))
        .collect();
    // A slim conversation event's data is its slim form, without `seq` (the row has it).
    let mut data: Vec<Json<EventData<'_>>> = Vec::with_capacity(events.len());
    let mut conversation_rows: Vec<Option<bool>> = Vec::with_capacity(events.len());
    for event in events.iter() {
        match crate::events::slim_conversation(event, written)? {
            Some(slim) => {
                data.push(Json(EventData::Slim(Box::new(slim))));
                conversation_rows.push(Some(true));
            }
            None => {
                data.push(Json(EventData::Full(event)));
                conversation_rows.push(None);
            }
        }
    }
    // Decided here, not by a join in the statement: the statement runs while the tenant's
    // counter is locked, and a cached plan made while `messages` was empty (a new
    // database) scanned the whole table for each post.
    let messages: Vec<Option<uuid::Uuid>> = events
        .iter()
        .map(|e| crate::events::referable(e, stored))
        .collect();
    // For the outbox (webhook deliveries, written here with their events).
    let kinds: Vec<&str> = events.iter().map(|e| e.payload.kind()).collect();
    let at: Vec<i64> = events.iter().map(|e| ns(e.at)).collect::<Result<_>>()?;
    let before: i64 = tx
        .query_one(
            &stmt,
            &[
                &tenant.0,
                &(events.len() as i64),
                &conversations,
                &data,
                &kinds,
                &at,
                &messages,
                &conversation_rows,
            ],
        )
        .await
        .db()?
        .get(0);
    for (event, seq) in events.iter_mut().zip(before.max(0) as u64 + 1..) {
        event.seq = seq;
    }
    Ok(())
}

/// What an event's row stores in `data`: the event, or its slim form.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
enum EventData<'a> {
    Full(&'a Event),
    Slim(Box<crate::events::SlimConversation>),
}

/// Numbers and stores one event.
pub(crate) async fn log_one(tx: &Transaction<'_>, event: NewEvent) -> Result<Event> {
    // Numbered by `log_events`; 0 until then.
    let mut logged = [event.into_event(0)];
    log_events(tx, &mut logged, &[], None).await?;
    let [event] = logged;
    Ok(event)
}

/// Leaves events for [`log_events`] to number.
fn unnumbered(e: NewEvent) -> Result<Event> {
    Ok(e.into_event(0))
}

const CONVERSATION_COLUMNS: &str = "id, tenant_id, contact_id, channel, mode, priority, department, \
    assigned_agent_id, participants, tags, pinned, title_words, title_list, updated_at_ns, queued_at_ns, version, data, \
    created_at_ns, first_response_at_ns, closed_at_ns, rated_at_ns, rating_score";

/// Inserts (`insert`) or replaces a conversation row from its value.
pub(crate) async fn put_conversation(
    tx: &Transaction<'_>,
    c: &Conversation,
    insert: bool,
) -> Result<()> {
    let sql = if insert {
        format!(
            "INSERT INTO conversations ({CONVERSATION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::tsvector, $17, $13, $14, $15, $16, \
             $18, $19, $20, $21, $22)"
        )
    } else {
        "UPDATE conversations SET tenant_id = $2, contact_id = $3, channel = $4, mode = $5, \
         priority = $6, department = $7, assigned_agent_id = $8, participants = $9, tags = $10, \
         pinned = $11, title_words = $12::text::tsvector, title_list = $17, updated_at_ns = $13, queued_at_ns = $14, version = $15, \
         data = $16, created_at_ns = $18, first_response_at_ns = $19, closed_at_ns = $20, \
         rated_at_ns = $21, rating_score = $22 WHERE id = $1"
            .to_owned()
    };
    let participants: Vec<uuid::Uuid> = c.participants.iter().map(|a| a.0).collect();
    let title = Indexed::of(c.title.as_deref());
    let stmt = tx.prepare_cached(&sql).await.db()?;
    tx.execute(
        &stmt,
        &[
            &c.id.0,
            &c.tenant_id.0,
            &c.contact_id.0,
            &c.channel.as_str(),
            &c.mode.as_str(),
            &priority_rank(c.priority),
            &c.department,
            &c.assigned_agent_id.map(|a| a.0),
            &participants,
            &c.tags,
            &c.pinned,
            &title.tsvector,
            &ns(c.updated_at)?,
            &ns_opt(c.queued_at)?,
            &int(c.version),
            &Json(c),
            &title.list,
            &ns(c.created_at)?,
            &ns_opt(c.first_response_at)?,
            &ns_opt(c.closed_at)?,
            &ns_opt(c.rating.as_ref().map(|r| r.rated_at))?,
            &c.rating.as_ref().map(|r| i16::from(r.score)),
        ],
    )
    .await
    .db()?;
    Ok(())
}

/// The search columns of a message: its words, none once deleted (deleted messages never
/// match).
fn message_search(m: &Message) -> (bool, Indexed) {
    let deleted = m.deleted_at.is_some();
    if deleted {
        return (true, Indexed::none());
    }
    (false, Indexed::of(Some(&m.body)))
}

pub(crate) async fn insert_message(tx: &Transaction<'_>, m: &Message) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, \
             client_message_id, deleted, words, word_list, data) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::tsvector, $10, $11)",
        )
        .await
        .db()?;
    let (deleted, words) = message_search(m);
    tx.execute(
        &stmt,
        &[
            &m.id.0,
            &m.tenant_id.0,
            &m.conversation_id.0,
            &int(m.seq),
            &sender_key(m.sender),
            &m.kind.as_str(),
            &m.client_message_id,
            &deleted,
            &words.tsvector,
            &words.list,
            &Json(m),
        ],
    )
    .await
    .db()?;
    Ok(())
}

/// The conversation, locked for this transaction; [`Error::NotFound`] if absent from the
/// tenant.
async fn lock_conversation(
    tx: &Transaction<'_>,
    tenant: TenantId,
    id: ConversationId,
) -> Result<Conversation> {
    let stmt = tx
        .prepare_cached(
            "SELECT data FROM conversations WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        )
        .await
        .db()?;
    let row = tx.query_opt(&stmt, &[&id.0, &tenant.0]).await.db()?;
    one(row)?.ok_or(Error::NotFound("conversation"))
}

/// Stores a write's conversation and messages and numbers its events.
async fn store_write(
    tx: &Transaction<'_>,
    write: ConversationWrite,
    insert: bool,
) -> Result<Committed> {
    put_conversation(tx, &write.conversation, insert).await?;
    for m in &write.messages {
        insert_message(tx, m).await?;
    }
    let mut committed = write.commit(unnumbered)?;
    log_events(
        tx,
        &mut committed.events,
        &committed.messages,
        Some(&committed.conversation),
    )
    .await?;
    Ok(committed)
}

async fn put_contact(tx: &Transaction<'_>, c: &Contact, insert: bool) -> Result<u64> {
    let sql = if insert {
        "INSERT INTO contacts (id, tenant_id, email_lc, email_verified, name_words, name_list, \
         email_words, email_list, data) \
         VALUES ($1, $2, $3, $4, $5::text::tsvector, $6, $7::text::tsvector, $8, $9)"
    } else {
        "UPDATE contacts SET email_lc = $3, email_verified = $4, name_words = $5::text::tsvector, \
         name_list = $6, email_words = $7::text::tsvector, email_list = $8, data = $9 \
         WHERE id = $1 AND tenant_id = $2"
    };
    let email_lc = c.email.as_deref().map(str::to_ascii_lowercase);
    let name = Indexed::of(c.name.as_deref());
    let email = Indexed::of(c.email.as_deref());
    tx.execute(
        sql,
        &[
            &c.id.0,
            &c.tenant_id.0,
            &email_lc,
            &(c.email_verified && c.email.is_some()),
            &name.tsvector,
            &name.list,
            &email.tsvector,
            &email.list,
            &Json(c),
        ],
    )
    .await
    .db()
}

/// Inserts a contact in `tx`: what `insert_contact` and `create_account` share.
pub(crate) async fn insert_contact_in(tx: &Transaction<'_>, c: &Contact) -> Result<()> {
    put_contact(tx, c, true).await.map(|_| ())
}

pub(crate) async fn put_agent(tx: &Transaction<'_>, a: &Agent, insert: bool) -> Result<u64> {
    let sql = if insert {
        "INSERT INTO agents (id, tenant_id, name, email_lc, active, data) VALUES ($1, $2, $3, $4, $5, $6)"
    } else {
        "UPDATE agents SET name = $3, email_lc = $4, active = $5, data = $6 \
         WHERE id = $1 AND tenant_id = $2"
    };
    tx.execute(
        sql,
        &[
            &a.id.0,
            &a.tenant_id.0,
            &a.name,
            &a.email.to_ascii_lowercase(),
            &a.active,
            &Json(a),
        ],
    )
    .await
    .db()
}

#[async_trait]
impl Store for PostgresStore {
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO tenants (id, created_at_ns, data) VALUES ($1, $2, $3)",
                &[&tenant.id.0, &ns(tenant.created_at)?, &Json(tenant)],
            )
            .await
            .db()?;
        Ok(())
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE tenants SET data = $2 WHERE id = $1",
                &[&tenant.id.0, &Json(tenant)],
            )
            .await
            .db()?;
        if n == 0 {
            return Err(Error::NotFound("tenant"));
        }
        Ok(())
    }

    async fn log_credential_change(&self, tenant: TenantId, at: OffsetDateTime) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let event = log_one(&tx, NewEvent::credentials_changed(tenant, at)).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn update_tenant_settings(&self, tenant: &Tenant, at: OffsetDateTime) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // `FOR UPDATE` holds the row until commit: two servers writing at once are
        // compared one after the other, never both against the same version.
        let row = tx
            .query_opt(
                "SELECT coalesce((data->>'settings_version')::bigint, 0) FROM tenants WHERE id = $1 FOR UPDATE",
                &[&tenant.id.0],
            )
            .await
            .db()?;
        let stored = row.ok_or(Error::NotFound("tenant"))?.get::<_, i64>(0) as u64;
        if stored.checked_add(1) != Some(tenant.settings_version) {
            return Err(Error::version_race(
                "settings",
                tenant.settings_version.saturating_sub(1),
                stored,
            ));
        }
        tx.execute(
            "UPDATE tenants SET data = $2 WHERE id = $1",
            &[&tenant.id.0, &Json(tenant)],
        )
        .await
        .db()?;
        let event = log_one(&tx, NewEvent::settings_updated(tenant, at)).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT data FROM tenants WHERE id = $1", &[&id.0])
            .await
            .db()?;
        one(row)
    }

    async fn insert_contact(&self, contact: &Contact) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        insert_contact_in(&tx, contact).await?;
        tx.commit().await.db()
    }

    async fn update_contact(&self, contact: &Contact) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        if put_contact(&tx, contact, false).await? == 0 {
            return Err(Error::NotFound("contact"));
        }
        tx.commit().await.db()
    }

    async fn contact(&self, tenant: TenantId, id: ContactId) -> Result<Option<Contact>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM contacts WHERE id = $1 AND tenant_id = $2",
                &[&id.0, &tenant.0],
            )
            .await
            .db()?;
        one(row)
    }

    async fn list_contacts(&self, query: &chat_core::store::ContactQuery) -> Result<Vec<Contact>> {
        // `translate` folds ASCII letters only, as `ContactQuery::matches_text` does: the
        // Unicode-folded search columns would find more than the other stores.
        const FOLD: &str = "translate(coalesce(data->>'{f}', ''),                             'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')";
        let [name, email, phone] = ["name", "email", "phone"].map(|f| FOLD.replace("{f}", f));
        let sql = format!(
            "SELECT data FROM contacts WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)              AND ($3::text IS NULL OR strpos({name}, $3) > 0 OR strpos({email}, $3) > 0                   OR strpos({phone}, $3) > 0)              ORDER BY id DESC LIMIT $4"
        );
        let text = query.text.as_deref().map(str::to_ascii_lowercase);
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                &sql,
                &[&query.tenant.0, &query.before.map(|b| b.0), &text, &limit],
            )
            .await
            .db()?;
        all(&rows)
    }

    async fn verified_contact(&self, tenant: TenantId, email: &str) -> Result<Option<Contact>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM contacts WHERE tenant_id = $1 AND email_lc = $2 AND email_verified",
                &[&tenant.0, &email.to_ascii_lowercase()],
            )
            .await
            .db()?;
        one(row)
    }

    async fn merge_contact(
        &self,
        into: &Contact,
        from: ContactId,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let tenant = into.tenant_id;
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // Locked, so no conversation can be opened for `from` between the check and the
        // delete (its insert would wait for this lock, then fail on the foreign key).
        let found = tx
            .query(
                "SELECT id FROM contacts WHERE id = ANY($1) AND tenant_id = $2 FOR UPDATE",
                &[&vec![into.id.0, from.0], &tenant.0],
            )
            .await
            .db()?;
        if found.len() != if into.id == from { 1 } else { 2 } {
            return Err(Error::NotFound("contact"));
        }
        let busy = tx
            .query_opt(
                "SELECT 1 FROM conversations WHERE contact_id = $1 LIMIT 1",
                &[&from.0],
            )
            .await
            .db()?;
        if busy.is_some() {
            return Err(Error::state_conflict(
                "the merged contact still has conversations",
            ));
        }
        // `from` goes first: `into` may be taking over its verified e-mail.
        tx.execute("DELETE FROM contacts WHERE id = $1", &[&from.0])
            .await
            .db()?;
        put_contact(&tx, into, false).await?;
        let event = log_one(&tx, NewEvent::contact_merged(into, from, at)).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    /// The deleted rows and the old versions of the rewritten ones (contact, events) stay
    /// in their tables' pages as dead tuples until `VACUUM` (autovacuum, by default)
    /// reclaims the space; they cannot be read through SQL meanwhile. See the README.
    async fn erase_contact(&self, erasure: &ContactErasure) -> Result<Vec<Event>> {
        let (tenant, id) = (erasure.tenant, erasure.contact);
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // Locked, so no conversation can be opened for the contact between the check and
        // the deletes (its insert would wait for this lock).
        let row = tx
            .query_opt(
                "SELECT data FROM contacts WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
                &[&id.0, &tenant.0],
            )
            .await
            .db()?;
        let contact: Contact = match one(row)? {
            Some(c) => c,
            None => return Err(Error::NotFound("contact")),
        };
        // Locked, so no message is posted to them while their events are written out.
        let held: Vec<ConversationId> = tx
            .query(
                "SELECT id FROM conversations WHERE contact_id = $1 AND tenant_id = $2 \
                 ORDER BY id FOR UPDATE",
                &[&id.0, &tenant.0],
            )
            .await
            .db()?
            .iter()
            .map(|r| r.get::<_, uuid::Uuid>(0))
            .map(ConversationId)
            .collect();
        if held.iter().any(|c| !erasure.conversations.contains(c)) {
            return Err(Error::state_conflict(
                "the contact has a conversation the erasure does not name",
            ));
        }
        let held_ids: Vec<uuid::Uuid> = held.iter().map(|c| c.0).collect();
        crate::events::inline_conversations(&tx, tenant, &held_ids).await?;
        tx.execute("DELETE FROM conversations WHERE id = ANY($1)", &[&held_ids])
            .await
            .db()?;
        // Conversations of the contact deleted before are known only to the log.
        let mut erasure = erasure.clone();
        let named = tx
            .query(
                "SELECT data FROM events WHERE tenant_id = $1 AND conversation_id IS NOT NULL \
                   AND data->'payload'->'conversation'->>'contact_id' = $2",
                &[&tenant.0, &id.0.hyphenated().to_string()],
            )
            .await
            .db()?;
        for event in all::<Event>(&named)? {
            if let Some(c) = erasure.conversation_of_contact(&event)
                && !erasure.conversations.contains(&c)
            {
                erasure.conversations.push(c);
            }
        }
        let ids: Vec<uuid::Uuid> = erasure.conversations.iter().map(|c| c.0).collect();
        // The held conversations' events are written out in full by now, and those of the
        // contact's earlier conversations were when they were deleted; read as every
        // reader does all the same.
        let found = tx
            .query(
                concat!(
                    "SELECT ",
                    crate::events::event_columns!(),
                    " FROM events e ",
                    crate::events::join_rows!(),
                    " WHERE e.tenant_id = $1 AND (e.conversation_id = ANY($2) \
                       OR (e.conversation_id IS NULL AND e.data->'payload'->>'type' = 'contact_merged'))"
                ),
                &[&tenant.0, &ids],
            )
            .await
            .db()?;
        let found = found
            .iter()
            .map(crate::events::from_row)
            .collect::<Result<Vec<Event>>>()?;
        for mut event in found {
            if let Some(payload) = erasure.scrub(&event) {
                event.payload = payload;
                tx.execute(
                    "UPDATE events SET data = $3, message_id = NULL, conversation_row = NULL \
                     WHERE tenant_id = $1 AND seq = $2",
                    &[&tenant.0, &int(event.seq), &Json(&event)],
                )
                .await
                .db()?;
            }
        }
        put_contact(&tx, &contact.erased(erasure.at), false).await?;
        // The login names go with the account (ON DELETE CASCADE).
        tx.execute("DELETE FROM accounts WHERE contact_id = $1", &[&id.0])
            .await
            .db()?;
        tx.execute(
            "DELETE FROM visitor_tokens WHERE tenant_id = $1 AND contact_id = $2",
            &[&tenant.0, &id.0],
        )
        .await
        .db()?;
        let mut events = Vec::new();
        for c in &held {
            events
                .push(log_one(&tx, NewEvent::conversation_deleted(tenant, *c, erasure.at)).await?);
        }
        events.push(
            log_one(
                &tx,
                NewEvent::contact_erased(
                    tenant,
                    id,
                    erasure.erased_by,
                    held.len() as u64,
                    erasure.at,
                ),
            )
            .await?,
        );
        tx.commit().await.db()?;
        Ok(events)
    }

    async fn insert_agent(&self, agent: &Agent) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        put_agent(&tx, agent, true).await?;
        let event = log_one(&tx, NewEvent::agent_updated(agent)).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn update_agent(&self, agent: &Agent) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        if put_agent(&tx, agent, false).await? == 0 {
            return Err(Error::NotFound("agent"));
        }
        let event = log_one(&tx, NewEvent::agent_updated(agent)).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<Agent>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM agents WHERE id = $1 AND tenant_id = $2",
                &[&id.0, &tenant.0],
            )
            .await
            .db()?;
        one(row)
    }

    async fn agent_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Agent>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM agents WHERE tenant_id = $1 AND email_lc = $2",
                &[&tenant.0, &email.to_ascii_lowercase()],
            )
            .await
            .db()?;
        one(row)
    }

    async fn agents(&self, tenant: TenantId) -> Result<Vec<Agent>> {
        let client = self.client().await?;
        // `COLLATE "C"` is byte order, which is Rust's order of strings.
        let rows = client
            .query(
                "SELECT data FROM agents WHERE tenant_id = $1 ORDER BY name COLLATE \"C\", id",
                &[&tenant.0],
            )
            .await
            .db()?;
        all(&rows)
    }

    async fn agent_loads(&self, tenant: TenantId) -> Result<Vec<AgentLoad>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT a.data, (SELECT count(*) FROM conversations c WHERE c.tenant_id = a.tenant_id \
                 AND c.assigned_agent_id = a.id AND c.mode IN ('agent', 'paused')) \
                 FROM agents a WHERE a.tenant_id = $1 AND a.active ORDER BY a.id",
                &[&tenant.0],
            )
            .await
            .db()?;
        rows.iter()
            .map(|row| {
                Ok(AgentLoad {
                    agent: crate::codec::json(row, 0, "agent")?,
                    open: u32::try_from(row.get::<_, i64>(1)).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn create_conversation(
        &self,
        conversation: &Conversation,
        messages: Vec<NewMessage>,
    ) -> Result<Committed> {
        let write = ConversationWrite::create(conversation, messages)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM conversations WHERE id = $1",
                &[&conversation.id.0],
            )
            .await
            .db()?;
        if exists.is_some() {
            return Err(Error::duplicate("conversation exists"));
        }
        // Shared lock: a merge cannot delete the contact before this commits.
        let contact = tx
            .query_opt(
                "SELECT 1 FROM contacts WHERE id = $1 AND tenant_id = $2 FOR SHARE",
                &[&conversation.contact_id.0, &conversation.tenant_id.0],
            )
            .await
            .db()?;
        if contact.is_none() {
            return Err(Error::NotFound("contact"));
        }
        let committed = store_write(&tx, write, true).await?;
        tx.commit().await.db()?;
        Ok(committed)
    }

    async fn update_conversation(&self, update: ConversationUpdate) -> Result<Committed> {
        self.write_update(update, None, None).await
    }

    async fn assign_within_capacity(
        &self,
        update: ConversationUpdate,
        capacity: u32,
    ) -> Result<Committed> {
        self.write_update(update, Some(capacity), None).await
    }

    async fn assign_in_turn(
        &self,
        update: ConversationUpdate,
        capacity: u32,
        turn: Option<AgentId>,
    ) -> Result<Committed> {
        self.write_update(update, Some(capacity), Some(turn)).await
    }

    async fn routing_turn(&self, tenant: TenantId) -> Result<Option<AgentId>> {
        self.routing_turn_in(tenant).await
    }

    async fn delete_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // Locked first, as every write locks it: no message is posted to it meanwhile, so
        // every message whose event must be written out before the delete is seen.
        lock_conversation(&tx, tenant, id).await?;
        crate::events::inline_conversations(&tx, tenant, &[id.0]).await?;
        tx.execute(
            "DELETE FROM conversations WHERE id = $1 AND tenant_id = $2",
            &[&id.0, &tenant.0],
        )
        .await
        .db()?;
        let event = log_one(&tx, NewEvent::conversation_deleted(tenant, id, at)).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT data FROM conversations WHERE id = $1 AND tenant_id = $2")
            .await
            .db()?;
        let row = client.query_opt(&stmt, &[&id.0, &tenant.0]).await.db()?;
        one(row)
    }

    async fn list_conversations(&self, query: &ConversationQuery) -> Result<ConversationPage> {
        let mut client = self.client().await?;
        crate::list::list_conversations(&mut client, query).await
    }

    async fn queue(&self, tenant: TenantId, limit_: usize) -> Result<Vec<Conversation>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT data FROM conversations WHERE tenant_id = $1 AND mode = 'queued' \
                 ORDER BY priority DESC, queued_at_ns ASC NULLS FIRST, id LIMIT $2",
                &[&tenant.0, &limit(limit_)],
            )
            .await
            .db()?;
        all(&rows)
    }

    async fn append_message(&self, message: NewMessage) -> Result<Appended> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // The lock serializes the conversation's posts: the repeat check below sees every
        // message committed before, and sequences follow one another.
        let conversation =
            lock_conversation(&tx, message.tenant_id, message.conversation_id).await?;
        if let Some(key) = &message.client_message_id {
            let stmt = tx
                .prepare_cached(
                    "SELECT data FROM messages WHERE conversation_id = $1 AND sender = $2 \
                     AND client_message_id = $3",
                )
                .await
                .db()?;
            let earlier = tx
                .query_opt(
                    &stmt,
                    &[&conversation.id.0, &sender_key(message.sender), key],
                )
                .await
                .db()?;
            if let Some(earlier) = one::<Message>(earlier)? {
                return Ok(Appended::repeated(earlier, conversation));
            }
        }
        let before = conversation.clone();
        let write = MessageWrite::append(conversation, message)?;
        if crate::events::moves_more_than_activity(&before, &write.conversation)? {
            crate::events::inline_conversation_events(&tx, before.tenant_id, &[before.id.0])
                .await?;
        }
        put_conversation(&tx, &write.conversation, false).await?;
        insert_message(&tx, &write.message).await?;
        let mut appended = write.commit(unnumbered)?;
        if let Some(event) = appended.event.as_mut() {
            log_events(
                &tx,
                std::slice::from_mut(event),
                std::slice::from_ref(&appended.message),
                None,
            )
            .await?;
        }
        tx.commit().await.db()?;
        Ok(appended)
    }

    async fn update_message(&self, message: &Message) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let row = tx
            .query_opt(
                "SELECT data FROM messages WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
                &[&message.id.0, &message.tenant_id.0],
            )
            .await
            .db()?;
        let mut stored: Message = one(row)?.ok_or(Error::NotFound("message"))?;
        // The row is locked: its `message_created` event, if it still refers to it, is
        // written out as the message was before this edit, in the edit's transaction.
        crate::events::inline_message(&tx, &stored).await?;
        let event = edit_message(&mut stored, message);
        let (deleted, words) = message_search(&stored);
        tx.execute(
            "UPDATE messages SET deleted = $2, words = $3::text::tsvector, word_list = $4, \
             data = $5 WHERE id = $1",
            &[
                &stored.id.0,
                &deleted,
                &words.tsvector,
                &words.list,
                &Json(&stored),
            ],
        )
        .await
        .db()?;
        let event = log_one(&tx, event).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn message(&self, tenant: TenantId, id: MessageId) -> Result<Option<Message>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data FROM messages WHERE id = $1 AND tenant_id = $2",
                &[&id.0, &tenant.0],
            )
            .await
            .db()?;
        one(row)
    }

    async fn message_hits(&self, query: &HitQuery) -> Result<Vec<Message>> {
        let text = TextQuery::parse(&query.text);
        let Some(search) = crate::search::Search::new(&text) else {
            return Ok(Vec::new());
        };
        let client = self.client().await?;
        let conversations: Vec<uuid::Uuid> = query.conversations.iter().map(|c| c.0).collect();
        // The word index finds the candidates (every message that can match, and maybe a
        // few that do not); chat-core's own test decides, so the hits are the ones the
        // search found the conversation by.
        let rows = client
            .query(
                "SELECT data FROM messages WHERE tenant_id = $1 AND conversation_id = ANY ($2) \
                 AND NOT deleted AND ($3 OR kind <> 'note') AND words @@ $4::text::tsquery \
                 ORDER BY conversation_id, seq DESC",
                &[&query.tenant.0, &conversations, &query.notes, &search.index],
            )
            .await
            .db()?;
        let candidates: Vec<Message> = all(&rows)?;
        let mut hits: Vec<Message> = Vec::new();
        let (mut current, mut taken) = (None, 0);
        for message in candidates {
            if current != Some(message.conversation_id) {
                (current, taken) = (Some(message.conversation_id), 0);
            }
            if taken < query.per_conversation && text.matches(&message.body) {
                taken += 1;
                hits.push(message);
            }
        }
        Ok(hits)
    }

    async fn messages(&self, query: &MessageQuery) -> Result<Vec<Message>> {
        let mut client = self.client().await?;
        // One snapshot: the conversation check and the window agree.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .db()?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2",
                &[&query.conversation.0, &query.tenant.0],
            )
            .await
            .db()?;
        if exists.is_none() {
            return Err(Error::NotFound("conversation"));
        }
        let notes = if query.include_notes {
            ""
        } else {
            " AND kind <> 'note'"
        };
        let after = query.after.map(int);
        let before = query.before.map(int);
        let order = if after.is_some() { "ASC" } else { "DESC" };
        let sql = format!(
            "SELECT data FROM messages WHERE conversation_id = $1{notes} \
             AND ($2::bigint IS NULL OR seq > $2) AND ($3::bigint IS NULL OR seq < $3) \
             ORDER BY seq {order} LIMIT $4"
        );
        let rows = tx
            .query(
                &sql,
                &[&query.conversation.0, &after, &before, &limit(query.limit)],
            )
            .await
            .db()?;
        let mut out: Vec<Message> = all(&rows)?;
        if after.is_none() {
            out.reverse();
        }
        Ok(out)
    }

    async fn set_read_cursor(&self, cursor: &ReadCursor) -> Result<(Conversation, Option<Event>)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let mut conversation =
            lock_conversation(&tx, cursor.tenant_id, cursor.conversation_id).await?;
        let reader = reader_key(cursor.reader);
        let stored: Option<i64> = tx
            .query_opt(
                "SELECT seq FROM read_cursors WHERE conversation_id = $1 AND reader = $2",
                &[&conversation.id.0, &reader],
            )
            .await
            .db()?
            .map(|row| row.get(0));
        let Some(read) = ReadMove::new(&conversation, cursor, stored.map(|s| s.max(0) as u64))
        else {
            return Ok((conversation, None));
        };
        // `Message::unread_by` in SQL: notes and timeline events never count; the staff
        // side counts customer messages, the customer counts staff and bot messages.
        let senders = match cursor.reader {
            Reader::Customer => "(sender = 'bot' OR sender LIKE 'agent:%')",
            Reader::Agent(_) => "sender = 'customer'",
        };
        let unread: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM messages WHERE conversation_id = $1 AND seq > $2 \
                     AND kind NOT IN ('{}', '{}') AND {senders}",
                    MessageKind::Note.as_str(),
                    MessageKind::Event.as_str()
                ),
                &[&conversation.id.0, &int(read.read_seq)],
            )
            .await
            .db()?
            .get(0);
        tx.execute(
            "INSERT INTO read_cursors (conversation_id, reader, seq, data) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (conversation_id, reader) DO UPDATE SET seq = EXCLUDED.seq, data = EXCLUDED.data",
            &[
                &conversation.id.0,
                &reader,
                &int(read.cursor.seq),
                &Json(&read.cursor),
            ],
        )
        .await
        .db()?;
        let before = conversation.clone();
        let event = read.apply(&mut conversation, unread.max(0) as u64);
        if crate::events::moves_more_than_activity(&before, &conversation)? {
            crate::events::inline_conversation_events(&tx, before.tenant_id, &[before.id.0])
                .await?;
        }
        put_conversation(&tx, &conversation, false).await?;
        let event = log_one(&tx, event).await?;
        tx.commit().await.db()?;
        Ok((conversation, Some(event)))
    }

    async fn read_cursors(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<ReadCursor>> {
        let client = self.client().await?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2",
                &[&conversation.0, &tenant.0],
            )
            .await
            .db()?;
        if exists.is_none() {
            return Err(Error::NotFound("conversation"));
        }
        let rows = client
            .query(
                "SELECT data FROM read_cursors WHERE conversation_id = $1",
                &[&conversation.0],
            )
            .await
            .db()?;
        let mut cursors: Vec<ReadCursor> = all(&rows)?;
        // The reference store's order: the customer first among ties, then staff by id.
        cursors.sort_by_key(|c| {
            let reader = match c.reader {
                Reader::Customer => (0, None),
                Reader::Agent(a) => (1, Some(a)),
            };
            (c.updated_at, c.seq, reader)
        });
        Ok(cursors)
    }

    async fn events_since(
        &self,
        tenant: TenantId,
        after: u64,
        limit_: usize,
    ) -> Result<Vec<Event>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(concat!(
                "SELECT ",
                crate::events::event_columns!(),
                " FROM events e ",
                crate::events::join_rows!(),
                " WHERE e.tenant_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3"
            ))
            .await
            .db()?;
        let rows = client
            .query(&stmt, &[&tenant.0, &int(after), &limit(limit_)])
            .await
            .db()?;
        rows.iter().map(crate::events::from_row).collect()
    }

    async fn event_head(&self, tenant: TenantId) -> Result<u64> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT last_seq FROM event_heads WHERE tenant_id = $1")
            .await
            .db()?;
        let row = client.query_opt(&stmt, &[&tenant.0]).await.db()?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    async fn compact_events(&self, tenant: TenantId, through: u64, limit_: usize) -> Result<u64> {
        let client = self.client().await?;
        // One statement: the newest event (`event_heads` numbers the next one, but a
        // reader's head is `max(seq)` of the log as well) and every event from the oldest
        // pending delivery's on stay.
        let stmt = client
            .prepare_cached(
                "DELETE FROM events WHERE tenant_id = $1 AND seq IN ( \
                   SELECT seq FROM events WHERE tenant_id = $1 AND seq <= LEAST($2, \
                     (SELECT coalesce(max(seq), 0) - 1 FROM events WHERE tenant_id = $1), \
                     coalesce((SELECT min(seq) FROM webhook_deliveries \
                               WHERE tenant_id = $1 AND state = 'pending'), 9223372036854775807) - 1) \
                   ORDER BY seq LIMIT $3)",
            )
            .await
            .db()?;
        let n = client
            .execute(&stmt, &[&tenant.0, &int(through), &limit(limit_)])
            .await
            .db()?;
        Ok(n)
    }

    async fn put_canned_response(&self, response: &CannedResponse) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        // One statement: an id of another tenant updates nothing (and says so); a shortcut
        // taken by another response violates `canned_responses_shortcut`, which error.rs
        // maps to the `shortcut taken` conflict.
        let stmt = tx
            .prepare_cached(
                "INSERT INTO canned_responses (id, tenant_id, owner_key, shortcut_lc, title_lc, data) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
                 owner_key = EXCLUDED.owner_key, shortcut_lc = EXCLUDED.shortcut_lc, \
                 title_lc = EXCLUDED.title_lc, data = EXCLUDED.data \
                 WHERE canned_responses.tenant_id = EXCLUDED.tenant_id",
            )
            .await
            .db()?;
        let n = tx
            .execute(
                &stmt,
                &[
                    &response.id.0,
                    &response.tenant_id.0,
                    &canned_owner_key(response.owner_id),
                    &response.shortcut.to_lowercase(),
                    &response.title.to_lowercase(),
                    &Json(response),
                ],
            )
            .await
            .db()?;
        if n == 0 {
            return Err(Error::duplicate("canned response id taken"));
        }
        let event = log_one(&tx, NewEvent::canned_response_updated(response)).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn delete_canned_response(
        &self,
        response: &CannedResponse,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let n = tx
            .execute(
                "DELETE FROM canned_responses WHERE id = $1 AND tenant_id = $2",
                &[&response.id.0, &response.tenant_id.0],
            )
            .await
            .db()?;
        if n == 0 {
            return Err(Error::NotFound("canned response"));
        }
        let event = log_one(&tx, NewEvent::canned_response_deleted(response, at)).await?;
        tx.commit().await.db()?;
        Ok(event)
    }

    async fn canned_responses(&self, query: &CannedQuery) -> Result<Vec<CannedResponse>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT data FROM canned_responses WHERE tenant_id = $1 \
                 AND (owner_key = $2 OR owner_key = $3) \
                 AND ($4::uuid IS NULL OR id = $4) \
                 AND ($5::text IS NULL OR left(shortcut_lc, length($5)) = $5 \
                      OR left(title_lc, length($5)) = $5) \
                 ORDER BY shortcut_lc COLLATE \"C\", id LIMIT $6",
            )
            .await
            .db()?;
        // Without an agent, shared ones only: the nil key twice.
        let own = canned_owner_key(query.agent);
        let prefix = query.prefix.as_deref().map(str::to_lowercase);
        let rows = client
            .query(
                &stmt,
                &[
                    &query.tenant.0,
                    &canned_owner_key(None),
                    &own,
                    &query.id.map(|id| id.0),
                    &prefix,
                    &limit(query.limit),
                ],
            )
            .await
            .db()?;
        all(&rows)
    }

    async fn record_mentions(&self, mentions: &[Mention]) -> Result<Vec<Event>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO mentions (message_id, agent_id, tenant_id, at_ns, read_at_ns, data) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .await
            .db()?;
        let mut events = Vec::with_capacity(mentions.len());
        for m in mentions {
            let inserted = tx
                .execute(
                    &stmt,
                    &[
                        &m.message_id.0,
                        &m.agent_id.0,
                        &m.tenant_id.0,
                        &ns(m.at)?,
                        &ns_opt(m.read_at)?,
                        &Json(m),
                    ],
                )
                .await
                .db()?;
            if inserted == 1 {
                events.push(unnumbered(NewEvent::mentioned(m))?);
            }
        }
        // The counter last, as every write takes it; one tenant's events at a time.
        for run in events.chunk_by_mut(|a, b| a.tenant_id == b.tenant_id) {
            log_events(&tx, run, &[], None).await?;
        }
        tx.commit().await.db()?;
        Ok(events)
    }

    async fn mentions(
        &self,
        tenant: TenantId,
        agent: AgentId,
        limit_: usize,
    ) -> Result<(Vec<Mention>, u64)> {
        let client = self.client().await?;
        // One statement, so the page and the unread count come from one snapshot.
        let stmt = client
            .prepare_cached(
                "SELECT (SELECT count(*) FROM mentions WHERE tenant_id = $1 AND agent_id = $2 \
                         AND read_at_ns IS NULL), \
                        coalesce((SELECT jsonb_agg(p.data ORDER BY p.at_ns DESC, p.message_id DESC) \
                                  FROM (SELECT data, at_ns, message_id FROM mentions \
                                        WHERE tenant_id = $1 AND agent_id = $2 \
                                        ORDER BY at_ns DESC, message_id DESC LIMIT $3) p), \
                                 '[]'::jsonb)",
            )
            .await
            .db()?;
        let row = client
            .query_one(&stmt, &[&tenant.0, &agent.0, &limit(limit_)])
            .await
            .db()?;
        let unread: i64 = row.get(0);
        let items: Vec<Mention> = json(&row, 1, "mention")?;
        Ok((items, unread.max(0) as u64))
    }

    async fn read_mentions(
        &self,
        tenant: TenantId,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<u64> {
        let client = self.client().await?;
        // `data` keeps the serde form whole; the read time is set in both.
        let read_at =
            serde_json::to_value(ReadAt(at)).map_err(|e| Error::validation("at", e.to_string()))?;
        let n = client
            .execute(
                "UPDATE mentions SET read_at_ns = $3, data = jsonb_set(data, '{read_at}', $4) \
                 WHERE tenant_id = $1 AND agent_id = $2 AND read_at_ns IS NULL",
                &[&tenant.0, &agent.0, &ns(at)?, &Json(read_at)],
            )
            .await
            .db()?;
        Ok(n)
    }

    async fn put_webhook(&self, webhook: &Webhook) -> Result<()> {
        self.put_webhook_row(webhook).await
    }

    async fn delete_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<()> {
        self.delete_webhook_row(tenant, id).await
    }

    async fn put_inbox(&self, inbox: &Inbox) -> Result<()> {
        self.put_inbox_row(inbox).await
    }

    async fn replace_inbox(&self, inbox: &Inbox, seen: OffsetDateTime) -> Result<bool> {
        self.replace_inbox_row(inbox, seen).await
    }

    async fn delete_inbox(&self, tenant: TenantId, id: InboxId) -> Result<()> {
        self.delete_inbox_row(tenant, id).await
    }

    async fn inboxes(&self, tenant: TenantId) -> Result<Vec<Inbox>> {
        self.inbox_rows(tenant).await
    }

    async fn inbox(&self, id: InboxId) -> Result<Option<Inbox>> {
        self.inbox_row(id).await
    }

    async fn inbox_thread(&self, inbox: InboxId, external: &str) -> Result<Option<ConversationId>> {
        self.inbox_thread_row(inbox, external).await
    }

    async fn link_inbox_thread(
        &self,
        tenant: TenantId,
        inbox: InboxId,
        external: &str,
        conversation: ConversationId,
    ) -> Result<ConversationId> {
        self.link_inbox_thread_row(tenant, inbox, external, conversation)
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
        self.poll_inbox_row(inbox, node, offset, now, until).await
    }

    async fn queue_mail(&self, mail: &Mail, once_since: Option<OffsetDateTime>) -> Result<bool> {
        self.queue_mail_row(mail, once_since).await
    }

    async fn claim_mails(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Mail>> {
        self.claim_mail_rows(now, lease_until, limit).await
    }

    async fn record_mail(&self, outcome: &MailOutcome) -> Result<()> {
        self.record_mail_row(outcome).await
    }

    async fn mails(&self, tenant: TenantId, limit: usize) -> Result<Vec<Mail>> {
        self.mail_rows(tenant, limit).await
    }

    async fn webhooks(&self, tenant: TenantId) -> Result<Vec<Webhook>> {
        self.webhook_rows(tenant).await
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.claim_delivery_rows(now, lease_until, limit).await
    }

    async fn record_delivery(&self, outcome: &DeliveryOutcome) -> Result<Option<Event>> {
        self.record_delivery_row(outcome).await
    }

    async fn deliveries(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        self.delivery_rows(tenant, webhook, before, limit).await
    }

    async fn redeliver(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        seq: u64,
        now: OffsetDateTime,
    ) -> Result<Delivery> {
        self.redeliver_row(tenant, webhook, seq, now).await
    }

    async fn report_rows(
        &self,
        query: &ReportQuery,
        by: Option<Dimension>,
    ) -> Result<Vec<ReportRow>> {
        reports::report_rows(&mut self.client().await?, query, by).await
    }

    async fn report_series(
        &self,
        query: &ReportQuery,
        bounds: &[OffsetDateTime],
    ) -> Result<Vec<SeriesPoint>> {
        reports::report_series(&self.client().await?, query, bounds).await
    }

    async fn hold_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agents: &[AgentId],
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>> {
        self.hold_presence_in(tenant, node, agents, expires_at, at)
            .await
    }

    async fn release_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<Option<Event>> {
        self.release_presence_in(tenant, node, agent, at).await
    }

    async fn lapse_presence(&self, tenant: TenantId, at: OffsetDateTime) -> Result<Vec<Event>> {
        self.lapse_presence_in(tenant, at).await
    }

    async fn export_tenant(
        &self,
        tenant: TenantId,
        options: chat_core::export::ExportOptions,
        out: chat_core::export::ExportSink,
    ) -> Result<u64> {
        self.export(tenant, options, out).await
    }

    async fn report_feedback(&self, query: &ReportQuery, limit: usize) -> Result<Vec<Feedback>> {
        reports::report_feedback(&self.client().await?, query, limit).await
    }
}

/// The `owner_key` of a canned response: the owning agent's id, or the nil uuid for a
/// shared one (see `migrations/0002_desk.sql`).
fn canned_owner_key(owner: Option<AgentId>) -> uuid::Uuid {
    owner.map_or(uuid::Uuid::nil(), |a| a.0)
}

/// A mention's read time in the form its serde form keeps it.
#[derive(serde::Serialize)]
struct ReadAt(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);

/// Fails with a `State` conflict unless the agent `conversation` assigns holds fewer than
/// `capacity` other conversations in `agent` or `paused` mode. Locking the agent's row
/// first serializes the assignments to one agent across servers: a second pass waits,
/// then counts what the first committed (`READ COMMITTED` reads as of each statement).
/// Locks go conversation, agent, then the event counter, as everywhere, so no deadlock.
async fn check_capacity(
    tx: &tokio_postgres::Transaction<'_>,
    conversation: &Conversation,
    capacity: u32,
) -> Result<()> {
    let agent = conversation
        .assigned_agent_id
        .ok_or_else(|| Error::validation("assigned_agent_id", "an assignment names its agent"))?;
    let locked = tx
        .query_opt(
            "SELECT 1 FROM agents WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
            &[&agent.0, &conversation.tenant_id.0],
        )
        .await
        .db()?;
    if locked.is_none() {
        return Err(Error::NotFound("agent"));
    }
    let held: i64 = tx
        .query_one(
            "SELECT count(*) FROM conversations WHERE tenant_id = $1 AND assigned_agent_id = $2 \
             AND mode IN ('agent', 'paused') AND id <> $3",
            &[&conversation.tenant_id.0, &agent.0, &conversation.id.0],
        )
        .await
        .db()?
        .get(0);
    if held >= i64::from(capacity) {
        return Err(Error::state_conflict("agent at capacity"));
    }
    Ok(())
}
