//! The WebSocket protocol end to end, with real tokio-tungstenite clients.

use crate::common;

use std::time::Duration;

use chat_core::Role;
use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client whose kernel receive buffer is small, like a stalled phone on a slow link.
async fn connect_small(s: &common::Server, token: &str) -> Ws {
    let address = s.addr;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&address.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let stream = TcpStream::from_std(socket.into()).unwrap();
    let url = format!("ws://{address}/v1/ws");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    ws
}

async fn connect(s: &common::Server, token: &str) -> Ws {
    let url = s.ws_url("/v1/ws");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(Utf8Bytes::from(v.to_string())))
        .await
        .unwrap();
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Reads frames until one of `type` arrives, collecting every `event` frame on the way.
async fn until(ws: &mut Ws, kind: &str, events: &mut Vec<Value>) -> Value {
    loop {
        let frame = next_json(ws).await;
        if frame["type"] == kind {
            return frame;
        }
        if frame["type"] == "event" {
            events.push(frame);
        }
    }
}

/// Subscribes and waits for the answer; returns the events replayed before it.
async fn subscribe(ws: &mut Ws, conversation: Option<&str>, since: Option<u64>) -> Vec<Value> {
    send(
        ws,
        json!({ "type": "subscribe", "id": "s", "conversation_id": conversation, "since": since }),
    )
    .await;
    let mut replayed = Vec::new();
    let answer = until(ws, "subscribed", &mut replayed).await;
    assert_eq!(answer["id"], "s");
    replayed
}

