//! What each store write does, decided once for every backend.
//!
//! The engine decides whether a write may happen; a store checks what only its data can
//! tell (the row exists, the version read is still current, the client message id is
//! new). Between the two, the rows' new state and the events to log, in their order, are
//! pure functions of the write's inputs and the stored rows. They live here, so the
//! in-memory store, SQLite and any later backend agree by construction: a store persists
//! what these return and gives each [`NewEvent`] the tenant's next sequence, nothing more.
//! The store conformance suite (`chat_core::testing`) checks the result.

use crate::error::{Error, Result};
use crate::model::{
    Conversation, Event, Message, MessageKind, NewEvent, NewMessage, ReadCursor, Reader, Sender,
};
use crate::store::{Appended, Committed, ConversationUpdate};

/// A write to one conversation, decided but not stored: what
/// [`Store::create_conversation`](crate::Store::create_conversation) and
/// [`Store::update_conversation`](crate::Store::update_conversation) persist.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationWrite {
    /// The conversation after the write, its messages counted.
    pub conversation: Conversation,
    /// The messages the write stores, with their sequences.
    pub messages: Vec<Message>,
    /// The events to log, in log order.
    pub events: Vec<NewEvent>,
}

impl ConversationWrite {
    /// Opens `conversation` (stored with its version as given) with its first messages:
    /// `conversation_created`, showing it before any message, then one `message_created`
    /// per message. [`Error::Validation`] if a message belongs to another conversation.
    pub fn create(conversation: &Conversation, messages: Vec<NewMessage>) -> Result<Self> {
        let mut write = Self {
            conversation: conversation.clone(),
            messages: Vec::with_capacity(messages.len()),
            events: vec![NewEvent::conversation_created(conversation)],
        };
        for message in messages {
            write.post(message)?;
        }
        Ok(write)
    }

    /// Replaces a conversation whose stored version the caller found equal to
    /// `update.conversation.version`: it is stored with version + 1 and logged as
    /// `conversation_updated`, then the optional system message is posted.
    /// [`Error::Validation`] if that message belongs to another conversation.
    pub fn update(update: ConversationUpdate) -> Result<Self> {
        let mut conversation = update.conversation;
        conversation.version += 1;
        let mut write = Self {
            events: vec![NewEvent::conversation_updated(&conversation, update.change)],
            conversation,
            messages: Vec::new(),
        };
        if let Some(message) = update.message {
            write.post(message)?;
        }
        Ok(write)
    }

    fn post(&mut self, new: NewMessage) -> Result<()> {
        let (message, event) = post_message(&mut self.conversation, new)?;
        self.messages.push(message);
        self.events.push(event);
        Ok(())
    }

    /// The result handed back once stored; `number` logs one event with the tenant's next
    /// sequence and is called in log order.
    pub fn commit(self, number: impl FnMut(NewEvent) -> Result<Event>) -> Result<Committed> {
        Ok(Committed {
            conversation: self.conversation,
            messages: self.messages,
            events: self.events.into_iter().map(number).collect::<Result<_>>()?,
        })
    }
}

/// Posts a message on the stored `conversation`: the message takes the conversation's
/// next sequence, [`Conversation::record_message`] counts it, and its `message_created`
/// event follows. [`Error::Validation`] (and `conversation` unchanged) if the message
/// belongs to another conversation.
pub fn post_message(
    conversation: &mut Conversation,
    new: NewMessage,
) -> Result<(Message, NewEvent)> {
    if new.conversation_id != conversation.id || new.tenant_id != conversation.tenant_id {
        return Err(Error::validation(
            "message",
            "belongs to another conversation",
        ));
    }
    let message = new.into_message(conversation.last_seq + 1);
    conversation.record_message(&message);
    let event = NewEvent::message_created(&message);
    Ok((message, event))
}

/// A message posted by [`Store::append_message`](crate::Store::append_message), decided
/// but not stored.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageWrite {
    /// The conversation after the message.
    pub conversation: Conversation,
    /// The message, with its sequence.
    pub message: Message,
    /// Its `message_created` event.
    pub event: NewEvent,
}

impl MessageWrite {
    /// Appends `new` to the stored `conversation`, whose messages the caller searched for a
    /// repeat of `new` ([`NewMessage::repeats`]) and found none. See [`post_message`].
    pub fn append(mut conversation: Conversation, new: NewMessage) -> Result<Self> {
        let (message, event) = post_message(&mut conversation, new)?;
        Ok(Self {
            conversation,
            message,
            event,
        })
    }

