//! The document's JavaScript flows over real sockets (the React widget and the admin
//! dashboard), reconnecting without loss, and data surviving a restart.

use crate::common;

use common::john;
use hyper::StatusCode;
use serde_json::{Value, json};

/// `useLiveChat` with a server-issued id (a site without cookies): start a session,
/// connect, send, see the agent's answer and typing. `tests/suite/widget.rs` runs it with the
/// widget's own id and its cookie.
#[tokio::test]
async fn the_react_widget_flow() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let created = s.post("/api/live-chat/sessions", None, john()).await;
    assert_eq!(created.body["success"], true);
    let sid = created.body["data"]["session"]["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut widget = s.socket(&format!("sessionId={sid}")).await;

    let sent = s
        .post(
            &format!("/api/live-chat/sessions/{sid}/messages"),
            None,
            json!({ "content": "Hello, I need help" }),
        )
        .await;
    assert_eq!(sent.body["success"], true);

    s.patch(
        &format!("/api/admin/live-chat/sessions/{sid}/assign"),
        Some(&s.admin.token),
        json!({ "agentId": s.jane.id, "agentName": "Jane Smith" }),
    )
    .await;
    let joined = widget.next_of("agent_assigned").await;
    assert_eq!(joined["sessionId"], sid.as_str());
    assert_eq!(joined["agent"]["name"], "Jane Smith");
    let status = widget.next_of("session_status_changed").await;
    assert_eq!(status["status"], "active");

    s.post(
        &format!("/api/admin/live-chat/sessions/{sid}/reply"),
        Some(&s.jane.token),
        json!({ "content": "Hi! How can I assist you today?" }),
    )
    .await;
    let answer = widget.next_of("agent_message").await;
    assert_eq!(answer["sessionId"], sid.as_str());
    assert_eq!(
        answer["message"]["content"],
        "Hi! How can I assist you today?"
    );
    assert_eq!(answer["message"]["agentName"], "Jane Smith");
    assert_eq!(answer["message"]["type"], "agent");

    // The agent types (from the dashboard socket); the widget sees it.
    let mut dashboard = s
        .socket(&format!(
            "admin=true&userId={}&token={}",
            s.jane.id, s.jane.token
        ))
        .await;
    dashboard
        .send(json!({ "type": "typing", "isTyping": true, "sessionId": sid }))
        .await;
    let typing = widget.next_of("agent_typing").await;
    assert_eq!(
        (typing["sessionId"].as_str(), typing["isTyping"].as_bool()),
        (Some(sid.as_str()), Some(true))
    );

    // The widget's own typing and a read receipt reach the subscribed dashboard.
    dashboard
        .send(json!({ "type": "subscribe_session", "sessionId": sid }))
        .await;
    // A socket handles its frames in order: the pong says the subscription is in place.
    dashboard.send(json!({ "type": "ping" })).await;
    assert_eq!(dashboard.next_of("pong").await["type"], "pong");
    widget
        .send(json!({ "type": "typing", "isTyping": true }))
        .await;
    let user_typing = dashboard.next_of("user_typing").await;
    assert_eq!(user_typing["sessionId"], sid.as_str());
    assert_eq!(user_typing["isTyping"], true);
    let message_id = answer["message"]["_id"].as_str().unwrap();
    widget
        .send(json!({ "type": "read_receipt", "messageId": message_id }))
        .await;
    let receipt = dashboard.next_of("read_receipt").await;
    assert_eq!(
        (receipt["messageId"].as_str(), receipt["readBy"].as_str()),
        (Some(message_id), Some("user"))
    );
    let history = s
        .get(&format!("/api/live-chat/sessions/{sid}/messages"), None)
        .await;
    let read = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["_id"] == message_id)
        .unwrap()["isRead"]
        .clone();
    assert_eq!(read, true, "the receipt is stored");

    // The REST typing route reaches the dashboard too.
    s.post(
        &format!("/api/live-chat/sessions/{sid}/typing"),
        None,
        json!({ "isTyping": false }),
    )
    .await;
    assert_eq!(dashboard.next_of("user_typing").await["isTyping"], false);

    s.call(
        hyper::Method::PATCH,
        &format!("/api/live-chat/sessions/{sid}/end"),
        None,
        None,
    )
    .await;
    assert_eq!(
        widget.next_of("session_status_changed").await["status"],
        "closed"
    );
    widget.close().await;
    dashboard.close().await;
    s.stop().await;
}

