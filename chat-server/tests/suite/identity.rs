//! Who a contact is, tried as an attacker would over a real listener: an e-mail typed by an
//! anonymous visitor is a claim that reaches nobody; only a signed identity or a staff
//! merge joins contacts.

use crate::common;

use chat_core::{Actor, ContactId, Role};
use hyper::StatusCode;
use serde_json::{Value, json};

const SITE_SECRET: &[u8] = b"site-secret-for-identity";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A freshly signed identity, as the site signs it for each page: each signature is
/// used once, so no two get the same timestamp. `now - 300 + n` (n counting signatures)
/// grows strictly, however the calls fall across seconds, and stays within the 10-minute
/// window. (`now - n` did not: a call a second later with the next `n` repeated a
/// timestamp, and one test failed in two with "used already".)
fn identity(email: &str) -> Value {
    static SIGNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SIGNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert!(n < 300, "more signatures than the window keeps unique");
    let ts = now() - 300 + n;
    json!({
        "email": email,
        "timestamp": ts,
        "signature": chat_server::auth::sign_identity(SITE_SECRET, email, ts),
    })
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_anonymous_visitor_typing_a_customers_email_reads_nothing_and_changes_nothing() {
    let s = common::start_with(|c| c.identity_secret = Some(SITE_SECRET.to_vec())).await;
    // Alice, logged in on the shop's site, opens a chat: her contact is verified.
    let alice = s
        .post(
            "/v1/conversations",
            None,
            json!({
                "identity": identity("alice@example.com"),
                "contact": { "name": "Alice Liddell", "phone": "+44 20 1234", "address": "1 Rabbit Hole",
                             "metadata": { "plan": "gold" } },
                "first_message": "Where is my order?",
            }),
        )
        .await;
    assert_eq!(alice.status, StatusCode::CREATED, "{}", alice.text);
    let alice_id: ContactId = alice.body["contact"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let alice_token = alice.body["visitor_token"].as_str().unwrap().to_owned();
    let system = Actor::System { tenant: s.tenant };
    let before = s.engine.contact(&system, alice_id).await.unwrap();
    assert!(before.email_verified);

    // Mallory types Alice's e-mail and tries to overwrite her record.
    let mallory = s
        .post(
            "/v1/conversations",
            None,
            json!({
                "contact": { "email": "ALICE@example.com", "name": "Mallory", "phone": "+1 555",
                             "metadata": { "plan": "free", "account.password_hash": "$argon2id$forged" } },
                "first_message": "hello",
            }),
        )
        .await;
    assert_eq!(mallory.status, StatusCode::CREATED, "{}", mallory.text);
    let answer = &mallory.body["contact"];
    // The answer is Mallory's own new contact: none of Alice's stored data.
    assert_ne!(answer["id"], json!(alice_id.to_string()));
    assert_eq!(answer["email_verified"], json!(false));
    assert_eq!(answer["name"], json!("Mallory"));
    assert_eq!(answer["address"], Value::Null);
    assert!(!mallory.text.contains("Rabbit Hole") && !mallory.text.contains("gold"));
    let mallory_token = mallory.body["visitor_token"].as_str().unwrap().to_owned();
    // Her token cannot read Alice's contact or conversation.
    let probe = s
        .get(&format!("/v1/contacts/{alice_id}"), Some(&mallory_token))
        .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND, "{}", probe.text);
    let alice_conversation = alice.body["conversation"]["id"].as_str().unwrap();
    let probe = s
        .get(
            &format!("/v1/conversations/{alice_conversation}/messages"),
            Some(&mallory_token),
        )
        .await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND, "{}", probe.text);
    // Alice's record is exactly as it was.
    assert_eq!(s.engine.contact(&system, alice_id).await.unwrap(), before);
    // Mallory's conversation is not in Alice's verified history, now or at her next visit.
    let mallory_conversation = mallory.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mine = s.get("/v1/conversations", Some(&alice_token)).await;
    assert_eq!(ids(&mine.body), [alice_conversation.to_owned()]);
    let again = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity("alice@example.com") }),
        )
        .await;
    assert_eq!(again.body["contact"]["id"], json!(alice_id.to_string()));
    let token = again.body["visitor_token"].as_str().unwrap();
    let mine = s.get("/v1/conversations", Some(token)).await;
    assert!(!ids(&mine.body).contains(&mallory_conversation));
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 2);
    // A second claim of the same e-mail is yet another contact.
    let (_, other_token) = s.visitor("alice@example.com").await;
    let me = s.get("/v1/me", Some(&other_token)).await;
    assert_ne!(me.body["contact_id"], json!(alice_id.to_string()));
    s.stop().await;
}

