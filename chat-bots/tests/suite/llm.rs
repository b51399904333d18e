//! The LLM bot against a local server speaking the OpenAI chat-completions wire format.

use crate::common;

use std::time::Duration;

use chat_bots::{Delta, LlmBot, LlmConfig, StreamEnd};
use chat_core::{BotDecision, BotErrorKind, Error};
use common::{Line, Reply, completion, content_chunk, finish_chunks, fixture, role_chunk, serve};
use serde_json::{Value, json};

const CONVERSATION: &[Line] = &[
    Line::Customer("hi"),
    Line::Bot("Hello! How can I help?"),
    Line::Note("VIP customer"),
    Line::Event("conversation tagged"),
    Line::Customer("where is my order?"),
];

fn config(url: &str, stream: bool) -> LlmConfig {
    LlmConfig {
        stream,
        system_prompt: "You help the customers of {tenant}.".into(),
        ..LlmConfig::new(format!("{url}/v1/"), "test-model")
    }
}

fn bot(url: &str, stream: bool) -> LlmBot {
    LlmBot::new(config(url, stream)).unwrap()
}

/// The bot and the channel its deltas arrive on.
fn streaming_bot(config: LlmConfig) -> (LlmBot, tokio::sync::mpsc::UnboundedReceiver<Delta>) {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let bot = LlmBot::new(config).unwrap().with_delta_channel(sender);
    (bot, receiver)
}

fn drain(receiver: &mut tokio::sync::mpsc::UnboundedReceiver<Delta>) -> Vec<Delta> {
    let mut out = Vec::new();
    while let Ok(delta) = receiver.try_recv() {
        out.push(delta);
    }
    out
}

