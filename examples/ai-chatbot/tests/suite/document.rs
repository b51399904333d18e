//! Seed document 004 replayed against the template: sign up, the OAuth2 password form,
//! `/users/me`, personal chats with their trailing slashes, AI replies (rule bot and a
//! local OpenAI-compatible endpoint), `/ws?token=` with replay after a reconnect, and
//! the safety the document lacks (one user never reads another's chats).

use crate::common;

use std::time::Duration;

use example_ai_chatbot::LlmSettings;
use futures_util::StreamExt;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Frame;

async fn sign_up_and_login(s: &common::Server, name: &str) -> String {
    let user = s
        .post(
            "/users/",
            None,
            json!({ "username": name, "email": format!("{name}@example.com"), "password": "secret-pw" }),
        )
        .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    let token = s
        .send(
            Method::POST,
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("username={name}&password=secret-pw"),
        )
        .await;
    assert_eq!(token.status, StatusCode::OK, "{}", token.text);
    assert_eq!(token.body["token_type"], "bearer");
    token.body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_documents_endpoints_answer_in_its_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("ai.db"), None).await;

    let user = s
        .post(
            "/users/",
            None,
            json!({ "username": "ada", "email": "ada@example.com", "password": "secret-pw" }),
        )
        .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    let keys: Vec<&str> = user
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["email", "id", "username"]);
    assert_eq!(user.body["username"], "ada");
    let again = s
        .post(
            "/users/",
            None,
            json!({ "username": "ada", "email": "other@example.com", "password": "x" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        again.body,
        json!({ "detail": "Username already registered" })
    );
    let missing = s.post("/users/", None, json!({ "username": "bob" })).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["detail"][0]["type"], "missing");
    assert_eq!(missing.body["detail"][0]["loc"], json!(["body", "email"]));
    assert_eq!(
        missing.body["detail"][1]["loc"],
        json!(["body", "password"])
    );

    let wrong = s
        .send(
            Method::POST,
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            "username=ada&password=nope",
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body,
        json!({ "detail": "Incorrect username or password" })
    );
    assert_eq!(wrong.headers["www-authenticate"], "Bearer");
    let token = s
        .send(
            Method::POST,
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            "username=ada&password=secret-pw",
        )
        .await;
    assert_eq!(token.status, StatusCode::OK);
    let token = token.body["access_token"].as_str().unwrap().to_owned();

    let me = s.get("/users/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body, user.body);
    let anonymous = s.get("/users/me", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body, json!({ "detail": "Not authenticated" }));
    let forged = s.get("/users/me", Some("vt_forged")).await;
    assert_eq!(
        forged.body,
        json!({ "detail": "Could not validate credentials" })
    );

    let chat = s
        .post("/chats/", Some(&token), json!({ "title": "Trip ideas" }))
        .await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.text);
    let keys: Vec<&str> = chat
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "id",
            "is_pinned",
            "last_message_content",
            "last_message_time",
            "title"
        ]
    );
    assert_eq!(chat.body["title"], "Trip ideas");
    assert_eq!(chat.body["is_pinned"], json!(false));
    let id = chat.body["id"].as_str().unwrap().to_owned();

    let sent = s
        .post(
            &format!("/chats/{id}/messages/"),
            Some(&token),
            json!({ "content": "hello", "type": "text" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(sent.body["sender"], "ai");
    assert_eq!(sent.body["content"], "Hello! How can I help you today?");
    let keys: Vec<&str> = sent
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "content",
            "id",
            "importance_level",
            "media_urls",
            "reply_to_id",
            "sender",
            "status",
            "timestamp",
            "type"
        ]
    );

    let messages = s.get(&format!("/chats/{id}/messages/"), Some(&token)).await;
    let list = messages.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[0]["sender"].as_str(), list[0]["content"].as_str()),
        (Some("user"), Some("hello"))
    );
    assert_eq!(list[1]["sender"], "ai");

    let chats = s.get("/chats/", Some(&token)).await;
    assert_eq!(chats.body.as_array().unwrap().len(), 1);
    assert_eq!(
        chats.body[0]["last_message_content"],
        "Hello! How can I help you today?"
    );
    let one = s.get(&format!("/chats/{id}"), Some(&token)).await;
    assert_eq!(one.body["id"], json!(id));

    // FastAPI's redirect_slashes for the other spelling.
    let redirect = s.get("/chats", Some(&token)).await;
    assert_eq!(redirect.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(redirect.headers["location"], "/chats/");
    let redirect = s.get(&format!("/chats/{id}/"), Some(&token)).await;
    assert_eq!(redirect.status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(redirect.headers["location"], format!("/chats/{id}"));
    let redirect = s.get(&format!("/chats/{id}/messages"), Some(&token)).await;
    assert_eq!(
        redirect.headers["location"],
        format!("/chats/{id}/messages/")
    );
    // A documented path with another method is FastAPI's 405; an unknown path is the
    // built-in API's 404.
    let refused = s.call(Method::DELETE, "/token", None, None).await;
    assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.body, json!({ "detail": "Method Not Allowed" }));
    let unknown = s.get("/chats/1/2/3", Some(&token)).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad = s
        .post(
            &format!("/chats/{id}/messages/"),
            Some(&token),
            json!({ "type": "text" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["detail"][0]["loc"], json!(["body", "content"]));
    s.stop().await;
}

#[tokio::test]
async fn one_user_never_reads_another_users_chats() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("ai.db"), None).await;
    let ada = sign_up_and_login(&s, "ada").await;
    let bob = sign_up_and_login(&s, "bob").await;
    let chat = s
        .post("/chats/", Some(&ada), json!({ "title": "Private" }))
        .await;
    let id = chat.body["id"].as_str().unwrap();
    let not_found = json!({ "detail": "Chat not found" });
    for path in [format!("/chats/{id}"), format!("/chats/{id}/messages/")] {
        let reply = s.get(&path, Some(&bob)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.body, not_found);
    }
    let post = s
        .post(
            &format!("/chats/{id}/messages/"),
            Some(&bob),
            json!({ "content": "hi" }),
        )
        .await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/chats/", Some(&bob)).await.body, json!([]));
    // Staff tokens are not users of this API.
    assert_eq!(
        s.get("/chats/", Some(&s.admin)).await.status,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

#[tokio::test]
async fn the_llm_answers_when_an_endpoint_is_configured() {
    let (base, seen) = common::fake_openai("Paris is lovely in spring.").await;
    let dir = tempfile::tempdir().unwrap();
    let llm = LlmSettings {
        base_url: base,
        model: "gpt-3.5-turbo".into(),
        api_key: Some("sk-test".into()),
        system_prompt: None,
    };
    let s = common::start(&dir.path().join("ai.db"), Some(llm)).await;
    let token = sign_up_and_login(&s, "ada").await;
    let chat = s
        .post("/chats/", Some(&token), json!({ "title": "Travel" }))
        .await;
    let id = chat.body["id"].as_str().unwrap();
    let sent = s
        .post(
            &format!("/chats/{id}/messages/"),
            Some(&token),
            json!({ "content": "Where should I go?", "type": "text" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(sent.body["content"], "Paris is lovely in spring.");
    assert_eq!(sent.body["sender"], "ai");
    let request = seen.lock().unwrap()[0].clone();
    assert_eq!(request["model"], "gpt-3.5-turbo");
    let messages = request["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[0]["content"], "You are a helpful assistant.");
    assert_eq!(messages.last().unwrap()["content"], "Where should I go?");
    s.stop().await;
}

async fn next_json(
    ws: &mut (impl StreamExt<Item = Result<Frame, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame arrives")
            .unwrap()
            .unwrap();
        if let Frame::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn the_socket_pushes_new_messages_and_replays_what_a_reconnect_missed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ai.db");
    let s = common::start(&db, None).await;
    let token = sign_up_and_login(&s, "ada").await;
    let chat = s
        .post("/chats/", Some(&token), json!({ "title": "Live" }))
        .await;
    let id = chat.body["id"].as_str().unwrap().to_owned();
    let ws_url = format!("{}/ws?token={token}", s.base.replace("http", "ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();

    let path = format!("/chats/{id}/messages/");
    s.post(&path, Some(&token), json!({ "content": "hello" }))
        .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let frame = next_json(&mut ws).await;
        if frame["type"] == "new_message" {
            assert_eq!(frame["chat_id"], json!(id));
            got.push(frame);
        }
    }
    assert_eq!(got[0]["message"]["sender"], "user");
    assert_eq!(got[1]["message"]["sender"], "ai");
    let last_seq = got[1]["seq"].as_u64().unwrap();
    drop(ws);

    // Offline: another message and its answer; the reconnect with `since` gets both, once.
    s.post(
        &path,
        Some(&token),
        json!({ "content": "what are your hours?" }),
    )
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}&since={last_seq}"))
        .await
        .unwrap();
    let mut replayed = Vec::new();
    while replayed.len() < 2 {
        let frame = next_json(&mut ws).await;
        if frame["type"] == "new_message" {
            replayed.push(frame["message"]["content"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        replayed,
        [
            "what are your hours?",
            "We are open Monday to Friday, 9:00 to 17:00."
        ]
    );

    // Another user's socket hears nothing of it; a bad token is refused.
    let bad = tokio_tungstenite::connect_async(format!(
        "{}/ws?token=vt_nope",
        s.base.replace("http", "ws")
    ))
    .await;
    assert!(bad.is_err());
    s.stop().await;

    // Users, chats and messages survive a restart on the same database.
    let s = common::start(&db, None).await;
    let token = s
        .send(
            Method::POST,
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            "username=ada&password=secret-pw",
        )
        .await
        .body["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let messages = s.get(&path, Some(&token)).await;
    assert_eq!(messages.body.as_array().unwrap().len(), 4);
    s.stop().await;
}
