//! Server CPU per durable post, in instructions (callgrind counts the same on a busy and
//! a quiet machine, where seconds do not), against raw rusqlite inserts of the same rows
//! (issue 21: at most 2x).
//!
//! The server is the `chat-server` binary (SQLite, `synchronous = FULL`, bot off, rate
//! limits off, logging at `warn`) under `valgrind --tool=callgrind`. A visitor posts
//! `POST_COST_POSTS` messages one after the other (so each is its own transaction, as in
//! the baseline) after `POST_COST_WARMUP` posts; the counters are zeroed before the
//! measured posts and dumped after them (`callgrind_control`), so the figure is every
//! instruction of every server thread (HTTP, engine, writer, search indexer, checkpoints,
//! realtime) while they ran, divided by the posts. It also prints that total without
//! the two threads that follow the clock (checkpoints, search indexer; see
//! `clock_driven`), whose share per post moves with the posting rate, and the server per
//! post with each post indexed once (the indexer's cost per message it applied while
//! counting, times the posts), the figure to compare across builds. The baseline is
//! this bench's own process under callgrind, counting only `raw_inserts`: per post one transaction with
//! the message row, the conversation's activity columns and the event row, the SQL the
//! store runs, on the same schema with the same pragmas, event JSON encoded once. That
//! baseline never checkpoints (`wal_autocheckpoint = 0`, as the store's writer); a second
//! one, printed beside it with its own ratio, runs the same loop with SQLite's default
//! automatic checkpoint (`wal_autocheckpoint = 1000`), what any raw WAL application pays
//! to copy its log into the database.
//!
//! `cargo bench -p chat-server --bench post_cost` (needs `valgrind` on the `PATH`)
//! Settings: `POST_COST_POSTS` (2000), `POST_COST_WARMUP` (200),
//! `POST_COST_ANNOTATE=1` prints `callgrind_annotate`'s top functions of the server's
//! dump (where the instructions go); `POST_COST_KEEP=<file>` keeps that dump.

mod common;
// The baseline's SQL, shared with chat-sqlite's `store` bench.
#[path = "../../chat-sqlite/benches/support/raw_post.rs"]
mod raw_post;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{
    Contact, ContactId, Conversation, ConversationId, Event, EventPayload, MessageId, MessageKind,
    Mode, NewMessage, Sender, Store, Tenant, TenantId, TenantSettings,
};
use common::{Http, env_or};
use hyper::{Method, StatusCode};
use raw_post::RawPost;
use rusqlite::Connection;
use time::OffsetDateTime;
use uuid::Uuid;

/// The load generators' message text (about 150 characters), so the rows are alike.
const TEXT: &str = "Hello, I ordered a blue kettle last week and it still has not arrived. \
                    Could you tell me where it is? Order number 4521-88. Thanks!";

fn main() {
    if !common::invoked_by_cargo_bench() {
        println!(
            "post_cost runs the server under callgrind: `cargo bench -p chat-server --bench post_cost`"
        );
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--raw-child") {
        raw_child(&args[i + 1..]);
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("post_cost needs valgrind (callgrind) on the PATH");
        return;
    }
    let posts: u64 = env_or("POST_COST_POSTS", 2000u64).max(1);
    let warmup: u64 = env_or("POST_COST_WARMUP", 200u64);
    println!("# post_cost: instructions per durable post (callgrind)");
    println!("machine: {}", common::machine());
    println!("load average at start: {}", common::loadavg());
    let dir = tempfile::tempdir().expect("a temp dir");

    let server = server_instructions(dir.path(), posts, warmup);
    println!(
        "chat-server POST message, SQLite FULL: {:.0} instructions per post ({} posts, {} Ir)",
        server.total as f64 / posts as f64,
        posts,
        server.total
    );
    let raw = raw_instructions(dir.path(), "raw", posts, 0);
    println!(
        "raw rusqlite, same rows, one transaction each: {:.0} instructions per post ({} posts, {} Ir)",
        raw as f64 / posts as f64,
        posts,
        raw
    );
    let ratio = server.total as f64 / raw.max(1) as f64;
    println!(
        "server/raw: {ratio:.2}x instructions per post (target <= 2x: {})",
        if ratio <= 2.0 { "met" } else { "NOT met" }
    );
    // The baseline above never checkpoints (`wal_autocheckpoint = 0`, the writer's
    // setting), so the server's checkpoint thread has nothing to be compared with there.
    // A raw WAL application with SQLite's defaults copies its log into the database on
    // the commit that takes it past 1,000 pages: this second baseline pays that, and its
    // ratio is printed beside (never instead of) the first.
    let raw_checkpointed = raw_instructions(dir.path(), "raw-autocheckpoint", posts, 1000);
    println!(
        "raw rusqlite with SQLite's default automatic checkpoint (wal_autocheckpoint = 1000), \
         same rows, one transaction each: {:.0} instructions per post ({} posts, {} Ir)",
        raw_checkpointed as f64 / posts as f64,
        posts,
        raw_checkpointed
    );
    println!(
        "server/raw with automatic checkpoint: {:.2}x instructions per post \
         (for comparison; the target above is against the first baseline)",
        server.total as f64 / raw_checkpointed.max(1) as f64
    );
    clock_driven(&server, raw, posts);
    if std::env::var("POST_COST_ANNOTATE").is_ok_and(|v| v == "1") {
        annotate(&server.dump);
    }
    // The dump outlives the temporary directory for `callgrind_annotate --tree=caller`
    // and the like.
    if let Ok(keep) = std::env::var("POST_COST_KEEP") {
        match std::fs::copy(&server.dump, &keep) {
            Ok(_) => println!("server dump kept in {keep}"),
            Err(e) => println!("keeping the dump in {keep}: {e}"),
        }
    }
    println!("load average at end: {}", common::loadavg());
}

