//! A [`chat_core::EventBus`] over NATS: several servers on one store see each other's
//! events live.
//!
//! Every event and ephemeral signal is delivered to this process's subscribers at once
//! (as [`chat_core::InProcessBus`] does) and also published on NATS, on a subject per
//! tenant (`chat.<prefix>.events.<tenant>`, `chat.<prefix>.signals.<tenant>`); what other
//! processes publish there reaches this process's subscribers. Each message carries the
//! publishing bus's node id, and a bus drops its own echoes, so a local subscriber gets a
//! local event once.
//!
//! The bus is best effort, as the [`EventBus`] contract allows: it may drop or reorder.
//! The store's event log is what keeps consumers correct; [`chat_core::feed`] reads the
//! log whenever the bus skips a sequence number (and polls it when the bus is quiet), so
//! a remote event that arrives is enough to make a feed catch up on everything before it.
//!
//! Publishing never blocks: messages for NATS go through a bounded queue to one
//! publishing task, and when the queue is full (NATS unreachable, or slower than the
//! process) the message is dropped, counted in [`Stats::dropped`] and logged. The
//! connection reconnects by itself (and resubscribes) after it is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::{ConnectOptions, HeaderMap, Subscriber};
use chat_core::{Ephemeral, Event, EventBus};
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// The header naming the bus that published a message.
pub const NODE_HEADER: &str = "Chat-Node";

/// How a [`NatsBus`] names its subjects and bounds its queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The middle of every subject (`chat.<prefix>.events.<tenant>`): servers that share
    /// a store share a prefix, and servers of other stores on the same NATS use another
    /// one. Letters, digits, `-` and `_`.
    pub prefix: String,
    /// Events (and signals) kept for local subscribers that fall behind, as
    /// [`chat_core::InProcessBus::new`].
    pub capacity: usize,
    /// Messages waiting to go to NATS; more are dropped (and counted).
    pub outbox: usize,
    /// Name the connection shows in the NATS server's monitoring.
    pub connection_name: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            prefix: "default".to_owned(),
            capacity: 4096,
            outbox: 8192,
            connection_name: "chat-nats".to_owned(),
        }
    }
}

impl Options {
    /// Options with this subject prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Options with this local capacity.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Options with this outgoing queue length.
    pub fn outbox(mut self, outbox: usize) -> Self {
        self.outbox = outbox;
        self
    }
}

