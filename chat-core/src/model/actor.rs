//! Who performs an engine call.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ContactId, ConversationId, TenantId};

/// The party performing an engine call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A staff member with role admin, supervisor or agent. The engine loads the staff
    /// record and uses its stored role and departments, so a stale token cannot grant more.
    Staff {
        /// Tenant.
        tenant: TenantId,
        /// The staff member.
        agent: AgentId,
    },
    /// A customer, scoped to one conversation (a visitor token) or to all of the
    /// contact's conversations (a verified identity).
    Customer {
        /// Tenant.
        tenant: TenantId,
        /// The contact.
        contact: ContactId,
        /// If set, only this conversation.
        conversation: Option<ConversationId>,
    },
    /// The tenant's bot (built-in or external through a bot token).
    Bot {
        /// Tenant.
        tenant: TenantId,
    },
    /// The desk itself: timers, integrations, administration scripts.
    System {
        /// Tenant.
        tenant: TenantId,
    },
}

impl Actor {
    /// The tenant the actor belongs to.
    pub fn tenant(&self) -> TenantId {
        match self {
            Actor::Staff { tenant, .. }
            | Actor::Customer { tenant, .. }
            | Actor::Bot { tenant }
            | Actor::System { tenant } => *tenant,
        }
    }
}
