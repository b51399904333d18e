//! `chat-server backup --to FILE` beside a running server: a task keeps posting while
//! the copy is taken; the copy is sound, owner-only, and holds every message acknowledged
//! before the backup began.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chat_core::{ConversationId, MessageId, Store, TenantId};
use chat_server::testing::{HttpClient, Process};
use chat_sqlite::SqliteStore;
use hyper::StatusCode;
use serde_json::json;
use tokio::sync::Mutex;

fn backup(db: &std::path::Path, to: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--db")
        .arg(db)
        .arg("backup")
        .arg("--to")
        .arg(to)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_messages_are_posted_holds_every_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let server = Process::start(
        env!("CARGO_BIN_EXE_chat-server"),
        [
            OsStr::new("--db"),
            db.as_os_str(),
            OsStr::new("--bot"),
            OsStr::new("none"),
        ],
    );
    let opened = server
        .post(
            "/v1/conversations",
            None,
            json!({ "contact": { "name": "Poster" } }),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let conversation = opened.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant: TenantId =
        serde_json::from_value(opened.body["conversation"]["tenant_id"].clone()).unwrap();
    let token = opened.body["visitor_token"].as_str().unwrap().to_owned();

    // The poster: one message after another until told to stop (at most 20,000).
    let acknowledged = Arc::new(Mutex::new(Vec::<MessageId>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let poster = {
        let (client, acknowledged, stop) = (
            HttpClient::new(server.addr),
            acknowledged.clone(),
            stop.clone(),
        );
        let path = format!("/v1/conversations/{conversation}/messages");
        tokio::spawn(async move {
            for i in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let reply = client
                    .post(
                        &path,
                        Some(&token),
                        json!({ "body": format!("message {i}") }),
                    )
                    .await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
                let id: MessageId =
                    serde_json::from_value(reply.body["message"]["id"].clone()).unwrap();
                acknowledged.lock().await.push(id);
            }
        })
    };
    // Some messages in, then the backup: what was acknowledged before it began must be in it.
    while acknowledged.lock().await.len() < 100 {
        tokio::task::yield_now().await;
    }
    let before: BTreeSet<MessageId> = acknowledged.lock().await.iter().copied().collect();
    let copy = dir.path().join("copy.db");
    let output = {
        let (db, copy) = (db.clone(), copy.clone());
        tokio::task::spawn_blocking(move || backup(&db, &copy))
            .await
            .unwrap()
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let during = acknowledged.lock().await.len();
    // The poster went on during and after the backup: wait for a few more, then stop it.
    while acknowledged.lock().await.len() < during + 20 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::Relaxed);
    poster.await.unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("backup of"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "the copy holds customers' messages: owner-only"
        );
    }
    let store = SqliteStore::open(&copy).unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
    let conversation: ConversationId = conversation.parse().unwrap();
    let stored = store
        .conversation(tenant, conversation)
        .await
        .unwrap()
        .expect("the conversation is in the copy");
    assert!(stored.last_seq >= before.len() as u64);
    for id in &before {
        let message = store.message(tenant, *id).await.unwrap();
        assert!(
            message.is_some_and(|m| m.conversation_id == conversation),
            "message {id:?} acknowledged before the backup is missing"
        );
    }
    drop(store);

    // A backup never overwrites a file.
    let again = backup(&db, &copy);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(server.terminate().success());
}
