//! Bad input of every kind gets the documented error and changes nothing.

use crate::common;

use base64::Engine as _;
use bytes::Bytes;
use chat_core::Role;
use hyper::{Method, StatusCode};
use serde_json::json;

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn malformed_bodies_get_precise_errors_and_store_nothing() {
    let s = common::start().await;
    let (id, visitor) = s.visitor("bad@x.example").await;
    let path = format!("/v1/conversations/{id}/messages");
    let before = s.get(&path, Some(&visitor)).await.body["items"]
        .as_array()
        .unwrap()
        .len();

    let send = |body: &'static [u8], headers: &'static [(&'static str, &'static str)]| {
        s.send_as(
            Method::POST,
            &path,
            Some(&visitor),
            headers,
            Bytes::from_static(body),
        )
    };
    let r = send(b"{\"body\": \"hi\",,}", &[JSON]).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1 column 15: key must be a string"),
        "{}",
        r.text
    );
    let r = send(b"{\"body\": 42}", &[JSON]).await;
    assert_eq!(
        (r.status, r.error_code(), r.body["error"]["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Some("body")
        )
    );
    let r = send(b"{\"body\": \"hi\", \"sender\": \"agent\"}", &[JSON]).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("sender")),
        "unknown fields are refused: {}",
        r.text
    );
    let r = send(b"{\"body\": \"   \"}", &[JSON]).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body"))
    );
    let r = send(b"{\"body\": \"hi\"}", &[("content-type", "text/plain")]).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let r = send(b"{\"body\": \"hi\"}", &[]).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let long = json!({ "body": "x".repeat(10_001) }).to_string();
    let r = s
        .send_as(
            Method::POST,
            &path,
            Some(&visitor),
            &[JSON],
            Bytes::from(long),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body"))
    );
    let huge = format!("{{\"body\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = s
        .send_as(
            Method::POST,
            &path,
            Some(&visitor),
            &[JSON],
            Bytes::from(huge),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let r = s
        .post(
            &format!("/v1/conversations/{id}/rating"),
            Some(&visitor),
            json!({ "score": 9 }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rating.score"))
    );
    let r = s
        .post(
            &format!("/v1/conversations/{id}/rating"),
            Some(&visitor),
            json!({ "score": -1 }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("score"))
    );

    let after = s.get(&path, Some(&visitor)).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "no bad request stored anything");
    let c = s
        .get(&format!("/v1/conversations/{id}"), Some(&visitor))
        .await;
    assert!(c.body["rating"].is_null());
    s.stop().await;
}

#[tokio::test]
async fn ids_routes_and_methods_are_checked() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let r = s
        .get("/v1/conversations/not-a-uuid", Some(&admin.token))
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::BAD_REQUEST, "invalid_id")
    );
    let r = s
        .get(
            &format!("/v1/conversations/{}", uuid::Uuid::now_v7()),
            Some(&admin.token),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let r = s.get("/v1/nothing-here", Some(&admin.token)).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let r = s
        .call(Method::DELETE, "/v1/agents", Some(&admin.token), None)
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    assert_eq!(r.headers["allow"], "GET, POST");
    let r = s
        .get("/v1/conversations?mode=ended", Some(&admin.token))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("mode"))
    );
    let r = s
        .get("/v1/conversations?limit=lots", Some(&admin.token))
        .await;
    assert_eq!(r.body["error"]["field"].as_str(), Some("limit"));
    let r = s
        .get("/v1/conversations?cursor=garbage", Some(&admin.token))
        .await;
    assert_eq!(r.body["error"]["field"].as_str(), Some("cursor"));
    let (id, _) = s.visitor("t@x.example").await;
    let r = s
        .post(
            &format!("/v1/conversations/{id}/mode"),
            Some(&admin.token),
            json!({ "mode": "archived" }),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::CONFLICT, "invalid_transition"),
        "{}",
        r.text
    );
    s.stop().await;
}

