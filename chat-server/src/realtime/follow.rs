//! The one loop every realtime socket runs: `/v1/ws` and the templates' sockets.
//!
//! Whatever a socket says on the wire, following a tenant's log over a WebSocket needs
//! the same things, and each copy of them used to lack one: events routed to a bounded
//! outbox (one that overflows closes the socket with [`CLOSE_TOO_SLOW`]; the client
//! resumes from its cursor, nothing is queued without limit), a heartbeat (the server
//! pings every [`RealtimeConfig::heartbeat`] and closes a socket it has not heard from in
//! two), a re-check of the caller's credential whenever a credential changes in the
//! engine (before anything more is sent), at the token's expiry and periodically (at the
//! first ping after each [`RealtimeConfig::credential_recheck`], for changes made by
//! another process); a revoked or expired one closes with [`CLOSE_UNAUTHORIZED`]; and
//! server shutdown. One loop does all that; what a socket
//! says on the wire is its own business.
//!
//! Templates use it through a [`Tap`] and a [`Follower`]: the tap routes every event and
//! signal of the tenant to the socket's outbox from the moment it is made (make it before
//! answering the upgrade, and nothing committed after the client sees its socket open is
//! missed), [`Tap::follow`] replays the log from the client's cursor through the engine's
//! feed ([`chat_core::feed`]), then hands the follower each event the caller may see, once
//! and in log order. A cursor the log cannot serve goes to [`Follower::resync`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::feed::{FeedItem, FeedScope, Resync};
use chat_core::policy::Resolved;
use chat_core::{Actor, Engine, Ephemeral, Event, EventPayload, TenantId};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::protocol::{CLOSE_RESYNC, CLOSE_TOO_SLOW, CLOSE_UNAUTHORIZED};
use super::{BEAT, EXPIRED, Feed, Hub, Outbound, Outbox, RealtimeConfig, Route, STOP, Socket};

/// What a socket does next, after a frame it sent or received.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Goes on.
    Continue,
    /// Says goodbye with this close code and reason.
    Close(CloseCode, String),
    /// The socket failed (a send did not go through): nothing more can be said on it.
    Gone,
}

impl Flow {
    /// [`Flow::Gone`] for a failed send, else [`Flow::Continue`]: what a send's result
    /// means for the socket.
    pub fn sent<E>(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Self::Continue,
            Err(_) => Self::Gone,
        }
    }
}

/// What a socket does with the items of its outbox and with what its client sends.
pub(crate) trait Handler: Send {
    /// Sends one item of the outbox, if the socket wants it.
    fn outbound(
        &mut self,
        socket: &mut Socket,
        item: Outbound,
    ) -> impl Future<Output = Flow> + Send;

    /// A text frame from the client.
    fn text(&mut self, socket: &mut Socket, text: Utf8Bytes) -> impl Future<Output = Flow> + Send;

    /// A binary frame from the client.
    fn binary(&mut self, socket: &mut Socket) -> impl Future<Output = Flow> + Send;

    /// Whether the caller may still hold the socket open.
    fn still_allowed(&mut self) -> impl Future<Output = bool> + Send;

    /// When the caller's credential runs out, if it does: the socket is re-checked then
    /// (and closed, unless the credential was renewed). Asked once, as the loop starts.
    fn expires_at(&mut self) -> impl Future<Output = Option<tokio::time::Instant>> + Send {
        std::future::ready(None)
    }

    /// Frames from a source of the socket's own; never resolves by default.
    fn aside(&mut self) -> impl Future<Output = Option<Utf8Bytes>> + Send {
        std::future::pending()
    }
}

