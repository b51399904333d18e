//! Who calls: a salon's staff member or customer, from a bearer token, and what it may do
//! with the chats and messages of its salon.

use std::sync::Arc;

use chat_core::{
    Actor, AgentId, Attachment, ContactId, EntityRef, MessageKind, MessagePage, PostMessage,
};
use chat_server::Context;
use chat_server::auth::Caller;
use chat_server::http::Resp;
use chat_starter::fastapi;
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::answers::{chat_not_found, engine_error};
use crate::files::{file_type, kind_of};
use crate::salons::{Salon, SalonChat};
use crate::shapes::{self, Directory, split_message_number};
use crate::{FILES_PATH, REPLY_TO};

impl SalonChat {
    /// The signed-in caller of a request or socket.
    pub(crate) async fn who(&self, cx: &Context, token: Option<String>) -> Result<Who, Resp> {
        let Some(token) = token else {
            return Err(fastapi::unauthorized("Not authenticated"));
        };
        let invalid = || fastapi::unauthorized("Could not validate credentials");
        let actor = match cx.authenticate(Some(&token)).await {
            Ok(Caller::Actor(actor)) => actor,
            _ => return Err(invalid()),
        };
        let salon = self.salon(actor.tenant()).ok_or_else(invalid)?;
        let mut dir = Directory::load(cx.engine(), salon.tenant)
            .await
            .map_err(engine_error)?;
        let participant = match actor {
            Actor::Staff { agent, .. } => Participant::User {
                agent,
                number: dir.staff_number(agent).ok_or_else(invalid)?,
            },
            // Only account tokens (every chat of one customer) are customers here; a web
            // widget's single-conversation token is not a salon login.
            Actor::Customer {
                contact,
                conversation: None,
                tenant,
            } => Participant::Customer {
                contact,
                number: dir
                    .customer(cx.engine(), tenant, contact)
                    .await
                    .0
                    .ok_or_else(invalid)?,
            },
            _ => return Err(invalid()),
        };
        Ok(Who {
            salon,
            actor,
            participant,
            dir,
        })
    }
}

/// Which kind of participant a caller is, with its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Participant {
    User { agent: AgentId, number: u64 },
    Customer { contact: ContactId, number: u64 },
}

impl Participant {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Participant::User { .. } => "user",
            Participant::Customer { .. } => "customer",
        }
    }

    pub(crate) fn number(self) -> u64 {
        match self {
            Participant::User { number, .. } | Participant::Customer { number, .. } => number,
        }
    }
}

/// A signed-in staff member or customer, in its salon.
pub(crate) struct Who {
    pub(crate) salon: Arc<Salon>,
    pub(crate) actor: Actor,
    pub(crate) participant: Participant,
    pub(crate) dir: Directory,
}

impl Who {
    pub(crate) fn is_staff(&self) -> bool {
        matches!(self.participant, Participant::User { .. })
    }

