//! `/api/v1/chat/ws/chat/user?token=` (staff) and `/customer?token=` (customers).
//!
//! Client frames: `join_chat {chat_id[, last_message_id]}`, `leave_chat {chat_id}`,
//! `send_message {chat_id, content | media_url, message_type, reply_to_id, entity_type,
//! entity_id}`, `typing {chat_id, is_typing}`, `read_message {chat_id, message_id}`,
//! `ping`. Server frames: `connected`, `message`, `message_edited`, `message_deleted`,
//! `typing`, `read_receipt`, `user_joined`, `user_left`, `error`, `pong`.
//!
//! Messages, edits, deletes and read receipts come from the engine's event log, so a
//! message posted over HTTP reaches the sockets too, and a client that joins again with
//! the last message id it saw (`last_message_id`) gets what it missed, once and in
//! order, before live ones. Typing and joins are signals: live only, never stored.
//!
//! The socket runs the server's shared loop ([`chat_server::realtime::follow`]): the
//! server pings it (WebSocket ping frames, which browsers answer by themselves) and
//! closes it when it stops answering; one that falls too far behind is closed with 4008,
//! and one whose token has expired or was revoked with 4001. Join again with
//! `last_message_id` after reconnecting.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chat_core::Ephemeral;
use chat_core::{
    ContactId, ConversationId, Engine, Event, EventPayload, MessagePage, Reader, TenantId,
};
use chat_server::Context;
use chat_server::auth::Caller;
use chat_server::http::{self, Resp};
use chat_server::realtime::Socket;
use chat_server::realtime::follow::{Flow, Follower};
use chat_starter::fastapi;
use futures_util::SinkExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::shapes::{message_number, split_message_number};
use crate::{Participant, SalonChat, Who};

/// Largest client frame.
const MAX_FRAME: usize = 64 * 1024;
/// Most chats one socket joins.
const MAX_JOINED: usize = 256;

/// Open sockets of a salon by participant (`(is staff, number)`).
type Sockets = HashMap<(bool, u64), usize>;

/// Who is connected, per salon, for `/stats`.
#[derive(Default)]
pub struct Presence {
    online: Mutex<HashMap<TenantId, Sockets>>,
    next: AtomicU64,
}

/// Connected staff, customers and sockets of a salon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Online {
    /// Distinct staff members with a socket open.
    pub users: usize,
    /// Distinct customers with a socket open.
    pub customers: usize,
    /// Open sockets.
    pub connections: usize,
}

impl Presence {
    /// The salon's figures now.
    pub fn counts(&self, tenant: TenantId) -> Online {
        let online = self.online.lock().expect("never poisoned");
        let Some(salon) = online.get(&tenant) else {
            return Online::default();
        };
        Online {
            users: salon.keys().filter(|(staff, _)| *staff).count(),
            customers: salon.keys().filter(|(staff, _)| !*staff).count(),
            connections: salon.values().sum(),
        }
    }

    fn enter(self: &Arc<Self>, tenant: TenantId, who: Participant) -> Seat {
        let key = (matches!(who, Participant::User { .. }), who.number());
        *self
            .online
            .lock()
            .expect("never poisoned")
            .entry(tenant)
            .or_default()
            .entry(key)
            .or_default() += 1;
        Seat {
            presence: self.clone(),
            tenant,
            key,
            id: self.next.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// One open socket in [`Presence`]; leaving on drop.
struct Seat {
    presence: Arc<Presence>,
    tenant: TenantId,
    key: (bool, u64),
    id: u64,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut online = self.presence.online.lock().expect("never poisoned");
        if let Some(salon) = online.get_mut(&self.tenant) {
            if let Some(n) = salon.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    salon.remove(&self.key);
                }
            }
            if salon.is_empty() {
                online.remove(&self.tenant);
            }
        }
    }
}

