//! A conversation event that refers to its conversation's row instead of copying it.
//!
//! Stores that keep an event log beside the conversations (chat-sqlite, chat-postgres)
//! write the latest `conversation_created` / `conversation_updated` of a conversation
//! without the conversation, which the row holds, and rebuild the event when it is read.
//! What they keep of the payload is [`SlimPayload`]: one type, so both stores keep the
//! same JSON shape (`{"type": "conversation_updated", "change": ...}`, read by queries as
//! `data -> 'payload' ->> 'type'` the same way as a full event's).

use serde::{Deserialize, Serialize};

use crate::model::{Conversation, ConversationChange, EventPayload, NewEvent};

/// A conversation event's payload without its conversation.
///
/// ```
/// # use chat_core::store::SlimPayload;
/// let json = serde_json::to_string(&SlimPayload::ConversationCreated).unwrap();
/// assert_eq!(json, r#"{"type":"conversation_created"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SlimPayload {
    /// A [`EventPayload::ConversationCreated`].
    ConversationCreated,
    /// A [`EventPayload::ConversationUpdated`], with what changed.
    ConversationUpdated {
        /// What changed.
        change: ConversationChange,
    },
}

impl SlimPayload {
    /// The slim form of a conversation event's payload, and its conversation; `None` for
    /// any other event.
    pub fn of(payload: &EventPayload) -> Option<(SlimPayload, &Conversation)> {
        match payload {
            EventPayload::ConversationCreated { conversation } => {
                Some((SlimPayload::ConversationCreated, conversation))
            }
            EventPayload::ConversationUpdated {
                conversation,
                change,
            } => Some((
                SlimPayload::ConversationUpdated {
                    change: change.clone(),
                },
                conversation,
            )),
            _ => None,
        }
    }

    /// The event again, as the engine made it, from the conversation as it was then.
    pub fn rebuild(&self, conversation: &Conversation) -> NewEvent {
        match self {
            SlimPayload::ConversationCreated => NewEvent::conversation_created(conversation),
            SlimPayload::ConversationUpdated { change } => {
                NewEvent::conversation_updated(conversation, change.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SlimPayload;
    use crate::ids::{ContactId, ConversationId, TenantId};
    use crate::mode::Mode;
    use crate::model::{Conversation, ConversationChange, NewEvent};

    /// What `of` keeps, `rebuild` gives back: the same event, for both kinds; the JSON
    /// is the shape the stores' logs already hold.
    #[test]
    fn a_slim_payload_rebuilds_its_event() {
        let now = time::OffsetDateTime::now_utc();
        let conversation = Conversation::new(
            ConversationId(uuid::Uuid::now_v7()),
            TenantId(uuid::Uuid::now_v7()),
            ContactId(uuid::Uuid::now_v7()),
            Mode::Bot,
            now,
        );
        let change = ConversationChange::Mode {
            from: Mode::Bot,
            to: Mode::Queued,
        };
        for event in [
            NewEvent::conversation_created(&conversation),
            NewEvent::conversation_updated(&conversation, change),
        ] {
            let (slim, kept) = SlimPayload::of(&event.payload).expect("a conversation event");
            assert_eq!(kept, &conversation);
            let json = serde_json::to_value(&slim).unwrap();
            assert_eq!(json["type"], event.payload.kind());
            let read: SlimPayload = serde_json::from_value(json).unwrap();
            assert_eq!(read.rebuild(&conversation), event);
        }
        let deleted = NewEvent::conversation_deleted(conversation.tenant_id, conversation.id, now);
        assert!(SlimPayload::of(&deleted.payload).is_none());
    }
}
