//! Document 002's own examples, replayed against the template: the curl logins, the
//! REST table, "Admin initiates chat with customer" and "Customer receives and
//! responds", every WebSocket message type, edit within 15 minutes, soft delete,
//! page/page_size, upload and stats.

use crate::common;

use common::{connect, join, next, next_of, quiet, send, start, upload};
use hyper::Method;
use serde_json::json;

#[tokio::test]
async fn the_documented_logins_give_bearer_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let salon = start(&dir.path().join("salon.db")).await;
    let s = &salon.server;
    // curl -X POST /api/v1/auth/login -d "username=admin@salon.com&password=password"
    let login = s
        .send(
            Method::POST,
            "/api/v1/auth/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            "username=admin@salon.com&password=password",
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.body["token_type"], "bearer");
    let token = login.body["access_token"].as_str().unwrap();
    assert_eq!(s.get("/api/v1/chat/chats", Some(token)).await.status, 200);

    let wrong = s
        .send(
            Method::POST,
            "/api/v1/auth/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            "username=admin@salon.com&password=nope",
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.body,
        json!({ "detail": "Incorrect email or password" })
    );
    let missing = s
        .send(
            Method::POST,
            "/api/v1/auth/login",
            &[],
            "username=admin@salon.com",
        )
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.body["detail"][0]["loc"],
        json!(["body", "password"])
    );

    // curl -X POST /api/v1/customer-auth/login -d '{"phone_number": "+1234567890", ...}'
    let customer = s
        .post(
            "/api/v1/customer-auth/login",
            None,
            json!({ "phone_number": "+1234567890", "password": "password" }),
        )
        .await;
    assert_eq!(customer.status, 200, "{}", customer.text);
    assert_eq!(customer.body["customer"]["id"], 1);
    assert_eq!(customer.body["customer"]["salon_id"], 1);
    let token = customer.body["access_token"].as_str().unwrap();
    let mine = s.get("/api/v1/chat/chats/customer", Some(token)).await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body["chats"].as_array().unwrap().len(), 1);
    // The same number typed with spaces is the same login.
    let spaced = s
        .post(
            "/api/v1/customer-auth/login",
            None,
            json!({ "phone_number": "+1 234 567 890", "password": "password" }),
        )
        .await;
    assert_eq!(spaced.status, 200);
    let wrong = s
        .post(
            "/api/v1/customer-auth/login",
            None,
            json!({ "phone_number": "+1234567890", "password": "nope" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.body,
        json!({ "detail": "Incorrect phone number or password" })
    );
    salon.server.stop().await;
}

#[tokio::test]
async fn admin_initiates_a_chat_and_the_customer_responds() {
    let dir = tempfile::tempdir().unwrap();
    let salon = start(&dir.path().join("salon.db")).await;
    let s = &salon.server;
    let admin = salon.token("admin");
    let customer = salon.token("customer");

    // Step 1: Create chat via REST API.
    let created = s
        .post(
            "/api/v1/chat/chats",
            Some(&admin),
            json!({ "customer_id": 1, "initial_message": "Hi, how can I help?" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let chat = created.body["id"].as_u64().unwrap();
    assert_eq!(chat, 2, "the demo's chat 1 exists already");
    assert_eq!(created.body["customer_id"], 1);
    assert_eq!(created.body["last_message"], "Hi, how can I help?");

    // Step 2-3: the admin connects and joins.
    let (mut staff_ws, hello) = connect(s, "user", &admin).await;
    assert_eq!(hello["participant_type"], "user");
    let admin_number = hello["participant_id"].as_u64().unwrap();
    join(&mut staff_ws, chat).await;

    // The customer connects (step 1 of flow 2) and joins the chat it got from its list.
    let (mut customer_ws, hello) = connect(s, "customer", &customer).await;
    assert_eq!(hello["participant_type"], "customer");
    assert_eq!(hello["participant_id"], 1);
    join(&mut customer_ws, chat).await;
    let joined = next_of(&mut staff_ws, "user_joined").await;
    assert_eq!(joined["participant_id"], 1);
    assert_eq!(joined["participant_type"], "customer");

    // Step 4: the admin sends; both sockets of the chat receive it.
    send(
        &mut staff_ws,
        json!({ "type": "send_message", "chat_id": chat, "content": "What can I help you with?" }),
    )
    .await;
    let seen = next_of(&mut customer_ws, "message").await;
    let message = &seen["message"];
    assert_eq!(message["content"], "What can I help you with?");
    assert_eq!(message["chat_id"], chat);
    assert_eq!(message["sender_type"], "user");
    assert_eq!(message["sender_id"], admin_number);
    let echoed = next_of(&mut staff_ws, "message").await;
    assert_eq!(echoed["message"]["id"], message["id"]);

    // Flow 2 step 3: the customer marks it read; the admin gets the receipt.
    send(
        &mut customer_ws,
        json!({ "type": "read_message", "chat_id": message["chat_id"], "message_id": message["id"] }),
    )
    .await;
    let receipt = next_of(&mut staff_ws, "read_receipt").await;
    assert_eq!(receipt["message_id"], message["id"]);
    assert_eq!(receipt["reader_id"], 1);
    assert_eq!(receipt["reader_type"], "customer");

    // Typing reaches the other side only.
    send(
        &mut customer_ws,
        json!({ "type": "typing", "chat_id": chat, "is_typing": true }),
    )
    .await;
    let typing = next_of(&mut staff_ws, "typing").await;
    assert_eq!(
        typing,
        json!({ "type": "typing", "chat_id": chat, "participant_id": 1, "participant_type": "customer", "is_typing": true })
    );

    // Step 4: the customer replies.
    send(
        &mut customer_ws,
        json!({ "type": "send_message", "chat_id": chat, "content": "I need to book an appointment" }),
    )
    .await;
    let reply = next_of(&mut staff_ws, "message").await;
    assert_eq!(reply["message"]["content"], "I need to book an appointment");
    assert_eq!(reply["message"]["sender_type"], "customer");
    assert_eq!(reply["message"]["sender_id"], 1);
    // The customer's own socket did not get its typing back.
    let own = next_of(&mut customer_ws, "message").await;
    assert_eq!(own["message"]["content"], "I need to book an appointment");
    quiet(&mut customer_ws).await;

    // Keepalive.
    send(&mut staff_ws, json!({ "type": "ping" })).await;
    let pong = next_of(&mut staff_ws, "pong").await;
    assert!(pong["timestamp"].is_string());

    // The history over REST holds the same conversation, oldest first.
    let history = s
        .get(
            &format!("/api/v1/chat/chats/{chat}/messages"),
            Some(&customer),
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    let messages = history.body["messages"].as_array().unwrap();
    // The desk's own timeline entries (the chat being taken) come typed `system`.
    let (system, said): (Vec<_>, Vec<_>) =
        messages.iter().partition(|m| m["message_type"] == "system");
    assert_eq!(system.len(), 1, "{messages:?}");
    assert_eq!(system[0]["sender_type"], "system");
    let texts: Vec<_> = said
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        texts,
        [
            "Hi, how can I help?",
            "What can I help you with?",
            "I need to book an appointment"
        ]
    );

    // Leaving tells the other side.
    send(
        &mut customer_ws,
        json!({ "type": "leave_chat", "chat_id": chat }),
    )
    .await;
    let left = next_of(&mut staff_ws, "user_left").await;
    assert_eq!(left["participant_id"], 1);
    next_of(&mut customer_ws, "user_left").await;
    // A left chat's messages no longer arrive.
    let posted = s
        .post(
            &format!("/api/v1/chat/chats/{chat}/messages"),
            Some(&admin),
            json!({ "content": "Still there?" }),
        )
        .await;
    assert_eq!(posted.status, 201);
    quiet(&mut customer_ws).await;
    salon.server.stop().await;
}

#[tokio::test]
async fn the_rest_table_edits_deletes_pages_uploads_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let salon = start(&dir.path().join("salon.db")).await;
    let s = &salon.server;
    let admin = salon.token("admin");
    let customer = salon.token("customer");

    // Create chat (customer), with an entity reference.
    let created = s
        .post(
            "/api/v1/chat/chats/customer",
            Some(&customer),
            json!({ "title": "Haircut", "initial_message": "Can I move my booking?", "entity_type": "appointment", "entity_id": 42 }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let chat = created.body["id"].as_u64().unwrap();
    assert_eq!(created.body["entity_type"], "appointment");
    assert_eq!(created.body["entity_id"], "42");
    assert_eq!(created.body["status"], "active");

    // Get chat details; list chats (admin) sees it with its unread count.
    let details = s
        .get(&format!("/api/v1/chat/chats/{chat}"), Some(&admin))
        .await;
    assert_eq!(details.status, 200);
    assert_eq!(details.body["title"], "Haircut");
    assert_eq!(details.body["unread_count"], 1);
    let list = s.get("/api/v1/chat/chats", Some(&admin)).await;
    assert_eq!(list.body["total"], 2);
    assert!(
        list.body["chats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == chat)
    );

    // Send message (HTTP), with a reply reference.
    let first_id = s
        .get(&format!("/api/v1/chat/chats/{chat}/messages"), Some(&admin))
        .await
        .body["messages"][0]["id"]
        .clone();
    let sent = s
        .post(
            &format!("/api/v1/chat/chats/{chat}/messages"),
            Some(&admin),
            json!({ "content": "Sure, which day?", "reply_to_id": first_id }),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    assert_eq!(sent.body["reply_to_id"], first_id);
    assert_eq!(sent.body["message_type"], "text");
    let id = sent.body["id"].as_u64().unwrap();

    // Edit message: the sender, within 15 minutes.
    let other = s
        .put(
            &format!("/api/v1/chat/messages/{id}"),
            Some(&customer),
            json!({ "content": "hijacked" }),
        )
        .await;
    assert_eq!(other.status, 403, "{}", other.text);
    assert_eq!(other.body["detail"], "You can only edit your own messages");
    let edited = s
        .put(
            &format!("/api/v1/chat/messages/{id}"),
            Some(&admin),
            json!({ "content": "Sure, which day suits you?" }),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["content"], "Sure, which day suits you?");
    assert_eq!(edited.body["is_edited"], true);
    salon.clock.advance(time::Duration::minutes(16));
    let late = s
        .put(
            &format!("/api/v1/chat/messages/{id}"),
            Some(&admin),
            json!({ "content": "too late" }),
        )
        .await;
    assert_eq!(late.status, 400);
    assert_eq!(
        late.body["detail"],
        "Messages can only be edited within 15 minutes"
    );

    // Delete message: soft; it stays in the history without its content.
    let gone = s
        .delete(&format!("/api/v1/chat/messages/{id}"), Some(&customer))
        .await;
    assert_eq!(gone.status, 403);
    let gone = s
        .delete(&format!("/api/v1/chat/messages/{id}"), Some(&admin))
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
    let history = s
        .get(
            &format!("/api/v1/chat/chats/{chat}/messages"),
            Some(&customer),
        )
        .await;
    let deleted = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(deleted["is_deleted"], true);
    assert_eq!(deleted["content"], serde_json::Value::Null);
    assert_eq!(
        s.delete(&format!("/api/v1/chat/messages/{id}"), Some(&admin))
            .await
            .status,
        404
    );

    // Pagination: page 1 is the newest page_size messages, oldest first.
    for n in 1..=4 {
        s.post(
            &format!("/api/v1/chat/chats/{chat}/messages"),
            Some(&customer),
            json!({ "content": format!("note {n}") }),
        )
        .await;
    }
    let page = |p: u32| {
        let path = format!("/api/v1/chat/chats/{chat}/messages?page={p}&page_size=2");
        let token = customer.clone();
        async move { s.get(&path, Some(&token)).await.body }
    };
    let one = page(1).await;
    let texts = |v: &serde_json::Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap_or("<deleted>").to_owned())
            .collect()
    };
    assert_eq!(texts(&one), ["note 3", "note 4"]);
    assert_eq!(one["has_more"], true);
    assert_eq!(texts(&page(2).await), ["note 1", "note 2"]);
    // The admin's reply took the chat: the desk noted it in the timeline.
    let third = page(3).await;
    assert_eq!(texts(&third), ["Assigned to Salon Admin", "<deleted>"]);
    assert_eq!(third["messages"][0]["message_type"], "system");
    assert_eq!(third["has_more"], true);
    let last = page(4).await;
    assert_eq!(texts(&last), ["Can I move my booking?"]);
    assert_eq!(last["has_more"], false);
    let bad = s
        .get(
            &format!("/api/v1/chat/chats/{chat}/messages?page_size=1000"),
            Some(&customer),
        )
        .await;
    assert_eq!(bad.status, 422);

    // Upload file, then send it as an image message; the file is served to the chat's
    // people only.
    let chat_field = chat.to_string();
    let uploaded = upload(
        s,
        &customer,
        &[("chat_id", &chat_field)],
        ("look.png", "image/png", b"PNG fake image"),
    )
    .await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text);
    assert_eq!(uploaded.body["message_type"], "image");
    let url = uploaded.body["url"].as_str().unwrap().to_owned();
    let image = s
        .post(
            &format!("/api/v1/chat/chats/{chat}/messages"),
            Some(&customer),
            json!({ "media_url": url, "message_type": "image" }),
        )
        .await;
    assert_eq!(image.status, 201, "{}", image.text);
    assert_eq!(image.body["media_url"], url.as_str());
    let file = s.get(&format!("{url}?token={admin}"), None).await;
    assert_eq!(file.status, 200, "{url}: {}", file.text);
    assert_eq!(file.text.as_bytes(), b"PNG fake image");
    let refused = upload(
        s,
        &customer,
        &[("chat_id", &chat_field)],
        ("run.exe", "application/octet-stream", b"MZ"),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.text);

    // Stats: the salon's chats, and who is online.
    let (_ws, _) = connect(s, "customer", &customer).await;
    let stats = s.get("/api/v1/chat/stats", Some(&admin)).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.body["total_chats"], 2);
    assert_eq!(stats.body["active_chats"], 2);
    assert_eq!(stats.body["online_customers"], 1);
    assert_eq!(stats.body["active_connections"], 1);
    assert_eq!(
        s.get("/api/v1/chat/stats", Some(&customer)).await.status,
        403
    );
    salon.server.stop().await;
}

#[tokio::test]
async fn a_rejoin_with_the_last_message_id_replays_what_was_missed_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let salon = start(&dir.path().join("salon.db")).await;
    let s = &salon.server;
    let admin = salon.token("admin");
    let customer = salon.token("customer");
    let (mut ws, _) = connect(s, "customer", &customer).await;
    join(&mut ws, 1).await;
    send(
        &mut ws,
        json!({ "type": "send_message", "chat_id": 1, "content": "Is Friday free?" }),
    )
    .await;
    let last = next_of(&mut ws, "message").await["message"]["id"].clone();
    drop(ws);

    // While the customer is away, the salon answers three times over HTTP.
    for text in ["Yes", "At 10 or 14?", "Let me know"] {
        let posted = s
            .post(
                "/api/v1/chat/chats/1/messages",
                Some(&admin),
                json!({ "content": text }),
            )
            .await;
        assert_eq!(posted.status, 201);
    }
    let (mut ws, _) = connect(s, "customer", &customer).await;
    send(
        &mut ws,
        json!({ "type": "join_chat", "chat_id": 1, "last_message_id": last }),
    )
    .await;
    let mut missed = Vec::new();
    for _ in 0..3 {
        missed.push(next_of(&mut ws, "message").await["message"]["content"].clone());
    }
    assert_eq!(
        missed,
        [json!("Yes"), json!("At 10 or 14?"), json!("Let me know")]
    );
    next_of(&mut ws, "user_joined").await;
    // Then live, with nothing twice.
    s.post(
        "/api/v1/chat/chats/1/messages",
        Some(&admin),
        json!({ "content": "See you" }),
    )
    .await;
    let live = next(&mut ws).await;
    assert_eq!(live["message"]["content"], "See you", "{live}");
    quiet(&mut ws).await;
    salon.server.stop().await;
}
