//! The document's channels made real: a Telegram bot configured as an inbox (through
//! `/v1/inboxes`, against a local Bot API that speaks Telegram's documented wire format)
//! brings its chats into the dashboard's `/chats/` list with a number and the customer's
//! name, and what staff answer through `POST /chats/messages` goes back to Telegram by
//! `sendMessage`.

use crate::common;

#[path = "../../../../chat-server/tests/suite/common/telegram.rs"]
mod telegram;

use std::time::Duration;

use common::start_with;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use telegram::BotApi;

const BOT_TOKEN: &str = "123456:AAE-center_token";

fn update(id: i64, text: &str) -> Value {
    json!({
        "update_id": id,
        "message": {
            "message_id": id * 10,
            "from": { "id": 5151, "is_bot": false, "first_name": "Lena", "last_name": "Park" },
            "chat": { "id": 5151, "first_name": "Lena", "type": "private" },
            "date": 1_700_000_000,
            "text": text
        }
    })
}

fn telegram_chats(list: &Value) -> Vec<&Value> {
    list.as_array()
        .unwrap()
        .iter()
        .filter(|c| c["channel"] == "Telegram" && c["name"] != "Sarah Williams")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_telegram_inbox_brings_its_chats_into_the_list_and_staff_answers_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_with(dir.path(), |c| {
        c.webhooks.allow_private = true;
        c.webhooks.poll = Duration::from_millis(20);
    })
    .await;
    let admin = s.login("admin", "admin123").await;
    let api = BotApi::start(BOT_TOKEN).await;
    let before = s.get("/chats/", Some(&admin)).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    let demo = before.body.as_array().unwrap().len();

    // The admin configures the bot with the token of the dashboard's own login.
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin),
            json!({ "name": "Shop bot", "kind": "telegram", "bot_token": BOT_TOKEN,
                    "api_url": api.url, "public_url": s.base }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let path = format!(
        "/v1/inboxes/{}/telegram",
        created.body["id"].as_str().unwrap()
    );
    let secret = created.body["token"].as_str().unwrap().to_owned();
    let deliver = |body: Value| {
        let (path, secret, s) = (path.clone(), secret.clone(), &s);
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-telegram-bot-api-secret-token", secret.as_str()),
            ];
            let reply = s
                .send_as(Method::POST, &path, None, &headers, body.to_string())
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        }
    };

    // A customer writes to the bot: the chat shows in the list, numbered after the demo
    // chats, under the customer's Telegram name.
    deliver(update(1, "Is the blue kettle back in stock?")).await;
    let list = s.get("/chats/", Some(&admin)).await;
    assert_eq!(
        list.body.as_array().unwrap().len(),
        demo + 1,
        "{}",
        list.text
    );
    let chats = telegram_chats(&list.body);
    assert_eq!(chats.len(), 1, "{}", list.text);
    let number = chats[0]["id"].as_u64().unwrap();
    assert_eq!(number, demo as u64 + 1);
    assert!(
        chats[0]["name"].as_str().unwrap().contains("Lena"),
        "{}",
        list.text
    );
    let detail = s.get(&format!("/chats/{number}"), Some(&admin)).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    assert!(
        detail.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["sender"] == "customer" && m["text"] == "Is the blue kettle back in stock?"),
        "{}",
        detail.text
    );

    // Staff answer from the dashboard: it reaches Telegram, in that chat.
    let sent = s
        .post(
            "/chats/messages",
            Some(&admin),
            json!({ "chat_id": number, "text": "Yes, since this morning!", "sender": "agent" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let calls = api
        .wait_for("the answer by sendMessage", |calls| {
            calls
                .iter()
                .any(|c| c.method == "sendMessage" && c.json["text"] == "Yes, since this morning!")
        })
        .await;
    let answer = calls
        .iter()
        .find(|c| c.json["text"] == "Yes, since this morning!")
        .unwrap();
    assert_eq!(answer.json["chat_id"], json!(5151));

    // The customer's next message continues the same chat: same number, nothing new.
    deliver(update(2, "Great, I will order it.")).await;
    let list = s.get("/chats/", Some(&admin)).await;
    assert_eq!(
        list.body.as_array().unwrap().len(),
        demo + 1,
        "{}",
        list.text
    );
    assert_eq!(telegram_chats(&list.body)[0]["id"], json!(number));
    let detail = s.get(&format!("/chats/{number}"), Some(&admin)).await;
    assert!(
        detail.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "Great, I will order it."),
        "{}",
        detail.text
    );
}
