//! An in-memory [`Store`]: the reference implementation of the store contract, for tests,
//! demos and embedders that need no durability. One mutex guards everything, which makes
//! every operation trivially atomic.

mod export;
mod presence;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::credentials::{Account, BotToken, Credential, Credentials, VisitorToken};
use crate::error::{Error, Result};
use crate::export::{ExportOptions, ExportSink};
use crate::ids::{
    AgentId, CannedResponseId, ContactId, ConversationId, InboxId, MessageId, TenantId, WebhookId,
};
use crate::mode::Mode;
use crate::model::{
    Agent, AgentLoad, CannedResponse, Contact, Conversation, Delivery, DeliveryOutcome,
    DeliveryState, Event, Inbox, Mail, MailOutcome, MailState, Mention, Message, NewEvent,
    NewMessage, ReadCursor, Reader, Tenant, Webhook, WebhookState,
};
use crate::report::{
    Dimension, Feedback, ReportQuery, ReportRow, SeriesPoint, feedback_of, report_rows,
    series_points,
};
use crate::store::{
    Appended, CannedQuery, Committed, ContactErasure, ConversationCursor, ConversationPage,
    ConversationQuery, ConversationUpdate, HitQuery, MessageQuery, Store, TextQuery,
};
use crate::write::{ConversationWrite, MessageWrite, ReadMove, edit_message};

/// Everything in memory behind one mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<TenantId, Tenant>,
    contacts: HashMap<ContactId, Contact>,
    agents: HashMap<AgentId, Agent>,
    conversations: HashMap<ConversationId, Conversation>,
    /// Messages of each conversation, index = seq - 1.
    messages: HashMap<ConversationId, Vec<Message>>,
    message_index: HashMap<MessageId, (ConversationId, usize)>,
    cursors: HashMap<(ConversationId, Reader), ReadCursor>,
    events: HashMap<TenantId, Vec<Event>>,
    credentials: HashMap<AgentId, Credential>,
    visitor_tokens: HashMap<String, VisitorToken>,
    bot_tokens: HashMap<String, BotToken>,
    /// Identity signatures used, by digest, until when.
    signatures: HashMap<String, OffsetDateTime>,
    /// Customer accounts by contact, with their password hashes.
    accounts: HashMap<ContactId, (Account, String)>,
    /// Login names (usernames and aliases), lower-case, per tenant.
    account_names: HashMap<(TenantId, String), ContactId>,
    canned: HashMap<CannedResponseId, CannedResponse>,
    mentions: Vec<Mention>,
    /// In creation order.
    webhooks: Vec<Webhook>,
    /// The outbox and delivery log, by webhook and event sequence.
    deliveries: BTreeMap<(WebhookId, u64), Delivery>,
    /// In creation order.
    inboxes: Vec<Inbox>,
    /// Conversations of inboxes' customers, by inbox and the provider's id.
    inbox_threads: HashMap<(InboxId, String), ConversationId>,
    /// Inboxes' polling: the stored offset, and the lease's node and end.
    inbox_polls: HashMap<InboxId, (i64, Option<(String, OffsetDateTime)>)>,
    /// Reopen marks for the reports: conversation, when.
    reopens: Vec<(ConversationId, OffsetDateTime)>,
    /// Presence leases by agent and node: the tenant and when the lease expires.
    presence: HashMap<(AgentId, uuid::Uuid), (TenantId, OffsetDateTime)>,
    /// Each tenant's routing turn: the agent its last turn-taking assignment went to.
    turns: HashMap<TenantId, AgentId>,
    /// The mail outbox, in queueing order.
    mails: Vec<Mail>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave half a write: every write below
        // computes first and mutates last.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `assign_within_capacity` under a lock the caller already holds.
    fn assign_locked(
        s: &mut State,
        update: ConversationUpdate,
        capacity: u32,
    ) -> Result<Committed> {
        let new = &update.conversation;
        let agent = new.assigned_agent_id.ok_or_else(|| {
            Error::validation("assigned_agent_id", "an assignment names its agent")
        })?;
        let held = s
            .conversations
            .values()
            .filter(|c| {
                c.tenant_id == new.tenant_id
                    && c.id != new.id
                    && c.assigned_agent_id == Some(agent)
                    && c.mode.holds_agent()
            })
            .count();
        if held >= capacity as usize {
            return Err(Error::state_conflict("agent at capacity"));
        }
        Self::update_locked(s, update)
    }

    /// `update_conversation` under a lock the caller already holds.
    fn update_locked(s: &mut State, update: ConversationUpdate) -> Result<Committed> {
        let new = &update.conversation;
        let current = s.conversation(new.tenant_id, new.id)?;
        if current.version != new.version {
            return Err(Error::version_race(
                "conversation",
                new.version,
                current.version,
            ));
        }
        let reopened = matches!(update.change, crate::model::ConversationChange::Reopened);
        let write = ConversationWrite::update(update)?;
        if reopened {
            s.reopens
                .push((write.conversation.id, write.conversation.updated_at));
        }
        s.put(&write.conversation, &write.messages);
        write.commit(|event| Ok(s.log(event)))
    }
}

/// A total order on readers, so ties never depend on hashing: the customer first, then
/// staff by id.
fn reader_key(reader: Reader) -> (u8, Option<AgentId>) {
    match reader {
        Reader::Customer => (0, None),
        Reader::Agent(a) => (1, Some(a)),
    }
}

impl State {
    fn agent_of(&self, tenant: TenantId, agent: AgentId) -> Result<&Agent> {
        self.agents
            .get(&agent)
            .filter(|a| a.tenant_id == tenant)
            .ok_or(Error::NotFound("agent"))
    }

    /// Logs an event with the tenant's next sequence.
    fn log(&mut self, event: NewEvent) -> Event {
        let log = self.events.entry(event.tenant_id).or_default();
        // The log may start later than 1 (compaction), never sooner than its last seq.
        let event = event.into_event(log.last().map_or(0, |e| e.seq) + 1);
        log.push(event.clone());
        let kind = event.payload.kind();
        for webhook in &self.webhooks {
            if webhook.tenant_id == event.tenant_id && webhook.follows(kind) {
                self.deliveries.insert(
                    (webhook.id, event.seq),
                    Delivery {
                        tenant_id: event.tenant_id,
                        webhook_id: webhook.id,
                        seq: event.seq,
                        conversation_id: event.conversation_id,
                        kind: kind.to_owned(),
                        state: DeliveryState::Pending,
                        attempts: 0,
                        next_attempt_at: event.at,
                        last_status: None,
                        last_error: None,
                        response_ms: None,
                        created_at: event.at,
                        delivered_at: None,
                    },
                );
            }
        }
        event
    }

