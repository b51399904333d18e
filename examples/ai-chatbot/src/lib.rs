//! Seed document 004's AI chatbot backend, served by the engine.
//!
//! ```text
//! cargo run -p example-ai-chatbot -- --demo
//! ```
//!
//! Users sign up (`POST /users/`), log in with the OAuth2 password form (`POST /token`)
//! and keep personal chats (`/chats/…`) that the AI answers: the LLM bot when an
//! OpenAI-compatible endpoint is configured, the rule bot otherwise. `/ws?token=` pushes
//! new messages, read receipts and typing indicators. A user is an engine contact and a
//! chat is one of its conversations, so one user never sees another's chats.

// Handlers fail with a finished response in the document's error shape; it is answered
// at once, so its size on the error path costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

use chat_starter::fastapi;
mod socket;

use std::path::Path;
use std::sync::{Arc, LazyLock};

use chat_core::policy::Viewer;
use chat_core::{
    Actor, BotFailure, Contact, ContactId, Conversation, ConversationFilter, ConversationId,
    Message, MessageId, MessageKind, MessagePage, OpenConversation, PostMessage, RuleBot,
    RuleBotConfig, Sender, TenantId, TenantSettings,
};
use chat_server::accounts;
use chat_server::auth::{self, Caller};
use chat_server::extension::{Matched, PathTable};
use chat_server::http::{self, Resp};
use chat_server::{Context, Extension, Handled};
use chat_starter::Starter;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

pub use socket::Typing;

/// Largest request body.
pub const MAX_BODY: usize = 64 * 1024;

/// Most chats or messages one list answer holds.
pub const MAX_LIST: usize = 5_000;

/// The tenant the template keeps its data under.
pub const TENANT: &str = "AI Chatbot";

/// Message metadata keys for the document's fields the engine has no column for.
const MEDIA_URLS: &str = "ai_chatbot.media_urls";
const IMPORTANCE: &str = "ai_chatbot.importance_level";

/// An OpenAI-compatible endpoint for the AI's answers.
#[derive(Clone, Debug)]
pub struct LlmSettings {
    /// Base URL, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// The API key, if the endpoint needs one.
    pub api_key: Option<String>,
    /// System prompt (default: the document's "You are a helpful assistant.").
    pub system_prompt: Option<String>,
}

/// Opens the template's engine on `db`. The AI is the LLM bot when `llm` is given and
/// the rule bot otherwise; either way it never hands a personal chat to a human queue,
/// and a failing LLM leaves the chat as it is instead of queueing it.
pub async fn open(db: &Path, llm: Option<LlmSettings>) -> Result<Starter, chat_starter::Error> {
    let bot: Arc<dyn chat_core::Bot> = match llm {
        Some(settings) => {
            let mut config = chat_bots::LlmConfig::new(settings.base_url, settings.model);
            config.system_prompt = settings
                .system_prompt
                .unwrap_or_else(|| "You are a helpful assistant.".into());
            let mut bot = chat_bots::LlmBot::new(config)?;
            if let Some(key) = settings.api_key {
                bot = bot.with_api_key(key);
            }
            Arc::new(bot)
        }
        None => Arc::new(RuleBot::new(RuleBotConfig {
            handoff_phrases: Vec::new(),
            handoff_after_unanswered: 0,
            ..RuleBotConfig::default()
        })?),
    };
    Starter::open(db, TENANT, TenantSettings::default(), |b| {
        b.bot(bot).on_bot_failure(BotFailure::Ignore)
    })
    .await
}

/// The document's routes for `starter`'s tenant.
pub fn extension(starter: &Starter) -> Arc<dyn Extension> {
    Arc::new(AiChatbot {
        tenant: starter.tenant,
        typing: Typing::default(),
    })
}

/// `/users/`, `/token`, `/users/me`, `/chats/…` and `/ws`.
pub struct AiChatbot {
    tenant: TenantId,
    typing: Typing,
}

type Answer = Result<Resp, Resp>;

