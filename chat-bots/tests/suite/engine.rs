//! End to end through the engine: a customer in bot mode talks to the LLM bot.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chat_bots::{LlmBot, LlmConfig, StreamEnd};
use chat_core::memory::MemoryStore;
use chat_core::{
    Actor, ConversationId, Engine, Mode, OpenConversation, PostMessage, Sender, TenantSettings,
};
use common::{Reply, content_chunk, finish_chunks, role_chunk, serve};
use serde_json::json;

struct Desk {
    engine: Engine,
    system: Actor,
    customer: Actor,
    id: ConversationId,
}

async fn desk(bot: LlmBot) -> Desk {
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .bot(Arc::new(bot))
        .build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let system = Actor::System { tenant };
    let opened = engine
        .open_conversation(&system, OpenConversation::default())
        .await
        .unwrap();
    assert_eq!(opened.conversation.mode, Mode::Bot);
    let customer = Actor::Customer {
        tenant,
        contact: opened.contact.id,
        conversation: Some(opened.conversation.id),
    };
    Desk {
        engine,
        system,
        customer,
        id: opened.conversation.id,
    }
}

fn config(url: &str) -> LlmConfig {
    LlmConfig::new(format!("{url}/v1"), "test-model")
}

#[tokio::test]
async fn a_customer_in_bot_mode_gets_the_streamed_llm_reply_stored_as_a_bot_message() {
    let mut chunks = vec![
        role_chunk(),
        content_chunk("We are open"),
        content_chunk(" 9 to 5."),
    ];
    chunks.extend(finish_chunks("stop"));
    let mut server = serve(move |_| Reply::Sse(chunks.clone())).await;
    let (deltas, mut pieces) = tokio::sync::mpsc::unbounded_channel();
    let bot = LlmBot::new(config(&server.url))
        .unwrap()
        .with_delta_channel(deltas);
    let d = desk(bot).await;

    let posted = d
        .engine
        .post_message(&d.customer, d.id, PostMessage::text("When are you open?"))
        .await
        .unwrap();
    assert_eq!(posted.conversation.mode, Mode::Bot);
    let reply = posted.replies.first().expect("the bot answered");
    assert_eq!(reply.sender, Sender::Bot);
    assert_eq!(reply.body, "We are open 9 to 5.");
    assert_eq!(
        reply.metadata.get("bot.model").map(String::as_str),
        Some("test-model")
    );

    let stored = d
        .engine
        .messages(&d.system, d.id, Default::default())
        .await
        .unwrap();
    let last = stored.last().unwrap();
    assert_eq!(
        (last.sender, last.body.as_str()),
        (Sender::Bot, "We are open 9 to 5.")
    );

    let mut relayed = Vec::new();
    while let Ok(piece) = pieces.try_recv() {
        relayed.push(piece);
    }
    let text: String = relayed.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(text, "We are open 9 to 5.");
    assert_eq!(relayed.last().unwrap().end, Some(StreamEnd::Reply));
    assert!(relayed.iter().all(|p| p.reply_to_seq == posted.message.seq));

    let request = server.request().await.json();
    let last_message = request["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last_message,
        json!({"role": "user", "content": "When are you open?"})
    );
}

#[tokio::test]
async fn a_model_tool_call_puts_the_conversation_in_the_queue() {
    let call = json!({
        "choices": [{"index": 0, "delta": {"tool_calls": [{
            "index": 0, "id": "call_1", "type": "function",
            "function": {"name": "handoff_to_human", "arguments": "{\"reason\":\"wants a refund\"}"},
        }]}, "finish_reason": null}],
    });
    let mut chunks = vec![role_chunk(), format!("data: {call}\n\n")];
    chunks.extend(finish_chunks("tool_calls"));
    let server = serve(move |_| Reply::Sse(chunks.clone())).await;
    let d = desk(LlmBot::new(config(&server.url)).unwrap()).await;

    let posted = d
        .engine
        .post_message(&d.customer, d.id, PostMessage::text("I want my money back"))
        .await
        .unwrap();
    assert_eq!(posted.conversation.mode, Mode::Queued);
    let history = d
        .engine
        .messages(&d.system, d.id, Default::default())
        .await
        .unwrap();
    assert!(history.iter().any(|m| m.body == "I want my money back"));
    assert!(
        history.iter().any(|m| m.body.contains("wants a refund")),
        "the handoff records the model's reason: {history:#?}"
    );
}

#[tokio::test]
async fn an_llm_that_does_not_answer_in_time_hands_off_without_losing_the_message() {
    let server = serve(|_| Reply::Hang).await;
    let bot = LlmBot::new(LlmConfig {
        timeout: Duration::from_millis(200),
        ..config(&server.url)
    })
    .unwrap();
    let d = desk(bot).await;
    let posted = d
        .engine
        .post_message(&d.customer, d.id, PostMessage::text("hello?"))
        .await
        .unwrap();
    assert_eq!(posted.conversation.mode, Mode::Queued);
    let history = d
        .engine
        .messages(&d.system, d.id, Default::default())
        .await
        .unwrap();
    assert!(history.iter().any(|m| m.body == "hello?"));
}
