//! The reports on a large desk: each report as the store answers it (aggregate queries on
//! indexes) beside the same report computed naively (every conversation loaded through the
//! store's list, then `chat_core::report` in Rust), in the same run, with the ratio.
//!
//! ```text
//! cargo bench -p chat-sqlite --bench reports                       # 100,000 conversations, 1,000,000 messages
//! cargo bench -p chat-sqlite --bench reports -- 10000x100000       # smaller
//! cargo test -p chat-sqlite --bench reports -- 300x3000            # a smoke run (debug, untimed)
//! ```
//!
//! The database is built once per run, in one transaction of bulk inserts after the store
//! has created the schema: 20 agents, the conversations spread over 90 days from
//! 2026-01-01 (80% closed after 5 minutes to 2 days, 70% answered after 10 s to 2 h, 40% of
//! the closed rated, a third of those with a text, 5% reopened once, three departments,
//! four channels, every one tagged `shipping`, one in ten `refund`), and the messages spread
//! over them. Each report then runs `BENCH_RUNS` (5) times each way; the figures are the
//! median of the runs, and both ways must give equal answers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chat_core::report::{
    Dimension, Interval, ReportPeriod, ReportQuery, feedback_of, report_rows, series_points,
};
use chat_core::store::{ConversationQuery, Scope};
use chat_core::{
    Agent, AgentId, Availability, Channel, Contact, ContactId, Conversation, ConversationId, Mode,
    Rating, Role, Store, Tenant, TenantId, TenantSettings,
};
use chat_sqlite::{Options, SqliteStore, Synchronous};
use rusqlite::{Connection, params};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

const AGENTS: u64 = 20;
const DAYS: i64 = 90;
const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// A deterministic pseudo-random number for `i` (splitmix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn secs(n: i64) -> time::Duration {
    time::Duration::seconds(n)
}

/// Conversation `i` of `n`, and when it was reopened, if it was.
fn conversation(
    tenant: TenantId,
    contact: ContactId,
    agents: &[AgentId],
    i: u64,
    n: u64,
) -> (Conversation, Option<OffsetDateTime>) {
    let r = |salt: u64| mix(i.wrapping_mul(97).wrapping_add(salt));
    let created = START + secs((DAYS * 86_400) * i as i64 / n as i64);
    let mut c = Conversation::new(
        ConversationId(Uuid::now_v7()),
        tenant,
        contact,
        Mode::Agent,
        created,
    );
    c.version = 0;
    c.channel = [
        Channel::Web,
        Channel::Email,
        Channel::Whatsapp,
        Channel::Telegram,
    ][(r(1) % 4) as usize];
    c.department = Some(["support", "billing", "sales"][(r(2) % 3) as usize].into());
    c.tags = vec!["shipping".into()];
    if i % 10 == 3 {
        c.tags.push("refund".into());
    }
    if r(3) % 10 != 0 {
        c.assigned_agent_id = Some(agents[(r(4) % agents.len() as u64) as usize]);
    }
    if r(5) % 10 < 7 {
        c.first_response_at = Some(created + secs(10 + (r(6) % 7_200) as i64));
    }
    if r(7) % 10 < 8 {
        let closed = created + secs(300 + (r(8) % 172_800) as i64);
        c.mode = Mode::Closed;
        c.closed_at = Some(closed);
        if r(9) % 10 < 4 {
            c.rating = Some(Rating {
                score: 1 + (r(10) % 5) as u8,
                feedback: (r(11) % 3 == 0).then(|| format!("Feedback number {i}")),
                rated_at: closed + secs(60),
            });
        }
    }
    c.updated_at = c.closed_at.unwrap_or(created);
    let reopened = (r(12) % 20 == 0).then(|| created + secs(200));
    (c, reopened)
}

fn ns(at: OffsetDateTime) -> i64 {
    at.unix_timestamp_nanos() as i64
}

fn ns_opt(at: Option<OffsetDateTime>) -> Option<i64> {
    at.map(ns)
}

