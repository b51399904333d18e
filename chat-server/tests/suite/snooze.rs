//! Snooze over `/v1`: a snoozed conversation leaves the active list (`snoozed=false`) and
//! comes back at its time (the engine's clock, moved by hand here) or at the customer's
//! next message, with an event for each; bad input changes nothing.

use crate::common;

use std::sync::Arc;

use chat_core::{ManualClock, Role};
use hyper::StatusCode;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

fn ids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

/// The `conversation_updated` changes of `conversation` in the log as `token` sees it.
async fn changes(server: &common::Server, token: &str, conversation: &str) -> Vec<Value> {
    let events = server
        .get("/v1/events?since=0&limit=1000", Some(token))
        .await;
    events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["payload"]["type"] == "conversation_updated"
                && e["conversation_id"] == json!(conversation)
        })
        .map(|e| e["payload"]["change"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snoozed_conversation_leaves_the_active_list_and_comes_back_at_its_time() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let server = common::start_full(|_| {}, |b| b.clock(clock.clone())).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;
    hand_to(&server, &conversation, &visitor, &ann).await;

    let until = clock_now(&clock) + time::Duration::hours(1);
    let snoozed = server
        .post(
            &format!("/v1/conversations/{conversation}/snooze"),
            Some(&ann.token),
            json!({ "until": until.format(&Rfc3339).unwrap() }),
        )
        .await;
    assert_eq!(snoozed.status, StatusCode::OK, "{}", snoozed.text);
    assert_eq!(snoozed.body["snooze"]["by"], json!(ann.id));

    let active = "/v1/conversations?assigned=me&snoozed=false";
    let set_aside = "/v1/conversations?assigned=me&snoozed=true";
    assert!(ids(&server.get(active, Some(&ann.token)).await.body).is_empty());
    assert_eq!(
        ids(&server.get(set_aside, Some(&ann.token)).await.body),
        [conversation.as_str()]
    );

    // Not yet.
    clock.advance(time::Duration::minutes(59));
    let report = server.engine.run_timers(server.tenant).await.unwrap();
    assert!(report.woken.is_empty());
    assert!(ids(&server.get(active, Some(&ann.token)).await.body).is_empty());

    clock.advance(time::Duration::minutes(1));
    let report = server.engine.run_timers(server.tenant).await.unwrap();
    assert_eq!(report.woken.len(), 1);
    assert_eq!(
        ids(&server.get(active, Some(&ann.token)).await.body),
        [conversation.as_str()]
    );
    let back = server
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&ann.token),
        )
        .await;
    assert!(back.body.get("snooze").is_none(), "{}", back.text);
    assert_eq!(back.body["mode"], "agent");

    let seen = changes(&server, &ann.token, &conversation).await;
    let snooze_changes: Vec<_> = seen
        .iter()
        .filter(|c| c["change"] == "snoozed" || c["change"] == "unsnoozed")
        .collect();
    assert_eq!(snooze_changes.len(), 2, "{seen:?}");
    assert_eq!(snooze_changes[0]["change"], "snoozed");
    assert!(snooze_changes[0]["until"].is_string());
    assert_eq!(
        *snooze_changes[1],
        json!({ "change": "unsnoozed", "reason": "time" })
    );
}

/// The visitor asks for a human and the router gives the conversation to `agent` (the only
/// one online); claims it otherwise.
async fn hand_to(
    server: &common::Server,
    conversation: &str,
    visitor: &str,
    agent: &common::Staff,
) {
    let handoff = server
        .post(
            &format!("/v1/conversations/{conversation}/handoff"),
            Some(visitor),
            json!({}),
        )
        .await;
    assert_eq!(handoff.status, StatusCode::OK, "{}", handoff.text);
    if handoff.body["assigned_agent_id"] != json!(agent.id) {
        let claimed = server
            .post(
                &format!("/v1/conversations/{conversation}/claim"),
                Some(&agent.token),
                json!({}),
            )
            .await;
        assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.text);
    }
}