fn ok(body: Value) -> Resp {
    http::json(StatusCode::OK, &body)
}

/// Engine errors as FastAPI's `HTTPException`s.
fn engine_error(e: chat_core::Error) -> Resp {
    fastapi::engine_error(e, "Chat not found")
}

/// FastAPI's `redirect_slashes`: the other spelling of a route answers 307 to the
/// documented one.
fn redirect(to: &str) -> Resp {
    let mut response = http::with_type(StatusCode::TEMPORARY_REDIRECT, "", "text/plain");
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The handlers of the document's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    SignUp,
    Token,
    Me,
    List,
    Create,
    Chat,
    Messages,
    Post,
    Socket,
}

/// Every endpoint of the document, spelled as FastAPI declares them (with or without the
/// trailing slash).
static ENDPOINTS: LazyLock<PathTable<Endpoint>> = LazyLock::new(|| {
    use Endpoint::*;
    PathTable::new([
        (Method::POST, "/users/", SignUp),
        (Method::POST, "/token", Token),
        (Method::GET, "/users/me", Me),
        (Method::GET, "/chats/", List),
        (Method::POST, "/chats/", Create),
        (Method::GET, "/chats/{chat_id}", Chat),
        (Method::GET, "/chats/{chat_id}/messages/", Messages),
        (Method::POST, "/chats/{chat_id}/messages/", Post),
        (Method::GET, "/ws", Socket),
    ])
});

/// The other spelling of `path` (with or without its trailing slash), as FastAPI's
/// `redirect_slashes` tries it.
fn other_spelling(path: &str) -> String {
    match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed.to_owned(),
        _ => format!("{path}/"),
    }
}

#[async_trait::async_trait]
impl Extension for AiChatbot {
    async fn handle(&self, cx: &Context, req: Request<Incoming>) -> Handled {
        let path = req.uri().path().to_owned();
        let (endpoint, pattern, params) = match ENDPOINTS.find(req.method(), &path) {
            Matched::Found {
                endpoint,
                pattern,
                params,
            } => (*endpoint, pattern, params),
            Matched::MethodNotAllowed { .. } => {
                let refused = fastapi::detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                return Handled::Answered("method_not_allowed", refused);
            }
            // FastAPI answers the other spelling of a path it knows with a redirect, for
            // any method; paths it does not know are the built-in API's.
            Matched::NotFound => {
                let other = other_spelling(&path);
                return match ENDPOINTS.find(req.method(), &other) {
                    Matched::NotFound => Handled::Declined(req),
                    _ => Handled::Answered("redirect_slashes", redirect(&other)),
                };
            }
        };
        let id = params.get("chat_id").unwrap_or_default();
        let answer = match endpoint {
            Endpoint::SignUp => self.sign_up(cx, req).await,
            Endpoint::Token => self.token(cx, req).await,
            Endpoint::Me => self.me(cx, &req).await,
            Endpoint::List => self.list(cx, &req).await,
            Endpoint::Create => self.create(cx, req).await,
            Endpoint::Chat => self.chat(cx, &req, id).await,
            Endpoint::Messages => self.messages(cx, &req, id).await,
            Endpoint::Post => self.post(cx, req, id).await,
            Endpoint::Socket => socket::open(cx, self, req).await,
        };
        Handled::Answered(pattern, answer.unwrap_or_else(|e| e))
    }
}

impl AiChatbot {
    /// The signed-in user: its account-wide customer actor and contact.
    async fn user(&self, cx: &Context, token: Option<String>) -> Result<(Actor, ContactId), Resp> {
        let Some(token) = token else {
            return Err(fastapi::unauthorized("Not authenticated"));
        };
        let invalid = || fastapi::unauthorized("Could not validate credentials");
        match cx.authenticate(Some(&token)).await {
            // Only account tokens (all of one contact's chats) are users; a visitor token
            // of a single widget conversation or a staff token is not.
            Ok(Caller::Actor(
                actor @ Actor::Customer {
                    contact,
                    conversation: None,
                    tenant,
                },
            )) if tenant == self.tenant => Ok((actor, contact)),
            _ => Err(invalid()),
        }
    }

