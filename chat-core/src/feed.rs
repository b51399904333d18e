//! A feed: one actor's ordered, gap-free view of a tenant's event log, from a cursor.
//!
//! Every realtime consumer needs the same thing: what it missed since its cursor (replayed
//! from the store), then what happens next (live from the [`EventBus`](crate::EventBus)),
//! each event once and in log order, only what its actor may see. The bus alone cannot
//! give that: two writers may publish out of commit order, a publisher cancelled between
//! commit and publish never publishes, and a subscriber that falls behind loses events.
//! The log in the store has them all, so the feed uses the bus only to learn that
//! something happened and the store to fill whatever the bus did not deliver:
//!
//! - an event published ahead of an earlier one waits in memory for it; if the earlier
//!   one does not arrive within [`FeedConfig::gap_wait`] it is read from the store;
//! - a quiet bus is checked against the store's head every [`FeedConfig::poll`];
//! - an event seen twice (bus and store, or published twice) is handed out once.
//!
//! So a broker-backed bus only has to wake the feed: delivery order and completeness come
//! from the log.
//!
//! # When the feed cannot serve a cursor
//!
//! Then [`Feed::next`] answers [`FeedItem::Resync`] once, and the feed ends (`Ok(None)`
//! after it). The consumer reloads what it shows (over HTTP, say) and opens a new feed
//! from [`Resync::head`]. [`ResyncReason`] says why:
//!
//! - [`BeyondHead`](ResyncReason::BeyondHead): the cursor is larger than the tenant's
//!   newest event. It came from another database (a restore, a wiped server): what the
//!   client holds does not match this log.
//! - [`TooOld`](ResyncReason::TooOld): the cursor is more than [`FeedConfig::max_replay`]
//!   events behind the head, or older than the log keeps.
//! - [`Lagged`](ResyncReason::Lagged): the consumer took events so slowly that it fell
//!   more than [`FeedConfig::max_replay`] events behind live delivery.
//!
//! # Memory
//!
//! A feed holds at most [`FeedConfig::buffer`] events that arrived ahead of the consumer
//! and one page ([`FeedConfig::page`]) read from the store; whatever else the consumer
//! has not taken yet stays in the store. The bus's own channel is bounded by the bus.
//!
//! The feed uses tokio's timer: run it on a runtime with time enabled.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ids::ConversationId;
use crate::mode::Mode;
use crate::model::{Conversation, ConversationChange, Event, EventPayload};
use crate::policy::{Actor, Resolved};
use crate::store::Scope;

/// Which part of the log a feed follows; within it, only what the actor may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedScope {
    /// One conversation's events (the actor must be able to see it when the feed opens).
    Conversation(ConversationId),
    /// Everything the actor may see: a staff member's inbox as the policy draws it, a
    /// customer's own conversations, tenant-level events for staff.
    Inbox,
    /// The whole tenant; only for actors who see the whole tenant (admins, supervisors,
    /// bots, the system).
    Tenant,
}

/// How a feed replays, waits and bounds its memory.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedConfig {
    /// Most events held in memory ahead of the consumer (published before the ones it
    /// waits for). Past it, later events are left in the store and read when their turn
    /// comes.
    pub buffer: usize,
    /// A cursor (or a consumer) more events behind the head than this gets
    /// [`ResyncReason::TooOld`] (or [`ResyncReason::Lagged`]) instead of a replay.
    pub max_replay: u64,
    /// Events read from the store at once.
    pub page: usize,
    /// How long an event published ahead of an earlier one waits for it before the
    /// missing ones are read from the store.
    pub gap_wait: Duration,
    /// How long a quiet bus is trusted before the store's head is checked anyway (catches
    /// commits whose publisher was cancelled before publishing).
    pub poll: Duration,
    /// Most conversation states the feed remembers (for visibility and `previous`); past
    /// it, it forgets them all and reads misses from the store again. Its memory grows
    /// with the conversations it sees until this cap, a few hundred bytes each.
    pub max_states: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            buffer: 1024,
            max_replay: 50_000,
            page: 500,
            gap_wait: Duration::from_millis(20),
            poll: Duration::from_millis(500),
            max_states: DEFAULT_MAX_STATES,
        }
    }
}

/// One event of the log, with the conversation around it.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedEvent {
    /// The event.
    pub event: Arc<Event>,
    /// The conversation right after the event (`None` when it has none or was deleted).
    pub conversation: Option<Arc<Conversation>>,
    /// For `conversation_updated`: the conversation right before it, so whoever loses
    /// sight of it (an agent transferred away) still learns why. As the feed last saw it,
    /// or, for the first change the feed sees, rebuilt from what the change records.
    pub previous: Option<Arc<Conversation>>,
}

