//! Seed document 000's Quick Chat API, served by the engine.
//!
//! ```text
//! cargo run -p example-quick-chat -- --demo
//! ```
//!
//! Routes (all under `/api/chat/sessions`) answer in the document's shapes:
//! `{"success": true, "session": …}`, `{"success": true, "messages": […]}` and, on a
//! missing session, `404 {"error": "Session not found"}`. What differs from the document
//! (staff tokens on the admin routes, unguessable session ids) is listed in the README.
//!
//! A session is an engine conversation; its `status` is derived from the conversation's
//! mode (`bot`/`agent` → `active`, `queued` → `waiting_agent`, `closed` → `ended`), so the
//! engine's state machine, routing and persistence apply unchanged.

// Handlers fail with a finished response in the document's error shape; it is answered
// at once, so its size on the error path costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use chat_core::policy::Viewer;
use chat_core::{
    Actor, Contact, ContactId, ContactInput, Conversation, ConversationFilter, ConversationId,
    Message, MessageKind, MessagePage, Mode, OpenConversation, PostMessage, RuleBot, RuleBotConfig,
    Sender, TenantId, TenantSettings, VisitorToken,
};
use chat_server::auth::{self, Caller};
use chat_server::extension::{Matched, PathTable};
use chat_server::http::{self, Resp};
use chat_server::{Context, Extension, Handled};
use chat_starter::Starter;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

/// The document's canned assistant answer; the rule bot gives it to every message.
pub const ASSISTANT_REPLY: &str = "Thank you for your message! I'm here to help.";

/// Origins of the document's frontends (`CORS(..., supports_credentials=True, origins=...)`).
pub const CORS_ORIGINS: [&str; 2] = ["http://localhost:3000", "http://localhost:5173"];

/// Largest request body: a chat message is short; anything bigger is refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

/// Most sessions or messages one list answer holds (the document returns everything;
/// a bound keeps one request from reading the whole database).
pub const MAX_LIST: usize = 5_000;

/// The tenant name the template keeps its data under.
pub const TENANT: &str = "Quick Chat";

/// Opens the template's engine on `db`: one tenant, the rule bot answering with the
/// document's canned reply (no keyword handoff: `request-agent` is how the document asks
/// for a human), and CORS with credentials for the document's two frontends.
pub async fn open(db: &Path) -> Result<Starter, chat_starter::Error> {
    let bot = RuleBot::new(RuleBotConfig {
        intents: Vec::new(),
        handoff_phrases: Vec::new(),
        fallback: ASSISTANT_REPLY.into(),
        handoff_after_unanswered: 0,
        handoff_message: String::new(),
    })?;
    let mut starter = Starter::open(db, TENANT, TenantSettings::default(), |b| {
        b.bot(Arc::new(bot))
    })
    .await?;
    starter.config.cors_origins = CORS_ORIGINS.iter().map(|o| o.to_string()).collect();
    Ok(starter)
}

/// The document's routes for `starter`'s tenant.
pub fn extension(starter: &Starter) -> Arc<dyn Extension> {
    Arc::new(QuickChat {
        tenant: starter.tenant,
    })
}

/// The `/api/chat/sessions…` routes.
pub struct QuickChat {
    tenant: TenantId,
}

/// An answer in the document's error shape: `{"error": "..."}`.
fn fail(status: StatusCode, text: &str) -> Resp {
    http::json(status, &json!({ "error": text }))
}

fn not_found() -> Resp {
    fail(StatusCode::NOT_FOUND, "Session not found")
}

/// Engine errors in the document's shape. Anything the caller cannot see is the
/// document's 404, so a guessed id learns nothing.
fn engine_error(e: chat_core::Error) -> Resp {
    let api = chat_server::error::ApiError::from(e);
    if api.status == StatusCode::NOT_FOUND {
        return not_found();
    }
    fail(api.status, &api.message)
}

type Answer = Result<Resp, Resp>;

/// The handlers of the document's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    List,
    Create,
    Get,
    Update,
    History,
    Post,
    RequestAgent,
    AgentMessage,
    End,
}

