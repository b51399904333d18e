//! The engine's side of the [feed](crate::feed): opening one, and the log reads it needs.

use crate::error::Result;
use crate::feed::{Feed, FeedConfig, FeedScope};
use crate::ids::{ConversationId, TenantId};
use crate::model::{Conversation, Event};
use crate::policy::Actor;

use super::Engine;

impl Engine {
    /// Follows what `actor` may see of its tenant's event log in `scope`: the events after
    /// `cursor` replayed from the store, then live ones, in order, each once (see
    /// [`crate::feed`]). Without a cursor the feed starts at the head: live events only.
    /// A cursor the log cannot serve (beyond its head, too old) is answered with a
    /// [`Resync`](crate::feed::Resync) as the feed's first item.
    ///
    /// ```
    /// # tokio_test_block_on(async {
    /// use std::sync::Arc;
    /// use chat_core::{Actor, Engine, TenantSettings, memory::MemoryStore};
    /// use chat_core::feed::{FeedItem, FeedScope, ResyncReason};
    ///
    /// let engine = Engine::builder(Arc::new(MemoryStore::new())).build();
    /// let tenant = engine.create_tenant("Acme", TenantSettings::default()).await?.id;
    /// let system = Actor::System { tenant };
    /// // A cursor from another database: the log here is empty.
    /// let mut feed = engine.feed(&system, FeedScope::Tenant, Some(42)).await?;
    /// match feed.next().await? {
    ///     Some(FeedItem::Resync(r)) => assert_eq!(r.reason, ResyncReason::BeyondHead),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<_, chat_core::Error>(()) });
    /// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    /// # }
    /// ```
    pub async fn feed(&self, actor: &Actor, scope: FeedScope, cursor: Option<u64>) -> Result<Feed> {
        Feed::open(self, actor, scope, cursor, FeedConfig::default()).await
    }

    /// [`Engine::feed`] with other limits and timings.
    pub async fn feed_with(
        &self,
        actor: &Actor,
        scope: FeedScope,
        cursor: Option<u64>,
        config: FeedConfig,
    ) -> Result<Feed> {
        Feed::open(self, actor, scope, cursor, config).await
    }

    /// The sequence of the newest event of `actor`'s tenant (0 when there is none): the
    /// cursor a client that just loaded everything continues from.
    pub async fn event_head(&self, actor: &Actor) -> Result<u64> {
        self.resolve(actor).await?;
        self.log_head(actor.tenant()).await
    }

    pub(crate) async fn log_head(&self, tenant: TenantId) -> Result<u64> {
        self.inner.store.event_head(tenant).await
    }

    pub(crate) async fn log_page(
        &self,
        tenant: TenantId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        self.inner.store.events_since(tenant, after, limit).await
    }

    /// A conversation as stored now, whoever asks: the feed checks visibility itself.
    pub(crate) async fn conversation_state(
        &self,
        tenant: TenantId,
        id: ConversationId,
    ) -> Result<Option<Conversation>> {
        self.inner.store.conversation(tenant, id).await
    }
}
