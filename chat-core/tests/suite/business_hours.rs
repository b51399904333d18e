//! Business hours through the engine, on the manual clock: a closed desk answers with its
//! offline message and keeps the queue until the opening, when the timer pass routes it.

use crate::common;

use chat_core::{BusinessHours, Mode, OpenRange, Sender, TenantSettings, WeeklyHours, is_open};
use common::desk_with;
use time::macros::datetime;

fn office_hours() -> TenantSettings {
    let day = vec![OpenRange {
        from: "09:00".into(),
        to: "17:30".into(),
    }];
    TenantSettings {
        bot_enabled: false,
        welcome_message: Some("Hi! How can we help?".into()),
        business_hours: Some(BusinessHours {
            time_zone: "Europe/Berlin".into(),
            weekly: WeeklyHours {
                mon: day.clone(),
                tue: day.clone(),
                wed: day.clone(),
                thu: day.clone(),
                fri: day,
                ..WeeklyHours::default()
            },
            holidays: vec!["2026-03-04".into()],
            offline_message: Some("We are closed; we answer from 09:00.".into()),
        }),
        ..TenantSettings::default()
    }
}

#[tokio::test]
async fn a_visitor_at_night_gets_the_offline_message_and_waits_for_the_opening() {
    let d = desk_with(office_hours()).await;
    let engine = &d.engine;
    // Monday 2 March 2026, 23:00 in Berlin (UTC+1).
    d.clock.set(datetime!(2026-03-02 22:00 UTC));
    d.online(&d.ann).await;
    let status = engine.availability(d.tenant).await.unwrap();
    assert!(!status.open);
    assert_eq!(status.next_opening, Some(datetime!(2026-03-03 08:00 UTC)));
    assert_eq!(
        status.offline_message.as_deref(),
        Some("We are closed; we answer from 09:00.")
    );
    assert_eq!(
        status.welcome_message.as_deref(),
        Some("Hi! How can we help?")
    );

    let (opened, _visitor) = d.visitor("night@example.com").await;
    assert!(opened.offline);
    assert_eq!(opened.conversation.mode, Mode::Queued);
    assert_eq!(opened.conversation.assigned_agent_id, None);
    let auto = opened.messages.last().expect("the offline message");
    assert_eq!(auto.sender, Sender::Bot);
    assert_eq!(auto.body, "We are closed; we answer from 09:00.");
    // The wait counts from the opening, 10 hours away.
    let waiting = engine
        .queue_positions(d.tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|(id, _)| *id == opened.conversation.id)
        .expect("queued")
        .1;
    assert_eq!(waiting.position, 1);
    assert_eq!(waiting.estimated_wait_secs, Some(10 * 3600));
    // An agent online and a timer pass at night route nothing.
    d.online(&d.bob).await;
    let report = engine.run_timers(d.tenant).await.unwrap();
    assert!(report.routed.is_empty());
    assert_eq!(d.mode(opened.conversation.id).await, Mode::Queued);

    // A minute before the opening: still waiting.
    d.clock.set(datetime!(2026-03-03 07:59 UTC));
    assert!(engine.run_timers(d.tenant).await.unwrap().routed.is_empty());
    assert_eq!(d.mode(opened.conversation.id).await, Mode::Queued);

    // 09:00 in Berlin: the timer pass routes the waiting conversation.
    d.clock.set(datetime!(2026-03-03 08:00 UTC));
    let status = engine.availability(d.tenant).await.unwrap();
    assert!(status.open);
    assert_eq!(status.next_opening, None);
    let report = engine.run_timers(d.tenant).await.unwrap();
    assert_eq!(report.routed, vec![opened.conversation.id]);
    let routed = engine
        .conversation(&d.system, opened.conversation.id)
        .await
        .unwrap();
    assert_eq!(routed.mode, Mode::Agent);
    assert!(routed.assigned_agent_id.is_some());

    // Open hours: a new visitor is routed at once and gets no offline message.
    let (day, _) = d.visitor("day@example.com").await;
    assert!(!day.offline);
    assert_eq!(day.conversation.mode, Mode::Agent);
    assert!(
        day.messages
            .iter()
            .all(|m| m.sender != Sender::Bot || m.body != "We are closed; we answer from 09:00.")
    );
}

#[tokio::test]
async fn a_holiday_keeps_the_desk_closed_and_staff_openings_get_no_offline_message() {
    let d = desk_with(office_hours()).await;
    let engine = &d.engine;
    // Wednesday 4 March 2026 is a holiday: noon in Berlin is closed.
    d.clock.set(datetime!(2026-03-04 11:00 UTC));
    d.online(&d.ann).await;
    let status = engine.availability(d.tenant).await.unwrap();
    assert!(!status.open);
    assert_eq!(status.next_opening, Some(datetime!(2026-03-05 08:00 UTC)));
    let opened = engine
        .open_conversation(
            &d.ann,
            chat_core::OpenConversation {
                contact: chat_core::ContactInput {
                    email: Some("called@example.com".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(opened.offline);
    assert!(
        opened
            .messages
            .iter()
            .all(|m| m.sender != Sender::Bot || m.body != "We are closed; we answer from 09:00.")
    );
    assert_eq!(opened.conversation.mode, Mode::Queued);
}

#[tokio::test]
async fn a_bad_schedule_is_refused_naming_business_hours_and_changes_nothing() {
    let d = desk_with(TenantSettings::default()).await;
    let mut bad = office_hours();
    bad.business_hours.as_mut().unwrap().time_zone = "Europe/Atlantis".into();
    match d.engine.update_tenant_settings(&d.admin, bad).await {
        Err(chat_core::Error::Validation { field, message }) => {
            assert_eq!(field, "business_hours");
            assert!(message.contains("Europe/Atlantis"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let settings = d.engine.tenant_settings(&d.admin).await.unwrap();
    assert_eq!(settings.business_hours, None);
    assert!(is_open(&settings, datetime!(2026-03-02 22:00 UTC)));
}
