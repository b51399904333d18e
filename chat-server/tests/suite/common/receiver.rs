//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that keeps every request
//! it gets and answers with a status the test sets. Stopping it closes its listener and
//! every connection, so the server under test sees it down.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::Notify;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Checks `X-Chat-Signature` as a receiver following the README does: HMAC-SHA256 of
    /// `<t>.<body>` with the secret, compared in constant time, `t` within five minutes.
    pub fn signature_is_valid(&self, secret: &str) -> bool {
        let header = self.header("x-chat-signature");
        let mut t = None;
        let mut v1 = None;
        for part in header.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => t = value.parse::<i64>().ok(),
                Some(("v1", value)) => v1 = hex::decode(value).ok(),
                _ => {}
            }
        }
        let (Some(t), Some(v1)) = (t, v1) else {
            return false;
        };
        if (time::OffsetDateTime::now_utc().unix_timestamp() - t).abs() > 300 {
            return false;
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(&self.body);
        mac.verify_slice(&v1).is_ok()
    }
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Received>>,
    arrived: Notify,
    status: AtomicU16,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// A receiver on a free port, answering 200.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), Arc::default()).await
    }

    /// Starts again on the same address after [`stop`](Self::stop), keeping the requests
    /// seen before.
    pub async fn restart(&mut self) {
        let again = Self::start_on(self.addr, self.shared.clone()).await;
        self.task = again.task;
    }

    async fn start_on(addr: SocketAddr, shared: Arc<Shared>) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        shared.status.store(200, Ordering::SeqCst);
        let state = shared.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set: aborting the task drops them all.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let state = state.clone();
                        async move {
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes();
                            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            state.seen.lock().unwrap().push(Received {
                                headers,
                                body,
                                json,
                            });
                            state.arrived.notify_waiters();
                            let status = state.status.load(Ordering::SeqCst);
                            if status == 0 {
                                // `hang`: the request is in, no answer ever comes.
                                std::future::pending::<()>().await;
                            }
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            url: format!("http://{addr}/hooks/desk"),
            shared,
            task,
        }
    }

    /// The status every next request is answered with.
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Takes every next request in and never answers it (a receiver stuck mid-request).
    pub fn hang(&self) {
        self.shared.status.store(0, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Received> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits (up to 90 s) until `done` holds for the requests so far; wakes on each request.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let mut next = std::pin::pin!(self.shared.arrived.notified());
            next.as_mut().enable();
            let seen = self.seen();
            if done(&seen) {
                return seen;
            }
            if tokio::time::timeout_at(deadline, next).await.is_err() {
                panic!("{what}: not within 90 s; received {} requests", seen.len());
            }
        }
    }

    /// Closes the listener and every connection.
    pub async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}
