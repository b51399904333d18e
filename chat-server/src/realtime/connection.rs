//! One `/v1/ws` connection: the handshake, then the [`follow`](super::follow) loop with
//! this protocol's subscriptions, replays and client frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::feed::{FeedItem, FeedScope};
use chat_core::policy::{Action, Resolved};
use chat_core::{Actor, ConversationId, Engine, EventPayload, PostMessage};
use futures_util::SinkExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::ORIGIN;
use super::credential::{Credential, upgrade_token};
use super::follow::{self, Flow, Handler};
use super::io::{TimedWrites, WRITE_TIMEOUT};
use super::protocol::{self, ClientFrame};
use super::{Delivery, Feed, Hub, Outbound, Outbox, Route, Signal};
use crate::error::ApiError;
use crate::http::{self, Resp};

/// Bytes of frames fed in one wake-up that are gathered before they are written.
const WRITE_BATCH: usize = 4096;

/// The subprotocol the server speaks; browsers may also pass their token as a second
/// subprotocol (`chat.v1, <token>`), since their WebSocket API cannot set headers.
pub const SUBPROTOCOL: &str = "chat.v1";

/// Answers the upgrade request with 101 and serves the socket in a task of its own.
pub async fn upgrade(
    hub: Arc<Hub>,
    req: Request<Incoming>,
    actor: Actor,
    shutdown: tokio::sync::watch::Receiver<bool>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Resp, ApiError> {
    upgrade_knowing(hub, req, actor, None, shutdown, metrics).await
}

/// [`upgrade`], given what the request's authentication found of a stored token's
/// expiry (`Some(None)`: it does not expire; `None`: not known). Known, the socket does not
/// read the token again as it starts: with reads running in place, each read of a burst of
/// sockets opening at once handed its worker to a new thread, and those threads stayed
/// (136 of them at 10,000 sockets, more memory per idle socket than the sockets' own).
pub(crate) async fn upgrade_knowing(
    hub: Arc<Hub>,
    mut req: Request<Incoming>,
    actor: Actor,
    expiry: Option<Option<time::OffsetDateTime>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Resp, ApiError> {
    let resolved = hub.engine.resolve(&actor).await?;
    // The route authenticated this very token for this request.
    // Boxed: the socket's task keeps it, and most of that task's size is kept per idle
    // socket.
    let credential = upgrade_token(&req)
        .and_then(|t| Credential::of_token(&t))
        .map(|c| Box::new(c.knowing_expiry(expiry)));
    let (response, socket) = accept_with(
        &mut req,
        hub.config.max_frame_bytes,
        Some(SUBPROTOCOL),
        hub.config.write_timeout,
    )?;
    let tenant = actor.tenant();
    let feed = hub.feed(tenant).await;
    let connection = Connection::new(hub.clone(), feed, actor, resolved, credential);
    // After the connection's outbox is made: the hub rings it when `shutdown` comes.
    hub.stop_with(&shutdown);
    drop(shutdown);
    tokio::spawn(serve(connection, Box::pin(socket), metrics));
    Ok(response)
}

/// The socket once the handshake completes (`None` if the client went away).
type PendingSocket = std::pin::Pin<Box<dyn Future<Output = Option<Socket>> + Send>>;

/// The task that serves one socket, for as long as it is open.
///
/// Idle sockets are most of what the server holds (see the idle RSS figure in the
/// README), and this future is allocated whole for each of them, so it is kept small (a
/// test holds it under a bound): the connection is moved in whole, not in parts that
/// would be stored twice; `run` borrows it; the handshake and the futures that run rarely
/// are boxed; nothing built for a moment (the hello frame) is kept. It is not an
/// `async fn` because an async fn stores its arguments twice (1,616 bytes instead of
/// 1,280, before the credential re-check).
#[allow(clippy::manual_async_fn)]
fn serve(
    mut connection: Connection,
    socket: PendingSocket,
    metrics: Arc<crate::metrics::Metrics>,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let Some(mut socket) = socket.await else {
            return;
        };
        let _open = metrics.websocket_opened();
        let tenant = connection.actor.tenant();
        let staff = connection.resolved.staff().map(|a| a.id);
        let hub = connection.hub.clone();
        if let Some(agent) = staff {
            Box::pin(hub.agent_connected(tenant, agent)).await;
        }
        let outcome = connection.run(&mut socket).await;
        if let Some((code, reason)) = outcome {
            Box::pin(follow::close(&mut socket, code, reason)).await;
        }
        drop(connection);
        if let Some(agent) = staff {
            hub.agent_disconnected(tenant, agent);
        }
    }
}

/// A server-side WebSocket over a hyper upgrade, whose writes give up when the client
/// stops reading (see [`TimedWrites`]).
pub type Socket = WebSocketStream<TimedWrites<TokioIo<hyper::upgrade::Upgraded>>>;

/// Checks a WebSocket upgrade request and returns the 101 answer plus the socket it
/// becomes once the answer is sent (`None` if the client went away). Frames and messages
/// are capped at `max_frame_bytes`; read buffers are small so idle sockets stay cheap.
/// `subprotocol` is echoed when the client offers it.
///
/// A send that makes no progress for [`WRITE_TIMEOUT`] fails (the client stopped
/// reading), which ends the connection instead of holding it forever.
///
/// Extensions that speak their own WebSocket protocol use this too; the socket must be
/// served in a task of its own, after the response has been returned.
pub fn accept(
    req: &mut Request<Incoming>,
    max_frame_bytes: usize,
    subprotocol: Option<&'static str>,
) -> Result<(Resp, impl Future<Output = Option<Socket>> + Send + 'static), ApiError> {
    accept_with(req, max_frame_bytes, subprotocol, WRITE_TIMEOUT)
}

/// [`accept`] with another write timeout.
pub(crate) fn accept_with(
    req: &mut Request<Incoming>,
    max_frame_bytes: usize,
    subprotocol: Option<&'static str>,
    write_timeout: Duration,
) -> Result<(Resp, impl Future<Output = Option<Socket>> + Send + 'static), ApiError> {
    let headers = req.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(ApiError::bad_request(
            "this route speaks WebSocket: send Upgrade: websocket",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v != "13")
    {
        return Err(ApiError::bad_request("Sec-WebSocket-Version must be 13"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| ApiError::bad_request("missing Sec-WebSocket-Key"))?;
    let accept = derive_accept_key(key.as_bytes());
    let offered = subprotocol.filter(|p| has(header::SEC_WEBSOCKET_PROTOCOL, p));
    let on_upgrade = hyper::upgrade::on(req);
    let config = WebSocketConfig::default()
        // 128 bytes instead of 128 KiB: every idle socket keeps this buffer for its whole
        // life (see NOTES.md), and what clients send is small JSON (a subscribe with its
        // conversation id is about 90 bytes, a ping 6). Once a frame's header is read the
        // buffer grows to the frame's whole length, but tungstenite reads at most this
        // many bytes per read call: a 500-byte `send_message` costs 4 reads instead of 2
        // at 256, on frames a client sends, never on the fan-out's writes.
        .read_buffer_size(128)
        // Frames fed in one wake-up (see `follow::drain`) gather up to this much before
        // they are written: a burst of events costs one write (and one wake-up of the
        // client) per few frames instead of one per frame. A frame sent on its own is
        // written at once. The buffer is allocated at the first frame and keeps its size
        // (at most this plus one frame), so an idle socket that never had a burst holds
        // only the largest single frame it was sent.
        .write_buffer_size(WRITE_BATCH)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes));
    let socket = async move {
        match on_upgrade.await {
            Ok(upgraded) => Some(
                WebSocketStream::from_raw_socket(
                    TimedWrites::new(TokioIo::new(upgraded), write_timeout),
                    Role::Server,
                    Some(config),
                )
                .await,
            ),
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                None
            }
        }
    };
    let mut response = http::no_content();
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header"),
    );
    if let Some(protocol) = offered {
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol),
        );
    }
    Ok((response, socket))
}

