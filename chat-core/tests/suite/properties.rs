//! Property tests: random sequences of what customers, agents and managers do to two
//! conversations, through the engine, with the rules checked after every step.
//!
//! - A call that fails changes nothing: no conversation, no event.
//! - The engine never answers a storage error or panics, whatever the order of calls.
//! - Every mode a conversation passes through follows the state machine, including the
//!   moves routing makes on its own.
//! - A conversation in `agent` mode has an owner; a queued one has none. (`paused` may
//!   have none: a manager can pause the bot before anyone took the conversation.)
//! - A customer never reads an internal note, in the history or in the event log, and
//!   never acts on another customer's conversation.

use std::sync::Arc;

use chat_core::{
    Actor, Availability, ConversationChange, ConversationId, Engine, Error, EventPayload,
    ManualClock, MessageKind, MessagePage, Mode, NewAgent, OpenConversation, PostMessage, Role,
    RuleBot, RuleBotConfig, TenantSettings, Transfer, TransferTarget, memory::MemoryStore,
};
use chat_core::{AgentId, ContactInput};
use proptest::prelude::*;
use time::macros::datetime;

/// Who acts.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// The customer of conversation 0 or 1.
    Customer(usize),
    Ann,
    Bob,
    Supervisor,
    Admin,
}

/// What they do, to conversation 0 or 1.
#[derive(Clone, Debug)]
enum Step {
    Post(Who, usize),
    Note(Who, usize),
    Handoff(Who, usize),
    Claim(Who, usize),
    Assign(Who, usize, bool),
    Unassign(Who, usize),
    TransferToAgent(Who, usize, bool),
    TransferToDepartment(Who, usize),
    SetMode(Who, usize, Mode),
    Close(Who, usize),
    Rate(Who, usize, u8),
    Reopen(Who, usize),
    Archive(Who, usize),
    Availability(bool, bool),
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        (0..2usize).prop_map(Who::Customer),
        Just(Who::Ann),
        Just(Who::Bob),
        Just(Who::Supervisor),
        Just(Who::Admin),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let c = 0..2usize;
    prop_oneof![
        (who(), c.clone()).prop_map(|(w, c)| Step::Post(w, c)),
        (who(), c.clone()).prop_map(|(w, c)| Step::Note(w, c)),
        (who(), c.clone()).prop_map(|(w, c)| Step::Handoff(w, c)),
        (who(), c.clone()).prop_map(|(w, c)| Step::Claim(w, c)),
        (who(), c.clone(), any::<bool>()).prop_map(|(w, c, a)| Step::Assign(w, c, a)),
        (who(), c.clone()).prop_map(|(w, c)| Step::Unassign(w, c)),
        (who(), c.clone(), any::<bool>()).prop_map(|(w, c, a)| Step::TransferToAgent(w, c, a)),
        (who(), c.clone()).prop_map(|(w, c)| Step::TransferToDepartment(w, c)),
        (
            who(),
            c.clone(),
            proptest::sample::select(Mode::ALL.to_vec())
        )
            .prop_map(|(w, c, m)| Step::SetMode(w, c, m)),
        (who(), c.clone()).prop_map(|(w, c)| Step::Close(w, c)),
        (who(), c.clone(), 0..7u8).prop_map(|(w, c, s)| Step::Rate(w, c, s)),
        (who(), c.clone()).prop_map(|(w, c)| Step::Reopen(w, c)),
        (who(), c).prop_map(|(w, c)| Step::Archive(w, c)),
        (any::<bool>(), any::<bool>()).prop_map(|(a, on)| Step::Availability(a, on)),
    ]
}

struct Desk {
    engine: Engine,
    system: Actor,
    customers: [Actor; 2],
    conversations: [ConversationId; 2],
    ann: (Actor, AgentId),
    bob: (Actor, AgentId),
    supervisor: Actor,
    admin: Actor,
}

