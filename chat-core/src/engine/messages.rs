//! Posting, editing and reading messages; read cursors; the bot's turn.

use std::collections::BTreeMap;

use time::Duration;

use super::{BotFailure, Engine};
use crate::bot::{BotDecision, BotTurn};
use crate::error::{Error, Result};
use crate::ids::{ConversationId, MessageId, TenantId};
use crate::mode::Mode;
use crate::model::{
    Attachment, Conversation, EntityRef, Message, MessageKind, ReadCursor, Reader, Sender, Tenant,
};
use crate::policy::{Action, Actor, Resolved};
use crate::store::{ConversationQuery, MessageQuery, Scope};

/// Input for [`Engine::post_message`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PostMessage {
    /// Text, or caption for attachments.
    pub body: String,
    /// Kind; `text` by default. Notes go through [`Engine::post_note`].
    pub kind: Option<MessageKind>,
    /// Attachments already put in the blob store.
    pub attachments: Vec<Attachment>,
    /// The message this answers.
    pub reply_to: Option<MessageId>,
    /// Idempotency key: posting the same key twice stores one message and returns it.
    pub client_message_id: Option<String>,
    /// Business entity references.
    pub entities: Vec<EntityRef>,
    /// Free metadata.
    pub metadata: BTreeMap<String, String>,
}

impl PostMessage {
    /// A plain text message.
    pub fn text(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Default::default()
        }
    }
}

/// Result of [`Engine::post_message`].
#[derive(Clone, Debug, PartialEq)]
pub struct Posted {
    /// The stored message (the earlier one for a repeated client message id).
    pub message: Message,
    /// `false` when the client message id was seen before and nothing was stored.
    pub created: bool,
    /// Messages that followed in the same call: the bot's answer, handoff notices. For a
    /// customer's repeated client message id: the bot's answer to the stored message,
    /// given now if a crash cut the first attempt short, or the one given before.
    pub replies: Vec<Message>,
    /// The conversation after everything.
    pub conversation: Conversation,
}

/// A window of history for [`Engine::messages`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessagePage {
    /// Only sequences below this (the newest `limit` of them).
    pub before: Option<u64>,
    /// Only sequences above this (the oldest `limit` of them).
    pub after: Option<u64>,
    /// At most this many (default 50).
    pub limit: Option<usize>,
}

impl Engine {
    /// Posts a message as the actor: a customer writes, staff reply, the bot or the system
    /// speaks. A customer writing in `bot` mode gets the bot's answer (or a handoff) in
    /// `replies`, once per message even if the call is retried; a customer writing after
    /// close reopens the conversation if the tenant allows it; staff replying to a
    /// conversation in `bot` or `queued` mode take it over.
    pub async fn post_message(
        &self,
        actor: &Actor,
        id: ConversationId,
        input: PostMessage,
    ) -> Result<Posted> {
        // The template mark decides what the customer gets; only the template call sets it.
        for key in [
            super::inboxes::TEMPLATE_KEY,
            super::inboxes::TEMPLATE_PARAMETERS_KEY,
        ] {
            if input.metadata.contains_key(key) {
                return Err(Error::validation(
                    "metadata",
                    format!("{key} is set by the template route only"),
                ));
            }
        }
        self.post_checked(actor, id, input).await
    }

