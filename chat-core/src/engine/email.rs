//! The e-mail channel: mails customers send to an email inbox, and the desk's replies to
//! them through the mail outbox.
//!
//! Inbound, the server parses the RFC 5322 message and hands over what matters: the `From`
//! address, the `Message-ID`, the ids it answers (`In-Reply-To`, `References`), the subject,
//! the text and the files. A mail continues a conversation only when it answers one of our
//! own mails (a `Message-ID` made by [`mail_message_id`](super::mail_message_id)) or an
//! earlier mail of the same customer, *and* that conversation is this inbox's and its
//! customer's address is this mail's `From`; anything else opens a new conversation. So a
//! forged `References` header can never put words into someone else's conversation, and a
//! forged `From` reaches only conversations the forger can never read: an e-mail customer
//! holds no token, and the address is a channel identity (an unverified claim on the
//! contact), never a login, never joined with a verified contact of the same address.
//!
//! Outbound, an email inbox's webhook follows `message_created` like every inbox's (so the
//! reply is recorded durably in the message's own transaction); the delivery worker hands
//! each agent's or bot's message to [`Engine::mail_reply`], which writes it into the mail
//! outbox as a mail to the customer, threaded under their last mail. The mail worker sends
//! it through the SMTP relay like a transcript.

use std::collections::BTreeMap;

use super::Engine;
use super::attachments::NewFile;
use super::conversations::OpenConversation;
use super::inboxes::{INBOX_CONTACT_KEY, INBOX_KEY, Received, Reply};
use super::mail::{conversation_of_message_id, mail_message_id};
use super::webhooks::DueDelivery;
use crate::error::{Error, Result};
use crate::ids::{ConversationId, MailId, MessageId};
use crate::model::{
    Attachment, ContactInput, DeliveryOutcome, DeliveryState, Inbox, InboxKind, Mail, MailKind,
    MailState, Sender,
};
use crate::policy::Actor;

/// The address an email inbox's webhook names: its deliveries are handed to the mail
/// outbox, never posted anywhere.
pub const MAIL_OUTBOX_URL: &str = "urn:chat:mail-outbox";
/// The conversation metadata key that holds the subject of the mail that opened it (the
/// desk's replies answer `Re: <subject>`).
pub const EMAIL_SUBJECT_KEY: &str = "email_subject";
/// Longest `Message-ID` kept as the key of a mail, in characters (longer ones are the
/// server's to shorten, by a digest).
pub const MAX_MESSAGE_ID_CHARS: usize = 200;
/// How many of a mail's `In-Reply-To`/`References` ids are looked at: a long thread's
/// header names its whole history, and the newest ids are the ones that matter.
pub const MAX_MAIL_REFERENCES: usize = 20;
/// How far back in a conversation the customer's last mail is looked for when replying.
const REPLY_LOOKBACK: usize = 200;

/// A customer's mail, as the server parsed it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InboundMail {
    /// The `From` address.
    pub from: String,
    /// The `From` display name, if any.
    pub name: Option<String>,
    /// The `Message-ID`, without angle brackets: the same id twice stores one message.
    pub message_id: String,
    /// The ids the mail answers, without angle brackets, the most telling first
    /// (`In-Reply-To`, then `References` newest first).
    pub references: Vec<String>,
    /// Subject.
    pub subject: String,
    /// The text (the plain-text part, or the HTML part as text).
    pub body: String,
    /// The attachments, checked against the tenant's upload policy before anything opens.
    pub files: Vec<NewFile>,
}

