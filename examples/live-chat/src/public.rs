//! `/api/live-chat/…`: the guest's routes. The guest is whoever holds the session's
//! cookie or token, or a server-issued id (see [`crate::ids`] and [`crate::guest`]);
//! every call acts as a customer scoped to that one conversation, so the engine's rules
//! decide what the guest may do.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use chat_core::policy::view::Viewer;
use chat_core::{
    Actor, Attachment, ContactInput, ConversationId, Engine, Ephemeral, Message, MessagePage,
    OpenConversation, PostMessage,
};
use chat_server::extension::{Matched, PathTable};
use chat_server::http::{self, Resp};
use chat_server::uploads::{UploadedFile, read_multipart};
use hyper::body::Incoming;
use hyper::header::{CONTENT_DISPOSITION, HeaderValue, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::guest;
use crate::ids::{self, MAX_CHOSEN_LEN, MIN_CHOSEN_LEN};
use crate::shapes::{self, Agents, meta};
use crate::{Ctx, FILE_TYPES, Fail, MAX_FILE_BYTES, MAX_FILES, Result, json_body, ok, paging};

/// The guests' endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Create,
    Session,
    Send,
    Messages,
    Upload,
    End,
    Rate,
    Typing,
    Download,
}

static ENDPOINTS: LazyLock<PathTable<Endpoint>> = LazyLock::new(|| {
    use Endpoint::*;
    PathTable::new([
        (Method::POST, "/api/live-chat/sessions", Create),
        (Method::GET, "/api/live-chat/sessions/{id}", Session),
        (Method::POST, "/api/live-chat/sessions/{id}/messages", Send),
        (
            Method::GET,
            "/api/live-chat/sessions/{id}/messages",
            Messages,
        ),
        (Method::POST, "/api/live-chat/upload", Upload),
        (Method::PATCH, "/api/live-chat/sessions/{id}/end", End),
        (Method::POST, "/api/live-chat/sessions/{id}/rate", Rate),
        (Method::POST, "/api/live-chat/sessions/{id}/typing", Typing),
        // Attachment keys are `<folder>/<name>`.
        (
            Method::GET,
            "/api/live-chat/sessions/{id}/attachments/{folder}/{name}",
            Download,
        ),
    ])
});

pub(crate) async fn route(ctx: &Ctx<'_>, req: Request<Incoming>) -> (&'static str, Result<Resp>) {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    // The document knows no 405: another method is a route it does not have.
    let Matched::Found {
        endpoint,
        pattern,
        params,
    } = ENDPOINTS.find(req.method(), &path)
    else {
        return (
            "/api/live-chat (no route)",
            Err(Fail::new(StatusCode::NOT_FOUND, "Route not found")),
        );
    };
    let sid = params.get("id").unwrap_or_default();
    // The session's cookie or token, read before a handler takes the body.
    let tokens = guest::presented(req.headers(), req.uri().query(), sid);
    let t = tokens.as_slice();
    let answer = match endpoint {
        Endpoint::Create => create(ctx, req).await,
        Endpoint::Session => session(ctx, sid, t).await,
        Endpoint::Send => send(ctx, sid, t, req).await,
        Endpoint::Messages => messages(ctx, sid, t, &req).await,
        Endpoint::Upload => upload(ctx, req).await,
        Endpoint::End => end(ctx, sid, t, req).await,
        Endpoint::Rate => rate(ctx, sid, t, req).await,
        Endpoint::Typing => typing(ctx, sid, t, req).await,
        Endpoint::Download => {
            let key = format!(
                "{}/{}",
                params.get("folder").unwrap_or_default(),
                params.get("name").unwrap_or_default()
            );
            download(ctx, sid, t, &key).await
        }
    };
    (pattern, answer)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    /// The widget's own id (see [`crate::ids`]); without one the server issues it.
    session_id: Option<String>,
    user: Option<UserBody>,
    page_url: Option<String>,
    referrer: Option<String>,
    department: Option<String>,
    priority: Option<String>,
}

