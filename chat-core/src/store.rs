//! The persistence seam.
//!
//! A [`Store`] offers domain-level atomic operations, not a key-value bag: appending a
//! message assigns its gap-free sequence, applies the idempotency key, updates the
//! conversation's counters and appends the event, all in one transaction. The engine
//! decides what may happen (policy, state machine); the store makes it happen atomically.
//!
//! Every backend must pass the conformance suite `chat_core::testing`
//! (feature `testing`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::export::{ExportOptions, ExportSink};
use crate::ids::{
    AgentId, CannedResponseId, ContactId, ConversationId, InboxId, MessageId, TenantId, WebhookId,
};
use crate::mode::Mode;
use crate::model::{
    Agent, AgentLoad, CannedResponse, Channel, Contact, Conversation, ConversationChange, Delivery,
    DeliveryOutcome, Event, EventPayload, Inbox, Mail, MailOutcome, Mention, Message, NewMessage,
    Priority, ReadCursor, Tenant, Webhook,
};
use crate::report::{Dimension, Feedback, ReportQuery, ReportRow, SeriesPoint};

mod slim;
mod text;
pub use slim::SlimPayload;
pub use text::{
    Snippet, TextQuery, each_word as each_text_word, text_matches, words as text_words,
};

/// The trait itself, in a module of its own so that its one public path is the crate
/// root's (`chat_core::Store`); the types it speaks in are this module's.
pub(crate) mod seam {
    #[allow(clippy::wildcard_imports)]
    use super::*;

    /// Persistence for the engine. Object-safe: the engine holds an `Arc<dyn Store>`.
    ///
    /// Conventions every implementation follows:
    /// - writes are atomic: all of an operation's rows and events, or none;
    /// - every write that changes a conversation adds one to its `version` and appends its
    ///   events with the tenant's next event sequences (gap-free, from 1);
    /// - e-mails are compared lower-case;
    /// - reads never see half of a write.
    #[async_trait]
    pub trait Store: Send + Sync + 'static {
        /// Creates a tenant. [`Error::Conflict`] if the id exists.
        async fn insert_tenant(&self, tenant: &Tenant) -> Result<()>;
        /// Replaces a tenant's name and settings. [`Error::NotFound`] if absent.
        async fn update_tenant(&self, tenant: &Tenant) -> Result<()>;
        /// Replaces a tenant's name and settings and appends a staff-only `settings_updated`
        /// event at `at`, atomically: a compare-and-swap, written only while the stored
        /// `settings_version` is one less than `tenant.settings_version`, else
        /// [`Error::version_race`] with the stored version and nothing changed.
        /// [`Error::NotFound`] if absent.
        async fn update_tenant_settings(
            &self,
            tenant: &Tenant,
            at: OffsetDateTime,
        ) -> Result<Event>;
        /// A tenant by id.
        async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>>;

        /// Creates a contact. [`Error::Conflict`] if the id exists, or if the contact's e-mail
        /// is verified and another contact of the tenant has the same verified e-mail.
        /// Unverified e-mails (claims) may repeat.
        async fn insert_contact(&self, contact: &Contact) -> Result<()>;
        /// Replaces a contact. [`Error::NotFound`] if absent, [`Error::Conflict`] on a verified
        /// e-mail taken by another contact.
        async fn update_contact(&self, contact: &Contact) -> Result<()>;
        /// A contact by id.
        async fn contact(&self, tenant: TenantId, id: ContactId) -> Result<Option<Contact>>;
        /// The contact whose *verified* e-mail is this one (case-insensitive). A claimed,
        /// unverified e-mail never finds a contact.
        async fn verified_contact(&self, tenant: TenantId, email: &str) -> Result<Option<Contact>>;
        /// Contacts of `query.tenant`, newest first (by id: ids are time-ordered), only ids
        /// below `query.before` when set, and with `query.text` only those whose name,
        /// e-mail or phone contains it (ASCII case-insensitive); at most `query.limit`.
        async fn list_contacts(&self, query: &ContactQuery) -> Result<Vec<Contact>>;
        /// Ends a merge: replaces `into` (its merged fields) and deletes `from`, appending a
        /// staff-only `contact_merged` event. [`Error::Conflict`] while `from` still has
        /// conversations (the engine moves them first), [`Error::NotFound`] if either contact
        /// is absent.
        async fn merge_contact(
            &self,
            into: &Contact,
            from: ContactId,
            at: OffsetDateTime,
        ) -> Result<Event>;

