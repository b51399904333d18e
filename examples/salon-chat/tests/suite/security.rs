//! Where the document is silent or unsafe: every route needs a token, customers never
//! reach staff routes or each other's chats, and salons never see each other.

use crate::common;

use common::{connect, next_of, send, start, upload};
use serde_json::json;

#[tokio::test]
async fn salons_are_isolated_and_customers_see_only_their_own_chats() {
    let dir = tempfile::tempdir().unwrap();
    let salon = start(&dir.path().join("salon.db")).await;
    let s = &salon.server;
    let admin = salon.token("admin");
    let uptown = salon.token("uptown_admin");
    let uptown_customer = salon.token("uptown_customer");

    // The other salon's staff see none of the main salon's chats, by list or by number.
    let list = s.get("/api/v1/chat/chats", Some(&uptown)).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["total"], 0);
    let probe = s.get("/api/v1/chat/chats/1", Some(&uptown)).await;
    assert_eq!(probe.status, 404);
    assert_eq!(probe.body, json!({ "detail": "Chat not found" }));
    // Nor its customers: customer 1 of Uptown is someone else.
    let created = s
        .post(
            "/api/v1/chat/chats",
            Some(&uptown),
            json!({ "customer_id": 1, "initial_message": "Welcome to Uptown" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["salon_id"], 2);
    assert_eq!(created.body["id"], 1, "chat numbers count per salon");
    let missing = s
        .post(
            "/api/v1/chat/chats",
            Some(&uptown),
            json!({ "customer_id": 99 }),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, json!({ "detail": "Customer not found" }));
    // The main salon's chat 1 still holds only its own conversation.
    let main_chat = s.get("/api/v1/chat/chats/1", Some(&admin)).await;
    assert_eq!(main_chat.body["last_message"], "Hi, how can I help?");

    // Another customer of the same salon cannot see the first one's chat, by REST or
    // by socket.
    let second = salon.token("second_customer");
    let probe = s.get("/api/v1/chat/chats/1", Some(&second)).await;
    assert_eq!(probe.status, 404);
    assert_eq!(probe.body, json!({ "detail": "Chat not found" }));
    let (mut ws, _) = connect(s, "customer", &second).await;
    send(&mut ws, json!({ "type": "join_chat", "chat_id": 1 })).await;
    assert_eq!(next_of(&mut ws, "error").await["error"], "Chat not found");
    send(
        &mut ws,
        json!({ "type": "send_message", "chat_id": 1, "content": "let me in" }),
    )
    .await;
    assert_eq!(next_of(&mut ws, "error").await["error"], "Chat not found");
    let mine = s.get("/api/v1/chat/chats/customer", Some(&second)).await;
    assert_eq!(mine.body["total"], 0);

    // Uptown's customer sees Uptown's chat 1, which is not the main salon's.
    let theirs = s.get("/api/v1/chat/chats/1", Some(&uptown_customer)).await;
    assert_eq!(theirs.status, 200, "{}", theirs.text);
    assert_eq!(theirs.body["last_message"], "Welcome to Uptown");
    let ours = s
        .get("/api/v1/chat/chats/1", Some(&salon.token("customer")))
        .await;
    assert_eq!(ours.body["last_message"], "Hi, how can I help?");
    salon.server.stop().await;
}

#[tokio::test]
async fn tokens_are_required_and_roles_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let salon = start(&dir.path().join("salon.db")).await;
    let s = &salon.server;
    let customer = salon.token("customer");
    let admin = salon.token("admin");

    for path in [
        "/api/v1/chat/chats",
        "/api/v1/chat/stats",
        "/api/v1/chat/chats/1/messages",
    ] {
        let anonymous = s.get(path, None).await;
        assert_eq!(anonymous.status, 401, "{path}");
        assert_eq!(anonymous.body, json!({ "detail": "Not authenticated" }));
        let forged = s.get(path, Some("not-a-token")).await;
        assert_eq!(forged.status, 401, "{path}");
    }
    // Customers do not use staff routes, nor staff the customer ones.
    assert_eq!(
        s.get("/api/v1/chat/chats", Some(&customer)).await.status,
        403
    );
    assert_eq!(
        s.post(
            "/api/v1/chat/chats",
            Some(&customer),
            json!({ "customer_id": 1 })
        )
        .await
        .status,
        403
    );
    assert_eq!(
        s.get("/api/v1/chat/chats/customer", Some(&admin))
            .await
            .status,
        403
    );
    // Each socket is for its kind of login only.
    let url = s.ws_url(&format!("/api/v1/chat/ws/chat/user?token={customer}"));
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    let url = s.ws_url("/api/v1/chat/ws/chat/customer?token=forged");
    assert!(tokio_tungstenite::connect_async(url).await.is_err());

    // Bad frames get an error frame and the socket stays.
    let (mut ws, _) = connect(s, "user", &admin).await;
    send(&mut ws, json!({ "type": "dance" })).await;
    assert_eq!(
        next_of(&mut ws, "error").await["error"],
        "Unknown message type: dance"
    );
    send(
        &mut ws,
        json!({ "type": "send_message", "chat_id": 1, "content": "  " }),
    )
    .await;
    assert_eq!(
        next_of(&mut ws, "error").await["error"],
        "Message content cannot be empty"
    );
    send(&mut ws, json!({ "type": "typing", "chat_id": 1 })).await;
    assert_eq!(
        next_of(&mut ws, "error").await["error"],
        "Join the chat first"
    );
    send(&mut ws, json!({ "type": "ping" })).await;
    assert_eq!(next_of(&mut ws, "pong").await["type"], "pong");
    salon.server.stop().await;
}

