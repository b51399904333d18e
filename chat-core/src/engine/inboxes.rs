//! Inboxes: channels customers write in through from outside the website widget.
//!
//! Inbound, a provider's message (relayed by the server's channel route, which checked the
//! provider's signature or the inbox's token) opens or continues the conversation of its
//! customer, keyed by the provider's id for that customer, and is posted as the customer's
//! own message, idempotent on the provider's message id: the bot, the queue and routing
//! treat it like a widget message.
//!
//! Outbound, an inbox owns a webhook that follows `message_created`: the store writes its
//! deliveries into the same outbox as every event webhook's, in the event's transaction, and
//! the delivery worker asks [`Engine::outbound`] what each one is: an answer to the inbox's
//! customer (sent in the provider's form), or nothing for this inbox (recorded, not sent).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Engine;
use super::attachments::{FileUse, NewFile};
use super::conversations::OpenConversation;
use super::messages::PostMessage;
use super::webhooks::{DueDelivery, NewWebhook};
use crate::error::{Conflict, ConflictKind, Error, Result};
use crate::ids::{ConversationId, InboxId};
use crate::model::{
    Attachment, ContactInput, Conversation, EventPayload, Inbox, InboxKind, InboxSecrets, Message,
    MessageKind, Role, Sender, Webhook,
};
use crate::policy::{Actor, Resolved};

/// Most inboxes per tenant.
pub const MAX_INBOXES: usize = 20;
/// Longest provider id (of a customer, of a message), in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 200;
/// The conversation metadata key that names its inbox.
pub const INBOX_KEY: &str = "inbox_id";
/// The conversation metadata key that holds the provider's id for its customer (where
/// replies are addressed).
pub const INBOX_CONTACT_KEY: &str = "inbox_contact";

/// A new inbox, as an admin asks for it. Which fields a kind takes (and requires) is in
/// each one's description; a field another kind takes is 422 naming it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewInbox {
    /// What staff call it.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 2000, pattern = r"\S")
    )]
    pub name: String,
    /// The provider. Absent: api; email: needs the server's SMTP relay (409
    /// `mail_not_configured`), takes only `name`.
    pub kind: Option<InboxKind>,
    /// api (required): where agent replies are delivered (the inbox's webhook), http://
    /// or https://.
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub webhook_url: Option<String>,
    /// api: the webhook's signing secret; absent: the server makes one (shown once).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 16, max_length = 256))]
    pub webhook_secret: Option<String>,
    /// telegram (required): the bot's token (from @BotFather); never shown again.
    #[serde(default)]
    pub bot_token: Option<String>,
    /// telegram, whatsapp: the provider API's base URL; absent: `https://api.telegram.org`
    /// or the Graph API's.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub api_url: Option<String>,
    /// whatsapp (required): the phone number's id (from the Meta app's WhatsApp settings).
    #[serde(default)]
    pub phone_number_id: Option<String>,
    /// whatsapp (required): the Cloud API's bearer token (a system user's); never shown
    /// again.
    #[serde(default)]
    pub access_token: Option<String>,
    /// whatsapp (required): the app secret its webhook's posts are signed with; never
    /// shown again.
    #[serde(default)]
    pub app_secret: Option<String>,
    /// telegram: the base URL this server is reached at by Telegram; given, the server
    /// registers the inbox's webhook there (`setWebhook`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub public_url: Option<String>,
    /// telegram: how updates are read: `webhook` (the default: Telegram posts them to the
    /// server, registered with `public_url`) or `polling` (the server asks `getUpdates`,
    /// for a bot without a public URL; no `public_url`; `deleteWebhook` is called).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::inbox_mode))]
    pub mode: Option<String>,
    /// whatsapp: an approved message template (its body variables given with each send),
    /// which agents may send outside the 24-hour window (`POST
    /// /v1/conversations/{id}/whatsapp-template`) to ask the customer to write again; with
    /// `template_language`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 512, pattern = "^[a-z0-9_]+$")
    )]
    pub template_name: Option<String>,
    /// whatsapp: the template's language code (`en_US`); with `template_name`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 16))]
    pub template_language: Option<String>,
    /// An `email` inbox's own sender (`Support <help@shop.example>` or a bare address);
    /// absent: the server's `--mail-from`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 320))]
    pub from: Option<String>,
}

/// A change to an inbox, as an admin asks for it: each field set replaces the stored one,
/// unset fields stay. Only what can change without a new inbox is here: its name, an
/// email inbox's sender, a WhatsApp inbox's template, and the provider secrets a provider
/// lets one rotate (a Telegram bot's token, a WhatsApp access token or app secret). The
/// kind, the provider's account (a bot, a phone number) and an `api` inbox's webhook do not
/// change: delete the inbox and create another.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxPatch {
    /// What staff call it.
    #[serde(default)]
    pub name: Option<String>,
    /// An `email` inbox's own sender; an empty text removes it (back to `--mail-from`).
    #[serde(default)]
    pub from: Option<String>,
    /// A `telegram` inbox's bot token, rotated (@BotFather's `/revoke`): the same bot's.
    #[serde(default)]
    pub bot_token: Option<String>,
    /// A `whatsapp` inbox's access token, rotated.
    #[serde(default)]
    pub access_token: Option<String>,
    /// A `whatsapp` inbox's app secret, rotated.
    #[serde(default)]
    pub app_secret: Option<String>,
    /// A `whatsapp` inbox's template; with `template_language`. Both empty remove it.
    #[serde(default)]
    pub template_name: Option<String>,
    /// The template's language code.
    #[serde(default)]
    pub template_language: Option<String>,
}