fn reply_text(decision: &BotDecision) -> &str {
    match decision {
        BotDecision::Reply { text, .. } => text,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn roles_and_contents(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn tool_call_chunk(index: u64, id: Option<&str>, name: Option<&str>, args: &str) -> String {
    let mut call = json!({"index": index, "function": {"arguments": args}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    let chunk = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n")
}

#[tokio::test]
async fn a_plain_json_answer_becomes_a_reply_and_the_request_follows_the_wire_format() {
    let mut server = serve(|_| Reply::Json(completion("  It ships tomorrow.  "))).await;
    let f = fixture(CONVERSATION).await;
    let decision = f.respond(&bot(&server.url, false)).await.unwrap();
    let BotDecision::Reply { text, metadata } = decision else {
        panic!("expected a reply")
    };
    assert_eq!(text, "It ships tomorrow.");
    assert_eq!(
        metadata.get("bot.model").map(String::as_str),
        Some("test-model")
    );

    let request = server.request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("authorization"), None);
    let body = request.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], false);
    assert_eq!(
        roles_and_contents(&body),
        [
            ("system", "You help the customers of Acme."),
            ("user", "hi"),
            ("assistant", "Hello! How can I help?"),
            ("user", "where is my order?"),
        ]
        .map(|(r, c)| (r.to_owned(), c.to_owned()))
    );
    let tool = &body["tools"][0];
    assert_eq!(tool["type"], "function");
    assert_eq!(tool["function"]["name"], "handoff_to_human");
    assert_eq!(tool["function"]["parameters"]["type"], "object");
    assert!(tool["function"]["parameters"]["properties"]["department"].is_object());
    assert!(tool["function"]["parameters"]["properties"]["reason"].is_object());
}

#[tokio::test]
async fn the_history_window_keeps_only_the_newest_messages() {
    let mut server = serve(|_| Reply::Json(completion("ok"))).await;
    let f = fixture(CONVERSATION).await;
    let config = LlmConfig {
        history: 2,
        handoff_tool: false,
        ..config(&server.url, false)
    };
    f.respond(&LlmBot::new(config).unwrap()).await.unwrap();
    let body = server.request().await.json();
    let roles: Vec<String> = roles_and_contents(&body)
        .into_iter()
        .map(|(r, c)| format!("{r}: {c}"))
        .collect();
    assert_eq!(
        roles,
        [
            "system: You help the customers of Acme.",
            "assistant: Hello! How can I help?",
            "user: where is my order?",
        ]
    );
    assert!(body.get("tools").is_none());
}

#[tokio::test]
async fn the_api_key_is_sent_as_a_bearer_token_and_never_shown_by_debug() {
    let mut server = serve(|_| Reply::Json(completion("ok"))).await;
    let f = fixture(CONVERSATION).await;
    let bot = bot(&server.url, false).with_api_key("sk-test-very-secret");
    assert!(!format!("{bot:?}").contains("very-secret"));
    f.respond(&bot).await.unwrap();
    let request = server.request().await;
    assert_eq!(
        request.header("authorization"),
        Some("Bearer sk-test-very-secret")
    );

    // Read from the named environment variable (cargo sets this one for tests).
    let from_env = LlmConfig {
        api_key_env: Some("CARGO_PKG_NAME".into()),
        ..config(&server.url, false)
    };
    f.respond(&LlmBot::new(from_env).unwrap()).await.unwrap();
    let request = server.request().await;
    assert_eq!(request.header("authorization"), Some("Bearer chat-bots"));

    let unset = LlmConfig {
        api_key_env: Some("CHAT_BOTS_TEST_UNSET_VARIABLE".into()),
        ..config(&server.url, false)
    };
    assert!(matches!(
        LlmBot::new(unset),
        Err(Error::Validation {
            field: "api_key_env",
            ..
        })
    ));
}

#[tokio::test]
async fn a_streamed_answer_relays_each_delta_and_returns_the_full_text() {
    let mut chunks = vec![role_chunk(), content_chunk("Your order")];
    // One event split across two network chunks, mid-line.
    let split = content_chunk(" ships");
    let (head, tail) = split.split_at(20);
    chunks.push(head.to_owned());
    chunks.push(tail.to_owned());
    // Two events in one network chunk.
    chunks.push(format!(
        "{}{}",
        content_chunk(" tomorrow"),
        content_chunk(".")
    ));
    chunks.extend(finish_chunks("stop"));
    let mut server = serve(move |_| Reply::Sse(chunks.clone())).await;
    let f = fixture(CONVERSATION).await;
    let (bot, mut deltas) = streaming_bot(config(&server.url, true));

    let decision = f.respond(&bot).await.unwrap();
    assert_eq!(reply_text(&decision), "Your order ships tomorrow.");

    let deltas = drain(&mut deltas);
    let texts: Vec<&str> = deltas.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(texts, ["Your order", " ships", " tomorrow", ".", ""]);
    assert!(
        deltas
            .iter()
            .enumerate()
            .all(|(i, d)| d.index as usize == i)
    );
    assert_eq!(deltas.last().unwrap().end, Some(StreamEnd::Reply));
    assert!(deltas[..4].iter().all(|d| d.end.is_none()));
    let customer_seq = f.history.last().unwrap().seq;
    assert!(deltas.iter().all(|d| d.conversation_id == f.conversation.id
        && d.tenant_id == f.tenant.id
        && d.reply_to_seq == customer_seq));

    let request = server.request().await;
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.json()["stream"], true);
}

#[tokio::test]
async fn a_tool_call_streamed_in_fragments_hands_off() {
    let mut chunks = vec![
        role_chunk(),
        tool_call_chunk(0, Some("call_abc"), Some("handoff_to_human"), ""),
        tool_call_chunk(0, None, None, "{\"depa"),
        tool_call_chunk(0, None, None, "rtment\": \"billing\", \"rea"),
        tool_call_chunk(0, None, None, "son\": \"refund over the limit\"}"),
    ];
    chunks.extend(finish_chunks("tool_calls"));
    let server = serve(move |_| Reply::Sse(chunks.clone())).await;
    let f = fixture(CONVERSATION).await;
    let (bot, mut deltas) = streaming_bot(config(&server.url, true));
    let decision = f.respond(&bot).await.unwrap();
    assert_eq!(
        decision,
        BotDecision::Handoff {
            department: Some("billing".into()),
            reason: Some("refund over the limit".into()),
            message: None,
        }
    );
    assert!(
        drain(&mut deltas).is_empty(),
        "no text, so nothing to relay"
    );
}

#[tokio::test]
async fn a_tool_call_in_a_json_answer_hands_off_with_what_the_model_said() {
    let answer = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me get a colleague.",
                "tool_calls": [{
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "handoff_to_human", "arguments": "{\"department\":\"sales\"}"},
                }],
            },
            "finish_reason": "tool_calls",
        }],
    })
    .to_string();
    let server = serve(move |_| Reply::Json(answer.clone())).await;
    let f = fixture(CONVERSATION).await;
    let config = LlmConfig {
        // A department the desk does not have is dropped, the handoff stands.
        departments: vec!["billing".into()],
        ..config(&server.url, false)
    };
    let decision = f.respond(&LlmBot::new(config).unwrap()).await.unwrap();
    assert_eq!(
        decision,
        BotDecision::Handoff {
            department: None,
            reason: Some("the model asked for a human".into()),
            message: Some("Let me get a colleague.".into()),
        }
    );
}