        /// Erases a contact in one transaction (see [`ContactErasure`]): deletes exactly
        /// `erasure.conversations` with their messages, cursors, tags and reopen marks;
        /// rewrites every logged event that carries their data or the contact's
        /// ([`ContactErasure::scrub`]); blanks the contact ([`Contact::erased`]); deletes its
        /// customer account, login names and visitor tokens; then appends one
        /// `conversation_deleted` per conversation and one staff-only `contact_erased`,
        /// returned in log order. [`Error::NotFound`] if the contact is absent,
        /// [`Error::Conflict`] if it has a conversation not in the list (opened meanwhile:
        /// the engine collects its files and tries again).
        async fn erase_contact(&self, erasure: &ContactErasure) -> Result<Vec<Event>>;

        /// Creates a staff member and appends an `agent_updated` event.
        /// [`Error::Conflict`] if the e-mail is taken in the tenant.
        async fn insert_agent(&self, agent: &Agent) -> Result<Event>;
        /// Replaces a staff member and appends an `agent_updated` event.
        async fn update_agent(&self, agent: &Agent) -> Result<Event>;
        /// Appends a `credentials_changed` event at `at` (see
        /// [`NewEvent::credentials_changed`](crate::NewEvent::credentials_changed)), so every
        /// server following the tenant's log re-checks its sockets' credentials, for a
        /// change whose own write logs no such event (a disabled staff member, merged or
        /// erased contacts: their own events carry the change). The [`Credentials`](crate::Credentials)
        /// changes append theirs in their own transaction instead. No webhook receives it.
        async fn log_credential_change(
            &self,
            tenant: TenantId,
            at: OffsetDateTime,
        ) -> Result<Event>;
        /// A staff member by id.
        async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<Agent>>;
        /// A staff member by e-mail (case-insensitive).
        async fn agent_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Agent>>;
        /// Every staff member of a tenant, by name.
        async fn agents(&self, tenant: TenantId) -> Result<Vec<Agent>>;
        /// Every active staff member with the number of conversations it holds in mode
        /// `agent` or `paused`.
        async fn agent_loads(&self, tenant: TenantId) -> Result<Vec<AgentLoad>>;

        /// Stores a new conversation (its `version` as given) with its first messages, and
        /// appends `conversation_created` then one `message_created` per message.
        async fn create_conversation(
            &self,
            conversation: &Conversation,
            messages: Vec<NewMessage>,
        ) -> Result<Committed>;
        /// Replaces a conversation if its stored version equals `update.conversation.version`
        /// ([`Error::Conflict`] otherwise), storing it with version + 1, then appends the
        /// optional system message. Events: `conversation_updated`, then `message_created`.
        async fn update_conversation(&self, update: ConversationUpdate) -> Result<Committed>;
        /// [`Store::update_conversation`] for a routing pass's assignment: also a
        /// [`ConflictKind::State`](crate::ConflictKind::State) conflict, writing nothing,
        /// unless the agent it assigns (`assigned_agent_id`) holds fewer than `capacity`
        /// other conversations in mode `agent` or `paused`, counted in the transaction that
        /// writes. Routing passes on several servers sharing a store then never put an
        /// agent over capacity, whatever loads each read before.
        async fn assign_within_capacity(
            &self,
            update: ConversationUpdate,
            capacity: u32,
        ) -> Result<Committed>;
        /// [`Store::assign_within_capacity`] that also moves the tenant's routing turn (the
        /// agent its last turn-taking assignment went to, [`Store::routing_turn`]) from
        /// `turn` to the assigned agent, in the same transaction. A
        /// [`ConflictKind::State`](crate::ConflictKind::State) conflict, writing nothing,
        /// when the stored turn is no longer `turn`: another server's pass took a turn
        /// meanwhile, and this pass picks again from the new one. So round-robin passes on
        /// several servers take one turn each, in order.
        async fn assign_in_turn(
            &self,
            update: ConversationUpdate,
            capacity: u32,
            turn: Option<AgentId>,
        ) -> Result<Committed>;
        /// The agent the tenant's last turn-taking assignment ([`Store::assign_in_turn`])
        /// went to; `None` before the first.
        async fn routing_turn(&self, tenant: TenantId) -> Result<Option<AgentId>>;
        /// Deletes a conversation with its messages, cursors and inbox thread, and appends
        /// `conversation_deleted`. [`Error::NotFound`] if absent.
        async fn delete_conversation(
            &self,
            tenant: TenantId,
            id: ConversationId,
            at: OffsetDateTime,
        ) -> Result<Event>;
        /// A conversation by id.
        async fn conversation(
            &self,
            tenant: TenantId,
            id: ConversationId,
        ) -> Result<Option<Conversation>>;
        /// Conversations matching a query, newest activity first, with counts per mode.
        async fn list_conversations(&self, query: &ConversationQuery) -> Result<ConversationPage>;
        /// Queued conversations, highest priority first, then longest waiting.
        async fn queue(&self, tenant: TenantId, limit: usize) -> Result<Vec<Conversation>>;

