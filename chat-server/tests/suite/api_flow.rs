//! A whole support flow over HTTP against a real listener.

use crate::common;

use bytes::Bytes;
use chat_core::Role;
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_visitor_is_answered_by_the_bot_then_by_an_agent() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &["billing"]).await;

    // The widget opens a conversation anonymously and gets a visitor token.
    let (id, visitor) = s.visitor("jo@shop.example").await;
    let hello = s
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&visitor),
            json!({ "body": "Hello", "client_message_id": "m1" }),
        )
        .await;
    assert_eq!(hello.status, StatusCode::CREATED, "{}", hello.text);
    assert_eq!(hello.body["replies"][0]["sender"]["type"], "bot");
    // A retry with the same client message id stores nothing new.
    let retry = s
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&visitor),
            json!({ "body": "Hello", "client_message_id": "m1" }),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body["message"]["id"], hello.body["message"]["id"]);

    // Handoff: the visitor asks for a human; nobody is online yet.
    let ask = s
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&visitor),
            json!({ "body": "I want to talk to a human" }),
        )
        .await;
    assert_eq!(ask.body["conversation"]["mode"], "queued");
    assert!(
        ask.body["conversation"].get("tags").is_none(),
        "visitors do not see internal fields"
    );

    // Ann goes online and the conversation is routed to her.
    let online = s
        .call(
            Method::PUT,
            &format!("/v1/agents/{}/availability", ann.id),
            Some(&ann.token),
            Some(json!({ "availability": "online" })),
        )
        .await;
    assert_eq!(online.status, StatusCode::OK, "{}", online.text);
    let mine = s
        .get("/v1/conversations?assigned=me", Some(&ann.token))
        .await;
    assert_eq!(mine.body["items"][0]["id"], id.as_str());
    assert_eq!(mine.body["counts"]["agent"], 1);

    let reply = s
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&ann.token),
            json!({ "body": "Hi Jo, Ann here." }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let note = s
        .post(
            &format!("/v1/conversations/{id}/notes"),
            Some(&ann.token),
            json!({ "body": "refund approved" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);

    // The visitor never sees the note; staff do.
    let theirs = s
        .get(&format!("/v1/conversations/{id}/messages"), Some(&visitor))
        .await;
    let bodies: Vec<&str> = theirs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert!(bodies.contains(&"Hi Jo, Ann here."));
    assert!(!bodies.contains(&"refund approved"));
    let events = s.get("/v1/events?since=0", Some(&visitor)).await;
    assert!(
        !events.text.contains("refund approved"),
        "notes never reach visitors through events"
    );
    let ours = s
        .get(
            &format!("/v1/conversations/{id}/messages"),
            Some(&admin.token),
        )
        .await;
    assert!(ours.text.contains("refund approved"));

    // Ann closes, the visitor rates.
    let closed = s
        .post(
            &format!("/v1/conversations/{id}/close"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(closed.body["mode"], "closed", "{}", closed.text);
    let rated = s
        .post(
            &format!("/v1/conversations/{id}/rating"),
            Some(&visitor),
            json!({ "score": 5, "feedback": "great" }),
        )
        .await;
    assert_eq!(rated.body["rating"]["score"], 5, "{}", rated.text);

    // Contact history for staff.
    let history = s
        .get(
            "/v1/contacts/history?email=jo%40shop.example",
            Some(&admin.token),
        )
        .await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn claims_race_and_transfers_record_the_reason() {
    let s = common::start().await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    let bob = s.staff("Bob", Role::Agent, &[]).await;
    let (id, visitor) = s.visitor("race@x.example").await;
    s.post(
        &format!("/v1/conversations/{id}/handoff"),
        Some(&visitor),
        json!({}),
    )
    .await;
    let path = format!("/v1/conversations/{id}/claim");
    let (a, b) = tokio::join!(
        s.call(Method::POST, &path, Some(&ann.token), None),
        s.call(Method::POST, &path, Some(&bob.token), None)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "{} / {}",
        a.text,
        b.text
    );
    let (owner, other) = if a.status == StatusCode::OK {
        (&ann, &bob)
    } else {
        (&bob, &ann)
    };
    let moved = s
        .post(
            &format!("/v1/conversations/{id}/transfer"),
            Some(&owner.token),
            json!({ "agent_id": other.id, "reason": "knows this customer" }),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    let history = s
        .get(
            &format!("/v1/conversations/{id}/messages"),
            Some(&other.token),
        )
        .await;
    assert!(history.text.contains("knows this customer"));
    let gone = s
        .get(&format!("/v1/conversations/{id}"), Some(&owner.token))
        .await;
    assert_eq!(
        gone.status,
        StatusCode::NOT_FOUND,
        "the previous owner loses access"
    );
    s.stop().await;
}

#[tokio::test]
async fn passwords_changes_and_disabling_revoke_tokens() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let ann = s.staff("Ann", Role::Agent, &[]).await;
    assert_eq!(
        s.get("/v1/me", Some(&ann.token)).await.status,
        StatusCode::OK
    );
    // A stolen token alone cannot change its owner's password: the current one is needed.
    for (body, want) in [
        (
            json!({ "password": "a thief's password" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "password": "a thief's password", "current_password": "a guess at it" }),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let refused = s
            .call(
                Method::PATCH,
                &format!("/v1/agents/{}", ann.id),
                Some(&ann.token),
                Some(body),
            )
            .await;
        assert_eq!(refused.status, want, "{}", refused.text);
        assert_eq!(
            s.get("/v1/me", Some(&ann.token)).await.status,
            StatusCode::OK
        );
    }
    let changed = s
        .call(
            Method::PATCH,
            &format!("/v1/agents/{}", ann.id),
            Some(&ann.token),
            Some(
                json!({ "password": "a brand new password", "current_password": common::PASSWORD }),
            ),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    let old = s.get("/v1/me", Some(&ann.token)).await;
    assert_eq!(
        (old.status, old.error_code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let login = s
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": ann.email, "password": "a brand new password" }),
        )
        .await;
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/v1/me", Some(&token)).await.status, StatusCode::OK);
    let disabled = s
        .call(
            Method::PATCH,
            &format!("/v1/agents/{}", ann.id),
            Some(&admin.token),
            Some(json!({ "active": false })),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(
        s.get("/v1/me", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = s
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": ann.email, "password": "a brand new password" }),
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::UNAUTHORIZED,
        "disabled staff cannot log in"
    );
    let wrong = s
        .post(
            "/v1/auth/login",
            None,
            json!({ "email": admin.email, "password": "nope nope nope" }),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.error_code()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    s.stop().await;
}

#[tokio::test]
async fn health_readiness_metrics_and_request_ids() {
    let s = common::start().await;
    assert_eq!(s.get("/healthz", None).await.body["status"], "ok");
    assert_eq!(s.get("/readyz", None).await.body["status"], "ready");
    let (id, visitor) = s.visitor("m@x.example").await;
    s.post(
        &format!("/v1/conversations/{id}/messages"),
        Some(&visitor),
        json!({ "body": "hi" }),
    )
    .await;
    let metrics = s.get("/metrics", Some(common::METRICS_TOKEN)).await;
    assert!(
        metrics
            .text
            .contains("chat_http_requests_total{route=\"/v1/conversations\",status=\"201\"} 1"),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains("chat_messages_posted_total 1"));
    assert!(
        metrics
            .text
            .contains("chat_http_request_duration_seconds_bucket")
    );
    let traced = s
        .send(
            Method::GET,
            "/healthz",
            &[("x-request-id", "abc-123")],
            Bytes::new(),
        )
        .await;
    assert_eq!(traced.headers["x-request-id"], "abc-123");
    let fresh = s.get("/healthz", None).await;
    assert_eq!(fresh.headers["x-request-id"].len(), 32);
    s.stop().await;
}

#[tokio::test]
async fn signed_identities_see_their_history_and_stale_signatures_are_refused() {
    let secret = b"site-secret-for-identity".to_vec();
    let s = common::start_with(|c| c.identity_secret = Some(b"site-secret-for-identity".to_vec()))
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let identity = |ts: u64| json!({ "email": "member@shop.example", "timestamp": ts, "signature": chat_server::auth::sign_identity(&secret, "member@shop.example", ts) });
    // An anonymous visit first, under the same e-mail: a claim, which joins nothing.
    let (earlier, _) = s.visitor("member@shop.example").await;
    let opened = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity(now), "first_message": "logged in now" }),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    let token = opened.body["visitor_token"].as_str().unwrap().to_owned();
    let mine = s.get("/v1/conversations", Some(&token)).await;
    let ids: Vec<&str> = mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&earlier.as_str()),
        "an unverified claim of the e-mail is not the member's history"
    );
    assert_eq!(ids.len(), 1);
    // The same signature again (a captured page, a replay) opens nothing.
    let replay = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity(now), "first_message": "replayed" }),
        )
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.text);
    assert!(replay.text.contains("used already"), "{}", replay.text);
    // The next verified visit (a page signed anew) lands on the same contact and sees
    // the history.
    let again = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity(now - 1), "first_message": "back again" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.body["contact"]["id"], opened.body["contact"]["id"]);
    assert_eq!(again.body["contact"]["email_verified"], json!(true));
    let token = again.body["visitor_token"].as_str().unwrap();
    let mine = s.get("/v1/conversations", Some(token)).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 2);
    // An opening that fails after the signature was checked does not burn it.
    let failed = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity(now - 2), "tenant_id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(
        failed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        failed.text
    );
    let retried = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity(now - 2) }),
        )
        .await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.text);
    // Replaying a captured signature after it expired, or forging one, fails.
    let stale = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity(now - 3600) }),
        )
        .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let mut forged = identity(now);
    forged["email"] = json!("someone.else@shop.example");
    assert_eq!(
        s.post("/v1/conversations", None, json!({ "identity": forged }))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}