#[tokio::test]
async fn the_sentinel_hands_off_and_never_reaches_the_customer_as_deltas() {
    let mut chunks = vec![role_chunk(), content_chunk("[HAND"), content_chunk("OFF]")];
    chunks.extend(finish_chunks("stop"));
    let server = serve(move |_| Reply::Sse(chunks.clone())).await;
    let f = fixture(CONVERSATION).await;
    let (streaming, mut deltas) = streaming_bot(LlmConfig {
        handoff_message: Some("One moment, please.".into()),
        ..config(&server.url, true)
    });
    let decision = f.respond(&streaming).await.unwrap();
    assert_eq!(
        decision,
        BotDecision::Handoff {
            department: None,
            reason: Some("the model asked for a human".into()),
            message: Some("One moment, please.".into()),
        }
    );
    assert!(drain(&mut deltas).is_empty());

    let server = serve(|_| Reply::Json(completion("[HANDOFF] A colleague will help you."))).await;
    let decision = f.respond(&bot(&server.url, false)).await.unwrap();
    assert!(matches!(
        decision,
        BotDecision::Handoff { message: Some(m), .. } if m == "A colleague will help you."
    ));
}

#[tokio::test]
async fn a_slow_server_times_out_as_a_bot_error() {
    let server = serve(|_| Reply::Hang).await;
    let f = fixture(CONVERSATION).await;
    let config = LlmConfig {
        timeout: Duration::from_millis(200),
        ..config(&server.url, false)
    };
    let result = f.respond(&LlmBot::new(config).unwrap()).await;
    assert!(matches!(
        result,
        Err(Error::Bot(e)) if e.kind() == BotErrorKind::Timeout && e.message().contains("200 ms")
    ));
}

#[tokio::test]
async fn a_stream_that_stalls_times_out_and_ends_its_deltas_as_failed() {
    let chunks = vec![role_chunk(), content_chunk("Let me check")];
    let server = serve(move |_| Reply::SseThenStall(chunks.clone())).await;
    let f = fixture(CONVERSATION).await;
    let (bot, mut deltas) = streaming_bot(LlmConfig {
        timeout: Duration::from_millis(200),
        ..config(&server.url, true)
    });
    assert_eq!(
        f.respond(&bot).await.unwrap_err().bot_kind(),
        Some(BotErrorKind::Timeout)
    );
    let deltas = drain(&mut deltas);
    assert_eq!(deltas.len(), 2);
    assert_eq!(deltas[0].text, "Let me check");
    assert_eq!(deltas[1].end, Some(StreamEnd::Failed));
}

