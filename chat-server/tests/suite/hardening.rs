//! Attacks on the desk's rules over a real listener: a visitor cannot skip the bot, the
//! queue and capacity, nor put itself at the head of the queue.

use crate::common;

use chat_core::Role;
use hyper::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_visitor_reopens_only_through_routing_never_straight_to_its_former_agent() {
    let s = common::start().await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let (id, visitor) = s.visitor("vic@example.com").await;
    let taken = s
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&ann.token),
            json!({ "body": "Hello, Ann here" }),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.text);
    let closed = s
        .post(
            &format!("/v1/conversations/{id}/close"),
            Some(&visitor),
            json!({}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.text);

    for mode in ["agent", "paused"] {
        let jump = s
            .post(
                &format!("/v1/conversations/{id}/mode"),
                Some(&visitor),
                json!({ "mode": mode }),
            )
            .await;
        assert_eq!(jump.status, StatusCode::FORBIDDEN, "{mode}: {}", jump.text);
        let now = s
            .get(&format!("/v1/conversations/{id}"), Some(&ann.token))
            .await;
        assert_eq!(now.body["mode"], json!("closed"), "{mode} changed it");
    }
    // Reopening the ordinary way goes to the bot (or the queue), not to Ann.
    let reopened = s
        .post(
            &format!("/v1/conversations/{id}/reopen"),
            Some(&visitor),
            json!({}),
        )
        .await;
    assert_eq!(reopened.status, StatusCode::OK, "{}", reopened.text);
    assert!(
        matches!(reopened.body["mode"].as_str(), Some("bot" | "queued")),
        "{}",
        reopened.text
    );
    s.stop().await;
}

#[tokio::test]
async fn an_anonymous_opener_cannot_jump_the_queue_with_a_priority() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let before = s.get("/v1/conversations", Some(&admin.token)).await;
    let urgent = s
        .post(
            "/v1/conversations",
            None,
            json!({ "contact": { "name": "Mallory" }, "priority": "urgent", "first_message": "me first" }),
        )
        .await;
    assert_eq!(
        urgent.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        urgent.text
    );
    assert!(urgent.text.contains("priority"), "{}", urgent.text);
    let after = s.get("/v1/conversations", Some(&admin.token)).await;
    assert_eq!(
        before.body["items"], after.body["items"],
        "nothing was opened"
    );
    // Staff still open conversations with a priority for a customer.
    let staff = s
        .post(
            "/v1/conversations",
            Some(&admin.token),
            json!({ "contact": { "name": "Carol" }, "priority": "high" }),
        )
        .await;
    assert_eq!(staff.status, StatusCode::CREATED, "{}", staff.text);
    assert_eq!(staff.body["conversation"]["priority"], json!("high"));
    s.stop().await;
}

#[tokio::test]
async fn metrics_answer_only_the_scrapers_token_and_admins() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let agent = s.staff("Ann", Role::Agent, &[]).await;
    let (_, visitor) = s.visitor("vic@example.com").await;

    let nobody = s.get("/metrics", None).await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED, "{}", nobody.text);
    assert!(!nobody.text.contains("chat_"), "{}", nobody.text);
    let guess = s.get("/metrics", Some("test-metrics-scraper-tokem")).await;
    assert_eq!(guess.status, StatusCode::UNAUTHORIZED, "{}", guess.text);
    for (who, token) in [("agent", &agent.token), ("visitor", &visitor)] {
        let refused = s.get("/metrics", Some(token)).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{who}: {}",
            refused.text
        );
        assert!(!refused.text.contains("chat_"), "{who}: {}", refused.text);
    }
    for token in [common::METRICS_TOKEN, admin.token.as_str()] {
        let read = s.get("/metrics", Some(token)).await;
        assert_eq!(read.status, StatusCode::OK, "{}", read.text);
        assert!(read.text.contains("chat_websockets_open"), "{}", read.text);
    }
    s.stop().await;
}

#[tokio::test]
async fn without_a_scraper_token_only_admins_read_metrics() {
    let s = common::start_with(|c| c.metrics_token = None).await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let refused = s.get("/metrics", Some(common::METRICS_TOKEN)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    let read = s.get("/metrics", Some(&admin.token)).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert!(chat_server::MetricsToken::new("short").is_err());
    s.stop().await;
}