        /// Appends a message: if the conversation already has a message from the same sender
        /// with the same `client_message_id`, returns it with `created = false` and writes nothing.
        /// Otherwise gives it the conversation's next sequence, applies
        /// [`Conversation::record_message`], and appends `message_created` (staff-only for notes).
        /// [`Error::NotFound`] if the conversation does not exist.
        async fn append_message(&self, message: NewMessage) -> Result<Appended>;
        /// Replaces a message's body, revisions, edit and delete times (id, conversation,
        /// sequence, sender and kind stay). Appends `message_updated`.
        async fn update_message(&self, message: &Message) -> Result<Event>;
        /// A message by id.
        async fn message(&self, tenant: TenantId, id: MessageId) -> Result<Option<Message>>;
        /// A window of a conversation's messages, in ascending sequence.
        async fn messages(&self, query: &MessageQuery) -> Result<Vec<Message>>;
        /// The messages of `query.conversations` whose body matches `query.text` (a
        /// [`TextQuery`]), at most `query.per_conversation` of each, newest first within
        /// each conversation, conversations in any order: a search result's hits. Deleted
        /// messages never; internal notes only with `query.notes`. Conversations of another
        /// tenant, or none, give nothing.
        async fn message_hits(&self, query: &HitQuery) -> Result<Vec<Message>>;
        /// Moves a reader's cursor forward (never back), recomputes the side's unread counter
        /// from it, and appends `read_updated`. Returns the conversation and the event, or no
        /// event if the cursor did not move.
        async fn set_read_cursor(
            &self,
            cursor: &ReadCursor,
        ) -> Result<(Conversation, Option<Event>)>;
        /// Every read cursor of a conversation.
        async fn read_cursors(
            &self,
            tenant: TenantId,
            conversation: ConversationId,
        ) -> Result<Vec<ReadCursor>>;

        /// Events with `seq > after`, ascending, at most `limit`.
        async fn events_since(
            &self,
            tenant: TenantId,
            after: u64,
            limit: usize,
        ) -> Result<Vec<Event>>;

        /// The sequence of the tenant's newest event, 0 when its log is empty: where a live
        /// follower starts, and what a client's cursor is checked against (one from beyond it
        /// came from another database and must reload). One indexed read, not a scan.
        async fn event_head(&self, tenant: TenantId) -> Result<u64>;
        /// Deletes the oldest of the tenant's events with `seq <= through`, at most `limit`
        /// of them, and says how many went: the log's retention, decided by
        /// [`Engine::compact_events`](crate::Engine::compact_events). Whatever `through`
        /// says, the store keeps the newest event (its `seq` numbers the next one), every
        /// event from the oldest pending webhook delivery's on (the deliverer reads it), and
        /// what else the backend still needs (SQLite: the events its search indexer has not
        /// applied). Reads after it see the log start later; a feed whose cursor is before
        /// that start answers [`ResyncReason::TooOld`](crate::feed::ResyncReason::TooOld).
        async fn compact_events(&self, tenant: TenantId, through: u64, limit: usize)
        -> Result<u64>;

        /// Stores a canned response, or replaces the one with its id (of the same tenant),
        /// and appends a [`crate::NewEvent::canned_response_updated`] event, atomically.
        /// [`Error::Conflict`] (duplicate) if another response with the same owner (or
        /// another shared one) has its shortcut.
        async fn put_canned_response(&self, response: &CannedResponse) -> Result<Event>;
        /// Deletes the canned response `response` names (its tenant and id) and appends a
        /// [`crate::NewEvent::canned_response_deleted`] event at `at`, atomically.
        /// [`Error::NotFound`] if absent.
        async fn delete_canned_response(
            &self,
            response: &CannedResponse,
            at: OffsetDateTime,
        ) -> Result<Event>;
        /// Canned responses matching a query, by shortcut then id.
        async fn canned_responses(&self, query: &CannedQuery) -> Result<Vec<CannedResponse>>;

        /// Records mentions (unread) and appends one `mentioned` event per mention, in
        /// order, atomically. A mention of the same agent in the same message again is
        /// skipped (no row, no event).
        async fn record_mentions(&self, mentions: &[Mention]) -> Result<Vec<Event>>;
        /// An agent's newest `limit` mentions, newest first, and how many of all its
        /// mentions are unread.
        async fn mentions(
            &self,
            tenant: TenantId,
            agent: AgentId,
            limit: usize,
        ) -> Result<(Vec<Mention>, u64)>;
        /// Marks every unread mention of the agent read at `at`; returns how many were.
        async fn read_mentions(
            &self,
            tenant: TenantId,
            agent: AgentId,
            at: OffsetDateTime,
        ) -> Result<u64>;

        // ---- Event webhooks and their outbox ----
        //
        // Every event appended by any write above also writes, in the same transaction, one
        // pending delivery per webhook of the tenant that follows its kind
        // ([`Webhook::follows`], paused webhooks included: they hold deliveries, not drop
        // them), due at the event's time. That is the outbox: a committed event is never
        // lost to a crash before its delivery.

