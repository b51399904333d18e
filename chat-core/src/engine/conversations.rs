//! Opening, reading and moving conversations through their lifecycle.

use std::collections::BTreeMap;

use super::Engine;
use super::contacts::valid_email;
use crate::error::{Error, Result};
use crate::ids::{AgentId, ContactId, ConversationId, MessageId};
use crate::mode::Mode;
use crate::model::{
    Channel, Contact, ContactInput, Conversation, ConversationChange, Message, MessageKind,
    NewMessage, Notice, Party, Priority, Rating, Sender, TransferTarget,
};
use crate::policy::{Action, Actor, Resolved};
use crate::store::{
    AssignedFilter, ConversationCursor, ConversationPage, ConversationQuery, HitQuery, Snippet,
    TextQuery,
};

/// Most hits shown for one conversation of a search result.
pub const HITS_PER_CONVERSATION: usize = 3;
/// About how many characters of a message a hit's snippet shows.
pub const SNIPPET_CHARS: usize = 160;

/// One message a search text matched, for a results list: which message, and an extract
/// of it with the matched words marked (see [`Snippet`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageHit {
    /// The message.
    pub message_id: MessageId,
    /// Its sequence in the conversation (to open the history there).
    pub seq: u64,
    /// Its kind: `note` for an internal note (found by staff only).
    pub kind: MessageKind,
    /// Who wrote it.
    pub sender: Sender,
    /// When it was posted.
    #[serde(with = "crate::model::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// The extract, matches marked.
    pub snippet: Snippet,
}

/// A page of search results: [`Engine::list_conversations`]'s page, with each
/// conversation's newest matching messages.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchPage {
    /// The conversations, counts and cursor, as the list gives them.
    pub page: ConversationPage,
    /// Up to [`HITS_PER_CONVERSATION`] hits per conversation of the page, newest first;
    /// a conversation found by its title or contact alone has none.
    pub hits: BTreeMap<ConversationId, Vec<MessageHit>>,
}

/// Input for [`Engine::open_conversation`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenConversation {
    /// Who the customer is. Ignored for a customer actor (its own contact is used).
    pub contact: ContactInput,
    /// An existing contact of the tenant to open the conversation with, instead of
    /// finding one by `contact`'s e-mail: staff starting a chat with a known customer
    /// who may have no e-mail (a phone-only salon customer). Staff and system only.
    pub contact_id: Option<ContactId>,
    /// Channel.
    pub channel: Channel,
    /// Subject.
    pub title: Option<String>,
    /// Department to route to.
    pub department: Option<String>,
    /// Priority.
    pub priority: Priority,
    /// The customer's first message, if the widget sends one with the opening.
    pub first_message: Option<String>,
    /// Free metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Result of [`Engine::open_conversation`].
#[derive(Clone, Debug, PartialEq)]
pub struct Opened {
    /// The conversation as it stands after the bot's first answer.
    pub conversation: Conversation,
    /// The contact (found by e-mail or created).
    pub contact: Contact,
    /// Messages posted while opening: welcome, first message, offline message, bot answer.
    pub messages: Vec<Message>,
    /// Whether the desk was closed (outside its business hours) at the opening: the
    /// conversation waits, unrouted, until the next opening.
    pub offline: bool,
}

/// Filters for [`Engine::list_conversations`]; all optional, combined with AND.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConversationFilter {
    /// Only these modes.
    pub modes: Vec<Mode>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Department.
    pub department: Option<String>,
    /// Assignment.
    pub assigned: Option<AssignedFilter>,
    /// Tag.
    pub tag: Option<String>,
    /// Channel.
    pub channel: Option<Channel>,
    /// Contact e-mail.
    pub contact_email: Option<String>,
    /// Pinned.
    pub pinned: Option<bool>,
    /// Snoozed (`Some(false)`: the active list).
    pub snoozed: Option<bool>,
    /// Text in title, contact or messages.
    pub text: Option<String>,
    /// Last activity at or after this time.
    pub updated_from: Option<time::OffsetDateTime>,
    /// Last activity before this time.
    pub updated_to: Option<time::OffsetDateTime>,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
    /// Page size (default 50, capped by [`Limits::max_page`](super::Limits)).
    pub limit: Option<usize>,
}