fn clock_now(clock: &ManualClock) -> time::OffsetDateTime {
    use chat_core::Clock;
    clock.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customers_next_message_ends_a_snooze_and_customers_never_see_it() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let server = common::start_full(|_| {}, |b| b.clock(clock.clone())).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;
    hand_to(&server, &conversation, &visitor, &ann).await;
    // No time: until the customer writes.
    let snoozed = server
        .post(
            &format!("/v1/conversations/{conversation}/snooze"),
            Some(&ann.token),
            json!({}),
        )
        .await;
    assert_eq!(snoozed.status, StatusCode::OK, "{}", snoozed.text);
    assert_eq!(snoozed.body["snooze"]["until"], Value::Null);
    // Silence does not wake it.
    clock.advance(time::Duration::hours(2));
    assert!(
        server
            .engine
            .run_timers(server.tenant)
            .await
            .unwrap()
            .woken
            .is_empty()
    );

    let seen_by_visitor = server
        .get(&format!("/v1/conversations/{conversation}"), Some(&visitor))
        .await;
    assert!(
        seen_by_visitor.body.get("snooze").is_none(),
        "{}",
        seen_by_visitor.text
    );

    clock.advance(time::Duration::seconds(1));
    let posted = server
        .post(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&visitor),
            json!({ "body": "any news?" }),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let back = server
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&ann.token),
        )
        .await;
    assert!(back.body.get("snooze").is_none(), "{}", back.text);
    assert_eq!(
        ids(&server
            .get(
                "/v1/conversations?assigned=me&snoozed=false",
                Some(&ann.token)
            )
            .await
            .body),
        [conversation.as_str()]
    );
    let staff_saw = changes(&server, &ann.token, &conversation).await;
    assert!(
        staff_saw.contains(&json!({ "change": "unsnoozed", "reason": "customer_message" })),
        "{staff_saw:?}"
    );
    // The customer learns that something changed, not that it was snoozed.
    let customer_saw = changes(&server, &visitor, &conversation).await;
    assert!(!customer_saw.is_empty());
    assert!(
        customer_saw
            .iter()
            .all(|c| c["change"] != "snoozed" && c["change"] != "unsnoozed"),
        "{customer_saw:?}"
    );
    let filter = server
        .get("/v1/conversations?snoozed=true", Some(&visitor))
        .await;
    assert_eq!(filter.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_snoozes_are_refused_and_change_nothing() {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let server = common::start_full(|_| {}, |b| b.clock(clock.clone())).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;
    let path = format!("/v1/conversations/{conversation}/snooze");

    // Still with the bot: nobody holds it (an admin sees it; the agent would get 404).
    let unheld = server.post(&path, Some(&admin.token), json!({})).await;
    assert_eq!(unheld.status, StatusCode::CONFLICT, "{}", unheld.text);
    // Offline, so the router gives the conversation to Ann.
    let away = server
        .put(
            &format!("/v1/agents/{}/availability", admin.id),
            Some(&admin.token),
            json!({ "availability": "offline" }),
        )
        .await;
    assert_eq!(away.status, StatusCode::OK, "{}", away.text);

    hand_to(&server, &conversation, &visitor, &ann).await;
    let before = server
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&ann.token),
        )
        .await;
    let now = clock_now(&clock);
    for until in [
        now - time::Duration::minutes(1),
        now,
        now + time::Duration::days(400),
    ] {
        let reply = server
            .post(
                &path,
                Some(&ann.token),
                json!({ "until": until.format(&Rfc3339).unwrap() }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], "until");
    }
    let garbled = server
        .post(&path, Some(&ann.token), json!({ "until": "tomorrow-ish" }))
        .await;
    assert!(garbled.status.is_client_error(), "{}", garbled.text);
    let by_visitor = server.post(&path, Some(&visitor), json!({})).await;
    assert_eq!(by_visitor.status, StatusCode::FORBIDDEN);
    let not_snoozed = server.delete(&path, Some(&ann.token)).await;
    assert_eq!(
        not_snoozed.status,
        StatusCode::CONFLICT,
        "{}",
        not_snoozed.text
    );

    let after = server
        .get(
            &format!("/v1/conversations/{conversation}"),
            Some(&ann.token),
        )
        .await;
    assert_eq!(after.body, before.body);

    // Woken by hand, with its event.
    server.post(&path, Some(&ann.token), json!({})).await;
    let woken = server.delete(&path, Some(&ann.token)).await;
    assert_eq!(woken.status, StatusCode::OK, "{}", woken.text);
    assert!(woken.body.get("snooze").is_none());
    let seen = changes(&server, &ann.token, &conversation).await;
    assert!(
        seen.contains(&json!({ "change": "unsnoozed", "reason": "staff" })),
        "{seen:?}"
    );
}