/// Collects message bodies of `message_created` events until `n` arrived.
async fn bodies(ws: &mut Ws, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let frame = next_json(ws).await;
        if frame["type"] == "event" && frame["event"] == "message_created" {
            out.push(
                frame["data"]["message"]["body"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    out
}

async fn no_frame_like(ws: &mut Ws, needle: &str, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = frame {
            assert!(!t.contains(needle), "unexpected frame: {t}");
        }
    }
}

#[tokio::test]
async fn visitors_and_agents_see_one_ordered_conversation_and_notes_stay_with_staff() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let (id, visitor) = s.visitor("jo@x.example").await;
    s.post(
        &format!("/v1/conversations/{id}/assign"),
        Some(&admin.token),
        json!({ "agent_id": ann.id }),
    )
    .await;

    let mut phone = connect(&s, &visitor).await;
    let mut laptop = connect(&s, &visitor).await;
    let mut agent = connect(&s, &ann.token).await;
    let mut boss = connect(&s, &admin.token).await;
    for ws in [&mut phone, &mut laptop, &mut agent] {
        subscribe(ws, Some(&id), None).await;
    }
    subscribe(&mut boss, None, None).await; // the whole inbox

    // Messages from both sides, over WebSocket and over HTTP.
    let mut expected = Vec::new();
    for n in 0..6 {
        let body = format!("line {n}");
        if n % 2 == 0 {
            send(&mut phone, json!({ "type": "send_message", "id": format!("r{n}"), "conversation_id": id, "client_message_id": format!("c{n}"), "body": body })).await;
        } else {
            let r = s
                .post(
                    &format!("/v1/conversations/{id}/messages"),
                    Some(&ann.token),
                    json!({ "body": body }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
        expected.push(body);
        // Wait for our own copy so the order is the order of posting.
        let mut copy = bodies(&mut agent, 1).await;
        assert_eq!(copy.pop().unwrap(), format!("line {n}"));
    }
    assert_eq!(bodies(&mut laptop, 6).await, expected);
    let phone_bodies = {
        let mut out = Vec::new();
        let mut acks = 0;
        while out.len() < 6 || acks < 3 {
            let frame = next_json(&mut phone).await;
            match frame["type"].as_str().unwrap() {
                "ack" => {
                    acks += 1;
                    assert_eq!(frame["created"], true);
                    assert!(frame["message"]["seq"].as_u64().is_some());
                }
                "event" if frame["event"] == "message_created" => out.push(
                    frame["data"]["message"]["body"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ),
                _ => {}
            }
        }
        out
    };
    assert_eq!(phone_bodies, expected);
    // The inbox subscriber sees it too, in the same order.
    assert_eq!(bodies(&mut boss, 6).await, expected);

    // A note reaches staff, never the visitor.
    let note = s
        .post(
            &format!("/v1/conversations/{id}/notes"),
            Some(&ann.token),
            json!({ "body": "secret note" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);
    assert_eq!(bodies(&mut boss, 1).await, ["secret note"]);
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&ann.token),
        json!({ "body": "after the note" }),
    )
    .await;
    let next = bodies(&mut laptop, 1).await;
    assert_eq!(
        next,
        ["after the note"],
        "the note was skipped, the next message arrived"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_reconnects_with_its_cursor_gets_exactly_what_it_missed() {
    let s = common::start().await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let (id, visitor) = s.visitor("gone@x.example").await;
    let mut ws = connect(&s, &visitor).await;
    subscribe(&mut ws, Some(&id), None).await;
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&ann.token),
        json!({ "body": "before" }),
    )
    .await;
    let frame = loop {
        let f = next_json(&mut ws).await;
        if f["event"] == "message_created" && f["data"]["message"]["body"] == "before" {
            break f;
        }
    };
    let cursor = frame["seq"].as_u64().unwrap();
    ws.close(None).await.unwrap();

    for n in 0..5 {
        s.post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&ann.token),
            json!({ "body": format!("missed {n}") }),
        )
        .await;
    }
    let mut ws = connect(&s, &visitor).await;
    let replayed = subscribe(&mut ws, Some(&id), Some(cursor)).await;
    let replayed: Vec<&str> = replayed
        .iter()
        .filter(|f| f["event"] == "message_created")
        .map(|f| f["data"]["message"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        replayed,
        ["missed 0", "missed 1", "missed 2", "missed 3", "missed 4"]
    );
    // Live from there, no duplicate.
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&ann.token),
        json!({ "body": "live" }),
    )
    .await;
    assert_eq!(bodies(&mut ws, 1).await, ["live"]);
    s.stop().await;
}

/// A cursor from another database (a restore, a wiped server) is larger than this log's
/// head: the client is told to reload instead of being answered `subscribed` as if its
/// state matched.
#[tokio::test]
async fn a_cursor_beyond_the_head_is_told_to_resync() {
    let s = common::start().await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let (id, _visitor) = s.visitor("restored@x.example").await;
    let mut ws = connect(&s, &ann.token).await;
    send(
        &mut ws,
        json!({ "type": "subscribe", "id": "s", "conversation_id": id, "since": 1_000_000 }),
    )
    .await;
    let mut replayed = Vec::new();
    let resync = until(&mut ws, "resync_required", &mut replayed).await;
    assert!(replayed.is_empty(), "nothing replayed: {replayed:?}");
    assert_eq!(resync["reason"], "beyond_head");
    assert_eq!(resync["conversation_id"], id.as_str());
    let head = resync["cursor"].as_u64().unwrap();
    assert!(head > 0 && head < 1_000_000, "{resync}");
    let answer = until(&mut ws, "subscribed", &mut replayed).await;
    assert_eq!(answer["cursor"], head, "live from the head");
    // And live it is: the next event arrives.
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&ann.token),
        json!({ "body": "after the restore" }),
    )
    .await;
    // (An admin's reply first takes the conversation: "Assigned to Ann" comes before it.)
    while bodies(&mut ws, 1).await != ["after the restore"] {}
    // The inbox answers the same.
    send(
        &mut ws,
        json!({ "type": "subscribe", "id": "i", "since": 1_000_000 }),
    )
    .await;
    let resync = until(&mut ws, "resync_required", &mut replayed).await;
    assert_eq!(resync["reason"], "beyond_head");
    assert_eq!(resync["conversation_id"], Value::Null);
    // Polling clients are told the same over HTTP.
    let polled = s.get("/v1/events?since=1000000", Some(&ann.token)).await;
    assert_eq!(polled.status, StatusCode::OK);
    assert_eq!(polled.body["resync_required"], true, "{}", polled.body);
    assert!(polled.body["head"].as_u64().unwrap() >= head);
    let polled = s.get("/v1/events?since=0", Some(&ann.token)).await;
    assert_eq!(polled.body["resync_required"], false, "{}", polled.body);
    s.stop().await;
}

