//! Outbound e-mail: the mail worker claims due mails from the engine's mail outbox, sends
//! each through the operator's SMTP relay (lettre) and reports every attempt back; the
//! engine decides what follows (sent, retried with backoff on a 4xx answer or a connection
//! failure, failed on a 5xx answer or after a day).
//!
//! What a recipient gets: `From` the configured sender, `To` the contact's address, a
//! `Message-ID` of ours (`<id>.<conversation>@<the sender's domain>`, so replies thread),
//! `In-Reply-To`/`References` when the mail answers one, and a `multipart/alternative`
//! body (plain text and HTML) or plain text alone. A reply to an e-mail customer comes
//! `From` its inbox's own sender when the inbox has one, and carries the reply's files as
//! attachments (`multipart/mixed`), read from the blob store when the mail is sent, up to
//! [`MailConfig::attachment_bytes`] together; files past that cap are named at the end of
//! the text instead.
//!
//! The relay's URL carries its credentials: it is kept in a [`SmtpRelay`] whose `Debug`
//! form hides it, and no log line or answer ever shows it.

use std::time::Duration;

use chat_core::{Engine, Mail, MailAttempt, MailFiles, MailRetry};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::watch;

/// The operator's SMTP relay, as lettre's connection URL: `smtps://user:pass@host:465`
/// (TLS from the start), `smtp://user:pass@host:587?tls=required` (STARTTLS, required;
/// `?tls=opportunistic` when offered), or `smtp://host:25` (plain, only for a relay on the
/// same machine or network).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpRelay(String);

impl SmtpRelay {
    /// Checks the URL's form (scheme, host, port). The error never repeats the URL, which
    /// holds the relay's password.
    pub fn parse(url: &str) -> Result<Self, String> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url.trim())
            .map_err(|_| "not an smtp:// or smtps:// URL with a host".to_owned())?;
        Ok(Self(url.trim().to_owned()))
    }
}

impl std::fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpRelay(…)")
    }
}

/// The default [`MailConfig::attachment_bytes`]: 10 MiB.
pub const DEFAULT_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;

/// How the server sends e-mail.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// The relay; `None`: no e-mail is sent, and the routes that would send one answer 409
    /// `mail_not_configured`.
    pub relay: Option<SmtpRelay>,
    /// The sender (`Support <support@example.com>` or a bare address); its domain names
    /// our `Message-ID`s. Required with a relay.
    pub from: Option<Mailbox>,
    /// Retries.
    pub retry: MailRetry,
    /// How often the outbox is checked for due mails.
    pub poll: Duration,
    /// Longest wait for the relay, per command.
    pub timeout: Duration,
    /// Mails sent at once.
    pub concurrency: usize,
    /// A customer may have one conversation's transcript mailed once in this long.
    pub transcript_window: Duration,
    /// Most bytes of files attached to one reply mail, together (before base64, which adds
    /// a third): files past it are named in the text instead. 10 MiB by default, which
    /// with the encoding stays under the 20-25 MB most relays and mailboxes take.
    pub attachment_bytes: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            relay: None,
            from: None,
            retry: MailRetry::default(),
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            concurrency: 4,
            transcript_window: Duration::from_secs(3_600),
            attachment_bytes: DEFAULT_ATTACHMENT_BYTES,
        }
    }
}

impl MailConfig {
    /// The sender and the domain of our `Message-ID`s, when mail can be sent.
    pub fn sender(&self) -> Option<(&Mailbox, String)> {
        let from = self.from.as_ref()?;
        self.relay.as_ref()?;
        Some((from, from.email.domain().to_owned()))
    }
}

/// The message a mail becomes. `Err` (a permanent failure) for an address the relay could
/// never take. With files it is `multipart/mixed`: the body first, then each file as an
/// attachment; files only named are listed at the end of the text.
fn message(from: &Mailbox, mail: &Mail, files: MailFiles) -> Result<Message, String> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| "the recipient's address is not a valid e-mail address".to_owned())?;
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .message_id(Some(format!("<{}>", mail.message_id)))
        .user_agent(concat!("chat-server/", env!("CARGO_PKG_VERSION")).to_owned());
    if let Some(parent) = mail.references.last() {
        let references: Vec<String> = mail.references.iter().map(|r| format!("<{r}>")).collect();
        builder = builder
            .in_reply_to(format!("<{parent}>"))
            .references(references.join(" "));
    }
    let mut text = mail.text.clone();
    if !files.named.is_empty() {
        // Over the cap (or gone): the customer learns the files exist and can ask.
        text.push_str("\n\nFiles too large to send by e-mail (reply to ask for them):");
        for a in &files.named {
            text.push_str(&format!("\n- {} ({} bytes)", a.name, a.size));
        }
    }
    let built = match (&mail.html, files.attached.is_empty()) {
        (Some(html), true) => {
            builder.multipart(MultiPart::alternative_plain_html(text, html.clone()))
        }
        (None, true) => builder.header(ContentType::TEXT_PLAIN).body(text),
        (html, false) => {
            let mut mixed = match html {
                Some(html) => MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(text, html.clone())),
                None => MultiPart::mixed().singlepart(SinglePart::plain(text)),
            };
            for (attachment, bytes) in files.attached {
                // The stored type was decided from the bytes at upload; a type lettre
                // cannot parse goes as bytes.
                let kind = ContentType::parse(&attachment.content_type)
                    .unwrap_or_else(|_| ContentType::parse("application/octet-stream").unwrap());
                mixed = mixed.singlepart(Attachment::new(attachment.name).body(bytes, kind));
            }
            builder.multipart(mixed)
        }
    };
    built.map_err(|e| format!("the mail cannot be written: {e}"))
}

