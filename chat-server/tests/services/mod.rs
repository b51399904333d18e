//! The services the multi-process tests run against (PostgreSQL, NATS), read from the
//! environment as `.ci/run` sets it, and what those tests share.
#![allow(dead_code)]

use chat_server::testing::Process;
use serde_json::Value;
use tokio_postgres::NoTls;

/// The service's URL from `var`, or `None` (with a note) when the test is to be skipped.
pub fn service_url(var: &str) -> Option<String> {
    let url = std::env::var(var).ok().filter(|v| !v.is_empty());
    if url.is_none() {
        let required = std::env::var("CHAT_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(!required, "CHAT_REQUIRE_SERVICES=1 but {var} is unset");
        println!("skipped: {var} unset");
    }
    url
}

/// A schema with a random name, dropped (with everything in it) when this is.
pub struct Schema {
    url: String,
    /// The schema's name.
    pub name: String,
}

impl Schema {
    pub async fn create(url: &str) -> Self {
        let name = format!("chat_test_{}", uuid::Uuid::new_v4().simple());
        run_sql(url, &format!("CREATE SCHEMA {name}")).await;
        Self {
            url: url.to_owned(),
            name,
        }
    }

    /// The URL that puts a server's tables in this schema.
    pub fn store_url(&self) -> String {
        let joiner = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{joiner}options=-c%20search_path%3D{}",
            self.url, self.name
        )
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await: a thread with a runtime of its own drops the schema.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(run_sql(
                    &url,
                    &format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
                ))
        })
        .join();
    }
}

pub async fn run_sql(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    let connection = tokio::spawn(connection);
    client.batch_execute(sql).await.expect(sql);
    drop(client);
    let _ = connection.await;
}

pub async fn call(
    server: &Process,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let method = hyper::Method::from_bytes(method.as_bytes()).unwrap();
    let reply = server.json(method, path, token, body).await;
    (reply.status.as_u16(), reply.body)
}
