//! Seed document 002's salon chat backend (`/api/v1/chat/…` and two WebSockets), served
//! by the engine: one tenant per salon, staff and customer logins, integer ids.
//!
//! ```text
//! cargo run -p example-salon-chat -- --demo
//! ```
//!
//! See the README for the routes, the JSON shapes and every deviation from the document.

// Handlers fail with a finished response in the document's error shape; it is answered
// at once, so its size on the error path costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod shapes;
mod socket;

use std::path::Path;
use std::sync::{Arc, RwLock};

use chat_core::{
    Actor, AgentId, Attachment, Contact, ContactId, ConversationFilter, EntityRef, MessageKind,
    MessagePage, Mode, OpenConversation, PostMessage, TenantId, TenantSettings,
};
use chat_server::accounts::{self, AccountError};
use chat_server::auth::{self, Caller};
use chat_server::http::{self, Resp};
use chat_server::uploads::read_multipart;
use chat_server::{Context, Extension, Handled};
use chat_starter::Starter;
use chat_starter::fastapi;
use chat_starter::numbering::{ChatNumbers, number_of};
use hyper::body::Incoming;
use hyper::header::{CONTENT_DISPOSITION, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

pub use shapes::{MESSAGE_STRIDE, message_number, split_message_number};
pub use socket::Presence;

use shapes::Directory;

/// The salon `Starter::open` creates on first start; `--demo` adds a second one.
pub const FIRST_SALON: &str = "Main Salon";
/// Largest JSON or form body (the document's bodies are a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Largest uploaded file.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Largest `page_size`.
pub const MAX_PAGE_SIZE: usize = 100;
/// Where uploaded files are served: `{FILES_PATH}/{chat_id}/{key}`.
pub const FILES_PATH: &str = "/api/v1/chat/files";
/// What uploads accept: the document's images, voice notes and documents.
pub const FILE_TYPES: [(&str, &str); 12] = [
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("mp3", "audio/mpeg"),
    ("m4a", "audio/mp4"),
    ("aac", "audio/aac"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
    ("webm", "audio/webm"),
    ("pdf", "application/pdf"),
];

/// Contact metadata: the customer's number.
pub(crate) const CUSTOMER_NUMBER: &str = "customer_id";
/// Message metadata: the id of the message answered (the engine keeps its UUID).
pub(crate) const REPLY_TO: &str = "salon.reply_to_id";
/// Conversation metadata: the entity a customer opened the chat about.
pub(crate) const ENTITY_TYPE: &str = "salon.entity_type";
pub(crate) const ENTITY_ID: &str = "salon.entity_id";

/// Every salon's settings: no bot (people answer), the document's 15-minute edit window.
pub fn salon_settings() -> TenantSettings {
    TenantSettings {
        bot_enabled: false,
        edit_window_secs: 15 * 60,
        ..TenantSettings::default()
    }
}

/// Opens the template's database (created if missing) with its first salon.
pub async fn open(db: &Path) -> Result<Starter, chat_starter::Error> {
    Starter::open(db, FIRST_SALON, salon_settings(), |b| b).await
}

/// One salon: a tenant of the engine, so nothing of one salon is visible from another.
pub struct Salon {
    /// The document's `salon_id`: salons numbered by when they were created.
    pub number: u64,
    /// Its tenant.
    pub tenant: TenantId,
    /// Name.
    pub name: String,
    chats: ChatNumbers,
    /// The next free customer number, found on first use.
    next_customer: tokio::sync::Mutex<Option<u64>>,
}

/// The salons, and the [`Extension`] serving the document's routes for all of them.
pub struct SalonChat {
    salons: RwLock<Vec<Arc<Salon>>>,
    adding: tokio::sync::Mutex<()>,
    presence: Arc<Presence>,
}

/// Why a customer could not be added.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    /// Another customer of the salon has this phone number.
    #[error("phone number already registered")]
    PhoneTaken,
    /// The account could not be created.
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// The alias a customer number is looked up by.
fn customer_alias(number: u64) -> String {
    format!("customer:{number}")
}

/// Phone numbers as logins: digits and a leading `+`, whatever spacing was typed.
pub fn normalize_phone(phone: &str) -> String {
    let phone = phone.trim();
    let plus = if phone.starts_with('+') { "+" } else { "" };
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    format!("{plus}{digits}")
}

impl SalonChat {
    /// Reads every salon of the database.
    pub async fn load(starter: &Starter) -> anyhow::Result<Arc<Self>> {
        let engine = &starter.engine;
        let mut tenants = engine.tenants().await?;
        tenants.sort_by_key(|t| (t.created_at, t.id));
        let mut salons = Vec::with_capacity(tenants.len());
        for (i, t) in tenants.into_iter().enumerate() {
            salons.push(Arc::new(Salon {
                number: i as u64 + 1,
                tenant: t.id,
                name: t.name,
                chats: ChatNumbers::load(engine, t.id).await?,
                next_customer: Default::default(),
            }));
        }
        Ok(Arc::new(Self {
            salons: RwLock::new(salons),
            adding: Default::default(),
            presence: Arc::default(),
        }))
    }

    /// Every salon, by number.
    pub fn salons(&self) -> Vec<Arc<Salon>> {
        self.salons.read().expect("never poisoned").clone()
    }

    /// The salon of a tenant.
    pub fn salon(&self, tenant: TenantId) -> Option<Arc<Salon>> {
        self.salons().into_iter().find(|s| s.tenant == tenant)
    }

    /// The salon named `name`, created if missing.
    pub async fn ensure_salon(
        &self,
        engine: &chat_core::Engine,
        name: &str,
    ) -> anyhow::Result<Arc<Salon>> {
        let _adding = self.adding.lock().await;
        if let Some(s) = self.salons().into_iter().find(|s| s.name == name) {
            return Ok(s);
        }
        let tenant = engine.create_tenant(name, salon_settings()).await?;
        let mut salons = self.salons.write().expect("never poisoned");
        let salon = Arc::new(Salon {
            number: salons.len() as u64 + 1,
            tenant: tenant.id,
            name: tenant.name,
            chats: ChatNumbers::default(),
            next_customer: Default::default(),
        });
        salons.push(salon.clone());
        Ok(salon)
    }

    /// Adds a customer who logs in with `phone` and `password`; returns its number.
    pub async fn add_customer(
        &self,
        engine: &chat_core::Engine,
        salon: &Salon,
        name: &str,
        phone: &str,
        password: &str,
    ) -> Result<(u64, Contact), CustomerError> {
        let phone = normalize_phone(phone);
        let mut contact =
            match accounts::register(engine, salon.tenant, &phone, None, password).await {
                Err(AccountError::UsernameTaken) => return Err(CustomerError::PhoneTaken),
                other => other?,
            };
        let mut next = salon.next_customer.lock().await;
        let mut number = match *next {
            Some(n) => n,
            None => first_free_customer(engine, salon.tenant)
                .await
                .map_err(AccountError::from)?,
        };
        loop {
            match accounts::alias(engine, salon.tenant, &customer_alias(number), contact.id).await {
                Ok(()) => break,
                // Taken by another process on the same database: try the next one.
                Err(AccountError::UsernameTaken) => number += 1,
                Err(e) => return Err(e.into()),
            }
        }
        *next = Some(number + 1);
        contact.name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
        contact.phone = Some(phone);
        contact
            .metadata
            .insert(CUSTOMER_NUMBER.to_owned(), number.to_string());
        engine
            .store()
            .update_contact(&contact)
            .await
            .map_err(AccountError::from)?;
        Ok((number, contact))
    }

    /// The customer with this number.
    pub async fn customer(
        &self,
        engine: &chat_core::Engine,
        salon: &Salon,
        number: u64,
    ) -> chat_core::Result<Option<Contact>> {
        accounts::find(engine, salon.tenant, &customer_alias(number)).await
    }

    /// The signed-in caller of a request or socket.
    async fn who(&self, cx: &Context, token: Option<String>) -> Result<Who, Resp> {
        let Some(token) = token else {
            return Err(fastapi::unauthorized("Not authenticated"));
        };
        let invalid = || fastapi::unauthorized("Could not validate credentials");
        let actor = match cx.authenticate(Some(&token)).await {
            Ok(Caller::Actor(actor)) => actor,
            _ => return Err(invalid()),
        };
        let salon = self.salon(actor.tenant()).ok_or_else(invalid)?;
        let mut dir = Directory::load(cx.engine(), salon.tenant)
            .await
            .map_err(engine_error)?;
        let participant = match actor {
            Actor::Staff { agent, .. } => Participant::User {
                agent,
                number: dir.staff_number(agent).ok_or_else(invalid)?,
            },
            // Only account tokens (every chat of one customer) are customers here; a web
            // widget's single-conversation token is not a salon login.
            Actor::Customer {
                contact,
                conversation: None,
                tenant,
            } => Participant::Customer {
                contact,
                number: dir
                    .customer(cx.engine(), tenant, contact)
                    .await
                    .0
                    .ok_or_else(invalid)?,
            },
            _ => return Err(invalid()),
        };
        Ok(Who {
            salon,
            actor,
            participant,
            dir,
        })
    }
}

/// Which kind of participant a caller is, with its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Participant {
    User { agent: AgentId, number: u64 },
    Customer { contact: ContactId, number: u64 },
}

impl Participant {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Participant::User { .. } => "user",
            Participant::Customer { .. } => "customer",
        }
    }

    pub(crate) fn number(self) -> u64 {
        match self {
            Participant::User { number, .. } | Participant::Customer { number, .. } => number,
        }
    }
}

