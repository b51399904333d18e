//! WebSocket fan-out load generator: N clients over several conversations on the real
//! chat server (SQLite persistence on) and on a bare tokio-tungstenite broadcast server,
//! in one run. Prints deliveries/s with senders saturated (a fixed window of messages in
//! flight), p50/p99 send-to-receive latency at a set rate, the ratios, and the server's
//! RSS per idle WebSocket (servers run as child processes of this binary for that).
//!
//! `cargo bench -p chat-server --bench ws_fanout`
//! Settings (environment): `WS_CLIENTS` (1000), `WS_CONVERSATIONS` (10), `WS_SENDERS` (16),
//! `WS_IN_FLIGHT` (16), `WS_RATE` (10 msgs/s), `WS_LATENCY_SECS` (30: at 10 msgs/s, 10 s
//! would be 100 messages, and one slow message 1% of the samples, the p99 on its own),
//! `WS_SATURATED_SECS` (5), `WS_IDLE_SOCKETS` (10000; 0 skips the RSS part), `WS_BARE_FRAME_BYTES` (size of
//! the bare server's frames; default close to the chat server's event frame), `WS_ONLY=rss`
//! (only the idle-socket part), `WS_SERVER_WRAPPER` (a command the idle-socket server
//! runs under, e.g. `heaptrack -o /tmp/ws`: where its memory goes), `BENCH_READS_IN_PLACE=0` (the chat server's store reads
//! hop to the blocking pool instead of running in place).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{env_or, ms, quantile};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as HsRequest, Response as HsResponse,
};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

type Ws = WebSocketStream<TcpStream>;

const IDLE: u8 = 0;
const PACED: u8 = 1;
const SATURATED: u8 = 2;
const STOP: u8 = 3;

/// Which server is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Bare,
    Chat,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Chat => "chat",
        }
    }
}

/// Microseconds since the process's bench epoch (all clocks are in this process).
fn now_micros() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The send timestamp embedded in a frame: `bench:<micros>:`.
fn stamp(text: &str) -> Option<u64> {
    let at = text.find("bench:")? + "bench:".len();
    let rest = &text[at..];
    let end = rest.find(':')?;
    rest[..end].parse().ok()
}

fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

/// Source address number `i` of 127.0.0.2..=127.0.0.9 (spreads ephemeral ports).
fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8))
}

// ---------------------------------------------------------------------------------------
// The bare server: accept, upgrade, every text frame broadcast to the sockets of its room
// (`/room/{k}`) through a tokio broadcast channel of pre-serialized frames.

async fn serve_bare(listener: TcpListener, rooms: usize, stop: watch::Receiver<bool>) {
    let channels: Arc<Vec<broadcast::Sender<Utf8Bytes>>> = Arc::new(
        (0..rooms.max(1))
            .map(|_| broadcast::channel(1024).0)
            .collect(),
    );
    let mut stop_accept = stop.clone();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop_accept.changed() => break,
        };
        tokio::spawn(bare_connection(stream, channels.clone(), stop.clone()));
    }
}

// The handshake callback's error type is tungstenite's (`ErrorResponse`), not ours.
#[allow(clippy::result_large_err)]
async fn bare_connection(
    stream: TcpStream,
    channels: Arc<Vec<broadcast::Sender<Utf8Bytes>>>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    let callback = |req: &HsRequest, resp: HsResponse| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(client_config()))
            .await
    else {
        return;
    };
    let room = path
        .rsplit('/')
        .next()
        .and_then(|k| k.parse::<usize>().ok())
        .unwrap_or(0)
        % channels.len();
    let tx = channels[room].clone();
    let mut rx = tx.subscribe();
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let _ = tx.send(t);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            frame = rx.recv() => match frame {
                Ok(frame) => {
                    if ws.send(Message::Text(frame)).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = stop.changed() => break,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Clients.

/// Opens a WebSocket from `source`; for the chat server authenticates with `token`,
/// waits for `hello` and, when `subscribe` is set, subscribes to the conversation.
async fn connect(
    kind: Kind,
    addr: SocketAddr,
    room: usize,
    conversation: Option<&(String, String)>,
    from: IpAddr,
    subscribe: bool,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(from, 0))
        .map_err(|e| format!("bind {from}: {e}"))?;
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let url = match kind {
        Kind::Bare => format!("ws://{addr}/room/{room}"),
        Kind::Chat => format!("ws://{addr}/v1/ws"),
    };
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some((_, token)) = conversation {
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().map_err(|_| "token")?,
        );
    }
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(client_config()))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    if kind == Kind::Chat {
        expect(&mut ws, "hello").await?;
        if subscribe && let Some((id, _)) = conversation {
            let frame = json!({ "type": "subscribe", "id": "s", "conversation_id": id });
            ws.send(Message::Text(Utf8Bytes::from(frame.to_string())))
                .await
                .map_err(|e| e.to_string())?;
            expect(&mut ws, "subscribed").await?;
        }
    }
    Ok(ws)
}

