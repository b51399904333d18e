//! The document's React widget (`useLiveChat`, seed 003 "Usage Examples") exactly as
//! written: it makes its own `sessionId`, sends it in the create call, then uses that id
//! for `/messages`, `/typing`, `/upload` and `ws://…/ws/live-chat?sessionId=…`, and never
//! reads an id back. Cookies ride along as a browser carries them (by path, HttpOnly,
//! SameSite=Strict). Then the attacker: the right id without the cookie reads and writes
//! nothing, sockets included, and a second create with the id takes nothing over.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::Server;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// `session-${Date.now()}-${Math.random().toString(36).substr(2, 9)}`.
fn widget_session_id(salt: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let ms = now.as_millis();
    // Nine base-36 digits, as `Math.random().toString(36).substr(2, 9)` gives.
    let mut n =
        (u64::from(now.subsec_nanos()) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 36u64.pow(9);
    let mut digits = String::new();
    for _ in 0..9 {
        digits.insert(0, char::from_digit((n % 36) as u32, 36).unwrap());
        n /= 36;
    }
    format!("session-{ms}-{digits}")
}

/// A cookie as a browser keeps it.
#[derive(Clone, Debug)]
struct Cookie {
    name: String,
    value: String,
    path: String,
    http_only: bool,
    same_site_strict: bool,
    secure: bool,
}

/// A browser on the template's origin: a cookie jar, `fetch` and `new WebSocket`.
#[derive(Clone, Default)]
struct Browser {
    jar: Vec<Cookie>,
}

impl Browser {
    /// RFC 6265 §5.1.4: a cookie's path matches the request path or a `/`-boundary prefix.
    fn cookie_header(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let sent: Vec<String> = self
            .jar
            .iter()
            .filter(|c| {
                path == c.path
                    || (path.starts_with(&c.path)
                        && (c.path.ends_with('/') || path[c.path.len()..].starts_with('/')))
            })
            // Plain http on 127.0.0.1: a `Secure` cookie is not sent.
            .filter(|c| !c.secure)
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!sent.is_empty()).then(|| sent.join("; "))
    }

    fn keep(&mut self, reply: &common::Reply) {
        for set in reply.headers.get_all("set-cookie") {
            let text = set.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let mut cookie = Cookie {
                name: name.to_owned(),
                value: value.to_owned(),
                path: "/".to_owned(),
                http_only: false,
                same_site_strict: false,
                secure: false,
            };
            for attribute in parts {
                match attribute.split_once('=') {
                    Some(("Path", p)) => cookie.path = p.to_owned(),
                    Some(("SameSite", "Strict")) => cookie.same_site_strict = true,
                    _ if attribute == "HttpOnly" => cookie.http_only = true,
                    _ if attribute == "Secure" => cookie.secure = true,
                    _ => {}
                }
            }
            self.jar
                .retain(|c| !(c.name == cookie.name && c.path == cookie.path));
            self.jar.push(cookie);
        }
    }

    /// `fetch(path, { method, headers: { 'Content-Type': 'application/json' }, body })`.
    async fn fetch(
        &mut self,
        s: &Server,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> common::Reply {
        let cookie = self.cookie_header(path);
        let mut headers = vec![];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        if let Some(cookie) = &cookie {
            headers.push(("cookie", cookie.as_str()));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let reply = s.http.send(method, path, &headers, body).await;
        self.keep(&reply);
        reply
    }

    /// A multipart form, as `fetch` with a `FormData` body sends it.
    async fn form(
        &mut self,
        s: &Server,
        path: &str,
        fields: &[(&str, &str)],
        file: &[u8],
    ) -> common::Reply {
        let (content_type, body) =
            chat_server::testing::multipart(fields, &[("files", "note.txt", "text/plain", file)]);
        let mut headers = vec![("content-type", content_type.as_str())];
        let cookie = self.cookie_header(path);
        if let Some(cookie) = &cookie {
            headers.push(("cookie", cookie.as_str()));
        }
        let reply = s.http.send(Method::POST, path, &headers, body).await;
        self.keep(&reply);
        reply
    }

    /// `new WebSocket('ws://…/ws/live-chat?…')`: the handshake carries the cookies for
    /// its path, as a same-site browser sends them. Ok with the socket after its
    /// `connection_established`, or Err with the handshake's status.
    async fn socket(&self, s: &Server, query: &str) -> Result<common::Ws, StatusCode> {
        let path = format!("/ws/live-chat?{query}");
        let mut request = s.http.ws_url(&path).into_client_request().unwrap();
        if let Some(cookie) = self.cookie_header(&path) {
            request
                .headers_mut()
                .insert("cookie", cookie.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => {
                let mut ws = common::Ws(ws);
                assert_eq!(ws.next().await["type"], "connection_established");
                Ok(ws)
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

/// `startSession(user)`, exactly as the widget calls it.
async fn start_session(s: &Server, browser: &mut Browser, session_id: &str) -> common::Reply {
    browser
        .fetch(
            s,
            Method::POST,
            "/api/live-chat/sessions",
            Some(json!({
                "sessionId": session_id,
                "user": { "name": "John Doe", "email": "john@example.com" },
            })),
        )
        .await
}

fn not_found(reply: &common::Reply, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "{what}: {}",
        reply.body
    );
    assert_eq!(
        reply.body,
        json!({ "success": false, "message": "Session not found" }),
        "{what}"
    );
}

#[tokio::test]
async fn the_documents_widget_runs_unchanged_with_its_own_session_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let mut browser = Browser::default();
    let session_id = widget_session_id(1);

    // startSession: `if (data.success) { setMessages([data.data.welcomeMessage]); connectWebSocket(); }`
    let data = start_session(&s, &mut browser, &session_id).await;
    assert_eq!(data.status, StatusCode::CREATED, "{}", data.body);
    assert_eq!(data.body["success"], true);
    assert_eq!(
        data.body["data"]["session"]["sessionId"],
        session_id.as_str()
    );
    let welcome = &data.body["data"]["welcomeMessage"];
    assert_eq!(welcome["sessionId"], session_id.as_str());
    assert_eq!(
        welcome["content"],
        "Welcome John Doe! A support agent will be with you shortly."
    );
    // The cookie: one per path the widget uses, HttpOnly, SameSite=Strict, not Secure
    // over plain http, holding a 256-bit token (43 base64url characters after `vt_`).
    assert_eq!(browser.jar.len(), 2, "{:?}", browser.jar);
    let mut paths: Vec<&str> = browser.jar.iter().map(|c| c.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/api/live-chat", "/ws/live-chat"]);
    for cookie in &browser.jar {
        assert!(cookie.http_only && cookie.same_site_strict && !cookie.secure);
        assert_eq!(cookie.name, format!("lc_{session_id}"));
        assert_eq!(cookie.value.len(), 3 + 43);
    }

    // connectWebSocket: `ws://localhost:5000/ws/live-chat?sessionId=${sessionId}`.
    let mut ws = browser
        .socket(&s, &format!("sessionId={session_id}"))
        .await
        .expect("the widget's socket opens");

    // sendMessage: `POST /api/live-chat/sessions/${sessionId}/messages`, `{ content }`.
    let sent = browser
        .fetch(
            &s,
            Method::POST,
            &format!("/api/live-chat/sessions/{session_id}/messages"),
            Some(json!({ "content": "Hello, I need help with my order" })),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["success"], true);
    assert_eq!(
        sent.body["data"]["content"],
        "Hello, I need help with my order"
    );

    // The typing and upload routes the document lists, with the same id.
    let typing = browser
        .fetch(
            &s,
            Method::POST,
            &format!("/api/live-chat/sessions/{session_id}/typing"),
            Some(json!({ "isTyping": true })),
        )
        .await;
    assert_eq!(typing.status, StatusCode::OK, "{}", typing.body);
    let uploaded = browser
        .form(
            &s,
            "/api/live-chat/upload",
            &[("sessionId", &session_id)],
            b"order 42",
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.body);
    let url = uploaded.body["data"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&format!("/api/live-chat/sessions/{session_id}/")));
    let file = browser.fetch(&s, Method::GET, &url, None).await;
    assert_eq!(&file.bytes[..], b"order 42");

    // sendTyping: `ws.send(JSON.stringify({ type: 'typing', isTyping }))`; the agent,
    // subscribed to the session by its id, sees it.
    let mut dashboard = s
        .socket(&format!(
            "admin=true&userId={}&token={}",
            s.jane.id, s.jane.token
        ))
        .await;
    dashboard
        .send(json!({ "type": "subscribe_session", "sessionId": session_id }))
        .await;
    // The subscription is processed in order: a ping after it is answered after it.
    dashboard.send(json!({ "type": "ping" })).await;
    dashboard.next_of("pong").await;
    ws.send(json!({ "type": "typing", "isTyping": true })).await;
    let seen = dashboard.next_of("user_typing").await;
    assert_eq!(seen["sessionId"], session_id.as_str());

    // `if (data.type === 'agent_message') setMessages(prev => [...prev, data.message])`.
    let reply = s
        .post(
            &format!("/api/admin/live-chat/sessions/{session_id}/reply"),
            Some(&s.jane.token),
            json!({ "content": "Hi John, let me look at order 42." }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let answer = ws.next_of("agent_message").await;
    assert_eq!(answer["sessionId"], session_id.as_str());
    assert_eq!(
        answer["message"]["content"],
        "Hi John, let me look at order 42."
    );

    // Staff address the session by the widget's id too, without any cookie.
    let details = s
        .get(
            &format!("/api/admin/live-chat/sessions/{session_id}"),
            Some(&s.admin.token),
        )
        .await;
    assert_eq!(details.status, StatusCode::OK);
    assert_eq!(
        details.body["data"]["session"]["sessionId"],
        session_id.as_str()
    );
    ws.close().await;
    dashboard.close().await;
    s.stop().await;
}

#[tokio::test]
async fn a_page_reload_keeps_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let mut browser = Browser::default();
    let session_id = widget_session_id(2);
    start_session(&s, &mut browser, &session_id).await;
    browser
        .fetch(
            &s,
            Method::POST,
            &format!("/api/live-chat/sessions/{session_id}/messages"),
            Some(json!({ "content": "before the reload" })),
        )
        .await;

    // The reload: page state is gone, the browser's cookies are not.
    let mut reloaded = browser.clone();
    let session = reloaded
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    let history = reloaded
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}/messages"),
            None,
        )
        .await;
    assert_eq!(history.body["total"], 2, "{}", history.body);
    assert_eq!(history.body["data"][1]["content"], "before the reload");
    reloaded
        .socket(&s, &format!("sessionId={session_id}"))
        .await
        .expect("the socket reopens")
        .close()
        .await;
    // A widget that runs `startSession` again with its id gets the same session back.
    let again = start_session(&s, &mut reloaded, &session_id).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["success"], true);
    assert_eq!(
        again.body["data"]["session"]["sessionId"],
        session_id.as_str()
    );
    assert_eq!(
        again.body["data"]["session"]["messageCount"], 2,
        "nothing opened twice"
    );
    assert!(again.body["data"]["welcomeMessage"]["content"].is_string());
    s.stop().await;
}

#[tokio::test]
async fn a_guesser_with_the_id_but_not_the_cookie_gets_404_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let mut victim = Browser::default();
    let session_id = widget_session_id(3);
    start_session(&s, &mut victim, &session_id).await;
    victim
        .fetch(
            &s,
            Method::POST,
            &format!("/api/live-chat/sessions/{session_id}/messages"),
            Some(json!({ "content": "my card ends in 4242" })),
        )
        .await;
    let uploaded = victim
        .form(
            &s,
            "/api/live-chat/upload",
            &[("sessionId", &session_id)],
            b"private",
        )
        .await;
    let file_url = uploaded.body["data"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();

    // The attacker knows the id; another session's cookie, renamed, does not help.
    let mut own = Browser::default();
    start_session(&s, &mut own, &widget_session_id(4)).await;
    let stolen_name = Browser {
        jar: own
            .jar
            .iter()
            .map(|c| Cookie {
                name: format!("lc_{session_id}"),
                ..c.clone()
            })
            .collect(),
    };
    for mut attacker in [Browser::default(), stolen_name] {
        let base = format!("/api/live-chat/sessions/{session_id}");
        for (method, path, body) in [
            (Method::GET, base.clone(), None),
            (Method::GET, format!("{base}/messages"), None),
            (
                Method::POST,
                format!("{base}/messages"),
                Some(json!({ "content": "injected" })),
            ),
            (
                Method::POST,
                format!("{base}/typing"),
                Some(json!({ "isTyping": true })),
            ),
            (
                Method::POST,
                format!("{base}/rate"),
                Some(json!({ "score": 1 })),
            ),
            (Method::PATCH, format!("{base}/end"), Some(json!({}))),
            (Method::GET, file_url.clone(), None),
        ] {
            let reply = attacker.fetch(&s, method, &path, body).await;
            not_found(&reply, &path);
        }
        let upload = attacker
            .form(
                &s,
                "/api/live-chat/upload",
                &[("sessionId", &session_id)],
                b"x",
            )
            .await;
        not_found(&upload, "upload");
        assert_eq!(
            attacker
                .socket(&s, &format!("sessionId={session_id}"))
                .await
                .err(),
            Some(StatusCode::NOT_FOUND),
            "the socket handshake"
        );
        // A made-up token is no better than none.
        let forged = s
            .http
            .send(
                Method::GET,
                &format!("{base}?token=vt_{}", "A".repeat(43)),
                &[],
                Vec::new(),
            )
            .await;
        not_found(&forged, "forged token");
    }

    // Nothing changed: the victim's chat holds its two messages, open and unrated.
    let history = victim
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}/messages"),
            None,
        )
        .await;
    assert_eq!(history.body["total"], 2, "{}", history.body);
    assert!(!history.text.contains("injected"));
    let session = victim
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(
        session.body["data"]["status"], "pending",
        "{}",
        session.body
    );
    s.stop().await;
}

#[tokio::test]
async fn a_second_create_with_a_taken_id_is_409_and_takes_nothing_over() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let mut victim = Browser::default();
    let session_id = widget_session_id(5);
    start_session(&s, &mut victim, &session_id).await;

    let mut attacker = Browser::default();
    let hijack = attacker
        .fetch(
            &s,
            Method::POST,
            "/api/live-chat/sessions",
            Some(json!({
                "sessionId": session_id,
                "user": { "name": "Mallory", "email": "mallory@example.com" },
            })),
        )
        .await;
    assert_eq!(hijack.status, StatusCode::CONFLICT, "{}", hijack.body);
    assert_eq!(
        hijack.body,
        json!({ "success": false, "message": "Session ID is already in use" })
    );
    assert!(attacker.jar.is_empty(), "no cookie for the hijacker");
    let read = attacker
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    not_found(&read, "after the hijack attempt");

    // The victim's session is untouched, and still John's.
    let mine = victim
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(mine.body["data"]["user"]["name"], "John Doe");
    let all = s
        .get("/api/admin/live-chat/sessions", Some(&s.admin.token))
        .await;
    assert_eq!(
        all.body["total"], 1,
        "no second chat was opened: {}",
        all.body
    );
    s.stop().await;
}

