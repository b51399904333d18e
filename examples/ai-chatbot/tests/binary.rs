//! The binary as an operator runs it: `--demo` on a fresh database, the tokens it writes,
//! SIGTERM, and a second `--demo` start on the same file.

use std::ffi::OsStr;

use chat_server::testing::{Process, demo_tokens, tokens_in};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_example-ai-chatbot");

#[tokio::test]
async fn a_demo_start_serves_its_tokens_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ai-chatbot.db");
    let args: [&OsStr; 3] = ["--demo".as_ref(), "--db".as_ref(), db.as_os_str()];

    let first = Process::start(BIN, args);
    let demo = demo_tokens(&db);
    assert_eq!(tokens_in(&demo).len(), 3, "admin, agent and a user: {demo}");
    let user = demo["demo"]["token"].as_str().unwrap().to_owned();
    let me = first.get("/users/me", Some(&user)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["username"], "demo");
    for staff in ["admin", "agent"] {
        let token = demo[staff]["token"].as_str().unwrap();
        let me = first.get("/v1/me", Some(token)).await;
        assert_eq!(me.status, 200, "{staff}: {}", me.text);
    }
    let chat = first
        .post("/chats/", Some(&user), json!({ "title": "Trip ideas" }))
        .await;
    assert_eq!(chat.status, 200, "{}", chat.text);
    assert_eq!(first.get("/users/me", None).await.status, 401);
    let tokens = tokens_in(&demo);
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secrets.extend(["admin123", "agent123", "demo123"]);
    first.assert_no_secret_logged(&secrets);
    assert!(first.terminate().success(), "SIGTERM stops it cleanly");

    // `--demo` again: the same user with the same chat, the old token still valid.
    let second = Process::start(BIN, args);
    let chats = second.get("/chats/", Some(&user)).await;
    assert_eq!(chats.status, 200, "{}", chats.text);
    let chats = chats.body.as_array().unwrap();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0]["title"], "Trip ideas");
    second.assert_no_secret_logged(&secrets);
    assert!(second.terminate().success());
}
