//! Bot tokens over a real listener: admins issue them with a name and an optional expiry,
//! list them (never the secret), see their last use, and revoke them for good.

use crate::common;

use std::sync::Arc;

use chat_core::{ManualClock, Role};
use hyper::StatusCode;
use serde_json::json;

#[tokio::test]
async fn admins_issue_list_and_revoke_bot_tokens_and_a_revoked_token_reads_nothing() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let s = common::start_full(|_| {}, |b| b.clock(clock.clone())).await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let agent = s.staff("Ann", Role::Agent, &[]).await;

    let issued = s
        .post(
            "/v1/bot-tokens",
            Some(&admin.token),
            json!({ "name": "order-status bot" }),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let token = issued.body["token"].as_str().unwrap().to_owned();
    let id = issued.body["id"].as_str().unwrap().to_owned();
    assert_eq!(issued.body["expires_at"], json!(null));

    // Never used yet.
    let list = s.get("/v1/bot-tokens", Some(&admin.token)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["items"][0]["id"], json!(id));
    assert_eq!(list.body["items"][0]["name"], json!("order-status bot"));
    assert_eq!(list.body["items"][0]["last_used_at"], json!(null));
    assert!(!list.text.contains(&token), "the list shows the secret");
    assert!(!list.text.contains("digest"));

    // It works, and its use is recorded.
    let (_, _visitor) = s.visitor("vera@example.com").await;
    let seen = s.get("/v1/conversations", Some(&token)).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.text);
    let list = s.get("/v1/bot-tokens", Some(&admin.token)).await;
    assert!(
        list.body["items"][0]["last_used_at"].is_string(),
        "{}",
        list.text
    );

    // Only admins manage them.
    for (method_path, want) in [
        (
            s.get("/v1/bot-tokens", Some(&agent.token)).await,
            StatusCode::FORBIDDEN,
        ),
        (
            s.delete(&format!("/v1/bot-tokens/{id}"), Some(&agent.token))
                .await,
            StatusCode::FORBIDDEN,
        ),
        (
            s.post(
                "/v1/bot-tokens",
                Some(&token),
                json!({ "name": "self-made" }),
            )
            .await,
            StatusCode::FORBIDDEN,
        ),
    ] {
        assert_eq!(method_path.status, want, "{}", method_path.text);
    }

    // Revoked: gone from the list, refused at once (no cache lets it through).
    let revoked = s
        .delete(&format!("/v1/bot-tokens/{id}"), Some(&admin.token))
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text);
    let refused = s.get("/v1/conversations", Some(&token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    let list = s.get("/v1/bot-tokens", Some(&admin.token)).await;
    assert_eq!(list.body["items"], json!([]));
    let again = s
        .delete(&format!("/v1/bot-tokens/{id}"), Some(&admin.token))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
    s.stop().await;
}

#[tokio::test]
async fn a_bot_token_is_refused_after_its_expiry_by_the_engines_clock() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let s = common::start_full(|_| {}, |b| b.clock(clock.clone())).await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    for bad in [json!(0), json!(59), json!(-5), json!("soon")] {
        let refused = s
            .post(
                "/v1/bot-tokens",
                Some(&admin.token),
                json!({ "name": "short-lived", "expires_in_secs": bad }),
            )
            .await;
        assert!(refused.status.is_client_error(), "{bad}: {}", refused.text);
    }
    let list = s.get("/v1/bot-tokens", Some(&admin.token)).await;
    assert_eq!(
        list.body["items"],
        json!([]),
        "a refused request issued nothing"
    );

    let issued = s
        .post(
            "/v1/bot-tokens",
            Some(&admin.token),
            json!({ "name": "nightly export", "expires_in_secs": 3600 }),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    assert!(issued.body["expires_at"].is_string(), "{}", issued.text);
    let token = issued.body["token"].as_str().unwrap().to_owned();
    clock.advance(time::Duration::hours(1) + time::Duration::seconds(1));
    let refused = s.get("/v1/conversations", Some(&token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    s.stop().await;
}
