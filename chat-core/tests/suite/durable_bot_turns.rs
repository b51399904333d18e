//! The bot's turn survives a crash: a customer message stored before the process died
//! is answered once, by the start-up resume or by the client's retry, never twice.
//!
//! A crash is played by cancelling the post while the bot thinks (the customer's message
//! is stored, the answer is not), then building a new engine on the same store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chat_core::{
    Actor, Bot, BotDecision, BotFailure, BotTurn, ConversationId, Engine, Error, ManualClock,
    Message, MessageKind, Mode, OpenConversation, PostMessage, Sender, TenantId, TenantSettings,
    memory::MemoryStore,
};
use chat_core::{BOT_HANDOFF_KEY, BOT_HANDOFF_REASON_KEY, bot_reply_key};
use time::macros::datetime;
use tokio::sync::mpsc;

/// A bot that tells the test it started thinking, then never finishes: the process "dies"
/// in the middle of its turn.
struct StuckBot(mpsc::UnboundedSender<String>);

#[async_trait]
impl Bot for StuckBot {
    async fn respond(&self, turn: BotTurn<'_>) -> chat_core::Result<BotDecision> {
        let _ = self.0.send(turn.last_customer_text().to_owned());
        std::future::pending().await
    }
}

/// Answers every message, counting how often it was asked; fails the first `failures`
/// times (a model that timed out).
#[derive(Default)]
struct CountingBot {
    asked: AtomicUsize,
    failures: usize,
}

#[async_trait]
impl Bot for CountingBot {
    async fn respond(&self, turn: BotTurn<'_>) -> chat_core::Result<BotDecision> {
        if self.asked.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(Error::Bot("model timed out".into()));
        }
        Ok(BotDecision::Reply {
            text: format!(
                "About \"{}\": here is the answer.",
                turn.last_customer_text()
            ),
            metadata: BTreeMap::new(),
        })
    }
}

struct Shop {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    conversation: ConversationId,
    visitor: Actor,
}

/// A shop with one visitor's conversation in `bot` mode, on a store that outlives engines.
async fn shop() -> Shop {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 09:00 UTC)));
    let engine = Engine::builder_with_backend(store.clone())
        .clock(clock.clone())
        .build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let opened = engine
        .open_conversation(&Actor::System { tenant }, OpenConversation::default())
        .await
        .unwrap();
    assert_eq!(opened.conversation.mode, Mode::Bot);
    let visitor = Actor::Customer {
        tenant,
        contact: opened.contact.id,
        conversation: Some(opened.conversation.id),
    };
    Shop {
        store,
        clock,
        tenant,
        conversation: opened.conversation.id,
        visitor,
    }
}

fn question(key: &str) -> PostMessage {
    PostMessage {
        client_message_id: Some(key.into()),
        ..PostMessage::text("Where is my order 1042?")
    }
}

impl Shop {
    fn engine_with(&self, bot: Arc<dyn Bot>) -> Engine {
        Engine::builder_with_backend(self.store.clone())
            .clock(self.clock.clone())
            .bot(bot)
            .on_bot_failure(BotFailure::Ignore)
            .build()
    }

    /// Posts the visitor's question and "kills the process" while the bot thinks about it.
    async fn post_and_crash(&self, key: &str) {
        let (thinking, mut started) = mpsc::unbounded_channel();
        let engine = self.engine_with(Arc::new(StuckBot(thinking)));
        let (visitor, id, input) = (self.visitor.clone(), self.conversation, question(key));
        let post = tokio::spawn(async move { engine.post_message(&visitor, id, input).await });
        assert_eq!(
            started.recv().await.as_deref(),
            Some("Where is my order 1042?"),
            "the bot got the question after it was stored"
        );
        post.abort();
        assert!(post.await.unwrap_err().is_cancelled());
    }

    async fn history(&self) -> Vec<Message> {
        let engine = Engine::builder_with_backend(self.store.clone()).build();
        engine
            .messages(
                &Actor::System {
                    tenant: self.tenant,
                },
                self.conversation,
                Default::default(),
            )
            .await
            .unwrap()
    }

