//! Routing and timers: the right conversation reaches the right free agent, and the
//! clock-driven rules fire exactly when due (manual clock, no sleeps).

use crate::common;

use chat_core::{
    Actor, Availability, ContactInput, Mode, NewAgent, OpenConversation, PostMessage, Role, Sender,
    TenantSettings,
};
use common::{Desk, desk_with};
use time::Duration;

async fn customer(
    d: &Desk,
    n: usize,
    department: Option<&str>,
) -> (chat_core::ConversationId, Actor) {
    let input = OpenConversation {
        contact: ContactInput {
            email: Some(format!("c{n}@x.example")),
            ..Default::default()
        },
        department: department.map(str::to_owned),
        ..Default::default()
    };
    let opened = d.engine.open_conversation(&d.system, input).await.unwrap();
    let id = opened.conversation.id;
    (
        id,
        Actor::Customer {
            tenant: d.tenant,
            contact: opened.contact.id,
            conversation: Some(id),
        },
    )
}

#[tokio::test]
async fn a_visitor_watches_its_queue_position_fall_until_the_least_loaded_billing_agent_takes_it() {
    let d = desk_with(TenantSettings {
        default_capacity: 1,
        average_handle_secs: 600,
        ..Default::default()
    })
    .await;
    // Two billing agents and a sales agent; only Ann (billing) is online at first.
    let cid = d
        .engine
        .create_agent(
            &d.admin,
            NewAgent {
                name: "Cid".into(),
                email: "cid@acme.example".into(),
                role: Role::Agent,
                capacity: Some(2),
                departments: vec!["billing".into()],
            },
        )
        .await
        .unwrap();
    d.online(&d.ann).await;
    d.online(&d.bob).await;
    // Three billing customers ask for a human through the rule bot.
    let mut waiting = Vec::new();
    for n in 0..3 {
        let (id, visitor) = customer(&d, n, Some("billing")).await;
        let answer = d
            .engine
            .post_message(&visitor, id, PostMessage::text("hello"))
            .await
            .unwrap();
        assert_eq!(
            answer.replies[0].sender,
            Sender::Bot,
            "the bot answers first"
        );
        d.engine
            .post_message(&visitor, id, PostMessage::text("please, a human agent"))
            .await
            .unwrap();
        waiting.push((id, visitor));
        d.clock.advance(Duration::seconds(10));
    }
    // Ann (capacity 1) took the first; Bob serves sales only: two wait.
    let first = d.engine.conversation(&d.admin, waiting[0].0).await.unwrap();
    assert_eq!(first.assigned_agent_id, Some(d.ann_id));
    let pos = |i: usize| {
        let (id, visitor) = waiting[i].clone();
        let engine = d.engine.clone();
        async move { engine.queue_position(&visitor, id).await.unwrap() }
    };
    let third = pos(2).await.unwrap();
    assert_eq!(third.position, 2);
    assert_eq!(
        third.estimated_wait_secs,
        Some(1200),
        "two rounds of Ann's one slot, 600 s each"
    );
    // Ann frees her slot: the second is assigned to her, the third moves up.
    d.engine.close(&d.ann, waiting[0].0, None).await.unwrap();
    assert_eq!(
        d.engine
            .conversation(&d.admin, waiting[1].0)
            .await
            .unwrap()
            .assigned_agent_id,
        Some(d.ann_id)
    );
    assert_eq!(pos(2).await.unwrap().position, 1);
    // Cid comes online with two free slots: least loaded, takes the third at once.
    let cid_actor = Actor::Staff {
        tenant: d.tenant,
        agent: cid.id,
    };
    d.engine
        .set_availability(&cid_actor, cid.id, Availability::Online)
        .await
        .unwrap();
    let third = d.engine.conversation(&d.admin, waiting[2].0).await.unwrap();
    assert_eq!(
        (third.mode, third.assigned_agent_id),
        (Mode::Agent, Some(cid.id))
    );
    assert_eq!(pos(2).await, None, "no longer queued");
}