/// A signed-in staff member or customer, in its salon.
pub(crate) struct Who {
    pub(crate) salon: Arc<Salon>,
    pub(crate) actor: Actor,
    pub(crate) participant: Participant,
    pub(crate) dir: Directory,
}

impl Who {
    fn is_staff(&self) -> bool {
        matches!(self.participant, Participant::User { .. })
    }

    fn staff_only(&self) -> Result<(), Resp> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(fastapi::detail(
                StatusCode::FORBIDDEN,
                "Not enough permissions",
            ))
        }
    }

    fn customer_only(&self) -> Result<(), Resp> {
        if self.is_staff() {
            Err(fastapi::detail(
                StatusCode::FORBIDDEN,
                "Only customers can use this endpoint",
            ))
        } else {
            Ok(())
        }
    }

    /// The conversation behind a chat number the caller may see; the same 404 for one
    /// that does not exist and one of someone else.
    pub(crate) async fn chat(
        &self,
        engine: &chat_core::Engine,
        number: u64,
    ) -> Result<chat_core::Conversation, Resp> {
        let id = self
            .salon
            .chats
            .conversation(number)
            .ok_or_else(chat_not_found)?;
        engine
            .conversation(&self.actor, id)
            .await
            .map_err(|_| chat_not_found())
    }

    pub(crate) async fn chat_json(
        &mut self,
        engine: &chat_core::Engine,
        c: &chat_core::Conversation,
    ) -> Value {
        let staff = self.is_staff();
        shapes::chat_json(engine, &mut self.dir, self.salon.number, c, staff).await
    }

    pub(crate) async fn message_json(
        &mut self,
        engine: &chat_core::Engine,
        chat: u64,
        customer: ContactId,
        m: &chat_core::Message,
    ) -> Value {
        shapes::message_json(engine, &mut self.dir, chat, customer, m).await
    }

    /// The message behind a message id, with its chat.
    pub(crate) async fn message(
        &self,
        engine: &chat_core::Engine,
        id: u64,
    ) -> Result<(u64, chat_core::Conversation, chat_core::Message), Resp> {
        let not_found = || fastapi::detail(StatusCode::NOT_FOUND, "Message not found");
        let (chat, seq) = split_message_number(id).ok_or_else(not_found)?;
        let c = self.chat(engine, chat).await.map_err(|_| not_found())?;
        let m = engine
            .messages(
                &self.actor,
                c.id,
                MessagePage {
                    after: Some(seq - 1),
                    limit: Some(1),
                    ..Default::default()
                },
            )
            .await
            .map_err(engine_error)?
            .into_iter()
            .find(|m| m.seq == seq)
            .ok_or_else(not_found)?;
        Ok((chat, c, m))
    }

    /// Posts into a chat: text, or a file uploaded first (`media_url`), with an optional
    /// answer-to and entity reference.
    pub(crate) async fn send(
        &self,
        engine: &chat_core::Engine,
        chat: u64,
        body: &Value,
    ) -> Result<(chat_core::Conversation, chat_core::Message), Resp> {
        let c = self.chat(engine, chat).await?;
        let content = match body.get("content") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(fastapi::invalid(vec![fastapi::item(
                    "string_type",
                    "content",
                    "Input should be a valid string",
                    other.clone(),
                )]));
            }
        };
        let mut input = PostMessage::text(content);
        let named = match body.get("message_type").and_then(Value::as_str) {
            None => None,
            Some(name) => Some(shapes::message_kind(name).ok_or_else(|| {
                fastapi::invalid(vec![fastapi::item(
                    "enum",
                    "message_type",
                    "Input should be 'text', 'image', 'voice' or 'file'",
                    json!(name),
                )])
            })?),
        };
        if let Some(url) = body.get("media_url").and_then(Value::as_str) {
            let attachment = self.uploaded(engine, chat, &c, url).await?;
            input.kind = Some(named.unwrap_or_else(|| kind_of(&attachment.content_type)));
            input.attachments = vec![attachment];
        } else {
            match named {
                None | Some(MessageKind::Text) => {}
                Some(_) => {
                    return Err(fastapi::detail(
                        StatusCode::BAD_REQUEST,
                        "media_url is required for image, voice and file messages",
                    ));
                }
            }
            if input.body.trim().is_empty() {
                return Err(fastapi::detail(
                    StatusCode::BAD_REQUEST,
                    "Message content cannot be empty",
                ));
            }
        }
        if let Some(reply) = body.get("reply_to_id").and_then(Value::as_u64) {
            let (reply_chat, _, target) = self.message(engine, reply).await?;
            if reply_chat != chat {
                return Err(fastapi::detail(
                    StatusCode::BAD_REQUEST,
                    "reply_to_id must be a message of this chat",
                ));
            }
            input.reply_to = Some(target.id);
            input
                .metadata
                .insert(REPLY_TO.to_owned(), reply.to_string());
        }
        if let (Some(kind), Some(id)) = (
            body.get("entity_type").and_then(Value::as_str),
            body.get("entity_id").map(scalar),
        ) {
            input.entities = vec![EntityRef {
                kind: kind.to_owned(),
                id,
            }];
        }
        let posted = engine
            .post_message(&self.actor, c.id, input)
            .await
            .map_err(engine_error)?;
        Ok((posted.conversation, posted.message))
    }

    /// The attachment a `media_url` from `/upload` names; only a file of this chat.
    async fn uploaded(
        &self,
        engine: &chat_core::Engine,
        chat: u64,
        c: &chat_core::Conversation,
        url: &str,
    ) -> Result<Attachment, Resp> {
        let bad = || {
            fastapi::detail(
                StatusCode::BAD_REQUEST,
                "media_url must be a URL returned by /api/v1/chat/upload for this chat",
            )
        };
        let rest = url
            .strip_prefix(FILES_PATH)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(bad)?;
        let (number, key) = rest.split_once('/').ok_or_else(bad)?;
        if number.parse::<u64>().ok() != Some(chat) {
            return Err(bad());
        }
        let content_type = file_type(key).ok_or_else(bad)?;
        // The size comes from the stored bytes, which also proves the upload exists.
        let bytes = engine
            .download_attachment(&self.actor, c.id, key)
            .await
            .map_err(|_| bad())?;
        Ok(Attachment {
            key: key.to_owned(),
            name: key.split_once('_').map_or(key, |(_, n)| n).to_owned(),
            content_type: content_type.to_owned(),
            size: bytes.len() as u64,
        })
    }
}

