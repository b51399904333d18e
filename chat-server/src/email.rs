//! Inbound e-mail: a raw RFC 5322 message, as an MTA hands it over, read into what the
//! engine's e-mail channel needs ([`chat_core::InboundMail`]). Parsing is `mail-parser`'s
//! (MIME, encodings, charsets, HTML to text); the rules here are which parts count:
//!
//! - the customer is the first `From` address (a mail without one is refused);
//! - the text is the first text body: the `text/plain` part, else the HTML one as text
//!   (the engine makes a mail without text its subject, and cuts a long one);
//! - the files are the attachments (inline parts that are not the text body included),
//!   each named by its `filename`/`name` parameter;
//! - the key is the `Message-ID`; a mail without one, or with one longer than the engine
//!   keeps, is keyed by the SHA-256 of its bytes instead, so an MTA's retry of the same
//!   message is still recognised;
//! - the threading ids are `In-Reply-To`, then `References` newest first.

use chat_core::{InboundMail, MAX_MAIL_REFERENCES, MAX_MESSAGE_ID_CHARS, NewFile};
use mail_parser::{MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

/// The largest raw message the inbound route takes: 25 MiB, what most mail services cap a
/// message at (attachments are base64, about 4/3 of their size). Each file is also checked
/// against the tenant's upload policy.
pub const MAX_MAIL_BYTES: usize = 25 * 1024 * 1024;

/// Why a raw message is refused: the field at fault and the reason (a 422).
#[derive(Debug, PartialEq, Eq)]
pub struct NotAMail {
    /// `mail` (not a message at all) or `from`.
    pub field: &'static str,
    /// What is wrong.
    pub reason: &'static str,
}

/// Reads a raw message.
pub fn parse(raw: &[u8]) -> Result<InboundMail, NotAMail> {
    let not = |field, reason| NotAMail { field, reason };
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| !m.headers().is_empty())
        .ok_or(not("mail", "not an RFC 5322 message: no header section"))?;
    let from = message
        .from()
        .and_then(|a| a.first())
        .ok_or(not("from", "the mail has no From address"))?;
    let address = from
        .address()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or(not("from", "the mail has no From address"))?
        .to_owned();
    let name = from.name().map(str::to_owned);
    let message_id = match message.message_id().map(str::trim) {
        Some(id)
            if !id.is_empty()
                && id.chars().count() <= MAX_MESSAGE_ID_CHARS
                && !id.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            id.to_owned()
        }
        _ => format!("{}@sha256.invalid", hex::encode(Sha256::digest(raw))),
    };
    let mut references: Vec<String> = Vec::new();
    for id in ids(message.in_reply_to())
        .into_iter()
        .chain(ids(message.references()).into_iter().rev())
    {
        if !references.contains(&id) && references.len() < MAX_MAIL_REFERENCES {
            references.push(id);
        }
    }
    let subject = message.subject().unwrap_or("").trim().to_owned();
    let body = message
        .body_text(0)
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    let files: Vec<NewFile> = message
        .attachments()
        .map(|part| {
            let content_type = part
                .content_type()
                .map(|t| match t.subtype() {
                    Some(sub) => format!("{}/{}", t.ctype(), sub),
                    None => t.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            let name = part
                .attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| "attachment".to_owned());
            NewFile::new(&name, &content_type, part.contents().to_vec())
        })
        .collect();
    Ok(InboundMail {
        from: address,
        name,
        message_id,
        references,
        subject,
        body,
        files,
    })
}

/// What `chat-server email-inbound` tells the mail server, as a sysexits code: the MTA
/// bounces the mail on a permanent failure and keeps it for another try on a temporary one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeOutcome {
    /// Stored (or a repeat of a stored mail): 0.
    Delivered,
    /// The server refused the mail itself (4xx: not a mail, no `From`, too large, wrong
    /// token, a refused attachment): `EX_DATAERR`, 65, and the MTA bounces it.
    Refused,
    /// No answer, a 5xx answer, or a 4xx that passes (408, 409 `mail_not_configured`,
    /// 429): `EX_TEMPFAIL`, 75, and the MTA tries again later.
    Temporary,
}

impl PipeOutcome {
    /// The exit code.
    pub fn code(self) -> i32 {
        match self {
            PipeOutcome::Delivered => 0,
            PipeOutcome::Refused => 65,
            PipeOutcome::Temporary => 75,
        }
    }

