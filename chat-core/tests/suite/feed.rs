//! The event feed: replay then live, in order and each once, whatever the bus does; a
//! resync answer for a cursor the log cannot serve and for a consumer that falls too far
//! behind; only what the actor may see.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_core::feed::{Feed, FeedConfig, FeedItem, FeedScope, ResyncReason};
use chat_core::{
    Actor, AgentId, Availability, ContactInput, ConversationChange, ConversationId, Engine,
    Ephemeral, Error, Event, EventBus, EventPayload, InProcessBus, ManualClock, NewAgent,
    OpenConversation, PostMessage, Role, TenantId, TenantSettings, Transfer, TransferTarget,
    memory::MemoryStore,
};
use time::macros::datetime;
use tokio::sync::broadcast;

/// A bus whose deliveries the test controls: while held, published events are kept back,
/// to be released later in any order, or never (a publisher cancelled after its commit).
struct Valve {
    bus: InProcessBus,
    held: Mutex<Option<Vec<Arc<Event>>>>,
}

impl Valve {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            bus: InProcessBus::new(capacity),
            held: Mutex::new(None),
        })
    }

    fn hold(&self) {
        *self.held.lock().unwrap() = Some(Vec::new());
    }

    /// Stops holding and publishes what `order` picks of the held events, in its order.
    fn release(&self, order: impl FnOnce(Vec<Arc<Event>>) -> Vec<Arc<Event>>) {
        let held = self.held.lock().unwrap().take().unwrap_or_default();
        for event in order(held) {
            self.bus.publish(event);
        }
    }
}

impl EventBus for Valve {
    fn publish(&self, event: Arc<Event>) {
        let mut held = self.held.lock().unwrap();
        match held.as_mut() {
            Some(held) => held.push(event),
            None => self.bus.publish(event),
        }
    }
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.bus.subscribe()
    }
    fn publish_ephemeral(&self, signal: Arc<Ephemeral>) {
        self.bus.publish_ephemeral(signal)
    }
    fn subscribe_ephemeral(&self) -> broadcast::Receiver<Arc<Ephemeral>> {
        self.bus.subscribe_ephemeral()
    }
}

/// A desk on a manual clock and the in-memory store, with the test's bus.
struct Desk {
    engine: Engine,
    tenant: TenantId,
    admin: Actor,
    ann: Actor,
    bob_id: AgentId,
}

async fn desk(bus: Arc<dyn EventBus>) -> Desk {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 09:00 UTC)));
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .clock(clock)
        .bus(bus)
        .build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let system = Actor::System { tenant };
    let mut staff = Vec::new();
    for (name, role, department) in [
        ("Ada", Role::Admin, "billing"),
        ("Ann", Role::Agent, "billing"),
        ("Bob", Role::Agent, "sales"),
    ] {
        let agent = engine
            .create_agent(
                &system,
                NewAgent {
                    name: name.into(),
                    email: format!("{}@acme.example", name.to_lowercase()),
                    role,
                    capacity: None,
                    departments: vec![department.into()],
                },
            )
            .await
            .unwrap();
        staff.push(Actor::Staff {
            tenant,
            agent: agent.id,
        });
    }
    let bob_id = match staff[2] {
        Actor::Staff { agent, .. } => agent,
        _ => unreachable!(),
    };
    Desk {
        engine,
        tenant,
        admin: staff[0].clone(),
        ann: staff[1].clone(),
        bob_id,
    }
}

