//! Whole support flows through the engine, as a customer and the desk live them.

use crate::common;

use std::sync::Arc;

use async_trait::async_trait;
use chat_core::{
    Actor, Availability, Bot, BotDecision, BotTurn, ConversationChange, Engine, Error,
    EventPayload, ManualClock, Mode, NewAgent, OpenConversation, PostMessage, Priority, Reader,
    Role, Sender, TenantSettings, Transfer, TransferTarget, memory::MemoryStore,
};
use chat_core::{ContactInput, DetailsPatch, MessageKind};
use common::{desk, desk_with};
use time::Duration;

#[tokio::test]
async fn a_whole_support_conversation() {
    let d = desk_with(TenantSettings {
        welcome_message: Some("Welcome to Acme!".into()),
        ..Default::default()
    })
    .await;
    let staff_setup = d
        .engine
        .events_since(&d.admin, 0, 1000)
        .await
        .unwrap()
        .events
        .len();
    let mut live = d.engine.bus().subscribe();
    let (opened, visitor) = d.visitor("jo@shop.example").await;
    let id = opened.conversation.id;
    assert_eq!(opened.conversation.mode, Mode::Bot);
    assert_eq!(opened.messages[0].body, "Welcome to Acme!");
    assert_eq!(opened.messages[0].sender, Sender::Bot);

    let hi = d
        .engine
        .post_message(&visitor, id, PostMessage::text("Hello there"))
        .await
        .unwrap();
    assert_eq!(hi.replies.len(), 1);
    assert_eq!(hi.replies[0].sender, Sender::Bot);
    assert_eq!(
        hi.replies[0].metadata.get("bot.intent").map(String::as_str),
        Some("greeting")
    );

    // Nobody is online: the handoff waits in the queue.
    let ask = d
        .engine
        .post_message(&visitor, id, PostMessage::text("I need a human please"))
        .await
        .unwrap();
    assert_eq!(ask.conversation.mode, Mode::Queued);
    assert!(
        ask.replies
            .iter()
            .any(|m| m.sender == Sender::System && m.body.starts_with("Waiting for an agent"))
    );

    // Ann comes online and gets it at once.
    d.online(&d.ann).await;
    let c = d.engine.conversation(&d.ann, id).await.unwrap();
    assert_eq!((c.mode, c.assigned_agent_id), (Mode::Agent, Some(d.ann_id)));

    let reply = d
        .engine
        .post_message(
            &d.ann,
            id,
            PostMessage::text("Hi Jo, Ann here. Let me check."),
        )
        .await
        .unwrap();
    assert!(
        reply.replies.is_empty(),
        "the bot is silent once an agent has it"
    );
    assert_eq!(
        reply.conversation.first_response_at,
        Some(d.clock.now_for_tests())
    );
    d.engine
        .post_note(&d.ann, id, "Jo is a repeat customer")
        .await
        .unwrap();
    d.engine.close(&d.ann, id, None).await.unwrap();
    let rated = d
        .engine
        .rate(&visitor, id, 5, Some("Quick and kind".into()))
        .await
        .unwrap();
    assert_eq!(rated.mode, Mode::Closed);
    assert_eq!(rated.rating.as_ref().map(|r| r.score), Some(5));

    // The customer's view: no note; the desk's view: everything.
    let theirs = d
        .engine
        .messages(&visitor, id, Default::default())
        .await
        .unwrap();
    assert!(theirs.iter().all(|m| m.kind != MessageKind::Note));
    let ours = d
        .engine
        .messages(&d.admin, id, Default::default())
        .await
        .unwrap();
    assert_eq!(ours.len(), theirs.len() + 1);
    let seqs: Vec<u64> = ours.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=ours.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );

    // Every change was published live, in log order, and is replayable.
    let log = d
        .engine
        .events_since(&d.admin, 0, 1000)
        .await
        .unwrap()
        .events;
    let mut published = Vec::new();
    while let Ok(e) = live.try_recv() {
        published.push(e.seq);
    }
    assert_eq!(
        published,
        log[staff_setup..].iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    let tail = d
        .engine
        .events_since(&d.admin, log[5].seq, 1000)
        .await
        .unwrap()
        .events;
    assert_eq!(
        tail,
        log[6..],
        "resuming from a cursor gives exactly what followed"
    );
    assert!(log.iter().any(|e| matches!(
        &e.payload,
        EventPayload::ConversationUpdated {
            change: ConversationChange::Rated,
            ..
        }
    )));
}