/// Subscriptions: the inbox and single conversations, each with the sequence after which
/// live events count (events up to it were replayed; `u64::MAX` while a replay runs).
#[derive(Default)]
struct Subscriptions {
    inbox: Option<u64>,
    /// Few per connection (a limit applies): a vector is smaller than a map.
    conversations: Vec<(ConversationId, u64)>,
}

impl Subscriptions {
    fn len(&self) -> usize {
        self.conversations.len() + usize::from(self.inbox.is_some())
    }

    fn conversation(&self, c: ConversationId) -> Option<u64> {
        self.conversations
            .iter()
            .find(|(id, _)| *id == c)
            .map(|(_, after)| *after)
    }

    fn set(&mut self, c: Option<ConversationId>, after: u64) {
        match c {
            None => self.inbox = Some(after),
            Some(c) => match self.conversations.iter_mut().find(|(id, _)| *id == c) {
                Some(entry) => entry.1 = after,
                None => {
                    // Most sockets (a visitor's widget) subscribe to one conversation for
                    // their whole life: room for exactly one, where a first push makes
                    // room for four (96 bytes kept by every idle socket, not 24). A
                    // second subscription grows it as usual.
                    if self.conversations.capacity() == 0 {
                        self.conversations.reserve_exact(1);
                    }
                    self.conversations.push((c, after));
                }
            },
        }
    }