/// Every endpoint of the document. Paths are matched without a trailing slash.
static ENDPOINTS: LazyLock<PathTable<Endpoint>> = LazyLock::new(|| {
    use Endpoint::*;
    PathTable::new([
        (Method::GET, "/api/chat/sessions", List),
        (Method::POST, "/api/chat/sessions", Create),
        (Method::GET, "/api/chat/sessions/{id}", Get),
        (Method::PATCH, "/api/chat/sessions/{id}", Update),
        (Method::GET, "/api/chat/sessions/{id}/messages", History),
        (Method::POST, "/api/chat/sessions/{id}/messages", Post),
        (
            Method::POST,
            "/api/chat/sessions/{id}/request-agent",
            RequestAgent,
        ),
        (
            Method::POST,
            "/api/chat/sessions/{id}/agent-message",
            AgentMessage,
        ),
        (Method::POST, "/api/chat/sessions/{id}/end", End),
    ])
});

#[async_trait::async_trait]
impl Extension for QuickChat {
    async fn handle(&self, cx: &Context, req: Request<Incoming>) -> Handled {
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix("/api/chat/sessions") else {
            return Handled::Declined(req);
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            return Handled::Declined(req);
        }
        let matched = ENDPOINTS.find(req.method(), path.trim_end_matches('/'));
        // Patterns, never raw ids, name the endpoint in metrics.
        let name = match &matched {
            Matched::Found { pattern, .. } | Matched::MethodNotAllowed { pattern, .. } => pattern,
            Matched::NotFound => "/api/chat/sessions/unknown",
        };
        let answer = self.route(cx, req, matched).await;
        Handled::Answered(name, answer.unwrap_or_else(|e| e))
    }
}