#[tokio::test]
async fn garbage_and_http_errors_are_bot_errors() {
    let f = fixture(CONVERSATION).await;
    let cut_off = vec![role_chunk(), content_chunk("Hel")];
    let cases = [
        (
            Reply::Json("<html>502 Bad Gateway</html>".into()),
            BotErrorKind::Format,
        ),
        (
            Reply::Json("{\"choices\": []}".into()),
            BotErrorKind::Format,
        ),
        (
            Reply::Status(500, completion("never mind the body")),
            BotErrorKind::Status(500),
        ),
        (
            Reply::Status(
                401,
                "{\"error\":{\"message\":\"Incorrect API key sk-abc\"}}".into(),
            ),
            BotErrorKind::Status(401),
        ),
        (
            Reply::Sse(vec!["data: {not json\n\n".into()]),
            BotErrorKind::Format,
        ),
        (
            Reply::Sse(vec![
                "data: {\"error\":{\"message\":\"overloaded\"}}\n\n".into(),
            ]),
            BotErrorKind::Other,
        ),
        (Reply::Sse(cut_off), BotErrorKind::Transport),
    ];
    for (i, (case, kind)) in cases.into_iter().enumerate() {
        let case = std::sync::Mutex::new(Some(case));
        let server = serve(move |_| case.lock().unwrap().take().unwrap_or(Reply::Hang)).await;
        let result = f.respond(&bot(&server.url, true)).await;
        match result {
            Err(Error::Bot(e)) => {
                assert_eq!(e.kind(), kind, "case {i}: {e}");
                assert!(!e.to_string().contains("sk-abc"), "{e}");
            }
            other => panic!("case {i}: expected a bot error, got {other:?}"),
        }
    }
    // Nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    assert_eq!(
        f.respond(&bot(&closed, false))
            .await
            .unwrap_err()
            .bot_kind(),
        Some(BotErrorKind::Transport)
    );
}

#[tokio::test]
async fn an_unknown_tool_or_an_empty_answer_is_a_bot_error() {
    let f = fixture(CONVERSATION).await;
    let mut chunks = vec![tool_call_chunk(0, Some("c1"), Some("delete_account"), "{}")];
    chunks.extend(finish_chunks("tool_calls"));
    let server = serve(move |_| Reply::Sse(chunks.clone())).await;
    assert!(matches!(
        f.respond(&bot(&server.url, true)).await,
        Err(Error::Bot(e)) if e.kind() == BotErrorKind::Format && e.message().contains("delete_account")
    ));
    let server = serve(|_| Reply::Json(completion("  \n "))).await;
    assert!(matches!(
        f.respond(&bot(&server.url, false)).await,
        Err(Error::Bot(_))
    ));
}

#[tokio::test]
async fn an_oversized_answer_is_a_bot_error() {
    let f = fixture(CONVERSATION).await;
    let huge = completion(&"x".repeat(100 * 1024));
    let server = serve(move |_| Reply::Json(huge.clone())).await;
    assert!(matches!(
        f.respond(&bot(&server.url, false)).await,
        Err(Error::Bot(e)) if e.message().contains("larger than")
    ));

    // A stream whose text keeps growing past the bound.
    let mut chunks: Vec<String> = (0..40).map(|_| content_chunk(&"y".repeat(100))).collect();
    chunks.extend(finish_chunks("stop"));
    let server = serve(move |_| Reply::Sse(chunks.clone())).await;
    let small = LlmConfig {
        max_response_bytes: 2048,
        ..config(&server.url, true)
    };
    assert!(matches!(
        f.respond(&LlmBot::new(small).unwrap()).await,
        Err(Error::Bot(e)) if e.message().contains("larger than")
    ));

    // One endless line.
    let server = serve(|_| Reply::Sse(vec![format!("data: {}", "z".repeat(4096))])).await;
    let small = LlmConfig {
        max_response_bytes: 2048,
        ..config(&server.url, true)
    };
    assert!(matches!(
        f.respond(&LlmBot::new(small).unwrap()).await,
        Err(Error::Bot(_))
    ));
}

#[tokio::test]
async fn a_server_ignoring_stream_true_still_works() {
    let server = serve(|_| Reply::Json(completion("Plain answer."))).await;
    let f = fixture(CONVERSATION).await;
    let (bot, mut deltas) = streaming_bot(config(&server.url, true));
    assert_eq!(reply_text(&f.respond(&bot).await.unwrap()), "Plain answer.");
    assert!(drain(&mut deltas).is_empty());
}

#[test]
fn relative_and_non_http_urls_are_refused_up_front() {
    // https is spoken (tests/suite/https.rs); anything that is not an absolute http(s) URL is not.
    assert!(LlmBot::new(LlmConfig::new("https://api.openai.com/v1", "m")).is_ok());
    for url in ["ftp://api.example/v1", "localhost:11434/v1", ""] {
        assert!(matches!(
            LlmBot::new(LlmConfig::new(url, "m")),
            Err(Error::Validation {
                field: "base_url",
                ..
            })
        ));
    }
    assert!(LlmBot::new(LlmConfig::new("http://127.0.0.1:1/v1", " ")).is_err());
}
