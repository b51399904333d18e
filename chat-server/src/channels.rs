//! Inbox channels' provider specifics: what the server sends to an inbox's provider for a
//! reply to its customer, and the Telegram Bot API's shapes.
//!
//! An `api` inbox's reply goes to its webhook like an event delivery (same headers, same
//! `X-Chat-Signature`, `X-Chat-Event: reply`), with this body:
//!
//! ```json
//! {"id": "<tenant>.<seq>", "type": "reply", "inbox_id": "…", "conversation_id": "…",
//!  "contact": {"id": "<your id for the customer>"},
//!  "message": {"id": "…", "text": "…", "sender": "agent" | "bot", "agent_id": "…" | null,
//!              "attachments": [{"name": "…", "content_type": "…", "size": 123}],
//!              "created_at": "<RFC 3339>"}}
//! ```

use std::time::{Duration, Instant};

use chat_core::{
    ACCESS_TOKEN_KEY, API_URL_KEY, APP_SECRET_KEY, Actor, Attachment, Attempt, BOT_TOKEN_KEY,
    Engine, Inbox, InboxKind, PHONE_NUMBER_ID_KEY, Reply, Sender, TEMPLATE_KEY,
    TEMPLATE_LANGUAGE_META_KEY, TEMPLATE_PARAMETERS_KEY,
};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use crate::webhooks::HttpClient;

/// The JSON body of an `api` inbox's reply delivery.
pub fn api_reply_body(event_id: &str, reply: &Reply) -> Vec<u8> {
    let m = &reply.message;
    let agent_id = match m.sender {
        Sender::Agent(agent) => Some(agent.to_string()),
        _ => None,
    };
    let attachments: Vec<_> = m
        .attachments
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": a.name,
                "content_type": a.content_type,
                "size": a.size,
            })
        })
        .collect();
    let body = serde_json::json!({
        "id": event_id,
        "type": "reply",
        "inbox_id": reply.inbox.id,
        "conversation_id": reply.conversation,
        "contact": { "id": reply.contact },
        "message": {
            "id": m.id,
            "text": m.body,
            "sender": m.sender.kind(),
            "agent_id": agent_id,
            "attachments": attachments,
            "created_at": m.created_at.format(&Rfc3339).unwrap_or_default(),
        },
    });
    serde_json::to_vec(&body).expect("JSON values serialize")
}

/// Sends a reply through its inbox's provider (every kind but `api`, whose replies are
/// webhook deliveries) and says how it went, for the engine to record like any attempt.
/// Its files are read from the engine (as the system) and uploaded with it.
pub(crate) async fn send(
    engine: &Engine,
    client: &HttpClient,
    timeout: Duration,
    reply: &Reply,
) -> Attempt {
    let files = match reply_files(engine, reply).await {
        Ok(files) => files,
        Err(e) => {
            return Attempt {
                status: None,
                error: Some(format!("reading the reply's file failed: {e}")),
                elapsed_ms: 0,
            };
        }
    };
    match reply.inbox.kind {
        InboxKind::Telegram => telegram::send_message(client, timeout, reply, &files).await,
        InboxKind::Whatsapp => whatsapp::send_message(client, timeout, reply, &files).await,
        InboxKind::Api => Attempt {
            status: None,
            error: Some("an api inbox's replies are webhook deliveries".to_owned()),
            elapsed_ms: 0,
        },
        InboxKind::Email => Attempt {
            status: None,
            error: Some("an email inbox's replies go through the mail outbox".to_owned()),
            elapsed_ms: 0,
        },
    }
}

/// A reply's files with their bytes, in the message's order.
async fn reply_files(
    engine: &Engine,
    reply: &Reply,
) -> chat_core::Result<Vec<(Attachment, Vec<u8>)>> {
    let system = Actor::System {
        tenant: reply.inbox.tenant_id,
    };
    let mut files = Vec::new();
    for attachment in &reply.message.attachments {
        let bytes = engine
            .download_attachment(&system, reply.conversation, &attachment.key)
            .await?;
        files.push((attachment.clone(), bytes));
    }
    Ok(files)
}

