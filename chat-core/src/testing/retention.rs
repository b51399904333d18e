//! Conformance tests of the event log's retention and of what the log says about rows
//! changed or deleted after their events.
#![allow(missing_docs, clippy::missing_panics_doc)]

use super::*;
use crate::clock::ManualClock;
use crate::engine::{Engine, EventRetention};
use crate::feed::{FeedItem, FeedScope, ResyncReason};
use crate::ids::WebhookId;
use crate::policy::Actor;

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Posts `n` customer messages to `c`, the i-th at `at(first + i)`.
async fn post(store: &S, c: &Conversation, first: i64, n: i64) {
    for i in 0..n {
        store
            .append_message(text(
                c,
                Sender::Customer,
                &format!("message {i}"),
                first + i,
            ))
            .await
            .unwrap();
    }
}

pub async fn compaction_keeps_the_head_and_every_event_a_pending_delivery_needs(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    post(&store, &c, 1, 5).await; // seq 2..=6
    assert_eq!(
        store.compact_events(t, 4, 2).await.unwrap(),
        2,
        "at most `limit`"
    );
    assert_eq!(seqs(&all_events(&store, t).await), [3, 4, 5, 6]);
    assert_eq!(store.compact_events(t, 4, 100).await.unwrap(), 2);
    assert_eq!(
        store.compact_events(t, 100, 100).await.unwrap(),
        1,
        "the newest event stays, whatever `through` says"
    );
    assert_eq!(seqs(&all_events(&store, t).await), [6]);
    assert_eq!(store.event_head(t).await.unwrap(), 6);
    assert_eq!(store.events_since(t, 2, 10).await.unwrap().len(), 1);

    // A webhook's pending delivery holds its event and every later one.
    let hook = Webhook {
        id: WebhookId(id()),
        tenant_id: t,
        url: "https://hooks.example/desk".into(),
        events: vec!["message_created".into()],
        secret: WebhookSecret("s3cret-s3cret-s3cret".into()),
        state: WebhookState::Active,
        failing_since: None,
        created_at: T0,
        updated_at: T0,
    };
    store.put_webhook(&hook).await.unwrap();
    let pending = store
        .append_message(text(&c, Sender::Customer, "deliver me", 10))
        .await
        .unwrap()
        .event
        .clone()
        .unwrap()
        .seq;
    assert_eq!(pending, 7, "the log goes on from its head");
    // An event no webhook follows, between two that one does.
    let mut moved = store.conversation(t, c.id).await.unwrap().unwrap();
    moved.mode = Mode::Queued;
    store
        .update_conversation(ConversationUpdate {
            conversation: moved,
            change: ConversationChange::Mode {
                from: Mode::Bot,
                to: Mode::Queued,
            },
            message: None,
        })
        .await
        .unwrap();
    post(&store, &c, 11, 2).await;
    let head = store.event_head(t).await.unwrap();
    assert_eq!(store.compact_events(t, head, 100).await.unwrap(), 1);
    assert_eq!(
        all_events(&store, t).await.first().map(|e| e.seq),
        Some(pending)
    );
    // Once delivered, it no longer holds anything (later deliveries are pending still).
    let delivered = store
        .deliveries(t, hook.id, None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.seq == pending)
        .unwrap();
    store
        .record_delivery(&DeliveryOutcome {
            tenant_id: t,
            webhook_id: hook.id,
            seq: pending,
            state: DeliveryState::Delivered,
            attempts: delivered.attempts + 1,
            next_attempt_at: at(30),
            last_status: Some(204),
            last_error: None,
            response_ms: 5,
            at: at(20),
            pause: None,
        })
        .await
        .unwrap();
    assert_eq!(store.compact_events(t, head, 100).await.unwrap(), 2);
    assert_eq!(
        all_events(&store, t).await.first().map(|e| e.seq),
        Some(pending + 2),
        "up to the next pending delivery's event"
    );
}

