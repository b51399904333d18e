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