/// The Bot API's address.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";
/// The WhatsApp Cloud API's address (the Graph API, versioned).
pub const WHATSAPP_API_URL: &str = "https://graph.facebook.com/v21.0";
/// The setting that holds a WhatsApp inbox's phone-number id.
pub const PHONE_NUMBER_ID_KEY: &str = "phone_number_id";
/// The secret that holds a WhatsApp inbox's access token.
pub const ACCESS_TOKEN_KEY: &str = "access_token";
/// The secret that holds a WhatsApp inbox's app secret.
pub const APP_SECRET_KEY: &str = "app_secret";
/// How long after the customer's last message WhatsApp lets a business answer freely.
pub const WHATSAPP_WINDOW: time::Duration = time::Duration::hours(24);
/// The setting that holds a provider's API base URL.
pub const API_URL_KEY: &str = "api_url";
/// The secret that holds a Telegram bot's token.
pub const BOT_TOKEN_KEY: &str = "bot_token";
/// The setting that holds a Telegram inbox's mode (`polling`; absent: `webhook`).
pub const MODE_KEY: &str = "mode";
/// The [`MODE_KEY`] of a Telegram inbox that reads its updates by `getUpdates`.
pub const POLLING: &str = "polling";
/// The setting that holds a WhatsApp inbox's template name.
pub const TEMPLATE_NAME_KEY: &str = "template_name";
/// The setting that holds a WhatsApp inbox's template language code.
pub const TEMPLATE_LANGUAGE_KEY: &str = "template_language";
/// The message metadata key that marks a message sent as the inbox's WhatsApp template
/// (its value the template's name): only [`Engine::send_template`] sets it, and the
/// delivery sends the template, not the text.
pub const TEMPLATE_KEY: &str = "whatsapp_template";
/// The message metadata key with the template's language code.
pub const TEMPLATE_LANGUAGE_META_KEY: &str = "whatsapp_template_language";
/// The message metadata key with the template's body parameters (its `{{1}}`, `{{2}}`, …
/// in order), as a JSON array of strings; absent for a template without variables.
pub const TEMPLATE_PARAMETERS_KEY: &str = "whatsapp_template_parameters";
/// Most body parameters a template message takes here.
pub const MAX_TEMPLATE_PARAMETERS: usize = 20;
/// Longest body parameter, in characters (WhatsApp's limit for a template's body text).
pub const MAX_TEMPLATE_PARAMETER_CHARS: usize = 1024;

/// A customer's message as a provider sent it, checked by the channel route.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inbound {
    /// The provider's id for the customer (a chat id, a phone number, the caller's id).
    pub contact: String,
    /// The provider's id for the message: the same id twice stores one message.
    pub message: String,
    /// The customer's name, if the provider says it (used when the conversation opens).
    pub name: Option<String>,
    /// Text, or the caption of attachments.
    pub body: String,
    /// Files already put in the blob store.
    pub attachments: Vec<Attachment>,
    /// Files the provider sent with the message, stored in the conversation's files (with
    /// thumbnails) under the same checks as an upload: one bad file refuses the message
    /// before anything happens; a repeated provider message id keeps none of them.
    pub files: Vec<NewFile>,
}

/// What [`Engine::receive`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// The conversation, as it stands after the message (and the bot's answer).
    pub conversation: Conversation,
    /// The customer's message (the earlier one for a repeated provider id).
    pub message: Message,
    /// Whether the message is new (`false` for a repeat).
    pub created: bool,
    /// Whether the conversation was opened by this message.
    pub opened: bool,
}

/// What a claimed delivery of a webhook is.
#[derive(Clone, Debug, PartialEq)]
pub enum Outbound {
    /// An event webhook's delivery: post the event.
    Event,
    /// An inbox's webhook, but nothing for its customer (a note, a customer's own message,
    /// another inbox's conversation): record it as done without sending.
    Skip,
    /// A message for an inbox's customer.
    Reply(Box<Reply>),
}

/// A message to send to an inbox's customer.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The inbox (its kind, settings and secrets say how to send).
    pub inbox: Inbox,
    /// The conversation.
    pub conversation: ConversationId,
    /// The provider's id for the customer.
    pub contact: String,
    /// The message.
    pub message: Message,
}

