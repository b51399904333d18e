//! Customer accounts over `/v1`: sign up, log in, change the password, disable, each with
//! what a stolen or stale token can still do afterwards (nothing).

use crate::common;

use chat_core::Role;
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_customer_signs_up_logs_in_and_owns_its_conversations() {
    let s = common::start().await;
    let signed = s
        .post(
            "/v1/accounts",
            None,
            json!({ "username": "Ada", "email": "ada@example.com", "password": "first-pw" }),
        )
        .await;
    assert_eq!(signed.status, StatusCode::CREATED, "{}", signed.text);
    assert_eq!(signed.body["account"]["username"], "Ada");
    assert_eq!(signed.body["contact"]["email_verified"], json!(false));
    assert!(!signed.text.contains("argon2"), "{}", signed.text);
    let token = signed.body["visitor_token"].as_str().unwrap().to_owned();
    let contact = signed.body["contact"]["id"].as_str().unwrap().to_owned();

    // Taken names and e-mails are refused with the field at fault; nothing is created.
    for (body, field) in [
        (json!({ "username": "ADA", "password": "x" }), "username"),
        (
            json!({ "username": "ada2", "email": "Ada@Example.com", "password": "x" }),
            "email",
        ),
        (json!({ "username": "", "password": "x" }), "username"),
        (json!({ "username": "bob", "password": "" }), "password"),
    ] {
        let refused = s.post("/v1/accounts", None, body).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert!(refused.text.contains(field), "{}", refused.text);
    }

    // The account's token opens conversations of its own, as many as it likes.
    for _ in 0..2 {
        let opened = s
            .post(
                "/v1/conversations",
                Some(&token),
                json!({ "first_message": "hello" }),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
        assert_eq!(opened.body["contact"]["id"], json!(contact));
    }
    let logged = s
        .post(
            "/v1/accounts/login",
            None,
            json!({ "username": "ada", "password": "first-pw" }),
        )
        .await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.text);
    let again = logged.body["visitor_token"].as_str().unwrap().to_owned();
    let mine = s.get("/v1/conversations", Some(&again)).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 2);
    let account = s
        .get(&format!("/v1/accounts/{contact}"), Some(&again))
        .await;
    assert_eq!(account.status, StatusCode::OK);
    assert_eq!(account.body, signed.body["account"]);
    for (username, password) in [("ada", "wrong"), ("nobody", "first-pw")] {
        assert_eq!(
            log_in(&s, username, password).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Another customer sees neither the account nor its conversations.
    let other = s
        .post(
            "/v1/accounts",
            None,
            json!({ "username": "bob", "password": "bob-pw" }),
        )
        .await;
    let bob = other.body["visitor_token"].as_str().unwrap();
    let probe = s.get(&format!("/v1/accounts/{contact}"), Some(bob)).await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND);
    let theirs = s.get("/v1/conversations", Some(bob)).await;
    assert_eq!(theirs.body["items"].as_array().unwrap().len(), 0);
    s.stop().await;
}

async fn set_disabled(
    s: &common::Server,
    contact: &str,
    token: &str,
    disabled: bool,
) -> chat_server::testing::Reply {
    s.call(
        Method::PATCH,
        &format!("/v1/accounts/{contact}"),
        Some(token),
        Some(json!({ "disabled": disabled })),
    )
    .await
}

async fn log_in(s: &common::Server, username: &str, password: &str) -> StatusCode {
    s.post(
        "/v1/accounts/login",
        None,
        json!({ "username": username, "password": password }),
    )
    .await
    .status
}

#[tokio::test]
async fn a_password_change_or_a_disabled_account_ends_every_session() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let signed = s
        .post(
            "/v1/accounts",
            None,
            json!({ "username": "cleo", "password": "old-pw" }),
        )
        .await;
    let contact = signed.body["contact"]["id"].as_str().unwrap().to_owned();
    let first = signed.body["visitor_token"].as_str().unwrap().to_owned();
    // Warm any cache the server keeps for this token.
    assert_eq!(s.get("/v1/me", Some(&first)).await.status, StatusCode::OK);

    let wrong = s
        .post(
            "/v1/accounts/password",
            Some(&first),
            json!({ "current_password": "guess", "new_password": "stolen" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    let changed = s
        .post(
            "/v1/accounts/password",
            Some(&first),
            json!({ "current_password": "old-pw", "new_password": "new-pw" }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let fresh = changed.body["visitor_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get("/v1/me", Some(&first)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.get("/v1/me", Some(&fresh)).await.status, StatusCode::OK);
    assert_eq!(log_in(&s, "cleo", "old-pw").await, StatusCode::UNAUTHORIZED);

    // Only admins disable; a disabled account logs in no more and its tokens stop.
    let by_customer = set_disabled(&s, &contact, &fresh, true).await;
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN);
    let disabled = set_disabled(&s, &contact, &admin.token, true).await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.text);
    assert_eq!(disabled.body["disabled"], json!(true));
    assert_eq!(
        s.get("/v1/me", Some(&fresh)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(log_in(&s, "cleo", "new-pw").await, StatusCode::UNAUTHORIZED);
    let enabled = s
        .call(
            Method::PATCH,
            &format!("/v1/accounts/{contact}"),
            Some(&admin.token),
            Some(json!({ "disabled": false })),
        )
        .await;
    assert_eq!(enabled.body["disabled"], json!(false));
    assert_eq!(log_in(&s, "cleo", "new-pw").await, StatusCode::OK);
    s.stop().await;
}
