//! The template on a real listener (127.0.0.1:0) over a database file in a temp dir, with
//! the server library's test client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chat_core::Role;
use chat_server::testing::TestServer;
use serde_json::Value;

pub struct Server {
    pub http: TestServer,
    pub db: PathBuf,
    pub admin: String,
    pub agent: String,
}

impl std::ops::Deref for Server {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.http
    }
}

impl Server {
    pub async fn stop(self) {
        self.http.stop().await;
    }
}

/// Starts the template on `db` with an admin and a support agent (as `--demo` seeds them).
pub async fn start(db: &Path, llm: Option<example_ai_chatbot::LlmSettings>) -> Server {
    let mut starter = example_ai_chatbot::open(db, llm).await.unwrap();
    // The tests call from one IP faster than a browser would.
    starter.config.limits.per_ip_rps = 0.0;
    starter.config.limits.per_token_rps = 0.0;
    let admin = starter
        .ensure_staff("Admin", "admin@example.com", "admin123", Role::Admin)
        .await
        .unwrap();
    let agent = starter
        .ensure_staff("Agent", "agent@example.com", "agent123", Role::Agent)
        .await
        .unwrap();
    let admin = starter.staff_token(&admin).await.unwrap();
    let agent = starter.staff_token(&agent).await.unwrap();
    let extension = example_ai_chatbot::extension(&starter);
    Server {
        http: TestServer::start(starter.engine.clone(), starter.config, Some(extension)).await,
        db: db.to_owned(),
        admin,
        agent,
    }
}

/// A local OpenAI-compatible endpoint answering every chat completion with `answer`
/// in the exact wire format; returns its base URL and the request bodies it received.
pub async fn fake_openai(
    answer: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break buf[end + 4..end + 4 + length].to_vec();
                        }
                    }
                };
                log.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                let reply = serde_json::json!({
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1_700_000_000,
                    "model": "gpt-3.5-turbo",
                    "choices": [{
                        "index": 0,
                        "message": { "role": "assistant", "content": answer },
                        "finish_reason": "stop"
                    }],
                    "usage": { "prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18 }
                })
                .to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (base, seen)
}
