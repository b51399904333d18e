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

/// One Bot API call the fake got: its JSON body, or a multipart form's text fields as a
/// JSON object and its files.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub json: Value,
    pub files: Vec<Upload>,
}

/// A file part of a multipart call.
#[derive(Clone, Debug)]
pub struct Upload {
    pub field: String,
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    /// Files the bot can `getFile`: file_id -> (file_path, bytes).
    files: Mutex<std::collections::HashMap<String, (String, Vec<u8>)>>,
    /// Paths of files downloaded.
    downloads: Mutex<Vec<String>>,
    /// Updates not yet confirmed (a `getUpdates` offset above their id confirms them).
    updates: Mutex<Vec<Value>>,
    /// Whether a webhook is set (`getUpdates` is then 409 Conflict, as Telegram answers).
    webhook_set: Mutex<bool>,
    pushed: Notify,
    /// Errors to answer the next calls of a method with: (method, HTTP status, description).
    /// Method, the text a call must hold to fail, status, description.
    failures: Mutex<VecDeque<(String, String, u16, String)>>,
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
                            let content_type = req
                                .headers()
                                .get("content-type")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let get = req.method() == hyper::Method::GET;
                            let body = req.into_body().collect().await?.to_bytes();
                            if get {
                                return Ok::<_, hyper::Error>(download(&state, &bot, &path));
                            }
                            let (status, answer) =
                                answer(&state, &bot, &path, &content_type, body).await;
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

    /// A file the bot can fetch: `getFile` with `file_id` answers `file_path`, and
    /// `GET /file/bot<token>/<file_path>` the bytes.
    pub fn add_file(&self, file_id: &str, file_path: &str, bytes: &[u8]) {
        self.shared
            .files
            .lock()
            .unwrap()
            .insert(file_id.to_owned(), (file_path.to_owned(), bytes.to_vec()));
    }

    /// An update for `getUpdates` to answer.
    pub fn push_update(&self, update: Value) {
        self.shared.updates.lock().unwrap().push(update);
        self.shared.pushed.notify_waiters();
    }

    /// Sets whether the bot has a webhook, as an earlier `setWebhook` would have.
    pub fn set_webhook_active(&self, active: bool) {
        *self.shared.webhook_set.lock().unwrap() = active;
    }

    /// Paths of the files downloaded so far.
    pub fn downloads(&self) -> Vec<String> {
        self.shared.downloads.lock().unwrap().clone()
    }

    /// The next call of `method` whose `text` holds `text` fails with this status and
    /// description (a call of another text, which a busy desk may send first, does not).
    pub fn fail_next(&self, method: &str, text: &str, status: u16, description: &str) {
        self.shared.failures.lock().unwrap().push_back((
            method.to_owned(),
            text.to_owned(),
            status,
            description.to_owned(),
        ));
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

/// `GET /file/bot<token>/<file_path>`: the file's bytes, as Telegram serves them.
fn download(state: &Shared, bot: &str, path: &str) -> Response<Full<Bytes>> {
    let found = path
        .strip_prefix("/file/bot")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(token, _)| *token == bot)
        .and_then(|(_, file_path)| {
            state
                .files
                .lock()
                .unwrap()
                .values()
                .find(|(p, _)| p == file_path)
                .map(|(p, bytes)| (p.clone(), bytes.clone()))
        });
    match found {
        Some((p, bytes)) => {
            state.downloads.lock().unwrap().push(p);
            Response::builder()
                .status(200)
                .header("content-type", "application/octet-stream")
                .body(Full::new(Bytes::from(bytes)))
                .unwrap()
        }
        None => Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"Not Found")))
            .unwrap(),
    }
}

/// A multipart form's text fields (as a JSON object) and files, read with multer.
async fn form(content_type: &str, body: Bytes) -> Option<(Value, Vec<Upload>)> {
    let boundary = multer::parse_boundary(content_type).ok()?;
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(body)]);
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut fields, mut files) = (serde_json::Map::new(), Vec::new());
    while let Some(field) = form.next_field().await.ok()? {
        let name = field.name()?.to_owned();
        match field.file_name().map(str::to_owned) {
            Some(file_name) => {
                let content_type = field
                    .content_type()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                files.push(Upload {
                    field: name,
                    name: file_name,
                    content_type,
                    bytes: field.bytes().await.ok()?.to_vec(),
                });
            }
            None => {
                fields.insert(name, Value::String(field.text().await.ok()?));
            }
        }
    }
    Some((Value::Object(fields), files))
}