/// A JSON scalar as text (`entity_id` may be a number or a string).
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The message kind a file type calls for.
fn kind_of(content_type: &str) -> MessageKind {
    if content_type.starts_with("image/") {
        MessageKind::Image
    } else if content_type.starts_with("audio/") {
        MessageKind::Audio
    } else {
        MessageKind::File
    }
}

/// The MIME type of a file name with one of the accepted extensions.
pub fn file_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    FILE_TYPES
        .iter()
        .find(|(e, _)| *e == extension)
        .map(|(_, mime)| *mime)
}

/// The lowest customer number not yet given: numbers are dense from 1, so an
/// exponential then binary search finds it in O(log n) lookups.
async fn first_free_customer(
    engine: &chat_core::Engine,
    tenant: TenantId,
) -> chat_core::Result<u64> {
    let taken = |n: u64| async move {
        accounts::find(engine, tenant, &customer_alias(n))
            .await
            .map(|c| c.is_some())
    };
    if !taken(1).await? {
        return Ok(1);
    }
    let (mut low, mut high) = (1u64, 2u64);
    while taken(high).await? {
        low = high;
        high *= 2;
    }
    // `low` is taken, `high` is free.
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if taken(mid).await? {
            low = mid;
        } else {
            high = mid;
        }
    }
    Ok(high)
}

