//! Presence leases and the routing turn, run by the writer thread inside its
//! transaction, with the memory store's rules (`chat_core::memory`).

use chat_core::store::{Committed, ConversationUpdate};
use chat_core::{AgentId, Availability, Event, NewEvent, Result, TenantId};
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{ns, to_json};
use crate::error::Db;
use crate::write::{append_event, assign_within_capacity};
use crate::writer::Session;

/// Whether the agent holds a lease live at `at` on a node other than `except`.
fn present(s: &Session<'_>, agent: AgentId, except: Option<Uuid>, at: i64) -> Result<bool> {
    s.prepare_cached(
        "SELECT 1 FROM presence_leases WHERE agent_id = ?1 AND expires_ns > ?2 \
         AND (?3 IS NULL OR node <> ?3)",
    )
    .db()?
    .exists(params![agent.0, at, except])
    .db()
}

/// Moves an active agent of the tenant from `from` to `to`, logging `agent_updated`.
fn flip(
    s: &mut Session<'_>,
    tenant: TenantId,
    agent: AgentId,
    from: Availability,
    to: Availability,
    at: OffsetDateTime,
) -> Result<Option<Event>> {
    let Some(mut a) = crate::read::agent(s, tenant, agent)? else {
        return Ok(None);
    };
    if !a.active || a.availability != from {
        return Ok(None);
    }
    a.availability = to;
    a.updated_at = at;
    s.prepare_cached("UPDATE agents SET data = ?2 WHERE id = ?1")
        .db()?
        .execute(params![a.id.0, to_json(&a)?])
        .db()?;
    append_event(s, NewEvent::agent_updated(&a)).map(Some)
}

pub(crate) fn hold_presence(
    s: &mut Session<'_>,
    tenant: TenantId,
    node: Uuid,
    agents: &[AgentId],
    expires_at: OffsetDateTime,
    at: OffsetDateTime,
) -> Result<Vec<Event>> {
    let (expires, now) = (ns(expires_at)?, ns(at)?);
    let mut events = Vec::new();
    for &agent in agents {
        if crate::read::agent(s, tenant, agent)?.is_none() {
            continue;
        }
        let was_present = present(s, agent, None, now)?;
        s.prepare_cached(
            "INSERT INTO presence_leases (agent_id, node, tenant_id, expires_ns) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (agent_id, node) DO UPDATE SET expires_ns = excluded.expires_ns",
        )
        .db()?
        .execute(params![agent.0, node, tenant.0, expires])
        .db()?;
        if !was_present {
            let online = flip(
                s,
                tenant,
                agent,
                Availability::Offline,
                Availability::Online,
                at,
            )?;
            events.extend(online);
        }
    }
    Ok(events)
}

pub(crate) fn release_presence(
    s: &mut Session<'_>,
    tenant: TenantId,
    node: Uuid,
    agent: AgentId,
    at: OffsetDateTime,
) -> Result<Option<Event>> {
    let deleted = s
        .prepare_cached(
            "DELETE FROM presence_leases WHERE agent_id = ?1 AND node = ?2 AND tenant_id = ?3",
        )
        .db()?
        .execute(params![agent.0, node, tenant.0])
        .db()?;
    if deleted == 0 || present(s, agent, Some(node), ns(at)?)? {
        return Ok(None);
    }
    flip(
        s,
        tenant,
        agent,
        Availability::Online,
        Availability::Offline,
        at,
    )
}

pub(crate) fn lapse_presence(
    s: &mut Session<'_>,
    tenant: TenantId,
    at: OffsetDateTime,
) -> Result<Vec<Event>> {
    let now = ns(at)?;
    let lapsed: Vec<Uuid> = {
        let mut stmt = s
            .prepare_cached(
                "DELETE FROM presence_leases WHERE tenant_id = ?1 AND expires_ns <= ?2 \
                 RETURNING agent_id",
            )
            .db()?;
        let rows = stmt
            .query_map(params![tenant.0, now], |row| row.get::<_, Uuid>(0))
            .db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    let mut lapsed: Vec<AgentId> = lapsed.into_iter().map(AgentId).collect();
    lapsed.sort();
    lapsed.dedup();
    let mut events = Vec::new();
    for agent in lapsed {
        if present(s, agent, None, now)? {
            continue;
        }
        let offline = flip(
            s,
            tenant,
            agent,
            Availability::Online,
            Availability::Offline,
            at,
        )?;
        events.extend(offline);
    }
    Ok(events)
}

pub(crate) fn routing_turn(s: &rusqlite::Connection, tenant: TenantId) -> Result<Option<AgentId>> {
    let turn: Option<Uuid> = s
        .prepare_cached("SELECT agent_id FROM routing_turns WHERE tenant_id = ?1")
        .db()?
        .query_row([tenant.0], |row| row.get(0))
        .optional()
        .db()?;
    Ok(turn.map(AgentId))
}

/// `assign_within_capacity` that moves the tenant's turn from `turn` to the assigned
/// agent. The writer thread serializes every write: the turn cannot move between the
/// check and the write.
pub(crate) fn assign_in_turn(
    s: &mut Session<'_>,
    update: ConversationUpdate,
    capacity: u32,
    turn: Option<AgentId>,
) -> Result<Committed> {
    let tenant = update.conversation.tenant_id;
    if routing_turn(s, tenant)? != turn {
        return Err(chat_core::Error::state_conflict("the routing turn moved"));
    }
    let agent = update.conversation.assigned_agent_id;
    let committed = assign_within_capacity(s, update, capacity)?;
    if let Some(agent) = agent {
        s.prepare_cached(
            "INSERT INTO routing_turns (tenant_id, agent_id) VALUES (?1, ?2) \
             ON CONFLICT (tenant_id) DO UPDATE SET agent_id = excluded.agent_id",
        )
        .db()?
        .execute(params![tenant.0, agent.0])
        .db()?;
    }
    Ok(committed)
}
