//! Staff: creation, changes, availability.

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::{AgentId, TenantId};
use crate::model::{Agent, Availability, NewAgent, Role};
use crate::policy::{Actor, Resolved};

/// Changes to a staff member; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentPatch {
    /// Display name.
    pub name: Option<String>,
    /// Role (admins only).
    pub role: Option<Role>,
    /// Capacity (`Some(None)` = tenant default).
    pub capacity: Option<Option<u32>>,
    /// Departments.
    pub departments: Option<Vec<String>>,
    /// Enable or disable.
    pub active: Option<bool>,
}

impl Engine {
    /// Creates a staff member. Admins and the system only.
    pub async fn create_agent(&self, actor: &Actor, input: NewAgent) -> Result<Agent> {
        let who = self.resolve(actor).await?;
        if !is_admin(&who) {
            return Err(Error::Forbidden("create staff"));
        }
        let email = input.email.trim().to_lowercase();
        if email.len() > 254 || !email.contains('@') || email.contains(char::is_whitespace) {
            return Err(Error::validation("email", "not an e-mail address"));
        }
        let now = self.now();
        let agent = Agent {
            id: AgentId(self.new_id()),
            tenant_id: actor.tenant(),
            name: self.short_text("name", &input.name)?,
            email,
            role: input.role,
            availability: Availability::Offline,
            capacity: self.capacity(input.capacity)?,
            departments: self.departments(&input.departments)?,
            active: true,
            created_at: now,
            updated_at: now,
        };
        let event = self.inner.store.insert_agent(&agent).await?;
        self.publish([event]);
        Ok(agent)
    }

    /// Changes a staff member. Admins change anything; anyone changes their own name.
    pub async fn update_agent(
        &self,
        actor: &Actor,
        id: AgentId,
        patch: AgentPatch,
    ) -> Result<Agent> {
        let who = self.resolve(actor).await?;
        let mut agent = self.staff_member(actor, id).await?;
        let own = who.staff().is_some_and(|me| me.id == id);
        let admin_only = patch.role.is_some()
            || patch.capacity.is_some()
            || patch.departments.is_some()
            || patch.active.is_some();
        if !(is_admin(&who) || (own && !admin_only)) {
            return Err(Error::Forbidden("change this staff member"));
        }
        if let Some(name) = &patch.name {
            agent.name = self.short_text("name", name)?;
        }
        if let Some(role) = patch.role {
            agent.role = role;
        }
        if let Some(capacity) = patch.capacity {
            agent.capacity = self.capacity(capacity)?;
        }
        if let Some(departments) = &patch.departments {
            agent.departments = self.departments(departments)?;
        }
        if let Some(active) = patch.active {
            if own && !active {
                return Err(Error::validation("active", "you cannot disable yourself"));
            }
            agent.active = active;
            if !active {
                agent.availability = Availability::Offline;
            }
        }
        agent.updated_at = self.now();
        let event = self.inner.store.update_agent(&agent).await?;
        self.publish([event]);
        if patch.active == Some(false) {
            // Disabled: the `agent_updated` event reaches this staff member's sockets that
            // follow the tenant; the others (and HTTP-only servers) re-check on this.
            self.credential_changed(actor.tenant(), Ok(())).await?;
        }
        // More capacity or new departments may let queued conversations through.
        self.route(actor.tenant()).await?;
        Ok(agent)
    }

    /// Sets availability: staff set their own; managers and the system set anyone's.
    /// Going online routes waiting conversations at once.
    pub async fn set_availability(
        &self,
        actor: &Actor,
        id: AgentId,
        availability: Availability,
    ) -> Result<Agent> {
        let who = self.resolve(actor).await?;
        let own = who.staff().is_some_and(|me| me.id == id);
        if !(own || who.manages()) {
            return Err(Error::Forbidden(
                "change another staff member's availability",
            ));
        }
        let mut agent = self.staff_member(actor, id).await?;
        if !agent.active {
            return Err(Error::validation(
                "availability",
                "this staff member is disabled",
            ));
        }
        if agent.availability == availability {
            return Ok(agent);
        }
        agent.availability = availability;
        agent.updated_at = self.now();
        let event = self.inner.store.update_agent(&agent).await?;
        self.publish([event]);
        if availability == Availability::Online {
            self.route(actor.tenant()).await?;
        }
        Ok(agent)
    }