fn chat_not_found() -> Resp {
    fastapi::detail(StatusCode::NOT_FOUND, "Chat not found")
}

/// Engine errors as FastAPI's `HTTPException`s.
pub(crate) fn engine_error(e: chat_core::Error) -> Resp {
    fastapi::engine_error(e, "Chat not found")
}

type Answer = Result<Resp, Resp>;

fn ok(status: StatusCode, body: Value) -> Resp {
    http::json(status, &body)
}

async fn json_body(req: Request<Incoming>) -> Result<Value, Resp> {
    let bytes = http::collect(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| fastapi::detail(e.status, &e.message))?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(fastapi::invalid(vec![fastapi::item(
            "model_attributes_type",
            "body",
            "Input should be a valid dictionary or object to extract fields from",
            Value::Null,
        )])),
        Err(_) => Err(fastapi::json_invalid()),
    }
}

/// `?page=&page_size=` (1-based; page size 1 to [`MAX_PAGE_SIZE`]).
fn paging(query: &str, default_size: usize) -> Result<(usize, usize), Resp> {
    let number = |name: &str, default: usize, max: usize| -> Result<usize, Resp> {
        match http::query_param(query, name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    fastapi::detail(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &format!("{name} must be an integer from 1 to {max}"),
                    )
                }),
        }
    };
    Ok((
        number("page", 1, 1_000_000)?,
        number("page_size", default_size, MAX_PAGE_SIZE)?,
    ))
}

#[async_trait::async_trait]
impl Extension for SalonChat {
    async fn handle(&self, cx: &Context, req: Request<Incoming>) -> Handled {
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix("/api/v1/") else {
            return Handled::Declined(req);
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let method = req.method().clone();
        let (name, answer): (&'static str, Answer) = match (&method, segments.as_slice()) {
            (&Method::POST, ["auth", "login"]) => {
                ("/api/v1/auth/login", self.staff_login(cx, req).await)
            }
            (&Method::POST, ["customer-auth", "login"]) => (
                "/api/v1/customer-auth/login",
                self.customer_login(cx, req).await,
            ),
            (&Method::GET, ["chat", "ws", "chat", kind @ ("user" | "customer")]) => (
                "/api/v1/chat/ws/chat/{kind}",
                socket::open(cx, self, req, kind == &"user").await,
            ),
            (_, ["chat", ..]) => {
                let token = auth::bearer(req.headers(), req.uri().query())
                    .ok()
                    .flatten()
                    .or_else(|| {
                        req.uri()
                            .query()
                            .and_then(|q| http::query_param(q, "token"))
                    });
                let mut who = match self.who(cx, token).await {
                    Ok(who) => who,
                    Err(refused) => return Handled::Answered("/api/v1/chat", refused),
                };
                match (&method, &segments[1..]) {
                    (&Method::POST, ["chats"]) => {
                        ("/api/v1/chat/chats", self.create(cx, &mut who, req).await)
                    }
                    (&Method::GET, ["chats"]) => {
                        ("/api/v1/chat/chats", list(cx, &mut who, &req, true).await)
                    }
                    (&Method::POST, ["chats", "customer"]) => (
                        "/api/v1/chat/chats/customer",
                        self.create_as_customer(cx, &mut who, req).await,
                    ),
                    (&Method::GET, ["chats", "customer"]) => (
                        "/api/v1/chat/chats/customer",
                        list(cx, &mut who, &req, false).await,
                    ),
                    (&Method::GET, ["chats", id]) => {
                        ("/api/v1/chat/chats/{id}", chat(cx, &mut who, id).await)
                    }
                    (&Method::GET, ["chats", id, "messages"]) => (
                        "/api/v1/chat/chats/{id}/messages",
                        history(cx, &mut who, &req, id).await,
                    ),
                    (&Method::POST, ["chats", id, "messages"]) => {
                        let id = id.to_string();
                        (
                            "/api/v1/chat/chats/{id}/messages",
                            post(cx, &mut who, req, &id).await,
                        )
                    }
                    (&Method::PUT, ["messages", id]) => {
                        let id = id.to_string();
                        (
                            "/api/v1/chat/messages/{id}",
                            edit(cx, &mut who, req, &id).await,
                        )
                    }
                    (&Method::DELETE, ["messages", id]) => {
                        ("/api/v1/chat/messages/{id}", delete(cx, &mut who, id).await)
                    }
                    (&Method::POST, ["upload"]) => {
                        ("/api/v1/chat/upload", upload(cx, &who, req).await)
                    }
                    // Blob keys hold a folder per chat: the key is the rest of the path.
                    (&Method::GET, ["files", chat, key @ ..]) if !key.is_empty() => (
                        "/api/v1/chat/files/{chat}/{key}",
                        download(cx, &who, chat, &key.join("/")).await,
                    ),
                    (&Method::GET, ["stats"]) => ("/api/v1/chat/stats", self.stats(cx, &who).await),
                    _ => (
                        "not_found",
                        Err(fastapi::detail(StatusCode::NOT_FOUND, "Not Found")),
                    ),
                }
            }
            (_, ["auth", "login"] | ["customer-auth", "login"]) => (
                "method_not_allowed",
                Err(fastapi::detail(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Method Not Allowed",
                )),
            ),
            _ => return Handled::Declined(req),
        };
        Handled::Answered(name, answer.unwrap_or_else(|e| e))
    }
}

/// A number in a path.
fn path_number(text: &str, what: &str) -> Result<u64, Resp> {
    text.parse().map_err(|_| {
        fastapi::invalid(vec![json!({
            "type": "int_parsing",
            "loc": ["path", what],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": text,
        })])
    })
}

impl SalonChat {
    /// `POST /api/v1/auth/login`: the OAuth2 password form, `username` being the e-mail.
    async fn staff_login(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let bytes = http::collect(req.into_body(), MAX_BODY)
            .await
            .map_err(|e| fastapi::detail(e.status, &e.message))?;
        let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let (Some(username), Some(password)) = (field("username"), field("password")) else {
            let missing = ["username", "password"]
                .into_iter()
                .filter(|f| field(f).is_none())
                .map(|f| {
                    json!({ "type": "missing", "loc": ["body", f], "msg": "Field required", "input": null })
                })
                .collect();
            return Err(fastapi::invalid(missing));
        };
        // Staff e-mails are unique within a salon; the first salon that knows the
        // e-mail and password wins.
        for salon in self.salons() {
            if let Some((_, token)) =
                accounts::staff_login(cx.engine(), cx.config(), salon.tenant, &username, &password)
                    .await
                    .map_err(|_| {
                        fastapi::detail(StatusCode::INTERNAL_SERVER_ERROR, "Login failed")
                    })?
            {
                return Ok(ok(
                    StatusCode::OK,
                    json!({ "access_token": token, "token_type": "bearer", "salon_id": salon.number }),
                ));
            }
        }
        Err(fastapi::unauthorized("Incorrect email or password"))
    }

