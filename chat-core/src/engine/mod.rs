//! The [`Engine`]: the only way to change state. Every call takes an [`Actor`], checks
//! the [policy](crate::policy) and the [mode state machine](crate::mode), commits through
//! the [`Store`] and publishes the resulting events on the [`EventBus`].

mod accounts;
mod agents;
mod attachments;
mod canned;
mod channels;
mod contacts;
mod conversations;
mod credentials;
mod email;
mod erasure;
mod export;
mod feed;
mod inboxes;
mod mail;
mod mentions;
mod messages;
mod presence;
mod reports;
mod retention;
mod routing;
mod snooze;
mod transcripts;
mod webhooks;

use std::sync::Arc;

use time::OffsetDateTime;

pub use accounts::SignUp;
pub use agents::AgentPatch;
pub use attachments::{FileUse, NewFile, UploadLimits, UploadPolicy};
pub use canned::{CannedPatch, MAX_CANNED_TITLE_CHARS, MAX_SHORTCUT_CHARS, NewCannedResponse};
pub use contacts::{ContactPage, ContactPatch};
pub use conversations::{
    ConversationFilter, DetailsPatch, HITS_PER_CONVERSATION, MessageHit, OpenConversation, Opened,
    SNIPPET_CHARS, SearchPage, Transfer,
};
pub use email::{
    EMAIL_FROM_KEY, EMAIL_SUBJECT_KEY, InboundMail, MAIL_OUTBOX_URL, MAX_MAIL_REFERENCES,
    MAX_MESSAGE_ID_CHARS, MailFiles,
};
pub use erasure::Erasure;
pub use inboxes::{
    ACCESS_TOKEN_KEY, API_URL_KEY, APP_SECRET_KEY, BOT_TOKEN_KEY, INBOX_CONTACT_KEY, INBOX_KEY,
    Inbound, InboxPatch, MAX_EXTERNAL_ID_CHARS, MAX_INBOXES, MAX_TEMPLATE_PARAMETER_CHARS,
    MAX_TEMPLATE_PARAMETERS, MODE_KEY, NewInbox, Outbound, PHONE_NUMBER_ID_KEY, POLLING, Received,
    Reply, TELEGRAM_API_URL, TEMPLATE_KEY, TEMPLATE_LANGUAGE_KEY, TEMPLATE_LANGUAGE_META_KEY,
    TEMPLATE_NAME_KEY, TEMPLATE_PARAMETERS_KEY, WHATSAPP_API_URL, WHATSAPP_WINDOW, inbox_version,
};
pub use mail::{
    MailAttempt, MailContent, MailPolicy, MailRetry, conversation_of_message_id, mail_message_id,
};
pub use messages::{MessagePage, PostMessage, Posted};
pub use retention::{COMPACTION_BATCH, EventRetention};
pub use routing::{DeskStatus, QueuePosition, TimerReport};
pub use transcripts::{MAX_TRANSCRIPT_MESSAGES, Transcript};
pub use webhooks::{
    Attempt, DueDelivery, MAX_WEBHOOK_URL_CHARS, MAX_WEBHOOKS, NewWebhook, WebhookPatch,
    WebhookRetry,
};

use crate::blob::{BlobStore, MemoryBlobStore, Thumbnailer};
use crate::bot::{Bot, RuleBot};
use crate::bus::{EventBus, InProcessBus};
use crate::clock::{Clock, SystemClock};
use crate::credentials::{Backend, Credentials, PasswordHasher};
use crate::error::{Error, Result};
use crate::ids::{ConversationId, IdGenerator, MessageId, TenantId, V7Ids};
use crate::model::{Conversation, Event, MessageKind, NewMessage, Sender, Tenant, TenantSettings};
use crate::policy::{Action, Actor, Resolved};
use crate::router::{LeastLoaded, Router};
use crate::store::{Committed, ConversationUpdate, Store};

