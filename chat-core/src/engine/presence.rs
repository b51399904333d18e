//! Presence across servers: each server holds a lease on the presence of the agents
//! connected to it, renews it while they stay, and lets it go when they leave; the
//! store keeps the leases, so a server that dies takes its agents' presence with it
//! once its leases expire (any server's timer pass lapses them).

use std::time::Duration;

use super::Engine;
use crate::error::Result;
use crate::ids::{AgentId, TenantId};
use crate::model::Event;

impl Engine {
    /// Holds (or renews) server `node`'s lease on the presence of `agents` for `lease`
    /// from the engine clock's now. An agent this gives its first live lease anywhere
    /// goes online if it was offline (an `agent_updated` event), and waiting
    /// conversations are routed at once. Called by the realtime layer on an agent's
    /// first connection to this server and then periodically, well within `lease`.
    pub async fn hold_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agents: &[AgentId],
        lease: Duration,
    ) -> Result<Vec<Event>> {
        let now = self.now();
        let expires_at = now + lease;
        let events = self
            .inner
            .store
            .hold_presence(tenant, node, agents, expires_at, now)
            .await?;
        let online = !events.is_empty();
        self.publish(events.clone());
        if online {
            self.route(tenant).await?;
        }
        Ok(events)
    }

    /// Ends server `node`'s lease on the agent's presence (its last connection there
    /// closed and the grace passed); the agent goes offline unless another server still
    /// holds a live lease on it.
    pub async fn release_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agent: AgentId,
    ) -> Result<Option<Event>> {
        let event = self
            .inner
            .store
            .release_presence(tenant, node, agent, self.now())
            .await?;
        self.publish(event.clone());
        Ok(event)
    }

    /// Lapses the tenant's presence leases that expired by the engine clock's now (their
    /// server stopped renewing them): agents left without one go offline. Part of
    /// [`Engine::run_timers`]; returns the agents that went offline.
    pub(super) async fn lapse_presence(&self, tenant: TenantId) -> Result<Vec<AgentId>> {
        let events = self.inner.store.lapse_presence(tenant, self.now()).await?;
        let agents = events
            .iter()
            .filter_map(|e| match &e.payload {
                crate::model::EventPayload::AgentUpdated { agent } => Some(agent.id),
                _ => None,
            })
            .collect();
        self.publish(events);
        Ok(agents)
    }
}
