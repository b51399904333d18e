//! The memory store's presence leases and routing turns: the reference for what
//! [`Store::hold_presence`](crate::Store::hold_presence) and its siblings mean.

use time::OffsetDateTime;
use uuid::Uuid;

use super::State;
use crate::ids::{AgentId, TenantId};
use crate::model::{Availability, Event, NewEvent};

impl State {
    /// Whether the agent holds a lease live at `at` on a node other than `except`.
    fn present(&self, agent: AgentId, except: Option<Uuid>, at: OffsetDateTime) -> bool {
        self.presence
            .iter()
            .any(|((a, node), (_, expires))| *a == agent && Some(*node) != except && *expires > at)
    }

    /// Moves an active agent of the tenant from `from` to `to`, logging `agent_updated`.
    fn flip(
        &mut self,
        tenant: TenantId,
        agent: AgentId,
        from: Availability,
        to: Availability,
        at: OffsetDateTime,
    ) -> Option<Event> {
        let a = self
            .agents
            .get_mut(&agent)
            .filter(|a| a.tenant_id == tenant && a.active && a.availability == from)?;
        a.availability = to;
        a.updated_at = at;
        let event = NewEvent::agent_updated(a);
        Some(self.log(event))
    }

    pub(super) fn hold_presence(
        &mut self,
        tenant: TenantId,
        node: Uuid,
        agents: &[AgentId],
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for &agent in agents {
            if self
                .agents
                .get(&agent)
                .is_none_or(|a| a.tenant_id != tenant)
            {
                continue;
            }
            let was_present = self.present(agent, None, at);
            self.presence.insert((agent, node), (tenant, expires_at));
            if !was_present {
                events.extend(self.flip(
                    tenant,
                    agent,
                    Availability::Offline,
                    Availability::Online,
                    at,
                ));
            }
        }
        events
    }

    pub(super) fn release_presence(
        &mut self,
        tenant: TenantId,
        node: Uuid,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Option<Event> {
        let key = (agent, node);
        if self.presence.get(&key).is_none_or(|(t, _)| *t != tenant) {
            return None;
        }
        self.presence.remove(&key);
        if self.present(agent, Some(node), at) {
            return None;
        }
        self.flip(
            tenant,
            agent,
            Availability::Online,
            Availability::Offline,
            at,
        )
    }

    pub(super) fn lapse_presence(&mut self, tenant: TenantId, at: OffsetDateTime) -> Vec<Event> {
        let mut lapsed: Vec<AgentId> = self
            .presence
            .iter()
            .filter(|(_, (t, expires))| *t == tenant && *expires <= at)
            .map(|((agent, _), _)| *agent)
            .collect();
        self.presence
            .retain(|_, (t, expires)| *t != tenant || *expires > at);
        lapsed.sort();
        lapsed.dedup();
        let mut events = Vec::new();
        for agent in lapsed {
            if self.present(agent, None, at) {
                continue;
            }
            events.extend(self.flip(
                tenant,
                agent,
                Availability::Online,
                Availability::Offline,
                at,
            ));
        }
        events
    }
}
