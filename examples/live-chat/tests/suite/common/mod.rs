//! The template on a real listener (127.0.0.1:0) over a temp SQLite file, the server
//! library's test client and real WebSocket clients.
#![allow(dead_code)]

use std::time::Duration;

use chat_core::Role;
pub use chat_server::testing::Reply;
use chat_server::testing::TestServer;
use example_live_chat::Options;
use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Staff {
    pub id: String,
    pub name: String,
    pub token: String,
}

pub struct Server {
    pub http: TestServer,
    pub admin: Staff,
    pub jane: Staff,
    pub bob: Staff,
}

/// The document's visitor, as its create-session example sends it but without the
/// widget's own `sessionId`: the server issues the id, which is then its own credential
/// (a site that cannot keep cookies works this way). `tests/suite/widget.rs` replays the
/// document's widget, which sends its own id.
pub fn john() -> Value {
    json!({
        "user": { "name": "John Doe", "email": "john@example.com", "phone": "+1234567890" },
        "pageUrl": "https://example.com/pricing"
    })
}

pub async fn start(dir: &std::path::Path) -> Server {
    start_with(dir, Options { rate_limit: None }).await
}

pub async fn start_with(dir: &std::path::Path, options: Options) -> Server {
    start_on(dir, options, None).await
}

/// The template on the engine clock `clock` (tests move it), if given.
pub async fn start_on(
    dir: &std::path::Path,
    options: Options,
    clock: Option<std::sync::Arc<chat_core::ManualClock>>,
) -> Server {
    let starter = example_live_chat::open_with(&dir.join("live-chat.db"), |builder| match clock {
        Some(clock) => builder.clock(clock),
        None => builder,
    })
    .await
    .unwrap();
    let mut staff = Vec::new();
    for (name, email, role) in [
        ("Admin User", "admin@example.com", Role::Admin),
        ("Jane Smith", "jane@example.com", Role::Agent),
        ("Bob Wilson", "bob@example.com", Role::Agent),
    ] {
        let agent = starter
            .ensure_staff(name, email, "password123", role)
            .await
            .unwrap();
        staff.push(Staff {
            id: agent.id.to_string(),
            name: agent.name.clone(),
            token: starter.staff_token(&agent).await.unwrap(),
        });
    }
    let extension = example_live_chat::live_chat(&starter, options)
        .await
        .unwrap();
    let http = TestServer::start(starter.engine.clone(), starter.config, Some(extension)).await;
    let mut staff = staff.into_iter();
    Server {
        http,
        admin: staff.next().unwrap(),
        jane: staff.next().unwrap(),
        bob: staff.next().unwrap(),
    }
}

impl std::ops::Deref for Server {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.http
    }
}

impl Server {
    /// Posts a multipart form: text fields, then files `(field, name, type, bytes)`.
    pub async fn multipart(
        &self,
        path: &str,
        token: Option<&str>,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &str, Vec<u8>)],
    ) -> Reply {
        let files: Vec<(&str, &str, &str, &[u8])> = files
            .iter()
            .map(|(f, n, t, b)| (*f, *n, *t, b.as_slice()))
            .collect();
        let (content_type, body) = chat_server::testing::multipart(fields, &files);
        self.http
            .send_as(
                Method::POST,
                path,
                token,
                &[("content-type", &content_type)],
                body,
            )
            .await
    }

    /// Creates the document's session; returns the server-issued session id.
    pub async fn session(&self, body: Value) -> String {
        let created = self.post("/api/live-chat/sessions", None, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body["data"]["session"]["sessionId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn socket_url(&self, query: &str) -> String {
        self.http.ws_url(&format!("/ws/live-chat?{query}"))
    }

    /// Opens a socket and reads its `connection_established` frame.
    pub async fn socket(&self, query: &str) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(self.socket_url(query))
            .await
            .unwrap();
        let mut ws = Ws(ws);
        let hello = ws.next().await;
        assert_eq!(hello["type"], "connection_established", "{hello}");
        assert!(hello["timestamp"].is_string());
        ws
    }

    /// The HTTP status a refused socket gets.
    pub async fn socket_refused(&self, query: &str) -> StatusCode {
        match tokio_tungstenite::connect_async(self.socket_url(query)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status(),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("the socket opened"),
        }
    }

    pub async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.http.stop()).await;
    }
}

pub struct Ws(pub WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    /// The next JSON frame (fails after 5 s).
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.0.next())
                .await
                .expect("a frame arrives")
                .expect("the socket is open")
                .expect("the frame is readable");
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Whether nothing arrives within `ms`.
    pub async fn quiet(&mut self, ms: u64) -> Option<Value> {
        match tokio::time::timeout(Duration::from_millis(ms), self.0.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => Some(serde_json::from_str(&text).unwrap()),
            _ => None,
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.0.send(Message::text(frame.to_string())).await.unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.0.close(None).await;
    }
}
