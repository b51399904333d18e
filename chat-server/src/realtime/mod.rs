//! Realtime delivery over WebSocket.
//!
//! The engine's bus only says "something was committed". One follower task per tenant
//! then reads the event log from the store in sequence order and rebroadcasts each event,
//! serialized once per audience, to every connection of the tenant. Reading the log
//! (rather than forwarding bus messages) is what makes live delivery ordered and
//! gap-free even when commits publish out of order or a publisher is cancelled.

mod connection;
pub mod protocol;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_core::{
    AgentId, Availability, Conversation, ConversationChange, ConversationId, Engine, Event,
    EventPayload, TenantId,
};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Utf8Bytes;

pub use connection::{SUBPROTOCOL, Socket, accept, upgrade};

/// Realtime settings.
#[derive(Clone, Debug)]
pub struct RealtimeConfig {
    /// How often the server pings; two missed answers close the connection.
    pub heartbeat: Duration,
    /// Largest frame a client may send.
    pub max_frame_bytes: usize,
    /// Frames per second a client may send (token bucket refill).
    pub frames_per_sec: f64,
    /// Frames a client may send at once.
    pub frame_burst: f64,
    /// Subscriptions per connection.
    pub max_subscriptions: usize,
    /// Events buffered per tenant for slow connections; one that falls further behind is
    /// closed with code 4008 and resumes from its cursor.
    pub buffer: usize,
    /// How long an agent stays online after its last connection closes.
    pub presence_grace: Duration,
    /// A subscription more events behind than this gets `resync_required` instead of a
    /// replay.
    pub max_replay: u64,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(30),
            max_frame_bytes: 64 * 1024,
            frames_per_sec: 20.0,
            frame_burst: 40.0,
            max_subscriptions: 100,
            buffer: 1024,
            presence_grace: Duration::from_secs(30),
            max_replay: 50_000,
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
}

struct Feed {
    events: broadcast::Sender<Arc<Delivery>>,
    signals: broadcast::Sender<Signal>,
    last_seq: Arc<AtomicU64>,
}

/// Realtime state shared by all connections.
pub struct Hub {
    engine: Engine,
    metrics: Arc<crate::metrics::Metrics>,
    config: RealtimeConfig,
    /// Async: creating a feed awaits the store for the head of the log.
    feeds: tokio::sync::Mutex<HashMap<TenantId, Arc<Feed>>>,
    presence: Mutex<HashMap<AgentId, (usize, u64)>>,
    next_connection: AtomicU64,
}

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
            next_connection: AtomicU64::new(1),
        });
        tokio::spawn(relay_ephemeral(Arc::downgrade(&hub)));
        hub
    }

    /// The tenant's feed, starting its follower on first use.
    ///
    /// The head of the log is found before the feed is handed out, and the follower starts
    /// exactly there: a subscriber's cursor is then never ahead of live delivery, so an
    /// event committed right after a subscription cannot be mistaken for history.
    async fn feed(self: &Arc<Self>, tenant: TenantId) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().await;
        if let Some(feed) = feeds.get(&tenant) {
            return feed.clone();
        }
        let head = latest_seq(&self.engine, tenant).await;
        let feed = Arc::new(Feed {
            events: broadcast::channel(self.config.buffer.max(16)).0,
            signals: broadcast::channel(256).0,
            last_seq: Arc::new(AtomicU64::new(head)),
        });
        feeds.insert(tenant, feed.clone());
        let page = (self.config.buffer / 2).clamp(1, 512);
        tokio::spawn(follow(
            self.engine.clone(),
            tenant,
            feed.events.clone(),
            feed.last_seq.clone(),
            page,
            self.metrics.clone(),
            feed.signals.clone(),
        ));
        feed
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
        (
            feed.last_seq.load(std::sync::atomic::Ordering::SeqCst),
            events,
        )
    }

    /// Counts a staff connection; the first one puts an offline agent online.
    async fn agent_connected(&self, tenant: TenantId, agent: AgentId) {
        let first = {
            let mut presence = self.presence.lock().unwrap_or_else(|e| e.into_inner());
            let entry = presence.entry(agent).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += 1;
            entry.0 == 1
        };
        if first {
            let system = chat_core::Actor::System { tenant };
            if let Ok(a) = self.engine.agent(&system, agent).await
                && a.availability == Availability::Offline
            {
                let _ = self
                    .engine
                    .set_availability(&system, agent, Availability::Online)
                    .await;
            }
        }
    }

    /// Uncounts a staff connection; after the grace period without a new one the agent
    /// goes offline (a reconnect within the grace keeps it online).
    fn agent_disconnected(self: &Arc<Self>, tenant: TenantId, agent: AgentId) {
        let generation = {
            let mut presence = self.presence.lock().unwrap_or_else(|e| e.into_inner());
            let entry = presence.entry(agent).or_insert((1, 0));
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 > 0 {
                return;
            }
            entry.1
        };
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.config.presence_grace).await;
            let still_gone = {
                let presence = hub.presence.lock().unwrap_or_else(|e| e.into_inner());
                presence
                    .get(&agent)
                    .is_some_and(|(open, seen)| *open == 0 && *seen == generation)
            };
            if still_gone {
                let system = chat_core::Actor::System { tenant };
                if let Ok(a) = hub.engine.agent(&system, agent).await
                    && a.availability == Availability::Online
                {
                    let _ = hub
                        .engine
                        .set_availability(&system, agent, Availability::Offline)
                        .await;
                }
            }
        });
    }
}

