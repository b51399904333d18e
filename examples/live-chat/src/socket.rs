//! `/ws/live-chat`: the document's WebSocket, fed by the engine's event log.
//!
//! - `?sessionId=…` is a guest: it gets `agent_message`, `agent_typing`,
//!   `agent_assigned`, `session_status_changed` and `read_receipt` for its own chat.
//! - `?admin=true&userId=…` is staff and, unlike the document, needs a staff token
//!   (`token=` / `access_token=` or `Authorization: Bearer`). It gets `new_session`,
//!   `user_message`, `agent_message`, `agent_assigned` and `session_status_changed` for
//!   every chat it may see, and `user_typing` / `read_receipt` for the chats it sent
//!   `subscribe_session` for.
//!
//! Every frame that comes from the log carries `seq`. A client that reconnects with
//! `&since=<last seq>` first gets what it missed, from the log, once and in order, then
//! live frames (the hub's head tells one from the other, so nothing is sent twice).
//!
//! The socket runs the server's shared loop ([`chat_server::realtime::follow`]): the
//! server pings it (WebSocket ping frames, which browsers answer by themselves) and
//! closes it when it stops answering; one that falls too far behind is closed with 4008,
//! and one whose staff token has expired or was revoked (or whose chat is gone) with
//! 4001. Reconnect with `since`.

use std::collections::HashSet;

use chat_core::Ephemeral;
use chat_core::{
    Actor, AgentId, ConversationChange, ConversationId, Engine, Event, EventPayload, MessageKind,
    Sender, TransferTarget,
};
use chat_server::Context;
use chat_server::auth::Caller;
use chat_server::http::Resp;
use chat_server::realtime::Socket;
use chat_server::realtime::follow::{Flow, Follower};
use futures_util::SinkExt;
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::public::{agents, signal};
use crate::shapes;
use crate::{Ctx, Fail, Result, SessionIds, query};

/// Largest frame a client may send (typing and read receipts are tiny).
const MAX_FRAME: usize = 16 * 1024;

/// Who is on the socket.
enum Viewer {
    /// A guest, in one chat.
    Visitor {
        actor: Actor,
        conversation: ConversationId,
    },
    /// Staff.
    Staff(Actor),
}

impl Viewer {
    fn actor(&self) -> &Actor {
        match self {
            Viewer::Visitor { actor, .. } | Viewer::Staff(actor) => actor,
        }
    }
    fn is_staff(&self) -> bool {
        matches!(self, Viewer::Staff(_))
    }
}

pub(crate) async fn open(ctx: &Ctx<'_>, mut req: Request<Incoming>) -> Result<Resp> {
    let since = query(&req, "since").and_then(|s| s.parse::<u64>().ok());
    let mut token = None;
    let mut guest_tokens = None;
    let viewer = if query(&req, "admin").as_deref() == Some("true") {
        let actor = ctx.staff(&req).await?;
        token = crate::staff_token(&req)?;
        Viewer::Staff(actor)
    } else {
        let sid =
            query(&req, "sessionId").ok_or_else(|| Fail::bad_request("Session ID is required"))?;
        // The session's cookie rides on the handshake by itself; a site that cannot keep
        // cookies adds `&token=`.
        let tokens = crate::guest::presented(req.headers(), req.uri().query(), &sid);
        let (actor, conversation) = ctx.visitor(&sid, &tokens).await?;
        if let Some((_, crate::ids::Kind::Chosen)) = ctx.chat.ids.lookup(&sid) {
            guest_tokens = Some(tokens);
        }
        Viewer::Visitor {
            actor,
            conversation: conversation.id,
        }
    };
    let (response, socket) = chat_server::realtime::accept(&mut req, MAX_FRAME, None)?;
    // Tap before answering the upgrade: nothing committed after the client sees its
    // socket open falls between history and live frames.
    let tap = ctx.app.hub().tap(viewer.actor().tenant()).await;
    let app = ctx.app.clone();
    let ids = ctx.chat.ids.clone();
    tokio::spawn(async move {
        let Some(mut socket) = socket.await else {
            return;
        };
        let metrics = app.metrics().clone();
        let _open = metrics.websocket_opened();
        let greeting = json!({ "type": "connection_established", "timestamp": now() });
        if send(&mut socket, greeting).await.is_err() {
            return;
        }
        let actor = viewer.actor().clone();
        let mut connection = Connection {
            app: app.clone(),
            ids,
            viewer,
            token,
            guest_tokens,
            subscribed: HashSet::new(),
        };
        // A closed socket or a failed store ends the connection; the client reconnects
        // with `since` and loses nothing.
        tap.follow(
            app.engine(),
            &mut socket,
            &actor,
            since,
            &mut connection,
            app.shutdown(),
        )
        .await;
    });
    Ok(response)
}

