//! Realtime delivery over WebSocket.
//!
//! One follower task per tenant reads the tenant's log through the engine's event feed
//! ([`chat_core::feed`]), which hands out every committed event once and in sequence
//! order (it reorders what the bus publishes out of order and fills gaps from the store).
//! So live delivery stays ordered and gap-free without reading every event back from the
//! store, and the server holds no copy of that logic.
//!
//! Each event is serialized once per audience (staff, customers) and routed only to the
//! connections that asked for it: the subscribers of its conversation and the inbox
//! subscribers (tenant-level events such as presence go to staff connections). Every
//! connection has a bounded outbox; one that falls behind is closed with 4008 and resumes
//! from its cursor. Policy is still checked per connection against the conversation as
//! it stood right after the event (and right before it, which the feed supplies).

mod connection;
mod credential;
pub mod follow;
mod io;
pub mod protocol;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chat_core::feed::{FeedConfig, FeedEvent, FeedItem, FeedScope};
use chat_core::{
    Actor, AgentId, Conversation, ConversationId, Engine, Event, EventPayload, TenantId,
};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub(crate) use connection::upgrade_knowing;
pub use connection::{SUBPROTOCOL, Socket, accept, upgrade};
pub use credential::Credential;
pub use follow::Tap;
pub use io::{TimedWrites, WRITE_TIMEOUT};

/// Realtime settings.
#[derive(Clone, Debug)]
pub struct RealtimeConfig {
    /// How often the server pings; two missed answers close the connection.
    pub heartbeat: Duration,
    /// How often an open socket re-checks its caller's credential (a revoked or expired
    /// one closes it with code 4001).
    pub credential_recheck: Duration,
    /// Largest frame a client may send.
    pub max_frame_bytes: usize,
    /// Frames per second a client may send (token bucket refill).
    pub frames_per_sec: f64,
    /// Frames a client may send at once.
    pub frame_burst: f64,
    /// Subscriptions per connection.
    pub max_subscriptions: usize,
    /// Frames queued per connection for a slow client (and events kept per tenant for
    /// [`Hub::live`] receivers); one that falls further behind is closed with code 4008
    /// and resumes from its cursor.
    pub buffer: usize,
    /// How long an agent stays online after its last connection closes.
    pub presence_grace: Duration,
    /// How long this server's hold on a connected agent's presence lasts in the store
    /// without renewal (renewed every third of it): a server that dies takes its agents'
    /// presence with it this long after its last renewal, at the next timer pass of a
    /// server still running.
    pub presence_lease: Duration,
    /// A subscription more events behind than this gets `resync_required` instead of a
    /// replay.
    pub max_replay: u64,
    /// How long a send to a client may make no progress (its TCP window shut: it stopped
    /// reading) before the connection is dropped; it resumes from its cursor.
    pub write_timeout: Duration,
    /// Conversations each tenant's follower remembers, both in its log feed and in the
    /// cache sockets read from (about 1.3 KB each with both), and each socket's replay
    /// feed at most; past it, they forget them all and reload misses from the store. The
    /// server's memory grows with the conversations it sees until this cap.
    pub conversation_cache: usize,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            credential_recheck: Duration::from_secs(60),
            max_frame_bytes: 64 * 1024,
            frames_per_sec: 20.0,
            frame_burst: 40.0,
            max_subscriptions: 100,
            buffer: 1024,
            presence_grace: Duration::from_secs(30),
            presence_lease: Duration::from_secs(30),
            max_replay: 50_000,
            write_timeout: io::WRITE_TIMEOUT,
            conversation_cache: chat_core::feed::DEFAULT_MAX_STATES,
        }
    }
}

/// One event ready to send: the event, the conversation as it stood right after it, and
/// its frame serialized once for staff and once for customers.
#[derive(Debug)]
pub struct Delivery {
    /// The event.
    pub event: Arc<Event>,
    /// The conversation after the event (`None` if deleted or not about one).
    pub conversation: Option<Arc<Conversation>>,
    /// The conversation before a `conversation_updated` event, so whoever loses sight of
    /// it (an agent transferred away) still learns why.
    pub previous: Option<Arc<Conversation>>,
    /// A `presence` frame for `agent_updated` events.
    pub presence_frame: Option<Utf8Bytes>,
    /// Frame for staff.
    pub staff_frame: Utf8Bytes,
    /// Frame for customers (internal fields trimmed).
    pub customer_frame: Utf8Bytes,
}

/// An ephemeral signal (typing): relayed to connections that can see the conversation.
#[derive(Debug, Clone)]
pub struct Signal {
    /// Conversation.
    pub conversation: ConversationId,
    /// Who sent it (their own connections skip it).
    pub from: u64,
    /// The frame.
    pub frame: Utf8Bytes,
    /// The conversation as last seen (by the sender or the follower), to check who may see
    /// the signal without a store read per receiving connection; `None` = nobody.
    pub state: Option<Arc<Conversation>>,
    /// The bus signal it was made from, for sockets with a wire format of their own
    /// (`None` for the server's own signals: typing on `/v1/ws`, queue positions).
    pub ephemeral: Option<Arc<chat_core::Ephemeral>>,
}

/// What a connection's outbox holds.
pub(crate) enum Outbound {
    Event(Arc<Delivery>),
    Signal(Arc<Signal>),
}

/// Items an emptied outbox keeps room for (16 bytes each).
const KEPT_QUEUE: usize = 8;

