//! Conversations on external channels: staff and integrations relay the customer's words,
//! and embedders keep their own facts in the conversation's metadata.

use crate::common;

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

#[tokio::test]
async fn an_inbox_changes_over_its_version_and_takes_only_its_own_bots_rotated_token() {
    use chat_core::{BOT_TOKEN_KEY, InboxKind, InboxPatch, NewInbox, inbox_version};

    let d = desk().await;
    let (inbox, _) = d
        .engine
        .create_inbox(
            &d.admin,
            NewInbox {
                name: "Support bot".into(),
                kind: Some(InboxKind::Telegram),
                bot_token: Some("123456:old-key".into()),
                mode: Some("polling".into()),
                ..NewInbox::default()
            },
            "digest-1".into(),
        )
        .await
        .unwrap();
    // Agents may not; another bot's token, or a field of another kind, changes nothing.
    assert!(matches!(
        d.engine
            .update_inbox(&d.ann, inbox.id, InboxPatch::default(), None, None)
            .await,
        Err(Error::Forbidden(_))
    ));
    for (bad, field) in [
        (
            InboxPatch {
                bot_token: Some("999999:other-key".into()),
                ..InboxPatch::default()
            },
            "bot_token",
        ),
        (
            InboxPatch {
                from: Some("help@shop.example".into()),
                ..InboxPatch::default()
            },
            "from",
        ),
        (
            InboxPatch {
                app_secret: Some("s3cret".into()),
                ..InboxPatch::default()
            },
            "app_secret",
        ),
    ] {
        match d
            .engine
            .update_inbox(&d.admin, inbox.id, bad, None, None)
            .await
        {
            Err(Error::Validation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert_eq!(d.engine.inbox(&d.admin, inbox.id).await.unwrap(), inbox);

    // The same bot's new token, over the version read: stored, with a new version and the
    // new token's digest.
    let changed = d
        .engine
        .update_inbox(
            &d.admin,
            inbox.id,
            InboxPatch {
                name: Some("Support bot (EU)".into()),
                bot_token: Some("123456:new-key".into()),
                ..InboxPatch::default()
            },
            Some(inbox_version(&inbox)),
            Some("digest-2".into()),
        )
        .await
        .unwrap();
    assert_eq!(changed.secrets.0[BOT_TOKEN_KEY], "123456:new-key");
    assert_eq!(changed.token_digest, "digest-2");
    assert!(inbox_version(&changed) > inbox_version(&inbox));
    assert_eq!(d.engine.inbox(&d.admin, inbox.id).await.unwrap(), changed);

    // Over the old version: a version race, and nothing changes.
    let stale = d
        .engine
        .update_inbox(
            &d.admin,
            inbox.id,
            InboxPatch {
                name: Some("Lost".into()),
                ..InboxPatch::default()
            },
            Some(inbox_version(&inbox)),
            None,
        )
        .await;
    assert!(
        matches!(&stale, Err(Error::Conflict(c)) if c.current_version() == Some(inbox_version(&changed))),
        "{stale:?}"
    );
    assert_eq!(d.engine.inbox(&d.admin, inbox.id).await.unwrap(), changed);
}
