//! Small integer chat numbers for frontends written against integer ids (`chat_id: 1`),
//! mapped onto the engine's UUIDs.
//!
//! A number is kept in the conversation's metadata under [`CHAT_NUMBER`], so it lives in
//! the database with the conversation; [`ChatNumbers::load`] rebuilds the map from there
//! at start. Numbers are per tenant and dense (1, 2, 3 ...), so they are guessable: they
//! must never grant anything. Every route that takes one authorizes the caller on the
//! conversation it names, and answers "not found" alike for a number that does not exist
//! and one the caller may not see.

use std::collections::BTreeMap;
use std::sync::RwLock;

use chat_core::{
    Actor, Conversation, ConversationFilter, ConversationId, Engine, OpenConversation, Opened,
    TenantId,
};

/// The metadata key holding a conversation's number.
pub const CHAT_NUMBER: &str = "chat_id";

/// Chat number ⇄ conversation id, for one tenant.
#[derive(Default)]
pub struct ChatNumbers {
    map: RwLock<BTreeMap<u64, ConversationId>>,
    /// Held while a number is handed out and its conversation opened, so two openings
    /// never take the same number.
    allocating: tokio::sync::Mutex<()>,
}

impl ChatNumbers {
    /// Reads every numbered conversation of the tenant.
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
                if let Some(n) = number_of(c) {
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

    /// Whether no conversation of the tenant has a number yet.
    pub fn is_empty(&self) -> bool {
        self.map.read().expect("never poisoned").is_empty()
    }

    /// Opens a conversation with the next free number in its metadata and records it.
    /// The number is taken only if the opening succeeds.
    pub async fn open(
        &self,
        engine: &Engine,
        actor: &Actor,
        mut input: OpenConversation,
    ) -> chat_core::Result<(u64, Opened)> {
        let _held = self.allocating.lock().await;
        let number = self.next();
        input
            .metadata
            .insert(CHAT_NUMBER.to_owned(), number.to_string());
        let opened = engine.open_conversation(actor, input).await?;
        self.map
            .write()
            .expect("never poisoned")
            .insert(number, opened.conversation.id);
        Ok((number, opened))
    }

    /// Gives a conversation opened elsewhere (through a channel's inbox, or the `/v1` API)
    /// the next free number, so a frontend that knows only numbers lists it too; `extra`
    /// metadata (a display name, say) is written first. Returns the conversation as it is
    /// now, and its number; one that has a number keeps it. The number is written last, so
    /// an adoption cut short leaves no number and is done again on the next call.
    pub async fn adopt(
        &self,
        engine: &Engine,
        actor: &Actor,
        id: ConversationId,
        extra: &[(&str, &str)],
    ) -> chat_core::Result<(u64, Conversation)> {
        let _held = self.allocating.lock().await;
        // Read under the lock: another request may have adopted it a moment ago.
        let c = engine.conversation(actor, id).await?;
        if let Some(n) = number_of(&c) {
            return Ok((n, c));
        }
        for (key, value) in extra {
            engine
                .set_conversation_metadata(actor, id, key, Some(value))
                .await?;
        }
        let number = self.next();
        let c = engine
            .set_conversation_metadata(actor, id, CHAT_NUMBER, Some(&number.to_string()))
            .await?;
        self.map.write().expect("never poisoned").insert(number, id);
        Ok((number, c))
    }

    /// The number after the highest taken (callers hold `allocating`).
    fn next(&self) -> u64 {
        self.map
            .read()
            .expect("never poisoned")
            .keys()
            .next_back()
            .map_or(1, |n| n + 1)
    }
}

/// A conversation's number, if it has one.
pub fn number_of(c: &Conversation) -> Option<u64> {
    c.metadata.get(CHAT_NUMBER).and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chat_core::memory::MemoryStore;
    use chat_core::{ContactInput, TenantSettings};

    use super::*;

    #[tokio::test]
    async fn numbers_are_dense_per_tenant_and_survive_a_reload() {
        let engine = Engine::builder_with_backend(Arc::new(MemoryStore::new())).build();
        let a = engine
            .create_tenant("A", TenantSettings::default())
            .await
            .unwrap()
            .id;
        let b = engine
            .create_tenant("B", TenantSettings::default())
            .await
            .unwrap()
            .id;
        let numbers = ChatNumbers::load(&engine, a).await.unwrap();
        let open = |email: &str| OpenConversation {
            contact: ContactInput {
                email: Some(email.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let system = Actor::System { tenant: a };
        let (one, first) = numbers
            .open(&engine, &system, open("a@x.example"))
            .await
            .unwrap();
        let (two, second) = numbers
            .open(&engine, &system, open("b@x.example"))
            .await
            .unwrap();
        assert_eq!((one, two), (1, 2));
        assert_eq!(number_of(&second.conversation), Some(2));
        // A failed opening takes no number.
        assert!(
            numbers
                .open(&engine, &system, open("not an e-mail"))
                .await
                .is_err()
        );

        let reloaded = ChatNumbers::load(&engine, a).await.unwrap();
        assert_eq!(reloaded.conversation(1), Some(first.conversation.id));
        assert_eq!(reloaded.conversation(2), Some(second.conversation.id));
        assert_eq!(reloaded.conversation(3), None);
        // Another tenant counts on its own.
        let other = ChatNumbers::load(&engine, b).await.unwrap();
        let (n, _) = other
            .open(&engine, &Actor::System { tenant: b }, open("a@x.example"))
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(other.conversation(2), None);

        // A conversation opened without a number (a channel's inbox) is adopted with the
        // next one and its extra metadata, once; the number survives a reload.
        let outside = engine
            .open_conversation(&system, open("c@x.example"))
            .await
            .unwrap()
            .conversation;
        let (three, adopted) = numbers
            .adopt(&engine, &system, outside.id, &[("customer_name", "Cleo")])
            .await
            .unwrap();
        assert_eq!(three, 3);
        assert_eq!(adopted.metadata["customer_name"], "Cleo");
        let (again, _) = numbers
            .adopt(&engine, &system, outside.id, &[])
            .await
            .unwrap();
        assert_eq!(again, 3);
        let reloaded = ChatNumbers::load(&engine, a).await.unwrap();
        assert_eq!(reloaded.conversation(3), Some(outside.id));
    }
}
