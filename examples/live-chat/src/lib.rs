//! # example-live-chat
//!
//! A starter template serving the LocalPro Live Chat API (seed document 003) on the
//! chat engine: `/api/live-chat/…` for guests, `/api/admin/live-chat/…` for staff and
//! the `/ws/live-chat` WebSocket, with SQLite persistence, real staff tokens and
//! session ids that grant nothing without the creating browser's cookie.
//!
//! ```text
//! cargo run -p example-live-chat -- --demo
//! ```
//!
//! This crate holds routes and JSON shapes only; every rule (who may read, assign,
//! delete, upload) is the engine's. See the README for the routes and for each place
//! this template deliberately differs from the document.

mod admin;
pub mod guest;
pub mod ids;
mod public;
mod shapes;
mod socket;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chat_core::{Actor, ConversationId, Engine, Limits, TenantId, TenantSettings, UploadLimits};
use chat_server::auth::{self, Caller};
use chat_server::http::{self, Resp};
use chat_server::ratelimit::Limiter;
use chat_server::{Context, Extension, Handled};
use chat_starter::{Starter, beside, signing_key};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Request, StatusCode};
use serde_json::json;

pub use ids::SessionIds;

/// The tenant this template serves.
pub const TENANT_NAME: &str = "LocalPro Live Chat";

/// Largest upload, per file (the document's 10 MB).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Most files per upload or message (the document's 5).
pub const MAX_FILES: usize = 5;
/// Largest JSON body; the document's bodies are a few hundred bytes.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// The document's file types: extension and the MIME type it is stored and served as.
pub const FILE_TYPES: [(&str, &str); 11] = [
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("pdf", "application/pdf"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("txt", "text/plain"),
];

/// How many requests one IP may make in a window (the document: 100 per 15 minutes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests per window.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            requests: 100,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Settings of the template.
#[derive(Clone, Debug)]
pub struct Options {
    /// The per-IP limit on the document's routes and socket handshakes; `None` turns it
    /// off (the document applies it
    /// "in production mode").
    pub rate_limit: Option<RateLimit>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate_limit: Some(RateLimit::default()),
        }
    }
}

/// Opens (or creates) the template's database: one tenant whose new chats wait as
/// `pending` for an agent (no bot, no automatic assignment, as in the document), and the
/// document's upload limits.
pub async fn open(db: &Path) -> std::result::Result<Starter, chat_starter::Error> {
    open_with(db, |builder| builder).await
}

/// [`open`], with a last say over the engine (tests set a manual clock here).
pub async fn open_with(
    db: &Path,
    configure: impl FnOnce(chat_core::EngineBuilder) -> chat_core::EngineBuilder,
) -> std::result::Result<Starter, chat_starter::Error> {
    let settings = TenantSettings {
        welcome_message: None,
        bot_enabled: false,
        auto_assign: false,
        ..TenantSettings::default()
    };
    Starter::open(db, TENANT_NAME, settings, |builder| {
        configure(builder).limits(Limits {
            max_attachments: MAX_FILES,
            uploads: UploadLimits {
                max_bytes: MAX_FILE_BYTES,
                allowed_types: FILE_TYPES.iter().map(|(_, m)| (*m).to_owned()).collect(),
            },
            ..Limits::default()
        })
    })
    .await
}

/// Builds the extension for a starter: its session-id key lives beside the database,
/// and the session ids widgets chose are read back from the conversations.
pub async fn live_chat(
    starter: &Starter,
    options: Options,
) -> std::result::Result<Arc<LiveChat>, chat_starter::Error> {
    let key = signing_key(&beside(&starter.db, "live-chat-session.key"))?;
    let ids = SessionIds::load(key, &starter.engine, starter.tenant).await?;
    let limiter = options.rate_limit.map(|r| {
        let requests = f64::from(r.requests.max(1));
        Limiter::new(requests / r.window.as_secs_f64().max(0.001), requests)
    });
    Ok(Arc::new(LiveChat {
        tenant: starter.tenant,
        ids,
        limiter,
        window_minutes: options
            .rate_limit
            .map_or(15, |r| r.window.as_secs().div_ceil(60)),
    }))
}

/// The document's API as an [`Extension`] of the chat server.
pub struct LiveChat {
    tenant: TenantId,
    ids: SessionIds,
    limiter: Option<Limiter>,
    window_minutes: u64,
}

impl LiveChat {
    /// The session id of a conversation, as guests and staff address it.
    pub fn session_id(&self, id: ConversationId) -> String {
        self.ids.issue(id)
    }

