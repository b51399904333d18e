//! Seed document 000 replayed against the template: its curl commands, the flow its
//! frontend follows (create, chat, ask for an agent, agent answers, end), and the
//! deviations that make it safe (staff tokens, unguessable ids, bounded bodies).

use crate::common;

use example_quick_chat::ASSISTANT_REPLY;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

fn session_id(reply: &common::Reply) -> String {
    reply.body["session"]["id"].as_str().unwrap().to_owned()
}

async fn create(s: &common::Server) -> String {
    let created = s
        .post(
            "/api/chat/sessions",
            None,
            json!({ "email": "test@example.com", "name": "Test" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    session_id(&created)
}

#[tokio::test]
async fn the_documents_curl_commands_answer_in_its_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("quick-chat.db")).await;

    // curl -X POST http://localhost:5000/api/chat/sessions -H "Content-Type: application/json"
    //   -d '{"email":"test@example.com","name":"Test"}'
    let created = s
        .send(
            Method::POST,
            "/api/chat/sessions",
            &[("content-type", "application/json")],
            r#"{"email":"test@example.com","name":"Test"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.body["success"], json!(true));
    let session = &created.body["session"];
    let keys: Vec<&str> = session
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["createdAt", "email", "id", "name", "status", "updatedAt"]
    );
    assert_eq!(session["email"], "test@example.com");
    assert_eq!(session["name"], "Test");
    assert_eq!(session["status"], "active");
    let id = session["id"].as_str().unwrap();
    // Not `session_1`: a 256-bit capability.
    assert!(id.starts_with("vt_") && id.len() > 40, "{id}");

    // curl http://localhost:5000/api/chat/sessions — the admin list needs a staff token.
    let anonymous = s.get("/api/chat/sessions", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.body,
        json!({ "error": "Authentication required" })
    );
    let listed = s.get("/api/chat/sessions", Some(&s.admin)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["success"], json!(true));
    let sessions = listed.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["email"], "test@example.com");
    assert_eq!(sessions[0]["status"], "active");
    // Staff see the conversation id, never the visitor's credential.
    assert_ne!(sessions[0]["id"], json!(id));
    s.stop().await;
}

#[tokio::test]
async fn a_visitor_chats_asks_for_an_agent_and_the_agent_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("quick-chat.db")).await;
    let id = create(&s).await;
    let base = format!("/api/chat/sessions/{id}");

    let got = s.get(&base, None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["session"]["id"], json!(id));
    // A trailing slash names the same endpoint; another method on it is 405 and an
    // unknown path below it 404, both in the document's error shape.
    let slash = s.get(&format!("{base}/"), None).await;
    assert_eq!(slash.body["session"]["id"], json!(id));
    let refused = s.call(Method::PUT, &base, None, None).await;
    assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.body, json!({ "error": "Method not allowed" }));
    let missing = s.get(&format!("{base}/nothing"), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, json!({ "error": "Not found" }));

    let sent = s
        .post(
            &format!("{base}/messages"),
            None,
            json!({ "message": "Hello there" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(sent.body["success"], json!(true));
    assert_eq!(sent.body["response"], json!(ASSISTANT_REPLY));
    assert_eq!(sent.body["session"]["status"], "active");

    let messages = s.get(&format!("{base}/messages"), None).await;
    assert_eq!(messages.status, StatusCode::OK);
    let list = messages.body["messages"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["text"], "Hello there");
    assert_eq!(list[0]["sender"], "user");
    assert_eq!(list[1]["text"], ASSISTANT_REPLY);
    assert_eq!(list[1]["sender"], "assistant");
    for m in list {
        let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "sender", "text", "timestamp"]);
    }

    let asked = s
        .post(&format!("{base}/request-agent"), None, json!({}))
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text);
    assert_eq!(asked.body["session"]["status"], "waiting_agent");

    // While waiting for a human the assistant stays quiet.
    let waiting = s
        .post(
            &format!("{base}/messages"),
            None,
            json!({ "message": "Anyone?" }),
        )
        .await;
    assert_eq!(waiting.status, StatusCode::OK);
    assert_eq!(waiting.body["response"], Value::Null);
    assert_eq!(waiting.body["session"]["status"], "waiting_agent");

    // The support agent finds it in the queue (by conversation id) and answers.
    let queue = s.get("/api/chat/sessions", Some(&s.agent)).await;
    let staff_id = queue.body["sessions"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(queue.body["sessions"][0]["status"], "waiting_agent");
    let answered = s
        .post(
            &format!("/api/chat/sessions/{staff_id}/agent-message"),
            Some(&s.agent),
            json!({ "message": "Hi, I am Sam from support." }),
        )
        .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text);
    assert_eq!(answered.body["success"], json!(true));
    assert_eq!(answered.body["message"]["sender"], "agent");
    assert_eq!(
        answered.body["message"]["text"],
        "Hi, I am Sam from support."
    );

    let messages = s.get(&format!("{base}/messages"), None).await;
    let texts: Vec<&str> = messages.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Hello there",
            ASSISTANT_REPLY,
            "Anyone?",
            "Hi, I am Sam from support."
        ]
    );

    let ended = s.post(&format!("{base}/end"), None, json!({})).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text);
    assert_eq!(ended.body["session"]["status"], "ended");
    // Ending twice answers with the ended session, as the document does.
    let again = s.post(&format!("{base}/end"), None, json!({})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["session"]["status"], "ended");
    s.stop().await;
}

