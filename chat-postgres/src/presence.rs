//! Presence leases and the routing turn, with the memory store's rules
//! (`chat_core::memory`).
//!
//! Every presence write locks the agent's row first (`FOR UPDATE`, agents in id order),
//! then reads and writes its leases, then takes the tenant's event counter if the agent's
//! availability changes: two servers holding or letting go of one agent at once see each
//! other's leases, and the lock order (conversation, agent, turn, counter) is the one every
//! write follows, so no deadlock.

use chat_core::{AgentId, Availability, Error, Event, NewEvent, Result, TenantId};
use deadpool_postgres::Transaction;
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use uuid::Uuid;

use crate::codec::ns;
use crate::error::Db;
use crate::store::{PostgresStore, log_one};

/// Locks the agent's row; `None` if it is not the tenant's.
async fn lock_agent(
    tx: &Transaction<'_>,
    tenant: TenantId,
    agent: AgentId,
) -> Result<Option<chat_core::Agent>> {
    let row = tx
        .query_opt(
            "SELECT data FROM agents WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
            &[&agent.0, &tenant.0],
        )
        .await
        .db()?;
    row.map(|r| {
        r.try_get::<_, Json<chat_core::Agent>>(0)
            .map(|j| j.0)
            .map_err(|e| Error::storage(format!("unreadable agent row: {e}")))
    })
    .transpose()
}

/// Whether the agent holds a lease live at `at` on a node other than `except`.
async fn present(
    tx: &Transaction<'_>,
    agent: AgentId,
    except: Option<Uuid>,
    at: i64,
) -> Result<bool> {
    let row = tx
        .query_opt(
            "SELECT 1 FROM presence_leases WHERE agent_id = $1 AND expires_ns > $2 \
             AND ($3::uuid IS NULL OR node <> $3) LIMIT 1",
            &[&agent.0, &at, &except],
        )
        .await
        .db()?;
    Ok(row.is_some())
}

/// Moves a locked, active agent from `from` to `to`, logging `agent_updated`.
async fn flip(
    tx: &Transaction<'_>,
    mut agent: chat_core::Agent,
    from: Availability,
    to: Availability,
    at: OffsetDateTime,
) -> Result<Option<Event>> {
    if !agent.active || agent.availability != from {
        return Ok(None);
    }
    agent.availability = to;
    agent.updated_at = at;
    tx.execute(
        "UPDATE agents SET data = $2 WHERE id = $1",
        &[&agent.id.0, &Json(&agent)],
    )
    .await
    .db()?;
    log_one(tx, NewEvent::agent_updated(&agent)).await.map(Some)
}

impl PostgresStore {
    pub(crate) async fn hold_presence_in(
        &self,
        tenant: TenantId,
        node: Uuid,
        agents: &[AgentId],
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>> {
        let (expires, now) = (ns(expires_at)?, ns(at)?);
        let mut agents = agents.to_vec();
        agents.sort();
        agents.dedup();
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let mut events = Vec::new();
        for agent in agents {
            let Some(locked) = lock_agent(&tx, tenant, agent).await? else {
                continue;
            };
            let was_present = present(&tx, agent, None, now).await?;
            tx.execute(
                "INSERT INTO presence_leases (agent_id, node, tenant_id, expires_ns) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (agent_id, node) DO UPDATE SET expires_ns = EXCLUDED.expires_ns",
                &[&agent.0, &node, &tenant.0, &expires],
            )
            .await
            .db()?;
            if !was_present {
                let online = Availability::Online;
                events.extend(flip(&tx, locked, Availability::Offline, online, at).await?);
            }
        }
        tx.commit().await.db()?;
        Ok(events)
    }

    pub(crate) async fn release_presence_in(
        &self,
        tenant: TenantId,
        node: Uuid,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<Option<Event>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let Some(locked) = lock_agent(&tx, tenant, agent).await? else {
            return Ok(None);
        };
        let deleted = tx
            .execute(
                "DELETE FROM presence_leases WHERE agent_id = $1 AND node = $2 AND tenant_id = $3",
                &[&agent.0, &node, &tenant.0],
            )
            .await
            .db()?;
        let event = if deleted == 0 || present(&tx, agent, Some(node), ns(at)?).await? {
            None
        } else {
            let offline = Availability::Offline;
            flip(&tx, locked, Availability::Online, offline, at).await?
        };
        tx.commit().await.db()?;
        Ok(event)
    }

    pub(crate) async fn lapse_presence_in(
        &self,
        tenant: TenantId,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>> {
        let now = ns(at)?;
        let mut client = self.client().await?;
        // Which agents have an expired lease, read without locks; each is then handled
        // under its agent's lock, like every other presence write.
        let expired: Vec<Uuid> = client
            .query(
                "SELECT DISTINCT agent_id FROM presence_leases \
                 WHERE tenant_id = $1 AND expires_ns <= $2 ORDER BY agent_id",
                &[&tenant.0, &now],
            )
            .await
            .db()?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let tx = client.transaction().await.db()?;
        let mut events = Vec::new();
        for agent in expired.into_iter().map(AgentId) {
            let locked = lock_agent(&tx, tenant, agent).await?;
            tx.execute(
                "DELETE FROM presence_leases WHERE agent_id = $1 AND tenant_id = $2 \
                 AND expires_ns <= $3",
                &[&agent.0, &tenant.0, &now],
            )
            .await
            .db()?;
            let Some(locked) = locked else {
                continue;
            };
            if !present(&tx, agent, None, now).await? {
                let offline = Availability::Offline;
                events.extend(flip(&tx, locked, Availability::Online, offline, at).await?);
            }
        }
        tx.commit().await.db()?;
        Ok(events)
    }

    pub(crate) async fn routing_turn_in(&self, tenant: TenantId) -> Result<Option<AgentId>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT agent_id FROM routing_turns WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await
            .db()?;
        Ok(row.map(|r| AgentId(r.get(0))))
    }
}

/// Moves the tenant's routing turn from `turn` to `agent` in an assignment's transaction
/// (after the conversation's and the agent's locks, before the event counter): a `State`
/// conflict if another server's pass moved it first. The upsert's `WHERE` is evaluated
/// on the row as committed by a concurrent mover, whom this one waits for.
pub(crate) async fn move_turn(
    tx: &Transaction<'_>,
    tenant: TenantId,
    turn: Option<AgentId>,
    agent: AgentId,
) -> Result<()> {
    let turn = turn.map(|a| a.0);
    let moved = tx
        .execute(
            "INSERT INTO routing_turns (tenant_id, agent_id) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET agent_id = EXCLUDED.agent_id \
             WHERE routing_turns.agent_id IS NOT DISTINCT FROM $3",
            &[&tenant.0, &agent.0, &turn],
        )
        .await
        .db()?;
    if moved == 0 {
        return Err(Error::state_conflict("the routing turn moved"));
    }
    Ok(())
}
