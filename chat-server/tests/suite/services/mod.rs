//! The services the multi-process tests run against (PostgreSQL, NATS), read from the
//! environment as `.ci/run` sets it, and what those tests share.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};

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

/// The first admin every node of a [`Nodes`] deployment is started with.
pub const ADMIN: &str = "root@acme.example";
/// Its password.
pub const ADMIN_PASSWORD: &str = "a long admin password";

/// The nodes of one deployment over one fresh PostgreSQL schema, as several servers
/// behind one name run: they share the signing key (a token of one works on all) and the
/// first admin, and each has its own (unused) SQLite path and no bot. Those on a bus
/// share one NATS subject prefix of their own, so tests running at once do not hear each
/// other.
pub struct Nodes {
    pub schema: Schema,
    pub dir: tempfile::TempDir,
    store_url: String,
    /// The NATS subject prefix of this deployment.
    pub prefix: String,
}

impl Nodes {
    pub async fn create(pg: &str) -> Self {
        let schema = Schema::create(pg).await;
        Self {
            store_url: schema.store_url(),
            schema,
            dir: tempfile::tempdir().unwrap(),
            prefix: format!("test{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The flags that put a node on the bus at `url`, under this deployment's prefix.
    pub fn bus<'a>(&'a self, url: &'a str) -> [&'a str; 4] {
        ["--bus", url, "--bus-prefix", &self.prefix]
    }

    /// Starts node `name` with the shared flags, then `extra`.
    pub fn start(&self, name: &str, extra: &[&str]) -> Process {
        let unused = self.dir.path().join(format!("{name}-unused.db"));
        let key = self.dir.path().join("chat-signing.key");
        let shared = [
            OsStr::new("--store"),
            OsStr::new(&self.store_url),
            OsStr::new("--key-file"),
            key.as_os_str(),
            OsStr::new("--db"),
            unused.as_os_str(),
            OsStr::new("--bot"),
            OsStr::new("none"),
            OsStr::new("--admin-email"),
            OsStr::new(ADMIN),
            OsStr::new("--admin-password"),
            OsStr::new(ADMIN_PASSWORD),
        ];
        let args: Vec<OsString> = shared
            .into_iter()
            .chain(extra.iter().map(OsStr::new))
            .map(ToOwned::to_owned)
            .collect();
        Process::start(env!("CARGO_BIN_EXE_chat-server"), args)
    }
}
