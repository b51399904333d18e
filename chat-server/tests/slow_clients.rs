//! Slow clients and socket floods over a real listener: raw TCP clients that stop sending
//! a body, one address opening connection after connection, and more WebSockets than
//! the caps allow. Every client here is on loopback; "another address" is 127.0.0.2,
//! which Linux routes to the same listener.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
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