impl Engine {
    /// Creates an inbox (admins) with the digest of its token (the server makes the token
    /// and shows it once) and, for an `api` inbox, its outbound webhook, whose secret the
    /// returned webhook carries (shown once too).
    pub async fn create_inbox(
        &self,
        actor: &Actor,
        input: NewInbox,
        token_digest: String,
    ) -> Result<(Inbox, Option<Webhook>)> {
        self.may_manage_inboxes(actor).await?;
        let tenant = actor.tenant();
        let name = self.short_text("name", &input.name)?;
        let kind = input.kind.unwrap_or(InboxKind::Api);
        if kind != InboxKind::Telegram && input.mode.is_some() {
            return Err(Error::validation("mode", "only for a telegram inbox"));
        }
        if kind != InboxKind::Whatsapp
            && (input.template_name.is_some() || input.template_language.is_some())
        {
            return Err(Error::validation(
                "template_name",
                "only for a whatsapp inbox",
            ));
        }
        if kind != InboxKind::Email && input.from.is_some() {
            return Err(Error::validation("from", "only for an email inbox"));
        }
        if token_digest.is_empty() {
            return Err(Error::validation("token", "empty"));
        }
        let mut settings = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let (url, secret) = match kind {
            InboxKind::Api => {
                if input.bot_token.is_some() || input.api_url.is_some() {
                    return Err(Error::validation("bot_token", "only for a telegram inbox"));
                }
                let url = input
                    .webhook_url
                    .ok_or_else(|| Error::validation("webhook_url", "required for an api inbox"))?;
                (url, input.webhook_secret)
            }
            InboxKind::Whatsapp => {
                if input.webhook_url.is_some()
                    || input.webhook_secret.is_some()
                    || input.bot_token.is_some()
                {
                    return Err(Error::validation(
                        "webhook_url",
                        "only for an api inbox: a whatsapp inbox replies by the Cloud API",
                    ));
                }
                let phone = input
                    .phone_number_id
                    .map(|p| p.trim().to_owned())
                    .filter(|p| {
                        !p.is_empty() && p.len() <= 32 && p.chars().all(|c| c.is_ascii_digit())
                    })
                    .ok_or_else(|| {
                        Error::validation("phone_number_id", "the number's id: digits")
                    })?;
                for (field, value, key) in [
                    ("access_token", input.access_token, ACCESS_TOKEN_KEY),
                    ("app_secret", input.app_secret, APP_SECRET_KEY),
                ] {
                    secrets.insert(key.to_owned(), whatsapp_secret(field, value)?);
                }
                settings.insert(PHONE_NUMBER_ID_KEY.to_owned(), phone);
                if let Some((name, language)) =
                    whatsapp_template(input.template_name, input.template_language)?
                {
                    settings.insert(TEMPLATE_NAME_KEY.to_owned(), name);
                    settings.insert(TEMPLATE_LANGUAGE_KEY.to_owned(), language);
                }
                let api = input
                    .api_url
                    .unwrap_or_else(|| WHATSAPP_API_URL.to_owned())
                    .trim()
                    .trim_end_matches('/')
                    .to_owned();
                settings.insert(API_URL_KEY.to_owned(), api.clone());
                (api, None)
            }
            InboxKind::Email => {
                if input.webhook_url.is_some()
                    || input.webhook_secret.is_some()
                    || input.bot_token.is_some()
                    || input.api_url.is_some()
                    || input.phone_number_id.is_some()
                    || input.access_token.is_some()
                    || input.app_secret.is_some()
                {
                    return Err(Error::validation(
                        "webhook_url",
                        "an email inbox takes only a name and a sender: replies go out by \
                         the SMTP relay",
                    ));
                }
                if let Some(from) = input.from {
                    settings.insert(
                        super::email::EMAIL_FROM_KEY.to_owned(),
                        super::email::mail_sender_setting(&from)?,
                    );
                }
                (super::email::MAIL_OUTBOX_URL.to_owned(), None)
            }
            InboxKind::Telegram => {
                if input.webhook_url.is_some() || input.webhook_secret.is_some() {
                    return Err(Error::validation(
                        "webhook_url",
                        "only for an api inbox: a telegram inbox replies by the Bot API",
                    ));
                }
                let token = input
                    .bot_token
                    .map(|t| t.trim().to_owned())
                    .ok_or_else(|| {
                        Error::validation("bot_token", "required for a telegram inbox")
                    })?;
                if !telegram_token(&token) {
                    return Err(Error::validation(
                        "bot_token",
                        "a Bot API token: digits, `:`, then letters, digits, `_` or `-`",
                    ));
                }
                secrets.insert(BOT_TOKEN_KEY.to_owned(), token);
                match input.mode.as_deref().map(str::trim) {
                    None | Some("webhook") => {}
                    Some(POLLING) if input.public_url.is_some() => {
                        return Err(Error::validation(
                            "public_url",
                            "a polling inbox reads getUpdates: no webhook to register",
                        ));
                    }
                    Some(POLLING) => {
                        settings.insert(MODE_KEY.to_owned(), POLLING.to_owned());
                    }
                    Some(_) => {
                        return Err(Error::validation("mode", "`webhook` or `polling`"));
                    }
                }
                let api = input
                    .api_url
                    .unwrap_or_else(|| TELEGRAM_API_URL.to_owned())
                    .trim()
                    .trim_end_matches('/')
                    .to_owned();
                settings.insert(API_URL_KEY.to_owned(), api.clone());
                (api, None)
            }
        };
        if let Some(public) = input.public_url {
            settings.insert(
                "public_url".to_owned(),
                public.trim().trim_end_matches('/').to_owned(),
            );
        }
        if self.inner.store.inboxes(tenant).await?.len() >= MAX_INBOXES {
            return Err(Error::validation(
                "name",
                format!("at most {MAX_INBOXES} inboxes per tenant"),
            ));
        }
        let follow = NewWebhook {
            url,
            events: vec!["message_created".to_owned()],
            secret,
        };
        // An email inbox's deliveries are handed to the mail outbox, never posted: its
        // webhook's address only says so, and is not an http one.
        let webhook = if kind == InboxKind::Email {
            self.insert_webhook(actor, follow).await
        } else {
            self.create_webhook(actor, follow).await
        };
        let webhook = webhook.map_err(|e| match e {
            Error::Validation { field, message } => Error::Validation {
                field: match (field, kind) {
                    ("url", InboxKind::Api) => "webhook_url",
                    ("url", InboxKind::Telegram | InboxKind::Whatsapp) => "api_url",
                    ("url", InboxKind::Email) => "name",
                    ("secret", _) => "webhook_secret",
                    (f, _) => f,
                },
                message,
            },
            e => e,
        })?;
        let now = self.now();
        let inbox = Inbox {
            id: InboxId(self.new_id()),
            tenant_id: tenant,
            name,
            kind,
            token_digest,
            webhook_id: Some(webhook.id),
            settings,
            secrets: InboxSecrets(secrets),
            created_at: now,
            updated_at: now,
        };
        if let Err(e) = self.inner.store.put_inbox(&inbox).await {
            let _ = self.inner.store.delete_webhook(tenant, webhook.id).await;
            return Err(e);
        }
        Ok((inbox, Some(webhook)))
    }