#[derive(Deserialize, Default)]
struct UserBody {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

async fn create(ctx: &Ctx<'_>, req: Request<Incoming>) -> Result<Resp> {
    let user_agent = header(&req, hyper::header::USER_AGENT);
    let referer = header(&req, hyper::header::REFERER);
    let secure = guest::over_https(req.headers());
    let headers = req.headers().clone();
    let body: CreateBody = json_body(req).await?;
    let chosen = match body.session_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) if ids::well_formed(id) => Some(id.to_owned()),
        Some(_) => {
            return Err(Fail::bad_request(format!(
                "Invalid session ID: use {MIN_CHOSEN_LEN} to {MAX_CHOSEN_LEN} letters, digits, '-' or '_'"
            )));
        }
    };
    let user = body.user.unwrap_or_default();
    let present = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (Some(name), Some(email)) = (present(&user.name), present(&user.email)) else {
        return Err(Fail::bad_request("User name and email are required"));
    };
    let phone = present(&user.phone);
    let department = match present(&body.department) {
        None => None,
        Some(d) => shapes::department(&d).ok_or_else(|| Fail::bad_request("Invalid department"))?,
    };
    let priority = match present(&body.priority) {
        None => chat_core::Priority::Medium,
        Some(p) => shapes::priority(&p).ok_or_else(|| Fail::bad_request("Invalid priority"))?,
    };
    let mut metadata = BTreeMap::new();
    for (key, value) in [
        (meta::NAME, Some(name.clone())),
        (meta::EMAIL, Some(email.clone())),
        (meta::PHONE, phone.clone()),
        (meta::USER_AGENT, user_agent),
        (meta::IP, Some(ctx.ip.to_string())),
        (meta::REFERRER, present(&body.referrer).or(referer)),
        (meta::PAGE_URL, present(&body.page_url)),
    ] {
        if let Some(value) = value {
            // Metadata is free text from the browser: keep it to a sane length.
            metadata.insert(key.to_owned(), value.chars().take(2000).collect());
        }
    }
    let contact = ContactInput {
        name: Some(name),
        email: Some(email),
        phone,
        ..ContactInput::default()
    };
    let Some(chosen) = chosen else {
        let welcome = open_session(
            ctx.engine(),
            &ctx.system(),
            contact,
            department,
            priority,
            metadata,
        )
        .await?;
        let session_id = ctx.session_id(welcome.conversation.id);
        return Ok(created(&session_id, &welcome, None));
    };

    // The same browser sending its create again (a double click, a re-rendered effect)
    // gets its session back; anyone else naming a taken id gets 409 and nothing of it.
    if let Some((_, ids::Kind::Chosen)) = ctx.chat.ids.lookup(&chosen) {
        let tokens = guest::presented(&headers, None, &chosen);
        return match ctx.visitor(&chosen, &tokens).await {
            Ok((visitor, conversation)) => resume(ctx, &chosen, &visitor, &conversation).await,
            Err(_) => Err(session_taken()),
        };
    }
    metadata.insert(ids::CHOSEN_ID.to_owned(), chosen.clone());
    let engine = ctx.engine();
    let system = ctx.system();
    let opened = ctx
        .chat
        .ids
        .create(&chosen, || async {
            let welcome =
                open_session(engine, &system, contact, department, priority, metadata).await?;
            let now = engine.clock().now();
            let (token, record) = guest::new_token(system.tenant(), &welcome.conversation, now);
            engine.store_visitor_token(&system, &record).await?;
            Ok::<_, chat_core::Error>((welcome.conversation.id, (welcome, token)))
        })
        .await?;
    let Some((welcome, token)) = opened else {
        return Err(session_taken());
    };
    let mut response = created(&chosen, &welcome, Some(&token));
    for cookie in guest::set_cookies(&chosen, &token, secure) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

fn session_taken() -> Fail {
    Fail::new(StatusCode::CONFLICT, "Session ID is already in use")
}

/// The create answer: the session, its welcome message, and (for a widget-chosen id) the
/// visitor token a site that cannot keep cookies sends instead.
fn created(session_id: &str, welcome: &chat_core::Posted, token: Option<&str>) -> Resp {
    let agents = Agents::new();
    let mut data = json!({
        "session": shapes::created_session(session_id, &welcome.conversation),
        "welcomeMessage": shapes::message(session_id, &welcome.message, None, &agents),
    });
    if let Some(token) = token {
        data["token"] = json!(token);
    }
    ok(
        StatusCode::CREATED,
        json!({
            "success": true,
            "message": "Chat session created successfully",
            "data": data,
        }),
    )
}

/// A repeated create from the browser that holds the session: 200, the session and the
/// welcome message it was greeted with. No new cookie: the browser has it.
async fn resume(
    ctx: &Ctx<'_>,
    session_id: &str,
    visitor: &Actor,
    conversation: &chat_core::Conversation,
) -> Result<Resp> {
    let agents = Agents::new();
    let history = transcript(ctx.engine(), visitor, conversation.id).await?;
    let welcome = history
        .iter()
        .find(|m| matches!(m.sender, chat_core::Sender::System))
        .or(history.first())
        .map(|m| shapes::message(session_id, m, None, &agents));
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Chat session resumed",
            "data": {
                "session": shapes::created_session(session_id, conversation),
                "welcomeMessage": welcome,
            }
        }),
    ))
}