impl QuickChat {
    async fn route(
        &self,
        cx: &Context,
        req: Request<Incoming>,
        matched: Matched<'static, Endpoint>,
    ) -> Answer {
        let (parts, body) = req.into_parts();
        let caller = match auth::bearer(&parts.headers, None) {
            Ok(token) => cx
                .authenticate(token.as_deref())
                .await
                .map_err(|e| fail(e.status, "Invalid or expired token"))?,
            Err(_) => return Err(fail(StatusCode::UNAUTHORIZED, "Invalid or expired token")),
        };
        let (endpoint, params) = match matched {
            Matched::Found {
                endpoint, params, ..
            } => (*endpoint, params),
            Matched::MethodNotAllowed { .. } => {
                return Err(fail(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"));
            }
            Matched::NotFound => return Err(fail(StatusCode::NOT_FOUND, "Not found")),
        };
        let id = params.get("id").unwrap_or_default();
        match endpoint {
            Endpoint::List => self.list(cx, &caller).await,
            Endpoint::Create => self.create(cx, read_object(body).await?).await,
            Endpoint::Get => {
                let (actor, c) = self.session(cx, &caller, id).await?;
                self.session_answer(cx, &actor, &c, id).await
            }
            Endpoint::Update => {
                let staff = staff(&caller)?;
                let changes = read_object(body).await?;
                self.patch(cx, staff, id, changes).await
            }
            Endpoint::History => {
                let (actor, c) = self.session(cx, &caller, id).await?;
                let messages = history(cx, &actor, c.id).await?;
                Ok(ok(json!({ "success": true, "messages": messages })))
            }
            Endpoint::Post => {
                let (actor, c) = self.session(cx, &caller, id).await?;
                if !matches!(actor, Actor::Customer { .. }) {
                    return Err(fail(
                        StatusCode::FORBIDDEN,
                        "Staff reply through agent-message",
                    ));
                }
                let text = message_text(&read_object(body).await?)?;
                let posted = cx
                    .engine()
                    .post_message(&actor, c.id, PostMessage::text(text))
                    .await
                    .map_err(engine_error)?;
                // The assistant's answer, if the bot is still the one answering; once an
                // agent is asked for or has joined, the agent answers instead.
                let response = posted
                    .replies
                    .iter()
                    .rev()
                    .find(|m| m.sender == Sender::Bot && m.kind == MessageKind::Text)
                    .map(|m| m.body.clone());
                let session = self
                    .session_json(cx, &actor, &posted.conversation, id)
                    .await?;
                Ok(ok(json!({
                    "success": true,
                    "response": response,
                    "session": session,
                })))
            }
            Endpoint::RequestAgent => {
                let (actor, c) = self.session(cx, &caller, id).await?;
                let c = cx
                    .engine()
                    .request_agent(&actor, c.id, None, None)
                    .await
                    .map_err(engine_error)?;
                self.session_answer(cx, &actor, &c, id).await
            }
            Endpoint::AgentMessage => {
                let staff = staff(&caller)?.clone();
                let text = message_text(&read_object(body).await?)?;
                let (_, c) = self.session(cx, &caller, id).await?;
                let posted = cx
                    .engine()
                    .post_message(&staff, c.id, PostMessage::text(text))
                    .await
                    .map_err(engine_error)?;
                Ok(ok(json!({
                    "success": true,
                    "message": message_json(&posted.message),
                })))
            }
            Endpoint::End => {
                let (actor, c) = self.session(cx, &caller, id).await?;
                // Ending an ended session is answered like the document does: with it.
                let c = if matches!(c.mode, Mode::Closed | Mode::Archived) {
                    c
                } else {
                    cx.engine()
                        .close(&actor, c.id, None)
                        .await
                        .map_err(engine_error)?
                };
                self.session_answer(cx, &actor, &c, id).await
            }
        }
    }

    /// `POST /api/chat/sessions`: opens a conversation for the visitor and answers with
    /// its id, which is a fresh visitor token (the only thing the document's frontend
    /// keeps, so it must be the credential; see the README).
    async fn create(&self, cx: &Context, data: Value) -> Answer {
        let text = |key: &str| -> Result<Option<String>, Resp> {
            match data.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(fail(
                    StatusCode::BAD_REQUEST,
                    &format!("{key} must be a string"),
                )),
            }
        };
        let system = Actor::System {
            tenant: self.tenant,
        };
        let input = OpenConversation {
            contact: ContactInput {
                name: text("name")?,
                email: text("email")?,
                ..Default::default()
            },
            ..Default::default()
        };
        let opened = cx
            .engine()
            .open_conversation(&system, input)
            .await
            .map_err(engine_error)?;
        let (token, digest) = auth::new_visitor_token();
        let now = cx.engine().clock().now();
        let record = VisitorToken {
            digest,
            tenant_id: self.tenant,
            contact_id: opened.contact.id,
            conversation_id: Some(opened.conversation.id),
            created_at: now,
            expires_at: Some(now + cx.config().visitor_token_ttl),
        };
        cx.engine()
            .store_visitor_token(&system, &record)
            .await
            .map_err(engine_error)?;
        Ok(ok(json!({
            "success": true,
            "session": session_view(&opened.conversation, Some(&opened.contact), &token),
        })))
    }

    /// `GET /api/chat/sessions` (staff): every session the staff member can see, newest
    /// activity first. Ids here are conversation ids: staff never learn a visitor's
    /// credential, and staff routes accept either id.
    async fn list(&self, cx: &Context, caller: &Caller) -> Answer {
        let actor = staff(caller)?;
        let mut sessions = Vec::new();
        let mut contacts: HashMap<ContactId, Option<Contact>> = HashMap::new();
        let mut cursor = None;
        loop {
            let filter = ConversationFilter {
                cursor,
                limit: Some(200),
                ..Default::default()
            };
            let page = cx
                .engine()
                .list_conversations(actor, filter)
                .await
                .map_err(engine_error)?;
            for c in &page.items {
                if let std::collections::hash_map::Entry::Vacant(slot) =
                    contacts.entry(c.contact_id)
                {
                    slot.insert(cx.engine().contact(actor, c.contact_id).await.ok());
                }
                let contact = contacts[&c.contact_id].as_ref();
                sessions.push(session_view(c, contact, &c.id.to_string()));
            }
            match page.next_cursor {
                Some(next) if sessions.len() < MAX_LIST => cursor = Some(next.encode()),
                _ => break,
            }
        }
        Ok(ok(json!({ "success": true, "sessions": sessions })))
    }

    /// `PATCH /api/chat/sessions/{id}` (staff): the document merges any fields; here
    /// `status` moves the conversation along the engine's state machine, `name` and `email`
    /// edit the visitor's contact, and the other fields of the session may be sent back
    /// unchanged (a frontend that PATCHes the whole object still works). Changing anything
    /// else is refused, since the engine, not a free dictionary, holds the session.
    async fn patch(&self, cx: &Context, actor: &Actor, id: &str, changes: Value) -> Answer {
        let caller = Caller::Actor(actor.clone());
        let (_, c) = self.session(cx, &caller, id).await?;
        let current = self.session_json(cx, actor, &c, id).await?;
        let Value::Object(changes) = changes else {
            return Err(fail(StatusCode::BAD_REQUEST, "Expected a JSON object"));
        };
        let mut status = None;
        let mut contact = chat_core::ContactPatch::default();
        for (key, value) in &changes {
            match key.as_str() {
                "status" => status = Some(value.as_str().unwrap_or_default().to_owned()),
                // The visitor's name and e-mail, as the document's frontend edits them: the
                // contact's fields (an e-mail stays an unverified claim).
                "name" | "email" if current.get(key) != Some(value) => {
                    let text = match value {
                        Value::String(t) => t.clone(),
                        Value::Null => String::new(),
                        _ => {
                            return Err(fail(
                                StatusCode::BAD_REQUEST,
                                &format!("Field {key} must be a string"),
                            ));
                        }
                    };
                    if key == "name" {
                        contact.name = Some(text);
                    } else {
                        contact.email = Some(text);
                    }
                }
                _ if current.get(key) == Some(value) => {}
                _ => {
                    return Err(fail(
                        StatusCode::BAD_REQUEST,
                        &format!("Field {key} cannot be changed"),
                    ));
                }
            }
        }
        let engine = cx.engine();
        if contact != chat_core::ContactPatch::default() {
            engine
                .update_contact(actor, c.contact_id, contact)
                .await
                .map_err(engine_error)?;
        }
        let id_ = c.id;
        let changed = match (status.as_deref(), c.mode) {
            (None, _)
            | (Some("ended"), Mode::Closed | Mode::Archived)
            | (Some("waiting_agent"), Mode::Queued)
            | (Some("active"), Mode::Bot | Mode::Agent) => Ok(c),
            (Some("ended"), _) => engine.close(actor, id_, None).await,
            (Some("waiting_agent"), Mode::Closed) => {
                engine.set_mode(actor, id_, Mode::Queued).await
            }
            (Some("waiting_agent"), _) => engine.request_agent(actor, id_, None, None).await,
            // Back to the assistant: cancels the handoff, or reopens an ended session.
            (Some("active"), _) => engine.set_mode(actor, id_, Mode::Bot).await,
            (Some(_), _) => {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    "status must be active, waiting_agent or ended",
                ));
            }
        };
        let c = changed.map_err(engine_error)?;
        self.session_answer(cx, actor, &c, id).await
    }

    /// The session `id` names and the actor to act as. A visitor's id is its visitor
    /// token; staff (with a bearer token) may also name a session by conversation id.
    /// Everything else, including a guessed id, is the document's 404.
    async fn session(
        &self,
        cx: &Context,
        caller: &Caller,
        id: &str,
    ) -> Result<(Actor, Conversation), Resp> {
        let staff = match caller {
            Caller::Actor(a @ Actor::Staff { .. }) => Some(a.clone()),
            _ => None,
        };
        let (actor, conversation) = if id.starts_with(auth::VISITOR_PREFIX) {
            let record = cx
                .engine()
                .visitor_token(&auth::token_digest(id))
                .await
                .map_err(engine_error)?
                .filter(|t| t.tenant_id == self.tenant)
                .filter(|t| t.expires_at.is_none_or(|e| e > cx.engine().clock().now()))
                .ok_or_else(not_found)?;
            let conversation = record.conversation_id.ok_or_else(not_found)?;
            let visitor = Actor::Customer {
                tenant: record.tenant_id,
                contact: record.contact_id,
                conversation: Some(conversation),
            };
            (staff.unwrap_or(visitor), conversation)
        } else {
            let actor = staff.ok_or_else(not_found)?;
            let conversation: ConversationId = id.parse().map_err(|_| not_found())?;
            (actor, conversation)
        };
        let c = cx
            .engine()
            .conversation(&actor, conversation)
            .await
            .map_err(engine_error)?;
        Ok((actor, c))
    }

    async fn session_json(
        &self,
        cx: &Context,
        actor: &Actor,
        c: &Conversation,
        id: &str,
    ) -> Result<Value, Resp> {
        let contact = cx
            .engine()
            .contact(actor, c.contact_id)
            .await
            .map_err(engine_error)?;
        Ok(session_view(c, Some(&contact), id))
    }

    async fn session_answer(
        &self,
        cx: &Context,
        actor: &Actor,
        c: &Conversation,
        id: &str,
    ) -> Answer {
        let session = self.session_json(cx, actor, c, id).await?;
        Ok(ok(json!({ "success": true, "session": session })))
    }
}

