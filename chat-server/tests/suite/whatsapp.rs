//! The WhatsApp channel against a local Cloud API that speaks its documented wire format:
//! the verify handshake, `X-Hub-Signature-256` on every notification, `POST
//! /{phone-number-id}/messages` with a bearer token out, and the 24-hour customer-service
//! window: an agent's answer outside it is refused with the reason, not sent.

use crate::common;

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

/// A local Cloud API, as Meta documents it: with the bearer token, `POST
/// /{phone-number-id}/messages` sends a message, `POST /{phone-number-id}/media`
/// (multipart: `messaging_product`, `type`, `file`) uploads a file and answers its id,
/// `GET /{media-id}` answers a media's `url`, and `GET` of that url (with the token too)
/// its bytes; anything else is Meta's error shape.
/// A file uploaded to `/media`: (type field, file name, content type, bytes).
type Uploaded = (String, String, String, Vec<u8>);
/// Customers' media by id: (mime type, bytes).
type MediaStore = std::collections::HashMap<String, (String, Vec<u8>)>;
/// A multipart part: (name, file name, content type, bytes).
type Part = (String, Option<String>, String, Vec<u8>);

#[derive(Clone, Default)]
struct CloudApi {
    url: String,
    /// Messages sent.
    sent: Arc<Mutex<Vec<Value>>>,
    /// Files uploaded: (type field, file name, content type, bytes).
    uploads: Arc<Mutex<Vec<Uploaded>>>,
    /// Customers' media: id -> (mime type, bytes).
    media: Arc<Mutex<MediaStore>>,
    /// Media downloaded, by id.
    downloads: Arc<Mutex<Vec<String>>>,
}

impl CloudApi {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = CloudApi {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..CloudApi::default()
        };
        let state = api.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            let (status, content_type, answer) = state.answer(req).await;
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", content_type)
                                    .body(Full::new(answer))
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
        api
    }

    fn add_media(&self, id: &str, mime_type: &str, bytes: &[u8]) {
        self.media
            .lock()
            .unwrap()
            .insert(id.to_owned(), (mime_type.to_owned(), bytes.to_vec()));
    }

    async fn answer(&self, req: Request<Incoming>) -> (u16, &'static str, Bytes) {
        let json_answer =
            |status: u16, v: Value| (status, "application/json", Bytes::from(v.to_string()));
        let error = |status: u16, message: &str, code: u16| {
            json_answer(
                status,
                json!({ "error": { "message": message, "type": "OAuthException", "code": code } }),
            )
        };
        let authorized = req
            .headers()
            .get("authorization")
            .is_some_and(|v| v == format!("Bearer {ACCESS_TOKEN}").as_str());
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let get = req.method() == Method::GET;
        let path = req.uri().path().to_owned();
        let body = req.into_body().collect().await.unwrap().to_bytes();
        if !authorized {
            return error(401, "Invalid OAuth access token.", 190);
        }
        if get {
            // The download URL a media id's answer names.
            if let Some(id) = path.strip_prefix("/lookaside/") {
                self.downloads.lock().unwrap().push(id.to_owned());
                return match self.media.lock().unwrap().get(id) {
                    Some((_, bytes)) => {
                        (200, "application/octet-stream", Bytes::from(bytes.clone()))
                    }
                    None => error(404, "Not found", 100),
                };
            }
            let id = path.trim_start_matches('/');
            return match self.media.lock().unwrap().get(id) {
                Some((mime, bytes)) => json_answer(
                    200,
                    json!({
                        "messaging_product": "whatsapp",
                        "url": format!("{}/lookaside/{id}", self.url),
                        "mime_type": mime, "sha256": "ignored",
                        "file_size": bytes.len().to_string(), "id": id
                    }),
                ),
                None => error(400, "Unsupported get request.", 100),
            };
        }
        if path == format!("/{PHONE_ID}/media") {
            let Some(form) = read_form(&content_type, body).await else {
                return error(400, "Invalid parameter", 100);
            };
            let field = |name: &str| form.iter().find(|f| f.0 == name && f.1.is_none());
            if field("messaging_product").map(|f| f.3.as_slice()) != Some(b"whatsapp".as_slice()) {
                return error(400, "The parameter messaging_product is required.", 100);
            }
            let Some(file) = form.iter().find(|f| f.0 == "file" && f.1.is_some()) else {
                return error(400, "The parameter file is required.", 100);
            };
            let kind = field("type")
                .map(|f| String::from_utf8_lossy(&f.3).into_owned())
                .unwrap_or_default();
            let mut uploads = self.uploads.lock().unwrap();
            uploads.push((
                kind,
                file.1.clone().unwrap(),
                file.2.clone(),
                file.3.clone(),
            ));
            return json_answer(200, json!({ "id": format!("media-out-{}", uploads.len()) }));
        }
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if path != format!("/{PHONE_ID}/messages") || json["messaging_product"] != "whatsapp" {
            return error(400, "Unsupported post request.", 100);
        }
        let mut seen = self.sent.lock().unwrap();
        seen.push(json.clone());
        json_answer(
            200,
            json!({
                "messaging_product": "whatsapp",
                "contacts": [{ "input": json["to"], "wa_id": json["to"] }],
                "messages": [{ "id": format!("wamid.out{}", seen.len()) }]
            }),
        )
    }
}