/// Upgrades one of the two sockets for a signed-in staff member (`staff`) or customer.
pub(crate) async fn open(
    app: &Context,
    salons: &SalonChat,
    mut req: Request<Incoming>,
    staff: bool,
) -> Result<Resp, Resp> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let token = http::query_param(&query, "token").or_else(|| {
        chat_server::auth::bearer(req.headers(), None)
            .ok()
            .flatten()
    });
    let who = salons.who(app, token.clone()).await?;
    if matches!(who.participant, Participant::User { .. }) != staff {
        return Err(fastapi::detail(
            StatusCode::FORBIDDEN,
            if staff {
                "This socket is for staff; customers use /api/v1/chat/ws/chat/customer"
            } else {
                "This socket is for customers; staff use /api/v1/chat/ws/chat/user"
            },
        ));
    }
    app.engine()
        .resolve(&who.actor)
        .await
        .map_err(crate::engine_error)?;
    let (response, socket) = chat_server::realtime::accept(&mut req, MAX_FRAME, None)
        .map_err(|e| fastapi::detail(e.status, &e.message))?;
    // Tap before answering the upgrade: nothing committed after the client sees its
    // socket open falls between history and live frames.
    let tap = app.hub().tap(who.salon.tenant).await;
    let app = app.clone();
    let seat = salons.presence_seat(&who);
    tokio::spawn(async move {
        let Some(mut socket) = socket.await else {
            return;
        };
        let metrics = app.metrics().clone();
        let _open = metrics.websocket_opened();
        let actor = who.actor.clone();
        let mut connection = Connection {
            app: app.clone(),
            engine: app.engine().clone(),
            who,
            token: token.unwrap_or_default(),
            seat,
            joined: HashMap::new(),
        };
        let connected = json!({
            "type": "connected",
            "participant_type": connection.who.participant.kind(),
            "participant_id": connection.who.participant.number(),
        });
        if send(&mut socket, connected).await.is_err() {
            return;
        }
        // Joins replay by `last_message_id`; the log itself is followed from now on.
        tap.follow(
            app.engine(),
            &mut socket,
            &actor,
            None,
            &mut connection,
            app.shutdown(),
        )
        .await;
        connection.leave_all();
    });
    Ok(response)
}

impl SalonChat {
    fn presence_seat(&self, who: &Who) -> Seat {
        self.presence.enter(who.salon.tenant, who.participant)
    }
}

/// The socket is gone (closed, failed or the server is stopping).
struct Closed;

/// A chat the socket joined.
struct Joined {
    number: u64,
    /// The chat's customer (messages name their sender by it).
    customer: ContactId,
    /// The newest message sequence sent, so a message is never sent twice.
    last_seq: u64,
}

struct Connection {
    app: Context,
    engine: Engine,
    who: Who,
    /// The token the socket was opened with, authenticated again now and then.
    token: String,
    seat: Seat,
    joined: HashMap<ConversationId, Joined>,
}

impl Follower for Connection {
    async fn event(&mut self, socket: &mut Socket, event: &Event) -> Flow {
        gone_if_closed(self.deliver(socket, event).await)
    }

    async fn signal(&mut self, socket: &mut Socket, signal: &Ephemeral) -> Flow {
        gone_if_closed(self.relay_signal(socket, signal).await)
    }

    async fn text(&mut self, socket: &mut Socket, text: &str) -> Flow {
        gone_if_closed(self.incoming(socket, text).await)
    }

    async fn still_allowed(&mut self) -> bool {
        matches!(
            self.app.authenticate(Some(&self.token)).await,
            Ok(Caller::Actor(actor)) if actor == self.who.actor
        )
    }
}

fn gone_if_closed(result: Result<(), Closed>) -> Flow {
    match result {
        Ok(()) => Flow::Continue,
        Err(Closed) => Flow::Gone,
    }
}

async fn send(socket: &mut Socket, frame: Value) -> Result<(), Closed> {
    socket
        .send(Frame::text(frame.to_string()))
        .await
        .map_err(|_| Closed)
}

/// The server's wall-clock time for the socket's own frames (greeting, pong): a transport
/// timestamp for the client's clock-skew check, not domain data.
fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn error(text: &str) -> Value {
    json!({ "type": "error", "error": text })
}

/// The `detail` text of a refused request, for an `error` frame.
async fn detail_of(resp: Resp) -> String {
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(o)) => match o.get("detail") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| {
                    let field = i["loc"].as_array()?.last()?.as_str()?.to_owned();
                    Some(format!("{field}: {}", i["msg"].as_str()?))
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => "Request failed".into(),
        },
        _ => "Request failed".into(),
    }
}

impl Connection {
    /// Tells the chats this socket was in that it left.
    fn leave_all(&mut self) {
        let chats: Vec<_> = self.joined.iter().map(|(id, j)| (*id, j.number)).collect();
        for (id, number) in chats {
            self.announce(id, number, "user_left");
        }
    }