/// Why a bus could not start.
#[derive(Debug)]
pub enum Error {
    /// The prefix is empty or has characters other than letters, digits, `-` and `_`.
    InvalidPrefix,
    /// NATS could not be reached or refused the connection or a subscription. The message
    /// never includes the URL (it may hold a password).
    Nats(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidPrefix => {
                f.write_str("the NATS subject prefix must be letters, digits, '-' or '_'")
            }
            Error::Nats(e) => write!(f, "NATS: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// What a bus has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events and signals handed to the NATS client.
    pub published: u64,
    /// Events and signals not sent to NATS because the outgoing queue was full.
    pub dropped: u64,
    /// Events received from other nodes and delivered to local subscribers.
    pub remote_events: u64,
    /// Ephemeral signals received from other nodes and delivered to local subscribers.
    pub remote_signals: u64,
    /// This bus's own messages that NATS sent back, dropped.
    pub echoes: u64,
    /// Messages from NATS that could not be read (another version, another program).
    pub unreadable: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    dropped: AtomicU64,
    remote_events: AtomicU64,
    remote_signals: AtomicU64,
    echoes: AtomicU64,
    unreadable: AtomicU64,
    /// Dropping now (logged once per run of drops).
    dropping: AtomicBool,
}

/// One message for NATS: subject and JSON body.
struct Outgoing {
    subject: String,
    body: Vec<u8>,
}

/// An [`EventBus`] shared by every process connected to the same NATS with the same
/// prefix; see the [crate] documentation.
pub struct NatsBus {
    events: broadcast::Sender<Arc<Event>>,
    signals: broadcast::Sender<Arc<Ephemeral>>,
    outbox: mpsc::Sender<Outgoing>,
    subjects: Subjects,
    node: String,
    counters: Arc<Counters>,
    client: async_nats::Client,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus")
            .field("node", &self.node)
            .field("prefix", &self.subjects.prefix)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
struct Subjects {
    prefix: String,
}

impl Subjects {
    fn events(&self, tenant: impl std::fmt::Display) -> String {
        format!("chat.{}.events.{tenant}", self.prefix)
    }
    fn signals(&self, tenant: impl std::fmt::Display) -> String {
        format!("chat.{}.signals.{tenant}", self.prefix)
    }
}

impl NatsBus {
    /// Connects to NATS at `url` (`nats://host:4222`, comma-separated for a cluster) and
    /// subscribes to the prefix's subjects. Must run inside a tokio runtime, which keeps
    /// the bus's tasks.
    pub async fn connect(url: &str, options: Options) -> Result<Self, Error> {
        let valid = !options.prefix.is_empty()
            && options
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(Error::InvalidPrefix);
        }
        let client = ConnectOptions::new()
            .name(&options.connection_name)
            // Back to the server quickly after a restart, at most every 2 s.
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis(50u64 << attempt.min(5)).min(Duration::from_secs(2))
            })
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("NATS bus connected"),
                    async_nats::Event::Disconnected => {
                        tracing::warn!("NATS bus disconnected; reconnecting")
                    }
                    other => tracing::warn!(event = %other, "NATS bus"),
                }
            })
            .connect(url)
            .await
            .map_err(|e| Error::Nats(format!("connecting: {}", e.kind())))?;
        let subjects = Subjects {
            prefix: options.prefix.clone(),
        };
        let nats_error = |e: &dyn std::fmt::Display| Error::Nats(e.to_string());
        let event_sub = client
            .subscribe(subjects.events("*"))
            .await
            .map_err(|e| nats_error(&e))?;
        let signal_sub = client
            .subscribe(subjects.signals("*"))
            .await
            .map_err(|e| nats_error(&e))?;
        // The subscriptions must be at the server when this returns, so that whatever any
        // node publishes from now on reaches this one. `flush` only writes them to the
        // socket; on a busy machine another connection's message could still beat them.
        // The server handles one connection's commands in order, so once a probe this
        // connection publishes comes back to it, the subscriptions before it are in place.
        let probe = client.new_inbox();
        let mut probe_sub = client
            .subscribe(probe.clone())
            .await
            .map_err(|e| nats_error(&e))?;
        client
            .publish(probe, Vec::new().into())
            .await
            .map_err(|e| nats_error(&e))?;
        client.flush().await.map_err(|e| nats_error(&e))?;
        match tokio::time::timeout(Duration::from_secs(30), probe_sub.next()).await {
            Ok(Some(_)) => {}
            _ => {
                return Err(Error::Nats(
                    "the server did not confirm the subscriptions within 30 s".into(),
                ));
            }
        }
        let _ = probe_sub.unsubscribe().await;

        let node = uuid::Uuid::new_v4().simple().to_string();
        let counters = Arc::new(Counters::default());
        let events = broadcast::channel(options.capacity.max(1)).0;
        let signals = broadcast::channel(options.capacity.max(1)).0;
        let (outbox, queue) = mpsc::channel(options.outbox.max(1));
        let tasks = vec![
            tokio::spawn(publish_loop(
                client.clone(),
                queue,
                node.clone(),
                counters.clone(),
            )),
            tokio::spawn(receive_loop(
                event_sub,
                node.clone(),
                counters.clone(),
                events.clone(),
                |counters| &counters.remote_events,
            )),
            tokio::spawn(receive_loop(
                signal_sub,
                node.clone(),
                counters.clone(),
                signals.clone(),
                |counters| &counters.remote_signals,
            )),
        ];
        Ok(Self {
            events,
            signals,
            outbox,
            subjects,
            node,
            counters,
            client,
            tasks,
        })
    }

    /// This bus's node id (the [`NODE_HEADER`] of what it publishes).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What the bus has done so far.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            published: c.published.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            remote_events: c.remote_events.load(Ordering::Relaxed),
            remote_signals: c.remote_signals.load(Ordering::Relaxed),
            echoes: c.echoes.load(Ordering::Relaxed),
            unreadable: c.unreadable.load(Ordering::Relaxed),
        }
    }

    /// Whether the NATS connection is up right now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Queues a message for NATS, or drops it (counted, logged) when the queue is full.
    fn send(&self, subject: String, body: Result<Vec<u8>, serde_json::Error>) {
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "NATS bus: cannot serialize; not sent to other nodes");
                return;
            }
        };
        match self.outbox.try_send(Outgoing { subject, body }) {
            Ok(()) => {
                if self.counters.dropping.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        dropped = self.counters.dropped.load(Ordering::Relaxed),
                        "NATS bus: sending to other nodes again"
                    );
                }
            }
            Err(_) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if !self.counters.dropping.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        dropped,
                        "NATS bus: outgoing queue full, dropping (other nodes read the store)"
                    );
                }
            }
        }
    }
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl EventBus for NatsBus {
    fn publish(&self, event: Arc<Event>) {
        let subject = self.subjects.events(event.tenant_id);
        let body = serde_json::to_vec(&*event);
        // Local subscribers first, at once; nobody listening is normal.
        let _ = self.events.send(event);
        self.send(subject, body);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    fn publish_ephemeral(&self, signal: Arc<Ephemeral>) {
        let subject = self.subjects.signals(signal.tenant_id);
        let body = serde_json::to_vec(&*signal);
        let _ = self.signals.send(signal);
        self.send(subject, body);
    }

    fn subscribe_ephemeral(&self) -> broadcast::Receiver<Arc<Ephemeral>> {
        self.signals.subscribe()
    }
}

/// Sends queued messages to NATS, tagged with the node id. While NATS is away the client
/// holds what it can; once it is full this loop waits and the queue before it drops.
async fn publish_loop(
    client: async_nats::Client,
    mut queue: mpsc::Receiver<Outgoing>,
    node: String,
    counters: Arc<Counters>,
) {
    while let Some(Outgoing { subject, body }) = queue.recv().await {
        let mut headers = HeaderMap::new();
        headers.insert(NODE_HEADER, node.as_str());
        match client
            .publish_with_headers(subject, headers, body.into())
            .await
        {
            Ok(()) => {
                counters.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "NATS bus: publish failed");
            }
        }
    }
}

/// Hands what other nodes publish to local subscribers; drops this node's echoes.
async fn receive_loop<T: serde::de::DeserializeOwned>(
    mut subscription: Subscriber,
    node: String,
    counters: Arc<Counters>,
    local: broadcast::Sender<Arc<T>>,
    counter: fn(&Counters) -> &AtomicU64,
) {
    while let Some(message) = subscription.next().await {
        let from = message
            .headers
            .as_ref()
            .and_then(|h| h.get(NODE_HEADER))
            .map(|v| v.as_str());
        if from == Some(node.as_str()) {
            counters.echoes.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match serde_json::from_slice::<T>(&message.payload) {
            Ok(item) => {
                counter(&counters).fetch_add(1, Ordering::Relaxed);
                let _ = local.send(Arc::new(item));
            }
            Err(e) => {
                counters.unreadable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(subject = %message.subject, error = %e, "NATS bus: unreadable message");
            }
        }
    }
}
