//! Routing passes: hand queued conversations to free agents.

use std::collections::HashMap;

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::{AgentId, ConversationId, TenantId};
use crate::mode::Mode;
use crate::model::{AgentLoad, ConversationChange};
use crate::store::ConversationUpdate;

/// How many queued conversations one routing pass looks at.
const PASS_SIZE: usize = 500;

/// How often one conversation is picked again when other servers' passes keep taking the
/// routing turn first.
const TURN_TRIES: u32 = 16;

impl Engine {
    /// Assigns queued conversations to eligible agents, highest priority and longest
    /// waiting first, until the queue or the free capacity runs out. Returns the
    /// conversations assigned. Runs after every change that can free capacity or add
    /// work; callers rarely need it directly.
    pub async fn route(&self, tenant: TenantId) -> Result<Vec<ConversationId>> {
        self.route_avoiding(tenant, &HashMap::new()).await
    }

    /// A routing pass in which some conversations must not go to a given agent (the one
    /// that just let them lapse); a later pass may still give it back if nobody else frees up.
    async fn route_avoiding(
        &self,
        tenant: TenantId,
        avoid: &HashMap<ConversationId, AgentId>,
    ) -> Result<Vec<ConversationId>> {
        let settings = self.load_tenant(tenant).await?.settings;
        // Outside business hours the queue waits: the timer pass routes it at the opening.
        if !settings.auto_assign || !crate::is_open(&settings, self.now()) {
            return Ok(Vec::new());
        }
        let _pass = self.inner.routing.lock().await;
        let queue = self.inner.store.queue(tenant, PASS_SIZE).await?;
        if queue.is_empty() {
            return Ok(Vec::new());
        }
        let mut loads = self.inner.store.agent_loads(tenant).await?;
        // A turn-taking router's turn lives in the store, shared by every server: each
        // assignment moves it in its own transaction, compare-and-swap on the turn read.
        let takes_turns = self.inner.router.takes_turns();
        let mut turn = match takes_turns {
            true => self.inner.store.routing_turn(tenant).await?,
            false => None,
        };
        let mut assigned = Vec::new();
        for conversation in queue {
            let others: Vec<AgentLoad>;
            let candidates = match avoid.get(&conversation.id) {
                Some(skip) => {
                    others = loads
                        .iter()
                        .filter(|l| l.agent.id != *skip)
                        .cloned()
                        .collect();
                    &others
                }
                None => &loads,
            };
            let mut tries = 0;
            loop {
                let picked = match takes_turns {
                    true => self.inner.router.pick_in_turn(
                        &conversation,
                        candidates,
                        settings.default_capacity,
                        turn,
                    ),
                    false => {
                        self.inner
                            .router
                            .pick(&conversation, candidates, settings.default_capacity)
                    }
                };
                let Some(agent_id) = picked else {
                    break;
                };
                let Some(load) = loads.iter().find(|l| l.agent.id == agent_id) else {
                    break;
                };
                let update = self.assignment(&conversation, agent_id, &load.agent.name);
                let capacity = load.agent.capacity.unwrap_or(settings.default_capacity);
                let result = match takes_turns {
                    true => {
                        let store = &self.inner.store;
                        store.assign_in_turn(update, capacity, turn).await
                    }
                    false => {
                        let store = &self.inner.store;
                        store.assign_within_capacity(update, capacity).await
                    }
                };
                match result {
                    Ok(committed) => {
                        self.publish(committed.events);
                        if let Some(load) = loads.iter_mut().find(|l| l.agent.id == agent_id) {
                            load.open += 1;
                        }
                        turn = Some(agent_id);
                        assigned.push(conversation.id);
                        break;
                    }
                    // Claimed or changed meanwhile (it is no longer ours to route), or the
                    // agent filled up through another server's pass: the loads read are
                    // stale. Or another server's pass took the turn: pick again from it
                    // (a few times; a pass that keeps losing leaves the rest to the next).
                    Err(Error::Conflict(_)) => {
                        let fresh = self.inner.store.agent_loads(tenant).await?;
                        let moved = match takes_turns {
                            true => self.inner.store.routing_turn(tenant).await?,
                            false => turn,
                        };
                        let retry = moved != turn && tries < TURN_TRIES;
                        turn = moved;
                        tries += 1;
                        if !retry {
                            loads = fresh;
                            break;
                        }
                        // `candidates` may borrow `loads`: the fresh loads wait for the
                        // next conversation, the capacity check stays in the store.
                        drop(fresh);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(assigned)
    }
}

impl Engine {
    /// The update that gives a queued conversation to an agent, with its notice.
    fn assignment(
        &self,
        conversation: &crate::model::Conversation,
        agent: AgentId,
        name: &str,
    ) -> ConversationUpdate {
        let mut next = conversation.clone();
        next.mode = Mode::Agent;
        next.assigned_agent_id = Some(agent);
        next.assigned_at = Some(self.now());
        next.queued_at = None;
        next.updated_at = self.now();
        let note = self.system_message(&next, crate::model::Notice::Assigned { name: name.into() });
        ConversationUpdate {
            conversation: next,
            change: ConversationChange::Assigned {
                from: None,
                to: Some(agent),
            },
            message: Some(note),
        }
    }
}

/// Where a queued conversation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QueuePosition {
    /// 1 for the next to be served, among conversations waiting for the same agents.
    pub position: u32,
    /// Estimated seconds until an agent takes it; `None` while no agent who could take it
    /// is online. Outside business hours it counts from the next opening (`None` if the
    /// schedule never opens).
    pub estimated_wait_secs: Option<u64>,
}

/// What [`Engine::availability`] says of a tenant's desk: the public part of its settings
/// that a chat widget reads before anyone writes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeskStatus {
    /// Open now (always, without business hours).
    pub open: bool,
    /// While closed, when it opens next (RFC 3339); `null` while open, or when the
    /// schedule never opens.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_opening: Option<time::OffsetDateTime>,
    /// The business hours' offline message, if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub offline_message: Option<String>,
    /// The welcome message, if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub welcome_message: Option<String>,
    /// Whether the widget asks the visitor's name and e-mail before the first message.
    pub prechat_form: bool,
}

/// What a timer pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimerReport {
    /// Conversations put back in the queue because their agent did not answer in time.
    pub requeued: Vec<ConversationId>,
    /// Conversations closed for customer inactivity.
    pub closed: Vec<ConversationId>,
    /// Conversations back from a snooze (their time came, or the customer wrote).
    pub woken: Vec<ConversationId>,
    /// Conversations routed because the desk is open (business hours): those that waited
    /// in the queue while it was closed.
    pub routed: Vec<ConversationId>,
    /// Events the log's retention removed ([`Engine::compact_events`]).
    pub events_compacted: u64,
    /// Agents gone offline because every lease on their presence expired (the servers
    /// they were connected to stopped renewing them).
    pub offline: Vec<AgentId>,
}

impl Engine {
    /// The queue position of a conversation the actor can see; `None` unless it is queued.
    /// Only conversations competing for the same agents (same department, or the general
    /// queue) count as ahead of it.
    pub async fn queue_position(
        &self,
        actor: &crate::policy::Actor,
        id: ConversationId,
    ) -> Result<Option<QueuePosition>> {
        let (_, conversation) = self
            .authorized(actor, id, crate::policy::Action::Read)
            .await?;
        if conversation.mode != Mode::Queued {
            return Ok(None);
        }
        let positions = self.queue_positions(actor.tenant()).await?;
        Ok(positions
            .into_iter()
            .find(|(c, _)| *c == id)
            .map(|(_, p)| p))
    }