    async fn user_of(
        &self,
        cx: &Context,
        req: &Request<Incoming>,
    ) -> Result<(Actor, ContactId), Resp> {
        let token = auth::bearer(req.headers(), None)
            .map_err(|_| fastapi::unauthorized("Not authenticated"))?;
        self.user(cx, token).await
    }

    /// `POST /users/`: `{username, email, password}` → the user.
    async fn sign_up(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let body = read_json(req.into_body()).await?;
        let [username, email, password] =
            <[String; 3]>::try_from(fastapi::strings(&body, &["username", "email", "password"])?)
                .map_err(|_| fastapi::json_invalid())?;
        let system = Actor::System {
            tenant: self.tenant,
        };
        let sign_up = chat_core::SignUp {
            username,
            email: Some(email),
            password,
            name: None,
        };
        match cx.engine().sign_up(&system, sign_up).await {
            Ok((_, contact)) => Ok(ok(user_json(&contact))),
            Err(chat_core::Error::Validation { field, message })
                if message == "already registered" =>
            {
                let what = if field == "email" {
                    "Email"
                } else {
                    "Username"
                };
                Err(fastapi::detail(
                    StatusCode::BAD_REQUEST,
                    &format!("{what} already registered"),
                ))
            }
            Err(chat_core::Error::Validation { field, message }) => {
                Err(fastapi::invalid(vec![fastapi::item(
                    "value_error",
                    field,
                    &message,
                    body[field].clone(),
                )]))
            }
            Err(e) => Err(fastapi::detail(
                StatusCode::INTERNAL_SERVER_ERROR,
                &e.to_string(),
            )),
        }
    }

    /// `POST /token`: the OAuth2 password form (`username`, `password`).
    async fn token(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let bytes = http::collect(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| {
                fastapi::detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            })?;
        let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let mut errors = Vec::new();
        for name in ["username", "password"] {
            if field(name).is_none() {
                errors.push(fastapi::item(
                    "missing",
                    name,
                    "Field required",
                    Value::Null,
                ));
            }
        }
        if !errors.is_empty() {
            return Err(fastapi::invalid(errors));
        }
        let (username, password) = (
            field("username").unwrap_or_default(),
            field("password").unwrap_or_default(),
        );
        let found = accounts::login(cx.engine(), cx.config(), self.tenant, &username, &password)
            .await
            .map_err(engine_error)?;
        match found {
            Some((_, _, token)) => Ok(ok(json!({ "access_token": token, "token_type": "bearer" }))),
            None => Err(fastapi::unauthorized("Incorrect username or password")),
        }
    }

    /// `GET /users/me`.
    async fn me(&self, cx: &Context, req: &Request<Incoming>) -> Answer {
        let (actor, contact) = self.user_of(cx, req).await?;
        let contact = cx
            .engine()
            .contact(&actor, contact)
            .await
            .map_err(engine_error)?;
        Ok(ok(user_json(&contact)))
    }

    /// `GET /chats/`: the user's chats, newest activity first.
    async fn list(&self, cx: &Context, req: &Request<Incoming>) -> Answer {
        let (actor, _) = self.user_of(cx, req).await?;
        let mut chats = Vec::new();
        let mut cursor = None;
        loop {
            let filter = ConversationFilter {
                cursor,
                limit: Some(200),
                ..Default::default()
            };
            let page = cx
                .engine()
                .list_conversations(&actor, filter)
                .await
                .map_err(engine_error)?;
            chats.extend(page.items.iter().map(chat_json));
            match page.next_cursor {
                Some(next) if chats.len() < MAX_LIST => cursor = Some(next.encode()),
                _ => break,
            }
        }
        Ok(ok(Value::Array(chats)))
    }