    /// `POST /api/v1/customer-auth/login`: `{phone_number, password}` and, when the
    /// phone number is a customer of several salons, `salon_id`.
    async fn customer_login(&self, cx: &Context, req: Request<Incoming>) -> Answer {
        let body = json_body(req).await?;
        let fields = fastapi::strings(&body, &["phone_number", "password"])?;
        let (phone, password) = (normalize_phone(&fields[0]), &fields[1]);
        let wanted = body.get("salon_id").and_then(Value::as_u64);
        let mut found = Vec::new();
        for salon in self.salons() {
            if wanted.is_some_and(|n| n != salon.number) {
                continue;
            }
            if let Some((contact, token)) =
                accounts::login(cx.engine(), cx.config(), salon.tenant, &phone, password)
                    .await
                    .map_err(engine_error)?
            {
                found.push((salon, contact, token));
            }
        }
        match found.len() {
            0 => Err(fastapi::unauthorized("Incorrect phone number or password")),
            1 => {
                let (salon, contact, token) = found.remove(0);
                Ok(ok(
                    StatusCode::OK,
                    json!({
                        "access_token": token,
                        "token_type": "bearer",
                        "customer": {
                            "id": contact.metadata.get(CUSTOMER_NUMBER).and_then(|n| n.parse::<u64>().ok()),
                            "name": contact.name,
                            "phone_number": contact.phone,
                            "salon_id": salon.number,
                        },
                    }),
                ))
            }
            _ => Err(fastapi::detail(
                StatusCode::CONFLICT,
                "This phone number is registered at several salons: send salon_id",
            )),
        }
    }

    /// `POST /api/v1/chat/chats`: staff start a chat with a customer of the salon.
    async fn create(&self, cx: &Context, who: &mut Who, req: Request<Incoming>) -> Answer {
        who.staff_only()?;
        let body = json_body(req).await?;
        let Some(customer_id) = body.get("customer_id").and_then(Value::as_u64) else {
            return Err(fastapi::invalid(vec![fastapi::item(
                "int_type",
                "customer_id",
                "Input should be a valid integer",
                body.get("customer_id").cloned().unwrap_or(Value::Null),
            )]));
        };
        let engine = cx.engine();
        let customer = self
            .customer(engine, &who.salon, customer_id)
            .await
            .map_err(engine_error)?
            .ok_or_else(|| fastapi::detail(StatusCode::NOT_FOUND, "Customer not found"))?;
        let input = OpenConversation {
            contact_id: Some(customer.id),
            title: body.get("title").and_then(Value::as_str).map(str::to_owned),
            ..Default::default()
        };
        let (number, opened) = who
            .salon
            .chats
            .open(engine, &who.actor, input)
            .await
            .map_err(engine_error)?;
        let mut c = opened.conversation;
        if let Some(text) = body
            .get("initial_message")
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
        {
            // The staff member's first words; posting them also takes the chat.
            let (after, _) = who
                .send(engine, number, &json!({ "content": text }))
                .await?;
            c = after;
        } else if c.mode == Mode::Queued {
            c = engine.claim(&who.actor, c.id).await.map_err(engine_error)?;
        }
        Ok(ok(StatusCode::CREATED, who.chat_json(engine, &c).await))
    }