/// Longest caption Telegram and WhatsApp take with a file, in characters: a longer text
/// goes first as a message of its own.
pub const MAX_CAPTION_CHARS: usize = 1024;

/// A reply's text as the caption of its first file, or `None` when it is empty or too long
/// for a caption (then it is sent as a text message first).
fn caption_of(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty() && text.chars().count() <= MAX_CAPTION_CHARS).then_some(text)
}

/// Posts a JSON body and reads the answer: its status and body, or why none came. Neither
/// the URL (a Bot API URL holds the bot's token) nor the body is in the error.
pub(crate) async fn post_json(
    client: &HttpClient,
    timeout: Duration,
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> (Result<(u16, Bytes), String>, u64) {
    let body = serde_json::to_vec(body).expect("JSON values serialize");
    post(client, timeout, url, bearer, "application/json", body).await
}

/// One file of a `multipart/form-data` body: (field, file name, type, bytes).
pub(crate) type FilePart<'a> = (&'a str, &'a str, &'a str, &'a [u8]);

/// Posts a `multipart/form-data` body of text fields and one file (the providers' upload
/// form), like [`post_json`].
pub(crate) async fn post_form(
    client: &HttpClient,
    timeout: Duration,
    url: &str,
    bearer: Option<&str>,
    fields: &[(&str, &str)],
    file: FilePart<'_>,
) -> (Result<(u16, Bytes), String>, u64) {
    let (content_type, body) = form(fields, file);
    post(client, timeout, url, bearer, &content_type, body).await
}

/// The form's body and its content type, with a random boundary (so no file's bytes can
/// hold it by chance or by design).
fn form(
    fields: &[(&str, &str)],
    (field, name, content_type, bytes): FilePart<'_>,
) -> (String, Vec<u8>) {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).expect("the OS random source works");
    let boundary = format!("chat-server-{}", hex::encode(random));
    // Quotes and line breaks cannot end a header's quoted value early.
    let quoted = |v: &str| v.replace(['"', '\r', '\n'], "_");
    let mut body = Vec::with_capacity(bytes.len() + 512);
    for (key, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
                quoted(key)
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            quoted(field),
            quoted(name),
            quoted(content_type)
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts a body and reads the answer (see [`post_json`]).
async fn post(
    client: &HttpClient,
    timeout: Duration,
    url: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (Result<(u16, Bytes), String>, u64) {
    let started = Instant::now();
    let mut request = Request::post(url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .header("content-type", content_type)
        .header(
            "user-agent",
            concat!("chat-server/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)));
    let Ok(request) = request else {
        return (Err("not a valid URL".to_owned()), 0);
    };
    let answer = tokio::time::timeout(timeout, async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        // Answers of the Bot API are small; a provider that streams forever is cut by the
        // timeout.
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, hyper_util::client::legacy::Error>((status, body))
    })
    .await;
    let elapsed = started.elapsed().as_millis() as u64;
    let result = match answer {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(crate::webhooks::describe(&e)),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs_f32())),
    };
    (result, elapsed)
}

/// Why a customer's file was not fetched from its provider.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// Larger than the tenant takes (as the provider declared it, or as it came): the
    /// message is refused with a 422, nothing stored.
    TooLarge(u64),
    /// The provider did not give it (its answer, or why none came; never the URL, which
    /// may hold a token): 502, so the provider delivers the update again later.
    Provider(String),
}

impl From<FetchError> for crate::error::ApiError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::TooLarge(max) => crate::error::ApiError::invalid(
                "file",
                format!("the customer's file is larger than the {max} bytes this desk takes"),
            ),
            FetchError::Provider(why) => crate::error::ApiError::new(
                hyper::StatusCode::BAD_GATEWAY,
                "provider_failed",
                format!("the provider did not give the customer's file: {why}"),
            ),
        }
    }
}

