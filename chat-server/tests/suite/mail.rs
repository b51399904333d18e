//! E-mail over a real SMTP exchange: a conversation's transcript mailed to its contact
//! (never with internal notes, never to an address the visitor names, once per window),
//! retried when the relay answers 451, failed at once on 550, and still sent after a
//! restart. The relay is the test's own SMTP receiver on 127.0.0.1.

use crate::common;

use std::time::Duration;

use chat_core::{Actor, ContactInput, Engine, MailContent, MailPolicy, OpenConversation, Role};
use chat_server::Config;
use chat_server::mail::{MailConfig, SmtpRelay};
use chat_server::testing::TestServer;
use common::smtp::SmtpReceiver;
use hyper::StatusCode;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};

const FROM: &str = "Acme Support <support@acme.example>";

fn mail_config(relay: &str) -> MailConfig {
    let mut mail = MailConfig {
        relay: Some(SmtpRelay::parse(relay).unwrap()),
        from: Some(FROM.parse().unwrap()),
        poll: Duration::from_millis(20),
        timeout: Duration::from_secs(10),
        ..MailConfig::default()
    };
    mail.retry.base = Duration::from_millis(20);
    mail
}

/// Polls the admin's mail log until `ready` holds for it (the worker records each attempt
/// there), or panics after a minute.
async fn wait_log(
    server: &common::Server,
    token: &str,
    what: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = server.get("/v1/mail", Some(token)).await;
        assert_eq!(log.status, StatusCode::OK, "{}", log.text);
        let items = log.body["items"].as_array().unwrap().clone();
        if ready(&items) {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_conversations_transcript_is_mailed_to_its_contact_without_notes() {
    let relay = SmtpReceiver::start().await;
    let url = relay.url();
    let server = common::start_with(|c| c.mail = mail_config(&url)).await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;
    let path = |rest: &str| format!("/v1/conversations/{conversation}{rest}");
    for (token, rest, body) in [
        (
            &visitor,
            "/messages",
            json!({ "body": "My parcel is late" }),
        ),
        (&visitor, "/handoff", json!({})),
        (&ann.token, "/claim", json!({})),
        (
            &ann.token,
            "/notes",
            json!({ "body": "VIP customer, secret discount" }),
        ),
        (
            &ann.token,
            "/messages",
            json!({ "body": "Sorry! It ships today." }),
        ),
    ] {
        let reply = server.post(&path(rest), Some(token), body).await;
        assert!(reply.status.is_success(), "{rest}: {}", reply.text);
    }
    // Not before the conversation is closed.
    let early = server
        .post(&path("/transcript/email"), Some(&visitor), json!({}))
        .await;
    assert_eq!(
        (early.status, early.error_code()),
        (StatusCode::CONFLICT, "conflict"),
        "{}",
        early.text
    );
    let closed = server
        .post(&path("/close"), Some(&ann.token), json!({}))
        .await;
    assert_eq!(closed.body["mode"], "closed", "{}", closed.text);

    // The relay is busy for the first attempt; the worker tries again.
    relay.refuse_next(1);
    // An address in the body is not where it goes: the route takes none.
    let asked = server
        .post(
            &path("/transcript/email"),
            Some(&visitor),
            json!({ "to": "victim@elsewhere.example" }),
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    assert_eq!(asked.body["to"], "v@example.com");
    assert_eq!(asked.body["kind"], "transcript");
    assert_eq!(asked.body["requested_by"], "customer");
    let message_id = asked.body["message_id"].as_str().unwrap().to_owned();
    assert!(
        message_id.ends_with(&format!(".{conversation}@acme.example")),
        "{message_id}"
    );

    let got = relay.wait_messages(1).await;
    assert_eq!(relay.refused(), 1, "the first attempt met the 451");
    assert_eq!(got[0].from, "support@acme.example");
    assert_eq!(got[0].to, vec!["v@example.com".to_owned()]);
    let raw = &got[0].data;
    let parsed = MessageParser::default().parse(raw).unwrap();
    assert_eq!(parsed.message_id(), Some(message_id.as_str()));
    assert_eq!(parsed.subject(), Some("Transcript of your conversation"));
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("v@example.com"));
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("Acme Support"), Some("support@acme.example"))
    );
    assert!(parsed.in_reply_to().is_empty());
    assert!(
        parsed
            .content_type()
            .is_some_and(|ct| ct.ctype() == "multipart" && ct.subtype() == Some("alternative")),
        "{:?}",
        parsed.content_type()
    );
    // Sent with CRLF line ends, as SMTP wants.
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    let html = parsed.body_html(0).unwrap().into_owned();
    for (part, body) in [("text", &text), ("html", &html)] {
        assert!(body.contains("My parcel is late"), "{part}: {body}");
        assert!(body.contains("Sorry! It ships today."), "{part}: {body}");
        assert!(!body.contains("VIP"), "{part} carries the note: {body}");
        assert!(
            !body.contains("Agent Ann"),
            "{part} has the staff view: {body}"
        );
    }
    assert!(text.contains("Agent:\nSorry! It ships today."), "{text}");
    assert!(!String::from_utf8_lossy(raw).contains("VIP"));

    // The log counts both attempts; only admins read it.
    let log = wait_log(&server, &admin.token, "the mail sent", |items| {
        items.first().is_some_and(|m| m["state"] == "sent")
    })
    .await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["attempts"], 2);
    assert!(log[0]["last_error"].is_null(), "{:?}", log[0]);
    assert!(log[0]["sent_at"].is_string());
    assert_eq!(
        server.get("/v1/mail", Some(&ann.token)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        server.get("/v1/mail", Some(&visitor)).await.status,
        StatusCode::FORBIDDEN
    );

    // Once per window for the visitor: the next ask is 429 and sends nothing.
    let again = server
        .post(&path("/transcript/email"), Some(&visitor), json!({}))
        .await;
    assert_eq!(
        (again.status, again.error_code()),
        (StatusCode::TOO_MANY_REQUESTS, "transcript_mailed_recently"),
        "{}",
        again.text
    );
    assert!(again.headers.contains_key("retry-after"));
    // Staff may send it again; still the customer's view, to the contact.
    let by_staff = server
        .post(&path("/transcript/email"), Some(&ann.token), json!({}))
        .await;
    assert_eq!(by_staff.status, StatusCode::ACCEPTED, "{}", by_staff.text);
    assert_eq!(by_staff.body["requested_by"], format!("agent:{}", ann.id));
    let got = relay.wait_messages(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].to, vec!["v@example.com".to_owned()]);
    let second = MessageParser::default().parse(&got[1].data).unwrap();
    assert!(!second.body_text(0).unwrap().contains("VIP"));
    assert_ne!(second.message_id(), Some(message_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_relay_it_is_409_and_without_an_address_422_and_nothing_is_queued() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;
    let asked = server
        .post(
            &format!("/v1/conversations/{conversation}/transcript/email"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (asked.status, asked.error_code()),
        (StatusCode::CONFLICT, "mail_not_configured"),
        "{}",
        asked.text
    );
    // A caller who may not read the conversation learns nothing of the relay.
    let (_, stranger) = server.visitor("s@example.com").await;
    let refused = server
        .post(
            &format!("/v1/conversations/{conversation}/transcript/email"),
            Some(&stranger),
            json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
    let log = server.get("/v1/mail", Some(&admin.token)).await;
    assert_eq!(log.body["items"], json!([]));
    drop(visitor);

    let relay = SmtpReceiver::start().await;
    let url = relay.url();
    let server = common::start_with(|c| c.mail = mail_config(&url)).await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let opened = server
        .post(
            "/v1/conversations",
            None,
            json!({ "contact": { "name": "No mail" } }),
        )
        .await;
    let conversation = opened.body["conversation"]["id"].as_str().unwrap();
    let asked = server
        .post(
            &format!("/v1/conversations/{conversation}/transcript/email"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(
        (asked.status, asked.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "contact_has_no_email"),
        "{}",
        asked.text
    );
    assert_eq!(asked.body["error"]["field"], "contact.email");
    let log = server.get("/v1/mail", Some(&admin.token)).await;
    assert_eq!(log.body["items"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_refusal_fails_the_mail_at_once() {
    let relay = SmtpReceiver::start().await;
    let url = relay.url();
    let server = common::start_with(|c| c.mail = mail_config(&url)).await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let (conversation, _) = server.visitor("reject-me@example.com").await;
    let asked = server
        .post(
            &format!("/v1/conversations/{conversation}/transcript/email"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    let log = wait_log(&server, &admin.token, "the mail failed", |items| {
        items.first().is_some_and(|m| m["state"] == "failed")
    })
    .await;
    assert_eq!(log[0]["attempts"], 1, "{:?}", log[0]);
    assert!(
        log[0]["last_error"].as_str().unwrap().contains("550"),
        "{:?}",
        log[0]
    );
    assert!(log[0]["next_attempt_at"].is_null());
    assert_eq!(relay.rejected(), 1);
    assert!(relay.messages().is_empty());
}

/// A server over the SQLite file in `dir`, mailing through `relay`.
async fn server_on(dir: &std::path::Path, relay: &str) -> (Engine, TestServer) {
    let engine = Engine::builder_with_backend(common::backend(dir)).build();
    let mut config = Config::new(common::SECRET);
    config.mail = mail_config(relay);
    let server = TestServer::start(engine.clone(), config, None).await;
    (engine, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_queued_while_the_relay_is_down_is_sent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: every attempt fails to connect.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (engine, server) = server_on(dir.path(), &format!("smtp://{dead}")).await;
    let tenant = engine
        .create_tenant("Acme", chat_core::TenantSettings::default())
        .await
        .unwrap()
        .id;
    let system = Actor::System { tenant };
    let opened = engine
        .open_conversation(
            &system,
            OpenConversation {
                contact: ContactInput {
                    name: Some("Ana".into()),
                    email: Some("ana@example.com".into()),
                    ..ContactInput::default()
                },
                ..OpenConversation::default()
            },
        )
        .await
        .unwrap();
    let policy = MailPolicy {
        transcript_window: Duration::from_secs(3_600),
        domain: "acme.example".into(),
    };
    let mail = engine
        .mail_transcript(&system, opened.conversation.id, &policy, |t| MailContent {
            subject: "Your transcript".into(),
            text: chat_server::transcript::text(t),
            html: None,
        })
        .await
        .unwrap()
        .expect("queued");
    // Wait until the worker has failed at least once against the dead relay.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = engine.mails(&system, 10).await.unwrap();
        if log[0].attempts >= 1 {
            assert_eq!(log[0].state, chat_core::MailState::Pending);
            assert!(log[0].last_error.is_some());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no attempt was made"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
    drop(engine);

    let relay = SmtpReceiver::start().await;
    let (engine, server) = server_on(dir.path(), &relay.url()).await;
    let got = relay.wait_messages(1).await;
    let parsed = MessageParser::default().parse(&got[0].data).unwrap();
    assert_eq!(parsed.message_id(), Some(mail.message_id.as_str()));
    assert_eq!(parsed.subject(), Some("Your transcript"));
    assert!(
        parsed
            .content_type()
            .is_some_and(|ct| ct.ctype() == "text" && ct.subtype() == Some("plain"))
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = engine.mails(&system, 10).await.unwrap();
        if log[0].state == chat_core::MailState::Sent {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recorded as sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