impl Desk {
    /// A visitor's new conversation and the visitor, scoped to it.
    async fn visitor(&self, email: &str) -> (ConversationId, Actor) {
        let opened = self
            .engine
            .open_conversation(
                &Actor::System {
                    tenant: self.tenant,
                },
                OpenConversation {
                    contact: ContactInput {
                        email: Some(email.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let actor = Actor::Customer {
            tenant: self.tenant,
            contact: opened.contact.id,
            conversation: Some(opened.conversation.id),
        };
        (opened.conversation.id, actor)
    }

    async fn note(&self, conversation: ConversationId, body: &str) {
        self.engine
            .post_note(&self.admin, conversation, body)
            .await
            .unwrap();
    }

    async fn head(&self) -> u64 {
        self.engine.event_head(&self.admin).await.unwrap()
    }
}

/// A guard against a hang, never a synchronisation: every wait below ends on a condition.
const GUARD: Duration = Duration::from_secs(20);

/// The feed's next item; a test fails instead of hanging if none comes.
async fn next(feed: &mut Feed) -> Option<FeedItem> {
    tokio::time::timeout(GUARD, feed.next())
        .await
        .expect("the feed answers")
        .unwrap()
}

/// The sequences of the feed's events up to and including `last`.
async fn seqs_until(feed: &mut Feed, last: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    while seqs.last().is_none_or(|s| *s < last) {
        match next(feed).await {
            Some(FeedItem::Event(e)) => seqs.push(e.event.seq),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    seqs
}

fn config() -> FeedConfig {
    FeedConfig {
        gap_wait: Duration::from_millis(5),
        poll: Duration::from_millis(20),
        ..FeedConfig::default()
    }
}

#[tokio::test]
async fn history_is_replayed_then_live_events_follow_in_order_each_once() {
    let d = desk(Arc::new(InProcessBus::default())).await;
    let (c, visitor) = d.visitor("jo@shop.example").await;
    d.engine
        .post_message(&visitor, c, PostMessage::text("Where is my parcel?"))
        .await
        .unwrap();
    let history = d.head().await;
    let mut feed = d
        .engine
        .feed_with(&d.admin, FeedScope::Tenant, Some(0), config())
        .await
        .unwrap();
    assert_eq!(feed.opened_at(), history);
    d.note(c, "customer since 2019").await;
    d.engine
        .post_message(&visitor, c, PostMessage::text("Hello?"))
        .await
        .unwrap();
    let head = d.head().await;
    let seqs = seqs_until(&mut feed, head).await;
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "the whole log, once");
    assert_eq!(feed.position(), head);
    // Nothing more: the next item is the next commit, not a repeat.
    d.note(c, "asked twice").await;
    let seqs = seqs_until(&mut feed, head + 1).await;
    assert_eq!(seqs, [head + 1]);
}

#[tokio::test]
async fn events_the_bus_never_delivers_are_read_from_the_store() {
    let valve = Valve::new(64);
    let d = desk(valve.clone()).await;
    let (c, _) = d.visitor("jo@shop.example").await;
    let mut feed = d
        .engine
        .feed_with(&d.admin, FeedScope::Tenant, None, config())
        .await
        .unwrap();
    let start = feed.opened_at();
    // Three notes; only the last is published: the gap before it is filled.
    valve.hold();
    for body in ["one", "two", "three"] {
        d.note(c, body).await;
    }
    valve.release(|held| held.into_iter().skip(2).collect());
    assert_eq!(
        seqs_until(&mut feed, start + 3).await,
        [start + 1, start + 2, start + 3]
    );
    // None published at all (a publisher cancelled after its commit): the feed finds
    // them when it checks the store's head.
    valve.hold();
    d.note(c, "four").await;
    d.note(c, "five").await;
    valve.release(|_| Vec::new());
    assert_eq!(
        seqs_until(&mut feed, start + 5).await,
        [start + 4, start + 5]
    );
}

#[tokio::test]
async fn events_published_out_of_order_are_handed_out_in_log_order() {
    let valve = Valve::new(64);
    let d = desk(valve.clone()).await;
    let (c, _) = d.visitor("jo@shop.example").await;
    let mut feed = d
        .engine
        .feed_with(
            &d.admin,
            FeedScope::Tenant,
            None,
            FeedConfig {
                // Held in memory until the earlier ones arrive.
                gap_wait: Duration::from_secs(60),
                ..config()
            },
        )
        .await
        .unwrap();
    // A feed with room for one early event: the others wait in the store for their turn.
    let mut narrow = d
        .engine
        .feed_with(
            &d.admin,
            FeedScope::Tenant,
            None,
            FeedConfig {
                buffer: 1,
                gap_wait: Duration::from_secs(60),
                ..config()
            },
        )
        .await
        .unwrap();
    let start = feed.opened_at();
    valve.hold();
    for body in ["one", "two", "three", "four"] {
        d.note(c, body).await;
    }
    valve.release(|mut held| {
        held.reverse();
        held
    });
    let all: Vec<u64> = (start + 1..=start + 4).collect();
    assert_eq!(seqs_until(&mut feed, start + 4).await, all);
    assert_eq!(seqs_until(&mut narrow, start + 4).await, all);
}

#[tokio::test]
async fn an_event_published_twice_is_handed_out_once() {
    let d = desk(Arc::new(InProcessBus::default())).await;
    let (c, _) = d.visitor("jo@shop.example").await;
    let history = d.head().await;
    let mut feed = d
        .engine
        .feed_with(&d.admin, FeedScope::Tenant, Some(history - 2), config())
        .await
        .unwrap();
    // Replayed events published again, and a live one published twice.
    let replayed = d
        .engine
        .events_since(&d.admin, history - 2, 10)
        .await
        .unwrap();
    for event in replayed.events {
        d.engine.bus().publish(Arc::new(event));
    }
    d.note(c, "once").await;
    let live = d
        .engine
        .events_since(&d.admin, history, 10)
        .await
        .unwrap()
        .events;
    d.engine.bus().publish(Arc::new(live[0].clone()));
    d.note(c, "twice").await;
    let seqs = seqs_until(&mut feed, history + 2).await;
    assert_eq!(
        seqs,
        (history - 1..=history + 2).collect::<Vec<_>>(),
        "each event once"
    );
}

#[tokio::test]
async fn a_cursor_beyond_the_head_gets_a_resync_and_the_feed_ends() {
    let d = desk(Arc::new(InProcessBus::default())).await;
    d.visitor("jo@shop.example").await;
    let head = d.head().await;
    // A cursor from another database (a restore, a wiped server).
    let mut feed = d
        .engine
        .feed(&d.admin, FeedScope::Inbox, Some(head + 40))
        .await
        .unwrap();
    match next(&mut feed).await {
        Some(FeedItem::Resync(r)) => {
            assert_eq!(r.reason, ResyncReason::BeyondHead);
            assert_eq!((r.cursor, r.head), (head + 40, head));
        }
        other => panic!("expected a resync, got {other:?}"),
    }
    assert_eq!(next(&mut feed).await, None, "the feed has ended");
    // At the head exactly is no resync: the client is up to date.
    let feed = d
        .engine
        .feed_with(&d.admin, FeedScope::Inbox, Some(head), config())
        .await
        .unwrap();
    assert!(!feed.has_ready());
    assert_eq!(feed.position(), head);
}

#[tokio::test]
async fn a_cursor_further_behind_than_the_feed_replays_gets_a_resync() {
    let d = desk(Arc::new(InProcessBus::default())).await;
    d.visitor("jo@shop.example").await;
    let head = d.head().await;
    let limit = FeedConfig {
        max_replay: 3,
        ..config()
    };
    let mut feed = d
        .engine
        .feed_with(&d.admin, FeedScope::Tenant, Some(0), limit.clone())
        .await
        .unwrap();
    match next(&mut feed).await {
        Some(FeedItem::Resync(r)) => {
            assert_eq!(r.reason, ResyncReason::TooOld);
            assert_eq!((r.cursor, r.head), (0, head));
        }
        other => panic!("expected a resync, got {other:?}"),
    }
    assert_eq!(next(&mut feed).await, None);
    // Within the limit, the same feed replays.
    let mut feed = d
        .engine
        .feed_with(&d.admin, FeedScope::Tenant, Some(head - 3), limit)
        .await
        .unwrap();
    assert_eq!(
        seqs_until(&mut feed, head).await,
        [head - 2, head - 1, head]
    );
}

#[tokio::test]
async fn a_consumer_that_falls_too_far_behind_gets_lagged_not_a_growing_buffer() {
    // The bus keeps 4 events per subscriber; the feed replays at most 10 behind.
    let d = desk(Arc::new(InProcessBus::new(4))).await;
    let (c, _) = d.visitor("jo@shop.example").await;
    let slow = FeedConfig {
        max_replay: 10,
        buffer: 4,
        ..config()
    };
    let mut slow_feed = d
        .engine
        .feed_with(&d.admin, FeedScope::Tenant, None, slow.clone())
        .await
        .unwrap();
    let mut behind_feed = d
        .engine
        .feed_with(&d.admin, FeedScope::Tenant, None, slow)
        .await
        .unwrap();
    let start = slow_feed.opened_at();
    for i in 0..6 {
        d.note(c, &format!("note {i}")).await;
    }
    // Six behind, the bus lost some: caught up from the store, in order.
    assert_eq!(
        seqs_until(&mut behind_feed, start + 6).await,
        (start + 1..=start + 6).collect::<Vec<_>>()
    );
    for i in 6..15 {
        d.note(c, &format!("note {i}")).await;
    }
    // Fifteen behind: told to resync from the head instead.
    match next(&mut slow_feed).await {
        Some(FeedItem::Resync(r)) => {
            assert_eq!(r.reason, ResyncReason::Lagged);
            assert_eq!((r.cursor, r.head), (start, start + 15));
        }
        other => panic!("expected a resync, got {other:?}"),
    }
    assert_eq!(next(&mut slow_feed).await, None);
}

#[tokio::test]
async fn a_customer_gets_its_own_conversation_and_never_staff_only_events() {
    let d = desk(Arc::new(InProcessBus::default())).await;
    let (mine, jo) = d.visitor("jo@shop.example").await;
    let (theirs, max) = d.visitor("max@shop.example").await;
    let mut feed = d
        .engine
        .feed_with(&jo, FeedScope::Inbox, Some(0), config())
        .await
        .unwrap();
    d.note(mine, "VIP, handle with care").await;
    d.engine
        .post_message(&max, theirs, PostMessage::text("Hi from Max"))
        .await
        .unwrap();
    d.engine
        .post_message(&d.admin, mine, PostMessage::text("Hello Jo"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let Some(FeedItem::Event(e)) = next(&mut feed).await else {
            panic!("the feed ended")
        };
        assert_eq!(e.event.conversation_id, Some(mine), "{:?}", e.event);
        assert!(!e.event.staff_only, "{:?}", e.event);
        let reply = matches!(&e.event.payload,
            EventPayload::MessageCreated { message } if message.body == "Hello Jo");
        seen.push(e.event.seq);
        if reply {
            break;
        }
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    // A customer cannot follow the tenant, nor a conversation it cannot see.
    assert!(matches!(
        d.engine.feed(&jo, FeedScope::Tenant, None).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        d.engine
            .feed(&jo, FeedScope::Conversation(theirs), None)
            .await,
        Err(Error::NotFound(_))
    ));
    // Staff following one conversation get only that conversation.
    let mut one = d
        .engine
        .feed_with(&d.admin, FeedScope::Conversation(theirs), Some(0), config())
        .await
        .unwrap();
    d.note(theirs, "last").await;
    let head = d.head().await;
    loop {
        let Some(FeedItem::Event(e)) = next(&mut one).await else {
            panic!("the feed ended")
        };
        assert_eq!(e.event.conversation_id, Some(theirs));
        if e.event.seq == head {
            break;
        }
    }
}

#[tokio::test]
async fn an_agent_transferred_away_learns_why_and_then_sees_no_more() {
    let d = desk(Arc::new(InProcessBus::default())).await;
    let (c, visitor) = d.visitor("jo@shop.example").await;
    let Actor::Staff { agent: ann, .. } = d.ann else {
        unreachable!()
    };
    d.engine.assign(&d.admin, c, ann).await.unwrap();
    let mut feed = d
        .engine
        .feed_with(&d.ann, FeedScope::Inbox, None, config())
        .await
        .unwrap();
    d.engine
        .transfer(
            &d.admin,
            c,
            Transfer {
                to: TransferTarget::Agent(d.bob_id),
                reason: Some("sales question".into()),
            },
        )
        .await
        .unwrap();
    let Some(FeedItem::Event(e)) = next(&mut feed).await else {
        panic!("the feed ended")
    };
    assert!(matches!(
        &e.event.payload,
        EventPayload::ConversationUpdated {
            change: ConversationChange::Transferred { .. },
            ..
        }
    ));
    assert_eq!(
        e.previous.as_ref().and_then(|p| p.assigned_agent_id),
        Some(ann),
        "the conversation as it was before the transfer"
    );
    assert_eq!(
        e.conversation.as_ref().and_then(|c| c.assigned_agent_id),
        Some(d.bob_id)
    );
    // What follows in the conversation is no longer hers; her own next event is.
    d.engine
        .post_message(&visitor, c, PostMessage::text("Thanks Bob"))
        .await
        .unwrap();
    d.engine
        .set_availability(&d.admin, ann, Availability::Away)
        .await
        .unwrap();
    loop {
        let Some(FeedItem::Event(e)) = next(&mut feed).await else {
            panic!("the feed ended")
        };
        assert_ne!(e.event.conversation_id, Some(c), "{:?}", e.event);
        if matches!(&e.event.payload, EventPayload::AgentUpdated { agent } if agent.id == ann) {
            break;
        }
    }
}
