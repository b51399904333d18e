//! The message-center backend of seed document 001 (`/auth/login`, `/chats/…`), served by
//! the chat engine: the document's routes and JSON shapes, our persistence, auth and
//! rules.
//!
//! ```text
//! cargo run -p example-message-center -- --demo
//! ```
//!
//! See the README for the routes and every deviation from the document.

mod shapes;

use std::path::Path;
use std::sync::{Arc, LazyLock};

use chat_core::store::AssignedFilter;
use chat_core::{
    Actor, Agent, Channel, ContactInput, Conversation, ConversationFilter, ConversationId, Engine,
    OpenConversation, PostMessage, Role, TenantId, TenantSettings,
};
use chat_server::auth::{self, Caller};
use chat_server::error::ApiError;
use chat_server::extension::{Matched, PathTable};
use chat_server::http::{self, Resp};
use chat_server::{Context, Extension, Handled};
use chat_starter::Starter;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

pub use chat_starter::numbering::ChatNumbers;

/// The tenant name the template keeps its data under.
pub const TENANT: &str = "message-center";
/// Login identifiers without an `@` are user names; staff records need an e-mail, so a
/// name `admin` is stored as `admin@message-center.local`.
pub const LOGIN_DOMAIN: &str = "message-center.local";
/// Largest JSON body accepted (the document's bodies are a few hundred bytes).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The document's CORS setting: its Next.js dashboard on port 3000.
pub const FRONTEND_ORIGIN: &str = "http://localhost:3000";

/// Opens the template's database (created if missing), with CORS for the document's
/// frontend.
pub async fn open(db: &Path) -> Result<Starter, chat_starter::Error> {
    let mut starter = Starter::open(db, TENANT, TenantSettings::default(), |b| b).await?;
    starter.config.cors_origins = vec![FRONTEND_ORIGIN.to_owned()];
    Ok(starter)
}

/// The routes of document 001 over the starter's engine and tenant.
pub async fn message_center(starter: &Starter) -> chat_core::Result<Arc<MessageCenter>> {
    Ok(Arc::new(MessageCenter {
        tenant: starter.tenant,
        ids: ChatNumbers::load(&starter.engine, starter.tenant).await?,
    }))
}

/// The e-mail a login identifier stands for.
pub fn login_email(identifier: &str) -> String {
    let identifier = identifier.trim().to_lowercase();
    if identifier.contains('@') {
        identifier
    } else {
        format!("{identifier}@{LOGIN_DOMAIN}")
    }
}

/// The [`Extension`] serving `/auth/login` and `/chats/…`.
pub struct MessageCenter {
    tenant: TenantId,
    ids: ChatNumbers,
}

/// An answer in FastAPI's error shape, `{"detail": "..."}`, which the document's
/// frontend reads.
fn detail(status: StatusCode, text: &str) -> Resp {
    http::json(status, &json!({ "detail": text }))
}

/// Engine and server errors in the document's error shape. "Not found" and "not yours"
/// both read `Chat not found`, so ids cannot be probed.
fn fail(e: ApiError) -> Resp {
    match e.status {
        StatusCode::NOT_FOUND => detail(StatusCode::NOT_FOUND, "Chat not found"),
        StatusCode::FORBIDDEN => detail(StatusCode::FORBIDDEN, "Not enough permissions"),
        StatusCode::UNAUTHORIZED => {
            detail(StatusCode::UNAUTHORIZED, "Could not validate credentials")
        }
        status => detail(status, &e.message),
    }
}

fn engine_fail(e: chat_core::Error) -> Resp {
    fail(ApiError::from(e))
}

fn not_found() -> Resp {
    detail(StatusCode::NOT_FOUND, "Chat not found")
}

type Answer = Result<Resp, Resp>;

/// The signed-in staff member of a request.
struct Staff {
    actor: Actor,
    agent: Agent,
}

impl Staff {
    /// Agents see only the chats assigned to them (the document's rule, stricter than the
    /// engine's, which also shows agents the queue).
    fn sees(&self, c: &Conversation) -> bool {
        self.agent.role != Role::Agent || c.involves(self.agent.id)
    }
}

#[derive(Deserialize)]
struct Login {
    identifier: String,
    password: String,
}

#[derive(Deserialize)]
struct CreateChat {
    customer_name: String,
    #[serde(default)]
    customer_phone: Option<String>,
    #[serde(default)]
    customer_email: Option<String>,
    #[serde(default)]
    customer_address: Option<String>,
    #[serde(default)]
    channel: Option<String>,
}

#[derive(Deserialize)]
struct SendMessage {
    chat_id: u64,
    text: String,
    #[serde(default)]
    sender: Option<String>,
}

