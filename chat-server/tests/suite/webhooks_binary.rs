//! Event webhooks survive a crash: the real binary is killed (SIGKILL) with deliveries
//! pending and the receiver down; both start again and every event is delivered at least
//! once, in order per conversation, each signed, and the delivery log says how many
//! attempts each took.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::time::Duration;

use chat_server::testing::Process;
use common::receiver::Receiver;
use serde_json::{Value, json};

const ADMIN: &str = "root@acme.example";
const PASSWORD: &str = "a long admin password";

fn start(dir: &std::path::Path, extra: &[&str]) -> Process {
    let db = dir.join("chat.db");
    let mut args = vec![
        OsStr::new("--db"),
        db.as_os_str(),
        // The receiver is on this machine; retries come fast, and a dead worker's claims
        // lapse after the timeout plus 5 s.
        OsStr::new("--webhooks-allow-private"),
        OsStr::new("--webhooks-retry-base-ms"),
        OsStr::new("100"),
        OsStr::new("--webhooks-timeout-secs"),
        OsStr::new("1"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    Process::start(env!("CARGO_BIN_EXE_chat-server"), args)
}

async fn call(
    server: &Process,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let method = hyper::Method::from_bytes(method.as_bytes()).unwrap();
    let reply = server.json(method, path, token, body).await;
    assert!(
        reply.status.is_success(),
        "{path}: {} {}",
        reply.status,
        reply.text
    );
    reply.body
}

/// Polls the delivery log until `done` holds (the worker has no event to wait on from a
/// test), up to 60 s.
async fn log_until(
    server: &Process,
    token: &str,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = call(
            server,
            "GET",
            &format!("/v1/webhooks/{webhook}/deliveries?limit=200"),
            Some(token),
            None,
        )
        .await;
        let items = log["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery log: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the binary with an admin, signs in and registers a webhook to `url` for
/// `events`: the server, the admin's token, the webhook's id and its secret.
async fn start_with_webhook(
    dir: &std::path::Path,
    url: &str,
    events: &[&str],
) -> (Process, String, String, String) {
    let server = start(dir, &["--admin-email", ADMIN, "--admin-password", PASSWORD]);
    let login = call(
        &server,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": ADMIN, "password": PASSWORD })),
    )
    .await;
    let admin = login["access_token"].as_str().unwrap().to_owned();
    let hook = call(
        &server,
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some(json!({ "url": url, "events": events })),
    )
    .await;
    let webhook = hook["id"].as_str().unwrap().to_owned();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    (server, admin, webhook, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_at_a_sigkill_are_all_made_after_the_restart_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start().await;
    let (server, admin, webhook, secret) = start_with_webhook(
        dir.path(),
        &receiver.url,
        &["conversation_created", "message_created"],
    )
    .await;

    // Three conversations with two customer messages each, delivered while all is well.
    let mut visitors = Vec::new();
    for n in 0..3 {
        let opened = call(
            &server,
            "POST",
            "/v1/conversations",
            None,
            Some(json!({ "contact": { "name": format!("V{n}") } })),
        )
        .await;
        let conversation = opened["conversation"]["id"].as_str().unwrap().to_owned();
        let token = opened["visitor_token"].as_str().unwrap().to_owned();
        for m in 0..2 {
            call(
                &server,
                "POST",
                &format!("/v1/conversations/{conversation}/messages"),
                Some(&token),
                Some(json!({ "body": format!("before {m}") })),
            )
            .await;
        }
        visitors.push((conversation, token));
    }
    receiver
        .wait_for("the first messages", |seen| {
            visitors.iter().all(|(c, _)| {
                seen.iter().any(|r| {
                    r.json["event"]["conversation_id"] == json!(c)
                        && r.json["event"]["payload"]["message"]["body"] == "before 1"
                })
            })
        })
        .await;

    // The receiver goes down; more messages; the server fails to deliver them, then dies.
    receiver.stop().await;
    for (conversation, token) in &visitors {
        for m in 0..3 {
            call(
                &server,
                "POST",
                &format!("/v1/conversations/{conversation}/messages"),
                Some(token),
                Some(json!({ "body": format!("during {m}") })),
            )
            .await;
        }
    }
    log_until(&server, &admin, &webhook, |items| {
        items
            .iter()
            .any(|d| d["state"] == "pending" && d["attempts"].as_u64() >= Some(1))
    })
    .await;
    server.kill();

    // Both back: everything the log holds is delivered.
    receiver.restart().await;
    let server = start(dir.path(), &[]);
    let events = call(
        &server,
        "GET",
        "/v1/events?since=0&limit=1000",
        Some(&admin),
        None,
    )
    .await;
    let expected: Vec<(u64, String)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            ["conversation_created", "message_created"]
                .contains(&e["payload"]["type"].as_str().unwrap())
        })
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["conversation_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(expected.len() >= 3 * (1 + 5), "{} events", expected.len());
    let seen = receiver
        .wait_for("every event after the restart", |seen| {
            let got: HashSet<u64> = seen
                .iter()
                .filter_map(|r| r.json["event"]["seq"].as_u64())
                .collect();
            expected.iter().all(|(seq, _)| got.contains(seq))
        })
        .await;

    // Each signed; in order per conversation, counting first arrivals (a delivery the
    // killed server had sent but not recorded may come twice: receivers dedupe on the id).
    let mut first_arrivals: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut ids = HashSet::new();
    for r in &seen {
        assert!(
            r.signature_is_valid(&secret),
            "{}",
            r.header("x-chat-signature")
        );
        assert_eq!(r.header("x-chat-event-id"), r.json["id"].as_str().unwrap());
        if ids.insert(r.json["id"].as_str().unwrap().to_owned()) {
            let c = r.json["event"]["conversation_id"]
                .as_str()
                .unwrap()
                .to_owned();
            first_arrivals
                .entry(c)
                .or_default()
                .push(r.json["event"]["seq"].as_u64().unwrap());
        }
    }
    for (c, seqs) in &first_arrivals {
        assert!(seqs.is_sorted(), "conversation {c}: {seqs:?}");
    }

    // The log: all delivered; those sent while the receiver was down took several attempts.
    let log = log_until(&server, &admin, &webhook, |items| {
        items.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    assert_eq!(log.len(), expected.len());
    let retried = log
        .iter()
        .filter(|d| d["attempts"].as_u64().unwrap() >= 2)
        .count();
    assert!(retried >= 1, "{log:?}");
    let mut attempts: BTreeMap<u64, usize> = BTreeMap::new();
    for d in &log {
        *attempts.entry(d["attempts"].as_u64().unwrap()).or_default() += 1;
    }
    println!(
        "deliveries by attempts taken: {attempts:?}; requests received: {}",
        seen.len()
    );
    server.assert_no_secret_logged(&[&secret]);
    assert!(server.terminate().success());
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_at_a_sigkill_is_made_again_when_its_claim_lapses() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start().await;
    let (server, admin, webhook, secret) =
        start_with_webhook(dir.path(), &receiver.url, &["conversation_created"]).await;

    // The receiver takes the request in and never answers: the server is mid-attempt,
    // its claim held, when it dies.
    receiver.hang();
    let opened = call(
        &server,
        "POST",
        "/v1/conversations",
        None,
        Some(json!({ "contact": { "name": "V" } })),
    )
    .await;
    let conversation = opened["conversation"]["id"].as_str().unwrap().to_owned();
    let first = receiver
        .wait_for("the attempt in flight", |seen| !seen.is_empty())
        .await;
    let event_id = first[0].json["id"].as_str().unwrap().to_owned();
    server.kill();

    receiver.answer(200);
    let server = start(dir.path(), &[]);
    let seen = receiver
        .wait_for("the same event again, after the claim lapsed", |seen| {
            seen.iter()
                .filter(|r| r.json["id"] == json!(event_id))
                .count()
                >= 2
        })
        .await;
    assert!(seen.iter().all(|r| r.signature_is_valid(&secret)));
    assert_eq!(
        seen[1].json["event"]["conversation_id"],
        json!(conversation)
    );
    let log = log_until(&server, &admin, &webhook, |items| {
        items.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    // The killed attempt was never recorded: the log counts the one that succeeded.
    assert_eq!((log.len(), log[0]["attempts"].clone()), (1, json!(1)));
    assert!(server.terminate().success());
}
