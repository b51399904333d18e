//! Every legal and illegal mode transition, at the state machine and through the engine.

use crate::common;

use chat_core::{Error, Mode, PostMessage};
use chat_core::{InvalidTransition, UnknownMode};
use common::desk;

/// The transition table of the crate docs, written out: `LEGAL[from][to]`.
const LEGAL: [[bool; 6]; 6] = [
    //  bot   queued agent  paused closed archived
    [false, true, true, true, true, false],    // bot
    [true, false, true, false, true, false],   // queued
    [true, true, false, true, true, false],    // agent
    [true, true, true, false, true, false],    // paused
    [true, true, true, false, false, true],    // closed
    [false, false, false, false, true, false], // archived
];

#[test]
fn every_pair_of_modes_matches_the_documented_table() {
    for (i, from) in Mode::ALL.into_iter().enumerate() {
        for (j, to) in Mode::ALL.into_iter().enumerate() {
            assert_eq!(from.can_become(to), LEGAL[i][j], "{from} -> {to}");
            match from.check(to) {
                Ok(()) => assert!(LEGAL[i][j]),
                Err(InvalidTransition { from: f, to: t }) => {
                    assert!(!LEGAL[i][j]);
                    assert_eq!((f, t), (from, to));
                    // `?` in an engine call turns it into the engine's error.
                    assert!(matches!(
                        Error::from(InvalidTransition { from: f, to: t }),
                        Error::InvalidTransition { .. }
                    ));
                }
            }
        }
    }
}

#[test]
fn staying_in_the_same_mode_is_an_error_not_a_no_op() {
    for mode in Mode::ALL {
        assert_eq!(
            mode.check(mode),
            Err(InvalidTransition {
                from: mode,
                to: mode
            })
        );
    }
}

#[test]
fn modes_round_trip_through_their_names() {
    for mode in Mode::ALL {
        assert_eq!(mode.as_str().parse::<Mode>().unwrap(), mode);
        assert_eq!(serde_json::to_string(&mode).unwrap(), format!("\"{mode}\""));
    }
    let unknown = "ended".parse::<Mode>().unwrap_err();
    assert_eq!(unknown, UnknownMode("ended".into()));
    assert!(matches!(
        Error::from(unknown),
        Error::Validation { field: "mode", .. }
    ));
}

/// Drives a fresh conversation into `mode` through the engine.
async fn conversation_in(d: &common::Desk, mode: Mode) -> chat_core::ConversationId {
    let (opened, _) = d.visitor("walk@x.example").await;
    let id = opened.conversation.id;
    let admin = &d.admin;
    let e = &d.engine;
    match mode {
        Mode::Bot => {}
        Mode::Queued => {
            e.request_agent(admin, id, None, None).await.unwrap();
        }
        Mode::Agent => {
            e.claim(admin, id).await.unwrap();
        }
        Mode::Paused => {
            e.claim(admin, id).await.unwrap();
            e.set_mode(admin, id, Mode::Paused).await.unwrap();
        }
        Mode::Closed => {
            e.close(admin, id, None).await.unwrap();
        }
        Mode::Archived => {
            e.close(admin, id, None).await.unwrap();
            e.archive(admin, id).await.unwrap();
        }
    }
    assert_eq!(d.mode(id).await, mode);
    id
}

#[tokio::test]
async fn the_engine_applies_exactly_the_legal_transitions() {
    // Nobody is online, so queued conversations stay queued.
    let d = desk().await;
    for (i, from) in Mode::ALL.into_iter().enumerate() {
        for (j, to) in Mode::ALL.into_iter().enumerate() {
            let id = conversation_in(&d, from).await;
            let before = d.engine.conversation(&d.admin, id).await.unwrap();
            let result = d.engine.set_mode(&d.admin, id, to).await;
            if LEGAL[i][j] {
                let after = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(after.mode, to, "{from} -> {to}");
            } else {
                assert!(
                    matches!(result, Err(Error::InvalidTransition { .. })),
                    "{from} -> {to} must be refused, got {result:?}"
                );
                let after = d.engine.conversation(&d.admin, id).await.unwrap();
                assert_eq!(after, before, "a refused transition changes nothing");
            }
        }
    }
}

#[tokio::test]
async fn entering_queued_clears_the_agent_and_agent_mode_needs_one() {
    let d = desk().await;
    let id = conversation_in(&d, Mode::Agent).await;
    let c = d.engine.set_mode(&d.admin, id, Mode::Queued).await.unwrap();
    assert_eq!(c.assigned_agent_id, None);
    assert!(c.queued_at.is_some());
    // The system has nobody to put in charge.
    let err = d
        .engine
        .set_mode(&d.system, id, Mode::Agent)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Validation {
            field: "assigned_agent_id",
            ..
        }
    ));
    // A staff member moving it to agent mode takes it.
    let c = d
        .engine
        .set_mode(&d.supervisor, id, Mode::Agent)
        .await
        .unwrap();
    assert!(c.assigned_agent_id.is_some());
}

#[tokio::test]
async fn customer_writing_after_close_reopens_only_if_the_tenant_allows() {
    let d = desk().await;
    let (opened, visitor) = d.visitor("again@x.example").await;
    let id = opened.conversation.id;
    d.engine.close(&visitor, id, None).await.unwrap();
    let posted = d
        .engine
        .post_message(&visitor, id, PostMessage::text("one more thing"))
        .await
        .unwrap();
    assert_eq!(posted.conversation.mode, Mode::Bot, "reopened to the bot");
    assert_eq!(posted.conversation.closed_at, None);

    let strict = common::desk_with(chat_core::TenantSettings {
        allow_reopen: false,
        ..Default::default()
    })
    .await;
    let (opened, visitor) = strict.visitor("again@x.example").await;
    let id = opened.conversation.id;
    strict.engine.close(&visitor, id, None).await.unwrap();
    let before = strict
        .engine
        .messages(&visitor, id, Default::default())
        .await
        .unwrap();
    let err = strict
        .engine
        .post_message(&visitor, id, PostMessage::text("hello?"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidTransition {
            from: Mode::Closed,
            ..
        }
    ));
    assert_eq!(
        strict
            .engine
            .messages(&visitor, id, Default::default())
            .await
            .unwrap(),
        before,
        "nothing stored"
    );
    assert_eq!(strict.mode(id).await, Mode::Closed);
}

#[tokio::test]
async fn archived_conversations_are_read_only() {
    let d = desk().await;
    let id = conversation_in(&d, Mode::Archived).await;
    assert!(matches!(
        d.engine.post_note(&d.admin, id, "late note").await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        d.engine
            .post_message(&d.system, id, PostMessage::text("hello"))
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        d.engine.rate(&d.system, id, 5, None).await,
        Err(Error::Conflict(_))
    ));
    // Restoring goes back to closed.
    assert_eq!(
        d.engine
            .set_mode(&d.admin, id, Mode::Closed)
            .await
            .unwrap()
            .mode,
        Mode::Closed
    );
}
