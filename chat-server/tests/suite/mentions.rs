//! Mentions over `/v1`: `@handle` in an internal note notifies that colleague alone (an
//! event and an unread count), brings it into the conversation, and reading clears the count.

use crate::common;

use chat_core::Role;
use hyper::StatusCode;
use serde_json::{Value, json};

async fn mentioned_events(server: &common::Server, token: &str) -> Vec<Value> {
    let events = server
        .get("/v1/events?since=0&limit=1000", Some(token))
        .await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text);
    events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["type"] == "mentioned")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_in_a_note_notifies_that_agent_alone_until_read() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &["billing"]).await;
    let bob = server.staff("Bob", Role::Agent, &["sales"]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;
    let assigned = server
        .post(
            &format!("/v1/conversations/{conversation}/assign"),
            Some(&admin.token),
            json!({ "agent_id": ann.id }),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    // Bob holds nothing of it yet.
    let before = server
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&bob.token),
        )
        .await;
    assert_eq!(before.status, StatusCode::NOT_FOUND);

    let note = server
        .post(
            &format!("/v1/conversations/{conversation}/notes"),
            Some(&ann.token),
            json!({ "body": "@BOB can you check the quote? @bob again, @nobody, mail jo@bob.example" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    let note_id = note.body["id"].as_str().unwrap();

    let bobs = server.get("/v1/mentions", Some(&bob.token)).await;
    assert_eq!(bobs.status, StatusCode::OK, "{}", bobs.text);
    assert_eq!(
        bobs.body["unread"], 1,
        "one note, one mention: {}",
        bobs.text
    );
    let mention = &bobs.body["items"][0];
    assert_eq!(mention["conversation_id"], json!(conversation));
    assert_eq!(mention["message_id"], json!(note_id));
    assert_eq!(mention["by"], json!(ann.id));
    assert_eq!(mention["read_at"], Value::Null);

    // Bob can follow the mention: he is a participant now.
    let opened = server
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&bob.token),
        )
        .await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text);

    // The event is Bob's alone: not the author's, not an admin's, never the customer's.
    let seen_by_bob = mentioned_events(&server, &bob.token).await;
    assert_eq!(seen_by_bob.len(), 1);
    assert_eq!(seen_by_bob[0]["payload"]["mention"], *mention);
    for token in [&ann.token, &admin.token, &visitor] {
        assert!(mentioned_events(&server, token).await.is_empty());
    }
    let anns = server.get("/v1/mentions", Some(&ann.token)).await;
    assert_eq!(anns.body["unread"], 0);

    let read = server
        .post("/v1/mentions/read", Some(&bob.token), json!({}))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["read"], 1);
    let after = server.get("/v1/mentions", Some(&bob.token)).await;
    assert_eq!(after.body["unread"], 0);
    assert!(after.body["items"][0]["read_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_are_the_email_local_part_or_the_name_and_customers_have_no_mentions() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let sue = server.staff("Sue", Role::Supervisor, &[]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;

    // Writing one's own handle mentions nobody; a customer message never mentions.
    server
        .post(
            &format!("/v1/conversations/{conversation}/notes"),
            Some(&admin.token),
            json!({ "body": "note to self @ada" }),
        )
        .await;
    server
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&visitor),
            json!({ "body": "hello @sue" }),
        )
        .await;
    assert_eq!(
        server.get("/v1/mentions", Some(&admin.token)).await.body["unread"],
        0
    );
    assert_eq!(
        server.get("/v1/mentions", Some(&sue.token)).await.body["unread"],
        0
    );

    // `sue` is both her name and her e-mail's local part (sue@acme.example).
    server
        .post(
            &format!("/v1/conversations/{conversation}/notes"),
            Some(&admin.token),
            json!({ "body": "(@Sue) please take over." }),
        )
        .await;
    assert_eq!(
        server.get("/v1/mentions", Some(&sue.token)).await.body["unread"],
        1
    );

    let refused = server.get("/v1/mentions", Some(&visitor)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = server
        .post("/v1/mentions/read", Some(&visitor), json!({}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let bad_limit = server
        .get("/v1/mentions?limit=lots", Some(&sue.token))
        .await;
    assert_eq!(bad_limit.status, StatusCode::UNPROCESSABLE_ENTITY);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A real WebSocket client, subscribed to everything the token may see.
async fn live(server: &common::Server, token: &str) -> Ws {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = server.ws_url("/v1/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(frame(&mut ws).await["type"], "hello");
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({ "type": "subscribe", "id": "s" }).to_string().into(),
    ))
    .await
    .unwrap();
    while frame(&mut ws).await["type"] != "subscribed" {}
    ws
}

async fn frame(ws: &mut Ws) -> Value {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Event frames until the `message_created` of a message with `body`.
async fn events_until_message(ws: &mut Ws, body: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let f = frame(ws).await;
        if f["type"] != "event" {
            continue;
        }
        let done = f["event"] == "message_created" && f["data"]["message"]["body"] == body;
        seen.push(f);
        if done {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mentioned_agent_receives_the_mention_live_and_colleagues_do_not() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let bob = server.staff("Bob", Role::Agent, &[]).await;
    let (conversation, _) = server.visitor("v@example.com").await;
    let mut bobs_socket = live(&server, &bob.token).await;
    let mut admins_socket = live(&server, &admin.token).await;

    let notes = format!("/v1/conversations/{conversation}/notes");
    let note = server
        .post(
            &notes,
            Some(&admin.token),
            json!({ "body": "@bob over to you" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    // A later note marks the end: events arrive in log order.
    server
        .post(&notes, Some(&admin.token), json!({ "body": "end of test" }))
        .await;

    let bob_saw = events_until_message(&mut bobs_socket, "end of test").await;
    let mention = bob_saw
        .iter()
        .find(|f| f["event"] == "mentioned")
        .unwrap_or_else(|| panic!("no mention in {bob_saw:?}"));
    assert_eq!(mention["data"]["mention"]["agent_id"], json!(bob.id));
    assert_eq!(mention["data"]["mention"]["message_id"], note.body["id"]);

    let admin_saw = events_until_message(&mut admins_socket, "end of test").await;
    assert!(
        admin_saw.iter().all(|f| f["event"] != "mentioned"),
        "{admin_saw:?}"
    );
}
