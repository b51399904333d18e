//! Routing: which agent gets a queued conversation.

use crate::ids::AgentId;
use crate::model::{AgentLoad, Availability, Conversation};

/// Picks an agent for a queued conversation, or none (it stays queued).
///
/// The engine gives every active agent with its current load; [`eligible`] is the rule
/// every router must respect (online, serves the department, under capacity).
pub trait Router: Send + Sync + 'static {
    /// The chosen agent.
    fn pick(
        &self,
        conversation: &Conversation,
        candidates: &[AgentLoad],
        default_capacity: u32,
    ) -> Option<AgentId>;

    /// Whether the router takes turns. The engine then keeps the turn in the store,
    /// shared by every server ([`Store::routing_turn`](crate::Store::routing_turn)),
    /// picks with [`Router::pick_in_turn`] and moves the turn in the assignment's
    /// transaction, so two servers' passes alternate as one would.
    fn takes_turns(&self) -> bool {
        false
    }

    /// The chosen agent when the tenant's last turn-taking assignment went to `turn`
    /// (`None` before the first). Only called when [`Router::takes_turns`]; by default
    /// the turn plays no part.
    fn pick_in_turn(
        &self,
        conversation: &Conversation,
        candidates: &[AgentLoad],
        default_capacity: u32,
        turn: Option<AgentId>,
    ) -> Option<AgentId> {
        let _ = turn;
        self.pick(conversation, candidates, default_capacity)
    }
}

/// Whether `load` may receive `conversation` now: active, online, serving its department
/// and below its capacity (its own, else the tenant's default).
pub fn eligible(conversation: &Conversation, load: &AgentLoad, default_capacity: u32) -> bool {
    let agent = &load.agent;
    agent.active
        && agent.availability == Availability::Online
        && agent.serves(conversation.department.as_deref())
        && load.open < agent.capacity.unwrap_or(default_capacity)
}

/// Gives the conversation to the eligible agent holding the fewest conversations; ties go
/// to the agent with the lowest id, so the choice is reproducible.
#[derive(Debug, Default, Clone, Copy)]
pub struct LeastLoaded;

impl Router for LeastLoaded {
    fn pick(
        &self,
        conversation: &Conversation,
        candidates: &[AgentLoad],
        default_capacity: u32,
    ) -> Option<AgentId> {
        candidates
            .iter()
            .filter(|l| eligible(conversation, l, default_capacity))
            .min_by_key(|l| (l.open, l.agent.id))
            .map(|l| l.agent.id)
    }
}

/// Never assigns: conversations wait in the queue until an agent claims one.
#[derive(Debug, Default, Clone, Copy)]
pub struct Manual;

impl Router for Manual {
    fn pick(&self, _: &Conversation, _: &[AgentLoad], _: u32) -> Option<AgentId> {
        None
    }
}

/// Takes eligible agents in turn (by id), wrapping around, so work spreads evenly even
/// when loads are equal. In an engine the turn is the store's, shared by every server
/// ([`Router::takes_turns`]); [`Router::pick`] alone keeps one in the router itself.
#[derive(Debug, Default)]
pub struct RoundRobin {
    last: std::sync::Mutex<Option<AgentId>>,
}

impl RoundRobin {
    /// The first eligible agent after `turn` by id, wrapping around.
    fn after(
        conversation: &Conversation,
        candidates: &[AgentLoad],
        default_capacity: u32,
        turn: Option<AgentId>,
    ) -> Option<AgentId> {
        let eligible = candidates
            .iter()
            .filter(|l| eligible(conversation, l, default_capacity))
            .map(|l| l.agent.id);
        let first = eligible.clone().min();
        match turn {
            Some(previous) => eligible.filter(|id| *id > previous).min().or(first),
            None => first,
        }
    }
}

impl Router for RoundRobin {
    fn pick(
        &self,
        conversation: &Conversation,
        candidates: &[AgentLoad],
        default_capacity: u32,
    ) -> Option<AgentId> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let next = Self::after(conversation, candidates, default_capacity, *last);
        if next.is_some() {
            *last = next;
        }
        next
    }

    fn takes_turns(&self) -> bool {
        true
    }

    fn pick_in_turn(
        &self,
        conversation: &Conversation,
        candidates: &[AgentLoad],
        default_capacity: u32,
        turn: Option<AgentId>,
    ) -> Option<AgentId> {
        Self::after(conversation, candidates, default_capacity, turn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Agent, Role};
    use crate::testing::conversation_value;
    use crate::{ContactId, Mode, TenantId};

    fn load(n: u128, open: u32, availability: Availability, departments: &[&str]) -> AgentLoad {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        AgentLoad {
            agent: Agent {
                id: AgentId(uuid::Uuid::from_u128(n)),
                tenant_id: TenantId(uuid::Uuid::nil()),
                name: format!("a{n}"),
                email: format!("a{n}@x"),
                role: Role::Agent,
                availability,
                capacity: None,
                departments: departments.iter().map(|d| d.to_string()).collect(),
                active: true,
                created_at: now,
                updated_at: now,
            },
            open,
        }
    }

    #[test]
    fn least_loaded_prefers_the_idlest_eligible_agent() {
        let c = conversation_value(
            TenantId(uuid::Uuid::nil()),
            ContactId(uuid::Uuid::nil()),
            Mode::Queued,
            0,
        );
        let loads = [
            load(1, 2, Availability::Online, &[]),
            load(2, 1, Availability::Online, &[]),
            load(3, 0, Availability::Away, &[]),
        ];
        assert_eq!(
            LeastLoaded.pick(&c, &loads, 5),
            Some(AgentId(uuid::Uuid::from_u128(2)))
        );
        assert_eq!(
            LeastLoaded.pick(&c, &loads, 1),
            None,
            "everyone online is at capacity"
        );
    }

    #[test]
    fn round_robin_takes_turns_among_eligible_agents() {
        let mut c = conversation_value(
            TenantId(uuid::Uuid::nil()),
            ContactId(uuid::Uuid::nil()),
            Mode::Queued,
            0,
        );
        c.department = Some("sales".into());
        let loads = [
            load(1, 0, Availability::Online, &["sales"]),
            load(2, 4, Availability::Online, &["sales"]),
            load(3, 0, Availability::Online, &["billing"]),
            load(4, 0, Availability::Online, &["sales"]),
        ];
        let rr = RoundRobin::default();
        let picks: Vec<u128> = (0..4)
            .map(|_| rr.pick(&c, &loads, 5).unwrap().0.as_u128())
            .collect();
        assert_eq!(picks, [1, 2, 4, 1]);
    }
}