    /// Removes a subscription; whether there was one.
    fn remove(&mut self, c: Option<ConversationId>) -> bool {
        match c {
            None => self.inbox.take().is_some(),
            Some(c) => {
                let before = self.conversations.len();
                self.conversations.retain(|(id, _)| *id != c);
                before != self.conversations.len()
            }
        }
    }

    fn wants(&self, conversation: Option<ConversationId>, seq: u64) -> bool {
        self.inbox.is_some_and(|after| seq > after)
            || conversation.is_some_and(|c| self.conversation(c).is_some_and(|after| seq > after))
    }

    fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.inbox.map(|_| Route::Inbox).into_iter().chain(
            self.conversations
                .iter()
                .map(|(c, _)| Route::Conversation(*c)),
        )
    }
}

/// A token bucket for the client's frames (one per connection: no map, no key).
struct FrameBudget {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl FrameBudget {
    fn new(rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes one frame's token; `false` when the client sends too fast. A zero rate turns
    /// the limit off.
    fn take(&mut self) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Connection {
    hub: Arc<Hub>,
    feed: Arc<Feed>,
    outbox: Arc<Outbox>,
    actor: Actor,
    resolved: Resolved,
    /// What is re-checked of the token the socket was opened with (`None`: an embedder
    /// upgraded it without one; the policy is still re-checked).
    credential: Option<Box<Credential>>,
    subscriptions: Subscriptions,
    budget: FrameBudget,
    strikes: u32,
}

/// Bad frames tolerated before the connection is closed with 1008.
const MAX_STRIKES: u32 = 20;

impl Drop for Connection {
    fn drop(&mut self) {
        let staff = self.staff().then_some(Route::Staff);
        self.feed
            .remove_routes(&self.outbox, self.subscriptions.routes().chain(staff));
    }
}

impl Connection {
    fn new(
        hub: Arc<Hub>,
        feed: Arc<Feed>,
        actor: Actor,
        resolved: Resolved,
        credential: Option<Box<Credential>>,
    ) -> Self {
        let budget = FrameBudget::new(hub.config.frames_per_sec, hub.config.frame_burst);
        let outbox = hub.outbox();
        if resolved.staff().is_some() {
            // Presence and changes to their own record reach staff connections whatever
            // they subscribed to.
            feed.add_route(Route::Staff, &outbox);
        }
        Self {
            hub,
            feed,
            outbox,
            actor,
            resolved,
            credential,
            subscriptions: Subscriptions::default(),
            budget,
            strikes: 0,
        }
    }

    fn engine(&self) -> &Engine {
        &self.hub.engine
    }

    fn staff(&self) -> bool {
        self.resolved.staff().is_some()
    }

    /// Serves the socket until it ends; `Some` is the close frame to say goodbye with.
    async fn run(&mut self, socket: &mut Socket) -> Option<(CloseCode, String)> {
        if Box::pin(self.hello(socket)).await.is_err() {
            return None;
        }
        let outbox = self.outbox.clone();
        let hub = self.hub.clone();
        follow::serve(socket, &outbox, self, &hub).await
    }

    /// Says who the client is, the server's time and clock, and the head of the log.
    async fn hello(&self, socket: &mut Socket) -> Result<(), ()> {
        let hello = json!({
            "type": "hello",
            "actor": &self.actor,
            "server_time": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "heartbeat_secs": self.hub.config.heartbeat.as_secs(),
            "cursor": self.feed.last_seq.load(std::sync::atomic::Ordering::SeqCst),
        });
        send(socket, &hello).await
    }

    /// Sends one item of the outbox, if this connection asked for it and may see it.
    async fn send_outbound(&mut self, socket: &mut Socket, item: Outbound) -> Flow {
        match item {
            Outbound::Event(d) => {
                if self.about_me(&d) && Box::pin(self.reload()).await.is_err() {
                    return Flow::Close(
                        CloseCode::Library(protocol::CLOSE_UNAUTHORIZED),
                        "your access was revoked".into(),
                    );
                }
                // Fed, not sent: `follow::drain` flushes once it has emptied the outbox,
                // so a burst goes out in as few writes as the write buffer allows.
                if let Some(frame) = self.frame_for(&d)
                    && socket.feed(Message::Text(frame.clone())).await.is_err()
                {
                    return Flow::Gone;
                }
                if let (Some(frame), true) = (&d.presence_frame, self.staff())
                    && socket.feed(Message::Text(frame.clone())).await.is_err()
                {
                    return Flow::Gone;
                }
                Flow::Continue
            }
            Outbound::Signal(signal) => {
                if self.may_relay(&signal) {
                    Flow::sent(socket.feed(Message::Text(signal.frame.clone())).await)
                } else {
                    Flow::Continue
                }
            }
        }
    }

    /// Whether the token still holds and the caller still has access.
    async fn recheck(&mut self) -> bool {
        if let Some(credential) = &self.credential
            && !credential.holds(&self.hub.engine).await
        {
            return false;
        }
        self.reload().await.is_ok()
    }

    /// Whether an ephemeral signal is for this connection: not its own, about a
    /// conversation it subscribed to (or its inbox) and may see.
    fn may_relay(&self, signal: &Signal) -> bool {
        signal.from != self.outbox.id
            && self
                .subscriptions
                .wants(Some(signal.conversation), u64::MAX)
            && signal
                .state
                .as_deref()
                .is_some_and(|c| self.resolved.scope().contains(c))
    }

    /// Whether the delivery changes this staff member's own record (role, departments,
    /// disabled): it must be reloaded before anything else is sent.
    fn about_me(&self, d: &Delivery) -> bool {
        matches!(
            (&d.event.payload, self.resolved.staff()),
            (EventPayload::AgentUpdated { agent }, Some(me)) if agent.id == me.id
        )
    }

    /// Reloads this staff member's record; `Err` if they lost access.
    async fn reload(&mut self) -> Result<(), ()> {
        self.resolved = self.engine().resolve(&self.actor).await.map_err(|_| ())?;
        Ok(())
    }

    /// The frame to send for a delivery, if this connection may see it and asked for it.
    fn frame_for<'d>(&self, d: &'d Delivery) -> Option<&'d Utf8Bytes> {
        let event = &d.event;
        if !self.subscriptions.wants(event.conversation_id, event.seq) {
            return None;
        }
        let visible = Engine::may_see_event(&self.resolved, event, d.conversation.as_deref())
            || (d
                .previous
                .as_deref()
                .is_some_and(|p| self.resolved.scope().contains(p))
                && !event.staff_only);
        visible.then(|| {
            if self.staff() {
                &d.staff_frame
            } else {
                &d.customer_frame
            }
        })
    }