/// A cursor older than the log keeps (the event retention compacted its events away) is
/// told to resync, over the socket and over HTTP; one within the log is replayed.
#[tokio::test]
async fn a_cursor_older_than_the_retention_keeps_is_told_to_resync() {
    use std::sync::Arc;
    // The events are logged three hours before the clock's now at compaction.
    let now = time::OffsetDateTime::now_utc();
    let clock = Arc::new(chat_core::ManualClock::new(now - time::Duration::hours(3)));
    let s = common::start_full(
        |_| {},
        |b| {
            b.clock(clock.clone())
                .event_retention(chat_core::EventRetention {
                    keep_events: 3,
                    keep_for: time::Duration::hours(1),
                    enabled: true,
                })
        },
    )
    .await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let (id, _visitor) = s.visitor("old@x.example").await;
    for n in 0..4 {
        s.post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&ann.token),
            json!({ "body": format!("old {n}") }),
        )
        .await;
    }
    clock.set(now);
    let head = s
        .get("/v1/events?since=0&limit=1", Some(&ann.token))
        .await
        .body["head"]
        .as_u64()
        .unwrap();
    assert!(s.engine.compact_events(s.tenant).await.unwrap() > 0);

    let mut ws = connect(&s, &ann.token).await;
    send(
        &mut ws,
        json!({ "type": "subscribe", "id": "s", "conversation_id": id, "since": 1 }),
    )
    .await;
    let mut replayed = Vec::new();
    let resync = until(&mut ws, "resync_required", &mut replayed).await;
    assert!(replayed.is_empty(), "nothing replayed: {replayed:?}");
    assert_eq!(resync["reason"], "too_old");
    // (Going online over the socket logs an event of its own.)
    assert!(
        resync["cursor"].as_u64().unwrap() >= head,
        "reload, then go on from the head: {resync}"
    );
    let polled = s.get("/v1/events?since=1", Some(&ann.token)).await;
    assert_eq!(polled.status, StatusCode::OK);
    assert_eq!(polled.body["resync_required"], true, "{}", polled.body);
    let head = polled.body["head"].as_u64().unwrap();
    // The newest ones are kept: a cursor among them is served.
    let polled = s
        .get(&format!("/v1/events?since={}", head - 2), Some(&ann.token))
        .await;
    assert_eq!(polled.body["resync_required"], false, "{}", polled.body);
    assert_eq!(
        polled.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        polled.body
    );
    s.stop().await;
}