#[tokio::test]
async fn malformed_session_ids_are_refused_and_open_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    for bad in [
        json!("short"),
        json!("x".repeat(129)),
        json!("session-1; Path=/"),
        json!("session-../../admin"),
        json!("séssion-1701691234567"),
        json!(42),
    ] {
        let mut browser = Browser::default();
        let reply = browser
            .fetch(
                &s,
                Method::POST,
                "/api/live-chat/sessions",
                Some(json!({
                    "sessionId": bad,
                    "user": { "name": "John Doe", "email": "john@example.com" },
                })),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
        assert_eq!(reply.body["success"], false);
        assert!(browser.jar.is_empty());
    }
    let all = s
        .get("/api/admin/live-chat/sessions", Some(&s.admin.token))
        .await;
    assert_eq!(all.body["total"], 0, "{}", all.body);
    s.stop().await;
}

#[tokio::test]
async fn a_site_without_cookies_sends_the_token_from_the_create_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let session_id = widget_session_id(6);
    let created = s
        .http
        .send(
            Method::POST,
            "/api/live-chat/sessions",
            &[
                ("content-type", "application/json"),
                ("origin", "https://shop.example"),
            ],
            json!({
                "sessionId": session_id,
                "user": { "name": "John Doe", "email": "john@example.com" },
            })
            .to_string(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // Served for an https page: the cookie is Secure.
    for cookie in created.headers.get_all("set-cookie") {
        assert!(cookie.to_str().unwrap().ends_with("; Secure"), "{cookie:?}");
    }
    let token = created.body["data"]["token"].as_str().unwrap().to_owned();
    let sent = s
        .post(
            &format!("/api/live-chat/sessions/{session_id}/messages"),
            Some(&token),
            json!({ "content": "from another origin" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    s.socket(&format!("sessionId={session_id}&token={token}"))
        .await
        .close()
        .await;
    s.stop().await;
}

#[tokio::test]
async fn widget_chosen_ids_and_their_cookies_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut browser = Browser::default();
    let session_id = widget_session_id(7);
    let s = common::start(dir.path()).await;
    start_session(&s, &mut browser, &session_id).await;
    // An ended chat keeps its id too.
    let ended = browser
        .fetch(
            &s,
            Method::PATCH,
            &format!("/api/live-chat/sessions/{session_id}/end"),
            Some(json!({})),
        )
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    s.stop().await;

    let s = common::start(dir.path()).await;
    let session = browser
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    assert_eq!(session.body["data"]["status"], "closed");
    let hijack = start_session(&s, &mut Browser::default(), &session_id).await;
    assert_eq!(
        hijack.status,
        StatusCode::CONFLICT,
        "still taken after a restart"
    );
    let stranger = Browser::default()
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    not_found(&stranger, "after a restart");
    s.stop().await;
}

#[tokio::test]
async fn a_deleted_sessions_id_names_nothing_and_is_free_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let mut first = Browser::default();
    let session_id = widget_session_id(8);
    start_session(&s, &mut first, &session_id).await;
    let deleted = s
        .delete(
            &format!("/api/admin/live-chat/sessions/{session_id}"),
            Some(&s.admin.token),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let gone = first
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    not_found(&gone, "a deleted session, even with its cookie");

    // The id may be used again, by anyone, and the old cookie opens nothing of the new chat.
    let mut second = Browser::default();
    let again = start_session(&s, &mut second, &session_id).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    let old_cookie = first
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    not_found(&old_cookie, "the first browser's cookie on the new chat");
    let new_cookie = second
        .fetch(
            &s,
            Method::GET,
            &format!("/api/live-chat/sessions/{session_id}"),
            None,
        )
        .await;
    assert_eq!(new_cookie.status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn a_session_cookie_opens_nothing_after_its_thirty_days() {
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(chat_core::ManualClock::new(time::OffsetDateTime::now_utc()));
    let s = common::start_on(
        dir.path(),
        example_live_chat::Options { rate_limit: None },
        Some(clock.clone()),
    )
    .await;
    let mut browser = Browser::default();
    let session_id = widget_session_id(9);
    start_session(&s, &mut browser, &session_id).await;
    let path = format!("/api/live-chat/sessions/{session_id}");

    clock.advance(example_live_chat::guest::TOKEN_LIFETIME - time::Duration::minutes(1));
    let still = browser.fetch(&s, Method::GET, &path, None).await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.body);

    clock.advance(time::Duration::minutes(2));
    let expired = browser.fetch(&s, Method::GET, &path, None).await;
    not_found(&expired, "an expired cookie");
    assert_eq!(
        browser
            .socket(&s, &format!("sessionId={session_id}"))
            .await
            .err(),
        Some(StatusCode::NOT_FOUND)
    );
    s.stop().await;
}
