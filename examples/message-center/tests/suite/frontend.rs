//! The document's dashboard code (`dashboard-admin/page.tsx`) as written: `loadChats`
//! (the list, then each chat's detail, every 5 seconds), `handleSendMessage` (which
//! appends the answer of `sendMessage` to the open chat without reloading it),
//! `assignToAgent` / `handlePauseChat`, all from `http://localhost:3000` with the token the
//! page keeps in localStorage. Then a page reload, and a visitor without that token.

use crate::common;

use common::{by_name, start};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

const PAGE: &str = "http://localhost:3000";

/// A `chatApi` call from the page: `Origin`, the stored bearer token, JSON.
async fn call(
    s: &common::Server,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("origin", PAGE)];
    if let Some(b) = &bearer {
        headers.push(("authorization", b.as_str()));
    }
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    if !text.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    let reply = s.send(method, path, &headers, text).await;
    assert_eq!(reply.headers["access-control-allow-origin"], PAGE, "{path}");
    (reply.status, reply.body)
}

/// `loadChats`: `getAllChats()`, then `getChatDetail(item.id)` for each.
async fn load_chats(s: &common::Server, token: &str) -> Vec<Value> {
    let (status, list) = call(s, Some(token), Method::GET, "/chats/", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut full = Vec::new();
    for item in list.as_array().unwrap() {
        let (status, chat) = call(
            s,
            Some(token),
            Method::GET,
            &format!("/chats/{}", item["id"]),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        full.push(chat);
    }
    full
}

#[tokio::test]
async fn the_dashboard_code_runs_as_written_and_a_reload_keeps_the_login() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    // The login form; the page stores `access_token` in localStorage.
    let (status, login) = call(
        &s,
        None,
        Method::POST,
        "/auth/login",
        Some(json!({ "identifier": "admin", "password": "admin123" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();

    let chats = load_chats(&s, &token).await;
    let active = by_name(&Value::Array(chats.clone()), "Maria Lopez").clone();
    let active_id = active["id"].as_u64().unwrap();

    // handleSendMessage: the answer is appended as is; the next refresh must show the
    // very same message, or the optimistic UI would flicker or duplicate it.
    let (status, new_message) = call(
        &s,
        Some(&token),
        Method::POST,
        "/chats/messages",
        Some(json!({ "chat_id": active_id, "text": "We open at nine.", "sender": "agent" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{new_message}");
    let mut optimistic = active["messages"].as_array().unwrap().clone();
    optimistic.push(new_message.clone());
    let refreshed = load_chats(&s, &token).await;
    let now = by_name(&Value::Array(refreshed), "Maria Lopez").clone();
    assert_eq!(
        now["messages"].as_array().unwrap(),
        &optimistic,
        "the refresh shows what the page already appended"
    );

    // assignToAgent, then handlePauseChat("paused") and ("bot"), each followed by
    // loadChatDetail.
    for mode in ["agent", "paused", "bot"] {
        let path = format!("/chats/{active_id}");
        let (status, _) = call(
            &s,
            Some(&token),
            Method::PATCH,
            &path,
            Some(json!({ "mode": mode })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{mode}");
        let (_, detail) = call(&s, Some(&token), Method::GET, &path, None).await;
        assert_eq!(detail["mode"], mode);
    }

    // A reload: the token is read back from localStorage and the dashboard loads again.
    let reloaded = load_chats(&s, &token).await;
    assert_eq!(reloaded.len(), chats.len());

    // The same calls without the token, as any page on the Internet could make them:
    // 401, and nothing sent.
    for (method, path, body) in [
        (Method::GET, "/chats/".to_owned(), None),
        (Method::GET, format!("/chats/{active_id}"), None),
        (
            Method::POST,
            "/chats/messages".to_owned(),
            Some(json!({ "chat_id": active_id, "text": "spoofed", "sender": "agent" })),
        ),
        (
            Method::PATCH,
            format!("/chats/{active_id}"),
            Some(json!({ "mode": "agent" })),
        ),
    ] {
        let (status, _) = call(&s, None, method, &path, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (_, detail) = call(
        &s,
        Some(&token),
        Method::GET,
        &format!("/chats/{active_id}"),
        None,
    )
    .await;
    assert!(!detail.to_string().contains("spoofed"));
    assert_eq!(detail["mode"], "bot");
    s.stop().await;
}
