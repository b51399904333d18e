//! Throughput of the SQLite store against raw rusqlite doing the same SQL.
//!
//! ```text
//! cargo bench -p chat-sqlite
//! BENCH_MESSAGES=20000 BENCH_READ_MESSAGES=100000 cargo bench -p chat-sqlite   # quick run
//! ```
//!
//! Sizes (environment variables, defaults are the issue's sizes):
//! - `BENCH_CONVERSATIONS` (10000): conversations the posters write to at random;
//! - `BENCH_MESSAGES` (50000): messages posted per run with 16 and 256 posters and by the
//!   raw baseline (a fifth of it with 1 poster, which waits for one fsync per message);
//! - `BENCH_READ_MESSAGES` (1000000): messages in the read database;
//! - `BENCH_READ_QUERIES` (20000): latest-50 reads per run;
//! - `BENCH_POSTERS` (`1,16,256`): the numbers of concurrent posters to run (empty: reads only);
//! - `BENCH_SYNC` (`full`): `full` or `normal`;
//! - `BENCH_CACHE_KIB` (the store's default): page cache of the store's read connections;
//! - `BENCH_WRITER_CACHE_KIB` (the store's default): page cache of its write connection;
//! - `BENCH_MMAP` (the store's default): `Options::mmap_size` of the store, in bytes;
//! - `BENCH_INDEX_MS`, `BENCH_CHECKPOINT_MS`, `BENCH_WAL_RESTART_PAGES` (the store's
//!   defaults): `Options::index_interval`, `checkpoint_interval`, `wal_restart_pages`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_core::store::MessageQuery;
use chat_core::{
    Contact, ContactId, Conversation, ConversationId, Event, EventPayload, MessageId, MessageKind,
    Mode, NewMessage, Sender, Store, Tenant, TenantId, TenantSettings,
};
use chat_sqlite::{Options, SqliteStore, Synchronous};
use rusqlite::{Connection, params};
use time::OffsetDateTime;
use uuid::Uuid;

#[path = "support/raw_post.rs"]
mod raw_post;

use raw_post::RawPost;

const BODY: &str =
    "Hi, my order #48213 has not arrived yet and tracking shows no update since Monday.";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn conversation(
    tenant: TenantId,
    contact: ContactId,
    id: Uuid,
    now: OffsetDateTime,
) -> Conversation {
    Conversation {
        title: Some("Where is my order?".into()),
        department: Some("support".into()),
        tags: vec!["shipping".into()],
        version: 0,
        ..Conversation::new(ConversationId(id), tenant, contact, Mode::Agent, now)
    }
}

fn new_message(tenant: TenantId, conversation: Uuid) -> NewMessage {
    NewMessage {
        id: MessageId(Uuid::now_v7()),
        tenant_id: tenant,
        conversation_id: ConversationId(conversation),
        sender: Sender::Customer,
        kind: MessageKind::Text,
        body: BODY.into(),
        attachments: Vec::new(),
        reply_to: None,
        client_message_id: None,
        entities: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: OffsetDateTime::now_utc(),
    }
}

