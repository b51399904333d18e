//! The Telegram channel against a local Bot API that speaks Telegram's documented wire
//! format: creating the inbox registers its webhook (`setWebhook` with a `secret_token`);
//! Updates posted with that secret open or continue the chat's conversation through the
//! bot and the queue; the bot's and the agent's replies (never notes) go out by
//! `sendMessage`, retried when Telegram refuses; a wrong secret or a malformed Update is
//! refused with nothing stored.

use crate::common;

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
    api.fail_next(
        "sendMessage",
        "Hi Jo, Ann here.",
        429,
        "Too Many Requests: retry after 1",
    );
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

/// An Update whose message carries `content` (a `photo`, `document` or `voice` field).
fn file_update(id: i64, message_id: i64, content: Value) -> Value {
    let mut message = json!({
        "message_id": message_id,
        "from": { "id": 4242, "is_bot": false, "first_name": "Jo" },
        "chat": { "id": 4242, "first_name": "Jo", "type": "private" },
        "date": 1_700_000_000,
    });
    for (k, v) in content.as_object().unwrap() {
        message[k] = v.clone();
    }
    json!({ "update_id": id, "message": message })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_files_come_in_by_get_file_and_go_out_by_send_photo_and_send_document() {
    let s = common::start_with(|c| {
        c.webhooks.allow_private = true;
        c.webhooks.poll = Duration::from_millis(20);
        c.webhooks.retry.base = Duration::from_millis(20);
        c.webhooks.retry.max = Duration::from_millis(200);
    })
    .await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let api = BotApi::start(BOT_TOKEN).await;
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Support bot", "kind": "telegram", "bot_token": BOT_TOKEN, "api_url": api.url }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let inbox = created.body["id"].as_str().unwrap().to_owned();
    let secret = created.body["token"].as_str().unwrap().to_owned();
    let path = format!("/v1/inboxes/{inbox}/telegram");
    let post = |body: Value| {
        let (path, secret, s) = (path.clone(), secret.clone(), &s);
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-telegram-bot-api-secret-token", secret.as_str()),
            ];
            s.send_as(Method::POST, &path, None, &headers, body.to_string())
                .await
        }
    };
    let small_jpeg = b"\xFF\xD8\xFF\xE0 small size of the photo".to_vec();
    let big_jpeg = b"\xFF\xD8\xFF\xE0 the largest size of the photo, fetched".to_vec();
    let pdf = b"%PDF-1.7\n an invoice".to_vec();
    let voice = b"OggS\0\x02 opus voice note".to_vec();
    api.add_file("ph-s", "photos/file_0.jpg", &small_jpeg);
    api.add_file("ph-l", "photos/file_1.jpg", &big_jpeg);
    api.add_file("doc-1", "documents/file_2.pdf", &pdf);
    api.add_file("voice-1", "voice/file_3.oga", &voice);

    // A photo with a caption: the largest size is fetched and attached, the caption is
    // the text.
    let photo = post(file_update(
        1,
        20,
        json!({ "caption": "my receipt", "photo": [
            { "file_id": "ph-s", "file_unique_id": "a", "width": 90, "height": 60, "file_size": small_jpeg.len() },
            { "file_id": "ph-l", "file_unique_id": "b", "width": 1280, "height": 853, "file_size": big_jpeg.len() }
        ] }),
    ))
    .await;
    assert_eq!(photo.status, StatusCode::OK, "{}", photo.text);
    assert_eq!(photo.body["stored"], true, "{}", photo.text);
    let conversation = photo.body["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(api.downloads(), ["photos/file_1.jpg"]);
    assert_eq!(api.calls("getFile")[0].json["file_id"], "ph-l");
    // A document without caption and a voice note: stored with their files only.
    for (update, expected) in [
        (
            file_update(
                2,
                21,
                json!({ "document": { "file_id": "doc-1", "file_unique_id": "c", "file_name": "invoice.pdf", "mime_type": "application/pdf", "file_size": pdf.len() } }),
            ),
            "documents/file_2.pdf",
        ),
        (
            file_update(
                3,
                22,
                json!({ "voice": { "file_id": "voice-1", "file_unique_id": "d", "duration": 2, "mime_type": "audio/ogg", "file_size": voice.len() } }),
            ),
            "voice/file_3.oga",
        ),
    ] {
        let got = post(update).await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text);
        assert_eq!(got.body["conversation_id"], json!(conversation));
        assert!(api.downloads().contains(&expected.to_owned()));
    }
    let messages_path = format!("/v1/conversations/{conversation}/messages");
    let history = s.get(&messages_path, Some(&admin.token)).await;
    let customer: Vec<Value> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender"]["type"] == "customer" || m["sender"] == "customer")
        .cloned()
        .collect();
    assert_eq!(customer.len(), 3, "{}", history.text);
    let kept = [
        ("my receipt", "image/jpeg", &big_jpeg),
        ("", "application/pdf", &pdf),
        ("", "audio/ogg", &voice),
    ];
    for (m, (body, content_type, bytes)) in customer.iter().zip(kept) {
        assert_eq!(m["body"], body, "{m}");
        let file = &m["attachments"][0];
        assert_eq!(file["content_type"], content_type, "{m}");
        let got = s
            .get(
                &format!(
                    "/v1/conversations/{conversation}/files/{}",
                    file["key"].as_str().unwrap()
                ),
                Some(&admin.token),
            )
            .await;
        assert_eq!(&got.bytes[..], &bytes[..]);
    }
    assert_eq!(customer[1]["attachments"][0]["name"], "invoice.pdf");

    // Over the tenant's limit (declared by the update, or only by getFile), or of a type
    // the desk does not take: 422, and nothing is stored.
    let limited = s
        .patch(
            "/v1/settings",
            Some(&admin.token),
            json!({ "upload_max_bytes": 100 }),
        )
        .await;
    assert_eq!(limited.status, StatusCode::OK, "{}", limited.text);
    let huge = vec![b'%'; 300];
    api.add_file("huge", "documents/file_4.pdf", &huge);
    api.add_file(
        "exe",
        "documents/file_5.exe",
        b"MZ\x90\0\x03 not a document",
    );
    let downloads = api.downloads().len();
    for (update, field) in [
        (
            file_update(
                4,
                23,
                json!({ "document": { "file_id": "huge", "file_unique_id": "e", "file_name": "big.pdf", "file_size": 300 } }),
            ),
            "file",
        ),
        (
            file_update(
                5,
                24,
                json!({ "document": { "file_id": "huge", "file_unique_id": "e", "file_name": "big.pdf" } }),
            ),
            "file",
        ),
        (
            file_update(
                6,
                25,
                json!({ "document": { "file_id": "exe", "file_unique_id": "f", "file_name": "tool.exe" } }),
            ),
            "file",
        ),
    ] {
        let refused = post(update).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(refused.body["error"]["field"], field, "{}", refused.text);
    }
    // The declared-too-large files were never downloaded.
    assert_eq!(
        api.downloads().len(),
        downloads + 1,
        "{:?}",
        api.downloads()
    );
    let after = s.get(&messages_path, Some(&admin.token)).await;
    assert_eq!(
        after.body["items"].as_array().unwrap().len(),
        history.body["items"].as_array().unwrap().len(),
        "{}",
        after.text
    );
    // A file Telegram does not give: 502, so Telegram delivers the update again.
    let gone = post(file_update(
        7,
        26,
        json!({ "document": { "file_id": "missing", "file_unique_id": "g" } }),
    ))
    .await;
    assert_eq!(gone.status, StatusCode::BAD_GATEWAY, "{}", gone.text);
    assert!(!gone.text.contains(BOT_TOKEN), "{}", gone.text);

    // Replies with files: a PDF with the text as its caption by sendDocument, an image
    // without text by sendPhoto; text alone by sendMessage.
    s.patch(
        "/v1/settings",
        Some(&admin.token),
        json!({ "upload_max_bytes": 1_000_000 }),
    )
    .await;
    let label = b"%PDF-1.7\n shipping label".to_vec();
    let picture = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR the parcel".to_vec();
    let (content_type, form) = chat_server::testing::multipart(
        &[],
        &[
            ("files", "label.pdf", "application/pdf", &label),
            ("files", "parcel.png", "image/png", &picture),
        ],
    );
    let uploaded = s
        .send_as(
            Method::POST,
            &format!("/v1/conversations/{conversation}/files"),
            Some(&admin.token),
            &[("content-type", content_type.as_str())],
            form,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text);
    let items = uploaded.body["items"].as_array().unwrap().clone();
    for body in [
        json!({ "body": "Here is your label", "attachments": [items[0]] }),
        json!({ "body": "", "attachments": [items[1]] }),
        json!({ "body": "Anything else?" }),
    ] {
        let posted = s.post(&messages_path, Some(&admin.token), body).await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    }
    let calls = api
        .wait_for("the text after the files", |calls| {
            calls.iter().any(|c| c.json["text"] == "Anything else?")
        })
        .await;
    let document = calls.iter().find(|c| c.method == "sendDocument").unwrap();
    assert_eq!(document.json["chat_id"], "4242");
    assert_eq!(document.json["caption"], "Here is your label");
    assert_eq!(document.files.len(), 1);
    assert_eq!(document.files[0].field, "document");
    assert_eq!(document.files[0].name, "label.pdf");
    assert_eq!(document.files[0].content_type, "application/pdf");
    assert_eq!(document.files[0].bytes, label);
    let photo = calls.iter().find(|c| c.method == "sendPhoto").unwrap();
    assert!(photo.json.get("caption").is_none(), "{:?}", photo.json);
    assert_eq!(photo.files[0].field, "photo");
    assert_eq!(photo.files[0].bytes, picture);
    // In order, and the captioned text was not sent again as a message of its own.
    let order: Vec<&str> = calls
        .iter()
        .filter(|c| {
            matches!(c.method.as_str(), "sendDocument" | "sendPhoto")
                || c.json["text"] == "Anything else?"
                || c.json["text"] == "Here is your label"
        })
        .map(|c| c.method.as_str())
        .collect();
    assert_eq!(
        order,
        ["sendDocument", "sendPhoto", "sendMessage"],
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_inbox_reads_get_updates_and_a_restart_keeps_its_offset() {
    let tune = |c: &mut chat_server::Config| {
        c.webhooks.allow_private = true;
        c.webhooks.poll = Duration::from_millis(20);
        c.webhooks.retry.base = Duration::from_millis(20);
        c.webhooks.retry.max = Duration::from_millis(200);
        c.webhooks.telegram_long_poll = Duration::from_secs(1);
    };
    let s = common::start_on(tempfile::tempdir().unwrap(), None, tune).await;
    let tenant = s.tenant;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let api = BotApi::start(BOT_TOKEN).await;
    // The bot had a webhook: getUpdates is refused until the inbox deletes it.
    api.set_webhook_active(true);

    for (body, field) in [
        (
            json!({ "name": "Bot", "kind": "telegram", "bot_token": BOT_TOKEN, "api_url": api.url, "mode": "polling", "public_url": s.base }),
            "public_url",
        ),
        (
            json!({ "name": "Bot", "kind": "telegram", "bot_token": BOT_TOKEN, "api_url": api.url, "mode": "push" }),
            "mode",
        ),
        (
            json!({ "name": "Bot", "kind": "api", "webhook_url": "http://127.0.0.1:9/x", "mode": "polling" }),
            "mode",
        ),
    ] {
        let bad = s.post("/v1/inboxes", Some(&admin.token), body).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert_eq!(bad.body["error"]["field"], field, "{}", bad.text);
    }
    api.push_update(update(100, 1, "hello"));
    api.push_update(update(101, 2, "where is my order?"));
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Support bot", "kind": "telegram", "bot_token": BOT_TOKEN, "api_url": api.url, "mode": "polling" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(api.calls("deleteWebhook").len(), 1);
    assert!(api.calls("setWebhook").is_empty());
    // Both updates are taken, then the next call asks from 102 (confirming them).
    api.wait_for("getUpdates from 102", |calls| {
        calls
            .iter()
            .any(|c| c.method == "getUpdates" && c.json["offset"] == 102)
    })
    .await;
    let first = api.calls("getUpdates");
    assert_eq!(first[0].json["offset"], 0, "{first:?}");
    assert_eq!(first[0].json["timeout"], 1);
    assert_eq!(first[0].json["allowed_updates"], json!(["message"]));
    let dir = s.stop_keeping_dir().await;
    let before_restart = api.calls("getUpdates").len();

    // Written while no server runs; the restarted one asks from the stored offset.
    api.push_update(update(102, 3, "still there?"));
    let s = common::start_on(dir, Some(tenant), tune).await;
    api.wait_for("getUpdates from 103", |calls| {
        calls
            .iter()
            .any(|c| c.method == "getUpdates" && c.json["offset"] == 103)
    })
    .await;
    let after = api.calls("getUpdates");
    assert_eq!(
        after[before_restart].json["offset"], 102,
        "the restarted poller starts from the stored offset: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|c| c.json["offset"].as_i64().unwrap() <= 103),
        "{after:?}"
    );
    let list = s.get("/v1/conversations", Some(&admin.token)).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["channel"], "telegram");
    let history = s
        .get(
            &format!(
                "/v1/conversations/{}/messages",
                items[0]["id"].as_str().unwrap()
            ),
            Some(&admin.token),
        )
        .await;
    let customer: Vec<&str> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["sender"]["type"] == "customer" || m["sender"] == "customer")
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(customer, ["hello", "where is my order?", "still there?"]);
    // The bot's answers went out by sendMessage, as for a webhook inbox.
    api.wait_for("the bot's greeting", |calls| {
        calls.iter().any(|c| {
            c.method == "sendMessage" && c.json["text"] == "Hello! How can I help you today?"
        })
    })
    .await;
    s.stop().await;
}
