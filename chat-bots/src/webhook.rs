//! The webhook bot: an external bot service receives signed events and answers.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chat_core::{
    Bot, BotDecision, BotErrorKind, BotTurn, Conversation, Error, Message, Result, Sender,
};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Request, Uri};
use serde::{Deserialize, Serialize};

use crate::http::{self, HttpClient};
use crate::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, unix_now};

/// Configuration of the [`WebhookBot`].
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfig {
    /// Where events are POSTed, e.g. `https://bots.example.com/chat-events`.
    pub url: String,
    /// Time for the whole exchange.
    pub timeout: Duration,
    /// Most recent messages sent along in `history`.
    pub history: usize,
    /// Largest answer accepted, in bytes.
    pub max_response_bytes: usize,
    /// Longest stored reply, in characters.
    pub max_reply_chars: usize,
    /// PEM file of extra CA certificates to trust for an `https://` URL, beside the
    /// bundled Mozilla roots and the system's.
    pub ca_file: Option<std::path::PathBuf>,
}

impl WebhookConfig {
    /// Defaults for this URL: 10 s timeout, 20 messages of history, 64 KiB answers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Duration::from_secs(10),
            history: 20,
            max_response_bytes: 64 * 1024,
            max_reply_chars: 10_000,
            ca_file: None,
        }
    }
}

/// A bot that forwards each customer message to an external bot service (the Chatwoot
/// agent-bot shape), signed with HMAC-SHA256, and follows its synchronous answer.
///
/// The engine consults it only in `bot` mode. The service may also answer `none` and
/// speak later through the HTTP API with a bot token.
///
/// ```
/// use chat_bots::{WebhookBot, WebhookConfig};
/// let bot = WebhookBot::new(WebhookConfig::new("http://127.0.0.1:9000/events"), "s3cret").unwrap();
/// assert!(!format!("{bot:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct WebhookBot {
    config: WebhookConfig,
    endpoint: Uri,
    secret: Vec<u8>,
    client: HttpClient,
}

impl fmt::Debug for WebhookBot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookBot")
            .field("config", &self.config)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The event POSTed to the service.
#[derive(Serialize)]
struct Event<'a> {
    event: &'static str,
    conversation: &'a Conversation,
    message: Option<&'a Message>,
    history: &'a [Message],
}

/// The service's synchronous answer.
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Answer {
    Reply {
        text: String,
        #[serde(default)]
        metadata: BTreeMap<String, String>,
    },
    Handoff {
        #[serde(default)]
        department: Option<String>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
    None,
}

impl WebhookBot {
    /// A bot posting to `config.url`, signing with `secret` (share it with the service).
    ///
    /// [`Error::Validation`] when the URL is not an absolute `http://` or `https://` URL or the secret
    /// is empty.
    pub fn new(config: WebhookConfig, secret: impl Into<Vec<u8>>) -> Result<Self> {
        let endpoint = http::endpoint("url", &config.url, "")?;
        let secret = secret.into();
        if secret.is_empty() {
            return Err(Error::validation("secret", "must not be empty"));
        }
        let client = http::client("ca_file", config.ca_file.as_deref())?;
        Ok(Self {
            config,
            endpoint,
            secret,
            client,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    fn event_body(&self, turn: &BotTurn<'_>) -> Result<Vec<u8>> {
        let visible: Vec<&Message> = turn.history.iter().filter(|m| !m.is_note()).collect();
        let last = visible.iter().rposition(|m| m.sender == Sender::Customer);
        let message = last.map(|i| visible[i]);
        let before = last.unwrap_or(visible.len());
        let start = before.saturating_sub(self.config.history);
        let history: Vec<Message> = visible[start..before]
            .iter()
            .map(|m| (*m).clone())
            .collect();
        let event = Event {
            event: "message_created",
            conversation: turn.conversation,
            message,
            history: &history,
        };
        serde_json::to_vec(&event).map_err(|e| http::config_error("encoding the event", e))
    }

    async fn exchange(&self, body: Vec<u8>) -> Result<BotDecision> {
        let timestamp = unix_now();
        let signature = sign(&self.secret, timestamp, &body);
        let request = Request::post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, http::USER_AGENT)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| http::config_error("building the request", e))?;
        let response = http::send(&self.client, request).await?;
        http::check_status(&response)?;
        let bytes =
            http::read_bounded(&mut response.into_body(), self.config.max_response_bytes).await?;
        // An empty answer (e.g. 202 or 204) means the service will answer later, if at all.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(BotDecision::Silent);
        }
        let answer: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| crate::openai::format_error("answer is not a bot action", e))?;
        self.decide(answer)
    }

    fn decide(&self, answer: Answer) -> Result<BotDecision> {
        Ok(match answer {
            Answer::None => BotDecision::Silent,
            Answer::Reply { text, metadata } => {
                let text = http::clean_text(&text, self.config.max_reply_chars);
                if text.is_empty() {
                    return Err(Error::bot(
                        BotErrorKind::Format,
                        "the service replied with empty text",
                    ));
                }
                BotDecision::Reply { text, metadata }
            }
            Answer::Handoff {
                department,
                reason,
                message,
            } => BotDecision::Handoff {
                department: http::short_text(department, 200),
                reason: http::short_text(reason, 500),
                message: message
                    .map(|m| http::clean_text(&m, self.config.max_reply_chars))
                    .filter(|m| !m.is_empty()),
            },
        })
    }
}

#[async_trait]
impl Bot for WebhookBot {
    async fn respond(&self, turn: BotTurn<'_>) -> Result<BotDecision> {
        let body = self.event_body(&turn)?;
        let timeout = self.config.timeout;
        tokio::time::timeout(timeout, self.exchange(body))
            .await
            .unwrap_or_else(|_| Err(http::timed_out(timeout)))
    }
}