    /// [`Engine::post_message`] with any metadata.
    pub(super) async fn post_checked(
        &self,
        actor: &Actor,
        id: ConversationId,
        input: PostMessage,
    ) -> Result<Posted> {
        let who = self.resolve(actor).await?;
        let (sender, action) = match &who {
            Resolved::Customer { .. } => (Sender::Customer, Action::PostAsCustomer),
            Resolved::Staff(a) => (Sender::Agent(a.id), Action::Reply),
            Resolved::Bot => (Sender::Bot, Action::PostAsBot),
            Resolved::System => (Sender::System, Action::PostAsSystem),
        };
        let kind = input.kind.unwrap_or(MessageKind::Text);
        match kind {
            MessageKind::Note => {
                return Err(Error::validation("kind", "notes are posted with post_note"));
            }
            MessageKind::Event if sender != Sender::System => {
                return Err(Error::validation("kind", "only the system posts events"));
            }
            _ => {}
        }
        let body = if input.attachments.is_empty() {
            self.message_body(&input.body)?
        } else {
            self.caption(&input.body)?
        };
        self.check_attachments(&input.attachments)?;
        let client_message_id =
            self.optional_short_text("client_message_id", input.client_message_id.as_deref())?;
        self.check_attachment_owner(&who, id, &input.attachments)?;
        let mut conversation = self.load_conversation(actor.tenant(), id).await?;
        // Staff replying to a conversation nobody owns take it; agents need the right to claim.
        let takeover = matches!(who, Resolved::Staff(_))
            && matches!(conversation.mode, Mode::Bot | Mode::Queued);
        who.authorize(if takeover { Action::Claim } else { action }, &conversation)?;
        self.check_reply_window(&conversation, &sender, &input.metadata)?;
        if let Some(reply_to) = input.reply_to {
            let target = self.inner.store.message(actor.tenant(), reply_to).await?;
            if !target
                .is_some_and(|m| m.conversation_id == id && (who.sees_notes() || !m.is_note()))
            {
                return Err(Error::validation(
                    "reply_to",
                    "no such message in this conversation",
                ));
            }
        }
        // Posting here may first reopen the conversation or take it over. A retry of a
        // message already stored must not replay that, so only then look for it first;
        // otherwise the store's atomic idempotency answers alone (one round trip less).
        let has_side_effects = match sender {
            Sender::Customer => conversation.mode == Mode::Closed,
            Sender::Agent(_) => matches!(conversation.mode, Mode::Bot | Mode::Queued),
            _ => false,
        };
        if let (true, Some(key)) = (has_side_effects, &client_message_id)
            && let Some(existing) =
                Box::pin(self.find_by_client_id(&conversation, sender, key)).await?
        {
            return Ok(Posted {
                message: existing,
                created: false,
                replies: Vec::new(),
                conversation,
            });
        }
        match (sender, conversation.mode) {
            (_, Mode::Archived) => {
                return Err(Error::Conflict(
                    "archived conversations are read-only".into(),
                ));
            }
            (Sender::Customer, Mode::Closed) => {
                conversation = Box::pin(self.reopen_to(actor, id, None)).await?;
            }
            (Sender::Agent(_) | Sender::Bot, Mode::Closed) => {
                return Err(Error::InvalidTransition {
                    from: Mode::Closed,
                    to: Mode::Agent,
                });
            }
            (Sender::Agent(me), Mode::Bot | Mode::Queued) => {
                conversation = match Box::pin(self.claim(actor, id)).await {
                    Ok(claimed) => claimed,
                    // The read above was older than the claim's: a store may answer a
                    // conversation from a copy a moment behind a commit (the routing pass
                    // that gave it to this very agent). Its owner's reply is no takeover.
                    Err(Error::Conflict(why)) => {
                        let now = self.load_conversation(actor.tenant(), id).await?;
                        if now.mode != Mode::Agent || now.assigned_agent_id != Some(me) {
                            return Err(Error::Conflict(why));
                        }
                        who.authorize(action, &now)?;
                        now
                    }
                    Err(e) => return Err(e),
                };
            }
            (Sender::Bot, mode) if mode != Mode::Bot => {
                return Err(Error::state_conflict(format!(
                    "the bot may not answer in {mode} mode"
                )));
            }
            _ => {}
        }
        let mut message = self.new_message(&conversation, sender, kind, body);
        message.attachments = self.adopt_attachments(&who, id, input.attachments).await?;
        message.reply_to = input.reply_to;
        message.client_message_id = client_message_id;
        message.entities = input.entities;
        message.metadata = input.metadata;
        let appended = self.inner.store.append_message(message).await?;
        self.publish(appended.event.clone());
        let appended = if sender == Sender::Customer && appended.conversation.snooze.is_some() {
            Box::pin(self.wake_on_customer_message(&appended.conversation)).await?;
            let conversation = self.load_conversation(actor.tenant(), id).await?;
            crate::store::Appended {
                conversation,
                ..appended
            }
        } else {
            appended
        };
        let mut posted = Posted {
            message: appended.message,
            created: appended.created,
            replies: Vec::new(),
            conversation: appended.conversation,
        };
        if posted.created && sender == Sender::Customer && posted.conversation.mode == Mode::Bot {
            let tenant = self.load_tenant(actor.tenant()).await?;
            let (replies, after) =
                Box::pin(self.bot_turn(&tenant, posted.conversation.clone(), &posted.message))
                    .await?;
            posted.replies = replies;
            posted.conversation = after;
        } else if !posted.created && sender == Sender::Customer {
            // A retry: the first attempt may have died between storing the message and
            // the bot's answer. Answer now if nobody did, or show the answer given.
            let tenant = self.load_tenant(actor.tenant()).await?;
            let outcome =
                Box::pin(self.resume_turn(&tenant, posted.conversation.clone(), &posted.message))
                    .await?;
            posted.replies = outcome.replies;
            posted.conversation = outcome.conversation;
        }
        Ok(posted)
    }

