//! A streaming LLM bot's reply reaches WebSocket clients piece by piece, then as the
//! stored message. The LLM is a local server speaking the OpenAI streaming wire format.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chat_core::{EventBus, InProcessBus};
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Answers every chat completion with three streamed pieces.
async fn fake_llm() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    let mut body = String::new();
                    for piece in ["Your order ", "ships ", "today."] {
                        let chunk = json!({ "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                            "choices": [{ "index": 0, "delta": { "content": piece }, "finish_reason": null }] });
                        body.push_str(&format!("data: {chunk}\n\n"));
                    }
                    body.push_str("data: [DONE]\n\n");
                    let response = hyper::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    base
}

#[tokio::test]
async fn streamed_bot_replies_arrive_as_deltas_then_as_the_stored_message() {
    let base = fake_llm().await;
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::default());
    let mut config = chat_bots::LlmConfig::new(base, "test-model");
    config.stream = true;
    config.timeout = Duration::from_secs(5);
    let bot = chat_bots::LlmBot::new(config)
        .unwrap()
        .on_delta(chat_server::realtime::relay_bot_deltas(bus.clone()));
    let s = common::start_full(|_| {}, |b| b.bus(bus).bot(Arc::new(bot))).await;
    let (id, visitor) = s.visitor("stream@x.example").await;
    let url = s.ws_url(&format!("/v1/ws?access_token={visitor}"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let send = |v: Value| Message::Text(Utf8Bytes::from(v.to_string()));
    ws.send(send(json!({ "type": "subscribe", "conversation_id": id })))
        .await
        .unwrap();
    ws.send(send(
        json!({ "type": "send_message", "conversation_id": id, "body": "where is my order?" }),
    ))
    .await
    .unwrap();
    // Deltas and the stored message travel separate paths (the ephemeral bus, the log), so
    // either may arrive first: read until both the stored reply and the end marker came.
    let mut pieces = String::new();
    let mut ended = None;
    let mut stored = None;
    while stored.is_none() || ended.is_none() {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("the stored reply and the end marker within 5 s")
            .unwrap()
            .unwrap();
        let Message::Text(text) = frame else { continue };
        let f: Value = serde_json::from_str(&text).unwrap();
        match f["type"].as_str().unwrap() {
            "bot_delta" => {
                assert_eq!(f["conversation_id"], id.as_str());
                pieces.push_str(f["text"].as_str().unwrap());
                if !f["end"].is_null() {
                    ended = Some(f["end"].as_str().unwrap().to_owned());
                }
            }
            "event"
                if f["event"] == "message_created"
                    && f["data"]["message"]["sender"]["type"] == "bot" =>
            {
                stored = Some(f["data"]["message"]["body"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
    let stored = stored.unwrap();
    assert_eq!(stored, "Your order ships today.");
    assert_eq!(pieces, stored, "the deltas add up to the stored reply");
    assert_eq!(ended.as_deref(), Some("reply"));
    // Deltas are never logged.
    let log = s.get("/v1/events?since=0&limit=1000", Some(&visitor)).await;
    assert!(!log.text.contains("bot_delta"));
    s.stop().await;
}
