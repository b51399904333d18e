//! The account takeover of the earlier release, replayed over a real listener: an
//! anonymous `POST /v1/conversations` that names a user's e-mail and slips a password hash
//! into the contact's metadata must neither change the user's password nor reach the
//! user's chats.

use crate::common;

use hyper::{Method, StatusCode};
use serde_json::json;

async fn login(s: &common::Server, username: &str, password: &str) -> (StatusCode, String) {
    let reply = s
        .send(
            Method::POST,
            "/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            format!("username={username}&password={password}"),
        )
        .await;
    let token = reply.body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (reply.status, token)
}

#[tokio::test]
async fn a_forged_password_hash_in_contact_metadata_takes_over_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::start(&dir.path().join("ai.db"), None).await;
    let signed = s
        .post(
            "/users/",
            None,
            json!({ "username": "victim", "email": "victim@example.com", "password": "victim-pw" }),
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.text);
    let (status, victim) = login(&s, "victim", "victim-pw").await;
    assert_eq!(status, StatusCode::OK);
    let chat = s
        .post(
            "/chats/",
            Some(&victim),
            json!({ "title": "My private plans" }),
        )
        .await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.text);

    // The attacker's argon2id hash of a password it knows, planted through the engine's own API.
    let forged = chat_server::auth::hash_password("attacker-pw").unwrap();
    let attack = s
        .post(
            "/v1/conversations",
            None,
            json!({ "contact": { "email": "victim@example.com", "name": "victim",
                                 "metadata": { "account.password_hash": forged } } }),
        )
        .await;
    assert_eq!(attack.status, StatusCode::CREATED, "{}", attack.text);
    assert_ne!(attack.body["contact"]["id"], signed.body["id"]);
    let attacker = attack.body["visitor_token"].as_str().unwrap().to_owned();

    // The attacker's password opens nothing; the victim's still works.
    let (status, _) = login(&s, "victim", "attacker-pw").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, victim) = login(&s, "victim", "victim-pw").await;
    assert_eq!(status, StatusCode::OK);
    // The victim's chats are the victim's alone, and the attacker reads none of them.
    let mine = s.get("/chats/", Some(&victim)).await;
    assert_eq!(mine.status, StatusCode::OK);
    let titles: Vec<&str> = mine
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["My private plans"]);
    let theirs = s.get("/chats/", Some(&attacker)).await;
    assert!(!theirs.text.contains("My private plans"), "{}", theirs.text);
    let chat_id = chat.body["id"].as_str().unwrap();
    let probe = s.get(&format!("/chats/{chat_id}"), Some(&attacker)).await;
    assert_ne!(probe.status, StatusCode::OK, "{}", probe.text);
    let probe = s
        .get(&format!("/v1/conversations/{chat_id}"), Some(&attacker))
        .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND, "{}", probe.text);
    // The victim's account shows the e-mail it signed up with and nothing of the attack.
    let me = s.get("/users/me", Some(&victim)).await;
    assert_eq!(me.body, signed.body);
}