trait NowForTests {
    fn now_for_tests(&self) -> time::OffsetDateTime;
}
impl NowForTests for ManualClock {
    fn now_for_tests(&self) -> time::OffsetDateTime {
        chat_core::Clock::now(self)
    }
}

#[tokio::test]
async fn the_same_client_message_id_twice_stores_one_message_and_one_bot_answer() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("dup@x.example").await;
    let id = opened.conversation.id;
    let send = || PostMessage {
        client_message_id: Some("c-42".into()),
        ..PostMessage::text("hello")
    };
    let first = d.engine.post_message(&visitor, id, send()).await.unwrap();
    let again = d.engine.post_message(&visitor, id, send()).await.unwrap();
    assert!(first.created && !again.created);
    assert_eq!(first.message.id, again.message.id);
    assert_eq!(
        again.replies, first.replies,
        "the answer given, not a second one"
    );
    let history = d
        .engine
        .messages(&visitor, id, Default::default())
        .await
        .unwrap();
    assert_eq!(history.len(), 2, "one message, one answer");
}

#[tokio::test]
async fn routing_respects_capacity_department_and_availability() {
    let d = desk_with(TenantSettings {
        default_capacity: 2,
        bot_enabled: false,
        ..Default::default()
    })
    .await;
    let engine = &d.engine;
    // Cid serves billing too; Ann is online, Cid away, Bob (sales) online.
    let cid = engine
        .create_agent(
            &d.admin,
            NewAgent {
                name: "Cid".into(),
                email: "cid@acme.example".into(),
                role: Role::Agent,
                capacity: None,
                departments: vec!["billing".into()],
            },
        )
        .await
        .unwrap();
    engine
        .set_availability(&d.admin, cid.id, Availability::Away)
        .await
        .unwrap();
    d.online(&d.ann).await;
    d.online(&d.bob).await;
    let open_billing = |n: usize| {
        let engine = engine.clone();
        let system = d.system.clone();
        async move {
            let input = OpenConversation {
                contact: ContactInput {
                    email: Some(format!("c{n}@x.example")),
                    ..Default::default()
                },
                department: Some("billing".into()),
                ..Default::default()
            };
            engine
                .open_conversation(&system, input)
                .await
                .unwrap()
                .conversation
        }
    };
    let first = open_billing(1).await;
    let second = open_billing(2).await;
    let third = open_billing(3).await;
    assert_eq!(first.assigned_agent_id, Some(d.ann_id));
    assert_eq!(second.assigned_agent_id, Some(d.ann_id));
    assert_eq!(
        (third.mode, third.assigned_agent_id),
        (Mode::Queued, None),
        "Ann is full, Bob is sales, Cid away"
    );
    // Cid comes online: least loaded, so the waiting one goes to Cid.
    engine
        .set_availability(
            &Actor::Staff {
                tenant: d.tenant,
                agent: cid.id,
            },
            cid.id,
            Availability::Online,
        )
        .await
        .unwrap();
    assert_eq!(
        engine
            .conversation(&d.admin, third.id)
            .await
            .unwrap()
            .assigned_agent_id,
        Some(cid.id)
    );
    // A fourth waits until someone frees capacity.
    let fourth = open_billing(4).await;
    assert_eq!(fourth.assigned_agent_id, Some(cid.id), "Cid had 1, Ann 2");
    let fifth = open_billing(5).await;
    assert_eq!(fifth.mode, Mode::Queued);
    engine.close(&d.ann, first.id, None).await.unwrap();
    assert_eq!(
        engine
            .conversation(&d.admin, fifth.id)
            .await
            .unwrap()
            .assigned_agent_id,
        Some(d.ann_id)
    );
}

