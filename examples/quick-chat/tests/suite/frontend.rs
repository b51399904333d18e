//! The document's frontend as its backend code and setup describe it: a page on
//! `http://localhost:3000` calling `http://localhost:5000` with credentials, keeping only
//! `session.id` from the create answer. Then a page reload (a new page with the kept id),
//! and a stranger who has everything but that id.

use crate::common;

use example_quick_chat::ASSISTANT_REPLY;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

const PAGE: &str = "http://localhost:3000";

/// `fetch(url, { method, credentials: 'include', headers, body })` from the page: the
/// browser adds `Origin`, and the page may read the answer only if CORS allows its origin
/// with credentials.
async fn fetch(s: &common::Server, method: Method, path: &str, body: Option<Value>) -> Value {
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let mut headers = vec![("origin", PAGE)];
    if !text.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    let reply: common::Reply = s.send(method, path, &headers, text).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
    assert_eq!(reply.headers["access-control-allow-origin"], PAGE, "{path}");
    assert_eq!(reply.headers["access-control-allow-credentials"], "true");
    reply.body
}

#[tokio::test]
async fn the_frontend_flow_from_its_dev_origin_survives_a_page_reload() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("quick-chat.db")).await;

    // The visitor opens a chat; the page keeps `session.id` and nothing else.
    let created = fetch(
        &s,
        Method::POST,
        "/api/chat/sessions",
        Some(json!({ "email": "test@example.com", "name": "Test" })),
    )
    .await;
    let id = created["session"]["id"].as_str().unwrap().to_owned();
    let base = format!("/api/chat/sessions/{id}");
    let sent = fetch(
        &s,
        Method::POST,
        &format!("{base}/messages"),
        Some(json!({ "message": "Where is my order?" })),
    )
    .await;
    assert_eq!(sent["response"], ASSISTANT_REPLY);
    let asked = fetch(
        &s,
        Method::POST,
        &format!("{base}/request-agent"),
        Some(json!({})),
    )
    .await;
    assert_eq!(asked["session"]["status"], "waiting_agent");
    // The admin page answers, with its staff token.
    let answered = s
        .post(
            &format!("{base}/agent-message"),
            Some(&s.agent),
            json!({ "message": "It ships today." }),
        )
        .await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text);

    // The reload: a new page that kept the id reads the session and its whole history.
    let session = fetch(&s, Method::GET, &base, None).await;
    assert_eq!(session["session"]["id"], id.as_str());
    assert_eq!(session["session"]["status"], "active");
    let history = fetch(&s, Method::GET, &format!("{base}/messages"), None).await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["Where is my order?", ASSISTANT_REPLY, "It ships today."]
    );

    // A stranger knows the document's numbering and the session's conversation id (from
    // the admin list it cannot call without a token): 404 on every visitor route, and
    // the chat is unchanged.
    let conversation = s.get("/api/chat/sessions", Some(&s.admin)).await.body["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for guess in ["session_1".to_owned(), conversation] {
        let guessed = format!("/api/chat/sessions/{guess}");
        for (method, path, body) in [
            (Method::GET, guessed.clone(), None),
            (Method::GET, format!("{guessed}/messages"), None),
            (
                Method::POST,
                format!("{guessed}/messages"),
                Some(json!({ "message": "hi" })),
            ),
            (
                Method::POST,
                format!("{guessed}/request-agent"),
                Some(json!({})),
            ),
            (Method::POST, format!("{guessed}/end"), Some(json!({}))),
        ] {
            let reply = s.call(method, &path, None, body).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.body, json!({ "error": "Session not found" }));
        }
    }
    let list = s.get("/api/chat/sessions", None).await;
    assert_eq!(
        list.status,
        StatusCode::UNAUTHORIZED,
        "the admin list needs a token"
    );
    let after = fetch(&s, Method::GET, &format!("{base}/messages"), None).await;
    assert_eq!(after["messages"].as_array().unwrap().len(), 3);
    s.stop().await;
}
