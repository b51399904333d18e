//! Snooze: staff set a conversation they hold aside until a time or the customer's next
//! message; it leaves the active list (`snoozed = false`) and comes back by itself.

use time::OffsetDateTime;

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::{ConversationId, TenantId};
use crate::mode::Mode;
use crate::model::{Conversation, ConversationChange, Snooze, WakeReason};
use crate::policy::{Action, Actor};
use crate::store::{ConversationQuery, Scope};

/// The longest snooze: a year. Longer is closing the conversation.
const MAX_SNOOZE: time::Duration = time::Duration::days(366);

impl Engine {
    /// Snoozes a conversation held by an agent (`agent` or `paused` mode) until `until`,
    /// or with `None` until the customer's next message (which ends every snooze).
    /// Staff who may edit its details only; snoozing again replaces the snooze. A time not
    /// in the future (or more than a year away) is [`Error::Validation`] on `until`.
    pub async fn snooze(
        &self,
        actor: &Actor,
        id: ConversationId,
        until: Option<OffsetDateTime>,
    ) -> Result<Conversation> {
        let now = self.now();
        if let Some(until) = until
            && (until <= now || until > now + MAX_SNOOZE)
        {
            return Err(Error::validation(
                "until",
                "must be in the future, and within a year",
            ));
        }
        let committed = self
            .change(actor, id, Action::EditDetails, |who, c| {
                let by = who
                    .staff()
                    .map(|a| a.id)
                    .ok_or(Error::Forbidden("snooze conversations"))?;
                if !matches!(c.mode, Mode::Agent | Mode::Paused) {
                    return Err(Error::state_conflict(format!(
                        "only a conversation an agent holds can be snoozed, not one in {} mode",
                        c.mode
                    )));
                }
                c.snooze = Some(Snooze {
                    until,
                    by: Some(by),
                    at: now,
                });
                Ok((ConversationChange::Snoozed { until }, None))
            })
            .await?;
        Ok(committed.conversation)
    }

    /// Ends a snooze by hand. [`Error::Conflict`] if the conversation is not snoozed.
    pub async fn unsnooze(&self, actor: &Actor, id: ConversationId) -> Result<Conversation> {
        self.wake(actor, id, WakeReason::Staff).await
    }

    /// Ends a snooze for `reason`; for the timers and the customer's message, only if it is
    /// really over (another writer may have snoozed it again meanwhile).
    async fn wake(
        &self,
        actor: &Actor,
        id: ConversationId,
        reason: WakeReason,
    ) -> Result<Conversation> {
        let now = self.now();
        let committed = self
            .change(actor, id, Action::EditDetails, |_, c| {
                let over = match (&c.snooze, reason) {
                    (None, _) => false,
                    (Some(_), WakeReason::Staff) => true,
                    (Some(s), _) => s.is_over(c, now),
                };
                if !over {
                    return Err(Error::state_conflict("the conversation is not snoozed"));
                }
                c.snooze = None;
                Ok((ConversationChange::Unsnoozed { reason }, None))
            })
            .await?;
        Ok(committed.conversation)
    }

    /// After a customer's message: ends the conversation's snooze, if it had one.
    pub(super) async fn wake_on_customer_message(&self, conversation: &Conversation) -> Result<()> {
        if conversation.snooze.is_none() {
            return Ok(());
        }
        let system = Actor::System {
            tenant: conversation.tenant_id,
        };
        match self
            .wake(&system, conversation.id, WakeReason::CustomerMessage)
            .await
        {
            // Woken meanwhile by someone else: nothing left to do.
            Ok(_) | Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The snooze part of [`Engine::run_timers`]: wakes every snoozed conversation whose
    /// time has come, or whose customer wrote after it was snoozed (a wake-up the message
    /// itself could not finish, say because the process stopped). Returns those woken.
    pub(super) async fn wake_snoozed(&self, tenant: TenantId) -> Result<Vec<ConversationId>> {
        let now = self.now();
        let system = Actor::System { tenant };
        let mut query = ConversationQuery::new(tenant, Scope::Tenant);
        // Only conversations an agent holds can be snoozed (leaving the agent ends it), so
        // the pass reads those modes through their index rather than the whole tenant.
        query.modes = vec![Mode::Agent, Mode::Paused];
        query.snoozed = Some(true);
        query.limit = 500;
        let mut woken = Vec::new();
        loop {
            let page = self.inner.store.list_conversations(&query).await?;
            for c in &page.items {
                let Some(snooze) = &c.snooze else { continue };
                if !snooze.is_over(c, now) {
                    continue;
                }
                let reason = if snooze.until.is_some_and(|u| u <= now) {
                    WakeReason::Time
                } else {
                    WakeReason::CustomerMessage
                };
                match self.wake(&system, c.id, reason).await {
                    Ok(_) => woken.push(c.id),
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(woken),
            }
        }
    }
}
