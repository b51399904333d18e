//! Two (or more) `NatsBus`es on one real NATS server, each with a subject prefix of its
//! own test. Needs `CHAT_TEST_NATS_URL` (e.g. `nats://127.0.0.1:4222`); without it each
//! test says it was skipped (and fails under `CHAT_REQUIRE_SERVICES=1`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chat_core::{
    ConversationId, Ephemeral, Event, EventBus, NewEvent, ReadCursor, Reader, TenantId,
};
use chat_nats::{Error, NatsBus, Options};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::sync::watch;

const URL_VAR: &str = "CHAT_TEST_NATS_URL";

/// The NATS URL, or `None` (with a note) when the test is to be skipped.
fn nats_url() -> Option<String> {
    let url = std::env::var(URL_VAR).ok().filter(|v| !v.is_empty());
    if url.is_none() {
        let required = std::env::var("CHAT_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(!required, "CHAT_REQUIRE_SERVICES=1 but {URL_VAR} is unset");
        println!("skipped: {URL_VAR} unset");
    }
    url
}

/// Options with a prefix no other test (or test run) uses.
fn isolated() -> Options {
    Options::default().prefix(format!("test{}", uuid::Uuid::new_v4().simple()))
}

fn event(tenant: TenantId, seq: u64) -> Arc<Event> {
    let conversation = ConversationId::from(uuid::Uuid::new_v4());
    Arc::new(
        NewEvent::read_updated(ReadCursor {
            tenant_id: tenant,
            conversation_id: conversation,
            reader: Reader::Customer,
            seq,
            updated_at: time::OffsetDateTime::now_utc(),
        })
        .into_event(seq),
    )
}

fn tenant() -> TenantId {
    TenantId::from(uuid::Uuid::new_v4())
}

/// The next item, waiting at most 10 s (a test that hangs tells nothing).
async fn next<T: Clone>(rx: &mut broadcast::Receiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("nothing arrived within 10 s")
        .expect("bus closed")
}

/// Waits until `done` holds, polling every 5 ms, for at most 10 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_event_published_on_one_node_reaches_the_other_once_and_the_local_one_once() {
    let Some(url) = nats_url() else { return };
    let options = isolated();
    let a = NatsBus::connect(&url, options.clone()).await.unwrap();
    let b = NatsBus::connect(&url, options).await.unwrap();
    assert_ne!(a.node(), b.node());
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();
    let t = tenant();

    let first = event(t, 1);
    a.publish(first.clone());
    // Locally at once, without waiting for NATS.
    assert_eq!(on_a.try_recv().unwrap(), first);
    assert_eq!(*next(&mut on_b).await, *first);

    // A marker after it: anything NATS delivered twice would arrive before the marker.
    let marker = event(t, 2);
    a.publish(marker.clone());
    assert_eq!(*next(&mut on_b).await, *marker);
    assert!(matches!(on_b.try_recv(), Err(TryRecvError::Empty)));
    // A's own two messages came back from NATS and were dropped, not delivered again.
    until("A's echoes", || a.stats().echoes == 2).await;
    assert_eq!(on_a.try_recv().unwrap(), marker);
    assert!(matches!(on_a.try_recv(), Err(TryRecvError::Empty)));

    // And the other way round.
    let reply = event(t, 3);
    b.publish(reply.clone());
    assert_eq!(on_b.try_recv().unwrap(), reply);
    assert_eq!(*next(&mut on_a).await, *reply);
    until("B's echo", || b.stats().echoes == 1).await;
    assert!(matches!(on_b.try_recv(), Err(TryRecvError::Empty)));

    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!((sa.published, sa.remote_events, sa.dropped), (2, 1, 0));
    assert_eq!((sb.published, sb.remote_events, sb.dropped), (1, 2, 0));
}

