//! Business hours over a real listener: the schedule is a tenant setting (bad ones are 422
//! on `business_hours` and change nothing), `GET /v1/widget` tells anyone whether the desk
//! is open, and a visitor who opens a conversation at night is told `offline: true`, gets
//! the offline message and waits in the queue until the opening (the engine's manual clock).

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chat_core::{ManualClock, Role};
use hyper::StatusCode;
use serde_json::{Value, json};
use time::macros::datetime;

const CLOSED: &str = "We are closed. Leave your e-mail and we answer from 09:00 (UTC).";

fn schedule() -> Value {
    let day = json!([{ "from": "09:00", "to": "17:00" }]);
    json!({
        "time_zone": "UTC",
        "weekly": { "mon": day, "tue": day, "wed": day, "thu": day, "fri": day },
        "holidays": ["2026-12-25"],
        "offline_message": CLOSED
    })
}

/// Breaks a schedule one way.
type Edit = fn(&mut Value);

/// A server on a manual clock at Monday 2 March 2026, 22:00 UTC, whose own timer loop
/// stays out of the way (the test runs the timers itself).
async fn night_server() -> (common::Server, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 22:00 UTC)));
    let server = common::start_full(
        |config| config.timer_interval = Duration::from_secs(3600),
        |b| b.clock(clock.clone()),
    )
    .await;
    (server, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_422_on_business_hours_and_change_nothing() {
    let (server, _clock) = night_server().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let before = server.get("/v1/settings", Some(&admin.token)).await;
    assert_eq!(
        before.body["business_hours"],
        Value::Null,
        "{}",
        before.text
    );

    let edits: [(&str, Edit); 7] = [
        ("time zone", |h| h["time_zone"] = json!("Mars/Olympus_Mons")),
        ("HH:MM", |h| {
            h["weekly"]["mon"] = json!([{ "from": "9am", "to": "17:00" }])
        }),
        ("before", |h| {
            h["weekly"]["tue"] = json!([{ "from": "17:00", "to": "09:00" }])
        }),
        (
            "overlaps",
            |h| {
                h["weekly"]["wed"] =
                    json!([{ "from": "09:00", "to": "12:00" }, { "from": "11:30", "to": "14:00" }])
            },
        ),
        ("holidays", |h| h["holidays"] = json!(["2026-13-01"])),
        // Not a weekday, and not a field of a range: the shape is checked too.
        ("funday", |h| h["weekly"]["funday"] = json!([])),
        ("missing field", |h| {
            h["weekly"]["thu"] = json!([{ "from": "09:00" }])
        }),
    ];
    for (reason, edit) in edits {
        let mut hours = schedule();
        edit(&mut hours);
        let reply = server
            .patch(
                "/v1/settings",
                Some(&admin.token),
                json!({ "business_hours": hours, "welcome_message": "changed?" }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert_eq!(
            reply.body["error"]["field"], "business_hours",
            "{}",
            reply.text
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{reason}: {message}");
    }
    let after = server.get("/v1/settings", Some(&admin.token)).await;
    assert_eq!(after.body, before.body, "nothing changed");

    // A good schedule is stored as sent, and null switches it off again.
    let good = server
        .patch(
            "/v1/settings",
            Some(&admin.token),
            json!({ "business_hours": schedule() }),
        )
        .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    assert_eq!(good.body["business_hours"]["time_zone"], "UTC");
    assert_eq!(
        good.body["business_hours"]["weekly"]["mon"][0]["to"],
        "17:00"
    );
    let off = server
        .patch(
            "/v1/settings",
            Some(&admin.token),
            json!({ "business_hours": null }),
        )
        .await;
    assert_eq!(off.body["business_hours"], Value::Null, "{}", off.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_reads_open_state_and_messages_and_nothing_else() {
    let (server, clock) = night_server().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    // Without business hours the desk is always open.
    let always = server.get("/v1/widget", None).await;
    assert_eq!(always.status, StatusCode::OK, "{}", always.text);
    assert_eq!(always.body["open"], true);
    assert_eq!(always.body["next_opening"], Value::Null);

    let patched = server
        .patch(
            "/v1/settings",
            Some(&admin.token),
            json!({ "business_hours": schedule(), "welcome_message": "Hi!", "requeue_after_secs": 300, "prechat_form": true }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);

    let path = format!("/v1/widget?tenant_id={}", server.tenant);
    let night = server.get(&path, None).await;
    assert_eq!(night.status, StatusCode::OK, "{}", night.text);
    assert_eq!(
        night.body,
        json!({
            "tenant_id": server.tenant.to_string(),
            "open": false,
            "next_opening": "2026-03-03T09:00:00Z",
            "offline_message": CLOSED,
            "welcome_message": "Hi!",
            "prechat_form": true,
        }),
        "exactly these fields: no schedule, timer or capacity leaks"
    );
    clock.set(datetime!(2026-03-03 09:00 UTC));
    let day = server.get(&path, None).await;
    assert_eq!(day.body["open"], true);
    assert_eq!(day.body["next_opening"], Value::Null);

    // A tenant that does not exist, or an id that is not one: 422 on `tenant_id`.
    for bad in [
        "/v1/widget?tenant_id=0190b3c4-0000-7000-8000-000000000000",
        "/v1/widget?tenant_id=acme",
    ] {
        let reply = server.get(bad, None).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], "tenant_id");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_at_night_is_told_offline_and_is_routed_at_the_opening() {
    let (server, clock) = night_server().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let patched = server
        .patch(
            "/v1/settings",
            Some(&admin.token),
            json!({ "business_hours": schedule(), "bot_enabled": false }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let online = server
        .put(
            &format!("/v1/agents/{}/availability", ann.id),
            Some(&ann.token),
            json!({ "availability": "online" }),
        )
        .await;
    assert_eq!(online.status, StatusCode::OK, "{}", online.text);

    // The widget saw `open: false`, so it asked for an e-mail and sends it with the opening.
    let opened = server
        .post(
            "/v1/conversations",
            None,
            json!({ "contact": { "name": "Nora", "email": "nora@example.com" }, "first_message": "Is my order shipped?" }),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
    assert_eq!(opened.body["offline"], true);
    assert_eq!(opened.body["conversation"]["mode"], "queued");
    assert_eq!(opened.body["contact"]["email"], "nora@example.com");
    let messages = opened.body["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last["sender"]["type"], "bot");
    assert_eq!(last["body"], CLOSED);
    let id = opened.body["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let visitor = opened.body["visitor_token"].as_str().unwrap().to_owned();

    // Ann is online, but nothing is routed at night, by the timers either.
    assert!(
        server
            .engine
            .run_timers(server.tenant)
            .await
            .unwrap()
            .routed
            .is_empty()
    );
    let mine = server
        .get("/v1/conversations?assigned=me", Some(&ann.token))
        .await;
    assert_eq!(mine.body["items"], json!([]), "{}", mine.text);

    // 09:00: the timer pass routes it to Ann.
    clock.set(datetime!(2026-03-03 09:00 UTC));
    let report = server.engine.run_timers(server.tenant).await.unwrap();
    assert_eq!(report.routed.len(), 1);
    let seen = server
        .get(&format!("/v1/conversations/{id}"), Some(&visitor))
        .await;
    assert_eq!(seen.body["mode"], "agent", "{}", seen.text);
    let mine = server
        .get("/v1/conversations?assigned=me", Some(&ann.token))
        .await;
    assert_eq!(mine.body["items"][0]["id"], id.as_str(), "{}", mine.text);

    // By day the answer says `offline: false` and posts no offline message.
    let (day, _) = server.visitor("day@example.com").await;
    let seen = server
        .get(
            &format!("/v1/conversations/{day}/messages"),
            Some(&admin.token),
        )
        .await;
    assert!(!seen.text.contains(CLOSED), "{}", seen.text);
}
