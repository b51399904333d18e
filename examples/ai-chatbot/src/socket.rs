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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_core::{Actor, ContactId, ConversationId, Engine, Event, EventPayload, Reader};
use chat_server::Context;
use chat_server::http::{self, Resp};
use futures_util::{SinkExt, StreamExt};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message as Frame;

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
    let (actor, user) = chatbot.user(app, token).await?;
    let since = http::query_param(&query, "since").and_then(|s| s.parse::<u64>().ok());
    let (response, socket) = chat_server::realtime::accept(&mut req, 64 * 1024, None)
        .map_err(|e| crate::fastapi::detail(e.status, &e.message))?;
    // Subscribe before answering the upgrade: an event committed after the client sees
    // its socket open is never missed, even before the first frame.
    let feed = app.hub().live(actor.tenant()).await;
    let typing_rx = chatbot.typing.tx.subscribe();
    let app = app.clone();
    let typing = chatbot.typing.clone();
    tokio::spawn(async move {
        let Some(socket) = socket.await else {
            return;
        };
        let metrics = app.metrics().clone();
        let _open = metrics.websocket_opened();
        let live = Live {
            feed,
            typing: typing_rx,
            since,
        };
        serve(app, typing, actor, user, live, socket).await;
    });
    Ok(response)
}

/// What a socket listens to, subscribed before the upgrade is answered.
struct Live {
    feed: (
        u64,
        broadcast::Receiver<Arc<chat_server::realtime::Delivery>>,
    ),
    typing: broadcast::Receiver<(ContactId, u64, String)>,
    since: Option<u64>,
}

async fn serve(
    app: Context,
    typing: Typing,
    actor: Actor,
    user: ContactId,
    live: Live,
    mut socket: chat_server::realtime::Socket,
) {
    let Ok(who) = app.engine().resolve(&actor).await else {
        return;
    };
    let me = typing.next.fetch_add(1, Ordering::Relaxed);
    let Live {
        feed: (head, mut live),
        typing: mut typing_rx,
        since,
    } = live;
    let mut cursor = since.unwrap_or(head).min(head);
    if catch_up(app.engine(), &actor, &mut cursor, head, &mut socket)
        .await
        .is_err()
    {
        return;
    }
    let mut shutdown = app.shutdown();
    loop {
        tokio::select! {
            delivery = live.recv() => match delivery {
                Ok(d) => {
                    if d.event.seq <= cursor {
                        continue;
                    }
                    cursor = d.event.seq;
                    if Engine::may_see_event(&who, &d.event, d.conversation.as_deref())
                        && let Some(frame) = event_frame(&d.event)
                        && socket.send(Frame::text(frame.to_string())).await.is_err()
                    {
                        break;
                    }
                }
                // Fell behind the live feed: resume from the cursor through the log.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if catch_up(app.engine(), &actor, &mut cursor, u64::MAX, &mut socket).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            signal = typing_rx.recv() => {
                if let Ok((to, from, frame)) = signal
                    && to == user
                    && from != me
                    && socket.send(Frame::text(frame)).await.is_err()
                {
                    break;
                }
            }
            _ = shutdown.changed() => {
                let _ = socket.close(None).await;
                break;
            }
            frame = socket.next() => match frame {
                Some(Ok(Frame::Text(text))) => {
                    if let Some(answer) = client_frame(&app, &typing, &actor, user, me, &text).await
                        && socket.send(Frame::text(answer.to_string())).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
        }
    }
}

/// Sends what the user may see after `cursor` up to `until`, moving the cursor.
async fn catch_up(
    engine: &Engine,
    actor: &Actor,
    cursor: &mut u64,
    until: u64,
    socket: &mut chat_server::realtime::Socket,
) -> Result<(), ()> {
    while *cursor < until {
        let page = engine
            .events_since(actor, *cursor, 500)
            .await
            .map_err(|_| ())?;
        for event in page.events.iter().filter(|e| e.seq <= until) {
            if let Some(frame) = event_frame(event) {
                socket
                    .send(Frame::text(frame.to_string()))
                    .await
                    .map_err(|_| ())?;
            }
        }
        *cursor = page.next_since.min(until);
        if !page.more {
            break;
        }
    }
    Ok(())
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
