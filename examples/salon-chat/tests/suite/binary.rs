//! The binary as an operator runs it: `--demo` on a fresh database, the tokens it writes,
//! SIGTERM, and a second `--demo` start on the same file.

use std::ffi::OsStr;

use chat_server::testing::{Process, demo_tokens, tokens_in};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_example-salon-chat");

#[tokio::test]
async fn a_demo_start_serves_its_tokens_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("salon-chat.db");
    let args: [&OsStr; 3] = ["--demo".as_ref(), "--db".as_ref(), db.as_os_str()];

    let first = Process::start(BIN, args);
    let demo = demo_tokens(&db);
    let tokens = tokens_in(&demo);
    assert!(
        tokens.len() >= 5,
        "staff and customers of two salons: {demo}"
    );
    for (who, login) in demo.as_object().unwrap() {
        // Staff list their salon's chats; customers have their own route.
        let route = if login.get("customer_id").is_some() {
            "/api/v1/chat/chats/customer"
        } else {
            "/api/v1/chat/chats"
        };
        let token = login["token"].as_str().unwrap();
        let chats = first.get(route, Some(token)).await;
        assert_eq!(chats.status, 200, "{who}: {}", chats.text);
    }
    let admin = demo["admin"]["token"].as_str().unwrap().to_owned();
    let posted = first
        .post(
            "/api/v1/chat/chats/1/messages",
            Some(&admin),
            json!({ "content": "Before the restart" }),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    assert_eq!(first.get("/api/v1/chat/chats", None).await.status, 401);
    // The demo password is printed on purpose (the document publishes it); tokens never.
    let secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    first.assert_no_secret_logged(&secrets);
    assert!(first.terminate().success(), "SIGTERM stops it cleanly");

    // `--demo` again: nothing seeded twice, the old tokens still valid, the message kept.
    let second = Process::start(BIN, args);
    let chats = second.get("/api/v1/chat/chats", Some(&admin)).await;
    assert_eq!(chats.body["total"], 1, "{}", chats.text);
    let history = second
        .get("/api/v1/chat/chats/1/messages", Some(&admin))
        .await;
    let messages = history.body["messages"].as_array().unwrap();
    assert_eq!(messages.last().unwrap()["content"], "Before the restart");
    second.assert_no_secret_logged(&secrets);
    assert!(second.terminate().success());
}
