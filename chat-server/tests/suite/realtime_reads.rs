//! What opening a WebSocket costs the store: a burst of visitors' sockets opening and
//! subscribing must not read the database once per socket. With reads in place (the SQLite
//! store's default) every read hands its tokio worker to another thread, and a burst of
//! them left a hundred threads behind (more server memory per idle socket than the
//! sockets' own: see the README's issue 21 figures).

use std::sync::Arc;
use std::time::Duration;

use chat_core::{Engine, TenantSettings};
use chat_server::Config;
use chat_server::testing::TestServer;
use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// A visitor's socket, open and subscribed to its conversation.
async fn subscribed(server: &TestServer, conversation: &str, token: &str) -> Ws {
    let mut req = server.ws_url("/v1/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    let frame = json!({ "type": "subscribe", "id": "s", "conversation_id": conversation });
    ws.send(Message::Text(Utf8Bytes::from(frame.to_string())))
        .await
        .unwrap();
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    ws
}

fn config(tenant: chat_core::TenantId) -> Config {
    let mut config = Config::new(SECRET);
    config.default_tenant = Some(tenant);
    // Hundreds of sockets from one address.
    config.limits.per_ip_rps = 0.0;
    config.limits.per_token_rps = 0.0;
    config.limits.max_connections_per_ip = 0;
    config.limits.max_websockets = 0;
    config.limits.max_websockets_per_ip = 0;
    config.limits.max_websockets_per_token = 0;
    config
}

/// A server restarted on its database, and every widget reconnecting at once: many
/// sockets per conversation (several tabs, or a busy page's widgets), none of whose
/// conversations the new store has written yet (so its cache of what its writer last
/// committed cannot answer). The server's own background passes (the follower's check of
/// a quiet log, the outbox) read a few times a second; one read per socket would be
/// `SOCKETS` reads at least.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_opening_and_subscribing_do_not_read_the_store_each() {
    const CONVERSATIONS: usize = 4;
    const SOCKETS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chat.db");

    let engine =
        Engine::builder_with_backend(Arc::new(chat_sqlite::SqliteStore::open(&file).unwrap()))
            .build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let server = TestServer::start(engine, config(tenant), None).await;
    let mut visitors = Vec::new();
    for i in 0..CONVERSATIONS {
        let reply = server
            .post(
                "/v1/conversations",
                None,
                json!({ "contact": { "name": "Visitor", "email": format!("v{i}@acme.example") } }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        visitors.push((
            reply.body["conversation"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            reply.body["visitor_token"].as_str().unwrap().to_owned(),
        ));
    }
    server.stop().await;

    let store = Arc::new(chat_sqlite::SqliteStore::open(&file).unwrap());
    let engine = Engine::builder_with_backend(store.clone()).build();
    let server = TestServer::start(engine, config(tenant), None).await;
    // One socket per conversation first: what is made once (the tenant's follower, each
    // token's look-up) is not what this test is about.
    let mut open = Vec::new();
    for (conversation, token) in &visitors {
        open.push(subscribed(&server, conversation, token).await);
    }

    let before = store.read_counts();
    let server = Arc::new(server);
    let visitors = Arc::new(visitors);
    let mut opening = Vec::new();
    for i in 0..SOCKETS {
        let (server, visitors) = (server.clone(), visitors.clone());
        opening.push(tokio::spawn(async move {
            let (conversation, token) = &visitors[i % CONVERSATIONS];
            subscribed(&server, conversation, token).await
        }));
    }
    for socket in opening {
        open.push(socket.await.unwrap());
    }
    let reads = store.read_counts().since(before);
    assert!(
        reads.total() < (SOCKETS / 4) as u64,
        "{SOCKETS} sockets opening and subscribing read the store {} times ({} in place, {} on the blocking pool)",
        reads.total(),
        reads.in_place,
        reads.pooled
    );
    drop(open);
    Arc::into_inner(server)
        .expect("no socket task holds the server")
        .stop()
        .await;
}
