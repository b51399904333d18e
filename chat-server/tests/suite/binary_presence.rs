//! Presence across `chat-server` processes on one PostgreSQL schema: an agent connected
//! to a server that is killed (SIGKILL: nothing runs on its way out) goes offline on the
//! other once that server's presence lease has run out, and stays online as long as its
//! server renews the lease. Needs `CHAT_TEST_POSTGRES_URL`; without it the test says it
//! was skipped (and fails under `CHAT_REQUIRE_SERVICES=1`).

use std::time::Duration;

use crate::services;

use chat_server::testing::Process;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use services::{ADMIN, ADMIN_PASSWORD, Nodes, call, service_url};
use tokio_postgres::NoTls;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON frame, waiting at most 30 s.
async fn frame(ws: &mut Ws) -> Value {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("no frame within 30 s")
            .expect("the socket closed")
            .expect("a frame");
        if let Message::Text(text) = next {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// A staff socket on `server`, subscribed to the inbox.
async fn inbox_socket(server: &Process, token: &str) -> Ws {
    let url = server.ws_url(&format!("/v1/ws?access_token={token}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(frame(&mut ws).await["type"], "hello");
    let subscribe = json!({ "type": "subscribe", "id": "inbox" });
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    loop {
        let f = frame(&mut ws).await;
        match f["type"].as_str() {
            Some("subscribed") => return ws,
            Some("error") => panic!("{f}"),
            _ => {}
        }
    }
}

/// Reads `ws` until a presence frame says `agent` is `availability`; the frames before.
async fn presence(ws: &mut Ws, agent: &str, availability: &str) -> Vec<Value> {
    let mut before = Vec::new();
    loop {
        let f = frame(ws).await;
        if f["type"] == "presence" && f["agent_id"] == agent && f["availability"] == availability {
            return before;
        }
        before.push(f);
    }
}

async fn log_in(server: &Process, email: &str, password: &str) -> (String, String) {
    let (status, login) = call(
        server,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": email, "password": password })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let id = login["agent"]["id"].as_str().unwrap_or_default().to_owned();
    (token, id)
}

async fn availability(server: &Process, token: &str, agent: &str) -> String {
    let (status, staff) = call(server, "GET", "/v1/agents", Some(token), None).await;
    assert_eq!(status, 200, "{staff}");
    let items = staff["items"].as_array().or(staff.as_array()).cloned();
    let items = items.unwrap_or_else(|| panic!("{staff}"));
    let found = items.iter().find(|a| a["id"] == agent);
    found.unwrap_or_else(|| panic!("{staff}"))["availability"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_of_a_killed_server_goes_offline_on_the_other_after_the_lease() {
    let Some(url) = service_url("CHAT_TEST_POSTGRES_URL") else {
        return;
    };
    // A short lease, renewed every second or so, and a timer pass every second.
    let nodes = Nodes::create(&url).await;
    let fast = ["--presence-lease-secs", "3", "--timer-interval-secs", "1"];
    let a = nodes.start("a", &fast);
    let b = nodes.start("b", &fast);

    // The admin watches the desk from B; Ann, a new agent, connects to A only.
    let (admin, _) = log_in(&b, ADMIN, ADMIN_PASSWORD).await;
    let (status, created) = call(
        &b,
        "POST",
        "/v1/agents",
        Some(&admin),
        Some(
            json!({ "name": "Ann", "email": "ann@acme.example", "role": "agent",
            "password": "ann's long password" }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let ann = created["id"].as_str().unwrap().to_owned();
    assert_eq!(availability(&b, &admin, &ann).await, "offline");
    let mut desk = inbox_socket(&b, &admin).await;
    let (ann_token, _) = log_in(&a, "ann@acme.example", "ann's long password").await;
    let ann_socket = inbox_socket(&a, &ann_token).await;
    presence(&mut desk, &ann, "online").await;
    assert_eq!(availability(&b, &admin, &ann).await, "online");

    // A renews its lease: once the lease A first took has long run out (its row has
    // moved on by more than a lease), Ann is still online.
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let leases = format!(
        "SELECT min(expires_ns), max(expires_ns) FROM {}.presence_leases \
         WHERE agent_id = $1",
        nodes.schema.name
    );
    let ann_uuid = uuid::Uuid::parse_str(&ann).unwrap();
    let read = || async {
        let row = client.query_one(&leases, &[&ann_uuid]).await.unwrap();
        (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1))
    };
    let (Some(first), _) = read().await else {
        panic!("A holds no lease on Ann");
    };
    let lease_ns = 3_000_000_000;
    let mut renewed = false;
    for _ in 0..300 {
        if let (Some(now), _) = read().await
            && now > first + 2 * lease_ns
        {
            renewed = true;
            break;
        }
        // A condition polled, not a time waited: the loop ends as soon as it holds.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(renewed, "A's lease on Ann was not renewed");
    assert_eq!(availability(&b, &admin, &ann).await, "online");

    // A is killed: no socket close, no release. B takes Ann offline after the lease.
    let killed_at = std::time::Instant::now();
    a.kill();
    drop(ann_socket);
    let before = presence(&mut desk, &ann, "offline").await;
    assert!(
        !before
            .iter()
            .any(|f| f["type"] == "presence" && f["agent_id"] == ann.as_str()),
        "one change only: {before:?}"
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(30),
        "offline after the 3 s lease and a timer pass, not later"
    );
    assert_eq!(availability(&b, &admin, &ann).await, "offline");
    // The dead server's leases are gone from the store.
    let (none, _) = read().await;
    assert_eq!(none, None);
    b.assert_no_secret_logged(&[ADMIN_PASSWORD, "ann's long password", &admin]);
    assert!(b.terminate().success());
}