    /// The frames for one event of a joined chat.
    async fn deliver(&mut self, socket: &mut Socket, event: &Event) -> Result<(), Closed> {
        let Some(id) = event.conversation_id else {
            return Ok(());
        };
        let Some(joined) = self.joined.get_mut(&id) else {
            return Ok(());
        };
        let (chat, customer) = (joined.number, joined.customer);
        let frame = match &event.payload {
            EventPayload::MessageCreated { message } => {
                if message.seq <= joined.last_seq {
                    return Ok(());
                }
                joined.last_seq = message.seq;
                json!({
                    "type": "message",
                    "message": self.who.message_json(&self.engine, chat, customer, message).await,
                })
            }
            EventPayload::MessageUpdated { message } if message.deleted_at.is_some() => json!({
                "type": "message_deleted",
                "chat_id": chat,
                "message_id": message_number(chat, message.seq),
            }),
            EventPayload::MessageUpdated { message } => json!({
                "type": "message_edited",
                "message": self.who.message_json(&self.engine, chat, customer, message).await,
            }),
            EventPayload::ReadUpdated { cursor } => {
                let (reader_type, reader_id) = match cursor.reader {
                    Reader::Agent(agent) => ("user", json!(self.who.dir.staff_number(agent))),
                    Reader::Customer => {
                        let tenant = self.who.salon.tenant;
                        let (n, _) = self.who.dir.customer(&self.engine, tenant, customer).await;
                        ("customer", json!(n))
                    }
                };
                json!({
                    "type": "read_receipt",
                    "chat_id": chat,
                    "message_id": message_number(chat, cursor.seq),
                    "reader_id": reader_id,
                    "reader_type": reader_type,
                })
            }
            _ => return Ok(()),
        };
        send(socket, frame).await
    }

    /// Relays a typing or join signal of a joined chat (not the socket's own).
    async fn relay_signal(&mut self, socket: &mut Socket, s: &Ephemeral) -> Result<(), Closed> {
        if s.tenant_id != self.who.salon.tenant
            || !self.joined.contains_key(&s.conversation_id)
            || !matches!(s.kind.as_str(), "typing" | "user_joined" | "user_left")
            || s.data["socket"].as_u64() == Some(self.seat.id)
        {
            return Ok(());
        }
        let mut frame = s.data.clone();
        if let Some(o) = frame.as_object_mut() {
            o.remove("socket");
        }
        send(socket, frame).await
    }

    /// Publishes `user_joined` / `user_left` / typing to the chat's other sockets.
    fn announce(&self, id: ConversationId, chat: u64, kind: &str) {
        self.publish(
            id,
            kind,
            json!({
                "type": kind,
                "chat_id": chat,
                "participant_id": self.who.participant.number(),
                "participant_type": self.who.participant.kind(),
            }),
        );
    }

    fn publish(&self, id: ConversationId, kind: &str, mut data: Value) {
        data["socket"] = json!(self.seat.id);
        self.engine.bus().publish_ephemeral(Arc::new(Ephemeral {
            tenant_id: self.who.salon.tenant,
            conversation_id: id,
            kind: kind.to_owned(),
            data,
        }));
    }

