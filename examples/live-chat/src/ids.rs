//! Session ids: the ones the server issues, and the ones a widget makes itself.
//!
//! **Issued** ids are `session-<ms>-<conversation>-<mac>`: the conversation id plus 128 bits
//! of HMAC-SHA256 under a key kept beside the database. Nothing is stored to look one up
//! (the MAC proves it was issued), they survive restarts with the key, and an id whose
//! MAC does not verify is "Session not found", exactly like one that never existed. Such
//! an id is its own credential: a site that cannot keep a cookie holds it like a token.
//!
//! **Chosen** ids are what the document's widget sends (`session-${Date.now()}-${Math
//! .random()…}`): new, well-formed ones are accepted at creation and kept in the
//! conversation's metadata under [`CHOSEN_ID`]. `Math.random` is guessable, so a chosen id
//! grants nothing by itself: the browser that created the session holds a cookie with a
//! 256-bit visitor token for it (see [`crate::guest`]), and a request that names a chosen
//! id without that token is "Session not found".

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chat_core::{Actor, ConversationFilter, ConversationId, Engine, TenantId};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of MAC kept in an id (128 bits).
const MAC_BYTES: usize = 16;

/// The conversation metadata key holding a widget-chosen session id.
pub const CHOSEN_ID: &str = "sessionId";

/// Longest session id a widget may choose (the document's are about 30 characters).
pub const MAX_CHOSEN_LEN: usize = 128;
/// Shortest: anything shorter is a typo or a probe, not a widget's id.
pub const MIN_CHOSEN_LEN: usize = 8;