/// Reads until a frame of `kind` (10 s at most).
async fn expect(ws: &mut Ws, kind: &str) -> Result<Value, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return Err(format!("no {kind} within 10 s")),
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                if v["type"] == kind {
                    return Ok(v);
                }
                if v["type"] == "error" {
                    return Err(format!("error frame: {t}"));
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(format!("closed while waiting for {kind}: {other:?}")),
        }
    }
}

/// State shared by the clients of one run.
struct Shared {
    phase: AtomicU8,
    /// Bench frames received by receivers.
    deliveries: AtomicU64,
    /// Receivers closed by the server or failed.
    closed: AtomicU64,
    /// Window of messages in flight when saturated; room probes give permits back.
    window: Arc<Semaphore>,
    /// Length of one delivered bench frame.
    frame_bytes: AtomicUsize,
    /// Send-to-ack latencies (µs) of the chat server's paced posts: the part of a
    /// delivery's latency that is the post's commit, before any fan-out.
    acks: std::sync::Mutex<Vec<u32>>,
}

/// A receiver: counts bench frames, records latency while paced, and (as its room's
/// probe) reopens the window when saturated. Returns its latency samples (µs).
async fn receive(
    mut ws: Ws,
    probe: bool,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    loop {
        let msg = tokio::select! {
            msg = ws.next() => msg,
            _ = stop.changed() => break,
        };
        match msg {
            Some(Ok(Message::Text(t))) => {
                if let Some(sent) = stamp(&t) {
                    let phase = shared.phase.load(Ordering::Relaxed);
                    shared.deliveries.fetch_add(1, Ordering::Relaxed);
                    if phase == PACED {
                        let micros = now_micros().saturating_sub(sent);
                        latencies.push(micros.min(u64::from(u32::MAX)) as u32);
                        shared.frame_bytes.store(t.len(), Ordering::Relaxed);
                    } else if phase == SATURATED && probe {
                        shared.window.add_permits(1);
                    }
                }
            }
            Some(Ok(_)) => {}
            _ => {
                if shared.phase.load(Ordering::Relaxed) != STOP {
                    shared.closed.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
        }
    }
    latencies
}

/// A sender: sends a stamped message on each command (paced) or whenever the window has
/// room (saturated), and drains whatever the server sends it.
#[allow(clippy::too_many_arguments)]
async fn send_loop(
    mut ws: Ws,
    kind: Kind,
    me: usize,
    conversation: Option<String>,
    bare_frame_bytes: usize,
    shared: Arc<Shared>,
    mut commands: mpsc::Receiver<()>,
    mut phase: watch::Receiver<u8>,
) -> u64 {
    let mut n = 0u64;
    loop {
        let saturated = *phase.borrow() == SATURATED;
        let send_now = tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if kind == Kind::Chat
                        && shared.phase.load(Ordering::Relaxed) == PACED
                        && t.contains("\"type\":\"ack\"")
                        && let Some(sent) = stamp(&t)
                    {
                        let micros = now_micros().saturating_sub(sent);
                        shared
                            .acks
                            .lock()
                            .expect("acks")
                            .push(micros.min(u64::from(u32::MAX)) as u32);
                    }
                    false
                }
                Some(Ok(_)) => false,
                _ => break,
            },
            cmd = commands.recv() => match cmd {
                Some(()) => true,
                None => break,
            },
            permit = shared.window.acquire(), if saturated => match permit {
                Ok(p) => {
                    p.forget();
                    true
                }
                Err(_) => break,
            },
            changed = phase.changed() => {
                if changed.is_err() || *phase.borrow() == STOP {
                    break;
                }
                false
            }
        };
        if !send_now {
            continue;
        }
        n += 1;
        let body = format!("bench:{}: message {n} from sender {me}", now_micros());
        let frame = match (&conversation, kind) {
            (Some(id), Kind::Chat) => json!({
                "type": "send_message", "conversation_id": id,
                "client_message_id": format!("s{me}-{n}"), "body": body,
            })
            .to_string(),
            _ => {
                // Padded to about the size of the chat server's event frame.
                let bare = json!({ "type": "event", "body": body }).to_string();
                let pad = bare_frame_bytes.saturating_sub(bare.len() + 10);
                json!({ "type": "event", "body": body, "pad": "x".repeat(pad) }).to_string()
            }
        };
        if ws
            .send(Message::Text(Utf8Bytes::from(frame)))
            .await
            .is_err()
        {
            break;
        }
    }
    n
}