#[tokio::test]
async fn staff_routes_refuse_visitors_and_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("quick-chat.db")).await;
    let id = create(&s).await;
    let base = format!("/api/chat/sessions/{id}");

    let patch = s
        .json(
            Method::PATCH,
            &base,
            None,
            Some(json!({ "status": "ended" })),
        )
        .await;
    assert_eq!(patch.status, StatusCode::UNAUTHORIZED);
    assert_eq!(patch.body, json!({ "error": "Authentication required" }));
    let agent_message = s
        .post(
            &format!("{base}/agent-message"),
            None,
            json!({ "message": "fake agent" }),
        )
        .await;
    assert_eq!(agent_message.status, StatusCode::UNAUTHORIZED);

    // The visitor's own credential is not a staff token.
    let as_visitor = s
        .post(
            &format!("{base}/agent-message"),
            Some(&id),
            json!({ "message": "fake" }),
        )
        .await;
    assert_eq!(as_visitor.status, StatusCode::FORBIDDEN);
    assert_eq!(as_visitor.body, json!({ "error": "Staff only" }));
    let list = s.get("/api/chat/sessions", Some(&id)).await;
    assert_eq!(list.status, StatusCode::FORBIDDEN);

    let forged = s
        .get("/api/chat/sessions", Some("eyJhbGciOiJub25lIn0.e30."))
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.body, json!({ "error": "Invalid or expired token" }));

    // Nothing reached the conversation.
    let messages = s.get(&format!("{base}/messages"), None).await;
    assert_eq!(messages.body["messages"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn guessed_session_ids_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("quick-chat.db")).await;
    let mine = create(&s).await;
    let theirs = create(&s).await;
    assert_ne!(mine, theirs);
    let listed = s.get("/api/chat/sessions", Some(&s.admin)).await;
    let conversation_id = listed.body["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let not_found = json!({ "error": "Session not found" });
    for guess in [
        "session_1".to_owned(),
        "session_2".to_owned(),
        format!("vt_{}", "A".repeat(43)),
        // A real conversation id opens nothing without a staff token.
        conversation_id.clone(),
    ] {
        for path in [
            format!("/api/chat/sessions/{guess}"),
            format!("/api/chat/sessions/{guess}/messages"),
        ] {
            let reply = s.get(&path, None).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.body, not_found, "{path}");
        }
        let posted = s
            .post(
                &format!("/api/chat/sessions/{guess}/messages"),
                None,
                json!({ "message": "hi" }),
            )
            .await;
        assert_eq!(posted.status, StatusCode::NOT_FOUND);
        let ended = s
            .post(&format!("/api/chat/sessions/{guess}/end"), None, json!({}))
            .await;
        assert_eq!(ended.status, StatusCode::NOT_FOUND);
    }
    // Staff get the document's 404 for unknown sessions too.
    let patch = s
        .json(
            Method::PATCH,
            "/api/chat/sessions/session_1",
            Some(&s.admin),
            Some(json!({ "status": "ended" })),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    assert_eq!(patch.body, not_found);
    let by_id = s
        .get(
            &format!("/api/chat/sessions/{conversation_id}"),
            Some(&s.admin),
        )
        .await;
    assert_eq!(by_id.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn patch_moves_the_status_along_the_engine_state_machine() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("quick-chat.db")).await;
    let id = create(&s).await;
    let path = format!("/api/chat/sessions/{id}");
    let patch = |body: Value| s.json(Method::PATCH, &path, Some(&s.admin), Some(body));

    let queued = patch(json!({ "status": "waiting_agent" })).await;
    assert_eq!(queued.status, StatusCode::OK, "{}", queued.text);
    assert_eq!(queued.body["success"], json!(true));
    assert_eq!(queued.body["session"]["status"], "waiting_agent");
    let ended = patch(json!({ "status": "ended" })).await;
    assert_eq!(ended.body["session"]["status"], "ended");
    let active = patch(json!({ "status": "active" })).await;
    assert_eq!(active.status, StatusCode::OK, "{}", active.text);
    assert_eq!(active.body["session"]["status"], "active");

    // A frontend may send the whole session back with one change.
    let mut whole = active.body["session"].clone();
    whole["status"] = json!("ended");
    let whole = patch(whole).await;
    assert_eq!(whole.status, StatusCode::OK, "{}", whole.text);
    assert_eq!(whole.body["session"]["status"], "ended");

    // The document's frontend edits the visitor's name and e-mail.
    let renamed = patch(json!({ "name": "Ada L.", "email": "Ada@Example.com" })).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.body["session"]["name"], "Ada L.");
    assert_eq!(renamed.body["session"]["email"], "ada@example.com");
    let got = s.get(&path, None).await;
    assert_eq!(got.body["session"]["name"], "Ada L.");
    let bad_email = patch(json!({ "email": "not an address" })).await;
    assert_eq!(
        bad_email.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_email.text
    );
    let number = patch(json!({ "name": 7 })).await;
    assert_eq!(number.status, StatusCode::BAD_REQUEST);
    // Not the visitor, whose session id is its credential: staff only.
    let by_visitor = s
        .json(
            Method::PATCH,
            &path,
            Some(&id),
            Some(json!({ "name": "Mallory" })),
        )
        .await;
    assert_ne!(by_visitor.status, StatusCode::OK);
    assert_eq!(s.get(&path, None).await.body["session"]["name"], "Ada L.");
    let other = patch(json!({ "createdAt": "2000-01-01T00:00:00Z" })).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        other.body,
        json!({ "error": "Field createdAt cannot be changed" })
    );
    let bad = patch(json!({ "status": "sleeping" })).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test]