/// Opens a chat that waits for an agent and greets the guest by name, as the document's
/// create route does; returns the welcome message as posted.
pub(crate) async fn open_session(
    engine: &Engine,
    system: &Actor,
    contact: ContactInput,
    department: Option<String>,
    priority: chat_core::Priority,
    metadata: BTreeMap<String, String>,
) -> chat_core::Result<chat_core::Posted> {
    let name = contact.name.clone().unwrap_or_default();
    let opened = engine
        .open_conversation(
            system,
            OpenConversation {
                contact,
                department,
                priority,
                metadata,
                ..OpenConversation::default()
            },
        )
        .await?;
    engine
        .post_message(
            system,
            opened.conversation.id,
            PostMessage::text(format!(
                "Welcome {name}! A support agent will be with you shortly."
            )),
        )
        .await
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn session(ctx: &Ctx<'_>, sid: &str, tokens: &[String]) -> Result<Resp> {
    let (_, conversation) = ctx.visitor(sid, tokens).await?;
    let agents = agents(ctx.engine(), &ctx.system()).await?;
    Ok(ok(
        StatusCode::OK,
        json!({ "success": true, "data": shapes::visitor_session(sid, &conversation, &agents) }),
    ))
}

#[derive(Deserialize, Default)]
pub(crate) struct MessageBody {
    pub(crate) content: Option<String>,
    /// Files uploaded first through `POST /api/live-chat/upload`.
    #[serde(default)]
    pub(crate) attachments: Vec<AttachmentBody>,
}

/// An attachment as `/upload` returned it.
#[derive(Deserialize)]
pub(crate) struct AttachmentBody {
    id: String,
    name: Option<String>,
}

/// A message body from JSON or from a multipart form with `content` and `files`; files
/// are stored for conversation `id` as `actor`.
pub(crate) async fn read_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: ConversationId,
    req: Request<Incoming>,
) -> Result<PostMessage> {
    let (body, attachments) = if is_multipart(&req) {
        let (parts, body) = req.into_parts();
        let form = read_form(&parts.headers, body).await?;
        let attachments = store_files(ctx, actor, id, &form.files).await?;
        (form.field("content").map(str::to_owned), attachments)
    } else {
        let body: MessageBody = json_body(req).await?;
        if body.attachments.len() > MAX_FILES {
            return Err(Fail::bad_request(format!(
                "Too many files. Maximum is {MAX_FILES} files"
            )));
        }
        let mut attachments = Vec::with_capacity(body.attachments.len());
        for a in &body.attachments {
            let mut attachment = uploaded(a)?;
            // The size comes from the stored bytes, which also proves the upload exists
            // and belongs to this conversation.
            let bytes = ctx
                .engine()
                .download_attachment(actor, id, &attachment.key)
                .await
                .map_err(|_| Fail::bad_request("Invalid attachment"))?;
            attachment.size = bytes.len() as u64;
            attachments.push(attachment);
        }
        (body.content, attachments)
    };
    let body = body.unwrap_or_default();
    if body.trim().is_empty() && attachments.is_empty() {
        return Err(Fail::bad_request("Message content is required"));
    }
    if attachments.len() > MAX_FILES {
        return Err(Fail::bad_request(format!(
            "Too many files. Maximum is {MAX_FILES} files"
        )));
    }
    Ok(PostMessage {
        body,
        attachments,
        ..PostMessage::default()
    })
}

/// An attachment the client names by the id `/upload` gave it. Type and size come from
/// the stored key, not from the client; the engine refuses keys of other conversations.
fn uploaded(a: &AttachmentBody) -> Result<Attachment> {
    let file = a.id.rsplit('/').next().unwrap_or("");
    let content_type = file_type(file)
        .ok_or_else(|| Fail::bad_request("Invalid attachment"))?
        .to_owned();
    Ok(Attachment {
        key: a.id.clone(),
        name: a
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| file.to_owned()),
        content_type,
        size: 0,
    })
}

async fn send(ctx: &Ctx<'_>, sid: &str, tokens: &[String], req: Request<Incoming>) -> Result<Resp> {
    let (visitor, conversation) = ctx.visitor(sid, tokens).await?;
    let input = read_message(ctx, &visitor, conversation.id, req).await?;
    let posted = ctx
        .engine()
        .post_message(&visitor, conversation.id, input)
        .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({
            "success": true,
            "message": "Message sent successfully",
            "data": shapes::message(sid, &posted.message, Some(&posted.conversation), &Agents::new()),
        }),
    ))
}

