//! The documented answers to each kind of failure, over a real listener: a busy database is
//! 503 `storage_busy` with `Retry-After`, a lost race 409 `version_conflict` with the version
//! stored now, and an expired visitor token (by the engine's clock) 401.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chat_core::store::{
    Appended, Committed, ConversationPage, ConversationQuery, ConversationUpdate, MessageQuery,
};
use chat_core::{
    Actor, Agent, AgentId, AgentLoad, Contact, ContactId, Conversation, ConversationChange,
    ConversationId, Engine, Event, ManualClock, Message, MessageId, NewMessage, Priority,
    ReadCursor, Result, Role, Store, Tenant, TenantId, TenantSettings,
};
use chat_server::Config;
use chat_server::testing::TestServer;
use chat_sqlite::{Options, SqliteStore};
use hyper::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

fn config(tenant: TenantId) -> Config {
    let mut config = Config::new(common::SECRET);
    config.default_tenant = Some(tenant);
    config.limits.per_ip_rps = 0.0;
    config.limits.per_token_rps = 0.0;
    config
}

fn first_visit() -> serde_json::Value {
    json!({ "contact": { "name": "Jo", "email": "jo@shop.example" } })
}

#[tokio::test]
async fn a_database_locked_by_another_connection_is_503_storage_busy_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    // A short busy timeout, so the locked write gives up quickly instead of after 5 s.
    let options = Options::default().busy_timeout(Duration::from_millis(100));
    let store = Arc::new(SqliteStore::open_with(&path, options).unwrap());
    let engine = Engine::builder_with_backend(store).build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let server = TestServer::start(engine, config(tenant), None).await;

    // Another process (here a second connection) holds the database's write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let refused = server.post("/v1/conversations", None, first_visit()).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "storage_busy"),
        "{}",
        refused.text
    );
    assert_eq!(refused.headers["retry-after"], "1");
    // SQLite's own words and the file's path stay in the log.
    let dir_name = dir.path().to_string_lossy();
    assert!(
        !refused.text.contains(dir_name.as_ref()),
        "{}",
        refused.text
    );
    assert!(!refused.text.contains("locked"), "{}", refused.text);

    // Retried once the lock is gone, the same request succeeds: the refused one left nothing.
    other.execute_batch("COMMIT").unwrap();
    let opened = server.post("/v1/conversations", None, first_visit()).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    server.stop().await;
}

/// The SQLite store, with a rival writer that can be armed to commit a change to a
/// conversation between the engine's read and its compare-and-swap write: the race a
/// customer's message or a colleague's edit produces at the moment of a claim, made to
/// happen for the next `rivals` writes. It can also be armed with an older copy of a
/// conversation (`stale`) to answer the next read of it: a store reading from a copy a
/// moment behind the latest commit.
struct RivalWriter {
    inner: Arc<SqliteStore>,
    rivals: AtomicUsize,
    stale: std::sync::Mutex<Option<Conversation>>,
}

