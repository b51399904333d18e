//! What each caller may see, over a real listener: the engine's policy views are what the
//! server answers with, and a customer cannot learn a staff-only field by filtering on it.

use crate::common;

use chat_core::Role;
use hyper::StatusCode;
use serde_json::{Value, json};

/// A visitor's conversation that staff tagged, prioritised and sent to a department, then
/// noted on and noted the contact: everything a customer must not see of it.
async fn busy_conversation(s: &common::Server) -> (String, String, common::Staff) {
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let (id, visitor) = s.visitor("vera@example.com").await;
    let patched = s
        .patch(
            &format!("/v1/conversations/{id}"),
            Some(&admin.token),
            json!({ "tags": ["refund-abuse"], "priority": "urgent", "department": "billing" }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let note = s
        .post(
            &format!("/v1/conversations/{id}/notes"),
            Some(&admin.token),
            json!({ "body": "third refund this month" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    (id, visitor, admin)
}

#[tokio::test]
async fn a_visitor_gets_the_same_answer_for_a_right_and_a_wrong_staff_only_filter() {
    let s = common::start().await;
    let (id, visitor, admin) = busy_conversation(&s).await;
    // Staff use the filters and find the conversation by its internal tag.
    let staff = s
        .get("/v1/conversations?tag=refund-abuse", Some(&admin.token))
        .await;
    assert_eq!(staff.status, StatusCode::OK, "{}", staff.text);
    assert_eq!(staff.body["items"][0]["id"], json!(id));

    for (right, wrong) in [
        ("tag=refund-abuse", "tag=happy"),
        ("department=billing", "department=sales"),
        ("priority=urgent", "priority=low"),
        ("assigned=unassigned", "assigned=me"),
    ] {
        let hit = s
            .get(&format!("/v1/conversations?{right}"), Some(&visitor))
            .await;
        let miss = s
            .get(&format!("/v1/conversations?{wrong}"), Some(&visitor))
            .await;
        assert!(hit.status.is_client_error(), "{right}: {}", hit.text);
        assert_eq!(hit.status, miss.status, "{right} vs {wrong}");
        assert!(!hit.text.contains(&id), "{right} leaked the conversation");
        assert!(!miss.text.contains(&id));
    }
    // The filters a customer can see stay open to it.
    let own = s
        .get("/v1/conversations?mode=bot&channel=web", Some(&visitor))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(own.body["items"][0]["id"], json!(id));
}

fn assert_trimmed(conversation: &Value) {
    for internal in ["tags", "priority", "department", "metadata", "version"] {
        assert!(
            conversation.get(internal).is_none(),
            "{internal} shown to a customer: {conversation}"
        );
    }
}

#[tokio::test]
async fn a_visitor_sees_its_records_without_the_desks_bookkeeping() {
    let s = common::start().await;
    let (id, visitor, admin) = busy_conversation(&s).await;

    // The conversation, alone and in the list.
    let one = s
        .get(&format!("/v1/conversations/{id}"), Some(&visitor))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_trimmed(&one.body);
    let staff_one = s
        .get(&format!("/v1/conversations/{id}"), Some(&admin.token))
        .await;
    assert_eq!(staff_one.body["tags"], json!(["refund-abuse"]));
    assert_eq!(staff_one.body["department"], json!("billing"));
    let list = s.get("/v1/conversations", Some(&visitor)).await;
    assert_trimmed(&list.body["items"][0]);

    // The contact: staff note something about it; the customer does not read it back.
    let contact_id = staff_one.body["contact_id"].as_str().unwrap().to_owned();
    let noted = s
        .patch(
            &format!("/v1/contacts/{contact_id}"),
            Some(&admin.token),
            json!({ "metadata": { "desk.risk": "chargeback" } }),
        )
        .await;
    assert_eq!(noted.status, StatusCode::OK, "{}", noted.text);
    assert_eq!(noted.body["metadata"]["desk.risk"], json!("chargeback"));
    let own = s
        .get(&format!("/v1/contacts/{contact_id}"), Some(&visitor))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(own.body["id"], json!(contact_id));
    assert!(own.body.get("metadata").is_none(), "{}", own.text);
    assert!(!own.text.contains("chargeback"));

    // Messages: the note is the desk's.
    let messages = s
        .get(&format!("/v1/conversations/{id}/messages"), Some(&visitor))
        .await;
    assert_eq!(messages.status, StatusCode::OK, "{}", messages.text);
    assert!(!messages.text.contains("third refund"));

    // Events: no note, no tag, no department, no transfer reason.
    let transfer = s
        .post(
            &format!("/v1/conversations/{id}/transfer"),
            Some(&admin.token),
            json!({ "department": "fraud-review", "reason": "looks like abuse" }),
        )
        .await;
    assert!(transfer.status.is_success(), "{}", transfer.text);
    let events = s.get("/v1/events?since=0", Some(&visitor)).await;
    assert_eq!(events.status, StatusCode::OK, "{}", events.text);
    let items = events.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for secret in [
        "third refund",
        "refund-abuse",
        "billing",
        "fraud-review",
        "looks like abuse",
        "chargeback",
    ] {
        assert!(
            !events.text.contains(secret),
            "{secret} reached a customer: {}",
            events.text
        );
    }
    for event in items {
        if let Some(c) = event["payload"].get("conversation") {
            assert_trimmed(c);
        }
    }
    // Staff read the same log whole.
    let desk = s.get("/v1/events?since=0", Some(&admin.token)).await;
    for secret in [
        "third refund",
        "refund-abuse",
        "fraud-review",
        "looks like abuse",
    ] {
        assert!(desk.text.contains(secret), "{secret} missing for staff");
    }
    s.stop().await;
}