    /// Positions of every queued conversation of a tenant (the realtime layer pushes them
    /// to waiting visitors when the queue moves). One queue read and one load read.
    pub async fn queue_positions(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(ConversationId, QueuePosition)>> {
        let tenant = self.load_tenant(tenant).await?;
        let queue = self.inner.store.queue(tenant.id, PASS_SIZE * 4).await?;
        if queue.is_empty() {
            return Ok(Vec::new());
        }
        let loads = self.inner.store.agent_loads(tenant.id).await?;
        let capacity_of =
            |l: &AgentLoad| l.agent.capacity.unwrap_or(tenant.settings.default_capacity);
        // A closed desk serves nobody until it opens: the wait starts then (and is unknown
        // when the schedule never opens).
        let now = self.now();
        let closed_for = if crate::is_open(&tenant.settings, now) {
            Some(0)
        } else {
            crate::next_opening(&tenant.settings, now)
                .map(|at| u64::try_from((at - now).whole_seconds()).unwrap_or(0))
        };
        let mut ahead: HashMap<Option<String>, u32> = HashMap::new();
        let mut out = Vec::with_capacity(queue.len());
        for c in &queue {
            let position = {
                let n = ahead.entry(c.department.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let serving = loads.iter().filter(|l| {
                l.agent.availability == crate::model::Availability::Online
                    && l.agent.serves(c.department.as_deref())
            });
            let (capacity, free) = serving.fold((0u32, 0u32), |(cap, free), l| {
                (
                    cap + capacity_of(l),
                    free + capacity_of(l).saturating_sub(l.open),
                )
            });
            let estimated_wait_secs = closed_for.filter(|_| capacity > 0).map(|closed| {
                // Each full round of the online capacity takes about one handling time.
                let rounds = position.saturating_sub(free).div_ceil(capacity);
                closed + u64::from(rounds) * u64::from(tenant.settings.average_handle_secs)
            });
            out.push((
                c.id,
                QueuePosition {
                    position,
                    estimated_wait_secs,
                },
            ));
        }
        Ok(out)
    }

    /// Runs the tenant's timers once, at the engine clock's now: requeue conversations
    /// whose agent has not answered within `requeue_after_secs` of being assigned, and
    /// close those whose customer has been silent for `close_inactive_after_secs` after
    /// being answered (both off unless the tenant sets them); and wake snoozed
    /// conversations whose time has come; and, for a tenant with business hours that is open,
    /// route the queue that waited while it was closed; compact the event log to its
    /// [`EventRetention`](crate::EventRetention); and take offline the agents whose
    /// presence leases all expired. The server calls this
    /// periodically; tests call it after moving a [`ManualClock`](crate::ManualClock).
    pub async fn run_timers(&self, tenant: TenantId) -> Result<TimerReport> {
        let settings = self.load_tenant(tenant).await?.settings;
        let system = crate::policy::Actor::System { tenant };
        let mut report = TimerReport::default();
        let mut lapsed = HashMap::new();
        let now = self.now();
        if let Some(secs) = settings.requeue_after_secs {
            let limit = time::Duration::seconds(secs.into());
            let unanswered = move |c: &crate::model::Conversation| {
                c.mode == Mode::Agent
                    && c.assigned_at.is_some_and(|at| at + limit <= now)
                    && c.last_agent_message_at
                        .is_none_or(|m| c.assigned_at.is_some_and(|at| m < at))
            };
            for c in self.all_in(tenant, &[Mode::Agent]).await? {
                if !unanswered(&c) {
                    continue;
                }
                let minutes = secs.div_ceil(60);
                let result = self
                    .change(&system, c.id, crate::policy::Action::Assign, |who, c| {
                        if !unanswered(c) {
                            return Err(Error::Conflict("answered meanwhile".into()));
                        }
                        let from = c.assigned_agent_id;
                        self.enter_mode(who, c, Mode::Queued)?;
                        let note = crate::model::Notice::Requeued {
                            minutes: u64::from(minutes),
                        };
                        Ok((
                            crate::model::ConversationChange::Assigned { from, to: None },
                            Some(note),
                        ))
                    })
                    .await;
                match result {
                    Ok(_) => {
                        report.requeued.push(c.id);
                        if let Some(agent) = c.assigned_agent_id {
                            lapsed.insert(c.id, agent);
                        }
                    }
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if let Some(secs) = settings.close_inactive_after_secs {
            let limit = time::Duration::seconds(secs.into());
            let idle = move |c: &crate::model::Conversation| {
                let answered = c
                    .last_message
                    .as_ref()
                    .is_some_and(|m| m.sender != crate::model::Sender::Customer);
                let customer_last = c.last_customer_message_at.unwrap_or(c.created_at);
                matches!(c.mode, Mode::Bot | Mode::Agent | Mode::Paused)
                    && answered
                    && customer_last + limit <= now
            };
            for c in self
                .all_in(tenant, &[Mode::Bot, Mode::Agent, Mode::Paused])
                .await?
            {
                if !idle(&c) {
                    continue;
                }
                let minutes = secs.div_ceil(60);
                let result = self
                    .change(&system, c.id, crate::policy::Action::Close, |who, c| {
                        if !idle(c) {
                            return Err(Error::Conflict("the customer wrote meanwhile".into()));
                        }
                        self.enter_mode(who, c, Mode::Closed)?;
                        let note = crate::model::Notice::ClosedIdle {
                            minutes: u64::from(minutes),
                        };
                        Ok((crate::model::ConversationChange::Closed, Some(note)))
                    })
                    .await;
                match result {
                    Ok(_) => report.closed.push(c.id),
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if !report.requeued.is_empty() || !report.closed.is_empty() {
            report.routed = self.route_avoiding(tenant, &lapsed).await?;
        }
        report.offline = self.lapse_presence(tenant).await?;
        report.woken = self.wake_snoozed(tenant).await?;
        // Nothing routes a closed desk's queue, so the first pass after the opening does
        // (any later pass finds it routed, or finds no free agent as any routing would).
        if settings.business_hours.is_some() && crate::is_open(&settings, now) {
            report.routed.extend(self.route(tenant).await?);
        }
        report.events_compacted = self.compact_events(tenant).await?;
        Ok(report)
    }

    /// Every conversation of the tenant in these modes.
    async fn all_in(
        &self,
        tenant: TenantId,
        modes: &[Mode],
    ) -> Result<Vec<crate::model::Conversation>> {
        let mut query = crate::store::ConversationQuery::new(tenant, crate::store::Scope::Tenant);
        query.modes = modes.to_vec();
        query.limit = 500;
        let mut all = Vec::new();
        loop {
            let page = self.inner.store.list_conversations(&query).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(all),
            }
        }
    }
}