    /// One staff member; staff only.
    pub async fn agent(&self, actor: &Actor, id: AgentId) -> Result<Agent> {
        let who = self.resolve(actor).await?;
        if who.staff().is_none() && !matches!(who, Resolved::System) {
            return Err(Error::Forbidden("see staff"));
        }
        self.staff_member(actor, id).await
    }

    /// The staff member with this e-mail (case-insensitive), if any; staff and the system
    /// only. Start-up scripts use it to create an admin once, servers to look up a login.
    pub async fn agent_by_email(&self, actor: &Actor, email: &str) -> Result<Option<Agent>> {
        let who = self.resolve(actor).await?;
        if who.staff().is_none() && !matches!(who, Resolved::System) {
            return Err(Error::Forbidden("see staff"));
        }
        self.inner
            .store
            .agent_by_email(actor.tenant(), email.trim())
            .await
    }

    /// Checks a staff member's e-mail and password. `None` for an unknown e-mail, a wrong
    /// password or a disabled staff member, all after the same work (the hasher checks a
    /// decoy when there is no one to check, so timing does not tell which e-mails exist).
    /// Returns the staff member and its current token version, which a token must carry
    /// so that a password change revokes it. Authentication comes before there is an
    /// actor, so this takes a tenant.
    pub async fn staff_log_in(
        &self,
        tenant: TenantId,
        email: &str,
        password: &str,
    ) -> Result<Option<(Agent, u64)>> {
        let email = email.trim();
        let agent = match email {
            "" => None,
            e => self.inner.store.agent_by_email(tenant, e).await?,
        }
        .filter(|a| a.active);
        let credential = match &agent {
            Some(a) => Some(self.credential(tenant, a.id).await?),
            None => None,
        };
        let hash = credential.as_ref().and_then(|c| c.password_hash.as_deref());
        let valid = self.passwords()?.verify(password, hash).await?;
        match (agent, credential) {
            (Some(agent), Some(c)) if valid && c.password_hash.is_some() => {
                Ok(Some((agent, c.token_version)))
            }
            _ => Ok(None),
        }
    }

    /// Every staff member of the tenant; staff only.
    pub async fn agents(&self, actor: &Actor) -> Result<Vec<Agent>> {
        let who = self.resolve(actor).await?;
        if who.staff().is_none() && !matches!(who, Resolved::System) {
            return Err(Error::Forbidden("see staff"));
        }
        self.inner.store.agents(actor.tenant()).await
    }

    async fn staff_member(&self, actor: &Actor, id: AgentId) -> Result<Agent> {
        self.inner
            .store
            .agent(actor.tenant(), id)
            .await?
            .ok_or(Error::NotFound("agent"))
    }

    fn capacity(&self, capacity: Option<u32>) -> Result<Option<u32>> {
        match capacity {
            Some(c) if c > 1000 => Err(Error::validation("capacity", "at most 1000")),
            c => Ok(c),
        }
    }

    fn departments(&self, departments: &[String]) -> Result<Vec<String>> {
        if departments.len() > self.inner.limits.max_tags {
            return Err(Error::validation("departments", "too many departments"));
        }
        let mut out: Vec<String> = departments
            .iter()
            .map(|d| self.short_text("departments", d))
            .collect::<Result<_>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }
}

fn is_admin(who: &Resolved) -> bool {
    matches!(who, Resolved::System) || who.staff().is_some_and(|a| a.role == Role::Admin)
}
