//! Long history: a conversation of 100,000 messages must open (its latest 50) and page
//! back as fast as a fresh one (issue 21: within 1.2x, measured side by side). The real
//! server on SQLite (`synchronous = FULL`) holds both; the load generator's connections
//! take turns between the two conversations and between opening and paging, so both
//! see the same machine, and prints the mean and p99 latency of each with the ratios.
//!
//! `cargo bench -p chat-server --bench history`
//! Settings (environment): `HISTORY_MESSAGES` (100000: the long conversation),
//! `HISTORY_FRESH_MESSAGES` (100: the fresh one, enough for one page back),
//! `HISTORY_CONNECTIONS` (8), `HISTORY_SECS` (10), `HISTORY_WARMUP_SECS` (1).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{Actor, ContactId, ConversationId, PostMessage, TenantId};
use common::{Backend, Http, env_or, ms, quantile};
use hyper::{Method, StatusCode};
use serde_json::Value;

/// What is read: the latest page, or a page before a random point of the history.
#[derive(Clone, Copy)]
enum Read {
    Open,
    Page,
}

/// One conversation under test.
struct Subject {
    id: ConversationId,
    token: String,
    /// Its last message's `seq`.
    last_seq: u64,
}

/// Opens a conversation as a visitor: its id, contact and token.
async fn open(http: &mut Http, email: &str) -> (ConversationId, ContactId, String) {
    let body = serde_json::json!({ "contact": { "name": "History visitor", "email": email } });
    let (status, bytes) = http
        .send(
            Method::POST,
            "/v1/conversations",
            None,
            Some(body.to_string().into()),
        )
        .await
        .expect("POST /v1/conversations");
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    let id = v["conversation"]["id"].as_str().expect("an id");
    let contact = v["conversation"]["contact_id"].as_str().expect("a contact");
    (
        ConversationId(id.parse().expect("a UUID")),
        ContactId(contact.parse().expect("a UUID")),
        v["visitor_token"].as_str().expect("a token").to_owned(),
    )
}

/// Posts `n` customer messages to the conversation through the engine, `parallel` at a
/// time (the writer commits them in groups); returns the last `seq`.
async fn fill(
    engine: &chat_core::Engine,
    tenant: TenantId,
    contact: ContactId,
    id: ConversationId,
    n: usize,
    parallel: usize,
) -> u64 {
    let actor = Actor::Customer {
        tenant,
        contact,
        conversation: Some(id),
    };
    let mut tasks = Vec::new();
    for p in 0..parallel {
        let engine = engine.clone();
        let actor = actor.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for i in (p..n).step_by(parallel) {
                let posted = engine
                    .post_message(
                        &actor,
                        id,
                        PostMessage::text(format!(
                            "Message {i}: my parcel is late again, could you check the order?"
                        )),
                    )
                    .await
                    .expect("post");
                last = last.max(posted.message.seq);
            }
            last
        }));
    }
    let mut last = 0;
    for t in tasks {
        last = last.max(t.await.expect("a filling task"));
    }
    last
}

/// A small xorshift: the pages read, the same sequence in every run.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Latencies in microseconds, by (conversation 0 long / 1 fresh, read 0 open / 1 page).
type Samples = [[Vec<u32>; 2]; 2];

async fn drive(
    addr: std::net::SocketAddr,
    subjects: Arc<[Subject; 2]>,
    connections: usize,
    warmup: Duration,
    secs: Duration,
) -> Samples {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + secs;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let subjects = subjects.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples: Samples = Default::default();
            let mut http = Http::connect(addr).await.expect("connect");
            let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
            let mut n = 0usize;
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                // Every connection goes round long/fresh x open/page, each from another
                // point of the round.
                let turn = (n + c) % 4;
                n += 1;
                let (which, read) = (
                    turn / 2,
                    if turn.is_multiple_of(2) {
                        Read::Open
                    } else {
                        Read::Page
                    },
                );
                let s = &subjects[which];
                let path = match read {
                    Read::Open => format!("/v1/conversations/{}/messages?limit=50", s.id),
                    Read::Page => {
                        let before = 51 + next(&mut rng) % s.last_seq.saturating_sub(50).max(1);
                        format!(
                            "/v1/conversations/{}/messages?before={before}&limit=50",
                            s.id
                        )
                    }
                };
                let (status, body) = http
                    .send(Method::GET, &path, Some(&s.token), None)
                    .await
                    .expect("a read");
                assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
                if began >= measure_from {
                    let micros = began.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    samples[which][read as usize].push(micros);
                }
            }
            samples
        }));
    }
    let mut all: Samples = Default::default();
    for t in tasks {
        let samples = t.await.expect("a reading task");
        for (i, by_read) in samples.into_iter().enumerate() {
            for (j, v) in by_read.into_iter().enumerate() {
                all[i][j].extend(v);
            }
        }
    }
    for by_read in &mut all {
        for v in by_read {
            v.sort_unstable();
        }
    }
    all
}