fn ok(body: Value) -> Resp {
    http::json(StatusCode::OK, &body)
}

/// The caller as staff: 401 without a token, 403 with a visitor's.
fn staff(caller: &Caller) -> Result<&Actor, Resp> {
    match caller {
        Caller::Actor(a @ Actor::Staff { .. }) => Ok(a),
        Caller::Actor(_) => Err(fail(StatusCode::FORBIDDEN, "Staff only")),
        Caller::Anonymous => Err(fail(StatusCode::UNAUTHORIZED, "Authentication required")),
    }
}

/// Reads a JSON object body of at most [`MAX_BODY`] bytes (Flask's `get_json()` takes the
/// body whatever its content type says; an empty body is an empty object).
async fn read_object(body: Incoming) -> Result<Value, Resp> {
    let bytes = http::collect(body, MAX_BODY)
        .await
        .map_err(|e| fail(e.status, "Request body too large"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(fail(StatusCode::BAD_REQUEST, "Expected a JSON object")),
        Err(_) => Err(fail(StatusCode::BAD_REQUEST, "Invalid JSON")),
    }
}

/// The `message` field: the document stores whatever comes, even nothing; an empty
/// message is refused here.
fn message_text(data: &Value) -> Result<String, Resp> {
    match data.get("message") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(fail(StatusCode::BAD_REQUEST, "message is required")),
    }
}

