//! Everything lives in the database: a restart keeps salons, chat and customer numbers,
//! logins and history, and `--demo` seeding runs again without duplicating anything.

use crate::common;

use chat_starter::Starter;
use example_salon_chat::{FIRST_SALON, SalonChat, salon_settings};
use serde_json::json;

#[tokio::test]
async fn a_restart_keeps_numbers_logins_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("salon.db");
    let first = common::start(&db).await;
    let admin = first.token("admin");
    let posted = first
        .server
        .post(
            "/api/v1/chat/chats/1/messages",
            Some(&admin),
            json!({ "content": "Before the restart" }),
        )
        .await;
    assert_eq!(posted.status, 201);
    first.server.stop().await;

    // Seeding again (the binary does it on every `--demo` start) adds nothing.
    let second = common::start(&db).await;
    let s = &second.server;
    assert_eq!(second.logins["customer"]["customer_id"], 1);
    assert_eq!(second.logins["second_customer"]["customer_id"], 2);
    assert_eq!(second.logins["uptown_admin"]["salon_id"], 2);
    let chats = s
        .get("/api/v1/chat/chats", Some(&second.token("admin")))
        .await;
    assert_eq!(chats.body["total"], 1, "{}", chats.text);
    // Old tokens still work (the signing key is kept beside the database).
    let history = s.get("/api/v1/chat/chats/1/messages", Some(&admin)).await;
    assert_eq!(history.status, 200);
    let last = history.body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["content"], "Before the restart");
    let login = s
        .post(
            "/api/v1/customer-auth/login",
            None,
            json!({ "phone_number": "+15550001111", "password": "password" }),
        )
        .await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["customer"]["id"], 2);
    second.server.stop().await;

    // A customer added after a restart takes the next free number.
    let starter = Starter::open(&db, FIRST_SALON, salon_settings(), |b| b)
        .await
        .unwrap();
    let salons = SalonChat::load(&starter).await.unwrap();
    let main = salons.salons()[0].clone();
    let (number, contact) = salons
        .add_customer(&starter.engine, &main, "Lee New", "+1 (555) 222-3333", "pw")
        .await
        .unwrap();
    assert_eq!(number, 3);
    assert_eq!(contact.phone.as_deref(), Some("+15552223333"));
    assert!(matches!(
        salons
            .add_customer(&starter.engine, &main, "Again", "+15552223333", "pw")
            .await,
        Err(example_salon_chat::CustomerError::PhoneTaken)
    ));
    let found = salons
        .customer(&starter.engine, &main, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, contact.id);
}
