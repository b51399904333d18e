//! The template on a real listener over a temp database, with the server library's test
//! client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chat_server::testing::TestServer;
use hyper::StatusCode;
use serde_json::{Value, json};

pub struct Server {
    pub http: TestServer,
    pub db: PathBuf,
}

/// Starts the template on `dir/chat.db`, seeding the document's demo data as `--demo` does.
pub async fn start(dir: &Path) -> Server {
    start_with(dir, |_| {}).await
}

/// [`start`], with the server's configuration changed by `configure` first.
pub async fn start_with(dir: &Path, configure: impl FnOnce(&mut chat_server::Config)) -> Server {
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
    configure(&mut starter.config);
    Server {
        http: TestServer::start(starter.engine.clone(), starter.config, Some(center)).await,
        db,
    }
}

impl std::ops::Deref for Server {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.http
    }
}

impl Server {
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

    pub async fn stop(self) {
        self.http.stop().await;
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
