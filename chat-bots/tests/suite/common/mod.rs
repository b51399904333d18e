//! A tiny hyper server on 127.0.0.1:0 that answers with canned bytes and records every
//! request, and a conversation with some history to hand the bots.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::Arc;

use chat_core::{
    Actor, Bot, BotTurn, Conversation, Engine, Message, MessageKind, OpenConversation, PostMessage,
    SilentBot, Tenant, TenantSettings, memory::MemoryStore,
};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, channel::Channel};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// What the server answers.
pub enum Reply {
    /// `200 application/json` with this body.
    Json(String),
    /// This status, `application/json`, this body.
    Status(u16, String),
    /// `200 text/event-stream`, each string written as its own chunk.
    Sse(Vec<String>),
    /// `200 text/event-stream`: these chunks, then the connection stays open silently.
    SseThenStall(Vec<String>),
    /// Never answers.
    Hang,
}

pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    requests: mpsc::UnboundedReceiver<Captured>,
}

impl TestServer {
    /// The next request the server received.
    pub async fn request(&mut self) -> Captured {
        self.requests
            .recv()
            .await
            .expect("the server got a request")
    }
}

type Body = BoxBody<Bytes, Infallible>;

pub async fn serve(reply: impl Fn(&Captured) -> Reply + Send + Sync + 'static) -> TestServer {
    serve_on(reply, None).await
}

/// Like [`serve`], over TLS with this acceptor (`url` is then `https://...`).
pub async fn serve_tls(
    reply: impl Fn(&Captured) -> Reply + Send + Sync + 'static,
    tls: tokio_rustls::TlsAcceptor,
) -> TestServer {
    serve_on(reply, Some(tls)).await
}

async fn serve_on(
    reply: impl Fn(&Captured) -> Reply + Send + Sync + 'static,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let (sender, requests) = mpsc::unbounded_channel();
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let reply = reply.clone();
            let sender = sender.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let reply = reply.clone();
                let sender = sender.clone();
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await.unwrap().to_bytes().to_vec();
                    let captured = Captured {
                        method: parts.method.to_string(),
                        path: parts.uri.path().to_owned(),
                        headers: parts.headers,
                        body,
                    };
                    let answer = reply(&captured);
                    let _ = sender.send(captured);
                    Ok::<_, Infallible>(respond(answer).await)
                }
            });
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => {
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    // A client that refuses the certificate ends here.
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream).await {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
    TestServer { url, requests }
}

async fn respond(reply: Reply) -> Response<Body> {
    let (status, content_type, body): (u16, &str, Body) = match reply {
        Reply::Json(body) => (200, "application/json", full(body)),
        Reply::Status(status, body) => (status, "application/json", full(body)),
        Reply::Sse(chunks) => (200, "text/event-stream", streamed(chunks, false)),
        Reply::SseThenStall(chunks) => (200, "text/event-stream", streamed(chunks, true)),
        Reply::Hang => std::future::pending().await,
    };
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", content_type)
        .body(body)
        .unwrap()
}

fn full(body: String) -> Body {
    Full::new(Bytes::from(body)).boxed()
}

fn streamed(chunks: Vec<String>, stall: bool) -> Body {
    let (mut sender, body) = Channel::<Bytes>::new(1);
    tokio::spawn(async move {
        for chunk in chunks {
            if sender.send_data(Bytes::from(chunk)).await.is_err() {
                return;
            }
            // Let the client read each chunk on its own, as from a real token stream.
            tokio::task::yield_now().await;
        }
        if stall {
            std::future::pending::<()>().await;
        }
    });
    body.boxed()
}

/// `data: {json}\n\n` of a streamed chunk carrying this content.
pub fn content_chunk(text: &str) -> String {
    let chunk = serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n")
}

/// `data: {json}\n\n` of the first chunk (role only), as OpenAI sends it.
pub fn role_chunk() -> String {
    let chunk = serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n")
}

/// The final chunk with a finish reason, then `[DONE]`.
pub fn finish_chunks(reason: &str) -> Vec<String> {
    let chunk = serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": reason}],
    });
    vec![format!("data: {chunk}\n\n"), "data: [DONE]\n\n".into()]
}

/// A non-streamed chat completion answering `text`.
pub fn completion(text: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    })
    .to_string()
}

/// A conversation with history, to build [`BotTurn`]s from.
pub struct Fixture {
    pub tenant: Tenant,
    pub conversation: Conversation,
    pub history: Vec<Message>,
}

impl Fixture {
    pub fn turn(&self) -> BotTurn<'_> {
        BotTurn {
            tenant: &self.tenant,
            conversation: &self.conversation,
            history: &self.history,
        }
    }

    pub async fn respond(&self, bot: &dyn Bot) -> chat_core::Result<chat_core::BotDecision> {
        bot.respond(self.turn()).await
    }
}

/// Who says a line of a [`fixture`].
#[derive(Clone, Copy)]
pub enum Line {
    Customer(&'static str),
    Bot(&'static str),
    Note(&'static str),
    Event(&'static str),
}

/// A conversation of tenant "Acme" in bot mode whose history is these lines, in order.
pub async fn fixture(lines: &[Line]) -> Fixture {
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .bot(Arc::new(SilentBot))
        .build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap();
    let system = Actor::System { tenant: tenant.id };
    let bot = Actor::Bot { tenant: tenant.id };
    let opened = engine
        .open_conversation(&system, OpenConversation::default())
        .await
        .unwrap();
    let id = opened.conversation.id;
    let customer = Actor::Customer {
        tenant: tenant.id,
        contact: opened.contact.id,
        conversation: Some(id),
    };
    for line in lines {
        match *line {
            Line::Customer(text) => {
                engine
                    .post_message(&customer, id, PostMessage::text(text))
                    .await
                    .unwrap();
            }
            Line::Bot(text) => {
                engine
                    .post_message(&bot, id, PostMessage::text(text))
                    .await
                    .unwrap();
            }
            Line::Note(text) => {
                engine.post_note(&system, id, text).await.unwrap();
            }
            Line::Event(text) => {
                let event = PostMessage {
                    kind: Some(MessageKind::Event),
                    ..PostMessage::text(text)
                };
                engine.post_message(&system, id, event).await.unwrap();
            }
        }
    }
    let conversation = engine.conversation(&system, id).await.unwrap();
    let history = engine
        .messages(&system, id, Default::default())
        .await
        .unwrap();
    Fixture {
        tenant,
        conversation,
        history,
    }
}