/// The server's measured dump.
struct Measured {
    total: u64,
    dump: PathBuf,
}

/// Runs the binary under callgrind and counts the instructions of `posts` posts.
fn server_instructions(dir: &Path, posts: u64, warmup: u64) -> Measured {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").port()
    };
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let out = dir.join("server.%p");
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--db")
        .arg(dir.join("server.db"))
        .args(["--listen", &addr.to_string()])
        .args(["--bot", "none", "--bot-enabled", "false"])
        .args(["--rate-per-ip", "0", "--rate-per-token", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("valgrind starts");
    let pid = child.id();
    let rt = common::runtime(1, "client");
    let total = rt.block_on(async {
        // Under callgrind the server takes many seconds to start: wait until it answers.
        let started = Instant::now();
        let mut http = loop {
            if let Ok(mut http) = Http::connect(addr).await
                && let Ok((StatusCode::OK, _)) = http.send(Method::GET, "/readyz", None, None).await
            {
                break http;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "the server under callgrind did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        println!(
            "server ready under callgrind after {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let mut targets = Vec::new();
        for i in 0..20 {
            targets.push(
                http.open_conversation(&format!("visitor{i}@cost.example"))
                    .await,
            );
        }
        let mut n = 0u64;
        let post = async |http: &mut Http, n: u64| {
            let (id, token) = &targets[n as usize % targets.len()];
            let body = serde_json::json!({
                "body": format!("{TEXT} #{n}"),
                "client_message_id": format!("cost-{n}"),
            });
            let (status, answer) = http
                .send(
                    Method::POST,
                    &format!("/v1/conversations/{id}/messages"),
                    Some(token),
                    Some(body.to_string().into()),
                )
                .await
                .expect("a post");
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{}",
                String::from_utf8_lossy(&answer)
            );
        };
        for _ in 0..warmup {
            post(&mut http, n).await;
            n += 1;
        }
        control(pid, "-z", dir);
        for _ in 0..posts {
            post(&mut http, n).await;
            n += 1;
        }
        control(pid, "-d", dir)
    });
    let _ = child.kill();
    let _ = child.wait();
    total
}

/// `callgrind_control <flag> <pid>`; after a dump (`-d`), the dump's total (callgrind
/// writes the dump into `dir`).
fn control(pid: u32, flag: &str, dir: &Path) -> Measured {
    let status = Command::new("callgrind_control")
        .arg(flag)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .status()
        .expect("callgrind_control runs");
    assert!(status.success(), "callgrind_control {flag} failed");
    if flag != "-d" {
        return Measured {
            total: 0,
            dump: PathBuf::new(),
        };
    }
    // `--callgrind-out-file=server.%p`: dumps on request are `server.<pid>.<n>`.
    let pattern = format!("server.{pid}.1");
    let found = std::fs::read_dir(dir)
        .expect("the dump directory")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy() == pattern)
        })
        .expect("callgrind wrote the dump");
    Measured {
        total: totals(&found),
        dump: found,
    }
}

/// The `totals:` (or `summary:`) line of a callgrind output file.
fn totals(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("the callgrind output");
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .expect("a totals line")
}