/// `useAdminChat`: fetch sessions, connect as admin, see new sessions and user messages,
/// reply.
#[tokio::test]
async fn the_admin_dashboard_flow() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let token = s.admin.token.clone();
    let fetched = s
        .get("/api/admin/live-chat/sessions?status=pending", Some(&token))
        .await;
    assert_eq!(fetched.body["success"], true);
    assert_eq!(fetched.body["data"], json!([]));
    let mut admin = s
        .socket(&format!(
            "admin=true&userId={}&access_token={token}",
            s.admin.id
        ))
        .await;

    let sid = s.session(john()).await;
    let new = admin.next_of("new_session").await;
    assert_eq!(new["session"]["sessionId"], sid.as_str());
    assert_eq!(new["session"]["user"]["name"], "John Doe");
    assert_eq!(new["session"]["status"], "pending");

    s.post(
        &format!("/api/live-chat/sessions/{sid}/messages"),
        None,
        json!({ "content": "I need help" }),
    )
    .await;
    let message = admin.next_of("user_message").await;
    assert_eq!(message["sessionId"], sid.as_str());
    assert_eq!(message["message"]["content"], "I need help");
    assert_eq!(message["message"]["type"], "user");

    let reply = s
        .post(
            &format!("/api/admin/live-chat/sessions/{sid}/reply"),
            Some(&token),
            json!({ "content": "On it" }),
        )
        .await;
    assert_eq!(reply.body["success"], true);
    assert_eq!(
        admin.next_of("agent_message").await["message"]["content"],
        "On it"
    );

    // Notes never reach the guest's socket; the guest sees only its own chat.
    let mut guest = s.socket(&format!("sessionId={sid}")).await;
    let other = s
        .session(json!({ "user": { "name": "Eve", "email": "eve@example.com" } }))
        .await;
    s.post(
        &format!("/api/admin/live-chat/sessions/{sid}/notes"),
        Some(&token),
        json!({ "content": "internal" }),
    )
    .await;
    s.post(
        &format!("/api/admin/live-chat/sessions/{other}/reply"),
        Some(&token),
        json!({ "content": "for Eve" }),
    )
    .await;
    s.post(
        &format!("/api/admin/live-chat/sessions/{sid}/reply"),
        Some(&token),
        json!({ "content": "for John" }),
    )
    .await;
    let next = guest.next_of("agent_message").await;
    assert_eq!(next["message"]["content"], "for John");
    let admin_frames = [
        admin.next_of("new_session").await,
        admin.next_of("agent_message").await,
    ];
    assert_eq!(admin_frames[1]["message"]["content"], "for Eve");
    guest.close().await;
    admin.close().await;
    s.stop().await;
}

