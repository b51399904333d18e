//! Canned responses over `/v1`: shared (admins) and personal, prefix search for the picker,
//! placeholders filled by the server when posted, and bad input refused with nothing stored.

use crate::common;

use chat_core::Role;
use hyper::StatusCode;
use serde_json::{Value, json};

fn shortcuts(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["shortcut"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_and_personal_responses_are_found_by_prefix_and_kept_private() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let bob = server.staff("Bob", Role::Agent, &[]).await;

    let shared = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "/Greet", "title": "Greeting", "body": "Hello {{contact.name}}!" }),
        )
        .await;
    assert_eq!(shared.status, StatusCode::CREATED, "{}", shared.text);
    assert_eq!(shared.body["shortcut"], "greet");
    assert_eq!(shared.body["owner_id"], Value::Null);
    let personal = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "refund", "title": "Refund policy", "body": "Refunds take 5 days." }),
        )
        .await;
    assert_eq!(personal.status, StatusCode::CREATED, "{}", personal.text);
    assert_eq!(personal.body["owner_id"], json!(ann.id));
    let personal_id = personal.body["id"].as_str().unwrap();

    let anns = server.get("/v1/canned-responses", Some(&ann.token)).await;
    assert_eq!(shortcuts(&anns.body), ["greet", "refund"]);
    let bobs = server.get("/v1/canned-responses", Some(&bob.token)).await;
    assert_eq!(shortcuts(&bobs.body), ["greet"]);

    // As the agent types: shortcut or title prefix, any case.
    for (q, expected) in [
        ("re", vec!["refund"]),
        ("GR", vec!["greet"]),
        ("ref", vec!["refund"]),
        ("x", vec![]),
    ] {
        let found = server
            .get(&format!("/v1/canned-responses?q={q}"), Some(&ann.token))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.text);
        assert_eq!(shortcuts(&found.body), expected, "q={q}");
    }
    let by_title = server
        .get("/v1/canned-responses?q=refund%20p", Some(&ann.token))
        .await;
    assert_eq!(shortcuts(&by_title.body), ["refund"]);

    // Another agent's personal response does not exist for Bob.
    let path = format!("/v1/canned-responses/{personal_id}");
    let hidden = server.get(&path, Some(&bob.token)).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let untouched = server
        .patch(&path, Some(&bob.token), json!({ "title": "mine now" }))
        .await;
    assert_eq!(untouched.status, StatusCode::NOT_FOUND);

    let changed = server
        .patch(
            &path,
            Some(&ann.token),
            json!({ "body": "Refunds take 3 days." }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["body"], "Refunds take 3 days.");
    assert_eq!(changed.body["shortcut"], "refund");
    let deleted = server.delete(&path, Some(&ann.token)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = server.get(&path, Some(&ann.token)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_manage_shared_responses_and_customers_get_none() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let shared = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "greet", "title": "Greeting", "body": "Hello!" }),
        )
        .await;
    let path = format!(
        "/v1/canned-responses/{}",
        shared.body["id"].as_str().unwrap()
    );

    let create = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shared": true, "shortcut": "bye", "title": "Bye", "body": "Bye!" }),
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN, "{}", create.text);
    let patch = server
        .patch(&path, Some(&ann.token), json!({ "body": "Yo" }))
        .await;
    assert_eq!(patch.status, StatusCode::FORBIDDEN);
    let delete = server.delete(&path, Some(&ann.token)).await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    let read = server.get(&path, Some(&ann.token)).await;
    assert_eq!(read.body["body"], "Hello!");

    let (_, visitor) = server.visitor("v@example.com").await;
    let listed = server.get("/v1/canned-responses", Some(&visitor)).await;
    assert_eq!(listed.status, StatusCode::FORBIDDEN);
    let anonymous = server.get("/v1/canned-responses", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_responses_are_refused_and_store_nothing() {
    let server = common::start().await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let ok = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "hi", "title": "Hi", "body": "Hi {{ contact.name }}" }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);

    for (body, field) in [
        (
            json!({ "shortcut": "x", "title": "X", "body": "Hi {{contact.nmae}}" }),
            "body",
        ),
        (
            json!({ "shortcut": "x", "title": "X", "body": "Hi {{contact.name" }),
            "body",
        ),
        (
            json!({ "shortcut": "two words", "title": "X", "body": "Hi" }),
            "shortcut",
        ),
        (
            json!({ "shortcut": "x", "title": "  ", "body": "Hi" }),
            "title",
        ),
        (json!({ "shortcut": "x", "title": "X", "body": "" }), "body"),
    ] {
        let reply = server
            .post("/v1/canned-responses", Some(&ann.token), body.clone())
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], field, "{body}");
    }
    let unknown = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "x", "title": "X", "body": "Hi {{contact.nmae}}" }),
        )
        .await;
    assert!(unknown.text.contains("contact.nmae"), "{}", unknown.text);

    let taken = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "HI", "title": "Again", "body": "Hello" }),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);

    let path = format!("/v1/canned-responses/{}", ok.body["id"].as_str().unwrap());
    let bad_patch = server
        .patch(
            &path,
            Some(&ann.token),
            json!({ "body": "{{agent.nickname}}" }),
        )
        .await;
    assert_eq!(bad_patch.status, StatusCode::UNPROCESSABLE_ENTITY);

    let listed = server.get("/v1/canned-responses", Some(&ann.token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["body"], "Hi {{ contact.name }}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_a_response_fills_its_placeholders_for_the_conversation() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let created = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "greet", "title": "Greeting",
                    "body": "Hello {{contact.name}}, {{agent.name}} here. Your reference: {{conversation.id}}." }),
        )
        .await;
    let canned_id = created.body["id"].as_str().unwrap().to_owned();
    let (conversation, visitor) = server.visitor("v@example.com").await;
    let expected = format!("Hello Visitor, Ada here. Your reference: {conversation}.");

    let picker = server
        .get(
            &format!("/v1/canned-responses?q=gr&conversation_id={conversation}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(picker.status, StatusCode::OK, "{}", picker.text);
    assert_eq!(picker.body["items"][0]["preview"], json!(expected));

    let path = format!("/v1/conversations/{conversation}/canned");
    let body = json!({ "canned_response_id": canned_id, "client_message_id": "c-1" });
    let posted = server.post(&path, Some(&admin.token), body.clone()).await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    assert_eq!(posted.body["message"]["body"], json!(expected));
    assert_eq!(
        posted.body["message"]["metadata"]["canned_response_id"],
        json!(canned_id)
    );
    let again = server.post(&path, Some(&admin.token), body).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the same client_message_id stores one message"
    );

    let seen = server
        .get(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&visitor),
        )
        .await;
    let bodies: Vec<_> = seen.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == json!(expected))
        .collect();
    assert_eq!(bodies.len(), 1, "{}", seen.text);

    // An unknown response or another agent's is 404; a customer cannot post one.
    let missing = server
        .post(
            &path,
            Some(&admin.token),
            json!({ "canned_response_id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    let by_visitor = server
        .post(
            &path,
            Some(&visitor),
            json!({ "canned_response_id": canned_id }),
        )
        .await;
    assert_eq!(by_visitor.status, StatusCode::FORBIDDEN);
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

/// The canned-response event frames a socket receives until the one about the shared
/// response with shortcut `end` (events arrive in log order, so it marks the end).
async fn canned_events_until_end(ws: &mut Ws) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let f = frame(ws).await;
        if f["type"] != "event" || !f["event"].as_str().unwrap().starts_with("canned_response") {
            continue;
        }
        let done = f["data"]["canned_response"]["shortcut"] == "end";
        seen.push(f);
        if done {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consoles_receive_canned_response_changes_live_and_personal_ones_only_their_owner() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let bob = server.staff("Bob", Role::Agent, &[]).await;
    let (_, visitor) = server.visitor("v@example.com").await;
    let mut admins = live(&server, &admin.token).await;
    let mut anns = live(&server, &ann.token).await;
    let mut bobs = live(&server, &bob.token).await;

    let shared = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "greet", "title": "Greeting", "body": "Hello!" }),
        )
        .await;
    assert_eq!(shared.status, StatusCode::CREATED, "{}", shared.text);
    let personal = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "mine", "title": "Ann's own", "body": "Between us." }),
        )
        .await;
    assert_eq!(personal.status, StatusCode::CREATED, "{}", personal.text);
    let personal_path = format!(
        "/v1/canned-responses/{}",
        personal.body["id"].as_str().unwrap()
    );
    let edited = server
        .patch(
            &personal_path,
            Some(&ann.token),
            json!({ "body": "Changed." }),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.text);
    let shared_path = format!(
        "/v1/canned-responses/{}",
        shared.body["id"].as_str().unwrap()
    );
    let renamed = server
        .patch(
            &shared_path,
            Some(&admin.token),
            json!({ "title": "Hello" }),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    let gone = server.delete(&personal_path, Some(&ann.token)).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.text);
    // A refused change (a shortcut taken) sends nothing.
    let taken = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "greet", "title": "Again", "body": "Hi" }),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    let end = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "end", "title": "End", "body": "Bye" }),
        )
        .await;
    assert_eq!(end.status, StatusCode::CREATED, "{}", end.text);

    let summary = |frames: &[Value]| -> Vec<(String, String)> {
        frames
            .iter()
            .map(|f| {
                let what = f["data"]["canned_response"]["body"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("deleted {}", f["data"]["canned_response_id"]));
                (f["event"].as_str().unwrap().to_owned(), what)
            })
            .collect()
    };
    let deleted = format!("deleted {}", personal.body["id"]);
    let ann_saw = canned_events_until_end(&mut anns).await;
    assert_eq!(
        summary(&ann_saw),
        [
            ("canned_response_updated".into(), "Hello!".into()),
            ("canned_response_updated".into(), "Between us.".into()),
            ("canned_response_updated".into(), "Changed.".into()),
            ("canned_response_updated".into(), "Hello!".into()),
            ("canned_response_deleted".into(), deleted.clone()),
            ("canned_response_updated".into(), "Bye".into()),
        ]
    );
    assert_eq!(ann_saw[3]["data"]["canned_response"]["title"], "Hello");
    assert_eq!(ann_saw[4]["data"]["owner_id"], json!(ann.id));

    // Colleagues, the admin included, learn only of the shared ones.
    for socket in [&mut bobs, &mut admins] {
        let saw = canned_events_until_end(socket).await;
        assert_eq!(
            summary(&saw),
            [
                ("canned_response_updated".into(), "Hello!".into()),
                ("canned_response_updated".into(), "Hello!".into()),
                ("canned_response_updated".into(), "Bye".into()),
            ]
        );
    }
    // A visitor's log holds none of them.
    let events = server
        .get("/v1/events?since=0&limit=1000", Some(&visitor))
        .await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text);
    assert!(
        events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["payload"]["type"]
                .as_str()
                .unwrap()
                .starts_with("canned_response")),
        "{}",
        events.text
    );
}
