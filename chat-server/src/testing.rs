//! A real server on `127.0.0.1:0` and a plain HTTP client, for end-to-end tests of
//! embedders and templates (feature `testing`).
//!
//! ```no_run
//! # async fn demo(engine: chat_core::Engine, config: chat_server::Config) {
//! use chat_server::testing::TestServer;
//!
//! let server = TestServer::start(engine, config, None).await;
//! let health = server.get("/healthz", None).await;
//! assert_eq!(health.status, 200);
//! server.stop().await;
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use chat_core::Engine;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::{Config, Extension};

/// The server under test: the built-in API plus an optional extension, on a real listener.
/// Its HTTP calls are [`HttpClient`]'s.
pub struct TestServer {
    http: HttpClient,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl std::ops::Deref for TestServer {
    type Target = HttpClient;

    fn deref(&self) -> &HttpClient {
        &self.http
    }
}

/// A plain HTTP/1 client for one server.
pub struct HttpClient {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The server's address.
    pub addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The body as text (lossy).
    pub text: String,
    /// The body's bytes (files).
    pub bytes: Bytes,
}

impl Reply {
    /// The built-in API's error code (`error.code`), or `""` when the body has none: a
    /// plain `&str` so that a test can compare status and code in one `assert_eq!`.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestServer {
    /// Serves `engine` with `config` (and `extension` first, if any) until [`stop`](Self::stop).
    pub async fn start(
        engine: Engine,
        config: Config,
        extension: Option<Arc<dyn Extension>>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::run_with(
            listener,
            engine,
            config,
            extension,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            http: HttpClient::new(addr),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the server task does not panic")
                .expect("the server stops cleanly");
        }
    }
}

impl HttpClient {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `ws://127.0.0.1:<port><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Sends a request with these headers and body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("the server answers: {e}"))
    }

    /// Like [`send`](Self::send), but a connection that fails (refused, reset, closed
    /// before the whole answer) is an `Err` instead of a panic: for tests that kill the
    /// server while clients call it, where such a request's outcome is unknown.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Reply, String> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self
            .client
            .request(req.body(Full::new(body.into())).expect("a valid request"))
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the body broke off: {e}"))?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        })
    }

    /// Like [`send`](Self::send), as the bearer of `token` if given: for requests that
    /// need a caller but not a JSON body (malformed bytes, multipart, CORS preflights).
    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut all = headers.to_vec();
        if let Some(b) = &bearer {
            all.push(("authorization", b.as_str()));
        }
        self.send(method, path, &all, body).await
    }

    /// A JSON request, with a bearer token if given.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send_as(
            method,
            path,
            token,
            &[("content-type", "application/json")],
            body,
        )
        .await
    }

    /// Like [`json`](Self::json), except that a request without a body has no
    /// `Content-Type` either, as a client that sends nothing does: a route that needs a
    /// body then answers 415, not 400 for an empty JSON document, and one that takes an
    /// optional body is checked with none at all.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        match body {
            Some(body) => self.json(method, path, token, Some(body)).await,
            None => self.send_as(method, path, token, &[], Bytes::new()).await,
        }
    }

    /// `GET` as a browser's `fetch` or curl sends it: no body, so no `Content-Type`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.json(Method::POST, path, token, Some(body)).await
    }

    /// `PUT` with a JSON body.
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.json(Method::PUT, path, token, Some(body)).await
    }

    /// `PATCH` with a JSON body: the message-center and live-chat templates update chats
    /// and sessions with it, so their tests need it as often as [`post`](Self::post).
    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.json(Method::PATCH, path, token, Some(body)).await
    }

    /// `DELETE`.
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.json(Method::DELETE, path, token, None).await
    }
}

/// A `multipart/form-data` body with text fields and files `(field, file name, type,
/// bytes)`; returns the content type to send with it.
pub fn multipart(
    fields: &[(&str, &str)],
    files: &[(&str, &str, &str, &[u8])],
) -> (String, Vec<u8>) {
    let boundary = "chat-server-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (field, file_name, content_type, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A server or template binary run as an operator runs it: a real process on
/// `--listen 127.0.0.1:0`, with JSON logs (`CHAT_LOG_FORMAT=json`) from which it learns the
/// bound address. Its HTTP calls are [`HttpClient`]'s; everything it logs is kept so a
/// test can check that no secret was written.
///
/// ```no_run
/// # async fn demo(dir: &std::path::Path) {
/// use chat_server::testing::Process;
///
/// // In an integration test of the package that builds it:
/// // `env!("CARGO_BIN_EXE_<name>")`.
/// let program = "target/debug/chat-server";
/// let db = dir.join("chat.db");
/// let server = Process::start(program, ["--db".as_ref(), db.as_os_str()]);
/// assert_eq!(server.get("/healthz", None).await.status, 200);
/// assert!(server.terminate().success());
/// # }
/// ```
pub struct Process {
    http: HttpClient,
    child: std::process::Child,
    log: Arc<std::sync::Mutex<Vec<String>>>,
    /// Woken after each line kept, for [`Process::logged`].
    new_line: Arc<tokio::sync::Notify>,
}

impl std::ops::Deref for Process {
    type Target = HttpClient;

    fn deref(&self) -> &HttpClient {
        &self.http
    }
}

impl Process {
    /// Starts `program` with `--listen 127.0.0.1:0` and `args`, and waits (up to 60 s) for
    /// its log line with a message ending in "listening" and an `address` field.
    ///
    /// # Panics
    /// If the process cannot start, or exits or stays silent before listening (with
    /// what it logged).
    pub fn start<I, S>(program: impl AsRef<std::ffi::OsStr>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        Self::start_with_env(program, args, [] as [(&str, &str); 0])
    }

    /// [`start`](Self::start) with `env` added to the process's environment (for
    /// variables read before `main`, such as glibc's `MALLOC_ARENA_MAX`).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_with_env<I, S, E, K, V>(
        program: impl AsRef<std::ffi::OsStr>,
        args: I,
        env: E,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let mut child = Command::new(program)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env)
            .env("RUST_LOG", "info")
            .env("CHAT_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (found, address) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let kept = log.clone();
        let new_line = Arc::new(tokio::sync::Notify::new());
        let wake = new_line.clone();
        // Reads stderr to its end, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"]
                        .as_str()
                        .is_some_and(|m| m.ends_with("listening"))
                    && let Some(a) = v["fields"]["address"].as_str()
                    && let Ok(a) = a.parse::<SocketAddr>()
                {
                    let _ = found.send(a);
                }
                kept.lock().expect("the log lock").push(line);
                wake.notify_waiters();
            }
        });
        let addr = match address.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the process did not log its address; its log:\n{}",
                    log.lock().expect("the log lock").join("\n")
                );
            }
        };
        Self {
            http: HttpClient::new(addr),
            child,
            log,
            new_line,
        }
    }

    /// The process id (benches read its memory, files and threads from `/proc`).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("the log lock").clone()
    }

    /// Waits (up to 60 s) until the process logs a line whose message is `message`, and
    /// returns that line's fields. Wakes on each new line, never on a timer.
    ///
    /// # Panics
    /// If no such line comes within 60 s (with what it logged).
    pub async fn logged(&self, message: &str) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            // Registered before looking, so a line kept in between still wakes us.
            let mut next = std::pin::pin!(self.new_line.notified());
            next.as_mut().enable();
            let found = self.log().iter().find_map(|line| {
                let v: Value = serde_json::from_str(line).ok()?;
                (v["fields"]["message"] == message).then(|| v["fields"].clone())
            });
            if let Some(fields) = found {
                return fields;
            }
            if tokio::time::timeout_at(deadline, next).await.is_err() {
                panic!(
                    "no `{message}` logged within 60 s; the log:\n{}",
                    self.log().join("\n")
                );
            }
        }
    }

    /// Sends SIGTERM and waits up to 10 s for the process to exit.
    ///
    /// # Panics
    /// If it is still running after 10 s (it is then killed).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("waiting for the child") {
                return status;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("the process did not stop within 10 s of SIGTERM");
    }

    /// Kills the process with SIGKILL, as a crash or power cut would stop it.
    pub fn kill(mut self) {
        self.signal("-KILL");
        let _ = self.child.wait();
    }

    fn signal(&self, signal: &str) {
        // `kill(1)` rather than a libc binding: this is test code on Unix runners.
        std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A test that panics must not leave a server running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Process {
    /// Asserts that no line logged so far contains any of `secrets` (passwords, tokens).
    ///
    /// # Panics
    /// On the first line that does, naming the secret's position only.
    pub fn assert_no_secret_logged(&self, secrets: &[&str]) {
        for line in self.log() {
            for (i, secret) in secrets.iter().enumerate() {
                assert!(
                    secret.is_empty() || !line.contains(secret),
                    "secret #{i} appears in the log: {}",
                    line.replace(secret, "<secret>")
                );
            }
        }
    }
}

/// Reads the `demo-tokens.json` a template's `--demo` wrote beside `db`, checking that only
/// its owner may read it (the tokens are live credentials).
///
/// # Panics
/// If the file is missing, not JSON, or readable by others.
pub fn demo_tokens(db: &std::path::Path) -> Value {
    // Beside the database, as the starter kit writes it.
    let path = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."))
        .join("demo-tokens.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("demo-tokens.json exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "demo-tokens.json is owner-only");
    }
    serde_json::from_slice(&std::fs::read(&path).expect("demo-tokens.json is readable"))
        .expect("demo-tokens.json is JSON")
}

/// Every string under a `"token"` key, or a top-level string value, of a
/// `demo-tokens.json`: the bearer tokens it holds.
pub fn tokens_in(demo: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match v {
                        Value::String(s) if k == "token" => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Value::Object(map) = demo {
        for v in map.values() {
            if let Value::String(s) = v
                && s.matches('.').count() == 2
            {
                out.push(s.clone());
            }
        }
    }
    walk(demo, &mut out);
    out
}