#[derive(Deserialize, Default)]
struct UpdateChat {
    #[serde(default)]
    mode: Option<String>,
    /// `Some(None)` is an explicit `null`: unassign.
    #[serde(default, deserialize_with = "explicit_null")]
    assigned_agent_id: Option<Option<u64>>,
    #[serde(default)]
    online: Option<bool>,
}

fn explicit_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// The handlers of the document's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Login,
    List,
    Create,
    Send,
    Detail,
    Update,
    Read,
}

/// Every endpoint of the document. Paths are matched without their trailing slash, so
/// `/chats/` (FastAPI's spelling) and `/chats` are one endpoint.
static ENDPOINTS: LazyLock<PathTable<Endpoint>> = LazyLock::new(|| {
    use Endpoint::*;
    PathTable::new([
        (Method::POST, "/auth/login", Login),
        (Method::GET, "/chats", List),
        (Method::POST, "/chats", Create),
        (Method::POST, "/chats/messages", Send),
        (Method::GET, "/chats/{chat_id}", Detail),
        (Method::PATCH, "/chats/{chat_id}", Update),
        (Method::POST, "/chats/{chat_id}/read", Read),
    ])
});

#[async_trait::async_trait]
impl Extension for MessageCenter {
    async fn handle(&self, cx: &Context, req: Request<Incoming>) -> Handled {
        let path = req.uri().path().trim_end_matches('/').to_owned();
        // Other methods and paths are the built-in API's (its 404 and 405).
        let Matched::Found {
            endpoint,
            pattern,
            params,
        } = ENDPOINTS.find(req.method(), &path)
        else {
            return Handled::Declined(req);
        };
        let id = params.get("chat_id").unwrap_or_default();
        let answer = match endpoint {
            Endpoint::Login => self.login(cx, req).await,
            Endpoint::List => self.list(cx, req).await,
            Endpoint::Create => self.create(cx, req).await,
            Endpoint::Send => self.send(cx, req).await,
            Endpoint::Detail => self.detail(cx, req, id).await,
            Endpoint::Update => self.update(cx, req, id).await,
            Endpoint::Read => self.read(cx, req, id).await,
        };
        Handled::Answered(pattern, answer.unwrap_or_else(|e| e))
    }
}

impl MessageCenter {
    fn system(&self) -> Actor {
        Actor::System {
            tenant: self.tenant,
        }
    }

    /// The staff member behind the bearer token; 401 without one (the document's
    /// `GET /chats/` and `PATCH` needed none: here every chat route is for staff).
    async fn staff(&self, cx: &Context, req: &Request<Incoming>) -> Result<Staff, Resp> {
        let token = auth::bearer(req.headers(), None).map_err(fail)?;
        let actor = match cx.authenticate(token.as_deref()).await.map_err(fail)? {
            Caller::Anonymous => return Err(detail(StatusCode::UNAUTHORIZED, "Not authenticated")),
            Caller::Actor(actor @ Actor::Staff { .. }) if actor.tenant() == self.tenant => actor,
            Caller::Actor(_) => {
                return Err(detail(StatusCode::FORBIDDEN, "Not enough permissions"));
            }
        };
        match cx.engine().resolve(&actor).await.map_err(engine_fail)? {
            chat_core::policy::Resolved::Staff(agent) => Ok(Staff {
                actor,
                agent: *agent,
            }),
            _ => Err(detail(StatusCode::FORBIDDEN, "Not enough permissions")),
        }
    }

    async fn body<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Resp> {
        let (parts, body) = req.into_parts();
        http::read_json(&parts.headers, body, BODY_LIMIT)
            .await
            .map_err(|e| detail(e.status, &e.message))
    }

    /// The chat a number names, if the caller may see it.
    async fn chat(&self, engine: &Engine, who: &Staff, number: &str) -> Result<Conversation, Resp> {
        let id = number
            .parse()
            .ok()
            .and_then(|n| self.ids.conversation(n))
            .ok_or_else(not_found)?;
        let c = engine
            .conversation(&who.actor, id)
            .await
            .map_err(engine_fail)?;
        if who.sees(&c) {
            Ok(c)
        } else {
            Err(not_found())
        }
    }