fn b64(value: &serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn forged_expired_and_unsigned_tokens_are_refused() {
    let s = common::start().await;
    let ann = s.staff("Ann", Role::Admin, &[]).await;
    let parts: Vec<&str> = ann.token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();

    // alg: none with the real claims.
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        parts[1]
    );
    // Tampered claims with the original signature.
    claims["role"] = json!("admin");
    claims["exp"] = json!(4_000_000_000u64);
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    // Signed with another key.
    let other = chat_server::JwtConfig::hs256(b"some other secret, same length!!!!!!");
    let forged = chat_server::auth::issue_token(&other, s.tenant, ann.id, Role::Admin, 1).unwrap();
    // Expired, correctly signed.
    let mut short = chat_server::JwtConfig::hs256(common::SECRET);
    short.ttl = std::time::Duration::ZERO;
    let expired_claims = {
        let mut c = claims.clone();
        c["exp"] = json!(1_000_000_000u64);
        c["iat"] = json!(999_999_000u64);
        c["role"] = json!("admin");
        c
    };
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &expired_claims,
        &short.encoding,
    )
    .unwrap();
    // Right key, wrong audience.
    let mut foreign = chat_server::JwtConfig::hs256(common::SECRET);
    foreign.audience = "another-app".into();
    let wrong_audience =
        chat_server::auth::issue_token(&foreign, s.tenant, ann.id, Role::Admin, 1).unwrap();

    for (name, token) in [
        ("alg none", none.as_str()),
        ("tampered", &tampered),
        ("forged", &forged),
        ("expired", &expired),
        ("wrong audience", &wrong_audience),
        ("garbage", "abc.def.ghi"),
        (
            "unknown visitor token",
            "vt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
    ] {
        let r = s.get("/v1/conversations", Some(token)).await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{name}: {}",
            r.text
        );
        let r = s.post("/v1/conversations", Some(token), json!({})).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{name} on a public route is an error, not anonymous"
        );
    }
    let r = s
        .send(
            Method::GET,
            "/v1/me",
            &[("authorization", "Basic dXNlcjpwYXNz")],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get("/v1/me", Some(&ann.token)).await.status,
        StatusCode::OK,
        "the real token still works"
    );
    s.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let s = common::start_with(|c| {
        c.limits.per_ip_rps = 1.0;
        c.limits.burst = 5.0;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(s.get("/healthz", None).await);
    }
    assert!(statuses[..5].iter().all(|r| r.status == StatusCode::OK));
    let limited = statuses.last().unwrap();
    assert_eq!(
        (limited.status, limited.error_code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(limited.headers["retry-after"], "1");
    s.stop().await;
}

#[tokio::test]
async fn cors_allows_configured_origins_with_credentials() {
    let s = common::start_with(|c| c.cors_origins = vec!["http://localhost:3000".into()]).await;
    let pre = s
        .send(
            Method::OPTIONS,
            "/v1/conversations",
            &[
                ("origin", "http://localhost:3000"),
                ("access-control-request-method", "POST"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(pre.status, StatusCode::NO_CONTENT);
    assert_eq!(
        pre.headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(pre.headers["access-control-allow-credentials"], "true");
    assert!(
        pre.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let simple = s
        .send(
            Method::GET,
            "/healthz",
            &[("origin", "http://localhost:3000")],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        simple.headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let evil = s
        .send(
            Method::OPTIONS,
            "/v1/conversations",
            &[
                ("origin", "http://evil.example"),
                ("access-control-request-method", "POST"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
    assert!(!evil.headers.contains_key("access-control-allow-origin"));
    let other = s
        .send(
            Method::GET,
            "/healthz",
            &[("origin", "http://evil.example")],
            Bytes::new(),
        )
        .await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
    s.stop().await;
}

#[tokio::test]
async fn a_wildcard_origin_never_gets_credentials() {
    let s =
        common::start_with(|c| c.cors_origins = vec!["*".into(), "https://shop.example".into()])
            .await;
    for method in [Method::OPTIONS, Method::GET] {
        let any = s
            .send(
                method.clone(),
                "/v1/conversations",
                &[
                    ("origin", "https://evil.example"),
                    ("access-control-request-method", "GET"),
                ],
                Bytes::new(),
            )
            .await;
        assert_eq!(any.headers["access-control-allow-origin"], "*", "{method}");
        assert!(
            !any.headers.contains_key("access-control-allow-credentials"),
            "{method}: credentials for any site"
        );
        let named = s
            .send(
                method.clone(),
                "/v1/conversations",
                &[
                    ("origin", "https://shop.example"),
                    ("access-control-request-method", "GET"),
                ],
                Bytes::new(),
            )
            .await;
        assert_eq!(
            named.headers["access-control-allow-origin"],
            "https://shop.example"
        );
        assert_eq!(named.headers["access-control-allow-credentials"], "true");
    }
    s.stop().await;
}

/// serde reads a struct from a JSON array by position (`[null, null]`: every field
/// absent); a field whose value is an object refuses anything else, with 422 naming it,
/// and nothing is stored. Found by schemathesis on `POST /v1/conversations`.
#[tokio::test]
async fn a_nested_object_given_as_an_array_is_refused() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let count = |body: serde_json::Value| {
        body["counts"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>()
    };
    let before = count(s.get("/v1/conversations", Some(&admin.token)).await.body);

    for body in [
        json!({ "contact": [null, null] }),
        json!({ "identity": ["jo@x.example", 1, "00"] }),
    ] {
        let r = s.post("/v1/conversations", None, body.clone()).await;
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(
            (r.status, r.body["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field.as_str())),
            "{body}: {}",
            r.text
        );
    }
    let (id, visitor) = s.visitor("arrays@x.example").await;
    let path = format!("/v1/conversations/{id}/messages");
    let stored = |reply: chat_server::testing::Reply| reply.body["items"].as_array().unwrap().len();
    let messages = stored(s.get(&path, Some(&visitor)).await);
    for body in [
        json!({ "body": "hi", "attachments": [[null]] }),
        json!({ "body": "hi", "entities": [["order", "1"]] }),
    ] {
        let r = s.post(&path, Some(&visitor), body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
    }
    let r = s
        .post(
            &format!("/v1/conversations/{id}/close"),
            Some(&visitor),
            json!({ "rating": [5, "ok"] }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rating")),
        "{}",
        r.text
    );

    let after = count(s.get("/v1/conversations", Some(&admin.token)).await.body);
    assert_eq!(
        after,
        before + 1,
        "only the visitor's own conversation was opened"
    );
    let opened = s
        .get(&format!("/v1/conversations/{id}"), Some(&visitor))
        .await;
    assert_ne!(
        opened.body["mode"], "closed",
        "the bad close changed nothing"
    );
    assert_eq!(
        stored(s.get(&path, Some(&visitor)).await),
        messages,
        "no message stored from a bad body"
    );
    s.stop().await;
}
