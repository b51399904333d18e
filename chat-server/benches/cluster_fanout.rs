//! Fan-out across servers: staff sockets subscribed to the inbox, spread over one or two
//! `chat-server` processes on one PostgreSQL schema, while visitors post over HTTP to the
//! first. Prints deliveries per second (sockets × messages ÷ time from the first post to
//! the last socket's last message) for: one server on the in-process bus, one server on
//! NATS, two servers on NATS (half the sockets on the server that did not take the posts).
//!
//! `CHAT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test
//!  CHAT_TEST_NATS_URL=nats://127.0.0.1:4222 cargo bench -p chat-server --bench cluster_fanout`
//! Settings (environment): `CLUSTER_SOCKETS` (200), `CLUSTER_MESSAGES` (400),
//! `CLUSTER_POSTERS` (8 concurrent posters).

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
        "{:<28} {:>12} {:>14} {:>16}",
        "setup", "posts/s", "deliveries/s", "last arrival ms"
    );
    let setups = [
        Setup {
            name: "1 node, in-process bus",
            nodes: 1,
            nats: false,
        },
        Setup {
            name: "1 node, NATS bus",
            nodes: 1,
            nats: true,
        },
        Setup {
            name: "2 nodes, NATS bus",
            nodes: 2,
            nats: true,
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
            "--store",
            &store,
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
    println!(
        "{:<28} {:>12.0} {:>14.0} {:>16.0}",
        setup.name,
        messages as f64 / posted.as_secs_f64(),
        (sockets * messages) as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0,
    );
    for node in nodes {
        node.terminate();
    }
    run_sql(pg, &format!("DROP SCHEMA {schema} CASCADE")).await;
}