/// How long the follower waits for a wake-up before checking the log anyway (catches
/// commits whose publisher was cancelled).
const POLL: Duration = Duration::from_millis(500);

/// Reads the tenant's log in order and rebroadcasts it.
/// Pages are at most half the buffer, with a yield between them, so a burst of commits
/// never pushes a connection that keeps up past the end of the buffer.
async fn follow(
    engine: Engine,
    tenant: TenantId,
    out: broadcast::Sender<Arc<Delivery>>,
    last_seq: Arc<AtomicU64>,
    page: usize,
    metrics: Arc<crate::metrics::Metrics>,
    signals: broadcast::Sender<Signal>,
) {
    let mut wake = engine.bus().subscribe();
    // Live delivery starts where the feed was created: older events are for replays.
    let mut after = last_seq.load(Ordering::SeqCst);
    let mut conversations: HashMap<ConversationId, Option<Arc<Conversation>>> = HashMap::new();
    loop {
        loop {
            let events = match engine.store().events_since(tenant, after, page).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "realtime follower could not read the log");
                    tokio::time::sleep(POLL).await;
                    break;
                }
            };
            let full = events.len() == page;
            let mut queue_moved = false;
            for event in events {
                after = event.seq;
                let previous = match &event.payload {
                    EventPayload::ConversationUpdated {
                        conversation,
                        change,
                    } => conversations
                        .get(&conversation.id)
                        .cloned()
                        .flatten()
                        .or_else(|| Some(Arc::new(before(conversation, change)))),
                    _ => None,
                };
                let conversation = match (&event.payload, event.conversation_id) {
                    (
                        EventPayload::ConversationCreated { conversation }
                        | EventPayload::ConversationUpdated { conversation, .. },
                        _,
                    ) => {
                        let c = Arc::new((**conversation).clone());
                        conversations.insert(c.id, Some(c.clone()));
                        Some(c)
                    }
                    (EventPayload::ConversationDeleted { conversation_id }, _) => {
                        conversations.insert(*conversation_id, None);
                        None
                    }
                    (_, Some(id)) => match conversations.get(&id) {
                        Some(c) => c.clone(),
                        None => {
                            let c = engine
                                .store()
                                .conversation(tenant, id)
                                .await
                                .ok()
                                .flatten()
                                .map(Arc::new);
                            conversations.insert(id, c.clone());
                            c
                        }
                    },
                    (_, None) => None,
                };
                if conversations.len() > 50_000 {
                    // Bounded memory: forget everything; misses reload from the store.
                    conversations.clear();
                }
                let staff = serde_json::json!({
                    "type": "event", "seq": event.seq, "event": event.payload.kind(),
                    "conversation_id": event.conversation_id, "at": time_text(&event), "data": &event.payload,
                });
                let customer_view = crate::api::event_view(&event, false);
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
                let delivery = Delivery {
                    event: Arc::new(event),
                    conversation,
                    previous,
                    presence_frame,
                    staff_frame: Utf8Bytes::from(staff.to_string()),
                    customer_frame: Utf8Bytes::from(customer.to_string()),
                };
                queue_moved |= moves_queue(&delivery);
                last_seq.store(after, Ordering::SeqCst);
                metrics.realtime_seq.fetch_max(after, Ordering::Relaxed);
                // No receivers is fine: nobody is connected right now.
                let _ = out.send(Arc::new(delivery));
            }
            if queue_moved {
                announce_queue(&engine, tenant, &signals).await;
            }
            if !full {
                break;
            }
            tokio::task::yield_now().await;
        }
        // A wake-up, a lag (many commits: the log has them all anyway) or the poll.
        if let Ok(Err(broadcast::error::RecvError::Closed)) =
            tokio::time::timeout(POLL, wake.recv()).await
        {
            return;
        }
    }
}