        /// Stores a webhook, or replaces the one with its id (same tenant; its outbox stays).
        async fn put_webhook(&self, webhook: &Webhook) -> Result<()>;
        /// Deletes a webhook and its deliveries. [`Error::NotFound`] if absent.
        async fn delete_webhook(&self, tenant: TenantId, id: WebhookId) -> Result<()>;
        /// A tenant's webhooks, oldest first.
        async fn webhooks(&self, tenant: TenantId) -> Result<Vec<Webhook>>;
        /// Claims up to `limit` due deliveries of every tenant: pending, of an active
        /// webhook, `next_attempt_at <= now`, and the oldest pending one of their webhook and
        /// conversation (a failing delivery holds the later ones of its conversation, not
        /// those of others; deliveries without a conversation hold nothing). Each claimed
        /// one gets `next_attempt_at = lease_until`, so another worker skips it and, should
        /// this one die mid-attempt, it is due again when the lease lapses. Returned as
        /// before the claim, oldest due first.
        async fn claim_deliveries(
            &self,
            now: OffsetDateTime,
            lease_until: OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<Delivery>>;
        /// Records an attempt: the delivery's state, counters and next attempt; the
        /// webhook's `failing_since` (cleared on success, else kept or set to `outcome.at`);
        /// and, per [`DeliveryOutcome::pause`], pauses the webhook and appends the event,
        /// returned. A delivery that no longer exists (its webhook deleted) is no error.
        async fn record_delivery(&self, outcome: &DeliveryOutcome) -> Result<Option<Event>>;
        /// A webhook's deliveries, newest event first, only `seq < before` when set, at most
        /// `limit`.
        async fn deliveries(
            &self,
            tenant: TenantId,
            webhook: WebhookId,
            before: Option<u64>,
            limit: usize,
        ) -> Result<Vec<Delivery>>;
        /// Makes a delivery pending again, due at `now` (its attempts kept).
        /// [`Error::NotFound`] if absent.
        async fn redeliver(
            &self,
            tenant: TenantId,
            webhook: WebhookId,
            seq: u64,
            now: OffsetDateTime,
        ) -> Result<Delivery>;

        // ---- Inboxes (channels customers write in through) ----

        /// Stores an inbox, or replaces the one with its id (same tenant).
        async fn put_inbox(&self, inbox: &Inbox) -> Result<()>;
        /// Replaces the inbox only if its stored `updated_at` is still `seen`, as a
        /// compare-and-swap: `false` (and nothing written) if it changed since, is gone or
        /// belongs to another tenant. Edits go through here so that two admins' changes
        /// never overwrite each other unseen.
        async fn replace_inbox(&self, inbox: &Inbox, seen: OffsetDateTime) -> Result<bool>;
        /// Deletes an inbox and its threads. [`Error::NotFound`] if absent.
        async fn delete_inbox(&self, tenant: TenantId, id: InboxId) -> Result<()>;
        /// A tenant's inboxes, oldest first.
        async fn inboxes(&self, tenant: TenantId) -> Result<Vec<Inbox>>;
        /// One inbox of any tenant: inbound routes know the inbox, not the tenant.
        async fn inbox(&self, id: InboxId) -> Result<Option<Inbox>>;
        /// The conversation an inbox's customer (by the provider's id for them) writes in.
        async fn inbox_thread(
            &self,
            inbox: InboxId,
            external: &str,
        ) -> Result<Option<ConversationId>>;
        /// Links an inbox's customer to a conversation unless one is linked already; the
        /// linked one either way (the first link wins a race between two servers).
        async fn link_inbox_thread(
            &self,
            tenant: TenantId,
            inbox: InboxId,
            external: &str,
            conversation: ConversationId,
        ) -> Result<ConversationId>;
        /// One step of `node`'s polling of `inbox`'s provider for updates (Telegram's
        /// `getUpdates`), atomically: unless another node holds a live lease (one lasting
        /// past `now`), `node`'s lease is set to last until `until` (`until <= now`
        /// releases it), the stored offset (the next update to ask for, 0 before the first)
        /// moves forward to `offset` (never back), and the stored offset is answered; with
        /// another node's live lease, `None` and nothing changes. So one node polls an
        /// inbox at a time, and a restart neither repeats nor skips updates.
        /// [`Error::NotFound`] if the inbox is gone.
        async fn poll_inbox(
            &self,
            inbox: InboxId,
            node: &str,
            offset: i64,
            now: OffsetDateTime,
            until: OffsetDateTime,
        ) -> Result<Option<i64>>;
        // ---- The mail outbox ----

        /// Queues a mail (pending, due at its `next_attempt_at`) unless a mail with its id
        /// exists (queueing is idempotent on the id), or `once_since` is set and a mail of
        /// the same conversation, kind and `requested_by` was queued at or after it;
        /// whether it was queued. The check and the write are one step, so two requests at
        /// once queue one. [`Error::NotFound`] if the conversation is absent.
        async fn queue_mail(&self, mail: &Mail, once_since: Option<OffsetDateTime>)
        -> Result<bool>;
        /// Claims up to `limit` pending mails of every tenant with `next_attempt_at <= now`,
        /// each getting `next_attempt_at = lease_until` (so another worker skips it and,
        /// should this one die mid-attempt, it is due again when the lease lapses).
        /// Returned as before the claim, oldest due first.
        async fn claim_mails(
            &self,
            now: OffsetDateTime,
            lease_until: OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<Mail>>;
        /// Records an attempt: the mail's state, attempts, next attempt, last error and
        /// sending time. A mail that no longer exists (its conversation erased) is no error.
        async fn record_mail(&self, outcome: &MailOutcome) -> Result<()>;
        /// A tenant's mails, newest first, at most `limit`.
        async fn mails(&self, tenant: TenantId, limit: usize) -> Result<Vec<Mail>>;

        // Reports (see `chat_core::report` for what each figure counts). Every store
        // computes them with aggregate queries; the in-memory definitions in that module
        // are what they must agree with. A store keeps one reopen mark per
        // `ConversationChange::Reopened` update, at the conversation's `updated_at`, and
        // drops the marks with the conversation.

        /// The report's figures, one row per key of `by` (one row, key `None`, without
        /// it), in key order (`None` first). Groups without any counted conversation are
        /// left out.
        async fn report_rows(
            &self,
            query: &ReportQuery,
            by: Option<Dimension>,
        ) -> Result<Vec<ReportRow>>;
        /// Opened, closed and reopened counts in each `[bounds[i], bounds[i + 1])`.
        async fn report_series(
            &self,
            query: &ReportQuery,
            bounds: &[OffsetDateTime],
        ) -> Result<Vec<SeriesPoint>>;
        /// Ratings with a non-empty text given in the period, newest first (ties by
        /// conversation id, descending), at most `limit`.
        async fn report_feedback(&self, query: &ReportQuery, limit: usize)
        -> Result<Vec<Feedback>>;

        /// Holds the presence of `agents` on server `node` until `expires_at`: writes each
        /// agent's lease of this node, or moves it to `expires_at`. An agent that had no live
        /// lease (none expiring after `at`, on any node) and is active and `offline` goes
        /// `online` (`updated_at` = `at`) with an `agent_updated` event: its first
        /// connection anywhere, or its node's renewal after the lease had lapsed. An agent
        /// that already had one keeps the availability it chose. Events in log order;
        /// agents absent from the tenant are skipped.
        async fn hold_presence(
            &self,
            tenant: TenantId,
            node: uuid::Uuid,
            agents: &[AgentId],
            expires_at: OffsetDateTime,
            at: OffsetDateTime,
        ) -> Result<Vec<Event>>;
        /// Ends `node`'s lease on the agent's presence (its last connection there closed).
        /// If no lease of another node is live at `at` and the agent is `online`, it goes
        /// `offline` (`updated_at` = `at`) with an `agent_updated` event, in the same
        /// transaction: an agent connected to two servers stays online until both let go.
        async fn release_presence(
            &self,
            tenant: TenantId,
            node: uuid::Uuid,
            agent: AgentId,
            at: OffsetDateTime,
        ) -> Result<Option<Event>>;
        /// Deletes the tenant's leases expired at `at` (`expires_at <= at`: their node
        /// stopped renewing them, it died); every agent they held that has no live lease
        /// left and is `online` goes `offline` (`updated_at` = `at`) with an
        /// `agent_updated` event, in one transaction. Agents never held by a lease (set
        /// online through the API, with no connection) are not touched.
        async fn lapse_presence(&self, tenant: TenantId, at: OffsetDateTime) -> Result<Vec<Event>>;

        /// Streams everything the tenant owns into `out` as export lines
        /// ([`crate::export`]): the header, one line per row from one consistent state of
        /// the store (a read snapshot, not the whole tenant in memory: `out` is bounded),
        /// then the end line. Returns the number of row lines. Fails, having sent what it
        /// had, when `out`'s reader hangs up.
        async fn export_tenant(
            &self,
            tenant: TenantId,
            options: ExportOptions,
            out: ExportSink,
        ) -> Result<u64>;
    }
}
pub(crate) use seam::Store;

/// A contact's erasure, as the engine hands it to [`Store::erase_contact`].
#[derive(Clone, Debug, PartialEq)]
pub struct ContactErasure {
    /// Tenant.
    pub tenant: TenantId,
    /// The contact.
    pub contact: ContactId,
    /// Every conversation of the contact, deleted with it.
    pub conversations: Vec<ConversationId>,
    /// The admin erasing it (`None`: the system).
    pub erased_by: Option<AgentId>,
    /// When.
    pub at: OffsetDateTime,
}

impl ContactErasure {
    /// The conversation of a logged event if that event shows it belonged to the contact
    /// (its `conversation_created` or `conversation_updated`): how a store finds the
    /// contact's conversations deleted before the erasure, whose events are in the log
    /// still, and adds them to [`conversations`](Self::conversations) before scrubbing.
    pub fn conversation_of_contact(&self, event: &Event) -> Option<ConversationId> {
        match &event.payload {
            EventPayload::ConversationCreated { conversation }
            | EventPayload::ConversationUpdated { conversation, .. }
                if event.tenant_id == self.tenant && conversation.contact_id == self.contact =>
            {
                Some(conversation.id)
            }
            _ => None,
        }
    }

