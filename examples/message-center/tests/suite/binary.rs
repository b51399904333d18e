//! The binary as an operator runs it: `--demo` on a fresh database, the tokens it writes,
//! SIGTERM, and a second `--demo` start on the same file.

use std::ffi::OsStr;

use chat_server::testing::{Process, demo_tokens, tokens_in};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_example-message-center");

#[tokio::test]
async fn a_demo_start_serves_its_tokens_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("message-center.db");
    let args: [&OsStr; 3] = ["--demo".as_ref(), "--db".as_ref(), db.as_os_str()];

    let first = Process::start(BIN, args);
    let demo = demo_tokens(&db);
    let tokens = tokens_in(&demo);
    assert!(tokens.len() >= 2, "admin and agent: {demo}");
    let admin = demo["admin"]
        .as_str()
        .expect("the admin's token")
        .to_owned();
    for token in &tokens {
        let listed = first.get("/chats/", Some(token)).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
    }
    let chats = first.get("/chats/", Some(&admin)).await;
    assert_eq!(
        chats.body.as_array().unwrap().len(),
        4,
        "the four demo chats"
    );
    // The document's own login works too.
    let login = first
        .post(
            "/auth/login",
            None,
            json!({ "identifier": "admin", "password": "admin123" }),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let logged_in = login.body["access_token"].as_str().unwrap();
    // The demo passwords are printed on purpose (the document publishes them); tokens never.
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    secrets.push(logged_in);
    first.assert_no_secret_logged(&secrets);
    assert!(first.terminate().success(), "SIGTERM stops it cleanly");

    // `--demo` again seeds nothing twice; the old tokens still work.
    let second = Process::start(BIN, args);
    let chats = second.get("/chats/", Some(&admin)).await;
    assert_eq!(chats.status, 200, "{}", chats.text);
    assert_eq!(chats.body.as_array().unwrap().len(), 4, "{}", chats.text);
    second.assert_no_secret_logged(&secrets);
    assert!(second.terminate().success());
}
