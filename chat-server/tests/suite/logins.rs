//! Login throttling and clients behind a trusted reverse proxy, over a real listener.
//! Client addresses are played through `X-Forwarded-For` from a trusted 127.0.0.1, as a
//! proxy in front of the server would send them.

use crate::common;

use chat_core::Role;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

/// A staff login from `client` (as the proxy says), or from the connection itself.
async fn login(
    s: &common::Server,
    client: Option<&str>,
    email: &str,
    password: &str,
) -> (StatusCode, Value, Option<String>) {
    let body = json!({ "email": email, "password": password }).to_string();
    let mut headers = vec![("content-type", "application/json")];
    if let Some(client) = client {
        headers.push(("x-forwarded-for", client));
    }
    let reply = s.send(Method::POST, "/v1/auth/login", &headers, body).await;
    let retry = reply
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (reply.status, reply.body, retry)
}

#[tokio::test]
async fn a_guesser_is_slowed_down_and_the_real_user_still_logs_in() {
    let s = common::start_with(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.limits.login.free_per_name = 3;
    })
    .await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let guesser = Some("198.51.100.7");

    for _ in 0..3 {
        let (status, body, _) = login(&s, guesser, &ann.email, "wrong guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // The fourth attempt waits, whatever it holds: even the right password is not
    // checked (so a throttled guesser learns nothing and costs no hashing).
    let (status, body, retry) = login(&s, guesser, &ann.email, "wrong guess").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    assert_eq!(retry.as_deref(), Some("1"));
    let (status, _, _) = login(&s, guesser, &ann.email, common::PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The name in another case is the same login.
    let (status, _, _) = login(&s, guesser, &ann.email.to_uppercase(), "x").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // Ann, from her own address, logs in as ever: a stranger cannot lock her out.
    let (status, body, _) = login(&s, Some("192.0.2.10"), &ann.email, common::PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn many_names_from_one_address_are_slowed_down_and_success_elsewhere_does_not_reset_it() {
    let s = common::start_with(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.limits.login.free_per_address = 4;
    })
    .await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let sprayer = Some("203.0.113.5");
    for i in 0..4 {
        let (status, _, _) =
            login(&s, sprayer, &format!("user{i}@acme.example"), "Summer2026!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body, _) = login(&s, sprayer, "user9@acme.example", "Summer2026!").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Logging in to an account one owns, from there, does not buy more guesses.
    let (status, _, _) = login(&s, sprayer, &ann.email, common::PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _, _) = login(&s, Some("192.0.2.10"), &ann.email, common::PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn customer_account_logins_are_throttled_too() {
    let s = common::start_with(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.limits.login.free_per_name = 2;
    })
    .await;
    let attempt = |client: &'static str| {
        let body = json!({ "username": "vera", "password": "not her password" }).to_string();
        let s = &s;
        async move {
            s.send(
                Method::POST,
                "/v1/accounts/login",
                &[
                    ("content-type", "application/json"),
                    ("x-forwarded-for", client),
                ],
                body,
            )
            .await
        }
    };
    for _ in 0..2 {
        let reply = attempt("198.51.100.7").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    let reply = attempt("198.51.100.7").await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text
    );
    assert_eq!(reply.error_code(), "too_many_attempts");
    let reply = attempt("192.0.2.10").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    s.stop().await;
}

#[tokio::test]
async fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
    // Nobody trusted: the header is the client's own claim, and the guesser cannot
    // escape its throttle by changing it.
    let s = common::start_with(|c| c.limits.login.free_per_name = 2).await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    for client in ["198.51.100.1", "198.51.100.2"] {
        let (status, _, _) = login(&s, Some(client), &ann.email, "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = login(&s, Some("198.51.100.3"), &ann.email, "wrong").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    s.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_request_rates_are_per_client_not_per_proxy() {
    let s = common::start_with(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.limits.per_ip_rps = 0.001;
        c.limits.burst = 3.0;
    })
    .await;
    let health = |client: &'static str| {
        let s = &s;
        async move {
            s.send(Method::GET, "/healthz", &[("x-forwarded-for", client)], "")
                .await
                .status
        }
    };
    for _ in 0..3 {
        assert_eq!(health("198.51.100.7").await, StatusCode::OK);
    }
    assert_eq!(health("198.51.100.7").await, StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy has its own budget; a client cannot name
    // itself out of its own (the proxy appends the real address after any it sent).
    assert_eq!(health("192.0.2.10").await, StatusCode::OK);
    assert_eq!(
        health("192.0.2.99, 198.51.100.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    s.stop().await;
}