    async fn reject(
        &mut self,
        socket: &mut Socket,
        id: Option<&str>,
        code: &str,
        message: &str,
    ) -> Flow {
        self.strikes += 1;
        if self.strikes > MAX_STRIKES {
            return Flow::Close(CloseCode::Policy, "too many bad frames".into());
        }
        if send(socket, &protocol::error(id, code, message))
            .await
            .is_err()
        {
            return Flow::Gone;
        }
        Flow::Continue
    }

    async fn on_text(&mut self, socket: &mut Socket, text: &str) -> Flow {
        if !self.budget.take() {
            return self
                .reject(socket, None, "rate_limited", "too many frames; slow down")
                .await;
        }
        let frame = match ClientFrame::decode(text) {
            Ok(frame) => frame,
            Err(e) => return self.reject(socket, None, "bad_frame", &e.to_string()).await,
        };
        let answer = match frame {
            ClientFrame::Ping { id } => Ok(json!({ "type": "pong", "id": id })),
            ClientFrame::Subscribe {
                id,
                conversation_id,
                since,
            } => {
                if self.subscriptions.len() >= self.hub.config.max_subscriptions {
                    return self
                        .reject(
                            socket,
                            id.as_deref(),
                            "too_many_subscriptions",
                            "unsubscribe from something first",
                        )
                        .await;
                }
                match self.subscribe(socket, conversation_id, since).await {
                    Ok(cursor) => Ok(
                        json!({ "type": "subscribed", "id": id, "conversation_id": conversation_id, "cursor": cursor }),
                    ),
                    Err(e) => Err((id, e)),
                }
            }
            ClientFrame::Unsubscribe {
                id,
                conversation_id,
            } => {
                if self.subscriptions.remove(conversation_id) {
                    let route = conversation_id.map_or(Route::Inbox, Route::Conversation);
                    self.feed.remove_routes(&self.outbox, [route]);
                }
                Ok(json!({ "type": "unsubscribed", "id": id, "conversation_id": conversation_id }))
            }
            ClientFrame::SendMessage {
                id,
                conversation_id,
                client_message_id,
                body,
                reply_to,
                attachments,
            } => {
                let input = PostMessage {
                    body,
                    reply_to,
                    attachments,
                    client_message_id: client_message_id.clone(),
                    ..Default::default()
                };
                match self
                    .engine()
                    .post_message(&self.actor, conversation_id, input)
                    .await
                {
                    Ok(posted) => Ok(json!({
                        "type": "ack", "id": id, "client_message_id": client_message_id,
                        "message": posted.message, "created": posted.created,
                    })),
                    Err(e) => Err((id, ApiError::from(e))),
                }
            }
            ClientFrame::Typing {
                conversation_id,
                typing,
            } => {
                let Ok(state) = self
                    .engine()
                    .conversation(&self.actor, conversation_id)
                    .await
                else {
                    return self
                        .reject(socket, None, "not_found", "conversation not found")
                        .await;
                };
                let sender = match &self.resolved {
                    Resolved::Staff(a) => json!({ "type": "agent", "id": a.id, "name": a.name }),
                    _ => json!({ "type": "customer" }),
                };
                let frame = json!({ "type": "typing", "conversation_id": conversation_id, "sender": sender, "typing": typing });
                self.feed.signal(Signal {
                    conversation: conversation_id,
                    from: self.outbox.id,
                    frame: Utf8Bytes::from(frame.to_string()),
                    state: Some(Arc::new(state)),
                    ephemeral: None,
                });
                // Sockets on other servers hear it through the bus (best effort, like
                // every signal); this server's own were given it above, without an echo
                // to the typist, and skip it when the bus brings it back.
                self.engine().bus().publish_ephemeral(Arc::new(chat_core::Ephemeral {
                    tenant_id: self.actor.tenant(),
                    conversation_id,
                    kind: "typing".into(),
                    data: json!({ "sender": sender, "typing": typing, ORIGIN: self.hub.origin }),
                }));
                return Flow::Continue;
            }
            ClientFrame::Read {
                id,
                conversation_id,
                seq,
            } => match self
                .engine()
                .mark_read(&self.actor, conversation_id, seq)
                .await
            {
                Ok(_) => Ok(json!({ "type": "ack", "id": id })),
                Err(e) => Err((id, ApiError::from(e))),
            },
        };
        match answer {
            Ok(value) => {
                if send(socket, &value).await.is_err() {
                    return Flow::Gone;
                }
                Flow::Continue
            }
            Err((id, e)) => {
                // Engine refusals are answers, not abuse: they do not count as strikes.
                if send(socket, &protocol::error(id.as_deref(), e.code, &e.message))
                    .await
                    .is_err()
                {
                    return Flow::Gone;
                }
                Flow::Continue
            }
        }
    }