/// Every message of a conversation the actor may read, oldest first (customers never
/// get notes). Bounded: a support chat has hundreds of messages, not millions.
pub(crate) async fn transcript(
    engine: &Engine,
    actor: &Actor,
    id: ConversationId,
) -> Result<Vec<Message>> {
    const PAGE: usize = 200;
    let mut all: Vec<Message> = Vec::new();
    let mut after = 0;
    loop {
        let page = engine
            .messages(
                actor,
                id,
                MessagePage {
                    after: Some(after),
                    before: None,
                    limit: Some(PAGE),
                },
            )
            .await?;
        let done = page.len() < PAGE;
        after = page.last().map_or(after, |m| m.seq);
        // What a customer sees of the transcript is the policy's view (never a note).
        let viewer = Viewer::of(actor);
        all.extend(page.into_iter().filter(|m| viewer.message(m).is_some()));
        if done || all.len() >= 10_000 {
            return Ok(all);
        }
    }
}

/// `{count, total, page, pages, data}` of one page of `items`.
pub(crate) fn page_of(items: Vec<Value>, page: usize, limit: usize) -> Value {
    let total = items.len();
    let data: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    json!({
        "success": true,
        "count": data.len(),
        "total": total,
        "page": page,
        "pages": total.div_ceil(limit),
        "data": data,
    })
}

async fn messages(
    ctx: &Ctx<'_>,
    sid: &str,
    tokens: &[String],
    req: &Request<Incoming>,
) -> Result<Resp> {
    let (visitor, conversation) = ctx.visitor(sid, tokens).await?;
    let (page, limit) = paging(req, 50);
    let agents = agents(ctx.engine(), &ctx.system()).await?;
    let items = transcript(ctx.engine(), &visitor, conversation.id)
        .await?
        .iter()
        .map(|m| shapes::message(sid, m, Some(&conversation), &agents))
        .collect();
    Ok(ok(StatusCode::OK, page_of(items, page, limit)))
}

async fn upload(ctx: &Ctx<'_>, req: Request<Incoming>) -> Result<Resp> {
    if !is_multipart(&req) {
        return Err(Fail::bad_request("Send the files as multipart/form-data"));
    }
    let (parts, body) = req.into_parts();
    let form = read_form(&parts.headers, body).await?;
    let sid = form
        .field("sessionId")
        .ok_or_else(|| Fail::bad_request("Session ID is required"))?
        .to_owned();
    let tokens = guest::presented(&parts.headers, parts.uri.query(), &sid);
    let (visitor, conversation) = ctx.visitor(&sid, &tokens).await?;
    if form.files.is_empty() {
        return Err(Fail::bad_request("No files uploaded"));
    }
    let stored = store_files(ctx, &visitor, conversation.id, &form.files).await?;
    let attachments: Vec<Value> = stored
        .iter()
        .map(|a| {
            let url = format!("/api/live-chat/sessions/{sid}/attachments/{}", a.key);
            json!({
                "id": a.key,
                "name": a.name,
                "type": a.content_type,
                "size": a.size,
                "url": url,
                "previewUrl": a.content_type.starts_with("image/").then_some(url.clone()),
            })
        })
        .collect();
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Files uploaded successfully",
            "data": { "attachments": attachments },
        }),
    ))
}

fn is_multipart(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// Reads an upload form within the document's limits, in its words.
async fn read_form(
    headers: &hyper::HeaderMap,
    body: Incoming,
) -> Result<chat_server::uploads::Form> {
    read_multipart(headers, body, MAX_FILES, MAX_FILE_BYTES)
        .await
        .map_err(|e| match e.status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                Fail::bad_request("File too large. Maximum size is 10MB")
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                Fail::bad_request(format!("Too many files. Maximum is {MAX_FILES} files"))
            }
            _ => Fail::bad_request(e.message),
        })
}

/// The MIME type of a file name with one of the document's extensions.
pub(crate) fn file_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    FILE_TYPES
        .iter()
        .find(|(e, _)| *e == extension)
        .map(|(_, mime)| *mime)
}