    /// The result handed back once stored; `number` logs the event with the tenant's next
    /// sequence.
    pub fn commit(self, number: impl FnOnce(NewEvent) -> Result<Event>) -> Result<Appended> {
        Ok(Appended {
            message: self.message,
            conversation: self.conversation,
            event: Some(number(self.event)?),
            created: true,
        })
    }
}

impl Appended {
    /// The answer to a message whose client message id was already used by its sender in
    /// the conversation: the earlier message, the conversation as stored, nothing written.
    pub fn repeated(earlier: Message, conversation: Conversation) -> Self {
        Self {
            message: earlier,
            conversation,
            event: None,
            created: false,
        }
    }
}

/// Applies an edit or soft delete to the stored message: only the body, revisions,
/// attachments, edit and delete times change (id, conversation, sequence, sender and kind
/// stay as stored). Returns its `message_updated` event.
pub fn edit_message(stored: &mut Message, edit: &Message) -> NewEvent {
    stored.body.clone_from(&edit.body);
    stored.revisions.clone_from(&edit.revisions);
    stored.edited_at = edit.edited_at;
    stored.deleted_at = edit.deleted_at;
    stored.attachments.clone_from(&edit.attachments);
    NewEvent::message_updated(stored)
}

/// A read cursor moving forward, decided before the store counts what is left unread
/// behind it (an in-memory scan or an SQL count: see [`Message::unread_by`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ReadMove {
    /// The cursor as stored: its sequence clamped to the conversation's last message.
    pub cursor: ReadCursor,
    /// The reader's side's read sequence after the move (the staff share one). Messages
    /// after it that are [`Message::unread_by`] the reader are its side's unread count.
    pub read_seq: u64,
}

impl ReadMove {
    /// Where `cursor` moves on `conversation`, given the reader's stored cursor sequence;
    /// `None` when it would not move forward, which writes nothing.
    pub fn new(
        conversation: &Conversation,
        cursor: &ReadCursor,
        stored: Option<u64>,
    ) -> Option<Self> {
        // Past the end is clamped, so a cursor never claims a message that does not exist.
        let seq = cursor.seq.min(conversation.last_seq);
        if stored.is_some_and(|s| s >= seq) {
            return None;
        }
        let side = match cursor.reader {
            Reader::Customer => conversation.customer_read_seq,
            Reader::Agent(_) => conversation.agent_read_seq,
        };
        Some(Self {
            cursor: ReadCursor {
                seq,
                ..cursor.clone()
            },
            read_seq: side.max(seq),
        })
    }

    /// Sets the side's read sequence and its `unread` count (counted by the store after
    /// [`read_seq`](Self::read_seq)) on the stored `conversation`, adds one to its version,
    /// and returns the `read_updated` event.
    pub fn apply(self, conversation: &mut Conversation, unread: u64) -> NewEvent {
        match self.cursor.reader {
            Reader::Customer => {
                conversation.customer_read_seq = self.read_seq;
                conversation.unread_for_customer = unread;
            }
            Reader::Agent(_) => {
                conversation.agent_read_seq = self.read_seq;
                conversation.unread_for_agent = unread;
            }
        }
        conversation.version += 1;
        NewEvent::read_updated(self.cursor)
    }
}

impl Message {
    /// Whether this message, while after `reader`'s side's read sequence, counts as unread
    /// for it: notes and timeline events never do; the staff side counts customer
    /// messages, the customer counts staff and bot messages. Stores that count in SQL
    /// follow the same rule.
    pub fn unread_by(&self, reader: Reader) -> bool {
        if matches!(self.kind, MessageKind::Note | MessageKind::Event) {
            return false;
        }
        match reader {
            Reader::Customer => matches!(self.sender, Sender::Agent(_) | Sender::Bot),
            Reader::Agent(_) => self.sender == Sender::Customer,
        }
    }
}

impl NewMessage {
    /// Whether `stored` is an earlier post of this message: the same sender used the same
    /// client message id (the idempotency key is scoped to the sender and, by the caller,
    /// to the conversation). A message without a client message id repeats nothing.
    pub fn repeats(&self, stored: &Message) -> bool {
        self.client_message_id.is_some()
            && stored.client_message_id == self.client_message_id
            && stored.sender == self.sender
    }
}