    /// What a logged event must say once the contact is erased, or `None` if it carries
    /// nothing of it. The log keeps every sequence (the feed is gap-free), so an event of
    /// an erased conversation becomes that conversation's `conversation_deleted`, at its
    /// own time and visibility, and a `contact_merged` whose remaining contact is this
    /// one keeps only the blank contact. One rule for every store.
    pub fn scrub(&self, event: &Event) -> Option<EventPayload> {
        if event.tenant_id != self.tenant {
            return None;
        }
        if let Some(id) = event.conversation_id
            && self.conversations.contains(&id)
        {
            let done = matches!(
                &event.payload,
                EventPayload::ConversationDeleted { conversation_id } if *conversation_id == id
            );
            return (!done).then_some(EventPayload::ConversationDeleted {
                conversation_id: id,
            });
        }
        match &event.payload {
            EventPayload::ContactMerged { contact, merged }
                if contact.id == self.contact && !contact.is_blank() =>
            {
                Some(EventPayload::ContactMerged {
                    contact: Box::new(contact.erased(contact.updated_at)),
                    merged: *merged,
                })
            }
            _ => None,
        }
    }
}

/// What a write produced, events in log order.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// The conversation after the write.
    pub conversation: Conversation,
    /// Messages stored by the write.
    pub messages: Vec<Message>,
    /// Events appended by the write.
    pub events: Vec<Event>,
}