/// Limits on input, enforced by the engine so every embedder gets them.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Longest message body, in characters.
    pub max_message_chars: usize,
    /// Most attachments on one message.
    pub max_attachments: usize,
    /// Most tags on a conversation.
    pub max_tags: usize,
    /// Longest short text (title, tag, department, name, feedback), in characters.
    pub max_short_chars: usize,
    /// Messages of history given to the bot.
    pub bot_history: usize,
    /// Largest page of a list.
    pub max_page: usize,
    /// Size and types of uploaded files.
    pub uploads: UploadLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_chars: 10_000,
            max_attachments: 10,
            max_tags: 32,
            max_short_chars: 2_000,
            bot_history: 20,
            max_page: 200,
            uploads: UploadLimits::default(),
        }
    }
}

/// A page of the event log as one actor may see it.
#[derive(Clone, Debug, PartialEq)]
pub struct EventPage {
    /// The visible events, oldest first.
    pub events: Vec<Event>,
    /// Where the scan stopped: pass it as `after` for the next page.
    pub next_since: u64,
    /// Whether the log may go on past `next_since`.
    pub more: bool,
    /// The log no longer keeps the events right after `after` (retention removed them):
    /// the client must reload what it shows and go on from the head.
    pub resync_required: bool,
}

/// What happens when the bot fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BotFailure {
    /// Queue the conversation for a human (the customer's message is already stored).
    #[default]
    Handoff,
    /// Stay in bot mode and say nothing.
    Ignore,
}

/// Builds an [`Engine`]; every seam has a working default.
///
/// ```
/// use std::sync::Arc;
/// use chat_core::{Engine, memory::MemoryStore};
///
/// let engine = Engine::builder(Arc::new(MemoryStore::new())).build();
/// # let _ = engine;
/// ```
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    credentials: Option<Arc<dyn Credentials>>,
    passwords: Option<Arc<dyn PasswordHasher>>,
    bot: Arc<dyn Bot>,
    router: Arc<dyn Router>,
    bus: Arc<dyn EventBus>,
    blobs: Arc<dyn BlobStore>,
    thumbnails: Option<Arc<dyn Thumbnailer>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    limits: Limits,
    bot_failure: BotFailure,
    retention: EventRetention,
}

impl EngineBuilder {
    /// How customer-account passwords are hashed and checked (default: none; the account
    /// operations then fail with [`Error::Storage`]). The server supplies argon2id.
    pub fn passwords(mut self, passwords: Arc<dyn PasswordHasher>) -> Self {
        self.passwords = Some(passwords);
        self
    }
    /// The bot (default: [`RuleBot`] with its default rules).
    pub fn bot(mut self, bot: Arc<dyn Bot>) -> Self {
        self.bot = bot;
        self
    }
    /// Where staff passwords and visitor tokens live (default: none; the credential
    /// operations then fail with [`Error::Storage`]). The same store as the engine's
    /// events (a [`Backend`](crate::Backend)): a credential change appends its
    /// `credentials_changed` event to the log of the store that keeps the credential.
    pub fn credentials(mut self, credentials: Arc<dyn Credentials>) -> Self {
        self.credentials = Some(credentials);
        self
    }
    /// The router (default: [`LeastLoaded`]).
    pub fn router(mut self, router: Arc<dyn Router>) -> Self {
        self.router = router;
        self
    }
    /// The event bus (default: [`InProcessBus`]).
    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = bus;
        self
    }
    /// Attachment storage (default: [`MemoryBlobStore`]).
    pub fn blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = blobs;
        self
    }

    /// Previews of uploaded images (default: none). With one, an image whose header
    /// declares too many pixels is refused, and others get a thumbnail beside them
    /// ([`thumbnail_key`](crate::thumbnail_key)).
    pub fn thumbnails(mut self, thumbnails: Arc<dyn Thumbnailer>) -> Self {
        self.thumbnails = Some(thumbnails);
        self
    }
    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
    /// Id generation (default: [`V7Ids`]).
    pub fn ids(mut self, ids: Arc<dyn IdGenerator>) -> Self {
        self.ids = ids;
        self
    }
    /// Input limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// What to do when the bot fails.
    pub fn on_bot_failure(mut self, what: BotFailure) -> Self {
        self.bot_failure = what;
        self
    }
    /// How long the event log keeps events (default: [`EventRetention::default`]).
    pub fn event_retention(mut self, retention: EventRetention) -> Self {
        self.retention = retention;
        self
    }
    /// The engine.
    pub fn build(self) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                store: self.store,
                credentials: self.credentials,
                passwords: self.passwords,
                bot: self.bot,
                router: self.router,
                bus: self.bus,
                blobs: self.blobs,
                thumbnails: self.thumbnails,
                clock: self.clock,
                ids: self.ids,
                limits: self.limits,
                bot_failure: self.bot_failure,
                retention: self.retention,
                routing: tokio::sync::Mutex::new(()),
                credential_changes: tokio::sync::watch::Sender::new(0),
            }),
        }
    }
}

