//! Mentions: `@handle` in an internal note (see [`handles`]) notifies that agent with an
//! event of its own and an unread count, until it reads its mentions.

use super::Engine;
use crate::error::{Error, Result};
use crate::model::{
    Agent, Conversation, ConversationChange, Mention, Message, handles, mentioned_handles,
};
use crate::policy::Actor;
use crate::store::Scope;

impl Engine {
    /// The calling staff member's newest `limit` mentions, newest first, and how many of
    /// all its mentions are unread.
    pub async fn mentions(&self, actor: &Actor, limit: usize) -> Result<(Vec<Mention>, u64)> {
        let who = self.resolve(actor).await?;
        let me = who
            .staff()
            .ok_or(Error::Forbidden("mentions are for staff"))?;
        self.inner
            .store
            .mentions(
                actor.tenant(),
                me.id,
                limit.clamp(1, self.inner.limits.max_page),
            )
            .await
    }

    /// Marks every mention of the calling staff member read; returns how many were unread.
    pub async fn read_mentions(&self, actor: &Actor) -> Result<u64> {
        let who = self.resolve(actor).await?;
        let me = who
            .staff()
            .ok_or(Error::Forbidden("mentions are for staff"))?;
        self.inner
            .store
            .read_mentions(actor.tenant(), me.id, self.now())
            .await
    }

    /// After a note: records a mention for every active colleague it names and publishes
    /// the `mentioned` events. A mentioned agent who could not see the conversation joins
    /// it as a participant, so the mention leads somewhere it may read.
    ///
    /// The note is stored first: a crash in between loses the notification, never the note.
    pub(super) async fn notify_mentions(
        &self,
        author: &Agent,
        conversation: &Conversation,
        note: &Message,
    ) -> Result<()> {
        let named = mentioned_handles(&note.body);
        if named.is_empty() {
            return Ok(());
        }
        let staff = self.inner.store.agents(conversation.tenant_id).await?;
        let mentioned: Vec<&Agent> = staff
            .iter()
            .filter(|a| a.active && a.id != author.id)
            .filter(|a| handles(a).iter().any(|h| named.contains(h)))
            .collect();
        if mentioned.is_empty() {
            return Ok(());
        }
        let outsiders: Vec<_> = mentioned
            .iter()
            .filter(|a| {
                let scope = Scope::Agent {
                    agent: a.id,
                    departments: a.departments.clone(),
                };
                a.role == crate::model::Role::Agent && !scope.contains(conversation)
            })
            .map(|a| a.id)
            .collect();
        if !outsiders.is_empty() {
            let system = Actor::System {
                tenant: conversation.tenant_id,
            };
            self.change(
                &system,
                conversation.id,
                crate::policy::Action::EditDetails,
                |_, c| {
                    for id in &outsiders {
                        if !c.participants.contains(id) {
                            c.participants.push(*id);
                        }
                    }
                    Ok((ConversationChange::Details, None))
                },
            )
            .await?;
        }
        let mentions: Vec<Mention> = mentioned
            .iter()
            .map(|a| Mention {
                tenant_id: conversation.tenant_id,
                agent_id: a.id,
                conversation_id: conversation.id,
                message_id: note.id,
                by: author.id,
                at: note.created_at,
                read_at: None,
            })
            .collect();
        let events = self.inner.store.record_mentions(&mentions).await?;
        self.publish(events);
        Ok(())
    }
}
