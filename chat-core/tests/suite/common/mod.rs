//! A small support desk for engine tests: one tenant with staff and a manual clock.
#![allow(dead_code)]

use std::sync::Arc;

use chat_core::{
    Actor, Agent, Availability, ConversationId, Engine, ManualClock, NewAgent, OpenConversation,
    Role, TenantSettings, memory::MemoryStore,
};
use chat_core::{ContactInput, Opened, RuleBot, RuleBotConfig};
use time::macros::datetime;

pub struct Desk {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub tenant: chat_core::TenantId,
    pub system: Actor,
    pub admin: Actor,
    pub supervisor: Actor,
    /// Serves `billing`.
    pub ann: Actor,
    pub ann_id: chat_core::AgentId,
    /// Serves `sales`.
    pub bob: Actor,
    pub bob_id: chat_core::AgentId,
}

pub async fn desk() -> Desk {
    desk_with(TenantSettings::default()).await
}

pub async fn desk_with(settings: TenantSettings) -> Desk {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 09:00 UTC)));
    let engine = Engine::builder(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .bot(Arc::new(RuleBot::new(RuleBotConfig::default()).unwrap()))
        .build();
    let tenant = engine.create_tenant("Acme", settings).await.unwrap().id;
    let system = Actor::System { tenant };
    let staff = |name: &str, role: Role, departments: &[&str]| {
        let engine = engine.clone();
        let system = system.clone();
        let input = NewAgent {
            name: name.into(),
            email: format!("{}@acme.example", name.to_lowercase()),
            role,
            capacity: None,
            departments: departments.iter().map(|d| d.to_string()).collect(),
        };
        async move { engine.create_agent(&system, input).await.unwrap() }
    };
    let admin = staff("Ada", Role::Admin, &[]).await;
    let supervisor = staff("Sam", Role::Supervisor, &[]).await;
    let ann = staff("Ann", Role::Agent, &["billing"]).await;
    let bob = staff("Bob", Role::Agent, &["sales"]).await;
    let as_actor = |a: &Agent| Actor::Staff {
        tenant,
        agent: a.id,
    };
    Desk {
        clock,
        tenant,
        system: system.clone(),
        admin: as_actor(&admin),
        supervisor: as_actor(&supervisor),
        ann: as_actor(&ann),
        ann_id: ann.id,
        bob: as_actor(&bob),
        bob_id: bob.id,
        engine,
    }
}

impl Desk {
    /// Opens a conversation as the system (the server does this for a widget visitor) and
    /// returns it with the visitor's conversation-scoped actor.
    pub async fn visitor(&self, email: &str) -> (Opened, Actor) {
        let input = OpenConversation {
            contact: ContactInput {
                name: Some("Visitor".into()),
                email: Some(email.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let opened = self
            .engine
            .open_conversation(&self.system, input)
            .await
            .unwrap();
        let actor = Actor::Customer {
            tenant: self.tenant,
            contact: opened.contact.id,
            conversation: Some(opened.conversation.id),
        };
        (opened, actor)
    }

    pub async fn online(&self, who: &Actor) {
        let Actor::Staff { agent, .. } = who else {
            panic!("staff only")
        };
        self.engine
            .set_availability(who, *agent, Availability::Online)
            .await
            .unwrap();
    }

    pub async fn mode(&self, id: ConversationId) -> chat_core::Mode {
        self.engine
            .conversation(&self.system, id)
            .await
            .unwrap()
            .mode
    }
}