impl Desk {
    async fn new() -> Self {
        let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 09:00 UTC)));
        let engine = Engine::builder(Arc::new(MemoryStore::new()))
            .clock(clock)
            .bot(Arc::new(RuleBot::new(RuleBotConfig::default()).unwrap()))
            .build();
        let tenant = engine
            .create_tenant("Acme", TenantSettings::default())
            .await
            .unwrap()
            .id;
        let system = Actor::System { tenant };
        let mut staff = Vec::new();
        for (name, role, capacity) in [
            ("Ada", Role::Admin, None),
            ("Sam", Role::Supervisor, None),
            // Ann takes one conversation at a time: routing must respect it.
            ("Ann", Role::Agent, Some(1)),
            ("Bob", Role::Agent, None),
        ] {
            let agent = engine
                .create_agent(
                    &system,
                    NewAgent {
                        name: name.into(),
                        email: format!("{}@acme.example", name.to_lowercase()),
                        role,
                        capacity,
                        departments: vec!["billing".into()],
                    },
                )
                .await
                .unwrap();
            staff.push((
                Actor::Staff {
                    tenant,
                    agent: agent.id,
                },
                agent.id,
            ));
        }
        let mut customers = Vec::new();
        let mut conversations = Vec::new();
        for n in 0..2 {
            let opened = engine
                .open_conversation(
                    &system,
                    OpenConversation {
                        contact: ContactInput {
                            email: Some(format!("c{n}@x.example")),
                            ..Default::default()
                        },
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            customers.push(Actor::Customer {
                tenant,
                contact: opened.contact.id,
                conversation: Some(opened.conversation.id),
            });
            conversations.push(opened.conversation.id);
        }
        Desk {
            engine,
            system,
            customers: [customers[0].clone(), customers[1].clone()],
            conversations: [conversations[0], conversations[1]],
            admin: staff[0].0.clone(),
            supervisor: staff[1].0.clone(),
            ann: staff[2].clone(),
            bob: staff[3].clone(),
        }
    }

    fn actor(&self, who: Who) -> &Actor {
        match who {
            Who::Customer(n) => &self.customers[n],
            Who::Ann => &self.ann.0,
            Who::Bob => &self.bob.0,
            Who::Supervisor => &self.supervisor,
            Who::Admin => &self.admin,
        }
    }

    fn agent(&self, ann: bool) -> AgentId {
        if ann { self.ann.1 } else { self.bob.1 }
    }

    /// Runs one step; `Ok(())` or the engine's error.
    async fn run(&self, step: &Step) -> Result<(), Error> {
        let e = &self.engine;
        let id = |c: usize| self.conversations[c];
        match *step {
            Step::Post(w, c) => {
                let input = PostMessage {
                    body: "hello".into(),
                    ..Default::default()
                };
                e.post_message(self.actor(w), id(c), input).await.map(drop)
            }
            Step::Note(w, c) => e
                .post_note(self.actor(w), id(c), "internal")
                .await
                .map(drop),
            Step::Handoff(w, c) => e
                .request_agent(self.actor(w), id(c), None, None)
                .await
                .map(drop),
            Step::Claim(w, c) => e.claim(self.actor(w), id(c)).await.map(drop),
            Step::Assign(w, c, ann) => e
                .assign(self.actor(w), id(c), self.agent(ann))
                .await
                .map(drop),
            Step::Unassign(w, c) => e.unassign(self.actor(w), id(c)).await.map(drop),
            Step::TransferToAgent(w, c, ann) => {
                let transfer = Transfer {
                    to: TransferTarget::Agent(self.agent(ann)),
                    reason: Some("secret reason".into()),
                };
                e.transfer(self.actor(w), id(c), transfer).await.map(drop)
            }
            Step::TransferToDepartment(w, c) => {
                let transfer = Transfer {
                    to: TransferTarget::Department("billing".into()),
                    reason: None,
                };
                e.transfer(self.actor(w), id(c), transfer).await.map(drop)
            }
            Step::SetMode(w, c, mode) => e.set_mode(self.actor(w), id(c), mode).await.map(drop),
            Step::Close(w, c) => e.close(self.actor(w), id(c), None).await.map(drop),
            Step::Rate(w, c, score) => e.rate(self.actor(w), id(c), score, None).await.map(drop),
            Step::Reopen(w, c) => e.reopen(self.actor(w), id(c)).await.map(drop),
            Step::Archive(w, c) => e.archive(self.actor(w), id(c)).await.map(drop),
            Step::Availability(ann, online) => {
                let (actor, agent) = if ann { &self.ann } else { &self.bob };
                let availability = if online {
                    Availability::Online
                } else {
                    Availability::Offline
                };
                e.set_availability(actor, *agent, availability)
                    .await
                    .map(drop)
            }
        }
    }

    /// Both conversations as JSON, and the event log's head.
    async fn snapshot(&self) -> (Vec<serde_json::Value>, u64) {
        let mut all = Vec::new();
        for id in self.conversations {
            let c = self.engine.conversation(&self.system, id).await.unwrap();
            all.push(serde_json::to_value(c).unwrap());
        }
        (all, self.engine.event_head(&self.system).await.unwrap())
    }
}