    /// Whether another contact of the tenant holds `contact`'s e-mail verified (only
    /// verified e-mails are unique; claims may repeat).
    fn verified_email_taken(&self, contact: &Contact) -> bool {
        let Some(email) = contact.email.as_deref().filter(|_| contact.email_verified) else {
            return false;
        };
        self.contacts.values().any(|c| {
            c.tenant_id == contact.tenant_id
                && c.id != contact.id
                && c.email_verified
                && c.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
    }

    fn email_taken<'a>(
        &self,
        mut emails: impl Iterator<Item = (&'a TenantId, &'a str, uuid::Uuid)>,
        tenant: TenantId,
        email: &str,
        except: uuid::Uuid,
    ) -> bool {
        emails.any(|(t, e, id)| *t == tenant && id != except && e.eq_ignore_ascii_case(email))
    }

    fn account_name_key(tenant: TenantId, name: &str) -> (TenantId, String) {
        (tenant, name.trim().to_lowercase())
    }

    fn conversation(&self, tenant: TenantId, id: ConversationId) -> Result<&Conversation> {
        self.conversations
            .get(&id)
            .filter(|c| c.tenant_id == tenant)
            .ok_or(Error::NotFound("conversation"))
    }

    /// Stores a write's conversation (its new state) and the messages it posted.
    fn put(&mut self, conversation: &Conversation, messages: &[Message]) {
        self.conversations
            .insert(conversation.id, conversation.clone());
        for message in messages {
            let list = self.messages.entry(message.conversation_id).or_default();
            self.message_index
                .insert(message.id, (message.conversation_id, list.len()));
            list.push(message.clone());
        }
    }

    fn text_hit(&self, c: &Conversation, text: &str, notes: bool) -> bool {
        let text = TextQuery::parse(text);
        let contact = self.contacts.get(&c.contact_id);
        contact.is_some_and(|k| {
            k.name.as_deref().is_some_and(|n| text.matches(n))
                || k.email.as_deref().is_some_and(|e| text.matches(e))
        }) || self.messages.get(&c.id).is_some_and(|ms| {
            ms.iter()
                .any(|m| m.deleted_at.is_none() && (notes || !m.is_note()) && text.matches(&m.body))
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<()> {
        let mut s = self.lock();
        if s.tenants.contains_key(&tenant.id) {
            return Err(Error::duplicate("tenant exists"));
        }
        s.tenants.insert(tenant.id, tenant.clone());
        Ok(())
    }

    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        let mut s = self.lock();
        let slot = s
            .tenants
            .get_mut(&tenant.id)
            .ok_or(Error::NotFound("tenant"))?;
        *slot = tenant.clone();
        Ok(())
    }

    async fn update_tenant_settings(&self, tenant: &Tenant, at: OffsetDateTime) -> Result<Event> {
        let mut s = self.lock();
        let slot = s
            .tenants
            .get_mut(&tenant.id)
            .ok_or(Error::NotFound("tenant"))?;
        if slot.settings_version.checked_add(1) != Some(tenant.settings_version) {
            return Err(Error::version_race(
                "settings",
                tenant.settings_version.saturating_sub(1),
                slot.settings_version,
            ));
        }
        *slot = tenant.clone();
        Ok(s.log(NewEvent::settings_updated(tenant, at)))
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        Ok(self.lock().tenants.get(&id).cloned())
    }

    async fn log_credential_change(&self, tenant: TenantId, at: OffsetDateTime) -> Result<Event> {
        Ok(self.lock().log(NewEvent::credentials_changed(tenant, at)))
    }

    async fn insert_contact(&self, contact: &Contact) -> Result<()> {
        let mut s = self.lock();
        if s.contacts.contains_key(&contact.id) {
            return Err(Error::duplicate("contact exists"));
        }
        if s.verified_email_taken(contact) {
            return Err(Error::duplicate("verified contact e-mail taken"));
        }
        s.contacts.insert(contact.id, contact.clone());
        Ok(())
    }

    async fn update_contact(&self, contact: &Contact) -> Result<()> {
        let mut s = self.lock();
        if s.contacts
            .get(&contact.id)
            .is_none_or(|c| c.tenant_id != contact.tenant_id)
        {
            return Err(Error::NotFound("contact"));
        }
        if s.verified_email_taken(contact) {
            return Err(Error::duplicate("verified contact e-mail taken"));
        }
        s.contacts.insert(contact.id, contact.clone());
        Ok(())
    }

    async fn list_contacts(&self, query: &crate::store::ContactQuery) -> Result<Vec<Contact>> {
        let state = self.lock();
        let mut found: Vec<Contact> = state
            .contacts
            .values()
            .filter(|c| c.tenant_id == query.tenant)
            .filter(|c| query.before.is_none_or(|before| c.id < before))
            .filter(|c| query.matches_text(c))
            .cloned()
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse(c.id));
        found.truncate(query.limit);
        Ok(found)
    }

    async fn contact(&self, tenant: TenantId, id: ContactId) -> Result<Option<Contact>> {
        Ok(self
            .lock()
            .contacts
            .get(&id)
            .filter(|c| c.tenant_id == tenant)
            .cloned())
    }

    async fn verified_contact(&self, tenant: TenantId, email: &str) -> Result<Option<Contact>> {
        let s = self.lock();
        Ok(s.contacts
            .values()
            .find(|c| {
                c.tenant_id == tenant
                    && c.email_verified
                    && c.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .cloned())
    }

    async fn merge_contact(
        &self,
        into: &Contact,
        from: ContactId,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let mut s = self.lock();
        let tenant = into.tenant_id;
        for id in [into.id, from] {
            if s.contacts.get(&id).is_none_or(|c| c.tenant_id != tenant) {
                return Err(Error::NotFound("contact"));
            }
        }
        if s.conversations.values().any(|c| c.contact_id == from) {
            return Err(Error::Conflict(
                "the merged contact still has conversations".into(),
            ));
        }
        // Checked without `from`, whose verified e-mail `into` may be taking over.
        let merged = s.contacts.remove(&from).expect("checked above");
        if s.verified_email_taken(into) {
            s.contacts.insert(from, merged);
            return Err(Error::duplicate("verified contact e-mail taken"));
        }
        s.contacts.insert(into.id, into.clone());
        Ok(s.log(NewEvent::contact_merged(into, from, at)))
    }

    async fn erase_contact(&self, erasure: &ContactErasure) -> Result<Vec<Event>> {
        let mut s = self.lock();
        let (tenant, contact) = (erasure.tenant, erasure.contact);
        let erased = match s.contacts.get(&contact) {
            Some(c) if c.tenant_id == tenant => c.erased(erasure.at),
            _ => return Err(Error::NotFound("contact")),
        };
        if s.conversations
            .values()
            .any(|c| c.contact_id == contact && !erasure.conversations.contains(&c.id))
        {
            return Err(Error::Conflict(
                "the contact has a conversation the erasure does not name".into(),
            ));
        }
        let mut gone = Vec::new();
        for &id in &erasure.conversations {
            if s.conversations
                .get(&id)
                .is_some_and(|c| c.contact_id == contact && c.tenant_id == tenant)
            {
                s.conversations.remove(&id);
                for m in s.messages.remove(&id).unwrap_or_default() {
                    s.message_index.remove(&m.id);
                }
                s.cursors.retain(|(c, _), _| *c != id);
                s.reopens.retain(|(c, _)| *c != id);
                s.mentions.retain(|m| m.conversation_id != id);
                s.mails.retain(|m| m.conversation_id != id);
                gone.push(id);
            }
        }
        let mut erasure = erasure.clone();
        for event in s.events.get(&tenant).into_iter().flatten() {
            if let Some(id) = erasure.conversation_of_contact(event)
                && !erasure.conversations.contains(&id)
            {
                erasure.conversations.push(id);
            }
        }
        for event in s.events.entry(tenant).or_default() {
            if let Some(payload) = erasure.scrub(event) {
                event.payload = payload;
            }
        }
        s.contacts.insert(contact, erased);
        s.accounts.remove(&contact);
        s.account_names.retain(|_, c| *c != contact);
        s.visitor_tokens
            .retain(|_, t| !(t.tenant_id == tenant && t.contact_id == contact));
        let mut events: Vec<Event> = gone
            .iter()
            .map(|&id| s.log(NewEvent::conversation_deleted(tenant, id, erasure.at)))
            .collect();
        events.push(s.log(NewEvent::contact_erased(
            tenant,
            contact,
            erasure.erased_by,
            gone.len() as u64,
            erasure.at,
        )));
        Ok(events)
    }

    async fn insert_agent(&self, agent: &Agent) -> Result<Event> {
        let mut s = self.lock();
        let emails = s
            .agents
            .values()
            .map(|a| (&a.tenant_id, a.email.as_str(), a.id.0));
        if s.agents.contains_key(&agent.id)
            || s.email_taken(emails, agent.tenant_id, &agent.email, agent.id.0)
        {
            return Err(Error::duplicate("agent e-mail taken"));
        }
        s.agents.insert(agent.id, agent.clone());
        Ok(s.log(NewEvent::agent_updated(agent)))
    }

    async fn update_agent(&self, agent: &Agent) -> Result<Event> {
        let mut s = self.lock();
        if s.agents
            .get(&agent.id)
            .is_none_or(|a| a.tenant_id != agent.tenant_id)
        {
            return Err(Error::NotFound("agent"));
        }
        let emails = s
            .agents
            .values()
            .map(|a| (&a.tenant_id, a.email.as_str(), a.id.0));
        if s.email_taken(emails, agent.tenant_id, &agent.email, agent.id.0) {
            return Err(Error::duplicate("agent e-mail taken"));
        }
        s.agents.insert(agent.id, agent.clone());
        Ok(s.log(NewEvent::agent_updated(agent)))
    }

    async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<Agent>> {
        Ok(self
            .lock()
            .agents
            .get(&id)
            .filter(|a| a.tenant_id == tenant)
            .cloned())
    }

    async fn agent_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Agent>> {
        let s = self.lock();
        Ok(s.agents
            .values()
            .find(|a| a.tenant_id == tenant && a.email.eq_ignore_ascii_case(email))
            .cloned())
    }

    async fn agents(&self, tenant: TenantId) -> Result<Vec<Agent>> {
        let s = self.lock();
        let mut agents: Vec<Agent> = s
            .agents
            .values()
            .filter(|a| a.tenant_id == tenant)
            .cloned()
            .collect();
        agents.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
        Ok(agents)
    }

    async fn agent_loads(&self, tenant: TenantId) -> Result<Vec<AgentLoad>> {
        let s = self.lock();
        let mut open: HashMap<AgentId, u32> = HashMap::new();
        for c in s
            .conversations
            .values()
            .filter(|c| c.tenant_id == tenant && c.mode.holds_agent())
        {
            if let Some(a) = c.assigned_agent_id {
                *open.entry(a).or_default() += 1;
            }
        }
        let mut loads: Vec<AgentLoad> = s
            .agents
            .values()
            .filter(|a| a.tenant_id == tenant && a.active)
            .map(|a| AgentLoad {
                agent: a.clone(),
                open: open.get(&a.id).copied().unwrap_or(0),
            })
            .collect();
        loads.sort_by_key(|l| l.agent.id);
        Ok(loads)
    }

    async fn create_conversation(
        &self,
        conversation: &Conversation,
        messages: Vec<NewMessage>,
    ) -> Result<Committed> {
        let mut s = self.lock();
        if s.conversations.contains_key(&conversation.id) {
            return Err(Error::duplicate("conversation exists"));
        }
        if s.contacts
            .get(&conversation.contact_id)
            .is_none_or(|c| c.tenant_id != conversation.tenant_id)
        {
            return Err(Error::NotFound("contact"));
        }
        let write = ConversationWrite::create(conversation, messages)?;
        s.put(&write.conversation, &write.messages);
        write.commit(|event| Ok(s.log(event)))
    }

    async fn update_conversation(&self, update: ConversationUpdate) -> Result<Committed> {
        let mut s = self.lock();
        Self::update_locked(&mut s, update)
    }

    async fn assign_within_capacity(
        &self,
        update: ConversationUpdate,
        capacity: u32,
    ) -> Result<Committed> {
        let mut s = self.lock();
        Self::assign_locked(&mut s, update, capacity)
    }

    async fn assign_in_turn(
        &self,
        update: ConversationUpdate,
        capacity: u32,
        turn: Option<AgentId>,
    ) -> Result<Committed> {
        let tenant = update.conversation.tenant_id;
        // The check and the write are under one lock: the turn cannot move between.
        let mut s = self.lock();
        if s.turns.get(&tenant).copied() != turn {
            return Err(Error::state_conflict("the routing turn moved"));
        }
        let agent = update.conversation.assigned_agent_id;
        let committed = Self::assign_locked(&mut s, update, capacity)?;
        if let Some(agent) = agent {
            s.turns.insert(tenant, agent);
        }
        Ok(committed)
    }

    async fn routing_turn(&self, tenant: TenantId) -> Result<Option<AgentId>> {
        Ok(self.lock().turns.get(&tenant).copied())
    }

    async fn delete_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let mut s = self.lock();
        s.conversation(tenant, id)?;
        s.conversations.remove(&id);
        for m in s.messages.remove(&id).unwrap_or_default() {
            s.message_index.remove(&m.id);
        }
        s.cursors.retain(|(c, _), _| *c != id);
        s.reopens.retain(|(c, _)| *c != id);
        s.inbox_threads.retain(|_, c| *c != id);
        s.mails.retain(|m| m.conversation_id != id);
        Ok(s.log(NewEvent::conversation_deleted(tenant, id, at)))
    }

    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        Ok(self
            .lock()
            .conversations
            .get(&id)
            .filter(|c| c.tenant_id == tenant)
            .cloned())
    }

    async fn list_conversations(&self, query: &ConversationQuery) -> Result<ConversationPage> {
        let s = self.lock();
        let notes = !matches!(query.scope, crate::store::Scope::Contact { .. });
        let mut counts = BTreeMap::new();
        let mut items: Vec<&Conversation> = Vec::new();
        for c in s.conversations.values() {
            let text_hit = query
                .text
                .as_deref()
                .is_some_and(|t| s.text_hit(c, t, notes));
            if !query.matches_except_mode(c, s.contacts.get(&c.contact_id), text_hit) {
                continue;
            }
            *counts.entry(c.mode).or_insert(0) += 1;
            if (query.modes.is_empty() || query.modes.contains(&c.mode))
                && query.cursor.is_none_or(|k| k.precedes(c))
            {
                items.push(c);
            }
        }
        items.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id)));
        let more = items.len() > query.limit;
        items.truncate(query.limit);
        let next_cursor = if more {
            items.last().map(|c| ConversationCursor::after(c))
        } else {
            None
        };
        let counts_capped = query.cap_counts(&mut counts);
        Ok(ConversationPage {
            items: items.into_iter().cloned().collect(),
            next_cursor,
            counts,
            counts_capped,
        })
    }

    async fn queue(&self, tenant: TenantId, limit: usize) -> Result<Vec<Conversation>> {
        let s = self.lock();
        let mut queued: Vec<&Conversation> = s
            .conversations
            .values()
            .filter(|c| c.tenant_id == tenant && c.mode == Mode::Queued)
            .collect();
        queued.sort_by_key(|c| (std::cmp::Reverse(c.priority), c.queued_at, c.id));
        Ok(queued.into_iter().take(limit).cloned().collect())
    }

    async fn append_message(&self, message: NewMessage) -> Result<Appended> {
        let mut s = self.lock();
        let conversation = s.conversation(message.tenant_id, message.conversation_id)?;
        let earlier = s
            .messages
            .get(&conversation.id)
            .and_then(|ms| ms.iter().find(|m| message.repeats(m)));
        if let Some(earlier) = earlier {
            return Ok(Appended::repeated(earlier.clone(), conversation.clone()));
        }
        let write = MessageWrite::append(conversation.clone(), message)?;
        s.put(&write.conversation, std::slice::from_ref(&write.message));
        write.commit(|event| Ok(s.log(event)))
    }

    async fn update_message(&self, message: &Message) -> Result<Event> {
        let mut s = self.lock();
        let &(conv, index) = s
            .message_index
            .get(&message.id)
            .ok_or(Error::NotFound("message"))?;
        let slot = &mut s.messages.get_mut(&conv).expect("index points at a list")[index];
        if slot.tenant_id != message.tenant_id {
            return Err(Error::NotFound("message"));
        }
        let event = edit_message(slot, message);
        Ok(s.log(event))
    }

    async fn message(&self, tenant: TenantId, id: MessageId) -> Result<Option<Message>> {
        let s = self.lock();
        Ok(s.message_index
            .get(&id)
            .map(|&(c, i)| &s.messages[&c][i])
            .filter(|m| m.tenant_id == tenant)
            .cloned())
    }

    async fn messages(&self, query: &MessageQuery) -> Result<Vec<Message>> {
        let s = self.lock();
        s.conversation(query.tenant, query.conversation)?;
        let all = s
            .messages
            .get(&query.conversation)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let window = all.iter().filter(|m| {
            (query.include_notes || !m.is_note())
                && query.after.is_none_or(|a| m.seq > a)
                && query.before.is_none_or(|b| m.seq < b)
        });
        let mut out: Vec<Message> = if query.after.is_some() {
            window.take(query.limit).cloned().collect()
        } else {
            let mut newest: Vec<Message> = window.rev().take(query.limit).cloned().collect();
            newest.reverse();
            newest
        };
        out.shrink_to_fit();
        Ok(out)
    }

    async fn message_hits(&self, query: &HitQuery) -> Result<Vec<Message>> {
        let s = self.lock();
        let text = TextQuery::parse(&query.text);
        let mut hits = Vec::new();
        for id in &query.conversations {
            if s.conversations
                .get(id)
                .is_none_or(|c| c.tenant_id != query.tenant)
            {
                continue;
            }
            let all = s.messages.get(id).map(Vec::as_slice).unwrap_or(&[]);
            hits.extend(
                all.iter()
                    .rev()
                    .filter(|m| {
                        m.deleted_at.is_none()
                            && (query.notes || !m.is_note())
                            && text.matches(&m.body)
                    })
                    .take(query.per_conversation)
                    .cloned(),
            );
        }
        Ok(hits)
    }

    async fn set_read_cursor(&self, cursor: &ReadCursor) -> Result<(Conversation, Option<Event>)> {
        let mut s = self.lock();
        let mut conversation = s
            .conversation(cursor.tenant_id, cursor.conversation_id)?
            .clone();
        let key = (cursor.conversation_id, cursor.reader);
        let stored = s.cursors.get(&key).map(|c| c.seq);
        let Some(read) = ReadMove::new(&conversation, cursor, stored) else {
            return Ok((conversation, None));
        };
        let unread = s.messages.get(&conversation.id).map_or(0, |messages| {
            messages
                .iter()
                .filter(|m| m.seq > read.read_seq && m.unread_by(cursor.reader))
                .count() as u64
        });
        s.cursors.insert(key, read.cursor.clone());
        let event = read.apply(&mut conversation, unread);
        s.conversations
            .insert(conversation.id, conversation.clone());
        Ok((conversation, Some(s.log(event))))
    }

    async fn read_cursors(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<ReadCursor>> {
        let s = self.lock();
        s.conversation(tenant, conversation)?;
        let mut cursors: Vec<ReadCursor> = s
            .cursors
            .values()
            .filter(|c| c.conversation_id == conversation)
            .cloned()
            .collect();
        cursors.sort_by_key(|c| (c.updated_at, c.seq, reader_key(c.reader)));
        Ok(cursors)
    }

    async fn events_since(&self, tenant: TenantId, after: u64, limit: usize) -> Result<Vec<Event>> {
        let s = self.lock();
        let log = s.events.get(&tenant).map(Vec::as_slice).unwrap_or(&[]);
        let start = log.partition_point(|e| e.seq <= after);
        Ok(log[start..].iter().take(limit).cloned().collect())
    }

    async fn compact_events(&self, tenant: TenantId, through: u64, limit: usize) -> Result<u64> {
        let mut s = self.lock();
        // The deliverer reads a pending delivery's event: it stays, and so does every later one.
        let pending = s
            .deliveries
            .values()
            .filter(|d| d.tenant_id == tenant && d.state == DeliveryState::Pending)
            .map(|d| d.seq)
            .min()
            .unwrap_or(u64::MAX);
        let Some(log) = s.events.get_mut(&tenant) else {
            return Ok(0);
        };
        let head = log.last().map_or(0, |e| e.seq);
        let through = through
            .min(head.saturating_sub(1))
            .min(pending.saturating_sub(1));
        let n = log.partition_point(|e| e.seq <= through).min(limit);
        log.drain(..n);
        Ok(n as u64)
    }

    async fn event_head(&self, tenant: TenantId) -> Result<u64> {
        let s = self.lock();
        Ok(s.events
            .get(&tenant)
            .and_then(|log| log.last())
            .map_or(0, |e| e.seq))
    }

    async fn put_canned_response(&self, response: &CannedResponse) -> Result<Event> {
        let mut s = self.lock();
        if s.canned
            .get(&response.id)
            .is_some_and(|r| r.tenant_id != response.tenant_id)
        {
            return Err(Error::duplicate("canned response id taken"));
        }
        let taken = s.canned.values().any(|r| {
            r.id != response.id
                && r.tenant_id == response.tenant_id
                && r.owner_id == response.owner_id
                && r.shortcut == response.shortcut
        });
        if taken {
            return Err(Error::duplicate("shortcut taken"));
        }
        s.canned.insert(response.id, response.clone());
        Ok(s.log(NewEvent::canned_response_updated(response)))
    }

    async fn delete_canned_response(
        &self,
        response: &CannedResponse,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let mut s = self.lock();
        if s.canned
            .get(&response.id)
            .is_none_or(|r| r.tenant_id != response.tenant_id)
        {
            return Err(Error::NotFound("canned response"));
        }
        s.canned.remove(&response.id);
        Ok(s.log(NewEvent::canned_response_deleted(response, at)))
    }

    async fn canned_responses(&self, query: &CannedQuery) -> Result<Vec<CannedResponse>> {
        let s = self.lock();
        let mut found: Vec<CannedResponse> = s
            .canned
            .values()
            .filter(|r| query.matches(r))
            .cloned()
            .collect();
        found.sort_by(|a, b| (&a.shortcut, a.id).cmp(&(&b.shortcut, b.id)));
        found.truncate(query.limit);
        Ok(found)
    }

    async fn record_mentions(&self, mentions: &[Mention]) -> Result<Vec<Event>> {
        let mut s = self.lock();
        let mut events = Vec::new();
        for m in mentions {
            let seen = s.mentions.iter().any(|o| {
                o.tenant_id == m.tenant_id
                    && o.message_id == m.message_id
                    && o.agent_id == m.agent_id
            });
            if !seen {
                s.mentions.push(m.clone());
                events.push(s.log(NewEvent::mentioned(m)));
            }
        }
        Ok(events)
    }

    async fn mentions(
        &self,
        tenant: TenantId,
        agent: AgentId,
        limit: usize,
    ) -> Result<(Vec<Mention>, u64)> {
        let s = self.lock();
        let mut own: Vec<&Mention> = s
            .mentions
            .iter()
            .filter(|m| m.tenant_id == tenant && m.agent_id == agent)
            .collect();
        let unread = own.iter().filter(|m| m.read_at.is_none()).count() as u64;
        own.sort_by_key(|m| std::cmp::Reverse((m.at, m.message_id)));
        Ok((own.into_iter().take(limit).cloned().collect(), unread))
    }

    async fn read_mentions(
        &self,
        tenant: TenantId,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<u64> {
        let mut s = self.lock();
        let mut read = 0;
        for m in s.mentions.iter_mut() {
            if m.tenant_id == tenant && m.agent_id == agent && m.read_at.is_none() {
                m.read_at = Some(at);
                read += 1;
            }
        }
        Ok(read)
    }

    async fn put_webhook(&self, webhook: &Webhook) -> Result<()> {
        let mut s = self.lock();
        match s.webhooks.iter_mut().find(|w| w.id == webhook.id) {
            Some(w) if w.tenant_id != webhook.tenant_id => {
                return Err(Error::duplicate("webhook exists"));
            }
            Some(w) => *w = webhook.clone(),
            None => s.webhooks.push(webhook.clone()),
        }
        Ok(())
    }

    async fn delete_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<()> {
        let mut s = self.lock();
        let before = s.webhooks.len();
        s.webhooks
            .retain(|w| !(w.id == id && w.tenant_id == tenant));
        if s.webhooks.len() == before {
            return Err(Error::NotFound("webhook"));
        }
        s.deliveries.retain(|(w, _), _| *w != id);
        Ok(())
    }

    async fn put_inbox(&self, inbox: &Inbox) -> Result<()> {
        let mut s = self.lock();
        match s.inboxes.iter_mut().find(|i| i.id == inbox.id) {
            Some(i) if i.tenant_id != inbox.tenant_id => {
                return Err(Error::duplicate("inbox exists"));
            }
            Some(i) => *i = inbox.clone(),
            None => s.inboxes.push(inbox.clone()),
        }
        Ok(())
    }

    async fn replace_inbox(&self, inbox: &Inbox, seen: OffsetDateTime) -> Result<bool> {
        let mut s = self.lock();
        match s
            .inboxes
            .iter_mut()
            .find(|i| i.id == inbox.id && i.tenant_id == inbox.tenant_id && i.updated_at == seen)
        {
            Some(i) => {
                *i = inbox.clone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_inbox(&self, tenant: TenantId, id: InboxId) -> Result<()> {
        let mut s = self.lock();
        let before = s.inboxes.len();
        s.inboxes.retain(|i| !(i.id == id && i.tenant_id == tenant));
        if s.inboxes.len() == before {
            return Err(Error::NotFound("inbox"));
        }
        s.inbox_threads.retain(|(i, _), _| *i != id);
        s.inbox_polls.remove(&id);
        Ok(())
    }

    async fn inboxes(&self, tenant: TenantId) -> Result<Vec<Inbox>> {
        let s = self.lock();
        Ok(s.inboxes
            .iter()
            .filter(|i| i.tenant_id == tenant)
            .cloned()
            .collect())
    }

    async fn inbox(&self, id: InboxId) -> Result<Option<Inbox>> {
        Ok(self.lock().inboxes.iter().find(|i| i.id == id).cloned())
    }

    async fn inbox_thread(&self, inbox: InboxId, external: &str) -> Result<Option<ConversationId>> {
        Ok(self
            .lock()
            .inbox_threads
            .get(&(inbox, external.to_owned()))
            .copied())
    }

    async fn link_inbox_thread(
        &self,
        _tenant: TenantId,
        inbox: InboxId,
        external: &str,
        conversation: ConversationId,
    ) -> Result<ConversationId> {
        let mut s = self.lock();
        if !s.inboxes.iter().any(|i| i.id == inbox) {
            return Err(Error::NotFound("inbox"));
        }
        Ok(*s
            .inbox_threads
            .entry((inbox, external.to_owned()))
            .or_insert(conversation))
    }

    async fn poll_inbox(
        &self,
        inbox: InboxId,
        node: &str,
        offset: i64,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<i64>> {
        let mut s = self.lock();
        if !s.inboxes.iter().any(|i| i.id == inbox) {
            return Err(Error::NotFound("inbox"));
        }
        let (stored, lease) = s.inbox_polls.entry(inbox).or_insert((0, None));
        if lease
            .as_ref()
            .is_some_and(|(holder, end)| holder != node && *end > now)
        {
            return Ok(None);
        }
        *lease = Some((node.to_owned(), until));
        *stored = (*stored).max(offset);
        Ok(Some(*stored))
    }

    async fn queue_mail(&self, mail: &Mail, once_since: Option<OffsetDateTime>) -> Result<bool> {
        let mut s = self.lock();
        s.conversation(mail.tenant_id, mail.conversation_id)?;
        let recent = once_since.is_some_and(|since| {
            s.mails.iter().any(|m| {
                m.conversation_id == mail.conversation_id
                    && m.kind == mail.kind
                    && m.requested_by == mail.requested_by
                    && m.created_at >= since
            })
        });
        if recent {
            return Ok(false);
        }
        if s.mails.iter().any(|m| m.id == mail.id) {
            return Ok(false);
        }
        s.mails.push(mail.clone());
        Ok(true)
    }

    async fn claim_mails(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Mail>> {
        let mut s = self.lock();
        let mut due: Vec<Mail> = s
            .mails
            .iter()
            .filter(|m| m.state == MailState::Pending && m.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|m| (m.next_attempt_at, m.id));
        due.truncate(limit);
        for m in s.mails.iter_mut() {
            if due.iter().any(|d| d.id == m.id) {
                m.next_attempt_at = lease_until;
            }
        }
        Ok(due)
    }

    async fn record_mail(&self, outcome: &MailOutcome) -> Result<()> {
        let mut s = self.lock();
        if let Some(m) = s
            .mails
            .iter_mut()
            .find(|m| m.id == outcome.id && m.tenant_id == outcome.tenant_id)
        {
            m.state = outcome.state;
            m.attempts = outcome.attempts;
            m.next_attempt_at = outcome.next_attempt_at;
            m.last_error.clone_from(&outcome.last_error);
            m.sent_at = outcome.sent_at;
        }
        Ok(())
    }

    async fn mails(&self, tenant: TenantId, limit: usize) -> Result<Vec<Mail>> {
        let s = self.lock();
        let mut out: Vec<Mail> = s
            .mails
            .iter()
            .filter(|m| m.tenant_id == tenant)
            .cloned()
            .collect();
        out.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
        out.truncate(limit);
        Ok(out)
    }

    async fn webhooks(&self, tenant: TenantId) -> Result<Vec<Webhook>> {
        let s = self.lock();
        Ok(s.webhooks
            .iter()
            .filter(|w| w.tenant_id == tenant)
            .cloned()
            .collect())
    }

    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let mut s = self.lock();
        let active: std::collections::HashSet<WebhookId> = s
            .webhooks
            .iter()
            .filter(|w| w.state == WebhookState::Active)
            .map(|w| w.id)
            .collect();
        // The oldest pending delivery of each webhook and conversation: the map is ordered
        // by (webhook, seq), so the first one met is it.
        let mut heads = std::collections::HashSet::new();
        let mut due: Vec<Delivery> = Vec::new();
        for d in s.deliveries.values() {
            if d.state != DeliveryState::Pending {
                continue;
            }
            let head = match d.conversation_id {
                Some(c) => heads.insert((d.webhook_id, c)),
                None => true,
            };
            if head && active.contains(&d.webhook_id) && d.next_attempt_at <= now {
                due.push(d.clone());
            }
        }
        due.sort_by_key(|d| (d.next_attempt_at, d.seq));
        due.truncate(limit);
        for d in &due {
            if let Some(stored) = s.deliveries.get_mut(&(d.webhook_id, d.seq)) {
                stored.next_attempt_at = lease_until;
            }
        }
        Ok(due)
    }

    async fn record_delivery(&self, outcome: &DeliveryOutcome) -> Result<Option<Event>> {
        let mut s = self.lock();
        let Some(d) = s.deliveries.get_mut(&(outcome.webhook_id, outcome.seq)) else {
            return Ok(None);
        };
        d.state = outcome.state;
        d.attempts = outcome.attempts;
        d.next_attempt_at = outcome.next_attempt_at;
        d.last_status = outcome.last_status;
        d.last_error = outcome.last_error.clone();
        d.response_ms = Some(outcome.response_ms);
        if outcome.succeeded() {
            d.delivered_at = Some(outcome.at);
        }
        let Some(w) = s
            .webhooks
            .iter_mut()
            .find(|w| w.id == outcome.webhook_id && w.tenant_id == outcome.tenant_id)
        else {
            return Ok(None);
        };
        if outcome.succeeded() {
            w.failing_since = None;
            return Ok(None);
        }
        let since = *w.failing_since.get_or_insert(outcome.at);
        match &outcome.pause {
            Some((threshold, event)) if since <= *threshold && w.state == WebhookState::Active => {
                w.state = WebhookState::Paused;
                Ok(Some(s.log(event.clone())))
            }
            _ => Ok(None),
        }
    }

    async fn deliveries(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let s = self.lock();
        Ok(s.deliveries
            .range((webhook, 0)..=(webhook, u64::MAX))
            .rev()
            .map(|(_, d)| d)
            .filter(|d| d.tenant_id == tenant && before.is_none_or(|b| d.seq < b))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn redeliver(
        &self,
        tenant: TenantId,
        webhook: WebhookId,
        seq: u64,
        now: OffsetDateTime,
    ) -> Result<Delivery> {
        let mut s = self.lock();
        let d = s
            .deliveries
            .get_mut(&(webhook, seq))
            .filter(|d| d.tenant_id == tenant)
            .ok_or(Error::NotFound("delivery"))?;
        d.state = DeliveryState::Pending;
        d.next_attempt_at = now;
        Ok(d.clone())
    }

    async fn report_rows(
        &self,
        query: &ReportQuery,
        by: Option<Dimension>,
    ) -> Result<Vec<ReportRow>> {
        let s = self.lock();
        Ok(report_rows(s.conversations.values(), &s.reopens, query, by))
    }

    async fn report_series(
        &self,
        query: &ReportQuery,
        bounds: &[OffsetDateTime],
    ) -> Result<Vec<SeriesPoint>> {
        let s = self.lock();
        Ok(series_points(
            s.conversations.values(),
            &s.reopens,
            query,
            bounds,
        ))
    }

    async fn report_feedback(&self, query: &ReportQuery, limit: usize) -> Result<Vec<Feedback>> {
        let s = self.lock();
        Ok(feedback_of(s.conversations.values(), query, limit))
    }

    async fn hold_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agents: &[AgentId],
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>> {
        Ok(self
            .lock()
            .hold_presence(tenant, node, agents, expires_at, at))
    }

    async fn release_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<Option<Event>> {
        Ok(self.lock().release_presence(tenant, node, agent, at))
    }

    async fn lapse_presence(&self, tenant: TenantId, at: OffsetDateTime) -> Result<Vec<Event>> {
        Ok(self.lock().lapse_presence(tenant, at))
    }

    async fn export_tenant(
        &self,
        tenant: TenantId,
        options: ExportOptions,
        out: ExportSink,
    ) -> Result<u64> {
        // Made under the lock (one state), sent after it: never await holding it.
        let lines = export::export_lines(&self.lock(), tenant, options)?;
        let records = lines.len().saturating_sub(2) as u64;
        for line in lines {
            crate::export::send_line_async(&out, line).await?;
        }
        Ok(records)
    }
}

#[async_trait]
impl Credentials for MemoryStore {
    async fn tenants(&self) -> Result<Vec<Tenant>> {
        let mut tenants: Vec<Tenant> = self.lock().tenants.values().cloned().collect();
        tenants.sort_by_key(|t| (t.created_at, t.id));
        Ok(tenants)
    }

    async fn set_password(
        &self,
        tenant: TenantId,
        agent: AgentId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<(u64, Event)> {
        let mut s = self.lock();
        s.agent_of(tenant, agent)?;
        let credential = s.credentials.entry(agent).or_insert(Credential {
            password_hash: None,
            token_version: 0,
        });
        credential.password_hash = Some(hash.to_owned());
        credential.token_version += 1;
        let version = credential.token_version;
        Ok((version, s.log(NewEvent::credentials_changed(tenant, at))))
    }

    async fn revoke_tokens(
        &self,
        tenant: TenantId,
        agent: AgentId,
        at: OffsetDateTime,
    ) -> Result<(u64, Event)> {
        let mut s = self.lock();
        s.agent_of(tenant, agent)?;
        let credential = s.credentials.entry(agent).or_insert(Credential {
            password_hash: None,
            token_version: 0,
        });
        credential.token_version += 1;
        let version = credential.token_version;
        Ok((version, s.log(NewEvent::credentials_changed(tenant, at))))
    }

    async fn credential(&self, tenant: TenantId, agent: AgentId) -> Result<Credential> {
        let s = self.lock();
        s.agent_of(tenant, agent)?;
        Ok(s.credentials.get(&agent).cloned().unwrap_or(Credential {
            password_hash: None,
            token_version: 0,
        }))
    }

    async fn insert_visitor_token(&self, token: &VisitorToken) -> Result<()> {
        let mut s = self.lock();
        if s.visitor_tokens.contains_key(&token.digest) {
            return Err(Error::duplicate("visitor token exists"));
        }
        s.visitor_tokens.insert(token.digest.clone(), token.clone());
        Ok(())
    }

    async fn visitor_token(&self, digest: &str) -> Result<Option<VisitorToken>> {
        Ok(self.lock().visitor_tokens.get(digest).cloned())
    }

    async fn insert_bot_token(&self, token: &BotToken) -> Result<()> {
        let mut s = self.lock();
        if s.bot_tokens.contains_key(&token.digest) {
            return Err(Error::duplicate("bot token exists"));
        }
        s.bot_tokens.insert(token.digest.clone(), token.clone());
        Ok(())
    }

    async fn bot_token(&self, digest: &str) -> Result<Option<BotToken>> {
        Ok(self.lock().bot_tokens.get(digest).cloned())
    }

    async fn bot_tokens(&self, tenant: TenantId) -> Result<Vec<BotToken>> {
        let mut tokens: Vec<BotToken> = self
            .lock()
            .bot_tokens
            .values()
            .filter(|t| t.tenant_id == tenant)
            .cloned()
            .collect();
        tokens.sort_by(|a, b| (a.created_at, &a.digest).cmp(&(b.created_at, &b.digest)));
        Ok(tokens)
    }

    async fn revoke_bot_token(
        &self,
        tenant: TenantId,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<Option<Event>> {
        let mut s = self.lock();
        let before = s.bot_tokens.len();
        s.bot_tokens
            .retain(|_, t| !(t.tenant_id == tenant && t.id() == id));
        Ok((s.bot_tokens.len() < before).then(|| s.log(NewEvent::credentials_changed(tenant, at))))
    }

    async fn touch_bot_token(&self, digest: &str, at: OffsetDateTime) -> Result<()> {
        if let Some(t) = self.lock().bot_tokens.get_mut(digest) {
            t.last_used_at = Some(at);
        }
        Ok(())
    }

    async fn claim_signature(
        &self,
        digest: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let mut s = self.lock();
        s.signatures.retain(|_, until| *until >= now);
        if s.signatures.contains_key(digest) {
            return Ok(false);
        }
        s.signatures.insert(digest.to_owned(), expires_at);
        Ok(true)
    }

    async fn release_signature(&self, digest: &str) -> Result<()> {
        self.lock().signatures.remove(digest);
        Ok(())
    }

    async fn revoke_visitor_tokens(&self, tenant: TenantId, contact: ContactId) -> Result<u64> {
        let mut s = self.lock();
        let before = s.visitor_tokens.len();
        s.visitor_tokens
            .retain(|_, t| !(t.tenant_id == tenant && t.contact_id == contact));
        Ok((before - s.visitor_tokens.len()) as u64)
    }

    async fn reassign_visitor_tokens(
        &self,
        tenant: TenantId,
        from: ContactId,
        into: ContactId,
    ) -> Result<u64> {
        let mut s = self.lock();
        let before = s.visitor_tokens.len();
        s.visitor_tokens.retain(|_, t| {
            !(t.tenant_id == tenant && t.contact_id == from && t.conversation_id.is_none())
        });
        let deleted = (before - s.visitor_tokens.len()) as u64;
        for token in s.visitor_tokens.values_mut() {
            if token.tenant_id == tenant && token.contact_id == from {
                token.contact_id = into;
            }
        }
        Ok(deleted)
    }

    async fn create_account(
        &self,
        contact: &Contact,
        account: &Account,
        password_hash: &str,
    ) -> Result<()> {
        let mut s = self.lock();
        let key = State::account_name_key(account.tenant_id, &account.username);
        if s.contacts.contains_key(&contact.id) || s.accounts.contains_key(&contact.id) {
            return Err(Error::duplicate("contact exists"));
        }
        if s.account_names.contains_key(&key) {
            return Err(Error::duplicate("username taken"));
        }
        if let Some(email) = &account.email
            && s.accounts.values().any(|(a, _)| {
                a.tenant_id == account.tenant_id
                    && a.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        {
            return Err(Error::duplicate("account e-mail taken"));
        }
        if s.verified_email_taken(contact) {
            return Err(Error::duplicate("verified contact e-mail taken"));
        }
        s.contacts.insert(contact.id, contact.clone());
        s.account_names.insert(key, contact.id);
        s.accounts
            .insert(contact.id, (account.clone(), password_hash.to_owned()));
        Ok(())
    }

    async fn account(&self, tenant: TenantId, contact: ContactId) -> Result<Option<Account>> {
        Ok(self
            .lock()
            .accounts
            .get(&contact)
            .map(|(a, _)| a)
            .filter(|a| a.tenant_id == tenant)
            .cloned())
    }

    async fn account_by_name(&self, tenant: TenantId, name: &str) -> Result<Option<Account>> {
        let s = self.lock();
        Ok(s.account_names
            .get(&State::account_name_key(tenant, name))
            .and_then(|id| s.accounts.get(id))
            .map(|(a, _)| a.clone()))
    }

    async fn account_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Account>> {
        Ok(self
            .lock()
            .accounts
            .values()
            .map(|(a, _)| a)
            .find(|a| {
                a.tenant_id == tenant
                    && a.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .cloned())
    }

    async fn account_password_hash(
        &self,
        tenant: TenantId,
        contact: ContactId,
    ) -> Result<Option<String>> {
        Ok(self
            .lock()
            .accounts
            .get(&contact)
            .filter(|(a, _)| a.tenant_id == tenant)
            .map(|(_, h)| h.clone()))
    }

    async fn set_account_password(
        &self,
        tenant: TenantId,
        contact: ContactId,
        hash: &str,
        at: OffsetDateTime,
    ) -> Result<Event> {
        let mut s = self.lock();
        let (account, stored) = s
            .accounts
            .get_mut(&contact)
            .filter(|(a, _)| a.tenant_id == tenant)
            .ok_or(Error::NotFound("account"))?;
        account.updated_at = at;
        *stored = hash.to_owned();
        s.visitor_tokens
            .retain(|_, t| !(t.tenant_id == tenant && t.contact_id == contact));
        Ok(s.log(NewEvent::credentials_changed(tenant, at)))
    }

    async fn set_account_disabled(
        &self,
        tenant: TenantId,
        contact: ContactId,
        disabled: bool,
        at: OffsetDateTime,
    ) -> Result<(Account, Event)> {
        let mut s = self.lock();
        let (account, _) = s
            .accounts
            .get_mut(&contact)
            .filter(|(a, _)| a.tenant_id == tenant)
            .ok_or(Error::NotFound("account"))?;
        account.disabled = disabled;
        account.updated_at = at;
        let account = account.clone();
        if disabled {
            s.visitor_tokens
                .retain(|_, t| !(t.tenant_id == tenant && t.contact_id == contact));
        }
        Ok((account, s.log(NewEvent::credentials_changed(tenant, at))))
    }

    async fn add_account_name(
        &self,
        tenant: TenantId,
        contact: ContactId,
        name: &str,
    ) -> Result<()> {
        let mut s = self.lock();
        if s.accounts
            .get(&contact)
            .is_none_or(|(a, _)| a.tenant_id != tenant)
        {
            return Err(Error::NotFound("account"));
        }
        let key = State::account_name_key(tenant, name);
        if s.account_names.contains_key(&key) {
            return Err(Error::duplicate("account name taken"));
        }
        s.account_names.insert(key, contact);
        Ok(())
    }
}
