//! Session ids the visitor holds: `session-<ms>-<conversation>-<mac>`.
//!
//! The document lets the browser make up `session-<Date.now()>-<Math.random()>` and then
//! treats knowing it as the right to read and write the chat. `Math.random` is not a
//! secret, so here the server makes the id: the conversation id plus 128 bits of
//! HMAC-SHA256 under a key kept beside the database. Nothing is stored to look an id up
//! (the MAC proves it was issued), ids survive restarts with the key, and an id whose MAC
//! does not verify is "Session not found", exactly like one that never existed.

use chat_core::ConversationId;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of MAC kept in an id (128 bits).
const MAC_BYTES: usize = 16;

/// Issues and checks session ids.
#[derive(Clone)]
pub struct SessionIds {
    key: Vec<u8>,
}

impl SessionIds {
    /// Ids under `key` (at least 32 bytes of secret).
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn mac(&self, id: ConversationId) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"live-chat session:");
        mac.update(id.0.as_bytes());
        mac
    }

    /// The session id of a conversation.
    pub fn issue(&self, id: ConversationId) -> String {
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

    /// The conversation behind a session id, if the id was issued under this key.
    pub fn check(&self, session_id: &str) -> Option<ConversationId> {
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
        (self.issue(id) == session_id).then_some(id)
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
}