    /// Seeds the document's example chat for `--demo`: John Doe, from the pricing page,
    /// asking about his order. Idempotent: if John already has a chat, that one is kept.
    /// Returns its session id.
    pub async fn seed_demo(&self, engine: &Engine) -> chat_core::Result<String> {
        let system = Actor::System {
            tenant: self.tenant,
        };
        let email = "john@example.com";
        if let Some(existing) = engine.contact_history(&system, email).await?.first() {
            return Ok(self.session_id(existing.id));
        }
        let metadata = [
            (shapes::meta::NAME, "John Doe"),
            (shapes::meta::EMAIL, email),
            (shapes::meta::PHONE, "+1234567890"),
            (shapes::meta::PAGE_URL, "https://example.com/pricing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let welcome = public::open_session(
            engine,
            &system,
            chat_core::ContactInput {
                name: Some("John Doe".into()),
                email: Some(email.into()),
                phone: Some("+1234567890".into()),
                ..Default::default()
            },
            None,
            chat_core::Priority::Medium,
            metadata,
        )
        .await?;
        let conversation = welcome.conversation;
        let guest = Actor::Customer {
            tenant: self.tenant,
            contact: conversation.contact_id,
            conversation: Some(conversation.id),
        };
        engine
            .post_message(
                &guest,
                conversation.id,
                chat_core::PostMessage::text("Hello, I need help with my order"),
            )
            .await?;
        Ok(self.session_id(conversation.id))
    }
}

/// A failed request, answered as `{"success": false, "message": …}`.
#[derive(Debug)]
pub(crate) struct Fail {
    status: StatusCode,
    message: String,
}

pub(crate) type Result<T> = std::result::Result<T, Fail>;

impl Fail {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn session_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Session not found")
    }
    fn response(&self) -> Resp {
        http::json(
            self.status,
            &json!({ "success": false, "message": self.message }),
        )
    }
}

impl From<chat_core::Error> for Fail {
    fn from(e: chat_core::Error) -> Self {
        use chat_core::Error;
        match e {
            Error::NotFound("conversation") => Self::session_not_found(),
            Error::NotFound("agent") => Self::new(StatusCode::NOT_FOUND, "Agent not found"),
            Error::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                capitalize(&format!("{what} not found")),
            ),
            Error::Forbidden(what) => {
                Self::new(StatusCode::FORBIDDEN, format!("Not authorized to {what}"))
            }
            Error::Validation { message, field } => {
                Self::bad_request(format!("{field}: {message}"))
            }
            Error::InvalidTransition { from, to } => Self::bad_request(format!(
                "A {} session cannot become {}",
                shapes::status(from),
                shapes::status(to)
            )),
            Error::Conflict(why) => Self::bad_request(capitalize(why.message())),
            other => {
                tracing::error!(error = %other, "engine failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Server error")
            }
        }
    }
}

impl From<chat_server::error::ApiError> for Fail {
    fn from(e: chat_server::error::ApiError) -> Self {
        // The document answers every bad input with 400.
        let status = if e.status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            e.status
        };
        Self::new(status, capitalize(&e.message))
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>()
    })
}

/// What a handler needs: the server, the template and the caller's address.
pub(crate) struct Ctx<'a> {
    pub(crate) app: &'a Context,
    pub(crate) chat: &'a LiveChat,
    pub(crate) ip: IpAddr,
}