pub async fn retention_compacts_by_age_and_count_on_the_clock_and_old_cursors_resync(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await; // seq 1 at at(0)
    post(&store, &c, 1, 9).await; // seq 2..=10 at at(1..=9)
    let clock = Arc::new(ManualClock::new(at(10)));
    let engine = Engine::builder(store.clone())
        .clock(clock.clone())
        .event_retention(EventRetention {
            keep_events: 3,
            keep_for: Duration::hours(1),
            enabled: true,
        })
        .build();
    assert_eq!(
        engine.compact_events(t).await.unwrap(),
        0,
        "all younger than an hour"
    );
    // An hour after message 6 (seq 7, at(6)): by age up to seq 7, by count up to seq 7.
    clock.set(at(6) + Duration::hours(1));
    assert_eq!(engine.compact_events(t).await.unwrap(), 7);
    assert_eq!(seqs(&all_events(&store, t).await), [8, 9, 10]);
    // An hour after message 4 (at(4), seq 5): older events are gone already.
    clock.set(at(4) + Duration::hours(1));
    assert_eq!(engine.compact_events(t).await.unwrap(), 0);
    // Much later: the count still keeps the newest three.
    clock.set(at(9) + Duration::days(400));
    assert_eq!(engine.compact_events(t).await.unwrap(), 0);

    let system = Actor::System { tenant: t };
    let page = engine.events_since(&system, 2, 100).await.unwrap();
    assert!(page.resync_required, "a cursor before the log's start");
    let page = engine.events_since(&system, 7, 100).await.unwrap();
    assert!(!page.resync_required);
    assert_eq!(seqs(&page.events), [8, 9, 10]);

    let mut feed = engine
        .feed(&system, FeedScope::Tenant, Some(2))
        .await
        .unwrap();
    match feed.next().await.unwrap() {
        Some(FeedItem::Resync(r)) => assert_eq!(r.reason, ResyncReason::TooOld),
        other => panic!("expected a resync, got {other:?}"),
    }
    let mut feed = engine
        .feed(&system, FeedScope::Tenant, Some(7))
        .await
        .unwrap();
    match feed.next().await.unwrap() {
        Some(FeedItem::Event(e)) => assert_eq!(e.event.seq, 8),
        other => panic!("expected event 8, got {other:?}"),
    }

    // The timers compact too; the log goes on from its head.
    post(&store, &c, 20, 1).await;
    assert_eq!(store.event_head(t).await.unwrap(), 11);
    let report = engine.run_timers(t).await.unwrap();
    assert_eq!(report.events_compacted, 1);
    assert_eq!(seqs(&all_events(&store, t).await), [9, 10, 11]);
}

pub async fn message_created_reads_back_as_posted_after_edits_deletes_and_conversation_deletes(
    store: S,
) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let kept = conversation(&store, t, k.id, |_| {}).await;
    let first = store
        .append_message(text(&c, Sender::Customer, "the kettle leaks", 1))
        .await
        .unwrap();
    let note = store
        .append_message(message(&c, Sender::Bot, MessageKind::Note, "internal", 2))
        .await
        .unwrap();
    let other = store
        .append_message(text(&kept, Sender::Customer, "still here", 3))
        .await
        .unwrap();
    let logged = all_events(&store, t).await;
    assert!(logged.contains(&first.event.clone().unwrap()));
    assert!(logged.contains(&note.event.clone().unwrap()));
    assert!(note.event.clone().unwrap().staff_only);

    let mut edited = first.message.clone();
    edited.body = "the kettle is fixed".into();
    edited.edited_at = Some(at(4));
    store.update_message(&edited).await.unwrap();
    let mut deleted = note.message.clone();
    deleted.deleted_at = Some(at(5));
    store.update_message(&deleted).await.unwrap();
    let after_edits = all_events(&store, t).await;
    assert_eq!(
        after_edits[..logged.len()],
        logged[..],
        "a message_created event keeps the message as it was posted"
    );
    store.delete_conversation(t, c.id, at(6)).await.unwrap();
    let after_delete = all_events(&store, t).await;
    assert_eq!(
        after_delete[..after_edits.len()],
        after_edits[..],
        "the log keeps what it said about a deleted conversation"
    );
    assert!(after_delete.contains(&other.event.clone().unwrap()));
    assert_gap_free(&after_delete);
}

