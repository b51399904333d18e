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

#[tokio::test]
async fn a_message_a_crash_left_unanswered_is_answered_at_the_next_start() {
    use std::sync::Arc;

    use chat_core::SilentBot;
    use chat_core::{Actor, OpenConversation, Sender, TenantSettings};
    use chat_starter::Starter;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ai-chatbot.db");
    // What a crash between the stored message and the bot's answer leaves: the user's
    // message in a chat the bot holds, unanswered (a silent bot stands in for the one
    // that died).
    let (system, chat) = {
        let before = Starter::open(
            &db,
            example_ai_chatbot::TENANT,
            TenantSettings::default(),
            |b| b.bot(Arc::new(SilentBot)),
        )
        .await
        .unwrap();
        let system = Actor::System {
            tenant: before.tenant,
        };
        let opening = OpenConversation {
            first_message: Some("hello".into()),
            ..Default::default()
        };
        let opened = before
            .engine
            .open_conversation(&system, opening)
            .await
            .unwrap();
        assert_eq!(opened.messages.len(), 1, "nobody answered");
        (system, opened.conversation.id)
    };

    let server = Process::start(BIN, ["--db".as_ref(), db.as_os_str()]);
    let resumed = server
        .logged("bot turns left by the last run answered")
        .await;
    assert_eq!(resumed["turns"], 1);
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();

    let after = example_ai_chatbot::open(&db, None).await.unwrap();
    let history = after
        .engine
        .messages(&system, chat, Default::default())
        .await
        .unwrap();
    let answers: Vec<_> = history.iter().filter(|m| m.sender == Sender::Bot).collect();
    assert_eq!(answers.len(), 1, "answered once: {history:?}");
    assert_eq!(answers[0].body, "Hello! How can I help you today?");
}
