//! Reports over `/v1`: a hand-built day at a desk in Berlin whose every figure is known,
//! checked through a real listener for each report, each role and each format; bad input
//! is 422 naming the field.

use crate::common;

use std::sync::Arc;

use chat_core::{ManualClock, Role};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;

const DAY: &str = "from=2026-03-10&to=2026-03-10&tz=Europe/Berlin";

struct Desk {
    server: common::Server,
    ada: common::Staff,
    sue: common::Staff,
    ann: common::Staff,
    bob: common::Staff,
    visitor_a: String,
    conversation_a: String,
    conversation_b: String,
}

async fn ok(server: &common::Server, path: &str, token: &str, body: Value) -> Value {
    let reply = server.post(path, Some(token), body).await;
    assert!(reply.status.is_success(), "{path}: {}", reply.text);
    reply.body
}

/// On 2026-03-10 (UTC+1 in Berlin):
/// - A opens 09:00Z, Ann answers after 120 s, the customer closes at 600 s rating 5 "Great".
/// - B opens 10:00Z, Bob answers after 1800 s, closes at 11:00Z, the customer rates 2
///   "Slow", reopens at 11:01Z, Bob closes again at 12:00Z (resolution 2 h).
/// - C opens 12:00Z and stays with the bot.
async fn desk() -> Desk {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-10 09:00 UTC)));
    let server = common::start_full(|_| {}, |b| b.clock(clock.clone())).await;
    let ada = server.staff("Ada", Role::Admin, &[]).await;
    let sue = server.staff("Sue", Role::Supervisor, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let bob = server.staff("Bob", Role::Agent, &[]).await;
    let minutes = |m: i64| clock.advance(time::Duration::minutes(m));

    let (a, visitor_a) = server.visitor("a@example.com").await;
    ok(
        &server,
        &format!("/v1/conversations/{a}/handoff"),
        &visitor_a,
        json!({}),
    )
    .await;
    ok(
        &server,
        &format!("/v1/conversations/{a}/assign"),
        &ada.token,
        json!({ "agent_id": ann.id }),
    )
    .await;
    minutes(2);
    ok(
        &server,
        &format!("/v1/conversations/{a}/messages"),
        &ann.token,
        json!({ "body": "Hello!" }),
    )
    .await;
    minutes(8);
    ok(
        &server,
        &format!("/v1/conversations/{a}/close"),
        &visitor_a,
        json!({ "rating": { "score": 5, "feedback": "Great" } }),
    )
    .await;

    minutes(50);
    let (b, visitor_b) = server.visitor("b@example.com").await;
    ok(
        &server,
        &format!("/v1/conversations/{b}/handoff"),
        &visitor_b,
        json!({}),
    )
    .await;
    ok(
        &server,
        &format!("/v1/conversations/{b}/assign"),
        &ada.token,
        json!({ "agent_id": bob.id }),
    )
    .await;
    minutes(30);
    ok(
        &server,
        &format!("/v1/conversations/{b}/messages"),
        &bob.token,
        json!({ "body": "On it" }),
    )
    .await;
    minutes(30);
    ok(
        &server,
        &format!("/v1/conversations/{b}/close"),
        &bob.token,
        json!({}),
    )
    .await;
    ok(
        &server,
        &format!("/v1/conversations/{b}/rating"),
        &visitor_b,
        json!({ "score": 2, "feedback": "Slow" }),
    )
    .await;
    minutes(1);
    ok(
        &server,
        &format!("/v1/conversations/{b}/reopen"),
        &visitor_b,
        json!({}),
    )
    .await;
    // The customer's reopen goes back to the bot; Bob takes it again and closes it.
    ok(
        &server,
        &format!("/v1/conversations/{b}/assign"),
        &ada.token,
        json!({ "agent_id": bob.id }),
    )
    .await;
    minutes(59);
    ok(
        &server,
        &format!("/v1/conversations/{b}/close"),
        &bob.token,
        json!({}),
    )
    .await;

    server.visitor("c@example.com").await;
    Desk {
        server,
        ada,
        sue,
        ann,
        bob,
        visitor_a,
        conversation_a: a,
        conversation_b: b,
    }
}

fn durations(count: u64, median: f64, p90: f64) -> Value {
    json!({ "count": count, "median_secs": median, "p90_secs": p90 })
}

