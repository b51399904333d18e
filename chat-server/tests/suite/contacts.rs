//! The contact directory over `/v1` with the SQLite store: list by pages, search by name,
//! e-mail or phone, edit with validation and typed attributes, merge (never across
//! tenants), and a contact's conversations.

use crate::common;

use std::collections::BTreeMap;

use chat_core::{Actor, AttributeType, Role, TenantSettings};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

async fn contact_of(s: &common::Server, conversation: &str, token: &str) -> String {
    s.get(&format!("/v1/conversations/{conversation}"), Some(token))
        .await
        .body["contact_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn ids(reply: &Value) -> Vec<String> {
    reply["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn staff_page_through_and_search_contacts() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let mut contacts = Vec::new();
    for (name, email, phone) in [
        ("Jo Lovelace", "jo@shop.example", "+44 20 7946 0000"),
        ("Max Builder", "max@build.example", "+62 812 555 01"),
        ("Cy Twombly", "cy@art.example", "+1 212 555 0199"),
    ] {
        let opened = s
            .post(
                "/v1/conversations",
                None,
                json!({ "contact": { "name": name, "email": email, "phone": phone } }),
            )
            .await;
        assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.text);
        contacts.push(
            opened.body["conversation"]["contact_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Newest first, two at a time, every contact once.
    let first = s.get("/v1/contacts?limit=2", Some(&admin.token)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(
        ids(&first.body),
        vec![contacts[2].clone(), contacts[1].clone()]
    );
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let rest = s
        .get(
            &format!("/v1/contacts?limit=2&cursor={cursor}"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(ids(&rest.body), vec![contacts[0].clone()]);
    assert_eq!(rest.body["next_cursor"], Value::Null);
    // Search by name, e-mail or phone.
    for (text, want) in [
        ("lovelace", vec![contacts[0].clone()]),
        ("build.example", vec![contacts[1].clone()]),
        ("555", vec![contacts[2].clone(), contacts[1].clone()]),
        ("nobody", vec![]),
    ] {
        let found = s
            .get(&format!("/v1/contacts?text={text}"), Some(&admin.token))
            .await;
        assert_eq!(ids(&found.body), want, "{text}");
    }
    // Bad paging input is a clear 422.
    for bad in ["cursor=not-an-id", "limit=many"] {
        let reply = s
            .get(&format!("/v1/contacts?{bad}"), Some(&admin.token))
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{bad}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn edits_are_validated_and_declared_attributes_keep_their_type() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let system = Actor::System { tenant: s.tenant };
    s.engine
        .update_tenant_settings(
            &system,
            TenantSettings {
                contact_attributes: BTreeMap::from([
                    ("seats".to_owned(), AttributeType::Number),
                    ("renewal".to_owned(), AttributeType::Date),
                    ("vip".to_owned(), AttributeType::Boolean),
                ]),
                ..TenantSettings::default()
            },
        )
        .await
        .unwrap();
    let (conversation, visitor) = s.visitor("jo@shop.example").await;
    let contact = contact_of(&s, &conversation, &admin.token).await;
    let path = format!("/v1/contacts/{contact}");
    let before = s.get(&path, Some(&admin.token)).await.body;

    for (patch, field) in [
        (json!({ "metadata": { "seats": "ten" } }), "metadata"),
        (
            json!({ "metadata": { "renewal": "31/12/2027" } }),
            "metadata",
        ),
        (json!({ "metadata": { "vip": "yes" } }), "metadata"),
        (json!({ "email": "not an address" }), "email"),
    ] {
        let reply = s
            .call(
                Method::PATCH,
                &path,
                Some(&admin.token),
                Some(patch.clone()),
            )
            .await;
        assert_eq!(
            (reply.status, reply.body["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{patch}: {}",
            reply.text
        );
        assert_eq!(
            s.get(&path, Some(&admin.token)).await.body,
            before,
            "{patch}"
        );
    }
    let good = s
        .call(
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(json!({ "name": "Jo", "phone": "+44 1", "metadata": {
                "seats": "12", "renewal": "2027-12-31", "vip": "true", "note": "anything"
            } })),
        )
        .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.text);
    assert_eq!(good.body["metadata"]["seats"], "12");
    assert_eq!(good.body["name"], "Jo");
    // Customers never edit contacts, their own included.
    let own = s
        .call(
            Method::PATCH,
            &path,
            Some(&visitor),
            Some(json!({ "name": "Boss" })),
        )
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN);
    s.stop().await;
}

#[tokio::test]
async fn a_merge_across_tenants_is_refused_and_changes_nothing() {
    let s = common::start().await;
    let admin = s.staff("Ada", Role::Admin, &[]).await;
    let (conversation, _) = s.visitor("jo@shop.example").await;
    let kept = contact_of(&s, &conversation, &admin.token).await;
    // A contact of another tenant on the same server.
    let other = s
        .engine
        .create_tenant("Other Co", TenantSettings::default())
        .await
        .unwrap();
    let foreign = s
        .engine
        .open_conversation(
            &Actor::System { tenant: other.id },
            chat_core::OpenConversation {
                contact: chat_core::ContactInput {
                    name: Some("Stranger".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let before = s
        .get(&format!("/v1/contacts/{kept}"), Some(&admin.token))
        .await
        .body;
    let merged = s
        .post(
            &format!("/v1/contacts/{kept}/merge"),
            Some(&admin.token),
            json!({ "contact_id": foreign.contact.id }),
        )
        .await;
    assert_eq!(merged.status, StatusCode::NOT_FOUND, "{}", merged.text);
    assert_eq!(
        s.get(&format!("/v1/contacts/{kept}"), Some(&admin.token))
            .await
            .body,
        before
    );
    let system = Actor::System { tenant: other.id };
    assert_eq!(
        s.engine.contact(&system, foreign.contact.id).await.unwrap(),
        foreign.contact
    );

    // Within the tenant a merge moves the conversations: the kept contact lists both.
    let (second, _) = s.visitor("jo.other@shop.example").await;
    let duplicate = contact_of(&s, &second, &admin.token).await;
    let merged = s
        .post(
            &format!("/v1/contacts/{kept}/merge"),
            Some(&admin.token),
            json!({ "contact_id": duplicate }),
        )
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    let listed = s
        .get(
            &format!("/v1/contacts/{kept}/conversations"),
            Some(&admin.token),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    let mut got = ids(&listed.body);
    got.sort();
    let mut want = vec![conversation, second];
    want.sort();
    assert_eq!(got, want);
    s.stop().await;
}