/// A connection's bounded queue of frames to send, filled by the follower (events) and by
/// signal relays, drained by the connection's task.
pub(crate) struct Outbox {
    /// The connection's id (its own typing is not echoed back).
    pub(crate) id: u64,
    capacity: usize,
    queue: Mutex<VecDeque<Outbound>>,
    notify: tokio::sync::Notify,
    overflowed: AtomicBool,
    /// The last routing round that reached this outbox (one connection subscribed both to
    /// a conversation and to the inbox gets each item once).
    round: AtomicU64,
    /// What the hub's clock asks of the socket ([`BEAT`], [`EXPIRED`]), taken at its
    /// next wake-up.
    due: AtomicU8,
}

/// [`Outbox::take_due`]: the heartbeat came (ping the client, close it if it went quiet).
pub(crate) const BEAT: u8 = 1;
/// [`Outbox::take_due`]: the socket's credential has reached its expiry.
pub(crate) const EXPIRED: u8 = 2;
/// [`Outbox::take_due`]: the server is shutting down (see [`Hub::stop_with`]).
pub(crate) const STOP: u8 = 4;

impl Outbox {
    pub(crate) fn new(id: u64, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            id,
            capacity: capacity.max(1),
            queue: Mutex::new(VecDeque::new()),
            notify: tokio::sync::Notify::new(),
            overflowed: AtomicBool::new(false),
            round: AtomicU64::new(0),
            due: AtomicU8::new(0),
        })
    }

    /// Asks the socket for `what` ([`BEAT`], [`EXPIRED`], [`STOP`]) and wakes it.
    fn ring(&self, what: u8) {
        self.due.fetch_or(what, Ordering::AcqRel);
        self.notify.notify_one();
    }

    /// What the hub's clock asked since the last call.
    pub(crate) fn take_due(&self) -> u8 {
        self.due.swap(0, Ordering::AcqRel)
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Outbound>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item. An event that does not fit marks the connection as fallen behind
    /// (it must resume from its cursor: nothing after the gap is queued); a signal that
    /// does not fit is dropped (signals are best effort).
    fn push(&self, item: Outbound) {
        if self.overflowed.load(Ordering::Relaxed) {
            return;
        }
        {
            let mut queue = self.queue();
            if queue.len() >= self.capacity {
                if matches!(item, Outbound::Signal(_)) {
                    return;
                }
                self.overflowed.store(true, Ordering::Relaxed);
            } else {
                queue.push_back(item);
            }
        }
        self.notify.notify_one();
    }

    /// The next item. An emptied queue that grew past a few items gives its memory back
    /// (idle connections stay small); a small one keeps it, or every delivery to a
    /// connection that keeps up would allocate and free it once.
    pub(crate) fn pop(&self) -> Option<Outbound> {
        let mut queue = self.queue();
        let item = queue.pop_front();
        if item.is_none() && queue.capacity() > KEPT_QUEUE {
            *queue = VecDeque::new();
        }
        item
    }

    /// Whether an event did not fit: the connection must close with 4008.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Resolves when something was queued since the last call (or is queued already).
    pub(crate) async fn ready(&self) {
        self.notify.notified().await
    }
}

/// Who receives what: the connections subscribed to each conversation, to the inbox, and
/// the staff connections (tenant-level events: presence, their own record).
#[derive(Default)]
struct Routes {
    conversations: HashMap<ConversationId, Vec<Arc<Outbox>>>,
    inbox: Vec<Arc<Outbox>>,
    staff: Vec<Arc<Outbox>>,
    round: u64,
}

fn add_route(list: &mut Vec<Arc<Outbox>>, outbox: &Arc<Outbox>) {
    if !list.iter().any(|o| Arc::ptr_eq(o, outbox)) {
        list.push(outbox.clone());
    }
}

fn remove_route(list: &mut Vec<Arc<Outbox>>, outbox: &Arc<Outbox>) {
    list.retain(|o| !Arc::ptr_eq(o, outbox));
    if list.capacity() > 2 * list.len() + 8 {
        list.shrink_to_fit();
    }
}

/// Where a route leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// One conversation.
    Conversation(ConversationId),
    /// Everything the connection may see.
    Inbox,
    /// Tenant-level events (staff connections).
    Staff,
}

pub(crate) struct Feed {
    tenant: TenantId,
    /// For [`Hub::live`] receivers (extensions).
    events: broadcast::Sender<Arc<Delivery>>,
    /// The last sequence handed out live.
    pub(crate) last_seq: AtomicU64,
    routes: Mutex<Routes>,
    /// Conversations as of the last event the follower handed out (`None`: deleted). The
    /// follower writes it, in log order; a subscription that found no entry adds what it
    /// read (see [`fill`](Self::fill)); others read it.
    conversations: Mutex<HashMap<ConversationId, Option<Arc<Conversation>>>>,
    /// Moves each time `conversations` is emptied at its cap, so a fill read before that
    /// does not bring back a state older than one the follower had handed out.
    cleared: AtomicU64,
    /// Most entries of `conversations` ([`RealtimeConfig::conversation_cache`]).
    max_conversations: usize,
}

impl Feed {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, id: ConversationId) -> Option<Option<Arc<Conversation>>> {
        self.conversations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    fn remember(&self, id: ConversationId, state: Option<Arc<Conversation>>) {
        let mut conversations = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        if conversations.len() >= self.max_conversations && !conversations.contains_key(&id) {
            // Bounded memory: forget everything; misses reload from the store.
            conversations.clear();
            self.cleared.fetch_add(1, Ordering::Relaxed);
        }
        conversations.insert(id, state);
    }

