//! Staff that must exist before anyone can log in: the bootstrap admin of the binary and
//! the demo staff of the templates.

use chat_core::{Actor, Agent, Engine, NewAgent, Role, TenantId};

use crate::auth;
use crate::error::Error;

/// The staff member with `email` in `tenant`, created with `password` if missing, so a
/// seeding step can run on every start. No password length rule: demo passwords are the
/// seed documents' own.
///
/// ```no_run
/// # async fn seed(engine: chat_core::Engine, tenant: chat_core::TenantId) -> Result<(), chat_server::error::Error> {
/// let admin = chat_server::staff::ensure_staff(
///     &engine, tenant, "Admin", "admin@example.com", "admin123", chat_core::Role::Admin,
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn ensure_staff(
    engine: &Engine,
    tenant: TenantId,
    name: &str,
    email: &str,
    password: &str,
    role: Role,
) -> Result<Agent, Error> {
    let system = Actor::System { tenant };
    if let Some(agent) = engine.agent_by_email(&system, email).await? {
        return Ok(agent);
    }
    let input = NewAgent {
        name: name.into(),
        email: email.into(),
        role,
        capacity: None,
        departments: vec![],
    };
    let agent = engine.create_agent(&system, input).await?;
    // Argon2 is slow on purpose: on the bounded hashing threads, off the async ones.
    let password = password.to_owned();
    let hash = auth::in_hashing_pool(move || auth::hash_password(&password)).await??;
    engine.set_password(&system, agent.id, &hash).await?;
    Ok(agent)
}