impl Ctx<'_> {
    pub(crate) fn engine(&self) -> &Engine {
        self.app.engine()
    }

    pub(crate) fn system(&self) -> Actor {
        Actor::System {
            tenant: self.chat.tenant,
        }
    }

    pub(crate) fn session_id(&self, id: ConversationId) -> String {
        self.chat.ids.issue(id)
    }

    /// The conversation behind a session id, for staff (404 for an id that names none;
    /// the engine's policy decides what the staff member may do with it).
    pub(crate) fn conversation_id(&self, session_id: &str) -> Result<ConversationId> {
        self.chat
            .ids
            .check(session_id)
            .ok_or_else(Fail::session_not_found)
    }

    /// The visitor of a session: a customer scoped to that one conversation. An issued
    /// id is its own credential; a widget-chosen one needs one of `tokens` to be the
    /// session's visitor token (see [`guest`]). Any other case is "Session not found",
    /// the same answer as for an id that names nothing, so probing learns nothing.
    pub(crate) async fn visitor(
        &self,
        session_id: &str,
        tokens: &[String],
    ) -> Result<(Actor, chat_core::Conversation)> {
        let (id, kind) = self
            .chat
            .ids
            .lookup(session_id)
            .ok_or_else(Fail::session_not_found)?;
        let conversation = self.engine().conversation(&self.system(), id).await?;
        if kind == ids::Kind::Chosen && !guest::holds(self.engine(), &conversation, tokens).await {
            return Err(Fail::session_not_found());
        }
        let actor = Actor::Customer {
            tenant: self.chat.tenant,
            contact: conversation.contact_id,
            conversation: Some(id),
        };
        Ok((actor, conversation))
    }

    /// The staff member calling, from `Authorization: Bearer` or (for browsers) a
    /// `token` / `access_token` query parameter.
    pub(crate) async fn staff(&self, req: &Request<Incoming>) -> Result<Actor> {
        let token = staff_token(req)?;
        let Some(token) = token else {
            return Err(Fail::new(
                StatusCode::UNAUTHORIZED,
                "No token, authorization denied",
            ));
        };
        if token.starts_with(auth::VISITOR_PREFIX) || token.starts_with(auth::BOT_PREFIX) {
            return Err(Fail::new(
                StatusCode::FORBIDDEN,
                "Access denied. Staff only.",
            ));
        }
        match self.app.authenticate(Some(&token)).await {
            Ok(Caller::Actor(actor @ Actor::Staff { .. }))
                if actor.tenant() == self.chat.tenant =>
            {
                Ok(actor)
            }
            Ok(_) => Err(Fail::new(
                StatusCode::FORBIDDEN,
                "Access denied. Staff only.",
            )),
            Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => Err(e.into()),
            Err(_) => Err(Fail::new(StatusCode::UNAUTHORIZED, "Token is not valid")),
        }
    }
}

fn staff_token(req: &Request<Incoming>) -> Result<Option<String>> {
    let query = req.uri().query();
    if let Some(token) = auth::bearer(req.headers(), query)
        .map_err(|_| Fail::new(StatusCode::UNAUTHORIZED, "Token is not valid"))?
    {
        return Ok(Some(token));
    }
    Ok(query.and_then(|q| http::query_param(q, "token")))
}

/// Reads a JSON body (an empty body is the default value).
pub(crate) async fn json_body<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T> {
    let (parts, body) = req.into_parts();
    http::read_json_or_default(&parts.headers, body, MAX_JSON_BYTES)
        .await
        .map_err(Fail::from)
}

/// The value of a query parameter.
pub(crate) fn query(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri()
        .query()
        .and_then(|q| http::query_param(q, name))
        .filter(|v| !v.is_empty())
}

/// `page` and `limit` from the query (1-based page; limit capped at 100).
pub(crate) fn paging(req: &Request<Incoming>, default_limit: usize) -> (usize, usize) {
    let number = |name: &str| query(req, name).and_then(|v| v.parse::<usize>().ok());
    let page = number("page").unwrap_or(1).max(1);
    let limit = number("limit").unwrap_or(default_limit).clamp(1, 100);
    (page, limit)
}

pub(crate) fn ok(status: StatusCode, body: serde_json::Value) -> Resp {
    http::json(status, &body)
}

#[async_trait::async_trait]
impl Extension for LiveChat {
    async fn handle(&self, cx: &Context, req: Request<Incoming>) -> Handled {
        let path = req.uri().path();
        let public = path == "/api/live-chat" || path.starts_with("/api/live-chat/");
        let admin = path == "/api/admin/live-chat" || path.starts_with("/api/admin/live-chat/");
        let socket = path == "/ws/live-chat";
        if !(public || admin || socket) {
            return Handled::Declined(req);
        }
        // Socket handshakes count too: a reconnect with `since` replays from the log, so
        // an unlimited stream of them would be an unlimited stream of log scans.
        if let Some(limiter) = &self.limiter
            && let Err(wait) = limiter.check(&cx.ip().to_string())
        {
            let mut response = Fail::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many requests from this IP, please try again after {} minutes",
                    self.window_minutes
                ),
            )
            .response();
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait.max(1)));
            return Handled::Answered("/api/live-chat (rate limited)", response);
        }
        let ctx = Ctx {
            app: cx,
            chat: self,
            ip: cx.ip(),
        };
        let (name, answer) = if socket {
            ("/ws/live-chat", socket::open(&ctx, req).await)
        } else if admin {
            admin::route(&ctx, req).await
        } else {
            public::route(&ctx, req).await
        };
        let response = answer.unwrap_or_else(|fail| fail.response());
        Handled::Answered(name, response)
    }
}