/// Downloads a file with `GET`, reading at most `max` bytes: a larger one is
/// [`FetchError::TooLarge`] as soon as the limit is passed, so no file grows memory
/// beyond the tenant's limit.
pub(crate) async fn get_bytes(
    client: &HttpClient,
    timeout: Duration,
    url: &str,
    bearer: Option<&str>,
    max: u64,
) -> Result<Vec<u8>, FetchError> {
    let mut request = Request::get(url).header(
        "user-agent",
        concat!("chat-server/", env!("CARGO_PKG_VERSION")),
    );
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|_| FetchError::Provider("not a valid file URL".to_owned()))?;
    let read = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| FetchError::Provider(crate::webhooks::describe(&e)))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(FetchError::Provider(format!("HTTP {status} for the file")));
        }
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Provider(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                if (bytes.len() + data.len()) as u64 > max {
                    return Err(FetchError::TooLarge(max));
                }
                bytes.extend_from_slice(data);
            }
        }
        Ok(bytes)
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| FetchError::Provider(format!("no file within {} s", timeout.as_secs_f32())))?
}

/// A customer's file as a provider describes it, before it is fetched.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteFile {
    /// The provider's id for it (Telegram's `file_id`, WhatsApp's media id).
    pub id: String,
    /// Its name, as given or made from its kind.
    pub name: String,
    /// Its type, as declared (the bytes decide in the end).
    pub content_type: String,
    /// Its size, if declared.
    pub size: Option<u64>,
}

/// The Telegram Bot API (<https://core.telegram.org/bots/api>): `POST
/// <api>/bot<token>/<method>` with a JSON body, answered `{"ok": true, "result": …}` or
/// `{"ok": false, "error_code": …, "description": "…"}`.
pub mod telegram {
    use super::*;