/// Serves `socket` until it ends: the outbox's items, the client's frames, pings, the
/// credential re-check (at the first ping after [`RealtimeConfig::credential_recheck`]
/// has passed since the last one, and at the credential's expiry) and shutdown. The hub's
/// clock rings the heartbeat and the expiry through the outbox, and the hub rings the
/// shutdown ([`Hub::stop_with`]): a socket keeps no timer and waits on no signal of its
/// own.
/// `Some` is the close frame to say goodbye with (see [`close`]); `None` means the socket
/// is gone.
pub(crate) async fn serve<H: Handler>(
    socket: &mut Socket,
    outbox: &Arc<Outbox>,
    handler: &mut H,
    hub: &Hub,
) -> Option<(CloseCode, String)> {
    // Credential changes up to here were checked by the upgrade itself. A later one wakes
    // the outbox (the hub relays them), and `drain` checks again before sending anything.
    let mut seen = hub.engine.credential_epoch();
    if let Some(at) = handler.expires_at().await {
        hub.expire_at(outbox, at);
    }
    let mut last_heard = Instant::now();
    let mut checked = last_heard;
    loop {
        let flow = tokio::select! {
            // Events and signals routed here, in the order they were queued, and what the
            // hub's clock asks.
            () = outbox.ready() => {
                let due = outbox.take_due();
                if due & STOP != 0 {
                    return Some((CloseCode::Away, "server shutting down".into()));
                }
                let flow = if due & EXPIRED != 0 {
                    // Renewed (or judged by another clock) if it holds: the periodic
                    // re-check goes on.
                    checked = Instant::now();
                    revalidate(handler).await
                } else {
                    Flow::Continue
                };
                // `beat` and `drain` are boxed: this task is kept whole by every idle
                // socket, and its size is that of its largest await; inline, their states
                // (144 and 240 bytes) made it 136 bytes larger than the wait for the next
                // wake-up. A wake-up that has frames to send pays one small allocation.
                let flow = match flow {
                    Flow::Continue if due & BEAT != 0 => {
                        Box::pin(beat(socket, handler, &hub.config, last_heard, &mut checked))
                            .await
                    }
                    other => other,
                };
                match flow {
                    Flow::Continue => {
                        Box::pin(drain(socket, outbox, handler, &hub.engine, &mut seen)).await
                    }
                    other => other,
                }
            }
            frame = socket.next() => {
                last_heard = Instant::now();
                match frame {
                    None | Some(Err(_) | Ok(Message::Close(_))) => Flow::Gone,
                    Some(Ok(Message::Text(text))) => handler.text(socket, text).await,
                    Some(Ok(Message::Binary(_))) => handler.binary(socket).await,
                    // Pongs only prove the client is there; tungstenite answers pings.
                    Some(Ok(_)) => Flow::Continue,
                }
            }
            frame = handler.aside() => match frame {
                Some(frame) => Flow::sent(socket.send(Message::Text(frame)).await),
                None => Flow::Continue,
            },
        };
        match flow {
            Flow::Continue => {}
            Flow::Close(code, reason) => return Some((code, reason)),
            Flow::Gone => return None,
        }
    }
}

/// A heartbeat: closes a client not heard from in two, re-checks the credential when
/// [`RealtimeConfig::credential_recheck`] has passed since the last check, pings.
async fn beat<H: Handler>(
    socket: &mut Socket,
    handler: &mut H,
    config: &RealtimeConfig,
    last_heard: Instant,
    checked: &mut Instant,
) -> Flow {
    if last_heard.elapsed() > config.heartbeat * 2 {
        return Flow::Close(CloseCode::Away, "no answer to pings".into());
    }
    if checked.elapsed() >= config.credential_recheck {
        *checked = Instant::now();
        if let other @ (Flow::Close(..) | Flow::Gone) = revalidate(handler).await {
            return other;
        }
    }
    Flow::sent(socket.send(Message::Ping(Default::default())).await)
}

/// Re-checks the caller's credential: a socket whose credential no longer holds is
/// closed with [`CLOSE_UNAUTHORIZED`].
async fn revalidate<H: Handler>(handler: &mut H) -> Flow {
    if handler.still_allowed().await {
        Flow::Continue
    } else {
        Flow::Close(
            CloseCode::Library(CLOSE_UNAUTHORIZED),
            "your access was revoked or has expired".into(),
        )
    }
}

/// Sends what the outbox holds; a queue that overflowed closes the socket instead. Items
/// may be fed without a flush: it flushes once the outbox is empty, so the frames of one
/// wake-up go out together.
///
/// A credential change is counted before the change's call returns, so whatever was
/// queued after it is sent only once the credential has been checked again: nothing
/// reaches a socket after its credential was revoked. `seen` is the count last checked.
async fn drain<H: Handler>(
    socket: &mut Socket,
    outbox: &Outbox,
    handler: &mut H,
    engine: &Engine,
    seen: &mut u64,
) -> Flow {
    loop {
        let epoch = engine.credential_epoch();
        if epoch != *seen {
            *seen = epoch;
            match revalidate(handler).await {
                Flow::Continue => {}
                other => return other,
            }
        }
        if outbox.overflowed() {
            return Flow::Close(
                CloseCode::Library(CLOSE_TOO_SLOW),
                "too slow: reconnect and resume from your cursor".into(),
            );
        }
        let Some(item) = outbox.pop() else {
            return Flow::sent(socket.flush().await);
        };
        match handler.outbound(socket, item).await {
            Flow::Continue => {}
            other => return other,
        }
    }
}