#[tokio::test]
async fn an_agent_at_capacity_receives_nothing_more() {
    let d = desk_with(TenantSettings {
        default_capacity: 2,
        bot_enabled: false,
        ..Default::default()
    })
    .await;
    d.online(&d.ann).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(customer(&d, n, None).await.0);
    }
    let ann_has: Vec<_> = d
        .engine
        .list_conversations(
            &d.admin,
            chat_core::ConversationFilter {
                assigned: Some(chat_core::store::AssignedFilter::Agent(d.ann_id)),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items;
    assert_eq!(ann_has.len(), 2);
    assert_eq!(d.mode(ids[2]).await, Mode::Queued);
    assert_eq!(d.mode(ids[3]).await, Mode::Queued);
    // Away agents receive nothing either.
    d.engine
        .set_availability(&d.bob, d.bob_id, Availability::Away)
        .await
        .unwrap();
    d.engine.route(d.tenant).await.unwrap();
    assert_eq!(d.mode(ids[2]).await, Mode::Queued);
}

#[tokio::test]
async fn an_unanswered_conversation_is_requeued_when_its_timer_fires() {
    let d = desk_with(TenantSettings {
        requeue_after_secs: Some(300),
        bot_enabled: false,
        default_capacity: 1,
        ..Default::default()
    })
    .await;
    d.online(&d.ann).await;
    let (id, _) = customer(&d, 1, None).await;
    assert_eq!(
        d.engine
            .conversation(&d.admin, id)
            .await
            .unwrap()
            .assigned_agent_id,
        Some(d.ann_id)
    );
    d.clock.advance(Duration::seconds(299));
    assert!(
        d.engine
            .run_timers(d.tenant)
            .await
            .unwrap()
            .requeued
            .is_empty(),
        "not yet"
    );
    // Bob comes online but does not get it while Ann still has time.
    d.online(&d.bob).await;
    d.clock.advance(Duration::seconds(1));
    let report = d.engine.run_timers(d.tenant).await.unwrap();
    assert_eq!(report.requeued, [id]);
    let c = d.engine.conversation(&d.admin, id).await.unwrap();
    assert_eq!(
        (c.mode, c.assigned_agent_id),
        (Mode::Agent, Some(d.bob_id)),
        "requeued and routed to the free agent"
    );
    let history = d
        .engine
        .messages(&d.admin, id, Default::default())
        .await
        .unwrap();
    assert!(
        history
            .iter()
            .any(|m| m.body == "Requeued: no answer within 5 minutes")
    );
    // Once Bob answers, the timer leaves it alone.
    d.engine
        .post_message(&d.bob, id, PostMessage::text("Hi, Bob here"))
        .await
        .unwrap();
    d.clock.advance(Duration::hours(1));
    assert!(
        d.engine
            .run_timers(d.tenant)
            .await
            .unwrap()
            .requeued
            .is_empty()
    );
}

#[tokio::test]
async fn a_silent_customer_is_closed_after_the_inactivity_timer() {
    let d = desk_with(TenantSettings {
        close_inactive_after_secs: Some(600),
        ..Default::default()
    })
    .await;
    let (id, visitor) = customer(&d, 1, None).await;
    d.engine
        .post_message(&visitor, id, PostMessage::text("hello"))
        .await
        .unwrap(); // the bot answers
    d.clock.advance(Duration::seconds(599));
    assert!(
        d.engine
            .run_timers(d.tenant)
            .await
            .unwrap()
            .closed
            .is_empty()
    );
    d.engine
        .post_message(&visitor, id, PostMessage::text("hi again"))
        .await
        .unwrap(); // resets the clock
    d.clock.advance(Duration::seconds(599));
    assert!(
        d.engine
            .run_timers(d.tenant)
            .await
            .unwrap()
            .closed
            .is_empty()
    );
    d.clock.advance(Duration::seconds(1));
    assert_eq!(d.engine.run_timers(d.tenant).await.unwrap().closed, [id]);
    assert_eq!(d.mode(id).await, Mode::Closed);
}

#[tokio::test]
async fn timers_are_off_by_default_and_never_close_a_customer_waiting_for_an_answer() {
    let d = common::desk().await;
    let (id, visitor) = customer(&d, 1, None).await;
    d.engine
        .post_message(&visitor, id, PostMessage::text("hello"))
        .await
        .unwrap();
    d.clock.advance(Duration::days(30));
    assert_eq!(
        d.engine.run_timers(d.tenant).await.unwrap(),
        Default::default()
    );
    let strict = desk_with(TenantSettings {
        close_inactive_after_secs: Some(60),
        bot_enabled: false,
        ..Default::default()
    })
    .await;
    let (id, visitor) = customer(&strict, 2, None).await;
    strict.engine.claim(&strict.ann, id).await.unwrap();
    strict
        .engine
        .post_message(&visitor, id, PostMessage::text("still waiting for you"))
        .await
        .unwrap();
    strict.clock.advance(Duration::hours(2));
    assert!(
        strict
            .engine
            .run_timers(strict.tenant)
            .await
            .unwrap()
            .closed
            .is_empty(),
        "the desk owes an answer"
    );
}

/// Two servers (engines) over one store, as behind a load balancer, and a desk on it with
/// one agent, Ann, away.
struct TwoServers {
    store: std::sync::Arc<chat_core::memory::MemoryStore>,
    nodes: [chat_core::Engine; 2],
    tenant: chat_core::TenantId,
    system: Actor,
    ann: chat_core::Agent,
    ann_actor: Actor,
}

/// [`TwoServers`] with `settings`; `build` sets up server `n`'s engine (its router, clock).
async fn two_servers(
    settings: TenantSettings,
    build: impl Fn(usize, chat_core::EngineBuilder) -> chat_core::EngineBuilder,
) -> TwoServers {
    let store = std::sync::Arc::new(chat_core::memory::MemoryStore::new());
    let nodes = [0, 1].map(|n| build(n, chat_core::Engine::builder(store.clone())).build());
    let tenant = nodes[0].create_tenant("Acme", settings).await.unwrap().id;
    let system = Actor::System { tenant };
    let ann = nodes[0]
        .create_agent(
            &system,
            NewAgent {
                name: "Ann".into(),
                email: "ann@acme.example".into(),
                role: Role::Agent,
                capacity: None,
                departments: vec![],
            },
        )
        .await
        .unwrap();
    let ann_actor = Actor::Staff {
        tenant,
        agent: ann.id,
    };
    TwoServers {
        store,
        nodes,
        tenant,
        system,
        ann,
        ann_actor,
    }
}

/// A router that, once armed, waits inside its next pick until the other server's pass
/// picks too: both passes then hold the agent loads they read before either assigned.
struct RacingRouter {
    armed: std::sync::atomic::AtomicBool,
    both_picking: std::sync::Arc<std::sync::Barrier>,
}

impl chat_core::Router for RacingRouter {
    fn pick(
        &self,
        conversation: &chat_core::Conversation,
        candidates: &[chat_core::AgentLoad],
        default_capacity: u32,
    ) -> Option<chat_core::AgentId> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.both_picking.wait();
        }
        chat_core::LeastLoaded.pick(conversation, candidates, default_capacity)
    }
}

