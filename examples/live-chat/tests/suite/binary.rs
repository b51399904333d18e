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
    // The document's widget, with its own id: its session token never reaches the log.
    let widget = first
        .post(
            "/api/live-chat/sessions",
            None,
            serde_json::json!({
                "sessionId": "session-1701691234567-abc123xyz",
                "user": { "name": "Ann Lee", "email": "ann@example.com" },
            }),
        )
        .await;
    assert_eq!(widget.status, 201, "{}", widget.text);
    let visitor = widget.body["data"]["token"].as_str().unwrap().to_owned();
    let cookie = widget.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains(&visitor), "the cookie holds the same token");
    let mine = first
        .get(
            "/api/live-chat/sessions/session-1701691234567-abc123xyz",
            Some(&visitor),
        )
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secrets.extend(["admin123", "agent123", &session, &visitor]);
    first.assert_no_secret_logged(&secrets);
    assert!(first.terminate().success(), "SIGTERM stops it cleanly");

    // `--demo` again: the same demo chat (not a second one; the other is the widget's),
    // the old tokens still valid.
    let second = Process::start(BIN, args);
    let listed = second
        .get("/api/admin/live-chat/sessions", Some(&tokens[0]))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["total"], 2, "{}", listed.text);
    assert_eq!(demo_tokens(&db)["demoSessionId"], session.as_str());
    // The widget's id and token outlive the restart.
    let mine = second
        .get(
            "/api/live-chat/sessions/session-1701691234567-abc123xyz",
            Some(&visitor),
        )
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    second.assert_no_secret_logged(&secrets);
    assert!(second.terminate().success());
}