    /// `POST /chats/`: `{title}` → the new chat.
    async fn create(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let (actor, _) = self.user_of(cx, &req).await?;
        let body = read_json(req.into_body()).await?;
        let title = fastapi::strings(&body, &["title"])?.remove(0);
        let input = OpenConversation {
            title: Some(title),
            ..Default::default()
        };
        let opened = cx
            .engine()
            .open_conversation(&actor, input)
            .await
            .map_err(engine_error)?;
        Ok(ok(chat_json(&opened.conversation)))
    }

    /// `GET /chats/{chat_id}`.
    async fn chat(&self, cx: &Context, req: &Request<Incoming>, id: &str) -> Answer {
        let (actor, _) = self.user_of(cx, req).await?;
        let c = conversation(cx, &actor, id).await?;
        Ok(ok(chat_json(&c)))
    }

    /// `GET /chats/{chat_id}/messages/`: the whole chat, oldest first.
    async fn messages(&self, cx: &Context, req: &Request<Incoming>, id: &str) -> Answer {
        let (actor, _) = self.user_of(cx, req).await?;
        let c = conversation(cx, &actor, id).await?;
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = MessagePage {
                after: Some(after),
                before: None,
                limit: Some(200),
            };
            let batch = cx
                .engine()
                .messages(&actor, c.id, page)
                .await
                .map_err(engine_error)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            let full = batch.len() == 200;
            // The policy's view of each message first: a user never gets a note.
            let viewer = Viewer::of(&actor);
            out.extend(
                batch
                    .iter()
                    .filter_map(|m| viewer.message(m))
                    .filter_map(|m| message_json(m, Some(&c))),
            );
            if !full || out.len() >= MAX_LIST {
                break;
            }
        }
        Ok(ok(Value::Array(out)))
    }

    /// `POST /chats/{chat_id}/messages/`: stores the user's message and answers with the
    /// AI's reply (the user's own message when the AI stays silent). Both also reach
    /// `/ws` as `new_message`.
    async fn post(&self, cx: &Context, req: Request<Incoming>, id: &str) -> Answer {
        let (actor, contact) = self.user_of(cx, &req).await?;
        let c = conversation(cx, &actor, id).await?;
        let body = read_json(req.into_body()).await?;
        let input = message_input(&body)?;
        self.typing.ai(contact, c.id, true);
        let posted = cx.engine().post_message(&actor, c.id, input).await;
        self.typing.ai(contact, c.id, false);
        let posted = posted.map_err(engine_error)?;
        let answer = posted
            .replies
            .iter()
            .rev()
            .find(|m| m.sender == Sender::Bot)
            .unwrap_or(&posted.message);
        let shown = message_json(answer, Some(&posted.conversation)).unwrap_or(Value::Null);
        Ok(ok(shown))
    }
}

