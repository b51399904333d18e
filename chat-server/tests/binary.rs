//! The `chat-server` binary as an operator runs it: a real process on a temp database,
//! stopped with SIGTERM and started again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Running {
    child: Child,
    base: String,
}

/// Starts the binary and waits for its "listening" log line to learn the port.
fn start(dir: &std::path::Path, extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("chat.db"))
        .args(extra)
        .env("RUST_LOG", "info")
        .env("CHAT_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server logs before exiting")
            .unwrap();
        assert!(
            !line.contains("\"password\"") || line.contains("demo-password"),
            "no secret in logs: {line}"
        );
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["fields"]["message"] == "chat-server listening"
        {
            break v["fields"]["address"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        base: format!("http://{address}"),
    }
}

fn terminate(mut r: Running) -> std::process::ExitStatus {
    let pid = r.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    for _ in 0..100 {
        if let Some(status) = r.child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    r.child.kill().unwrap();
    panic!("the server did not stop within 5 s of SIGTERM");
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            bytes::Bytes::from(b.to_string())
        }
        None => bytes::Bytes::new(),
    };
    let response = client
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
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
        &server.base,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": "root@acme.example", "password": "a long admin password" })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (status, opened) = call(
        &server.base,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "first_message": "hello from before the restart" })),
    )
    .await;
    assert_eq!(status, 201);
    let id = opened["conversation"]["id"].as_str().unwrap().to_owned();

    // A WebSocket open at shutdown is closed cleanly (1001), and the process exits 0.
    let ws_url = format!(
        "{}/v1/ws?access_token={token}",
        server.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let _hello = ws.next().await;
    let status = tokio::task::spawn_blocking(move || terminate(server))
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
        &server.base,
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
    terminate(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_seeds_staff_and_the_four_seed_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--demo"]);
    let (status, login) = call(
        &server.base,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": "agent@demo.example", "password": "demo-password" })),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let agent = login["access_token"].as_str().unwrap().to_owned();
    let (_, mine) = call(&server.base, "GET", "/v1/conversations", Some(&agent), None).await;
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
        &server.base,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": "admin@demo.example", "password": "demo-password" })),
    )
    .await;
    let admin = login["access_token"].as_str().unwrap().to_owned();
    let (_, all) = call(&server.base, "GET", "/v1/conversations", Some(&admin), None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    assert_eq!(all["counts"], json!({ "agent": 1, "bot": 2, "paused": 1 }));
    terminate(server);
    // Seeding twice does not duplicate.
    let server = start(dir.path(), &["--demo"]);
    let (_, all) = call(&server.base, "GET", "/v1/conversations", Some(&admin), None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    terminate(server);
}
