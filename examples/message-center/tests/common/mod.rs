//! The template on a real listener over a temp database, and a small HTTP client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub use chat_server::testing::Reply;
use chat_server::testing::TestServer;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

pub struct Server {
    pub http: TestServer,
    pub db: PathBuf,
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
    Server {
        http: TestServer::start(starter.engine.clone(), starter.config, Some(center)).await,
        db,
    }
}

impl Server {
    /// A request with a JSON body (when given) and a bearer token (when given).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        match body {
            Some(_) => self.http.json(method, path, token, body).await,
            None => {
                let bearer = token.map(|t| format!("Bearer {t}"));
                let headers: Vec<(&str, &str)> = bearer
                    .as_deref()
                    .map(|b| ("authorization", b))
                    .into_iter()
                    .collect();
                self.http.send(method, path, &headers, "").await
            }
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