/// What a client is told live about a conversation (its `conversation_created` and
/// `conversation_updated` events) is what the log replays later, whatever happens to the
/// conversation since: posts, further updates, read cursors, its deletion. A store that
/// keeps such events as references to the row (chat-sqlite) must write them out before
/// the row changes.
pub async fn conversation_events_read_back_as_logged_after_updates_reads_and_deletes(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let head = head(&store, t).await;
    let c = conversation(&store, t, k.id, |c| c.title = Some("Kettle".into())).await;
    let quiet = conversation(&store, t, k.id, |_| {}).await;
    let gone = conversation(&store, t, k.id, |_| {}).await;
    let mut told = store.events_since(t, head, 100).await.unwrap();
    assert_eq!(told.len(), 3);
    // Opened with its first messages: stored with them counted, logged as before them.
    let opening = conversation_value(t, k.id, Mode::Bot, 0);
    let opened = store
        .create_conversation(
            &opening,
            vec![
                text(&opening, Sender::Bot, "Welcome!", 1),
                text(&opening, Sender::Customer, "my kettle leaks", 2),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        store.events_since(t, head + 3, 100).await.unwrap(),
        opened.events,
        "a conversation opened with messages replays as it was told"
    );
    assert!(matches!(
        &opened.events[0].payload,
        EventPayload::ConversationCreated { conversation } if conversation.message_count == 0
    ));
    let mut moved = opened.conversation.clone();
    moved.mode = Mode::Queued;
    moved.queued_at = Some(at(3));
    moved.updated_at = at(3);
    store
        .update_conversation(ConversationUpdate {
            conversation: moved,
            change: ConversationChange::Mode {
                from: Mode::Bot,
                to: Mode::Queued,
            },
            message: None,
        })
        .await
        .unwrap();
    told = store.events_since(t, head, 100).await.unwrap();
    assert_eq!(told[3..6], opened.events[..]);
    assert!(matches!(
        &told[0].payload,
        EventPayload::ConversationCreated { conversation } if **conversation == c
    ));

    // Posts move the conversation's counters; its created event stays as opened.
    post(&store, &c, 1, 2).await;
    let mut claimed = store.conversation(t, c.id).await.unwrap().unwrap();
    claimed.assigned_agent_id = Some(a.id);
    claimed.mode = Mode::Agent;
    claimed.updated_at = at(10);
    let update = store
        .update_conversation(ConversationUpdate {
            conversation: claimed.clone(),
            change: ConversationChange::Assigned {
                from: None,
                to: Some(a.id),
            },
            message: None,
        })
        .await
        .unwrap();
    // A second update after the first: the first's event keeps its state.
    let mut pinned = update.conversation.clone();
    pinned.pinned = true;
    pinned.updated_at = at(11);
    let second = store
        .update_conversation(ConversationUpdate {
            conversation: pinned,
            change: ConversationChange::Details,
            message: None,
        })
        .await
        .unwrap();
    post(&store, &c, 12, 1).await;
    let (_, read) = store
        .set_read_cursor(&ReadCursor {
            tenant_id: t,
            conversation_id: c.id,
            reader: Reader::Agent(a.id),
            seq: 2,
            updated_at: at(13),
        })
        .await
        .unwrap();
    assert!(read.is_some());
    store.delete_conversation(t, gone.id, at(14)).await.unwrap();
    let now = store.events_since(t, head, 100).await.unwrap();
    assert_eq!(
        now[..told.len()],
        told[..],
        "the created events as they were told"
    );
    told = now.clone();
    let updates: Vec<&Event> = now
        .iter()
        .filter(|e| e.payload.kind() == "conversation_updated" && e.conversation_id == Some(c.id))
        .collect();
    assert_eq!(
        updates,
        update
            .events
            .iter()
            .chain(second.events.iter())
            .filter(|e| e.payload.kind() == "conversation_updated")
            .collect::<Vec<_>>(),
        "each update's event as it was returned"
    );
    // The untouched conversation's event, then the latest update's, then a delete.
    let mut last = store.conversation(t, c.id).await.unwrap().unwrap();
    last.title = Some("Kettle, descaled".into());
    last.updated_at = at(15);
    store
        .update_conversation(ConversationUpdate {
            conversation: last,
            change: ConversationChange::Details,
            message: None,
        })
        .await
        .unwrap();
    store
        .delete_conversation(t, quiet.id, at(16))
        .await
        .unwrap();
    store.delete_conversation(t, c.id, at(17)).await.unwrap();
    let after = store.events_since(t, head, 100).await.unwrap();
    assert_eq!(after[..told.len()], told[..], "the log keeps what it told");
    assert_gap_free(&all_events(&store, t).await);
}