    async fn login(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let body: Login = Self::body(req).await?;
        let refused = || detail(StatusCode::UNAUTHORIZED, "Incorrect username or password");
        let engine = cx.engine();
        // The engine checks the password against a decoy when there is no such user, so
        // timing does not reveal names.
        let Some((agent, token_version)) = engine
            .staff_log_in(self.tenant, &login_email(&body.identifier), &body.password)
            .await
            .map_err(engine_fail)?
        else {
            return Err(refused());
        };
        let token = auth::issue_token(
            &cx.config().jwt,
            self.tenant,
            agent.id,
            agent.role,
            token_version,
        )
        .map_err(|_| detail(StatusCode::INTERNAL_SERVER_ERROR, "could not sign a token"))?;
        let number = shapes::user_number(engine, self.tenant, agent.id).await?;
        Ok(http::json(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "token_type": "bearer",
                "user": {
                    "id": number,
                    "username": body.identifier.trim(),
                    "name": agent.name,
                    "role": shapes::role(agent.role),
                },
            }),
        ))
    }

    async fn list(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let who = self.staff(cx, &req).await?;
        let engine = cx.engine();
        let mut chats = Vec::new();
        let mut cursor = None;
        loop {
            let filter = ConversationFilter {
                // The document: agents see only their assigned chats.
                assigned: (who.agent.role == Role::Agent)
                    .then_some(AssignedFilter::Agent(who.agent.id)),
                cursor,
                limit: Some(engine.limits().max_page),
                ..Default::default()
            };
            let page = engine
                .list_conversations(&who.actor, filter)
                .await
                .map_err(engine_fail)?;
            for c in page.items.into_iter().filter(|c| who.sees(c)) {
                let c = self.numbered(engine, c).await.map_err(engine_fail)?;
                chats.extend(shapes::summary(&c));
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next.encode()),
                None => break,
            }
        }
        Ok(http::json(StatusCode::OK, &Value::Array(chats)))
    }

    async fn detail(&self, cx: &Context, req: Request<Incoming>, number: &str) -> Answer {
        let who = self.staff(cx, &req).await?;
        let c = self.chat(cx.engine(), &who, number).await?;
        Ok(http::json(
            StatusCode::OK,
            &shapes::detail(cx.engine(), &who.actor, &c).await?,
        ))
    }

    async fn create(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let who = self.staff(cx, &req).await?;
        let body: CreateChat = Self::body(req).await?;
        let channel = match body.channel.as_deref() {
            None => Channel::Whatsapp,
            Some(name) => shapes::channel_from(name).ok_or_else(|| {
                detail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "channel must be one of WhatsApp, Telegram, Email",
                )
            })?,
        };
        let engine = cx.engine();
        let metadata = [(
            shapes::NAME.to_owned(),
            body.customer_name.trim().to_owned(),
        )]
        .into();
        let input = OpenConversation {
            contact: ContactInput {
                name: Some(body.customer_name),
                email: body.customer_email.filter(|e| !e.trim().is_empty()),
                phone: body.customer_phone,
                address: body.customer_address,
                ..Default::default()
            },
            channel,
            metadata,
            ..Default::default()
        };
        let (_, opened) = self
            .ids
            .open(engine, &who.actor, input)
            .await
            .map_err(engine_fail)?;
        let mut c = opened.conversation;
        // An agent only sees its assigned chats: what it creates is assigned to it.
        if who.agent.role == Role::Agent {
            c = engine
                .assign(&who.actor, c.id, who.agent.id)
                .await
                .map_err(engine_fail)?;
        }
        Ok(http::json(
            StatusCode::OK,
            &shapes::detail(engine, &who.actor, &c).await?,
        ))
    }

    async fn send(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let who = self.staff(cx, &req).await?;
        let body: SendMessage = Self::body(req).await?;
        let c = self
            .chat(cx.engine(), &who, &body.chat_id.to_string())
            .await?;
        let engine = cx.engine();
        let posted = match body.sender.as_deref().unwrap_or("agent") {
            "agent" => {
                engine
                    .post_message(&who.actor, c.id, PostMessage::text(body.text))
                    .await
            }
            // A channel customer's message relayed by staff or a webhook integration; in
            // bot mode the bot answers it.
            "customer" => {
                engine
                    .post_for_customer(&who.actor, c.id, PostMessage::text(body.text))
                    .await
            }
            _ => {
                return Err(detail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "sender must be customer or agent",
                ));
            }
        }
        .map_err(engine_fail)?;
        Ok(http::json(
            StatusCode::OK,
            &shapes::message(&posted.message, &posted.conversation),
        ))
    }

    async fn update(&self, cx: &Context, req: Request<Incoming>, number: &str) -> Answer {
        let who = self.staff(cx, &req).await?;
        let body: UpdateChat = Self::body(req).await?;
        let engine = cx.engine();
        let mut c = self.chat(engine, &who, number).await?;
        match body.assigned_agent_id {
            Some(Some(n)) => {
                let agent = shapes::user_by_number(engine, self.tenant, n)
                    .await?
                    .ok_or_else(|| detail(StatusCode::NOT_FOUND, "Agent not found"))?;
                if c.assigned_agent_id != Some(agent) {
                    c = engine
                        .assign(&who.actor, c.id, agent)
                        .await
                        .map_err(engine_fail)?;
                }
            }
            Some(None) if c.assigned_agent_id.is_some() => {
                c = engine
                    .unassign(&who.actor, c.id)
                    .await
                    .map_err(engine_fail)?;
            }
            _ => {}
        }
        if let Some(mode) = body.mode.as_deref() {
            let mode = shapes::mode_from(mode).ok_or_else(|| {
                detail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "mode must be one of bot, agent, paused, closed",
                )
            })?;
            // The document's buttons send the mode a chat may already be in; that is a
            // no-op, not an error.
            if c.mode != mode {
                c = engine
                    .set_mode(&who.actor, c.id, mode)
                    .await
                    .map_err(engine_fail)?;
            }
        }
        if let Some(online) = body.online {
            c = engine
                .set_conversation_metadata(
                    &who.actor,
                    c.id,
                    shapes::ONLINE,
                    Some(if online { "true" } else { "false" }),
                )
                .await
                .map_err(engine_fail)?;
        }
        // After reassignment an agent may no longer see the chat: answer with what it
        // became all the same, read as the system.
        let c = engine
            .conversation(&self.system(), c.id)
            .await
            .map_err(engine_fail)?;
        Ok(http::json(
            StatusCode::OK,
            &shapes::detail(engine, &self.system(), &c).await?,
        ))
    }

    async fn read(&self, cx: &Context, req: Request<Incoming>, number: &str) -> Answer {
        let who = self.staff(cx, &req).await?;
        let engine = cx.engine();
        let c = self.chat(engine, &who, number).await?;
        let c = engine
            .mark_read(&who.actor, c.id, c.last_seq)
            .await
            .map_err(engine_fail)?;
        Ok(http::json(
            StatusCode::OK,
            &shapes::summary(&c).unwrap_or(Value::Null),
        ))
    }
}