    /// The customer's question and every bot message, after the crash.
    async fn question_and_answers(&self) -> (Message, Vec<Message>) {
        let history = self.history().await;
        let asked: Vec<_> = history
            .iter()
            .filter(|m| m.sender == Sender::Customer)
            .cloned()
            .collect();
        assert_eq!(asked.len(), 1, "the question is stored once");
        let answers = history
            .into_iter()
            .filter(|m| m.sender == Sender::Bot)
            .collect();
        (asked[0].clone(), answers)
    }
}

#[tokio::test]
async fn resume_answers_a_turn_cut_short_once() {
    let shop = shop().await;
    shop.post_and_crash("visit-1").await;
    let (_, answers) = shop.question_and_answers().await;
    assert!(answers.is_empty(), "the crash left the question unanswered");

    let bot = Arc::new(CountingBot::default());
    let engine = shop.engine_with(bot.clone());
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 1);
    assert_eq!(
        engine.resume_bot_turns().await.unwrap(),
        0,
        "a second resume finds nothing to do"
    );
    let (asked, answers) = shop.question_and_answers().await;
    assert_eq!(answers.len(), 1, "one answer");
    assert_eq!(
        answers[0].client_message_id,
        Some(bot_reply_key(asked.id)),
        "the answer names the question it answers"
    );
    assert!(answers[0].body.contains("order 1042"));

    // The client never saw the first attempt finish and retries: it gets the answer
    // given, and the bot is not asked again.
    let retry = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-1"))
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(retry.message.id, asked.id);
    assert_eq!(retry.replies, answers);
    assert_eq!(bot.asked.load(Ordering::SeqCst), 1);
    assert_eq!(shop.question_and_answers().await.1.len(), 1);
}

#[tokio::test]
async fn a_retry_answers_a_turn_cut_short_and_a_second_retry_gets_the_same_answer() {
    let shop = shop().await;
    shop.post_and_crash("visit-7").await;

    let bot = Arc::new(CountingBot::default());
    let engine = shop.engine_with(bot.clone());
    let retry = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-7"))
        .await
        .unwrap();
    assert!(!retry.created, "the question was stored before the crash");
    assert_eq!(retry.replies.len(), 1, "the retry brings the answer");
    assert_eq!(retry.replies[0].sender, Sender::Bot);
    assert_eq!(retry.conversation.mode, Mode::Bot);

    let again = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-7"))
        .await
        .unwrap();
    assert_eq!(again.replies, retry.replies);
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 0);
    assert_eq!(bot.asked.load(Ordering::SeqCst), 1, "the bot answered once");
    let (asked, answers) = shop.question_and_answers().await;
    assert_eq!(answers, retry.replies);
    assert_eq!(answers[0].client_message_id, Some(bot_reply_key(asked.id)));
}

#[tokio::test]
async fn a_bot_that_failed_the_first_time_answers_on_resume() {
    let shop = shop().await;
    let bot = Arc::new(CountingBot {
        failures: 1,
        ..Default::default()
    });
    let engine = shop.engine_with(bot.clone());
    let posted = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-3"))
        .await
        .unwrap();
    assert!(posted.replies.is_empty(), "the failing bot stayed silent");
    assert_eq!(posted.conversation.mode, Mode::Bot);

    assert_eq!(engine.resume_bot_turns_of(shop.tenant).await.unwrap(), 1);
    assert_eq!(engine.resume_bot_turns_of(shop.tenant).await.unwrap(), 0);
    assert_eq!(bot.asked.load(Ordering::SeqCst), 2);
    assert_eq!(shop.question_and_answers().await.1.len(), 1);
}