    /// The conversation as the follower last handed it out, with [`Feed::cleared`] as it
    /// stood at the look-up (for [`fill`](Self::fill)).
    fn cached_or_mark(&self, id: ConversationId) -> Result<Option<Arc<Conversation>>, u64> {
        let conversations = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        match conversations.get(&id) {
            Some(state) => Ok(state.clone()),
            None => Err(self.cleared.load(Ordering::Relaxed)),
        }
    }

    /// Adds `state`, read from the engine after [`cached_or_mark`](Self::cached_or_mark)
    /// found no entry and returned `mark`, unless the follower has handed out an event of
    /// the conversation since (its entry is newer, or as new) or emptied the cache (the
    /// read may be older than a state it forgot). A state read may be ahead of the
    /// follower: the follower's next event of the conversation replaces it, as it would
    /// its own. Not at the cap: filling is no reason to forget what the follower keeps.
    fn fill(&self, id: ConversationId, mark: u64, state: Arc<Conversation>) {
        let mut conversations = self.conversations.lock().unwrap_or_else(|e| e.into_inner());
        if self.cleared.load(Ordering::Relaxed) == mark
            && conversations.len() < self.max_conversations
        {
            conversations.entry(id).or_insert(Some(state));
        }
    }

    /// Starts routing `route`'s items to `outbox`. Routes are added before the head of the
    /// log is read, so nothing handed out after that read can miss the outbox.
    pub(crate) fn add_route(&self, route: Route, outbox: &Arc<Outbox>) {
        let mut routes = self.routes();
        match route {
            Route::Conversation(c) => add_route(routes.conversations.entry(c).or_default(), outbox),
            Route::Inbox => add_route(&mut routes.inbox, outbox),
            Route::Staff => add_route(&mut routes.staff, outbox),
        }
    }

    /// Stops routing `routes` to `outbox`.
    pub(crate) fn remove_routes(
        &self,
        outbox: &Arc<Outbox>,
        routes: impl IntoIterator<Item = Route>,
    ) {
        let mut all = self.routes();
        for route in routes {
            match route {
                Route::Conversation(c) => {
                    if let Some(list) = all.conversations.get_mut(&c) {
                        remove_route(list, outbox);
                        if list.is_empty() {
                            all.conversations.remove(&c);
                        }
                    }
                }
                Route::Inbox => remove_route(&mut all.inbox, outbox),
                Route::Staff => remove_route(&mut all.staff, outbox),
            }
        }
    }

    /// Queues `item` for every connection subscribed to `conversation` or to the inbox
    /// (tenant-level items, `conversation == None`, go to staff connections), once each.
    fn route(&self, conversation: Option<ConversationId>, item: impl Fn() -> Outbound) {
        let mut routes = self.routes();
        routes.round += 1;
        let round = routes.round;
        let once = |outbox: &Arc<Outbox>| {
            if outbox.round.swap(round, Ordering::Relaxed) != round {
                outbox.push(item());
            }
        };
        match conversation {
            Some(c) => {
                if let Some(list) = routes.conversations.get(&c) {
                    list.iter().for_each(once);
                }
                routes.inbox.iter().for_each(once);
            }
            None => routes.staff.iter().for_each(once),
        }
    }

    /// Queues an ephemeral signal for the connections that asked for its conversation.
    pub(crate) fn signal(&self, signal: Signal) {
        let conversation = signal.conversation;
        let signal = Arc::new(signal);
        self.route(Some(conversation), || Outbound::Signal(signal.clone()));
    }
}

/// Realtime state shared by all connections.
pub struct Hub {
    engine: Engine,
    metrics: Arc<crate::metrics::Metrics>,
    config: RealtimeConfig,
    /// Async: creating a feed awaits the store for the head of the log.
    feeds: tokio::sync::Mutex<HashMap<TenantId, Arc<Feed>>>,
    /// Staff connected to this server: tenant, open connections, and a generation that a
    /// new connection moves (a release waiting out the grace sees it was reconnected).
    /// Every agent here has this server's presence lease, renewed until it is released.
    presence: Mutex<HashMap<AgentId, Presence>>,
    /// This server's id on its presence leases.
    node: uuid::Uuid,
    next_connection: AtomicU64,
    /// Every open socket's outbox, to wake them all when a credential changes (a socket
    /// without subscriptions is on no route). Dead entries are swept as it grows.
    outboxes: Mutex<Vec<std::sync::Weak<Outbox>>>,
    /// This hub's random id, on the signals it publishes for other servers (typing), so
    /// it does not deliver them twice when its own bus hands them back.
    pub(crate) origin: u64,
    /// The sockets' credential expiries, earliest first, for the hub's clock.
    expiries: Mutex<Expiries>,
    /// Wakes the hub's clock when an expiry earlier than all others is added.
    clock: Arc<tokio::sync::Notify>,
    /// The shutdown signals this hub's sockets were served under, each watched by one
    /// relay that rings [`STOP`] on every socket: a socket does not wait on the signal
    /// itself (a `watch` future in every idle socket's task was 128 bytes of its cell).
    stops: Mutex<Vec<tokio::sync::watch::Receiver<bool>>>,
    /// Set, before the sockets are rung, once a shutdown signal came: a socket opened
    /// after that is rung as its outbox is made.
    stopped: AtomicBool,
}

