//! The binary as an operator runs it: `--demo` on a fresh database, the tokens it writes,
//! SIGTERM, and a second `--demo` start on the same file.

use std::ffi::OsStr;

use chat_server::testing::{Process, demo_tokens, tokens_in};

const BIN: &str = env!("CARGO_BIN_EXE_example-live-chat");

#[tokio::test]
async fn a_demo_start_serves_its_tokens_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live-chat.db");
    let args: [&OsStr; 3] = ["--demo".as_ref(), "--db".as_ref(), db.as_os_str()];

    let first = Process::start(BIN, args);
    let demo = demo_tokens(&db);
    let tokens = tokens_in(&demo);
    assert_eq!(tokens.len(), 3, "an admin and two agents: {demo}");
    let session = demo["demoSessionId"].as_str().unwrap().to_owned();
    for token in &tokens {
        let listed = first
            .get("/api/admin/live-chat/sessions", Some(token))
            .await;
        assert_eq!(listed.status, 200, "{}", listed.text);
    }
    let listed = first
        .get("/api/admin/live-chat/sessions", Some(&tokens[0]))
        .await;
    assert_eq!(listed.body["total"], 1, "the demo chat: {}", listed.text);
    // The widget resumes the demo session with the id it was given.
    let resumed = first
        .get(&format!("/api/live-chat/sessions/{session}"), None)
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    assert_eq!(
        first
            .get("/api/admin/live-chat/sessions", None)
            .await
            .status,
        401
    );
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secrets.extend(["admin123", "agent123", &session]);
    first.assert_no_secret_logged(&secrets);
    assert!(first.terminate().success(), "SIGTERM stops it cleanly");

    // `--demo` again: the same demo chat (not a second one), the old tokens still valid.
    let second = Process::start(BIN, args);
    let listed = second
        .get("/api/admin/live-chat/sessions", Some(&tokens[0]))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["total"], 1, "{}", listed.text);
    assert_eq!(demo_tokens(&db)["demoSessionId"], session.as_str());
    second.assert_no_secret_logged(&secrets);
    assert!(second.terminate().success());
}