fn csat(distribution: [u64; 5]) -> Value {
    let count: u64 = distribution.iter().sum();
    let sum: u64 = distribution.iter().zip(1..).map(|(n, s)| n * s).sum();
    json!({ "count": count, "average": sum as f64 / count as f64, "distribution": distribution })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_give_the_known_figures_of_a_hand_built_day() {
    let d = desk().await;
    let get = |path: String, token: String| {
        let server = &d.server;
        async move {
            let reply = server.get(&path, Some(&token)).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
            reply.body
        }
    };

    let overview = get(format!("/v1/reports/overview?{DAY}"), d.ada.token.clone()).await;
    assert_eq!(
        overview,
        json!({
            "from": "2026-03-10", "to": "2026-03-10", "tz": "Europe/Berlin", "agent_id": null,
            "totals": {
                "key": null, "opened": 3, "closed": 2, "reopened": 1,
                "first_response": durations(2, 120.0, 1800.0),
                "resolution": durations(2, 600.0, 7200.0),
                "csat": csat([0, 1, 0, 0, 1]),
            }
        })
    );

    let ann_row = json!({
        "key": d.ann.id, "opened": 1, "closed": 1, "reopened": 0,
        "first_response": durations(1, 120.0, 120.0),
        "resolution": durations(1, 600.0, 600.0),
        "csat": csat([0, 0, 0, 0, 1]),
    });
    let bob_row = json!({
        "key": d.bob.id, "opened": 1, "closed": 1, "reopened": 1,
        "first_response": durations(1, 1800.0, 1800.0),
        "resolution": durations(1, 7200.0, 7200.0),
        "csat": csat([0, 1, 0, 0, 0]),
    });
    let nobody = json!({
        "key": null, "opened": 1, "closed": 0, "reopened": 0,
        "first_response": { "count": 0, "median_secs": null, "p90_secs": null },
        "resolution": { "count": 0, "median_secs": null, "p90_secs": null },
        "csat": { "count": 0, "average": null, "distribution": [0, 0, 0, 0, 0] },
    });
    let mut agents = vec![ann_row.clone(), bob_row.clone()];
    agents.sort_by_key(|r| r["key"].as_str().unwrap().to_owned());
    agents.insert(0, nobody);
    // A supervisor sees the whole desk too.
    let by_agent = get(
        format!("/v1/reports/breakdown?by=agent&{DAY}"),
        d.sue.token.clone(),
    )
    .await;
    assert_eq!(by_agent["rows"], Value::Array(agents));
    let by_channel = get(
        format!("/v1/reports/breakdown?by=channel&{DAY}"),
        d.ada.token.clone(),
    )
    .await;
    assert_eq!(by_channel["rows"][0]["key"], "web");
    assert_eq!(by_channel["rows"][0]["opened"], 3);

    // Hourly in Berlin: A at 10:00, B at 11:00 (reopened 12:00, closed 13:00), C at 13:00.
    let hourly = get(
        format!("/v1/reports/series?interval=hour&{DAY}"),
        d.ada.token.clone(),
    )
    .await;
    let points = hourly["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert_eq!(points[0]["start"], "2026-03-10T00:00:00+01:00");
    let busy: Vec<(String, u64, u64, u64)> = points
        .iter()
        .filter(|p| p["opened"] != 0 || p["closed"] != 0 || p["reopened"] != 0)
        .map(|p| {
            (
                p["start"].as_str().unwrap().to_owned(),
                p["opened"].as_u64().unwrap(),
                p["closed"].as_u64().unwrap(),
                p["reopened"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        busy,
        [
            ("2026-03-10T10:00:00+01:00".to_owned(), 1, 1, 0),
            ("2026-03-10T11:00:00+01:00".to_owned(), 1, 0, 0),
            ("2026-03-10T12:00:00+01:00".to_owned(), 0, 0, 1),
            ("2026-03-10T13:00:00+01:00".to_owned(), 1, 1, 0),
        ]
    );
    let daily = get(format!("/v1/reports/series?{DAY}"), d.ada.token.clone()).await;
    assert_eq!(
        daily["points"],
        json!([{ "start": "2026-03-10T00:00:00+01:00", "opened": 3, "closed": 2, "reopened": 1 }])
    );
    // The day before, in Berlin, saw nothing.
    let before = get(
        "/v1/reports/overview?from=2026-03-09&to=2026-03-09&tz=Europe/Berlin".into(),
        d.ada.token.clone(),
    )
    .await;
    assert_eq!(before["totals"]["opened"], 0);

    let feedback = get(format!("/v1/reports/feedback?{DAY}"), d.ada.token.clone()).await;
    let items: Vec<(&str, &str, u64)> = feedback["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["conversation_id"].as_str().unwrap(),
                f["feedback"].as_str().unwrap(),
                f["score"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (d.conversation_b.as_str(), "Slow", 2),
            (d.conversation_a.as_str(), "Great", 5)
        ]
    );
    assert_eq!(
        feedback["items"][0]["rated_at"],
        "2026-03-10T12:00:00+01:00"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_only_its_own_figures_and_customers_none() {
    let d = desk().await;
    let mine = d
        .server
        .get(&format!("/v1/reports/overview?{DAY}"), Some(&d.ann.token))
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert_eq!(mine.body["agent_id"], json!(d.ann.id));
    assert_eq!(mine.body["totals"]["opened"], 1);
    assert_eq!(
        mine.body["totals"]["csat"]["distribution"],
        json!([0, 0, 0, 0, 1])
    );
    let rows = d
        .server
        .get(
            &format!("/v1/reports/breakdown?by=agent&{DAY}"),
            Some(&d.ann.token),
        )
        .await;
    assert_eq!(
        rows.body["rows"].as_array().unwrap().len(),
        1,
        "{}",
        rows.text
    );
    assert_eq!(rows.body["rows"][0]["key"], json!(d.ann.id));
    let feedback = d
        .server
        .get(&format!("/v1/reports/feedback?{DAY}"), Some(&d.ann.token))
        .await;
    assert_eq!(feedback.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(feedback.body["items"][0]["feedback"], "Great");

    let other = d
        .server
        .get(
            &format!("/v1/reports/overview?{DAY}&agent_id={}", d.bob.id),
            Some(&d.ann.token),
        )
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.text);
    // An admin may look at one agent.
    let bobs = d
        .server
        .get(
            &format!("/v1/reports/overview?{DAY}&agent_id={}", d.bob.id),
            Some(&d.ada.token),
        )
        .await;
    assert_eq!(bobs.body["totals"]["reopened"], 1, "{}", bobs.text);

    let customer = d
        .server
        .get(&format!("/v1/reports/overview?{DAY}"), Some(&d.visitor_a))
        .await;
    assert_eq!(customer.status, StatusCode::FORBIDDEN, "{}", customer.text);
    let nobody = d
        .server
        .get(&format!("/v1/reports/overview?{DAY}"), None)
        .await;
    assert_eq!(nobody.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_export_as_csv_by_format_or_accept() {
    let d = desk().await;
    let csv = d
        .server
        .get(
            &format!("/v1/reports/breakdown?by=agent&format=csv&{DAY}"),
            Some(&d.ada.token),
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.text.split("\r\n").collect();
    assert!(lines[0].starts_with("key,opened,closed,reopened,first_response_count,"));
    assert_eq!(lines.len(), 5, "{}", csv.text); // header, 3 rows, the final CRLF
    assert!(
        lines[1].starts_with(",1,0,0,0,,,0,,,0,,0,0,0,0,0"),
        "{}",
        lines[1]
    );
    let ann = lines
        .iter()
        .find(|l| l.starts_with(&d.ann.id.to_string()))
        .unwrap();
    assert_eq!(
        ann.split(',').skip(1).collect::<Vec<_>>().join(","),
        "1,1,0,1,120,120,1,600,600,1,5,0,0,0,0,1"
    );

    let by_accept = d
        .server
        .send_as(
            Method::GET,
            &format!("/v1/reports/feedback?{DAY}"),
            Some(&d.ada.token),
            &[("accept", "text/csv")],
            "",
        )
        .await;
    assert_eq!(by_accept.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        by_accept
            .text
            .starts_with("conversation_id,agent_id,score,rated_at,feedback\r\n")
    );
    assert!(
        by_accept
            .text
            .contains(",2,2026-03-10T12:00:00+01:00,Slow\r\n"),
        "{}",
        by_accept.text
    );
    // `format` wins over Accept.
    let json = d
        .server
        .send_as(
            Method::GET,
            &format!("/v1/reports/series?format=json&{DAY}"),
            Some(&d.ada.token),
            &[("accept", "text/csv")],
            "",
        )
        .await;
    assert_eq!(json.body["points"][0]["opened"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_report_parameters_are_422_naming_the_field() {
    let server = common::start().await;
    let ada = server.staff("Ada", Role::Admin, &[]).await;
    for (query, field) in [
        ("to=2026-03-10", "from"),
        ("from=2026-03-10", "to"),
        ("from=10.03.2026&to=2026-03-10", "from"),
        ("from=2026-03-10&to=2026-03-09", "to"),
        ("from=2025-01-01&to=2026-03-10", "to"),
        ("from=2026-03-10&to=2026-03-10&tz=Mars/Olympus", "tz"),
        ("from=2026-03-10&to=2026-03-10&format=xml", "format"),
        ("from=2026-03-10&to=2026-03-10&agent_id=nobody", "agent_id"),
    ] {
        let reply = server
            .get(&format!("/v1/reports/overview?{query}"), Some(&ada.token))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            reply.text
        );
        assert_eq!(
            reply.body["error"]["field"], field,
            "{query}: {}",
            reply.text
        );
    }
    let by = server
        .get(
            "/v1/reports/breakdown?by=planet&from=2026-03-10&to=2026-03-10",
            Some(&ada.token),
        )
        .await;
    assert_eq!(by.body["error"]["field"], "by", "{}", by.text);
    let hourly = server
        .get(
            "/v1/reports/series?interval=hour&from=2026-01-01&to=2026-03-10",
            Some(&ada.token),
        )
        .await;
    assert_eq!(hourly.body["error"]["field"], "to", "{}", hourly.text);
}
