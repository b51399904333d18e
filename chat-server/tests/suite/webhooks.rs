//! Event webhooks over `/v1`: admins register endpoints; every event they follow is posted
//! signed, in order per conversation, and logged; a failing endpoint is retried, then
//! paused with an event for the admins, and resumed; private addresses are refused unless
//! the server allows them.

use crate::common;

use std::time::Duration;

use chat_core::Role;
use common::receiver::{Received, Receiver};
use hyper::StatusCode;
use serde_json::{Value, json};

/// A server whose webhooks may reach this machine (the receiver), retrying fast.
async fn server(pause_after: Duration) -> common::Server {
    common::start_with(|c| {
        c.webhooks.allow_private = true;
        c.webhooks.poll = Duration::from_millis(20);
        c.webhooks.retry.base = Duration::from_millis(20);
        c.webhooks.retry.max = Duration::from_millis(200);
        c.webhooks.retry.pause_after = pause_after;
    })
    .await
}

fn of_kind<'a>(seen: &'a [Received], kind: &str) -> Vec<&'a Received> {
    seen.iter().filter(|r| r.json["type"] == kind).collect()
}

/// Polls `read` (an API call) until `done` holds, up to 60 s: the state it waits for is
/// reached by a background worker, which has no event to wait on from here.
async fn until(
    what: &str,
    mut read: impl AsyncFnMut() -> Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 60 s: {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_a_webhook_and_receives_every_followed_event_signed_in_order() {
    let s = server(Duration::from_secs(3600)).await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let mut receiver = Receiver::start().await;

    // Only admins; bad input is 422 naming the field, and nothing is stored.
    let hook =
        json!({ "url": receiver.url, "events": ["conversation_created", "message_created"] });
    let refused = s.post("/v1/webhooks", Some(&ann.token), hook.clone()).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    for (body, field) in [
        (json!({ "url": "ftp://hooks.example/x" }), "url"),
        (
            json!({ "url": receiver.url, "events": ["mentioned"] }),
            "events",
        ),
        (json!({ "url": receiver.url, "secret": "short" }), "secret"),
    ] {
        let bad = s.post("/v1/webhooks", Some(&admin.token), body).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert_eq!(bad.body["error"]["field"], field, "{}", bad.text);
    }
    assert_eq!(
        s.get("/v1/webhooks", Some(&admin.token)).await.body["items"],
        json!([])
    );

    let created = s.post("/v1/webhooks", Some(&admin.token), hook).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 32);
    let listed = s.get("/v1/webhooks", Some(&admin.token)).await;
    assert_eq!(listed.body["items"][0]["id"], json!(id));
    assert!(!listed.text.contains(&secret), "the secret is shown once");
    assert!(
        !s.get(&format!("/v1/webhooks/{id}"), Some(&admin.token))
            .await
            .text
            .contains(&secret)
    );
    assert_eq!(
        s.get(&format!("/v1/webhooks/{id}"), Some(&ann.token))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Two conversations, three messages each.
    let mut conversations = Vec::new();
    for n in 0..2 {
        let (conversation, visitor) = s.visitor(&format!("v{n}@shop.example")).await;
        for m in 0..3 {
            let posted = s
                .post(
                    &format!("/v1/conversations/{conversation}/messages"),
                    Some(&visitor),
                    json!({ "body": format!("message {m} of {n}") }),
                )
                .await;
            assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
        }
        conversations.push(conversation);
    }
    receiver
        .wait_for("the last customer message", |seen| {
            seen.iter()
                .any(|r| r.json["event"]["payload"]["message"]["body"] == "message 2 of 1")
        })
        .await;

    // The log as the admin sees it: every followed event of the two conversations.
    let log = s
        .get("/v1/events?since=0&limit=1000", Some(&admin.token))
        .await;
    let expected: Vec<u64> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            ["conversation_created", "message_created"]
                .contains(&e["payload"]["type"].as_str().unwrap())
        })
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let seen = receiver
        .wait_for("every followed event", |seen| {
            expected
                .iter()
                .all(|seq| seen.iter().any(|r| r.json["event"]["seq"] == json!(seq)))
        })
        .await;
    for r in &seen {
        assert!(
            r.signature_is_valid(&secret),
            "signed: {}",
            r.header("x-chat-signature")
        );
        assert!(!r.signature_is_valid("another-secret-entirely"));
        let event_id = r.json["id"].as_str().unwrap();
        assert_eq!(r.header("x-chat-event-id"), event_id);
        assert_eq!(r.header("idempotency-key"), event_id);
        assert_eq!(event_id, format!("{}.{}", s.tenant, r.json["event"]["seq"]));
        assert_eq!(r.header("x-chat-event"), r.json["type"].as_str().unwrap());
        assert_eq!(r.header("content-type"), "application/json");
        assert!(
            ["conversation_created", "message_created"].contains(&r.json["type"].as_str().unwrap())
        );
        assert_eq!(r.json["event"]["payload"]["type"], r.json["type"]);
    }
    assert!(
        of_kind(&seen, "conversation_updated").is_empty(),
        "only the followed kinds"
    );
    // In order per conversation.
    for c in &conversations {
        let seqs: Vec<u64> = seen
            .iter()
            .filter(|r| r.json["event"]["conversation_id"] == json!(c))
            .map(|r| r.json["event"]["seq"].as_u64().unwrap())
            .collect();
        assert!(seqs.len() >= 4, "{seqs:?}");
        assert!(seqs.is_sorted(), "conversation {c}: {seqs:?}");
    }

    // The delivery log: each delivered at the first attempt, with its time.
    let deliveries = until(
        "every delivery recorded",
        async || {
            s.get(
                &format!("/v1/webhooks/{id}/deliveries?limit=200"),
                Some(&admin.token),
            )
            .await
            .body
        },
        |log| {
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["state"] == "delivered")
        },
    )
    .await;
    let items = deliveries["items"].as_array().unwrap();
    assert_eq!(items.len(), expected.len());
    for d in items {
        assert_eq!(
            (
                d["attempts"].clone(),
                d["last_status"].clone(),
                d["last_error"].clone()
            ),
            (json!(1), json!(200), Value::Null)
        );
        assert!(d["response_ms"].is_u64() && d["delivered_at"].is_string());
    }
    assert_eq!(
        s.get(&format!("/v1/webhooks/{id}/deliveries"), Some(&ann.token))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // A manual redelivery sends the same event, with the same id, again.
    let first = &items[items.len() - 1];
    let seq = first["seq"].as_u64().unwrap();
    let again = s
        .post(
            &format!("/v1/webhooks/{id}/deliveries/{seq}/redeliver"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    let event_id = format!("{}.{seq}", s.tenant);
    receiver
        .wait_for("the redelivery", |seen| {
            seen.iter()
                .filter(|r| r.json["id"] == json!(event_id))
                .count()
                == 2
        })
        .await;
    let missing = s
        .post(
            &format!("/v1/webhooks/{id}/deliveries/999999/redeliver"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Deleted: nothing more is sent or listed.
    assert_eq!(
        s.delete(&format!("/v1/webhooks/{id}"), Some(&admin.token))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/v1/webhooks/{id}"), Some(&admin.token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    receiver.stop().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_is_retried_then_paused_and_admins_are_told_until_resumed() {
    let s = server(Duration::from_millis(300)).await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let mut receiver = Receiver::start().await;
    receiver.answer(503);
    let created = s
        .post(
            "/v1/webhooks",
            Some(&admin.token),
            json!({ "url": receiver.url, "secret": "a-secret-of-ours-1234" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["secret"], "a-secret-of-ours-1234");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let (conversation, _) = s.visitor("v@shop.example").await;

    let paused = until(
        "the webhook paused",
        async || {
            s.get(&format!("/v1/webhooks/{id}"), Some(&admin.token))
                .await
                .body
        },
        |w| w["state"] == "paused",
    )
    .await;
    assert!(paused["failing_since"].is_string());
    let seen = receiver.seen();
    let first_id = seen[0].json["id"].clone();
    assert!(
        seen.iter().filter(|r| r.json["id"] == first_id).count() >= 2,
        "retried before pausing"
    );
    let attempts: Vec<&str> = seen
        .iter()
        .filter(|r| r.json["id"] == first_id)
        .map(|r| r.header("x-chat-delivery-attempt"))
        .collect();
    assert_eq!(&attempts[..2], ["1", "2"]);
    let log = s
        .get(&format!("/v1/webhooks/{id}/deliveries"), Some(&admin.token))
        .await;
    let oldest = log.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (
            oldest["state"].clone(),
            oldest["last_status"].clone(),
            oldest["last_error"].clone()
        ),
        (json!("pending"), json!(503), json!("HTTP 503"))
    );
    assert!(oldest["attempts"].as_u64().unwrap() >= 2);

    // The admins are told; an agent's log does not show it.
    let told = async |token: &str| {
        s.get("/v1/events?since=0&limit=1000", Some(token))
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| {
                e["payload"]["type"] == "webhook_paused" && e["payload"]["webhook_id"] == json!(id)
            })
    };
    assert!(told(&admin.token).await);
    assert!(!told(&ann.token).await);

    // Paused: nothing is attempted, even when the endpoint is back.
    receiver.answer(200);
    let before = receiver.seen().len();
    let resumed = s
        .patch(
            &format!("/v1/webhooks/{id}"),
            Some(&admin.token),
            json!({ "state": "active" }),
        )
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text);
    assert_eq!(
        (
            resumed.body["state"].clone(),
            resumed.body["failing_since"].clone()
        ),
        (json!("active"), Value::Null)
    );
    let seen = receiver
        .wait_for("the held deliveries, after the resume", |seen| {
            seen[before..]
                .iter()
                .any(|r| r.json["type"] == "webhook_paused")
                && seen[before..].iter().any(|r| r.json["id"] == first_id)
        })
        .await;
    assert!(
        seen.iter()
            .all(|r| r.signature_is_valid("a-secret-of-ours-1234"))
    );
    let created_event = seen
        .iter()
        .find(|r| r.json["type"] == "conversation_created")
        .unwrap();
    assert_eq!(
        created_event.json["event"]["conversation_id"],
        json!(conversation)
    );
    receiver.stop().await;
    s.stop().await;
}

/// A desk that has been posting without a webhook (SQLite's writer then skips the outbox
/// for its events) gets the next message at a webhook an admin adds while the server
/// runs, none from before it, and again at a second webhook added after the first is
/// deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_added_while_the_desk_posts_gets_the_next_messages() {
    let s = server(Duration::from_secs(3600)).await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let receiver = Receiver::start().await;
    let (conversation, visitor) = s.visitor("early@shop.example").await;
    let post = async |body: &str| {
        let posted = s
            .post(
                &format!("/v1/conversations/{conversation}/messages"),
                Some(&visitor),
                json!({ "body": body }),
            )
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    };
    let body_of = |r: &Received| r.json["event"]["payload"]["message"]["body"].clone();
    post("before any webhook").await;

    let hook = json!({ "url": receiver.url, "events": ["message_created"] });
    let created = s
        .post("/v1/webhooks", Some(&admin.token), hook.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    post("after the first webhook").await;
    receiver
        .wait_for("the message after the first webhook", |seen| {
            seen.iter().any(|r| body_of(r) == "after the first webhook")
        })
        .await;

    let deleted = s
        .delete(&format!("/v1/webhooks/{id}"), Some(&admin.token))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    post("with no webhook").await;
    let created = s.post("/v1/webhooks", Some(&admin.token), hook).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    post("after the second webhook").await;
    let seen = receiver
        .wait_for("the message after the second webhook", |seen| {
            seen.iter()
                .any(|r| body_of(r) == "after the second webhook")
        })
        .await;
    // The bot's answers are messages too, and one may be committed at any point after
    // the message it answers (a busy machine): only the visitor's posts are counted.
    let posted = [
        "before any webhook",
        "after the first webhook",
        "with no webhook",
        "after the second webhook",
    ];
    let bodies: Vec<_> = seen
        .iter()
        .map(body_of)
        .filter(|b| posted.iter().any(|p| b == p))
        .collect();
    assert_eq!(
        bodies,
        [
            json!("after the first webhook"),
            json!("after the second webhook")
        ],
        "only the messages posted while a webhook was registered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_loopback_addresses_are_refused_unless_the_server_allows_them() {
    let s = common::start().await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest",
        "http://[::1]:9/",
    ] {
        let refused = s
            .post("/v1/webhooks", Some(&admin.token), json!({ "url": url }))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            refused.text
        );
        assert_eq!(refused.body["error"]["field"], "url");
    }
    assert_eq!(
        s.get("/v1/webhooks", Some(&admin.token)).await.body["items"],
        json!([])
    );
    s.stop().await;
}
