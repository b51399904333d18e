//! A real server on 127.0.0.1:0 over a temp SQLite file, with a tenant and staff to call
//! it as; its HTTP calls are `chat_server::testing::HttpClient`'s.
#![allow(dead_code)]

pub mod receiver;
pub mod smtp;
pub mod telegram;

use std::sync::Arc;

use chat_core::{Actor, AgentId, Backend, Engine, NewAgent, Role, TenantId, TenantSettings};
use chat_server::testing::{HttpClient, TestServer};
use chat_server::{Config, auth};
use hyper::StatusCode;
use serde_json::json;

pub const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
pub const PASSWORD: &str = "correct horse battery";
/// The scraper's token for `/metrics` in every test server.
#[allow(dead_code)]
pub const METRICS_TOKEN: &str = "test-metrics-scraper-token";

pub struct Staff {
    pub id: AgentId,
    pub email: String,
    pub token: String,
}

pub struct Server {
    pub engine: Engine,
    pub tenant: TenantId,
    http: TestServer,
    // Dropped after `http`, so the database outlives the server that writes to it.
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Server {
    type Target = HttpClient;

    fn deref(&self) -> &HttpClient {
        &self.http
    }
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
    let engine = shape(
        Engine::builder_with_backend(backend(dir.path()))
            .passwords(Arc::new(chat_server::auth::Argon2Passwords)),
    )
    .build();
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
    config.metrics_token = Some(chat_server::MetricsToken::new(METRICS_TOKEN).unwrap());
    tune(&mut config);
    let http = TestServer::start(engine.clone(), config, extension).await;
    Server {
        engine,
        tenant,
        http,
        _dir: dir,
    }
}

/// A server on the database in `dir`: a new one (a tenant is made), or, with the `tenant`
/// it holds, a restart on it.
pub async fn start_on(
    dir: tempfile::TempDir,
    tenant: Option<TenantId>,
    tune: impl FnOnce(&mut Config),
) -> Server {
    let engine = Engine::builder_with_backend(backend(dir.path()))
        .passwords(Arc::new(chat_server::auth::Argon2Passwords))
        .build();
    let tenant = match tenant {
        Some(t) => t,
        None => {
            engine
                .create_tenant("Acme", TenantSettings::default())
                .await
                .unwrap()
                .id
        }
    };
    let mut config = Config::new(SECRET);
    config.default_tenant = Some(tenant);
    config.limits.per_ip_rps = 0.0;
    config.limits.per_token_rps = 0.0;
    config.metrics_token = Some(chat_server::MetricsToken::new(METRICS_TOKEN).unwrap());
    tune(&mut config);
    let http = TestServer::start(engine.clone(), config, None).await;
    Server {
        engine,
        tenant,
        http,
        _dir: dir,
    }
}

impl Server {
    /// Stops the server gracefully and hands its folder back, for a restart on the same
    /// database ([`start_on`]).
    pub async fn stop_keeping_dir(self) -> tempfile::TempDir {
        let Server { http, _dir, .. } = self;
        http.stop().await;
        _dir
    }

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

    /// The temp dir holding the database (`chat.db`), its logs and its search file.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.http.stop().await;
    }
}