#[async_trait]
impl Store for RivalWriter {
    async fn update_conversation(&self, update: ConversationUpdate) -> Result<Committed> {
        if self
            .rivals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            // The rival read the same stored state and changes only its details.
            let next = &update.conversation;
            let mut rival = self
                .inner
                .conversation(next.tenant_id, next.id)
                .await?
                .expect("the conversation being updated exists");
            rival.priority = Priority::High;
            rival.tags = vec!["vip".into()];
            let rival = ConversationUpdate {
                conversation: rival,
                change: ConversationChange::Details,
                message: None,
            };
            self.inner.update_conversation(rival).await?;
        }
        self.inner.update_conversation(update).await
    }

    // Everything else goes straight to SQLite.
    async fn assign_within_capacity(
        &self,
        update: ConversationUpdate,
        capacity: u32,
    ) -> Result<Committed> {
        self.inner.assign_within_capacity(update, capacity).await
    }
    async fn assign_in_turn(
        &self,
        update: ConversationUpdate,
        capacity: u32,
        turn: Option<chat_core::AgentId>,
    ) -> Result<Committed> {
        self.inner.assign_in_turn(update, capacity, turn).await
    }
    async fn routing_turn(&self, tenant: TenantId) -> Result<Option<chat_core::AgentId>> {
        self.inner.routing_turn(tenant).await
    }
    async fn hold_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agents: &[chat_core::AgentId],
        expires_at: time::OffsetDateTime,
        at: time::OffsetDateTime,
    ) -> Result<Vec<chat_core::Event>> {
        self.inner
            .hold_presence(tenant, node, agents, expires_at, at)
            .await
    }
    async fn release_presence(
        &self,
        tenant: TenantId,
        node: uuid::Uuid,
        agent: chat_core::AgentId,
        at: time::OffsetDateTime,
    ) -> Result<Option<chat_core::Event>> {
        self.inner.release_presence(tenant, node, agent, at).await
    }
    async fn lapse_presence(
        &self,
        tenant: TenantId,
        at: time::OffsetDateTime,
    ) -> Result<Vec<chat_core::Event>> {
        self.inner.lapse_presence(tenant, at).await
    }
    async fn insert_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.inner.insert_tenant(tenant).await
    }
    async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.inner.update_tenant(tenant).await
    }
    async fn update_tenant_settings(
        &self,
        tenant: &Tenant,
        at: time::OffsetDateTime,
    ) -> Result<chat_core::Event> {
        self.inner.update_tenant_settings(tenant, at).await
    }
    async fn log_credential_change(
        &self,
        tenant: TenantId,
        at: time::OffsetDateTime,
    ) -> Result<chat_core::Event> {
        self.inner.log_credential_change(tenant, at).await
    }
    async fn message_hits(
        &self,
        query: &chat_core::store::HitQuery,
    ) -> Result<Vec<chat_core::Message>> {
        self.inner.message_hits(query).await
    }
    async fn put_canned_response(
        &self,
        response: &chat_core::CannedResponse,
    ) -> Result<chat_core::Event> {
        self.inner.put_canned_response(response).await
    }
    async fn delete_canned_response(
        &self,
        response: &chat_core::CannedResponse,
        at: time::OffsetDateTime,
    ) -> Result<chat_core::Event> {
        self.inner.delete_canned_response(response, at).await
    }
    async fn canned_responses(
        &self,
        query: &chat_core::store::CannedQuery,
    ) -> Result<Vec<chat_core::CannedResponse>> {
        self.inner.canned_responses(query).await
    }
    async fn record_mentions(&self, mentions: &[chat_core::Mention]) -> Result<Vec<Event>> {
        self.inner.record_mentions(mentions).await
    }
    async fn mentions(
        &self,
        tenant: TenantId,
        agent: AgentId,
        limit: usize,
    ) -> Result<(Vec<chat_core::Mention>, u64)> {
        self.inner.mentions(tenant, agent, limit).await
    }
    async fn read_mentions(
        &self,
        tenant: TenantId,
        agent: AgentId,
        at: time::OffsetDateTime,
    ) -> Result<u64> {
        self.inner.read_mentions(tenant, agent, at).await
    }
    async fn put_webhook(&self, webhook: &chat_core::Webhook) -> Result<()> {
        self.inner.put_webhook(webhook).await
    }
    async fn delete_webhook(&self, tenant: TenantId, id: chat_core::WebhookId) -> Result<()> {
        self.inner.delete_webhook(tenant, id).await
    }
    async fn put_inbox(&self, inbox: &chat_core::Inbox) -> Result<()> {
        self.inner.put_inbox(inbox).await
    }
    async fn replace_inbox(&self, inbox: &chat_core::Inbox, seen: OffsetDateTime) -> Result<bool> {
        self.inner.replace_inbox(inbox, seen).await
    }
    async fn delete_inbox(&self, tenant: TenantId, id: chat_core::InboxId) -> Result<()> {
        self.inner.delete_inbox(tenant, id).await
    }
    async fn inboxes(&self, tenant: TenantId) -> Result<Vec<chat_core::Inbox>> {
        self.inner.inboxes(tenant).await
    }
    async fn inbox(&self, id: chat_core::InboxId) -> Result<Option<chat_core::Inbox>> {
        self.inner.inbox(id).await
    }
    async fn inbox_thread(
        &self,
        inbox: chat_core::InboxId,
        external: &str,
    ) -> Result<Option<chat_core::ConversationId>> {
        self.inner.inbox_thread(inbox, external).await
    }
    async fn link_inbox_thread(
        &self,
        tenant: TenantId,
        inbox: chat_core::InboxId,
        external: &str,
        conversation: chat_core::ConversationId,
    ) -> Result<chat_core::ConversationId> {
        self.inner
            .link_inbox_thread(tenant, inbox, external, conversation)
            .await
    }
    async fn poll_inbox(
        &self,
        inbox: chat_core::InboxId,
        node: &str,
        offset: i64,
        now: time::OffsetDateTime,
        until: time::OffsetDateTime,
    ) -> Result<Option<i64>> {
        self.inner.poll_inbox(inbox, node, offset, now, until).await
    }
    async fn queue_mail(
        &self,
        mail: &chat_core::Mail,
        once_since: Option<time::OffsetDateTime>,
    ) -> Result<bool> {
        self.inner.queue_mail(mail, once_since).await
    }
    async fn claim_mails(
        &self,
        now: time::OffsetDateTime,
        lease_until: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<chat_core::Mail>> {
        self.inner.claim_mails(now, lease_until, limit).await
    }
    async fn record_mail(&self, outcome: &chat_core::MailOutcome) -> Result<()> {
        self.inner.record_mail(outcome).await
    }
    async fn mails(&self, tenant: TenantId, limit: usize) -> Result<Vec<chat_core::Mail>> {
        self.inner.mails(tenant, limit).await
    }
    async fn webhooks(&self, tenant: TenantId) -> Result<Vec<chat_core::Webhook>> {
        self.inner.webhooks(tenant).await
    }
    async fn claim_deliveries(
        &self,
        now: time::OffsetDateTime,
        lease_until: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<chat_core::Delivery>> {
        self.inner.claim_deliveries(now, lease_until, limit).await
    }
    async fn record_delivery(
        &self,
        outcome: &chat_core::DeliveryOutcome,
    ) -> Result<Option<chat_core::Event>> {
        self.inner.record_delivery(outcome).await
    }
    async fn deliveries(
        &self,
        tenant: TenantId,
        webhook: chat_core::WebhookId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<chat_core::Delivery>> {
        self.inner.deliveries(tenant, webhook, before, limit).await
    }
    async fn redeliver(
        &self,
        tenant: TenantId,
        webhook: chat_core::WebhookId,
        seq: u64,
        now: time::OffsetDateTime,
    ) -> Result<chat_core::Delivery> {
        self.inner.redeliver(tenant, webhook, seq, now).await
    }

    async fn report_rows(
        &self,
        query: &chat_core::report::ReportQuery,
        by: Option<chat_core::report::Dimension>,
    ) -> Result<Vec<chat_core::report::ReportRow>> {
        self.inner.report_rows(query, by).await
    }
    async fn report_series(
        &self,
        query: &chat_core::report::ReportQuery,
        bounds: &[time::OffsetDateTime],
    ) -> Result<Vec<chat_core::report::SeriesPoint>> {
        self.inner.report_series(query, bounds).await
    }
    async fn report_feedback(
        &self,
        query: &chat_core::report::ReportQuery,
        limit: usize,
    ) -> Result<Vec<chat_core::report::Feedback>> {
        self.inner.report_feedback(query, limit).await
    }
    async fn export_tenant(
        &self,
        tenant: TenantId,
        options: chat_core::export::ExportOptions,
        out: chat_core::export::ExportSink,
    ) -> Result<u64> {
        self.inner.export_tenant(tenant, options, out).await
    }
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        self.inner.tenant(id).await
    }
    async fn insert_contact(&self, contact: &Contact) -> Result<()> {
        self.inner.insert_contact(contact).await
    }
    async fn update_contact(&self, contact: &Contact) -> Result<()> {
        self.inner.update_contact(contact).await
    }
    async fn contact(&self, tenant: TenantId, id: ContactId) -> Result<Option<Contact>> {
        self.inner.contact(tenant, id).await
    }
    async fn verified_contact(&self, tenant: TenantId, email: &str) -> Result<Option<Contact>> {
        self.inner.verified_contact(tenant, email).await
    }
    async fn list_contacts(&self, query: &chat_core::store::ContactQuery) -> Result<Vec<Contact>> {
        self.inner.list_contacts(query).await
    }
    async fn merge_contact(
        &self,
        into: &Contact,
        from: ContactId,
        at: OffsetDateTime,
    ) -> Result<Event> {
        self.inner.merge_contact(into, from, at).await
    }
    async fn erase_contact(
        &self,
        erasure: &chat_core::store::ContactErasure,
    ) -> Result<Vec<Event>> {
        self.inner.erase_contact(erasure).await
    }
    async fn insert_agent(&self, agent: &Agent) -> Result<Event> {
        self.inner.insert_agent(agent).await
    }
    async fn update_agent(&self, agent: &Agent) -> Result<Event> {
        self.inner.update_agent(agent).await
    }
    async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<Agent>> {
        self.inner.agent(tenant, id).await
    }
    async fn agent_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Agent>> {
        self.inner.agent_by_email(tenant, email).await
    }
    async fn agents(&self, tenant: TenantId) -> Result<Vec<Agent>> {
        self.inner.agents(tenant).await
    }
    async fn agent_loads(&self, tenant: TenantId) -> Result<Vec<AgentLoad>> {
        self.inner.agent_loads(tenant).await
    }
    async fn create_conversation(
        &self,
        conversation: &Conversation,
        messages: Vec<NewMessage>,
    ) -> Result<Committed> {
        self.inner.create_conversation(conversation, messages).await
    }
    async fn delete_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
        at: OffsetDateTime,
    ) -> Result<Event> {
        self.inner.delete_conversation(tenant, id, at).await
    }
    async fn conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        let stale = {
            let mut stale = self.stale.lock().unwrap();
            match stale.as_ref() {
                Some(c) if c.id == id => stale.take(),
                _ => None,
            }
        };
        match stale {
            Some(old) => Ok(Some(old)),
            None => self.inner.conversation(tenant, id).await,
        }
    }
    async fn list_conversations(&self, query: &ConversationQuery) -> Result<ConversationPage> {
        self.inner.list_conversations(query).await
    }
    async fn queue(&self, tenant: TenantId, limit: usize) -> Result<Vec<Conversation>> {
        self.inner.queue(tenant, limit).await
    }
    async fn append_message(&self, message: NewMessage) -> Result<Appended> {
        self.inner.append_message(message).await
    }
    async fn update_message(&self, message: &Message) -> Result<Event> {
        self.inner.update_message(message).await
    }
    async fn message(&self, tenant: TenantId, id: MessageId) -> Result<Option<Message>> {
        self.inner.message(tenant, id).await
    }
    async fn messages(&self, query: &MessageQuery) -> Result<Vec<Message>> {
        self.inner.messages(query).await
    }
    async fn set_read_cursor(&self, cursor: &ReadCursor) -> Result<(Conversation, Option<Event>)> {
        self.inner.set_read_cursor(cursor).await
    }
    async fn read_cursors(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<ReadCursor>> {
        self.inner.read_cursors(tenant, conversation).await
    }
    async fn events_since(&self, tenant: TenantId, after: u64, limit: usize) -> Result<Vec<Event>> {
        self.inner.events_since(tenant, after, limit).await
    }
    async fn event_head(&self, tenant: TenantId) -> Result<u64> {
        self.inner.event_head(tenant).await
    }
    async fn compact_events(&self, tenant: TenantId, through: u64, limit: usize) -> Result<u64> {
        self.inner.compact_events(tenant, through, limit).await
    }
}

