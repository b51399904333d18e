//! `/ws?token=`: new messages, read receipts and typing indicators of the user's chats.
//!
//! Every frame from the event log carries `seq`; a client that reconnects with
//! `/ws?token=…&since=<last seq>` gets what it missed, once and in order, before live
//! frames (without `since` it starts live, having read the history over HTTP).
//!
//! Server frames: `new_message` `{chat_id, message, seq}`, `message_read`
//! `{chat_id, reader, seq}`, `chat_created` / `chat_updated` `{chat, seq}`, `typing`
//! `{chat_id, sender, is_typing}`, `pong`, `error` `{detail}`. Client frames: `typing`
//! `{chat_id, is_typing}`, `read` `{chat_id}`, `ping`.
//!
//! The socket runs the server's shared loop ([`chat_server::realtime::follow`]): the
//! server pings it (WebSocket ping frames, which browsers answer by themselves) and
//! closes it when it stops answering; one that falls too far behind is closed with 4008,
//! and one whose token has expired or was revoked with 4001. Reconnect with `since`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_core::{Actor, ContactId, ConversationId, Event, EventPayload, Reader};
use chat_server::Context;
use chat_server::auth::Caller;
use chat_server::http::{self, Resp};
use chat_server::realtime::Socket;
use chat_server::realtime::follow::{Flow, Follower};
use futures_util::SinkExt;
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::{Message as Frame, Utf8Bytes};

use crate::{AiChatbot, chat_json, message_json};

/// Typing indicators of a user's connections (and of the AI while it answers). They are
/// ephemeral: relayed between a user's own sockets, never stored.
#[derive(Clone)]
pub struct Typing {
    tx: broadcast::Sender<(ContactId, u64, String)>,
    next: Arc<AtomicU64>,
}

impl Default for Typing {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(256).0,
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl Typing {
    /// Tells the user's sockets whether the AI is composing an answer in `chat`.
    pub fn ai(&self, user: ContactId, chat: ConversationId, on: bool) {
        self.send(user, 0, chat, "ai", on);
    }

    fn send(&self, user: ContactId, from: u64, chat: ConversationId, sender: &str, on: bool) {
        let frame = json!({
            "type": "typing",
            "chat_id": chat.to_string(),
            "sender": sender,
            "is_typing": on,
        });
        // No receiver is fine: nobody is connected.
        let _ = self.tx.send((user, from, frame.to_string()));
    }
}

/// Upgrades `/ws?token=…[&since=…]` for a signed-in user.
pub(crate) async fn open(
    app: &Context,
    chatbot: &AiChatbot,
    mut req: Request<Incoming>,
) -> Result<Resp, Resp> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let token = http::query_param(&query, "token");
    let (actor, user) = chatbot.user(app, token.clone()).await?;
    let token = token.unwrap_or_default();
    let since = http::query_param(&query, "since").and_then(|s| s.parse::<u64>().ok());
    let (response, socket) = chat_server::realtime::accept(&mut req, 64 * 1024, None)
        .map_err(|e| crate::fastapi::detail(e.status, &e.message))?;
    // Tap before answering the upgrade: an event committed after the client sees its
    // socket open is never missed, even before the first frame.
    let tap = app.hub().tap(actor.tenant()).await;
    let typing_rx = chatbot.typing.tx.subscribe();
    let app = app.clone();
    let typing = chatbot.typing.clone();
    tokio::spawn(async move {
        let Some(mut socket) = socket.await else {
            return;
        };
        let metrics = app.metrics().clone();
        let _open = metrics.websocket_opened();
        let me = typing.next.fetch_add(1, Ordering::Relaxed);
        let mut user_socket = UserSocket {
            app: app.clone(),
            typing,
            typing_rx,
            actor: actor.clone(),
            user,
            me,
            token,
        };
        tap.follow(
            app.engine(),
            &mut socket,
            &actor,
            since,
            &mut user_socket,
            app.shutdown(),
        )
        .await;
    });
    Ok(response)
}