fn mean(v: &[u32]) -> f64 {
    v.iter().map(|&x| f64::from(x)).sum::<f64>() / (v.len().max(1) as f64)
}

fn main() {
    if !common::invoked_by_cargo_bench() {
        println!(
            "history is a load generator: run it with `cargo bench -p chat-server --bench history`"
        );
        return;
    }
    let messages: usize = env_or("HISTORY_MESSAGES", 100_000usize).max(100);
    let fresh_messages: usize = env_or("HISTORY_FRESH_MESSAGES", 100usize).max(51);
    let connections: usize = env_or("HISTORY_CONNECTIONS", 8usize).max(1);
    let secs = Duration::from_secs_f64(env_or("HISTORY_SECS", 10.0f64).clamp(0.5, 600.0));
    let warmup = Duration::from_secs_f64(env_or("HISTORY_WARMUP_SECS", 1.0f64).clamp(0.0, 60.0));
    println!("# history: GET /v1/conversations/{{id}}/messages, long vs fresh conversation");
    println!("machine: {}", common::machine());
    println!("chat-server backend: {}", Backend::Sqlite.name());
    println!("load average at start: {}", common::loadavg());

    let server_rt = common::server_runtime();
    let client_rt = common::runtime(2, "load");
    let chat = server_rt.block_on(common::ChatServer::start_on(0, Backend::Sqlite));
    let addr = chat.addr;
    let (long, fresh) = client_rt.block_on(async {
        let mut http = Http::connect(addr).await.expect("connect");
        let long = open(&mut http, "long@history.example").await;
        let fresh = open(&mut http, "fresh@history.example").await;
        (long, fresh)
    });
    let filled = Instant::now();
    let engine = chat.engine.clone();
    let tenant = chat.tenant;
    let (long_seq, fresh_seq) = server_rt.block_on(async {
        let long_seq = fill(&engine, tenant, long.1, long.0, messages, 64).await;
        let fresh_seq = fill(&engine, tenant, fresh.1, fresh.0, fresh_messages, 8).await;
        (long_seq, fresh_seq)
    });
    if let Some(store) = &chat.sqlite {
        server_rt
            .block_on(store.wait_for_search_index())
            .expect("the search index catches up");
    }
    println!(
        "long conversation: {messages} messages (last seq {long_seq}); fresh: {fresh_messages} \
         (last seq {fresh_seq}); filled in {:.1}s; {connections} keep-alive connections, {}s \
         measured after {}s warm-up, 50 messages per read",
        filled.elapsed().as_secs_f64(),
        secs.as_secs_f64(),
        warmup.as_secs_f64()
    );
    let subjects = Arc::new([
        Subject {
            id: long.0,
            token: long.2,
            last_seq: long_seq,
        },
        Subject {
            id: fresh.0,
            token: fresh.2,
            last_seq: fresh_seq,
        },
    ]);
    let samples = client_rt.block_on(drive(addr, subjects, connections, warmup, secs));
    for (j, read) in ["open (latest 50)", "page (before a random seq)"]
        .iter()
        .enumerate()
    {
        let (long, fresh) = (&samples[0][j], &samples[1][j]);
        for (name, v) in [("long", long), ("fresh", fresh)] {
            println!(
                "{read:<27} {name:<5}: mean {:>9}  p50 {:>9}  p99 {:>9}  ({} reads)",
                ms(mean(v) as u32),
                ms(quantile(v, 0.5)),
                ms(quantile(v, 0.99)),
                v.len()
            );
        }
        let ratio = mean(long) / mean(fresh).max(f64::MIN_POSITIVE);
        let p99 = f64::from(quantile(long, 0.99)) / f64::from(quantile(fresh, 0.99).max(1));
        println!(
            "{read}: long/fresh mean {ratio:.2}x (target <= 1.2x: {}), p99 {p99:.2}x",
            if ratio <= 1.2 { "met" } else { "NOT met" }
        );
    }
    println!("load average at end: {}", common::loadavg());
    server_rt.block_on(chat.stop());
    client_rt.shutdown_timeout(Duration::from_secs(2));
    server_rt.shutdown_timeout(Duration::from_secs(2));
}