/// The document's status words for the engine's modes.
pub fn status(mode: Mode) -> &'static str {
    match mode {
        Mode::Queued => "waiting_agent",
        Mode::Closed | Mode::Archived => "ended",
        Mode::Bot | Mode::Agent | Mode::Paused => "active",
    }
}

fn timestamp(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The document's session object.
fn session_view(c: &Conversation, contact: Option<&Contact>, id: &str) -> Value {
    json!({
        "id": id,
        "email": contact.and_then(|c| c.email.clone()),
        "name": contact.and_then(|c| c.name.clone()),
        "status": status(c.mode),
        "createdAt": timestamp(c.created_at),
        "updatedAt": timestamp(c.updated_at),
    })
}

/// The document's message object; `None` for timeline events, which it does not have.
fn message_json(m: &Message) -> Value {
    let sender = match m.sender {
        Sender::Customer => "user",
        Sender::Bot => "assistant",
        Sender::Agent(_) => "agent",
        Sender::System => "system",
    };
    json!({
        "id": m.id.to_string(),
        "text": m.body,
        "sender": sender,
        "timestamp": timestamp(m.created_at),
    })
}

/// Every message of the session, oldest first (timeline events and notes left out).
async fn history(cx: &Context, actor: &Actor, id: ConversationId) -> Result<Vec<Value>, Resp> {
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
            .messages(actor, id, page)
            .await
            .map_err(engine_error)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        let full = batch.len() == 200;
        // What the caller sees of each message is the policy's view (a visitor never a
        // note), then the document's kinds only.
        let viewer = Viewer::of(actor);
        out.extend(
            batch
                .iter()
                .filter_map(|m| viewer.message(m))
                .filter(|m| {
                    matches!(
                        m.kind,
                        MessageKind::Text
                            | MessageKind::Image
                            | MessageKind::Audio
                            | MessageKind::File
                    )
                })
                .map(message_json),
        );
        if !full || out.len() >= MAX_LIST {
            break;
        }
    }
    Ok(out)
}
