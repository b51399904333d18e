//! Canned responses over `/v1`: shared (admins) and personal, prefix search for the picker,
//! placeholders filled by the server when posted, and bad input refused with nothing stored.

mod common;

use chat_core::Role;
use hyper::StatusCode;
use serde_json::{Value, json};

fn shortcuts(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["shortcut"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_and_personal_responses_are_found_by_prefix_and_kept_private() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let bob = server.staff("Bob", Role::Agent, &[]).await;

    let shared = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "/Greet", "title": "Greeting", "body": "Hello {{contact.name}}!" }),
        )
        .await;
    assert_eq!(shared.status, StatusCode::CREATED, "{}", shared.text);
    assert_eq!(shared.body["shortcut"], "greet");
    assert_eq!(shared.body["owner_id"], Value::Null);
    let personal = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "refund", "title": "Refund policy", "body": "Refunds take 5 days." }),
        )
        .await;
    assert_eq!(personal.status, StatusCode::CREATED, "{}", personal.text);
    assert_eq!(personal.body["owner_id"], json!(ann.id));
    let personal_id = personal.body["id"].as_str().unwrap();

    let anns = server.get("/v1/canned-responses", Some(&ann.token)).await;
    assert_eq!(shortcuts(&anns.body), ["greet", "refund"]);
    let bobs = server.get("/v1/canned-responses", Some(&bob.token)).await;
    assert_eq!(shortcuts(&bobs.body), ["greet"]);

    // As the agent types: shortcut or title prefix, any case.
    for (q, expected) in [
        ("re", vec!["refund"]),
        ("GR", vec!["greet"]),
        ("ref", vec!["refund"]),
        ("x", vec![]),
    ] {
        let found = server
            .get(&format!("/v1/canned-responses?q={q}"), Some(&ann.token))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{}", found.text);
        assert_eq!(shortcuts(&found.body), expected, "q={q}");
    }
    let by_title = server
        .get("/v1/canned-responses?q=refund%20p", Some(&ann.token))
        .await;
    assert_eq!(shortcuts(&by_title.body), ["refund"]);

    // Another agent's personal response does not exist for Bob.
    let path = format!("/v1/canned-responses/{personal_id}");
    let hidden = server.get(&path, Some(&bob.token)).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let untouched = server
        .patch(&path, Some(&bob.token), json!({ "title": "mine now" }))
        .await;
    assert_eq!(untouched.status, StatusCode::NOT_FOUND);

    let changed = server
        .patch(
            &path,
            Some(&ann.token),
            json!({ "body": "Refunds take 3 days." }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.body["body"], "Refunds take 3 days.");
    assert_eq!(changed.body["shortcut"], "refund");
    let deleted = server.delete(&path, Some(&ann.token)).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = server.get(&path, Some(&ann.token)).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_manage_shared_responses_and_customers_get_none() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let shared = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "greet", "title": "Greeting", "body": "Hello!" }),
        )
        .await;
    let path = format!(
        "/v1/canned-responses/{}",
        shared.body["id"].as_str().unwrap()
    );

    let create = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shared": true, "shortcut": "bye", "title": "Bye", "body": "Bye!" }),
        )
        .await;
    assert_eq!(create.status, StatusCode::FORBIDDEN, "{}", create.text);
    let patch = server
        .patch(&path, Some(&ann.token), json!({ "body": "Yo" }))
        .await;
    assert_eq!(patch.status, StatusCode::FORBIDDEN);
    let delete = server.delete(&path, Some(&ann.token)).await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    let read = server.get(&path, Some(&ann.token)).await;
    assert_eq!(read.body["body"], "Hello!");

    let (_, visitor) = server.visitor("v@example.com").await;
    let listed = server.get("/v1/canned-responses", Some(&visitor)).await;
    assert_eq!(listed.status, StatusCode::FORBIDDEN);
    let anonymous = server.get("/v1/canned-responses", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_responses_are_refused_and_store_nothing() {
    let server = common::start().await;
    let ann = server.staff("Ann", Role::Agent, &[]).await;
    let ok = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "hi", "title": "Hi", "body": "Hi {{ contact.name }}" }),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);

    for (body, field) in [
        (
            json!({ "shortcut": "x", "title": "X", "body": "Hi {{contact.nmae}}" }),
            "body",
        ),
        (
            json!({ "shortcut": "x", "title": "X", "body": "Hi {{contact.name" }),
            "body",
        ),
        (
            json!({ "shortcut": "two words", "title": "X", "body": "Hi" }),
            "shortcut",
        ),
        (
            json!({ "shortcut": "x", "title": "  ", "body": "Hi" }),
            "title",
        ),
        (json!({ "shortcut": "x", "title": "X", "body": "" }), "body"),
    ] {
        let reply = server
            .post("/v1/canned-responses", Some(&ann.token), body.clone())
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{body}: {}",
            reply.text
        );
        assert_eq!(reply.body["error"]["field"], field, "{body}");
    }
    let unknown = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "x", "title": "X", "body": "Hi {{contact.nmae}}" }),
        )
        .await;
    assert!(unknown.text.contains("contact.nmae"), "{}", unknown.text);

    let taken = server
        .post(
            "/v1/canned-responses",
            Some(&ann.token),
            json!({ "shortcut": "HI", "title": "Again", "body": "Hello" }),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);

    let path = format!("/v1/canned-responses/{}", ok.body["id"].as_str().unwrap());
    let bad_patch = server
        .patch(
            &path,
            Some(&ann.token),
            json!({ "body": "{{agent.nickname}}" }),
        )
        .await;
    assert_eq!(bad_patch.status, StatusCode::UNPROCESSABLE_ENTITY);

    let listed = server.get("/v1/canned-responses", Some(&ann.token)).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["items"][0]["body"], "Hi {{ contact.name }}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_a_response_fills_its_placeholders_for_the_conversation() {
    let server = common::start().await;
    let admin = server.staff("Ada", Role::Admin, &[]).await;
    let created = server
        .post(
            "/v1/canned-responses",
            Some(&admin.token),
            json!({ "shared": true, "shortcut": "greet", "title": "Greeting",
                    "body": "Hello {{contact.name}}, {{agent.name}} here. Your reference: {{conversation.id}}." }),
        )
        .await;
    let canned_id = created.body["id"].as_str().unwrap().to_owned();
    let (conversation, visitor) = server.visitor("v@example.com").await;
    let expected = format!("Hello Visitor, Ada here. Your reference: {conversation}.");

    let picker = server
        .get(
            &format!("/v1/canned-responses?q=gr&conversation_id={conversation}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(picker.status, StatusCode::OK, "{}", picker.text);
    assert_eq!(picker.body["items"][0]["preview"], json!(expected));

    let path = format!("/v1/conversations/{conversation}/canned");
    let body = json!({ "canned_response_id": canned_id, "client_message_id": "c-1" });
    let posted = server.post(&path, Some(&admin.token), body.clone()).await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    assert_eq!(posted.body["message"]["body"], json!(expected));
    assert_eq!(
        posted.body["message"]["metadata"]["canned_response_id"],
        json!(canned_id)
    );
    let again = server.post(&path, Some(&admin.token), body).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the same client_message_id stores one message"
    );

    let seen = server
        .get(
            &format!("/v1/conversations/{conversation}/messages"),
            Some(&visitor),
        )
        .await;
    let bodies: Vec<_> = seen.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == json!(expected))
        .collect();
    assert_eq!(bodies.len(), 1, "{}", seen.text);

    // An unknown response or another agent's is 404; a customer cannot post one.
    let missing = server
        .post(
            &path,
            Some(&admin.token),
            json!({ "canned_response_id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    let by_visitor = server
        .post(
            &path,
            Some(&visitor),
            json!({ "canned_response_id": canned_id }),
        )
        .await;
    assert_eq!(by_visitor.status, StatusCode::FORBIDDEN);
}
