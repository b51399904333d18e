//! What each request costs as the desk's data grows: the same operations on databases of
//! several sizes, side by side, with the ratio to the smallest.
//!
//! ```text
//! cargo bench -p chat-sqlite --bench growth -- 10000x0 100000x1000000 100000x5000000
//! cargo bench -p chat-sqlite --bench growth                      # small sizes, a quick look
//! cargo test -p chat-sqlite --bench growth -- 200x0 400x4000     # CI smoke run (debug, untimed)
//! ```
//!
//! Each argument is one database, `<conversations>x<messages>`. It is built quickly: the
//! tenant, contact and conversations through the `Store` (group commit), then the messages
//! with their `message_created` events (references to the rows, as the store writes them)
//! and the conversations' activity columns written raw
//! in 100,000-row transactions (what the store writes per message, without its per-call
//! overhead), then the search file rebuilt by the store from `messages`. Message bodies are
//! 100-200 characters of desk vocabulary; one message in 1,000 says "kettle".
//!
//! Then, per database, through the store as the server calls it:
//! - durable append: `BENCH_POSTS` (20,000) messages from 256 concurrent posters
//!   (`synchronous = FULL`), rate and p50/p99 commit latency; per message, the CPU of the
//!   writer, checkpoint and indexer threads (Linux `schedstat`), the pages the writer wrote
//!   to the log and the checkpoints copied into the database, and the bytes the process
//!   wrote (`/proc/.../io`): what grows with the database (see the crate README, "Why the
//!   durable append slows as the database grows");
//! - the inbox with its counts per mode (admin scope, 50 per page), `?tag=refund`,
//!   a plain-word search that hits (`kettle`) and one that finds nothing (`quokka`), and the
//!   queue count `/metrics` reads (the queued count of a one-row page): `BENCH_QUERIES`
//!   (200) sequential queries each, p50/p99; a common word (`parcel`, one message in
//!   five), and the same through a second store that looks every match up
//!   (`Options::search_candidates(u64::MAX)`, the plan before the walk; 5 queries);
//! - bytes per message: the database, its log and the search file over the messages.
//!
//! The goals are issue 25's; the last column says each one's target.
//!
//! `BENCH_DIR=<folder>` keeps each database there (`growth-<conversations>x<messages>.db`)
//! and the next run with the same size uses it again instead of building it (a search file
//! of an older layout is rebuilt by the store when it opens); with `BENCH_POSTS=0` a run
//! leaves it as it is (no appends), to time queries again and again on one database:
//!
//! ```text
//! BENCH_DIR=/var/tmp/growth BENCH_POSTS=0 cargo bench -p chat-sqlite --bench growth -- 100000x1000000
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_core::store::{ConversationQuery, Scope};
use chat_core::{
    Contact, ContactId, Conversation, ConversationId, MessageId, MessageKind, Mode, NewMessage,
    Sender, Store, Tenant, TenantId, TenantSettings,
};
use chat_sqlite::{Options, SqliteStore, Synchronous};
use rusqlite::{Connection, params};
use time::OffsetDateTime;
use uuid::Uuid;

/// Words the bodies are made of: what customers and agents write about.
const WORDS: &[&str] = &[
    "order",
    "refund",
    "delivery",
    "parcel",
    "tracking",
    "invoice",
    "payment",
    "card",
    "account",
    "password",
    "login",
    "shipping",
    "address",
    "return",
    "label",
    "broken",
    "damaged",
    "missing",
    "late",
    "today",
    "tomorrow",
    "monday",
    "please",
    "thanks",
    "hello",
    "help",
    "question",
    "size",
    "colour",
    "replacement",
    "warranty",
    "receipt",
    "discount",
    "code",
    "subscription",
    "cancel",
    "upgrade",
    "plan",
    "email",
    "phone",
    "number",
    "store",
    "pickup",
    "courier",
    "week",
    "days",
    "still",
    "waiting",
    "update",
    "status",
    "agent",
    "could",
    "would",
    "check",
    "again",
    "since",
    "after",
    "before",
    "because",
    "charged",
    "twice",
    "wrong",
    "item",
    "box",
    "open",
    "sealed",
    "photo",
    "attached",
    "shoes",
    "jacket",
    "lamp",
    "chair",
    "table",
    "mug",
    "blender",
    "toaster",
    "headphones",
    "charger",
    "cable",
];

