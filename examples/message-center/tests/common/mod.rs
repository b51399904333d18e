//! The template on a real listener over a temp database, and a small HTTP client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub struct Server {
    pub base: String,
    pub db: PathBuf,
    client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

/// Starts the template on `dir/chat.db`, seeding the document's demo data as `--demo` does.
pub async fn start(dir: &Path) -> Server {
    let db = dir.join("chat.db");
    let mut starter = example_message_center::open(&db).await.unwrap();
    let center = example_message_center::message_center(&starter)
        .await
        .unwrap();
    example_message_center::seed_demo(&starter, &center)
        .await
        .unwrap();
    // Tests hammer the server from one IP.
    starter.config.limits.per_ip_rps = 0.0;
    starter.config.limits.per_token_rps = 0.0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(chat_server::run_with(
        listener,
        starter.engine.clone(),
        starter.config,
        Some(center),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        base,
        db,
        client: Client::builder(TokioExecutor::new()).build_http(),
        stop: Some(stop),
        task: Some(task),
    }
}

impl Server {
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        let response = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        match body {
            Some(b) => {
                self.raw(
                    method,
                    path,
                    token,
                    Some("application/json"),
                    Bytes::from(b.to_string()),
                )
                .await
            }
            None => self.raw(method, path, token, None, Bytes::new()).await,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    /// `POST /auth/login` as in the document's curl command; returns the access token.
    pub async fn login(&self, identifier: &str, password: &str) -> String {
        let reply = self
            .post(
                "/auth/login",
                None,
                json!({ "identifier": identifier, "password": password }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.body["access_token"].as_str().unwrap().to_owned()
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

/// The chat named `name` in a `GET /chats/` answer.
pub fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}
