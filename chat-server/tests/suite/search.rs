//! Search over `/v1/conversations?text=`: each conversation found carries its matching
//! messages with a plain-text snippet and the matched words' character ranges; internal
//! notes are found and shown to staff only; the list's filters (last-activity range, mode,
//! tag, channel, agent) narrow a search as they narrow the list.

use crate::common;

use chat_core::Role;
use chat_server::testing::Reply;
use hyper::StatusCode;
use serde_json::{Value, json};

/// The marked words of a hit, cut from its snippet by character offsets.
fn marked(hit: &Value) -> Vec<String> {
    let chars: Vec<char> = hit["snippet"]["text"].as_str().unwrap().chars().collect();
    hit["snippet"]["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (a, b) = (
                r[0].as_u64().unwrap() as usize,
                r[1].as_u64().unwrap() as usize,
            );
            chars[a..b].iter().collect()
        })
        .collect()
}

fn items(reply: &Reply) -> &Vec<Value> {
    reply.body["items"].as_array().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_hits_carry_marked_snippets_and_notes_only_for_staff() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let (conversation, visitor) = server.visitor("v@example.com").await;
    let (other, _) = server.visitor("w@example.com").await;
    let messages = format!("/v1/conversations/{conversation}/messages");
    let notes = format!("/v1/conversations/{conversation}/notes");
    let long = format!(
        "{}my Kettle arrived broken, the kettle lid is cracked {}",
        "Hello there. ".repeat(20),
        "and more words. ".repeat(20)
    );
    for body in ["Where is my parcel?", long.as_str(), "<b>kettle</b> & co"] {
        let posted = server
            .post(&messages, Some(&visitor), json!({ "body": body }))
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    }
    let note = server
        .post(
            &notes,
            Some(&admin.token),
            json!({ "body": "Secret: courier fraud suspected, kettle swapped" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);

    // Staff: the conversation, with its three newest matches, newest first, the note among
    // them; the other conversation does not match.
    let found = server
        .get("/v1/conversations?text=kettle", Some(&admin.token))
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(items(&found).len(), 1, "{}", found.text);
    assert_eq!(items(&found)[0]["id"], json!(conversation));
    assert_ne!(items(&found)[0]["id"], json!(other));
    let hits = items(&found)[0]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3, "{}", found.text);
    assert_eq!(hits[0]["message_id"], note.body["id"]);
    assert_eq!(hits[0]["kind"], "note");
    assert_eq!(marked(&hits[0]), ["kettle"]);
    // Markup in a message stays text: the snippet is not HTML and marks no tag.
    assert_eq!(hits[1]["snippet"]["text"], "<b>kettle</b> & co");
    assert_eq!(marked(&hits[1]), ["kettle"]);
    // A long message is cut around its first match, both matches marked.
    let cut = hits[2]["snippet"]["text"].as_str().unwrap();
    assert!(cut.starts_with('…') && cut.ends_with('…'), "{cut}");
    assert!(cut.chars().count() < long.chars().count());
    assert_eq!(marked(&hits[2]), ["Kettle", "kettle"]);
    // Seq lets a console open the history at the hit.
    assert!(
        hits.windows(2)
            .all(|w| w[0]["seq"].as_u64() > w[1]["seq"].as_u64())
    );

    // The visitor: the same search finds its conversation, but never shows the note.
    let theirs = server
        .get("/v1/conversations?text=kettle", Some(&visitor))
        .await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.text);
    assert_eq!(items(&theirs).len(), 1, "{}", theirs.text);
    let hits = items(&theirs)[0]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2, "{}", theirs.text);
    assert!(hits.iter().all(|h| h["kind"] != "note"), "{}", theirs.text);
    assert!(!theirs.text.contains("fraud") && !theirs.text.contains("Secret"));
    // A note's own words find nothing for the visitor, and everything for staff.
    let by_note = server
        .get("/v1/conversations?text=fraud", Some(&visitor))
        .await;
    assert_eq!(items(&by_note).len(), 0, "{}", by_note.text);
    let staff_by_note = server
        .get("/v1/conversations?text=fraud", Some(&admin.token))
        .await;
    assert_eq!(items(&staff_by_note).len(), 1);
    assert_eq!(
        marked(&items(&staff_by_note)[0]["hits"][0]),
        ["fraud"],
        "{}",
        staff_by_note.text
    );

    // Another visitor finds nothing of it, by a message or a note.
    let (_, other_token) = server.visitor("x@example.com").await;
    for token in [&other_token] {
        for word in ["kettle", "fraud"] {
            let none = server
                .get(&format!("/v1/conversations?text={word}"), Some(token))
                .await;
            assert_eq!(none.status, StatusCode::OK, "{}", none.text);
            assert!(
                !none.text.contains(&conversation) && !none.text.contains("Secret"),
                "{}",
                none.text
            );
        }
    }

    // Without `text`, no `hits`: the list is as it was.
    let plain = server.get("/v1/conversations", Some(&admin.token)).await;
    assert!(items(&plain).iter().all(|c| c.get("hits").is_none()));
    // A conversation found by its contact alone has no hits.
    let by_name = server
        .get("/v1/conversations?text=visitor", Some(&admin.token))
        .await;
    assert_eq!(items(&by_name).len(), 3, "{}", by_name.text);
    assert!(
        items(&by_name)
            .iter()
            .all(|c| c["hits"].as_array().unwrap().is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_narrow_a_search_and_a_bad_time_is_422() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let (tagged, visitor) = server.visitor("v@example.com").await;
    let (untagged, other_visitor) = server.visitor("w@example.com").await;
    for (id, token) in [(&tagged, &visitor), (&untagged, &other_visitor)] {
        let posted = server
            .post(
                &format!("/v1/conversations/{id}/messages"),
                Some(token),
                json!({ "body": "refund for my kettle please" }),
            )
            .await;
        assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    }
    let tag = server
        .patch(
            &format!("/v1/conversations/{tagged}"),
            Some(&admin.token),
            json!({ "add_tags": ["refund"] }),
        )
        .await;
    assert_eq!(tag.status, StatusCode::OK, "{}", tag.text);

    let ids = |reply: &Reply| -> Vec<String> {
        items(reply)
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let search = |query: String| {
        let server = &server;
        let token = admin.token.clone();
        async move {
            let reply = server
                .get(
                    &format!("/v1/conversations?text=kettle{query}"),
                    Some(&token),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
            reply
        }
    };
    let all = search(String::new()).await;
    assert_eq!(ids(&all).len(), 2);
    let by_tag = search("&tag=refund".into()).await;
    assert_eq!(ids(&by_tag), [tagged.as_str()]);
    assert_eq!(items(&by_tag)[0]["hits"].as_array().unwrap().len(), 1);
    let total: u64 = by_tag.body["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 1, "counts follow the filters: {}", by_tag.text);
    assert_eq!(ids(&search("&channel=web".into()).await).len(), 2);
    assert!(ids(&search("&channel=email".into()).await).is_empty());
    assert!(
        ids(&search(format!("&assigned={}", json!(admin.id).as_str().unwrap())).await).is_empty()
    );
    assert_eq!(ids(&search("&assigned=none".into()).await).len(), 2);
    let modes = all.body["counts"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        ids(&search(format!("&mode={}", modes.join(","))).await).len(),
        2
    );
    assert!(ids(&search("&mode=archived".into()).await).is_empty());
    // Last activity in a range: everything is from the last minutes.
    assert_eq!(
        ids(&search("&updated_from=2000-01-01T00:00:00Z".into()).await).len(),
        2
    );
    assert!(ids(&search("&updated_to=2000-01-01T00:00:00Z".into()).await).is_empty());
    assert!(ids(&search("&updated_from=2999-01-01T00:00:00%2B02:00".into()).await).is_empty());

    for bad in ["yesterday", "2026-12-01", "2026-13-01T00:00:00Z"] {
        let reply = server
            .get(
                &format!("/v1/conversations?text=kettle&updated_from={bad}"),
                Some(&admin.token),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], "updated_from");
    }
}
