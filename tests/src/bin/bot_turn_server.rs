//! The child process of the durable bot turn test (`tests/bot_turns.rs`): the engine on
//! SQLite with a bot, as `chat-server` builds it, killed while the bot thinks.
//!
//! ```text
//! cargo run -p chat-tests --bin bot_turn_server -- /tmp/chat.db 3 2 [<message id>…]
//! ```
//!
//! At start it resumes the bot turns the last run left (what `chat-server` does at start)
//! and prints `resumed <turns>`. At the same time the visitors whose messages are given
//! retry them (same `client_message_id`), printing `retried <message id> <created>
//! <reply id>…` for each. Then visitors write: it opens `<new>` conversations with
//! a first message (every third asks for a human) and writes a follow-up in up to
//! `<follow-ups>` conversations still with the bot, printing `posting <count>` first. The
//! bot answers at once what was written before this process started; what is written
//! since, it is still thinking about when the test kills the process: it prints
//! `thinking <customer message id>` and never answers. With nothing to post the process
//! exits after `resumed`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use chat_core::store::{ConversationQuery, Scope};
use chat_core::{
    Actor, Bot, BotDecision, BotTurn, Engine, Error, Mode, OpenConversation, PostMessage, Sender,
    Store, Tenant, TenantId, TenantSettings,
};
use chat_sqlite::SqliteStore;
use time::OffsetDateTime;
use uuid::Uuid;

/// The tenant every run serves, so the checker knows where to look.
pub const TENANT: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0023);

type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// Prints one line and flushes it: a line on stdout is a fact the test may rely on.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes())
        .expect("stdout");
    out.flush().expect("stdout");
}

/// Answers questions from before this process started; thinks forever about newer ones,
/// so a kill lands between the stored question and the answer.
struct SlowBot {
    started: OffsetDateTime,
}

#[async_trait]
impl Bot for SlowBot {
    async fn respond(&self, turn: BotTurn<'_>) -> chat_core::Result<BotDecision> {
        let question = turn
            .history
            .iter()
            .rev()
            .find(|m| m.sender == Sender::Customer)
            .ok_or_else(|| Error::Bot("a turn without a customer message".into()))?;
        if question.created_at >= self.started {
            say(format!("thinking {}", question.id));
            std::future::pending::<()>().await;
        }
        if question.body.contains("human") {
            return Ok(BotDecision::Handoff {
                department: None,
                reason: Some("asked for a human".into()),
                message: Some("Connecting you to a human agent.".into()),
            });
        }
        Ok(BotDecision::Reply {
            text: format!("About \"{}\": it ships tomorrow.", question.body),
            metadata: BTreeMap::new(),
        })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), TaskError> {
    let started = OffsetDateTime::now_utc();
    let mut args = std::env::args().skip(1);
    let usage = "usage: bot_turn_server <database file> <new> <follow-ups>";
    let path = args.next().ok_or(usage)?;
    let new: usize = args.next().ok_or(usage)?.parse()?;
    let follow_ups: usize = args.next().ok_or(usage)?.parse()?;

    let store = Arc::new(SqliteStore::open(&path)?);
    let tenant = TenantId(TENANT);
    let shop = Tenant {
        id: tenant,
        name: "Durable bot".into(),
        settings: TenantSettings::default(),
        settings_version: 0,
        created_at: started,
    };
    match store.insert_tenant(&shop).await {
        Ok(()) | Err(Error::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let engine = Engine::builder_with_backend(store.clone())
        .bot(Arc::new(SlowBot { started }))
        .build();
    // The resume runs while the clients retry, as in a server that serves during it.
    let retries: Vec<_> = args
        .map(|id| {
            let (engine, store) = (engine.clone(), store.clone());
            tokio::spawn(async move {
                let id = chat_core::MessageId(id.parse()?);
                let asked = store
                    .message(tenant, id)
                    .await?
                    .ok_or("the message to retry is not stored")?;
                let conversation = store
                    .conversation(tenant, asked.conversation_id)
                    .await?
                    .ok_or("the conversation is gone")?;
                let visitor = Actor::Customer {
                    tenant,
                    contact: conversation.contact_id,
                    conversation: Some(conversation.id),
                };
                let again = PostMessage {
                    client_message_id: asked.client_message_id.clone(),
                    ..PostMessage::text(asked.body.clone())
                };
                let posted = engine
                    .post_message(&visitor, conversation.id, again)
                    .await?;
                let mut line = format!("retried {id} {}", posted.created);
                for reply in &posted.replies {
                    line.push_str(&format!(" {}", reply.id));
                }
                say(line);
                Ok::<_, TaskError>(())
            })
        })
        .collect();
    let turns = engine.resume_bot_turns().await?;
    for r in retries {
        r.await??;
    }
    say(format!("resumed {turns}"));

    let mut with_bot = ConversationQuery::new(tenant, Scope::Tenant);
    with_bot.modes = vec![Mode::Bot];
    with_bot.limit = follow_ups;
    let follow = if follow_ups == 0 {
        Vec::new()
    } else {
        store.list_conversations(&with_bot).await?.items
    };
    say(format!("posting {}", new + follow.len()));
    if new + follow.len() == 0 {
        return Ok(());
    }
    let system = Actor::System { tenant };
    let mut visitors = Vec::new();
    for (n, c) in follow.into_iter().enumerate() {
        let engine = engine.clone();
        let visitor = Actor::Customer {
            tenant,
            contact: c.contact_id,
            conversation: Some(c.id),
        };
        visitors.push(tokio::spawn(async move {
            let input = PostMessage {
                client_message_id: Some(format!("follow-up-{}-{n}", Uuid::now_v7())),
                ..PostMessage::text(format!("And order {n} of mine?"))
            };
            engine.post_message(&visitor, c.id, input).await.map(drop)
        }));
    }
    for n in 0..new {
        let engine = engine.clone();
        let system = system.clone();
        let first = if n % 3 == 2 {
            format!("I want a human about order {n}")
        } else {
            format!("Where is order {n}?")
        };
        visitors.push(tokio::spawn(async move {
            let input = OpenConversation {
                first_message: Some(first),
                ..Default::default()
            };
            engine.open_conversation(&system, input).await.map(drop)
        }));
    }
    // The bot never answers these: the test kills the process while it thinks.
    for v in visitors {
        v.await??;
    }
    Err("a visitor was answered in the life it wrote in".into())
}
