//! The e-mail channel: an admin creates an `email` inbox; the operator's mail server hands
//! each customer mail over as a raw RFC 5322 message (the HTTP route, or `chat-server
//! email-inbound` as an MTA pipe); it opens or continues a conversation on the `email`
//! channel by its threading headers, goes through the bot, the queue and routing like a
//! widget message, and the bot's and agents' replies (never notes) leave through the mail
//! outbox to the test's own SMTP receiver, threaded under the customer's last mail.

use crate::common;

use std::io::Write as _;
use std::time::Duration;

use base64::Engine as _;
use chat_core::Role;
use chat_server::mail::{MailConfig, SmtpRelay};
use common::smtp::{Envelope, SmtpReceiver};
use hyper::{Method, StatusCode};
use mail_parser::MessageParser;
use serde_json::{Value, json};

const FROM: &str = "Acme Support <support@acme.example>";
/// What the default rule bot answers a message it has no rule for.
const BOT_FALLBACK: &str = "Could you rephrase";

async fn server(relay: Option<&SmtpReceiver>) -> common::Server {
    let url = relay.map(SmtpReceiver::url);
    common::start_with(move |c| {
        c.webhooks.poll = Duration::from_millis(20);
        c.webhooks.retry.base = Duration::from_millis(20);
        c.webhooks.retry.max = Duration::from_millis(200);
        if let Some(url) = url {
            let mut mail = MailConfig {
                relay: Some(SmtpRelay::parse(&url).unwrap()),
                from: Some(FROM.parse().unwrap()),
                poll: Duration::from_millis(20),
                ..MailConfig::default()
            };
            mail.retry.base = Duration::from_millis(20);
            c.mail = mail;
        }
    })
    .await
}

/// A customer's mail as their mail program writes it.
struct Mail<'a> {
    from: &'a str,
    id: &'a str,
    subject: &'a str,
    in_reply_to: Option<&'a str>,
    references: &'a [&'a str],
    text: &'a str,
    files: &'a [(&'a str, &'a str, &'a [u8])],
}

impl Mail<'_> {
    fn raw(&self) -> Vec<u8> {
        let mut head = format!(
            "From: {}\r\nTo: support@acme.example\r\nSubject: {}\r\nDate: Mon, 7 Dec 2026 04:00:00 +0000\r\nMessage-ID: <{}>\r\nMIME-Version: 1.0\r\n",
            self.from, self.subject, self.id
        );
        if let Some(parent) = self.in_reply_to {
            head.push_str(&format!("In-Reply-To: <{parent}>\r\n"));
        }
        if !self.references.is_empty() {
            let refs: Vec<String> = self.references.iter().map(|r| format!("<{r}>")).collect();
            head.push_str(&format!("References: {}\r\n", refs.join(" ")));
        }
        if self.files.is_empty() {
            head.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
            head.push_str(self.text);
            head.push_str("\r\n");
            return head.into_bytes();
        }
        let boundary = "=-boundary-42";
        head.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            self.text
        ));
        for (name, kind, bytes) in self.files {
            head.push_str(&format!(
                "--{boundary}\r\nContent-Type: {kind}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ));
        }
        head.push_str(&format!("--{boundary}--\r\n"));
        head.into_bytes()
    }
}

fn mail<'a>(from: &'a str, id: &'a str, text: &'a str) -> Mail<'a> {
    Mail {
        from,
        id,
        subject: "Broken kettle",
        in_reply_to: None,
        references: &[],
        text,
        files: &[],
    }
}

async fn post_mail(
    s: &common::Server,
    inbox: &str,
    token: Option<&str>,
    raw: Vec<u8>,
) -> chat_server::testing::Reply {
    s.send_as(
        Method::POST,
        &format!("/v1/inboxes/{inbox}/email"),
        token,
        &[("content-type", "message/rfc822")],
        raw,
    )
    .await
}

