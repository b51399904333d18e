//! Slow clients and socket floods over a real listener: raw TCP clients that stop sending
//! a body, one address opening connection after connection, and more WebSockets than
//! the caps allow. Every client here is on loopback; "another address" is 127.0.0.2,
//! which Linux routes to the same listener.

use crate::common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use hyper::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const LOCAL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// How long a test waits for what it expects before it fails: long against the
/// sub-second deadlines configured below, so a slow machine does not fail them.
const PATIENCE: Duration = Duration::from_secs(10);

/// A TCP connection to `server` from the address `from`.
async fn connect_from(server: SocketAddr, from: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server).await.unwrap()
}

/// Everything the server sends until it closes the connection, or `None` if it is still
/// open (and silent) after `within`. A reset counts as closed.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    };
    timeout(within, read).await.ok()?;
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// `GET /healthz` on a new connection from `from`: the whole answer, or `None` if none
/// came within [`PATIENCE`].
async fn healthz_from(server: SocketAddr, from: Ipv4Addr) -> Option<String> {
    let mut stream = connect_from(server, from).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    until_closed(&mut stream, PATIENCE).await
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

#[tokio::test]
async fn slow_bodies_are_cut_off_at_the_body_deadline_and_healthz_gets_their_slots() {
    let s = common::start_with(|c| {
        c.limits.max_connections = 3;
        c.limits.body_read_timeout = Duration::from_millis(500);
        // Far beyond the test's patience: only the body deadline can free the slots.
        c.limits.header_read_timeout = Duration::from_secs(120);
        c.limits.keep_alive_idle = Duration::from_secs(120);
        c.limits.request_timeout = Duration::from_secs(120);
    })
    .await;
    // Every slot taken by a login whose body never comes.
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from(s.addr, LOCAL).await;
        stream
            .write_all(
                b"POST /v1/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"email\": ",
            )
            .await
            .unwrap();
        slow.push(stream);
    }
    // Queued behind them in the backlog; answered once the deadline frees a slot.
    let health = healthz_from(s.addr, LOCAL)
        .await
        .expect("/healthz answers once the slow bodies' deadline has passed");
    assert!(status_line(&health).contains("200"), "{health}");
    for stream in &mut slow {
        let answer = until_closed(stream, PATIENCE)
            .await
            .expect("the server closes a connection whose body stopped");
        assert!(status_line(&answer).contains("408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
    }
    s.stop().await;
}

/// Extension routes: `/own/echo` reads its body by itself, not through `http::collect`,
/// so only the whole-request deadline can stop a client that stops sending;
/// `/own/collect` reads it through `http::collect` and answers its length; `/own/big`
/// answers [`BIG`] bytes.
struct OwnBodyReader;

/// Far more than the kernel buffers between server and client hold.
const BIG: usize = 8 << 20;

#[async_trait::async_trait]
impl chat_server::Extension for OwnBodyReader {
    async fn handle(
        &self,
        _cx: &chat_server::Context,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> chat_server::Handled {
        if req.uri().path() == "/own/big" {
            return chat_server::Handled::Answered(
                "/own/big",
                chat_server::http::with_type(StatusCode::OK, vec![b'x'; BIG], "text/plain"),
            );
        }
        if req.uri().path() == "/own/collect" {
            let answer = match chat_server::http::collect(req.into_body(), 1 << 20).await {
                Ok(bytes) => chat_server::http::json(
                    StatusCode::OK,
                    &serde_json::json!({ "length": bytes.len() }),
                ),
                Err(e) => chat_server::http::error(&e),
            };
            return chat_server::Handled::Answered("/own/collect", answer);
        }
        if req.uri().path() != "/own/echo" {
            return chat_server::Handled::Declined(req);
        }
        let bytes = req.into_body().collect().await.map(|b| b.to_bytes());
        let status = if bytes.is_ok() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        chat_server::Handled::Answered(
            "/own/echo",
            chat_server::http::json(status, &serde_json::json!({})),
        )
    }
}

#[tokio::test]
async fn a_request_that_outlives_its_deadline_is_answered_503_and_closed() {
    let s = common::start_extended(
        |c| {
            c.limits.request_timeout = Duration::from_millis(500);
            c.limits.body_read_timeout = Duration::from_secs(120);
            c.limits.header_read_timeout = Duration::from_secs(120);
            c.limits.keep_alive_idle = Duration::from_secs(120);
        },
        |b| b,
        Some(std::sync::Arc::new(OwnBodyReader)),
    )
    .await;
    let mut stream = connect_from(s.addr, LOCAL).await;
    stream
        .write_all(b"POST /own/echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\nabc")
        .await
        .unwrap();
    let answer = until_closed(&mut stream, PATIENCE)
        .await
        .expect("the server closes a request past its deadline");
    assert!(status_line(&answer).contains("503"), "{answer}");
    assert!(answer.contains("deadline_exceeded"), "{answer}");
    s.stop().await;
}

/// Sends `chunks` chunks of `size` bytes to `/own/collect`, one every `every`, then
/// reads the answer; a write the server refused (it closed the connection) ends sending.
async fn paced_body(s: &common::Server, size: usize, chunks: usize, every: Duration) -> String {
    let mut stream = connect_from(s.addr, LOCAL).await;
    let head = format!(
        "POST /own/collect HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        size * chunks
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        for _ in 0..chunks {
            if writer.write_all(&vec![b'x'; size]).await.is_err() {
                return;
            }
            // The client's pace, not a wait for the server: the test is about its speed.
            tokio::time::sleep(every).await;
        }
        // Kept open: an answer must come from the server, not from our end closing.
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    let read = timeout(PATIENCE, reader.read_to_end(&mut answer)).await;
    sender.abort();
    if read.is_err() {
        panic!("no answer within {PATIENCE:?}");
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_that_keeps_coming_gets_through_and_one_that_trickles_is_cut_off() {
    let s = common::start_extended(
        |c| {
            c.limits.body_read_timeout = Duration::from_millis(300);
            c.limits.body_min_rate = 1000;
            // Later than the body's, so a trickle meets the body deadline first.
            c.limits.request_timeout = Duration::from_millis(600);
        },
        |b| b,
        Some(std::sync::Arc::new(OwnBodyReader)),
    )
    .await;
    // 1000 bytes every 200 ms: five times the minimum rate, for longer than the base
    // deadlines of the body and of the request.
    let steady = paced_body(&s, 1000, 6, Duration::from_millis(200)).await;
    assert!(status_line(&steady).contains("200"), "{steady}");
    assert!(steady.contains("\"length\":6000"), "{steady}");
    // 10 bytes every 100 ms: a tenth of the minimum rate.
    let trickle = paced_body(&s, 10, 1000, Duration::from_millis(100)).await;
    assert!(status_line(&trickle).contains("408"), "{trickle}");
    assert!(trickle.contains("request_timeout"), "{trickle}");
    s.stop().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_connection_slot() {
    let s = common::start_with(|c| {
        c.limits.max_connections = 10;
        c.limits.max_connections_per_ip = 2;
        // Idle connections stay open for the whole test: they are what holds the cap.
        c.limits.header_read_timeout = Duration::from_secs(120);
        c.limits.keep_alive_idle = Duration::from_secs(120);
    })
    .await;
    let mut held = vec![
        connect_from(s.addr, LOCAL).await,
        connect_from(s.addr, LOCAL).await,
    ];
    // The third from the same address is answered and closed at once, although 8 of
    // the 10 slots are free.
    let mut third = connect_from(s.addr, LOCAL).await;
    let refused = until_closed(&mut third, PATIENCE)
        .await
        .expect("the connection over the cap is closed at once");
    assert!(status_line(&refused).contains("429"), "{refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");

    // Another address is served meanwhile ...
    let health = healthz_from(s.addr, OTHER)
        .await
        .expect("another address is served");
    assert!(status_line(&health).contains("200"), "{health}");
    // ... and so are the connections that fit under the cap.
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut held[0], PATIENCE).await.unwrap();
    assert!(status_line(&answer).contains("200"), "{answer}");

    // Both places given back (one answered and closed, one dropped): the address gets in
    // again as soon as the server has seen them close.
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = healthz_from(s.addr, LOCAL).await.unwrap_or_default();
        if status_line(&answer).contains("200") {
            break;
        }
        assert!(status_line(&answer).contains("429"), "{answer}");
        assert!(Instant::now() < deadline, "the address never got back in");
        tokio::task::yield_now().await;
    }
    s.stop().await;
}

/// A WebSocket upgrade from `from` with `token`: the socket once its hello frame came,
/// or the refusal's status and JSON body.
async fn ws_from(
    server: SocketAddr,
    from: Ipv4Addr,
    token: &str,
) -> Result<Ws, (StatusCode, Value)> {
    let stream = connect_from(server, from).await;
    let mut req = format!("ws://{server}/v1/ws")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream)).await {
        Ok((mut ws, _)) => {
            let hello = timeout(PATIENCE, ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let hello: Value = serde_json::from_str(hello.to_text().unwrap()).unwrap();
            assert_eq!(hello["type"], "hello");
            Ok(ws)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            Err((
                response.status(),
                serde_json::from_slice(body).unwrap_or(Value::Null),
            ))
        }
        Err(e) => panic!("the upgrade neither succeeded nor was refused: {e}"),
    }
}

fn refusal(result: Result<Ws, (StatusCode, Value)>) -> (StatusCode, String) {
    match result {
        Ok(_) => panic!("an upgrade over the cap was accepted"),
        Err((status, body)) => (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        ),
    }
}

/// Closes `ws` and reads until the server has closed its side too.
async fn close(mut ws: Ws) {
    ws.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = timeout(PATIENCE, ws.next()).await {}
}

#[tokio::test]
async fn the_websocket_after_the_global_cap_is_refused_until_one_closes() {
    let s = common::start_with(|c| {
        c.limits.max_connections = 2;
        c.limits.max_websockets = 3;
        c.limits.max_websockets_per_ip = 0;
        c.limits.max_websockets_per_token = 0;
    })
    .await;
    let (_, visitor) = s.visitor("vic@example.com").await;
    // More sockets than HTTP slots: an upgraded socket leaves its slot behind.
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(ws_from(s.addr, LOCAL, &visitor).await.unwrap());
    }
    assert_eq!(
        refusal(ws_from(s.addr, LOCAL, &visitor).await),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_websockets".into()
        )
    );
    // The refusal is an ordinary answer: HTTP is still served.
    assert_eq!(s.get("/healthz", None).await.status, StatusCode::OK);

    close(open.pop().unwrap()).await;
    let deadline = Instant::now() + PATIENCE;
    let _again = loop {
        match ws_from(s.addr, LOCAL, &visitor).await {
            Ok(ws) => break ws,
            Err((status, _)) => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE),
        }
        assert!(
            Instant::now() < deadline,
            "the closed socket's place never came back"
        );
        tokio::task::yield_now().await;
    };
    s.stop().await;
}

#[tokio::test]
async fn websockets_are_capped_per_address_and_per_token() {
    let s = common::start_with(|c| {
        c.limits.max_websockets = 100;
        c.limits.max_websockets_per_ip = 2;
        c.limits.max_websockets_per_token = 1;
    })
    .await;
    let (_, first) = s.visitor("one@example.com").await;
    let (_, second) = s.visitor("two@example.com").await;
    let (_, third) = s.visitor("three@example.com").await;

    let _a = ws_from(s.addr, LOCAL, &first).await.unwrap();
    // The same token again, even from another address: over the token's cap.
    assert_eq!(
        refusal(ws_from(s.addr, OTHER, &first).await),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_websockets".into())
    );
    let b = ws_from(s.addr, LOCAL, &second).await.unwrap();
    // A fresh token from the same address: over the address's cap.
    assert_eq!(
        refusal(ws_from(s.addr, LOCAL, &third).await),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_websockets".into())
    );
    // That token from another address is fine.
    let c = ws_from(s.addr, OTHER, &third).await.unwrap();

    // Closing one gives its place back, for its address and for its token.
    close(b).await;
    let deadline = Instant::now() + PATIENCE;
    let _b = loop {
        match ws_from(s.addr, LOCAL, &second).await {
            Ok(ws) => break ws,
            Err((status, _)) => assert_eq!(status, StatusCode::TOO_MANY_REQUESTS),
        }
        assert!(
            Instant::now() < deadline,
            "the closed socket's place never came back"
        );
        tokio::task::yield_now().await;
    };
    drop(c);
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answer_loses_its_connection() {
    let s = common::start_extended(
        |c| {
            c.limits.max_connections = 1;
            c.limits.keep_alive_idle = Duration::from_millis(300);
            c.limits.socket_send_buffer = Some(16 * 1024);
        },
        |b| b,
        Some(std::sync::Arc::new(OwnBodyReader)),
    )
    .await;
    // A small receive buffer, like a stalled phone: the answer stops moving at once.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&s.addr.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut stalled = TcpStream::from_std(socket.into()).unwrap();
    stalled
        .write_all(b"GET /own/big HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    // The one slot is the stalled client's until the server gives up on it.
    let health = healthz_from(s.addr, LOCAL)
        .await
        .expect("/healthz answers once the stalled reader is dropped");
    assert!(status_line(&health).contains("200"), "{health}");
    let mut got = Vec::new();
    let _ = timeout(PATIENCE, stalled.read_to_end(&mut got)).await;
    assert!(
        got.len() < BIG,
        "the whole answer was sent: the client was not stalled"
    );
    s.stop().await;
}