    /// Adds a subscription, first replaying what the client missed after `since`.
    /// Returns the cursor after which live events continue.
    async fn subscribe(
        &mut self,
        socket: &mut Socket,
        conversation: Option<ConversationId>,
        since: Option<u64>,
    ) -> Result<u64, ApiError> {
        if let Some(c) = conversation {
            self.may_read(c).await?;
        }
        let route = conversation.map_or(Route::Inbox, Route::Conversation);
        let was = match conversation {
            Some(c) => self.subscriptions.conversation(c),
            None => self.subscriptions.inbox,
        };
        // Route first, then read the head: whatever is handed out after the head is
        // queued here while the replay runs (and is held back until it is done).
        self.subscriptions.set(conversation, u64::MAX);
        self.feed.add_route(route, &self.outbox);
        let replayed = self.replay(socket, conversation, since).await;
        match (&replayed, was) {
            (Ok(cursor), _) => self.subscriptions.set(conversation, *cursor),
            (Err(_), Some(after)) => self.subscriptions.set(conversation, after),
            (Err(_), None) => {
                self.subscriptions.remove(conversation);
                self.feed.remove_routes(&self.outbox, [route]);
            }
        }
        replayed
    }

    /// Whether this connection may read conversation `c`, by the policy's own check
    /// ([`Resolved::authorize`], as the engine's reads make it), against the conversation
    /// as the follower last handed it out: the state every live delivery to this socket
    /// is checked against too. Only a conversation the follower has not seen (since it
    /// started, or since its cache was emptied) is read, through the engine, and the read
    /// is kept for the next subscriber: a burst of visitors' sockets subscribing to their
    /// conversations reads each conversation once, not once per socket (with reads in
    /// place, each read handed its worker to another thread, and a burst of them left a
    /// hundred threads behind).
    async fn may_read(&self, c: ConversationId) -> Result<(), ApiError> {
        match self.feed.cached_or_mark(c) {
            // The feed is the tenant's own; the tenant is checked anyway, as the engine's
            // read does by its key, since the policy's tenant-wide scope does not.
            Ok(Some(state)) if state.tenant_id == self.actor.tenant() => {
                Ok(self.resolved.authorize(Action::Read, &state)?)
            }
            Ok(_) => Err(chat_core::Error::NotFound("conversation").into()),
            Err(mark) => {
                let state = self.engine().conversation(&self.actor, c).await?;
                self.feed.fill(c, mark, Arc::new(state));
                Ok(())
            }
        }
    }