/// One clock for every socket: the heartbeat and the credential expiries. A timer per
/// socket (tokio's `Sleep`, 100 bytes on the heap and 32 in the socket's task) was most
/// of what an idle socket kept beyond its buffers.
#[derive(Default)]
struct Expiries {
    due: BinaryHeap<Reverse<Expiry>>,
    /// Entries after the last sweep of closed sockets' expiries.
    swept: usize,
}

struct Expiry {
    at: tokio::time::Instant,
    outbox: std::sync::Weak<Outbox>,
}

impl PartialEq for Expiry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Expiry {}

impl PartialOrd for Expiry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Expiry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// The key of [`Hub::origin`] in a signal's data; never shown to clients.
pub(crate) const ORIGIN: &str = "origin";

impl Hub {
    /// A hub for `engine`.
    pub fn new(
        engine: Engine,
        config: RealtimeConfig,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<Self> {
        let hub = Arc::new(Self {
            engine,
            config,
            metrics,
            feeds: tokio::sync::Mutex::new(HashMap::new()),
            presence: Mutex::new(HashMap::new()),
            node: uuid::Uuid::new_v4(),
            next_connection: AtomicU64::new(1),
            outboxes: Mutex::new(Vec::new()),
            origin: u64::from_le_bytes(crate::auth::random_bytes::<8>()),
            expiries: Mutex::new(Expiries::default()),
            clock: Arc::new(tokio::sync::Notify::new()),
            stops: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        });
        tokio::spawn(keep_time(Arc::downgrade(&hub), hub.clock.clone()));
        tokio::spawn(relay_ephemeral(Arc::downgrade(&hub)));
        tokio::spawn(relay_credential_changes(Arc::downgrade(&hub)));
        tokio::spawn(renew_presence(Arc::downgrade(&hub)));
        hub
    }

    /// A new socket's outbox, known to the hub so a credential change wakes it.
    pub(crate) fn outbox(&self) -> Arc<Outbox> {
        let outbox = Outbox::new(self.next_connection_id(), self.config.buffer);
        let mut all = self.outboxes.lock().unwrap_or_else(|e| e.into_inner());
        // Sweep when the list doubled since the last sweep: amortized O(1) per socket,
        // and never more than twice the open sockets' worth of entries.
        if all.len() == all.capacity() {
            all.retain(|o| o.strong_count() > 0);
        }
        all.push(Arc::downgrade(&outbox));
        drop(all);
        // After the push: a relay that rings the sockets after this sets `stopped` before
        // it takes the list, so a socket is either in its round or sees the flag here.
        if self.stopped.load(Ordering::SeqCst) {
            outbox.ring(STOP);
        }
        outbox
    }

    /// Closes this hub's sockets (each with "server shutting down") once `shutdown`
    /// changes or its sender is dropped. Sockets served under it are closed in any case:
    /// they take it only to hand it here. A hub serves one server, so whichever signal
    /// comes first stops every socket of the hub. Returns at once; a signal given before
    /// (the same channel) is watched once.
    pub fn stop_with(self: &Arc<Self>, shutdown: &tokio::sync::watch::Receiver<bool>) {
        let mut stops = self.stops.lock().unwrap_or_else(|e| e.into_inner());
        if stops.iter().any(|s| s.same_channel(shutdown)) {
            return;
        }
        // Signals whose sender is gone have been relayed: only live ones are kept.
        stops.retain(|s| s.has_changed().is_ok());
        stops.push(shutdown.clone());
        drop(stops);
        let mut shutdown = shutdown.clone();
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            // As the socket's own `changed()` did: any change, or the sender gone.
            let _ = shutdown.changed().await;
            let Some(hub) = hub.upgrade() else { return };
            hub.stopped.store(true, Ordering::SeqCst);
            let all = hub.outboxes.lock().unwrap_or_else(|e| e.into_inner());
            for outbox in all.iter().filter_map(std::sync::Weak::upgrade) {
                outbox.ring(STOP);
            }
        });
    }

    /// Wakes every open socket, which re-checks its credential before sending more.
    fn wake_all(&self) {
        let all = self.outboxes.lock().unwrap_or_else(|e| e.into_inner());
        for outbox in all.iter().filter_map(std::sync::Weak::upgrade) {
            outbox.notify.notify_one();
        }
    }

    /// Rings every open socket's heartbeat.
    fn beat(&self) {
        let all = self.outboxes.lock().unwrap_or_else(|e| e.into_inner());
        for outbox in all.iter().filter_map(std::sync::Weak::upgrade) {
            outbox.ring(BEAT);
        }
    }

    /// Rings [`EXPIRED`] on `outbox` at `at` (the socket's credential expiry).
    pub(crate) fn expire_at(&self, outbox: &Arc<Outbox>, at: tokio::time::Instant) {
        let mut expiries = self.expiries.lock().unwrap_or_else(|e| e.into_inner());
        // Closed sockets' entries wait for their time (tokens may live for days): swept
        // when the heap doubled since the last sweep, so it never holds much more than
        // twice the open sockets' expiries.
        if expiries.due.len() >= 2 * expiries.swept.max(64) {
            expiries
                .due
                .retain(|Reverse(e)| e.outbox.strong_count() > 0);
            expiries.swept = expiries.due.len();
        }
        let earliest = expiries.due.peek().is_none_or(|Reverse(e)| at < e.at);
        expiries.due.push(Reverse(Expiry {
            at,
            outbox: Arc::downgrade(outbox),
        }));
        drop(expiries);
        if earliest {
            self.clock.notify_one();
        }
    }

    /// Rings the expiries that are due; the next one's time.
    fn expire_due(&self, now: tokio::time::Instant) -> Option<tokio::time::Instant> {
        let mut expiries = self.expiries.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(Reverse(next)) = expiries.due.peek() {
            if next.at > now {
                return Some(next.at);
            }
            if let Some(Reverse(due)) = expiries.due.pop()
                && let Some(outbox) = due.outbox.upgrade()
            {
                outbox.ring(EXPIRED);
            }
            expiries.swept = expiries.swept.min(expiries.due.len());
        }
        None
    }

    /// The tenant's feed, starting its follower on first use.
    ///
    /// The follower's log feed subscribes to the bus before it reads the head of the log,
    /// and starts exactly at that head: every event committed after it reaches the
    /// follower (from the bus, or from the log if the bus lost it), and a subscriber's
    /// cursor is never ahead of live delivery, so an event committed right after a
    /// subscription cannot be mistaken for history.
    pub(crate) async fn feed(self: &Arc<Self>, tenant: TenantId) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().await;
        if let Some(feed) = feeds.get(&tenant) {
            return feed.clone();
        }
        let log = open_log(&self.engine, tenant, &self.config).await;
        let feed = Arc::new(Feed {
            tenant,
            events: broadcast::channel(self.config.buffer.max(16)).0,
            last_seq: AtomicU64::new(log.opened_at()),
            routes: Mutex::new(Routes::default()),
            conversations: Mutex::new(HashMap::new()),
            cleared: AtomicU64::new(0),
            max_conversations: self.config.conversation_cache.max(1),
        });
        feeds.insert(tenant, feed.clone());
        tokio::spawn(follow(
            self.engine.clone(),
            feed.clone(),
            log,
            self.config.clone(),
            self.metrics.clone(),
        ));
        feed
    }

    /// How a socket's replay reads the log: as far back as [`RealtimeConfig::max_replay`].
    pub(crate) fn replay_config(&self) -> FeedConfig {
        FeedConfig {
            max_replay: self.config.max_replay,
            max_states: self.config.conversation_cache.max(1),
            ..FeedConfig::default()
        }
    }

    /// A tenant's live events in log order, for extensions with a WebSocket protocol of
    /// their own. Returns the sequence live delivery starts after and the receiver:
    /// replay history up to that sequence with [`Engine::events_since`], then take
    /// deliveries with a greater sequence, filtered with [`Engine::may_see_event`]
    /// against `Delivery::conversation`. A receiver that lags (`RecvError::Lagged`) has
    /// missed events and must resume from its cursor through `events_since`.
    pub async fn live(
        self: &Arc<Self>,
        tenant: TenantId,
    ) -> (u64, broadcast::Receiver<Arc<Delivery>>) {
        let feed = self.feed(tenant).await;
        let events = feed.events.subscribe();
        (feed.last_seq.load(Ordering::SeqCst), events)
    }

    /// A new connection id.
    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a staff connection. The first one on this server takes a presence lease
    /// in the store, which puts an offline agent online unless another server already
    /// holds one.
    async fn agent_connected(&self, tenant: TenantId, agent: AgentId) {
        let first = {
            let mut presence = self.presence.lock().unwrap_or_else(|e| e.into_inner());
            let entry = presence.entry(agent).or_insert(Presence {
                tenant,
                open: 0,
                generation: 0,
            });
            entry.open += 1;
            entry.generation += 1;
            entry.open == 1
        };
        if first {
            self.hold(tenant, &[agent]).await;
        }
    }

    /// Takes or renews this server's presence lease on `agents`.
    async fn hold(&self, tenant: TenantId, agents: &[AgentId]) {
        let lease = self.config.presence_lease;
        if let Err(e) = self
            .engine
            .hold_presence(tenant, self.node, agents, lease)
            .await
        {
            // The next renewal tries again, well within the lease.
            tracing::warn!(error = %e, "presence lease not renewed");
        }
    }

    /// Uncounts a staff connection; after the grace period without a new one, this
    /// server lets go of the agent's presence, and the agent goes offline unless another
    /// server still holds it (a reconnect within the grace keeps it online).
    fn agent_disconnected(self: &Arc<Self>, tenant: TenantId, agent: AgentId) {
        let generation = {
            let mut presence = self.presence.lock().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = presence.get_mut(&agent) else {
                return;
            };
            entry.open = entry.open.saturating_sub(1);
            if entry.open > 0 {
                return;
            }
            entry.generation
        };
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.config.presence_grace).await;
            let still_gone = {
                let mut presence = hub.presence.lock().unwrap_or_else(|e| e.into_inner());
                let gone = presence
                    .get(&agent)
                    .is_some_and(|p| p.open == 0 && p.generation == generation);
                if gone {
                    presence.remove(&agent);
                }
                gone
            };
            if !still_gone {
                return;
            }
            if let Err(e) = hub.engine.release_presence(tenant, hub.node, agent).await {
                // The lease lapses on its own at its expiry.
                tracing::warn!(error = %e, "presence lease not released");
            }
            // A connection that came while the lease was being released holds it again.
            let back = {
                let presence = hub.presence.lock().unwrap_or_else(|e| e.into_inner());
                presence.get(&agent).is_some_and(|p| p.open > 0)
            };
            if back {
                hub.hold(tenant, &[agent]).await;
            }
        });
    }
}