#[tokio::test]
async fn the_queue_serves_higher_priority_first() {
    let d = desk_with(TenantSettings {
        default_capacity: 1,
        bot_enabled: false,
        ..Default::default()
    })
    .await;
    let mut ids = Vec::new();
    for (n, priority) in [Priority::Low, Priority::Urgent, Priority::Medium]
        .into_iter()
        .enumerate()
    {
        let input = OpenConversation {
            priority,
            contact: ContactInput {
                email: Some(format!("p{n}@x.example")),
                ..Default::default()
            },
            ..Default::default()
        };
        ids.push(
            d.engine
                .open_conversation(&d.system, input)
                .await
                .unwrap()
                .conversation
                .id,
        );
        d.clock.advance(Duration::seconds(1));
    }
    d.online(&d.ann).await;
    let urgent = d.engine.conversation(&d.admin, ids[1]).await.unwrap();
    assert_eq!(
        urgent.assigned_agent_id,
        Some(d.ann_id),
        "urgent first though it came later"
    );
    assert_eq!(d.mode(ids[0]).await, Mode::Queued);
    assert_eq!(d.mode(ids[2]).await, Mode::Queued);
}

#[tokio::test]
async fn two_agents_claiming_one_conversation_exactly_one_wins() {
    let d = desk().await;
    for n in 0..20 {
        let (opened, _) = d.visitor(&format!("race{n}@x.example")).await;
        let id = opened.conversation.id;
        d.engine
            .request_agent(&d.system, id, None, None)
            .await
            .unwrap();
        let (a, b) = (d.engine.clone(), d.engine.clone());
        let (ann, bob) = (d.ann.clone(), d.bob.clone());
        let x = tokio::spawn(async move { a.claim(&ann, id).await });
        let y = tokio::spawn(async move { b.claim(&bob, id).await });
        let results = [x.await.unwrap(), y.await.unwrap()];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {n}: {results:?}"
        );
        assert!(
            results.iter().any(|r| matches!(r, Err(Error::Conflict(_)))),
            "round {n}: {results:?}"
        );
    }
}

#[tokio::test]
async fn edits_keep_revisions_within_the_window_and_deletes_are_soft() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("typo@x.example").await;
    let id = opened.conversation.id;
    let m = d
        .engine
        .post_message(&visitor, id, PostMessage::text("my oder is late"))
        .await
        .unwrap()
        .message;
    d.clock.advance(Duration::minutes(14));
    let edited = d
        .engine
        .edit_message(&visitor, m.id, "my order is late")
        .await
        .unwrap();
    assert_eq!(edited.revisions.len(), 1);
    assert_eq!(edited.revisions[0].body, "my oder is late");
    assert!(edited.edited_at.is_some());
    d.clock.advance(Duration::minutes(2));
    assert!(matches!(
        d.engine.edit_message(&visitor, m.id, "too late").await,
        Err(Error::Forbidden(_))
    ));
    let deleted = d.engine.delete_message(&visitor, m.id).await.unwrap();
    assert!(deleted.deleted_at.is_some() && deleted.body.is_empty());
    let history = d
        .engine
        .messages(&d.admin, id, Default::default())
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .any(|h| h.id == m.id && h.deleted_at.is_some()),
        "it keeps its place in the timeline"
    );
    assert!(matches!(
        d.engine.edit_message(&visitor, m.id, "again").await,
        Err(Error::Conflict(_))
    ));
}