    /// Runs the bot's turns that a crash cut short, in every tenant: a conversation in
    /// `bot` mode whose newest customer message has no answer from the bot gets it now.
    /// Returns how many it answered. Call it once at start, beside serving requests: a
    /// turn that runs twice still answers once (see [`crate::bot_reply_key`]).
    ///
    /// Any bot message after the customer's counts as an answer, so a bot service that
    /// answered later through the API is not asked again. A bot that chose to say nothing
    /// leaves no trace and is asked again at the next start.
    ///
    /// Needs the credential store (it lists the tenants); embedders without one call
    /// [`Engine::resume_bot_turns_of`] per tenant.
    pub async fn resume_bot_turns(&self) -> Result<usize> {
        let mut turns = 0;
        for tenant in self.tenants().await? {
            turns += self.resume_bot_turns_of(tenant.id).await?;
        }
        Ok(turns)
    }

    /// [`Engine::resume_bot_turns`] for one tenant.
    pub async fn resume_bot_turns_of(&self, tenant: TenantId) -> Result<usize> {
        let tenant = self.load_tenant(tenant).await?;
        // Messages that arrive while this runs get their turn from their own post;
        // taking it here too would only ask the bot twice.
        let started = self.now();
        let mut turns = 0;
        let mut list = ConversationQuery::new(tenant.id, Scope::Tenant);
        list.modes = vec![Mode::Bot];
        list.limit = 200;
        // Page by page, so a desk with many idle bot chats is never all in memory. The
        // list runs from the newest activity down: a conversation answered here moves up,
        // behind the cursor, and is not seen twice.
        loop {
            let page = self.inner.store.list_conversations(&list).await?;
            for conversation in page.items {
                turns += self
                    .resume_conversation(&tenant, conversation, started)
                    .await?;
            }
            match page.next_cursor {
                Some(cursor) => list.cursor = Some(cursor),
                None => return Ok(turns),
            }
        }
    }