/// A staff member's connections to this server.
struct Presence {
    tenant: TenantId,
    open: usize,
    generation: u64,
}

/// Renews this server's presence leases every third of their length until the hub is
/// dropped: one store write per tenant with agents here.
async fn renew_presence(hub: std::sync::Weak<Hub>) {
    let every = match hub.upgrade() {
        Some(hub) => (hub.config.presence_lease / 3).max(Duration::from_millis(10)),
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let mut by_tenant: HashMap<TenantId, Vec<AgentId>> = HashMap::new();
        {
            let presence = hub.presence.lock().unwrap_or_else(|e| e.into_inner());
            for (agent, p) in presence.iter() {
                by_tenant.entry(p.tenant).or_default().push(*agent);
            }
        }
        for (tenant, agents) in by_tenant {
            hub.hold(tenant, &agents).await;
        }
    }
}

/// How long the follower waits on a quiet bus before checking the log anyway (catches
/// commits whose publisher was cancelled before publishing).
const POLL: Duration = Duration::from_millis(500);

/// How long an event published ahead of an earlier one waits for it before the follower
/// reads the missing ones from the log.
const GAP: Duration = Duration::from_millis(20);

/// Events handed out between yields, so connections drain their outboxes during a burst.
const YIELD_EVERY: usize = 64;