/// A multipart form's parts: (name, file name, content type, bytes).
async fn read_form(content_type: &str, body: Bytes) -> Option<Vec<Part>> {
    let boundary = multer::parse_boundary(content_type).ok()?;
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(body)]);
    let mut form = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = form.next_field().await.ok()? {
        let name = field.name()?.to_owned();
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field
            .content_type()
            .map(|m| m.to_string())
            .unwrap_or_default();
        parts.push((
            name,
            file_name,
            content_type,
            field.bytes().await.ok()?.to_vec(),
        ));
    }
    Some(parts)
}

async fn cloud_api() -> (String, Arc<Mutex<Vec<Value>>>) {
    let api = CloudApi::start().await;
    (api.url.clone(), api.sent.clone())
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

/// A signed-ready notification of one message of `kind` with its media `content`.
fn media_notification(wamid: &str, kind: &str, content: Value) -> Vec<u8> {
    let mut n = notification(wamid, "");
    let message = &mut n["entry"][0]["changes"][0]["value"]["messages"][0];
    message["type"] = json!(kind);
    message.as_object_mut().unwrap().remove("text");
    message[kind] = content;
    n.to_string().into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_media_comes_in_and_goes_out_and_a_template_reopens_the_window() {
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
    let api = CloudApi::start().await;
    let inbox = |template: Value| {
        let mut body = json!({ "name": "WhatsApp", "kind": "whatsapp", "phone_number_id": PHONE_ID,
                               "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "api_url": api.url });
        for (k, v) in template.as_object().unwrap() {
            body[k] = v.clone();
        }
        s.post("/v1/inboxes", Some(&admin.token), body)
    };
    // A template needs both its name (Meta's form) and its language.
    for (template, field) in [
        (
            json!({ "template_name": "Hello World", "template_language": "en_US" }),
            "template_name",
        ),
        (
            json!({ "template_name": "hello_world" }),
            "template_language",
        ),
    ] {
        let bad = inbox(template).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
        assert_eq!(bad.body["error"]["field"], field, "{}", bad.text);
    }
    let created =
        inbox(json!({ "template_name": "hello_world", "template_language": "en_US" })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let path = format!(
        "/v1/inboxes/{}/whatsapp",
        created.body["id"].as_str().unwrap()
    );
    let post = |body: Vec<u8>, secret: &str| {
        let (path, s) = (path.clone(), &s);
        let signature = sign(secret, &body);
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("x-hub-signature-256", signature.as_str()),
            ];
            s.send_as(Method::POST, &path, None, &headers, body).await
        }
    };
    let jpeg = b"\xFF\xD8\xFF\xE0 a photo of the parcel".to_vec();
    let pdf = b"%PDF-1.7\n the invoice".to_vec();
    let ogg = b"OggS\0\x02 a voice note".to_vec();
    api.add_media("1001", "image/jpeg", &jpeg);
    api.add_media("1002", "application/pdf", &pdf);
    api.add_media("1003", "audio/ogg; codecs=opus", &ogg);

    // A wrong signature: refused before any media is fetched.
    let image = media_notification(
        "wamid.M1",
        "image",
        json!({ "id": "1001", "mime_type": "image/jpeg", "sha256": "x", "caption": "it arrived broken" }),
    );
    let forged = post(image.clone(), "another secret").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    assert!(api.downloads.lock().unwrap().is_empty());

    // An image with a caption, a document, a voice note: each fetched (media id, then its
    // url with the token) and attached.
    for body in [
        image,
        media_notification(
            "wamid.M2",
            "document",
            json!({ "id": "1002", "mime_type": "application/pdf", "sha256": "x", "filename": "invoice.pdf" }),
        ),
        media_notification(
            "wamid.M3",
            "audio",
            json!({ "id": "1003", "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": true }),
        ),
    ] {
        let got = post(body, APP_SECRET).await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text);
        assert_eq!(got.body["stored"], 1, "{}", got.text);
    }
    assert_eq!(*api.downloads.lock().unwrap(), ["1001", "1002", "1003"]);
    let list = s.get("/v1/conversations", Some(&admin.token)).await;
    let conversation = list.body["items"][0]["id"].as_str().unwrap().to_owned();
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
    for (m, (body, name, content_type, bytes)) in customer.iter().zip([
        ("it arrived broken", "image.jpg", "image/jpeg", &jpeg),
        ("", "invoice.pdf", "application/pdf", &pdf),
        ("", "audio.ogg", "audio/ogg", &ogg),
    ]) {
        assert_eq!(m["body"], body, "{m}");
        let file = &m["attachments"][0];
        assert_eq!(
            (file["name"].as_str(), file["content_type"].as_str()),
            (Some(name), Some(content_type)),
            "{m}"
        );
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

    // Over the tenant's limit (as the media's answer declares it): 422 on `file`, not
    // downloaded, nothing stored.
    let limited = s
        .patch(
            "/v1/settings",
            Some(&admin.token),
            json!({ "upload_max_bytes": 100 }),
        )
        .await;
    assert_eq!(limited.status, StatusCode::OK, "{}", limited.text);
    api.add_media("1004", "application/pdf", &[b'%'; 300]);
    let big = media_notification(
        "wamid.M4",
        "document",
        json!({ "id": "1004", "mime_type": "application/pdf", "sha256": "x", "filename": "big.pdf" }),
    );
    let refused = post(big, APP_SECRET).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.body["error"]["field"], "file", "{}", refused.text);
    assert_eq!(api.downloads.lock().unwrap().len(), 3);
    let after = s.get(&messages_path, Some(&admin.token)).await;
    assert_eq!(after.body["items"], history.body["items"]);
    s.patch(
        "/v1/settings",
        Some(&admin.token),
        json!({ "upload_max_bytes": 1_000_000 }),
    )
    .await;

    // An answer with files: each uploaded to /media, then sent by its id (the text as
    // the first one's caption).
    let label = b"%PDF-1.7\n shipping label".to_vec();
    let picture = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR the new parcel".to_vec();
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
    let items = uploaded.body["items"].clone();
    let answered = s
        .post(
            &messages_path,
            Some(&admin.token),
            json!({ "body": "Sorry! A new one ships today.", "attachments": items }),
        )
        .await;
    assert_eq!(answered.status, StatusCode::CREATED, "{}", answered.text);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while api
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "image")
        .count()
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            api.sent.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let uploads = api.uploads.lock().unwrap().clone();
    assert_eq!(uploads.len(), 2);
    assert_eq!(
        uploads[0],
        (
            "application/pdf".to_owned(),
            "label.pdf".to_owned(),
            "application/pdf".to_owned(),
            label
        )
    );
    assert_eq!(uploads[1].0, "image/png");
    assert_eq!(uploads[1].3, picture);
    let sent = api.sent.lock().unwrap().clone();
    let document = sent.iter().find(|m| m["type"] == "document").unwrap();
    assert_eq!(document["to"], "6281234567890");
    assert_eq!(document["document"]["id"], "media-out-1");
    assert_eq!(
        document["document"]["caption"],
        "Sorry! A new one ships today."
    );
    assert_eq!(document["document"]["filename"], "label.pdf");
    let image = sent.iter().find(|m| m["type"] == "image").unwrap();
    assert_eq!(image["image"]["id"], "media-out-2");
    assert!(image["image"]["caption"].is_null(), "{image}");
    assert!(
        !sent
            .iter()
            .any(|m| m["text"]["body"] == "Sorry! A new one ships today."),
        "{sent:?}"
    );

    // 25 hours later: a free answer is refused (pointing at the template); the marker
    // cannot be forged on a message; the template goes out as `type: template`.
    clock.advance(time::Duration::hours(25));
    let late = s
        .post(
            &messages_path,
            Some(&admin.token),
            json!({ "body": "Still there?" }),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.text);
    assert!(late.text.contains("whatsapp-template"), "{}", late.text);
    let forged = s
        .post(
            &messages_path,
            Some(&admin.token),
            json!({ "body": "Still there?", "metadata": { "whatsapp_template": "hello_world" } }),
        )
        .await;
    assert_eq!(
        forged.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        forged.text
    );
    let template_path = format!("/v1/conversations/{conversation}/whatsapp-template");
    let templated = s
        .post(
            &template_path,
            Some(&admin.token),
            json!({ "client_message_id": "t-1" }),
        )
        .await;
    assert_eq!(templated.status, StatusCode::CREATED, "{}", templated.text);
    assert_eq!(
        templated.body["message"]["body"],
        "WhatsApp template hello_world (en_US)"
    );
    assert_eq!(
        templated.body["message"]["metadata"]["whatsapp_template"],
        "hello_world"
    );
    // The same client id again: one message, one send.
    let again = s
        .post(
            &template_path,
            Some(&admin.token),
            json!({ "client_message_id": "t-1" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let templates: Vec<Value> = api
            .sent
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "template")
            .cloned()
            .collect();
        if let Some(t) = templates.first() {
            assert_eq!(t["to"], "6281234567890");
            assert_eq!(
                t["template"],
                json!({ "name": "hello_world", "language": { "code": "en_US" } })
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !api.sent
            .lock()
            .unwrap()
            .iter()
            .any(|m| m["text"]["body"] == "Still there?")
    );

    // Variables: a parameter WhatsApp would refuse is 422 and sends nothing; good ones go
    // in the Cloud API's `components` form, and staff see them in the message.
    for bad in [json!(["Ana\nMaria"]), json!([""]), json!(["a      b"])] {
        let refused = s
            .post(
                &template_path,
                Some(&admin.token),
                json!({ "client_message_id": "t-bad", "parameters": bad }),
            )
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(
            refused.body["error"]["field"], "parameters",
            "{}",
            refused.text
        );
    }
    let with_variables = s
        .post(
            &template_path,
            Some(&admin.token),
            json!({ "client_message_id": "t-2", "parameters": ["Ana", "#1042"] }),
        )
        .await;
    assert_eq!(
        with_variables.status,
        StatusCode::CREATED,
        "{}",
        with_variables.text
    );
    assert_eq!(
        with_variables.body["message"]["body"],
        "WhatsApp template hello_world (en_US): Ana | #1042"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let sent = api.sent.lock().unwrap().clone();
        let templates: Vec<&Value> = sent.iter().filter(|m| m["type"] == "template").collect();
        if templates.len() >= 2 {
            assert_eq!(templates.len(), 2, "{sent:?}");
            assert_eq!(
                templates[1]["template"],
                json!({
                    "name": "hello_world",
                    "language": { "code": "en_US" },
                    "components": [{
                        "type": "body",
                        "parameters": [
                            { "type": "text", "text": "Ana" },
                            { "type": "text", "text": "#1042" }
                        ]
                    }]
                })
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_app_secret_signs_the_webhook_from_then_on_and_a_template_is_set_later() {
    let s = common::start_with(|c| {
        c.webhooks.allow_private = true;
    })
    .await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let (api, _) = cloud_api().await;
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "WhatsApp", "kind": "whatsapp", "phone_number_id": PHONE_ID,
                    "access_token": ACCESS_TOKEN, "app_secret": APP_SECRET, "api_url": api }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let inbox = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/inboxes/{inbox}/whatsapp");
    let post = |wamid: &'static str, secret: &'static str| {
        let path = path.clone();
        let s = &s;
        async move {
            let body = notification(wamid, "hello").to_string().into_bytes();
            let signature = sign(secret, &body);
            s.send_as(
                Method::POST,
                &path,
                None,
                &[
                    ("content-type", "application/json"),
                    ("x-hub-signature-256", &signature),
                ],
                body,
            )
            .await
        }
    };
    assert_eq!(post("wamid.R1", APP_SECRET).await.status, StatusCode::OK);

    const ROTATED: &str = "rotated-app-secret-2";
    let bad = s
        .patch(
            &format!("/v1/inboxes/{inbox}"),
            Some(&admin.token),
            json!({ "app_secret": "has spaces in it" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.text);
    assert_eq!(bad.body["error"]["field"], "app_secret");
    let changed = s
        .patch(
            &format!("/v1/inboxes/{inbox}"),
            Some(&admin.token),
            json!({ "app_secret": ROTATED, "template_name": "order_update", "template_language": "en_US" }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert!(!changed.text.contains(ROTATED), "{}", changed.text);
    assert_eq!(changed.body["settings"]["template_name"], "order_update");
    // The old secret no longer signs; the new one does.
    let old = post("wamid.R2", APP_SECRET).await;
    assert_eq!(old.status, StatusCode::FORBIDDEN, "{}", old.text);
    let new = post("wamid.R3", ROTATED).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text);
    assert_eq!(new.body["stored"], 1, "{}", new.text);
    s.stop().await;
}