async fn sessions_and_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("quick-chat.db");
    let s = common::start(&db).await;
    let id = create(&s).await;
    let sent = s
        .post(
            &format!("/api/chat/sessions/{id}/messages"),
            None,
            json!({ "message": "remember me" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK);
    s.stop().await;

    let s = common::start(&db).await;
    let got = s.get(&format!("/api/chat/sessions/{id}"), None).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.text);
    assert_eq!(got.body["session"]["email"], "test@example.com");
    let messages = s
        .get(&format!("/api/chat/sessions/{id}/messages"), None)
        .await;
    let list = messages.body["messages"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["text"], "remember me");
    s.stop().await;
}

#[tokio::test]
async fn cors_allows_credentials_for_the_documents_frontends_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("quick-chat.db")).await;
    for origin in ["http://localhost:3000", "http://localhost:5173"] {
        let preflight = s
            .send(
                Method::OPTIONS,
                "/api/chat/sessions",
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ],
                "",
            )
            .await;
        assert!(
            preflight.status.is_success(),
            "{origin}: {}",
            preflight.status
        );
        assert_eq!(preflight.headers["access-control-allow-origin"], origin);
        assert_eq!(
            preflight.headers["access-control-allow-credentials"],
            "true"
        );
    }
    let created = s
        .send(
            Method::POST,
            "/api/chat/sessions",
            &[
                ("origin", "http://localhost:5173"),
                ("content-type", "application/json"),
            ],
            r#"{"email":"cors@example.com"}"#,
        )
        .await;
    assert_eq!(
        created.headers["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let evil = s
        .send(
            Method::GET,
            "/api/chat/sessions",
            &[("origin", "http://evil.example")],
            "",
        )
        .await;
    assert!(!evil.headers.contains_key("access-control-allow-origin"));
    s.stop().await;
}

#[tokio::test]
async fn bodies_are_bounded_and_messages_required() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("quick-chat.db")).await;
    let id = create(&s).await;
    let path = format!("/api/chat/sessions/{id}/messages");
    let huge = s
        .post(&path, None, json!({ "message": "x".repeat(100_000) }))
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.body, json!({ "error": "Request body too large" }));
    let empty = s.post(&path, None, json!({})).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(empty.body, json!({ "error": "message is required" }));
    let broken = s
        .send(
            Method::POST,
            &path,
            &[("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.body, json!({ "error": "Invalid JSON" }));
    s.stop().await;
}
