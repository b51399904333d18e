//! chat-core's store conformance suite, unchanged, with every call alternating between two
//! stores on one database, as if each request reached another server: what one server
//! wrote, the next one reads, and the rules that hold across servers (versions,
//! sequences, unique keys, client message ids) are PostgreSQL's to keep, not a process's.

use crate::common;

#[cfg(chat_test_postgres)]
mod with_database {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chat_core::store::{
        Appended, CannedQuery, Committed, ConversationPage, ConversationQuery, ConversationUpdate,
        MessageQuery,
    };
    use chat_core::{
        Agent, AgentId, AgentLoad, CannedResponse, Contact, ContactId, Conversation,
        ConversationId, Event, Mention, Message, MessageId, NewMessage, ReadCursor, Result, Store,
        Tenant, TenantId,
    };
    use chat_postgres::PostgresStore;
    use time::OffsetDateTime;

    use super::common::Schema;

    /// Two servers' stores; each call goes to the next one in turn.
    struct TwoNodes {
        nodes: [PostgresStore; 2],
        turn: AtomicUsize,
    }

    impl TwoNodes {
        fn next(&self) -> &PostgresStore {
            &self.nodes[self.turn.fetch_add(1, Ordering::Relaxed) % 2]
        }
    }

    #[async_trait]
    impl Store for TwoNodes {
        async fn insert_tenant(&self, tenant: &Tenant) -> Result<()> {
            self.next().insert_tenant(tenant).await
        }
        async fn update_tenant(&self, tenant: &Tenant) -> Result<()> {
            self.next().update_tenant(tenant).await
        }
        async fn update_tenant_settings(
            &self,
            tenant: &Tenant,
            at: OffsetDateTime,
        ) -> Result<Event> {
            self.next().update_tenant_settings(tenant, at).await
        }
        async fn log_credential_change(
            &self,
            tenant: TenantId,
            at: OffsetDateTime,
        ) -> Result<Event> {
            self.next().log_credential_change(tenant, at).await
        }
        async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
            self.next().tenant(id).await
        }
        async fn insert_contact(&self, contact: &Contact) -> Result<()> {
            self.next().insert_contact(contact).await
        }
        async fn update_contact(&self, contact: &Contact) -> Result<()> {
            self.next().update_contact(contact).await
        }
        async fn contact(&self, tenant: TenantId, id: ContactId) -> Result<Option<Contact>> {
            self.next().contact(tenant, id).await
        }
        async fn list_contacts(
            &self,
            query: &chat_core::store::ContactQuery,
        ) -> Result<Vec<Contact>> {
            self.next().list_contacts(query).await
        }
        async fn verified_contact(&self, tenant: TenantId, email: &str) -> Result<Option<Contact>> {
            self.next().verified_contact(tenant, email).await
        }
        async fn merge_contact(
            &self,
            into: &Contact,
            from: ContactId,
            at: OffsetDateTime,
        ) -> Result<Event> {
            self.next().merge_contact(into, from, at).await
        }
        async fn erase_contact(
            &self,
            erasure: &chat_core::store::ContactErasure,
        ) -> Result<Vec<Event>> {
            self.next().erase_contact(erasure).await
        }
        async fn insert_agent(&self, agent: &Agent) -> Result<Event> {
            self.next().insert_agent(agent).await
        }
        async fn update_agent(&self, agent: &Agent) -> Result<Event> {
            self.next().update_agent(agent).await
        }
        async fn agent(&self, tenant: TenantId, id: AgentId) -> Result<Option<Agent>> {
            self.next().agent(tenant, id).await
        }
        async fn agent_by_email(&self, tenant: TenantId, email: &str) -> Result<Option<Agent>> {
            self.next().agent_by_email(tenant, email).await
        }
        async fn agents(&self, tenant: TenantId) -> Result<Vec<Agent>> {
            self.next().agents(tenant).await
        }
        async fn agent_loads(&self, tenant: TenantId) -> Result<Vec<AgentLoad>> {
            self.next().agent_loads(tenant).await
        }
        async fn create_conversation(
            &self,
            conversation: &Conversation,
            messages: Vec<NewMessage>,
        ) -> Result<Committed> {
            self.next()
                .create_conversation(conversation, messages)
                .await
        }
        async fn update_conversation(&self, update: ConversationUpdate) -> Result<Committed> {
            self.next().update_conversation(update).await
        }
        async fn assign_within_capacity(
            &self,
            update: ConversationUpdate,
            capacity: u32,
        ) -> Result<Committed> {
            self.next().assign_within_capacity(update, capacity).await
        }
        async fn assign_in_turn(
            &self,
            update: ConversationUpdate,
            capacity: u32,
            turn: Option<AgentId>,
        ) -> Result<Committed> {
            self.next().assign_in_turn(update, capacity, turn).await
        }
        async fn routing_turn(&self, tenant: TenantId) -> Result<Option<AgentId>> {
            self.next().routing_turn(tenant).await
        }
        async fn hold_presence(
            &self,
            tenant: TenantId,
            node: uuid::Uuid,
            agents: &[AgentId],
            expires_at: OffsetDateTime,
            at: OffsetDateTime,
        ) -> Result<Vec<Event>> {
            self.next()
                .hold_presence(tenant, node, agents, expires_at, at)
                .await
        }
        async fn release_presence(
            &self,
            tenant: TenantId,
            node: uuid::Uuid,
            agent: AgentId,
            at: OffsetDateTime,
        ) -> Result<Option<Event>> {
            self.next().release_presence(tenant, node, agent, at).await
        }
        async fn lapse_presence(&self, tenant: TenantId, at: OffsetDateTime) -> Result<Vec<Event>> {
            self.next().lapse_presence(tenant, at).await
        }
        async fn delete_conversation(
            &self,
            tenant: TenantId,
            id: ConversationId,
            at: OffsetDateTime,
        ) -> Result<Event> {
            self.next().delete_conversation(tenant, id, at).await
        }
        async fn conversation(
            &self,
            tenant: TenantId,
            id: ConversationId,
        ) -> Result<Option<Conversation>> {
            self.next().conversation(tenant, id).await
        }
        async fn list_conversations(&self, query: &ConversationQuery) -> Result<ConversationPage> {
            self.next().list_conversations(query).await
        }
        async fn queue(&self, tenant: TenantId, limit: usize) -> Result<Vec<Conversation>> {
            self.next().queue(tenant, limit).await
        }
        async fn append_message(&self, message: NewMessage) -> Result<Appended> {
            self.next().append_message(message).await
        }
        async fn update_message(&self, message: &Message) -> Result<Event> {
            self.next().update_message(message).await
        }
        async fn message(&self, tenant: TenantId, id: MessageId) -> Result<Option<Message>> {
            self.next().message(tenant, id).await
        }
        async fn messages(&self, query: &MessageQuery) -> Result<Vec<Message>> {
            self.next().messages(query).await
        }
        async fn set_read_cursor(
            &self,
            cursor: &ReadCursor,
        ) -> Result<(Conversation, Option<Event>)> {
            self.next().set_read_cursor(cursor).await
        }
        async fn read_cursors(
            &self,
            tenant: TenantId,
            conversation: ConversationId,
        ) -> Result<Vec<ReadCursor>> {
            self.next().read_cursors(tenant, conversation).await
        }
        async fn events_since(
            &self,
            tenant: TenantId,
            after: u64,
            limit: usize,
        ) -> Result<Vec<Event>> {
            self.next().events_since(tenant, after, limit).await
        }
        async fn event_head(&self, tenant: TenantId) -> Result<u64> {
            self.next().event_head(tenant).await
        }
        async fn compact_events(
            &self,
            tenant: TenantId,
            through: u64,
            limit: usize,
        ) -> Result<u64> {
            self.next().compact_events(tenant, through, limit).await
        }
        async fn message_hits(&self, query: &chat_core::store::HitQuery) -> Result<Vec<Message>> {
            self.next().message_hits(query).await
        }
        async fn put_canned_response(&self, response: &CannedResponse) -> Result<Event> {
            self.next().put_canned_response(response).await
        }
        async fn delete_canned_response(
            &self,
            response: &CannedResponse,
            at: OffsetDateTime,
        ) -> Result<Event> {
            self.next().delete_canned_response(response, at).await
        }
        async fn canned_responses(&self, query: &CannedQuery) -> Result<Vec<CannedResponse>> {
            self.next().canned_responses(query).await
        }
        async fn record_mentions(&self, mentions: &[Mention]) -> Result<Vec<Event>> {
            self.next().record_mentions(mentions).await
        }
        async fn mentions(
            &self,
            tenant: TenantId,
            agent: AgentId,
            limit: usize,
        ) -> Result<(Vec<Mention>, u64)> {
            self.next().mentions(tenant, agent, limit).await
        }
        async fn read_mentions(
            &self,
            tenant: TenantId,
            agent: AgentId,
            at: OffsetDateTime,
        ) -> Result<u64> {
            self.next().read_mentions(tenant, agent, at).await
        }
        async fn put_webhook(&self, webhook: &chat_core::Webhook) -> Result<()> {
            self.next().put_webhook(webhook).await
        }
        async fn delete_webhook(&self, tenant: TenantId, id: chat_core::WebhookId) -> Result<()> {
            self.next().delete_webhook(tenant, id).await
        }
        async fn put_inbox(&self, inbox: &chat_core::Inbox) -> Result<()> {
            self.next().put_inbox(inbox).await
        }
        async fn replace_inbox(
            &self,
            inbox: &chat_core::Inbox,
            seen: OffsetDateTime,
        ) -> Result<bool> {
            self.next().replace_inbox(inbox, seen).await
        }
        async fn delete_inbox(&self, tenant: TenantId, id: chat_core::InboxId) -> Result<()> {
            self.next().delete_inbox(tenant, id).await
        }
        async fn inboxes(&self, tenant: TenantId) -> Result<Vec<chat_core::Inbox>> {
            self.next().inboxes(tenant).await
        }
        async fn inbox(&self, id: chat_core::InboxId) -> Result<Option<chat_core::Inbox>> {
            self.next().inbox(id).await
        }
        async fn inbox_thread(
            &self,
            inbox: chat_core::InboxId,
            external: &str,
        ) -> Result<Option<chat_core::ConversationId>> {
            self.next().inbox_thread(inbox, external).await
        }
        async fn link_inbox_thread(
            &self,
            tenant: TenantId,
            inbox: chat_core::InboxId,
            external: &str,
            conversation: chat_core::ConversationId,
        ) -> Result<chat_core::ConversationId> {
            self.next()
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
            self.next()
                .poll_inbox(inbox, node, offset, now, until)
                .await
        }
        async fn queue_mail(
            &self,
            mail: &chat_core::Mail,
            once_since: Option<time::OffsetDateTime>,
        ) -> Result<bool> {
            self.next().queue_mail(mail, once_since).await
        }
        async fn claim_mails(
            &self,
            now: time::OffsetDateTime,
            lease_until: time::OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<chat_core::Mail>> {
            self.next().claim_mails(now, lease_until, limit).await
        }
        async fn record_mail(&self, outcome: &chat_core::MailOutcome) -> Result<()> {
            self.next().record_mail(outcome).await
        }
        async fn mails(&self, tenant: TenantId, limit: usize) -> Result<Vec<chat_core::Mail>> {
            self.next().mails(tenant, limit).await
        }
        async fn webhooks(&self, tenant: TenantId) -> Result<Vec<chat_core::Webhook>> {
            self.next().webhooks(tenant).await
        }
        async fn claim_deliveries(
            &self,
            now: time::OffsetDateTime,
            lease_until: time::OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<chat_core::Delivery>> {
            self.next().claim_deliveries(now, lease_until, limit).await
        }
        async fn record_delivery(
            &self,
            outcome: &chat_core::DeliveryOutcome,
        ) -> Result<Option<chat_core::Event>> {
            self.next().record_delivery(outcome).await
        }
        async fn deliveries(
            &self,
            tenant: TenantId,
            webhook: chat_core::WebhookId,
            before: Option<u64>,
            limit: usize,
        ) -> Result<Vec<chat_core::Delivery>> {
            self.next().deliveries(tenant, webhook, before, limit).await
        }
        async fn redeliver(
            &self,
            tenant: TenantId,
            webhook: chat_core::WebhookId,
            seq: u64,
            now: time::OffsetDateTime,
        ) -> Result<chat_core::Delivery> {
            self.next().redeliver(tenant, webhook, seq, now).await
        }

        async fn report_rows(
            &self,
            query: &chat_core::report::ReportQuery,
            by: Option<chat_core::report::Dimension>,
        ) -> Result<Vec<chat_core::report::ReportRow>> {
            self.next().report_rows(query, by).await
        }
        async fn report_series(
            &self,
            query: &chat_core::report::ReportQuery,
            bounds: &[time::OffsetDateTime],
        ) -> Result<Vec<chat_core::report::SeriesPoint>> {
            self.next().report_series(query, bounds).await
        }
        async fn report_feedback(
            &self,
            query: &chat_core::report::ReportQuery,
            limit: usize,
        ) -> Result<Vec<chat_core::report::Feedback>> {
            self.next().report_feedback(query, limit).await
        }
        async fn export_tenant(
            &self,
            tenant: TenantId,
            options: chat_core::export::ExportOptions,
            out: chat_core::export::ExportSink,
        ) -> Result<u64> {
            self.next().export_tenant(tenant, options, out).await
        }
    }

    async fn two_nodes() -> (Arc<dyn Store>, Schema) {
        let schema = Schema::create().await;
        let nodes = [schema.store().await, schema.store().await];
        let store = TwoNodes {
            nodes,
            turn: AtomicUsize::new(0),
        };
        (Arc::new(store), schema)
    }

    chat_core::store_conformance_tests!(two_nodes);
}

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}
