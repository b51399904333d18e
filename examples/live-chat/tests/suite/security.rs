//! Where the document is insecure and the template is not: staff tokens on admin routes
//! and the admin socket, unguessable session ids, one guest never reaching another's
//! chat, delete for admins only, bounded bodies, and the documented rate limit.

use crate::common;

use std::time::Duration;

use common::john;
use example_live_chat::{Options, RateLimit};
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn admin_routes_and_the_admin_socket_need_a_staff_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    for (method, path) in [
        (Method::GET, "/api/admin/live-chat/sessions".to_owned()),
        (Method::GET, format!("/api/admin/live-chat/sessions/{sid}")),
        (
            Method::POST,
            format!("/api/admin/live-chat/sessions/{sid}/reply"),
        ),
        (
            Method::DELETE,
            format!("/api/admin/live-chat/sessions/{sid}"),
        ),
        (Method::GET, "/api/admin/live-chat/analytics".to_owned()),
    ] {
        let refused = s.call(method, &path, None, None).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            refused.body,
            json!({ "success": false, "message": "No token, authorization denied" })
        );
    }
    let forged = s
        .get(
            "/api/admin/live-chat/sessions",
            Some("eyJhbGciOiJub25lIn0.e30."),
        )
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.body["message"], "Token is not valid");
    // A browser may pass the token as a query parameter.
    let by_query = s
        .get(
            &format!("/api/admin/live-chat/sessions?token={}", s.admin.token),
            None,
        )
        .await;
    assert_eq!(by_query.status, StatusCode::OK);

    // The document's admin socket URL alone is refused; with a token it opens.
    let bare = format!("admin=true&userId={}", s.jane.id);
    assert_eq!(s.socket_refused(&bare).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.socket_refused(&format!("{bare}&token=not-a-token")).await,
        StatusCode::UNAUTHORIZED
    );
    s.socket(&format!("{bare}&token={}", s.jane.token))
        .await
        .close()
        .await;
    s.stop().await;
}

#[tokio::test]
async fn guessed_or_altered_session_ids_find_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let mut altered = sid.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'a' { 'b' } else { 'a' });
    for guess in [
        "session-123".to_owned(),
        "session-1701691234567-abc123".to_owned(),
        altered.clone(),
        // The conversation part alone, without the MAC.
        sid.rsplit_once('-').unwrap().0.to_owned(),
    ] {
        let read = s
            .get(&format!("/api/live-chat/sessions/{guess}"), None)
            .await;
        assert_eq!(read.status, StatusCode::NOT_FOUND, "{guess}");
        assert_eq!(
            read.body,
            json!({ "success": false, "message": "Session not found" })
        );
        let write = s
            .post(
                &format!("/api/live-chat/sessions/{guess}/messages"),
                None,
                json!({ "content": "let me in" }),
            )
            .await;
        assert_eq!(write.status, StatusCode::NOT_FOUND);
        assert_eq!(
            s.socket_refused(&format!("sessionId={guess}")).await,
            StatusCode::NOT_FOUND
        );
    }
    // An id that no browser created names nothing.
    let reused = s
        .get(
            "/api/live-chat/sessions/session-1701691234567-abc123/messages",
            None,
        )
        .await;
    assert_eq!(reused.status, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn one_guest_never_reaches_another_guests_chat() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let mine = s.session(john()).await;
    let theirs = s
        .session(json!({ "user": { "name": "Eve", "email": "eve@example.com" } }))
        .await;
    s.post(
        &format!("/api/live-chat/sessions/{mine}/messages"),
        None,
        json!({ "content": "my order number is XYZZY-SECRET" }),
    )
    .await;
    // Eve's own session answers with her messages only.
    let hers = s
        .get(&format!("/api/live-chat/sessions/{theirs}/messages"), None)
        .await;
    assert_eq!(hers.body["total"], 1);
    assert!(!String::from_utf8_lossy(&hers.bytes).contains("XYZZY-SECRET"));
    // Uploading with her id into John's session is impossible: the form names one id.
    let upload = s
        .multipart(
            "/api/live-chat/upload",
            None,
            &[("sessionId", "session-123")],
            &[("files", "a.png", "image/png", vec![1, 2, 3])],
        )
        .await;
    assert_eq!(upload.status, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn agents_see_only_their_chats_and_only_admins_delete() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let base = format!("/api/admin/live-chat/sessions/{sid}");
    let assigned = s
        .patch(
            &format!("{base}/assign"),
            Some(&s.admin.token),
            json!({ "agentId": s.jane.id }),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK);
    // Bob is not on it: for him it does not exist.
    let bob = s.get(&base, Some(&s.bob.token)).await;
    assert_eq!(bob.status, StatusCode::NOT_FOUND);
    assert_eq!(bob.body["message"], "Session not found");
    let list = s
        .get("/api/admin/live-chat/sessions", Some(&s.bob.token))
        .await;
    assert_eq!(list.body["total"], 0);
    // Jane may work on it but not delete it.
    let delete = s
        .call(Method::DELETE, &base, Some(&s.jane.token), None)
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    assert_eq!(
        delete.body,
        json!({ "success": false, "message": "Only admins may delete sessions" })
    );
    assert_eq!(
        s.get(&base, Some(&s.jane.token)).await.status,
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test]
async fn bodies_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(dir.path()).await;
    let sid = s.session(john()).await;
    let huge = "x".repeat(100 * 1024);
    let refused = s
        .post(
            &format!("/api/live-chat/sessions/{sid}/messages"),
            None,
            json!({ "content": huge }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(refused.body["success"], false);
    let long = s
        .post(
            &format!("/api/live-chat/sessions/{sid}/messages"),
            None,
            json!({ "content": "y".repeat(20_000) }),
        )
        .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST, "{}", long.body);
    s.stop().await;
}

#[tokio::test]
async fn each_ip_gets_the_documented_number_of_requests_per_window() {
    let dir = tempfile::tempdir().unwrap();
    // The document's 100 per 15 minutes, scaled down so the test is quick.
    let s = common::start_with(
        dir.path(),
        Options {
            rate_limit: Some(RateLimit {
                requests: 5,
                window: Duration::from_secs(60),
            }),
        },
    )
    .await;
    for _ in 0..5 {
        let ok = s.get("/api/live-chat/sessions/session-123", None).await;
        assert_eq!(ok.status, StatusCode::NOT_FOUND);
    }
    let limited = s
        .get("/api/admin/live-chat/sessions", Some(&s.admin.token))
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.body,
        json!({
            "success": false,
            "message": "Too many requests from this IP, please try again after 1 minutes"
        })
    );
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    assert_eq!(
        s.socket_refused("sessionId=session-123").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Only the document's API is limited; the server's health check is not.
    assert_eq!(s.get("/healthz", None).await.status, StatusCode::OK);
    s.stop().await;

    let default = RateLimit::default();
    assert_eq!(
        (default.requests, default.window),
        (100, Duration::from_secs(15 * 60))
    );
}
