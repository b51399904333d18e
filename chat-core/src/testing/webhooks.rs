//! Conformance of the webhook outbox: deliveries written with their events, claims in
//! conversation order with leases, attempts recorded, endpoints paused.

use super::*;
use crate::ids::WebhookId;

fn webhook_value(tenant: TenantId, events: &[&str]) -> Webhook {
    Webhook {
        id: WebhookId(id()),
        tenant_id: tenant,
        url: "https://hooks.example/desk".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret: WebhookSecret("s3cret-s3cret-s3cret".into()),
        state: WebhookState::Active,
        failing_since: None,
        created_at: T0,
        updated_at: T0,
    }
}

async fn webhook(store: &S, tenant: TenantId, events: &[&str]) -> Webhook {
    let w = webhook_value(tenant, events);
    store.put_webhook(&w).await.unwrap();
    w
}

fn outcome(d: &Delivery, state: DeliveryState, secs: i64) -> DeliveryOutcome {
    DeliveryOutcome {
        tenant_id: d.tenant_id,
        webhook_id: d.webhook_id,
        seq: d.seq,
        state,
        attempts: d.attempts + 1,
        next_attempt_at: at(secs + 10),
        last_status: Some(if state == DeliveryState::Delivered {
            204
        } else {
            503
        }),
        last_error: (state != DeliveryState::Delivered).then(|| "HTTP 503".to_owned()),
        response_ms: 12,
        at: at(secs),
        pause: None,
    }
}