/// Says goodbye with `code` and waits (briefly) for the client's close.
pub(crate) async fn close(socket: &mut Socket, code: CloseCode, reason: String) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        })))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while socket.next().await.is_some() {}
    })
    .await;
}

/// What a template's socket says: the frames for the events and signals its caller may
/// see, and the answers to its client's frames. [`Tap::follow`] does the rest.
pub trait Follower: Send {
    /// Sends the frames (if any) for one event of the log that the caller may see; each
    /// event comes once, in log order, replayed ones first.
    fn event(&mut self, socket: &mut Socket, event: &Event) -> impl Future<Output = Flow> + Send;

    /// Sends the frames (if any) for an ephemeral signal of the tenant (typing, streamed
    /// bot replies), published on the engine's bus; the follower decides whether its
    /// caller may see it. Ignored by default.
    fn signal(
        &mut self,
        socket: &mut Socket,
        signal: &Ephemeral,
    ) -> impl Future<Output = Flow> + Send {
        let _ = (socket, signal);
        std::future::ready(Flow::Continue)
    }

    /// The client's cursor cannot be served (it is beyond the head of the log: it came
    /// from another database; or further behind than [`RealtimeConfig::max_replay`]):
    /// what the client shows must be reloaded. By default the socket is closed with
    /// [`CLOSE_RESYNC`]: the client reloads and reconnects without a cursor. A protocol
    /// with a frame of its own for it sends that and returns [`Flow::Continue`]: the socket
    /// then goes on live from the head.
    fn resync(
        &mut self,
        socket: &mut Socket,
        resync: &Resync,
    ) -> impl Future<Output = Flow> + Send {
        let _ = socket;
        std::future::ready(Flow::Close(
            CloseCode::Library(CLOSE_RESYNC),
            format!(
                "cursor {} cannot be served ({}): reload, then reconnect without since",
                resync.cursor,
                resync.reason.as_str()
            ),
        ))
    }

    /// Answers a text frame from the client.
    fn text(&mut self, socket: &mut Socket, text: &str) -> impl Future<Output = Flow> + Send;

    /// Whether the caller's credential still holds (called every
    /// [`RealtimeConfig::credential_recheck`]; `false` closes the socket with
    /// [`CLOSE_UNAUTHORIZED`]).
    fn still_allowed(&mut self) -> impl Future<Output = bool> + Send;

    /// Frames from a source of the template's own, sent as they come (never resolves by
    /// default).
    fn aside(&mut self) -> impl Future<Output = Option<Utf8Bytes>> + Send {
        std::future::pending()
    }
}

/// A socket's place in a tenant's feed: every event and bus signal of the tenant is
/// queued in its bounded outbox from the moment it is made until it is dropped.
pub struct Tap {
    feed: Arc<Feed>,
    outbox: Arc<Outbox>,
    /// The last sequence handed out live when the tap was made: history ends here.
    head: u64,
    hub: Arc<Hub>,
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.feed.remove_routes(&self.outbox, [Route::Inbox]);
    }
}

impl Hub {
    /// Taps `tenant`'s feed for one socket. Make it before answering the upgrade: what is
    /// committed after the client sees its socket open is then queued for it.
    pub async fn tap(self: &Arc<Self>, tenant: TenantId) -> Tap {
        let feed = self.feed(tenant).await;
        let outbox = self.outbox();
        // Route first, then read the head: whatever is handed out after the head is
        // queued, so history and live delivery meet without a gap.
        feed.add_route(Route::Inbox, &outbox);
        let head = feed.last_seq.load(std::sync::atomic::Ordering::SeqCst);
        Tap {
            feed,
            outbox,
            head,
            hub: self.clone(),
        }
    }
}

impl Tap {
    /// The sequence of the newest event handed out live when the tap was made.
    pub fn head(&self) -> u64 {
        self.head
    }

