//! An extension's routes served beside the built-in API: its own paths and error shape,
//! the server's limits, CORS and authentication, and a WebSocket of its own fed by the
//! engine's event log.

use crate::common;

use std::sync::Arc;

use chat_core::{Engine, EventPayload};
use chat_server::auth::{self, Caller};
use chat_server::http::{self, Resp};
use chat_server::{Context, Extension, Handled};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// A tiny product API: `GET /api/hello` (public), `GET /api/whoami` (staff, with the
/// product's own error shape) and `/api/feed` (a WebSocket of message texts).
struct Product;

fn product_error(status: StatusCode, text: &str) -> Resp {
    http::json(status, &json!({ "detail": text }))
}

#[async_trait::async_trait]
impl Extension for Product {
    async fn handle(&self, cx: &Context, mut req: Request<Incoming>) -> Handled {
        let token = auth::bearer(req.headers(), req.uri().query())
            .ok()
            .flatten();
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/api/hello") => Handled::Answered(
                "/api/hello",
                http::json(StatusCode::OK, &json!({ "hello": "world" })),
            ),
            (&Method::GET, "/api/whoami") => {
                let answer = match cx.authenticate(token.as_deref()).await {
                    Ok(Caller::Actor(actor)) => http::json(StatusCode::OK, &json!(actor)),
                    Ok(Caller::Anonymous) => {
                        product_error(StatusCode::UNAUTHORIZED, "Not authenticated")
                    }
                    Err(e) => product_error(e.status, "Could not validate credentials"),
                };
                Handled::Answered("/api/whoami", answer)
            }
            (&Method::GET, "/api/feed") => {
                let Ok(Caller::Actor(actor)) = cx.authenticate(token.as_deref()).await else {
                    return Handled::Answered(
                        "/api/feed",
                        product_error(StatusCode::UNAUTHORIZED, "Not authenticated"),
                    );
                };
                let (response, socket) =
                    match chat_server::realtime::accept(&mut req, 64 * 1024, None) {
                        Ok(pair) => pair,
                        Err(e) => return Handled::Answered("/api/feed", http::error(&e)),
                    };
                let cx = cx.clone();
                tokio::spawn(async move {
                    let Some(mut socket) = socket.await else {
                        return;
                    };
                    let _open = cx.metrics().websocket_opened();
                    let who = cx.engine().resolve(&actor).await.unwrap();
                    let (head, mut live) = cx.hub().live(actor.tenant()).await;
                    let history = cx.engine().events_since(&actor, 0, 1000).await.unwrap();
                    let mut texts: Vec<String> = history
                        .events
                        .iter()
                        .filter(|e| e.seq <= head)
                        .filter_map(message_text)
                        .collect();
                    for text in texts.drain(..) {
                        let _ = socket.send(Message::text(text)).await;
                    }
                    let mut shutdown = cx.shutdown();
                    loop {
                        tokio::select! {
                            delivery = live.recv() => {
                                let Ok(d) = delivery else { break };
                                if d.event.seq > head
                                    && Engine::may_see_event(&who, &d.event, d.conversation.as_deref())
                                    && let Some(text) = message_text(&d.event)
                                    && socket.send(Message::text(text)).await.is_err()
                                {
                                    break;
                                }
                            }
                            _ = shutdown.changed() => {
                                let _ = socket.close(None).await;
                                break;
                            }
                            frame = socket.next() => if frame.is_none() { break },
                        }
                    }
                });
                Handled::Answered("/api/feed", response)
            }
            _ => Handled::Declined(req),
        }
    }
}

fn message_text(event: &chat_core::Event) -> Option<String> {
    match &event.payload {
        EventPayload::MessageCreated { message } => Some(message.body.clone()),
        _ => None,
    }
}

async fn start() -> common::Server {
    common::start_extended(
        |c| c.cors_origins = vec!["http://localhost:3000".into()],
        |b| b,
        Some(Arc::new(Product)),
    )
    .await
}

#[tokio::test]
async fn extension_routes_sit_beside_the_built_in_api() {
    let s = start().await;
    let hello = s.get("/api/hello", None).await;
    assert_eq!(hello.status, StatusCode::OK);
    assert_eq!(hello.body, json!({ "hello": "world" }));
    // Request ids and metrics cover extension routes too.
    assert!(hello.headers.contains_key("x-request-id"));
    let metrics = s.get("/metrics", Some(common::METRICS_TOKEN)).await;
    assert!(
        metrics.text.contains("route=\"/api/hello\""),
        "{}",
        metrics.text
    );

    // Declined requests reach the built-in routes and their 404.
    assert_eq!(s.get("/healthz", None).await.status, StatusCode::OK);
    let missing = s.get("/api/nothing", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "not_found");

    // CORS applies to extension routes.
    let cors = s
        .send(
            Method::GET,
            "/api/hello",
            &[("origin", "http://localhost:3000")],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(
        cors.headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    s.stop().await;
}

#[tokio::test]
async fn extension_routes_authenticate_through_the_server() {
    let s = start().await;
    let admin = s.staff("Ada", chat_core::Role::Admin, &[]).await;
    let me = s.get("/api/whoami", Some(&admin.token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["agent"], json!(admin.id.to_string()));

    let anonymous = s.get("/api/whoami", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body, json!({ "detail": "Not authenticated" }));

    let forged = s.get("/api/whoami", Some("eyJhbGciOiJub25lIn0.e30.")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.body["detail"], "Could not validate credentials");
    s.stop().await;
}

#[tokio::test]
async fn an_extension_socket_gets_history_then_live_events_once_each() {
    let s = start().await;
    let admin = s.staff("Ada", chat_core::Role::Admin, &[]).await;
    let (conversation, visitor) = s.visitor("v@example.com").await;
    let path = format!("/v1/conversations/{conversation}/messages");
    let before = s
        .post(&path, Some(&visitor), json!({ "body": "before" }))
        .await;
    assert_eq!(before.status, StatusCode::CREATED, "{}", before.text);

    let url = s.ws_url(&format!("/api/feed?access_token={}", admin.token));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let after = s
        .post(&path, Some(&visitor), json!({ "body": "after" }))
        .await;
    assert_eq!(after.status, StatusCode::CREATED);

    let mut seen = Vec::new();
    // Each visitor message gets a bot reply: four messages, each exactly once, in order.
    while seen.len() < 4 {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("frames arrive")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            seen.push(text.to_string());
        }
    }
    let visitor_lines: Vec<_> = seen.iter().filter(|t| !t.starts_with("Sorry")).collect();
    assert_eq!(visitor_lines, ["before", "after"], "{seen:?}");
    assert!(
        seen[1].starts_with("Sorry") && seen[3].starts_with("Sorry"),
        "{seen:?}"
    );

    // A visitor token cannot open the staff feed's view of other conversations: it sees
    // only its own conversation's events (the engine's rule, not the extension's).
    let (other, other_visitor) = s.visitor("w@example.com").await;
    let url = s.ws_url(&format!("/api/feed?access_token={other_visitor}"));
    let (mut theirs, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mine = s
        .post(
            &format!("/v1/conversations/{other}/messages"),
            Some(&other_visitor),
            json!({ "body": "mine" }),
        )
        .await;
    assert_eq!(mine.status, StatusCode::CREATED);
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), theirs.next())
        .await
        .expect("frames arrive")
        .unwrap()
        .unwrap();
    assert_eq!(first, Message::text("mine"));
    s.stop().await;
}