struct Connection {
    app: Context,
    ids: SessionIds,
    viewer: Viewer,
    /// Staff: the token the socket was opened with, authenticated again now and then.
    token: Option<String>,
    /// A guest of a widget-chosen id: the cookie or token it opened with, which must
    /// stay valid (it expires, see [`crate::guest::TOKEN_LIFETIME`]).
    guest_tokens: Option<Vec<String>>,
    /// Chats whose typing and read receipts staff asked for.
    subscribed: HashSet<ConversationId>,
}

impl Follower for Connection {
    async fn event(&mut self, socket: &mut Socket, event: &Event) -> Flow {
        let engine = self.app.engine().clone();
        let frames = match self.frames(&engine, event).await {
            Ok(frames) => frames,
            Err(Closed) => return Flow::Gone,
        };
        for frame in frames {
            if send(socket, frame).await.is_err() {
                return Flow::Gone;
            }
        }
        Flow::Continue
    }

    async fn signal(&mut self, socket: &mut Socket, signal: &Ephemeral) -> Flow {
        match self.signal_frame(signal) {
            Some(frame) => Flow::sent(send(socket, frame).await),
            None => Flow::Continue,
        }
    }

    async fn text(&mut self, socket: &mut Socket, text: &str) -> Flow {
        let engine = self.app.engine().clone();
        Flow::sent(self.incoming(socket, &engine, text).await)
    }

    /// Staff: the token still authenticates as the same staff member. A guest: its chat
    /// must still be there, and for a widget-chosen id its token still valid (an issued
    /// id is a capability that does not expire).
    async fn still_allowed(&mut self) -> bool {
        match (&self.viewer, &self.token) {
            (Viewer::Staff(actor), Some(token)) => matches!(
                self.app.authenticate(Some(token)).await,
                Ok(Caller::Actor(a)) if a == *actor
            ),
            (Viewer::Staff(_), None) => false,
            (
                Viewer::Visitor {
                    actor,
                    conversation,
                },
                _,
            ) => {
                let engine = self.app.engine();
                match engine.conversation(actor, *conversation).await {
                    Ok(c) => match &self.guest_tokens {
                        Some(tokens) => crate::guest::holds(engine, &c, tokens).await,
                        None => true,
                    },
                    Err(_) => false,
                }
            }
        }
    }
}

/// Why a connection ended.
struct Closed;

impl From<tokio_tungstenite::tungstenite::Error> for Closed {
    fn from(_: tokio_tungstenite::tungstenite::Error) -> Self {
        Closed
    }
}

impl From<chat_core::Error> for Closed {
    fn from(e: chat_core::Error) -> Self {
        tracing::warn!(error = %e, "live-chat socket stopped");
        Closed
    }
}

impl Connection {
    fn session_id(&self, id: ConversationId) -> String {
        self.ids.issue(id)
    }

    /// The document's frames for one event this viewer may see.
    async fn frames(
        &self,
        engine: &Engine,
        event: &Event,
    ) -> std::result::Result<Vec<Value>, Closed> {
        let staff = self.viewer.is_staff();
        let Some(conversation_id) = event.conversation_id else {
            return Ok(Vec::new());
        };
        let session_id = self.session_id(conversation_id);
        let system = Actor::System {
            tenant: event.tenant_id,
        };
        let mut frames = Vec::new();
        match &event.payload {
            EventPayload::ConversationCreated { conversation } if staff => {
                let agents = agents(engine, &system).await.unwrap_or_default();
                frames.push(json!({
                    "type": "new_session",
                    "session": shapes::session(&session_id, conversation, &agents),
                }));
            }
            EventPayload::MessageCreated { message } if message.kind != MessageKind::Note => {
                let kind = match message.sender {
                    Sender::Customer if staff => "user_message",
                    Sender::Agent(_) => "agent_message",
                    _ => return Ok(frames),
                };
                let agents = agents(engine, &system).await.unwrap_or_default();
                frames.push(json!({
                    "type": kind,
                    "sessionId": session_id,
                    "message": shapes::message(&session_id, message, None, &agents),
                }));
            }
            EventPayload::ConversationUpdated {
                conversation,
                change,
            } => {
                let assigned = match change {
                    ConversationChange::Assigned { to: Some(a), .. } => Some(*a),
                    ConversationChange::Transferred {
                        to: TransferTarget::Agent(a),
                        ..
                    } => Some(*a),
                    _ => None,
                };
                if let Some(agent) = assigned {
                    frames.push(json!({
                        "type": "agent_assigned",
                        "sessionId": session_id,
                        "agent": self.agent(engine, event, agent).await,
                    }));
                }
                let status_moved = matches!(
                    change,
                    ConversationChange::Mode { .. }
                        | ConversationChange::Closed
                        | ConversationChange::Reopened
                        | ConversationChange::Archived
                        | ConversationChange::Assigned { from: None, .. }
                        | ConversationChange::Assigned { to: None, .. }
                );
                if status_moved {
                    frames.push(json!({
                        "type": "session_status_changed",
                        "sessionId": session_id,
                        "status": shapes::status(conversation.mode),
                    }));
                }
            }
            _ => {}
        }
        for frame in &mut frames {
            frame["seq"] = json!(event.seq);
        }
        Ok(frames)
    }

