//! Conversations that live on another channel (WhatsApp, Telegram, e-mail, SMS): the
//! customer never holds a token of ours, so an integration or a staff member relays
//! what the customer wrote, and templates keep a few facts of their own on the
//! conversation.

use super::Engine;
use super::messages::{PostMessage, Posted};
use crate::error::{Error, Result};
use crate::ids::ConversationId;
use crate::model::{Channel, Conversation, ConversationChange};
use crate::policy::{Action, Actor, Resolved};

impl Engine {
    /// Posts `input` as the customer of a conversation on an external channel, on behalf
    /// of staff or the system (a webhook relaying a WhatsApp message, an agent typing in
    /// what a customer said on the phone). Everything a customer's own message does
    /// follows: unread counts, reopening, and the bot's answer in `bot` mode.
    ///
    /// Only staff who may see the conversation and the system may relay, and only on
    /// channels where the customer cannot speak for itself: a widget (`web`) customer
    /// holds its own token, so nobody may put words in its mouth.
    pub async fn post_for_customer(
        &self,
        actor: &Actor,
        id: ConversationId,
        input: PostMessage,
    ) -> Result<Posted> {
        let (who, conversation) = self.authorized(actor, id, Action::Read).await?;
        if !matches!(who, Resolved::Staff(_) | Resolved::System) {
            return Err(Error::Forbidden("post on behalf of a customer"));
        }
        if conversation.channel == Channel::Web {
            return Err(Error::Forbidden("post on behalf of a web customer"));
        }
        let customer = Actor::Customer {
            tenant: conversation.tenant_id,
            contact: conversation.contact_id,
            conversation: Some(conversation.id),
        };
        self.post_message(&customer, id, input).await
    }

    /// Sets (`Some`) or removes (`None`) one metadata entry of a conversation: facts an
    /// embedder keeps beside ours, such as a channel's "online" flag. Same rights as
    /// editing details; keys and values are short texts.
    pub async fn set_conversation_metadata(
        &self,
        actor: &Actor,
        id: ConversationId,
        key: &str,
        value: Option<&str>,
    ) -> Result<Conversation> {
        let key = self.short_text("metadata", key)?;
        let value = match value {
            // An empty value is a value (a cleared field), so no trimming to None here.
            Some(v) if v.chars().count() > self.inner.limits.max_short_chars => {
                return Err(Error::validation("metadata", "value too long"));
            }
            v => v.map(str::to_owned),
        };
        let committed = self
            .change(actor, id, Action::EditDetails, |_, c| {
                match &value {
                    Some(v) => c.metadata.insert(key.clone(), v.clone()),
                    None => c.metadata.remove(&key),
                };
                Ok((ConversationChange::Details, None))
            })
            .await?;
        Ok(committed.conversation)
    }
}
