//! Conversations on external channels: staff and integrations relay the customer's words,
//! and embedders keep their own facts in the conversation's metadata.

mod common;

use chat_core::{Channel, ContactInput, Error, Mode, OpenConversation, PostMessage, Sender};
use common::desk;

async fn whatsapp(d: &common::Desk) -> chat_core::ConversationId {
    let input = OpenConversation {
        contact: ContactInput {
            name: Some("John Doe".into()),
            phone: Some("+62 812".into()),
            ..Default::default()
        },
        channel: Channel::Whatsapp,
        ..Default::default()
    };
    d.engine
        .open_conversation(&d.system, input)
        .await
        .unwrap()
        .conversation
        .id
}

#[tokio::test]
async fn relayed_customer_messages_count_as_unread_and_get_the_bot_answer() {
    let d = desk().await;
    let id = whatsapp(&d).await;
    let posted = d
        .engine
        .post_for_customer(&d.admin, id, PostMessage::text("hello, any news?"))
        .await
        .unwrap();
    assert_eq!(posted.message.sender, Sender::Customer);
    assert_eq!(posted.conversation.unread_for_agent, 1);
    assert!(
        posted.replies.iter().any(|m| m.sender == Sender::Bot),
        "{:?}",
        posted.replies
    );
}

#[tokio::test]
async fn only_staff_who_see_it_relay_and_never_for_web_customers() {
    let d = desk().await;
    let id = whatsapp(&d).await;
    // Ann is not assigned and it is in bot mode: she cannot see it.
    assert!(matches!(
        d.engine
            .post_for_customer(&d.ann, id, PostMessage::text("x"))
            .await,
        Err(Error::NotFound(_))
    ));
    let (web, visitor) = d.visitor("jo@shop.example").await;
    assert!(matches!(
        d.engine
            .post_for_customer(&d.admin, web.conversation.id, PostMessage::text("x"))
            .await,
        Err(Error::Forbidden(_))
    ));
    // A customer cannot relay for another customer.
    assert!(matches!(
        d.engine
            .post_for_customer(&visitor, id, PostMessage::text("x"))
            .await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn metadata_entries_are_set_and_removed_by_those_who_edit_details() {
    let d = desk().await;
    let id = whatsapp(&d).await;
    let c = d
        .engine
        .set_conversation_metadata(&d.admin, id, "online", Some("true"))
        .await
        .unwrap();
    assert_eq!(c.metadata.get("online").map(String::as_str), Some("true"));
    assert_eq!(c.mode, Mode::Bot);
    let c = d
        .engine
        .set_conversation_metadata(&d.supervisor, id, "online", None)
        .await
        .unwrap();
    assert!(!c.metadata.contains_key("online"));
    assert!(matches!(
        d.engine
            .set_conversation_metadata(&d.ann, id, "online", Some("true"))
            .await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn staff_open_a_chat_with_a_known_contact_that_has_no_email() {
    let d = desk().await;
    let first = whatsapp(&d).await;
    let contact = d
        .engine
        .conversation(&d.admin, first)
        .await
        .unwrap()
        .contact_id;
    let again = d
        .engine
        .open_conversation(
            &d.admin,
            OpenConversation {
                contact_id: Some(contact),
                title: Some("Booking".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The same customer, not a new phone-less contact.
    assert_eq!(again.contact.id, contact);
    assert_eq!(again.conversation.contact_id, contact);

    // A contact of another tenant, or none at all, is not found.
    let other = d
        .engine
        .create_tenant("Other", Default::default())
        .await
        .unwrap()
        .id;
    let outsider = chat_core::Actor::System { tenant: other };
    assert!(matches!(
        d.engine
            .open_conversation(
                &outsider,
                OpenConversation {
                    contact_id: Some(contact),
                    ..Default::default()
                },
            )
            .await,
        Err(Error::NotFound("contact"))
    ));
}

#[tokio::test]
async fn a_customer_cannot_borrow_another_contact_by_id() {
    let d = desk().await;
    let (_, visitor) = d.visitor("jo@shop.example").await;
    let (other, _) = d.visitor("max@shop.example").await;
    let chat_core::Actor::Customer {
        tenant, contact, ..
    } = visitor
    else {
        unreachable!()
    };
    let account = chat_core::Actor::Customer {
        tenant,
        contact,
        conversation: None,
    };
    let opened = d
        .engine
        .open_conversation(
            &account,
            OpenConversation {
                contact_id: Some(other.contact.id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The customer's own contact is used; the id it named is ignored.
    assert_eq!(opened.contact.id, contact);
}