/// A compare-and-swap replacement of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationUpdate {
    /// The new state; its `version` is the version it was read at.
    pub conversation: Conversation,
    /// What changed, for the event.
    pub change: ConversationChange,
    /// A system message to append in the same transaction (e.g. "Transferred to Billing").
    pub message: Option<NewMessage>,
}

/// Result of [`Store::append_message`].
#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    /// The stored message (the earlier one for a repeated client message id).
    pub message: Message,
    /// The conversation after the write.
    pub conversation: Conversation,
    /// The `message_created` event; `None` when nothing was written.
    pub event: Option<Event>,
    /// `false` when the client message id had been seen before.
    pub created: bool,
}

/// Which conversations a reader may see; the policy builds it, every store applies it.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// The whole tenant (admins, supervisors, bots, the system).
    Tenant,
    /// An agent: conversations assigned to it or where it participates, and queued
    /// conversations of the general queue or of its departments.
    Agent {
        /// The agent.
        agent: AgentId,
        /// Its departments.
        departments: Vec<String>,
    },
    /// A customer: its own conversations, or only one.
    Contact {
        /// The contact.
        contact: ContactId,
        /// If set, only this conversation.
        conversation: Option<ConversationId>,
    },
}

impl Scope {
    /// Whether `conversation` is inside this scope. Stores filtering in SQL must agree.
    pub fn contains(&self, conversation: &Conversation) -> bool {
        match self {
            Scope::Tenant => true,
            Scope::Agent { agent, departments } => {
                conversation.involves(*agent)
                    || (conversation.mode == Mode::Queued
                        && conversation
                            .department
                            .as_ref()
                            .is_none_or(|d| departments.contains(d)))
            }
            Scope::Contact {
                contact,
                conversation: only,
            } => conversation.contact_id == *contact && only.is_none_or(|id| id == conversation.id),
        }
    }
}

/// Filter on the assigned agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignedFilter {
    /// Nobody is assigned.
    Unassigned,
    /// This agent is assigned.
    Agent(AgentId),
}