    /// `POST /api/v1/chat/chats/customer`: a customer opens a chat with the salon.
    async fn create_as_customer(
        &self,
        cx: &Context,
        who: &mut Who,
        req: Request<Incoming>,
    ) -> Answer {
        who.customer_only()?;
        let body = json_body(req).await?;
        let mut metadata = std::collections::BTreeMap::new();
        if let (Some(kind), Some(id)) = (
            body.get("entity_type").and_then(Value::as_str),
            body.get("entity_id").map(scalar),
        ) {
            metadata.insert(ENTITY_TYPE.to_owned(), kind.to_owned());
            metadata.insert(ENTITY_ID.to_owned(), id);
        }
        let input = OpenConversation {
            title: body.get("title").and_then(Value::as_str).map(str::to_owned),
            first_message: body
                .get("initial_message")
                .and_then(Value::as_str)
                .map(str::to_owned),
            metadata,
            ..Default::default()
        };
        let engine = cx.engine();
        let (_, opened) = who
            .salon
            .chats
            .open(engine, &who.actor, input)
            .await
            .map_err(engine_error)?;
        Ok(ok(
            StatusCode::CREATED,
            who.chat_json(engine, &opened.conversation).await,
        ))
    }

    /// `GET /api/v1/chat/stats`: the salon's chats and who is connected.
    async fn stats(&self, cx: &Context, who: &Who) -> Answer {
        who.staff_only()?;
        let engine = cx.engine();
        let mut counts: std::collections::BTreeMap<Mode, u64>;
        let mut unread = 0;
        let mut cursor = None;
        loop {
            let page = engine
                .list_conversations(
                    &who.actor,
                    ConversationFilter {
                        cursor,
                        limit: Some(engine.limits().max_page),
                        ..Default::default()
                    },
                )
                .await
                .map_err(engine_error)?;
            counts = page.counts;
            unread += page
                .items
                .iter()
                .filter(|c| number_of(c).is_some())
                .map(|c| c.unread_for_agent)
                .sum::<u64>();
            match page.next_cursor {
                Some(next) => cursor = Some(next.encode()),
                None => break,
            }
        }
        let count = |modes: &[Mode]| modes.iter().filter_map(|m| counts.get(m)).sum::<u64>();
        let online = self.presence.counts(who.salon.tenant);
        Ok(ok(
            StatusCode::OK,
            json!({
                "salon_id": who.salon.number,
                "total_chats": counts.values().sum::<u64>(),
                "active_chats": count(&[Mode::Bot, Mode::Queued, Mode::Agent, Mode::Paused]),
                "closed_chats": count(&[Mode::Closed]),
                "archived_chats": count(&[Mode::Archived]),
                "unread_messages": unread,
                "online_users": online.users,
                "online_customers": online.customers,
                "active_connections": online.connections,
            }),
        ))
    }
}

/// `GET /api/v1/chat/chats` (staff) and `/chats/customer` (the customer's own), newest
/// activity first, `?page=&page_size=&is_archived=`.
async fn list(cx: &Context, who: &mut Who, req: &Request<Incoming>, staff_route: bool) -> Answer {
    if staff_route {
        who.staff_only()?;
    } else {
        who.customer_only()?;
    }
    let query = req.uri().query().unwrap_or_default();
    let (page, size) = paging(query, 20)?;
    let modes = match http::query_param(query, "is_archived").as_deref() {
        Some("true") => vec![Mode::Archived],
        Some("false") => vec![
            Mode::Bot,
            Mode::Queued,
            Mode::Agent,
            Mode::Paused,
            Mode::Closed,
        ],
        _ => Vec::new(),
    };
    let engine = cx.engine();
    // Walk whole pages of the engine's cursor list to the one asked for.
    let mut cursor = None;
    let mut skipped = 0;
    let (items, total) = loop {
        let result = engine
            .list_conversations(
                &who.actor,
                ConversationFilter {
                    modes: modes.clone(),
                    cursor,
                    limit: Some(size),
                    ..Default::default()
                },
            )
            .await
            .map_err(engine_error)?;
        let total: u64 = if modes.is_empty() {
            result.counts.values().sum()
        } else {
            modes.iter().filter_map(|m| result.counts.get(m)).sum()
        };
        if skipped + 1 == page || result.next_cursor.is_none() {
            break (
                if skipped + 1 == page {
                    result.items
                } else {
                    Vec::new()
                },
                total,
            );
        }
        skipped += 1;
        cursor = result.next_cursor.map(|c| c.encode());
    };
    let mut chats = Vec::with_capacity(items.len());
    for c in items.iter().filter(|c| number_of(c).is_some()) {
        chats.push(who.chat_json(engine, c).await);
    }
    Ok(ok(
        StatusCode::OK,
        json!({ "chats": chats, "total": total, "page": page, "page_size": size }),
    ))
}

/// `GET /api/v1/chat/chats/{id}`.
async fn chat(cx: &Context, who: &mut Who, id: &str) -> Answer {
    let c = who.chat(cx.engine(), path_number(id, "chat_id")?).await?;
    Ok(ok(StatusCode::OK, who.chat_json(cx.engine(), &c).await))
}

/// `GET /api/v1/chat/chats/{id}/messages?page=&page_size=`: page 1 is the newest
/// `page_size` messages, each page oldest first.
async fn history(cx: &Context, who: &mut Who, req: &Request<Incoming>, id: &str) -> Answer {
    let number = path_number(id, "chat_id")?;
    let (page, size) = paging(req.uri().query().unwrap_or_default(), 50)?;
    let engine = cx.engine();
    let c = who.chat(engine, number).await?;
    let mut before = None;
    let mut window = Vec::new();
    for _ in 0..page {
        window = engine
            .messages(
                &who.actor,
                c.id,
                MessagePage {
                    before,
                    limit: Some(size),
                    ..Default::default()
                },
            )
            .await
            .map_err(engine_error)?;
        match window.first() {
            Some(oldest) => before = Some(oldest.seq),
            None => break,
        }
    }
    let has_more = window.first().is_some_and(|m| m.seq > 1);
    let mut messages = Vec::with_capacity(window.len());
    for m in &window {
        messages.push(who.message_json(engine, number, c.contact_id, m).await);
    }
    Ok(ok(
        StatusCode::OK,
        json!({
            "messages": messages,
            "page": page,
            "page_size": size,
            "has_more": has_more,
        }),
    ))
}

/// `POST /api/v1/chat/chats/{id}/messages`.
async fn post(cx: &Context, who: &mut Who, req: Request<Incoming>, id: &str) -> Answer {
    let number = path_number(id, "chat_id")?;
    let body = json_body(req).await?;
    let (c, m) = who.send(cx.engine(), number, &body).await?;
    Ok(ok(
        StatusCode::CREATED,
        who.message_json(cx.engine(), number, c.contact_id, &m)
            .await,
    ))
}

/// `PUT /api/v1/chat/messages/{id}`: the sender edits within 15 minutes.
async fn edit(cx: &Context, who: &mut Who, req: Request<Incoming>, id: &str) -> Answer {
    let id = path_number(id, "message_id")?;
    let body = json_body(req).await?;
    let content = fastapi::strings(&body, &["content"])?.remove(0);
    let engine = cx.engine();
    let (chat, c, m) = who.message(engine, id).await?;
    if m.deleted_at.is_some() {
        return Err(fastapi::detail(
            StatusCode::BAD_REQUEST,
            "Cannot edit a deleted message",
        ));
    }
    let edited = engine
        .edit_message(&who.actor, m.id, &content)
        .await
        .map_err(|e| match e {
            chat_core::Error::Forbidden("edit after the edit window") => fastapi::detail(
                StatusCode::BAD_REQUEST,
                "Messages can only be edited within 15 minutes",
            ),
            chat_core::Error::Forbidden(_) => {
                fastapi::detail(StatusCode::FORBIDDEN, "You can only edit your own messages")
            }
            other => engine_error(other),
        })?;
    Ok(ok(
        StatusCode::OK,
        who.message_json(engine, chat, c.contact_id, &edited).await,
    ))
}

/// `DELETE /api/v1/chat/messages/{id}`: soft delete by the sender (or a salon admin).
async fn delete(cx: &Context, who: &mut Who, id: &str) -> Answer {
    let id = path_number(id, "message_id")?;
    let engine = cx.engine();
    let (_, _, m) = who.message(engine, id).await?;
    if m.deleted_at.is_some() {
        return Err(fastapi::detail(StatusCode::NOT_FOUND, "Message not found"));
    }
    engine
        .delete_message(&who.actor, m.id)
        .await
        .map_err(|e| match e {
            chat_core::Error::Forbidden(_) => fastapi::detail(
                StatusCode::FORBIDDEN,
                "You can only delete your own messages",
            ),
            other => engine_error(other),
        })?;
    Ok(ok(
        StatusCode::OK,
        json!({ "success": true, "message": "Message deleted", "id": id }),
    ))
}

/// `POST /api/v1/chat/upload`: a multipart form with `file` and the `chat_id` it is for.
async fn upload(cx: &Context, who: &Who, req: Request<Incoming>) -> Answer {
    let (parts, body) = req.into_parts();
    let form = read_multipart(&parts.headers, body, 1, MAX_FILE_BYTES)
        .await
        .map_err(|e| match e.status {
            StatusCode::PAYLOAD_TOO_LARGE => fastapi::detail(
                StatusCode::PAYLOAD_TOO_LARGE,
                "File too large. Maximum size is 10MB",
            ),
            status => fastapi::detail(status, &e.message),
        })?;
    let Some(chat) = form
        .field("chat_id")
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return Err(fastapi::invalid(vec![fastapi::item(
            "missing",
            "chat_id",
            "Field required",
            Value::Null,
        )]));
    };
    let Some(file) = form.files.first() else {
        return Err(fastapi::invalid(vec![fastapi::item(
            "missing",
            "file",
            "Field required",
            Value::Null,
        )]));
    };
    let Some(mime) = file_type(&file.file_name) else {
        return Err(fastapi::detail(
            StatusCode::BAD_REQUEST,
            &format!(
                "File type not allowed. Allowed types: {}",
                FILE_TYPES.map(|(e, _)| e).join(", ")
            ),
        ));
    };
    if file.bytes.is_empty() {
        return Err(fastapi::detail(
            StatusCode::BAD_REQUEST,
            "The file is empty",
        ));
    }
    let engine = cx.engine();
    let c = who.chat(engine, chat).await?;
    let stored = engine
        .upload_attachment(&who.actor, c.id, &file.file_name, mime, file.bytes.to_vec())
        .await
        .map_err(engine_error)?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "url": format!("{FILES_PATH}/{chat}/{}", stored.key),
            "filename": stored.name,
            "content_type": stored.content_type,
            "size": stored.size,
            "message_type": shapes::message_type(kind_of(mime)),
        }),
    ))
}

