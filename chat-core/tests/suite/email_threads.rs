//! The e-mail channel's threading rules, on the in-memory store: a mail continues a
//! conversation only when it answers one of ours (or the customer's earlier mail) in a
//! conversation of the same inbox and the same `From`; the `Message-ID` is the idempotency
//! key; and an address is a channel identity, never a verified contact.

use crate::common;

use chat_core::{
    Channel, ContactInput, Error, Inbound, InboundMail, InboxKind, NewInbox, OpenConversation,
    mail_message_id,
};
use common::desk;

const DOMAIN: &str = "acme.example";

fn mail(from: &str, id: &str, references: &[&str], text: &str) -> InboundMail {
    InboundMail {
        from: from.to_owned(),
        name: Some("Jo".to_owned()),
        message_id: id.to_owned(),
        references: references.iter().map(|r| r.to_string()).collect(),
        subject: "Broken kettle".to_owned(),
        body: text.to_owned(),
        files: Vec::new(),
    }
}

async fn email_inbox(d: &common::Desk, name: &str) -> chat_core::Inbox {
    d.engine
        .create_inbox(
            &d.admin,
            NewInbox {
                name: name.to_owned(),
                kind: Some(InboxKind::Email),
                ..NewInbox::default()
            },
            format!("digest-{name}"),
        )
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn a_mail_continues_only_its_own_customers_conversation_of_the_same_inbox() {
    let d = desk().await;
    let inbox = email_inbox(&d, "support").await;
    let sales = email_inbox(&d, "sales").await;
    let first = d
        .engine
        .receive_mail(
            &inbox,
            mail("Jo@Customer.example", "m1@c", &[], "leaks"),
            DOMAIN,
        )
        .await
        .unwrap();
    assert!(first.opened && first.created);
    let jo = first.conversation.id;
    assert_eq!(first.conversation.channel, Channel::Email);
    assert_eq!(first.conversation.title.as_deref(), Some("Broken kettle"));
    let ours = mail_message_id(uuid::Uuid::now_v7(), jo, DOMAIN);

    // The same Message-ID again: nothing new.
    let again = d
        .engine
        .receive_mail(
            &inbox,
            mail("jo@customer.example", "<m1@c>", &[], "leaks"),
            DOMAIN,
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.message.id, first.message.id);

    // An answer to our mail, or to the customer's own earlier one: the same conversation.
    for (id, reference) in [("m2@c", ours.as_str()), ("m3@c", "m1@c")] {
        let next = d
            .engine
            .receive_mail(
                &inbox,
                mail("jo@customer.example", id, &[reference], "more"),
                DOMAIN,
            )
            .await
            .unwrap();
        assert_eq!(next.conversation.id, jo, "{reference}");
        assert!(!next.opened);
    }
    // Another sender, another domain's id, or another inbox: a new conversation each.
    for (target, from, reference) in [
        (&inbox, "eve@attacker.example", ours.clone()),
        (
            &inbox,
            "jo@customer.example",
            mail_message_id(uuid::Uuid::now_v7(), jo, "elsewhere.example"),
        ),
        (&sales, "jo@customer.example", ours.clone()),
    ] {
        let id = format!("{}@x", uuid::Uuid::now_v7());
        let other = d
            .engine
            .receive_mail(target, mail(from, &id, &[&reference], "hi"), DOMAIN)
            .await
            .unwrap();
        assert!(other.opened, "{from} {reference}");
        assert_ne!(other.conversation.id, jo);
    }
}

#[tokio::test]
async fn an_address_is_one_unverified_contact_per_inbox_joined_with_no_other_contact() {
    let d = desk().await;
    // A widget visitor typed the same address before (a claim of its own).
    let widget = d
        .engine
        .open_conversation(
            &d.system,
            OpenConversation {
                contact: ContactInput {
                    email: Some("jo@customer.example".into()),
                    ..ContactInput::default()
                },
                ..OpenConversation::default()
            },
        )
        .await
        .unwrap();
    let inbox = email_inbox(&d, "support").await;
    let a = d
        .engine
        .receive_mail(
            &inbox,
            mail("jo@customer.example", "a@c", &[], "one"),
            DOMAIN,
        )
        .await
        .unwrap();
    let b = d
        .engine
        .receive_mail(
            &inbox,
            mail("JO@customer.example", "b@c", &[], "two"),
            DOMAIN,
        )
        .await
        .unwrap();
    assert_ne!(a.conversation.id, b.conversation.id);
    assert_eq!(a.conversation.contact_id, b.conversation.contact_id);
    assert_ne!(a.conversation.contact_id, widget.contact.id);
    let contact = d
        .engine
        .contact(&d.admin, a.conversation.contact_id)
        .await
        .unwrap();
    assert_eq!(contact.email.as_deref(), Some("jo@customer.example"));
    assert!(!contact.email_verified);
}

#[tokio::test]
async fn bad_mails_and_the_wrong_route_are_refused_with_nothing_stored() {
    let d = desk().await;
    let inbox = email_inbox(&d, "support").await;
    for (bad, field) in [
        (mail("", "m@c", &[], "x"), "from"),
        (mail("not an address", "m@c", &[], "x"), "from"),
        (mail("jo@c.example", "", &[], "x"), "message_id"),
        (mail("jo@c.example", "a b@c", &[], "x"), "message_id"),
        (
            InboundMail {
                subject: " ".into(),
                ..mail("jo@c.example", "empty@c", &[], "\r\n")
            },
            "body",
        ),
    ] {
        match d.engine.receive_mail(&inbox, bad, DOMAIN).await {
            Err(Error::Validation { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // An email inbox's threads are keyed by mail: the generic route is not for it.
    let generic = d
        .engine
        .receive(
            &inbox,
            Inbound {
                contact: "jo@c.example".into(),
                message: "m@c".into(),
                body: "hi".into(),
                ..Inbound::default()
            },
        )
        .await;
    assert!(matches!(
        generic,
        Err(Error::Validation { field: "inbox", .. })
    ));
    // And no inbox of another kind takes mail.
    let api = d
        .engine
        .create_inbox(
            &d.admin,
            NewInbox {
                name: "app".into(),
                webhook_url: Some("https://hooks.example/x".into()),
                ..NewInbox::default()
            },
            "digest-app".into(),
        )
        .await
        .unwrap()
        .0;
    let refused = d
        .engine
        .receive_mail(&api, mail("jo@c.example", "m@c", &[], "x"), DOMAIN)
        .await;
    assert!(matches!(
        refused,
        Err(Error::Validation { field: "inbox", .. })
    ));
    let page = d
        .engine
        .list_conversations(&d.admin, Default::default())
        .await
        .unwrap();
    assert!(page.items.is_empty(), "{:?}", page.items);
}

#[tokio::test]
async fn a_long_mail_is_kept_cut_with_its_line_ends_made_plain() {
    let d = desk().await;
    let inbox = email_inbox(&d, "support").await;
    let quoted = "> an earlier line of the thread\r\n".repeat(1_000);
    let received = d
        .engine
        .receive_mail(
            &inbox,
            mail(
                "jo@c.example",
                "long@c",
                &[],
                &format!("Still broken.\r\n\r\n{quoted}"),
            ),
            DOMAIN,
        )
        .await
        .unwrap();
    let body = &received.message.body;
    assert!(
        body.starts_with("Still broken.\n\n> an earlier"),
        "{body:.40}"
    );
    assert!(!body.contains('\r'));
    assert!(body.ends_with("[…]"));
    assert!(body.chars().count() <= chat_core::Limits::default().max_message_chars);
    // A mail of a subject only is that subject.
    let subject_only = d
        .engine
        .receive_mail(&inbox, mail("jo@c.example", "subj@c", &[], ""), DOMAIN)
        .await
        .unwrap();
    assert_eq!(subject_only.message.body, "Broken kettle");
}
