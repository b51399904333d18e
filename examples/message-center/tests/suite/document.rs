//! Document 001 replayed against the template: its curl commands, its frontend's flows,
//! its demo data and its role rule, plus what the template does where the document was
//! insecure.

use crate::common;

use common::{Server, by_name, start};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

async fn server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (start(dir.path()).await, dir)
}

fn id_of(chat: &Value) -> u64 {
    chat["id"].as_u64().unwrap()
}

#[tokio::test]
async fn the_documents_curl_commands_work_with_a_token() {
    let (s, _dir) = server().await;
    // TOKEN=$(curl -X POST /auth/login -d '{"identifier":"admin","password":"admin123"}' | ...['access_token'])
    let token = s.login("admin", "admin123").await;

    // curl /chats/ → the four demo chats, each in the documented list shape.
    let list = s.get("/chats/", Some(&token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let chats = list.body.as_array().unwrap();
    assert_eq!(chats.len(), 4, "{}", list.text);
    let john = by_name(&list.body, "John Doe");
    let keys: Vec<&str> = john
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "channel",
            "id",
            "last_message_at",
            "mode",
            "name",
            "online",
            "unread"
        ]
    );
    assert_eq!(
        (
            &john["channel"],
            &john["mode"],
            &john["unread"],
            &john["online"]
        ),
        (&json!("WhatsApp"), &json!("agent"), &json!(2), &json!(true))
    );
    assert!(
        time::OffsetDateTime::parse(
            john["last_message_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    let modes: Vec<(&str, &str, u64)> = ["Sarah Williams", "Maria Lopez", "Ahmed Hassan"]
        .iter()
        .map(|n| {
            let c = by_name(&list.body, n);
            (
                *n,
                c["mode"].as_str().unwrap(),
                c["unread"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        [
            ("Sarah Williams", "bot", 0),
            ("Maria Lopez", "bot", 1),
            ("Ahmed Hassan", "paused", 1)
        ]
    );

    // curl /chats/1 → the detail shape with profile and messages.
    let detail = s.get("/chats/1", Some(&token)).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.text);
    assert_eq!(detail.body["name"], "John Doe");
    assert_eq!(
        detail.body["profile"],
        json!({
            "phone": "+62 812-3456-7890",
            "email": "john.doe@email.com",
            "address": "Jakarta Selatan",
            "lastActive": "Online"
        })
    );
    let first = &detail.body["messages"][0];
    assert_eq!(
        (&first["text"], &first["sender"], &first["status"]),
        (&json!("Halo!"), &json!("customer"), &json!("sent"))
    );
    let ids: Vec<u64> = detail.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let clock = first["time"].as_str().unwrap();
    assert!(clock.len() == 5 && clock.as_bytes()[2] == b':', "{clock}");

    // curl -X POST /chats/messages -H "Authorization: Bearer $TOKEN" -d '{...}'
    let sent = s
        .post(
            "/chats/messages",
            Some(&token),
            json!({ "chat_id": 1, "text": "Test message from API", "sender": "agent" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let keys: Vec<&str> = sent
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "sender", "status", "text", "time"]);
    assert_eq!(
        (
            &sent.body["text"],
            &sent.body["sender"],
            &sent.body["status"]
        ),
        (
            &json!("Test message from API"),
            &json!("agent"),
            &json!("sent")
        )
    );

    // curl -X PATCH /chats/1 -d '{"mode": "agent"}' (with a token here).
    let patched = s
        .patch("/chats/1", Some(&token), json!({ "mode": "agent" }))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(patched.body["mode"], "agent");
    s.stop().await;
}

#[tokio::test]
async fn the_admin_dashboard_flow_loads_sends_assigns_and_pauses() {
    let (s, _dir) = server().await;
    let token = s.login("admin", "admin123").await;
    // loadChats: the list, then every chat's detail.
    let list = s.get("/chats/", Some(&token)).await;
    for item in list.body.as_array().unwrap() {
        let full = s
            .get(&format!("/chats/{}", id_of(item)), Some(&token))
            .await;
        assert_eq!(full.status, StatusCode::OK, "{}", full.text);
        assert_eq!(full.body["id"], item["id"]);
        assert!(full.body["messages"].is_array());
    }
    // handleSendMessage on Maria's chat (bot mode): staff replying take it over.
    let maria = id_of(by_name(&list.body, "Maria Lopez"));
    let sent = s
        .post(
            "/chats/messages",
            Some(&token),
            json!({ "chat_id": maria, "text": "We open at nine.", "sender": "agent" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let path = format!("/chats/{maria}");
    let after = s.get(&path, Some(&token)).await;
    assert_eq!(after.body["mode"], "agent");
    let texts: Vec<&str> = after.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.last(), Some(&"We open at nine."), "{texts:?}");

    // handlePauseChat("paused") then ("bot"), then assignToAgent.
    for mode in ["paused", "bot", "agent"] {
        let r = s.patch(&path, Some(&token), json!({ "mode": mode })).await;
        assert_eq!(r.status, StatusCode::OK, "{mode}: {}", r.text);
        assert_eq!(s.get(&path, Some(&token)).await.body["mode"], mode);
    }
    s.stop().await;
}

#[tokio::test]
async fn an_agent_sees_only_its_assigned_chats() {
    let (s, _dir) = server().await;
    let agent = s.login("agent", "agent123").await;
    let admin = s.login("admin", "admin123").await;
    let list = s.get("/chats/", Some(&agent)).await;
    let mut names: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Ahmed Hassan", "John Doe"]);

    // Maria's chat is not the agent's: every route answers as if it did not exist.
    let all = s.get("/chats/", Some(&admin)).await;
    let maria = id_of(by_name(&all.body, "Maria Lopez"));
    let path = format!("/chats/{maria}");
    for r in [
        s.get(&path, Some(&agent)).await,
        s.patch(&path, Some(&agent), json!({ "mode": "paused" }))
            .await,
        s.post(&format!("{path}/read"), Some(&agent), json!({}))
            .await,
        s.post(
            "/chats/messages",
            Some(&agent),
            json!({ "chat_id": maria, "text": "hi", "sender": "agent" }),
        )
        .await,
        s.get("/chats/999", Some(&agent)).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
        assert_eq!(r.body, json!({ "detail": "Chat not found" }));
    }

    // The admin assigns it to the agent (user 2): now the agent sees it.
    let assigned = s
        .patch(
            &path,
            Some(&admin),
            json!({ "mode": "agent", "assigned_agent_id": 2 }),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    assert_eq!(s.get(&path, Some(&agent)).await.status, StatusCode::OK);
    assert_eq!(
        s.get("/chats/", Some(&agent))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        3
    );
    s.stop().await;
}

#[tokio::test]
async fn every_chat_route_needs_a_staff_token() {
    let (s, _dir) = server().await;
    for (method, path) in [
        (Method::GET, "/chats/"),
        (Method::GET, "/chats/1"),
        (Method::POST, "/chats/"),
        (Method::PATCH, "/chats/1"),
        (Method::POST, "/chats/messages"),
        (Method::POST, "/chats/1/read"),
    ] {
        let anonymous = s.call(method.clone(), path, None, Some(json!({}))).await;
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        assert_eq!(anonymous.body, json!({ "detail": "Not authenticated" }));
        let forged = s
            .call(
                method.clone(),
                path,
                Some("eyJhbGciOiJub25lIn0.e30."),
                Some(json!({})),
            )
            .await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(
            forged.body,
            json!({ "detail": "Could not validate credentials" })
        );
    }
    let wrong = s
        .post(
            "/auth/login",
            None,
            json!({ "identifier": "admin", "password": "admin124" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body,
        json!({ "detail": "Incorrect username or password" })
    );
    let nobody = s
        .post(
            "/auth/login",
            None,
            json!({ "identifier": "nobody", "password": "admin123" }),
        )
        .await;
    assert_eq!(nobody.body, wrong.body);
    s.stop().await;
}

#[tokio::test]
async fn a_channel_customer_is_answered_by_the_bot_until_an_agent_takes_over() {
    let (s, _dir) = server().await;
    let token = s.login("admin", "admin123").await;
    // POST /chats/ with the document's body.
    let created = s
        .post(
            "/chats/",
            Some(&token),
            json!({
                "customer_name": "New Customer",
                "customer_phone": "+62 812-xxxx-xxxx",
                "customer_email": "customer@email.com",
                "customer_address": "Jakarta",
                "channel": "Telegram"
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.body["id"], 5, "numbers follow the four demo chats");
    assert_eq!(
        (
            &created.body["name"],
            &created.body["channel"],
            &created.body["mode"]
        ),
        (&json!("New Customer"), &json!("Telegram"), &json!("bot"))
    );
    let path = "/chats/5";

    // A webhook relays the customer's message: the bot answers in bot mode.
    let relayed = s
        .post(
            "/chats/messages",
            Some(&token),
            json!({ "chat_id": 5, "text": "hello, where is my parcel?", "sender": "customer" }),
        )
        .await;
    assert_eq!(relayed.status, StatusCode::OK, "{}", relayed.text);
    assert_eq!(relayed.body["sender"], "customer");
    let detail = s.get(path, Some(&token)).await;
    let messages = detail.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[1]["sender"], "agent", "the bot's answer");
    assert_eq!(detail.body["unread"], 1);

    // Mark as read: unread drops, the customer's message shows read.
    let read = s
        .post(&format!("{path}/read"), Some(&token), json!({}))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.body["unread"], 0);
    let detail = s.get(path, Some(&token)).await;
    assert_eq!(detail.body["messages"][0]["status"], "read");

    // Assign to agent: the bot stops replying.
    let r = s
        .patch(
            path,
            Some(&token),
            json!({ "mode": "agent", "assigned_agent_id": 2, "online": true }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (&r.body["mode"], &r.body["online"]),
        (&json!("agent"), &json!(true))
    );
    let again = s
        .post(
            "/chats/messages",
            Some(&token),
            json!({ "chat_id": 5, "text": "anyone there?", "sender": "customer" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let detail = s.get(path, Some(&token)).await;
    let senders: Vec<&str> = detail.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sender"].as_str().unwrap())
        .collect();
    assert_eq!(senders, ["customer", "agent", "customer"]);
    assert_eq!(detail.body["unread"], 1);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_the_documents_error_shape() {
    let (s, _dir) = server().await;
    let token = s.login("admin", "admin123").await;
    let bad_mode = s
        .patch("/chats/1", Some(&token), json!({ "mode": "sleeping" }))
        .await;
    assert_eq!(bad_mode.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad_mode.body,
        json!({ "detail": "mode must be one of bot, agent, paused, closed" })
    );
    let bad_sender = s
        .post(
            "/chats/messages",
            Some(&token),
            json!({ "chat_id": 1, "text": "x", "sender": "bot" }),
        )
        .await;
    assert_eq!(bad_sender.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = s
        .post("/chats/", Some(&token), json!({ "channel": "Email" }))
        .await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        missing.text
    );
    assert!(missing.body["detail"].is_string());
    let huge = s
        .post(
            "/chats/messages",
            Some(&token),
            json!({ "chat_id": 1, "text": "x".repeat(100_000), "sender": "agent" }),
        )
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    let unknown_agent = s
        .patch("/chats/1", Some(&token), json!({ "assigned_agent_id": 99 }))
        .await;
    assert_eq!(unknown_agent.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_agent.body, json!({ "detail": "Agent not found" }));
    s.stop().await;
}

#[tokio::test]
async fn chats_and_their_numbers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    let token = s.login("admin", "admin123").await;
    let created = s
        .post(
            "/chats/",
            Some(&token),
            json!({ "customer_name": "Kept", "channel": "Email" }),
        )
        .await;
    assert_eq!(created.body["id"], 5);
    let sent = s
        .post(
            "/chats/messages",
            Some(&token),
            json!({ "chat_id": 5, "text": "still here", "sender": "agent" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    s.stop().await;

    // Same database, new process: the demo is not seeded twice, numbers hold.
    let s = start(dir.path()).await;
    let token = s.login("admin", "admin123").await;
    let list = s.get("/chats/", Some(&token)).await;
    assert_eq!(list.body.as_array().unwrap().len(), 5);
    let kept = s.get("/chats/5", Some(&token)).await;
    assert_eq!(kept.body["name"], "Kept");
    assert_eq!(kept.body["messages"][0]["text"], "still here");
    let next = s
        .post(
            "/chats/",
            Some(&token),
            json!({ "customer_name": "Next", "channel": "WhatsApp" }),
        )
        .await;
    assert_eq!(next.body["id"], 6);
    s.stop().await;
}