#[tokio::test]
async fn ephemeral_signals_cross_nodes_and_buses_with_other_prefixes_hear_nothing() {
    let Some(url) = nats_url() else { return };
    let options = isolated();
    let a = NatsBus::connect(&url, options.clone()).await.unwrap();
    let b = NatsBus::connect(&url, options).await.unwrap();
    let other = NatsBus::connect(&url, isolated()).await.unwrap();
    let mut on_b = b.subscribe_ephemeral();
    let mut on_other = other.subscribe();
    let mut on_other_signals = other.subscribe_ephemeral();

    let signal = Arc::new(Ephemeral {
        tenant_id: tenant(),
        conversation_id: ConversationId::from(uuid::Uuid::new_v4()),
        kind: "bot_delta".to_owned(),
        data: serde_json::json!({ "delta": "Hel" }),
    });
    a.publish_ephemeral(signal.clone());
    assert_eq!(*next(&mut on_b).await, *signal);
    // An event after it, on the same connection: by the time it is in, the other
    // prefix's bus would have had the signal too.
    let mut events_on_b = b.subscribe();
    let e = event(signal.tenant_id, 1);
    a.publish(e.clone());
    assert_eq!(*next(&mut events_on_b).await, *e);
    assert_eq!(b.stats().remote_signals, 1);
    assert!(matches!(on_other.try_recv(), Err(TryRecvError::Empty)));
    assert!(matches!(
        on_other_signals.try_recv(),
        Err(TryRecvError::Empty)
    ));
    assert_eq!(
        other.stats().remote_events + other.stats().remote_signals,
        0
    );
}

#[tokio::test]
async fn a_bad_prefix_or_an_unreachable_server_is_an_error() {
    let err = NatsBus::connect("nats://127.0.0.1:1", Options::default().prefix("a.b"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPrefix), "{err}");
    // Nothing listens on port 1.
    let err = NatsBus::connect("nats://user:hunter2@127.0.0.1:1", Options::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Nats(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// A TCP relay to NATS that can be cut: while down it closes every relayed connection and
/// refuses (accepts and closes) new ones, as a lost network would.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Relay {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = watch::channel(0u64);
        let running = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !running.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let target = target.clone();
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_never_blocks_publishing_and_the_bus_reconnects_by_itself() {
    let Some(url) = nats_url() else { return };
    let target = url
        .trim_start_matches("nats://")
        .rsplit('@')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let relay = Relay::start(target).await;
    let options = isolated().outbox(64).capacity(16_384);
    let cut_off = NatsBus::connect(&relay.url(), options.clone())
        .await
        .unwrap();
    let peer = NatsBus::connect(&url, options).await.unwrap();
    let mut local = cut_off.subscribe();
    let mut on_peer = peer.subscribe();
    let t = tenant();
    cut_off.publish(event(t, 1));
    assert_eq!(next(&mut on_peer).await.seq, 1);
    local.try_recv().unwrap();

    relay.down();
    until("the bus to notice", || !cut_off.connected()).await;
    // Far more than the queue (and the client's own buffer) holds: every call returns,
    // local subscribers get each event at once, and what NATS cannot take is dropped and
    // counted.
    let mut local = cut_off.subscribe();
    for seq in 2..=10_001 {
        cut_off.publish(event(t, seq));
    }
    for seq in 2..=10_001 {
        assert_eq!(local.try_recv().unwrap().seq, seq);
    }
    assert!(cut_off.stats().dropped > 0, "{:?}", cut_off.stats());

    // Back: the bus reconnects and resubscribes by itself; both directions work again.
    relay.restore();
    until("the bus to reconnect", || cut_off.connected()).await;
    let mut on_cut_off = cut_off.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Resubscribing races with the peer's publish: publish until one arrives.
    let arrived = loop {
        peer.publish(event(t, 5000));
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(100), on_cut_off.recv()).await
        {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing after the reconnect"
        );
    };
    assert_eq!(arrived.seq, 5000);
    cut_off.publish(event(t, 6000));
    loop {
        if next(&mut on_peer).await.seq == 6000 {
            break;
        }
    }
}