/// A store with a tenant, a contact and `n` conversations; returns their ids.
async fn seeded(path: &Path, options: Options, n: u64) -> (Arc<SqliteStore>, TenantId, Vec<Uuid>) {
    let store = Arc::new(SqliteStore::open_with(path, options).expect("open"));
    let now = OffsetDateTime::now_utc();
    let tenant = TenantId(Uuid::now_v7());
    store
        .insert_tenant(&Tenant {
            id: tenant,
            name: "Bench".into(),
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
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let mut tasks = Vec::new();
    for chunk in ids.chunks(ids.len().div_ceil(256).max(1)) {
        let (store, chunk) = (store.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for id in chunk {
                store
                    .create_conversation(&conversation(tenant, contact.id, id, now), Vec::new())
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (store, tenant, ids)
}

/// CPU time a thread has used so far (Linux `schedstat`), or `None` elsewhere. The machine
/// is shared, so wall-clock rates vary from run to run; the CPU the one SQLite writer spends
/// per message does much less, and it bounds the rate: 1 s / (CPU per message).
fn thread_cpu(schedstat: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(schedstat).ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The `schedstat` file of the store's thread whose name starts with `name` (Linux keeps
/// the first 15 bytes of a thread's name).
fn thread_schedstat(name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
        let dir = task.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        comm.starts_with(name).then(|| dir.join("schedstat"))
    })
}

/// Samples the size of the file at `path` every 10 ms until told to stop; returns the
/// largest size seen.
fn watch_size(path: std::path::PathBuf) -> (Arc<AtomicU64>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut largest = 0;
            while stop.load(Ordering::Relaxed) == 0 {
                largest = largest.max(std::fs::metadata(&path).map_or(0, |m| m.len()));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            largest
        }
    });
    (stop, task)
}

/// Microseconds of CPU per message between two readings.
fn per_message(before: Option<Duration>, after: Option<Duration>, messages: u64) -> String {
    match (before, after) {
        (Some(b), Some(a)) => format!("{:.1} us", (a - b).as_secs_f64() * 1e6 / messages as f64),
        _ => "-".into(),
    }
}

/// Deterministic spread of message `i` over the conversations.
fn pick(i: u64, n: usize) -> usize {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17) as usize % n
}

struct WriteRun {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

async fn post(
    store: &Arc<SqliteStore>,
    tenant: TenantId,
    ids: &Arc<Vec<Uuid>>,
    posters: u64,
    total: u64,
) -> WriteRun {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..posters {
        let (store, ids, next) = (store.clone(), ids.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return latencies;
                }
                let message = new_message(tenant, ids[pick(i, ids.len())]);
                let sent = Instant::now();
                store.append_message(message).await.unwrap();
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    WriteRun {
        per_sec: total as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// The pragmas `SqliteStore` sets on its connections (default options), for the raw
/// baseline: the writer's page cache for writes, the readers' for reads.
fn raw_connection(path: &Path, sync: Synchronous, cache_kib: u64) -> Connection {
    let conn = Connection::open(path).unwrap();
    let sync = if sync == Synchronous::Full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -{cache_kib}; PRAGMA mmap_size = 1073741824;"
    ))
    .unwrap();
    conn
}

/// The same rows the store writes per message ([`raw_post::insert`], shared with
/// chat-server's `post_cost` bench), 1000 messages per transaction.
fn raw_writes(
    path: &Path,
    sync: Synchronous,
    tenant: TenantId,
    ids: &[Uuid],
    total: u64,
) -> (f64, String) {
    let conn = raw_connection(path, sync, Options::default().writer_cache_kib);
    let now = OffsetDateTime::now_utc();
    let sample = conversation(tenant, ContactId(Uuid::now_v7()), ids[0], now);
    let first = new_message(tenant, ids[0]).into_message(1);
    let event = Event {
        seq: 1,
        tenant_id: tenant,
        conversation_id: Some(sample.id),
        staff_only: false,
        at: now,
        payload: EventPayload::MessageCreated {
            message: Box::new(first),
        },
    };
    let event_json = serde_json::to_string(&event).unwrap();
    // Where the previous run on this database left each conversation.
    let mut last_seq: Vec<i64> = ids
        .iter()
        .map(|id| {
            conn.query_row(
                "SELECT last_seq FROM conversations WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap()
        })
        .collect();
    let mut event_seq: i64 = conn
        .query_row(
            "SELECT coalesce(max(seq), 0) FROM events WHERE tenant_id = ?1",
            [tenant.0],
            |r| r.get(0),
        )
        .unwrap();
    let schedstat = Path::new("/proc/thread-self/schedstat");
    let cpu = thread_cpu(schedstat);
    let started = Instant::now();
    let mut i = 0;
    while i < total {
        let tx = conn.unchecked_transaction().unwrap();
        for _ in 0..1000.min(total - i) {
            let c = pick(i, ids.len());
            last_seq[c] += 1;
            event_seq += 1;
            let at = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
            raw_post::insert(
                &tx,
                &RawPost {
                    tenant: tenant.0,
                    conversation: ids[c],
                    seq: last_seq[c],
                    event_seq,
                    body: BODY,
                    client_message_id: None,
                    at,
                    event_json: &event_json,
                },
            )
            .unwrap();
            i += 1;
        }
        tx.commit().unwrap();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    (rate, per_message(cpu, thread_cpu(schedstat), total))
}

/// Fills a read database: `total` messages spread over conversations of 100 messages,
/// interleaved as live traffic would leave them. Returns one conversation to read.
async fn read_database(path: &Path, total: u64) -> (TenantId, Uuid) {
    let conversations = total.div_ceil(100).max(1);
    let (store, tenant, ids) = seeded(
        path,
        Options::default().synchronous(Synchronous::Normal),
        conversations,
    )
    .await;
    drop(store);
    let conn = raw_connection(
        path,
        Synchronous::Normal,
        Options::default().writer_cache_kib,
    );
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, created_at) \
                 VALUES (?1, ?2, ?3, ?4, 'customer', 'text', ?5, ?6)",
            )
            .unwrap();
        let at = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        for i in 0..total {
            let c = (i % conversations) as usize;
            let seq = i / conversations + 1;
            insert
                .execute(params![
                    Uuid::now_v7(),
                    tenant.0,
                    ids[c],
                    seq as i64,
                    BODY,
                    at + i as i64
                ])
                .unwrap();
        }
        tx.execute("UPDATE conversations SET last_seq = (SELECT max(seq) FROM messages m WHERE m.conversation_id = conversations.id)", [])
            .unwrap();
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .unwrap();
    (tenant, ids[ids.len() / 2])
}

/// Latest-50 reads through the store from 2 tasks.
async fn store_reads(
    store: &Arc<SqliteStore>,
    tenant: TenantId,
    conversation: Uuid,
    total: u64,
) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let q = MessageQuery::latest(tenant, ConversationId(conversation), 50);
            for _ in 0..total / 2 {
                let messages = store.messages(&q).await.unwrap();
                assert_eq!(messages.len(), 50);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// The same rows read raw from 2 threads, each column into an owned value.
fn raw_reads(path: &Path, tenant: TenantId, conversation: Uuid, total: u64) -> f64 {
    type Row = (
        Uuid,
        Uuid,
        Uuid,
        i64,
        String,
        String,
        String,
        Option<String>,
        Option<Uuid>,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
    );
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                let conn = raw_connection(path, Synchronous::Normal, Options::default().writer_cache_kib);
                for _ in 0..total / 2 {
                    let mut stmt = conn
                        .prepare_cached(
                            "SELECT id, tenant_id, conversation_id, seq, sender, kind, body, client_message_id, reply_to, \
                             created_at, edited_at, deleted_at, extra FROM messages \
                             WHERE conversation_id = ?1 AND tenant_id = ?2 ORDER BY seq DESC LIMIT 50",
                        )
                        .unwrap();
                    let rows: Vec<Row> = stmt
                        .query_map(params![conversation, tenant.0], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?))
                        })
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    assert_eq!(rows.len(), 50);
                }
            });
        }
    });
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let conversations = env("BENCH_CONVERSATIONS", 10_000);
    let messages = env("BENCH_MESSAGES", 50_000);
    let read_messages = env("BENCH_READ_MESSAGES", 1_000_000);
    let read_queries = env("BENCH_READ_QUERIES", 20_000);
    let sync = match std::env::var("BENCH_SYNC").as_deref() {
        Ok("normal") => Synchronous::Normal,
        _ => Synchronous::Full,
    };
    let dir = match std::env::var("BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    println!("chat-sqlite store benchmark: synchronous = {sync:?}, {conversations} conversations");

    // Raw baseline on its own database of the same shape. Other work on a shared machine
    // comes and goes within a run, so the baseline runs again right before each row of
    // the store's table and each ratio is to the run next to it.
    let raw_path = dir.path().join("raw.db");
    let (store, raw_tenant, raw_ids) = seeded(
        &raw_path,
        Options::default().synchronous(sync),
        conversations,
    )
    .await;
    drop(store);
    let raw_run = || raw_writes(&raw_path, sync, raw_tenant, &raw_ids, messages);
    println!(
        "raw: rusqlite, the same SQL per message, 1000 messages per transaction, {messages} messages per run"
    );

    let path = dir.path().join("store.db");
    let mut options = Options::default().synchronous(sync);
    if let Ok(kib) = std::env::var("BENCH_CACHE_KIB") {
        options = options.cache_kib(kib.parse().expect("BENCH_CACHE_KIB is a number"));
    }
    if let Ok(bytes) = std::env::var("BENCH_MMAP") {
        options = options.mmap_size(bytes.parse().expect("BENCH_MMAP is a number of bytes"));
    }
    if let Ok(kib) = std::env::var("BENCH_WRITER_CACHE_KIB") {
        options =
            options.writer_cache_kib(kib.parse().expect("BENCH_WRITER_CACHE_KIB is a number"));
    }
    if let Ok(ms) = std::env::var("BENCH_INDEX_MS") {
        let ms = ms.parse().expect("BENCH_INDEX_MS is a number");
        options = options.index_interval(Duration::from_millis(ms));
    }
    if let Ok(ms) = std::env::var("BENCH_CHECKPOINT_MS") {
        let ms = ms.parse().expect("BENCH_CHECKPOINT_MS is a number");
        options = options.checkpoint_interval(Duration::from_millis(ms));
    }
    if let Ok(pages) = std::env::var("BENCH_WAL_RESTART_PAGES") {
        let pages = pages.parse().expect("BENCH_WAL_RESTART_PAGES is a number");
        options = options.wal_restart_pages(pages);
    }
    let (store, tenant, ids) = seeded(&path, options, conversations).await;
    store.wait_for_search_index().await.unwrap();
    let ids = Arc::new(ids);
    let writer = thread_schedstat("chat-sqlite-wri");
    let indexer = thread_schedstat("chat-sqlite-ind");
    let checkpointer = thread_schedstat("chat-sqlite-che");
    println!(
        "| posters | messages | messages/s | raw messages/s | vs raw | p50 commit | p99 commit | CPU per message: writer | raw | indexer | checkpoints | index caught up | largest WAL |"
    );
    println!(
        "|--------:|---------:|-----------:|---------------:|-------:|-----------:|-----------:|------------------------:|----:|--------:|------------:|----------------:|------------:|"
    );
    let wal = dir.path().join("store.db-wal");
    let posters_list: Vec<u64> = match std::env::var("BENCH_POSTERS") {
        Ok(list) => list
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("BENCH_POSTERS is a list of numbers")
            })
            .collect(),
        Err(_) => vec![1, 16, 256],
    };
    for posters in posters_list {
        let total = if posters == 1 {
            (messages / 5).max(1)
        } else {
            messages
        };
        let (raw, raw_cpu) = raw_run();
        let cpu = writer.as_deref().and_then(thread_cpu);
        let indexer_cpu = indexer.as_deref().and_then(thread_cpu);
        let checkpoint_cpu = checkpointer.as_deref().and_then(thread_cpu);
        let (stop_watch, largest_wal) = watch_size(wal.clone());
        let run = post(&store, tenant, &ids, posters, total).await;
        let cpu = per_message(cpu, writer.as_deref().and_then(thread_cpu), total);
        // How long after the last acknowledgement the search index has every message of
        // the run: the indexer keeps up if this stays small. Its CPU is counted to here.
        let posted = Instant::now();
        store.wait_for_search_index().await.unwrap();
        let caught_up = posted.elapsed();
        let indexer_cpu = per_message(indexer_cpu, indexer.as_deref().and_then(thread_cpu), total);
        let checkpoint_cpu = per_message(
            checkpoint_cpu,
            checkpointer.as_deref().and_then(thread_cpu),
            total,
        );
        stop_watch.store(1, Ordering::Relaxed);
        let largest_wal = largest_wal.await.unwrap();
        println!(
            "| {posters:>7} | {total:>8} | {:>10.0} | {raw:>14.0} | {:>5.2}x | {:>7.2} ms | {:>7.2} ms | {cpu:>23} | {raw_cpu} | {indexer_cpu} | {checkpoint_cpu} | {:>12.0} ms | {:>8.1} MiB |",
            run.per_sec,
            run.per_sec / raw,
            run.p50.as_secs_f64() * 1e3,
            run.p99.as_secs_f64() * 1e3,
            caught_up.as_secs_f64() * 1e3,
            largest_wal as f64 / (1024.0 * 1024.0)
        );
    }
    drop(store);

    let read_path = dir.path().join("read.db");
    let filling = Instant::now();
    let (tenant, conversation) = read_database(&read_path, read_messages).await;
    println!(
        "read database: {read_messages} messages, filled in {:.1} s",
        filling.elapsed().as_secs_f64()
    );
    // The messages went in without events, behind the store's back: a new search file
    // indexes them all (a rebuild, timed here), so that the reads run with a full index
    // attached, as they would in service.
    std::fs::remove_file(dir.path().join("read.db-search")).unwrap();
    let rebuilding = Instant::now();
    let store = Arc::new(SqliteStore::open(&read_path).unwrap());
    store.wait_for_search_index().await.unwrap();
    println!(
        "search index of {read_messages} messages rebuilt in {:.1} s",
        rebuilding.elapsed().as_secs_f64()
    );
    // Warm both paths before measuring.
    store_reads(&store, tenant, conversation, 1000).await;
    raw_reads(&read_path, tenant, conversation, 1000);
    let raw = raw_reads(&read_path, tenant, conversation, read_queries);
    let ours = store_reads(&store, tenant, conversation, read_queries).await;
    println!(
        "latest-50 reads, 2 readers: store {ours:.0} queries/s, raw {raw:.0} queries/s, {:.2}x",
        ours / raw
    );
}