/// Creates an email inbox; its id and token.
async fn email_inbox(s: &common::Server, admin: &str) -> (String, String) {
    let created = s
        .post(
            "/v1/inboxes",
            Some(admin),
            json!({ "name": "Support mail", "kind": "email" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["channel"], "email");
    assert!(
        created.body.get("webhook_secret").is_none(),
        "{}",
        created.text
    );
    (
        created.body["id"].as_str().unwrap().to_owned(),
        created.body["token"].as_str().unwrap().to_owned(),
    )
}

/// The mail the relay got whose text holds `needle`, parsed: (envelope, Message-ID,
/// In-Reply-To, References, subject, text).
struct Sent {
    envelope: Envelope,
    message_id: String,
    in_reply_to: Option<String>,
    references: Vec<String>,
    subject: String,
    text: String,
}

async fn sent_with(relay: &SmtpReceiver, needle: &str) -> Sent {
    let needle = needle.to_owned();
    relay
        .wait_for(&format!("a mail with {needle:?}"), |r| {
            r.messages().iter().any(|m| text_of(m).contains(&needle))
        })
        .await;
    let envelope = relay
        .messages()
        .into_iter()
        .find(|m| text_of(m).contains(&needle))
        .unwrap();
    let parsed = MessageParser::default().parse(&envelope.data).unwrap();
    let list = |v: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        match v {
            mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
            mail_parser::HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
            _ => Vec::new(),
        }
    };
    Sent {
        message_id: parsed.message_id().unwrap().to_owned(),
        in_reply_to: list(parsed.in_reply_to()).into_iter().next(),
        references: list(parsed.references()),
        subject: parsed.subject().unwrap_or("").to_owned(),
        text: parsed.body_text(0).unwrap_or_default().into_owned(),
        envelope,
    }
}

fn text_of(envelope: &Envelope) -> String {
    MessageParser::default()
        .parse(&envelope.data)
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default()
}

async fn conversation(s: &common::Server, token: &str, id: &str) -> Value {
    let shown = s.get(&format!("/v1/conversations/{id}"), Some(token)).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    shown.body
}

async fn messages(s: &common::Server, token: &str, id: &str) -> Vec<Value> {
    let listed = s
        .get(&format!("/v1/conversations/{id}/messages"), Some(token))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    listed.body["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_inbox_is_refused_without_an_smtp_relay() {
    let s = server(None).await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let refused = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Support mail", "kind": "email" }),
        )
        .await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::CONFLICT, "mail_not_configured"),
        "{}",
        refused.text
    );
    let listed = s.get("/v1/inboxes", Some(&admin.token)).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_opens_a_conversation_and_replies_go_out_by_mail_threaded_under_the_customers() {
    let relay = SmtpReceiver::start().await;
    let s = server(Some(&relay)).await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    // Only admins create inboxes; an email inbox takes a name and nothing else.
    let new = json!({ "name": "Support mail", "kind": "email" });
    let refused = s.post("/v1/inboxes", Some(&ann.token), new).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let odd = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "x", "kind": "email", "webhook_url": "https://hooks.example/x" }),
        )
        .await;
    assert_eq!(odd.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", odd.text);
    let (inbox, token) = email_inbox(&s, &admin.token).await;

    // The first mail opens a conversation on the email channel, titled by its subject.
    let jo = "Jo Doe <Jo@Customer.example>";
    let first = mail(jo, "m1@customer.example", "My kettle leaks.").raw();
    let opened = post_mail(&s, &inbox, Some(&token), first.clone()).await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    assert_eq!(opened.body["opened"], true);
    let id = opened.body["conversation_id"].as_str().unwrap().to_owned();
    // The MTA delivers it again (its retry): one message, the same answer.
    let again = post_mail(&s, &inbox, Some(&token), first).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["created"], false);
    assert_eq!(again.body["message_id"], opened.body["message_id"]);
    let shown = conversation(&s, &admin.token, &id).await;
    assert_eq!(shown["channel"], "email", "{shown}");
    assert_eq!(shown["title"], "Broken kettle", "{shown}");
    assert_eq!(shown["mode"], "bot", "{shown}");
    let history = messages(&s, &admin.token, &id).await;
    assert_eq!(
        history
            .iter()
            .filter(|m| m["body"] == "My kettle leaks.")
            .count(),
        1,
        "{history:?}"
    );
    // The contact is the address, as an unverified claim.
    let contact = shown["contact_id"].as_str().unwrap().to_owned();
    let person = s
        .get(&format!("/v1/contacts/{contact}"), Some(&admin.token))
        .await;
    assert_eq!(
        person.body["email"], "jo@customer.example",
        "{}",
        person.text
    );
    assert_eq!(person.body["email_verified"], false, "{}", person.text);
    assert_eq!(person.body["name"], "Jo Doe", "{}", person.text);

    // The bot's answer goes out by mail: to the customer, `Re:` their subject, answering
    // their mail, with a Message-ID of ours that names the conversation.
    let bot = sent_with(&relay, BOT_FALLBACK).await;
    assert_eq!(bot.envelope.to, ["jo@customer.example"]);
    assert_eq!(bot.envelope.from, "support@acme.example");
    assert_eq!(bot.subject, "Re: Broken kettle");
    assert_eq!(bot.in_reply_to.as_deref(), Some("m1@customer.example"));
    assert_eq!(bot.references, ["m1@customer.example"]);
    assert!(
        bot.message_id.ends_with(&format!(".{id}@acme.example")),
        "{}",
        bot.message_id
    );

    // Jo answers the bot's mail asking for a human: the same conversation, queued.
    let human = Mail {
        in_reply_to: Some(&bot.message_id),
        references: &["m1@customer.example", &bot.message_id],
        subject: "Re: Broken kettle",
        ..mail(jo, "m2@customer.example", "I want a human")
    };
    let handoff = post_mail(&s, &inbox, Some(&token), human.raw()).await;
    assert_eq!(handoff.status, StatusCode::CREATED, "{}", handoff.text);
    assert_eq!(handoff.body["conversation_id"], json!(id));
    assert_eq!(handoff.body["opened"], false);
    assert_eq!(conversation(&s, &admin.token, &id).await["mode"], "queued");

    // Ann takes it, writes a note and an answer: the answer is mailed, the note never.
    let claimed = s
        .post(
            &format!("/v1/conversations/{id}/claim"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);
    for (route, body) in [
        ("notes", "internal: replace under warranty"),
        ("messages", "Sorry! A new kettle ships today."),
    ] {
        let posted = s
            .post(
                &format!("/v1/conversations/{id}/{route}"),
                Some(&ann.token),
                json!({ "body": body }),
            )
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    }
    let answer = sent_with(&relay, "A new kettle ships today").await;
    assert_eq!(answer.subject, "Re: Broken kettle");
    assert_eq!(answer.in_reply_to.as_deref(), Some("m2@customer.example"));
    assert_eq!(answer.references, ["m2@customer.example"]);
    assert!(answer.message_id.ends_with(&format!(".{id}@acme.example")));
    assert!(answer.text.contains("Sorry! A new kettle ships today."));
    assert!(
        relay
            .messages()
            .iter()
            .all(|m| !String::from_utf8_lossy(&m.data).contains("warranty")),
        "a note was mailed"
    );
    assert!(
        relay
            .messages()
            .iter()
            .all(|m| !text_of(m).contains("I want a human")),
        "the customer's own mail was echoed back"
    );
    // The mail log has the replies, each with the agent or the bot who wrote it.
    let log = s.get("/v1/mail", Some(&admin.token)).await;
    let replies: Vec<&Value> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "reply")
        .collect();
    assert!(
        replies
            .iter()
            .any(|m| m["requested_by"] == format!("agent:{}", ann.id)
                && m["message_id"] == answer.message_id),
        "{}",
        log.text
    );

    // Jo answers Ann's mail with a photo and a text file: the same conversation, the files
    // are the message's attachments, typed by their bytes.
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR leak";
    let note: &[u8] = b"serial 4417";
    let files: &[(&str, &str, &[u8])] = &[
        ("leak.png", "application/octet-stream", png),
        ("serial.txt", "text/plain", note),
    ];
    let with_files = Mail {
        in_reply_to: Some(&answer.message_id),
        references: &["m1@customer.example", &answer.message_id],
        subject: "Re: Broken kettle",
        files,
        ..mail(jo, "m3@customer.example", "Here is the leak.")
    };
    let attached = post_mail(&s, &inbox, Some(&token), with_files.raw()).await;
    assert_eq!(attached.status, StatusCode::CREATED, "{}", attached.text);
    assert_eq!(attached.body["conversation_id"], json!(id));
    let history = messages(&s, &admin.token, &id).await;
    let message = history
        .iter()
        .find(|m| m["body"] == "Here is the leak.")
        .unwrap_or_else(|| panic!("{history:?}"));
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2, "{message}");
    assert_eq!(attachments[0]["name"], "leak.png");
    assert_eq!(attachments[0]["content_type"], "image/png");
    for (attachment, bytes) in attachments.iter().zip([png, note]) {
        let got = s
            .get(
                &format!(
                    "/v1/conversations/{id}/files/{}",
                    attachment["key"].as_str().unwrap()
                ),
                Some(&admin.token),
            )
            .await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text);
        assert_eq!(&got.bytes[..], bytes);
    }

    // Closed, then Jo writes again under Ann's mail: the conversation reopens.
    let closed = s
        .post(
            &format!("/v1/conversations/{id}/close"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(closed.body["mode"], "closed", "{}", closed.text);
    let later = Mail {
        in_reply_to: Some(&answer.message_id),
        subject: "Re: Broken kettle",
        ..mail(jo, "m4@customer.example", "It leaks again.")
    };
    let reopened = post_mail(&s, &inbox, Some(&token), later.raw()).await;
    assert_eq!(reopened.status, StatusCode::CREATED, "{}", reopened.text);
    assert_eq!(reopened.body["conversation_id"], json!(id));
    assert_ne!(conversation(&s, &admin.token, &id).await["mode"], "closed");

    // A new mail (no threading headers) from the same address is a new conversation of
    // the same contact.
    let fresh = Mail {
        subject: "Invoice",
        ..mail(
            "jo@customer.example",
            "m5@customer.example",
            "Where is my invoice?",
        )
    };
    let other = post_mail(&s, &inbox, Some(&token), fresh.raw()).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    assert_eq!(other.body["opened"], true);
    let second = other.body["conversation_id"].as_str().unwrap().to_owned();
    assert_ne!(second, id);
    let second = conversation(&s, &admin.token, &second).await;
    assert_eq!(second["contact_id"], json!(contact), "{second}");
    assert_eq!(second["title"], "Invoice");
    assert!(
        messages(&s, &admin.token, &id)
            .await
            .iter()
            .all(|m| m["body"] != "Where is my invoice?")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_threading_headers_never_reach_another_customers_conversation() {
    let relay = SmtpReceiver::start().await;
    let s = server(Some(&relay)).await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let (inbox, token) = email_inbox(&s, &admin.token).await;
    let (other_inbox, other_token) = {
        let created = s
            .post(
                "/v1/inboxes",
                Some(&admin.token),
                json!({ "name": "Sales mail", "kind": "email" }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        (
            created.body["id"].as_str().unwrap().to_owned(),
            created.body["token"].as_str().unwrap().to_owned(),
        )
    };
    let jo = post_mail(
        &s,
        &inbox,
        Some(&token),
        mail(
            "jo@customer.example",
            "j1@customer.example",
            "Private: my address is 1 Elm St",
        )
        .raw(),
    )
    .await;
    assert_eq!(jo.status, StatusCode::CREATED, "{}", jo.text);
    let jos = jo.body["conversation_id"].as_str().unwrap().to_owned();
    let ours = sent_with(&relay, BOT_FALLBACK).await.message_id;

    // Eve names our mail to Jo, and Jo's own mail: a conversation of her own.
    let forged = Mail {
        in_reply_to: Some(&ours),
        references: &["j1@customer.example"],
        ..mail(
            "eve@attacker.example",
            "e1@attacker.example",
            "Add me to this thread",
        )
    };
    let eve = post_mail(&s, &inbox, Some(&token), forged.raw()).await;
    assert_eq!(eve.status, StatusCode::CREATED, "{}", eve.text);
    assert_eq!(eve.body["opened"], true);
    assert_ne!(eve.body["conversation_id"], json!(jos));
    // Jo's address through another inbox, naming Jo's thread: not that inbox's, so new.
    let elsewhere = Mail {
        in_reply_to: Some(&ours),
        ..mail("jo@customer.example", "j2@customer.example", "Via sales")
    };
    let via = post_mail(&s, &other_inbox, Some(&other_token), elsewhere.raw()).await;
    assert_eq!(via.status, StatusCode::CREATED, "{}", via.text);
    assert_ne!(via.body["conversation_id"], json!(jos));
    let history = messages(&s, &admin.token, &jos).await;
    assert!(
        history
            .iter()
            .all(|m| m["body"] != "Add me to this thread" && m["body"] != "Via sales"),
        "{history:?}"
    );
    // Eve's bot answer goes to Eve, never to Jo.
    relay
        .wait_for("the bot's answer to Eve", |r| {
            r.messages()
                .iter()
                .any(|m| m.to == ["eve@attacker.example"])
        })
        .await;
    assert!(
        relay
            .messages()
            .iter()
            .filter(|m| m.to == ["jo@customer.example"])
            .all(|m| !String::from_utf8_lossy(&m.data).contains("Add me")),
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mail_is_refused_and_nothing_is_stored() {
    let relay = SmtpReceiver::start().await;
    let s = server(Some(&relay)).await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let (inbox, token) = email_inbox(&s, &admin.token).await;
    let good = mail("jo@customer.example", "b1@customer.example", "hello").raw();

    let anonymous = post_mail(&s, &inbox, None, good.clone()).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    let wrong = post_mail(&s, &inbox, Some("inbox_wrong"), good.clone()).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    let unknown = post_mail(&s, &uuid_like(), Some(&token), good.clone()).await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN, "{}", unknown.text);
    let as_json = s
        .send_as(
            Method::POST,
            &format!("/v1/inboxes/{inbox}/email"),
            Some(&token),
            &[("content-type", "application/json")],
            good.clone(),
        )
        .await;
    assert_eq!(
        as_json.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        as_json.text
    );
    // The api inbox's route does not take an email inbox's messages.
    let via_api = s
        .post(
            &format!("/v1/inboxes/{inbox}/messages"),
            Some(&token),
            json!({ "contact": { "id": "jo@customer.example" }, "message": { "id": "x", "text": "hi" } }),
        )
        .await;
    assert_eq!(
        via_api.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        via_api.text
    );
    for (raw, field) in [
        (b"".to_vec(), "mail"),
        (
            b"Subject: no sender\r\nMessage-ID: <b2@x>\r\n\r\nwho am I\r\n".to_vec(),
            "from",
        ),
        (
            b"From: not an address\r\nMessage-ID: <b3@x>\r\n\r\nhello\r\n".to_vec(),
            "from",
        ),
    ] {
        let bad = post_mail(&s, &inbox, Some(&token), raw).await;
        assert_eq!(
            bad.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            bad.text
        );
        assert_eq!(bad.body["error"]["field"], field, "{}", bad.text);
    }
    // An attachment whose bytes are no accepted type: the whole mail is refused.
    let exe: &[(&str, &str, &[u8])] =
        &[("tool.exe", "image/png", b"MZ\x90\0\x03\0\0\0 not an image")];
    let refused = Mail {
        files: exe,
        ..mail("jo@customer.example", "b4@customer.example", "see attached")
    };
    let refused = post_mail(&s, &inbox, Some(&token), refused.raw()).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.body["error"]["field"], "file", "{}", refused.text);
    // Over the size cap: 413 before it is parsed.
    let mut huge = b"From: jo@customer.example\r\nMessage-ID: <b5@x>\r\n\r\n".to_vec();
    huge.resize(chat_server::email::MAX_MAIL_BYTES + 1, b'a');
    let too_large = post_mail(&s, &inbox, Some(&token), huge).await;
    assert_eq!(
        too_large.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_large.text
    );

    let listed = s.get("/v1/conversations", Some(&admin.token)).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    let contacts = s.get("/v1/contacts", Some(&admin.token)).await;
    assert_eq!(contacts.body["items"], json!([]), "{}", contacts.text);
    assert!(relay.messages().is_empty());
    s.stop().await;
}

fn uuid_like() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_inbound_command_pipes_a_mail_and_exits_per_sysexits() {
    let relay = SmtpReceiver::start().await;
    let s = server(Some(&relay)).await;
    let admin = s.staff("Root", Role::Admin, &[]).await;
    let (inbox, token) = email_inbox(&s, &admin.token).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, "inbox_wrong").unwrap();
    let base = format!("http://{}", s.addr);
    // A port nothing listens on: bound, then closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let run = |server: String, token_file: std::path::PathBuf, raw: Vec<u8>| {
        let inbox = inbox.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
                .args(["email-inbound", "--server", &server, "--inbox", &inbox])
                .arg("--token-file")
                .arg(&token_file)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&raw).unwrap();
            let out = child.wait_with_output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };
    let raw = mail(
        "pat@customer.example",
        "p1@customer.example",
        "Sent by the MTA",
    )
    .raw();

    let (code, log) = run(base.clone(), token_file.clone(), raw.clone())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{log}");
    let listed = s.get("/v1/conversations", Some(&admin.token)).await;
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", listed.text);
    assert_eq!(items[0]["channel"], "email");
    // The MTA delivers it again: stored once, and still a success.
    let (code, log) = run(base.clone(), token_file.clone(), raw.clone())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{log}");
    let id = items[0]["id"].as_str().unwrap();
    let history = messages(&s, &admin.token, id).await;
    assert_eq!(
        history
            .iter()
            .filter(|m| m["body"] == "Sent by the MTA")
            .count(),
        1
    );
    // Refused by the server: EX_DATAERR, the mail bounces.
    let (code, log) = run(
        base.clone(),
        token_file.clone(),
        b"Subject: x\r\n\r\nno sender\r\n".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(code, Some(65), "{log}");
    assert!(log.contains("422"), "{log}");
    let (code, log) = run(base.clone(), wrong_file, raw.clone()).await.unwrap();
    assert_eq!(code, Some(65), "{log}");
    assert!(!log.contains("inbox_wrong"), "{log}");
    // The server cannot be reached: EX_TEMPFAIL, the MTA keeps the mail and tries later.
    let (code, log) = run(closed, token_file.clone(), raw.clone()).await.unwrap();
    assert_eq!(code, Some(75), "{log}");
    // No token file: EX_CONFIG.
    let (code, log) = run(base, dir.path().join("missing"), raw).await.unwrap();
    assert_eq!(code, Some(78), "{log}");
    assert!(!log.contains(&token));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_carry_their_files_as_attachments_from_the_inboxs_own_sender() {
    use mail_parser::MimeHeaders as _;

    let relay = SmtpReceiver::start().await;
    let url = relay.url();
    // A small cap, so one file is attached and the larger one only named.
    let s = common::start_with(move |c| {
        c.webhooks.poll = Duration::from_millis(20);
        let mut mail = MailConfig {
            relay: Some(SmtpRelay::parse(&url).unwrap()),
            from: Some(FROM.parse().unwrap()),
            poll: Duration::from_millis(20),
            attachment_bytes: 100,
            ..MailConfig::default()
        };
        mail.retry.base = Duration::from_millis(20);
        c.mail = mail;
    })
    .await;
    let admin = s.staff("Root", Role::Admin, &[]).await;

    // A sender is an address or a name and an address; only an email inbox has one.
    for (body, field) in [
        (
            json!({ "name": "x", "kind": "email", "from": "not an address" }),
            "from",
        ),
        (
            json!({ "name": "x", "kind": "email", "from": "Orders <orders@shop.example" }),
            "from",
        ),
        (
            json!({ "name": "x", "webhook_url": "http://127.0.0.1:9/x", "from": "a@b.example" }),
            "from",
        ),
    ] {
        let refused = s.post("/v1/inboxes", Some(&admin.token), body).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert_eq!(refused.body["error"]["field"], field, "{}", refused.text);
    }
    let created = s
        .post(
            "/v1/inboxes",
            Some(&admin.token),
            json!({ "name": "Orders", "kind": "email", "from": "Orders Desk <orders@shop.example>" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(
        created.body["settings"]["from"],
        "Orders Desk <orders@shop.example>"
    );
    let inbox = created.body["id"].as_str().unwrap().to_owned();
    let token = created.body["token"].as_str().unwrap().to_owned();

    let jo = "Jo <jo@customer.example>";
    let opened = post_mail(
        &s,
        &inbox,
        Some(&token),
        mail(jo, "f1@customer.example", "Where is my invoice?").raw(),
    )
    .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let id = opened.body["conversation_id"].as_str().unwrap().to_owned();
    // The bot's answer already comes from the inbox's sender, not --mail-from.
    let bot = sent_with(&relay, BOT_FALLBACK).await;
    assert_eq!(bot.envelope.from, "orders@shop.example");
    let parsed = MessageParser::default().parse(&bot.envelope.data).unwrap();
    let from = parsed.from().and_then(|f| f.first()).unwrap();
    assert_eq!(from.name(), Some("Orders Desk"));
    // Our Message-IDs keep the server's domain: that is what threads the customer's answer.
    assert!(
        bot.message_id.ends_with("@acme.example"),
        "{}",
        bot.message_id
    );

    // The admin answers with two files: the small one is attached, byte for byte; the
    // one past the cap is named in the text.
    let invoice = b"%PDF-1.7\n invoice 1042".to_vec();
    let mut photo = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    photo.extend(std::iter::repeat_n(7u8, 200));
    let (content_type, form) = chat_server::testing::multipart(
        &[],
        &[
            ("files", "invoice.pdf", "application/pdf", &invoice),
            ("files", "parcel.png", "image/png", &photo),
        ],
    );
    let uploaded = s
        .send_as(
            Method::POST,
            &format!("/v1/conversations/{id}/files"),
            Some(&admin.token),
            &[("content-type", content_type.as_str())],
            form,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text);
    let answered = s
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&admin.token),
            json!({ "body": "Here is your invoice.", "attachments": uploaded.body["items"] }),
        )
        .await;
    assert_eq!(answered.status, StatusCode::CREATED, "{}", answered.text);
    let sent = sent_with(&relay, "Here is your invoice.").await;
    assert_eq!(sent.envelope.from, "orders@shop.example");
    let parsed = MessageParser::default().parse(&sent.envelope.data).unwrap();
    let attached: Vec<(String, Vec<u8>)> = parsed
        .attachments()
        .map(|a| {
            (
                a.attachment_name().unwrap_or_default().to_owned(),
                a.contents().to_vec(),
            )
        })
        .collect();
    assert_eq!(attached, [("invoice.pdf".to_owned(), invoice)]);
    assert!(
        sent.text.contains("Files too large to send by e-mail") && sent.text.contains("parcel.png"),
        "{}",
        sent.text
    );
    assert!(!sent.text.contains("invoice.pdf"), "{}", sent.text);

    // The admin changes the sender: the next reply comes from the new one; an empty
    // sender goes back to the server's.
    let changed = s
        .patch(
            &format!("/v1/inboxes/{inbox}"),
            Some(&admin.token),
            json!({ "from": "billing@shop.example" }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["settings"]["from"], "billing@shop.example");
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&admin.token),
        json!({ "body": "Billing will follow up." }),
    )
    .await;
    assert_eq!(
        sent_with(&relay, "Billing will follow up.")
            .await
            .envelope
            .from,
        "billing@shop.example"
    );
    let reset = s
        .patch(
            &format!("/v1/inboxes/{inbox}"),
            Some(&admin.token),
            json!({ "from": "" }),
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    assert!(
        reset.body["settings"].get("from").is_none(),
        "{}",
        reset.text
    );
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&admin.token),
        json!({ "body": "Back to the desk." }),
    )
    .await;
    assert_eq!(
        sent_with(&relay, "Back to the desk.").await.envelope.from,
        "support@acme.example"
    );
    s.stop().await;
}
