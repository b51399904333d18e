//! Three `chat-server` processes over one PostgreSQL schema and one NATS (`--store
//! postgres://…`, `--bus nats://…`): a staff socket on one node sees, live, what a visitor
//! posts on another; when its node is killed it resumes on a third from its cursor and
//! gets everything posted meanwhile exactly once. Needs `CHAT_TEST_POSTGRES_URL` and
//! `CHAT_TEST_NATS_URL`; without them the test says it was skipped (and fails under
//! `CHAT_REQUIRE_SERVICES=1`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::services;

use chat_core::EventBus;
use chat_server::testing::Process;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use services::{ADMIN, ADMIN_PASSWORD, Nodes, call, service_url};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON frame, waiting at most 20 s.
async fn frame(ws: &mut Ws) -> Value {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("no frame within 20 s")
            .expect("the socket closed")
            .expect("a frame");
        if let Message::Text(text) = next {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// A staff socket on `server` subscribed to the inbox (from `since`, or live); the
/// events replayed before the `subscribed` answer come back with it.
async fn inbox_socket(server: &Process, token: &str, since: Option<u64>) -> (Ws, Vec<Value>) {
    let url = server.ws_url(&format!("/v1/ws?access_token={token}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(frame(&mut ws).await["type"], "hello");
    let subscribe = json!({ "type": "subscribe", "id": "inbox", "since": since });
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let mut replayed = Vec::new();
    loop {
        let f = frame(&mut ws).await;
        match f["type"].as_str() {
            Some("subscribed") => return (ws, replayed),
            Some("event") => replayed.push(f),
            Some("error") => panic!("{f}"),
            _ => {}
        }
    }
}

/// The body of a `message_created` event frame.
fn posted_body(frame: &Value) -> Option<&str> {
    (frame["type"] == "event" && frame["event"] == "message_created")
        .then(|| frame["data"]["message"]["body"].as_str())
        .flatten()
}

async fn post(server: &Process, conversation: &str, visitor: &str, body: &str) {
    let (status, posted) = call(
        server,
        "POST",
        &format!("/v1/conversations/{conversation}/messages"),
        Some(visitor),
        Some(json!({ "body": body, "client_message_id": body })),
    )
    .await;
    assert_eq!(status, 201, "{posted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_follows_posts_made_on_other_nodes_and_resumes_on_a_third_after_a_crash() {
    let Some(pg) = service_url("CHAT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(nats) = service_url("CHAT_TEST_NATS_URL") else {
        return;
    };
    // Servers sharing a database share the signing key, so a token of one works on all.
    let nodes = Nodes::create(&pg).await;
    let a = nodes.start("a", &nodes.bus(&nats));
    let b = nodes.start("b", &nodes.bus(&nats));
    let c = nodes.start("c", &nodes.bus(&nats));
    for node in [&a, &b, &c] {
        assert_eq!(node.logged("chat-server listening").await["bus"], "nats");
    }
    // The test listens on the same subjects, as a fourth node would.
    let observer =
        chat_nats::NatsBus::connect(&nats, chat_nats::Options::default().prefix(&nodes.prefix))
            .await
            .unwrap();
    let mut on_nats = observer.subscribe();

    let (status, login) = call(
        &b,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": ADMIN, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, opened) = call(
        &a,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "first_message": "hello from node A" })),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let id = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let visitor = opened["visitor_token"].as_str().unwrap().to_owned();

    // Staff on B follow the inbox live; the visitor writes on A.
    let (mut ws, _) = inbox_socket(&b, &token, None).await;
    post(&a, &id, &visitor, "live from A").await;
    let live = loop {
        let f = frame(&mut ws).await;
        if posted_body(&f) == Some("live from A") {
            break f;
        }
    };
    // It went over NATS: A published it there (the observer is neither A nor B).
    let seq = live["seq"].as_u64().unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), on_nats.recv())
            .await
            .expect("A published nothing on NATS")
            .unwrap();
        if event.seq == seq {
            break;
        }
    }
    let cursor = seq;

    // Typing on A shows on B: signals cross servers too, without the server's own id.
    let url = a.ws_url(&format!("/v1/ws?access_token={token}"));
    let (mut typist, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(frame(&mut typist).await["type"], "hello");
    let typing = json!({ "type": "typing", "conversation_id": id, "typing": true });
    typist
        .send(Message::text(typing.to_string()))
        .await
        .unwrap();
    let shown = loop {
        let f = frame(&mut ws).await;
        if f["type"] == "typing" {
            break f;
        }
    };
    assert_eq!(shown["conversation_id"], json!(id));
    assert_eq!(shown["typing"], json!(true));
    assert_eq!(shown["sender"]["type"], "agent");
    assert!(shown.get("origin").is_none(), "{shown}");
    drop(typist);

    // B crashes. Meanwhile the visitor writes on A and C at once.
    b.kill();
    let writers: Vec<_> = [("a", &a), ("c", &c)]
        .into_iter()
        .map(|(name, node)| {
            let bodies: Vec<String> = (0..10).map(|i| format!("{name}-{i}")).collect();
            (node, bodies)
        })
        .collect();
    let mut expected: Vec<String> = Vec::new();
    let posts = writers.iter().map(|(node, bodies)| {
        expected.extend(bodies.iter().cloned());
        let (id, visitor) = (&id, &visitor);
        async move {
            for body in bodies {
                post(node, id, visitor, body).await;
            }
        }
    });
    futures_util::future::join_all(posts.collect::<Vec<_>>()).await;
    expected.sort();

    // The socket comes back on C with its cursor: what it missed is replayed, then A's
    // next posts arrive live; each once, in log order.
    let (mut ws, replayed) = inbox_socket(&c, &token, Some(cursor)).await;
    post(&a, &id, &visitor, "after the resume").await;
    post(&a, &id, &visitor, "last").await;
    let mut frames = replayed;
    while !frames.iter().any(|f| posted_body(f) == Some("last")) {
        frames.push(frame(&mut ws).await);
    }
    let seqs: Vec<u64> = frames.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(seqs.iter().all(|s| *s > cursor), "{seqs:?}");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for body in frames.iter().filter_map(posted_body) {
        *seen.entry(body).or_default() += 1;
    }
    expected.extend(["after the resume".to_owned(), "last".to_owned()]);
    let want: BTreeMap<&str, usize> = expected.iter().map(|b| (b.as_str(), 1)).collect();
    assert_eq!(seen, want);

    a.assert_no_secret_logged(&[ADMIN_PASSWORD, &token, &visitor]);
    c.assert_no_secret_logged(&[ADMIN_PASSWORD, &token, &visitor]);
    assert!(a.terminate().success());
    assert!(c.terminate().success());
}

#[test]
fn a_bus_that_is_not_reachable_stops_the_start_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        // Nothing listens on port 1.
        .args(["--bus", "nats://root:hunter2@127.0.0.1:1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("connecting the NATS bus (--bus)"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// A TCP relay to NATS that can be cut: while down it closes every relayed connection and
/// refuses (accepts and closes) new ones, as a lost network would.
struct Relay {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(target: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let running = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !running.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let target = target.clone();
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How many lines `server` has logged with this message.
fn count_logged(server: &Process, message: &str) -> usize {
    server
        .log()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|v| v["fields"]["message"] == message)
        .count()
}

/// Waits (up to 30 s, looking every 10 ms) until `server` has logged `message` more than
/// `before` times.
async fn logged_again(server: &Process, message: &str, before: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count_logged(server, message) <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new `{message}`; the log:\n{}",
            server.log().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads frames until a `message_created` with `body`.
async fn until_posted(ws: &mut Ws, body: &str) {
    loop {
        if posted_body(&frame(ws).await) == Some(body) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_loses_nats_keeps_serving_and_reconnects_by_itself() {
    let Some(pg) = service_url("CHAT_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(nats) = service_url("CHAT_TEST_NATS_URL") else {
        return;
    };
    let target = nats
        .trim_start_matches("nats://")
        .rsplit('@')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let relay = Relay::start(target).await;
    let nodes = Nodes::create(&pg).await;
    // A reaches NATS through the relay; B directly.
    let relayed = relay.url();
    let a = nodes.start("a", &nodes.bus(&relayed));
    let b = nodes.start("b", &nodes.bus(&nats));
    let (_, login) = call(
        &a,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": ADMIN, "password": ADMIN_PASSWORD })),
    )
    .await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, opened) = call(
        &a,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "first_message": "hello" })),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let id = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let visitor = opened["visitor_token"].as_str().unwrap().to_owned();
    let (mut on_a, _) = inbox_socket(&a, &token, None).await;
    let (mut on_b, _) = inbox_socket(&b, &token, None).await;

    let connected = count_logged(&a, "NATS bus connected");
    relay.down();
    logged_again(&a, "NATS bus disconnected; reconnecting", 0).await;
    // A still takes posts, its own sockets get them at once, and B's sockets get them
    // from the database's log.
    for n in 0..20 {
        post(&a, &id, &visitor, &format!("while NATS is away {n}")).await;
    }
    until_posted(&mut on_a, "while NATS is away 19").await;
    until_posted(&mut on_b, "while NATS is away 19").await;

    relay.restore();
    logged_again(&a, "NATS bus connected", connected).await;
    post(&a, &id, &visitor, "back").await;
    until_posted(&mut on_b, "back").await;
    post(&b, &id, &visitor, "from B").await;
    until_posted(&mut on_a, "from B").await;
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}
