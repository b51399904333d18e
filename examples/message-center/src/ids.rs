//! The document's integer chat ids, mapped onto the engine's UUIDs.
//!
//! The number is kept in the conversation's metadata (`chat_id`), so it survives restarts
//! with the database; the map is rebuilt from there at start. Numbers are safe to show
//! here: every route that takes one is for staff, and a staff member who names a chat
//! it may not see gets the same 404 as for a chat that does not exist.

use std::collections::BTreeMap;
use std::sync::RwLock;

use chat_core::{Actor, ConversationFilter, ConversationId, Engine, TenantId};

/// The metadata key holding a conversation's number.
pub const CHAT_ID: &str = "chat_id";

/// Chat number ⇄ conversation id, for one tenant.
#[derive(Default)]
pub struct ChatIds {
    map: RwLock<BTreeMap<u64, ConversationId>>,
    /// Held while a number is handed out and its conversation opened, so two creations
    /// never take the same number.
    pub allocating: tokio::sync::Mutex<()>,
}

impl ChatIds {
    /// Reads every conversation's number from the tenant.
    pub async fn load(engine: &Engine, tenant: TenantId) -> chat_core::Result<Self> {
        let system = Actor::System { tenant };
        let mut map = BTreeMap::new();
        let mut cursor = None;
        loop {
            let page = engine
                .list_conversations(
                    &system,
                    ConversationFilter {
                        cursor,
                        limit: Some(engine.limits().max_page),
                        ..Default::default()
                    },
                )
                .await?;
            for c in &page.items {
                if let Some(n) = c.metadata.get(CHAT_ID).and_then(|v| v.parse().ok()) {
                    map.insert(n, c.id);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next.encode()),
                None => break,
            }
        }
        Ok(Self {
            map: RwLock::new(map),
            allocating: Default::default(),
        })
    }

    /// The conversation behind a number.
    pub fn conversation(&self, number: u64) -> Option<ConversationId> {
        self.map
            .read()
            .expect("never poisoned")
            .get(&number)
            .copied()
    }

    /// The next free number (call with `allocating` held).
    pub fn next(&self) -> u64 {
        self.map
            .read()
            .expect("never poisoned")
            .keys()
            .next_back()
            .map_or(1, |n| n + 1)
    }

    /// Records a number handed out.
    pub fn insert(&self, number: u64, id: ConversationId) {
        self.map.write().expect("never poisoned").insert(number, id);
    }
}

/// A conversation's number, if it has one.
pub fn number_of(c: &chat_core::Conversation) -> Option<u64> {
    c.metadata.get(CHAT_ID).and_then(|v| v.parse().ok())
}