/// What an SMTP failure means for the mail: a 5xx answer is final; a 4xx answer, a
/// refused or dropped connection, a timeout or a TLS failure may pass.
fn attempt_of(e: &lettre::transport::smtp::Error) -> MailAttempt {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if e.is_permanent() {
        MailAttempt::Permanent(text)
    } else {
        MailAttempt::Transient(text)
    }
}

/// Runs the mail worker until `stopped` flips; returns at once without a relay.
pub(crate) async fn run(engine: Engine, config: MailConfig, stopped: watch::Receiver<bool>) {
    let (Some(relay), Some(from)) = (config.relay.clone(), config.from.clone()) else {
        return;
    };
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&relay.0) {
        Ok(builder) => builder.timeout(Some(config.timeout)).build(),
        Err(_) => {
            tracing::error!("the SMTP relay URL is not valid; no mail is sent");
            return;
        }
    };
    let retry = config.retry;
    let concurrency = config.concurrency.max(1);
    let claiming = engine.clone();
    crate::outbox::drain(
        "mails",
        config.poll,
        stopped,
        move || {
            let engine = claiming.clone();
            async move { engine.claim_mails(&retry, concurrency).await }
        },
        move |mail: Mail| {
            let (engine, transport, from) = (engine.clone(), transport.clone(), from.clone());
            let config = config.clone();
            async move { send(&engine, &transport, &config, &from, mail).await }
        },
    )
    .await;
}

/// One attempt at a claimed mail, recorded. Its sender (the inbox's own, or the
/// server's) and its files are read now; failing to read them is a transient failure.
async fn send(
    engine: &Engine,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    config: &MailConfig,
    from: &Mailbox,
    mail: Mail,
) {
    let attempt = match prepare(engine, config, from, &mail).await {
        Err(e) => MailAttempt::Transient(e),
        Ok((from, files)) => match message(&from, &mail, files) {
            Err(e) => MailAttempt::Permanent(e),
            Ok(message) => match transport.send(message).await {
                Ok(_) => MailAttempt::Sent,
                Err(e) => attempt_of(&e),
            },
        },
    };
    match engine
        .record_mail_attempt(&config.retry, &mail, attempt)
        .await
    {
        Ok(outcome) if outcome.state != chat_core::MailState::Sent => {
            tracing::info!(
                mail = %mail.id,
                attempts = outcome.attempts,
                error = outcome.last_error.as_deref().unwrap_or(""),
                state = %outcome.state,
                "mail not sent"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "recording a mail attempt failed"),
    }
}

/// The sender and the files of a mail.
async fn prepare(
    engine: &Engine,
    config: &MailConfig,
    from: &Mailbox,
    mail: &Mail,
) -> Result<(Mailbox, MailFiles), String> {
    let from = match engine.mail_sender(mail).await {
        // Checked when it was set; a sender that no longer parses falls back.
        Ok(Some(own)) => own.parse().unwrap_or_else(|_| from.clone()),
        Ok(None) => from.clone(),
        Err(e) => return Err(format!("reading the mail's inbox failed: {e}")),
    };
    let files = engine
        .mail_files(mail, config.attachment_bytes)
        .await
        .map_err(|e| format!("reading the mail's files failed: {e}"))?;
    Ok((from, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_url_is_checked_and_never_shown() {
        let relay = SmtpRelay::parse("smtps://user:s3cret@smtp.example.com:465").unwrap();
        assert!(!format!("{relay:?}").contains("s3cret"));
        let err = SmtpRelay::parse("http://user:s3cret@smtp.example.com").unwrap_err();
        assert!(!err.contains("s3cret"));
    }
}