#[tokio::test]
async fn a_newer_question_supersedes_an_unanswered_one() {
    let shop = shop().await;
    shop.post_and_crash("visit-1").await;
    let bot = Arc::new(CountingBot::default());
    let engine = shop.engine_with(bot.clone());
    let newer = engine
        .post_message(
            &shop.visitor,
            shop.conversation,
            PostMessage {
                client_message_id: Some("visit-2".into()),
                ..PostMessage::text("Hello? Anyone there?")
            },
        )
        .await
        .unwrap();
    assert_eq!(newer.replies.len(), 1, "the newer question is answered");

    // The bot answered the newer question with the older one in view: the late retry of
    // the older one asks nothing more, and neither does the resume.
    let retry = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-1"))
        .await
        .unwrap();
    assert!(!retry.created && retry.replies.is_empty());
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 0);
    assert_eq!(bot.asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_handoff_cut_short_before_the_queueing_is_finished_once() {
    let shop = shop().await;
    shop.post_and_crash("visit-9").await;
    let (asked, _) = shop.question_and_answers().await;
    // Where the crash left a handoff: the bot's message is stored, with its terms, and
    // the conversation is still in `bot` mode.
    let engine = shop.engine_with(Arc::new(CountingBot::default()));
    let bot = Actor::Bot {
        tenant: shop.tenant,
    };
    let said = engine
        .post_message(
            &bot,
            shop.conversation,
            PostMessage {
                client_message_id: Some(bot_reply_key(asked.id)),
                metadata: BTreeMap::from([
                    (BOT_HANDOFF_KEY.to_owned(), "billing".to_owned()),
                    (BOT_HANDOFF_REASON_KEY.to_owned(), "refund".to_owned()),
                ]),
                ..PostMessage::text("Connecting you to a human agent.")
            },
        )
        .await
        .unwrap();
    assert_eq!(said.conversation.mode, Mode::Bot);

    let restarted = Arc::new(CountingBot::default());
    let engine = shop.engine_with(restarted.clone());
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 1);
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 0);
    let retry = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-9"))
        .await
        .unwrap();
    assert_eq!(retry.conversation.mode, Mode::Queued);
    assert_eq!(retry.conversation.department.as_deref(), Some("billing"));
    assert_eq!(
        retry.replies,
        vec![said.message],
        "the retry shows the handoff"
    );
    assert_eq!(
        restarted.asked.load(Ordering::SeqCst),
        0,
        "the bot had decided already"
    );
    let waiting: Vec<_> = shop
        .history()
        .await
        .into_iter()
        .filter(|m| m.kind == MessageKind::Event && m.body.starts_with("Waiting for an agent"))
        .collect();
    assert_eq!(waiting.len(), 1, "queued once: {waiting:?}");
    assert!(waiting[0].body.contains("refund"));
}

/// A bot that hands off with a message, for the handoff's own idempotency.
struct HandoffBot;

#[async_trait]
impl Bot for HandoffBot {
    async fn respond(&self, _: BotTurn<'_>) -> chat_core::Result<BotDecision> {
        Ok(BotDecision::Handoff {
            department: None,
            reason: None,
            message: Some("Connecting you to a human agent.".into()),
        })
    }
}

#[tokio::test]
async fn a_handoff_retried_after_it_completed_queues_once() {
    let shop = shop().await;
    let engine = shop.engine_with(Arc::new(HandoffBot));
    let first = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-5"))
        .await
        .unwrap();
    assert_eq!(first.conversation.mode, Mode::Queued);
    assert_eq!(first.replies[0].sender, Sender::Bot);
    let retry = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-5"))
        .await
        .unwrap();
    assert_eq!(retry.conversation.mode, Mode::Queued);
    assert_eq!(retry.replies, vec![first.replies[0].clone()]);
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 0);
    let history = shop.history().await;
    assert_eq!(
        history.iter().filter(|m| m.sender == Sender::Bot).count(),
        1
    );
    assert_eq!(
        history
            .iter()
            .filter(|m| m.body.starts_with("Waiting for an agent"))
            .count(),
        1
    );
}