    /// The tenant's inboxes (admins), oldest first.
    pub async fn inboxes(&self, actor: &Actor) -> Result<Vec<Inbox>> {
        self.may_manage_inboxes(actor).await?;
        self.inner.store.inboxes(actor.tenant()).await
    }

    /// One inbox (admins).
    pub async fn inbox(&self, actor: &Actor, id: InboxId) -> Result<Inbox> {
        self.inboxes(actor)
            .await?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or(Error::NotFound("inbox"))
    }

    /// Changes an inbox (admins): what [`InboxPatch`] sets, checked as at creation, and,
    /// with `token_digest`, its token (the server makes the new one and shows it once; the
    /// old one stops working). `expected` is the [`inbox_version`] the caller edited: if the
    /// inbox changed since, [`Error::Conflict`] (a version race) and nothing changes. A
    /// field of another kind's inbox is [`Error::Validation`] on that field.
    ///
    /// The write is a compare-and-swap on the version read ([`Store::replace_inbox`](crate::Store::replace_inbox)): two
    /// admins' changes never overwrite each other unseen. With `expected` the loser gets
    /// the version race; without it, its patch is applied again to the newer inbox.
    pub async fn update_inbox(
        &self,
        actor: &Actor,
        id: InboxId,
        patch: InboxPatch,
        expected: Option<u64>,
        token_digest: Option<String>,
    ) -> Result<Inbox> {
        // A handful of rounds: each lost one means another admin's write landed between
        // our read and our write, which a desk's handful of admins cannot keep up.
        for _ in 0..8 {
            let current = self.inbox(actor, id).await?;
            let version = inbox_version(&current);
            if let Some(expected) = expected
                && expected != version
            {
                return Err(Error::version_race("the inbox", expected, version));
            }
            let seen = current.updated_at;
            let mut inbox = self.patched_inbox(current, patch.clone(), token_digest.clone())?;
            // Each change moves the version on, even within one tick of the clock.
            inbox.updated_at = self.now().max(seen + time::Duration::nanoseconds(1));
            if self.inner.store.replace_inbox(&inbox, seen).await? {
                return Ok(inbox);
            }
        }
        Err(Error::Conflict(Conflict::new(
            ConflictKind::VersionRace,
            "the inbox kept changing while this change was written; send it again",
        )))
    }

