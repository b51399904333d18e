//! Shared by the load generators: runtimes, the engine's backend, starting servers on
//! 127.0.0.1 and a small keep-alive HTTP/1.1 client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chat_core::{Engine, TenantId, TenantSettings};
use chat_server::Config;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;

/// HS256 secret of the bench servers.
pub const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret!";

/// `cargo bench` passes `--bench` to `harness = false` targets; anything else
/// (`cargo test --all-targets`, a stray run) must not start a minutes-long load test.
pub fn invoked_by_cargo_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// An environment setting or its default.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("{name}={v:?} is not valid; using the default");
            default
        }),
        Err(_) => default,
    }
}

/// A multi-threaded runtime with `threads` workers named after `name`.
pub fn runtime(threads: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The runtime a bench's chat server runs on: the binary's (`chat_server::runtime`, with
/// its bounded blocking pool, `CHAT_MAX_BLOCKING_THREADS` read as the binary reads it)
/// with 2 workers named `server`, one per core of the 2-core machine as the binary
/// would start. With tokio's defaults instead (a pool of up to 512), the threads that
/// in-place reads start while thousands of sockets open were the bench's, not the
/// binary's.
pub fn server_runtime() -> tokio::runtime::Runtime {
    chat_server::runtime::builder(env_or(
        "CHAT_MAX_BLOCKING_THREADS",
        chat_server::runtime::DEFAULT_MAX_BLOCKING_THREADS,
    ))
    .worker_threads(2)
    .thread_name("server")
    .build()
    .expect("a tokio runtime")
}

/// One line about the machine, for the figures.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} cores ({model}), loopback; load generator and server share the cores")
}

/// `/proc/loadavg`'s first three fields (the machine is shared: figures need it).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A listener on 127.0.0.1 with a deep backlog (the default 128 makes thousands of
/// simultaneous connects wait on SYN retries).
pub fn listen(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(4096)
}

/// Where a bench server keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `chat_core::memory::MemoryStore`: no persistence, the cost of the HTTP and engine
    /// layers alone.
    Memory,
    /// `SqliteStore` with `synchronous = FULL`, credentials included.
    Sqlite,
}

impl Backend {
    /// `BENCH_STORE=memory` or `BENCH_STORE=sqlite`; `None` when unset (benches that
    /// compare the two then run both).
    pub fn from_env() -> Option<Self> {
        match std::env::var("BENCH_STORE").ok()?.as_str() {
            "memory" => Some(Self::Memory),
            "sqlite" => Some(Self::Sqlite),
            other => {
                eprintln!("BENCH_STORE={other:?} is neither memory nor sqlite; using sqlite");
                Some(Self::Sqlite)
            }
        }
    }

    /// For the printed figures.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "MemoryStore (no persistence)",
            Self::Sqlite => "SqliteStore (synchronous = FULL), credentials included",
        }
    }
}

/// The engine a bench server runs on: `backend`, in a SQLite file in `dir` for
/// [`Backend::Sqlite`].
/// The SQLite store is returned too, to wait for its background work between runs.
pub fn engine_on(dir: &Path, backend: Backend) -> (Engine, Option<Arc<chat_sqlite::SqliteStore>>) {
    match backend {
        Backend::Memory => (
            Engine::builder_with_backend(Arc::new(chat_core::memory::MemoryStore::new())).build(),
            None,
        ),
        Backend::Sqlite => {
            // `BENCH_READS_IN_PLACE=0`: reads hop to the blocking pool instead of running
            // on the calling worker (`Options::reads_in_place`), to see what the threads
            // that in-place reads start cost an idle socket.
            let in_place = std::env::var("BENCH_READS_IN_PLACE").map_or(true, |v| v != "0");
            let options = chat_sqlite::Options::default().reads_in_place(in_place);
            let store = Arc::new(
                chat_sqlite::SqliteStore::open_with(dir.join("bench.db"), options)
                    .expect("open the SQLite store"),
            );
            (
                Engine::builder_with_backend(store.clone()).build(),
                Some(store),
            )
        }
    }
}