/// Why a feed cannot go on from its cursor. See the [module](self) documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResyncReason {
    /// The cursor is larger than the newest event: it belongs to another log.
    BeyondHead,
    /// The cursor is further behind than the feed replays, or older than the log keeps.
    TooOld,
    /// The consumer fell too far behind live delivery.
    Lagged,
}

impl ResyncReason {
    /// The snake_case name, for wire protocols.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeyondHead => "beyond_head",
            Self::TooOld => "too_old",
            Self::Lagged => "lagged",
        }
    }
}

/// The answer to a cursor the feed cannot serve: reload, then follow from `head`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resync {
    /// Why.
    pub reason: ResyncReason,
    /// The cursor that could not be served.
    pub cursor: u64,
    /// The head of the log when that was found: open the next feed from here.
    pub head: u64,
}

/// What [`Feed::next`] hands out.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedItem {
    /// The next event the actor may see.
    Event(FeedEvent),
    /// The cursor cannot be served; the feed ends.
    Resync(Resync),
}

impl FeedItem {
    fn seq(&self) -> Option<u64> {
        match self {
            FeedItem::Event(e) => Some(e.event.seq),
            FeedItem::Resync(_) => None,
        }
    }
}

/// [`FeedConfig::max_states`] unless set.
pub const DEFAULT_MAX_STATES: usize = 50_000;

/// An ordered, gap-free subscription to a tenant's event log; see the [module](self)
/// documentation. Opened with [`Engine::feed`] or [`Engine::feed_with`].
pub struct Feed {
    engine: Engine,
    actor: Actor,
    resolved: Resolved,
    scope: FeedScope,
    config: FeedConfig,
    bus: broadcast::Receiver<Arc<Event>>,
    /// The bus is gone: the store's head is polled instead.
    bus_closed: bool,
    /// The bus dropped events for this feed since it was last looked at.
    lagged: bool,
    /// The head of the log when the feed opened.
    opened_at: u64,
    /// The newest sequence known to be committed (the store's head, or a published event).
    head: u64,
    /// The sequence up to which missing events are read from the store now rather than
    /// waited for on the bus: history to replay, what a lagging bus dropped, a gap that
    /// did not close within the gap wait, what the buffer had no room for.
    fill_to: u64,
    /// The last sequence taken into the feed (handed out, queued, or not for this actor).
    cursor: u64,
    /// Events published ahead of `cursor + 1`, by sequence.
    ahead: BTreeMap<u64, Arc<Event>>,
    /// Since when the feed has waited for `cursor + 1` while later events wait in memory
    /// (the cursor it waited at, and when it began): later arrivals do not restart it.
    gap: Option<(u64, tokio::time::Instant)>,
    /// Items ready for the consumer, in log order.
    pending: VecDeque<FeedItem>,
    /// Conversations as of `cursor` (`None`: deleted), for visibility and `previous`.
    states: HashMap<ConversationId, Option<Arc<Conversation>>>,
    ended: bool,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("tenant", &self.actor.tenant())
            .field("scope", &self.scope)
            .field("cursor", &self.cursor)
            .field("head", &self.head)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// Opens a feed. The bus is subscribed before the head is read, so every event
    /// committed after that read reaches the feed (from the bus, or from the store if the
    /// bus loses it) and nothing falls between replay and live delivery.
    pub(crate) async fn open(
        engine: &Engine,
        actor: &Actor,
        scope: FeedScope,
        cursor: Option<u64>,
        config: FeedConfig,
    ) -> Result<Self> {
        let resolved = engine.resolve(actor).await?;
        match scope {
            FeedScope::Tenant if resolved.scope() != Scope::Tenant => {
                return Err(Error::Forbidden("follow the whole tenant"));
            }
            // Not found when the actor cannot see it, as every other read answers.
            FeedScope::Conversation(id) => {
                engine.conversation(actor, id).await?;
            }
            _ => {}
        }
        let bus = engine.bus().subscribe();
        let head = engine.log_head(actor.tenant()).await?;
        let config = FeedConfig {
            buffer: config.buffer.max(1),
            page: config.page.clamp(1, 1000),
            max_states: config.max_states.max(1),
            ..config
        };
        let mut feed = Self {
            engine: engine.clone(),
            actor: actor.clone(),
            resolved,
            scope,
            config,
            bus,
            bus_closed: false,
            lagged: false,
            opened_at: head,
            head,
            fill_to: head,
            cursor: head,
            ahead: BTreeMap::new(),
            gap: None,
            pending: VecDeque::new(),
            states: HashMap::new(),
            ended: false,
        };
        if let Some(cursor) = cursor {
            feed.cursor = cursor.min(head);
            if cursor > head {
                feed.end(ResyncReason::BeyondHead, cursor);
            } else if head - cursor > feed.config.max_replay {
                feed.end(ResyncReason::TooOld, cursor);
            }
        }
        Ok(feed)
    }

