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

use std::collections::HashSet;

use chat_core::bus::Ephemeral;
use chat_core::{
    Actor, AgentId, ConversationChange, ConversationId, Engine, Event, EventPayload, MessageKind,
    Sender, TransferTarget,
};
use chat_server::Context;
use chat_server::http::Resp;
use chat_server::realtime::Socket;
use futures_util::{SinkExt, StreamExt};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
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
    let viewer = if query(&req, "admin").as_deref() == Some("true") {
        Viewer::Staff(ctx.staff(&req).await?)
    } else {
        let sid =
            query(&req, "sessionId").ok_or_else(|| Fail::bad_request("Session ID is required"))?;
        let (actor, conversation) = ctx.visitor(&sid).await?;
        Viewer::Visitor {
            actor,
            conversation: conversation.id,
        }
    };
    let (response, socket) = chat_server::realtime::accept(&mut req, MAX_FRAME, None)?;
    let app = ctx.app.clone();
    let ids = ctx.chat.ids.clone();
    tokio::spawn(async move {
        if let Some(socket) = socket.await {
            let mut connection = Connection {
                app,
                ids,
                viewer,
                subscribed: HashSet::new(),
                cursor: 0,
            };
            // A closed socket or a failed store ends the connection; the client
            // reconnects with `since` and loses nothing.
            let mut socket = socket;
            let _ = connection.run(&mut socket, since).await;
        }
    });
    Ok(response)
}

struct Connection {
    app: Context,
    ids: SessionIds,
    viewer: Viewer,
    /// Chats whose typing and read receipts staff asked for.
    subscribed: HashSet<ConversationId>,
    /// The last log sequence handled (sent or not visible).
    cursor: u64,
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
    async fn run(
        &mut self,
        socket: &mut Socket,
        since: Option<u64>,
    ) -> std::result::Result<(), Closed> {
        let engine = self.app.engine().clone();
        let who = engine.resolve(self.viewer.actor()).await?;
        let metrics = self.app.metrics().clone();
        let _open = metrics.websocket_opened();
        let tenant = self.viewer.actor().tenant();
        let (head, mut live) = self.app.hub().live(tenant).await;
        let mut signals = engine.bus().subscribe_ephemeral();
        send(
            socket,
            json!({ "type": "connection_established", "timestamp": now() }),
        )
        .await?;
        match since {
            Some(since) => {
                self.cursor = since;
                self.catch_up(socket, &engine).await?;
            }
            None => self.cursor = head,
        }
        let mut shutdown = self.app.shutdown();
        loop {
            tokio::select! {
                delivery = live.recv() => match delivery {
                    Ok(d) => {
                        if d.event.seq <= self.cursor {
                            continue;
                        }
                        self.cursor = d.event.seq;
                        if Engine::may_see_event(&who, &d.event, d.conversation.as_deref()) {
                            for frame in self.frames(&engine, &d.event).await? {
                                send(socket, frame).await?;
                            }
                        }
                    }
                    // Fell behind the live feed: the log still has everything.
                    Err(RecvError::Lagged(_)) => self.catch_up(socket, &engine).await?,
                    Err(RecvError::Closed) => return Ok(()),
                },
                signal = signals.recv() => match signal {
                    Ok(s) => {
                        if let Some(frame) = self.signal_frame(&s) {
                            send(socket, frame).await?;
                        }
                    }
                    // Typing is best effort.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Ok(()),
                },
                frame = socket.next() => match frame {
                    Some(Ok(Frame::Text(text))) => self.incoming(socket, &engine, &text).await?,
                    Some(Ok(Frame::Close(_))) | None | Some(Err(_)) => return Ok(()),
                    Some(Ok(_)) => {}
                },
                _ = shutdown.changed() => {
                    let _ = socket.close(None).await;
                    return Ok(());
                }
            }
        }
    }

    /// Sends what the log holds after the cursor, visible to this viewer, in order.
    async fn catch_up(
        &mut self,
        socket: &mut Socket,
        engine: &Engine,
    ) -> std::result::Result<(), Closed> {
        loop {
            let page = engine
                .events_since(self.viewer.actor(), self.cursor, 500)
                .await?;
            for event in &page.events {
                for frame in self.frames(engine, event).await? {
                    send(socket, frame).await?;
                }
            }
            self.cursor = self.cursor.max(page.next_since);
            if !page.more {
                return Ok(());
            }
        }
    }

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
        match engine.store().agent(event.tenant_id, id).await {
            Ok(Some(agent)) => {
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

fn now() -> String {
    shapes::iso(time::OffsetDateTime::now_utc())
}

async fn send(socket: &mut Socket, frame: Value) -> std::result::Result<(), Closed> {
    socket.send(Frame::text(frame.to_string())).await?;
    Ok(())
}