/// Builds the desk at `path`: the schema and the staff through the store, the rest in one
/// transaction of raw inserts with the columns the store writes.
async fn build(path: &Path, conversations: u64, messages: u64) -> TenantId {
    let store = SqliteStore::open_with(path, Options::default().synchronous(Synchronous::Normal))
        .expect("open");
    let tenant = TenantId(Uuid::now_v7());
    store
        .insert_tenant(&Tenant {
            id: tenant,
            name: "Reports".into(),
            settings: TenantSettings::default(),
            settings_version: 0,
            created_at: START,
        })
        .await
        .unwrap();
    let contact = Contact {
        id: ContactId(Uuid::now_v7()),
        tenant_id: tenant,
        name: Some("Ann".into()),
        email: None,
        email_verified: false,
        phone: None,
        address: None,
        external_id: None,
        metadata: BTreeMap::new(),
        created_at: START,
        updated_at: START,
    };
    store.insert_contact(&contact).await.unwrap();
    let mut agents = Vec::new();
    for a in 0..AGENTS {
        let agent = Agent {
            id: AgentId(Uuid::now_v7()),
            tenant_id: tenant,
            name: format!("Agent {a}"),
            email: format!("agent{a}@desk.example"),
            role: Role::Agent,
            availability: Availability::Online,
            capacity: None,
            departments: Vec::new(),
            active: true,
            created_at: START,
            updated_at: START,
        };
        store.insert_agent(&agent).await.unwrap();
        agents.push(agent.id);
    }
    drop(store);

    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;",
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    let mut ids = Vec::with_capacity(conversations as usize);
    {
        let mut row = tx
            .prepare(
                "INSERT INTO conversations (id, tenant_id, contact_id, channel, mode, priority, department, \
                 assigned_agent_id, pinned, title, updated_at, queued_at, last_seq, version, data, \
                 first_response_at, created_at, closed_at, rated_at, rating_score) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, 0, NULL, ?8, NULL, 0, 0, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .unwrap();
        let mut tag = tx
            .prepare("INSERT INTO conversation_tags (conversation_id, tag) VALUES (?1, ?2)")
            .unwrap();
        let mut reopen = tx
            .prepare(
                "INSERT INTO conversation_reopens (conversation_id, tenant_id, at) VALUES (?1, ?2, ?3)",
            )
            .unwrap();
        for i in 0..conversations {
            let (c, reopened) = conversation(tenant, contact.id, &agents, i, conversations);
            row.execute(params![
                c.id.0,
                tenant.0,
                contact.id.0,
                c.channel.as_str(),
                c.mode.as_str(),
                c.department,
                c.assigned_agent_id.map(|a| a.0),
                ns(c.updated_at),
                serde_json::to_string(&c).unwrap(),
                ns_opt(c.first_response_at),
                ns(c.created_at),
                ns_opt(c.closed_at),
                ns_opt(c.rating.as_ref().map(|r| r.rated_at)),
                c.rating.as_ref().map(|r| i64::from(r.score)),
            ])
            .unwrap();
            for t in &c.tags {
                tag.execute(params![c.id.0, t]).unwrap();
            }
            if let Some(at) = reopened {
                reopen.execute(params![c.id.0, tenant.0, ns(at)]).unwrap();
            }
            ids.push(c.id);
        }
        let mut message = tx
            .prepare(
                "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'text', ?6, ?7)",
            )
            .unwrap();
        let mut seq = vec![0i64; ids.len()];
        for m in 0..messages {
            let c = (m % ids.len() as u64) as usize;
            seq[c] += 1;
            message
                .execute(params![
                    Uuid::now_v7(),
                    tenant.0,
                    ids[c].0,
                    seq[c],
                    if seq[c] % 2 == 1 { "customer" } else { "bot" },
                    format!("Message {m} about the order and its delivery"),
                    ns(START) + m as i64,
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .unwrap();
    tenant
}

/// Every conversation of the tenant, as a naive report loads them: through the store's
/// list, 200 at a time; and the reopen marks.
async fn load_all(
    store: &SqliteStore,
    path: &Path,
    tenant: TenantId,
) -> (Vec<Conversation>, Vec<(ConversationId, OffsetDateTime)>) {
    let mut all = Vec::new();
    let mut query = ConversationQuery::new(tenant, Scope::Tenant);
    query.limit = 200;
    loop {
        let page = store.list_conversations(&query).await.unwrap();
        all.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    // The store offers no read of the marks (nothing but reports needs them): read them
    // from the file, which is what loading them would cost.
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT conversation_id, at FROM conversation_reopens WHERE tenant_id = ?1")
        .unwrap();
    let reopens = stmt
        .query_map([tenant.0], |r| {
            Ok((
                ConversationId(r.get(0)?),
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.get::<_, i64>(1)?)).unwrap(),
            ))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (all, reopens)
}

/// CPU time used so far by every thread of this process (Linux `schedstat`, nanoseconds):
/// on a shared machine the wall clock measures the neighbours as much as the query.
fn cpu() -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
                total += text
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(total)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arg = std::env::args()
        .skip(1)
        .find(|a| a.contains('x') && !a.starts_with('-'))
        .unwrap_or_else(|| "100000x1000000".into());
    let (conversations, messages) = arg
        .split_once('x')
        .and_then(|(c, m)| Some((c.parse::<u64>().ok()?, m.parse::<u64>().ok()?)))
        .unwrap_or_else(|| panic!("a size is <conversations>x<messages>, not {arg:?}"));
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    // `BENCH_DB=<file>` keeps the database there, and reuses it when it exists.
    let path = std::env::var_os("BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("reports.db"));
    let started = Instant::now();
    let tenant = if path.exists() {
        let conn = Connection::open(&path).unwrap();
        TenantId(
            conn.query_row("SELECT id FROM tenants", [], |r| r.get(0))
                .unwrap(),
        )
    } else {
        build(&path, conversations, messages).await
    };
    println!(
        "built {conversations} conversations, {messages} messages in {:.1} s ({} MB)",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&path).unwrap().len() / 1_000_000
    );
    let store = SqliteStore::open(&path).unwrap();
    // The messages went in behind the store's back: its indexer builds the search file
    // from them first, so that it does not compete with the reports for the CPU.
    let indexing = Instant::now();
    store.wait_for_search_index().await.unwrap();
    println!(
        "search file built in {:.1} s",
        indexing.elapsed().as_secs_f64()
    );

    let quarter = ReportPeriod::parse("2026-01-01", "2026-03-31", Some("Europe/Berlin")).unwrap();
    let month = ReportPeriod::parse("2026-03-01", "2026-03-31", Some("Europe/Berlin")).unwrap();
    let (from, to) = quarter.instants().unwrap();
    let whole = ReportQuery {
        tenant,
        from,
        to,
        agent: None,
    };
    let agents = store.agents(tenant).await.unwrap();
    let one_agent = ReportQuery {
        agent: Some(agents[0].id),
        ..whole.clone()
    };
    let (mfrom, mto) = month.instants().unwrap();
    let march = ReportQuery {
        from: mfrom,
        to: mto,
        ..whole.clone()
    };

    println!(
        "\n| report (90 days, Europe/Berlin) | store, wall (ms) | store, CPU (ms) | naive: load + compute, wall (ms) | naive, CPU (ms) | naive / store (CPU) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    enum Report {
        Rows(&'static str, ReportQuery, Option<Dimension>),
        Series(&'static str, ReportQuery, Vec<OffsetDateTime>),
        Feedback(&'static str, ReportQuery),
    }
    let reports = vec![
        Report::Rows("overview", whole.clone(), None),
        Report::Rows("breakdown by agent", whole.clone(), Some(Dimension::Agent)),
        Report::Rows(
            "breakdown by department",
            whole.clone(),
            Some(Dimension::Department),
        ),
        Report::Rows(
            "breakdown by channel",
            whole.clone(),
            Some(Dimension::Channel),
        ),
        Report::Rows("breakdown by tag", whole.clone(), Some(Dimension::Tag)),
        Report::Rows("one agent's overview", one_agent, None),
        Report::Series(
            "daily series (90 points)",
            whole.clone(),
            quarter.bounds(Interval::Day).unwrap(),
        ),
        Report::Series(
            "hourly series, March (744 points)",
            march,
            month.bounds(Interval::Hour).unwrap(),
        ),
        Report::Feedback("feedback, newest 100", whole.clone()),
    ];
    let (mut worst, mut worst_cpu) = (Duration::ZERO, Duration::ZERO);
    for report in &reports {
        let mut fast = Vec::new();
        let mut slow = Vec::new();
        let (mut fast_cpu, mut slow_cpu) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (t, c) = (Instant::now(), cpu());
            let answer = match report {
                Report::Rows(_, q, by) => {
                    serde_json::to_value(store.report_rows(q, *by).await.unwrap())
                }
                Report::Series(_, q, bounds) => {
                    serde_json::to_value(store.report_series(q, bounds).await.unwrap())
                }
                Report::Feedback(_, q) => {
                    serde_json::to_value(store.report_feedback(q, 100).await.unwrap())
                }
            }
            .unwrap();
            fast.push(t.elapsed());
            fast_cpu.push(cpu() - c);
            let (t, c) = (Instant::now(), cpu());
            let (all, reopens) = load_all(&store, &path, tenant).await;
            let naive = match report {
                Report::Rows(_, q, by) => serde_json::to_value(report_rows(&all, &reopens, q, *by)),
                Report::Series(_, q, bounds) => {
                    serde_json::to_value(series_points(&all, &reopens, q, bounds))
                }
                Report::Feedback(_, q) => serde_json::to_value(feedback_of(&all, q, 100)),
            }
            .unwrap();
            slow.push(t.elapsed());
            slow_cpu.push(cpu() - c);
            assert_eq!(answer, naive, "the store and the naive way disagree");
        }
        let name = match report {
            Report::Rows(name, ..) | Report::Series(name, ..) | Report::Feedback(name, _) => name,
        };
        let (fast, slow) = (median(fast), median(slow));
        let (fast_cpu, slow_cpu) = (median(fast_cpu), median(slow_cpu));
        worst = worst.max(fast);
        worst_cpu = worst_cpu.max(fast_cpu);
        println!(
            "| {name} | {} | {} | {} | {} | {:.0}x |",
            ms(fast),
            ms(fast_cpu),
            ms(slow),
            ms(slow_cpu),
            slow_cpu.as_secs_f64() / fast_cpu.as_secs_f64().max(1e-6)
        );
    }
    println!(
        "\nslowest report through the store: {} ms wall, {} ms CPU (goal: under 500 ms); load average {}",
        ms(worst),
        ms(worst_cpu),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