    /// Replays what a new subscription missed after `since`, up to the head of live
    /// delivery, from the engine's feed. Returns the cursor after which live events
    /// continue. A cursor the log cannot serve (beyond its head: another database; or
    /// more than `max_replay` behind) is answered with `resync_required`, and the
    /// subscription continues live from the head.
    async fn replay(
        &mut self,
        socket: &mut Socket,
        conversation: Option<ConversationId>,
        since: Option<u64>,
    ) -> Result<u64, ApiError> {
        let feed_head = self.feed.last_seq.load(std::sync::atomic::Ordering::SeqCst);
        let Some(since) = since else {
            return Ok(feed_head);
        };
        let closed = |_| ApiError::bad_request("connection closed");
        let scope = conversation.map_or(FeedScope::Inbox, FeedScope::Conversation);
        let mut log = self
            .engine()
            .feed_with(&self.actor, scope, Some(since), self.hub.replay_config())
            .await?;
        // Events after the head of live delivery reach this connection through its
        // outbox (routed before the head was read): the replay stops there.
        while log.has_ready() || log.position() < feed_head {
            match log.next().await? {
                Some(FeedItem::Event(e)) if e.event.seq <= feed_head => {
                    send(socket, &replay_frame(&e.event, self.staff()))
                        .await
                        .map_err(closed)?;
                }
                Some(FeedItem::Event(_)) | None => break,
                Some(FeedItem::Resync(resync)) => {
                    let frame = json!({
                        "type": "resync_required", "conversation_id": conversation,
                        "cursor": feed_head, "reason": resync.reason.as_str(),
                    });
                    send(socket, &frame).await.map_err(closed)?;
                    return Ok(feed_head);
                }
            }
        }
        // A cursor ahead of live delivery (but within the log) has seen what lies between.
        Ok(feed_head.max(since))
    }
}

fn replay_frame(event: &chat_core::Event, staff: bool) -> Value {
    json!({
        "type": "event", "seq": event.seq, "event": event.payload.kind(),
        "conversation_id": event.conversation_id,
        "at": event.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "data": crate::views::event_view(event, staff)["payload"],
    })
}

async fn send(socket: &mut Socket, value: &Value) -> Result<(), ()> {
    socket
        .send(Message::Text(Utf8Bytes::from(value.to_string())))
        .await
        .map_err(|_| ())
}

impl Handler for Connection {
    fn outbound(
        &mut self,
        socket: &mut Socket,
        item: Outbound,
    ) -> impl Future<Output = Flow> + Send {
        self.send_outbound(socket, item)
    }