#[tokio::test]
async fn the_resume_leaves_messages_newer_than_itself_to_their_own_post() {
    let shop = shop().await;
    shop.post_and_crash("visit-4").await;
    let (asked, _) = shop.question_and_answers().await;
    let bot = Arc::new(CountingBot::default());
    let engine = shop.engine_with(bot.clone());
    // A resume that began before the question arrived: the question's own post is
    // answering it, so the resume does not ask the bot a second time.
    shop.clock
        .set(asked.created_at - time::Duration::seconds(1));
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 0);
    assert_eq!(bot.asked.load(Ordering::SeqCst), 0);
    shop.clock.set(asked.created_at);
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 1);
    assert_eq!(shop.question_and_answers().await.1.len(), 1);
}

#[tokio::test]
async fn the_resume_pages_through_many_idle_bot_chats_and_answers_only_the_hanging_ones() {
    let shop = shop().await;
    let bot = Arc::new(CountingBot::default());
    let engine = shop.engine_with(bot.clone());
    let system = Actor::System {
        tenant: shop.tenant,
    };
    let answered = |n: usize| {
        let (engine, system) = (engine.clone(), system.clone());
        async move {
            let opening = OpenConversation {
                first_message: Some(format!("Question {n}")),
                ..Default::default()
            };
            let opened = engine.open_conversation(&system, opening).await.unwrap();
            assert_eq!(opened.messages.len(), 2, "asked and answered");
        }
    };
    // Hanging turns at the top, middle and bottom of a list longer than two pages,
    // each conversation a second apart, as activity orders the list.
    shop.post_and_crash("visit-1").await;
    for n in 0..450 {
        shop.clock.advance(time::Duration::seconds(1));
        answered(n).await;
        if n == 225 || n == 449 {
            let (thinking, mut started) = mpsc::unbounded_channel();
            let stuck = shop.engine_with(Arc::new(StuckBot(thinking)));
            let opening = OpenConversation {
                first_message: Some(format!("Stuck question {n}")),
                ..Default::default()
            };
            let opener = system.clone();
            let post = tokio::spawn(async move { stuck.open_conversation(&opener, opening).await });
            assert!(started.recv().await.is_some(), "the question was stored");
            post.abort();
            assert!(post.await.unwrap_err().is_cancelled());
        }
    }
    let asked_before = bot.asked.load(Ordering::SeqCst);
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 3);
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 0);
    assert_eq!(bot.asked.load(Ordering::SeqCst) - asked_before, 3);
}

#[tokio::test]
async fn an_answer_a_bot_service_gave_later_through_the_api_counts() {
    let shop = shop().await;
    shop.post_and_crash("visit-6").await;
    // A webhook service answered `none`, then spoke with its bot token: no reply key.
    let engine = shop.engine_with(Arc::new(CountingBot::default()));
    let later = engine
        .post_message(
            &Actor::Bot {
                tenant: shop.tenant,
            },
            shop.conversation,
            PostMessage::text("Order 1042 left the warehouse this morning."),
        )
        .await
        .unwrap();

    let bot = Arc::new(CountingBot::default());
    let engine = shop.engine_with(bot.clone());
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 0);
    let retry = engine
        .post_message(&shop.visitor, shop.conversation, question("visit-6"))
        .await
        .unwrap();
    assert_eq!(retry.replies, vec![later.message]);
    assert_eq!(
        bot.asked.load(Ordering::SeqCst),
        0,
        "the customer has an answer"
    );
    assert_eq!(shop.question_and_answers().await.1.len(), 1);
}

#[tokio::test]
async fn a_silent_bot_is_asked_again_and_counts_as_no_answer() {
    let shop = shop().await;
    shop.post_and_crash("visit-8").await;
    let engine = shop.engine_with(Arc::new(chat_core::SilentBot));
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 0);
    assert!(shop.question_and_answers().await.1.is_empty());
    // A bot that speaks, after a restart, answers what the silent one left.
    let engine = shop.engine_with(Arc::new(CountingBot::default()));
    assert_eq!(engine.resume_bot_turns().await.unwrap(), 1);
    assert_eq!(shop.question_and_answers().await.1.len(), 1);
}
