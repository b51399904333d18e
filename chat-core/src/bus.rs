//! Fan-out of committed events to live subscribers.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::model::Event;

/// Publishes committed events to whoever listens (WebSocket connections, webhooks,
/// other processes). Publishing never blocks; a subscriber that falls behind sees
/// [`broadcast::error::RecvError::Lagged`] and resumes from the store with
/// [`Engine::events_since`](crate::Engine::events_since).
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event already committed to the store.
    fn publish(&self, event: Arc<Event>);
    /// A new subscription to every event published from now on.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;
}

/// In-process bus on a tokio broadcast channel: one allocation per event, shared by all
/// subscribers.
#[derive(Debug)]
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<Event>>,
}

impl InProcessBus {
    /// A bus that keeps up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
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
}