/// The threads that follow the clock, not the posts: the checkpoint thread (a pass 50 ms
/// after a commit) and the search indexer (a pass per second or per 256 operations). What
/// they cost per post depends on how many posts each pass finds, so on the posting rate,
/// which under callgrind follows the machine's load; the request path (HTTP, engine,
/// writer) does not. Both are printed, so a change to the request path can be compared
/// across runs and the total stays in view.
fn clock_driven(server: &Measured, raw: u64, posts: u64) {
    let Ok(out) = Command::new("callgrind_annotate")
        .arg("--inclusive=yes")
        .arg(&server.dump)
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let inclusive = |function: &str| -> u64 {
        text.lines()
            .find(|l| l.contains(&format!(":{function} ")))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.replace(',', "").parse().ok())
            .unwrap_or(0)
    };
    let checkpoint = inclusive("chat_sqlite::checkpoint::run");
    let indexer = inclusive("chat_sqlite::search::indexer::run");
    let per_post = |ir: u64| ir as f64 / posts as f64;
    println!(
        "clock-driven threads: checkpoint {:.0}, search indexer {:.0} instructions per post \
         ({:.1}% of the server's)",
        per_post(checkpoint),
        per_post(indexer),
        100.0 * (checkpoint + indexer) as f64 / server.total.max(1) as f64
    );
    let request_path = server.total.saturating_sub(checkpoint + indexer);
    println!(
        "request path (HTTP, engine, writer; without the clock-driven threads): {:.0} \
         instructions per post, {:.2}x raw",
        per_post(request_path),
        request_path as f64 / raw.max(1) as f64
    );
    // The indexer applies what was committed up to its last pass: the messages it applied
    // between the zeroing and the dump are not the posts measured (342 of 300 in a run
    // that met warm-up posts still waiting, 197-224 in runs whose last passes came after
    // the dump). Its cost per message applied, times the posts, puts every post's
    // indexing in the total once. FTS5's `xUpdate` (`fts5UpdateMethod`, reached only
    // through SQLite's virtual-table calls, so never inlined) runs once per message the
    // indexer adds; nothing else writes an FTS5 table while a visitor posts.
    let applied = calls_of(&server.dump, "fts5UpdateMethod");
    if applied > 0 {
        let per_message = indexer as f64 / applied as f64;
        let settled = request_path as f64 + checkpoint as f64 + per_message * posts as f64;
        println!(
            "search indexer per message applied: {per_message:.0} instructions ({applied} \
             messages applied while counting); server per post with each post indexed once: \
             {:.0} instructions, {:.2}x raw (target <= 2x: {})",
            settled / posts as f64,
            settled / raw.max(1) as f64,
            if settled <= 2.0 * raw as f64 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}

/// How many times `function` was called in the dump (the sum over its callers, from
/// `callgrind_annotate --tree=caller`); 0 if it does not appear.
fn calls_of(dump: &Path, function: &str) -> u64 {
    let Ok(out) = Command::new("callgrind_annotate")
        .args(["--tree=caller", "--inclusive=yes"])
        .arg(dump)
        .output()
    else {
        return 0;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut callers = 0;
    for line in text.lines() {
        let line = line.trim_end();
        if line.contains(&format!("*  ???:{function} ")) {
            return callers;
        }
        if line.is_empty() {
            callers = 0;
        } else if line.contains("  < ") {
            // `  4,939,203 ( 4.99%)  < ???:sqlite3VdbeExec (342x) [...]`
            callers += line
                .rsplit_once(" (")
                .and_then(|(_, rest)| rest.split_once("x)"))
                .and_then(|(n, _)| n.replace(',', "").parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    0
}

fn annotate(dump: &Path) {
    match Command::new("callgrind_annotate")
        .arg("--inclusive=yes")
        .arg(dump)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            println!("where the server's instructions go (callgrind_annotate --inclusive=yes):");
            for line in text
                .lines()
                .skip_while(|l| !l.contains("file:function"))
                .take(60)
            {
                println!("  {}", line.chars().take(200).collect::<String>());
            }
        }
        Err(e) => println!("callgrind_annotate: {e}"),
    }
}

/// Builds the baseline's database (the store's schema, a tenant, a contact, 20
/// conversations) natively, then runs this binary under callgrind counting only
/// [`raw_inserts`].
fn raw_instructions(dir: &Path, name: &str, posts: u64, autocheckpoint: u32) -> u64 {
    let db = dir.join(format!("{name}.db"));
    let rt = common::runtime(1, "raw");
    let (tenant, ids) = rt.block_on(seed(&db));
    drop(rt);
    let out = dir.join(format!("{name}.out"));
    let mut args = vec![
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
        "--collect-atstart=no".to_owned(),
        "--toggle-collect=*raw_inserts*".to_owned(),
    ];
    args.push(
        std::env::current_exe()
            .expect("this bench")
            .display()
            .to_string(),
    );
    args.extend([
        "--bench".to_owned(),
        "--raw-child".to_owned(),
        db.display().to_string(),
        posts.to_string(),
        autocheckpoint.to_string(),
        tenant.0.to_string(),
    ]);
    args.extend(ids.iter().map(|id| id.to_string()));
    let status = Command::new("valgrind")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("valgrind runs");
    assert!(status.success(), "the raw baseline under callgrind failed");
    totals(&out)
}

/// A store's schema with a tenant, a contact and 20 conversations; the store is closed
/// before the baseline opens the file.
async fn seed(db: &Path) -> (TenantId, Vec<Uuid>) {
    let store = Arc::new(chat_sqlite::SqliteStore::open(db).expect("open"));
    let now = OffsetDateTime::now_utc();
    let tenant = TenantId(Uuid::now_v7());
    store
        .insert_tenant(&Tenant {
            id: tenant,
            name: "Cost".into(),
            settings: TenantSettings::default(),
            settings_version: 0,
            created_at: now,
        })
        .await
        .expect("a tenant");
    let contact = Contact {
        id: ContactId(Uuid::now_v7()),
        tenant_id: tenant,
        name: Some("Visitor".into()),
        email: Some("visitor@cost.example".into()),
        email_verified: false,
        phone: None,
        address: None,
        external_id: None,
        metadata: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    };
    store.insert_contact(&contact).await.expect("a contact");
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = Uuid::now_v7();
        let conversation = Conversation {
            title: Some("Where is my order?".into()),
            ..Conversation::new(ConversationId(id), tenant, contact.id, Mode::Queued, now)
        };
        store
            .create_conversation(&conversation, Vec::new())
            .await
            .expect("a conversation");
        ids.push(id);
    }
    (tenant, ids)
}

/// `--raw-child <db> <posts> <wal_autocheckpoint> <tenant> <conversation ids...>`, run
/// under callgrind.
fn raw_child(args: &[String]) {
    let db = Path::new(&args[0]);
    let posts: u64 = args[1].parse().expect("posts");
    let autocheckpoint: u32 = args[2].parse().expect("wal_autocheckpoint");
    let tenant = TenantId(args[3].parse().expect("tenant"));
    let ids: Vec<Uuid> = args[4..]
        .iter()
        .map(|s| s.parse().expect("an id"))
        .collect();
    let conn = Connection::open(db).expect("open");
    // The pragmas the store's writer sets (src/connection.rs of chat-sqlite), but for
    // the automatic checkpoint of the second baseline.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8192; \
         PRAGMA wal_autocheckpoint = {autocheckpoint};",
    ))
    .expect("pragmas");
    let now = OffsetDateTime::now_utc();
    let message = NewMessage {
        id: MessageId(Uuid::now_v7()),
        tenant_id: tenant,
        conversation_id: ConversationId(ids[0]),
        sender: Sender::Customer,
        kind: MessageKind::Text,
        body: TEXT.into(),
        attachments: Vec::new(),
        reply_to: None,
        client_message_id: Some("cost-0".into()),
        entities: Vec::new(),
        metadata: BTreeMap::new(),
        created_at: now,
    }
    .into_message(1);
    let event = Event {
        seq: 1,
        tenant_id: tenant,
        conversation_id: Some(ConversationId(ids[0])),
        staff_only: false,
        at: now,
        payload: EventPayload::MessageCreated {
            message: Box::new(message),
        },
    };
    let event_json = serde_json::to_string(&event).expect("JSON");
    raw_inserts(&conn, tenant, &ids, posts, &event_json);
}