// Multi-threaded so the server keeps running while this client stops reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_and_resumes_from_its_cursor() {
    let s = common::start_with(|c| c.realtime.buffer = 16).await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let (id, visitor) = s.visitor("slow@x.example").await;
    let mut ws = connect_small(&s, &visitor).await;
    subscribe(&mut ws, Some(&id), None).await;
    // The client stops reading while a lot is posted (big messages fill the socket).
    let total = 300;
    let big = "x".repeat(9_000);
    // Posted through the engine (the same log the server follows) to keep the test quick.
    let staff = chat_core::Actor::Staff {
        tenant: s.tenant,
        agent: ann.id,
    };
    let conversation: chat_core::ConversationId = id.parse().unwrap();
    for n in 0..total {
        let text = chat_core::PostMessage::text(format!("{n} {big}"));
        s.engine
            .post_message(&staff, conversation, text)
            .await
            .unwrap();
    }
    // Wait until live delivery has handed every event out while this client was not
    // reading (the follower runs behind the commits).
    let head = s
        .get("/v1/events?since=0&limit=1000", Some(&ann.token))
        .await;
    let mut last = head.body["next_since"].as_u64().unwrap();
    loop {
        let more = s
            .get(
                &format!("/v1/events?since={last}&limit=1000"),
                Some(&ann.token),
            )
            .await;
        let next = more.body["next_since"].as_u64().unwrap();
        if next == last {
            break;
        }
        last = next;
    }
    for _ in 0..500 {
        let metrics = s.get("/metrics", Some(common::METRICS_TOKEN)).await.text;
        let delivered: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("chat_realtime_delivered_seq "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if delivered >= last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen: Vec<u64> = Vec::new();
    let mut cursor = 0;
    let code = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        let frame = frame.unwrap_or_else(|_| panic!("stalled after {} messages", seen.len()));
        match frame {
            Some(Ok(Message::Text(t))) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                if f["event"] == "message_created"
                    && f["data"]["message"]["sender"]["type"] == "agent"
                {
                    seen.push(
                        f["data"]["message"]["body"]
                            .as_str()
                            .unwrap()
                            .split(' ')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap(),
                    );
                    cursor = f["seq"].as_u64().unwrap();
                }
            }
            Some(Ok(Message::Close(Some(frame)))) => break frame.code,
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        code,
        CloseCode::Library(4008),
        "fell behind: closed with the documented code"
    );
    assert!(seen.len() < total, "it was cut off before the end");
    let mut ws = connect(&s, &visitor).await;
    let replayed = subscribe(&mut ws, Some(&id), Some(cursor)).await;
    // As live: the agent's numbered messages only. Cut off before its first one (on a
    // loaded machine), the client replays from 0, which also holds the takeover's system
    // message that the first post made.
    seen.extend(
        replayed
            .iter()
            .filter(|f| {
                f["event"] == "message_created" && f["data"]["message"]["sender"]["type"] == "agent"
            })
            .map(|f| {
                f["data"]["message"]["body"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            }),
    );
    assert_eq!(
        seen,
        (0..total as u64).collect::<Vec<_>>(),
        "every message exactly once, in order"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let s = common::start_with(|c| {
        c.realtime.write_timeout = Duration::from_millis(300);
        // Larger than what is posted: the outbox never overflows, so only the write
        // timeout can end this connection.
        c.realtime.buffer = 10_000;
    })
    .await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let (id, visitor) = s.visitor("stuck@x.example").await;
    let open = |metrics: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("chat_websockets_open "))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let mut stuck = connect_small(&s, &visitor).await;
    subscribe(&mut stuck, Some(&id), None).await;
    assert_eq!(
        open(&s.get("/metrics", Some(common::METRICS_TOKEN)).await.text),
        1
    );
    // Far more than the kernel buffers hold, and then the client never reads again.
    let staff = chat_core::Actor::Staff {
        tenant: s.tenant,
        agent: ann.id,
    };
    let conversation: chat_core::ConversationId = id.parse().unwrap();
    let big = "x".repeat(9_000);
    for n in 0..400 {
        let text = chat_core::PostMessage::text(format!("{n} {big}"));
        s.engine
            .post_message(&staff, conversation, text)
            .await
            .unwrap();
    }
    let mut dropped = false;
    for _ in 0..500 {
        if open(&s.get("/metrics", Some(common::METRICS_TOKEN)).await.text) == 0 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped, "the stalled connection was dropped");
    // What the client had received is still there to read, then the end of the stream;
    // it resumes from its cursor like any client cut off.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = stuck.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream ends");
    let mut again = connect(&s, &visitor).await;
    let replayed = subscribe(&mut again, Some(&id), Some(0)).await;
    let messages = replayed
        .iter()
        .filter(|f| f["event"] == "message_created")
        .count();
    assert!(messages >= 400, "everything is there to resume: {messages}");
    // Shutdown is not held up by anyone.
    tokio::time::timeout(Duration::from_secs(10), s.stop())
        .await
        .expect("the server stops");
}

#[tokio::test]
async fn typing_is_relayed_not_stored_and_bad_frames_keep_the_connection() {
    let s = common::start().await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let (id, visitor) = s.visitor("typist@x.example").await;
    let mut customer = connect(&s, &visitor).await;
    let mut agent = connect(&s, &ann.token).await;
    subscribe(&mut customer, Some(&id), None).await;
    subscribe(&mut agent, Some(&id), None).await;
    send(
        &mut customer,
        json!({ "type": "typing", "conversation_id": id }),
    )
    .await;
    let typing = next_json(&mut agent).await;
    assert_eq!(
        (typing["type"].as_str(), typing["sender"]["type"].as_str()),
        (Some("typing"), Some("customer"))
    );
    let log = s
        .get("/v1/events?since=0&limit=1000", Some(&ann.token))
        .await;
    assert!(!log.text.contains("typing"), "typing is never logged");

    customer
        .send(Message::Text(Utf8Bytes::from_static("{not json")))
        .await
        .unwrap();
    let error = next_json(&mut customer).await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("bad_frame"))
    );
    send(&mut customer, json!({ "type": "launch_rockets" })).await;
    assert_eq!(next_json(&mut customer).await["code"], "bad_frame");
    send(
        &mut customer,
        json!({ "type": "subscribe", "id": "x", "conversation_id": uuid::Uuid::now_v7() }),
    )
    .await;
    let refused = next_json(&mut customer).await;
    assert_eq!(
        (refused["code"].as_str(), refused["id"].as_str()),
        (Some("not_found"), Some("x"))
    );
    send(&mut customer, json!({ "type": "ping", "id": "p1" })).await;
    assert_eq!(
        next_json(&mut customer).await,
        json!({ "type": "pong", "id": "p1" }),
        "still connected"
    );
    s.stop().await;
}