    /// `inbox` with `patch` (and a new token digest) applied and checked: nothing stored.
    fn patched_inbox(
        &self,
        mut inbox: Inbox,
        patch: InboxPatch,
        token_digest: Option<String>,
    ) -> Result<Inbox> {
        let kind = inbox.kind;
        let only = |field: &'static str, wanted: InboxKind, set: bool| {
            if set && kind != wanted {
                Err(Error::validation(
                    field,
                    format!("only for a {wanted} inbox"),
                ))
            } else {
                Ok(())
            }
        };
        only("from", InboxKind::Email, patch.from.is_some())?;
        only("bot_token", InboxKind::Telegram, patch.bot_token.is_some())?;
        only(
            "access_token",
            InboxKind::Whatsapp,
            patch.access_token.is_some(),
        )?;
        only(
            "app_secret",
            InboxKind::Whatsapp,
            patch.app_secret.is_some(),
        )?;
        only(
            "template_name",
            InboxKind::Whatsapp,
            patch.template_name.is_some() || patch.template_language.is_some(),
        )?;
        if let Some(name) = patch.name {
            inbox.name = self.short_text("name", &name)?;
        }
        if let Some(from) = patch.from {
            let key = super::email::EMAIL_FROM_KEY.to_owned();
            if from.trim().is_empty() {
                inbox.settings.remove(&key);
            } else {
                inbox
                    .settings
                    .insert(key, super::email::mail_sender_setting(&from)?);
            }
        }
        if let Some(token) = patch.bot_token {
            let token = token.trim().to_owned();
            if !telegram_token(&token) {
                return Err(Error::validation(
                    "bot_token",
                    "a Bot API token: digits, `:`, then letters, digits, `_` or `-`",
                ));
            }
            // The bot is the inbox's account (its webhook, its chats): a token of
            // another bot would answer the customers from a stranger.
            let bot = |t: &str| t.split_once(':').map(|(bot, _)| bot.to_owned());
            if bot(&token) != inbox.secrets.0.get(BOT_TOKEN_KEY).and_then(|t| bot(t)) {
                return Err(Error::validation(
                    "bot_token",
                    "another bot's token: a rotated token keeps the bot's id (the digits \
                     before `:`); another bot is another inbox",
                ));
            }
            inbox.secrets.0.insert(BOT_TOKEN_KEY.to_owned(), token);
        }
        for (field, value, key) in [
            ("access_token", patch.access_token, ACCESS_TOKEN_KEY),
            ("app_secret", patch.app_secret, APP_SECRET_KEY),
        ] {
            if value.is_some() {
                inbox
                    .secrets
                    .0
                    .insert(key.to_owned(), whatsapp_secret(field, value)?);
            }
        }
        match (patch.template_name, patch.template_language) {
            (None, None) => {}
            (Some(n), Some(l)) if n.trim().is_empty() && l.trim().is_empty() => {
                inbox.settings.remove(TEMPLATE_NAME_KEY);
                inbox.settings.remove(TEMPLATE_LANGUAGE_KEY);
            }
            (n, l) => {
                if let Some((name, language)) = whatsapp_template(n, l)? {
                    inbox.settings.insert(TEMPLATE_NAME_KEY.to_owned(), name);
                    inbox
                        .settings
                        .insert(TEMPLATE_LANGUAGE_KEY.to_owned(), language);
                }
            }
        }
        if let Some(digest) = token_digest {
            if digest.is_empty() {
                return Err(Error::validation("token", "empty"));
            }
            inbox.token_digest = digest;
        }
        Ok(inbox)
    }

    /// Deletes an inbox and its webhook (admins). Its conversations stay; their customers'
    /// next messages can no longer arrive.
    pub async fn delete_inbox(&self, actor: &Actor, id: InboxId) -> Result<()> {
        let inbox = self.inbox(actor, id).await?;
        self.inner.store.delete_inbox(actor.tenant(), id).await?;
        if let Some(webhook) = inbox.webhook_id {
            match self
                .inner
                .store
                .delete_webhook(actor.tenant(), webhook)
                .await
            {
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// An inbox for a provider's route that proves itself by a signature made with one of
    /// the inbox's secrets (WhatsApp's `X-Hub-Signature-256`): the caller checks it before
    /// acting on anything. Unknown is [`Error::Forbidden`], like a wrong token.
    pub async fn inbox_for_signature(&self, id: InboxId) -> Result<Inbox> {
        self.inner
            .store
            .inbox(id)
            .await?
            .ok_or(Error::Forbidden("inbox signature"))
    }

    /// WhatsApp's customer-service window: a business may answer a WhatsApp customer freely
    /// only within 24 hours of the customer's last message; after that the Cloud API takes
    /// template messages only. So an agent's or the bot's message to a WhatsApp inbox's
    /// conversation outside the window is refused here, with the reason, instead of being
    /// stored and then failing to send.
    pub(crate) fn check_reply_window(
        &self,
        conversation: &Conversation,
        sender: &Sender,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        // A template is what WhatsApp takes outside the window ([`Engine::send_template`]
        // alone marks a message so).
        if conversation.channel != crate::model::Channel::Whatsapp
            || !conversation.metadata.contains_key(INBOX_KEY)
            || !matches!(sender, Sender::Agent(_) | Sender::Bot)
            || metadata.contains_key(TEMPLATE_KEY)
        {
            return Ok(());
        }
        let open = conversation
            .last_customer_message_at
            .is_some_and(|at| self.now() - at < WHATSAPP_WINDOW);
        if open {
            Ok(())
        } else {
            Err(Error::Conflict(crate::error::Conflict::new(
                crate::error::ConflictKind::State,
                "outside WhatsApp's 24-hour customer-service window: the customer last wrote \
                 more than 24 hours ago, and WhatsApp takes only template messages until they \
                 write again (send the inbox's template: POST \
                 /v1/conversations/{id}/whatsapp-template)",
            )))
        }
    }

    /// Every tenant's Telegram inboxes in polling mode: the ones a server's poller reads
    /// `getUpdates` for.
    pub async fn polling_inboxes(&self) -> Result<Vec<Inbox>> {
        let mut found = Vec::new();
        for tenant in self.tenants().await? {
            found.extend(
                self.inner
                    .store
                    .inboxes(tenant.id)
                    .await?
                    .into_iter()
                    .filter(|i| {
                        i.kind == InboxKind::Telegram
                            && i.settings.get(MODE_KEY).map(String::as_str) == Some(POLLING)
                    }),
            );
        }
        Ok(found)
    }

    /// One step of `node`'s polling of `inbox` (see [`Store::poll_inbox`](crate::Store)):
    /// takes or renews its lease for `lease` from now (zero releases it) and stores
    /// `offset`, the next update to ask for; the stored offset, or `None` while another
    /// node polls it. The caller checked the inbox is a polling one.
    pub async fn poll_inbox(
        &self,
        inbox: InboxId,
        node: &str,
        offset: i64,
        lease: std::time::Duration,
    ) -> Result<Option<i64>> {
        let now = self.now();
        self.inner
            .store
            .poll_inbox(inbox, node, offset, now, now + lease)
            .await
    }

    /// Sends a WhatsApp inbox's configured template to the conversation's customer, as
    /// the acting agent's message (`whoever may reply`): the one message WhatsApp takes
    /// outside the 24-hour window, so an agent can ask the customer to write again. The
    /// stored message names the template; its delivery sends `type: template`.
    /// [`Error::Validation`] on `template` when the conversation is not a WhatsApp inbox's
    /// or its inbox has no template.
    pub async fn send_template(
        &self,
        actor: &Actor,
        id: ConversationId,
        client_message_id: Option<String>,
        parameters: Vec<String>,
    ) -> Result<super::messages::Posted> {
        template_parameters(&parameters)?;
        let conversation = self.load_conversation(actor.tenant(), id).await?;
        // Whoever may not read it learns nothing of its inbox.
        let who = self.resolve(actor).await?;
        who.authorize(crate::policy::Action::Read, &conversation)?;
        let inbox = match conversation.metadata.get(INBOX_KEY) {
            Some(inbox) => self
                .inner
                .store
                .inboxes(actor.tenant())
                .await?
                .into_iter()
                .find(|i| i.id.to_string() == *inbox),
            None => None,
        };
        let Some(inbox) = inbox.filter(|i| i.kind == InboxKind::Whatsapp) else {
            return Err(Error::validation(
                "template",
                "not a conversation of a whatsapp inbox",
            ));
        };
        let (Some(name), Some(language)) = (
            inbox.settings.get(TEMPLATE_NAME_KEY),
            inbox.settings.get(TEMPLATE_LANGUAGE_KEY),
        ) else {
            return Err(Error::validation(
                "template",
                "the inbox has no template: set template_name and template_language on it",
            ));
        };
        let mut metadata = BTreeMap::new();
        metadata.insert(TEMPLATE_KEY.to_owned(), name.clone());
        metadata.insert(TEMPLATE_LANGUAGE_META_KEY.to_owned(), language.clone());
        let mut body = format!("WhatsApp template {name} ({language})");
        if !parameters.is_empty() {
            // Staff reading the conversation see what the customer got.
            body.push_str(": ");
            body.push_str(&parameters.join(" | "));
            metadata.insert(
                TEMPLATE_PARAMETERS_KEY.to_owned(),
                serde_json::to_string(&parameters).expect("strings serialize"),
            );
        }
        Box::pin(self.post_checked(
            actor,
            id,
            PostMessage {
                body,
                client_message_id,
                metadata,
                ..PostMessage::default()
            },
        ))
        .await
    }

    /// The inbox a channel route is called for, if `token_digest` is its token's: the one
    /// check of an inbound call. Unknown inbox and wrong token are the same error, so a
    /// caller learns nothing of which inboxes exist.
    pub async fn inbox_for_token(&self, id: InboxId, token_digest: &str) -> Result<Inbox> {
        match self.inner.store.inbox(id).await? {
            Some(inbox) if constant_time_eq(&inbox.token_digest, token_digest) => Ok(inbox),
            _ => Err(Error::Forbidden("inbox token")),
        }
    }

    /// Posts a provider's message as its customer's: into the conversation the customer's
    /// earlier messages went to (reopened if the tenant allows it), or a new one on the
    /// inbox's channel. A repeated provider message id stores nothing and returns the
    /// first message. Call only with an inbox whose token or signature was checked
    /// ([`Engine::inbox_for_token`]).
    pub async fn receive(&self, inbox: &Inbox, input: Inbound) -> Result<Received> {
        if inbox.kind == InboxKind::Email {
            // Its threads are keyed by Message-ID and address, which only a parsed mail
            // gives ([`Engine::receive_mail`]).
            return Err(Error::validation(
                "inbox",
                "an email inbox takes RFC 5322 messages (POST /v1/inboxes/{id}/email)",
            ));
        }
        let contact = external_id("contact", &input.contact)?;
        let message = external_id("message", &input.message)?;
        let system = Actor::System {
            tenant: inbox.tenant_id,
        };
        let store = &self.inner.store;
        // Files are checked before anything happens: a refused file opens no conversation.
        if !input.files.is_empty() {
            self.check_files(&self.inbox_upload_policy(inbox).await?, &input.files)?;
        }
        let mut opened = false;
        let linked = match store.inbox_thread(inbox.id, &contact).await? {
            Some(id) => id,
            None => {
                let name = match input.name.as_deref().map(str::trim) {
                    Some(n) if !n.is_empty() => Some(n.chars().take(200).collect()),
                    _ => None,
                };
                let mut metadata = BTreeMap::new();
                metadata.insert(INBOX_KEY.to_owned(), inbox.id.to_string());
                metadata.insert(INBOX_CONTACT_KEY.to_owned(), contact.clone());
                // Boxed: opening and posting run the bot, and their futures are large
                // enough together to overflow a runtime thread's stack in debug builds.
                let new = Box::pin(self.open_conversation(
                    &system,
                    OpenConversation {
                        contact: ContactInput {
                            name,
                            ..ContactInput::default()
                        },
                        channel: inbox.kind.channel(),
                        metadata,
                        ..OpenConversation::default()
                    },
                ))
                .await?;
                let winner = store
                    .link_inbox_thread(inbox.tenant_id, inbox.id, &contact, new.conversation.id)
                    .await?;
                if winner == new.conversation.id {
                    opened = true;
                } else {
                    // Another server linked this customer first: its conversation is the
                    // one; ours holds nothing the customer wrote.
                    let _ = Box::pin(self.delete_conversation(&system, new.conversation.id)).await;
                }
                winner
            }
        };
        self.post_inbound(
            inbox,
            linked,
            opened,
            &message,
            input.body,
            input.attachments,
            input.files,
        )
        .await
    }

    /// Posts an inbound message as the customer of `linked`, idempotent on the provider's
    /// message id, with its files stored first (and removed again if the post fails or
    /// repeats an earlier one).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn post_inbound(
        &self,
        inbox: &Inbox,
        linked: ConversationId,
        opened: bool,
        message: &str,
        body: String,
        attachments: Vec<Attachment>,
        files: Vec<NewFile>,
    ) -> Result<Received> {
        let system = Actor::System {
            tenant: inbox.tenant_id,
        };
        let stored = if files.is_empty() {
            Vec::new()
        } else {
            self.upload_files(&system, linked, FileUse::Message, files)
                .await?
        };
        let mut attachments = attachments;
        attachments.extend(stored.iter().cloned());
        let posted = Box::pin(self.post_for_customer(
            &system,
            linked,
            PostMessage {
                body,
                attachments,
                client_message_id: Some(format!("inbox:{message}")),
                ..PostMessage::default()
            },
        ))
        .await;
        // A failed post, or a repeat whose first message has its own copies, keeps none.
        let posted = match posted {
            Ok(p) if p.created => p,
            Ok(p) => {
                self.remove_files(linked, &stored).await;
                p
            }
            Err(e) => {
                self.remove_files(linked, &stored).await;
                return Err(e);
            }
        };
        Ok(Received {
            conversation: posted.conversation,
            message: posted.message,
            created: posted.created,
            opened,
        })
    }

    /// What a claimed delivery is: an event webhook's, an inbox's reply to send, or an
    /// inbox's delivery of nothing for its customer. Messages for the customer are those
    /// an agent or the bot wrote in a conversation of the inbox, never notes nor the
    /// desk's own notices.
    pub async fn outbound(&self, due: &DueDelivery) -> Result<Outbound> {
        let tenant = due.delivery.tenant_id;
        let Some(inbox) = self
            .inner
            .store
            .inboxes(tenant)
            .await?
            .into_iter()
            .find(|i| i.webhook_id == Some(due.webhook.id))
        else {
            return Ok(Outbound::Event);
        };
        let Some(EventPayload::MessageCreated { message }) = due.event.as_ref().map(|e| &e.payload)
        else {
            return Ok(Outbound::Skip);
        };
        if message.is_note()
            || message.kind == MessageKind::Event
            || !matches!(message.sender, Sender::Agent(_) | Sender::Bot)
        {
            return Ok(Outbound::Skip);
        }
        let Some(conversation) = self
            .inner
            .store
            .conversation(tenant, message.conversation_id)
            .await?
        else {
            return Ok(Outbound::Skip);
        };
        let ours = conversation.metadata.get(INBOX_KEY).map(String::as_str)
            == Some(inbox.id.to_string().as_str());
        let Some(contact) = conversation
            .metadata
            .get(INBOX_CONTACT_KEY)
            .filter(|_| ours)
        else {
            return Ok(Outbound::Skip);
        };
        Ok(Outbound::Reply(Box::new(Reply {
            contact: contact.clone(),
            conversation: conversation.id,
            message: (**message).clone(),
            inbox,
        })))
    }

    /// Records an inbox's delivery that holds nothing for its customer
    /// ([`Outbound::Skip`]): delivered after 0 attempts, which is how the log tells it
    /// from a sent one.
    pub async fn skip_delivery(&self, due: &DueDelivery) -> Result<()> {
        let d = &due.delivery;
        let now = self.now();
        let outcome = crate::model::DeliveryOutcome {
            tenant_id: d.tenant_id,
            webhook_id: d.webhook_id,
            seq: d.seq,
            state: crate::model::DeliveryState::Delivered,
            attempts: d.attempts,
            next_attempt_at: now,
            last_status: None,
            last_error: None,
            response_ms: 0,
            at: now,
            pause: None,
        };
        self.inner.store.record_delivery(&outcome).await.map(drop)
    }

    async fn may_manage_inboxes(&self, actor: &Actor) -> Result<()> {
        match self.resolve(actor).await? {
            Resolved::System => Ok(()),
            Resolved::Staff(me) if me.role == Role::Admin => Ok(()),
            _ => Err(Error::Forbidden("manage inboxes")),
        }
    }
}

/// Checks a template's body parameters against WhatsApp's rules, so a bad one is a 422
/// here rather than a failed send: at most [`MAX_TEMPLATE_PARAMETERS`], each 1 to
/// [`MAX_TEMPLATE_PARAMETER_CHARS`] characters, without new lines or tabs and without more
/// than four spaces in a row (the Cloud API refuses those, error 132018).
fn template_parameters(parameters: &[String]) -> Result<()> {
    if parameters.len() > MAX_TEMPLATE_PARAMETERS {
        return Err(Error::validation(
            "parameters",
            format!("at most {MAX_TEMPLATE_PARAMETERS}"),
        ));
    }
    for (n, p) in parameters.iter().enumerate() {
        let chars = p.chars().count();
        if p.trim().is_empty() || chars > MAX_TEMPLATE_PARAMETER_CHARS {
            return Err(Error::validation(
                "parameters",
                format!(
                    "parameter {}: 1 to {MAX_TEMPLATE_PARAMETER_CHARS} characters",
                    n + 1
                ),
            ));
        }
        if p.chars().any(char::is_control) || p.contains("     ") {
            return Err(Error::validation(
                "parameters",
                format!(
                    "parameter {}: no new lines, tabs or more than four spaces in a row \
                     (WhatsApp refuses them)",
                    n + 1
                ),
            ));
        }
    }
    Ok(())
}

/// An inbox's version, which changes with every change to it: its last change's time in
/// nanoseconds since 1970 (the `ETag` the server answers, and `If-Match` names).
pub fn inbox_version(inbox: &Inbox) -> u64 {
    u64::try_from(inbox.updated_at.unix_timestamp_nanos()).unwrap_or(0)
}

/// A WhatsApp access token or app secret: 1 to 1,000 printable characters, no spaces.
fn whatsapp_secret(field: &'static str, value: Option<String>) -> Result<String> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 1_000 && v.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| Error::validation(field, "required for a whatsapp inbox, no spaces"))
}

/// A WhatsApp template's name and language, both or neither, in Meta's forms.
fn whatsapp_template(
    name: Option<String>,
    language: Option<String>,
) -> Result<Option<(String, String)>> {
    match (name, language) {
        (None, None) => Ok(None),
        (Some(name), Some(language)) => {
            let name = name.trim().to_owned();
            let language = language.trim().to_owned();
            // Meta's rules: lower-case letters, digits and `_`, at most 512.
            if name.is_empty()
                || name.len() > 512
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(Error::validation(
                    "template_name",
                    "the approved template's name: lower-case letters, digits, `_`",
                ));
            }
            if language.is_empty()
                || language.len() > 16
                || !language
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(Error::validation(
                    "template_language",
                    "a language code such as `en_US`",
                ));
            }
            Ok(Some((name, language)))
        }
        (Some(_), None) => Err(Error::validation(
            "template_language",
            "required with template_name",
        )),
        (None, Some(_)) => Err(Error::validation(
            "template_name",
            "required with template_language",
        )),
    }
}

