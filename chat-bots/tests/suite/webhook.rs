//! The webhook bot against a local bot service.

use crate::common;

use std::time::Duration;

use chat_bots::{SignatureError, WebhookBot, WebhookConfig, sign, verify_signature};
use chat_core::{BotDecision, BotErrorKind, Error};
use common::{Line, Reply, fixture, serve};

const SECRET: &[u8] = b"shared-webhook-secret";
const WINDOW: Duration = Duration::from_secs(300);

const CONVERSATION: &[Line] = &[
    Line::Customer("hi"),
    Line::Bot("Hello! How can I help?"),
    Line::Note("staff only"),
    Line::Customer("I need a refund"),
];

fn bot(url: &str) -> WebhookBot {
    WebhookBot::new(WebhookConfig::new(format!("{url}/events")), SECRET).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn events_are_signed_and_the_signature_verifies() {
    let mut server = serve(|_| Reply::Json(r#"{"action":"none"}"#.into())).await;
    let f = fixture(CONVERSATION).await;
    assert_eq!(
        f.respond(&bot(&server.url)).await.unwrap(),
        BotDecision::Silent
    );

    let request = server.request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/events");
    let timestamp = request.header("x-chat-timestamp").unwrap().to_owned();
    let signature = request.header("x-chat-signature").unwrap().to_owned();
    assert!(timestamp.parse::<u64>().unwrap().abs_diff(now()) < 5);
    assert!(signature.starts_with("sha256="));
    assert_eq!(
        verify_signature(SECRET, &timestamp, &request.body, &signature, WINDOW),
        Ok(())
    );

    let event = request.json();
    assert_eq!(event["event"], "message_created");
    assert_eq!(event["conversation"]["id"], f.conversation.id.to_string());
    assert_eq!(event["conversation"]["mode"], "bot");
    assert_eq!(event["message"]["body"], "I need a refund");
    assert_eq!(event["message"]["sender"]["type"], "customer");
    let history: Vec<&str> = event["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["hi", "Hello! How can I help?"],
        "notes never leave"
    );
}

#[tokio::test]
async fn a_tampered_body_an_old_timestamp_or_another_secret_is_refused() {
    let mut server = serve(|_| Reply::Json(r#"{"action":"none"}"#.into())).await;
    let f = fixture(CONVERSATION).await;
    f.respond(&bot(&server.url)).await.unwrap();
    let request = server.request().await;
    let timestamp = request.header("x-chat-timestamp").unwrap();
    let signature = request.header("x-chat-signature").unwrap();

    let mut tampered = request.body.clone();
    let at = tampered.len() - 2;
    tampered[at] ^= 1;
    assert_eq!(
        verify_signature(SECRET, timestamp, &tampered, signature, WINDOW),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(
            b"another secret",
            timestamp,
            &request.body,
            signature,
            WINDOW
        ),
        Err(SignatureError::Mismatch)
    );
    let other_time = (timestamp.parse::<u64>().unwrap() - 1).to_string();
    assert_eq!(
        verify_signature(SECRET, &other_time, &request.body, signature, WINDOW),
        Err(SignatureError::Mismatch),
        "the timestamp is signed too"
    );

    let old = now() - 3600;
    let replayed = sign(SECRET, old, &request.body);
    assert_eq!(
        verify_signature(SECRET, &old.to_string(), &request.body, &replayed, WINDOW),
        Err(SignatureError::Expired)
    );
    assert_eq!(
        verify_signature(
            SECRET,
            &old.to_string(),
            &request.body,
            &replayed,
            Duration::from_secs(7200)
        ),
        Ok(())
    );
}

#[tokio::test]
async fn each_action_maps_to_its_decision() {
    let f = fixture(CONVERSATION).await;
    let cases = [
        (
            r#"{"action":"reply","text":"Refunds take 3 days.","metadata":{"bot.intent":"refund"}}"#,
            BotDecision::Reply {
                text: "Refunds take 3 days.".into(),
                metadata: [("bot.intent".to_owned(), "refund".to_owned())].into(),
            },
        ),
        (
            r#"{"action":"handoff","department":"billing","reason":"refund request"}"#,
            BotDecision::Handoff {
                department: Some("billing".into()),
                reason: Some("refund request".into()),
                message: None,
            },
        ),
        (
            r#"{"action":"handoff","message":"Connecting you now."}"#,
            BotDecision::Handoff {
                department: None,
                reason: None,
                message: Some("Connecting you now.".into()),
            },
        ),
        (r#"{"action":"none"}"#, BotDecision::Silent),
        // The service will answer later through the API.
        ("", BotDecision::Silent),
    ];
    for (answer, expected) in cases {
        let server = serve(move |_| Reply::Json(answer.into())).await;
        assert_eq!(
            f.respond(&bot(&server.url)).await.unwrap(),
            expected,
            "{answer}"
        );
    }
    let server = serve(|_| Reply::Status(204, String::new())).await;
    assert_eq!(
        f.respond(&bot(&server.url)).await.unwrap(),
        BotDecision::Silent
    );
}

#[tokio::test]
async fn bad_answers_errors_and_timeouts_are_bot_errors() {
    let f = fixture(CONVERSATION).await;
    for answer in [
        r#"{"action":"dance"}"#,
        r#"{"action":"reply","text":"   "}"#,
        r#"{"text":"no action"}"#,
        "not json",
    ] {
        let server = serve(move |_| Reply::Json(answer.into())).await;
        assert_eq!(
            f.respond(&bot(&server.url)).await.unwrap_err().bot_kind(),
            Some(BotErrorKind::Format),
            "{answer}"
        );
    }
    let server = serve(|_| Reply::Status(500, "{}".into())).await;
    assert_eq!(
        f.respond(&bot(&server.url)).await.unwrap_err().bot_kind(),
        Some(BotErrorKind::Status(500))
    );

    let server = serve(|_| Reply::Hang).await;
    let config = WebhookConfig {
        timeout: Duration::from_millis(200),
        ..WebhookConfig::new(format!("{}/events", server.url))
    };
    let slow = WebhookBot::new(config, SECRET).unwrap();
    assert_eq!(
        f.respond(&slow).await.unwrap_err().bot_kind(),
        Some(BotErrorKind::Timeout)
    );

    let huge = format!(
        r#"{{"action":"reply","text":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let server = serve(move |_| Reply::Json(huge.clone())).await;
    assert!(matches!(
        f.respond(&bot(&server.url)).await,
        Err(Error::Bot(e)) if e.kind() == BotErrorKind::Format && e.message().contains("larger than")
    ));
}

#[test]
fn the_secret_is_required_and_never_shown_by_debug() {
    let config = WebhookConfig::new("http://127.0.0.1:9/events");
    assert!(WebhookBot::new(config.clone(), "").is_err());
    let bot = WebhookBot::new(config, "hunter2").unwrap();
    assert!(!format!("{bot:?}").contains("hunter2"));
    // https is spoken (tests/suite/https.rs); other schemes are refused up front.
    assert!(WebhookBot::new(WebhookConfig::new("https://bots.example/events"), "k").is_ok());
    assert!(WebhookBot::new(WebhookConfig::new("ftp://bots.example/events"), "k").is_err());
}