/// The support-desk engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    credentials: Option<Arc<dyn Credentials>>,
    passwords: Option<Arc<dyn PasswordHasher>>,
    bot: Arc<dyn Bot>,
    router: Arc<dyn Router>,
    bus: Arc<dyn EventBus>,
    blobs: Arc<dyn BlobStore>,
    thumbnails: Option<Arc<dyn Thumbnailer>>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    limits: Limits,
    bot_failure: BotFailure,
    retention: EventRetention,
    /// Serializes routing passes in this process so two passes cannot both give the
    /// last free slot of one agent away. The assignments themselves are compare-and-swap
    /// writes, so they stay correct across processes.
    routing: tokio::sync::Mutex<()>,
    /// Counts credential changes (passwords, revocations, disabled accounts) in this
    /// process, so what holds a credential open (a socket) re-checks it at once.
    credential_changes: tokio::sync::watch::Sender<u64>,
}

/// How often a compare-and-swap write is retried after another writer got there first.
const CAS_ATTEMPTS: usize = 8;

impl Engine {
    /// Starts building an engine on `store`.
    pub fn builder(store: Arc<dyn Store>) -> EngineBuilder {
        EngineBuilder {
            store,
            credentials: None,
            passwords: None,
            bot: Arc::new(RuleBot::default()),
            router: Arc::new(LeastLoaded),
            bus: Arc::new(InProcessBus::default()),
            blobs: Arc::new(MemoryBlobStore::default()),
            thumbnails: None,
            clock: Arc::new(SystemClock),
            ids: Arc::new(V7Ids),
            limits: Limits::default(),
            bot_failure: BotFailure::default(),
            retention: EventRetention::default(),
        }
    }

    /// Starts building an engine on a backend that stores both domain data and
    /// credentials (what a server runs on).
    pub fn builder_with_backend(backend: Arc<dyn Backend>) -> EngineBuilder {
        let credentials: Arc<dyn Credentials> = backend.clone();
        Self::builder(backend).credentials(credentials)
    }

