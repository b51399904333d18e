//! Caps on what clients hold open: HTTP connections per address, and WebSockets in all,
//! per address and per token. A place is taken as a guard that gives it back when
//! dropped, so no path (an error, a panic, a client that goes away) can leak one.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};

use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::app::HttpLimits;
use crate::error::ApiError;

/// Counts per key; a key whose count falls to zero is removed, so the maps hold only the
/// addresses and tokens with something open.
struct Tally<K>(HashMap<K, usize>);

impl<K: Hash + Eq> Tally<K> {
    fn new() -> Self {
        Self(HashMap::new())
    }

    /// Whether one more fits under `cap` (0 = no cap).
    fn fits(&self, key: &K, cap: usize) -> bool {
        cap == 0 || self.0.get(key).copied().unwrap_or(0) < cap
    }

    fn add(&mut self, key: K) {
        *self.0.entry(key).or_default() += 1;
    }

    fn remove(&mut self, key: &K) {
        if let Some(n) = self.0.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(key);
            }
        }
    }
}

/// Open HTTP connections per client address.
pub(crate) struct Connections {
    cap: usize,
    open: Mutex<Tally<IpAddr>>,
}

/// One open HTTP connection's place; given back when dropped.
pub(crate) struct ConnectionPlace {
    owner: Arc<Connections>,
    ip: IpAddr,
}

impl Connections {
    /// At most `cap` connections per address (0 = no cap).
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            open: Mutex::new(Tally::new()),
        })
    }

    fn open(&self) -> MutexGuard<'_, Tally<IpAddr>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more connection from `ip`, or `None` when it holds its cap.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPlace> {
        let mut open = self.open();
        if !open.fits(&ip, self.cap) {
            return None;
        }
        open.add(ip);
        Some(ConnectionPlace {
            owner: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionPlace {
    fn drop(&mut self) {
        self.owner.open().remove(&self.ip);
    }
}

/// The raw answer to a connection over its address's cap: written once without waiting
/// (a fresh socket's send buffer is empty), then the socket is closed, so a client
/// flooding connections never holds up the accept loop.
pub(crate) fn too_many_connections() -> Vec<u8> {
    let body = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_connections",
        "this address has too many open connections",
    )
    .body();
    let mut answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

/// Open WebSockets: in all, per address and per token.
pub(crate) struct WebSockets {
    cap: usize,
    per_ip_cap: usize,
    per_token_cap: usize,
    open: Mutex<SocketTally>,
}

struct SocketTally {
    total: usize,
    per_ip: Tally<IpAddr>,
    per_token: Tally<TokenKey>,
}

/// A token as the per-token cap keeps it: the first 16 bytes of its SHA-256 (the 128
/// bits the 32-hex-digit prefix kept before), inline. Every open socket holds one, and a
/// `String` would be a heap block of its own per socket (48 bytes with malloc's header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey([u8; 16]);

impl TokenKey {
    /// The key of `token`; all sockets without a token share one key (`None`).
    pub(crate) fn of(token: Option<&str>) -> Self {
        use sha2::{Digest, Sha256};
        let mut key = [0u8; 16];
        if let Some(token) = token {
            key.copy_from_slice(&Sha256::digest(token.as_bytes())[..16]);
        }
        Self(key)
    }
}

/// One WebSocket's place under the caps; given back when dropped (when the socket's
/// stream is).
pub(crate) struct WebSocketPlace {
    owner: Arc<WebSockets>,
    ip: IpAddr,
    token: TokenKey,
}

impl WebSockets {
    pub(crate) fn new(limits: &HttpLimits) -> Arc<Self> {
        Arc::new(Self {
            cap: limits.max_websockets,
            per_ip_cap: limits.max_websockets_per_ip,
            per_token_cap: limits.max_websockets_per_token,
            open: Mutex::new(SocketTally {
                total: 0,
                per_ip: Tally::new(),
                per_token: Tally::new(),
            }),
        })
    }

    fn open(&self) -> MutexGuard<'_, SocketTally> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more WebSocket from `ip` with the token whose key is `token`,
    /// checked and taken under one lock so concurrent upgrades cannot overshoot a cap:
    /// 503 `too_many_websockets` when the server is full, 429 when the address or the
    /// token holds its cap.
    pub(crate) fn take(
        self: &Arc<Self>,
        ip: IpAddr,
        token: TokenKey,
    ) -> Result<WebSocketPlace, ApiError> {
        let mut open = self.open();
        if self.cap != 0 && open.total >= self.cap {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_websockets",
                "the server has as many WebSockets open as it takes; retry later",
            );
            e.retry_after = Some(5);
            return Err(e);
        }
        let over = if !open.per_ip.fits(&ip, self.per_ip_cap) {
            Some("this address")
        } else if !open.per_token.fits(&token, self.per_token_cap) {
            Some("this token")
        } else {
            None
        };
        if let Some(who) = over {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_websockets",
                format!("{who} has as many WebSockets open as it may; close one first"),
            ));
        }
        open.total += 1;
        open.per_ip.add(ip);
        open.per_token.add(token);
        Ok(WebSocketPlace {
            owner: self.clone(),
            ip,
            token,
        })
    }
}

