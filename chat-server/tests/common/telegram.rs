//! A fake Telegram Bot API for tests: a real HTTP server on 127.0.0.1 that speaks the
//! documented wire format (<https://core.telegram.org/bots/api>): `POST
//! /bot<token>/<method>` with a JSON body, answered `{"ok":true,"result":…}`, or
//! `{"ok":false,"error_code":…,"description":"…"}` with that HTTP status. It knows one bot
//! token; any other is 401 Unauthorized, as Telegram answers.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// One Bot API call the fake got.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub json: Value,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    /// Errors to answer the next calls of a method with: (method, HTTP status, description).
    failures: Mutex<VecDeque<(String, u16, String)>>,
    arrived: Notify,
}

pub struct BotApi {
    pub url: String,
    pub token: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl BotApi {
    pub async fn start(token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let (state, bot) = (shared.clone(), token.to_owned());
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, bot) = (state.clone(), bot.clone());
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (state, bot) = (state.clone(), bot.clone());
                        async move {
                            let path = req.uri().path().to_owned();
                            let body = req.into_body().collect().await?.to_bytes();
                            let (status, answer) = answer(&state, &bot, &path, &body);
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(answer.to_string())))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            token: token.to_owned(),
            shared,
            task,
        }
    }

    /// The next `count` calls of `method` fail with this status and description.
    pub fn fail_next(&self, method: &str, count: usize, status: u16, description: &str) {
        let mut failures = self.shared.failures.lock().unwrap();
        for _ in 0..count {
            failures.push_back((method.to_owned(), status, description.to_owned()));
        }
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.shared
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Waits until `done` holds for the calls so far (90 s at most), and returns them.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let mut next = std::pin::pin!(self.shared.arrived.notified());
            next.as_mut().enable();
            let calls = self.shared.calls.lock().unwrap().clone();
            if done(&calls) {
                return calls;
            }
            assert!(
                tokio::time::timeout_at(deadline, next).await.is_ok(),
                "{what}: not within 90 s; calls: {calls:?}"
            );
        }
    }
}

impl Drop for BotApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(state: &Shared, bot: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let Some((token, method)) = path
        .strip_prefix("/bot")
        .and_then(|rest| rest.rsplit_once('/'))
    else {
        return (
            404,
            json!({ "ok": false, "error_code": 404, "description": "Not Found" }),
        );
    };
    if token != bot {
        return (
            401,
            json!({ "ok": false, "error_code": 401, "description": "Unauthorized" }),
        );
    }
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return (
            400,
            json!({ "ok": false, "error_code": 400, "description": "Bad Request: can't parse JSON" }),
        );
    };
    state.calls.lock().unwrap().push(Call {
        method: method.to_owned(),
        json: json.clone(),
    });
    state.arrived.notify_waiters();
    {
        let mut failures = state.failures.lock().unwrap();
        if let Some(at) = failures.iter().position(|(m, _, _)| m == method) {
            let (_, status, description) = failures.remove(at).unwrap();
            return (
                status,
                json!({ "ok": false, "error_code": status, "description": description }),
            );
        }
    }
    match method {
        "setWebhook" => (
            200,
            json!({ "ok": true, "result": true, "description": "Webhook was set" }),
        ),
        "sendMessage" => {
            if json["chat_id"].is_null() || json["text"].as_str().is_none_or(str::is_empty) {
                return (
                    400,
                    json!({ "ok": false, "error_code": 400, "description": "Bad Request: message text is empty" }),
                );
            }
            let count = state.calls.lock().unwrap().len();
            (
                200,
                json!({ "ok": true, "result": {
                    "message_id": count,
                    "from": { "id": 123456, "is_bot": true, "first_name": "Desk", "username": "desk_bot" },
                    "chat": { "id": json["chat_id"], "type": "private" },
                    "date": 1_700_000_000,
                    "text": json["text"],
                } }),
            )
        }
        _ => (
            404,
            json!({ "ok": false, "error_code": 404, "description": "Not Found: method not found" }),
        ),
    }
}
