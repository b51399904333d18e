//! The template on a real listener (127.0.0.1:0) over a database file in a temp dir, and
//! a plain HTTP client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use chat_core::Role;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::oneshot;

pub struct Server {
    pub base: String,
    pub db: PathBuf,
    pub admin: String,
    pub agent: String,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(chat_server::run_with(
        listener,
        starter.engine.clone(),
        starter.config,
        Some(extension),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        base,
        db: db.to_owned(),
        admin,
        agent,
        client: Client::builder(TokioExecutor::new()).build_http(),
        stop: Some(stop),
        task: Some(task),
    }
}

impl Server {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self
            .client
            .request(req.body(Full::new(body.into())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text,
        }
    }

    /// A JSON request, with a bearer token if given.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_str()));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send(method, path, &headers, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.json(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.json(Method::POST, path, token, Some(body)).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
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