    pub(crate) fn staff_only(&self) -> Result<(), Resp> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(fastapi::detail(
                StatusCode::FORBIDDEN,
                "Not enough permissions",
            ))
        }
    }

    pub(crate) fn customer_only(&self) -> Result<(), Resp> {
        if self.is_staff() {
            Err(fastapi::detail(
                StatusCode::FORBIDDEN,
                "Only customers can use this endpoint",
            ))
        } else {
            Ok(())
        }
    }

    /// The conversation behind a chat number the caller may see; the same 404 for one
    /// that does not exist and one of someone else.
    pub(crate) async fn chat(
        &self,
        engine: &chat_core::Engine,
        number: u64,
    ) -> Result<chat_core::Conversation, Resp> {
        let id = self
            .salon
            .chats
            .conversation(number)
            .ok_or_else(chat_not_found)?;
        engine
            .conversation(&self.actor, id)
            .await
            .map_err(|_| chat_not_found())
    }

    pub(crate) async fn chat_json(
        &mut self,
        engine: &chat_core::Engine,
        c: &chat_core::Conversation,
    ) -> Value {
        let viewer = chat_core::policy::Viewer::of(&self.actor);
        shapes::chat_json(engine, &mut self.dir, self.salon.number, c, viewer).await
    }

    pub(crate) async fn message_json(
        &mut self,
        engine: &chat_core::Engine,
        chat: u64,
        customer: ContactId,
        m: &chat_core::Message,
    ) -> Value {
        shapes::message_json(engine, &mut self.dir, chat, customer, m).await
    }

    /// The message behind a message id, with its chat.
    pub(crate) async fn message(
        &self,
        engine: &chat_core::Engine,
        id: u64,
    ) -> Result<(u64, chat_core::Conversation, chat_core::Message), Resp> {
        let not_found = || fastapi::detail(StatusCode::NOT_FOUND, "Message not found");
        let (chat, seq) = split_message_number(id).ok_or_else(not_found)?;
        let c = self.chat(engine, chat).await.map_err(|_| not_found())?;
        let m = engine
            .messages(
                &self.actor,
                c.id,
                MessagePage {
                    after: Some(seq - 1),
                    limit: Some(1),
                    ..Default::default()
                },
            )
            .await
            .map_err(engine_error)?
            .into_iter()
            .find(|m| m.seq == seq)
            .ok_or_else(not_found)?;
        Ok((chat, c, m))
    }

    /// Posts into a chat: text, or a file uploaded first (`media_url`), with an optional
    /// answer-to and entity reference.
    pub(crate) async fn send(
        &self,
        engine: &chat_core::Engine,
        chat: u64,
        body: &Value,
    ) -> Result<(chat_core::Conversation, chat_core::Message), Resp> {
        let c = self.chat(engine, chat).await?;
        let content = match body.get("content") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(fastapi::invalid(vec![fastapi::item(
                    "string_type",
                    "content",
                    "Input should be a valid string",
                    other.clone(),
                )]));
            }
        };
        let mut input = PostMessage::text(content);
        let named = match body.get("message_type").and_then(Value::as_str) {
            None => None,
            Some(name) => Some(shapes::message_kind(name).ok_or_else(|| {
                fastapi::invalid(vec![fastapi::item(
                    "enum",
                    "message_type",
                    "Input should be 'text', 'image', 'voice' or 'file'",
                    json!(name),
                )])
            })?),
        };
        if let Some(url) = body.get("media_url").and_then(Value::as_str) {
            let attachment = self.uploaded(engine, chat, &c, url).await?;
            input.kind = Some(named.unwrap_or_else(|| kind_of(&attachment.content_type)));
            input.attachments = vec![attachment];
        } else {
            match named {
                None | Some(MessageKind::Text) => {}
                Some(_) => {
                    return Err(fastapi::detail(
                        StatusCode::BAD_REQUEST,
                        "media_url is required for image, voice and file messages",
                    ));
                }
            }
            if input.body.trim().is_empty() {
                return Err(fastapi::detail(
                    StatusCode::BAD_REQUEST,
                    "Message content cannot be empty",
                ));
            }
        }
        if let Some(reply) = body.get("reply_to_id").and_then(Value::as_u64) {
            let (reply_chat, _, target) = self.message(engine, reply).await?;
            if reply_chat != chat {
                return Err(fastapi::detail(
                    StatusCode::BAD_REQUEST,
                    "reply_to_id must be a message of this chat",
                ));
            }
            input.reply_to = Some(target.id);
            input
                .metadata
                .insert(REPLY_TO.to_owned(), reply.to_string());
        }
        if let (Some(kind), Some(id)) = (
            body.get("entity_type").and_then(Value::as_str),
            body.get("entity_id").map(scalar),
        ) {
            input.entities = vec![EntityRef {
                kind: kind.to_owned(),
                id,
            }];
        }
        let posted = engine
            .post_message(&self.actor, c.id, input)
            .await
            .map_err(engine_error)?;
        Ok((posted.conversation, posted.message))
    }

    /// The attachment a `media_url` from `/upload` names; only a file of this chat.
    pub(crate) async fn uploaded(
        &self,
        engine: &chat_core::Engine,
        chat: u64,
        c: &chat_core::Conversation,
        url: &str,
    ) -> Result<Attachment, Resp> {
        let bad = || {
            fastapi::detail(
                StatusCode::BAD_REQUEST,
                "media_url must be a URL returned by /api/v1/chat/upload for this chat",
            )
        };
        let rest = url
            .strip_prefix(FILES_PATH)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(bad)?;
        let (place, key) = rest.split_once('/').ok_or_else(bad)?;
        let content_type = file_type(key).ok_or_else(bad)?;
        // The size comes from the stored bytes, which also proves the upload exists and is
        // this chat's, or the caller's own upload made without a chat (the engine copies
        // that into the chat when the message is posted).
        let bytes = if place == crate::files::PENDING {
            engine.download_pending_attachment(&self.actor, key).await
        } else if place.parse::<u64>().ok() == Some(chat) {
            engine.download_attachment(&self.actor, c.id, key).await
        } else {
            return Err(bad());
        }
        .map_err(|_| bad())?;
        Ok(Attachment {
            key: key.to_owned(),
            name: key.split_once('_').map_or(key, |(_, n)| n).to_owned(),
            content_type: content_type.to_owned(),
            size: bytes.len() as u64,
        })
    }
}

/// A JSON scalar as text (`entity_id` may be a number or a string).
pub(crate) fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