/// The engine the real server runs on: SQLite unless `BENCH_STORE=memory` (to tell the
/// cost of persistence from the cost of the HTTP and engine layers).
pub fn engine(dir: &Path) -> Engine {
    engine_on(dir, Backend::from_env().unwrap_or(Backend::Sqlite)).0
}

/// Which backend [`engine`] uses, for the printed figures.
pub fn backend_name() -> &'static str {
    Backend::from_env().unwrap_or(Backend::Sqlite).name()
}

/// The bench configuration: no rate limits and no per-address caps (one client IP sends
/// everything), room for many connections.
pub fn config(tenant: TenantId) -> Config {
    let mut config = Config::new(SECRET);
    config.default_tenant = Some(tenant);
    config.limits.per_ip_rps = 0.0;
    config.limits.per_token_rps = 0.0;
    config.limits.max_connections = 100_000;
    // Every bench client comes from 127.0.0.1, many sockets with one token.
    config.limits.max_connections_per_ip = 0;
    config.limits.max_websockets = 0;
    config.limits.max_websockets_per_ip = 0;
    config.limits.max_websockets_per_token = 0;
    config.realtime.frames_per_sec = 0.0;
    config
}

/// A real chat server running in the current runtime.
pub struct ChatServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its engine.
    pub engine: Engine,
    /// The one tenant.
    pub tenant: TenantId,
    /// Its SQLite store, if it has one.
    pub sqlite: Option<Arc<chat_sqlite::SqliteStore>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl ChatServer {
    /// Starts `chat_server::run` on 127.0.0.1:`port` (0: any) with one tenant whose bot
    /// is off (customer messages go straight to the queue, no bot replies).
    pub async fn start(port: u16) -> Self {
        Self::start_on(port, Backend::from_env().unwrap_or(Backend::Sqlite)).await
    }

    /// [`ChatServer::start`] on `backend`.
    pub async fn start_on(port: u16, backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (engine, sqlite) = engine_on(dir.path(), backend);
        let settings = TenantSettings {
            bot_enabled: false,
            ..TenantSettings::default()
        };
        let tenant = engine
            .create_tenant("Bench", settings)
            .await
            .expect("create the tenant")
            .id;
        let listener = listen(port).expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(chat_server::run(
            listener,
            engine.clone(),
            config(tenant),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            engine,
            tenant,
            sqlite,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stops it (open WebSockets are closed, requests drained) and waits, at most 30 s.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Http {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Http {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Self { addr, sender })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.addr.to_string());
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .expect("a valid request");
        self.sender.ready().await?;
        let response = self.sender.send_request(req).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// Opens a conversation as an anonymous visitor: (conversation id, visitor token).
    pub async fn open_conversation(&mut self, email: &str) -> (String, String) {
        let body = serde_json::json!({ "contact": { "name": "Bench visitor", "email": email } });
        let (status, bytes) = self
            .send(
                Method::POST,
                "/v1/conversations",
                None,
                Some(Bytes::from(body.to_string())),
            )
            .await
            .expect("POST /v1/conversations");
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let v: Value = serde_json::from_slice(&bytes).expect("JSON");
        (
            v["conversation"]["id"].as_str().expect("an id").to_owned(),
            v["visitor_token"].as_str().expect("a token").to_owned(),
        )
    }
}

/// Opens `n` conversations over `parallel` connections: (conversation id, visitor token).
pub async fn open_conversations(
    addr: SocketAddr,
    n: usize,
    parallel: usize,
) -> Vec<(String, String)> {
    let parallel = parallel.clamp(1, n.max(1));
    let mut tasks = Vec::new();
    for p in 0..parallel {
        tasks.push(tokio::spawn(async move {
            let mut http = Http::connect(addr).await.expect("connect");
            let mut out = Vec::new();
            for i in (p..n).step_by(parallel) {
                out.push((
                    i,
                    http.open_conversation(&format!("visitor{i}@bench.example"))
                        .await,
                ));
            }
            out
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("opening conversations"));
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, c)| c).collect()
}

/// The `q` quantile (0..=1) of sorted samples.
pub fn quantile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Microseconds as milliseconds with two decimals.
pub fn ms(micros: u32) -> String {
    format!("{:.2} ms", f64::from(micros) / 1000.0)
}
