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
    ACCESS_TOKEN_KEY, API_URL_KEY, APP_SECRET_KEY, Attempt, BOT_TOKEN_KEY, Inbox, InboxKind,
    PHONE_NUMBER_ID_KEY, Reply, Sender,
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
pub(crate) async fn send(client: &HttpClient, timeout: Duration, reply: &Reply) -> Attempt {
    match reply.inbox.kind {
        InboxKind::Telegram => telegram::send_message(client, timeout, reply).await,
        InboxKind::Whatsapp => whatsapp::send_message(client, timeout, reply).await,
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

/// Posts a JSON body and reads the answer: its status and body, or why none came. Neither
/// the URL (a Bot API URL holds the bot's token) nor the body is in the error.
pub(crate) async fn post_json(
    client: &HttpClient,
    timeout: Duration,
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> (Result<(u16, Bytes), String>, u64) {
    let started = Instant::now();
    let mut request = Request::post(url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("chat-server/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(
            serde_json::to_vec(body).expect("JSON values serialize"),
        )));
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

/// The Telegram Bot API (<https://core.telegram.org/bots/api>): `POST
/// <api>/bot<token>/<method>` with a JSON body, answered `{"ok": true, "result": …}` or
/// `{"ok": false, "error_code": …, "description": "…"}`.
pub mod telegram {
    use super::*;

    /// What Telegram calls with (a subset of its `Update` object): a new message in a
    /// chat with the bot. Other updates (edits, channel posts, callbacks) carry no
    /// `message` and are acknowledged without storing anything.
    #[derive(Debug, Deserialize)]
    pub struct Update {
        /// The update's id.
        pub update_id: i64,
        /// A new incoming message.
        #[serde(default)]
        pub message: Option<TelegramMessage>,
    }

    /// Telegram's `Message` (the fields read).
    #[derive(Debug, Deserialize)]
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
    }

    /// Telegram's `User` (the fields read).
    #[derive(Debug, Deserialize)]
    pub struct User {
        /// First name.
        pub first_name: String,
        /// Last name.
        #[serde(default)]
        pub last_name: Option<String>,
    }

    /// Telegram's `Chat` (the fields read).
    #[derive(Debug, Deserialize)]
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
        let result = match answer {
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
        };
        (result, elapsed)
    }

    /// `sendMessage` to the customer's chat. A message with files sends its text (or, with
    /// no text, their names): files are not uploaded to Telegram (no `sendDocument` yet).
    pub(crate) async fn send_message(
        client: &HttpClient,
        timeout: Duration,
        reply: &Reply,
    ) -> Attempt {
        let m = &reply.message;
        let mut text = m.body.clone();
        if text.trim().is_empty() {
            text = m
                .attachments
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
        }
        let chat_id: serde_json::Value = match reply.contact.parse::<i64>() {
            Ok(id) => id.into(),
            Err(_) => reply.contact.clone().into(),
        };
        let body = serde_json::json!({ "chat_id": chat_id, "text": text });
        let (result, elapsed_ms) = call(client, timeout, &reply.inbox, "sendMessage", &body).await;
        match result {
            Ok(_) => Attempt {
                status: Some(200),
                error: None,
                elapsed_ms,
            },
            Err((status, error)) => Attempt {
                // A 200 whose body is not `ok: true` is no success either.
                status: status.filter(|s| !(200..300).contains(s)),
                error: Some(error),
                elapsed_ms,
            },
        }
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

    /// A webhook notification (the fields read): `entry[].changes[].value`.
    #[derive(Debug, Deserialize)]
    pub struct Notification {
        /// `whatsapp_business_account`.
        pub object: String,
        /// The entries.
        pub entry: Vec<Entry>,
    }

    /// One entry of a notification.
    #[derive(Debug, Deserialize)]
    pub struct Entry {
        /// Its changes.
        #[serde(default)]
        pub changes: Vec<Change>,
    }

    /// One change: `field` is `messages` for messages and their statuses.
    #[derive(Debug, Deserialize)]
    pub struct Change {
        /// What changed.
        pub field: String,
        /// The change.
        pub value: Value,
    }

    /// What a `messages` change carries (statuses of sent messages are not read).
    #[derive(Debug, Default, Deserialize)]
    pub struct Value {
        /// The senders' profiles.
        #[serde(default)]
        pub contacts: Vec<Contact>,
        /// New messages.
        #[serde(default)]
        pub messages: Vec<Message>,
    }

    /// A sender's profile.
    #[derive(Debug, Deserialize)]
    pub struct Contact {
        /// Their WhatsApp id (the phone number).
        pub wa_id: String,
        /// Their profile.
        #[serde(default)]
        pub profile: Option<Profile>,
    }

    /// A profile.
    #[derive(Debug, Deserialize)]
    pub struct Profile {
        /// The name they chose.
        pub name: String,
    }

    /// An incoming message.
    #[derive(Debug, Deserialize)]
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
    }

    /// A text.
    #[derive(Debug, Deserialize)]
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

    /// Sends a text message to the customer's number.
    pub(crate) async fn send_message(
        client: &HttpClient,
        timeout: Duration,
        reply: &Reply,
    ) -> Attempt {
        let inbox = &reply.inbox;
        let (Some(api), Some(phone), Some(token)) = (
            inbox.settings.get(API_URL_KEY),
            inbox.settings.get(PHONE_NUMBER_ID_KEY),
            inbox.secrets.0.get(ACCESS_TOKEN_KEY),
        ) else {
            return Attempt {
                status: None,
                error: Some("the inbox lacks its phone-number id or access token".to_owned()),
                elapsed_ms: 0,
            };
        };
        let m = &reply.message;
        let mut text = m.body.clone();
        if text.trim().is_empty() {
            text = m
                .attachments
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
        }
        let body = serde_json::json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": reply.contact,
            "type": "text",
            "text": { "preview_url": false, "body": text },
        });
        let url = format!("{api}/{phone}/messages");
        let (answer, elapsed_ms) = post_json(client, timeout, &url, Some(token), &body).await;
        match answer {
            Err(e) => Attempt {
                status: None,
                error: Some(e),
                elapsed_ms,
            },
            Ok((status, body)) if (200..300).contains(&status) => {
                let _ = body;
                Attempt {
                    status: Some(status),
                    error: None,
                    elapsed_ms,
                }
            }
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