/// What one server's run measured.
struct Fanout {
    receivers: usize,
    connect_secs: f64,
    deliveries_per_sec: f64,
    messages_per_sec: f64,
    latencies: Vec<u32>,
    paced_messages: u64,
    closed: u64,
    frame_bytes: usize,
    /// Send-to-ack latencies of the paced posts (chat server only), sorted.
    acks: Vec<u32>,
}

struct Settings {
    clients: usize,
    rooms: usize,
    senders: usize,
    in_flight: usize,
    rate: f64,
    latency_secs: f64,
    saturated_secs: f64,
    bare_frame_bytes: usize,
}

/// Connects the receivers and senders to `addr`, runs the paced phase then the
/// saturated one, and disconnects.
async fn fanout(
    kind: Kind,
    addr: SocketAddr,
    conversations: &[(String, String)],
    s: &Settings,
) -> Fanout {
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(IDLE),
        deliveries: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        window: Arc::new(Semaphore::new(0)),
        frame_bytes: AtomicUsize::new(0),
        acks: std::sync::Mutex::new(Vec::new()),
    });
    let (stop, stopped) = watch::channel(false);
    let (phase_tx, phase_rx) = watch::channel(IDLE);
    let conversation = |room: usize| conversations.get(room).cloned();

    // Receivers: client i in room i % rooms; the first of each room is its probe.
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(128));
    let mut connecting = Vec::with_capacity(s.clients);
    for i in 0..s.clients {
        let room = i % s.rooms;
        let conv = conversation(room);
        let gate = gate.clone();
        connecting.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            connect(kind, addr, room, conv.as_ref(), source(i), true).await
        }));
    }
    let mut receivers = Vec::with_capacity(s.clients);
    let mut failed = 0usize;
    for (i, c) in connecting.into_iter().enumerate() {
        match c.await.expect("connect task") {
            Ok(ws) => receivers.push(tokio::spawn(receive(
                ws,
                i < s.rooms,
                shared.clone(),
                stopped.clone(),
            ))),
            Err(e) => {
                if failed == 0 {
                    eprintln!("{}: a client could not connect: {e}", kind.name());
                }
                failed += 1;
            }
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    if failed > 0 {
        eprintln!(
            "{}: {failed} of {} clients failed to connect",
            kind.name(),
            s.clients
        );
    }

    // Senders: sender j in room j % rooms, not counted as receivers.
    let mut commands = Vec::new();
    let mut senders = Vec::new();
    for j in 0..s.senders {
        let room = j % s.rooms;
        let conv = conversation(room);
        let ws = connect(kind, addr, room, conv.as_ref(), source(j), false)
            .await
            .expect("a sender connects");
        let (tx, rx) = mpsc::channel(64);
        commands.push(tx);
        senders.push(tokio::spawn(send_loop(
            ws,
            kind,
            j,
            conv.map(|c| c.0),
            s.bare_frame_bytes,
            shared.clone(),
            rx,
            phase_rx.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Paced: `rate` messages per second in all, round-robin over the rooms.
    shared.phase.store(PACED, Ordering::SeqCst);
    let _ = phase_tx.send(PACED);
    let total = (s.rate * s.latency_secs).round().max(1.0) as u64;
    let paced_start = tokio::time::Instant::now();
    for k in 0..total {
        tokio::time::sleep_until(paced_start + Duration::from_secs_f64(k as f64 / s.rate)).await;
        let _ = commands[(k as usize) % s.rooms.min(s.senders)].try_send(());
    }
    // Stragglers.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Saturated: a window of `in_flight` messages, reopened as each room's probe
    // receives one.
    shared.phase.store(SATURATED, Ordering::SeqCst);
    let _ = phase_tx.send(SATURATED);
    shared.window.add_permits(s.in_flight);
    tokio::time::sleep(Duration::from_secs(1)).await; // warm-up
    let d0 = shared.deliveries.load(Ordering::SeqCst);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(s.saturated_secs)).await;
    let d1 = shared.deliveries.load(Ordering::SeqCst);
    let secs = t0.elapsed().as_secs_f64();

    shared.phase.store(STOP, Ordering::SeqCst);
    let _ = phase_tx.send(STOP);
    drop(commands);
    let _ = stop.send(true);
    let mut latencies = Vec::new();
    for r in &mut receivers {
        if let Ok(Ok(mut l)) = tokio::time::timeout(Duration::from_secs(10), r).await {
            latencies.append(&mut l);
        }
    }
    for t in &mut senders {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    latencies.sort_unstable();
    let mut acks = std::mem::take(&mut *shared.acks.lock().expect("acks"));
    acks.sort_unstable();
    let per_room = (receivers.len() as f64 / s.rooms as f64).max(1.0);
    let deliveries_per_sec = (d1 - d0) as f64 / secs;
    Fanout {
        receivers: receivers.len(),
        connect_secs,
        deliveries_per_sec,
        messages_per_sec: deliveries_per_sec / per_room,
        latencies,
        paced_messages: total,
        closed: shared.closed.load(Ordering::SeqCst),
        frame_bytes: shared.frame_bytes.load(Ordering::SeqCst),
        acks,
    }
}

fn print_fanout(name: &str, f: &Fanout) {
    println!(
        "{name:<14} {:>5} receivers (connected in {:.1}s), frame {} B: saturated {:>9.0} deliveries/s ({:.0} msgs/s); paced: {} msgs, {} samples, p50 {}, p99 {}, max {}; server-closed receivers: {}",
        f.receivers,
        f.connect_secs,
        f.frame_bytes,
        f.deliveries_per_sec,
        f.messages_per_sec,
        f.paced_messages,
        f.latencies.len(),
        ms(quantile(&f.latencies, 0.5)),
        ms(quantile(&f.latencies, 0.99)),
        ms(f.latencies.last().copied().unwrap_or(0)),
        f.closed,
    );
    if !f.acks.is_empty() {
        // What of the delivery latency is the post's own (its commit), before fan-out.
        println!(
            "{name:<14} paced posts' send-to-ack: {} acks, p50 {}, p99 {}, max {}",
            f.acks.len(),
            ms(quantile(&f.acks, 0.5)),
            ms(quantile(&f.acks, 0.99)),
            ms(f.acks.last().copied().unwrap_or(0)),
        );
    }
}

// ---------------------------------------------------------------------------------------
// RSS per idle WebSocket: the server in a child process (this binary with WS_SERVE set).

/// Child mode: serve until stdin closes (15 minutes at most).
fn serve_child(kind: &str) {
    let rooms: usize = env_or("WS_CONVERSATIONS", 10usize).max(1);
    let rt = common::server_runtime();
    rt.block_on(async {
        let (stop, stopped) = watch::channel(false);
        let chat = if kind == "chat" {
            let server = common::ChatServer::start(0).await;
            println!("LISTEN {}", server.addr);
            Some(server)
        } else {
            let listener = common::listen(0).expect("bind");
            println!("LISTEN {}", listener.local_addr().expect("address"));
            tokio::spawn(serve_bare(listener, rooms, stopped));
            None
        };
        // Lines on stdin ask for the store's read counts (`reads`); its end stops the
        // server.
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let _ = tokio::time::timeout(Duration::from_secs(900), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == "reads" {
                    let counts = chat
                        .as_ref()
                        .and_then(|c| c.sqlite.as_ref())
                        .map(|s| s.read_counts())
                        .unwrap_or_default();
                    println!("READS {} {}", counts.in_place, counts.pooled);
                }
            }
        })
        .await;
        let _ = stop.send(true);
        if let Some(server) = chat {
            server.stop().await;
        }
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}

/// A number from `/proc/<pid>/status` (`VmRSS:` is in KiB).
fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn vm_rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// The soft limit on open files of this process.
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

struct Rss {
    sockets: usize,
    before_kib: u64,
    after_kib: u64,
    /// The server's threads once the sockets are open (each has a stack and may have a
    /// malloc arena of its own).
    threads: u64,
    connect_secs: f64,
    /// The chat server's store reads while the sockets opened and subscribed: in place,
    /// on the blocking pool.
    reads: (u64, u64),
    /// VmRSS and threads again once tokio's idle blocking threads have exited (their
    /// keep-alive is 10 s): what stays after the burst.
    later_kib: u64,
    later_threads: u64,
}

impl Rss {
    fn per_socket_bytes(&self) -> f64 {
        (self.after_kib.saturating_sub(self.before_kib) * 1024) as f64 / self.sockets.max(1) as f64
    }

    fn later_per_socket_bytes(&self) -> f64 {
        (self.later_kib.saturating_sub(self.before_kib) * 1024) as f64 / self.sockets.max(1) as f64
    }
}

fn idle_rss(
    kind: Kind,
    sockets: usize,
    rooms: usize,
    client_rt: &tokio::runtime::Runtime,
) -> Option<Rss> {
    use std::io::BufRead;
    let exe = std::env::current_exe().ok()?;
    // `WS_SERVER_WRAPPER` (e.g. `heaptrack -o /tmp/ws`) runs the child server under a
    // profiler to see where its memory goes; the RSS figures are then the wrapper's.
    let wrapper = std::env::var("WS_SERVER_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = std::process::Command::new(program);
            c.args(words).arg(exe);
            c
        }
        None => std::process::Command::new(exe),
    };
    let mut child = command
        .arg("--bench")
        .env("WS_SERVE", kind.name())
        .env("WS_CONVERSATIONS", rooms.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let pid = child.id();
    let mut line = String::new();
    let mut stdin = child.stdin.take()?;
    let mut out = std::io::BufReader::new(child.stdout.take()?);
    // The child's store reads so far (0 for the bare server).
    let mut reads = move |out: &mut std::io::BufReader<std::process::ChildStdout>| {
        use std::io::Write;
        stdin.write_all(b"reads\n").ok()?;
        stdin.flush().ok()?;
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some(counts) = line.trim().strip_prefix("READS ") {
                let mut n = counts.split(' ').filter_map(|n| n.parse::<u64>().ok());
                return Some((n.next()?, n.next()?));
            }
        }
    };
    let addr: Option<SocketAddr> = loop {
        line.clear();
        if out.read_line(&mut line).ok()? == 0 {
            break None;
        }
        if let Some(a) = line.trim().strip_prefix("LISTEN ") {
            break a.parse().ok();
        }
    };
    let result = addr.and_then(|addr| {
        client_rt.block_on(async {
            let conversations = if kind == Kind::Chat {
                common::open_conversations(addr, rooms, 4).await
            } else {
                Vec::new()
            };
            // One connection first, so per-tenant and per-room state exists before
            // the "before" figure.
            let (stop, stopped) = watch::channel(false);
            let shared = Arc::new(Shared {
                phase: AtomicU8::new(IDLE),
                deliveries: AtomicU64::new(0),
                closed: AtomicU64::new(0),
                window: Arc::new(Semaphore::new(0)),
                frame_bytes: AtomicUsize::new(0),
                acks: std::sync::Mutex::new(Vec::new()),
            });
            let first = connect(kind, addr, 0, conversations.first(), source(0), true)
                .await
                .ok()?;
            let mut idle = vec![tokio::spawn(receive(
                first,
                false,
                shared.clone(),
                stopped.clone(),
            ))];
            tokio::time::sleep(Duration::from_millis(500)).await;
            let reads_before = reads(&mut out).unwrap_or_default();
            let before_kib = vm_rss_kib(pid);
            let started = Instant::now();
            let gate = Arc::new(Semaphore::new(256));
            let mut connecting = Vec::with_capacity(sockets);
            for i in 0..sockets {
                let room = i % rooms;
                let conv = conversations.get(room).cloned();
                let gate = gate.clone();
                connecting.push(tokio::spawn(async move {
                    let _permit = gate.acquire().await;
                    connect(kind, addr, room, conv.as_ref(), source(i + 1), true).await
                }));
            }
            let mut failed = 0;
            for c in connecting {
                match c.await {
                    Ok(Ok(ws)) => idle.push(tokio::spawn(receive(
                        ws,
                        false,
                        shared.clone(),
                        stopped.clone(),
                    ))),
                    Ok(Err(e)) => {
                        if failed == 0 {
                            eprintln!("{}: idle socket failed: {e}", kind.name());
                        }
                        failed += 1;
                    }
                    Err(_) => failed += 1,
                }
            }
            let connect_secs = started.elapsed().as_secs_f64();
            let reads_after = reads(&mut out).unwrap_or_default();
            // Let the server settle (allocator, tasks parked).
            tokio::time::sleep(Duration::from_secs(2)).await;
            let after_kib = vm_rss_kib(pid);
            let threads = proc_status(pid, "Threads:");
            // Tokio ends a blocking thread after 10 s without work: measured again past
            // that, what the threads of the burst leave behind (arenas, cached stacks).
            tokio::time::sleep(Duration::from_secs(11)).await;
            let later_kib = vm_rss_kib(pid);
            let later_threads = proc_status(pid, "Threads:");
            shared.phase.store(STOP, Ordering::SeqCst);
            let _ = stop.send(true);
            for t in idle {
                let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
            }
            if failed > 0 {
                eprintln!("{}: {failed} idle sockets failed to open", kind.name());
            }
            Some(Rss {
                sockets: sockets - failed,
                before_kib,
                after_kib,
                threads,
                connect_secs,
                reads: (
                    reads_after.0.saturating_sub(reads_before.0),
                    reads_after.1.saturating_sub(reads_before.1),
                ),
                later_kib,
                later_threads,
            })
        })
    });
    // Closing its stdin stops the child.
    drop(reads);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    result
}

fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(f64::MIN_POSITIVE)
}

fn main() {
    if let Ok(kind) = std::env::var("WS_SERVE") {
        serve_child(&kind);
        return;
    }
    if !common::invoked_by_cargo_bench() {
        println!(
            "ws_fanout is a load generator: run it with `cargo bench -p chat-server --bench ws_fanout`"
        );
        return;
    }
    let fd_limit = open_files_limit();
    let mut settings = Settings {
        clients: env_or("WS_CLIENTS", 1000usize).max(1),
        rooms: env_or("WS_CONVERSATIONS", 10usize).max(1),
        senders: env_or("WS_SENDERS", 16usize),
        in_flight: env_or("WS_IN_FLIGHT", 16usize).max(1),
        rate: env_or("WS_RATE", 10.0f64).clamp(0.1, 10_000.0),
        latency_secs: env_or("WS_LATENCY_SECS", 30.0f64).clamp(1.0, 300.0),
        saturated_secs: env_or("WS_SATURATED_SECS", 5.0f64).clamp(1.0, 300.0),
        bare_frame_bytes: env_or("WS_BARE_FRAME_BYTES", 560usize),
    };
    settings.senders = settings.senders.max(settings.rooms);
    let mut idle_sockets: usize = env_or("WS_IDLE_SOCKETS", 10_000usize);
    // Both ends of every in-process connection are in this process.
    let in_process = 2 * (settings.clients + settings.senders) + 200;
    if in_process > fd_limit {
        let fit = (fd_limit.saturating_sub(200) / 2)
            .saturating_sub(settings.senders)
            .max(1);
        println!(
            "open-file limit {fd_limit} is too low for {} clients in one process; using {fit} (raise `ulimit -n`)",
            settings.clients
        );
        settings.clients = fit;
    }
    // The idle-socket server is a child process: each side holds one end.
    if idle_sockets + 200 > fd_limit {
        let fit = fd_limit.saturating_sub(200);
        println!(
            "open-file limit {fd_limit} is too low for {idle_sockets} idle sockets; using {fit} (raise `ulimit -n`)"
        );
        idle_sockets = fit;
    }
    println!("# ws_fanout");
    println!("machine: {}", common::machine());
    println!("chat-server backend: {}", common::backend_name());
    println!("load average at start: {}", common::loadavg());
    println!(
        "{} receiving WebSockets over {} conversations ({} per conversation), {} sender sockets; \
         paced {} msgs/s for {}s; saturated: {} messages in flight for {}s after 1s warm-up; \
         server and clients each on a 2-worker tokio runtime in this process, the server's blocking pool at most {} threads (the binary's bound); open-file limit {fd_limit}",
        settings.clients,
        settings.rooms,
        settings.clients / settings.rooms,
        settings.senders,
        settings.rate,
        settings.latency_secs,
        settings.in_flight,
        settings.saturated_secs,
        env_or(
            "CHAT_MAX_BLOCKING_THREADS",
            chat_server::runtime::DEFAULT_MAX_BLOCKING_THREADS
        ),
    );

    let server_rt = common::server_runtime();
    let client_rt = common::runtime(2, "clients");

    // `WS_ONLY=rss` measures only the idle sockets (the figure that moves with per-socket
    // state), without the minute of fan-out before it.
    let only_rss = std::env::var("WS_ONLY").is_ok_and(|v| v == "rss");
    if !only_rss {
        // Bare broadcast server.
        let (stop_bare, bare_stopped) = watch::channel(false);
        let bare_addr = server_rt.block_on(async {
            let listener = common::listen(0).expect("bind");
            let addr = listener.local_addr().expect("address");
            tokio::spawn(serve_bare(listener, settings.rooms, bare_stopped));
            addr
        });
        let bare = client_rt.block_on(fanout(Kind::Bare, bare_addr, &[], &settings));
        let _ = stop_bare.send(true);
        print_fanout("bare", &bare);

        // The real server.
        let chat = server_rt.block_on(common::ChatServer::start(0));
        let conversations =
            client_rt.block_on(common::open_conversations(chat.addr, settings.rooms, 4));
        let real = client_rt.block_on(fanout(Kind::Chat, chat.addr, &conversations, &settings));
        print_fanout("chat-server", &real);
        server_rt.block_on(chat.stop());

        let fanout = ratio(real.deliveries_per_sec, bare.deliveries_per_sec);
        println!(
            "fan-out ratio chat/bare: {fanout:.2}x deliveries/s (target >= 0.8x: {})",
            met(fanout >= 0.8)
        );
        let p99 = ratio(
            f64::from(quantile(&real.latencies, 0.99)),
            f64::from(quantile(&bare.latencies, 0.99)),
        );
        println!(
            "latency ratio chat/bare at {} msgs/s: p50 {:.2}x, p99 {p99:.2}x (target p99 <= 1.5x: {})",
            settings.rate,
            ratio(
                f64::from(quantile(&real.latencies, 0.5)),
                f64::from(quantile(&bare.latencies, 0.5))
            ),
            met(p99 <= 1.5),
        );
    }

    if idle_sockets > 0 {
        for kind in [Kind::Bare, Kind::Chat] {
            match idle_rss(kind, idle_sockets, settings.rooms, &client_rt) {
                Some(r) => {
                    println!(
                        "idle RSS {:<5}: {} idle WebSockets (opened in {:.1}s, subscribed): server VmRSS {} KiB -> {} KiB = {:.0} bytes ({:.1} KiB) per socket, {} threads{}",
                        kind.name(),
                        r.sockets,
                        r.connect_secs,
                        r.before_kib,
                        r.after_kib,
                        r.per_socket_bytes(),
                        r.per_socket_bytes() / 1024.0,
                        r.threads,
                        if kind == Kind::Chat {
                            if r.per_socket_bytes() <= 4096.0 {
                                " (target <= 4 KiB: met)"
                            } else {
                                " (target <= 4 KiB: NOT met)"
                            }
                        } else {
                            ""
                        }
                    );
                    println!(
                        "idle RSS {:<5}: 11 s later (idle blocking threads gone): VmRSS {} KiB = {:.0} bytes ({:.1} KiB) per socket, {} threads; store reads while the sockets opened: {} in place, {} on the blocking pool",
                        kind.name(),
                        r.later_kib,
                        r.later_per_socket_bytes(),
                        r.later_per_socket_bytes() / 1024.0,
                        r.later_threads,
                        r.reads.0,
                        r.reads.1,
                    );
                }
                None => println!("idle RSS {}: the child server did not start", kind.name()),
            }
        }
    }
    println!("load average at end: {}", common::loadavg());
    client_rt.shutdown_timeout(Duration::from_secs(2));
    server_rt.shutdown_timeout(Duration::from_secs(2));
}

/// Whether a target is met, for the printed line.
fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "NOT met" }
}