/// A server on a [`RivalWriter`], a supervisor's token and a conversation in `bot` mode.
async fn rival_desk(dir: &std::path::Path) -> (TestServer, Arc<RivalWriter>, String, String) {
    let sqlite = Arc::new(SqliteStore::open(dir.join("chat.db")).unwrap());
    let store = Arc::new(RivalWriter {
        inner: sqlite.clone(),
        rivals: AtomicUsize::new(0),
        stale: std::sync::Mutex::new(None),
    });
    let engine = Engine::builder(store.clone())
        .credentials(sqlite)
        .passwords(Arc::new(chat_server::auth::Argon2Passwords))
        .build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let system = Actor::System { tenant };
    let agent = engine
        .create_agent(
            &system,
            chat_core::NewAgent {
                name: "Ana".into(),
                email: "ana@acme.example".into(),
                // A supervisor sees the whole tenant, bot-mode conversations included.
                role: Role::Supervisor,
                capacity: None,
                departments: Vec::new(),
            },
        )
        .await
        .unwrap();
    engine
        .set_password(
            &system,
            agent.id,
            &chat_server::auth::hash_password(common::PASSWORD).unwrap(),
        )
        .await
        .unwrap();
    let server = TestServer::start(engine, config(tenant), None).await;
    let login = server
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": "ana@acme.example", "password": common::PASSWORD }),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let ana = login.body["access_token"].as_str().unwrap().to_owned();
    let opened = server.post("/v1/conversations", None, first_visit()).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let id = opened.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (server, store, ana, id)
}