#[tokio::test]
async fn sustained_abuse_closes_with_policy_violation() {
    let s = common::start().await;
    let (_, visitor) = s.visitor("abuse@x.example").await;
    let mut ws = connect(&s, &visitor).await;
    for _ in 0..40 {
        if ws
            .send(Message::Text(Utf8Bytes::from_static("garbage")))
            .await
            .is_err()
        {
            break;
        }
    }
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(frame)))) => break frame.code,
            Some(Ok(_)) => continue,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, CloseCode::Policy);
    s.stop().await;
}

#[tokio::test]
async fn browsers_pass_the_token_in_the_query_or_the_subprotocol() {
    let s = common::start().await;
    let (id, visitor) = s.visitor("browser@x.example").await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(s.ws_url(&format!("/v1/ws?access_token={visitor}")))
            .await
            .unwrap();
    assert_eq!(next_json(&mut ws).await["actor"]["kind"], "customer");
    let mut req = s.ws_url("/v1/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("chat.v1, {visitor}").parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    assert_eq!(
        next_json(&mut ws).await["actor"]["conversation"],
        id.as_str()
    );
    let refused = tokio_tungstenite::connect_async(s.ws_url("/v1/ws?access_token=vt_forged")).await;
    assert!(refused.is_err(), "a bad token gets no socket");
    let anonymous = tokio_tungstenite::connect_async(s.ws_url("/v1/ws")).await;
    assert!(anonymous.is_err());
    s.stop().await;
}

#[tokio::test]
async fn an_agent_transferred_away_stops_receiving_the_conversation() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let bob = s.staff("Bob", Role::Agent, &[]).await;
    let (id, visitor) = s.visitor("moved@x.example").await;
    s.post(
        &format!("/v1/conversations/{id}/assign"),
        Some(&admin.token),
        json!({ "agent_id": ann.id }),
    )
    .await;
    let mut ws = connect(&s, &ann.token).await;
    subscribe(&mut ws, None, None).await;
    let moved = s
        .post(
            &format!("/v1/conversations/{id}/transfer"),
            Some(&admin.token),
            json!({ "agent_id": bob.id }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    // Ann learns of the transfer itself...
    let mut events = Vec::new();
    loop {
        let f = next_json(&mut ws).await;
        if f["event"] == "conversation_updated" && f["data"]["change"]["change"] == "transferred" {
            break;
        }
        events.push(f);
    }
    // ...and then nothing more of it.
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&visitor),
        json!({ "body": "for bob only" }),
    )
    .await;
    no_frame_like(&mut ws, "for bob only", Duration::from_millis(700)).await;
    s.stop().await;
}