    async fn agent(&self, engine: &Engine, event: &Event, id: AgentId) -> Value {
        let system = Actor::System {
            tenant: event.tenant_id,
        };
        match engine.agent(&system, id).await {
            Ok(agent) => {
                let mut value = shapes::agent_ref(&agent, false);
                value["name"] = json!(agent.name);
                value
            }
            _ => json!({ "_id": id.to_string() }),
        }
    }

    /// Typing and read receipts for this viewer, if they concern it.
    fn signal_frame(&self, s: &Ephemeral) -> Option<Value> {
        if s.tenant_id != self.viewer.actor().tenant() {
            return None;
        }
        let wanted = match &self.viewer {
            Viewer::Visitor { conversation, .. } => {
                *conversation == s.conversation_id
                    && matches!(s.kind.as_str(), "agent_typing" | "read_receipt")
            }
            Viewer::Staff(_) => {
                self.subscribed.contains(&s.conversation_id)
                    && matches!(s.kind.as_str(), "user_typing" | "read_receipt")
            }
        };
        wanted.then(|| {
            let mut frame = json!({ "type": s.kind });
            if let (Some(frame), Value::Object(data)) = (frame.as_object_mut(), &s.data) {
                frame.extend(data.clone());
            }
            frame
        })
    }

    /// The conversation a client frame is about: the guest's own, or (staff) the
    /// `sessionId` it names, if the staff member may see it.
    async fn target(&self, engine: &Engine, frame: &Value) -> Option<chat_core::Conversation> {
        let id = match &self.viewer {
            Viewer::Visitor { conversation, .. } => *conversation,
            Viewer::Staff(_) => self.ids.check(frame["sessionId"].as_str()?)?,
        };
        engine.conversation(self.viewer.actor(), id).await.ok()
    }

    async fn incoming(
        &mut self,
        socket: &mut Socket,
        engine: &Engine,
        text: &str,
    ) -> std::result::Result<(), Closed> {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return send(
                socket,
                json!({ "type": "error", "message": "Invalid message format" }),
            )
            .await;
        };
        match frame["type"].as_str().unwrap_or("") {
            "ping" => send(socket, json!({ "type": "pong", "timestamp": now() })).await,
            "typing" => {
                let Some(c) = self.target(engine, &frame).await else {
                    return Self::not_found(socket).await;
                };
                let kind = if self.viewer.is_staff() {
                    "agent_typing"
                } else {
                    "user_typing"
                };
                let is_typing = frame["isTyping"].as_bool().unwrap_or(false);
                signal(
                    engine,
                    &c,
                    kind,
                    json!({ "sessionId": self.session_id(c.id), "isTyping": is_typing }),
                );
                Ok(())
            }
            "read_receipt" => {
                let Some(c) = self.target(engine, &frame).await else {
                    return Self::not_found(socket).await;
                };
                let message = frame["messageId"]
                    .as_str()
                    .and_then(|m| m.parse::<chat_core::MessageId>().ok());
                let actor = self.viewer.actor().clone();
                let found = match message {
                    Some(id) => engine.message(&actor, id).await.ok(),
                    None => None,
                };
                let Some(message) = found.filter(|m| m.conversation_id == c.id) else {
                    return send(
                        socket,
                        json!({ "type": "error", "message": "Message not found" }),
                    )
                    .await;
                };
                // The read cursor is stored (it drives `isRead`); the receipt itself is live.
                let _ = engine.mark_read(&actor, c.id, message.seq).await;
                let read_by = match &actor {
                    Actor::Staff { agent, .. } => agent.to_string(),
                    _ => "user".to_owned(),
                };
                signal(
                    engine,
                    &c,
                    "read_receipt",
                    json!({
                        "sessionId": self.session_id(c.id),
                        "messageId": message.id.to_string(),
                        "readBy": read_by,
                    }),
                );
                Ok(())
            }
            "subscribe_session" if self.viewer.is_staff() => {
                let Some(c) = self.target(engine, &frame).await else {
                    return Self::not_found(socket).await;
                };
                self.subscribed.insert(c.id);
                Ok(())
            }
            "unsubscribe_session" => {
                if let Some(id) = frame["sessionId"].as_str().and_then(|s| self.ids.check(s)) {
                    self.subscribed.remove(&id);
                }
                Ok(())
            }
            _ => {
                send(
                    socket,
                    json!({ "type": "error", "message": "Unknown message type" }),
                )
                .await
            }
        }
    }

    async fn not_found(socket: &mut Socket) -> std::result::Result<(), Closed> {
        send(
            socket,
            json!({ "type": "error", "message": "Session not found" }),
        )
        .await
    }
}

/// The server's wall-clock time for the socket's own frames (greeting, pong): a transport
/// timestamp for the client's clock-skew check, not domain data.
fn now() -> String {
    shapes::iso(time::OffsetDateTime::now_utc())
}

async fn send(socket: &mut Socket, frame: Value) -> std::result::Result<(), Closed> {
    socket.send(Frame::text(frame.to_string())).await?;
    Ok(())
}