/// A provider id: trimmed, 1 to [`MAX_EXTERNAL_ID_CHARS`] characters, no control ones.
fn external_id(field: &'static str, id: &str) -> Result<String> {
    let id = id.trim();
    if id.is_empty() || id.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(Error::validation(
            field,
            format!("1 to {MAX_EXTERNAL_ID_CHARS} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::validation(field, "no control characters"));
    }
    Ok(id.to_owned())
}

/// Whether a text has the Bot API token's shape (`123456:ABC-def_…`), so a typo is a
/// clear 422 rather than every reply failing.
fn telegram_token(token: &str) -> bool {
    match token.split_once(':') {
        Some((bot, key)) => {
            !bot.is_empty()
                && bot.chars().all(|c| c.is_ascii_digit())
                && !key.is_empty()
                && key.len() <= 200
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        None => false,
    }
}

/// Compares two digests without stopping at the first difference.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parameters_are_refused_where_whatsapp_would_refuse_them() {
        let ok =
            |p: &[&str]| template_parameters(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(ok(&[]).is_ok());
        assert!(ok(&["Ana", "#1042", "two  spaces", "four    spaces"]).is_ok());
        assert!(ok(&[&"x".repeat(MAX_TEMPLATE_PARAMETER_CHARS)]).is_ok());
        for bad in [
            &[""][..],
            &["  "],
            &["a\nb"],
            &["a\tb"],
            &["five     spaces"],
            &[&"x".repeat(MAX_TEMPLATE_PARAMETER_CHARS + 1)],
        ] {
            assert!(
                matches!(
                    ok(bad),
                    Err(Error::Validation {
                        field: "parameters",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let many = vec!["x"; MAX_TEMPLATE_PARAMETERS + 1];
        assert!(ok(&many).is_err());
    }
}