/// A chat of the user's by its id; anything else (another user's, malformed, missing)
/// is the same 404.
async fn conversation(cx: &Context, actor: &Actor, id: &str) -> Result<Conversation, Resp> {
    let id: ConversationId = id
        .parse()
        .map_err(|_| fastapi::detail(StatusCode::NOT_FOUND, "Chat not found"))?;
    cx.engine()
        .conversation(actor, id)
        .await
        .map_err(engine_error)
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes.
async fn read_json(body: Incoming) -> Result<Value, Resp> {
    let bytes = http::collect(body, MAX_BODY)
        .await
        .map_err(|_| fastapi::detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(other) => Err(fastapi::invalid(vec![json!({
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "input": other,
        })])),
        Err(_) => Err(fastapi::json_invalid()),
    }
}

/// The document's `MessageIn`: `content`, `type`, optional `media_urls`, plus the
/// Message fields a client may set (`reply_to_id`, `importance_level`).
fn message_input(body: &Value) -> Result<PostMessage, Resp> {
    let content = fastapi::strings(body, &["content"])?.remove(0);
    let kind = match body.get("type") {
        None | Some(Value::Null) => MessageKind::Text,
        Some(Value::String(t)) => match t.as_str() {
            "text" => MessageKind::Text,
            "image" => MessageKind::Image,
            "audio" => MessageKind::Audio,
            "file" => MessageKind::File,
            _ => {
                return Err(fastapi::invalid(vec![fastapi::item(
                    "enum",
                    "type",
                    "Input should be 'text', 'image', 'audio' or 'file'",
                    json!(t),
                )]));
            }
        },
        Some(other) => {
            return Err(fastapi::invalid(vec![fastapi::item(
                "string_type",
                "type",
                "Input should be a valid string",
                other.clone(),
            )]));
        }
    };
    let mut input = PostMessage::text(content);
    input.kind = Some(kind);
    match body.get("media_urls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(urls)) if urls.len() <= 10 && urls.iter().all(Value::is_string) => {
            input
                .metadata
                .insert(MEDIA_URLS.into(), Value::Array(urls.clone()).to_string());
        }
        Some(other) => {
            return Err(fastapi::invalid(vec![fastapi::item(
                "list_type",
                "media_urls",
                "Input should be a valid list of at most 10 strings",
                other.clone(),
            )]));
        }
    }
    if let Some(Value::String(level)) = body.get("importance_level") {
        input.metadata.insert(IMPORTANCE.into(), level.clone());
    }
    if let Some(Value::String(reply_to)) = body.get("reply_to_id") {
        let id: MessageId = reply_to.parse().map_err(|_| {
            fastapi::invalid(vec![fastapi::item(
                "uuid_parsing",
                "reply_to_id",
                "Input should be a valid UUID",
                json!(reply_to),
            )])
        })?;
        input.reply_to = Some(id);
    }
    Ok(input)
}

fn timestamp(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The document's User.
fn user_json(contact: &Contact) -> Value {
    json!({
        "id": contact.id.to_string(),
        "username": contact.external_id,
        "email": contact.email,
    })
}

/// The document's Chat.
pub(crate) fn chat_json(c: &Conversation) -> Value {
    json!({
        "id": c.id.to_string(),
        "title": c.title.clone().unwrap_or_default(),
        "created_at": timestamp(c.created_at),
        "last_message_time": timestamp(c.last_message_at.unwrap_or(c.created_at)),
        "last_message_content": c.last_message.as_ref().map(|m| m.body.clone()).unwrap_or_default(),
        "is_pinned": c.pinned,
    })
}

/// The document's Message; `None` for timeline events and notes, which it has not.
pub(crate) fn message_json(m: &Message, c: Option<&Conversation>) -> Option<Value> {
    let read = |side: fn(&Conversation) -> u64| c.is_some_and(|c| side(c) >= m.seq);
    let kind = match m.kind {
        MessageKind::Text => "text",
        MessageKind::Image => "image",
        MessageKind::Audio => "audio",
        MessageKind::File => "file",
        MessageKind::Note | MessageKind::Event => return None,
    };
    let (sender, status) = match m.sender {
        Sender::Customer if read(|c| c.agent_read_seq) => ("user", "read"),
        Sender::Customer => ("user", "sent"),
        Sender::Bot | Sender::Agent(_) | Sender::System => {
            let sender = if matches!(m.sender, Sender::Agent(_)) {
                "agent"
            } else {
                "ai"
            };
            (
                sender,
                if read(|c| c.customer_read_seq) {
                    "read"
                } else {
                    "delivered"
                },
            )
        }
    };
    let media: Value = m
        .metadata
        .get(MEDIA_URLS)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| json!([]));
    Some(json!({
        "id": m.id.to_string(),
        "content": m.body,
        "type": kind,
        "sender": sender,
        "timestamp": timestamp(m.created_at),
        "status": status,
        "media_urls": media,
        "reply_to_id": m.reply_to.map(|r| r.to_string()),
        "importance_level": m.metadata.get(IMPORTANCE).cloned().unwrap_or_else(|| "normal".into()),
    }))
}