#[tokio::test]
async fn a_claim_that_loses_every_race_is_409_version_conflict_with_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let (server, store, ana, id) = rival_desk(dir.path()).await;

    // A rival write lands before each of the claim's attempts: it gives up at last.
    store.rivals.store(1_000, Ordering::SeqCst);
    let lost = server
        .post(
            &format!("/v1/conversations/{id}/claim"),
            Some(&ana),
            json!({}),
        )
        .await;
    let left = store.rivals.swap(0, Ordering::SeqCst);
    assert_eq!(
        (lost.status, lost.error_code()),
        (StatusCode::CONFLICT, "version_conflict"),
        "{}",
        lost.text
    );
    assert!(
        left < 1_000 - 1,
        "the claim was tried again after its first lost race"
    );
    // The version the rival's write left, as a fresh read shows it.
    let now = server
        .get(&format!("/v1/conversations/{id}"), Some(&ana))
        .await;
    assert_eq!(now.status, StatusCode::OK, "{}", now.text);
    assert_eq!(
        now.body["priority"], "high",
        "the rival's write is what won"
    );
    assert_eq!(now.body["mode"], "bot", "the claim changed nothing");
    assert_eq!(
        lost.body["error"]["current_version"], now.body["version"],
        "{}",
        lost.text
    );
    // Trying again once the rivals are quiet succeeds.
    let claimed = server
        .post(
            &format!("/v1/conversations/{id}/claim"),
            Some(&ana),
            json!({}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);
    server.stop().await;
}

