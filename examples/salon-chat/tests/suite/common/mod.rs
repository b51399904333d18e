//! The template on a real listener over a database file in a temp dir, seeded as
//! `--demo` seeds it, and a WebSocket client.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chat_core::ManualClock;
use chat_server::testing::TestServer;
use chat_starter::Starter;
use example_salon_chat::{FIRST_SALON, SalonChat, salon_settings};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Salon {
    pub server: TestServer,
    /// What `--demo` writes to `demo-tokens.json`.
    pub logins: Value,
    /// The engine's clock (starts now; tests move it).
    pub clock: Arc<ManualClock>,
}

impl Salon {
    pub fn token(&self, who: &str) -> String {
        self.logins[who]["token"].as_str().unwrap().to_owned()
    }
}

pub async fn start(db: &Path) -> Salon {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let engine_clock = clock.clone();
    let mut starter = Starter::open(db, FIRST_SALON, salon_settings(), |b| b.clock(engine_clock))
        .await
        .unwrap();
    // The tests call from one IP faster than a browser would.
    starter.config.limits.per_ip_rps = 0.0;
    starter.config.limits.per_token_rps = 0.0;
    let salons = SalonChat::load(&starter).await.unwrap();
    let logins = example_salon_chat::seed_demo(&starter, &salons)
        .await
        .unwrap();
    let server = TestServer::start(starter.engine.clone(), starter.config, Some(salons)).await;
    Salon {
        server,
        logins,
        clock,
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects `/api/v1/chat/ws/chat/{kind}?token=` and returns the socket with its
/// `connected` frame.
pub async fn connect(server: &TestServer, kind: &str, token: &str) -> (Ws, Value) {
    let url = server.ws_url(&format!("/api/v1/chat/ws/chat/{kind}?token={token}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let hello = next(&mut ws).await;
    assert_eq!(hello["type"], "connected", "{hello}");
    (ws, hello)
}

pub async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Frame::text(frame.to_string())).await.unwrap();
}

/// The next JSON frame (fails after 5 s).
pub async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .unwrap();
        if let Frame::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// The next frame of `kind`, skipping others.
pub async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Asserts nothing arrives within 300 ms but pong (sends a ping to be sure the socket
/// has handled everything before).
pub async fn quiet(ws: &mut Ws) {
    send(ws, json!({ "type": "ping" })).await;
    let frame = next(ws).await;
    assert_eq!(frame["type"], "pong", "expected nothing, got {frame}");
}

/// Joins a chat and waits for the confirmation.
pub async fn join(ws: &mut Ws, chat: u64) {
    send(ws, json!({ "type": "join_chat", "chat_id": chat })).await;
    let joined = next_of(ws, "user_joined").await;
    assert_eq!(joined["chat_id"], chat);
}

/// `POST /api/v1/chat/upload` as `token`: the form `fields` and one `file` (name, type,
/// bytes).
pub async fn upload(
    server: &TestServer,
    token: &str,
    fields: &[(&str, &str)],
    file: (&str, &str, &[u8]),
) -> chat_server::testing::Reply {
    let (name, content_type, bytes) = file;
    let (form_type, body) =
        chat_server::testing::multipart(fields, &[("file", name, content_type, bytes)]);
    server
        .send_as(
            hyper::Method::POST,
            "/api/v1/chat/upload",
            Some(token),
            &[("content-type", form_type.as_str())],
            body,
        )
        .await
}
