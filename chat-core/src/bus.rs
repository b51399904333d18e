//! Fan-out of committed events, and of ephemeral signals, to live subscribers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::ids::{ConversationId, TenantId};
use crate::model::Event;

/// Something live clients should see that is never stored: a piece of a bot reply while
/// it streams, say.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ephemeral {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The conversation concerned; clients see it only if they may see the conversation.
    pub conversation_id: ConversationId,
    /// Frame type for clients, e.g. `bot_delta`.
    pub kind: String,
    /// Payload.
    pub data: serde_json::Value,
}

/// Publishes committed events to whoever listens (WebSocket connections, webhooks,
/// other processes). Publishing never blocks; a subscriber that falls behind sees
/// [`broadcast::error::RecvError::Lagged`] and resumes from the store with
/// [`Engine::events_since`](crate::Engine::events_since).
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event already committed to the store.
    fn publish(&self, event: Arc<Event>);
    /// A new subscription to every event published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;
    /// Publishes an ephemeral signal (best effort: nobody listening is fine).
    fn publish_ephemeral(&self, signal: Arc<Ephemeral>);
    /// A new subscription to ephemeral signals.
    fn subscribe_ephemeral(&self) -> broadcast::Receiver<Arc<Ephemeral>>;
}

/// In-process bus on tokio broadcast channels: one allocation per event, shared by all
/// subscribers.
#[derive(Debug)]
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<Event>>,
    ephemeral: broadcast::Sender<Arc<Ephemeral>>,
}

impl InProcessBus {
    /// A bus that keeps up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
            ephemeral: broadcast::channel(capacity.max(1)).0,
        }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Arc<Event>) {
        // No receivers is normal (nobody connected); the event is in the store anyway.
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    fn publish_ephemeral(&self, signal: Arc<Ephemeral>) {
        let _ = self.ephemeral.send(signal);
    }

    fn subscribe_ephemeral(&self) -> broadcast::Receiver<Arc<Ephemeral>> {
        self.ephemeral.subscribe()
    }
}
