//! Fan-out across servers: staff sockets subscribed to the inbox, spread over one to three
//! `chat-server` processes, while visitors post over HTTP to the first. Prints, side by
//! side in one run, durable posts per second, deliveries per second (sockets × messages ÷
//! time from the first post to the last socket's last message) and the servers' CPU time
//! per delivery (user + system from `/proc/<pid>/stat`, summed over the nodes, from the
//! first post to the last arrival; and the busiest node's share, which is what decides how
//! far adding nodes goes on a machine of its own) for: one server on SQLite (the default
//! binary), one server on PostgreSQL with the in-process bus, one on PostgreSQL and NATS,
//! and two and three servers on PostgreSQL and NATS (sockets spread evenly; the posts all
//! go to the first).
//!
//! `CHAT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test
//!  CHAT_TEST_NATS_URL=nats://127.0.0.1:4222 cargo bench -p chat-server --bench cluster_fanout`
//! Settings (environment): `CLUSTER_SOCKETS` (200), `CLUSTER_MESSAGES` (400),
//! `CLUSTER_POSTERS` (8 concurrent posters).
//!
//! On one 2-core machine every node, PostgreSQL, NATS and the bench share the same cores,
//! so the totals cannot grow with nodes here; the CPU per delivery is the figure that
//! carries over to nodes on machines of their own.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use chat_server::testing::Process;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_postgres::NoTls;
use tokio_tungstenite::tungstenite::Message;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run_sql(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    let connection = tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = connection.await;
}

struct Setup {
    name: &'static str,
    nodes: usize,
    nats: bool,
    /// On the binary's SQLite default instead of PostgreSQL (one node only).
    sqlite: bool,
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; the
    // kernel counts them in USER_HZ, 100 a second on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

#[tokio::main]
async fn main() {
    let (Ok(pg), Ok(nats)) = (
        std::env::var("CHAT_TEST_POSTGRES_URL"),
        std::env::var("CHAT_TEST_NATS_URL"),
    ) else {
        eprintln!("set CHAT_TEST_POSTGRES_URL and CHAT_TEST_NATS_URL");
        std::process::exit(2);
    };
    let sockets = env_or("CLUSTER_SOCKETS", 200);
    let messages = env_or("CLUSTER_MESSAGES", 400);
    let posters = env_or("CLUSTER_POSTERS", 8).max(1);
    println!("{sockets} inbox sockets, {messages} messages from {posters} posters on node 1");
    println!(
        "{:<30} {:>9} {:>13} {:>13} {:>16} {:>18}",
        "setup", "posts/s", "deliveries/s", "last arr. ms", "CPU µs/delivery", "busiest node µs"
    );
    let setups = [
        Setup {
            name: "SQLite, 1 node",
            nodes: 1,
            nats: false,
            sqlite: true,
        },
        Setup {
            name: "PostgreSQL, 1 node",
            nodes: 1,
            nats: false,
            sqlite: false,
        },
        Setup {
            name: "PostgreSQL + NATS, 1 node",
            nodes: 1,
            nats: true,
            sqlite: false,
        },
        Setup {
            name: "PostgreSQL + NATS, 2 nodes",
            nodes: 2,
            nats: true,
            sqlite: false,
        },
        Setup {
            name: "PostgreSQL + NATS, 3 nodes",
            nodes: 3,
            nats: true,
            sqlite: false,
        },
    ];
    for setup in setups {
        run(&pg, &nats, &setup, sockets, messages, posters).await;
    }
}

async fn run(pg: &str, nats: &str, setup: &Setup, sockets: usize, messages: usize, posters: usize) {
    let schema = format!("chat_bench_{}", uuid::Uuid::new_v4().simple());
    run_sql(pg, &format!("CREATE SCHEMA {schema}")).await;
    let joiner = if pg.contains('?') { '&' } else { '?' };
    let store = format!("{pg}{joiner}options=-c%20search_path%3D{schema}");
    let prefix = format!("bench{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let mut nodes = Vec::new();
    for n in 0..setup.nodes {
        let mut args: Vec<OsString> = [
            "--bot",
            "none",
            "--admin-email",
            "root@acme.example",
            "--admin-password",
            "a long admin password",
            "--max-connections-per-ip",
            "0",
            "--max-websockets-per-ip",
            "0",
            "--max-websockets-per-token",
            "0",
            "--rate-per-ip",
            "0",
            "--rate-per-token",
            "0",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        if !setup.sqlite {
            args.extend(["--store".into(), store.clone().into()]);
        }
        args.extend(["--key-file".into(), key.clone().into_os_string()]);
        args.extend([
            "--db".into(),
            dir.path().join(format!("{n}.db")).into_os_string(),
        ]);
        if setup.nats {
            args.extend([
                "--bus".into(),
                nats.into(),
                "--bus-prefix".into(),
                prefix.clone().into(),
            ]);
        }
        nodes.push(Process::start(env!("CARGO_BIN_EXE_chat-server"), args));
    }
    let login = nodes[0]
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "root@acme.example", "password": "a long admin password" }),
        )
        .await;
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let opened = nodes[0]
        .post(
            "/v1/conversations",
            None,
            json!({ "first_message": "bench" }),
        )
        .await;
    let id = opened.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let visitor = opened.body["visitor_token"].as_str().unwrap().to_owned();

    // Sockets round-robin over the nodes, each subscribed to the inbox live.
    let mut readers = Vec::new();
    for s in 0..sockets {
        let url = nodes[s % nodes.len()].ws_url(&format!("/v1/ws?access_token={token}"));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let subscribe = json!({ "type": "subscribe", "id": "inbox" }).to_string();
        ws.send(Message::text(subscribe)).await.unwrap();
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => break,
                Some(Ok(_)) => {}
                other => panic!("no subscribed answer: {other:?}"),
            }
        }
        readers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < messages {
                match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.contains("\"message_created\"") => got += 1,
                    Ok(Some(Ok(_))) => {}
                    other => panic!("socket ended after {got} messages: {other:?}"),
                }
            }
            Instant::now()
        }));
    }

    let cpu_before: Vec<Duration> = nodes.iter().map(|n| cpu_time(n.id())).collect();
    let began = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let post_loop = || async {
        loop {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n >= messages {
                return;
            }
            let reply = nodes[0]
                .post(
                    &format!("/v1/conversations/{id}/messages"),
                    Some(&visitor),
                    json!({ "body": format!("message {n}"), "client_message_id": format!("m{n}") }),
                )
                .await;
            assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
        }
    };
    futures_util::future::join_all((0..posters).map(|_| post_loop())).await;
    let posted = began.elapsed();
    let mut last = began;
    for reader in readers {
        last = last.max(reader.await.unwrap());
    }
    let elapsed = last - began;
    let used: Vec<Duration> = nodes
        .iter()
        .zip(&cpu_before)
        .map(|(n, before)| cpu_time(n.id()).saturating_sub(*before))
        .collect();
    let deliveries = (sockets * messages) as f64;
    let per_delivery = |d: Duration| d.as_secs_f64() * 1e6 / deliveries;
    println!(
        "{:<30} {:>9.0} {:>13.0} {:>13.0} {:>16.1} {:>18.1}",
        setup.name,
        messages as f64 / posted.as_secs_f64(),
        deliveries / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0,
        per_delivery(used.iter().sum()),
        per_delivery(used.iter().copied().max().unwrap_or_default()),
    );
    for node in nodes {
        node.terminate();
    }
    run_sql(pg, &format!("DROP SCHEMA {schema} CASCADE")).await;
}
