//! The socket loop every realtime socket shares (`realtime::follow`): heartbeats, the
//! credential re-check, replay from a cursor and the slow-consumer close, on `/v1/ws` and
//! on a template-style socket built with `Hub::tap` and a `Follower`. Real listener, real
//! clients; short intervals, and every wait is for a condition (with a generous ceiling).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chat_core::{Actor, Event, EventPayload, PostMessage, Role};
use chat_server::auth::{self, Caller};
use chat_server::http::{self, Resp};
use chat_server::realtime::Socket;
use chat_server::realtime::follow::{Flow, Follower};
use chat_server::{Context, Extension, Handled};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The ceiling of every wait: far above what any condition takes on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(20);

async fn connect(s: &common::Server, path: &str, token: &str) -> Ws {
    let mut req = s.ws_url(path).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

/// What a client reading a socket sees, up to its close.
#[derive(Debug, Default)]
struct Seen {
    pings: usize,
    texts: Vec<Value>,
    close: Option<CloseCode>,
}

/// Reads (and so answers pings) until `done` holds or the socket closes.
async fn read_until<S>(ws: &mut WebSocketStream<S>, seen: &mut Seen, done: impl Fn(&Seen) -> bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let reading = async {
        while !done(seen) {
            match ws.next().await {
                Some(Ok(Message::Ping(_))) => seen.pings += 1,
                Some(Ok(Message::Text(t))) => seen.texts.push(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    seen.close = frame.map(|f| f.code);
                    return;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => return,
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading)
        .await
        .unwrap_or_else(|_| panic!("condition not met within {PATIENCE:?}: {seen:?}"));
}

/// A client's connection whose writes, once `muted`, go nowhere: it hears the server but
/// never answers.
struct Mute {
    tcp: TcpStream,
    muted: Arc<AtomicBool>,
}

impl tokio::io::AsyncRead for Mute {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Mute {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.muted.load(Ordering::SeqCst) {
            return std::task::Poll::Ready(Ok(buf.len()));
        }
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Open WebSockets, as `/metrics` counts them.
async fn open_sockets(s: &common::Server) -> i64 {
    let metrics = s.get("/metrics", Some(common::METRICS_TOKEN)).await.text;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("chat_websockets_open "))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Waits until `check` holds, polling.
async fn eventually<F: Future<Output = bool>>(mut check: impl FnMut() -> F) {
    let waiting = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("condition not met in time");
}

#[tokio::test]
async fn the_server_pings_and_closes_a_socket_that_stops_answering() {
    let s = common::start_with(|c| c.realtime.heartbeat = Duration::from_millis(100)).await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;

    // A client that reads answers the pings and stays: six pings span three times the
    // two intervals after which a silent client is closed.
    let mut answering = connect(&s, "/v1/ws", &ann.token).await;
    let mut seen = Seen::default();
    read_until(&mut answering, &mut seen, |s| s.pings >= 6).await;
    assert_eq!(seen.close, None, "an answering client stays open: {seen:?}");

    drop(answering);
    eventually(|| async { open_sockets(&s).await == 0 }).await;

    // A client that reads but answers nothing (its pongs go nowhere) is closed. A client
    // that stopped reading instead would find, once it read again, the server gone
    // before the close frame: answering the pings queued ahead of it fails first.
    let mut req = s.ws_url("/v1/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", ann.token).parse().unwrap(),
    );
    let muted = Arc::new(AtomicBool::new(false));
    let tcp = TcpStream::connect(s.addr).await.unwrap();
    let (mut silent, _) = tokio_tungstenite::client_async(
        req,
        Mute {
            tcp,
            muted: muted.clone(),
        },
    )
    .await
    .unwrap();
    muted.store(true, Ordering::SeqCst);
    let mut seen = Seen::default();
    read_until(&mut silent, &mut seen, |_| false).await;
    eventually(|| async { open_sockets(&s).await == 0 }).await;
    assert!(seen.pings >= 1, "it was pinged first: {seen:?}");
    assert_eq!(seen.close, Some(CloseCode::Away), "{seen:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_socket_whose_staff_token_is_revoked_is_closed_with_4001() {
    let s = common::start_with(|c| {
        // Pings far apart: a client on a busy machine must answer each within two
        // intervals or be closed as gone (`Away`), which is not what this test is about.
        c.realtime.heartbeat = Duration::from_millis(400);
        c.realtime.credential_recheck = Duration::from_millis(50);
    })
    .await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    // Hashed before the socket opens: a client busy hashing would not answer pings.
    let hash = auth::hash_password("another password").unwrap();
    let mut ws = connect(&s, "/v1/ws", &ann.token).await;
    // Open and re-checked many times (every 50 ms) while the token holds.
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.pings >= 2).await;
    assert_eq!(seen.close, None, "{seen:?}");

    // A password change revokes the tokens issued before it; the client goes on reading
    // (answering pings) meanwhile.
    let system = Actor::System { tenant: s.tenant };
    let engine = s.engine.clone();
    let changed =
        tokio::spawn(async move { engine.set_password(&system, ann.id, &hash).await.unwrap() });
    read_until(&mut ws, &mut seen, |_| false).await;
    changed.await.unwrap();
    assert_eq!(seen.close, Some(CloseCode::Library(4001)), "{seen:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_socket_whose_visitor_token_expires_is_closed_with_4001() {
    let s = common::start_with(|c| {
        c.visitor_token_ttl = Duration::from_secs(1);
        // Two pings or so before the expiry, each with time to be answered when busy.
        c.realtime.heartbeat = Duration::from_millis(400);
        c.realtime.credential_recheck = Duration::from_millis(50);
    })
    .await;
    let (_, visitor) = s.visitor("soon@x.example").await;
    let mut ws = connect(&s, "/v1/ws", &visitor).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |_| false).await;
    assert_eq!(seen.close, Some(CloseCode::Library(4001)), "{seen:?}");
    assert!(
        seen.pings >= 1,
        "it was open (and pinged) until then: {seen:?}"
    );
    s.stop().await;
}

/// A template-style socket: `/api/log[?since=]` sends `{seq, body}` for each message the
/// caller may see, through `Hub::tap` and a `Follower`. Each message frame waits for a
/// permit of `gate` (a test makes the socket as slow as it likes), and `allowed` is what
/// the credential re-check answers.
struct LogSocket {
    gate: Arc<Semaphore>,
    allowed: Arc<AtomicBool>,
}

struct LogFollower {
    gate: Arc<Semaphore>,
    allowed: Arc<AtomicBool>,
}

impl Follower for LogFollower {
    async fn event(&mut self, socket: &mut Socket, event: &Event) -> Flow {
        let EventPayload::MessageCreated { message } = &event.payload else {
            return Flow::Continue;
        };
        self.gate.acquire().await.unwrap().forget();
        let frame = json!({ "seq": event.seq, "body": message.body });
        Flow::sent(socket.send(Message::text(frame.to_string())).await)
    }

    async fn text(&mut self, socket: &mut Socket, text: &str) -> Flow {
        let frame = json!({ "echo": text });
        Flow::sent(socket.send(Message::text(frame.to_string())).await)
    }

    async fn still_allowed(&mut self) -> bool {
        self.allowed.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Extension for LogSocket {
    async fn handle(&self, app: &Context, mut req: Request<Incoming>) -> Handled {
        if req.uri().path() != "/api/log" {
            return Handled::Declined(req);
        }
        let query = req.uri().query().unwrap_or_default().to_owned();
        let since = http::query_param(&query, "since").and_then(|s| s.parse().ok());
        let token = auth::bearer(req.headers(), None).ok().flatten();
        let Ok(Caller::Actor(actor)) = app.authenticate(token.as_deref()).await else {
            return Handled::Answered("/api/log", refused());
        };
        let Ok((response, socket)) = chat_server::realtime::accept(&mut req, 64 * 1024, None)
        else {
            return Handled::Answered("/api/log", refused());
        };
        let tap = app.hub().tap(actor.tenant()).await;
        let app = app.clone();
        let mut follower = LogFollower {
            gate: self.gate.clone(),
            allowed: self.allowed.clone(),
        };
        tokio::spawn(async move {
            let Some(mut socket) = socket.await else {
                return;
            };
            let _open = app.metrics().websocket_opened();
            tap.follow(
                app.engine(),
                &mut socket,
                &actor,
                since,
                &mut follower,
                app.shutdown(),
            )
            .await;
        });
        Handled::Answered("/api/log", response)
    }
}

fn refused() -> Resp {
    http::json(StatusCode::UNAUTHORIZED, &json!({ "detail": "no" }))
}

struct Tapped {
    s: common::Server,
    gate: Arc<Semaphore>,
    allowed: Arc<AtomicBool>,
    staff: Actor,
    token: String,
    conversation: chat_core::ConversationId,
}

async fn tapped(permits: usize, tune: impl FnOnce(&mut chat_server::Config)) -> Tapped {
    let gate = Arc::new(Semaphore::new(permits));
    let allowed = Arc::new(AtomicBool::new(true));
    let extension = LogSocket {
        gate: gate.clone(),
        allowed: allowed.clone(),
    };
    let s = common::start_extended(tune, |b| b, Some(Arc::new(extension))).await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let (id, _) = s.visitor("tapped@x.example").await;
    Tapped {
        staff: Actor::Staff {
            tenant: s.tenant,
            agent: ann.id,
        },
        token: ann.token,
        conversation: id.parse().unwrap(),
        s,
        gate,
        allowed,
    }
}

impl Tapped {
    /// Posts a message as staff; returns its event's sequence.
    async fn post(&self, body: &str) -> u64 {
        let posted = self
            .s
            .engine
            .post_message(&self.staff, self.conversation, PostMessage::text(body))
            .await
            .unwrap();
        let page = self
            .s
            .engine
            .events_since(&self.staff, 0, 10_000)
            .await
            .unwrap();
        page.events
            .iter()
            .rev()
            .find(|e| matches!(&e.payload, EventPayload::MessageCreated { message } if message.id == posted.message.id))
            .unwrap()
            .seq
    }
}

/// The bodies of the messages the test posted (a staff member's first message also
/// makes a system message, "Assigned to ...").
fn bodies(seen: &Seen) -> Vec<&str> {
    seen.texts
        .iter()
        .filter_map(|f| f["body"].as_str())
        .filter(|b| !b.starts_with("Assigned to"))
        .collect()
}

#[tokio::test]
async fn a_tapped_socket_replays_from_its_cursor_then_goes_live_each_event_once() {
    let t = tapped(Semaphore::MAX_PERMITS, |_| {}).await;
    let first = t.post("one").await;
    t.post("two").await;
    t.post("three").await;
    let mut ws = connect(&t.s, &format!("/api/log?since={first}"), &t.token).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| bodies(s).len() >= 2).await;
    t.post("four").await;
    t.post("five").await;
    read_until(&mut ws, &mut seen, |s| bodies(s).len() >= 4).await;
    assert_eq!(bodies(&seen), ["two", "three", "four", "five"]);
    // Nothing more is owed: an echo comes back with no message frame before it.
    ws.send(Message::text("marker")).await.unwrap();
    read_until(&mut ws, &mut seen, |s| {
        s.texts.last().is_some_and(|f| f["echo"] == "marker")
    })
    .await;
    assert_eq!(bodies(&seen), ["two", "three", "four", "five"]);
    // The frames carry increasing sequences: the client's cursor.
    let seqs: Vec<u64> = seen
        .texts
        .iter()
        .filter_map(|f| f["seq"].as_u64())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    t.s.stop().await;
}

#[tokio::test]
async fn a_tapped_socket_that_falls_behind_is_closed_with_4008_and_resumes_from_its_cursor() {
    let t = tapped(0, |c| c.realtime.buffer = 8).await;
    let mut ws = connect(&t.s, "/api/log", &t.token).await;
    eventually(|| async { open_sockets(&t.s).await == 1 }).await;
    // The socket's follower takes the first message and waits at the gate, while far
    // more than its outbox holds is committed and handed out.
    let total = 40;
    let mut last = 0;
    for n in 0..total {
        last = t.post(&n.to_string()).await;
    }
    eventually(|| async {
        let metrics = t.s.get("/metrics", Some(common::METRICS_TOKEN)).await.text;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("chat_realtime_delivered_seq "))
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|seq| seq >= last)
    })
    .await;
    t.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |_| false).await;
    assert_eq!(seen.close, Some(CloseCode::Library(4008)), "{seen:?}");
    let got = bodies(&seen).len();
    assert!(got < total, "cut off before the end: {got}");

    // Resuming from the last sequence seen misses nothing and repeats nothing.
    let cursor = seen.texts.iter().filter_map(|f| f["seq"].as_u64()).max();
    let path = match cursor {
        Some(cursor) => format!("/api/log?since={cursor}"),
        None => "/api/log?since=0".to_owned(),
    };
    let mut ws = connect(&t.s, &path, &t.token).await;
    let mut more = Seen::default();
    read_until(&mut ws, &mut more, |s| bodies(s).len() + got >= total).await;
    let all: Vec<String> = bodies(&seen)
        .into_iter()
        .chain(bodies(&more))
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = (0..total).map(|n| n.to_string()).collect();
    assert_eq!(all, expected, "every message once, in order");
    t.s.stop().await;
}

#[tokio::test]
async fn a_tapped_socket_is_pinged_and_closed_with_4001_when_its_credential_fails() {
    let t = tapped(Semaphore::MAX_PERMITS, |c| {
        c.realtime.heartbeat = Duration::from_millis(50);
        c.realtime.credential_recheck = Duration::from_millis(50);
    })
    .await;
    let mut ws = connect(&t.s, "/api/log", &t.token).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.pings >= 4).await;
    assert_eq!(seen.close, None, "{seen:?}");
    t.allowed.store(false, Ordering::SeqCst);
    read_until(&mut ws, &mut seen, |_| false).await;
    assert_eq!(seen.close, Some(CloseCode::Library(4001)), "{seen:?}");
    t.s.stop().await;
}

/// Sends a JSON frame.
async fn send_json(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

/// The default re-check interval (a minute) and heartbeat (30 s) are far beyond
/// [`PATIENCE`]: a socket closed within it was closed by the change itself.
#[tokio::test]
async fn a_password_change_closes_open_sockets_at_once_and_nothing_after_it_is_delivered() {
    let s = common::start().await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let bob = s.staff("Bob", Role::Admin, &[]).await;
    let hash = auth::hash_password("another password").unwrap();
    let (conversation, visitor) = s.visitor("vera@example.com").await;

    let mut sockets = Vec::new();
    for staff in [&ann, &bob] {
        let mut ws = connect(&s, "/v1/ws", &staff.token).await;
        send_json(
            &mut ws,
            json!({ "type": "subscribe", "id": "s", "conversation_id": conversation }),
        )
        .await;
        let mut seen = Seen::default();
        read_until(&mut ws, &mut seen, |s| {
            s.texts.iter().any(|t| t["type"] == "subscribed")
        })
        .await;
        sockets.push(ws);
    }
    let mut bob_ws = sockets.pop().unwrap();
    let mut ann_ws = sockets.pop().unwrap();

    // Ann's password is reset; the visitor writes right after. Ann's socket is closed
    // before it could carry the message; Bob's, whose credential did not change, gets it.
    let system = Actor::System { tenant: s.tenant };
    s.engine.set_password(&system, ann.id, &hash).await.unwrap();
    let posted = s
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&visitor),
            json!({ "body": "sent after the reset" }),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);

    let mut seen = Seen::default();
    read_until(&mut ann_ws, &mut seen, |_| false).await;
    assert_eq!(seen.close, Some(CloseCode::Library(4001)), "{seen:?}");
    assert!(
        !seen
            .texts
            .iter()
            .any(|t| t.to_string().contains("sent after the reset")),
        "delivered after the credential was revoked: {seen:?}"
    );

    let mut seen = Seen::default();
    read_until(&mut bob_ws, &mut seen, |s| {
        s.texts
            .iter()
            .any(|t| t.to_string().contains("sent after the reset"))
    })
    .await;
    assert_eq!(seen.close, None, "{seen:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_revoked_bot_token_closes_its_socket_at_once() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let issued = s
        .post(
            "/v1/bot-tokens",
            Some(&admin.token),
            json!({ "name": "follower" }),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let token = issued.body["token"].as_str().unwrap().to_owned();
    let id = issued.body["id"].as_str().unwrap().to_owned();
    let mut ws = connect(&s, "/v1/ws", &token).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| {
        s.texts.iter().any(|t| t["type"] == "hello")
    })
    .await;

    let revoked = s
        .delete(&format!("/v1/bot-tokens/{id}"), Some(&admin.token))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    read_until(&mut ws, &mut seen, |_| false).await;
    assert_eq!(seen.close, Some(CloseCode::Library(4001)), "{seen:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_socket_is_closed_when_its_staff_token_expires() {
    // Three seconds of life, and neither the heartbeat nor the periodic re-check comes
    // within PATIENCE: only the token's own expiry can close the socket in time.
    let s = common::start_with(|c| c.jwt.ttl = Duration::from_secs(3)).await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let mut ws = connect(&s, "/v1/ws", &ann.token).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |_| false).await;
    assert!(
        seen.texts.iter().any(|t| t["type"] == "hello"),
        "it was open first: {seen:?}"
    );
    assert_eq!(seen.close, Some(CloseCode::Library(4001)), "{seen:?}");
    s.stop().await;
}