    /// The head of the log when the feed opened: events up to it are replayed history,
    /// later ones are live.
    pub fn opened_at(&self) -> u64 {
        self.opened_at
    }

    /// The sequence up to which the consumer has been handed everything it may see: the
    /// cursor to reopen a feed from.
    pub fn position(&self) -> u64 {
        match self.pending.front().and_then(FeedItem::seq) {
            Some(seq) => seq - 1,
            None => self.cursor,
        }
    }

    /// Whether an item is ready without waiting (a replayed page, a resync answer).
    pub fn has_ready(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The next item: an event the actor may see, in log order, each once; or a
    /// [`Resync`] after which the feed has ended. Waits for the next event when there is
    /// none yet; `Ok(None)` once the feed has ended. An error (the store failed, the
    /// actor lost access) leaves the feed where it was: call again to retry, or reopen
    /// it from [`Feed::position`].
    pub async fn next(&mut self) -> Result<Option<FeedItem>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            if self.ended {
                return Ok(None);
            }
            self.take_waiting();
            if self.lagged {
                self.lagged = false;
                let head = self.engine.log_head(self.actor.tenant()).await?;
                self.head = self.head.max(head);
                self.fill_to = self.fill_to.max(head);
                if self.head.saturating_sub(self.cursor) > self.config.max_replay {
                    self.end(ResyncReason::Lagged, self.cursor);
                    continue;
                }
            }
            if let Some(event) = self.ahead.remove(&(self.cursor + 1)) {
                if let Err(e) = self.take(event.clone()).await {
                    self.ahead.insert(event.seq, event);
                    return Err(e);
                }
                continue;
            }
            if self.cursor < self.fill_to {
                // Committed but not in memory: history to replay, or what the bus lost.
                self.read_store().await?;
                continue;
            }
            self.wait().await?;
        }
    }

    /// Waits for the bus: for a missing event while later ones wait in memory (then
    /// reads it from the store), or for anything new (then checks the store's head).
    async fn wait(&mut self) -> Result<()> {
        let gap = self.ahead.keys().next().copied();
        let wait = match gap {
            Some(_) => {
                let now = tokio::time::Instant::now();
                let since = match self.gap {
                    Some((cursor, since)) if cursor == self.cursor => since,
                    _ => {
                        self.gap = Some((self.cursor, now));
                        now
                    }
                };
                self.config.gap_wait.saturating_sub(now - since)
            }
            None => {
                self.gap = None;
                self.config.poll
            }
        };
        let received = if self.bus_closed {
            tokio::time::sleep(wait).await;
            None
        } else {
            tokio::time::timeout(wait, self.bus.recv()).await.ok()
        };
        match received {
            Some(received) => self.receive(received),
            None => match gap {
                // Everything before a published event is committed: read what the bus
                // did not bring in time.
                Some(first) => self.fill_to = self.fill_to.max(first - 1),
                None => {
                    let head = self.engine.log_head(self.actor.tenant()).await?;
                    self.head = self.head.max(head);
                    self.fill_to = self.fill_to.max(head);
                }
            },
        }
        Ok(())
    }

    /// Takes what the bus holds already, without waiting.
    fn take_waiting(&mut self) {
        if self.bus_closed {
            return;
        }
        loop {
            let received = match self.bus.try_recv() {
                Ok(event) => Ok(event),
                Err(broadcast::error::TryRecvError::Empty) => return,
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    Err(broadcast::error::RecvError::Lagged(n))
                }
                Err(broadcast::error::TryRecvError::Closed) => {
                    Err(broadcast::error::RecvError::Closed)
                }
            };
            self.receive(received);
        }
    }

    /// One thing from the bus: an event of this tenant not handed out yet is kept until
    /// its turn, within the buffer.
    fn receive(&mut self, received: std::result::Result<Arc<Event>, broadcast::error::RecvError>) {
        match received {
            Ok(event) => {
                if event.tenant_id != self.actor.tenant() || event.seq <= self.cursor {
                    return;
                }
                // Published means committed, and so is everything before it; an earlier
                // one still on its way is waited for (`gap_wait`) before the store is read.
                self.head = self.head.max(event.seq);
                self.ahead.insert(event.seq, event);
                if self.ahead.len() > self.config.buffer
                    && let Some((dropped, _)) = self.ahead.pop_last()
                {
                    // Bounded memory: the newest is read from the store in its turn.
                    self.fill_to = self.fill_to.max(dropped);
                }
            }
            // The bus dropped events for this feed: the store has them all.
            Err(broadcast::error::RecvError::Lagged(_)) => self.lagged = true,
            Err(broadcast::error::RecvError::Closed) => self.bus_closed = true,
        }
    }

    /// Reads the log after the cursor, one page, and takes what follows on from it.
    async fn read_store(&mut self) -> Result<()> {
        let events = self
            .engine
            .log_page(self.actor.tenant(), self.cursor, self.config.page)
            .await?;
        match events.first() {
            // The store lags behind what the bus announced; the next wait tries again.
            None => {
                self.fill_to = self.cursor;
                return Ok(());
            }
            // The log no longer keeps the events after the cursor.
            Some(first) if first.seq > self.cursor + 1 => {
                self.head = self.head.max(events.last().map_or(0, |e| e.seq));
                self.end(ResyncReason::TooOld, self.cursor);
                return Ok(());
            }
            Some(_) => {}
        }
        for event in events {
            if event.seq != self.cursor + 1 {
                continue;
            }
            let event = self
                .ahead
                .remove(&event.seq)
                .unwrap_or_else(|| Arc::new(event));
            self.take(event).await?;
        }
        self.ahead.retain(|seq, _| *seq > self.cursor);
        Ok(())
    }

    /// Takes the next event of the log (`cursor + 1`): tracks its conversation, and queues
    /// it if it is in scope and the actor may see it. The cursor moves only once that is
    /// done, so a failed read leaves the event to be taken again.
    async fn take(&mut self, event: Arc<Event>) -> Result<()> {
        let tenant = event.tenant_id;
        let previous = match &event.payload {
            EventPayload::ConversationUpdated {
                conversation,
                change,
            } => Some(match self.states.get(&conversation.id).cloned().flatten() {
                Some(known) => known,
                None => Arc::new(before(conversation, change)),
            }),
            _ => None,
        };
        let conversation = match (&event.payload, event.conversation_id) {
            (
                EventPayload::ConversationCreated { conversation }
                | EventPayload::ConversationUpdated { conversation, .. },
                _,
            ) => Some(Arc::new((**conversation).clone())),
            (EventPayload::ConversationDeleted { .. }, _) => None,
            (_, Some(id)) => match self.states.get(&id) {
                Some(state) => state.clone(),
                None => self
                    .engine
                    .conversation_state(tenant, id)
                    .await?
                    .map(Arc::new),
            },
            (_, None) => None,
        };
        let about_me = matches!(
            (&event.payload, self.resolved.staff()),
            (EventPayload::AgentUpdated { agent }, Some(me)) if agent.id == me.id
        );
        if about_me {
            // A changed role or department changes what the rest of the log shows.
            self.resolved = self.engine.resolve(&self.actor).await?;
        }
        if let Some(id) = event.conversation_id {
            if self.states.len() >= self.config.max_states && !self.states.contains_key(&id) {
                self.states.clear();
            }
            self.states.insert(id, conversation.clone());
        }
        self.cursor = event.seq;
        self.head = self.head.max(event.seq);
        let in_scope = match self.scope {
            FeedScope::Conversation(id) => event.conversation_id == Some(id),
            FeedScope::Inbox | FeedScope::Tenant => true,
        };
        if in_scope
            && sees(
                &self.resolved,
                &event,
                conversation.as_deref(),
                previous.as_deref(),
            )
        {
            self.pending.push_back(FeedItem::Event(FeedEvent {
                event,
                conversation,
                previous,
            }));
        }
        Ok(())
    }

    /// Ends the feed with a resync answer.
    fn end(&mut self, reason: ResyncReason, cursor: u64) {
        self.ended = true;
        self.ahead.clear();
        self.pending.push_back(FeedItem::Resync(Resync {
            reason,
            cursor,
            head: self.head,
        }));
    }
}

/// Whether `who` may see `event`: the engine's rule against the conversation right after
/// it, or, for a change that took the conversation out of their sight (a transfer away),
/// against the conversation right before it; staff-only events stay staff-only.
pub fn sees(
    who: &Resolved,
    event: &Event,
    conversation: Option<&Conversation>,
    previous: Option<&Conversation>,
) -> bool {
    Engine::may_see_event(who, event, conversation)
        || (!event.staff_only && previous.is_some_and(|p| who.scope().contains(p)))
}

/// The conversation as it stood before `change`, rebuilt from what the change records:
/// enough to tell who could see it before (previous owner, previous mode).
fn before(after: &Conversation, change: &ConversationChange) -> Conversation {
    let mut c = after.clone();
    match change {
        ConversationChange::Mode { from, .. } => c.mode = *from,
        ConversationChange::Assigned { from, .. }
        | ConversationChange::Transferred { from, .. } => {
            c.assigned_agent_id = *from;
            c.mode = if from.is_some() {
                Mode::Agent
            } else {
                Mode::Queued
            };
        }
        _ => {}
    }
    c
}
