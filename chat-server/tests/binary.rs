//! The `chat-server` binary as an operator runs it: a real process on a temp database,
//! stopped with SIGTERM and started again.

use std::ffi::OsStr;
use std::process::Command;

use chat_server::testing::Process;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Starts the binary on a database in `dir`.
fn start(dir: &std::path::Path, extra: &[&str]) -> Process {
    let db = dir.join("chat.db");
    let mut args = vec![OsStr::new("--db"), db.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    Process::start(env!("CARGO_BIN_EXE_chat-server"), args)
}

/// Calls the server; the status and the JSON body.
async fn call(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_serve_sigterm_and_restart_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let created = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--db"])
        .arg(dir.path().join("chat.db"))
        .args([
            "admin",
            "create",
            "--email",
            "root@acme.example",
            "--password",
            "a long admin password",
        ])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let server = start(dir.path(), &[]);
    let key = dir.path().join("chat-signing.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600,
            "the key is private"
        );
    }
    let (status, login) = call(
        &server,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": "root@acme.example", "password": "a long admin password" })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, opened) = call(
        &server,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "first_message": "hello from before the restart" })),
    )
    .await;
    assert_eq!(status, 201);
    let id = opened["conversation"]["id"].as_str().unwrap().to_owned();

    // A WebSocket open at shutdown is closed cleanly (1001), and the process exits 0.
    let ws_url = server.ws_url(&format!("/v1/ws?access_token={token}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let _hello = ws.next().await;
    server.assert_no_secret_logged(&["a long admin password", &token]);
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let mut closed_with = None;
    while let Some(Ok(frame)) = ws.next().await {
        if let Message::Close(Some(frame)) = frame {
            closed_with = Some(u16::from(frame.code));
        }
    }
    assert_eq!(closed_with, Some(1001));

    // Same key, same data: the old token still works after a restart.
    let server = start(dir.path(), &[]);
    let (status, history) = call(
        &server,
        "GET",
        &format!("/v1/conversations/{id}/messages"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    assert!(
        history
            .to_string()
            .contains("hello from before the restart")
    );
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_seeds_staff_and_the_four_seed_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--demo"]);
    let (status, login) = call(
        &server,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": "agent@demo.example", "password": "demo-password" })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let agent = login["access_token"].as_str().unwrap().to_owned();
    let (_, mine) = call(&server, "GET", "/v1/conversations", Some(&agent), None).await;
    let names: Vec<String> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["mode"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the agent sees its two assigned chats: {mine}"
    );
    let (_, login) = call(
        &server,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": "admin@demo.example", "password": "demo-password" })),
    )
    .await;
    let admin = login["access_token"].as_str().unwrap().to_owned();
    let (_, all) = call(&server, "GET", "/v1/conversations", Some(&admin), None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    assert_eq!(all["counts"], json!({ "agent": 1, "bot": 2, "paused": 1 }));
    assert!(server.terminate().success());
    // Seeding twice does not duplicate.
    let server = start(dir.path(), &["--demo"]);
    let (_, all) = call(&server, "GET", "/v1/conversations", Some(&admin), None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    assert!(server.terminate().success());
}