/// The tenant's whole log from its head (`None`) or after `cursor`, as the system sees it.
/// The follower never gives up on an event (`max_replay` is unbounded: whatever the bus
/// drops is read from the store), and a store that does not answer is asked again: every
/// socket of the tenant depends on this one follower.
async fn open_log(
    engine: &Engine,
    tenant: TenantId,
    config: &RealtimeConfig,
) -> chat_core::feed::Feed {
    let system = Actor::System { tenant };
    let config = FeedConfig {
        buffer: config.buffer.max(16),
        max_replay: u64::MAX,
        page: (config.buffer / 2).clamp(1, 512),
        gap_wait: GAP,
        poll: POLL,
        max_states: config.conversation_cache.max(1),
    };
    loop {
        match engine
            .feed_with(&system, FeedScope::Tenant, None, config.clone())
            .await
        {
            Ok(log) => return log,
            Err(e) => {
                tracing::warn!(error = %e, "realtime follower cannot open the log; retrying");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Takes the tenant's events from its log feed, in order, and hands them out.
async fn follow(
    engine: Engine,
    feed: Arc<Feed>,
    mut log: chat_core::feed::Feed,
    config: RealtimeConfig,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut handed_out = 0usize;
    loop {
        match log.next().await {
            Ok(Some(FeedItem::Event(event))) => {
                hand_out(&engine, &feed, &metrics, event).await;
                handed_out += 1;
                if handed_out >= YIELD_EVERY {
                    handed_out = 0;
                    tokio::task::yield_now().await;
                }
            }
            // With an unbounded replay only a log that lost its history (wiped or
            // restored under a running server) ends the feed: go on from its new head.
            Ok(Some(FeedItem::Resync(resync))) => {
                tracing::warn!(
                    reason = resync.reason.as_str(),
                    cursor = resync.cursor,
                    head = resync.head,
                    "realtime follower lost its place in the log; continuing from its head"
                );
                log = open_log(&engine, feed.tenant, &config).await;
            }
            Ok(None) => log = open_log(&engine, feed.tenant, &config).await,
            Err(e) => {
                // The feed stays where it was: the same event is read again.
                tracing::warn!(error = %e, "realtime follower could not read the log");
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Hands one event out: the next the follower's feed delivers, in log order.
async fn hand_out(
    engine: &Engine,
    feed: &Arc<Feed>,
    metrics: &crate::metrics::Metrics,
    item: FeedEvent,
) {
    let FeedEvent {
        event,
        conversation,
        previous,
    } = item;
    if let EventPayload::CredentialsChanged = &event.payload {
        // Made here or on another server: either way every socket re-checks its
        // credential before it is sent anything logged after this (see `follow::drain`),
        // and the change is no frame for anyone.
        engine.note_credential_change_elsewhere();
        feed.last_seq.store(event.seq, Ordering::SeqCst);
        metrics.realtime_seq.fetch_max(event.seq, Ordering::Relaxed);
        return;
    }
    // Changes whose own event is their credential notice, committed with them: a staff
    // member disabled, contacts merged (whole-history tokens revoked), a contact erased.
    // Their servers log a `credentials_changed` too, but in a transaction of its own,
    // which a server stopping in between never commits; this event cannot be missed that
    // way. Not every `agent_updated`: presence changes are frequent, and each notice
    // makes every socket re-read its credential.
    let disabled = matches!(&event.payload, EventPayload::AgentUpdated { agent } if !agent.active);
    if disabled
        || matches!(
            &event.payload,
            EventPayload::ContactMerged { .. } | EventPayload::ContactErased { .. }
        )
    {
        engine.note_credential_change_elsewhere();
    }
    match (&event.payload, event.conversation_id) {
        (EventPayload::ConversationDeleted { conversation_id }, _) => {
            feed.remember(*conversation_id, None)
        }
        (_, Some(id)) => feed.remember(id, conversation.clone()),
        (_, None) => {}
    }
    let staff = serde_json::json!({
        "type": "event", "seq": event.seq, "event": event.payload.kind(),
        "conversation_id": event.conversation_id, "at": time_text(&event), "data": &event.payload,
    });
    let customer_view = crate::views::event_view(&event, false);
    let customer = serde_json::json!({
        "type": "event", "seq": event.seq, "event": event.payload.kind(),
        "conversation_id": event.conversation_id, "at": time_text(&event), "data": customer_view["payload"],
    });
    let presence_frame = match &event.payload {
        EventPayload::AgentUpdated { agent } => Some(Utf8Bytes::from(
            serde_json::json!({ "type": "presence", "agent_id": agent.id, "availability": agent.availability }).to_string(),
        )),
        _ => None,
    };
    let seq = event.seq;
    let delivery = Arc::new(Delivery {
        event,
        conversation,
        previous,
        presence_frame,
        staff_frame: Utf8Bytes::from(staff.to_string()),
        customer_frame: Utf8Bytes::from(customer.to_string()),
    });
    let queue_moved = moves_queue(&delivery);
    feed.last_seq.store(seq, Ordering::SeqCst);
    feed.route(delivery.event.conversation_id, || {
        Outbound::Event(delivery.clone())
    });
    metrics.realtime_seq.fetch_max(seq, Ordering::Relaxed);
    // No receivers is fine: no extension is listening right now.
    let _ = feed.events.send(delivery);
    if queue_moved {
        announce_queue(engine, feed).await;
    }
}

/// Forwards the bus's ephemeral signals (streamed bot replies) to the connections of
/// their tenant, as frames of their `kind`; connections deliver them like typing, to
/// subscribers who may see the conversation.
/// Wakes every socket when a credential changes in the engine: each checks its own (see
/// `follow::drain`), so a revoked one is closed even when nothing else happens.
/// The hub's clock: rings every socket's heartbeat every [`RealtimeConfig::heartbeat`]
/// and each credential expiry at its time. Ends (at its next tick) once the hub is gone.
async fn keep_time(hub: std::sync::Weak<Hub>, changed: Arc<tokio::sync::Notify>) {
    let Some(every) = hub.upgrade().map(|h| h.config.heartbeat) else {
        return;
    };
    let mut next_beat = tokio::time::Instant::now() + every;
    loop {
        let next_expiry = {
            let Some(hub) = hub.upgrade() else { return };
            let now = tokio::time::Instant::now();
            if now >= next_beat {
                hub.beat();
                next_beat = now + every;
            }
            hub.expire_due(now)
        };
        let wake = next_expiry.map_or(next_beat, |at| at.min(next_beat));
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            // An earlier expiry was added (a permit is kept if it came before this wait).
            () = changed.notified() => {}
        }
    }
}

async fn relay_credential_changes(hub: std::sync::Weak<Hub>) {
    let Some(mut changes) = hub.upgrade().map(|h| h.engine.credential_changes()) else {
        return;
    };
    while changes.changed().await.is_ok() {
        let Some(hub) = hub.upgrade() else { return };
        hub.wake_all();
    }
}

async fn relay_ephemeral(hub: std::sync::Weak<Hub>) {
    let Some(mut signals) = hub.upgrade().map(|h| h.engine.bus().subscribe_ephemeral()) else {
        return;
    };
    loop {
        let signal = match signals.recv().await {
            Ok(signal) => signal,
            // Deltas are best effort: the stored message follows anyway.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(hub) = hub.upgrade() else { return };
        if signal.data.get(ORIGIN).and_then(serde_json::Value::as_u64) == Some(hub.origin) {
            // Published by this server, whose own sockets already have it.
            continue;
        }
        let feed = hub.feed(signal.tenant_id).await;
        let state = match feed.cached(signal.conversation_id) {
            Some(state) => state,
            // Not seen in the log since the feed started: one read here, not one per
            // receiving connection. (Only the follower fills its cache, in log order.)
            None => hub
                .engine
                .conversation(
                    &Actor::System {
                        tenant: signal.tenant_id,
                    },
                    signal.conversation_id,
                )
                .await
                .ok()
                .map(Arc::new),
        };
        let mut frame =
            serde_json::json!({ "type": signal.kind, "conversation_id": signal.conversation_id });
        if let (Some(frame), serde_json::Value::Object(data)) =
            (frame.as_object_mut(), &signal.data)
        {
            for (k, v) in data.iter().filter(|(k, _)| *k != ORIGIN) {
                frame.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        feed.signal(Signal {
            conversation: signal.conversation_id,
            from: 0,
            frame: Utf8Bytes::from(frame.to_string()),
            state,
            ephemeral: Some(signal),
        });
    }
}

/// Whether an event can change queue positions or wait estimates: a conversation entering,
/// leaving or moving in the queue, or an agent's availability or capacity. Messages and
/// read cursors do not move the queue.
fn moves_queue(d: &Delivery) -> bool {
    let queued = |c: &Option<Arc<Conversation>>| {
        c.as_ref()
            .is_some_and(|c| c.mode == chat_core::Mode::Queued)
    };
    match d.event.payload {
        EventPayload::ConversationCreated { .. } | EventPayload::ConversationUpdated { .. } => {
            queued(&d.conversation) || queued(&d.previous)
        }
        EventPayload::ConversationDeleted { .. } | EventPayload::AgentUpdated { .. } => true,
        _ => false,
    }
}

/// Tells every waiting visitor its new place in the queue (ephemeral, not logged).
async fn announce_queue(engine: &Engine, feed: &Feed) {
    let nobody = {
        let routes = feed.routes();
        routes.conversations.is_empty() && routes.inbox.is_empty()
    };
    if nobody {
        return;
    }
    let Ok(positions) = engine.queue_positions(feed.tenant).await else {
        return;
    };
    for (conversation, p) in positions {
        let listening = {
            let routes = feed.routes();
            !routes.inbox.is_empty() || routes.conversations.contains_key(&conversation)
        };
        if !listening {
            continue;
        }
        let state = match feed.cached(conversation) {
            Some(state) => state,
            None => {
                let state = engine
                    .conversation(
                        &Actor::System {
                            tenant: feed.tenant,
                        },
                        conversation,
                    )
                    .await
                    .ok()
                    .map(Arc::new);
                feed.remember(conversation, state.clone());
                state
            }
        };
        let frame = serde_json::json!({
            "type": "queue_position", "conversation_id": conversation,
            "position": p.position, "estimated_wait_secs": p.estimated_wait_secs,
        });
        feed.signal(Signal {
            conversation,
            from: 0,
            frame: Utf8Bytes::from(frame.to_string()),
            state,
            ephemeral: None,
        });
    }
}

fn time_text(event: &Event) -> String {
    event
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Sends a streaming [`chat_bots::LlmBot`]'s pieces to live clients as `bot_delta`
/// frames: `{type, conversation_id, reply_to_seq, index, text, end}`. Clients append
/// pieces by `(conversation_id, reply_to_seq)` and replace them with the stored bot
/// message when it arrives (`end: "reply"`), or drop them (`"handoff"`, `"failed"`).
///
/// ```ignore
/// let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::default());
/// let bot = LlmBot::new(config)?.on_delta(chat_server::realtime::relay_bot_deltas(bus.clone()));
/// let engine = Engine::builder_with_backend(store).bus(bus).bot(Arc::new(bot)).build();
/// ```
#[cfg(feature = "bots")]
pub fn relay_bot_deltas(
    bus: Arc<dyn chat_core::EventBus>,
) -> impl Fn(chat_bots::Delta) + Send + Sync + 'static {
    move |delta| {
        let data = serde_json::json!({
            "reply_to_seq": delta.reply_to_seq, "index": delta.index, "text": delta.text, "end": delta.end,
        });
        bus.publish_ephemeral(Arc::new(chat_core::Ephemeral {
            tenant_id: delta.tenant_id,
            conversation_id: delta.conversation_id,
            kind: "bot_delta".into(),
            data,
        }));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use chat_core::Engine;
    use chat_core::memory::MemoryStore;

    use super::{BEAT, EXPIRED, Hub, RealtimeConfig, STOP};

    fn beating_every(heartbeat: Duration) -> Arc<Hub> {
        let engine = Engine::builder(Arc::new(MemoryStore::new())).build();
        let config = RealtimeConfig {
            heartbeat,
            ..RealtimeConfig::default()
        };
        Hub::new(engine, config, Arc::new(crate::metrics::Metrics::default()))
    }

    /// Sockets that close before their credential's expiry leave entries behind; a
    /// reconnecting client must not grow the hub's clock without bound.
    #[tokio::test]
    async fn closed_sockets_expiries_do_not_pile_up() {
        let hub = beating_every(Duration::from_secs(3600));
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        for _ in 0..10_000 {
            let outbox = hub.outbox();
            hub.expire_at(&outbox, far);
        }
        let kept = hub.expiries.lock().unwrap().due.len();
        assert!(kept <= 128, "{kept} expiries kept for 0 open sockets");
    }

    /// The clock rings an expiry at its time (not at the next heartbeat, an hour away) and
    /// the heartbeat at its own.
    #[tokio::test]
    async fn the_clock_rings_expiries_and_heartbeats() {
        let hub = beating_every(Duration::from_millis(50));
        let outbox = hub.outbox();
        let slow = beating_every(Duration::from_secs(3600));
        let expiring = slow.outbox();
        slow.expire_at(
            &expiring,
            tokio::time::Instant::now() + Duration::from_millis(20),
        );
        tokio::time::timeout(Duration::from_secs(30), expiring.ready())
            .await
            .expect("the expiry rang");
        assert_eq!(expiring.take_due(), EXPIRED);
        tokio::time::timeout(Duration::from_secs(30), outbox.ready())
            .await
            .expect("the heartbeat rang");
        assert_eq!(outbox.take_due() & BEAT, BEAT);
    }

    /// The hub closes its sockets when the server stops: the ones open then, and any
    /// opened after (a socket waits on no signal of its own). One signal given by every
    /// socket is watched once.
    #[tokio::test]
    async fn a_shutdown_rings_every_socket_open_then_or_after() {
        let hub = beating_every(Duration::from_secs(3600));
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let open = hub.outbox();
        for _ in 0..100 {
            hub.stop_with(&shutdown);
        }
        assert_eq!(hub.stops.lock().unwrap().len(), 1, "one relay per signal");
        assert_eq!(open.take_due() & STOP, 0, "nothing rings before the signal");
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(30), open.ready())
            .await
            .expect("the open socket was rung");
        assert_eq!(open.take_due() & STOP, STOP);
        let late = hub.outbox();
        assert_eq!(
            late.take_due() & STOP,
            STOP,
            "a socket opened after the stop"
        );

        // The sender dropped counts as a stop, as a socket's own `changed()` did.
        let hub = beating_every(Duration::from_secs(3600));
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let open = hub.outbox();
        hub.stop_with(&shutdown);
        drop(stop);
        tokio::time::timeout(Duration::from_secs(30), open.ready())
            .await
            .expect("the open socket was rung");
        assert_eq!(open.take_due() & STOP, STOP);
    }
}