impl Engine {
    /// Posts a customer's mail: into the conversation it answers (see the module's rules;
    /// reopened if the tenant allows it), or a new conversation on the `email` channel whose
    /// title is the subject. `domain` is the one of our `Message-ID`s. A repeated
    /// `Message-ID` stores nothing and returns the first message. Call only with an inbox
    /// whose token was checked ([`Engine::inbox_for_token`]).
    pub async fn receive_mail(
        &self,
        inbox: &Inbox,
        mail: InboundMail,
        domain: &str,
    ) -> Result<Received> {
        if inbox.kind != InboxKind::Email {
            return Err(Error::validation(
                "inbox",
                "not an email inbox: mails go to an inbox of kind `email`",
            ));
        }
        let from = super::contacts::valid_email("from", &mail.from)?
            .ok_or_else(|| Error::validation("from", "the mail has no From address"))?;
        let key = message_key(&mail.message_id)?;
        // Checked before anything opens: a mail refused later would leave an empty
        // conversation behind.
        let body = self.mail_text(&mail.body, &mail.subject);
        if body.is_empty() && mail.files.is_empty() {
            return Err(Error::validation(
                "body",
                "the mail has no text, subject or attachment",
            ));
        }
        let store = &self.inner.store;
        let system = Actor::System {
            tenant: inbox.tenant_id,
        };
        // Files are checked before anything happens: a refused file opens no conversation.
        if !mail.files.is_empty() {
            self.check_files(&self.inbox_upload_policy(inbox).await?, &mail.files)?;
        }
        let mut opened = false;
        let linked = match store.inbox_thread(inbox.id, &key).await? {
            // A repeat (or a retry after a crash between the link and the post).
            Some(id) => id,
            None => match self
                .mail_thread(inbox, &from, &mail.references, domain)
                .await?
            {
                Some(id) => {
                    store
                        .link_inbox_thread(inbox.tenant_id, inbox.id, &key, id)
                        .await?
                }
                None => {
                    // The contact this address wrote as before, in this inbox: one contact
                    // per address and inbox, apart from any verified contact.
                    let known = match store.inbox_thread(inbox.id, &from).await? {
                        Some(earlier) => store
                            .conversation(inbox.tenant_id, earlier)
                            .await?
                            .map(|c| c.contact_id),
                        None => None,
                    };
                    let name = mail
                        .name
                        .as_deref()
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(|n| n.chars().take(200).collect());
                    let subject: String = mail
                        .subject
                        .trim()
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(200)
                        .collect();
                    let mut metadata = BTreeMap::new();
                    metadata.insert(INBOX_KEY.to_owned(), inbox.id.to_string());
                    metadata.insert(INBOX_CONTACT_KEY.to_owned(), from.clone());
                    metadata.insert(EMAIL_SUBJECT_KEY.to_owned(), subject.clone());
                    // Boxed like `receive`'s: the bot runs inside.
                    let new = Box::pin(self.open_conversation(
                        &system,
                        OpenConversation {
                            contact: ContactInput {
                                name,
                                email: Some(from.clone()),
                                ..ContactInput::default()
                            },
                            contact_id: known,
                            channel: inbox.kind.channel(),
                            title: (!subject.is_empty()).then_some(subject),
                            metadata,
                            ..OpenConversation::default()
                        },
                    ))
                    .await?;
                    let winner = store
                        .link_inbox_thread(inbox.tenant_id, inbox.id, &key, new.conversation.id)
                        .await?;
                    if winner == new.conversation.id {
                        opened = true;
                        // The first conversation of the address names its contact.
                        store
                            .link_inbox_thread(inbox.tenant_id, inbox.id, &from, winner)
                            .await?;
                    } else {
                        // Another server took this mail first: its conversation is the one.
                        let _ =
                            Box::pin(self.delete_conversation(&system, new.conversation.id)).await;
                    }
                    winner
                }
            },
        };
        self.post_inbound(inbox, linked, opened, &key, body, Vec::new(), mail.files)
            .await
    }

    /// A mail's text as a message body: line ends made `\n`, control characters other
    /// than line breaks and tabs dropped, and cut to the longest message (mails quote
    /// whole threads; the cut is marked) rather than refused, since a refused mail bounces
    /// back to the customer. Empty text is the subject.
    fn mail_text(&self, text: &str, subject: &str) -> String {
        let clean = |t: &str| -> String {
            t.replace("\r\n", "\n")
                .chars()
                .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
                .collect::<String>()
                .trim()
                .to_owned()
        };
        let mut text = clean(text);
        if text.is_empty() {
            text = clean(subject);
        }
        let max = self.inner.limits.max_message_chars;
        if text.chars().count() > max {
            const CUT: &str = "\n[…]";
            text = text
                .chars()
                .take(max.saturating_sub(CUT.chars().count()))
                .collect();
            text.push_str(CUT);
        }
        text
    }