/// Two servers (two engines, each with its own routing lock) over one store, as behind a
/// load balancer: their routing passes run at once, each having read the agent's load
/// before the other assigned, and the agent still never holds more than its capacity.
/// (Before the store checked capacity in its write, Ann ended each round with six.)
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn routing_passes_on_two_servers_at_once_never_put_an_agent_over_capacity() {
    use std::sync::Arc;

    use chat_core::Store;

    let both_picking = Arc::new(std::sync::Barrier::new(2));
    let routers: Vec<Arc<RacingRouter>> = (0..2)
        .map(|_| {
            Arc::new(RacingRouter {
                armed: false.into(),
                both_picking: both_picking.clone(),
            })
        })
        .collect();
    let settings = TenantSettings {
        bot_enabled: false,
        default_capacity: 3,
        ..Default::default()
    };
    let TwoServers {
        store,
        nodes,
        tenant,
        system,
        ann,
        ann_actor,
    } = two_servers(settings, |n, b| b.router(routers[n].clone())).await;
    let held = || async {
        let loads = store.agent_loads(tenant).await.unwrap();
        loads.iter().find(|l| l.agent.id == ann.id).unwrap().open
    };
    for round in 0..10 {
        // Ann is away while the queue fills, so nothing is routed yet.
        let mut waiting = Vec::new();
        for n in 0..6 {
            waiting.push(customer_of(&nodes[n % 2], tenant, round * 6 + n).await);
        }
        // Ann comes online in the store itself, as another server would have written it;
        // then both servers route at once.
        let mut online = store.agent(tenant, ann.id).await.unwrap().unwrap();
        online.availability = Availability::Online;
        store.update_agent(&online).await.unwrap();
        for router in &routers {
            router
                .armed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let passes: Vec<_> = (0..2)
            .map(|n| {
                let node = nodes[n].clone();
                tokio::spawn(async move { node.route(tenant).await.unwrap() })
            })
            .collect();
        let mut assigned = 0;
        for pass in passes {
            assigned += pass.await.unwrap().len();
        }
        assert_eq!(held().await, 3, "round {round}: Ann is full, not over");
        assert_eq!(
            assigned, 3,
            "round {round}: exactly her free places were filled"
        );
        // Ann goes away and closes what she holds, for the next round.
        nodes[0]
            .set_availability(&ann_actor, ann.id, Availability::Away)
            .await
            .unwrap();
        for id in waiting {
            let c = nodes[1].conversation(&system, id).await.unwrap();
            if c.mode == Mode::Agent {
                nodes[1].close(&ann_actor, id, None).await.unwrap();
            }
        }
        assert_eq!(held().await, 0);
        // What was not routed waits for the next round's queue, closed by the system.
        for c in store.queue(tenant, 100).await.unwrap() {
            nodes[0].close(&system, c.id, None).await.unwrap();
        }
    }
}

async fn customer_of(
    engine: &chat_core::Engine,
    tenant: chat_core::TenantId,
    n: usize,
) -> chat_core::ConversationId {
    let input = OpenConversation {
        contact: ContactInput {
            email: Some(format!("c{n}@x.example")),
            ..Default::default()
        },
        ..Default::default()
    };
    let opened = engine
        .open_conversation(&Actor::System { tenant }, input)
        .await
        .unwrap();
    opened.conversation.id
}

/// Two servers run the timers of one desk at the same moment (each server's timer loop
/// runs every tenant's timers): every lapsed conversation is requeued once, by one of
/// them, with one notice. Each timer action re-checks its condition on the conversation
/// it writes, at the version it writes, so the other server's attempt is a conflict that
/// changes nothing: the effect is exactly once without a lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_run_by_two_servers_at_once_requeue_each_conversation_once() {
    use std::collections::HashSet;
    use std::sync::Arc;

    use chat_core::ManualClock;
    use time::macros::datetime;

    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 10:00 UTC)));
    let settings = TenantSettings {
        bot_enabled: false,
        default_capacity: 1_000,
        requeue_after_secs: Some(60),
        ..Default::default()
    };
    let TwoServers {
        nodes,
        tenant,
        system,
        ann,
        ann_actor,
        ..
    } = two_servers(settings, |_, b| b.clock(clock.clone())).await;
    nodes[0]
        .set_availability(&ann_actor, ann.id, Availability::Online)
        .await
        .unwrap();
    let mut opened = Vec::new();
    for n in 0..300 {
        opened.push(customer_of(&nodes[n % 2], tenant, n).await);
    }
    for &id in &opened {
        assert_eq!(
            nodes[0].conversation(&system, id).await.unwrap().mode,
            Mode::Agent
        );
    }
    // Ann leaves without answering: what lapses stays queued, so each requeue shows.
    nodes[0]
        .set_availability(&ann_actor, ann.id, Availability::Away)
        .await
        .unwrap();
    clock.advance(Duration::seconds(61));
    let runs: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            tokio::spawn(async move { node.run_timers(tenant).await.unwrap() })
        })
        .collect();
    let mut requeued = Vec::new();
    for run in runs {
        requeued.extend(run.await.unwrap().requeued);
    }
    assert_eq!(requeued.len(), opened.len(), "each requeued once in all");
    let distinct: HashSet<_> = requeued.iter().collect();
    assert_eq!(distinct.len(), opened.len(), "no conversation twice");
    for &id in &opened {
        let c = nodes[1].conversation(&system, id).await.unwrap();
        assert_eq!(c.mode, Mode::Queued);
        let history = nodes[1]
            .messages(&system, id, Default::default())
            .await
            .unwrap();
        let notices = history
            .iter()
            .filter(|m| m.body.starts_with("Requeued"))
            .count();
        assert_eq!(notices, 1, "one notice for {id}");
    }
}
