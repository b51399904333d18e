//! A conversation's transcript: the conversation with every message the caller may read,
//! in order (internal notes only for staff, by the same rule as the message list).

use std::collections::BTreeMap;

use super::{Engine, MessagePage};
use crate::error::Result;
use crate::ids::{AgentId, ConversationId};
use crate::model::{Conversation, Message};
use crate::policy::{Action, Actor};

/// Most messages one transcript carries; a longer conversation's transcript ends with the
/// oldest this many, and says so ([`Transcript::truncated`]).
pub const MAX_TRANSCRIPT_MESSAGES: usize = 10_000;

/// What a transcript shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// The conversation.
    pub conversation: Conversation,
    /// Its messages the caller may read, oldest first.
    pub messages: Vec<Message>,
    /// Staff names by id, for staff callers (customers see "Agent").
    pub staff_names: BTreeMap<AgentId, String>,
    /// Whether the caller is staff (and sees internal notes).
    pub for_staff: bool,
    /// Whether messages past [`MAX_TRANSCRIPT_MESSAGES`] were left out.
    pub truncated: bool,
}

impl Engine {
    /// The transcript of a conversation the actor can read.
    pub async fn transcript(&self, actor: &Actor, id: ConversationId) -> Result<Transcript> {
        let (who, conversation) = self.authorized(actor, id, Action::Read).await?;
        let page = self.inner.limits.max_page;
        let mut messages: Vec<Message> = Vec::new();
        let mut truncated = false;
        loop {
            let after = messages.last().map_or(0, |m| m.seq);
            let next = self
                .messages(
                    actor,
                    id,
                    MessagePage {
                        before: None,
                        after: Some(after),
                        limit: Some(page),
                    },
                )
                .await?;
            let full = next.len() == page;
            messages.extend(next);
            if messages.len() >= MAX_TRANSCRIPT_MESSAGES {
                truncated = full || messages.len() > MAX_TRANSCRIPT_MESSAGES;
                messages.truncate(MAX_TRANSCRIPT_MESSAGES);
                break;
            }
            if !full {
                break;
            }
        }
        let for_staff = who.sees_notes() && who.staff().is_some();
        let staff_names = if for_staff {
            self.inner
                .store
                .agents(actor.tenant())
                .await?
                .into_iter()
                .map(|a| (a.id, a.name))
                .collect()
        } else {
            BTreeMap::new()
        };
        Ok(Transcript {
            conversation,
            messages,
            staff_names,
            for_staff,
            truncated,
        })
    }
}