/// A conversation list query. Every filter is optional and they combine with AND.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationQuery {
    /// Tenant.
    pub tenant: TenantId,
    /// Visibility, from the policy.
    pub scope: Scope,
    /// Only these modes (empty = all).
    pub modes: Vec<Mode>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Department.
    pub department: Option<String>,
    /// Assignment.
    pub assigned: Option<AssignedFilter>,
    /// Has this tag.
    pub tag: Option<String>,
    /// Channel.
    pub channel: Option<Channel>,
    /// Contact e-mail (case-insensitive).
    pub contact_email: Option<String>,
    /// Pinned or not.
    pub pinned: Option<bool>,
    /// Snoozed or not: an agent's active list asks for `Some(false)`.
    pub snoozed: Option<bool>,
    /// Words (prefixes) or quoted phrases found in the title, the contact's name or e-mail,
    /// or one message body visible to the reader; see [`TextQuery`] for what matches.
    pub text: Option<String>,
    /// Last activity (`updated_at`) at or after this time.
    pub updated_from: Option<OffsetDateTime>,
    /// Last activity (`updated_at`) before this time.
    pub updated_to: Option<OffsetDateTime>,
    /// Continue after this cursor (from [`ConversationPage::next_cursor`]).
    pub cursor: Option<ConversationCursor>,
    /// Page size.
    pub limit: usize,
    /// With a text filter, each mode is counted up to this many conversations
    /// ([`TEXT_COUNT_CAP`] by default; see [`ConversationPage::counts_capped`]). Lists
    /// without text count exactly.
    pub count_cap: u64,
}

/// How many conversations of each mode a text search counts before it stops: a word in a
/// quarter of a million messages would otherwise cost a walk of all of them for the
/// counts alone, where the page needs only its first fifty.
pub const TEXT_COUNT_CAP: u64 = 1000;

impl ConversationQuery {
    /// A query for everything in `scope`, first page of 50.
    pub fn new(tenant: TenantId, scope: Scope) -> Self {
        Self {
            tenant,
            scope,
            modes: Vec::new(),
            priority: None,
            department: None,
            assigned: None,
            tag: None,
            channel: None,
            contact_email: None,
            pinned: None,
            snoozed: None,
            text: None,
            updated_from: None,
            updated_to: None,
            cursor: None,
            limit: 50,
            count_cap: TEXT_COUNT_CAP,
        }
    }

    /// Caps `counts` as this query's answer has them: with a text filter, each mode's count
    /// is at most [`count_cap`](Self::count_cap); `true` if one reached it (so it means
    /// "at least"). One definition for every store.
    pub fn cap_counts(&self, counts: &mut BTreeMap<Mode, u64>) -> bool {
        if self.text.is_none() {
            return false;
        }
        let mut capped = false;
        for n in counts.values_mut() {
            if *n >= self.count_cap {
                *n = self.count_cap;
                capped = true;
            }
        }
        capped
    }

    /// Whether a conversation passes every filter but the mode filter and the cursor.
    /// `text_hit` says whether the text filter matched outside the conversation row
    /// (contact or messages); stores compute that their own way.
    pub fn matches_except_mode(
        &self,
        c: &Conversation,
        contact: Option<&Contact>,
        text_hit: bool,
    ) -> bool {
        c.tenant_id == self.tenant
            && self.scope.contains(c)
            && self.priority.is_none_or(|p| c.priority == p)
            && self
                .department
                .as_ref()
                .is_none_or(|d| c.department.as_ref() == Some(d))
            && self.assigned.as_ref().is_none_or(|a| match a {
                AssignedFilter::Unassigned => c.assigned_agent_id.is_none(),
                AssignedFilter::Agent(id) => c.assigned_agent_id == Some(*id),
            })
            && self.tag.as_ref().is_none_or(|t| c.tags.contains(t))
            && self.channel.is_none_or(|ch| c.channel == ch)
            && self.pinned.is_none_or(|p| c.pinned == p)
            && self.snoozed.is_none_or(|s| c.snooze.is_some() == s)
            && self.updated_from.is_none_or(|t| c.updated_at >= t)
            && self.updated_to.is_none_or(|t| c.updated_at < t)
            && self.contact_email.as_ref().is_none_or(|e| {
                contact
                    .and_then(|k| k.email.as_deref())
                    .is_some_and(|ke| ke.eq_ignore_ascii_case(e))
            })
            && self.text.as_ref().is_none_or(|t| {
                text_hit
                    || c.title
                        .as_deref()
                        .is_some_and(|title| text_matches(title, t))
            })
    }
}

/// Case-insensitive substring test. The text filter matches words instead
/// ([`text_matches`]): a substring cannot be looked up in a word index.
pub fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Keyset position in a conversation list ordered by `(updated_at, id)` descending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConversationCursor {
    /// `updated_at` of the last item, in Unix nanoseconds.
    pub updated_at_ns: i128,
    /// Id of the last item.
    pub id: ConversationId,
}

impl ConversationCursor {
    /// The cursor after `conversation`.
    pub fn after(conversation: &Conversation) -> Self {
        Self {
            updated_at_ns: conversation.updated_at.unix_timestamp_nanos(),
            id: conversation.id,
        }
    }

