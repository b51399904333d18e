//! A write deadline under a WebSocket: a peer that stops reading must not hold its
//! connection (its task, its socket, its queued frames) forever.
//!
//! Without it, a send to a client whose TCP window stays shut waits forever, and while it
//! waits the connection's loop polls nothing else: not its heartbeat, not the outbox
//! overflow check, not even server shutdown.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a write may make no progress before the connection is given up, for sockets
/// accepted with [`accept`](super::accept).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// An I/O stream whose writes fail with `TimedOut` once they have made no progress for
/// the limit. Progress (any write or flush that completes) restarts the clock, so a slow
/// reader that keeps reading is served; one that stopped is not.
pub struct TimedWrites<T> {
    io: T,
    limit: Duration,
    /// Running while a write or flush is pending; boxed so an idle socket carries only a
    /// pointer.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> TimedWrites<T> {
    /// Wraps `io`; its writes give up after `limit` without progress.
    pub fn new(io: T, limit: Duration) -> Self {
        Self {
            io,
            limit,
            stalled: None,
        }
    }

    fn deadline<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.stalled = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the peer stopped reading",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedWrites<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedWrites<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.deadline(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.deadline(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_flush(cx);
        self.deadline(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_shutdown(cx);
        self.deadline(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_limit_and_one_that_is_read_does_not() {
        // A pipe with a 64-byte buffer stands in for a peer's shut TCP window.
        let (near, far) = tokio::io::duplex(64);
        let mut timed = TimedWrites::new(near, Duration::from_millis(100));
        let started = std::time::Instant::now();
        let stuck = timed.write_all(&[7u8; 4096]).await;
        assert_eq!(stuck.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));

        // A reader that keeps reading, more slowly than the limit in total but with
        // progress within it, is served in full.
        let (near, mut far2) = tokio::io::duplex(64);
        drop(far);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 64];
            while got < 4096 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                got += tokio::io::AsyncReadExt::read(&mut far2, &mut buf)
                    .await
                    .unwrap();
            }
            got
        });
        let mut timed = TimedWrites::new(near, Duration::from_millis(100));
        timed.write_all(&[7u8; 4096]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 4096);
    }
}