#[tokio::test]
async fn a_waiting_visitor_sees_its_queue_position_fall_live() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    s.call(
        hyper::Method::PATCH,
        &format!("/v1/agents/{}", ann.id),
        Some(&admin.token),
        Some(json!({ "capacity": 1 })),
    )
    .await;
    let (first, first_token) = s.visitor("q1@x.example").await;
    let (second, second_token) = s.visitor("q2@x.example").await;
    for (id, token) in [(&first, &first_token), (&second, &second_token)] {
        s.post(
            &format!("/v1/conversations/{id}/handoff"),
            Some(token),
            json!({}),
        )
        .await;
    }
    let place = s
        .get(
            &format!("/v1/conversations/{second}/queue"),
            Some(&second_token),
        )
        .await;
    assert_eq!(place.body["position"], 2);
    assert!(
        place.body["estimated_wait_secs"].is_null(),
        "nobody online yet"
    );
    let mut ws = connect(&s, &second_token).await;
    subscribe(&mut ws, Some(&second), None).await;
    // Ann comes online (capacity 1): the first is assigned, the second moves up.
    let r = s
        .call(
            hyper::Method::PUT,
            &format!("/v1/agents/{}/availability", ann.id),
            Some(&ann.token),
            Some(json!({ "availability": "online" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let frame = loop {
        let f = next_json(&mut ws).await;
        if f["type"] == "queue_position" && f["position"] == 1 {
            break f;
        }
    };
    assert_eq!(frame["conversation_id"], second.as_str());
    assert_eq!(
        frame["estimated_wait_secs"], 300,
        "one round of Ann's single slot"
    );
    let place = s
        .get(
            &format!("/v1/conversations/{second}/queue"),
            Some(&second_token),
        )
        .await;
    assert_eq!(place.body["position"], 1);
    let done = s
        .get(
            &format!("/v1/conversations/{first}/queue"),
            Some(&first_token),
        )
        .await;
    assert!(done.body["position"].is_null(), "the first is with Ann now");
    s.stop().await;
}

/// Reads text frames for `wait`.
async fn frames_for(ws: &mut Ws, wait: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Text(t) = frame {
            out.push(serde_json::from_str(&t).unwrap());
        }
    }
    out
}

/// Reads frames for `wait` and returns the `event` frames.
async fn events_for(ws: &mut Ws, wait: Duration) -> Vec<Value> {
    let mut frames = frames_for(ws, wait).await;
    frames.retain(|f| f["type"] == "event");
    frames
}

#[tokio::test]
async fn a_conversation_subscriber_gets_only_that_conversation_and_each_event_once() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let (a, visitor_a) = s.visitor("a@x.example").await;
    let (b, visitor_b) = s.visitor("b@x.example").await;
    // Only conversation A.
    let mut only_a = connect(&s, &admin.token).await;
    subscribe(&mut only_a, Some(&a), None).await;
    // Conversation A and the whole inbox: A's events must not come twice.
    let mut both = connect(&s, &admin.token).await;
    subscribe(&mut both, Some(&a), None).await;
    subscribe(&mut both, None, None).await;
    // Visitor B types and writes in B.
    let mut typist = connect(&s, &visitor_b).await;
    subscribe(&mut typist, Some(&b), None).await;
    send(
        &mut typist,
        json!({ "type": "typing", "conversation_id": b, "typing": true }),
    )
    .await;
    for n in 0..3 {
        let r = s
            .post(
                &format!("/v1/conversations/{b}/messages"),
                Some(&visitor_b),
                json!({ "body": format!("b{n}") }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = s
            .post(
                &format!("/v1/conversations/{a}/messages"),
                Some(&visitor_a),
                json!({ "body": format!("a{n}") }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // Everything arrives within the wait; nothing of B (events or typing), A's in order.
    let frames = frames_for(&mut only_a, Duration::from_millis(800)).await;
    assert!(
        frames.iter().all(|f| f["conversation_id"] != b.as_str()),
        "nothing of B: {frames:?}"
    );
    let seen: Vec<&Value> = frames.iter().filter(|f| f["type"] == "event").collect();
    assert!(
        seen.iter().all(|f| f["conversation_id"] == a.as_str()),
        "only A's events: {seen:?}"
    );
    let bodies: Vec<&str> = seen
        .iter()
        .filter(|f| {
            f["event"] == "message_created" && f["data"]["message"]["sender"]["type"] == "customer"
        })
        .map(|f| f["data"]["message"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["a0", "a1", "a2"]);
    // The inbox + A subscriber: B's and A's messages, each sequence once, in order.
    let seen = events_for(&mut both, Duration::from_millis(300)).await;
    let seqs: Vec<u64> = seen.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "increasing, no duplicate: {seqs:?}"
    );
    let bodies: Vec<&str> = seen
        .iter()
        .filter(|f| {
            f["event"] == "message_created" && f["data"]["message"]["sender"]["type"] == "customer"
        })
        .map(|f| f["data"]["message"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["b0", "a0", "b1", "a1", "b2", "a2"]);
    s.stop().await;
}

#[tokio::test]
async fn an_agent_subscribed_to_a_conversation_stops_receiving_it_when_transferred_away() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let bob = s.staff("Bob", Role::Agent, &[]).await;
    let (id, visitor) = s.visitor("moved2@x.example").await;
    s.post(
        &format!("/v1/conversations/{id}/assign"),
        Some(&admin.token),
        json!({ "agent_id": ann.id }),
    )
    .await;
    let mut ws = connect(&s, &ann.token).await;
    subscribe(&mut ws, Some(&id), None).await;
    let mut typist = connect(&s, &visitor).await;
    subscribe(&mut typist, Some(&id), None).await;
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&visitor),
        json!({ "body": "for ann" }),
    )
    .await;
    assert_eq!(bodies(&mut ws, 1).await, ["for ann"]);
    let moved = s
        .post(
            &format!("/v1/conversations/{id}/transfer"),
            Some(&admin.token),
            json!({ "agent_id": bob.id }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    loop {
        let f = next_json(&mut ws).await;
        if f["event"] == "conversation_updated" && f["data"]["change"]["change"] == "transferred" {
            break;
        }
    }
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&visitor),
        json!({ "body": "for bob only" }),
    )
    .await;
    send(
        &mut typist,
        json!({ "type": "typing", "conversation_id": id, "typing": true }),
    )
    .await;
    no_frame_like(&mut ws, "for bob only", Duration::from_millis(500)).await;
    no_frame_like(&mut ws, "\"typing\"", Duration::from_millis(300)).await;
    s.stop().await;
}

/// A bus that loses some events (a publisher cancelled between commit and publish) and
/// publishes others late, after the next one.
struct UnreliableBus {
    inner: chat_core::InProcessBus,
    published: std::sync::atomic::AtomicU64,
    held: std::sync::Mutex<Option<std::sync::Arc<chat_core::Event>>>,
}

impl chat_core::EventBus for UnreliableBus {
    fn publish(&self, event: std::sync::Arc<chat_core::Event>) {
        let n = self
            .published
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match n % 4 {
            1 => {} // lost
            2 => *self.held.lock().unwrap() = Some(event),
            3 => {
                self.inner.publish(event);
                if let Some(late) = self.held.lock().unwrap().take() {
                    self.inner.publish(late);
                }
            }
            _ => self.inner.publish(event),
        }
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<std::sync::Arc<chat_core::Event>> {
        self.inner.subscribe()
    }

    fn publish_ephemeral(&self, signal: std::sync::Arc<chat_core::Ephemeral>) {
        self.inner.publish_ephemeral(signal)
    }

    fn subscribe_ephemeral(
        &self,
    ) -> tokio::sync::broadcast::Receiver<std::sync::Arc<chat_core::Ephemeral>> {
        self.inner.subscribe_ephemeral()
    }
}

#[tokio::test]
async fn live_delivery_has_no_gap_and_no_duplicate_when_the_bus_loses_or_reorders_events() {
    let bus: std::sync::Arc<dyn chat_core::EventBus> = std::sync::Arc::new(UnreliableBus {
        inner: chat_core::InProcessBus::default(),
        published: Default::default(),
        held: Default::default(),
    });
    let s = common::start_full(|_| {}, |b| b.bus(bus)).await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let (id, visitor) = s.visitor("lossy@x.example").await;
    let mut ws = connect(&s, &visitor).await;
    subscribe(&mut ws, Some(&id), None).await;
    let total = 20;
    for n in 0..total {
        let r = s
            .post(
                &format!("/v1/conversations/{id}/messages"),
                Some(&admin.token),
                json!({ "body": format!("m{n}") }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // The last event may have been lost on the bus: the follower's periodic look at the
    // log (500 ms) still hands it out.
    let seen = events_for(&mut ws, Duration::from_millis(1500)).await;
    let seqs: Vec<u64> = seen.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicate: {seqs:?}"
    );
    let bodies: Vec<String> = seen
        .iter()
        .filter(|f| {
            f["event"] == "message_created" && f["data"]["message"]["sender"]["type"] == "agent"
        })
        .map(|f| f["data"]["message"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        bodies,
        (0..total).map(|n| format!("m{n}")).collect::<Vec<_>>(),
        "every message once, in order"
    );
    // A reconnect from the last cursor gets nothing more: nothing was skipped.
    let cursor = *seqs.last().unwrap();
    drop(ws);
    let mut again = connect(&s, &visitor).await;
    let replayed = subscribe(&mut again, Some(&id), Some(cursor)).await;
    assert!(replayed.is_empty(), "nothing missed: {replayed:?}");
    let _ = visitor;
    s.stop().await;
}