#[tokio::test]
async fn an_external_bot_answers_through_the_api_only_while_the_conversation_is_in_bot_mode() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let issued = s
        .post(
            "/v1/bot-tokens",
            Some(&admin.token),
            json!({ "name": "order-status bot" }),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let bot = issued.body["token"].as_str().unwrap().to_owned();
    assert!(bot.starts_with("bt_"));
    let (id, visitor) = s.visitor("orders@x.example").await;
    let answer = s
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&bot),
            json!({ "body": "Your order ships today." }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.body["message"]["sender"]["type"], "bot");
    let history = s
        .get(&format!("/v1/conversations/{id}/messages"), Some(&visitor))
        .await;
    assert!(history.text.contains("Your order ships today."));
    // The bot hands off; from then on it is gated out.
    let handed = s
        .post(
            &format!("/v1/conversations/{id}/handoff"),
            Some(&bot),
            json!({ "reason": "asked for a refund" }),
        )
        .await;
    assert_eq!(handed.body["mode"], "queued", "{}", handed.text);
    let late = s
        .post(
            &format!("/v1/conversations/{id}/messages"),
            Some(&bot),
            json!({ "body": "still me" }),
        )
        .await;
    assert_eq!(
        (late.status, late.error_code()),
        (StatusCode::CONFLICT, "conflict")
    );
    // Bots cannot touch staff routes or write notes.
    assert_eq!(
        s.get("/v1/agents", Some(&bot)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(
            &format!("/v1/conversations/{id}/notes"),
            Some(&bot),
            json!({ "body": "x" })
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/v1/me", Some("bt_not-a-real-token")).await.status,
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}