fn check(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let desk = Desk::new().await;
        let (mut before, mut head) = desk.snapshot().await;
        for (i, step) in steps.iter().enumerate() {
            let outcome = desk.run(step).await;
            let (after, new_head) = desk.snapshot().await;
            match &outcome {
                Err(Error::Storage(e)) => {
                    return Err(TestCaseError::fail(format!(
                        "step {i} {step:?}: storage error {e}"
                    )));
                }
                Err(Error::Bot(e)) => {
                    return Err(TestCaseError::fail(format!(
                        "step {i} {step:?}: bot error {e}"
                    )));
                }
                Err(e) => {
                    prop_assert_eq!(
                        &after,
                        &before,
                        "step {} {:?} failed ({}) but changed a conversation",
                        i,
                        step,
                        e
                    );
                    prop_assert_eq!(
                        new_head,
                        head,
                        "step {} {:?} failed ({}) but logged events",
                        i,
                        step,
                        e
                    );
                }
                Ok(()) => {}
            }
            // A customer never acts on the other customer's conversation.
            let foreign = match step {
                Step::Post(Who::Customer(n), c)
                | Step::Handoff(Who::Customer(n), c)
                | Step::SetMode(Who::Customer(n), c, _)
                | Step::Close(Who::Customer(n), c)
                | Step::Rate(Who::Customer(n), c, _)
                | Step::Reopen(Who::Customer(n), c) => n != c,
                _ => false,
            };
            prop_assert!(
                !foreign || outcome.is_err(),
                "step {} {:?}: a customer changed another's conversation",
                i,
                step
            );

            // Every mode passed through, in the events of this step, follows the machine.
            let page = desk
                .engine
                .events_since(&desk.system, head, 1000)
                .await
                .unwrap();
            let mut modes: Vec<Mode> = before
                .iter()
                .map(|c| serde_json::from_value(c["mode"].clone()).unwrap())
                .collect();
            for event in &page.events {
                if let EventPayload::ConversationUpdated {
                    conversation,
                    change,
                } = &event.payload
                {
                    let n = desk
                        .conversations
                        .iter()
                        .position(|id| *id == conversation.id)
                        .unwrap();
                    if let ConversationChange::Mode { from, to } = change {
                        prop_assert!(
                            from.can_become(*to),
                            "step {} {:?}: {} -> {}",
                            i,
                            step,
                            from,
                            to
                        );
                    }
                    let now = conversation.mode;
                    prop_assert!(
                        modes[n] == now || modes[n].can_become(now),
                        "step {} {:?}: conversation {} went {} -> {}",
                        i,
                        step,
                        n,
                        modes[n],
                        now
                    );
                    modes[n] = now;
                }
            }
            for c in &after {
                let mode: Mode = serde_json::from_value(c["mode"].clone()).unwrap();
                let owner = &c["assigned_agent_id"];
                if mode == Mode::Agent {
                    prop_assert!(
                        !owner.is_null(),
                        "step {} {:?}: agent mode without an owner",
                        i,
                        step
                    );
                }
                if mode == Mode::Queued {
                    prop_assert!(
                        owner.is_null(),
                        "step {} {:?}: queued with an owner",
                        i,
                        step
                    );
                }
            }
            before = after;
            head = new_head;
        }
        // What each customer can read: no note, no staff-only event, no transfer reason.
        for (n, customer) in desk.customers.iter().enumerate() {
            let history = desk
                .engine
                .messages(
                    customer,
                    desk.conversations[n],
                    MessagePage {
                        limit: Some(500),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            for m in &history {
                prop_assert!(m.kind != MessageKind::Note, "customer {} reads a note", n);
                prop_assert!(
                    !m.body.contains("secret reason"),
                    "customer {} reads a transfer reason",
                    n
                );
            }
            let events = desk.engine.events_since(customer, 0, 1000).await.unwrap();
            for event in &events.events {
                prop_assert!(!event.staff_only, "customer {} gets a staff-only event", n);
                prop_assert_eq!(event.conversation_id, Some(desk.conversations[n]));
                if let EventPayload::MessageCreated { message } = &event.payload {
                    prop_assert!(
                        message.kind != MessageKind::Note,
                        "customer {} is sent a note",
                        n
                    );
                }
            }
            for other in 0..2 {
                if other != n {
                    let denied = desk
                        .engine
                        .conversation(customer, desk.conversations[other])
                        .await;
                    prop_assert!(
                        denied.is_err(),
                        "customer {} reads conversation {}",
                        n,
                        other
                    );
                }
            }
        }
        Ok(())
    })
}

proptest! {
    // Each case is a whole desk's morning on the in-memory store: cheap enough for many.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_order_of_desk_actions_keeps_the_rules(steps in proptest::collection::vec(step(), 1..40)) {
        check(steps)?;
    }
}