    /// What Telegram calls with (a subset of its `Update` object): a new message in a
    /// chat with the bot. Other updates (edits, channel posts, callbacks) carry no
    /// `message` and are acknowledged without storing anything.
    /// The fields read of the Bot API's `Update`
    /// (<https://core.telegram.org/bots/api#update>); others are accepted and ignored.
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = TelegramUpdate)]
    pub struct Update {
        /// The update's id.
        pub update_id: i64,
        /// A new incoming message.
        #[serde(default)]
        pub message: Option<TelegramMessage>,
    }

    /// Telegram's `Message` (the fields read).
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = TelegramMessage)]
    pub struct TelegramMessage {
        /// Unique in its chat.
        pub message_id: i64,
        /// The sender.
        #[serde(default)]
        pub from: Option<User>,
        /// The chat: where replies go.
        pub chat: Chat,
        /// Text of a text message.
        #[serde(default)]
        pub text: Option<String>,
        /// Caption of a photo, document …
        #[serde(default)]
        pub caption: Option<String>,
        /// A photo, in several sizes (the largest is fetched).
        #[serde(default)]
        pub photo: Vec<PhotoSize>,
        /// A file sent as a document.
        #[serde(default)]
        pub document: Option<Document>,
        /// A voice note (Opus in Ogg).
        #[serde(default)]
        pub voice: Option<Voice>,
    }

    /// Telegram's `PhotoSize` (the fields read).
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = TelegramPhotoSize)]
    pub struct PhotoSize {
        /// The id to `getFile` it with.
        pub file_id: String,
        /// Width.
        #[serde(default)]
        pub width: u64,
        /// Height.
        #[serde(default)]
        pub height: u64,
        /// Size in bytes, if known.
        #[serde(default)]
        pub file_size: Option<u64>,
    }

    /// Telegram's `Document` (the fields read).
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = TelegramDocument)]
    pub struct Document {
        /// The id to `getFile` it with.
        pub file_id: String,
        /// Its name as the sender gave it.
        #[serde(default)]
        pub file_name: Option<String>,
        /// Its type as the sender declared it.
        #[serde(default)]
        pub mime_type: Option<String>,
        /// Size in bytes, if known.
        #[serde(default)]
        pub file_size: Option<u64>,
    }

    /// Telegram's `Voice` (the fields read).
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = TelegramVoice)]
    pub struct Voice {
        /// The id to `getFile` it with.
        pub file_id: String,
        /// Its type (`audio/ogg`).
        #[serde(default)]
        pub mime_type: Option<String>,
        /// Size in bytes, if known.
        #[serde(default)]
        pub file_size: Option<u64>,
    }

    impl TelegramMessage {
        /// The message's file, if it has one: the largest size of a photo, a document or a
        /// voice note.
        pub fn file(&self) -> Option<RemoteFile> {
            if let Some(largest) = self
                .photo
                .iter()
                .max_by_key(|p| (p.file_size.unwrap_or(0), p.width * p.height))
            {
                return Some(RemoteFile {
                    id: largest.file_id.clone(),
                    name: "photo.jpg".to_owned(),
                    content_type: "image/jpeg".to_owned(),
                    size: largest.file_size,
                });
            }
            if let Some(d) = &self.document {
                return Some(RemoteFile {
                    id: d.file_id.clone(),
                    name: d.file_name.clone().unwrap_or_else(|| "document".to_owned()),
                    content_type: d
                        .mime_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".to_owned()),
                    size: d.file_size,
                });
            }
            self.voice.as_ref().map(|v| RemoteFile {
                id: v.file_id.clone(),
                name: "voice.ogg".to_owned(),
                content_type: v
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| "audio/ogg".to_owned()),
                size: v.file_size,
            })
        }
    }

    /// Telegram's `User` (the fields read).
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = TelegramUser)]
    pub struct User {
        /// First name.
        pub first_name: String,
        /// Last name.
        #[serde(default)]
        pub last_name: Option<String>,
    }

    /// Telegram's `Chat` (the fields read).
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = TelegramChat)]
    pub struct Chat {
        /// The chat's id: the `chat_id` replies are sent to.
        pub id: i64,
    }

    /// The Bot API URL of `method` for the inbox's bot.
    fn method_url(inbox: &Inbox, method: &str) -> Option<String> {
        let api = inbox.settings.get(API_URL_KEY)?;
        let token = inbox.secrets.0.get(BOT_TOKEN_KEY)?;
        Some(format!("{api}/bot{token}/{method}"))
    }

    /// Calls a Bot API method: `Ok(result)` when Telegram answers `ok: true`, else its
    /// description (or the transport's error) and the HTTP status if one came.
    pub(crate) async fn call(
        client: &HttpClient,
        timeout: Duration,
        inbox: &Inbox,
        method: &str,
        body: &serde_json::Value,
    ) -> (Result<serde_json::Value, (Option<u16>, String)>, u64) {
        let Some(url) = method_url(inbox, method) else {
            return (Err((None, "the inbox has no bot token".to_owned())), 0);
        };
        let (answer, elapsed) = post_json(client, timeout, &url, None, body).await;
        (result_of(answer), elapsed)
    }

    /// Calls a Bot API method with a file (`sendDocument`, `sendPhoto`): the same answer as
    /// [`call`].
    async fn call_with_file(
        client: &HttpClient,
        timeout: Duration,
        inbox: &Inbox,
        method: &str,
        fields: &[(&str, &str)],
        file: FilePart<'_>,
    ) -> (Result<serde_json::Value, (Option<u16>, String)>, u64) {
        let Some(url) = method_url(inbox, method) else {
            return (Err((None, "the inbox has no bot token".to_owned())), 0);
        };
        let (answer, elapsed) = post_form(client, timeout, &url, None, fields, file).await;
        (result_of(answer), elapsed)
    }

    /// A Bot API answer's `result`, or its description.
    fn result_of(
        answer: Result<(u16, Bytes), String>,
    ) -> Result<serde_json::Value, (Option<u16>, String)> {
        match answer {
            Err(e) => Err((None, e)),
            Ok((status, body)) => {
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if (200..300).contains(&status) && json["ok"] == true {
                    Ok(json["result"].clone())
                } else {
                    let description = json["description"]
                        .as_str()
                        .map(|d| d.chars().take(300).collect::<String>())
                        .unwrap_or_else(|| "not a Bot API answer".to_owned());
                    Err((Some(status), format!("Telegram: {description}")))
                }
            }
        }
    }

    /// Fetches a customer's file: `getFile` for its path, then `GET
    /// <api>/file/bot<token>/<file_path>`, at most `max` bytes (a size declared larger is
    /// refused before anything is downloaded).
    pub(crate) async fn download(
        client: &HttpClient,
        timeout: Duration,
        inbox: &Inbox,
        file: &RemoteFile,
        max: u64,
    ) -> Result<Vec<u8>, FetchError> {
        if file.size.is_some_and(|size| size > max) {
            return Err(FetchError::TooLarge(max));
        }
        let (answer, _) = call(
            client,
            timeout,
            inbox,
            "getFile",
            &serde_json::json!({ "file_id": file.id }),
        )
        .await;
        let found = answer.map_err(|(_, why)| FetchError::Provider(why))?;
        if found["file_size"].as_u64().is_some_and(|size| size > max) {
            return Err(FetchError::TooLarge(max));
        }
        let path = found["file_path"]
            .as_str()
            .filter(|p| !p.is_empty() && !p.contains(".."))
            .ok_or_else(|| FetchError::Provider("Telegram gave no file_path".to_owned()))?;
        let (Some(api), Some(token)) = (
            inbox.settings.get(API_URL_KEY),
            inbox.secrets.0.get(BOT_TOKEN_KEY),
        ) else {
            return Err(FetchError::Provider(
                "the inbox has no bot token".to_owned(),
            ));
        };
        get_bytes(
            client,
            timeout,
            &format!("{api}/file/bot{token}/{path}"),
            None,
            max,
        )
        .await
    }

    /// Sends a reply to the customer's chat: its text by `sendMessage`, or each file by
    /// `sendPhoto` (JPEG and PNG images) or `sendDocument` (anything else) as a multipart
    /// upload, the text as the first file's caption (or first, by `sendMessage`, when it
    /// is longer than a caption may be). A failure ends the attempt: the retry sends the
    /// whole reply again, so a customer may see a file twice, never miss one.
    pub(crate) async fn send_message(
        client: &HttpClient,
        timeout: Duration,
        reply: &Reply,
        files: &[(Attachment, Vec<u8>)],
    ) -> Attempt {
        let m = &reply.message;
        let chat_id: serde_json::Value = match reply.contact.parse::<i64>() {
            Ok(id) => id.into(),
            Err(_) => reply.contact.clone().into(),
        };
        let caption = caption_of(&m.body);
        let mut elapsed_ms = 0;
        if files.is_empty() || (caption.is_none() && !m.body.trim().is_empty()) {
            let body = serde_json::json!({ "chat_id": chat_id, "text": m.body });
            let (result, took) = call(client, timeout, &reply.inbox, "sendMessage", &body).await;
            elapsed_ms += took;
            if let Err(failed) = result {
                return failed_attempt(failed, elapsed_ms);
            }
        }
        let chat = reply.contact.as_str();
        for (i, (attachment, bytes)) in files.iter().enumerate() {
            let (method, field) = match attachment.content_type.as_str() {
                "image/jpeg" | "image/png" => ("sendPhoto", "photo"),
                _ => ("sendDocument", "document"),
            };
            let mut fields = vec![("chat_id", chat)];
            if let (0, Some(caption)) = (i, caption) {
                fields.push(("caption", caption));
            }
            let (result, took) = call_with_file(
                client,
                timeout,
                &reply.inbox,
                method,
                &fields,
                (field, &attachment.name, &attachment.content_type, bytes),
            )
            .await;
            elapsed_ms += took;
            if let Err(failed) = result {
                return failed_attempt(failed, elapsed_ms);
            }
        }
        Attempt {
            status: Some(200),
            error: None,
            elapsed_ms,
        }
    }

    fn failed_attempt((status, error): (Option<u16>, String), elapsed_ms: u64) -> Attempt {
        Attempt {
            // A 200 whose body is not `ok: true` is no success either.
            status: status.filter(|s| !(200..300).contains(s)),
            error: Some(error),
            elapsed_ms,
        }
    }

    /// `deleteWebhook` (pending updates kept): a polling inbox's bot gets its updates by
    /// `getUpdates`, which Telegram refuses (409) while a webhook is set.
    pub(crate) async fn delete_webhook(
        client: &HttpClient,
        timeout: Duration,
        inbox: &Inbox,
    ) -> Result<(), String> {
        let body = serde_json::json!({ "drop_pending_updates": false });
        call(client, timeout, inbox, "deleteWebhook", &body)
            .await
            .0
            .map(drop)
            .map_err(|(_, e)| e)
    }

    /// `setWebhook`: Telegram posts the bot's updates to `url`, each with the header
    /// `X-Telegram-Bot-Api-Secret-Token: <secret>`.
    pub(crate) async fn set_webhook(
        client: &HttpClient,
        timeout: Duration,
        inbox: &Inbox,
        url: &str,
        secret: &str,
    ) -> Result<(), String> {
        let body = serde_json::json!({
            "url": url,
            "secret_token": secret,
            "allowed_updates": ["message"],
        });
        call(client, timeout, inbox, "setWebhook", &body)
            .await
            .0
            .map(drop)
            .map_err(|(_, e)| e)
    }
}

