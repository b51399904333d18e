//! The Telegram channel against a local Bot API that speaks Telegram's documented wire
//! format: creating the inbox registers its webhook (`setWebhook` with a `secret_token`);
//! Updates posted with that secret open or continue the chat's conversation through the
//! bot and the queue; the bot's and the agent's replies (never notes) go out by
//! `sendMessage`, retried when Telegram refuses; a wrong secret or a malformed Update is
//! refused with nothing stored.

mod common;

use std::time::Duration;

use chat_core::Role;
use common::telegram::BotApi;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

const BOT_TOKEN: &str = "123456:AAE-test_token";

fn update(id: i64, message_id: i64, text: &str) -> Value {
    json!({
        "update_id": id,
        "message": {
            "message_id": message_id,
            "from": { "id": 4242, "is_bot": false, "first_name": "Jo", "last_name": "Chat", "language_code": "en" },
            "chat": { "id": 4242, "first_name": "Jo", "type": "private" },
            "date": 1_700_000_000,
            "text": text
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_updates_reach_the_desk_and_replies_go_out_by_send_message() {
    let s = common::start_with(|c| {
        c.webhooks.allow_private = true;
        c.webhooks.poll = Duration::from_millis(20);
        c.webhooks.retry.base = Duration::from_millis(20);
        c.webhooks.retry.max = Duration::from_millis(200);
    })
    .await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let api = BotApi::start(BOT_TOKEN).await;

    // A malformed token is 422; a token Telegram refuses fails setWebhook: 422 on
    // public_url, and no inbox (nor its webhook) is kept.
    let bad = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Bot", "kind": "telegram", "bot_token": "not a token", "api_url": api.url }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.body["error"]["field"], "bot_token");
    let refused = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Bot", "kind": "telegram", "bot_token": "999:wrong", "api_url": api.url, "public_url": s.base }),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.body["error"]["field"], "public_url");
    assert!(refused.text.contains("Unauthorized"), "{}", refused.text);
    assert!(
        !refused.text.contains("999:wrong"),
        "the bot token is never answered"
    );
    assert_eq!(
        s.get("/v1/inboxes", Some(&admin.token)).await.body["items"],
        json!([])
    );
    assert_eq!(
        s.get("/v1/webhooks", Some(&admin.token)).await.body["items"],
        json!([])
    );

    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Support bot", "kind": "telegram", "bot_token": BOT_TOKEN, "api_url": api.url, "public_url": s.base }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["channel"], "telegram");
    let inbox = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["token"].as_str().unwrap().to_owned();
    assert!(
        !created.text.contains(BOT_TOKEN),
        "the bot token is never answered"
    );
    for listed in [
        s.get("/v1/inboxes", Some(&admin.token)).await,
        s.get("/v1/webhooks", Some(&admin.token)).await,
    ] {
        assert!(!listed.text.contains(BOT_TOKEN) && !listed.text.contains(&secret));
    }
    let path = format!("/v1/inboxes/{inbox}/telegram");
    let registered = api.calls("setWebhook");
    assert_eq!(registered.len(), 1, "{registered:?}");
    assert_eq!(
        registered[0].json["url"],
        json!(format!("{}{path}", s.base))
    );
    assert_eq!(registered[0].json["secret_token"], json!(secret));

    let post = |body: Value, secret: Option<String>| {
        let path = path.clone();
        let s = &s;
        async move {
            let headers: Vec<(&str, &str)> = match &secret {
                Some(v) => vec![
                    ("content-type", "application/json"),
                    ("x-telegram-bot-api-secret-token", v.as_str()),
                ],
                None => vec![("content-type", "application/json")],
            };
            s.send_as(Method::POST, &path, None, &headers, body.to_string())
                .await
        }
    };

    // A wrong or missing secret, or a malformed Update: refused, nothing stored.
    let wrong = post(update(1, 1, "hello"), Some("inbox_wrong".into())).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    let missing = post(update(1, 1, "hello"), None).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN, "{}", missing.text);
    for body in [
        json!({ "message": { "message_id": 1 } }),
        json!({ "update_id": 1, "message": { "message_id": 1, "text": "no chat" } }),
        json!({ "update_id": "one" }),
    ] {
        let bad = post(body.clone(), Some(secret.clone())).await;
        assert!(
            bad.status == StatusCode::UNPROCESSABLE_ENTITY || bad.status == StatusCode::BAD_REQUEST,
            "{body}: {}",
            bad.text
        );
    }
    assert_eq!(
        s.get("/v1/conversations", Some(&admin.token)).await.body["items"],
        json!([])
    );

    // The first message opens the chat's conversation; the bot answers by sendMessage.
    let first = post(update(1, 10, "hello"), Some(secret.clone())).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["stored"], true);
    let conversation = first.body["conversation_id"].as_str().unwrap().to_owned();
    // Telegram redelivers an update it got no answer for: stored once.
    let again = post(update(1, 10, "hello"), Some(secret.clone())).await;
    assert_eq!(again.body["message_id"], first.body["message_id"]);
    let shown = s
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(shown.body["channel"], "telegram", "{}", shown.text);
    let history = s
        .get(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&admin.token),
        )
        .await;
    let customer: Vec<&Value> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender"]["type"] == "customer" || m["sender"] == "customer")
        .collect();
    assert_eq!(customer.len(), 1, "{}", history.text);
    api.wait_for("the bot's greeting", |calls| {
        calls.iter().any(|c| {
            c.method == "sendMessage" && c.json["text"] == "Hello! How can I help you today?"
        })
    })
    .await;

    // A sticker (no text) is acknowledged and not stored.
    let sticker = post(
        json!({ "update_id": 2, "message": { "message_id": 11, "chat": { "id": 4242, "type": "private" }, "date": 1, "sticker": { "file_id": "x" } } }),
        Some(secret.clone()),
    )
    .await;
    assert_eq!(sticker.status, StatusCode::OK, "{}", sticker.text);
    assert_eq!(sticker.body["stored"], false);

    // The customer asks for a human; Ann claims and answers; her note stays on the desk.
    let human = post(update(3, 12, "I want a human"), Some(secret.clone())).await;
    assert_eq!(human.body["conversation_id"], json!(conversation));
    let claimed = s
        .post(
            &format!("/v1/conversations/{conversation}/claim"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);
    // The bot's handoff notice goes out first (its delivery precedes Ann's answers).
    api.wait_for("the bot's handoff notice", |calls| {
        calls.iter().any(|c| {
            c.json["text"]
                .as_str()
                .is_some_and(|t| t.contains("human agent"))
        })
    })
    .await;
    // Telegram refuses the first attempt of Ann's first answer: it is retried.
    api.fail_next("sendMessage", 1, 429, "Too Many Requests: retry after 1");
    for (route, body) in [
        ("messages", "Hi Jo, Ann here."),
        ("notes", "internal: VIP customer"),
        ("messages", "Your order ships today."),
    ] {
        let posted = s
            .post(
                &format!("/v1/conversations/{conversation}/{route}"),
                Some(&ann.token),
                json!({ "body": body }),
            )
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    }
    let calls = api
        .wait_for("Ann's second answer", |calls| {
            calls
                .iter()
                .any(|c| c.json["text"] == "Your order ships today.")
        })
        .await;
    let sent: Vec<&str> = calls
        .iter()
        .filter(|c| c.method == "sendMessage")
        .map(|c| c.json["text"].as_str().unwrap())
        .collect();
    // The refused attempt and its retry, then the second answer: in order, the note never.
    let ann_sent: Vec<&str> = sent
        .iter()
        .copied()
        .filter(|t| t.contains("Ann here") || t.contains("ships today"))
        .collect();
    assert_eq!(
        ann_sent,
        [
            "Hi Jo, Ann here.",
            "Hi Jo, Ann here.",
            "Your order ships today."
        ]
    );
    assert!(!sent.iter().any(|t| t.contains("internal")), "{sent:?}");
    assert!(
        !sent.iter().any(|t| t.contains("I want a human")),
        "{sent:?}"
    );
    for c in calls.iter().filter(|c| c.method == "sendMessage") {
        assert_eq!(c.json["chat_id"], 4242);
    }
    // The delivery log says what Telegram answered and how many attempts it took.
    let webhook = created.body["webhook_id"].as_str().unwrap();
    // (Telegram has the last answer before the worker records it: wait for that.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = s
            .get(
                &format!("/v1/webhooks/{webhook}/deliveries?limit=200"),
                Some(&admin.token),
            )
            .await;
        if log.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered")
        {
            break log;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", log.text);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let items = log.body["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|d| d["attempts"] == 2 && d["state"] == "delivered"),
        "{}",
        log.text
    );
    assert!(!log.text.contains(BOT_TOKEN));
}