#[tokio::test]
async fn read_cursors_drive_unread_counts_and_receipts() {
    let d = desk().await;
    d.online(&d.ann).await;
    let (opened, visitor) = d.visitor("read@x.example").await;
    let id = opened.conversation.id;
    d.engine
        .request_agent(&visitor, id, None, None)
        .await
        .unwrap();
    for text in ["one", "two", "three"] {
        d.engine
            .post_message(&visitor, id, PostMessage::text(text))
            .await
            .unwrap();
    }
    let c = d.engine.conversation(&d.ann, id).await.unwrap();
    assert_eq!(c.unread_for_agent, 3);
    let c = d.engine.mark_read(&d.ann, id, c.last_seq).await.unwrap();
    assert_eq!(c.unread_for_agent, 0);
    let reply = d
        .engine
        .post_message(&d.ann, id, PostMessage::text("on it"))
        .await
        .unwrap();
    assert_eq!(reply.conversation.unread_for_customer, 1);
    let c = d
        .engine
        .mark_read(&visitor, id, reply.message.seq)
        .await
        .unwrap();
    assert_eq!(c.unread_for_customer, 0);
    let receipts = d.engine.read_cursors(&d.ann, id).await.unwrap();
    assert!(
        receipts
            .iter()
            .any(|r| r.reader == Reader::Customer && r.seq == reply.message.seq),
        "Ann sees Jo read it"
    );
}

#[tokio::test]
async fn the_rule_bot_hands_off_after_three_misses() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("lost@x.example").await;
    let id = opened.conversation.id;
    for _ in 0..2 {
        let p = d
            .engine
            .post_message(&visitor, id, PostMessage::text("blorp?"))
            .await
            .unwrap();
        assert_eq!(p.conversation.mode, Mode::Bot);
        assert!(
            p.replies[0]
                .metadata
                .contains_key(chat_core::BOT_FALLBACK_KEY)
        );
    }
    let p = d
        .engine
        .post_message(&visitor, id, PostMessage::text("blorp!!"))
        .await
        .unwrap();
    assert_eq!(p.conversation.mode, Mode::Queued);
}

struct BrokenBot;

#[async_trait]
impl Bot for BrokenBot {
    async fn respond(&self, _: BotTurn<'_>) -> chat_core::Result<BotDecision> {
        Err(Error::Bot("model timed out".into()))
    }
}

#[tokio::test]
async fn a_failing_bot_never_loses_the_customers_message() {
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .bot(Arc::new(BrokenBot))
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
    let visitor = Actor::Customer {
        tenant,
        contact: opened.contact.id,
        conversation: Some(opened.conversation.id),
    };
    let posted = engine
        .post_message(&visitor, opened.conversation.id, PostMessage::text("help"))
        .await
        .unwrap();
    assert!(posted.created);
    assert_eq!(posted.conversation.mode, Mode::Queued);
    let history = engine
        .messages(&system, opened.conversation.id, Default::default())
        .await
        .unwrap();
    assert!(history.iter().any(|m| m.body == "help"));
    assert!(history.iter().any(|m| m.body.contains("the bot failed")));
}

#[tokio::test]
async fn transfer_records_its_reason_and_the_old_owner_loses_access() {
    let d = desk().await;
    let (opened, _) = d.visitor("move@x.example").await;
    let id = opened.conversation.id;
    d.engine.assign(&d.admin, id, d.ann_id).await.unwrap();
    let t = Transfer {
        to: TransferTarget::Agent(d.bob_id),
        reason: Some("needs a sales quote".into()),
    };
    let c = d.engine.transfer(&d.ann, id, t).await.unwrap();
    assert_eq!(c.assigned_agent_id, Some(d.bob_id));
    let history = d
        .engine
        .messages(&d.bob, id, Default::default())
        .await
        .unwrap();
    // The customer reads the notice; the reason is an internal note for the next agent.
    let notice = history.iter().rev().find(|m| !m.is_note()).unwrap();
    assert_eq!(notice.sender, Sender::System);
    assert_eq!(notice.body, "Transferred from Ann to Bob");
    let reason = history.last().unwrap();
    assert!(reason.is_note());
    assert_eq!(reason.sender, Sender::Agent(d.ann_id));
    assert_eq!(reason.body, "Transfer reason: needs a sales quote");
    assert!(matches!(
        d.engine.conversation(&d.ann, id).await,
        Err(Error::NotFound(_))
    ));
    // To a department: back to the queue for that department.
    let t = Transfer {
        to: TransferTarget::Department("billing".into()),
        reason: None,
    };
    let c = d.engine.transfer(&d.bob, id, t).await.unwrap();
    assert_eq!(
        (c.mode, c.department.as_deref(), c.assigned_agent_id),
        (Mode::Queued, Some("billing"), None)
    );
    assert!(
        d.engine.conversation(&d.ann, id).await.is_ok(),
        "billing queue is Ann's again"
    );
}