/// The WhatsApp Cloud API
/// (<https://developers.facebook.com/docs/whatsapp/cloud-api>): a webhook with a verify
/// handshake and `X-Hub-Signature-256` in; `POST <api>/<phone-number-id>/messages` with a
/// bearer token out, answered `{"messaging_product":"whatsapp","contacts":[…],"messages":[{"id":"wamid…"}]}`
/// or `{"error":{"message":…,"type":…,"code":…}}`.
pub mod whatsapp {
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;

    use super::*;

    /// A WhatsApp Cloud API webhook notification (the fields read):
    /// `entry[].changes[].value`. Fields not listed are accepted and ignored.
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappNotification)]
    pub struct Notification {
        /// `whatsapp_business_account`.
        pub object: String,
        /// The entries.
        pub entry: Vec<Entry>,
    }

    /// One entry of a notification.
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappEntry)]
    pub struct Entry {
        /// Its changes.
        #[serde(default)]
        pub changes: Vec<Change>,
    }

    /// One change: `field` is `messages` for messages and their statuses.
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappChange)]
    pub struct Change {
        /// What changed.
        pub field: String,
        /// The change.
        pub value: Value,
    }

    /// What a `messages` change carries (statuses of sent messages are not read).
    #[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappValue)]
    pub struct Value {
        /// The senders' profiles.
        #[serde(default)]
        pub contacts: Vec<Contact>,
        /// New messages.
        #[serde(default)]
        pub messages: Vec<Message>,
    }

    /// A sender's profile.
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappContact)]
    pub struct Contact {
        /// Their WhatsApp id (the phone number).
        pub wa_id: String,
        /// Their profile.
        #[serde(default)]
        pub profile: Option<Profile>,
    }

    /// A profile.
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappProfile)]
    pub struct Profile {
        /// The name they chose.
        pub name: String,
    }

    /// An incoming message.
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappMessage)]
    pub struct Message {
        /// The sender's WhatsApp id: replies go `to` it.
        pub from: String,
        /// `wamid.…`: unique.
        pub id: String,
        /// `text`, `image`, `document`, …
        #[serde(rename = "type")]
        pub kind: String,
        /// A text message's text.
        #[serde(default)]
        pub text: Option<Text>,
        /// An image message's image.
        #[serde(default)]
        pub image: Option<Media>,
        /// A document message's document.
        #[serde(default)]
        pub document: Option<Media>,
        /// An audio message's audio (voice notes too).
        #[serde(default)]
        pub audio: Option<Media>,
    }

    /// A media object of an incoming message (the fields read).
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappMedia)]
    pub struct Media {
        /// The media id to `GET /{media-id}` it with.
        pub id: String,
        /// Its type, as WhatsApp declares it.
        #[serde(default)]
        pub mime_type: Option<String>,
        /// A document's file name.
        #[serde(default)]
        pub filename: Option<String>,
        /// An image's or a document's caption.
        #[serde(default)]
        pub caption: Option<String>,
    }

    impl Message {
        /// The message's file, if it is an image, a document or an audio message, and its
        /// caption.
        pub fn file(&self) -> Option<(RemoteFile, Option<String>)> {
            let (media, name) = match self.kind.as_str() {
                "image" => (self.image.as_ref()?, "image"),
                "document" => (self.document.as_ref()?, "document"),
                "audio" => (self.audio.as_ref()?, "audio"),
                _ => return None,
            };
            let content_type = media
                .mime_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            // `audio/ogg; codecs=opus`: the essence names the file.
            let extension = match content_type.split(';').next().unwrap_or("").trim() {
                "image/jpeg" => ".jpg",
                "image/png" => ".png",
                "image/webp" => ".webp",
                "audio/ogg" => ".ogg",
                "application/pdf" => ".pdf",
                _ => "",
            };
            Some((
                RemoteFile {
                    id: media.id.clone(),
                    name: media
                        .filename
                        .clone()
                        .unwrap_or_else(|| format!("{name}{extension}")),
                    content_type,
                    size: None,
                },
                media.caption.clone(),
            ))
        }
    }

    /// A text.
    #[derive(Debug, Deserialize, utoipa::ToSchema)]
    #[schema(as = WhatsappText)]
    pub struct Text {
        /// The text.
        pub body: String,
    }

    /// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` keyed with the
    /// inbox's app secret, compared in constant time.
    pub fn signature_is_valid(inbox: &Inbox, header: &str, body: &[u8]) -> bool {
        let Some(secret) = inbox.secrets.0.get(APP_SECRET_KEY) else {
            return false;
        };
        let Some(given) = header
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    }

    /// The inbox's API base, phone-number id and access token.
    fn account(inbox: &Inbox) -> Option<(&str, &str, &str)> {
        Some((
            inbox.settings.get(API_URL_KEY)?,
            inbox.settings.get(PHONE_NUMBER_ID_KEY)?,
            inbox.secrets.0.get(ACCESS_TOKEN_KEY)?,
        ))
    }

    /// Fetches a customer's media: `GET <api>/<media-id>` (with the access token) answers
    /// its `url` and `file_size`; then `GET <url>` with the same token, at most `max`
    /// bytes (a size declared larger is refused before anything is downloaded).
    pub(crate) async fn download(
        client: &HttpClient,
        timeout: Duration,
        inbox: &Inbox,
        file: &RemoteFile,
        max: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let Some((api, _, token)) = account(inbox) else {
            return Err(FetchError::Provider(
                "the inbox has no access token".to_owned(),
            ));
        };
        if file.id.is_empty() || !file.id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(FetchError::Provider("not a media id".to_owned()));
        }
        let described = get_bytes(
            client,
            timeout,
            &format!("{api}/{}", file.id),
            Some(token),
            64 * 1024,
        )
        .await
        .map_err(|e| match e {
            FetchError::TooLarge(_) => FetchError::Provider("not a media answer".to_owned()),
            e => e,
        })?;
        let json: serde_json::Value = serde_json::from_slice(&described).unwrap_or_default();
        // Meta documents `file_size` as a number in some places and a string in others.
        let size = json["file_size"]
            .as_u64()
            .or_else(|| json["file_size"].as_str().and_then(|s| s.parse().ok()));
        if size.is_some_and(|size| size > max) {
            return Err(FetchError::TooLarge(max));
        }
        let url = json["url"]
            .as_str()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .ok_or_else(|| FetchError::Provider("WhatsApp gave no media url".to_owned()))?;
        get_bytes(client, timeout, url, Some(token), max).await
    }

    /// Sends a reply to the customer's number: a message marked as the inbox's template
    /// goes as `type: template`; files are each uploaded (`POST <api>/<phone-number-id>/media`,
    /// multipart) and sent as an `image` (JPEG, PNG), `audio` (Ogg) or `document` message
    /// with the media id, the text as the first one's caption (or first, as a text
    /// message, when longer than a caption may be); text alone as `type: text`. A failure
    /// ends the attempt, and the retry sends the whole reply again.
    pub(crate) async fn send_message(
        client: &HttpClient,
        timeout: Duration,
        reply: &Reply,
        files: &[(Attachment, Vec<u8>)],
    ) -> Attempt {
        let Some((api, phone, token)) = account(&reply.inbox) else {
            return Attempt {
                status: None,
                error: Some("the inbox lacks its phone-number id or access token".to_owned()),
                elapsed_ms: 0,
            };
        };
        let m = &reply.message;
        let messages = format!("{api}/{phone}/messages");
        let to = |kind: &str, content: serde_json::Value| {
            serde_json::json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": reply.contact,
                "type": kind,
                kind: content,
            })
        };
        let mut elapsed_ms = 0;
        if let Some(name) = m.metadata.get(TEMPLATE_KEY) {
            let language = m
                .metadata
                .get(TEMPLATE_LANGUAGE_META_KEY)
                .map(String::as_str)
                .unwrap_or("en_US");
            let mut template =
                serde_json::json!({ "name": name, "language": { "code": language } });
            // The Cloud API's form for a template's variables: one `body` component whose
            // `text` parameters fill `{{1}}`, `{{2}}`, … in order.
            let parameters: Vec<String> = m
                .metadata
                .get(TEMPLATE_PARAMETERS_KEY)
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default();
            if !parameters.is_empty() {
                let parameters: Vec<_> = parameters
                    .iter()
                    .map(|text| serde_json::json!({ "type": "text", "text": text }))
                    .collect();
                template["components"] =
                    serde_json::json!([{ "type": "body", "parameters": parameters }]);
            }
            let body = to("template", template);
            return attempt(post_json(client, timeout, &messages, Some(token), &body).await);
        }
        let caption = caption_of(&m.body);
        if files.is_empty() || (caption.is_none() && !m.body.trim().is_empty()) {
            let body = to(
                "text",
                serde_json::json!({ "preview_url": false, "body": m.body }),
            );
            let sent = attempt(post_json(client, timeout, &messages, Some(token), &body).await);
            elapsed_ms += sent.elapsed_ms;
            if sent.error.is_some() {
                return Attempt { elapsed_ms, ..sent };
            }
        }
        for (i, (attachment, bytes)) in files.iter().enumerate() {
            let uploaded = post_form(
                client,
                timeout,
                &format!("{api}/{phone}/media"),
                Some(token),
                &[
                    ("messaging_product", "whatsapp"),
                    ("type", &attachment.content_type),
                ],
                ("file", &attachment.name, &attachment.content_type, bytes),
            )
            .await;
            elapsed_ms += uploaded.1;
            let media_id = match &uploaded.0 {
                Ok((status, body)) if (200..300).contains(status) => {
                    serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default()["id"]
                        .as_str()
                        .map(str::to_owned)
                }
                _ => None,
            };
            let Some(media_id) = media_id else {
                let failed = attempt(uploaded);
                return Attempt {
                    elapsed_ms,
                    error: failed
                        .error
                        .or_else(|| Some("WhatsApp: no media id".to_owned())),
                    status: failed.status.filter(|s| !(200..300).contains(s)),
                };
            };
            let caption = if i == 0 { caption } else { None };
            let body = match attachment.content_type.as_str() {
                "image/jpeg" | "image/png" => to(
                    "image",
                    serde_json::json!({ "id": media_id, "caption": caption }),
                ),
                // WhatsApp's audio messages carry no caption.
                "audio/ogg" => to("audio", serde_json::json!({ "id": media_id })),
                _ => to(
                    "document",
                    serde_json::json!({ "id": media_id, "caption": caption, "filename": attachment.name }),
                ),
            };
            let sent = attempt(post_json(client, timeout, &messages, Some(token), &body).await);
            elapsed_ms += sent.elapsed_ms;
            if sent.error.is_some() {
                return Attempt { elapsed_ms, ..sent };
            }
        }
        Attempt {
            status: Some(200),
            error: None,
            elapsed_ms,
        }
    }

    /// A Cloud API answer as an attempt: 2xx, or Meta's `error.message`.
    fn attempt((answer, elapsed_ms): (Result<(u16, Bytes), String>, u64)) -> Attempt {
        match answer {
            Err(e) => Attempt {
                status: None,
                error: Some(e),
                elapsed_ms,
            },
            Ok((status, _)) if (200..300).contains(&status) => Attempt {
                status: Some(status),
                error: None,
                elapsed_ms,
            },
            Ok((status, body)) => {
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let why = json["error"]["message"]
                    .as_str()
                    .map(|d| d.chars().take(300).collect::<String>())
                    .unwrap_or_else(|| format!("HTTP {status}"));
                Attempt {
                    status: Some(status),
                    error: Some(format!("WhatsApp: {why}")),
                    elapsed_ms,
                }
            }
        }
    }
}