pub async fn events_write_deliveries_for_the_webhooks_that_follow_them(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let all = webhook(&store, t, &[]).await;
    let messages = webhook(&store, t, &["message_created"]).await;
    let elsewhere = webhook(&store, other, &[]).await;
    assert_eq!(
        store.webhooks(t).await.unwrap(),
        vec![all.clone(), messages.clone()]
    );
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let posted = store
        .append_message(text(&c, Sender::Customer, "hello", 3))
        .await
        .unwrap();
    let event = posted.event.unwrap();

    let logged = store.deliveries(t, all.id, None, 10).await.unwrap();
    assert_eq!(
        logged
            .iter()
            .map(|d| (d.seq, d.kind.as_str()))
            .collect::<Vec<_>>(),
        [
            (event.seq, "message_created"),
            (event.seq - 1, "conversation_created")
        ],
        "newest first, one per event"
    );
    let d = &logged[0];
    assert_eq!(
        (
            d.state,
            d.attempts,
            d.conversation_id,
            d.next_attempt_at,
            d.created_at
        ),
        (DeliveryState::Pending, 0, Some(c.id), event.at, event.at)
    );
    assert_eq!(
        (d.last_status, d.response_ms, d.delivered_at),
        (None, None, None)
    );
    let only = store.deliveries(t, messages.id, None, 10).await.unwrap();
    assert_eq!(only.iter().map(|d| d.seq).collect::<Vec<_>>(), [event.seq]);
    assert_eq!(
        store
            .deliveries(t, all.id, Some(event.seq), 10)
            .await
            .unwrap()
            .len(),
        1,
        "paged by sequence"
    );
    assert!(
        store
            .deliveries(other, elsewhere.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .deliveries(other, all.id, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "another tenant reads none of them"
    );

    // A change of the webhook keeps its outbox; deleting it takes the outbox along.
    let mut changed = messages.clone();
    changed.url = "https://hooks.example/other".into();
    store.put_webhook(&changed).await.unwrap();
    assert_eq!(store.webhooks(t).await.unwrap()[1].url, changed.url);
    assert_eq!(
        store
            .deliveries(t, messages.id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    store.delete_webhook(t, messages.id).await.unwrap();
    assert!(
        store
            .deliveries(t, messages.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.delete_webhook(t, messages.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.delete_webhook(t, elsewhere.id).await,
        Err(Error::NotFound(_))
    ));
}

/// A tenant whose events so far went to no webhook (a store may remember that, to skip
/// the outbox) gets deliveries from its first webhook on, none after its last one is
/// deleted, and again from a webhook added after that.
pub async fn a_webhook_added_after_the_tenants_events_gets_the_next_ones(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    store
        .append_message(text(&c, Sender::Customer, "before any webhook", 1))
        .await
        .unwrap();
    let first = webhook(&store, t, &["message_created"]).await;
    let posted = store
        .append_message(text(&c, Sender::Customer, "after the first", 2))
        .await
        .unwrap();
    let seqs = |ds: Vec<Delivery>| ds.iter().map(|d| d.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.deliveries(t, first.id, None, 10).await.unwrap()),
        [posted.event.unwrap().seq]
    );

    store.delete_webhook(t, first.id).await.unwrap();
    store
        .append_message(text(&c, Sender::Customer, "with no webhook", 3))
        .await
        .unwrap();
    let second = webhook(&store, t, &[]).await;
    let posted = store
        .append_message(text(&c, Sender::Customer, "after the second", 4))
        .await
        .unwrap();
    assert_eq!(
        seqs(store.deliveries(t, second.id, None, 10).await.unwrap()),
        [posted.event.unwrap().seq]
    );
}

pub async fn claims_keep_conversation_order_and_lapse_with_their_lease(store: S) {
    let t = tenant(&store).await;
    let w = webhook(&store, t, &["message_created"]).await;
    let k = contact(&store, t, None).await;
    let c1 = conversation(&store, t, k.id, |_| {}).await;
    let c2 = conversation(&store, t, k.id, |_| {}).await;
    let mut seqs = Vec::new();
    for (c, secs) in [(&c1, 1), (&c1, 2), (&c2, 3)] {
        let posted = store
            .append_message(text(c, Sender::Customer, "hi", secs))
            .await
            .unwrap();
        seqs.push(posted.event.unwrap().seq);
    }
    assert!(
        store
            .claim_deliveries(at(0), at(50), 10)
            .await
            .unwrap()
            .is_empty(),
        "none due yet"
    );
    let first = store.claim_deliveries(at(10), at(50), 10).await.unwrap();
    assert_eq!(
        first.iter().map(|d| d.seq).collect::<Vec<_>>(),
        [seqs[0], seqs[2]],
        "one per conversation: the second of c1 waits for the first"
    );
    assert!(
        store
            .claim_deliveries(at(10), at(50), 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed ones are leased"
    );
    // A failure keeps c1's second waiting, a success lets it go.
    store
        .record_delivery(&outcome(&first[0], DeliveryState::Pending, 11))
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries(at(20), at(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_deliveries(at(21), at(60), 10).await.unwrap();
    assert_eq!(again.iter().map(|d| d.seq).collect::<Vec<_>>(), [seqs[0]]);
    assert_eq!((again[0].attempts, again[0].last_status), (1, Some(503)));
    store
        .record_delivery(&outcome(&again[0], DeliveryState::Delivered, 22))
        .await
        .unwrap();
    let next = store.claim_deliveries(at(22), at(60), 10).await.unwrap();
    assert_eq!(next.iter().map(|d| d.seq).collect::<Vec<_>>(), [seqs[1]]);
    // c2's claim of the first round was never recorded (its worker died): it comes back
    // when its lease lapses.
    let lapsed = store.claim_deliveries(at(55), at(90), 10).await.unwrap();
    assert_eq!(lapsed.iter().map(|d| d.seq).collect::<Vec<_>>(), [seqs[2]]);
    let log = store.deliveries(t, w.id, None, 10).await.unwrap();
    let delivered = log.iter().find(|d| d.seq == seqs[0]).unwrap();
    assert_eq!(
        (
            delivered.state,
            delivered.attempts,
            delivered.delivered_at,
            delivered.response_ms
        ),
        (DeliveryState::Delivered, 2, Some(at(22)), Some(12))
    );
    // A paused webhook's deliveries wait.
    let mut paused = w.clone();
    paused.state = WebhookState::Paused;
    store.put_webhook(&paused).await.unwrap();
    assert!(
        store
            .claim_deliveries(at(500), at(600), 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.put_webhook(&w).await.unwrap();
    assert_eq!(
        store
            .claim_deliveries(at(500), at(600), 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn failing_too_long_pauses_a_webhook_once_and_logs_it(store: S) {
    let t = tenant(&store).await;
    let w = webhook(&store, t, &[]).await;
    let k = contact(&store, t, None).await;
    conversation(&store, t, k.id, |_| {}).await;
    let d = store
        .claim_deliveries(at(1), at(30), 10)
        .await
        .unwrap()
        .remove(0);
    let pause = |threshold: i64| {
        let mut paused = w.clone();
        paused.failing_since = Some(at(10));
        Some((at(threshold), NewEvent::webhook_paused(&paused, at(20))))
    };
    let mut first = outcome(&d, DeliveryState::Pending, 10);
    first.pause = pause(5);
    assert_eq!(
        store.record_delivery(&first).await.unwrap(),
        None,
        "failing only since 10"
    );
    assert_eq!(
        store.webhooks(t).await.unwrap()[0].failing_since,
        Some(at(10))
    );
    let head = store.event_head(t).await.unwrap();
    let mut second = outcome(&d, DeliveryState::Pending, 20);
    second.attempts = 2;
    second.pause = pause(10);
    let event = store
        .record_delivery(&second)
        .await
        .unwrap()
        .expect("paused");
    assert_eq!(
        (event.seq, event.payload.kind(), event.staff_only),
        (head + 1, "webhook_paused", true)
    );
    let stored = store.webhooks(t).await.unwrap().remove(0);
    assert_eq!(
        (stored.state, stored.failing_since),
        (WebhookState::Paused, Some(at(10)))
    );
    assert_eq!(
        store.record_delivery(&second).await.unwrap(),
        None,
        "an already paused webhook is not paused twice"
    );
    // The pause event itself is in the outbox of the (all-kinds) webhook.
    let log = store.deliveries(t, w.id, None, 10).await.unwrap();
    assert_eq!(log[0].kind, "webhook_paused");

    // Redelivery makes it pending and due now; a success clears the failures.
    let again = store.redeliver(t, w.id, d.seq, at(40)).await.unwrap();
    assert_eq!(
        (again.state, again.next_attempt_at, again.attempts),
        (DeliveryState::Pending, at(40), 2)
    );
    assert!(matches!(
        store.redeliver(t, w.id, 9_999, at(40)).await,
        Err(Error::NotFound(_))
    ));
    store.put_webhook(&w).await.unwrap();
    store
        .record_delivery(&outcome(&again, DeliveryState::Delivered, 41))
        .await
        .unwrap();
    assert_eq!(store.webhooks(t).await.unwrap()[0].failing_since, None);
}

pub async fn credential_changes_are_logged_in_order_and_no_webhook_follows_them(store: S) {
    let t = tenant(&store).await;
    let all = webhook(&store, t, &[]).await;
    let head = store.event_head(t).await.unwrap();
    let logged = store.log_credential_change(t, at(5)).await.unwrap();
    assert_eq!(logged.seq, head + 1, "the tenant's next sequence");
    assert_eq!(logged.payload, EventPayload::CredentialsChanged);
    assert_eq!((logged.tenant_id, logged.conversation_id), (t, None));
    assert!(logged.staff_only);
    let read = store.events_since(t, head, 10).await.unwrap();
    assert_eq!(read, vec![logged]);
    assert!(
        store
            .deliveries(t, all.id, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "a webhook following every kind does not receive it"
    );
}
