//! Routing passes: hand queued conversations to free agents.

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::{ConversationId, TenantId};
use crate::mode::Mode;
use crate::model::ConversationChange;
use crate::store::ConversationUpdate;

/// How many queued conversations one routing pass looks at.
const PASS_SIZE: usize = 500;

impl Engine {
    /// Assigns queued conversations to eligible agents, highest priority and longest
    /// waiting first, until the queue or the free capacity runs out. Returns the
    /// conversations assigned. Runs after every change that can free capacity or add
    /// work; callers rarely need it directly.
    pub async fn route(&self, tenant: TenantId) -> Result<Vec<ConversationId>> {
        let settings = self.load_tenant(tenant).await?.settings;
        if !settings.auto_assign {
            return Ok(Vec::new());
        }
        let _pass = self.inner.routing.lock().await;
        let queue = self.inner.store.queue(tenant, PASS_SIZE).await?;
        if queue.is_empty() {
            return Ok(Vec::new());
        }
        let mut loads = self.inner.store.agent_loads(tenant).await?;
        let mut assigned = Vec::new();
        for conversation in queue {
            let Some(agent_id) =
                self.inner
                    .router
                    .pick(&conversation, &loads, settings.default_capacity)
            else {
                continue;
            };
            let Some(load) = loads.iter_mut().find(|l| l.agent.id == agent_id) else {
                continue;
            };
            let mut next = conversation.clone();
            next.mode = Mode::Agent;
            next.assigned_agent_id = Some(agent_id);
            next.assigned_at = Some(self.now());
            next.queued_at = None;
            next.updated_at = self.now();
            let note = self.system_message(&next, format!("Assigned to {}", load.agent.name));
            let update = ConversationUpdate {
                conversation: next,
                change: ConversationChange::Assigned {
                    from: None,
                    to: Some(agent_id),
                },
                message: Some(note),
            };
            match self.inner.store.update_conversation(update).await {
                Ok(committed) => {
                    self.publish(committed.events);
                    load.open += 1;
                    assigned.push(conversation.id);
                }
                // Claimed or changed meanwhile: it is no longer ours to route.
                Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(assigned)
    }
}