/// The soak's one failed request: an agent's reply to a conversation that had gone back to
/// the queue claimed it, lost the race to another write (the customer's message), and was
/// answered 409 although nobody else had taken the conversation.
#[tokio::test]
async fn a_claim_that_loses_a_race_to_an_unrelated_write_is_tried_again_and_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let (server, store, ana, id) = rival_desk(dir.path()).await;

    store.rivals.store(1, Ordering::SeqCst);
    let claimed = server
        .post(
            &format!("/v1/conversations/{id}/claim"),
            Some(&ana),
            json!({}),
        )
        .await;
    assert_eq!(store.rivals.load(Ordering::SeqCst), 0, "the rival wrote");
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);
    assert_eq!(claimed.body["mode"], "agent", "{}", claimed.text);
    // Both writes are there: the rival's details and the claim.
    assert_eq!(claimed.body["priority"], "high", "{}", claimed.text);

    // The same through a reply, which claims a conversation it finds unclaimed.
    let opened = server.post("/v1/conversations", None, first_visit()).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let other = opened.body["conversation"]["id"].as_str().unwrap();
    store.rivals.store(1, Ordering::SeqCst);
    let replied = server
        .post(
            &format!("/v1/conversations/{other}/messages"),
            Some(&ana),
            json!({ "body": "on its way" }),
        )
        .await;
    assert_eq!(store.rivals.load(Ordering::SeqCst), 0, "the rival wrote");
    assert_eq!(replied.status, StatusCode::CREATED, "{}", replied.text);
    let now = server
        .get(&format!("/v1/conversations/{other}"), Some(&ana))
        .await;
    assert_eq!(
        (&now.body["mode"], &now.body["priority"]),
        (&json!("agent"), &json!("high")),
        "{}",
        now.text
    );
    server.stop().await;
}

