//! Two servers (engines) over one store, as behind a load balancer: the round-robin turn
//! and agents' presence are the store's, so the servers behave as one.

use std::sync::Arc;
use std::time::Duration;

use chat_core::memory::MemoryStore;
use chat_core::{
    Actor, AgentId, Availability, ContactInput, ConversationId, Engine, ManualClock, Mode,
    NewAgent, OpenConversation, Role, RoundRobin, TenantId, TenantSettings,
};
use time::macros::datetime;

struct Cluster {
    nodes: [Engine; 2],
    clock: Arc<ManualClock>,
    tenant: TenantId,
    system: Actor,
    agents: Vec<AgentId>,
}

/// Two round-robin servers on one memory store and one clock, with `staff` agents
/// (created in id order) at `availability`.
async fn cluster(staff: usize, availability: Availability) -> Cluster {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 10:00 UTC)));
    let nodes = [0, 1].map(|_| {
        Engine::builder(store.clone())
            .router(Arc::new(RoundRobin::default()))
            .clock(clock.clone())
            .build()
    });
    let settings = TenantSettings {
        bot_enabled: false,
        default_capacity: 1_000,
        ..Default::default()
    };
    let tenant = nodes[0].create_tenant("Acme", settings).await.unwrap().id;
    let system = Actor::System { tenant };
    let mut agents = Vec::new();
    for n in 0..staff {
        let a = nodes[0]
            .create_agent(
                &system,
                NewAgent {
                    name: format!("Agent {n}"),
                    email: format!("a{n}@acme.example"),
                    role: Role::Agent,
                    capacity: None,
                    departments: vec![],
                },
            )
            .await
            .unwrap();
        if availability != Availability::Offline {
            nodes[0]
                .set_availability(&system, a.id, availability)
                .await
                .unwrap();
        }
        agents.push(a.id);
    }
    agents.sort();
    Cluster {
        nodes,
        clock,
        tenant,
        system,
        agents,
    }
}

async fn open(node: &Engine, tenant: TenantId, n: usize) -> ConversationId {
    let input = OpenConversation {
        contact: ContactInput {
            email: Some(format!("c{n}@x.example")),
            ..Default::default()
        },
        ..Default::default()
    };
    let system = Actor::System { tenant };
    let opened = node.open_conversation(&system, input).await.unwrap();
    opened.conversation.id
}

async fn assignee(c: &Cluster, id: ConversationId) -> Option<AgentId> {
    let conversation = c.nodes[1].conversation(&c.system, id).await.unwrap();
    conversation.assigned_agent_id
}

/// Conversations opened through one server, then the other, go to the agents in turn
/// as on one server: the second server continues from the turn the first one took.
/// (With the turn kept per process, each server started again from the first agent.)
#[tokio::test]
async fn round_robin_takes_turns_across_two_servers() {
    let c = cluster(3, Availability::Online).await;
    let mut picks = Vec::new();
    for n in 0..9 {
        let id = open(&c.nodes[n % 2], c.tenant, n).await;
        picks.push(assignee(&c, id).await.expect("assigned at once"));
    }
    let expected: Vec<AgentId> = (0..9).map(|n| c.agents[n % 3]).collect();
    assert_eq!(picks, expected);
}

/// Both servers route at once, many times: every assignment still moves the shared turn
/// one step, so the agents end with equal shares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_passes_at_once_on_two_servers_share_work_evenly() {
    let c = cluster(3, Availability::Online).await;
    let opens: Vec<_> = (0..60)
        .map(|n| {
            let node = c.nodes[n % 2].clone();
            let tenant = c.tenant;
            tokio::spawn(async move { open(&node, tenant, n).await })
        })
        .collect();
    let mut counts = std::collections::HashMap::new();
    for opened in opens {
        let id = opened.await.unwrap();
        let agent = assignee(&c, id).await.expect("assigned");
        *counts.entry(agent).or_insert(0) += 1;
    }
    for agent in &c.agents {
        assert_eq!(counts.get(agent), Some(&20), "{counts:?}");
    }
}

/// Server 0 holds Ann's presence (her socket is there), then dies: it stops renewing.
/// Once the lease has run out, server 1's timer pass takes her offline, and the queue
/// no longer waits on her; until then she stays online.
#[tokio::test]
async fn a_dead_servers_agents_go_offline_when_their_leases_lapse() {
    let c = cluster(1, Availability::Offline).await;
    let ann = c.agents[0];
    let (dead, alive) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let lease = Duration::from_secs(30);
    let online = c.nodes[0]
        .hold_presence(c.tenant, dead, &[ann], lease)
        .await
        .unwrap();
    assert_eq!(online.len(), 1, "one agent_updated event");
    let first = open(&c.nodes[0], c.tenant, 0).await;
    assert_eq!(
        assignee(&c, first).await,
        Some(ann),
        "online: routed to her"
    );
    c.clock.advance(time::Duration::seconds(29));
    let report = c.nodes[1].run_timers(c.tenant).await.unwrap();
    assert!(report.offline.is_empty(), "the lease still runs");
    c.clock.advance(time::Duration::seconds(1));
    let report = c.nodes[1].run_timers(c.tenant).await.unwrap();
    assert_eq!(report.offline, [ann]);
    let staff = c.nodes[1].agents(&c.system).await.unwrap();
    assert_eq!(staff[0].availability, Availability::Offline);
    let second = open(&c.nodes[1], c.tenant, 1).await;
    let waiting = c.nodes[1].conversation(&c.system, second).await.unwrap();
    assert_eq!(waiting.mode, Mode::Queued, "nobody online to take it");
    // She connects to the surviving server: online again, and the queue reaches her.
    c.nodes[1]
        .hold_presence(c.tenant, alive, &[ann], lease)
        .await
        .unwrap();
    assert_eq!(assignee(&c, second).await, Some(ann));
}

/// Ann is connected to both servers; one lets go of her (her socket there closed): she
/// stays online while the other holds her, and goes offline when it lets go too.
#[tokio::test]
async fn an_agent_on_two_servers_stays_online_until_both_let_go() {
    let c = cluster(1, Availability::Offline).await;
    let ann = c.agents[0];
    let lease = Duration::from_secs(30);
    let (one, two) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for (node, id) in [(0, one), (1, two)] {
        c.nodes[node]
            .hold_presence(c.tenant, id, &[ann], lease)
            .await
            .unwrap();
    }
    let released = c.nodes[0].release_presence(c.tenant, one, ann).await;
    assert_eq!(released.unwrap(), None);
    let staff = c.nodes[0].agents(&c.system).await.unwrap();
    assert_eq!(staff[0].availability, Availability::Online);
    let released = c.nodes[1].release_presence(c.tenant, two, ann).await;
    assert!(released.unwrap().is_some(), "an agent_updated event");
    let staff = c.nodes[0].agents(&c.system).await.unwrap();
    assert_eq!(staff[0].availability, Availability::Offline);
}