/// Changes to a conversation's details; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetailsPatch {
    /// New priority.
    pub priority: Option<Priority>,
    /// New department (`Some(None)` clears it).
    pub department: Option<Option<String>>,
    /// Replace all tags.
    pub tags: Option<Vec<String>>,
    /// Add tags.
    pub add_tags: Vec<String>,
    /// Remove tags.
    pub remove_tags: Vec<String>,
    /// Pin or unpin.
    pub pinned: Option<bool>,
    /// New title (`Some(None)` clears it).
    pub title: Option<Option<String>>,
    /// Invite staff into the conversation.
    pub add_participants: Vec<AgentId>,
    /// Remove invited staff.
    pub remove_participants: Vec<AgentId>,
}

/// Input for [`Engine::transfer`].
#[derive(Clone, Debug, PartialEq)]
pub struct Transfer {
    /// Where to.
    pub to: TransferTarget,
    /// Why; recorded in the timeline.
    pub reason: Option<String>,
}

impl Engine {
    /// Opens a conversation. Staff, the system and customers may open one; a customer
    /// opens it for its own contact. Posts the tenant's welcome message, the customer's
    /// first message and the bot's answer, and routes it if it starts in the queue.
    ///
    /// Outside the tenant's business hours the opening is `offline`: a customer's (or the
    /// system's, for an anonymous visitor) conversation gets the schedule's offline message
    /// from the bot after the first message, and a queued one is not routed until the
    /// opening ([`run_timers`](Self::run_timers) routes it then). Staff opening a
    /// conversation get no offline message.
    pub async fn open_conversation(
        &self,
        actor: &Actor,
        input: OpenConversation,
    ) -> Result<Opened> {
        let who = self.resolve(actor).await?;
        let tenant = self.load_tenant(actor.tenant()).await?;
        let title = self.optional_short_text("title", input.title.as_deref())?;
        let department = self.optional_short_text("department", input.department.as_deref())?;
        let first = match input.first_message.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(self.message_body(text)?),
        };
        let contact = match &who {
            Resolved::Customer {
                contact,
                conversation: None,
            } => self
                .inner
                .store
                .contact(tenant.id, *contact)
                .await?
                .ok_or(Error::NotFound("contact"))?,
            Resolved::Customer { .. } => {
                return Err(Error::Forbidden(
                    "open another conversation with this token",
                ));
            }
            Resolved::Bot => return Err(Error::Forbidden("open conversations as a bot")),
            Resolved::Staff(_) | Resolved::System => match input.contact_id {
                Some(id) => self
                    .inner
                    .store
                    .contact(tenant.id, id)
                    .await?
                    .ok_or(Error::NotFound("contact"))?,
                None => self.new_contact(tenant.id, input.contact, false).await?,
            },
        };
        let now = self.now();
        let mode = if tenant.settings.bot_enabled {
            Mode::Bot
        } else {
            Mode::Queued
        };
        let mut conversation = Conversation::new(
            ConversationId(self.new_id()),
            tenant.id,
            contact.id,
            mode,
            now,
        );
        conversation.channel = input.channel;
        conversation.title = title;
        conversation.priority = input.priority;
        conversation.department = department;
        conversation.metadata = input.metadata;
        let offline = !crate::is_open(&tenant.settings, now);
        let mut messages = Vec::new();
        if let Some(welcome) = tenant
            .settings
            .welcome_message
            .as_deref()
            .filter(|w| !w.trim().is_empty())
        {
            messages.push(self.new_message(
                &conversation,
                Sender::Bot,
                MessageKind::Text,
                welcome.to_owned(),
            ));
        }
        if let Some(text) = first.clone() {
            messages.push(self.new_message(
                &conversation,
                Sender::Customer,
                MessageKind::Text,
                text,
            ));
        }
        if offline
            && !matches!(who, Resolved::Staff(_))
            && let Some(away) = tenant
                .settings
                .business_hours
                .as_ref()
                .and_then(|h| h.offline_message.as_deref())
        {
            messages.push(self.new_message(
                &conversation,
                Sender::Bot,
                MessageKind::Text,
                away.to_owned(),
            ));
        }
        let committed = self
            .inner
            .store
            .create_conversation(&conversation, messages)
            .await?;
        self.publish(committed.events.iter().cloned());
        let mut stored = committed.messages;
        let mut conversation = committed.conversation;
        let opening = stored.iter().rev().find(|m| m.sender == Sender::Customer);
        if let Some(opening) = opening.cloned()
            && conversation.mode == Mode::Bot
        {
            let (replies, after) = self.bot_turn(&tenant, conversation, &opening).await?;
            stored.extend(replies);
            conversation = after;
        } else if conversation.mode == Mode::Queued {
            self.route(tenant.id).await?;
            conversation = self.load_conversation(tenant.id, conversation.id).await?;
        }
        Ok(Opened {
            conversation,
            contact,
            messages: stored,
            offline,
        })
    }

    /// A new contact from what the caller says about it. Every field is a claim: nothing
    /// here looks up, joins or changes an existing contact, so an anonymous caller who
    /// types someone's e-mail gets a stranger's contact of its own.
    pub(super) async fn new_contact(
        &self,
        tenant: crate::ids::TenantId,
        input: ContactInput,
        email_verified: bool,
    ) -> Result<Contact> {
        let contact = self.contact_from(tenant, input, email_verified)?;
        self.inner.store.insert_contact(&contact).await?;
        Ok(contact)
    }

    /// Validates a contact input into a contact (not stored).
    pub(super) fn contact_from(
        &self,
        tenant: crate::ids::TenantId,
        input: ContactInput,
        email_verified: bool,
    ) -> Result<Contact> {
        let email = input
            .email
            .as_deref()
            .map(|e| valid_email("contact.email", e))
            .transpose()?
            .flatten();
        let name = self.optional_short_text("contact.name", input.name.as_deref())?;
        let phone = self.optional_short_text("contact.phone", input.phone.as_deref())?;
        let address = self.optional_short_text("contact.address", input.address.as_deref())?;
        let external_id =
            self.optional_short_text("contact.external_id", input.external_id.as_deref())?;
        if input.metadata.len() > 64 {
            return Err(Error::validation(
                "contact.metadata",
                "more than 64 entries",
            ));
        }
        let now = self.now();
        Ok(Contact {
            id: ContactId(self.new_id()),
            tenant_id: tenant,
            name,
            email_verified: email_verified && email.is_some(),
            email,
            phone,
            address,
            external_id,
            metadata: input.metadata,
            created_at: now,
            updated_at: now,
        })
    }

    pub(super) fn new_message(
        &self,
        c: &Conversation,
        sender: Sender,
        kind: MessageKind,
        body: String,
    ) -> NewMessage {
        NewMessage {
            id: MessageId(self.new_id()),
            tenant_id: c.tenant_id,
            conversation_id: c.id,
            sender,
            kind,
            body,
            attachments: Vec::new(),
            reply_to: None,
            client_message_id: None,
            entities: Vec::new(),
            metadata: BTreeMap::new(),
            created_at: self.now(),
        }
    }

    /// A conversation the actor can see.
    pub async fn conversation(&self, actor: &Actor, id: ConversationId) -> Result<Conversation> {
        Ok(self.authorized(actor, id, Action::Read).await?.1)
    }

    /// A contact the actor can see: staff see every contact of the tenant, a customer only
    /// itself.
    pub async fn contact(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        let who = self.resolve(actor).await?;
        let visible = match &who {
            Resolved::Customer { contact, .. } => *contact == id,
            _ => true,
        };
        let contact = self.inner.store.contact(actor.tenant(), id).await?;
        contact
            .filter(|_| visible)
            .ok_or(Error::NotFound("contact"))
    }

    /// Conversations the actor can see, newest activity first, with counts per mode.
    pub async fn list_conversations(
        &self,
        actor: &Actor,
        filter: ConversationFilter,
    ) -> Result<ConversationPage> {
        let who = self.resolve(actor).await?;
        crate::policy::Viewer::of(actor).check_filter(&filter)?;
        let mut query = ConversationQuery::new(actor.tenant(), who.scope());
        query.modes = filter.modes;
        query.priority = filter.priority;
        query.department = filter.department;
        query.assigned = filter.assigned;
        query.tag = filter.tag;
        query.channel = filter.channel;
        query.contact_email = filter.contact_email.map(|e| e.trim().to_lowercase());
        query.pinned = filter.pinned;
        query.snoozed = filter.snoozed;
        query.text = filter.text.filter(|t| !t.trim().is_empty());
        query.updated_from = filter.updated_from;
        query.updated_to = filter.updated_to;
        query.cursor = filter
            .cursor
            .as_deref()
            .map(ConversationCursor::decode)
            .transpose()?;
        query.limit = filter
            .limit
            .unwrap_or(50)
            .clamp(1, self.inner.limits.max_page);
        self.inner.store.list_conversations(&query).await
    }

    /// [`Engine::list_conversations`] with the messages that made each conversation match
    /// its `text` (none without one): what a search results list shows. Internal notes are
    /// hits only for those who read notes (staff), so a customer never sees a note's words
    /// in a snippet, as it never finds a conversation by them.
    pub async fn search_conversations(
        &self,
        actor: &Actor,
        filter: ConversationFilter,
    ) -> Result<SearchPage> {
        let text = filter.text.clone().filter(|t| !t.trim().is_empty());
        let page = self.list_conversations(actor, filter).await?;
        let mut hits: BTreeMap<ConversationId, Vec<MessageHit>> = BTreeMap::new();
        let Some(text) = text else {
            return Ok(SearchPage { page, hits });
        };
        if page.items.is_empty() {
            return Ok(SearchPage { page, hits });
        }
        let who = self.resolve(actor).await?;
        let query = TextQuery::parse(&text);
        let found = self
            .inner
            .store
            .message_hits(&HitQuery {
                tenant: actor.tenant(),
                conversations: page.items.iter().map(|c| c.id).collect(),
                text,
                notes: who.sees_notes(),
                per_conversation: HITS_PER_CONVERSATION,
            })
            .await?;
        for message in found {
            hits.entry(message.conversation_id)
                .or_default()
                .push(MessageHit {
                    message_id: message.id,
                    seq: message.seq,
                    kind: message.kind,
                    sender: message.sender,
                    created_at: message.created_at,
                    snippet: Snippet::new(&message.body, &query, SNIPPET_CHARS),
                });
        }
        for list in hits.values_mut() {
            list.sort_by_key(|hit| std::cmp::Reverse(hit.seq));
        }
        Ok(SearchPage { page, hits })
    }

    /// Every conversation of the contact with this e-mail that the actor can see.
    pub async fn contact_history(&self, actor: &Actor, email: &str) -> Result<Vec<Conversation>> {
        let mut items = Vec::new();
        let mut cursor = None;
        loop {
            let filter = ConversationFilter {
                contact_email: Some(email.to_owned()),
                cursor,
                limit: Some(self.inner.limits.max_page),
                ..Default::default()
            };
            let page = self.list_conversations(actor, filter).await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) if items.len() < 10_000 => cursor = Some(next.encode()),
                _ => return Ok(items),
            }
        }
    }

    /// Moves a conversation to `mode` along the state machine. Closing, reopening and
    /// archiving go through their own checks (see [`close`](Self::close),
    /// [`reopen`](Self::reopen), [`archive`](Self::archive)).
    pub async fn set_mode(
        &self,
        actor: &Actor,
        id: ConversationId,
        mode: Mode,
    ) -> Result<Conversation> {
        let current = self.load_conversation(actor.tenant(), id).await?;
        match (current.mode, mode) {
            (_, Mode::Closed) => return self.close(actor, id, None).await,
            (_, Mode::Archived) => return self.archive(actor, id).await,
            (Mode::Closed, to) => return self.reopen_to(actor, id, Some(to)).await,
            _ => {}
        }
        let tenant = actor.tenant();
        let committed = self
            .change(actor, id, Action::ChangeMode, |who, c| {
                let from = c.mode;
                from.check(mode)?;
                let note = self.enter_mode(who, c, mode)?;
                Ok((ConversationChange::Mode { from, to: mode }, note))
            })
            .await?;
        self.route(tenant).await?;
        self.reload_if_routed(committed.conversation).await
    }

    /// Applies the side effects of entering `mode` (assignee, queue time, close time).
    pub(super) fn enter_mode(
        &self,
        who: &Resolved,
        c: &mut Conversation,
        mode: Mode,
    ) -> Result<Option<Notice>> {
        let now = self.now();
        c.mode = mode;
        // A snooze sets aside a conversation an agent holds; leaving the agent ends it.
        if !matches!(mode, Mode::Agent | Mode::Paused) {
            c.snooze = None;
        }
        Ok(match mode {
            Mode::Agent => {
                if c.assigned_agent_id.is_none() {
                    let me = who.staff().ok_or_else(|| {
                        Error::validation(
                            "assigned_agent_id",
                            "agent mode needs an assigned agent; use assign",
                        )
                    })?;
                    c.assigned_agent_id = Some(me.id);
                    c.assigned_at = Some(now);
                }
                c.queued_at = None;
                None
            }
            Mode::Queued => {
                c.assigned_agent_id = None;
                c.assigned_at = None;
                c.queued_at = Some(now);
                Some(Notice::Queued { reason: None })
            }
            Mode::Bot => {
                c.assigned_agent_id = None;
                c.assigned_at = None;
                c.queued_at = None;
                Some(Notice::BotAgain)
            }
            Mode::Paused => Some(Notice::Paused),
            Mode::Closed => {
                c.closed_at = Some(now);
                c.queued_at = None;
                Some(Notice::Closed)
            }
            Mode::Archived => None,
        })
    }

    /// Asks for a human: `bot` or `paused` → `queued`, then routes. Idempotent for a
    /// conversation already queued or with an agent (returns it as it is).
    pub async fn request_agent(
        &self,
        actor: &Actor,
        id: ConversationId,
        department: Option<String>,
        reason: Option<String>,
    ) -> Result<Conversation> {
        let department = self.optional_short_text("department", department.as_deref())?;
        let reason = self.optional_short_text("reason", reason.as_deref())?;
        let (_, current) = self.authorized(actor, id, Action::RequestAgent).await?;
        if matches!(current.mode, Mode::Queued | Mode::Agent) {
            return Ok(current);
        }
        self.enqueue(actor, id, department, reason).await
    }

    /// Queues the conversation (handoff) and routes the queue.
    pub(super) async fn enqueue(
        &self,
        actor: &Actor,
        id: ConversationId,
        department: Option<String>,
        reason: Option<String>,
    ) -> Result<Conversation> {
        let committed = self
            .change(actor, id, Action::RequestAgent, |who, c| {
                let from = c.mode;
                from.check(Mode::Queued)?;
                if department.is_some() {
                    c.department = department.clone();
                }
                self.enter_mode(who, c, Mode::Queued)?;
                let note = Notice::Queued {
                    reason: reason.clone(),
                };
                Ok((
                    ConversationChange::Mode {
                        from,
                        to: Mode::Queued,
                    },
                    Some(note),
                ))
            })
            .await?;
        self.route(actor.tenant()).await?;
        self.reload_if_routed(committed.conversation).await
    }

    /// Takes a queued (or bot) conversation for the acting staff member. Of two agents
    /// claiming at once exactly one wins; the other gets [`Error::Conflict`]. A claim that
    /// lost a race to a write that left the conversation unclaimed (the customer's
    /// message, a tag) is tried again from a fresh read, not refused.
    pub async fn claim(&self, actor: &Actor, id: ConversationId) -> Result<Conversation> {
        let taken = || Error::Conflict("conversation already has an agent".into());
        let result = self
            .change(actor, id, Action::Claim, |who, c| {
                let me = who.staff().ok_or(Error::Forbidden("claim"))?;
                if c.mode == Mode::Agent || c.mode == Mode::Paused {
                    return Err(taken());
                }
                self.take(c, me.id, &me.name)
            })
            .await;
        match result {
            Ok(committed) => Ok(committed.conversation),
            // The winner of a race now owns it, so the loser can no longer see it; an agent
            // who could have claimed it from its queue learns it was taken, nothing more.
            Err(Error::NotFound(what)) => {
                let who = self.resolve(actor).await?;
                let current = self.inner.store.conversation(actor.tenant(), id).await?;
                match (who.staff(), current) {
                    (Some(me), Some(c))
                        if c.mode.holds_agent() && me.serves(c.department.as_deref()) =>
                    {
                        Err(taken())
                    }
                    _ => Err(Error::NotFound(what)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Assigns to `agent` (takes it into `agent` mode if needed). Managers may assign
    /// anyone; an agent may hand its own conversation to a colleague. Capacity is not
    /// checked: a manager's explicit choice overrides it.
    pub async fn assign(
        &self,
        actor: &Actor,
        id: ConversationId,
        agent: AgentId,
    ) -> Result<Conversation> {
        let target = self.active_agent(actor, agent).await?;
        let tenant = actor.tenant();
        let committed = self
            .change(actor, id, Action::Assign, |_, c| {
                if c.assigned_agent_id == Some(agent) && c.mode.holds_agent() {
                    return Err(Error::Conflict("already assigned to this agent".into()));
                }
                self.take(c, target.id, &target.name)
            })
            .await?;
        // The previous owner may have freed capacity.
        self.route(tenant).await?;
        Ok(committed.conversation)
    }

    /// Sets `agent` as owner and moves to `agent` mode (unless paused).
    fn take(
        &self,
        c: &mut Conversation,
        agent: AgentId,
        name: &str,
    ) -> Result<(ConversationChange, Option<Notice>)> {
        let from = c.assigned_agent_id;
        if c.mode != Mode::Agent && c.mode != Mode::Paused {
            c.mode.check(Mode::Agent)?;
            c.mode = Mode::Agent;
        }
        c.assigned_agent_id = Some(agent);
        c.assigned_at = Some(self.now());
        c.queued_at = None;
        c.participants.retain(|p| *p != agent);
        Ok((
            ConversationChange::Assigned {
                from,
                to: Some(agent),
            },
            Some(Notice::Assigned {
                name: name.to_owned(),
            }),
        ))
    }

    /// Removes the owner and puts the conversation back in the queue.
    pub async fn unassign(&self, actor: &Actor, id: ConversationId) -> Result<Conversation> {
        let committed = self
            .change(actor, id, Action::Assign, |who, c| {
                let from = c
                    .assigned_agent_id
                    .ok_or_else(|| Error::Conflict("nobody is assigned".into()))?;
                c.mode.check(Mode::Queued)?;
                self.enter_mode(who, c, Mode::Queued)?;
                Ok((
                    ConversationChange::Assigned {
                        from: Some(from),
                        to: None,
                    },
                    Some(Notice::Unassigned),
                ))
            })
            .await?;
        self.route(actor.tenant()).await?;
        self.reload_if_routed(committed.conversation).await
    }

    /// Transfers to an agent or a department's queue, recording the reason in the
    /// timeline. The previous owner loses access unless it participates.
    pub async fn transfer(
        &self,
        actor: &Actor,
        id: ConversationId,
        transfer: Transfer,
    ) -> Result<Conversation> {
        let reason = self.optional_short_text("reason", transfer.reason.as_deref())?;
        let target_agent = match &transfer.to {
            TransferTarget::Agent(a) => Some(self.active_agent(actor, *a).await?),
            TransferTarget::Department(d) => {
                self.short_text("department", d)?;
                None
            }
        };
        let committed = self
            .change(actor, id, Action::Transfer, |who, c| {
                if !c.mode.is_open() {
                    return Err(Error::InvalidTransition {
                        from: c.mode,
                        to: Mode::Agent,
                    });
                }
                let from = c.assigned_agent_id;
                let from_party = match (from, who.staff()) {
                    (Some(f), Some(me)) if f == me.id => Party::Agent(me.name.clone()),
                    (Some(_), _) => Party::PreviousAgent,
                    (None, _) => Party::Queue,
                };
                let (to, target_name) = match (&transfer.to, &target_agent) {
                    (TransferTarget::Agent(_), Some(agent)) => {
                        if from == Some(agent.id) {
                            return Err(Error::Conflict("already assigned to this agent".into()));
                        }
                        self.take(c, agent.id, &agent.name)?;
                        (
                            TransferTarget::Agent(agent.id),
                            Party::Agent(agent.name.clone()),
                        )
                    }
                    (TransferTarget::Department(d), _) => {
                        let d = d.trim().to_owned();
                        if c.mode != Mode::Queued {
                            c.mode.check(Mode::Queued)?;
                        }
                        self.enter_mode(who, c, Mode::Queued)?;
                        c.department = Some(d.clone());
                        // Departments are the desk's routing: the customer's transcript
                        // says a team takes over, not which.
                        (TransferTarget::Department(d), Party::Team)
                    }
                    (TransferTarget::Agent(_), None) => return Err(Error::NotFound("agent")),
                };
                if let Some(previous) = from {
                    c.participants.retain(|p| *p != previous);
                }
                // The customer reads this message: the reason, written for colleagues,
                // stays in the staff's view of the change.
                let note = Notice::Transferred {
                    from: from_party,
                    to: target_name,
                };
                Ok((
                    ConversationChange::Transferred {
                        from,
                        to,
                        reason: reason.clone(),
                    },
                    Some(note),
                ))
            })
            .await?;
        let mut conversation = committed.conversation;
        // The reason is written for colleagues: an internal note beside the transcript's
        // notice, so the next agent reads it and the customer does not.
        if let Some(reason) = reason {
            let sender = match self.resolve(actor).await? {
                Resolved::Staff(a) => crate::model::Sender::Agent(a.id),
                _ => crate::model::Sender::System,
            };
            let note = self.new_message(
                &conversation,
                sender,
                crate::model::MessageKind::Note,
                format!("Transfer reason: {reason}"),
            );
            let appended = self.inner.store.append_message(note).await?;
            self.publish(appended.event);
            conversation = appended.conversation;
        }
        self.route(actor.tenant()).await?;
        self.reload_if_routed(conversation).await
    }

    /// Changes priority, department, tags, pin, title or participants.
    pub async fn update_details(
        &self,
        actor: &Actor,
        id: ConversationId,
        patch: DetailsPatch,
    ) -> Result<Conversation> {
        let department = match &patch.department {
            Some(d) => Some(self.optional_short_text("department", d.as_deref())?),
            None => None,
        };
        let title = match &patch.title {
            Some(t) => Some(self.optional_short_text("title", t.as_deref())?),
            None => None,
        };
        let clean_tags = |tags: &[String]| -> Result<Vec<String>> {
            tags.iter()
                .map(|t| self.short_text("tags", t).map(|t| t.to_lowercase()))
                .collect()
        };
        let replace = patch.tags.as_deref().map(clean_tags).transpose()?;
        let add = clean_tags(&patch.add_tags)?;
        let remove = clean_tags(&patch.remove_tags)?;
        for p in &patch.add_participants {
            self.active_agent(actor, *p).await?;
        }
        let max_tags = self.inner.limits.max_tags;
        let committed = self
            .change(actor, id, Action::EditDetails, |_, c| {
                if c.mode == Mode::Archived {
                    return Err(Error::Conflict(
                        "archived conversations are read-only".into(),
                    ));
                }
                if let Some(p) = patch.priority {
                    c.priority = p;
                }
                if let Some(d) = &department {
                    c.department = d.clone();
                }
                if let Some(t) = &title {
                    c.title = t.clone();
                }
                if let Some(p) = patch.pinned {
                    c.pinned = p;
                }
                if let Some(tags) = &replace {
                    c.tags.clear();
                    c.tags.extend(tags.iter().cloned());
                }
                for t in &add {
                    if !c.tags.contains(t) {
                        c.tags.push(t.clone());
                    }
                }
                c.tags.retain(|t| !remove.contains(t));
                c.tags.sort();
                c.tags.dedup();
                if c.tags.len() > max_tags {
                    return Err(Error::validation(
                        "tags",
                        format!("more than {max_tags} tags"),
                    ));
                }
                for p in &patch.add_participants {
                    if !c.participants.contains(p) && c.assigned_agent_id != Some(*p) {
                        c.participants.push(*p);
                    }
                }
                c.participants
                    .retain(|p| !patch.remove_participants.contains(p));
                Ok((ConversationChange::Details, None))
            })
            .await?;
        if department.is_some() {
            self.route(actor.tenant()).await?;
        }
        Ok(committed.conversation)
    }

    /// Closes, optionally with the customer's rating.
    pub async fn close(
        &self,
        actor: &Actor,
        id: ConversationId,
        rating: Option<(u8, Option<String>)>,
    ) -> Result<Conversation> {
        let rating = rating
            .map(|(score, feedback)| self.rating(score, feedback))
            .transpose()?;
        let committed = self
            .change(actor, id, Action::Close, |who, c| {
                if rating.is_some() {
                    who.authorize(Action::Rate, c)?;
                }
                let from = c.mode;
                from.check(Mode::Closed)?;
                let note = self.enter_mode(who, c, Mode::Closed)?;
                if let Some(r) = &rating {
                    c.rating = Some(r.clone());
                }
                Ok((ConversationChange::Closed, note))
            })
            .await?;
        // The agent's capacity is free again.
        self.route(actor.tenant()).await?;
        Ok(committed.conversation)
    }

    /// Records the customer's rating (score 1-5, optional feedback).
    pub async fn rate(
        &self,
        actor: &Actor,
        id: ConversationId,
        score: u8,
        feedback: Option<String>,
    ) -> Result<Conversation> {
        let rating = self.rating(score, feedback)?;
        let committed = self
            .change(actor, id, Action::Rate, |_, c| {
                if c.mode == Mode::Archived {
                    return Err(Error::Conflict(
                        "archived conversations are read-only".into(),
                    ));
                }
                c.rating = Some(rating.clone());
                Ok((ConversationChange::Rated, None))
            })
            .await?;
        Ok(committed.conversation)
    }

    fn rating(&self, score: u8, feedback: Option<String>) -> Result<Rating> {
        if !(1..=5).contains(&score) {
            return Err(Error::validation("rating.score", "must be between 1 and 5"));
        }
        let feedback = self.optional_short_text("rating.feedback", feedback.as_deref())?;
        Ok(Rating {
            score,
            feedback,
            rated_at: self.now(),
        })
    }

    /// Reopens a closed conversation: staff take it back as its agent; customers and the
    /// system send it to the bot (or the queue when the tenant has no bot).
    pub async fn reopen(&self, actor: &Actor, id: ConversationId) -> Result<Conversation> {
        self.reopen_to(actor, id, None).await
    }

    pub(super) async fn reopen_to(
        &self,
        actor: &Actor,
        id: ConversationId,
        to: Option<Mode>,
    ) -> Result<Conversation> {
        let tenant = self.load_tenant(actor.tenant()).await?;
        let committed = self
            .change(actor, id, Action::Reopen, |who, c| {
                if c.mode != Mode::Closed {
                    return Err(Error::InvalidTransition {
                        from: c.mode,
                        to: to.unwrap_or(Mode::Bot),
                    });
                }
                let routed = if tenant.settings.bot_enabled {
                    Mode::Bot
                } else {
                    Mode::Queued
                };
                let target = to.unwrap_or(match who {
                    Resolved::Staff(_) => Mode::Agent,
                    _ => routed,
                });
                // A customer (or the bot) reopens through routing only: naming `agent` or
                // `paused` would hand the conversation back to its former agent past the
                // bot, the queue and that agent's capacity.
                if matches!(who, Resolved::Customer { .. } | Resolved::Bot) && target != routed {
                    return Err(Error::Forbidden("reopen past the bot and the queue"));
                }
                if matches!(who, Resolved::Customer { .. }) && !tenant.settings.allow_reopen {
                    return Err(Error::InvalidTransition {
                        from: Mode::Closed,
                        to: target,
                    });
                }
                c.mode.check(target)?;
                c.closed_at = None;
                if target == Mode::Agent
                    && let Some(me) = who.staff()
                {
                    c.assigned_agent_id = Some(me.id);
                    c.assigned_at = Some(self.now());
                }
                self.enter_mode(who, c, target)?;
                Ok((ConversationChange::Reopened, Some(Notice::Reopened)))
            })
            .await?;
        self.route(tenant.id).await?;
        self.reload_if_routed(committed.conversation).await
    }

    /// Archives a closed conversation (read-only from then on).
    pub async fn archive(&self, actor: &Actor, id: ConversationId) -> Result<Conversation> {
        let committed = self
            .change(actor, id, Action::Archive, |_, c| {
                c.mode.check(Mode::Archived)?;
                c.mode = Mode::Archived;
                Ok((ConversationChange::Archived, None))
            })
            .await?;
        Ok(committed.conversation)
    }

    /// Deletes a conversation and its messages for good. Admins and the system only.
    pub async fn delete_conversation(&self, actor: &Actor, id: ConversationId) -> Result<()> {
        self.authorized(actor, id, Action::Delete).await?;
        // The files go with the conversation: collected before its messages are gone,
        // removed once the deletion has committed.
        let mut files = Vec::new();
        let mut query = crate::store::MessageQuery::latest(actor.tenant(), id, 500);
        query.after = Some(0);
        loop {
            let page = self.inner.store.messages(&query).await?;
            let Some(highest) = page.iter().map(|m| m.seq).max() else {
                break;
            };
            query.after = Some(highest);
            files.extend(page.into_iter().flat_map(|m| m.attachments));
        }
        let event = self
            .inner
            .store
            .delete_conversation(actor.tenant(), id, self.now())
            .await?;
        self.publish([event]);
        self.remove_files(id, &files).await;
        Ok(())
    }

    /// A staff member of the actor's tenant that can receive work.
    async fn active_agent(&self, actor: &Actor, id: AgentId) -> Result<crate::model::Agent> {
        let agent = self
            .inner
            .store
            .agent(actor.tenant(), id)
            .await?
            .ok_or(Error::NotFound("agent"))?;
        if !agent.active {
            return Err(Error::validation("agent", "this staff member is disabled"));
        }
        Ok(agent)
    }

    /// Routing may have assigned the conversation after our write; return the latest.
    async fn reload_if_routed(&self, c: Conversation) -> Result<Conversation> {
        if c.mode == Mode::Queued {
            self.load_conversation(c.tenant_id, c.id).await
        } else {
            Ok(c)
        }
    }
}