/// Whether `id` may be a widget-chosen session id: 8 to 128 ASCII letters, digits, `-`
/// and `_`. These are safe in a URL path, a query string and a cookie name unescaped.
pub fn well_formed(id: &str) -> bool {
    (MIN_CHOSEN_LEN..=MAX_CHOSEN_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How a session id names its conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Issued by the server: knowing it is the credential.
    Issued,
    /// Chosen by the widget: the guest must also hold the session's visitor token.
    Chosen,
}

#[derive(Default)]
struct Chosen {
    by_id: HashMap<String, ConversationId>,
    by_conversation: HashMap<ConversationId, String>,
}

/// Issues, records and checks session ids. Clones share the chosen ids.
#[derive(Clone)]
pub struct SessionIds {
    key: Arc<Vec<u8>>,
    chosen: Arc<RwLock<Chosen>>,
    /// Held from "is this chosen id free?" until its conversation is recorded, so two
    /// creates with one id never both succeed.
    creating: Arc<tokio::sync::Mutex<()>>,
}

impl SessionIds {
    /// Ids under `key` (at least 32 bytes of secret), with no chosen ids yet.
    pub fn new(key: Vec<u8>) -> Self {
        Self {
            key: Arc::new(key),
            chosen: Arc::default(),
            creating: Arc::default(),
        }
    }

    /// Ids under `key` with the chosen ids of every conversation of the tenant, read
    /// from their metadata.
    pub async fn load(key: Vec<u8>, engine: &Engine, tenant: TenantId) -> chat_core::Result<Self> {
        let ids = Self::new(key);
        let system = Actor::System { tenant };
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
                if let Some(chosen) = c.metadata.get(CHOSEN_ID) {
                    ids.record(chosen, c.id);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next.encode()),
                None => break,
            }
        }
        Ok(ids)
    }

    fn mac(&self, id: ConversationId) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"live-chat session:");
        mac.update(id.0.as_bytes());
        mac
    }

    /// The session id of a conversation: the widget's own if it chose one, else the
    /// issued one.
    pub fn issue(&self, id: ConversationId) -> String {
        if let Some(chosen) = self
            .chosen
            .read()
            .expect("never poisoned")
            .by_conversation
            .get(&id)
        {
            return chosen.clone();
        }
        self.issued(id)
    }

    fn issued(&self, id: ConversationId) -> String {
        let tag = self.mac(id).finalize().into_bytes();
        // Conversation ids are UUIDv7: their timestamp gives the document's `session-<ms>`.
        let ms =
            id.0.get_timestamp()
                .map(|t| {
                    let (secs, nanos) = t.to_unix();
                    secs * 1000 + u64::from(nanos) / 1_000_000
                })
                .unwrap_or(0);
        format!(
            "session-{ms}-{}-{}",
            id.0.simple(),
            hex::encode(&tag[..MAC_BYTES])
        )
    }

    /// The conversation a session id names and how, if it names one. For staff this is
    /// enough (the engine's policy decides what they may see); a guest naming a
    /// [`Kind::Chosen`] id must also prove it holds the session's token.
    pub fn lookup(&self, session_id: &str) -> Option<(ConversationId, Kind)> {
        if let Some(id) = self
            .chosen
            .read()
            .expect("never poisoned")
            .by_id
            .get(session_id)
        {
            return Some((*id, Kind::Chosen));
        }
        self.verify(session_id).map(|id| (id, Kind::Issued))
    }

    /// The conversation behind a session id, issued or chosen (for staff).
    pub fn check(&self, session_id: &str) -> Option<ConversationId> {
        self.lookup(session_id).map(|(id, _)| id)
    }

    /// The conversation behind an issued id, if its MAC verifies under this key.
    fn verify(&self, session_id: &str) -> Option<ConversationId> {
        let rest = session_id.strip_prefix("session-")?;
        let mut parts = rest.split('-');
        let (Some(_ms), Some(uuid), Some(tag_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let id = ConversationId(uuid::Uuid::try_parse(uuid).ok()?);
        let mut tag = [0; MAC_BYTES];
        hex::decode_to_slice(tag_hex, &mut tag).ok()?;
        // Constant-time comparison: the MAC is the secret.
        self.mac(id).verify_truncated_left(&tag).ok()?;
        (self.issued(id) == session_id).then_some(id)
    }

    fn record(&self, chosen: &str, id: ConversationId) {
        let mut map = self.chosen.write().expect("never poisoned");
        map.by_id.insert(chosen.to_owned(), id);
        map.by_conversation.insert(id, chosen.to_owned());
    }

    /// Creates the conversation for a widget-chosen id with `open` unless the id is
    /// taken (then `Ok(None)`), and records it. Creations are serialized, so of two
    /// creates with one id exactly one opens a conversation.
    pub async fn create<F, Fut, T, E>(&self, chosen: &str, open: F) -> Result<Option<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(ConversationId, T), E>>,
    {
        let _creating = self.creating.lock().await;
        if self.lookup(chosen).is_some() {
            return Ok(None);
        }
        let (id, value) = open().await?;
        self.record(chosen, id);
        Ok(Some(value))
    }

    /// Forgets the chosen id of a deleted conversation, so the id is free again.
    pub fn forget(&self, id: ConversationId) {
        let mut map = self.chosen.write().expect("never poisoned");
        if let Some(chosen) = map.by_conversation.remove(&id) {
            map.by_id.remove(&chosen);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_ids_verify_and_altered_ids_do_not() {
        let ids = SessionIds::new(vec![7; 32]);
        let conversation = ConversationId(uuid::Uuid::now_v7());
        let session = ids.issue(conversation);
        assert!(session.starts_with("session-"));
        assert_eq!(ids.check(&session), Some(conversation));
        assert_eq!(ids.lookup(&session), Some((conversation, Kind::Issued)));

        let mut forged = session.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert_eq!(ids.check(&forged), None);
        assert_eq!(ids.check("session-123"), None);
        assert_eq!(ids.check("session-1701691234567-abc123"), None);
        assert_eq!(
            SessionIds::new(vec![8; 32]).check(&session),
            None,
            "another key"
        );
    }

    #[test]
    fn chosen_ids_are_bounded_to_safe_characters() {
        assert!(well_formed("session-1701691234567-abc123xyz"));
        assert!(well_formed("widget_01HZX-abc"));
        assert!(!well_formed("short"), "too short");
        assert!(!well_formed(&"a".repeat(MAX_CHOSEN_LEN + 1)), "too long");
        for bad in [
            "session-1;Path=/",
            "session-12 345",
            "session-../../x",
            "session-1%2F2",
            "séssion-12345",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_chosen_id_names_its_conversation_once_and_is_freed_on_delete() {
        let ids = SessionIds::new(vec![7; 32]);
        let first = ConversationId(uuid::Uuid::now_v7());
        let opened = ids
            .create("session-1701691234567-abc123xyz", || async {
                Ok::<_, ()>((first, ()))
            })
            .await;
        assert_eq!(opened, Ok(Some(())));
        assert_eq!(ids.issue(first), "session-1701691234567-abc123xyz");
        assert_eq!(
            ids.lookup("session-1701691234567-abc123xyz"),
            Some((first, Kind::Chosen))
        );
        let again = ids
            .create("session-1701691234567-abc123xyz", || async {
                Ok::<_, ()>((ConversationId(uuid::Uuid::now_v7()), ()))
            })
            .await;
        assert_eq!(again, Ok(None), "taken ids are never reassigned");
        ids.forget(first);
        assert_eq!(ids.check("session-1701691234567-abc123xyz"), None);
    }
}