#[tokio::test]
async fn the_desks_notices_name_their_kind_and_parameters_for_the_readers_language() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("notices@x.example").await;
    let id = opened.conversation.id;
    d.engine.assign(&d.admin, id, d.ann_id).await.unwrap();
    let t = Transfer {
        to: TransferTarget::Agent(d.bob_id),
        reason: None,
    };
    d.engine.transfer(&d.ann, id, t).await.unwrap();
    let t = Transfer {
        to: TransferTarget::Department("billing".into()),
        reason: None,
    };
    d.engine.transfer(&d.bob, id, t).await.unwrap();
    d.engine.close(&d.admin, id, None).await.unwrap();
    // What the customer reads: each notice's English body, and its kind and parameters.
    let notices: Vec<_> = d
        .engine
        .messages(&visitor, id, Default::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.sender == Sender::System)
        .map(|m| (m.body, m.metadata.into_iter().collect::<Vec<_>>()))
        .collect();
    let kv = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        notices,
        vec![
            (
                "Assigned to Ann".to_owned(),
                kv(&[("notice", "assigned"), ("notice.name", "Ann")])
            ),
            (
                "Transferred from Ann to Bob".to_owned(),
                kv(&[
                    ("notice", "transferred"),
                    ("notice.from", "agent"),
                    ("notice.from_name", "Ann"),
                    ("notice.to", "agent"),
                    ("notice.to_name", "Bob"),
                ])
            ),
            (
                "Transferred from Bob to another team".to_owned(),
                kv(&[
                    ("notice", "transferred"),
                    ("notice.from", "agent"),
                    ("notice.from_name", "Bob"),
                    ("notice.to", "team"),
                ])
            ),
            (
                "Conversation closed".to_owned(),
                kv(&[("notice", "closed")])
            ),
        ]
    );
}

#[tokio::test]
async fn bad_input_gets_a_named_field_and_changes_nothing() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("bad@x.example").await;
    let id = opened.conversation.id;
    let before = d.engine.conversation(&d.admin, id).await.unwrap();
    let field = |r: chat_core::Result<chat_core::Posted>| match r {
        Err(Error::Validation { field, .. }) => field,
        other => panic!("expected validation error, got {other:?}"),
    };
    assert_eq!(
        field(
            d.engine
                .post_message(&visitor, id, PostMessage::text("   "))
                .await
        ),
        "body"
    );
    assert_eq!(
        field(
            d.engine
                .post_message(&visitor, id, PostMessage::text("x".repeat(10_001)))
                .await
        ),
        "body"
    );
    assert_eq!(
        field(
            d.engine
                .post_message(&visitor, id, PostMessage::text("bell \u{7}"))
                .await
        ),
        "body"
    );
    let note_kind = PostMessage {
        kind: Some(MessageKind::Note),
        ..PostMessage::text("sneaky")
    };
    assert_eq!(
        field(d.engine.post_message(&visitor, id, note_kind).await),
        "kind"
    );
    let bad_reply = PostMessage {
        reply_to: Some(chat_core::MessageId(uuid::Uuid::now_v7())),
        ..PostMessage::text("re")
    };
    assert_eq!(
        field(d.engine.post_message(&visitor, id, bad_reply).await),
        "reply_to"
    );
    assert!(matches!(
        d.engine.rate(&visitor, id, 6, None).await,
        Err(Error::Validation {
            field: "rating.score",
            ..
        })
    ));
    assert!(matches!(
        d.engine.rate(&visitor, id, 0, None).await,
        Err(Error::Validation {
            field: "rating.score",
            ..
        })
    ));
    let tags = DetailsPatch {
        add_tags: vec!["".into()],
        ..Default::default()
    };
    assert!(matches!(
        d.engine.update_details(&d.admin, id, tags).await,
        Err(Error::Validation { field: "tags", .. })
    ));
    let bad_email = OpenConversation {
        contact: ContactInput {
            email: Some("not an email".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        d.engine.open_conversation(&d.system, bad_email).await,
        Err(Error::Validation {
            field: "contact.email",
            ..
        })
    ));
    assert!(matches!(
        d.engine
            .list_conversations(
                &d.admin,
                chat_core::ConversationFilter {
                    cursor: Some("garbage".into()),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::Validation {
            field: "cursor",
            ..
        })
    ));
    assert_eq!(d.engine.conversation(&d.admin, id).await.unwrap(), before);
}

#[tokio::test]
async fn contact_history_shows_staff_every_claim_of_an_email_without_joining_contacts() {
    let d = desk().await;
    let (first, _) = d.visitor("loyal@x.example").await;
    d.clock.advance(Duration::minutes(1));
    let (second, _) = d.visitor("LOYAL@x.example").await;
    assert_ne!(
        first.contact.id, second.contact.id,
        "a typed e-mail is a claim: each visit is its own contact until staff merge them"
    );
    let history = d
        .engine
        .contact_history(&d.admin, "loyal@x.example")
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|c| c.id).collect::<Vec<_>>(),
        [second.conversation.id, first.conversation.id]
    );
    let page = d
        .engine
        .list_conversations(&d.admin, Default::default())
        .await
        .unwrap();
    assert_eq!(page.counts.get(&Mode::Bot), Some(&2));
}