/// The soak's other failed reply: an agent replied to a conversation the routing pass had
/// just given it, the read of the conversation came from a copy a moment behind that
/// commit (still queued), so the reply set out to claim it and was answered 409 "already
/// has an agent": the agent itself.
#[tokio::test]
async fn an_owners_reply_read_from_a_copy_before_its_assignment_is_posted_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, store, ana, id) = rival_desk(dir.path()).await;
    let seen = server
        .get(&format!("/v1/conversations/{id}"), Some(&ana))
        .await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    let tenant: TenantId = serde_json::from_value(seen.body["tenant_id"].clone()).unwrap();
    let before = store
        .inner
        .conversation(tenant, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let claimed = server
        .post(
            &format!("/v1/conversations/{id}/claim"),
            Some(&ana),
            json!({}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);

    // The reply's first read answers the conversation as it was before Ana took it.
    *store.stale.lock().unwrap() = Some(before);
    let replied = server
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&ana),
            json!({ "body": "on its way" }),
        )
        .await;
    assert!(
        store.stale.lock().unwrap().is_none(),
        "the old copy was read"
    );
    assert_eq!(replied.status, StatusCode::CREATED, "{}", replied.text);
    let now = server
        .get(&format!("/v1/conversations/{id}"), Some(&ana))
        .await;
    assert_eq!(
        (&now.body["mode"], &now.body["assigned_agent_id"]),
        (&json!("agent"), &claimed.body["assigned_agent_id"]),
        "{}",
        now.text
    );
    server.stop().await;
}

#[tokio::test]
async fn a_visitor_token_past_its_expiry_on_the_engine_clock_is_refused() {
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::parse(
            "2026-03-02T09:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder_with_backend(common::backend(dir.path()))
        .clock(clock.clone())
        .build();
    let tenant = engine
        .create_tenant("Acme", TenantSettings::default())
        .await
        .unwrap()
        .id;
    let mut config = config(tenant);
    config.visitor_token_ttl = Duration::from_secs(3600);
    let server = TestServer::start(engine, config, None).await;
    let opened = server.post("/v1/conversations", None, first_visit()).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let id = opened.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = opened.body["visitor_token"].as_str().unwrap().to_owned();
    let path = format!("/v1/conversations/{id}");

    // Just before the hour is up the token works (and sits in the token cache)...
    clock.advance(time::Duration::minutes(59));
    assert_eq!(server.get(&path, Some(&token)).await.status, StatusCode::OK);
    // ...and once the engine's clock passes its expiry it is refused, cached or not.
    clock.advance(time::Duration::minutes(2));
    let expired = server.get(&path, Some(&token)).await;
    assert_eq!(
        (expired.status, expired.error_code()),
        (StatusCode::UNAUTHORIZED, "unauthorized"),
        "{}",
        expired.text
    );
    server.stop().await;
}
