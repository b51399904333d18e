//! The `chat-server` binary on PostgreSQL (`--store postgres://…`): two processes over one
//! database, a visitor on one and staff on the other. Needs `CHAT_TEST_POSTGRES_URL`;
//! without it the test says it was skipped (and fails under `CHAT_REQUIRE_SERVICES=1`).

use crate::services;

use serde_json::json;
use services::{ADMIN, ADMIN_PASSWORD, Nodes, call, service_url};
use tokio_postgres::NoTls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgres_share_conversations_posted_over_http() {
    let Some(url) = service_url("CHAT_TEST_POSTGRES_URL") else {
        return;
    };
    // Servers sharing a database share the signing key, so a token of one works on all.
    let nodes = Nodes::create(&url).await;
    let a = nodes.start("a", &[]);
    let b = nodes.start("b", &[]);

    // A visitor opens a conversation on A and writes again through B.
    let (status, opened) = call(
        &a,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "first_message": "my parcel never arrived" })),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let id = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let visitor = opened["visitor_token"].as_str().unwrap().to_owned();
    let (status, posted) = call(
        &b,
        "POST",
        &format!("/v1/conversations/{id}/messages"),
        Some(&visitor),
        Some(json!({ "body": "order 4521, paid last week", "client_message_id": "m2" })),
    )
    .await;
    assert_eq!(status, 201, "{posted}");

    // Staff log in on B (one admin, though both servers were told to create it) and read
    // the conversation whole, in order, and find it by a word of the second message.
    let (status, login) = call(
        &b,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": ADMIN, "password": ADMIN_PASSWORD })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, history) = call(
        &a,
        "GET",
        &format!("/v1/conversations/{id}/messages"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    let bodies: Vec<&str> = history["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{history}"))
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(
        bodies,
        ["my parcel never arrived", "order 4521, paid last week"]
    );
    let (status, found) = call(
        &b,
        "GET",
        "/v1/conversations?text=%20paid",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");

    // The rows are PostgreSQL's: the messages are in the schema's table.
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let stored: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.messages WHERE conversation_id = $1",
                nodes.schema.name
            ),
            &[&uuid::Uuid::parse_str(&id).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 2);
    a.assert_no_secret_logged(&[ADMIN_PASSWORD, &token, &visitor]);
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// Runs the binary with `args` until it exits; its status and what it wrote to stderr.
fn run_to_exit(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_store_that_is_not_postgres_or_cannot_be_reached_stops_the_start_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let db = db.to_str().unwrap();
    let (status, stderr) =
        run_to_exit(&["--db", db, "--store", "mysql://root:hunter2@127.0.0.1/chat"]);
    assert!(!status.success());
    assert!(
        stderr.contains("--store takes a postgres:// URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // Nothing listens on port 1.
    let (status, stderr) = run_to_exit(&[
        "--db",
        db,
        "--store",
        "postgres://root:hunter2@127.0.0.1:1/chat",
    ]);
    assert!(!status.success());
    assert!(stderr.contains("opening the PostgreSQL store"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(
        !std::path::Path::new(db).exists(),
        "no SQLite file is made when --store is given"
    );
}