async fn answer(
    state: &Shared,
    bot: &str,
    path: &str,
    content_type: &str,
    body: Bytes,
) -> (u16, Value) {
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
    // The Bot API takes JSON, or multipart/form-data when a file is uploaded.
    let parsed = if content_type.starts_with("multipart/form-data") {
        form(content_type, body).await
    } else {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .map(|json| (json, Vec::new()))
    };
    let Some((json, files)) = parsed else {
        return (
            400,
            json!({ "ok": false, "error_code": 400, "description": "Bad Request: can't parse JSON" }),
        );
    };
    state.calls.lock().unwrap().push(Call {
        method: method.to_owned(),
        json: json.clone(),
        files: files.clone(),
    });
    state.arrived.notify_waiters();
    {
        let mut failures = state.failures.lock().unwrap();
        let text = json["text"].as_str().unwrap_or_default();
        if let Some(at) = failures
            .iter()
            .position(|(m, t, _, _)| m == method && text.contains(t.as_str()))
        {
            let (_, _, status, description) = failures.remove(at).unwrap();
            return (
                status,
                json!({ "ok": false, "error_code": status, "description": description }),
            );
        }
    }
    match method {
        "setWebhook" => {
            *state.webhook_set.lock().unwrap() = true;
            (
                200,
                json!({ "ok": true, "result": true, "description": "Webhook was set" }),
            )
        }
        "deleteWebhook" => {
            *state.webhook_set.lock().unwrap() = false;
            (
                200,
                json!({ "ok": true, "result": true, "description": "Webhook was deleted" }),
            )
        }
        "getUpdates" => {
            if *state.webhook_set.lock().unwrap() {
                return (
                    409,
                    json!({ "ok": false, "error_code": 409, "description": "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first" }),
                );
            }
            // Updates below the offset are confirmed and forgotten; with none left, the
            // call waits up to `timeout` seconds for one (long polling).
            let offset = json["offset"].as_i64().unwrap_or(0);
            let wait = Duration::from_secs(json["timeout"].as_u64().unwrap_or(0));
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let mut next = std::pin::pin!(state.pushed.notified());
                next.as_mut().enable();
                let pending: Vec<Value> = {
                    let mut updates = state.updates.lock().unwrap();
                    updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                    updates.clone()
                };
                if !pending.is_empty() || tokio::time::timeout_at(deadline, next).await.is_err() {
                    return (200, json!({ "ok": true, "result": pending }));
                }
            }
        }
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
        "getFile" => {
            let id = json["file_id"].as_str().unwrap_or("");
            match state.files.lock().unwrap().get(id) {
                Some((file_path, bytes)) => (
                    200,
                    json!({ "ok": true, "result": {
                        "file_id": id, "file_unique_id": format!("u{id}"),
                        "file_size": bytes.len(), "file_path": file_path,
                    } }),
                ),
                None => (
                    400,
                    json!({ "ok": false, "error_code": 400, "description": "Bad Request: invalid file_id" }),
                ),
            }
        }
        "sendPhoto" | "sendDocument" => {
            let field = if method == "sendPhoto" {
                "photo"
            } else {
                "document"
            };
            if json["chat_id"].is_null() || !files.iter().any(|f| f.field == field) {
                return (
                    400,
                    json!({ "ok": false, "error_code": 400, "description": format!("Bad Request: there is no {field} in the request") }),
                );
            }
            let count = state.calls.lock().unwrap().len();
            (
                200,
                json!({ "ok": true, "result": {
                    "message_id": count,
                    "chat": { "id": json["chat_id"], "type": "private" },
                    "date": 1_700_000_000,
                    "caption": json["caption"],
                } }),
            )
        }
        _ => (
            404,
            json!({ "ok": false, "error_code": 404, "description": "Not Found: method not found" }),
        ),
    }
}
