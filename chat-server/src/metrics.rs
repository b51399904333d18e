//! Prometheus metrics kept in atomics: no lock on the request path except the per-route
//! counter map, which is read-mostly.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// Open WebSocket connections.
    pub websockets: AtomicI64,
    /// Messages stored through the API.
    pub messages_posted: AtomicU64,
    /// Highest event sequence handed to WebSocket connections (any tenant).
    pub realtime_seq: AtomicU64,
}

/// Counts one open WebSocket until dropped (shutdown waits for the count to reach zero).
#[derive(Debug)]
pub struct OpenWebSocket<'a>(&'a Metrics);

impl Drop for OpenWebSocket<'_> {
    fn drop(&mut self) {
        self.0.websockets.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a WebSocket as open for as long as the guard lives. Extensions serving
    /// their own sockets hold one too, so graceful shutdown waits for them.
    pub fn websocket_opened(&self) -> OpenWebSocket<'_> {
        self.websockets.fetch_add(1, Ordering::Relaxed);
        OpenWebSocket(self)
    }

    /// Records one request.
    pub fn request(&self, route: &'static str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((route, status))
            .or_default() += 1;
        let seconds = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the queue length measured by the caller.
    pub fn render(&self, queue_length: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP chat_http_requests_total HTTP requests by route and status.\n# TYPE chat_http_requests_total counter\n");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "chat_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP chat_http_request_duration_seconds Request latency.\n# TYPE chat_http_request_duration_seconds histogram\n");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "chat_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "chat_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "chat_http_request_duration_seconds_sum {}",
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "chat_http_request_duration_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP chat_websockets_open Open WebSocket connections.\n# TYPE chat_websockets_open gauge\nchat_websockets_open {}",
            self.websockets.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP chat_messages_posted_total Messages stored through the API.\n# TYPE chat_messages_posted_total counter\nchat_messages_posted_total {}",
            self.messages_posted.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP chat_realtime_delivered_seq Highest event sequence handed to WebSocket connections.\n# TYPE chat_realtime_delivered_seq gauge\nchat_realtime_delivered_seq {}",
            self.realtime_seq.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP chat_queue_length Conversations waiting for an agent.\n# TYPE chat_queue_length gauge\nchat_queue_length {queue_length}"
        );
        out
    }
}