    /// Whether `conversation` comes after this cursor in list order.
    pub fn precedes(&self, conversation: &Conversation) -> bool {
        let key = (
            conversation.updated_at.unix_timestamp_nanos(),
            conversation.id,
        );
        key < (self.updated_at_ns, self.id)
    }

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.updated_at_ns, self.id.0.simple())
    }

    /// Parses [`encode`](Self::encode)'s output; [`Error::Validation`] on `cursor` otherwise.
    pub fn decode(text: &str) -> Result<Self> {
        let bad = || Error::validation("cursor", "not a cursor returned by this server");
        let (ns, id) = text.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            updated_at_ns: ns.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

/// A page of a tenant's contacts (see [`Store::list_contacts`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ContactQuery {
    /// Tenant.
    pub tenant: TenantId,
    /// Text the name, e-mail or phone contains.
    pub text: Option<String>,
    /// Only contacts with an id below this one (the last id of the previous page).
    pub before: Option<ContactId>,
    /// At most this many.
    pub limit: usize,
}

impl ContactQuery {
    /// Whether `contact` matches the query's text (the tenant and the page position
    /// aside): one definition for every store that filters in memory.
    pub fn matches_text(&self, contact: &Contact) -> bool {
        self.text.as_deref().is_none_or(|needle| {
            let needle = needle.to_ascii_lowercase();
            [&contact.name, &contact.email, &contact.phone]
                .into_iter()
                .flatten()
                .any(|field| field.to_ascii_lowercase().contains(&needle))
        })
    }
}

/// One page of conversations.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationPage {
    /// The conversations, newest activity first.
    pub items: Vec<Conversation>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<ConversationCursor>,
    /// How many conversations of each mode match the query's filters other than mode
    /// and cursor. In a text search each count stops at the query's
    /// [`count_cap`](ConversationQuery::count_cap): see [`counts_capped`](Self::counts_capped).
    pub counts: BTreeMap<Mode, u64>,
    /// A text search stopped counting at least one mode at the cap: a count equal to
    /// [`ConversationQuery::count_cap`] means that many **or more** (a console shows
    /// "1000+"). Always `false` without a text filter, whose counts are exact.
    pub counts_capped: bool,
}

impl ConversationPage {
    /// The page of `rows` read in page order, at most `limit` + 1 of them: the extra row
    /// only says that a next page exists, and where it starts is the last row kept. One
    /// definition for every store.
    pub fn from_rows(
        mut rows: Vec<Conversation>,
        limit: usize,
        counts: BTreeMap<Mode, u64>,
        counts_capped: bool,
    ) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(ConversationCursor::after)
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
            counts,
            counts_capped,
        }
    }
}

/// Which messages [`Store::message_hits`] finds.
#[derive(Clone, Debug, PartialEq)]
pub struct HitQuery {
    /// Tenant.
    pub tenant: TenantId,
    /// The conversations to look in (a page of search results).
    pub conversations: Vec<ConversationId>,
    /// The search text (see [`TextQuery`]).
    pub text: String,
    /// Whether internal notes count: for staff only.
    pub notes: bool,
    /// Most messages of one conversation.
    pub per_conversation: usize,
}

/// A window of a conversation's messages.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageQuery {
    /// Tenant.
    pub tenant: TenantId,
    /// Conversation.
    pub conversation: ConversationId,
    /// Only sequences below this (the newest `limit` of them).
    pub before: Option<u64>,
    /// Only sequences above this (the oldest `limit` of them).
    pub after: Option<u64>,
    /// At most this many.
    pub limit: usize,
    /// Include internal notes.
    pub include_notes: bool,
}

impl MessageQuery {
    /// The newest `limit` messages, notes included.
    pub fn latest(tenant: TenantId, conversation: ConversationId, limit: usize) -> Self {
        Self {
            tenant,
            conversation,
            before: None,
            after: None,
            limit,
            include_notes: true,
        }
    }
}

/// Which canned responses to read: the shared ones, plus one agent's own if named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CannedQuery {
    /// Tenant.
    pub tenant: TenantId,
    /// Also this agent's personal responses (`None`: shared ones only).
    pub agent: Option<AgentId>,
    /// Only this one.
    pub id: Option<CannedResponseId>,
    /// Only those whose shortcut or title starts with this, ignoring case: what an agent
    /// has typed so far in the picker.
    pub prefix: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl CannedQuery {
    /// Whether `response` passes the query's filters (the limit aside). Stores filtering in
    /// SQL must agree.
    pub fn matches(&self, response: &CannedResponse) -> bool {
        response.tenant_id == self.tenant
            && response.owner_id.is_none_or(|o| Some(o) == self.agent)
            && self.id.is_none_or(|id| id == response.id)
            && self.prefix.as_deref().is_none_or(|p| {
                let p = p.to_lowercase();
                response.shortcut.to_lowercase().starts_with(&p)
                    || response.title.to_lowercase().starts_with(&p)
            })
    }
}