/// One user's socket: its chats' events in the document's frames, and its typing.
struct UserSocket {
    app: Context,
    typing: Typing,
    typing_rx: broadcast::Receiver<(ContactId, u64, String)>,
    actor: Actor,
    user: ContactId,
    /// This socket among the user's (its own typing is not echoed back).
    me: u64,
    /// The account token it was opened with, authenticated again now and then.
    token: String,
}

impl Follower for UserSocket {
    async fn event(&mut self, socket: &mut Socket, event: &Event) -> Flow {
        match event_frame(event) {
            Some(frame) => Flow::sent(socket.send(Frame::text(frame.to_string())).await),
            None => Flow::Continue,
        }
    }

    async fn text(&mut self, socket: &mut Socket, text: &str) -> Flow {
        let answer = client_frame(
            &self.app,
            &self.typing,
            &self.actor,
            self.user,
            self.me,
            text,
        )
        .await;
        match answer {
            Some(answer) => Flow::sent(socket.send(Frame::text(answer.to_string())).await),
            None => Flow::Continue,
        }
    }

    async fn still_allowed(&mut self) -> bool {
        matches!(
            self.app.authenticate(Some(&self.token)).await,
            Ok(Caller::Actor(actor)) if actor == self.actor
        )
    }

    /// Typing of the user's other sockets and of the AI.
    async fn aside(&mut self) -> Option<Utf8Bytes> {
        loop {
            match self.typing_rx.recv().await {
                Ok((to, from, frame)) if to == self.user && from != self.me => {
                    return Some(frame.into());
                }
                // Typing is best effort: a lag only loses indicators.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

/// The frame for a log event, if the document's client has one for it.
fn event_frame(event: &Event) -> Option<Value> {
    let chat_id = event.conversation_id.map(|c| c.to_string());
    Some(match &event.payload {
        EventPayload::MessageCreated { message } => json!({
            "type": "new_message",
            "chat_id": chat_id,
            "message": message_json(message, None)?,
            "seq": event.seq,
        }),
        EventPayload::ReadUpdated { cursor } => json!({
            "type": "message_read",
            "chat_id": chat_id,
            "reader": match cursor.reader { Reader::Customer => "user", Reader::Agent(_) => "agent" },
            "seq": event.seq,
        }),
        EventPayload::ConversationCreated { conversation } => json!({
            "type": "chat_created",
            "chat": chat_json(conversation),
            "seq": event.seq,
        }),
        EventPayload::ConversationUpdated { conversation, .. } => json!({
            "type": "chat_updated",
            "chat": chat_json(conversation),
            "seq": event.seq,
        }),
        _ => return None,
    })
}

/// Handles a client frame; returns the answer to send back, if any.
async fn client_frame(
    app: &Context,
    typing: &Typing,
    actor: &Actor,
    user: ContactId,
    me: u64,
    text: &str,
) -> Option<Value> {
    let error = |detail: &str| Some(json!({ "type": "error", "detail": detail }));
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return error("frames are JSON objects");
    };
    let chat = || {
        frame["chat_id"]
            .as_str()
            .and_then(|id| id.parse::<ConversationId>().ok())
    };
    match frame["type"].as_str() {
        Some("ping") => Some(json!({ "type": "pong" })),
        Some("typing") => {
            let chat = chat()?;
            // Only the user's own chats: the engine answers not found for any other.
            if app.engine().conversation(actor, chat).await.is_err() {
                return error("Chat not found");
            }
            let on = frame["is_typing"].as_bool().unwrap_or(true);
            typing.send(user, me, chat, "user", on);
            None
        }
        Some("read") => {
            let Some(chat) = chat() else {
                return error("chat_id is required");
            };
            let c = match app.engine().conversation(actor, chat).await {
                Ok(c) => c,
                Err(_) => return error("Chat not found"),
            };
            match app.engine().mark_read(actor, chat, c.last_seq).await {
                Ok(_) => None,
                Err(e) => error(&e.to_string()),
            }
        }
        _ => error("unknown frame type"),
    }
}