    /// The event bus: subscribe here for live events.
    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.inner.bus
    }

    /// The attachment store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.inner.blobs
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The input limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Creates a tenant. This is a platform operation: no actor of the new tenant exists
    /// yet, so it is the one call without one.
    pub async fn create_tenant(&self, name: &str, settings: TenantSettings) -> Result<Tenant> {
        let name = self.short_text("name", name)?;
        let tenant = Tenant {
            id: TenantId(self.new_id()),
            name,
            settings,
            settings_version: 0,
            created_at: self.now(),
        };
        self.inner.store.insert_tenant(&tenant).await?;
        Ok(tenant)
    }

    /// The actor's tenant.
    pub async fn tenant(&self, actor: &Actor) -> Result<Tenant> {
        self.resolve(actor).await?;
        self.load_tenant(actor.tenant()).await
    }

    /// The tenant's settings. Admins and the system only: timers, capacity and hours are
    /// the desk's configuration (the widget reads its public part elsewhere).
    pub async fn tenant_settings(&self, actor: &Actor) -> Result<TenantSettings> {
        Ok(self.versioned_tenant_settings(actor).await?.0)
    }

    /// The tenant's settings with their version (`Tenant::settings_version`), the value a
    /// change made from them passes to [`Engine::update_tenant_settings_from`]. Admins and
    /// the system only.
    pub async fn versioned_tenant_settings(&self, actor: &Actor) -> Result<(TenantSettings, u64)> {
        self.admin_only(actor, "read tenant settings").await?;
        let tenant = self.load_tenant(actor.tenant()).await?;
        Ok((tenant.settings, tenant.settings_version))
    }

    /// Whether the tenant's desk is open now (its business hours at the engine clock's now)
    /// and, while closed, when it opens; with the texts a chat widget shows before anyone
    /// writes. Public: it needs no actor, and tells nothing but these.
    pub async fn availability(&self, tenant: TenantId) -> Result<DeskStatus> {
        let settings = self.load_tenant(tenant).await?.settings;
        let now = self.now();
        Ok(DeskStatus {
            open: crate::is_open(&settings, now),
            next_opening: crate::next_opening(&settings, now),
            offline_message: settings.business_hours.and_then(|h| h.offline_message),
            welcome_message: settings.welcome_message,
            prechat_form: settings.prechat_form,
        })
    }

    /// Refuses everyone but admins and the system.
    async fn admin_only(&self, actor: &Actor, what: &'static str) -> Result<Resolved> {
        let who = self.resolve(actor).await?;
        if !matches!(&who, Resolved::System)
            && who
                .staff()
                .is_none_or(|a| a.role != crate::model::Role::Admin)
        {
            return Err(Error::Forbidden(what));
        }
        Ok(who)
    }

    /// Replaces the tenant's settings after [validating](TenantSettings::validate) them, and
    /// publishes a staff-only `settings_updated` event. Admins and the system only; invalid
    /// settings change nothing.
    pub async fn update_tenant_settings(
        &self,
        actor: &Actor,
        settings: TenantSettings,
    ) -> Result<Tenant> {
        self.replace_tenant_settings(actor, None, settings).await
    }

    /// [`Engine::update_tenant_settings`] only over the settings of version `expected`
    /// (what [`Engine::versioned_tenant_settings`] gave): when another change landed since,
    /// [`Error::version_race`] with the current version, and nothing changes. Two admins
    /// editing at once cannot overwrite each other unseen.
    pub async fn update_tenant_settings_from(
        &self,
        actor: &Actor,
        expected: u64,
        settings: TenantSettings,
    ) -> Result<Tenant> {
        self.replace_tenant_settings(actor, Some(expected), settings)
            .await
    }

    async fn replace_tenant_settings(
        &self,
        actor: &Actor,
        expected: Option<u64>,
        settings: TenantSettings,
    ) -> Result<Tenant> {
        self.admin_only(actor, "change tenant settings").await?;
        settings.validate()?;
        let mut tenant = self.load_tenant(actor.tenant()).await?;
        if let Some(expected) = expected
            && expected != tenant.settings_version
        {
            return Err(Error::version_race(
                "settings",
                expected,
                tenant.settings_version,
            ));
        }
        tenant.settings = settings;
        // The store writes it only over the version read here (a compare-and-swap), so a
        // change landing between this read and the write is refused, not overwritten.
        tenant.settings_version += 1;
        let event = self
            .inner
            .store
            .update_tenant_settings(&tenant, self.now())
            .await?;
        self.publish([event]);
        Ok(tenant)
    }

    /// Events after `after` that `actor` may see, oldest first, scanning at most `limit`
    /// events of the log. A client that reconnects with the last sequence it saw gets
    /// exactly what it missed by calling again with `next_since` while `more` is true.
    pub async fn events_since(&self, actor: &Actor, after: u64, limit: usize) -> Result<EventPage> {
        let who = self.resolve(actor).await?;
        let limit = limit.clamp(1, 1000);
        let events = self
            .inner
            .store
            .events_since(actor.tenant(), after, limit)
            .await?;
        let more = events.len() == limit;
        let next_since = events.last().map_or(after, |e| e.seq);
        // Every seq from the log's start is there, so a first event past `after + 1` means
        // the ones between were compacted away.
        let resync_required = events.first().is_some_and(|e| e.seq > after + 1);
        let mut visible = Vec::with_capacity(events.len());
        let mut cache: std::collections::HashMap<ConversationId, Option<Conversation>> =
            Default::default();
        for event in events {
            let conversation = match event.conversation_id {
                Some(id) => match cache.get(&id) {
                    Some(c) => c.clone(),
                    None => {
                        let c = self.inner.store.conversation(actor.tenant(), id).await?;
                        cache.insert(id, c.clone());
                        c
                    }
                },
                None => None,
            };
            if Self::may_see_event(&who, &event, conversation.as_ref()) {
                visible.push(event);
            }
        }
        Ok(EventPage {
            events: visible,
            next_since,
            more,
            resync_required,
        })
    }

    /// Whether a resolved actor may see `event`, given the current state of its
    /// conversation (`None` if it has none or it was deleted). The realtime layer uses the
    /// same rule for live events.
    pub fn may_see_event(
        who: &Resolved,
        event: &Event,
        conversation: Option<&Conversation>,
    ) -> bool {
        if event.staff_only && !who.sees_notes() {
            return false;
        }
        // A mention is addressed to one agent: its colleagues' notifications are not theirs.
        if let crate::model::EventPayload::Mentioned { mention } = &event.payload {
            return matches!(who, Resolved::System)
                || who.staff().is_some_and(|a| a.id == mention.agent_id);
        }
        // A personal canned response is its owner's alone: colleagues neither use it nor
        // learn that it changed.
        let canned_owner = match &event.payload {
            crate::model::EventPayload::CannedResponseUpdated { canned_response } => {
                canned_response.owner_id
            }
            crate::model::EventPayload::CannedResponseDeleted { owner_id, .. } => *owner_id,
            _ => None,
        };
        if let Some(owner) = canned_owner {
            return matches!(who, Resolved::System) || who.staff().is_some_and(|a| a.id == owner);
        }
        // The servers' own signal to re-check credentials: of no use to anyone else.
        if let crate::model::EventPayload::CredentialsChanged = &event.payload {
            return matches!(who, Resolved::System);
        }
        if let crate::model::EventPayload::WebhookPaused { .. } = &event.payload {
            return matches!(who, Resolved::System)
                || who
                    .staff()
                    .is_some_and(|a| a.role == crate::model::Role::Admin);
        }
        match (event.conversation_id, conversation) {
            (None, _) => who.staff().is_some() || matches!(who, Resolved::System),
            (Some(_), Some(c)) => who.scope().contains(c),
            // Deleted conversation: only those who see the whole tenant learn of it.
            (Some(_), None) => who.scope() == crate::store::Scope::Tenant,
        }
    }

    /// Loads what the policy needs about an actor. Staff must exist and be active.
    pub async fn resolve(&self, actor: &Actor) -> Result<Resolved> {
        Ok(match actor {
            Actor::Staff { tenant, agent } => {
                let agent = self
                    .inner
                    .store
                    .agent(*tenant, *agent)
                    .await?
                    .ok_or(Error::Forbidden("unknown staff member"))?;
                if !agent.active {
                    return Err(Error::Forbidden("staff account disabled"));
                }
                Resolved::Staff(Box::new(agent))
            }
            Actor::Customer {
                contact,
                conversation,
                ..
            } => Resolved::Customer {
                contact: *contact,
                conversation: *conversation,
            },
            Actor::Bot { .. } => Resolved::Bot,
            Actor::System { .. } => Resolved::System,
        })
    }

    // ---- helpers shared by the operation modules ----

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn new_id(&self) -> uuid::Uuid {
        self.inner.ids.new_id()
    }

    async fn load_tenant(&self, id: TenantId) -> Result<Tenant> {
        self.inner
            .store
            .tenant(id)
            .await?
            .ok_or(Error::NotFound("tenant"))
    }

    async fn load_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Conversation> {
        self.inner
            .store
            .conversation(tenant, id)
            .await?
            .ok_or(Error::NotFound("conversation"))
    }

    /// Loads a conversation and checks `action` against it.
    async fn authorized(
        &self,
        actor: &Actor,
        id: ConversationId,
        action: Action,
    ) -> Result<(Resolved, Conversation)> {
        let who = self.resolve(actor).await?;
        let conversation = self.load_conversation(actor.tenant(), id).await?;
        who.authorize(action, &conversation)?;
        Ok((who, conversation))
    }

    fn short_text(&self, field: &'static str, text: &str) -> Result<String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::validation(field, "must not be empty"));
        }
        if text.chars().count() > self.inner.limits.max_short_chars {
            return Err(Error::validation(
                field,
                format!(
                    "longer than {} characters",
                    self.inner.limits.max_short_chars
                ),
            ));
        }
        Ok(text.to_owned())
    }

    fn optional_short_text(
        &self,
        field: &'static str,
        text: Option<&str>,
    ) -> Result<Option<String>> {
        match text.map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => self.short_text(field, t).map(Some),
        }
    }

    /// A timeline message from the desk itself.
    /// The desk's notice as a system message: English body, and metadata naming the notice
    /// so clients can show it in their reader's language.
    fn system_message(
        &self,
        conversation: &Conversation,
        notice: crate::model::Notice,
    ) -> NewMessage {
        NewMessage {
            id: MessageId(self.new_id()),
            tenant_id: conversation.tenant_id,
            conversation_id: conversation.id,
            sender: Sender::System,
            kind: MessageKind::Event,
            body: notice.body(),
            attachments: Vec::new(),
            reply_to: None,
            client_message_id: None,
            entities: Vec::new(),
            metadata: notice.metadata(),
            created_at: self.now(),
        }
    }

    fn publish(&self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.inner.bus.publish(Arc::new(event));
        }
    }

    /// Reads a conversation, checks `action`, lets `apply` compute the next state and
    /// writes it with compare-and-swap, retrying from a fresh read when another writer got
    /// there first (`apply` re-checks its rules on every attempt, so of two claims of one
    /// conversation the second sees the first's agent and is refused by its rule, while a
    /// claim that only raced an unrelated write, such as the customer's next message, goes
    /// through). After [`CAS_ATTEMPTS`] lost races the last is reported as
    /// [`Error::Conflict`] ([`ConflictKind::VersionRace`](crate::ConflictKind::VersionRace)).
    async fn change<F>(
        &self,
        actor: &Actor,
        id: ConversationId,
        action: Action,
        apply: F,
    ) -> Result<Committed>
    where
        F: Fn(
            &Resolved,
            &mut Conversation,
        ) -> Result<(
            crate::model::ConversationChange,
            Option<crate::model::Notice>,
        )>,
    {
        let who = self.resolve(actor).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.load_conversation(actor.tenant(), id).await?;
            who.authorize(action, &current)?;
            let mut next = current.clone();
            let (change, note) = apply(&who, &mut next)?;
            next.updated_at = self.now();
            let message = note.map(|notice| self.system_message(&next, notice));
            match self
                .inner
                .store
                .update_conversation(ConversationUpdate {
                    conversation: next,
                    change,
                    message,
                })
                .await
            {
                Ok(committed) => {
                    self.publish(committed.events.iter().cloned());
                    return Ok(committed);
                }
                // Only a lost race is worth another read; other conflicts would repeat.
                Err(Error::Conflict(c))
                    if c.kind() == crate::ConflictKind::VersionRace && attempt < CAS_ATTEMPTS =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
