use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::str_enum;
use crate::ids::{AgentId, TenantId};

str_enum!(
    /// What a staff member may do.
    Role, "role" {
        /// Everything in the tenant, including hard deletes and managing staff.
        Admin = "admin",
        /// Sees and manages every conversation of the tenant.
        Supervisor = "supervisor",
        /// Sees what is assigned to them and the queue of their departments.
        Agent = "agent",
    }
);

str_enum!(
    /// Whether an agent can take new conversations.
    Availability, "availability" {
        /// Receives routed conversations.
        Online = "online",
        /// Keeps what they have, receives nothing new.
        Away = "away",
        /// Not working.
        Offline = "offline",
    }
);

/// A staff member: agent, supervisor or admin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Agent {
    /// Id.
    pub id: AgentId,
    /// Tenant.
    pub tenant_id: TenantId,
    /// Display name.
    pub name: String,
    /// Login e-mail, unique per tenant (stored lower-case).
    pub email: String,
    /// Role.
    pub role: Role,
    /// Availability for routing.
    pub availability: Availability,
    /// Max concurrent conversations; `None` uses the tenant default.
    pub capacity: Option<u32>,
    /// Departments this agent serves (e.g. `sales`, `returns`).
    pub departments: Vec<String>,
    /// Disabled staff cannot act and receive nothing.
    pub active: bool,
    /// When created.
    #[serde(with = "super::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "super::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Agent {
    /// Whether this agent serves `department` (`None` = the general queue, served by all).
    pub fn serves(&self, department: Option<&str>) -> bool {
        match department {
            None => true,
            Some(d) => self.departments.iter().any(|mine| mine == d),
        }
    }
}

/// Input for creating a staff member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewAgent {
    /// Display name.
    pub name: String,
    /// Login e-mail.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Max concurrent conversations; `None` uses the tenant default.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Departments.
    #[serde(default)]
    pub departments: Vec<String>,
}

/// An agent with the number of conversations it holds now, for routing.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentLoad {
    /// The agent.
    pub agent: Agent,
    /// Conversations assigned to it in mode `agent` or `paused`.
    pub open: u32,
}