#[tokio::test]
async fn the_endpoint_table_answers_fastapi_404_and_405_and_leaves_other_paths_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let salon = start(&dir.path().join("salon.db")).await;
    let s = &salon.server;
    let admin = salon.token("admin");

    // A known path with another method: FastAPI's 405, before any credential is asked.
    let wrong = s
        .call(hyper::Method::DELETE, "/api/v1/chat/chats", None, None)
        .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.body, json!({ "detail": "Method Not Allowed" }));
    let login = s.get("/api/v1/auth/login", None).await;
    assert_eq!(login.status, 405);

    // An unknown path under the document's prefix: FastAPI's 404.
    let missing = s.get("/api/v1/chat/nothing-here", Some(&admin)).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, json!({ "detail": "Not Found" }));

    // `/chats/customer` is its own endpoint, not chat number "customer".
    let customers = s.get("/api/v1/chat/chats/customer", Some(&admin)).await;
    assert_eq!(customers.status, 403, "{}", customers.text);
    assert_eq!(
        customers.body,
        json!({ "detail": "Only customers can use this endpoint" })
    );

    // Paths outside the document's prefix are the built-in API's.
    let health = s.get("/healthz", None).await;
    assert_eq!(health.status, 200);
}

/// The document's app may upload before it knows the chat: the file is its uploader's
/// alone until a message of one of the uploader's chats uses it.
#[tokio::test]
async fn an_upload_without_a_chat_stays_private_until_a_message_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let salon = start(&dir.path().join("salon.db")).await;
    let s = &salon.server;
    let admin = salon.token("admin");
    let customer = salon.token("customer");
    let second = salon.token("second_customer");
    let uploaded = upload(s, &customer, &[], ("look.png", "image/png", b"PNG early")).await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text);
    let url = uploaded.body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/api/v1/chat/files/mine/"), "{url}");
    // Only the uploader reads it; staff and other customers get the same 404 as for
    // a file that does not exist.
    let mine = s.get(&format!("{url}?token={customer}"), None).await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(mine.text.as_bytes(), b"PNG early");
    for other in [&admin, &second] {
        let probe = s.get(&format!("{url}?token={other}"), None).await;
        assert_eq!(probe.status, 404, "{}", probe.text);
    }
    // Another customer cannot send it either.
    let created = s
        .post(
            "/api/v1/chat/chats/customer",
            Some(&second),
            json!({ "title": "Mine now?" }),
        )
        .await;
    let other_chat = created.body["id"].as_u64().unwrap();
    let stolen = s
        .post(
            &format!("/api/v1/chat/chats/{other_chat}/messages"),
            Some(&second),
            json!({ "media_url": url, "message_type": "image" }),
        )
        .await;
    assert_eq!(stolen.status, 400, "{}", stolen.text);

    // The uploader sends it in its own chat: now the chat's people see it there.
    let sent = s
        .post(
            "/api/v1/chat/chats/1/messages",
            Some(&customer),
            json!({ "media_url": url, "message_type": "image" }),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    let in_chat = sent.body["media_url"].as_str().unwrap().to_owned();
    assert!(in_chat.starts_with("/api/v1/chat/files/1/"), "{in_chat}");
    let by_staff = s.get(&format!("{in_chat}?token={admin}"), None).await;
    assert_eq!(by_staff.status, 200, "{}", by_staff.text);
    assert_eq!(by_staff.text.as_bytes(), b"PNG early");
    let by_other = s.get(&format!("{in_chat}?token={second}"), None).await;
    assert_eq!(by_other.status, 404);
    // A bad chat_id is still refused.
    let bad = upload(
        s,
        &customer,
        &[("chat_id", "seven")],
        ("look.png", "image/png", b"PNG"),
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    salon.server.stop().await;
}