/// `GET /api/v1/chat/files/{chat}/{key}`: a chat's file, for those who may read the chat
/// (the token may come as `?token=` for `<img src>`).
async fn download(cx: &Context, who: &Who, chat: &str, key: &str) -> Answer {
    let not_found = || fastapi::detail(StatusCode::NOT_FOUND, "File not found");
    let chat = path_number(chat, "chat_id")?;
    let c = who.chat(cx.engine(), chat).await.map_err(|_| not_found())?;
    let mime = file_type(key).ok_or_else(not_found)?;
    let bytes = cx
        .engine()
        .download_attachment(&who.actor, c.id, key)
        .await
        .map_err(|_| not_found())?;
    let mut response = http::with_type(StatusCode::OK, bytes, mime);
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if !mime.starts_with("image/") && !mime.starts_with("audio/") {
        headers.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    Ok(response)
}

/// A demo login: who, and the bearer token `--demo` writes for it.
async fn demo_staff(
    starter: &Starter,
    salon: &Salon,
    name: &str,
    email: &str,
    role: chat_core::Role,
) -> anyhow::Result<Value> {
    let engine = &starter.engine;
    chat_starter::ensure_staff(engine, salon.tenant, name, email, DEMO_PASSWORD, role).await?;
    let (_, token) =
        accounts::staff_login(engine, &starter.config, salon.tenant, email, DEMO_PASSWORD)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the demo password of {email} was changed"))?;
    Ok(
        json!({ "salon_id": salon.number, "email": email, "password": DEMO_PASSWORD, "token": token }),
    )
}

async fn demo_customer(
    starter: &Starter,
    salons: &SalonChat,
    salon: &Salon,
    name: &str,
    phone: &str,
) -> anyhow::Result<Value> {
    let engine = &starter.engine;
    let phone = normalize_phone(phone);
    if accounts::find(engine, salon.tenant, &phone)
        .await?
        .is_none()
    {
        salons
            .add_customer(engine, salon, name, &phone, DEMO_PASSWORD)
            .await?;
    }
    let (contact, token) =
        accounts::login(engine, &starter.config, salon.tenant, &phone, DEMO_PASSWORD)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the demo password of {phone} was changed"))?;
    Ok(json!({
        "salon_id": salon.number,
        "customer_id": contact.metadata.get(CUSTOMER_NUMBER).and_then(|n| n.parse::<u64>().ok()),
        "phone_number": phone,
        "password": DEMO_PASSWORD,
        "token": token,
    }))
}

/// The password of every demo login (the document's examples use `password`).
pub const DEMO_PASSWORD: &str = "password";

/// Seeds the document's examples (idempotent): the main salon's admin
/// `admin@salon.com` and stylist `staff@salon.com`, its customers `+1234567890` (the
/// first) and `+15550001111`, and chat 1 between the admin and the first; a second salon, Uptown Salon, with its own admin and
/// customer, to show that salons do not see each other. Returns the logins with fresh
/// tokens, for `demo-tokens.json`.
pub async fn seed_demo(starter: &Starter, salons: &SalonChat) -> anyhow::Result<Value> {
    let engine = &starter.engine;
    let main = salons.ensure_salon(engine, FIRST_SALON).await?;
    let uptown = salons.ensure_salon(engine, "Uptown Salon").await?;
    let admin = demo_staff(
        starter,
        &main,
        "Salon Admin",
        "admin@salon.com",
        chat_core::Role::Admin,
    )
    .await?;
    let agent = demo_staff(
        starter,
        &main,
        "Sam Stylist",
        "staff@salon.com",
        chat_core::Role::Agent,
    )
    .await?;
    let uptown_admin = demo_staff(
        starter,
        &uptown,
        "Uptown Admin",
        "admin@uptown-salon.com",
        chat_core::Role::Admin,
    )
    .await?;
    let customer = demo_customer(starter, salons, &main, "Jane Customer", "+1234567890").await?;
    let second_customer =
        demo_customer(starter, salons, &main, "Ken Client", "+15550001111").await?;
    let uptown_customer =
        demo_customer(starter, salons, &uptown, "Uma Uptown", "+1987654321").await?;
    if main.chats.is_empty() {
        let admin_agent = engine
            .store()
            .agent_by_email(main.tenant, "admin@salon.com")
            .await?
            .ok_or_else(|| anyhow::anyhow!("the demo admin is missing"))?;
        let actor = Actor::Staff {
            tenant: main.tenant,
            agent: admin_agent.id,
        };
        let customer_contact = salons
            .customer(engine, &main, customer["customer_id"].as_u64().unwrap_or(1))
            .await?
            .ok_or_else(|| anyhow::anyhow!("the demo customer is missing"))?;
        let (_, opened) = main
            .chats
            .open(
                engine,
                &actor,
                OpenConversation {
                    contact_id: Some(customer_contact.id),
                    title: Some("Appointment".into()),
                    ..Default::default()
                },
            )
            .await?;
        engine
            .post_message(
                &actor,
                opened.conversation.id,
                PostMessage::text("Hi, how can I help?"),
            )
            .await?;
    }
    Ok(json!({
        "admin": admin,
        "agent": agent,
        "customer": customer,
        "second_customer": second_customer,
        "uptown_admin": uptown_admin,
        "uptown_customer": uptown_customer,
    }))
}
