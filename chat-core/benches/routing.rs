//! Routing throughput: how fast queued conversations reach agents.
//!
//! ```text
//! cargo bench -p chat-engine-core --bench routing        # ROUTING_QUEUED=1000 ROUTING_AGENTS=100
//! ```
//!
//! Opens the queued conversations with nobody online, then brings the agents online one
//! by one (each arrival triggers a routing pass, as in production) and reports
//! assignments per second for the least-loaded and round-robin routers, beside a
//! baseline that performs the same compare-and-swap writes with no routing decision.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use chat_core::memory::MemoryStore;
use chat_core::store::ConversationUpdate;
use chat_core::{
    Actor, Availability, ConversationChange, Engine, LeastLoaded, Mode, NewAgent, OpenConversation,
    Role, RoundRobin, Router, Store, TenantSettings,
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn desk(
    router: Arc<dyn Router>,
    queued: usize,
    agents: usize,
) -> (Engine, Arc<dyn Store>, Actor, Vec<chat_core::AgentId>) {
    // The baseline writes to the same store directly, so the bench keeps its own handle.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = Engine::builder(store.clone()).router(router).build();
    let settings = TenantSettings {
        bot_enabled: false,
        default_capacity: (queued / agents + 1) as u32,
        ..Default::default()
    };
    let tenant = engine.create_tenant("Bench", settings).await.unwrap().id;
    let system = Actor::System { tenant };
    let mut ids = Vec::new();
    for n in 0..agents {
        let input = NewAgent {
            name: format!("Agent {n}"),
            email: format!("a{n}@bench.example"),
            role: Role::Agent,
            capacity: None,
            departments: vec![],
        };
        ids.push(engine.create_agent(&system, input).await.unwrap().id);
    }
    for _ in 0..queued {
        engine
            .open_conversation(&system, OpenConversation::default())
            .await
            .unwrap();
    }
    (engine, store, system, ids)
}

async fn run(name: &str, router: Arc<dyn Router>, queued: usize, agents: usize) -> f64 {
    let (engine, _, system, ids) = desk(router, queued, agents).await;
    let started = Instant::now();
    for id in ids {
        engine
            .set_availability(&system, id, Availability::Online)
            .await
            .unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let page = engine
        .list_conversations(
            &system,
            chat_core::ConversationFilter {
                modes: vec![Mode::Agent],
                limit: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let assigned = page.counts.get(&Mode::Agent).copied().unwrap_or(0) as f64;
    assert_eq!(
        assigned as usize, queued,
        "{name}: every conversation was assigned"
    );
    let rate = assigned / elapsed;
    println!("{name:<28} {assigned:>6} assignments in {elapsed:>7.3} s = {rate:>9.0} /s");
    rate
}

/// The same assignment writes without routing: read the queue, CAS each conversation to
/// an agent in turn.
async fn baseline(queued: usize, agents: usize) -> f64 {
    let (_engine, store, system, ids) = desk(Arc::new(LeastLoaded), queued, agents).await;
    let started = Instant::now();
    let queue = store.queue(system.tenant(), queued).await.unwrap();
    for (n, c) in queue.into_iter().enumerate() {
        let mut next = c.clone();
        next.mode = Mode::Agent;
        next.assigned_agent_id = Some(ids[n % ids.len()]);
        let change = ConversationChange::Assigned {
            from: None,
            to: next.assigned_agent_id,
        };
        store
            .update_conversation(ConversationUpdate {
                conversation: next,
                change,
                message: None,
            })
            .await
            .unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = queued as f64 / elapsed;
    println!(
        "{:<28} {queued:>6} assignments in {elapsed:>7.3} s = {rate:>9.0} /s",
        "baseline (writes only)"
    );
    rate
}

fn main() {
    // `cargo test --all-targets` builds benches but must not run them.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let queued = env("ROUTING_QUEUED", 1000);
    let agents = env("ROUTING_AGENTS", 100);
    println!("routing {queued} queued conversations to {agents} agents (in-memory store)");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let base = baseline(queued, agents).await;
        let least = run("least-loaded", Arc::new(LeastLoaded), queued, agents).await;
        let rr = run(
            "round-robin",
            Arc::new(RoundRobin::default()),
            queued,
            agents,
        )
        .await;
        println!(
            "ratio to baseline: least-loaded {:.2}x, round-robin {:.2}x",
            least / base,
            rr / base
        );
    });
}