    /// The conversation a mail answers: the first of its references that is one of our
    /// `Message-ID`s or an earlier mail of this inbox, whose conversation is this inbox's
    /// and its customer's address `from`.
    async fn mail_thread(
        &self,
        inbox: &Inbox,
        from: &str,
        references: &[String],
        domain: &str,
    ) -> Result<Option<ConversationId>> {
        let store = &self.inner.store;
        for reference in references.iter().take(MAX_MAIL_REFERENCES) {
            let candidate = match conversation_of_message_id(reference, domain) {
                Some(id) => Some(id),
                None => match message_key(reference) {
                    Ok(key) => store.inbox_thread(inbox.id, &key).await?,
                    Err(_) => None,
                },
            };
            let Some(id) = candidate else { continue };
            // Tenant-scoped: another tenant's conversation is simply not found.
            let Some(conversation) = store.conversation(inbox.tenant_id, id).await? else {
                continue;
            };
            let ours = conversation.metadata.get(INBOX_KEY).map(String::as_str)
                == Some(inbox.id.to_string().as_str());
            let same = conversation
                .metadata
                .get(INBOX_CONTACT_KEY)
                .is_some_and(|a| a.eq_ignore_ascii_case(from));
            if ours && same {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// Hands an email inbox's reply delivery to the mail outbox: a mail to the customer's
    /// address, `Re: <subject>`, answering their last mail (`In-Reply-To`/`References`), with
    /// our own `Message-ID` in `domain`; then records the delivery as done. Idempotent: the
    /// mail's id is the message's, so a delivery handed over twice (a crash between the two
    /// steps) queues one mail. `Ok(None)` when the conversation is gone (nothing to send;
    /// the delivery is recorded as skipped).
    pub async fn mail_reply(
        &self,
        due: &DueDelivery,
        reply: &Reply,
        domain: &str,
    ) -> Result<Option<Mail>> {
        let tenant = due.delivery.tenant_id;
        let store = &self.inner.store;
        let Some(conversation) = store.conversation(tenant, reply.conversation).await? else {
            self.skip_delivery(due).await?;
            return Ok(None);
        };
        let message = &reply.message;
        let mut query = crate::store::MessageQuery::latest(tenant, conversation.id, REPLY_LOOKBACK);
        query.before = Some(message.seq);
        query.include_notes = false;
        let answered = store
            .messages(&query)
            .await?
            .into_iter()
            .rev()
            .filter(|m| m.sender == Sender::Customer)
            .find_map(|m| {
                m.client_message_id
                    .as_deref()
                    .and_then(|k| k.strip_prefix("inbox:"))
                    .map(|k| k.trim_start_matches('<').trim_end_matches('>').to_owned())
            });
        let subject = conversation
            .metadata
            .get(EMAIL_SUBJECT_KEY)
            .filter(|s| !s.trim().is_empty())
            .cloned()
            .or_else(|| conversation.title.clone())
            .unwrap_or_else(|| "Your message".to_owned());
        let subject = if subject
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("re:"))
        {
            subject
        } else {
            format!("Re: {subject}")
        };
        // The message's files are not copied into the outbox: the mail worker reads them
        // from the blob store when it sends ([`Engine::mail_files`]); the mail's id is the
        // message's, which is how it finds them.
        let text = message.body.clone();
        let requested_by = match message.sender {
            Sender::Agent(agent) => format!("agent:{agent}"),
            Sender::Bot => "bot".to_owned(),
            _ => "system".to_owned(),
        };
        let now = self.now();
        let mail = Mail {
            id: MailId(message.id.0),
            tenant_id: tenant,
            conversation_id: conversation.id,
            kind: MailKind::Reply,
            requested_by,
            to: reply.contact.clone(),
            subject,
            text,
            html: None,
            message_id: mail_message_id(message.id.0, conversation.id, domain),
            references: answered.into_iter().collect(),
            state: MailState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        };
        match store.queue_mail(&mail, None).await {
            // `false`: handed over before; the mail outbox holds it once.
            Ok(_) => {}
            Err(Error::NotFound(_)) => {
                self.skip_delivery(due).await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        let d = &due.delivery;
        let outcome = DeliveryOutcome {
            tenant_id: d.tenant_id,
            webhook_id: d.webhook_id,
            seq: d.seq,
            state: DeliveryState::Delivered,
            attempts: d.attempts + 1,
            next_attempt_at: now,
            last_status: None,
            last_error: None,
            response_ms: 0,
            at: now,
            pause: None,
        };
        store.record_delivery(&outcome).await?;
        Ok(Some(mail))
    }
}

/// The files of a reply mail, as [`Engine::mail_files`] finds them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MailFiles {
    /// Files to attach, with their bytes, in the message's order.
    pub attached: Vec<(Attachment, Vec<u8>)>,
    /// Files only named in the mail: over the size cap, or gone from the blob store.
    pub named: Vec<Attachment>,
}

impl Engine {
    /// The files a mail carries: a reply's are its message's (the mail's id is the
    /// message's), read from the blob store now, at send time. They are attached in the
    /// message's order while their sizes together stay within `max_bytes`; the others
    /// (and any no longer in the blob store) are only named. Transcripts and mails whose
    /// message is gone carry none.
    pub async fn mail_files(&self, mail: &Mail, max_bytes: u64) -> Result<MailFiles> {
        let mut files = MailFiles::default();
        if mail.kind != MailKind::Reply {
            return Ok(files);
        }
        let Some(message) = self
            .inner
            .store
            .message(mail.tenant_id, MessageId(mail.id.0))
            .await?
            .filter(|m| m.conversation_id == mail.conversation_id && !m.is_note())
        else {
            return Ok(files);
        };
        let mut total = 0u64;
        for attachment in message.attachments {
            // Only the conversation's own files: a key is not a capability.
            if !super::attachments::belongs_to(&attachment.key, mail.conversation_id) {
                continue;
            }
            if total.saturating_add(attachment.size) > max_bytes {
                files.named.push(attachment);
                continue;
            }
            match self.inner.blobs.get(&attachment.key).await {
                Ok(bytes) => {
                    total += bytes.len() as u64;
                    files.attached.push((attachment, bytes));
                }
                Err(Error::NotFound(_)) => files.named.push(attachment),
                Err(e) => return Err(e),
            }
        }
        Ok(files)
    }

    /// The sender a mail goes out as when it is about a conversation of an email inbox that
    /// has its own ([`EMAIL_FROM_KEY`]); `None`: the server's.
    pub async fn mail_sender(&self, mail: &Mail) -> Result<Option<String>> {
        let store = &self.inner.store;
        let Some(conversation) = store
            .conversation(mail.tenant_id, mail.conversation_id)
            .await?
        else {
            return Ok(None);
        };
        let Some(inbox) = conversation
            .metadata
            .get(INBOX_KEY)
            .and_then(|id| id.parse::<uuid::Uuid>().ok())
        else {
            return Ok(None);
        };
        Ok(store
            .inbox(crate::ids::InboxId(inbox))
            .await?
            .filter(|i| i.tenant_id == mail.tenant_id && i.kind == InboxKind::Email)
            .and_then(|i| i.settings.get(EMAIL_FROM_KEY).cloned()))
    }
}

/// The inbox setting that holds an email inbox's own sender (`Support <help@shop.example>`
/// or a bare address); absent: the server's `--mail-from`.
pub const EMAIL_FROM_KEY: &str = "from";

/// Checks an email inbox's sender: a bare address or `Display Name <address>`, one line,
/// at most 320 characters. The server checks it again with its mail library, which is the
/// judge of what it can send.
pub(crate) fn mail_sender_setting(text: &str) -> Result<String> {
    let text = text.trim();
    let refused = || {
        Error::validation(
            "from",
            "an e-mail address, or a name and an address: `Support <help@shop.example>`",
        )
    };
    if text.is_empty() || text.chars().count() > 320 || text.chars().any(char::is_control) {
        return Err(refused());
    }
    let address = match text.strip_suffix('>').and_then(|t| t.rsplit_once('<')) {
        Some((_, address)) => address,
        None => text,
    };
    match super::contacts::valid_email("from", address) {
        Ok(Some(_)) if !address.contains(['<', '>']) => Ok(text.to_owned()),
        _ => Err(refused()),
    }
}

/// A `Message-ID` as a thread key of an inbox: `<id>`, so it can never be taken for an
/// address (the other kind of key an email inbox keeps).
fn message_key(id: &str) -> Result<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if id.is_empty() || id.chars().count() > MAX_MESSAGE_ID_CHARS {
        return Err(Error::validation(
            "message_id",
            format!("1 to {MAX_MESSAGE_ID_CHARS} characters"),
        ));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::validation(
            "message_id",
            "no spaces or control characters",
        ));
    }
    Ok(format!("<{id}>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inbox_sender_is_an_address_or_a_name_and_an_address() {
        for good in [
            "help@shop.example",
            "Orders Desk <orders@shop.example>",
            " <a@b.example> ",
        ] {
            assert_eq!(mail_sender_setting(good).unwrap(), good.trim(), "{good:?}");
        }
        for bad in [
            "",
            "not an address",
            "Orders <orders@shop.example",
            "Orders <a <b@c.example>>",
            "help@shop.example\r\nBcc: x@y.example",
        ] {
            assert!(mail_sender_setting(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_ids_become_bracketed_keys_and_bad_ones_are_refused() {
        assert_eq!(message_key(" <a.b@c> ").unwrap(), "<a.b@c>");
        assert_eq!(message_key("a.b@c").unwrap(), "<a.b@c>");
        for bad in ["", "<>", "a b@c", "a\u{7}@c"] {
            assert!(message_key(bad).is_err(), "{bad:?}");
        }
        assert!(message_key(&"x".repeat(MAX_MESSAGE_ID_CHARS + 1)).is_err());
    }
}
