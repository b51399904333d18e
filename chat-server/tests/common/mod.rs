//! A real server on 127.0.0.1:0 and a real HTTP client.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use chat_core::{Actor, AgentId, Backend, Engine, NewAgent, Role, TenantId, TenantSettings};
use chat_server::{Config, auth};
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
pub const PASSWORD: &str = "correct horse battery";

pub struct Staff {
    pub id: AgentId,
    pub email: String,
    pub token: String,
}

pub struct Server {
    pub base: String,
    pub engine: Engine,
    pub tenant: TenantId,
    pub client: Client<HttpConnector, Full<Bytes>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// The backend every server test runs on: the SQLite store on a file in a temp dir.
pub fn backend(dir: &std::path::Path) -> Arc<dyn Backend> {
    Arc::new(chat_sqlite::SqliteStore::open(dir.join("chat.db")).unwrap())
}

pub async fn start() -> Server {
    start_with(|_| {}).await
}

pub async fn start_with(tune: impl FnOnce(&mut Config)) -> Server {
    start_full(tune, |b| b).await
}

/// A server whose engine the test shapes (bot, bus, clock ...).
pub async fn start_full(
    tune: impl FnOnce(&mut Config),
    shape: impl FnOnce(chat_core::EngineBuilder) -> chat_core::EngineBuilder,
) -> Server {
    start_extended(tune, shape, None).await
}

/// A server with an extension's routes beside the built-in ones.
pub async fn start_extended(
    tune: impl FnOnce(&mut Config),
    shape: impl FnOnce(chat_core::EngineBuilder) -> chat_core::EngineBuilder,
    extension: Option<Arc<dyn chat_server::Extension>>,
) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let engine = shape(Engine::builder_with_backend(backend(dir.path()))).build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let mut config = Config::new(SECRET);
    config.default_tenant = Some(tenant);
    // Tests hammer the server from one IP; they opt into rate limits explicitly.
    config.limits.per_ip_rps = 0.0;
    config.limits.per_token_rps = 0.0;
    tune(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(chat_server::run_with(
        listener,
        engine.clone(),
        config,
        extension,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = Client::builder(TokioExecutor::new()).build_http();
    Server {
        base,
        engine,
        tenant,
        client,
        stop: Some(stop),
        task: Some(task),
        _dir: dir,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Server {
    /// Creates a staff member with a password and logs it in through the API.
    pub async fn staff(&self, name: &str, role: Role, departments: &[&str]) -> Staff {
        let system = Actor::System {
            tenant: self.tenant,
        };
        let email = format!("{}@acme.example", name.to_lowercase());
        let input = NewAgent {
            name: name.into(),
            email: email.clone(),
            role,
            capacity: None,
            departments: departments.iter().map(|d| d.to_string()).collect(),
        };
        let agent = self.engine.create_agent(&system, input).await.unwrap();
        self.engine
            .set_password(&system, agent.id, &auth::hash_password(PASSWORD).unwrap())
            .await
            .unwrap();
        let reply = self
            .post(
                "/v1/auth/login",
                None,
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        Staff {
            id: agent.id,
            email,
            token: reply.body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Opens a conversation as an anonymous widget visitor; returns (conversation id, visitor token).
    pub async fn visitor(&self, email: &str) -> (String, String) {
        let reply = self
            .post(
                "/v1/conversations",
                None,
                json!({ "contact": { "name": "Visitor", "email": email } }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        (
            reply.body["conversation"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
            reply.body["visitor_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self
            .client
            .request(req.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
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
                self.send(
                    method,
                    path,
                    token,
                    &[("content-type", "application/json")],
                    Bytes::from(b.to_string()),
                )
                .await
            }
            None => self.send(method, path, token, &[], Bytes::new()).await,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}
