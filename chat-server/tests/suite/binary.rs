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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_the_bot_never_answered_are_answered_once_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Without a bot, visitors' messages stay unanswered in `bot` mode: what a crash
    // between the stored message and the bot's answer leaves.
    let server = start(dir.path(), &["--bot", "none"]);
    let mut visitors = Vec::new();
    for n in 0..2 {
        let (status, opened) =
            call(&server, "POST", "/v1/conversations", None, Some(json!({}))).await;
        assert_eq!(status, 201, "{opened}");
        let id = opened["conversation"]["id"].as_str().unwrap().to_owned();
        let token = opened["visitor_token"].as_str().unwrap().to_owned();
        let path = format!("/v1/conversations/{id}/messages");
        let hello = json!({ "body": "hello", "client_message_id": format!("hello-{n}") });
        let (status, posted) = call(&server, "POST", &path, Some(&token), Some(hello)).await;
        assert_eq!(status, 201, "{posted}");
        assert_eq!(posted["replies"], json!([]), "nobody answered");
        visitors.push((path, token));
    }
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();

    // The rule bot (the default) answers both at start, while the listener serves.
    let server = start(dir.path(), &[]);
    let resumed = server
        .logged("bot turns left by the last run answered")
        .await;
    assert_eq!(resumed["turns"], 2);
    let bot_answers = |history: &Value| -> Vec<Value> {
        history["items"]
            .as_array()
            .expect("a page of messages")
            .iter()
            .filter(|m| m["sender"]["type"] == "bot")
            .cloned()
            .collect()
    };
    let mut answers = Vec::new();
    for (path, token) in &visitors {
        let (status, history) = call(&server, "GET", path, Some(token), None).await;
        assert_eq!(status, 200, "{history}");
        let answered = bot_answers(&history);
        assert_eq!(answered.len(), 1, "one answer: {history}");
        assert_eq!(answered[0]["body"], "Hello! How can I help you today?");
        answers.push(answered[0]["id"].clone());
    }
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();

    // Started once more, the clients retry: they get the answer given, and no other.
    let server = start(dir.path(), &[]);
    for (n, (path, token)) in visitors.iter().enumerate() {
        let hello = json!({ "body": "hello", "client_message_id": format!("hello-{n}") });
        let (status, retried) = call(&server, "POST", path, Some(token), Some(hello)).await;
        assert_eq!(status, 200, "{retried}");
        assert_eq!(retried["created"], false);
        assert_eq!(retried["replies"].as_array().unwrap().len(), 1, "{retried}");
        assert_eq!(retried["replies"][0]["id"], answers[n]);
        let (_, history) = call(&server, "GET", path, Some(token), None).await;
        assert_eq!(
            bot_answers(&history).len(),
            1,
            "still one answer: {history}"
        );
    }
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_set_the_settings_of_a_new_tenant_and_switch_timers_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--admin-email",
            "root@acme.example",
            "--admin-password",
            "a long admin password",
            "--requeue-after-secs",
            "90",
            "--close-inactive-after-secs",
            "1800",
            "--bot-enabled",
            "false",
            "--welcome-message",
            "Welcome to Acme",
        ],
    );
    let (status, login) = call(
        &server,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": "root@acme.example", "password": "a long admin password" })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap();
    let (status, settings) = call(&server, "GET", "/v1/settings", Some(token), None).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["requeue_after_secs"], json!(90));
    assert_eq!(settings["close_inactive_after_secs"], json!(1800));
    assert_eq!(settings["bot_enabled"], json!(false));
    assert_eq!(settings["welcome_message"], json!("Welcome to Acme"));
    assert!(server.terminate().success());

    // A flag the engine would refuse stops the start and names the setting.
    let refused = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--db")
        .arg(dir.path().join("other.db"))
        .args(["--default-capacity", "0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("default_capacity"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// The threads of tokio's runtime in process `pid`: its async workers and its blocking
/// pool, all named `tokio-rt-worker`.
fn runtime_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "tokio-rt-worker")
        .count()
}

/// Blocking work of many requests at once (file downloads, SQLite reads) waits for one of
/// `--max-blocking-threads` rather than starting a thread each: the process's threads
/// stay within the async workers and the bound, however many requests come at once.
/// (With the bound at 4096 instead: 33 and 19 runtime threads in two runs here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_blocking_work_starts_no_more_threads_than_the_bound() {
    const BOUND: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--max-blocking-threads",
            "4",
            "--bot",
            "none",
            "--rate-per-ip",
            "1000000",
            "--rate-per-token",
            "1000000",
            "--rate-burst",
            "1000000",
            "--max-connections-per-ip",
            "0",
        ],
    );
    let (status, opened) = call(&server, "POST", "/v1/conversations", None, Some(json!({}))).await;
    assert_eq!(status, 201, "{opened}");
    let id = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let token = opened["visitor_token"].as_str().unwrap().to_owned();
    let (form, body) = chat_server::testing::multipart(
        &[],
        &[(
            "file",
            "receipt.txt",
            "text/plain",
            "order 1042, paid\n".repeat(4096).as_bytes(),
        )],
    );
    let uploaded = server
        .send_as(
            hyper::Method::POST,
            &format!("/v1/conversations/{id}/files"),
            Some(&token),
            &[("content-type", form.as_str())],
            body,
        )
        .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text);
    let key = uploaded.body["items"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // The async workers: one per core unless told otherwise.
    let workers = std::thread::available_parallelism().unwrap().get();
    let mut most = 0;
    for _ in 0..10 {
        let clients: Vec<_> = (0..64)
            .map(|i| {
                let client = chat_server::testing::HttpClient::new(server.addr);
                let path = match i % 2 {
                    0 => format!("/v1/conversations/{id}/files/{key}"),
                    _ => format!("/v1/conversations/{id}/messages"),
                };
                let token = token.clone();
                tokio::spawn(async move { client.get(&path, Some(&token)).await.status })
            })
            .collect();
        for client in clients {
            assert_eq!(client.await.unwrap(), 200);
        }
        // Idle blocking threads live on for 10 s: those the burst started are all here.
        most = most.max(runtime_threads(server.id()));
    }
    assert!(
        most <= workers + BOUND,
        "{most} runtime threads, over {workers} workers and {BOUND} blocking"
    );
    assert!(server.terminate().success());
}