#[tokio::test]
async fn a_supervisor_merges_an_anonymous_visit_into_the_verified_customer() {
    let s = common::start_with(|c| c.identity_secret = Some(SITE_SECRET.to_vec())).await;
    let supervisor = s.staff("Sam", Role::Supervisor, &[]).await;
    let agent = s.staff("Ann", Role::Agent, &[]).await;
    let (earlier, earlier_token) = s.visitor("bob@example.com").await;
    let earlier_contact = s.get("/v1/me", Some(&earlier_token)).await.body["contact_id"].clone();
    let verified = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity("bob@example.com") }),
        )
        .await;
    let bob = verified.body["contact"]["id"].as_str().unwrap().to_owned();
    let bob_token = verified.body["visitor_token"].as_str().unwrap().to_owned();
    let merge = |token: String| {
        let path = format!("/v1/contacts/{bob}/merge");
        let body = json!({ "contact_id": earlier_contact });
        let s = &s;
        async move { s.post(&path, Some(&token), body).await }
    };
    // Agents may not merge; visitors not at all.
    assert_eq!(
        merge(agent.token.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(merge(bob_token.clone()).await.status, StatusCode::FORBIDDEN);
    let merged = merge(supervisor.token.clone()).await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    assert_eq!(merged.body["id"], json!(bob));
    assert_eq!(merged.body["email_verified"], json!(true));
    // Bob's history now holds the earlier visit, and the earlier widget still reaches it.
    let mine = s.get("/v1/conversations", Some(&bob_token)).await;
    assert!(ids(&mine.body).contains(&earlier));
    let still = s
        .get(
            &format!("/v1/conversations/{earlier}"),
            Some(&earlier_token),
        )
        .await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.text);
    // The merged contact is gone; the merge is on the staff's event log.
    let gone = s
        .get(
            &format!("/v1/contacts/{}", earlier_contact.as_str().unwrap()),
            Some(&supervisor.token),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let events = s
        .get("/v1/events?since=0&limit=1000", Some(&supervisor.token))
        .await;
    let audit: Vec<&Value> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["payload"]["type"] == "contact_merged")
        .collect();
    assert_eq!(audit.len(), 1, "{}", events.text);
    assert_eq!(audit[0]["payload"]["merged"], earlier_contact);
    let visitor_events = s
        .get("/v1/events?since=0&limit=1000", Some(&bob_token))
        .await;
    assert!(!visitor_events.text.contains("contact_merged"));
    s.stop().await;
}

#[tokio::test]
async fn staff_edit_contacts_and_a_changed_email_is_a_claim_again() {
    let s = common::start_with(|c| c.identity_secret = Some(SITE_SECRET.to_vec())).await;
    let agent = s.staff("Ann", Role::Agent, &[]).await;
    let opened = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity("cleo@example.com") }),
        )
        .await;
    let id = opened.body["contact"]["id"].as_str().unwrap().to_owned();
    let token = opened.body["visitor_token"].as_str().unwrap().to_owned();
    let path = format!("/v1/contacts/{id}");
    // The customer cannot rewrite its own record.
    let by_customer = s
        .call(
            hyper::Method::PATCH,
            &path,
            Some(&token),
            Some(json!({ "email": "someone@else.example" })),
        )
        .await;
    assert_eq!(by_customer.status, StatusCode::FORBIDDEN);
    let named = s
        .call(
            hyper::Method::PATCH,
            &path,
            Some(&agent.token),
            Some(json!({ "name": "Cleo", "metadata": { "plan": "gold" } })),
        )
        .await;
    assert_eq!(named.status, StatusCode::OK, "{}", named.text);
    assert_eq!(
        named.body["email_verified"],
        json!(true),
        "the e-mail did not change"
    );
    assert_eq!(named.body["metadata"]["plan"], "gold");
    let moved = s
        .call(
            hyper::Method::PATCH,
            &path,
            Some(&agent.token),
            Some(json!({ "email": "cleo@new.example" })),
        )
        .await;
    assert_eq!(moved.body["email"], "cleo@new.example");
    assert_eq!(moved.body["email_verified"], json!(false));
    // So the next signed visit for the old address makes a verified contact of its own.
    let again = s
        .post(
            "/v1/conversations",
            None,
            json!({ "identity": identity("cleo@example.com") }),
        )
        .await;
    assert_ne!(again.body["contact"]["id"], json!(id));
    s.stop().await;
}