    /// One conversation of [`Engine::resume_bot_turns_of`]: 1 if the bot answered now.
    async fn resume_conversation(
        &self,
        tenant: &Tenant,
        conversation: Conversation,
        started: time::OffsetDateTime,
    ) -> Result<usize> {
        let mut query =
            MessageQuery::latest(tenant.id, conversation.id, self.inner.limits.bot_history);
        query.include_notes = false;
        let recent = self.inner.store.messages(&query).await?;
        // A customer message further back than the bot's history window was followed
        // by a whole window of others: not a turn left hanging.
        let Some(waiting) = recent.iter().rev().find(|m| m.sender == Sender::Customer) else {
            return Ok(0);
        };
        if waiting.created_at > started {
            return Ok(0);
        }
        match self.resume_turn(tenant, conversation, waiting).await {
            Ok(outcome) => Ok(usize::from(outcome.ran)),
            // Deleted, or taken over, while we looked: nothing left to answer.
            Err(Error::NotFound(_) | Error::Conflict(_)) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The bot's turn for `answering` unless it was taken already: the answer given, or
    /// a fresh turn if the message is still the newest unanswered one in `bot` mode.
    /// Finishes a handoff cut short between the bot's message and the queueing.
    async fn resume_turn(
        &self,
        tenant: &Tenant,
        conversation: Conversation,
        answering: &Message,
    ) -> Result<ResumedTurn> {
        let key = crate::bot_reply_key(answering.id);
        // The engine's own answer carries the key; a bot speaking through the API (a
        // webhook service answering later, with a bot token) carries none, and answers
        // the customer as well. An answer keyed to another message answers that one.
        let mut answer = None;
        let mut spoken = None;
        let mut superseded = false;
        let mut last_seq = answering.seq;
        let mut page = MessageQuery {
            tenant: tenant.id,
            conversation: conversation.id,
            before: None,
            after: Some(answering.seq),
            limit: 200,
            include_notes: false,
        };
        // Everything after the message, page by page: bounded by the conversation's length.
        loop {
            let later = self.inner.store.messages(&page).await?;
            for m in &later {
                if m.sender == Sender::Bot {
                    match m.client_message_id.as_deref() {
                        Some(k) if k == key => answer = Some(m.clone()),
                        Some(k) if crate::bot::is_reply_key(k) => {}
                        _ => {
                            spoken.get_or_insert_with(|| m.clone());
                        }
                    }
                }
                superseded |= m.sender == Sender::Customer;
                last_seq = m.seq;
            }
            if later.len() < page.limit {
                break;
            }
            page.after = Some(last_seq);
        }
        if answer.is_none()
            && let Some(spoken) = spoken
        {
            return Ok(ResumedTurn {
                replies: vec![spoken],
                conversation,
                ran: false,
            });
        }
        let Some(answer) = answer else {
            if superseded || conversation.mode != Mode::Bot {
                // A newer message's turn answers the customer; or nobody is a bot here now.
                return Ok(ResumedTurn {
                    replies: Vec::new(),
                    conversation,
                    ran: false,
                });
            }
            let (replies, conversation) = self.bot_turn(tenant, conversation, answering).await?;
            // A bot that chose silence leaves no trace, so it is asked again next time;
            // only a turn that said or did something counts.
            let ran = !replies.is_empty();
            return Ok(ResumedTurn {
                replies,
                conversation,
                ran,
            });
        };
        // The bot said it hands off and nothing happened since: the process died before
        // the queueing. Anything later (a customer's word, a mode change) means it is moot.
        if let Some(department) = answer.metadata.get(crate::BOT_HANDOFF_KEY)
            && conversation.mode == Mode::Bot
            && answer.seq == last_seq
        {
            let department = Some(department.clone()).filter(|d| !d.is_empty());
            let reason = answer.metadata.get(crate::BOT_HANDOFF_REASON_KEY).cloned();
            let (mut replies, conversation) = self
                .queue_for_human(tenant, conversation, department, reason, answer.seq)
                .await?;
            replies.insert(0, answer);
            return Ok(ResumedTurn {
                replies,
                conversation,
                ran: true,
            });
        }
        Ok(ResumedTurn {
            replies: vec![answer],
            conversation,
            ran: false,
        })
    }

    async fn find_by_client_id(
        &self,
        c: &Conversation,
        sender: Sender,
        key: &str,
    ) -> Result<Option<Message>> {
        // Idempotency keys protect against quick retries, so the recent window suffices;
        // the store's own check covers the rest atomically.
        let recent = self
            .inner
            .store
            .messages(&MessageQuery::latest(c.tenant_id, c.id, 200))
            .await?;
        Ok(recent
            .into_iter()
            .find(|m| m.sender == sender && m.client_message_id.as_deref() == Some(key)))
    }

    /// Writes an internal note: staff only, never shown to the customer.
    pub async fn post_note(
        &self,
        actor: &Actor,
        id: ConversationId,
        body: &str,
    ) -> Result<Message> {
        self.post_note_with_attachments(actor, id, body, Vec::new())
            .await
    }

    /// Writes an internal note carrying files uploaded with
    /// [`upload_note_attachment`](Self::upload_note_attachment) to the same conversation
    /// (any other file is refused, so a customer-visible file never becomes a note's and
    /// a note's never a message's).
    pub async fn post_note_with_attachments(
        &self,
        actor: &Actor,
        id: ConversationId,
        body: &str,
        attachments: Vec<Attachment>,
    ) -> Result<Message> {
        let body = if attachments.is_empty() {
            self.message_body(body)?
        } else {
            self.caption(body)?
        };
        self.check_attachments(&attachments)?;
        self.check_note_attachments(id, &attachments)?;
        let (who, conversation) = self.authorized(actor, id, Action::Note).await?;
        if conversation.mode == Mode::Archived {
            return Err(Error::Conflict(
                "archived conversations are read-only".into(),
            ));
        }
        let sender = match who.staff() {
            Some(a) => Sender::Agent(a.id),
            None => Sender::System,
        };
        let mut note = self.new_message(&conversation, sender, MessageKind::Note, body);
        note.attachments = attachments;
        let appended = self.inner.store.append_message(note).await?;
        self.publish(appended.event);
        if let Some(author) = who.staff() {
            self.notify_mentions(author, &appended.conversation, &appended.message)
                .await?;
        }
        Ok(appended.message)
    }

    /// Edits one's own message within the tenant's edit window; the old text is kept as a
    /// revision.
    pub async fn edit_message(&self, actor: &Actor, id: MessageId, body: &str) -> Result<Message> {
        let (who, mut message) = self.own_message(actor, id).await?;
        let body = if message.attachments.is_empty() {
            self.message_body(body)?
        } else {
            self.caption(body)?
        };
        let tenant = self.load_tenant(actor.tenant()).await?;
        let now = self.now();
        if now - message.created_at > Duration::seconds(tenant.settings.edit_window_secs.into()) {
            return Err(Error::Forbidden("edit after the edit window"));
        }
        if message.sender != self.sender_of(&who) {
            return Err(Error::Forbidden("edit someone else's message"));
        }
        let old = std::mem::replace(&mut message.body, body);
        message.revisions.push(crate::model::Revision {
            body: old,
            replaced_at: now,
        });
        message.edited_at = Some(now);
        let event = self.inner.store.update_message(&message).await?;
        self.publish([event]);
        Ok(message)
    }

    /// Deletes a message softly: it keeps its place in the sequence, loses its content and
    /// shows as deleted. The sender, or a manager, may delete.
    pub async fn delete_message(&self, actor: &Actor, id: MessageId) -> Result<Message> {
        let (who, mut message) = self.own_message(actor, id).await?;
        if message.sender != self.sender_of(&who) && !who.manages() {
            return Err(Error::Forbidden("delete someone else's message"));
        }
        message.body = String::new();
        let files = std::mem::take(&mut message.attachments);
        message.revisions.clear();
        message.deleted_at = Some(self.now());
        let event = self.inner.store.update_message(&message).await?;
        self.publish([event]);
        // After the commit: a failed delete must never leave a message pointing at
        // nothing, while a leftover file only costs disk.
        self.remove_files(message.conversation_id, &files).await;
        Ok(message)
    }

    /// A live message the actor can see, with its conversation writable.
    async fn own_message(&self, actor: &Actor, id: MessageId) -> Result<(Resolved, Message)> {
        let message = self
            .inner
            .store
            .message(actor.tenant(), id)
            .await?
            .ok_or(Error::NotFound("message"))?;
        let (who, conversation) = self
            .authorized(actor, message.conversation_id, Action::Read)
            .await?;
        if message.is_note() && !who.sees_notes() {
            return Err(Error::NotFound("message"));
        }
        if message.deleted_at.is_some() {
            return Err(Error::Conflict("message was deleted".into()));
        }
        if conversation.mode == Mode::Archived {
            return Err(Error::Conflict(
                "archived conversations are read-only".into(),
            ));
        }
        Ok((who, message))
    }

    fn sender_of(&self, who: &Resolved) -> Sender {
        match who {
            Resolved::Staff(a) => Sender::Agent(a.id),
            Resolved::Customer { .. } => Sender::Customer,
            Resolved::Bot => Sender::Bot,
            Resolved::System => Sender::System,
        }
    }

    /// Marks the conversation read up to `seq` for the actor (customer or staff member).
    /// The side's unread counter and read receipts follow.
    pub async fn mark_read(
        &self,
        actor: &Actor,
        id: ConversationId,
        seq: u64,
    ) -> Result<Conversation> {
        let (who, conversation) = self.authorized(actor, id, Action::MarkRead).await?;
        let reader = match &who {
            Resolved::Customer { .. } => Reader::Customer,
            Resolved::Staff(a) => Reader::Agent(a.id),
            _ => return Err(Error::Forbidden("mark read")),
        };
        let cursor = ReadCursor {
            tenant_id: actor.tenant(),
            conversation_id: conversation.id,
            reader,
            seq,
            updated_at: self.now(),
        };
        let (conversation, event) = self.inner.store.set_read_cursor(&cursor).await?;
        self.publish(event);
        Ok(conversation)
    }

    /// Read cursors of a conversation (read receipts).
    pub async fn read_cursors(&self, actor: &Actor, id: ConversationId) -> Result<Vec<ReadCursor>> {
        self.authorized(actor, id, Action::Read).await?;
        self.inner.store.read_cursors(actor.tenant(), id).await
    }

    /// A window of the conversation's history, ascending. Customers never see notes.
    pub async fn messages(
        &self,
        actor: &Actor,
        id: ConversationId,
        page: MessagePage,
    ) -> Result<Vec<Message>> {
        let (who, _) = self.authorized(actor, id, Action::Read).await?;
        let query = MessageQuery {
            tenant: actor.tenant(),
            conversation: id,
            before: page.before,
            after: page.after,
            limit: page
                .limit
                .unwrap_or(50)
                .clamp(1, self.inner.limits.max_page),
            include_notes: who.sees_notes(),
        };
        self.inner.store.messages(&query).await
    }

    /// A single message the actor can see.
    pub async fn message(&self, actor: &Actor, id: MessageId) -> Result<Message> {
        let message = self
            .inner
            .store
            .message(actor.tenant(), id)
            .await?
            .ok_or(Error::NotFound("message"))?;
        let (who, _) = self
            .authorized(actor, message.conversation_id, Action::Read)
            .await?;
        if message.is_note() && !who.sees_notes() {
            return Err(Error::NotFound("message"));
        }
        Ok(message)
    }

    pub(super) fn message_body(&self, body: &str) -> Result<String> {
        let trimmed = body.trim();
        if trimmed.is_empty() {
            return Err(Error::validation("body", "must not be empty"));
        }
        self.caption(trimmed)
    }

    fn caption(&self, body: &str) -> Result<String> {
        let max = self.inner.limits.max_message_chars;
        if body.chars().count() > max {
            return Err(Error::validation(
                "body",
                format!("longer than {max} characters"),
            ));
        }
        if body
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(Error::validation("body", "contains control characters"));
        }
        Ok(body.trim().to_owned())
    }

    fn check_attachments(&self, attachments: &[Attachment]) -> Result<()> {
        if attachments.len() > self.inner.limits.max_attachments {
            return Err(Error::validation(
                "attachments",
                format!("more than {}", self.inner.limits.max_attachments),
            ));
        }
        for a in attachments {
            if a.key.is_empty() || a.name.trim().is_empty() || a.content_type.trim().is_empty() {
                return Err(Error::validation(
                    "attachments",
                    "key, name and content_type are required",
                ));
            }
        }
        Ok(())
    }

    /// Lets the bot answer the customer's message `answering` (the newest), and applies
    /// its decision. What the bot says is keyed by `answering`, so running this twice for
    /// one message (after a crash, or concurrently) stores one answer.
    pub(super) async fn bot_turn(
        &self,
        tenant: &Tenant,
        conversation: Conversation,
        answering: &Message,
    ) -> Result<(Vec<Message>, Conversation)> {
        let key = crate::bot_reply_key(answering.id);
        let mut query =
            MessageQuery::latest(tenant.id, conversation.id, self.inner.limits.bot_history);
        query.include_notes = false;
        let history = self.inner.store.messages(&query).await?;
        let decision = self
            .inner
            .bot
            .respond(BotTurn {
                tenant,
                conversation: &conversation,
                history: &history,
            })
            .await;
        let bot = Actor::Bot { tenant: tenant.id };
        let decision = match decision {
            Ok(d) => d,
            Err(e) => match self.inner.bot_failure {
                BotFailure::Ignore => BotDecision::Silent,
                BotFailure::Handoff => BotDecision::Handoff {
                    department: None,
                    reason: Some(format!("the bot failed: {e}")),
                    message: None,
                },
            },
        };
        let mut replies = Vec::new();
        let mut conversation = conversation;
        match decision {
            BotDecision::Silent => {}
            BotDecision::Reply { text, metadata } => {
                let input = PostMessage {
                    body: text,
                    metadata,
                    client_message_id: Some(key),
                    ..Default::default()
                };
                match Box::pin(self.post_message(&bot, conversation.id, input)).await {
                    Ok(posted) => {
                        conversation = posted.conversation;
                        replies.push(posted.message);
                    }
                    // The mode changed under the bot (an agent took over): its answer is moot.
                    Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::State => {}
                    Err(e) => return Err(e),
                }
            }
            BotDecision::Handoff {
                department,
                reason,
                message,
            } => {
                let mut before = conversation.last_seq;
                if let Some(text) = message.filter(|t| !t.trim().is_empty()) {
                    // The handoff's terms go with the message, so that a crash before the
                    // queueing below leaves enough to finish it (see `resume_turn`).
                    let mut metadata = BTreeMap::new();
                    metadata.insert(
                        crate::BOT_HANDOFF_KEY.to_owned(),
                        department.clone().unwrap_or_default(),
                    );
                    if let Some(reason) = &reason {
                        metadata.insert(crate::BOT_HANDOFF_REASON_KEY.to_owned(), reason.clone());
                    }
                    let input = PostMessage {
                        body: text,
                        metadata,
                        client_message_id: Some(key),
                        ..Default::default()
                    };
                    if let Ok(posted) =
                        Box::pin(self.post_message(&bot, conversation.id, input)).await
                    {
                        before = posted.message.seq;
                        conversation = posted.conversation;
                        replies.push(posted.message);
                    }
                }
                let (notices, after) = self
                    .queue_for_human(tenant, conversation, department, reason, before)
                    .await?;
                replies.extend(notices);
                conversation = after;
            }
        }
        Ok((replies, conversation))
    }

    /// Queues the conversation for a human on the bot's behalf (already queued is fine:
    /// a second run of the same handoff), and returns the notices written after `after`.
    async fn queue_for_human(
        &self,
        tenant: &Tenant,
        conversation: Conversation,
        department: Option<String>,
        reason: Option<String>,
        after: u64,
    ) -> Result<(Vec<Message>, Conversation)> {
        let bot = Actor::Bot { tenant: tenant.id };
        let conversation = match self
            .enqueue(&bot, conversation.id, department, reason)
            .await
        {
            Ok(c) => c,
            Err(Error::InvalidTransition { .. }) => {
                self.load_conversation(tenant.id, conversation.id).await?
            }
            Err(e) => return Err(e),
        };
        // Include the handoff and assignment notices so callers can show them.
        let notices = MessageQuery {
            tenant: tenant.id,
            conversation: conversation.id,
            before: None,
            after: Some(after),
            limit: 20,
            include_notes: false,
        };
        Ok((self.inner.store.messages(&notices).await?, conversation))
    }
}

/// What [`Engine::resume_turn`] did.
struct ResumedTurn {
    /// The bot's answer and notices, fresh or given before.
    replies: Vec<Message>,
    /// The conversation after everything.
    conversation: Conversation,
    /// Whether the bot answered (or finished a handoff) now.
    ran: bool,
}
