//! Transcripts over `/v1`: plain text, HTML with every text escaped, and JSON; internal
//! notes for staff only; nothing of another customer's conversation.

use crate::common;

use chat_core::Role;
use hyper::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transcript_is_text_html_or_json_with_notes_for_staff_only() {
    let server = common::start().await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;
    let path = |rest: &str| format!("/v1/conversations/{conversation}{rest}");
    let post = |token: String, rest: &'static str, body: serde_json::Value| {
        let (server, path) = (&server, path(rest));
        async move {
            let reply = server.post(&path, Some(&token), body).await;
            assert!(reply.status.is_success(), "{path}: {}", reply.text);
        }
    };
    post(
        visitor.clone(),
        "/messages",
        json!({ "body": "<script>alert('x')</script> & \"more\"" }),
    )
    .await;
    post(visitor.clone(), "/handoff", json!({})).await;
    post(ann.token.clone(), "/claim", json!({})).await;
    post(
        ann.token.clone(),
        "/notes",
        json!({ "body": "VIP customer, be kind" }),
    )
    .await;
    post(
        ann.token.clone(),
        "/messages",
        json!({ "body": "Hello, how can I help?" }),
    )
    .await;

    let text = server
        .get(&path("/transcript?format=text"), Some(&ann.token))
        .await;
    assert_eq!(text.status, StatusCode::OK, "{}", text.text);
    assert_eq!(text.headers["content-type"], "text/plain; charset=utf-8");
    assert!(
        text.text
            .starts_with(&format!("Conversation {conversation}")),
        "{}",
        text.text
    );
    assert!(
        text.text
            .contains("Customer:\n<script>alert('x')</script> & \"more\"\n"),
        "{}",
        text.text
    );
    assert!(
        text.text
            .contains("Internal note by Agent Ann:\nVIP customer, be kind\n"),
        "{}",
        text.text
    );
    assert!(
        text.text.contains("Agent Ann:\nHello, how can I help?\n"),
        "{}",
        text.text
    );

    let html = server
        .get(&path("/transcript?format=html"), Some(&ann.token))
        .await;
    assert_eq!(html.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        html.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(!html.text.contains("<script>"), "{}", html.text);
    assert!(
        html.text
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;"),
        "{}",
        html.text
    );
    assert!(html.text.contains("VIP customer"));
    // Accept chooses when there is no format.
    let by_accept = server
        .send_as(
            Method::GET,
            &path("/transcript"),
            Some(&ann.token),
            &[("accept", "text/html")],
            "",
        )
        .await;
    assert_eq!(by_accept.text, html.text);

    // The customer: no note anywhere, and staff messages signed "Agent".
    let mine = server
        .get(&path("/transcript?format=text"), Some(&visitor))
        .await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    assert!(!mine.text.contains("VIP"), "{}", mine.text);
    assert!(!mine.text.contains("Agent Ann"), "{}", mine.text);
    assert!(
        mine.text.contains("Agent:\nHello, how can I help?"),
        "{}",
        mine.text
    );
    let mine_html = server
        .get(&path("/transcript?format=html"), Some(&visitor))
        .await;
    assert!(!mine_html.text.contains("VIP"));
    let json = server.get(&path("/transcript"), Some(&visitor)).await;
    let kinds: Vec<&str> = json.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"note"), "{kinds:?}");
    assert!(
        json.body["conversation"].get("tags").is_none(),
        "{}",
        json.text
    );
    assert_eq!(json.body["truncated"], false);
    let staff_json = server
        .get(&path("/transcript?format=json"), Some(&ann.token))
        .await;
    assert!(
        staff_json.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "note"),
        "{}",
        staff_json.text
    );

    // Another customer cannot tell the conversation exists.
    let (_, stranger) = server.visitor("s@example.com").await;
    let theirs = server
        .get(&path("/transcript?format=text"), Some(&stranger))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.text);
    let bad = server
        .get(&path("/transcript?format=pdf"), Some(&ann.token))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["error"]["field"], "format");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_list_exports_as_csv_with_the_callers_columns() {
    let server = common::start().await;
    let ada = server.staff("Ada", Role::Admin, &[]).await;
    let (first, visitor) = server.visitor("v@example.com").await;
    let titled = server
        .patch(
            &format!("/v1/conversations/{first}"),
            Some(&ada.token),
            json!({ "title": "=HYPERLINK(\"http://evil\"), \"quoted\"", "tags": ["vip"] }),
        )
        .await;
    assert_eq!(titled.status, StatusCode::OK, "{}", titled.text);
    let (second, _) = server.visitor("w@example.com").await;

    let csv = server
        .get("/v1/conversations?format=csv&limit=1", Some(&ada.token))
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.text.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "id,mode,channel,title,priority,department,tags,assigned_agent_id,contact_id,message_count,rating,created_at,updated_at,first_response_at,closed_at"
    );
    assert!(lines[1].starts_with(&second), "{}", csv.text);
    let next = csv.headers["next-cursor"].to_str().unwrap().to_owned();
    let rest = server
        .send_as(
            Method::GET,
            &format!("/v1/conversations?limit=1&cursor={next}"),
            Some(&ada.token),
            &[("accept", "text/csv")],
            "",
        )
        .await;
    let row = rest.text.split("\r\n").nth(1).unwrap().to_owned();
    assert!(row.starts_with(&first), "{}", rest.text);
    // The typed title is quoted and defused; the tag is there for staff.
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://evil\"\"), \"\"quoted\"\"\",medium,,vip,"),
        "{row}"
    );

    // A customer's export has no tags column content and no other customer's row.
    let mine = server
        .get("/v1/conversations?format=csv", Some(&visitor))
        .await;
    let rows: Vec<&str> = mine.text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{}", mine.text);
    assert!(rows[1].starts_with(&first));
    assert!(!rows[1].contains("vip"), "{}", rows[1]);
}
