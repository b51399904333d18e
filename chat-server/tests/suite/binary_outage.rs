//! The `chat-server` binary on PostgreSQL while the database goes away under it: every
//! server connection is terminated (`pg_terminate_backend`) and new ones are refused for a
//! while, as in a restart. Requests meanwhile answer 503 `storage_unavailable` at once (no
//! hang, no crash); afterwards the pool opens new connections by itself (no restart of
//! the server) and every message that was acknowledged is stored, once. Needs
//! `CHAT_TEST_POSTGRES_URL`; without it the test says it was skipped (and fails under
//! `CHAT_REQUIRE_SERVICES=1`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::services;

use chat_server::testing::Process;
use serde_json::{Value, json};
use services::{call, run_sql, service_url};

/// A database of its own (a database, not a schema: refusing connections is per
/// database), dropped with every connection to it when this is.
struct Database {
    admin_url: String,
    name: String,
}

impl Database {
    async fn create(admin_url: &str) -> Self {
        let name = format!("chat_outage_{}", uuid::Uuid::new_v4().simple());
        run_sql(admin_url, &format!("CREATE DATABASE {name}")).await;
        Self {
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    /// The URL of this database, from the test's URL (same server and user).
    fn url(&self) -> String {
        let (base, query) = match self.admin_url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (self.admin_url.as_str(), String::new()),
        };
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        format!("{server}/{}{query}", self.name)
    }

    /// Cuts every connection to the database and refuses new ones.
    async fn go_down(&self) {
        let name = &self.name;
        run_sql(
            &self.admin_url,
            &format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid();"
            ),
        )
        .await;
    }

    /// Ends the backends still open: one whose start had passed the `ALLOW_CONNECTIONS`
    /// check when `go_down` committed shows up in `pg_stat_activity` only afterwards (the
    /// server's pool reconnecting), after the first round of terminations.
    async fn terminate_backends(&self) {
        let name = &self.name;
        run_sql(
            &self.admin_url,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid();"
            ),
        )
        .await;
    }

    async fn come_back(&self) {
        let name = &self.name;
        run_sql(
            &self.admin_url,
            &format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
        )
        .await;
    }

    /// The server's connections open now.
    async fn connections(&self) -> i64 {
        let (client, connection) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&self.name],
            )
            .await
            .unwrap()
            .get(0)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(run_sql(
                    &url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ))
        })
        .join();
    }
}

/// Posts `body` (also its client message id) as the visitor, answered within 15 s.
async fn post(server: &Process, conversation: &str, visitor: &str, body: &str) -> (u16, Value) {
    let path = format!("/v1/conversations/{conversation}/messages");
    let request = call(
        server,
        "POST",
        &path,
        Some(visitor),
        Some(json!({ "body": body, "client_message_id": body })),
    );
    tokio::time::timeout(Duration::from_secs(15), request)
        .await
        .unwrap_or_else(|_| panic!("posting {body} hung"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_the_server_recovers_without_losing_messages() {
    let Some(url) = service_url("CHAT_TEST_POSTGRES_URL") else {
        return;
    };
    let database = Database::create(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let store_url = database.url();
    let server = Process::start(
        env!("CARGO_BIN_EXE_chat-server"),
        [
            OsStr::new("--store"),
            OsStr::new(&store_url),
            OsStr::new("--key-file"),
            dir.path().join("chat-signing.key").as_os_str(),
            OsStr::new("--db"),
            dir.path().join("unused.db").as_os_str(),
            OsStr::new("--bot"),
            OsStr::new("none"),
            OsStr::new("--timer-interval-secs"),
            OsStr::new("1"),
        ],
    );
    let (status, opened) = call(
        &server,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "first_message": "before" })),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let id = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let visitor = opened["visitor_token"].as_str().unwrap().to_owned();

    // A visitor keeps writing while the database goes down and comes back: each post is
    // answered, 201 or 503 `storage_unavailable`, nothing else.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (server, id, visitor, writing) = (&server, &id, &visitor, writing.clone());
        async move {
            let mut answers: Vec<(String, u16, Value)> = Vec::new();
            let mut n = 0;
            while writing.load(Ordering::SeqCst) || n < 5 {
                let body = format!("live-{n}");
                let (status, answer) = post(server, id, visitor, &body).await;
                answers.push((body, status, answer));
                n += 1;
            }
            answers
        }
    };
    let outage = async {
        // Down once a few posts went through, up again once a few were refused.
        tokio::task::yield_now().await;
        database.go_down().await;
        // Terminating is a signal to each backend: wait until they are all gone.
        for _ in 0..200 {
            if database.connections().await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            database.terminate_backends().await;
        }
        assert_eq!(
            database.connections().await,
            0,
            "the backends were terminated"
        );
        let mut refused = Vec::new();
        for n in 0..5 {
            let body = format!("down-{n}");
            let (status, answer) = post(&server, &id, &visitor, &body).await;
            assert_eq!(status, 503, "{answer}");
            assert_eq!(answer["error"]["code"], "storage_unavailable", "{answer}");
            refused.push(body);
        }
        let (status, health) = call(&server, "GET", "/healthz", None, None).await;
        assert_eq!(status, 200, "the process still answers: {health}");
        let (status, ready) = call(&server, "GET", "/readyz", None, None).await;
        assert_eq!(status, 503, "not ready without its database: {ready}");
        database.come_back().await;
        writing.store(false, Ordering::SeqCst);
        refused
    };
    let (answers, refused) = tokio::join!(writer, outage);
    for (body, status, answer) in &answers {
        assert!(
            *status == 201 || (*status == 503 && answer["error"]["code"] == "storage_unavailable"),
            "{body}: {status} {answer}"
        );
    }
    // The database is back: the next request gets a new connection, no restart.
    let (status, after) = post(&server, &id, &visitor, "after").await;
    assert_eq!(status, 201, "the pool reconnected by itself: {after}");
    assert!(
        database.connections().await > 0,
        "the server is connected again"
    );

    // Every refused post is sent again with its client message id; a post whose commit
    // made it before its connection was cut is not stored twice.
    let mut expected: Vec<String> = vec!["before".into()];
    for (body, status, _) in &answers {
        if *status != 201 {
            let (status, again) = post(&server, &id, &visitor, body).await;
            assert!(status == 201 || status == 200, "{body}: {status} {again}");
        }
        expected.push(body.clone());
    }
    for body in &refused {
        let (status, again) = post(&server, &id, &visitor, body).await;
        assert!(status == 201 || status == 200, "{body}: {status} {again}");
        expected.push(body.clone());
    }
    expected.push("after".into());
    let (status, history) = call(
        &server,
        "GET",
        &format!("/v1/conversations/{id}/messages?limit=500"),
        Some(&visitor),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for m in history["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{history}"))
    {
        if let Some(body) = m["body"].as_str() {
            *stored.entry(body.to_owned()).or_default() += 1;
        }
    }
    let want: BTreeMap<String, usize> = expected.into_iter().map(|b| (b, 1)).collect();
    assert_eq!(stored, want, "each acknowledged message once");
    assert!(server.terminate().success());
}