    /// What an answer's status means for the mail.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => PipeOutcome::Delivered,
            408 | 409 | 429 => PipeOutcome::Temporary,
            400..=499 => PipeOutcome::Refused,
            _ => PipeOutcome::Temporary,
        }
    }
}

/// Posts a raw message to `server`'s `POST /v1/inboxes/{inbox}/email` with the inbox's
/// token: what `chat-server email-inbound` does with its standard input. Returns the
/// outcome and a line for the MTA's log (the server's error message; never the token).
pub async fn pipe(
    server: &str,
    inbox: &str,
    token: &str,
    raw: Vec<u8>,
    timeout: std::time::Duration,
) -> (PipeOutcome, String) {
    use http_body_util::{BodyExt, Full};

    let url = format!("{}/v1/inboxes/{inbox}/email", server.trim_end_matches('/'));
    let request = hyper::Request::post(url.as_str())
        .header("content-type", "message/rfc822")
        .header("authorization", format!("Bearer {}", token.trim()))
        .header(
            "user-agent",
            concat!("chat-server-email-inbound/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(hyper::body::Bytes::from(raw)));
    let Ok(request) = request else {
        return (
            PipeOutcome::Refused,
            "the server URL or inbox id is not valid".to_owned(),
        );
    };
    // The server is the operator's own, usually on the same machine: loopback allowed.
    let client = crate::webhooks::client(true);
    let answer = tokio::time::timeout(timeout, async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, hyper_util::client::legacy::Error>((status, body))
    })
    .await;
    match answer {
        Ok(Ok((status, body))) => {
            let text = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_default();
            (PipeOutcome::of_status(status), format!("{status} {text}"))
        }
        Ok(Err(e)) => (
            PipeOutcome::Temporary,
            format!("no answer: {}", crate::webhooks::describe(&e)),
        ),
        Err(_) => (
            PipeOutcome::Temporary,
            format!("no answer within {} s", timeout.as_secs()),
        ),
    }
}

/// The message ids of an `In-Reply-To` or `References` header, as parsed.
fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    list.into_iter()
        .map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|id| !id.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_mail_gives_its_sender_ids_subject_and_text() {
        let raw = b"From: Jo Doe <Jo@Example.com>\r\nTo: support@acme.example\r\n\
Subject: Broken kettle\r\nMessage-ID: <m1@example.com>\r\n\
In-Reply-To: <a.b@acme.example>\r\nReferences: <root@example.com> <a.b@acme.example>\r\n\
\r\nIt leaks.\r\n";
        let mail = parse(raw).unwrap();
        assert_eq!(mail.from, "Jo@Example.com");
        assert_eq!(mail.name.as_deref(), Some("Jo Doe"));
        assert_eq!(mail.message_id, "m1@example.com");
        assert_eq!(mail.references, ["a.b@acme.example", "root@example.com"]);
        assert_eq!(mail.subject, "Broken kettle");
        assert_eq!(mail.body, "It leaks.");
    }

    #[test]
    fn an_html_only_mail_is_read_as_text_and_a_missing_id_is_the_digest() {
        let raw = b"From: jo@example.com\r\nSubject: Hi\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <b>there</b></p>\r\n";
        let mail = parse(raw).unwrap();
        assert!(mail.body.contains("Hello") && mail.body.contains("there"));
        assert!(!mail.body.contains('<'), "{}", mail.body);
        assert!(mail.message_id.ends_with("@sha256.invalid"));
        assert_eq!(parse(raw).unwrap().message_id, mail.message_id);
    }

    #[test]
    fn answers_map_to_sysexits_so_the_mta_retries_only_what_may_pass() {
        assert_eq!(PipeOutcome::of_status(201).code(), 0);
        assert_eq!(PipeOutcome::of_status(200).code(), 0);
        for refused in [400, 403, 413, 415, 422] {
            assert_eq!(PipeOutcome::of_status(refused).code(), 65, "{refused}");
        }
        for temporary in [408, 409, 429, 500, 503] {
            assert_eq!(PipeOutcome::of_status(temporary).code(), 75, "{temporary}");
        }
    }

    #[test]
    fn text_without_headers_or_a_sender_is_refused() {
        assert_eq!(parse(b"").unwrap_err().field, "mail");
        assert_eq!(
            parse(b"Subject: x\r\n\r\nno sender\r\n").unwrap_err().field,
            "from"
        );
    }
}