/// Seeds what document 001 describes: users `admin`/`admin123` and `agent`/`agent123` and
/// the four demo chats in their modes (once; later starts find them). Returns the users.
pub async fn seed_demo(
    starter: &Starter,
    center: &MessageCenter,
) -> Result<Vec<(String, Agent)>, chat_starter::Error> {
    let admin = starter
        .ensure_staff("Admin", &login_email("admin"), "admin123", Role::Admin)
        .await?;
    let agent = starter
        .ensure_staff("Agent", &login_email("agent"), "agent123", Role::Agent)
        .await?;
    if center.ids.is_empty() {
        shapes::seed_chats(&starter.engine, center, agent.id).await?;
    }
    Ok(vec![("admin".into(), admin), ("agent".into(), agent)])
}

impl MessageCenter {
    /// A conversation of a channel the document knows (WhatsApp, Telegram, e-mail) that
    /// came in through a configured inbox has no number yet: it gets one, and its
    /// contact's name, so the dashboard lists it and staff answer it through `/chats`
    /// like any other chat; the engine sends those answers back to the provider. Web and
    /// API conversations stay out of the list (they have no number and keep none).
    async fn numbered(&self, engine: &Engine, c: Conversation) -> chat_core::Result<Conversation> {
        if chat_starter::numbering::number_of(&c).is_some()
            || shapes::channel_from(shapes::channel_name(c.channel)).is_none()
        {
            return Ok(c);
        }
        let system = self.system();
        let contact = engine.contact(&system, c.contact_id).await?;
        let name = [&contact.name, &contact.phone, &contact.email]
            .into_iter()
            .find_map(|v| v.as_deref().filter(|v| !v.trim().is_empty()))
            .unwrap_or_default()
            .to_owned();
        let (_, c) = self
            .ids
            .adopt(engine, &system, c.id, &[(shapes::NAME, &name)])
            .await?;
        Ok(c)
    }

    /// Opens a chat with the next number (used by the demo seeding).
    async fn open_numbered(
        &self,
        engine: &Engine,
        contact: ContactInput,
        channel: Channel,
    ) -> chat_core::Result<ConversationId> {
        let metadata = [(
            shapes::NAME.to_owned(),
            contact.name.clone().unwrap_or_default(),
        )]
        .into();
        let (_, opened) = self
            .ids
            .open(
                engine,
                &self.system(),
                OpenConversation {
                    contact,
                    channel,
                    metadata,
                    ..Default::default()
                },
            )
            .await?;
        Ok(opened.conversation.id)
    }
}
