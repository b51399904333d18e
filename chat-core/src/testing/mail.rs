//! Conformance of the mail outbox: queued once per window when asked so, claimed once
//! (leased), recorded, listed newest first, and gone with its conversation.

use super::*;
use crate::ids::MailId;
use crate::model::{Mail, MailKind, MailOutcome, MailState};

fn mail_value(tenant: TenantId, conversation: ConversationId, created: OffsetDateTime) -> Mail {
    Mail {
        id: MailId(id()),
        tenant_id: tenant,
        conversation_id: conversation,
        kind: MailKind::Transcript,
        requested_by: "customer".into(),
        to: "ana@example.com".into(),
        subject: "Your conversation".into(),
        text: "Customer: hello".into(),
        html: Some("<p>Customer: hello</p>".into()),
        message_id: format!("{}.{}@desk.example", id(), conversation.0),
        references: vec!["a@x".into(), "b@y".into()],
        state: MailState::Pending,
        attempts: 0,
        next_attempt_at: created,
        last_error: None,
        created_at: created,
        sent_at: None,
    }
}

pub async fn mails_are_queued_once_per_window_claimed_once_and_recorded(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let first = mail_value(t, c.id, at(10));
    assert!(store.queue_mail(&first, Some(at(0))).await.unwrap());
    // The same mail again (a retried enqueue) is not written twice.
    assert!(!store.queue_mail(&first, None).await.unwrap());
    // The same requester again within the window: nothing written.
    let again = mail_value(t, c.id, at(20));
    assert!(!store.queue_mail(&again, Some(at(5))).await.unwrap());
    // After the window, or by someone else, or without a window: queued.
    let mut staff = mail_value(t, c.id, at(30));
    staff.requested_by = "agent:x".into();
    assert!(store.queue_mail(&staff, Some(at(5))).await.unwrap());
    let later = mail_value(t, c.id, at(40));
    assert!(store.queue_mail(&later, Some(at(15))).await.unwrap());
    // A conversation that is not the tenant's is refused.
    let other = tenant(&store).await;
    let foreign = mail_value(other, c.id, at(40));
    assert!(matches!(
        store.queue_mail(&foreign, None).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        store.mails(t, 10).await.unwrap(),
        vec![later.clone(), staff.clone(), first.clone()]
    );
    assert_eq!(store.mails(t, 1).await.unwrap(), vec![later.clone()]);

    // Claimed when due, leased, and not claimed again while leased.
    let claimed = store.claim_mails(at(35), at(100), 10).await.unwrap();
    assert_eq!(claimed, vec![first.clone(), staff.clone()]);
    assert!(
        store
            .claim_mails(at(35), at(100), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let lapsed = store.claim_mails(at(100), at(200), 10).await.unwrap();
    let ids: Vec<_> = lapsed.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![later.id, first.id, staff.id]);

    store
        .record_mail(&MailOutcome {
            tenant_id: t,
            id: first.id,
            state: MailState::Sent,
            attempts: 1,
            next_attempt_at: at(101),
            last_error: None,
            sent_at: Some(at(101)),
        })
        .await
        .unwrap();
    store
        .record_mail(&MailOutcome {
            tenant_id: t,
            id: staff.id,
            state: MailState::Pending,
            attempts: 1,
            next_attempt_at: at(150),
            last_error: Some("451 try later".into()),
            sent_at: None,
        })
        .await
        .unwrap();
    let log = store.mails(t, 10).await.unwrap();
    let sent = log.iter().find(|m| m.id == first.id).unwrap();
    assert_eq!(
        (sent.state, sent.attempts, sent.sent_at),
        (MailState::Sent, 1, Some(at(101)))
    );
    let retry = log.iter().find(|m| m.id == staff.id).unwrap();
    assert_eq!(retry.last_error.as_deref(), Some("451 try later"));
    assert_eq!(retry.next_attempt_at, at(150));
    // Sent ones are never claimed again; the retried one when due.
    let due: Vec<_> = store
        .claim_mails(at(300), at(400), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(due, vec![staff.id, later.id]);

    // A recorded attempt at a mail that is gone is no error; mails go with their
    // conversation.
    store.delete_conversation(t, c.id, at(500)).await.unwrap();
    assert!(store.mails(t, 10).await.unwrap().is_empty());
    store
        .record_mail(&MailOutcome {
            tenant_id: t,
            id: staff.id,
            state: MailState::Sent,
            attempts: 2,
            next_attempt_at: at(501),
            last_error: None,
            sent_at: Some(at(501)),
        })
        .await
        .unwrap();
}
