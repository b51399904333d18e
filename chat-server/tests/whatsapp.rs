//! The WhatsApp channel against a local Cloud API that speaks its documented wire format:
//! the verify handshake, `X-Hub-Signature-256` on every notification, `POST
//! /{phone-number-id}/messages` with a bearer token out, and the 24-hour customer-service
//! window: an agent's answer outside it is refused with the reason, not sent.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_core::{ManualClock, Role};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;

const ACCESS_TOKEN: &str = "EAAG-test-access-token";
const APP_SECRET: &str = "app-secret-of-the-meta-app";
const PHONE_ID: &str = "106540352242922";

/// A local Cloud API: `POST /{phone-number-id}/messages` with the bearer token answers
/// like Meta's; anything else is Meta's error shape.
async fn cloud_api() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let authorized = req
                            .headers()
                            .get("authorization")
                            .is_some_and(|v| v == format!("Bearer {ACCESS_TOKEN}").as_str());
                        let path = req.uri().path().to_owned();
                        let body = req.into_body().collect().await?.to_bytes();
                        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let (status, answer) = if !authorized {
                            (
                                401,
                                json!({ "error": { "message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190 } }),
                            )
                        } else if path != format!("/{PHONE_ID}/messages")
                            || json["messaging_product"] != "whatsapp"
                        {
                            (
                                400,
                                json!({ "error": { "message": "Unsupported post request.", "type": "GraphMethodException", "code": 100 } }),
                            )
                        } else {
                            let mut seen = seen.lock().unwrap();
                            seen.push(json.clone());
                            (
                                200,
                                json!({
                                    "messaging_product": "whatsapp",
                                    "contacts": [{ "input": json["to"], "wa_id": json["to"] }],
                                    "messages": [{ "id": format!("wamid.out{}", seen.len()) }]
                                }),
                            )
                        };
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, sent)
}

fn notification(wamid: &str, text: &str) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_ID },
                    "contacts": [{ "profile": { "name": "Jo Chat" }, "wa_id": "6281234567890" }],
                    "messages": [{
                        "from": "6281234567890", "id": wamid, "timestamp": "1700000000",
                        "type": "text", "text": { "body": text }
                    }]
                }
            }]
        }]
    })
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_messages_are_signed_in_and_answers_go_out_within_the_24_hour_window() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let engine_clock = clock.clone();
    let s = common::start_full(
        |c| {
            c.webhooks.allow_private = true;
            c.webhooks.poll = Duration::from_millis(20);
            c.webhooks.retry.base = Duration::from_millis(20);
            c.webhooks.retry.max = Duration::from_millis(200);
        },
        move |b| b.clock(engine_clock),
    )
    .await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let (api, sent) = cloud_api().await;

    let missing = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "WA", "kind": "whatsapp", "phone_number_id": PHONE_ID, "api_url": api }),
        )
        .await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        missing.text
    );
    assert_eq!(missing.body["error"]["field"], "access_token");
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "WhatsApp", "kind": "whatsapp", "phone_number_id": PHONE_ID,
                    "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "api_url": api }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["channel"], "whatsapp");
    let inbox = created.body["id"].as_str().unwrap().to_owned();
    let verify = created.body["token"].as_str().unwrap().to_owned();
    for listed in [
        created.text.clone(),
        s.get("/v1/inboxes", Some(&admin.token)).await.text,
        s.get("/v1/webhooks", Some(&admin.token)).await.text,
    ] {
        assert!(!listed.contains(ACCESS_TOKEN) && !listed.contains(APP_SECRET));
    }
    let path = format!("/v1/inboxes/{inbox}/whatsapp");

    // The verify handshake: the challenge back for the right token, 403 otherwise.
    let ok = s
        .get(
            &format!(
                "{path}?hub.mode=subscribe&hub.verify_token={verify}&hub.challenge=1158201444"
            ),
            None,
        )
        .await;
    assert_eq!(
        (ok.status, ok.text.as_str()),
        (StatusCode::OK, "1158201444")
    );
    let bad = s
        .get(
            &format!("{path}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"),
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);

    let post = |body: Vec<u8>, signature: Option<String>| {
        let path = path.clone();
        let s = &s;
        async move {
            let mut headers = vec![("content-type", "application/json".to_owned())];
            if let Some(sig) = signature {
                headers.push(("x-hub-signature-256", sig));
            }
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.send_as(Method::POST, &path, None, &headers, body).await
        }
    };

    // A bad or missing signature, or a malformed payload: refused, nothing stored.
    let body = notification("wamid.A1", "hello").to_string().into_bytes();
    let forged = post(body.clone(), Some(sign("another secret", &body))).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    let unsigned = post(body.clone(), None).await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN, "{}", unsigned.text);
    let malformed = br#"{"object":"whatsapp_business_account","entry":"x"}"#.to_vec();
    let bad = post(malformed.clone(), Some(sign(APP_SECRET, &malformed))).await;
    assert!(
        bad.status == StatusCode::UNPROCESSABLE_ENTITY || bad.status == StatusCode::BAD_REQUEST,
        "{}",
        bad.text
    );
    assert_eq!(
        s.get("/v1/conversations", Some(&admin.token)).await.body["items"],
        json!([])
    );

    // Signed: the message opens the number's conversation; the bot's answer goes out.
    let first = post(body.clone(), Some(sign(APP_SECRET, &body))).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.body["stored"], 1);
    let again = post(body.clone(), Some(sign(APP_SECRET, &body))).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let list = s.get("/v1/conversations", Some(&admin.token)).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    assert_eq!(items[0]["channel"], "whatsapp");
    let conversation = items[0]["id"].as_str().unwrap().to_owned();
    assert!(
        items[0]["message_count"].as_u64().unwrap() >= 2,
        "{}",
        list.text
    );

    let human = notification("wamid.A2", "I want a human")
        .to_string()
        .into_bytes();
    let asked = post(human.clone(), Some(sign(APP_SECRET, &human))).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    let claimed = s
        .post(
            &format!("/v1/conversations/{conversation}/claim"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);
    let answered = s
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&ann.token),
            json!({ "body": "Hi Jo, Ann here." }),
        )
        .await;
    assert_eq!(answered.status, StatusCode::CREATED, "{}", answered.text);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let texts: Vec<String> = sent
            .lock()
            .unwrap()
            .iter()
            .map(|m| m["text"]["body"].as_str().unwrap_or("").to_owned())
            .collect();
        if texts.iter().any(|t| t == "Hi Jo, Ann here.") {
            assert!(
                texts
                    .iter()
                    .any(|t| t == "Hello! How can I help you today?"),
                "{texts:?}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{texts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for m in sent.lock().unwrap().iter() {
        assert_eq!(m["to"], "6281234567890");
        assert_eq!(m["type"], "text");
    }

    // 25 hours later the window is shut: Ann's answer is refused with the reason, a note
    // is still fine, and nothing more is sent.
    clock.advance(time::Duration::hours(25));
    let before = sent.lock().unwrap().len();
    let late = s
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&ann.token),
            json!({ "body": "Are you still there?" }),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text);
    assert!(late.text.contains("24-hour"), "{}", late.text);
    let note = s
        .post(
            &format!("/v1/conversations/{conversation}/notes"),
            Some(&ann.token),
            json!({ "body": "call them instead" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    // The customer writes again: the window opens again.
    let back = notification("wamid.A3", "sorry, back now")
        .to_string()
        .into_bytes();
    assert_eq!(
        post(back.clone(), Some(sign(APP_SECRET, &back)))
            .await
            .status,
        StatusCode::OK
    );
    let again = s
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&ann.token),
            json!({ "body": "Welcome back!" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let texts: Vec<String> = sent.lock().unwrap()[before..]
            .iter()
            .map(|m| m["text"]["body"].as_str().unwrap_or("").to_owned())
            .collect();
        if texts.iter().any(|t| t == "Welcome back!") {
            assert!(
                !texts
                    .iter()
                    .any(|t| t.contains("still there") || t.contains("call them")),
                "{texts:?}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{texts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