fn contents(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["message"]["content"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn sockets_that_reconnect_with_since_get_what_they_missed_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let reply = |text: &'static str| {
        let s = &s;
        let sid = sid.clone();
        async move {
            let r = s
                .post(
                    &format!("/api/admin/live-chat/sessions/{sid}/reply"),
                    Some(&s.jane.token),
                    json!({ "content": text }),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
    };
    let admin_query = format!("admin=true&userId={}&token={}", s.admin.id, s.admin.token);
    let mut widget = s.socket(&format!("sessionId={sid}")).await;
    let mut admin = s.socket(&admin_query).await;
    reply("one").await;
    let first = widget.next_of("agent_message").await;
    let admin_first = admin.next_of("agent_message").await;
    let seq = first["seq"].as_u64().unwrap();
    let admin_seq = admin_first["seq"].as_u64().unwrap();
    widget.close().await;
    admin.close().await;

    // While both are away: two answers and a guest message.
    reply("two").await;
    s.post(
        &format!("/api/live-chat/sessions/{sid}/messages"),
        None,
        json!({ "content": "guest" }),
    )
    .await;
    reply("three").await;

    let mut widget = s.socket(&format!("sessionId={sid}&since={seq}")).await;
    let missed = vec![
        widget.next_of("agent_message").await,
        widget.next_of("agent_message").await,
    ];
    assert_eq!(contents(&missed), ["two", "three"]);
    assert!(missed[0]["seq"].as_u64() < missed[1]["seq"].as_u64());
    reply("four").await;
    let live = widget.next_of("agent_message").await;
    assert_eq!(live["message"]["content"], "four");
    assert_eq!(widget.quiet(300).await, None, "nothing twice");

    let mut admin = s.socket(&format!("{admin_query}&since={admin_seq}")).await;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let frame = admin.next().await;
        if matches!(
            frame["type"].as_str(),
            Some("agent_message" | "user_message")
        ) {
            seen.push(frame);
        }
    }
    assert_eq!(contents(&seen), ["two", "guest", "three", "four"]);
    assert_eq!(admin.quiet(300).await, None, "nothing twice");
    widget.close().await;
    admin.close().await;
    s.stop().await;
}

#[tokio::test]
async fn sessions_survive_a_restart_on_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    s.post(
        &format!("/api/live-chat/sessions/{sid}/messages"),
        None,
        json!({ "content": "still there?" }),
    )
    .await;
    let uploaded = s
        .multipart(
            "/api/live-chat/upload",
            None,
            &[("sessionId", &sid)],
            &[("files", "note.txt", "text/plain", b"kept".to_vec())],
        )
        .await;
    let url = uploaded.body["data"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    s.stop().await;

    let s = common::start(dir.path()).await;
    let session = s.get(&format!("/api/live-chat/sessions/{sid}"), None).await;
    assert_eq!(session.status, StatusCode::OK, "the same id still works");
    let messages = s
        .get(&format!("/api/live-chat/sessions/{sid}/messages"), None)
        .await;
    assert_eq!(messages.body["data"][1]["content"], "still there?");
    assert_eq!(&s.get(&url, None).await.bytes[..], b"kept");
    let list = s
        .get("/api/admin/live-chat/sessions", Some(&s.admin.token))
        .await;
    assert_eq!(list.body["total"], 1);
    s.stop().await;
}

/// A `since` from another database (a restore, a wiped server) is newer than this log's
/// newest event: the socket says so with 4009 (reload, reconnect without `since`) instead
/// of going on as if the client's state matched. A `since` within the log still replays.
#[tokio::test]
async fn a_since_beyond_the_log_closes_with_resync() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let mut widget = s.socket(&format!("sessionId={sid}&since=1000000")).await;
    let close = loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), widget.0.next())
            .await
            .expect("the socket answers");
        match frame {
            Some(Ok(Message::Close(close))) => break close.expect("a close frame says why"),
            Some(Ok(Message::Text(text))) => panic!("nothing is replayed or live: {text}"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Library(4009), "{close:?}");
    assert!(close.reason.contains("beyond_head"), "{close:?}");
    // The same guest from the start of the log replays and stays open.
    let mut widget = s.socket(&format!("sessionId={sid}&since=0")).await;
    s.post(
        &format!("/api/admin/live-chat/sessions/{sid}/reply"),
        Some(&s.jane.token),
        json!({ "content": "still here" }),
    )
    .await;
    let answer = widget.next_of("agent_message").await;
    assert_eq!(answer["message"]["content"], "still here");
    s.stop().await;
}