    async fn text(&mut self, socket: &mut Socket, text: Utf8Bytes) -> Flow {
        // Boxed: requests await the engine (large futures) and are rare next to the time
        // a connection spends waiting.
        Box::pin(self.on_text(socket, &text)).await
    }

    async fn binary(&mut self, socket: &mut Socket) -> Flow {
        Box::pin(self.reject(socket, None, "bad_frame", "send JSON text frames")).await
    }

    async fn still_allowed(&mut self) -> bool {
        Box::pin(self.recheck()).await
    }

    async fn expires_at(&mut self) -> Option<tokio::time::Instant> {
        match &self.credential {
            Some(credential) => Box::pin(credential.expires_at(&self.hub.engine)).await,
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_core::TenantId;
    use chat_core::memory::MemoryStore;

    /// The per-socket task is allocated whole for every open socket: a future that grows
    /// (an inlined engine call, a value kept across the loop) shows here first. It was
    /// 4,864 bytes before it was slimmed down, and 1,280 after; 1,384 with the shared
    /// loop's credential re-check (the boxed credential and the time of the last check);
    /// 1,456 with the re-check on every credential change and at the token's expiry (a
    /// `watch` future per socket instead would have made it 1,688); 1,304 with the hub's
    /// clock instead of a timer per socket and a customer's `Resolved` without room for
    /// an agent's record; 1,256 with the shutdown rung by the hub instead of a `watch`
    /// future (and its receiver) in every socket's task; 1,120 with the loop's heartbeat
    /// and drain boxed (their states were larger than the idle wait's).
    #[test]
    fn a_socket_subscribed_to_one_conversation_keeps_room_for_one() {
        let first = ConversationId(uuid::Uuid::now_v7());
        let second = ConversationId(uuid::Uuid::now_v7());
        let mut subscriptions = Subscriptions::default();
        subscriptions.set(Some(first), 0);
        // Every idle visitor socket keeps this vector: 24 bytes, not a first push's 96.
        assert_eq!(subscriptions.conversations.capacity(), 1);
        subscriptions.set(Some(first), 7);
        assert_eq!(subscriptions.conversations.capacity(), 1);
        subscriptions.set(Some(second), 0);
        subscriptions.set(None, 3);
        assert_eq!(subscriptions.len(), 3);
        assert_eq!(subscriptions.conversation(first), Some(7));
        assert!(subscriptions.wants(Some(second), 1));
        assert!(subscriptions.remove(Some(first)));
        assert_eq!(subscriptions.conversation(first), None);
    }

    #[tokio::test]
    async fn the_task_that_serves_a_socket_stays_small() {
        let engine = Engine::builder(Arc::new(MemoryStore::new())).build();
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let hub = Hub::new(
            engine,
            super::super::RealtimeConfig::default(),
            metrics.clone(),
        );
        let tenant = TenantId(uuid::Uuid::now_v7());
        let feed = hub.feed(tenant).await;
        let connection =
            Connection::new(hub, feed, Actor::System { tenant }, Resolved::System, None);
        let task = serve(connection, Box::pin(std::future::ready(None)), metrics);
        let bytes = std::mem::size_of_val(&task);
        // 1,120 bytes (1,256 before `beat` and `drain` were boxed): tokio's task cell
        // (the future, a header and a trailer, aligned to 128) is then 1,280 bytes; 1,256
        // made it 1,408, 1,304 1,536 and 1,456 1,664.
        assert!(bytes <= 1128, "the socket task's future is {bytes} bytes");
        task.await;
    }
}
