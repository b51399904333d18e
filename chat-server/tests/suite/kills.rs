//! Durability through the server: the binary is killed with SIGKILL while visitors post
//! over HTTP, twenty times, and after each restart every message that was answered 2xx is
//! there, exactly once. A post whose answer never came is retried with its
//! `client_message_id` after the restart, as a widget would, and is then stored once too.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chat_server::testing::{HttpClient, Process};
use hyper::Method;
use serde_json::{Value, json};

const ROUNDS: usize = 20;
const WRITERS: usize = 4;
/// Posts acknowledged in a round before the kill: enough that the kill lands among
/// writes in flight, few enough that twenty rounds stay quick in a debug build.
const ACKED_BEFORE_KILL: usize = 24;

/// The binary on a database in `dir`, with the bot off (only the visitors' own messages
/// are written) and rate limits out of the way of a tight posting loop.
fn start(dir: &std::path::Path) -> Process {
    let db = dir.join("chat.db");
    let args: Vec<&OsStr> = vec![
        OsStr::new("--db"),
        db.as_os_str(),
        OsStr::new("--bot"),
        OsStr::new("none"),
        OsStr::new("--rate-per-ip"),
        OsStr::new("1000000"),
        OsStr::new("--rate-per-token"),
        OsStr::new("1000000"),
        OsStr::new("--rate-burst"),
        OsStr::new("1000000"),
    ];
    Process::start(env!("CARGO_BIN_EXE_chat-server"), args)
}

/// One visitor: its conversation, its token, what the server acknowledged, and the
/// message whose answer was lost to a kill.
struct Writer {
    path: String,
    token: String,
    next: usize,
    acked: Vec<usize>,
    in_doubt: Option<usize>,
}

fn message(n: usize) -> (String, Value) {
    let id = format!("m{n}");
    let body = json!({ "body": format!("message {n}"), "client_message_id": id });
    (id, body)
}

async fn post(client: &HttpClient, writer: &Writer, n: usize) -> Result<u16, String> {
    let (_, body) = message(n);
    let bearer = format!("Bearer {}", writer.token);
    let reply = client
        .try_send(
            Method::POST,
            &writer.path,
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            body.to_string(),
        )
        .await?;
    Ok(reply.status.as_u16())
}

/// Posts until the server stops answering; returns the writer with what it learnt.
async fn write_until_killed(
    client: Arc<HttpClient>,
    mut writer: Writer,
    acked_this_round: Arc<AtomicUsize>,
    enough: Arc<tokio::sync::Notify>,
) -> Writer {
    loop {
        let n = writer.next;
        match post(&client, &writer, n).await {
            Ok(200 | 201) => {
                writer.acked.push(n);
                writer.next += 1;
                if acked_this_round.fetch_add(1, Ordering::SeqCst) + 1 == ACKED_BEFORE_KILL {
                    enough.notify_one();
                }
            }
            Ok(status) => panic!("a post answered {status} before the kill"),
            Err(_) => {
                // Killed before answering: stored or not, nobody knows yet.
                writer.in_doubt = Some(n);
                writer.next += 1;
                return writer;
            }
        }
    }
}

/// Every visitor message of the conversation, oldest first, paging by sequence.
async fn history(client: &HttpClient, writer: &Writer) -> Vec<String> {
    let mut after = 0u64;
    let mut ids = Vec::new();
    loop {
        let page = client
            .get(
                &format!("{}?after={after}&limit=100", writer.path),
                Some(&writer.token),
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let items = page.body["items"].as_array().expect("a page").clone();
        if items.is_empty() {
            return ids;
        }
        for m in &items {
            after = after.max(m["seq"].as_u64().expect("a sequence"));
            if m["sender"]["type"] == "customer"
                && let Some(id) = m["client_message_id"].as_str()
            {
                ids.push(id.to_owned());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_post_survives_twenty_kills_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let opened = server
            .post("/v1/conversations", None, json!({ "title": "kills" }))
            .await;
        assert_eq!(opened.status, 201, "{}", opened.text);
        writers.push(Writer {
            path: format!(
                "/v1/conversations/{}/messages",
                opened.body["conversation"]["id"].as_str().unwrap()
            ),
            token: opened.body["visitor_token"].as_str().unwrap().to_owned(),
            next: 0,
            acked: Vec::new(),
            in_doubt: None,
        });
    }
    let mut in_doubt_stored = 0;
    for round in 0..ROUNDS {
        let client = Arc::new(HttpClient::new(server.addr));
        let acked_this_round = Arc::new(AtomicUsize::new(0));
        let enough = Arc::new(tokio::sync::Notify::new());
        let tasks: Vec<_> = writers
            .drain(..)
            .map(|w| {
                tokio::spawn(write_until_killed(
                    client.clone(),
                    w,
                    acked_this_round.clone(),
                    enough.clone(),
                ))
            })
            .collect();
        // `notify_one` keeps a permit, so a count reached before this wait still wakes it.
        enough.notified().await;
        tokio::task::spawn_blocking(move || server.kill())
            .await
            .unwrap();
        for task in tasks {
            writers.push(task.await.unwrap());
        }

        server = start(dir.path());
        let client = HttpClient::new(server.addr);
        for writer in &mut writers {
            // The retry a client makes of a post it never heard back about: 200 if the
            // killed server had stored it, 201 if not; one copy either way.
            if let Some(n) = writer.in_doubt.take() {
                match post(&client, writer, n).await {
                    Ok(200) => in_doubt_stored += 1,
                    Ok(201) => {}
                    other => panic!("round {round}: retry of m{n} answered {other:?}"),
                }
                writer.acked.push(n);
            }
            let stored = history(&client, writer).await;
            let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
            for id in &stored {
                *copies.entry(id.as_str()).or_default() += 1;
            }
            let twice: Vec<_> = copies.iter().filter(|(_, c)| **c > 1).collect();
            assert!(twice.is_empty(), "round {round}: stored twice: {twice:?}");
            for n in &writer.acked {
                let (id, _) = message(*n);
                assert!(
                    copies.contains_key(id.as_str()),
                    "round {round}: acknowledged {id} is gone ({} stored)",
                    stored.len()
                );
            }
            assert_eq!(
                stored.len(),
                writer.acked.len(),
                "round {round}: only what was acknowledged or retried is stored"
            );
        }
    }
    let total: usize = writers.iter().map(|w| w.acked.len()).sum();
    assert!(total >= ROUNDS * ACKED_BEFORE_KILL);
    eprintln!(
        "{ROUNDS} kills, {total} messages acknowledged and kept, {in_doubt_stored} of the posts cut off by a kill had been stored"
    );
    assert!(server.terminate().success());
}