/// What the store writes per posted message ([`raw_post::insert`]), one transaction per
/// message with `synchronous = FULL`, nothing else: the only function callgrind counts in
/// the child.
#[inline(never)]
fn raw_inserts(conn: &Connection, tenant: TenantId, ids: &[Uuid], posts: u64, event_json: &str) {
    let mut last_seq = vec![0i64; ids.len()];
    let last_event: i64 = conn
        .query_row(
            "SELECT coalesce(max(seq), 0) FROM events WHERE tenant_id = ?1",
            [tenant.0],
            |r| r.get(0),
        )
        .expect("the last event");
    for n in 0..posts {
        let c = n as usize % ids.len();
        last_seq[c] += 1;
        let event_seq = last_event + n as i64 + 1;
        let at = OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        let tx = conn.unchecked_transaction().expect("BEGIN");
        let body = format!("{TEXT} #{n}");
        let client_message_id = format!("cost-{n}");
        raw_post::insert(
            &tx,
            &RawPost {
                tenant: tenant.0,
                conversation: ids[c],
                seq: last_seq[c],
                event_seq,
                body: &body,
                client_message_id: Some(&client_message_id),
                at,
                event_json,
            },
        )
        .expect("the post's rows");
        tx.commit().expect("COMMIT");
    }
}