/// Checks every file first (so a bad one stores nothing), then stores them.
async fn store_files(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: ConversationId,
    files: &[UploadedFile],
) -> Result<Vec<Attachment>> {
    let mut typed = Vec::with_capacity(files.len());
    for file in files {
        // The extension decides, as in the document; the type is stored from it, so a
        // file cannot be served back as something the list does not name.
        let Some(mime) = file_type(&file.file_name) else {
            return Err(Fail::bad_request(format!(
                "Invalid file type. Allowed types: {}",
                FILE_TYPES.map(|(e, _)| e).join(", ")
            )));
        };
        if file.bytes.is_empty() {
            return Err(Fail::bad_request(format!("{} is empty", file.file_name)));
        }
        typed.push((file, mime));
    }
    let mut stored = Vec::with_capacity(typed.len());
    for (file, mime) in typed {
        stored.push(
            ctx.engine()
                .upload_attachment(actor, id, &file.file_name, mime, file.bytes.to_vec())
                .await?,
        );
    }
    Ok(stored)
}

#[derive(Deserialize, Default)]
struct EndBody {
    rating: Option<i64>,
    feedback: Option<String>,
}

async fn end(ctx: &Ctx<'_>, sid: &str, tokens: &[String], req: Request<Incoming>) -> Result<Resp> {
    let (visitor, conversation) = ctx.visitor(sid, tokens).await?;
    let body: EndBody = json_body(req).await?;
    if !conversation.mode.is_open() {
        return Err(Fail::bad_request("Chat session already ended"));
    }
    let rating = body
        .rating
        .map(|r| score(r).map(|s| (s, body.feedback.clone())))
        .transpose()?;
    let closed = ctx
        .engine()
        .close(&visitor, conversation.id, rating)
        .await?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Chat session ended",
            "data": {
                "sessionId": sid,
                "status": shapes::status(closed.mode),
                "endedAt": closed.closed_at.map(shapes::iso),
            }
        }),
    ))
}

fn score(value: i64) -> Result<u8> {
    u8::try_from(value)
        .ok()
        .filter(|s| (1..=5).contains(s))
        .ok_or_else(|| Fail::bad_request("Rating must be between 1 and 5"))
}

#[derive(Deserialize, Default)]
struct RateBody {
    score: Option<i64>,
    feedback: Option<String>,
}

async fn rate(ctx: &Ctx<'_>, sid: &str, tokens: &[String], req: Request<Incoming>) -> Result<Resp> {
    let (visitor, conversation) = ctx.visitor(sid, tokens).await?;
    let body: RateBody = json_body(req).await?;
    let score = score(body.score.unwrap_or(0))?;
    let rated = ctx
        .engine()
        .rate(&visitor, conversation.id, score, body.feedback)
        .await?;
    let rating = rated.rating.as_ref().map(
        |r| json!({ "score": r.score, "feedback": r.feedback, "ratedAt": shapes::iso(r.rated_at) }),
    );
    Ok(ok(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Thank you for your feedback!",
            "data": { "rating": rating },
        }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TypingBody {
    #[serde(default)]
    is_typing: bool,
}

async fn typing(
    ctx: &Ctx<'_>,
    sid: &str,
    tokens: &[String],
    req: Request<Incoming>,
) -> Result<Resp> {
    let (_, conversation) = ctx.visitor(sid, tokens).await?;
    let body: TypingBody = json_body(req).await?;
    signal(
        ctx.engine(),
        &conversation,
        "user_typing",
        json!({ "sessionId": sid, "isTyping": body.is_typing }),
    );
    Ok(ok(
        StatusCode::OK,
        json!({ "success": true, "message": "Typing indicator sent" }),
    ))
}

/// Publishes a typing or read signal: live only, never stored.
pub(crate) fn signal(engine: &Engine, c: &chat_core::Conversation, kind: &str, data: Value) {
    engine.bus().publish_ephemeral(Arc::new(Ephemeral {
        tenant_id: c.tenant_id,
        conversation_id: c.id,
        kind: kind.to_owned(),
        data,
    }));
}

async fn download(ctx: &Ctx<'_>, sid: &str, tokens: &[String], key: &str) -> Result<Resp> {
    let (visitor, conversation) = ctx.visitor(sid, tokens).await?;
    let bytes = ctx
        .engine()
        .download_attachment(&visitor, conversation.id, key)
        .await
        .map_err(|e| match e {
            chat_core::Error::NotFound(_) => Fail::new(StatusCode::NOT_FOUND, "File not found"),
            other => other.into(),
        })?;
    let mime = file_type(key).unwrap_or("application/octet-stream");
    let mut response = http::with_type(StatusCode::OK, bytes, mime);
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if !mime.starts_with("image/") {
        headers.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    Ok(response)
}

/// Every staff member by id, to name agents.
pub(crate) async fn agents(engine: &Engine, system: &Actor) -> Result<Agents> {
    Ok(engine
        .agents(system)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect())
}
