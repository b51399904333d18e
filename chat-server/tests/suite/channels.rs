//! The API channel: an admin creates an inbox; an integration posts its customers'
//! messages with the inbox's token; they open or continue the customer's conversation on
//! the `api` channel, go through the bot, the queue and routing like widget messages; and
//! the bot's and agents' replies (never notes) reach the inbox's webhook, signed, in order.

use crate::common;

use std::time::Duration;

use chat_core::Role;
use common::receiver::{Received, Receiver};
use hyper::StatusCode;
use serde_json::{Value, json};

async fn server() -> common::Server {
    common::start_with(|c| {
        c.webhooks.allow_private = true;
        c.webhooks.poll = Duration::from_millis(20);
        c.webhooks.retry.base = Duration::from_millis(20);
        c.webhooks.retry.max = Duration::from_millis(200);
    })
    .await
}

fn replies(seen: &[Received]) -> Vec<&Received> {
    seen.iter().filter(|r| r.json["type"] == "reply").collect()
}

fn inbound(contact: &str, id: &str, text: &str) -> Value {
    json!({ "contact": { "id": contact, "name": "Chat User" }, "message": { "id": id, "text": text } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_inbox_messages_open_a_conversation_and_replies_reach_its_webhook_signed_in_order() {
    let s = server().await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let receiver = Receiver::start().await;

    // Only admins create inboxes; bad input is 422 naming the field, and nothing is stored.
    let new = json!({ "name": "Shop app", "webhook_url": receiver.url });
    let refused = s.post("/v1/inboxes", Some(&ann.token), new.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    for (body, field) in [
        (
            json!({ "name": "x", "webhook_url": "ftp://hooks.example/x" }),
            "webhook_url",
        ),
        (json!({ "name": " ", "webhook_url": receiver.url }), "name"),
        (
            json!({ "name": "x", "webhook_url": receiver.url, "webhook_secret": "short" }),
            "webhook_secret",
        ),
    ] {
        let bad = s.post("/v1/inboxes", Some(&admin.token), body).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert_eq!(bad.body["error"]["field"], field, "{}", bad.text);
    }
    assert_eq!(
        s.get("/v1/inboxes", Some(&admin.token)).await.body["items"],
        json!([])
    );
    assert_eq!(
        s.get("/v1/webhooks", Some(&admin.token)).await.body["items"],
        json!([])
    );

    let created = s.post("/v1/inboxes", Some(&admin.token), new).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let inbox = created.body["id"].as_str().unwrap().to_owned();
    let token = created.body["token"].as_str().unwrap().to_owned();
    let secret = created.body["webhook_secret"].as_str().unwrap().to_owned();
    let webhook = created.body["webhook_id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["channel"], "api");
    let listed = s.get("/v1/inboxes", Some(&admin.token)).await;
    assert_eq!(listed.body["items"][0]["id"], json!(inbox));
    assert!(!listed.text.contains(&token) && !listed.text.contains(&secret));
    let shown = s
        .get(&format!("/v1/inboxes/{inbox}"), Some(&admin.token))
        .await;
    assert!(!shown.text.contains(&token) && !shown.text.contains(&secret));
    let path = format!("/v1/inboxes/{inbox}/messages");

    // A wrong token, no token, or a malformed body: refused, nothing stored.
    let wrong = s
        .post(&path, Some("inbox_wrong"), inbound("c-1", "m-0", "hi"))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    let anonymous = s.post(&path, None, inbound("c-1", "m-0", "hi")).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    let other = s
        .post(
            &format!("/v1/inboxes/{webhook}/messages"),
            Some(&token),
            inbound("c-1", "m-0", "hi"),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.text);
    for body in [
        json!({ "contact": { "id": "c-1" } }),
        json!({ "contact": { "id": "" }, "message": { "id": "m-0", "text": "hi" } }),
        json!({ "contact": { "id": "c-1" }, "message": { "id": "m-0", "text": "hi", "x": 1 } }),
        json!([{ "id": "c-1" }, { "id": "m-0", "text": "hi" }]),
    ] {
        let bad = s.post(&path, Some(&token), body.clone()).await;
        assert!(
            bad.status == StatusCode::UNPROCESSABLE_ENTITY || bad.status == StatusCode::BAD_REQUEST,
            "{body}: {}",
            bad.text
        );
    }
    let none = s.get("/v1/conversations", Some(&admin.token)).await;
    assert_eq!(none.body["items"], json!([]), "{}", none.text);

    // The first message opens the conversation on the api channel; the bot answers it.
    let first = s
        .post(&path, Some(&token), inbound("c-1", "m-1", "hello"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["opened"], true);
    let conversation = first.body["conversation_id"].as_str().unwrap().to_owned();
    // The provider sends it again (its retry): one message, the same answer.
    let again = s
        .post(&path, Some(&token), inbound("c-1", "m-1", "hello"))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["created"], false);
    assert_eq!(again.body["message_id"], first.body["message_id"]);
    let shown = s
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(shown.body["channel"], "api", "{}", shown.text);
    assert_eq!(shown.body["mode"], "bot", "{}", shown.text);

    // The customer asks for a human: the bot hands off and the queue has it.
    let human = s
        .post(&path, Some(&token), inbound("c-1", "m-2", "I want a human"))
        .await;
    assert_eq!(human.status, StatusCode::CREATED, "{}", human.text);
    assert_eq!(human.body["opened"], false);
    assert_eq!(human.body["conversation_id"], json!(conversation));
    assert_eq!(human.body["conversation_id"], first.body["conversation_id"]);
    let claimed = s
        .post(
            &format!("/v1/conversations/{conversation}/claim"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);

    // Ann answers twice with a note between: the two answers reach the webhook, the note never.
    for (route, body) in [
        ("messages", "Hi, Ann here."),
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
    let seen = receiver
        .wait_for("Ann's second answer", |seen| {
            replies(seen)
                .iter()
                .any(|r| r.json["message"]["text"] == "Your order ships today.")
        })
        .await;
    let sent = replies(&seen);
    let texts: Vec<&str> = sent
        .iter()
        .map(|r| r.json["message"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts.last().copied(),
        Some("Your order ships today."),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"Hello! How can I help you today?"),
        "{texts:?}"
    );
    let ann_texts: Vec<&str> = sent
        .iter()
        .filter(|r| r.json["message"]["sender"] == "agent")
        .map(|r| r.json["message"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(ann_texts, ["Hi, Ann here.", "Your order ships today."]);
    for r in &sent {
        assert!(r.signature_is_valid(&secret), "{}", r.json);
        assert_eq!(r.header("x-chat-event"), "reply");
        assert_eq!(r.json["contact"]["id"], "c-1");
        assert_eq!(r.json["conversation_id"], json!(conversation));
        assert_eq!(r.json["inbox_id"], json!(inbox));
        assert_eq!(r.header("idempotency-key"), r.json["id"].as_str().unwrap());
    }
    assert!(
        !seen
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("internal: VIP")),
        "a note reached the channel"
    );
    assert!(
        !seen
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("I want a human")),
        "the customer's own message was echoed back"
    );
    // Every request the webhook got is a reply: events of the desk are not the channel's.
    assert_eq!(sent.len(), seen.len());
    // In the order they were written.
    let seqs: Vec<u64> = sent
        .iter()
        .map(|r| {
            r.json["id"]
                .as_str()
                .unwrap()
                .rsplit('.')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // The inbox's delivery log is its webhook's: sent replies took one attempt; what was
    // not for the customer is delivered after 0 attempts, never posted.
    // (The receiver has the last reply before the worker records its answer: wait for it.)
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
    let attempted = items.iter().filter(|d| d["attempts"] == 1).count();
    assert_eq!(attempted, sent.len(), "{}", log.text);

    // Another customer of the inbox gets a conversation of its own.
    let second = s
        .post(&path, Some(&token), inbound("c-2", "m-1", "hello"))
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    assert_eq!(second.body["opened"], true);
    assert_ne!(second.body["conversation_id"], json!(conversation));

    // Deleting the inbox takes its webhook and token with it; the conversations stay.
    let gone = s
        .delete(&format!("/v1/inboxes/{inbox}"), Some(&admin.token))
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.get("/v1/webhooks", Some(&admin.token)).await.body["items"],
        json!([])
    );
    let late = s
        .post(&path, Some(&token), inbound("c-1", "m-3", "still there?"))
        .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN, "{}", late.text);
    let kept = s
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_inbox_messages_carry_files_checked_like_uploads() {
    let s = server().await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let receiver = Receiver::start().await;
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Shop app", "webhook_url": receiver.url }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let inbox = created.body["id"].as_str().unwrap().to_owned();
    let token = created.body["token"].as_str().unwrap().to_owned();
    let path = format!("/v1/inboxes/{inbox}/messages");
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR receipt";
    let text: &[u8] = b"order 4417, two kettles";
    let send = |message: Value, files: Vec<(&'static str, &'static str, &'static [u8])>| {
        let (form, body) = chat_server::testing::multipart(
            &[("message", &message.to_string())],
            &files
                .iter()
                .map(|(name, kind, bytes)| ("file", *name, *kind, *bytes))
                .collect::<Vec<_>>(),
        );
        let token = token.clone();
        let path = path.clone();
        let s = &s;
        async move {
            s.send_as(
                hyper::Method::POST,
                &path,
                Some(&token),
                &[("content-type", form.as_str())],
                body,
            )
            .await
        }
    };

    // A file whose bytes are no accepted type refuses the message before anything
    // happens: no conversation is opened for the new customer.
    let refused = send(
        inbound("app-user-9", "m-0", "see attached"),
        vec![("tool.exe", "image/png", b"MZ\x90\0\x03\0\0\0 not an image")],
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.body["error"]["field"], "file", "{}", refused.text);
    let listed = s.get("/v1/conversations", Some(&admin.token)).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    // The JSON is required, in a field called `message`.
    let bare = send(json!(null), vec![("a.txt", "text/plain", text)]).await;
    assert_eq!(
        bare.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bare.text
    );
    assert_eq!(bare.body["error"]["field"], "message", "{}", bare.text);

    let sent = send(
        inbound("app-user-9", "m-1", "my receipt and order"),
        vec![
            ("receipt.png", "application/octet-stream", png),
            ("order.txt", "text/plain", text),
        ],
    )
    .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text);
    let conversation = sent.body["conversation_id"].as_str().unwrap().to_owned();
    let history = s
        .get(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&admin.token),
        )
        .await;
    let message = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["body"] == "my receipt and order")
        .unwrap_or_else(|| panic!("{}", history.text))
        .clone();
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2, "{message}");
    // Typed by the bytes, not by what the provider declared.
    assert_eq!(attachments[0]["content_type"], "image/png");
    assert_eq!(attachments[0]["name"], "receipt.png");
    for (attachment, bytes) in attachments.iter().zip([png, text]) {
        let got = s
            .get(
                &format!(
                    "/v1/conversations/{conversation}/files/{}",
                    attachment["key"].as_str().unwrap()
                ),
                Some(&admin.token),
            )
            .await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text);
        assert_eq!(&got.bytes[..], bytes);
    }

    // The same provider message again: one message, the first one's files.
    let again = send(
        inbound("app-user-9", "m-1", "my receipt and order"),
        vec![("receipt.png", "image/png", png)],
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["message_id"], message["id"]);
    let history = s
        .get(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&admin.token),
        )
        .await;
    let copies = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == "my receipt and order")
        .count();
    assert_eq!(copies, 1, "{}", history.text);
    s.stop().await;
}

/// A file host for the integration's attachment URLs: `/receipt.png` (a PNG),
/// `/big.bin` (`size` bytes), anything else 404. Counts the requests it answered.
async fn file_host(size: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let (status, body) = match req.uri().path() {
                            "/receipt.png" => (
                                200,
                                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR linked receipt".to_vec(),
                            ),
                            "/big.bin" => (200, vec![b'x'; size]),
                            _ => (404, b"no such file".to_vec()),
                        };
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_inbox_messages_carry_files_by_url_fetched_before_anything_is_stored() {
    let s = server().await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let receiver = Receiver::start().await;
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Shop app", "webhook_url": receiver.url }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let path = format!(
        "/v1/inboxes/{}/messages",
        created.body["id"].as_str().unwrap()
    );
    let token = created.body["token"].as_str().unwrap().to_owned();
    let max = s.get("/v1/settings", Some(&admin.token)).await.body["upload_max_bytes"]
        .as_u64()
        .unwrap() as usize;
    let (host, served) = file_host(max + 1).await;
    let with = |id: &str, attachments: Value| {
        let mut body = inbound("app-user-7", id, "here is my receipt");
        body["message"]["attachments"] = attachments;
        body
    };

    // Refused before anything is stored: a file the host does not have, one over the
    // tenant's limit, a URL that is not http(s), and too many files.
    let too_many: Vec<Value> = (0..50)
        .map(|_| json!({ "url": format!("{host}/receipt.png") }))
        .collect();
    for (attachments, field) in [
        (
            json!([{ "url": format!("{host}/missing.png") }]),
            "attachments",
        ),
        (json!([{ "url": format!("{host}/big.bin") }]), "file"),
        (
            json!([{ "url": "ftp://127.0.0.1/receipt.png" }]),
            "attachments",
        ),
        (json!([{ "url": "receipt.png" }]), "attachments"),
        (Value::Array(too_many), "attachments"),
    ] {
        let refused = s
            .post(&path, Some(&token), with("m-bad", attachments.clone()))
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{attachments}: {}",
            refused.text
        );
        assert_eq!(refused.body["error"]["field"], field, "{}", refused.text);
        assert!(
            !refused.text.contains(&host),
            "the answer keeps the URL to itself: {}",
            refused.text
        );
    }
    let listed = s.get("/v1/conversations", Some(&admin.token)).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);

    // A file by URL becomes an attachment, typed by its bytes, named as given.
    let sent = s
        .post(
            &path,
            Some(&token),
            with(
                "m-1",
                json!([{ "url": format!("{host}/receipt.png"), "name": "march.png" }]),
            ),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.text);
    let conversation = sent.body["conversation_id"].as_str().unwrap().to_owned();
    let history = s
        .get(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&admin.token),
        )
        .await;
    let message = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["body"] == "here is my receipt")
        .unwrap_or_else(|| panic!("{}", history.text))
        .clone();
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{message}");
    assert_eq!(attachments[0]["content_type"], "image/png");
    assert_eq!(attachments[0]["name"], "march.png");
    let got = s
        .get(
            &format!(
                "/v1/conversations/{conversation}/files/{}",
                attachments[0]["key"].as_str().unwrap()
            ),
            Some(&admin.token),
        )
        .await;
    assert_eq!(
        &got.bytes[..],
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR linked receipt"
    );
    assert!(served.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_an_inbox_over_the_version_read_and_rotates_its_token() {
    let s = server().await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let receiver = Receiver::start().await;
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Shop app", "webhook_url": receiver.url }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let inbox = created.body["id"].as_str().unwrap().to_owned();
    let old_token = created.body["token"].as_str().unwrap().to_owned();
    let secret = created.body["webhook_secret"].as_str().unwrap().to_owned();
    let path = format!("/v1/inboxes/{inbox}");
    let shown = s.get(&path, Some(&admin.token)).await;
    let etag = shown.headers["etag"].to_str().unwrap().to_owned();

    // Admins only; bad input is 422 naming the field; nothing changes either way.
    let refused = s
        .patch(&path, Some(&ann.token), json!({ "name": "Mine" }))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    for (body, field) in [
        (json!({ "name": " " }), "name"),
        (json!({ "bot_token": "123:abc" }), "bot_token"),
        (json!({ "from": "a@b.example" }), "from"),
        (
            json!({ "template_name": "hello", "template_language": "en" }),
            "template_name",
        ),
    ] {
        let bad = s.patch(&path, Some(&admin.token), body).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert_eq!(bad.body["error"]["field"], field, "{}", bad.text);
    }
    let unknown = s
        .patch(&path, Some(&admin.token), json!({ "kind": "telegram" }))
        .await;
    assert!(unknown.status.is_client_error(), "{}", unknown.text);
    let same = s.get(&path, Some(&admin.token)).await;
    assert_eq!(same.body, shown.body);
    assert_eq!(same.headers["etag"].to_str().unwrap(), etag);

    // Over the version read: applied, with a new version.
    let renamed = s
        .send_as(
            hyper::Method::PATCH,
            &path,
            Some(&admin.token),
            &[("content-type", "application/json"), ("if-match", &etag)],
            json!({ "name": "Shop app (EU)" }).to_string(),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Shop app (EU)");
    assert!(renamed.body.get("token").is_none(), "{}", renamed.text);
    let newer = renamed.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(newer, etag);
    // Over a version that is gone: 412 with the current one, and nothing changes.
    let stale = s
        .send_as(
            hyper::Method::PATCH,
            &path,
            Some(&admin.token),
            &[("content-type", "application/json"), ("if-match", &etag)],
            json!({ "name": "Shop app (US)" }).to_string(),
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.text
    );
    assert_eq!(stale.error_code(), "precondition_failed");
    assert_eq!(
        format!("\"{}\"", stale.body["error"]["current_version"]),
        newer
    );
    assert_eq!(
        s.get(&path, Some(&admin.token)).await.body["name"],
        "Shop app (EU)"
    );

    // A new token, answered once: the old one stops working, the new one works, and no
    // secret is ever in an answer.
    let rotated = s
        .patch(&path, Some(&admin.token), json!({ "rotate_token": true }))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let new_token = rotated.body["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, old_token);
    assert!(!rotated.text.contains(&secret), "{}", rotated.text);
    let shown = s.get(&path, Some(&admin.token)).await;
    assert!(shown.body.get("token").is_none(), "{}", shown.text);
    assert!(!shown.text.contains(&new_token) && !shown.text.contains(&secret));
    let messages = format!("/v1/inboxes/{inbox}/messages");
    let with_old = s
        .post(&messages, Some(&old_token), inbound("c-1", "m-1", "hello"))
        .await;
    assert_eq!(with_old.status, StatusCode::FORBIDDEN, "{}", with_old.text);
    let with_new = s
        .post(&messages, Some(&new_token), inbound("c-1", "m-1", "hello"))
        .await;
    assert_eq!(with_new.status, StatusCode::CREATED, "{}", with_new.text);
    s.stop().await;
}