impl Drop for WebSocketPlace {
    fn drop(&mut self) {
        let mut open = self.owner.open();
        open.total -= 1;
        open.per_ip.remove(&self.ip);
        open.per_token.remove(&self.token);
    }
}

/// A client's TCP stream, with the place under the WebSocket caps it takes if it
/// upgrades. hyper hands this very stream to the WebSocket's task at the upgrade, so the
/// place is given back exactly when the socket is dropped, however it ends, without the
/// realtime code knowing about caps.
///
/// It also notes when it last sent anything ([`Sent`]), so the accept loop can tell a
/// slow download that keeps going from a client that stopped reading.
pub(crate) struct Tracked {
    stream: TcpStream,
    marks: Arc<StreamMarks>,
}

impl Tracked {
    /// `stream`, keeping whatever place the connection's upgrade leaves in `marks` and
    /// noting its sends there.
    pub(crate) fn new(stream: TcpStream, marks: Arc<StreamMarks>) -> Self {
        Self { stream, marks }
    }
}

/// What a connection's stream shares with its accept loop (when it last sent) and with
/// its upgrade (the WebSocket place it takes). One allocation, not an `Arc` each: an
/// upgraded socket keeps it for its whole life, and every heap block an idle socket keeps
/// counts 10,000 times at 10,000 sockets.
pub(crate) struct StreamMarks {
    /// When the stream last got bytes out.
    pub(crate) sent: Sent,
    /// The place under the WebSocket caps, once the connection upgrades.
    pub(crate) upgraded: OnceLock<WebSocketPlace>,
}

impl StreamMarks {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            sent: Sent::new(),
            upgraded: OnceLock::new(),
        })
    }
}

/// When a connection last got bytes out to its client.
pub(crate) struct Sent {
    epoch: std::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
}

impl Sent {
    fn new() -> Self {
        Self {
            epoch: std::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn stamp(&self, sent: &Poll<std::io::Result<usize>>) {
        if matches!(sent, Poll::Ready(Ok(n)) if *n > 0) {
            self.last_ms
                .store(self.now_ms(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How long since the last byte went out (or since the connection opened).
    pub(crate) fn quiet_for(&self) -> std::time::Duration {
        let last = self.last_ms.load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_millis(self.now_ms().saturating_sub(last))
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let sent = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.marks.sent.stamp(&sent);
        sent
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let sent = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.marks.sent.stamp(&sent);
        sent
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_come_back_when_dropped_and_empty_keys_are_forgotten() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let connections = Connections::new(2);
        let first = connections.take(a).unwrap();
        let _second = connections.take(a).unwrap();
        assert!(connections.take(a).is_none(), "a third from one address");
        assert!(
            connections.take(b).is_some(),
            "another address is not held up"
        );
        drop(first);
        assert!(
            connections.take(a).is_some(),
            "a place given back is free again"
        );

        let limits = HttpLimits {
            max_websockets: 3,
            max_websockets_per_ip: 2,
            max_websockets_per_token: 1,
            ..HttpLimits::default()
        };
        let sockets = WebSockets::new(&limits);
        let one = sockets.take(a, TokenKey::of(Some("t1"))).unwrap();
        let token = sockets
            .take(a, TokenKey::of(Some("t1")))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            (token.status, token.code),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_websockets")
        );
        let _two = sockets.take(a, TokenKey::of(Some("t2"))).unwrap();
        let ip = sockets
            .take(a, TokenKey::of(Some("t3")))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(ip.status, StatusCode::TOO_MANY_REQUESTS);
        let _three = sockets.take(b, TokenKey::of(Some("t3"))).unwrap();
        let full = sockets
            .take(b, TokenKey::of(Some("t4")))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            (full.status, full.retry_after),
            (StatusCode::SERVICE_UNAVAILABLE, Some(5))
        );
        drop(one);
        assert!(sockets.take(b, TokenKey::of(Some("t1"))).is_ok());
        assert!(
            !sockets
                .open()
                .per_token
                .0
                .contains_key(&TokenKey::of(Some("t1"))),
            "dropped places leave no key behind"
        );
    }
}