    /// Serves `socket` for `actor` until it ends, then closes it (with a close frame
    /// saying why, when there is one to say): replays what `actor` may see of the log
    /// after `since` (nothing without it: the client starts live, having read history
    /// over HTTP; a cursor the log cannot serve goes to [`Follower::resync`]), then
    /// hands `follower` each live event the caller may see and the tenant's bus signals,
    /// in order, each event once. A staff member whose own record changes is looked up again first, and one
    /// who lost access is closed out. Returns when the socket has ended.
    pub async fn follow<F: Follower>(
        self,
        engine: &Engine,
        socket: &mut Socket,
        actor: &Actor,
        since: Option<u64>,
        follower: &mut F,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        self.hub.stop_with(&shutdown);
        drop(shutdown);
        let Ok(resolved) = engine.resolve(actor).await else {
            close(
                socket,
                CloseCode::Library(CLOSE_UNAUTHORIZED),
                "your access was revoked".into(),
            )
            .await;
            return;
        };
        let mut following = Following {
            engine,
            actor,
            resolved,
            cursor: self.head,
            follower,
        };
        let replay = self.hub.replay_config();
        let ended = match following.replay(socket, since, self.head, replay).await {
            Flow::Continue => serve(socket, &self.outbox, &mut following, &self.hub).await,
            Flow::Close(code, reason) => Some((code, reason)),
            Flow::Gone => None,
        };
        if let Some((code, reason)) = ended {
            close(socket, code, reason).await;
        }
    }
}

/// A [`Follower`] with its cursor: the [`Handler`] a tapped socket runs.
struct Following<'a, F> {
    engine: &'a Engine,
    actor: &'a Actor,
    resolved: Resolved,
    /// The last sequence handled (sent, or not for this caller).
    cursor: u64,
    follower: &'a mut F,
}

impl<F: Follower> Following<'_, F> {
    /// Sends what the caller may see of the log after `since`, up to `head` (later
    /// events come through the outbox), from the engine's feed.
    async fn replay(
        &mut self,
        socket: &mut Socket,
        since: Option<u64>,
        head: u64,
        config: chat_core::feed::FeedConfig,
    ) -> Flow {
        let Some(since) = since else {
            return Flow::Continue;
        };
        let cannot_read = |e: chat_core::Error| {
            tracing::warn!(error = %e, "socket replay failed; the client resumes from its cursor");
            Flow::Close(CloseCode::Error, "cannot read the log now".into())
        };
        let mut log = match self
            .engine
            .feed_with(self.actor, FeedScope::Inbox, Some(since), config)
            .await
        {
            Ok(log) => log,
            Err(e) => return cannot_read(e),
        };
        while log.has_ready() || log.position() < head {
            match log.next().await {
                Ok(Some(FeedItem::Event(e))) if e.event.seq <= head => {
                    match self.follower.event(socket, &e.event).await {
                        Flow::Continue => {}
                        other => return other,
                    }
                }
                Ok(Some(FeedItem::Event(_)) | None) => break,
                Ok(Some(FeedItem::Resync(resync))) => {
                    return self.follower.resync(socket, &resync).await;
                }
                Err(e) => return cannot_read(e),
            }
        }
        // A cursor ahead of live delivery (but within the log) has seen what lies between.
        self.cursor = head.max(since);
        Flow::Continue
    }
}

impl<F: Follower> Handler for Following<'_, F> {
    async fn outbound(&mut self, socket: &mut Socket, item: Outbound) -> Flow {
        match item {
            Outbound::Event(d) => {
                if d.event.seq <= self.cursor {
                    return Flow::Continue;
                }
                self.cursor = d.event.seq;
                let about_me = matches!(
                    (&d.event.payload, self.resolved.staff()),
                    (EventPayload::AgentUpdated { agent }, Some(me)) if agent.id == me.id
                );
                if about_me {
                    match self.engine.resolve(self.actor).await {
                        Ok(resolved) => self.resolved = resolved,
                        Err(_) => {
                            return Flow::Close(
                                CloseCode::Library(CLOSE_UNAUTHORIZED),
                                "your access was revoked".into(),
                            );
                        }
                    }
                }
                if Engine::may_see_event(&self.resolved, &d.event, d.conversation.as_deref()) {
                    self.follower.event(socket, &d.event).await
                } else {
                    Flow::Continue
                }
            }
            Outbound::Signal(signal) => match &signal.ephemeral {
                Some(ephemeral) => self.follower.signal(socket, ephemeral).await,
                None => Flow::Continue,
            },
        }
    }

    async fn text(&mut self, socket: &mut Socket, text: Utf8Bytes) -> Flow {
        self.follower.text(socket, &text).await
    }

    async fn binary(&mut self, _socket: &mut Socket) -> Flow {
        Flow::Continue
    }

    async fn still_allowed(&mut self) -> bool {
        self.follower.still_allowed().await && self.engine.resolve(self.actor).await.is_ok()
    }

    fn aside(&mut self) -> impl Future<Output = Option<Utf8Bytes>> + Send {
        self.follower.aside()
    }
}