    async fn incoming(&mut self, socket: &mut Socket, text: &str) -> Result<(), Closed> {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return send(socket, error("Invalid JSON")).await;
        };
        let chat = frame["chat_id"].as_u64();
        let answer = match (frame["type"].as_str(), chat) {
            (Some("ping"), _) => Some(json!({ "type": "pong", "timestamp": now() })),
            (Some("join_chat"), Some(chat)) => self.join(socket, chat, &frame).await?,
            (Some("leave_chat"), Some(chat)) => {
                let left = self
                    .joined
                    .iter()
                    .find(|(_, j)| j.number == chat)
                    .map(|(id, _)| *id);
                match left {
                    Some(id) => {
                        self.announce(id, chat, "user_left");
                        self.joined.remove(&id);
                        // The socket itself hears that it left, as when it joined.
                        Some(json!({
                            "type": "user_left",
                            "chat_id": chat,
                            "participant_id": self.who.participant.number(),
                            "participant_type": self.who.participant.kind(),
                        }))
                    }
                    None => Some(error("Not in this chat")),
                }
            }
            (Some("send_message"), Some(chat)) => {
                match self.who.send(&self.engine, chat, &frame).await {
                    // The message comes back through the log to every socket in the chat.
                    Ok(_) => None,
                    Err(refused) => Some(error(&detail_of(refused).await)),
                }
            }
            (Some("typing"), Some(chat)) => match self.joined_id(chat) {
                Some(id) => {
                    let mut data = json!({
                        "type": "typing",
                        "chat_id": chat,
                        "participant_id": self.who.participant.number(),
                        "participant_type": self.who.participant.kind(),
                        "is_typing": frame["is_typing"].as_bool().unwrap_or(true),
                    });
                    data["socket"] = json!(self.seat.id);
                    self.publish(id, "typing", data);
                    None
                }
                None => Some(error("Join the chat first")),
            },
            (Some("read_message"), Some(chat)) => self.read(chat, &frame).await,
            (
                Some("join_chat" | "leave_chat" | "send_message" | "typing" | "read_message"),
                None,
            ) => Some(error("chat_id is required")),
            (Some(other), _) => Some(error(&format!("Unknown message type: {other}"))),
            (None, _) => Some(error("type is required")),
        };
        match answer {
            Some(frame) => send(socket, frame).await,
            None => Ok(()),
        }
    }

    fn joined_id(&self, chat: u64) -> Option<ConversationId> {
        self.joined
            .iter()
            .find(|(_, j)| j.number == chat)
            .map(|(id, _)| *id)
    }

    /// `join_chat`: checks the caller may see the chat, replays what it missed after
    /// `last_message_id`, and tells the chat.
    async fn join(
        &mut self,
        socket: &mut Socket,
        chat: u64,
        frame: &Value,
    ) -> Result<Option<Value>, Closed> {
        let c = match self.who.chat(&self.engine, chat).await {
            Ok(c) => c,
            Err(_) => return Ok(Some(error("Chat not found"))),
        };
        if !self.joined.contains_key(&c.id) && self.joined.len() >= MAX_JOINED {
            return Ok(Some(error("Too many chats joined on one connection")));
        }
        let since = frame["last_message_id"]
            .as_u64()
            .and_then(split_message_number)
            .filter(|(n, _)| *n == chat)
            .map(|(_, seq)| seq);
        let already = self.joined.get(&c.id).map(|j| j.last_seq);
        self.joined.insert(
            c.id,
            Joined {
                number: chat,
                customer: c.contact_id,
                last_seq: already.unwrap_or(since.unwrap_or(c.last_seq)),
            },
        );
        if since.is_some() {
            self.replay(socket, c.id, chat).await?;
        }
        if already.is_none() {
            self.announce(c.id, chat, "user_joined");
        }
        Ok(Some(json!({
            "type": "user_joined",
            "chat_id": chat,
            "participant_id": self.who.participant.number(),
            "participant_type": self.who.participant.kind(),
        })))
    }

    /// Sends a joined chat's messages after its `last_seq`, oldest first.
    async fn replay(
        &mut self,
        socket: &mut Socket,
        id: ConversationId,
        chat: u64,
    ) -> Result<(), Closed> {
        loop {
            let Some((after, customer)) = self.joined.get(&id).map(|j| (j.last_seq, j.customer))
            else {
                return Ok(());
            };
            let page = self
                .engine
                .messages(
                    &self.who.actor,
                    id,
                    MessagePage {
                        after: Some(after),
                        limit: Some(200),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|_| Closed)?;
            let Some(newest) = page.last().map(|m| m.seq) else {
                return Ok(());
            };
            for m in &page {
                let message = self.who.message_json(&self.engine, chat, customer, m).await;
                send(socket, json!({ "type": "message", "message": message })).await?;
            }
            if let Some(j) = self.joined.get_mut(&id) {
                j.last_seq = newest;
            }
        }
    }

    /// `read_message`: moves the caller's read cursor; the receipt comes back through the
    /// log to the chat's sockets.
    async fn read(&mut self, chat: u64, frame: &Value) -> Option<Value> {
        let Some((n, seq)) = frame["message_id"].as_u64().and_then(split_message_number) else {
            return Some(error("message_id is required"));
        };
        if n != chat {
            return Some(error("Message not found"));
        }
        let c = match self.who.chat(&self.engine, chat).await {
            Ok(c) => c,
            Err(_) => return Some(error("Chat not found")),
        };
        if seq > c.last_seq {
            return Some(error("Message not found"));
        }
        match self.engine.mark_read(&self.who.actor, c.id, seq).await {
            Ok(_) => None,
            Err(e) => Some(error(&detail_of(crate::engine_error(e)).await)),
        }
    }
}
