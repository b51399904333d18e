//! The binary as an operator runs it: `--demo` on a fresh database, the tokens it writes,
//! SIGTERM, and a second `--demo` start on the same file.

use std::ffi::OsStr;

use chat_server::testing::{Process, demo_tokens, tokens_in};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_example-quick-chat");

#[tokio::test]
async fn a_demo_start_serves_its_tokens_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("quick-chat.db");
    let args: [&OsStr; 3] = ["--demo".as_ref(), "--db".as_ref(), db.as_os_str()];

    let first = Process::start(BIN, args);
    let demo = demo_tokens(&db);
    let tokens = tokens_in(&demo);
    assert_eq!(tokens.len(), 2, "an admin and an agent: {demo}");
    let created = first
        .post(
            "/api/chat/sessions",
            None,
            json!({ "email": "test@example.com", "name": "Test" }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id = created.body["session"]["id"].as_str().unwrap().to_owned();
    for token in &tokens {
        let listed = first.get("/api/chat/sessions", Some(token)).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
    }
    assert_eq!(first.get("/api/chat/sessions", None).await.status, 401);
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secrets.extend(["admin123", "agent123", &id]);
    first.assert_no_secret_logged(&secrets);
    assert!(first.terminate().success(), "SIGTERM stops it cleanly");

    // `--demo` again: the same staff, the old tokens still valid (the signing key is kept
    // beside the database), the session still there.
    let second = Process::start(BIN, args);
    let listed = second.get("/api/chat/sessions", Some(&tokens[0])).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let sessions = listed.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{}", listed.text);
    // Staff see the conversation's id, never the visitor's capability.
    assert_eq!(sessions[0]["email"], "test@example.com");
    assert_ne!(sessions[0]["id"], id.as_str());
    assert_eq!(tokens_in(&demo_tokens(&db)).len(), 2);
    second.assert_no_secret_logged(&secrets);
    assert!(second.terminate().success());
}