#[tokio::test]
async fn rule_bot_intents_come_from_a_config_file_with_keywords_and_patterns() {
    let rules = r#"{
        "intents": [
            { "name": "tracking", "patterns": ["\\b(where|track).*(order|parcel|paket)"], "answer": "Track it at acme.example/track." },
            { "name": "refund", "keywords": ["refund", "money back"], "answer": "Refunds take 5 days." }
        ],
        "handoff_phrases": ["human", "manusia"],
        "fallback": "Sorry?",
        "handoff_after_unanswered": 2
    }"#;
    let bot = chat_core::RuleBot::from_json(rules).unwrap();
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
    let id = opened.conversation.id;
    let visitor = Actor::Customer {
        tenant,
        contact: opened.contact.id,
        conversation: Some(id),
    };
    let say = |text: &'static str| {
        let engine = engine.clone();
        let visitor = visitor.clone();
        async move {
            engine
                .post_message(&visitor, id, PostMessage::text(text))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        say("Where is my ORDER #123?").await.replies[0].body,
        "Track it at acme.example/track."
    );
    assert_eq!(
        say("I want my money back").await.replies[0].body,
        "Refunds take 5 days."
    );
    assert_eq!(say("blorp").await.replies[0].body, "Sorry?");
    assert_eq!(
        say("blorp").await.conversation.mode,
        Mode::Queued,
        "two misses hand off"
    );
    let broken = chat_core::RuleBot::from_json(
        r#"{ "intents": [{ "name": "x", "patterns": ["(unclosed"], "answer": "y" }] }"#,
    );
    assert!(matches!(
        broken,
        Err(Error::Validation {
            field: "intents.patterns",
            ..
        })
    ));
}

#[tokio::test]
async fn a_retry_after_close_returns_the_stored_message_and_does_not_reopen() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("retry@x.example").await;
    let id = opened.conversation.id;
    let send = || PostMessage {
        client_message_id: Some("once".into()),
        ..PostMessage::text("thanks, bye")
    };
    let first = d.engine.post_message(&visitor, id, send()).await.unwrap();
    d.engine.close(&visitor, id, None).await.unwrap();
    let retry = d.engine.post_message(&visitor, id, send()).await.unwrap();
    assert!(!retry.created);
    assert_eq!(retry.message.id, first.message.id);
    assert_eq!(
        d.mode(id).await,
        Mode::Closed,
        "a retry is not a new message: no reopen"
    );
}