/// Forwards the bus's ephemeral signals (streamed bot replies) to the connections of
/// their tenant, as frames of their `kind`; connections deliver them like typing, to
/// subscribers who may see the conversation.
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
        let feed = hub.feed(signal.tenant_id).await;
        let mut frame =
            serde_json::json!({ "type": signal.kind, "conversation_id": signal.conversation_id });
        if let (Some(frame), serde_json::Value::Object(data)) =
            (frame.as_object_mut(), &signal.data)
        {
            for (k, v) in data {
                frame.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let _ = feed.signals.send(Signal {
            conversation: signal.conversation_id,
            from: 0,
            frame: Utf8Bytes::from(frame.to_string()),
        });
    }
}

/// Whether an event can change queue positions or wait estimates.
fn moves_queue(d: &Delivery) -> bool {
    let queued = |c: &Option<Arc<Conversation>>| {
        c.as_ref()
            .is_some_and(|c| c.mode == chat_core::Mode::Queued)
    };
    queued(&d.conversation)
        || queued(&d.previous)
        || matches!(d.event.payload, EventPayload::AgentUpdated { .. })
}

/// Tells every waiting visitor its new place in the queue (ephemeral, not logged).
async fn announce_queue(engine: &Engine, tenant: TenantId, signals: &broadcast::Sender<Signal>) {
    if signals.receiver_count() == 0 {
        return;
    }
    let Ok(positions) = engine.queue_positions(tenant).await else {
        return;
    };
    for (conversation, p) in positions {
        let frame = serde_json::json!({
            "type": "queue_position", "conversation_id": conversation,
            "position": p.position, "estimated_wait_secs": p.estimated_wait_secs,
        });
        let _ = signals.send(Signal {
            conversation,
            from: 0,
            frame: Utf8Bytes::from(frame.to_string()),
        });
    }
}

/// The conversation as it stood before `change`, rebuilt from the change when the
/// follower has not seen it yet (it starts at the head of the log): enough to tell who
/// could see it before (previous owner, previous mode).
fn before(after: &Conversation, change: &ConversationChange) -> Conversation {
    let mut c = after.clone();
    match change {
        ConversationChange::Mode { from, .. } => c.mode = *from,
        ConversationChange::Assigned { from, .. }
        | ConversationChange::Transferred { from, .. } => {
            c.assigned_agent_id = *from;
            c.mode = if from.is_some() {
                chat_core::Mode::Agent
            } else {
                chat_core::Mode::Queued
            };
        }
        _ => {}
    }
    c
}

fn time_text(event: &Event) -> String {
    event
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The newest sequence of the tenant's log, in O(log n) reads: `events_since(x, 1)` is
/// non-empty exactly when the log goes past `x`.
async fn latest_seq(engine: &Engine, tenant: TenantId) -> u64 {
    let past = |x: u64| {
        let engine = engine.clone();
        async move {
            engine
                .store()
                .events_since(tenant, x, 1)
                .await
                .map(|e| !e.is_empty())
                .unwrap_or(false)
        }
    };
    let mut high = 1u64;
    while past(high).await {
        high = high.saturating_mul(2);
    }
    let mut low = high / 2; // past(low) holds (or low == 0)
    while low + 1 < high {
        let mid = low + (high - low) / 2;
        if past(mid).await {
            low = mid
        } else {
            high = mid
        }
    }
    if past(low).await { low + 1 } else { low }
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
