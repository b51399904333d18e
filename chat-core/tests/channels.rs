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