/// The word one message in 1,000 contains, and one no message does.
const HIT: &str = "kettle";
const MISS: &str = "quokka";
/// A word of the bodies' vocabulary, in about one message in five (and no title): a common
/// word, whose matches are most of the desk's conversations.
const COMMON: &str = "parcel";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic pseudo-random number for `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Body of message `i`: 100-200 characters of desk words.
fn body(i: u64) -> String {
    let target = 100 + (mix(i) % 101) as usize;
    let mut s = String::with_capacity(target + 16);
    let mut k = 0u64;
    if i % 1000 == 7 {
        s.push_str("the ");
        s.push_str(HIT);
    }
    while s.len() < target {
        if !s.is_empty() {
            s.push(' ');
        }
        k += 1;
        s.push_str(WORDS[(mix(i.wrapping_mul(31).wrapping_add(k)) % WORDS.len() as u64) as usize]);
    }
    s.truncate(target.min(200));
    s
}

/// Conversation `i`: modes as a desk has them (most closed, some open, some queued), one in
/// ten tagged `refund`, departments and priorities spread.
fn conversation(tenant: TenantId, contact: ContactId, i: u64, now: OffsetDateTime) -> Conversation {
    let mode = match mix(i) % 20 {
        0 => Mode::Queued,
        1..=3 => Mode::Agent,
        4..=5 => Mode::Bot,
        _ => Mode::Closed,
    };
    let mut tags = vec!["shipping".to_owned()];
    if i % 10 == 3 {
        tags.push("refund".into());
    }
    Conversation {
        title: Some(format!("Order {i}")),
        department: Some(["support", "billing", "sales"][(i % 3) as usize].into()),
        tags,
        queued_at: (mode == Mode::Queued).then_some(now),
        version: 0,
        ..Conversation::new(ConversationId(Uuid::now_v7()), tenant, contact, mode, now)
    }
}

fn new_message(tenant: TenantId, conversation: ConversationId, i: u64) -> NewMessage {
    NewMessage {
        id: MessageId(Uuid::now_v7()),
        tenant_id: tenant,
        conversation_id: conversation,
        sender: Sender::Customer,
        kind: MessageKind::Text,
        body: body(i),
        attachments: Vec::new(),
        reply_to: None,
        client_message_id: None,
        entities: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: OffsetDateTime::now_utc(),
    }
}

struct Size {
    conversations: u64,
    messages: u64,
}

impl Size {
    fn parse(arg: &str) -> Size {
        let (c, m) = arg
            .split_once('x')
            .unwrap_or_else(|| panic!("a size is <conversations>x<messages>, not {arg:?}"));
        Size {
            conversations: c.parse().expect("conversations is a number"),
            messages: m.parse().expect("messages is a number"),
        }
    }

    fn label(&self) -> String {
        fn short(n: u64) -> String {
            match n {
                n if n >= 1_000_000 && n % 100_000 == 0 => format!("{}M", n as f64 / 1e6),
                n if n >= 1_000 && n % 100 == 0 => format!("{}k", n as f64 / 1e3),
                n => n.to_string(),
            }
        }
        format!(
            "{} conv / {} msgs",
            short(self.conversations),
            short(self.messages)
        )
    }
}

/// A database of `size` at `path`; returns its tenant and conversation ids.
async fn build(path: &Path, size: &Size) -> (TenantId, Arc<Vec<ConversationId>>) {
    let store = Arc::new(
        SqliteStore::open_with(path, Options::default().synchronous(Synchronous::Normal))
            .expect("open"),
    );
    let now = OffsetDateTime::now_utc();
    let tenant = TenantId(Uuid::now_v7());
    store
        .insert_tenant(&Tenant {
            id: tenant,
            name: "Growth".into(),
            settings: TenantSettings::default(),
            settings_version: 0,
            created_at: now,
        })
        .await
        .unwrap();
    let contact = Contact {
        id: ContactId(Uuid::now_v7()),
        tenant_id: tenant,
        name: Some("Ann".into()),
        email: Some("ann@example.com".into()),
        email_verified: false,
        phone: None,
        address: None,
        external_id: None,
        metadata: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    };
    store.insert_contact(&contact).await.unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..256 {
        let (store, next, n) = (store.clone(), next.clone(), size.conversations);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return ids;
                }
                let c = conversation(tenant, contact.id, i, now);
                store.create_conversation(&c, Vec::new()).await.unwrap();
                ids.push(c.id);
            }
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    drop(store);
    if size.messages > 0 {
        raw_messages(path, tenant, &ids, size.messages);
        // The messages went in behind the store's back: a new search file indexes them.
        std::fs::remove_file(search_path(path)).unwrap();
    }
    std::fs::write(built_mark(path), b"").unwrap();
    (tenant, Arc::new(ids))
}

/// The tenant and conversations of a database a run before kept (`BENCH_DIR`), if it was
/// built to the end (its `.built` mark is written last).
fn kept_database(path: &Path) -> Option<(TenantId, Arc<Vec<ConversationId>>)> {
    if !built_mark(path).exists() {
        return None;
    }
    let conn = Connection::open(path).ok()?;
    let tenant: Uuid = conn
        .query_row("SELECT id FROM tenants", [], |r| r.get(0))
        .ok()?;
    let ids = conn
        .prepare("SELECT id FROM conversations ORDER BY rowid")
        .ok()?
        .query_map([], |r| r.get::<_, Uuid>(0))
        .ok()?
        .map(|id| id.map(ConversationId))
        .collect::<rusqlite::Result<Vec<_>>>()
        .ok()?;
    Some((TenantId(tenant), Arc::new(ids)))
}

fn built_mark(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.built", path.display()))
}

fn search_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-search");
    PathBuf::from(p)
}

/// `total` messages with their events, spread over the conversations, and each
/// conversation's activity columns as the last of them leaves them.
fn raw_messages(path: &Path, tenant: TenantId, ids: &[ConversationId], total: u64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;",
    )
    .unwrap();
    let mut event_seq: i64 = conn
        .query_row(
            "SELECT coalesce(max(seq), 0) FROM events WHERE tenant_id = ?1",
            [tenant.0],
            |r| r.get(0),
        )
        .unwrap();
    let mut last_seq = vec![0u64; ids.len()];
    let start = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 - total as i64 * 1000;
    let mut i = 0;
    while i < total {
        let tx = conn.unchecked_transaction().unwrap();
        {
            let mut message_row = tx
                .prepare_cached(
                    "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, created_at) \
                     VALUES (?1, ?2, ?3, ?4, 'customer', 'text', ?5, ?6)",
                )
                .unwrap();
            // As the store writes a `message_created` since schema 14: a reference to the
            // message's row, not a copy (src/events.rs).
            let mut event_row = tx
                .prepare_cached(
                    "INSERT INTO events (tenant_id, seq, conversation_id, data, message_pk) \
                     VALUES (?1, ?2, NULL, '{}', ?3)",
                )
                .unwrap();
            for _ in 0..100_000.min(total - i) {
                // Conversations written in bursts, as live traffic leaves them.
                let c = (mix(i / 8) % ids.len() as u64) as usize;
                last_seq[c] += 1;
                event_seq += 1;
                let mut message = new_message(tenant, ids[c], i).into_message(last_seq[c]);
                message.created_at =
                    OffsetDateTime::from_unix_timestamp_nanos((start + i as i64 * 1000).into())
                        .unwrap();
                message_row
                    .execute(params![
                        message.id.0,
                        tenant.0,
                        ids[c].0,
                        last_seq[c] as i64,
                        message.body,
                        start + i as i64 * 1000
                    ])
                    .unwrap();
                event_row
                    .execute(params![tenant.0, event_seq, tx.last_insert_rowid()])
                    .unwrap();
                i += 1;
            }
        }
        tx.commit().unwrap();
    }
    conn.execute_batch(
        "UPDATE conversations SET
           (last_seq, message_count, unread_for_agent, updated_at, last_message_at,
            last_customer_message_at, preview_sender, preview_body, preview_at) =
           (SELECT max(m.seq), count(*), count(*), max(m.created_at), max(m.created_at),
                   max(m.created_at), 'customer', substr(max(m.body), 1, 140), max(m.created_at)
            FROM messages m WHERE m.conversation_id = conversations.id),
           version = version + 1
         WHERE EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id);
         PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;",
    )
    .unwrap();
}

/// CPU time a thread has used so far (Linux `schedstat`), or `None` elsewhere.
fn thread_cpu(schedstat: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(schedstat).ok()?;
    Some(Duration::from_nanos(
        text.split_whitespace().next()?.parse().ok()?,
    ))
}

/// The store's options for the measurements: the defaults, but for what an experiment sets
/// (`BENCH_WRITER_CACHE_KIB`, `BENCH_CONVERSATION_CACHE`, `BENCH_CHECKPOINT_MS`,
/// `BENCH_WAL_RESTART_PAGES`, `BENCH_MMAP_SIZE`), to compare a
/// setting against the defaults on the same kept database.
fn measured_options() -> Options {
    let mut options = Options::default();
    if let Ok(kib) = std::env::var("BENCH_WRITER_CACHE_KIB") {
        options = options.writer_cache_kib(kib.parse().expect("KiB"));
    }
    if let Ok(n) = std::env::var("BENCH_CONVERSATION_CACHE") {
        options = options.conversation_cache(n.parse().expect("conversations"));
    }
    if let Ok(ms) = std::env::var("BENCH_CHECKPOINT_MS") {
        options = options.checkpoint_interval(Duration::from_millis(ms.parse().expect("ms")));
    }
    if let Ok(pages) = std::env::var("BENCH_WAL_RESTART_PAGES") {
        options = options.wal_restart_pages(pages.parse().expect("pages"));
    }
    if let Ok(bytes) = std::env::var("BENCH_MMAP_SIZE") {
        options = options.mmap_size(bytes.parse().expect("bytes"));
    }
    options
}

/// Bytes handed to `write` so far (Linux `wchar`) by this process (`/proc/self/io`: the
/// log's frames, the checkpoints' copies into the database, the search file's writes) or by
/// one thread (its `io` beside its `schedstat`).
fn written_bytes(io: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(io).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The `schedstat` file of this process's newest thread whose name starts with `name`.
fn thread_schedstat(name: &str) -> Option<PathBuf> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(|task| {
            let dir = task.ok()?.path();
            let tid: u64 = dir.file_name()?.to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            comm.starts_with(name).then(|| (tid, dir.join("schedstat")))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// The messages in the database at `path`.
fn stored_messages(path: &Path) -> i64 {
    Connection::open(path)
        .and_then(|c| c.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)))
        .unwrap()
}

/// CPU time of every thread of this process so far (Linux `schedstat`): on a machine
/// other work shares, it says what a query costs where the wall clock says how long it
/// waited for a core.
fn process_cpu() -> Option<Duration> {
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        if let Some(cpu) = thread_cpu(&task.ok()?.path().join("schedstat")) {
            total += cpu;
        }
    }
    Some(total)
}

/// p50 and p99 of `samples`.
fn quantiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

/// One size's figures, in the order of [`ROWS`].
type Figures = Vec<Option<f64>>;

/// The rows of the table: name, unit, whether higher is better, goal.
const ROWS: &[(&str, &str, bool, &str)] = &[
    (
        "durable append, 256 posters",
        "msg/s",
        true,
        ">= 0.9x of the smallest",
    ),
    ("durable append p50", "ms", false, ""),
    ("durable append p99", "ms", false, "<= 1.3x of the smallest"),
    ("writer thread CPU per message", "us", false, ""),
    ("checkpoint thread CPU per message", "us", false, ""),
    (
        "pages the writer wrote per message (log frames)",
        "pages",
        false,
        "",
    ),
    (
        "pages the checkpoint thread copied per message",
        "pages",
        false,
        "",
    ),
    (
        "bytes written per message (log, checkpoints, search)",
        "B",
        false,
        "",
    ),
    ("search indexer CPU per message", "us", false, ""),
    (
        "inbox with counts p50",
        "ms",
        false,
        "<= 1.3x, 10k to 100k conv",
    ),
    ("inbox with counts p99", "ms", false, ""),
    ("?tag=refund p50", "ms", false, "<= 1.3x, 10k to 100k conv"),
    ("?tag=refund p99", "ms", false, ""),
    ("search, a word that hits, p50", "ms", false, ""),
    (
        "search, a word that hits, p99",
        "ms",
        false,
        "< 50 ms at 5M messages",
    ),
    ("search, a word that misses, p50", "ms", false, ""),
    (
        "search, a word that misses, p99",
        "ms",
        false,
        "< 50 ms at 5M messages",
    ),
    ("search, a word that hits, CPU per query", "ms", false, ""),
    ("search, a word that misses, CPU per query", "ms", false, ""),
    (
        "search, a common word (1 message in 5), p50",
        "ms",
        false,
        "",
    ),
    (
        "search, a common word, p99",
        "ms",
        false,
        "< 50 ms at 5M messages",
    ),
    ("search, a common word, CPU per query", "ms", false, ""),
    (
        "same, every match looked up (the old plan), p50",
        "ms",
        false,
        "baseline of the row above",
    ),
    ("same, the old plan, CPU per query", "ms", false, ""),
    (
        "queue count (/metrics) p50",
        "ms",
        false,
        "<= 1 ms at 100k queued",
    ),
    (
        "bytes per message (db + log + search)",
        "B",
        false,
        "<= 600",
    ),
];

async fn measure(
    path: &Path,
    size: &Size,
    tenant: TenantId,
    ids: Arc<Vec<ConversationId>>,
) -> Figures {
    let store = Arc::new(SqliteStore::open_with(path, measured_options()).expect("open"));
    let rebuilding = Instant::now();
    store.wait_for_search_index().await.unwrap();
    eprintln!(
        "  {}: search index ready in {:.1} s",
        size.label(),
        rebuilding.elapsed().as_secs_f64()
    );
    let queries = env("BENCH_QUERIES", 200).max(1);
    let admin = || ConversationQuery::new(tenant, Scope::Tenant);
    let timed_on =
        |store: Arc<SqliteStore>, q: ConversationQuery, expect_items: bool, queries: u64| {
            async move {
                // Warm the caches once, then time each query.
                let first = store.list_conversations(&q).await.unwrap();
                assert_eq!(!first.items.is_empty(), expect_items, "{q:?}");
                let mut samples = Vec::new();
                let cpu_before = process_cpu();
                for _ in 0..queries {
                    let started = Instant::now();
                    store.list_conversations(&q).await.unwrap();
                    samples.push(started.elapsed());
                }
                let cpu = process_cpu()
                    .zip(cpu_before)
                    .map(|(after, before)| (after - before) / queries as u32);
                let (p50, p99) = quantiles(samples);
                (p50, p99, cpu)
            }
        };
    let timed = |q: ConversationQuery, expect_items: bool| {
        timed_on(store.clone(), q, expect_items, queries)
    };
    let ms = |d: Duration| Some(d.as_secs_f64() * 1e3);

    let inbox = timed(admin(), size.conversations > 0).await;
    let tag = timed(
        ConversationQuery {
            tag: Some("refund".into()),
            ..admin()
        },
        size.conversations > 3,
    )
    .await;
    let hit = timed(
        ConversationQuery {
            text: Some(HIT.into()),
            ..admin()
        },
        // A kept database also has the posts of the runs before, some of them hits.
        size.messages > 7 || stored_messages(path) > 0,
    )
    .await;
    let miss = timed(
        ConversationQuery {
            text: Some(MISS.into()),
            ..admin()
        },
        false,
    )
    .await;
    let common_query = ConversationQuery {
        text: Some(COMMON.into()),
        ..admin()
    };
    let has_messages = size.messages > 0 || stored_messages(path) > 0;
    let common = timed(common_query.clone(), has_messages).await;
    // The same database through a store that looks every match of a word up, however many
    // (what every search did before the walk of the inbox): the baseline of the common
    // word's rows, in this process on this file. A second or two a query at a million
    // messages: a few are enough.
    let old_plan = Arc::new(
        SqliteStore::open_with(path, Options::default().search_candidates(u64::MAX)).expect("open"),
    );
    old_plan.wait_for_search_index().await.unwrap();
    let old = timed_on(old_plan.clone(), common_query, has_messages, queries.min(5)).await;
    drop(old_plan);
    let queue = timed(
        ConversationQuery {
            modes: vec![Mode::Queued],
            limit: 1,
            ..admin()
        },
        size.conversations > 0,
    )
    .await;

    // Durable appends last: they change the database the reads above measured.
    // `BENCH_POSTS=0` leaves a kept database as it is (the reads only).
    let posts = env("BENCH_POSTS", 20_000);
    let indexer = thread_schedstat("chat-sqlite-ind");
    let indexer_before = indexer.as_deref().and_then(thread_cpu);
    let writer = thread_schedstat("chat-sqlite-wri");
    let writer_before = writer.as_deref().and_then(thread_cpu);
    let checkpoints = thread_schedstat("chat-sqlite-che");
    let checkpoints_before = checkpoints.as_deref().and_then(thread_cpu);
    let process_io = Path::new("/proc/self/io");
    let writer_io = writer
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.join("io"));
    let written_before = written_bytes(process_io);
    let log_before = writer_io.as_deref().and_then(written_bytes);
    let checkpoint_io = checkpoints
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.join("io"));
    let copied_before = checkpoint_io.as_deref().and_then(written_bytes);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..256 {
        let (store, ids, next) = (store.clone(), ids.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= posts || ids.is_empty() {
                    return latencies;
                }
                let c = ids[(mix(i ^ 0x5555) % ids.len() as u64) as usize];
                let sent = Instant::now();
                store
                    .append_message(new_message(tenant, c, i + 1))
                    .await
                    .unwrap();
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let rate = (posts > 0).then(|| posts as f64 / started.elapsed().as_secs_f64());
    store.wait_for_search_index().await.unwrap();
    let per_post = |before: Option<Duration>, thread: Option<&Path>| match (
        before,
        thread.and_then(thread_cpu),
    ) {
        (Some(b), Some(a)) if posts > 0 => Some((a - b).as_secs_f64() * 1e6 / posts as f64),
        _ => None,
    };
    let writer_cpu = per_post(writer_before, writer.as_deref());
    let checkpoint_cpu = per_post(checkpoints_before, checkpoints.as_deref());
    let per_post_bytes = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if posts > 0 => Some((a - b) as f64 / posts as f64),
        _ => None,
    };
    let written = per_post_bytes(written_before, written_bytes(process_io));
    // Pages, not bytes: the writer writes the log, a frame (24-byte header and a page) per
    // page each commit changed, and the few pages its log restarts copy into the database
    // (src/checkpoint.rs); the checkpoint thread writes the pages it copies.
    let frames = per_post_bytes(log_before, writer_io.as_deref().and_then(written_bytes))
        .map(|bytes| bytes / (24.0 + 4096.0));
    let copied = per_post_bytes(
        copied_before,
        checkpoint_io.as_deref().and_then(written_bytes),
    )
    .map(|bytes| bytes / 4096.0);
    let indexer_cpu = per_post(indexer_before, indexer.as_deref());
    let (append_p50, append_p99) = if latencies.is_empty() {
        (None, None)
    } else {
        let (p50, p99) = quantiles(latencies);
        (ms(p50), ms(p99))
    };
    drop(store);

    let bytes: u64 = [
        path.to_path_buf(),
        PathBuf::from(format!("{}-wal", path.display())),
        search_path(path),
        PathBuf::from(format!("{}-search-wal", path.display())),
    ]
    .iter()
    .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
    .sum();
    // Counted, not assumed: a kept database has the posts of the runs before.
    let messages = stored_messages(path);

    vec![
        rate,
        append_p50,
        append_p99,
        writer_cpu,
        checkpoint_cpu,
        frames,
        copied,
        written,
        indexer_cpu,
        ms(inbox.0),
        ms(inbox.1),
        ms(tag.0),
        ms(tag.1),
        ms(hit.0),
        ms(hit.1),
        ms(miss.0),
        ms(miss.1),
        hit.2.and_then(ms),
        miss.2.and_then(ms),
        ms(common.0),
        ms(common.1),
        common.2.and_then(ms),
        ms(old.0),
        old.2.and_then(ms),
        ms(queue.0),
        Some(bytes as f64 / messages.max(1) as f64),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; every other argument is a size.
    let mut sizes: Vec<Size> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| Size::parse(&a))
        .collect();
    if sizes.is_empty() {
        sizes = vec![Size::parse("2000x0"), Size::parse("10000x100000")];
    }
    // `BENCH_DIR` keeps each database (`growth-<conversations>x<messages>.db`) and uses it
    // again in the next run instead of building it: a 1M-message database takes minutes to
    // build and index. Without it they go in a temporary folder, deleted as each is done.
    let kept = std::env::var_os("BENCH_DIR").map(PathBuf::from);
    let temporary = match &kept {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap();
            None
        }
        None => Some(tempfile::tempdir().unwrap()),
    };
    println!("chat-sqlite growth benchmark: one run, ratio to the first size in brackets");
    let mut columns = Vec::new();
    for size in &sizes {
        let name = format!("growth-{}x{}.db", size.conversations, size.messages);
        let path = match (&kept, &temporary) {
            (Some(dir), _) => dir.join(name),
            (None, Some(dir)) => dir.path().join(name),
            (None, None) => unreachable!("one of the two folders is set"),
        };
        let (tenant, ids) = match kept.is_some().then(|| kept_database(&path)).flatten() {
            Some(found) => {
                eprintln!("  {}: using the kept {}", size.label(), path.display());
                found
            }
            None => {
                let building = Instant::now();
                let built = build(&path, size).await;
                eprintln!(
                    "  {}: built in {:.1} s",
                    size.label(),
                    building.elapsed().as_secs_f64()
                );
                built
            }
        };
        columns.push(measure(&path, size, tenant, ids).await);
        if kept.is_none() {
            // Each database is measured on its own; the next one needs the disk.
            for suffix in ["", "-wal", "-shm", "-search", "-search-wal", "-search-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }

    let mut header = "| cost | unit |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for size in &sizes {
        header.push_str(&format!(" {} |", size.label()));
        rule.push_str("--:|");
    }
    header.push_str(" goal |");
    rule.push_str("---|");
    println!("{header}\n{rule}");
    for (r, (name, unit, _higher, goal)) in ROWS.iter().enumerate() {
        let mut line = format!("| {name} | {unit} |");
        let base = columns[0][r];
        for column in &columns {
            let cell = match (column[r], base) {
                (Some(v), Some(b)) if b > 0.0 => format!(" {} ({:.2}x) |", fmt(v), v / b),
                (Some(v), _) => format!(" {} |", fmt(v)),
                (None, _) => " - |".to_owned(),
            };
            line.push_str(&cell);
        }
        line.push_str(&format!(" {goal} |"));
        println!("{line}");
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
