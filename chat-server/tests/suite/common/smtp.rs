//! An SMTP receiver for tests: a real RFC 5321 server on 127.0.0.1 (EHLO/HELO, MAIL, RCPT,
//! DATA with dot-unstuffing, RSET, NOOP, QUIT) that keeps every message it accepts. It can
//! answer `451` to the next MAIL commands (a relay that is busy, to prove retries) and `550`
//! to recipients whose address holds `reject` (a mailbox that does not exist).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One message the receiver accepted.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent after DATA (dot-unstuffed, CRLF line ends).
    pub data: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    got: Mutex<Vec<Envelope>>,
    /// MAIL commands refused so far.
    refused: AtomicUsize,
    /// MAIL commands still to refuse with 451.
    refuse: AtomicUsize,
    /// Recipients refused with 550.
    rejected: AtomicUsize,
    changed: Notify,
}

pub struct SmtpReceiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = session(stream, &s).await;
                });
            }
        });
        Self { addr, shared, task }
    }

    /// The relay URL for `--smtp-url` (plain SMTP on loopback).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Answers the next `n` MAIL commands with `451 4.3.0` (try again later).
    pub fn refuse_next(&self, n: usize) {
        self.shared.refuse.store(n, Ordering::SeqCst);
    }

    /// MAIL commands refused so far.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Recipients refused with 550 so far.
    pub fn rejected(&self) -> usize {
        self.shared.rejected.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<Envelope> {
        self.shared.got.lock().unwrap().clone()
    }

    /// Waits until `ready` holds for the receiver (checked on every change), or panics
    /// after a minute.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let changed = self.shared.changed.notified();
            if ready(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("timed out waiting for {what}");
            }
        }
    }

    /// Waits for `n` messages and returns them.
    pub async fn wait_messages(&self, n: usize) -> Vec<Envelope> {
        self.wait_for(&format!("{n} messages"), |r| r.messages().len() >= n)
            .await;
        self.messages()
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(stream: tokio::net::TcpStream, s: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-test.local\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 test.local\r\n",
            "MAIL" => {
                let refuse = s
                    .refuse
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refuse {
                    s.refused.fetch_add(1, Ordering::SeqCst);
                    s.changed.notify_waiters();
                    b"451 4.3.0 Mail server temporarily busy, try again later\r\n"
                } else {
                    from = address(&command);
                    to.clear();
                    b"250 2.1.0 OK\r\n"
                }
            }
            "RCPT" => {
                let rcpt = address(&command);
                if rcpt.contains("reject") {
                    s.rejected.fetch_add(1, Ordering::SeqCst);
                    s.changed.notify_waiters();
                    b"550 5.1.1 No such mailbox\r\n"
                } else {
                    to.push(rcpt);
                    b"250 2.1.5 OK\r\n"
                }
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if lines.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" || raw == b".\n" {
                        break;
                    }
                    // RFC 5321 4.5.2: a leading dot was doubled by the sender.
                    let raw = if raw.starts_with(b"..") {
                        &raw[1..]
                    } else {
                        &raw[..]
                    };
                    data.extend_from_slice(raw);
                }
                s.got.lock().unwrap().push(Envelope {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                s.changed.notify_waiters();
                b"250 2.0.0 OK queued\r\n"
            }
            "RSET" => {
                to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognized\r\n",
        };
        write.write_all(answer).await?;
    }
}

/// The address in `MAIL FROM:<a@b> …` or `RCPT TO:<a@b>`.
fn address(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command[start..]
        .find('>')
        .map_or(command.len(), |i| start + i);
    command[start..end].to_owned()
}
