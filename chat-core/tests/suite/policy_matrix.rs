//! The access policy, end to end: every conversation operation × every kind of actor,
//! including another tenant. "NF" means not found (existence is not revealed), "F"
//! forbidden (visible but not allowed).

use crate::common;

use chat_core::{
    Actor, ConversationId, Error, Mode, NewAgent, PostMessage, Role, TenantSettings, Transfer,
    TransferTarget,
};
use chat_core::{DetailsPatch, Priority};
use common::{Desk, desk};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Ok,
    F,
    NF,
    Conflict,
}
use Want::*;

/// Who acts, in the column order of the table below.
const ACTORS: [&str; 9] = [
    "admin",
    "supervisor",
    "owner agent",
    "other agent",
    "customer",
    "other customer",
    "bot",
    "system",
    "other tenant",
];

#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    History,
    Post,
    Note,
    MarkRead,
    RequestAgent,
    Claim,
    Assign,
    Unassign,
    Transfer,
    Pause,
    Details,
    Close,
    Rate,
    Reopen,
    Archive,
    Delete,
    EditCustomerMessage,
    DeleteCustomerMessage,
    ReadCursors,
}

/// The expected outcome of each operation for each actor (order of `ACTORS`).
const MATRIX: &[(Op, [Want; 9])] = &[
    (Op::Read, [Ok, Ok, Ok, NF, Ok, NF, Ok, Ok, NF]),
    (Op::History, [Ok, Ok, Ok, NF, Ok, NF, Ok, Ok, NF]),
    (Op::Post, [Ok, Ok, Ok, NF, Ok, NF, Conflict, Ok, NF]),
    (Op::Note, [Ok, Ok, Ok, NF, F, NF, F, Ok, NF]),
    (Op::MarkRead, [Ok, Ok, Ok, NF, Ok, NF, F, F, NF]),
    (Op::RequestAgent, [Ok, Ok, NF, NF, Ok, NF, Ok, Ok, NF]),
    (Op::Claim, [Ok, Ok, Ok, NF, F, NF, F, F, NF]),
    (Op::Assign, [Ok, Ok, Ok, NF, F, NF, F, Ok, NF]),
    (Op::Unassign, [Ok, Ok, Ok, NF, F, NF, F, Ok, NF]),
    (Op::Transfer, [Ok, Ok, Ok, NF, F, NF, F, Ok, NF]),
    (Op::Pause, [Ok, Ok, Ok, NF, F, NF, F, Ok, NF]),
    (Op::Details, [Ok, Ok, Ok, NF, F, NF, F, Ok, NF]),
    (Op::Close, [Ok, Ok, Ok, NF, Ok, NF, Ok, Ok, NF]),
    (Op::Rate, [F, F, F, NF, Ok, NF, F, Ok, NF]),
    (Op::Reopen, [Ok, Ok, Ok, NF, Ok, NF, F, Ok, NF]),
    (Op::Archive, [Ok, Ok, F, NF, F, NF, F, Ok, NF]),
    (Op::Delete, [Ok, F, F, NF, F, NF, F, Ok, NF]),
    (Op::EditCustomerMessage, [F, F, F, NF, Ok, NF, F, F, NF]),
    (
        Op::DeleteCustomerMessage,
        [Ok, Ok, F, NF, Ok, NF, F, Ok, NF],
    ),
    (Op::ReadCursors, [Ok, Ok, Ok, NF, Ok, NF, Ok, Ok, NF]),
];

struct World {
    d: Desk,
    foreign_admin: Actor,
    other_customer: Actor,
}

async fn world() -> World {
    let d = desk().await;
    let foreign = d
        .engine
        .create_tenant("Other Co", TenantSettings::default())
        .await
        .unwrap();
    let input = NewAgent {
        name: "Eve".into(),
        email: "eve@other.example".into(),
        role: Role::Admin,
        capacity: None,
        departments: vec![],
    };
    let eve = d
        .engine
        .create_agent(&Actor::System { tenant: foreign.id }, input)
        .await
        .unwrap();
    // A foreign actor aims at our tenant's conversation ids but acts in its own tenant.
    let foreign_admin = Actor::Staff {
        tenant: foreign.id,
        agent: eve.id,
    };
    let (_, other_customer) = d.visitor("other@x.example").await;
    World {
        d,
        foreign_admin,
        other_customer,
    }
}

/// A conversation prepared for `op`: assigned to Ann in the billing department, except
/// where the operation needs another state. Returns it with its customer's actor and
/// the customer's first message.
async fn prepare(w: &World, op: Op) -> (ConversationId, Actor, chat_core::MessageId) {
    let d = &w.d;
    let (opened, customer) = d.visitor("customer@x.example").await;
    let id = opened.conversation.id;
    let first = d
        .engine
        .post_message(&customer, id, PostMessage::text("my invoice is wrong"))
        .await
        .unwrap()
        .message
        .id;
    match op {
        Op::RequestAgent => {}
        Op::Claim => {
            d.engine
                .update_details(
                    &d.admin,
                    id,
                    DetailsPatch {
                        department: Some(Some("billing".into())),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            d.engine
                .request_agent(&d.system, id, None, None)
                .await
                .unwrap();
        }
        _ => {
            d.engine
                .update_details(
                    &d.admin,
                    id,
                    DetailsPatch {
                        department: Some(Some("billing".into())),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            d.engine.assign(&d.admin, id, d.ann_id).await.unwrap();
        }
    }
    if matches!(op, Op::Reopen | Op::Archive) {
        d.engine.close(&d.system, id, None).await.unwrap();
    }
    (id, customer, first)
}

async fn run(
    w: &World,
    op: Op,
    actor: &Actor,
    id: ConversationId,
    first: chat_core::MessageId,
) -> Result<(), Error> {
    let e = &w.d.engine;
    match op {
        Op::Read => e.conversation(actor, id).await.map(drop),
        Op::History => e.messages(actor, id, Default::default()).await.map(drop),
        Op::Post => e
            .post_message(actor, id, PostMessage::text("hello"))
            .await
            .map(drop),
        Op::Note => e.post_note(actor, id, "internal").await.map(drop),
        Op::MarkRead => e.mark_read(actor, id, 1).await.map(drop),
        Op::RequestAgent => e.request_agent(actor, id, None, None).await.map(drop),
        Op::Claim => e.claim(actor, id).await.map(drop),
        Op::Assign => e.assign(actor, id, w.d.bob_id).await.map(drop),
        Op::Unassign => e.unassign(actor, id).await.map(drop),
        Op::Transfer => {
            let t = Transfer {
                to: TransferTarget::Department("sales".into()),
                reason: Some("wrong team".into()),
            };
            e.transfer(actor, id, t).await.map(drop)
        }
        Op::Pause => e.set_mode(actor, id, Mode::Paused).await.map(drop),
        Op::Details => e
            .update_details(
                actor,
                id,
                DetailsPatch {
                    priority: Some(Priority::High),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
        Op::Close => e.close(actor, id, None).await.map(drop),
        Op::Rate => e.rate(actor, id, 4, Some("quick".into())).await.map(drop),
        Op::Reopen => e.reopen(actor, id).await.map(drop),
        Op::Archive => e.archive(actor, id).await.map(drop),
        Op::Delete => e.delete_conversation(actor, id).await,
        Op::EditCustomerMessage => e
            .edit_message(actor, first, "my invoice number is wrong")
            .await
            .map(drop),
        Op::DeleteCustomerMessage => e.delete_message(actor, first).await.map(drop),
        Op::ReadCursors => e.read_cursors(actor, id).await.map(drop),
    }
}

#[tokio::test]
async fn every_operation_for_every_actor_matches_the_policy_table() {
    let w = world().await;
    let mut failures = Vec::new();
    for &(op, wants) in MATRIX {
        for (column, want) in wants.into_iter().enumerate() {
            let (id, customer, first) = prepare(&w, op).await;
            let before = w.d.engine.conversation(&w.d.system, id).await.unwrap();
            let actor = match column {
                0 => w.d.admin.clone(),
                1 => w.d.supervisor.clone(),
                2 => w.d.ann.clone(),
                3 => w.d.bob.clone(),
                4 => customer,
                5 => w.other_customer.clone(),
                6 => Actor::Bot { tenant: w.d.tenant },
                7 => w.d.system.clone(),
                _ => w.foreign_admin.clone(),
            };
            let got = match run(&w, op, &actor, id, first).await {
                Result::Ok(()) => Ok,
                Err(Error::Forbidden(_)) => F,
                Err(Error::NotFound(_)) => NF,
                Err(Error::Conflict(_)) => Conflict,
                Err(e) => panic!("{op:?} by {}: unexpected {e}", ACTORS[column]),
            };
            if got != want {
                failures.push(format!(
                    "{op:?} by {}: want {want:?}, got {got:?}",
                    ACTORS[column]
                ));
            }
            if got != Ok {
                let after = w.d.engine.conversation(&w.d.system, id).await.unwrap();
                assert_eq!(
                    after, before,
                    "{op:?} by {} was refused but changed the conversation",
                    ACTORS[column]
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "policy mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn customers_never_see_notes_in_history_events_or_by_id() {
    let w = world().await;
    let (id, customer, _) = prepare(&w, Op::Note).await;
    let note =
        w.d.engine
            .post_note(&w.d.ann, id, "customer sounds upset")
            .await
            .unwrap();
    let history =
        w.d.engine
            .messages(&customer, id, Default::default())
            .await
            .unwrap();
    assert!(history.iter().all(|m| !m.is_note()));
    assert!(matches!(
        w.d.engine.message(&customer, note.id).await,
        Err(Error::NotFound(_))
    ));
    let events =
        w.d.engine
            .events_since(&customer, 0, 1000)
            .await
            .unwrap()
            .events;
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| !e.staff_only && e.conversation_id == Some(id)),
        "only its own, no notes"
    );
    let staff_history =
        w.d.engine
            .messages(&w.d.ann, id, Default::default())
            .await
            .unwrap();
    assert!(staff_history.iter().any(|m| m.id == note.id));
}

#[tokio::test]
async fn agents_see_their_own_and_their_departments_queue_only() {
    let w = world().await;
    let d = &w.d;
    let (mine, _, _) = prepare(&w, Op::Read).await; // assigned to Ann
    let (billing_queue, _, _) = prepare(&w, Op::Claim).await; // queued for billing
    let (sales, _) = d.visitor("s@x.example").await;
    d.engine
        .request_agent(&d.system, sales.conversation.id, Some("sales".into()), None)
        .await
        .unwrap();
    let page = d
        .engine
        .list_conversations(&d.ann, Default::default())
        .await
        .unwrap();
    let ids: Vec<ConversationId> = page.items.iter().map(|c| c.id).collect();
    assert!(ids.contains(&mine) && ids.contains(&billing_queue));
    assert!(
        !ids.contains(&sales.conversation.id),
        "another department's queue is hidden"
    );
    assert!(
        page.items.iter().all(|c| c.mode != Mode::Bot),
        "bot conversations are not an agent's business"
    );
    let all = d
        .engine
        .list_conversations(&d.supervisor, Default::default())
        .await
        .unwrap();
    assert!(all.items.len() > page.items.len());
    let foreign = d
        .engine
        .list_conversations(&w.foreign_admin, Default::default())
        .await
        .unwrap();
    assert!(foreign.items.is_empty(), "nobody sees another tenant");
}

#[tokio::test]
async fn staff_management_is_for_admins() {
    let w = world().await;
    let d = &w.d;
    let input = || NewAgent {
        name: "New".into(),
        email: "new@acme.example".into(),
        role: Role::Agent,
        capacity: None,
        departments: vec![],
    };
    for actor in [&d.supervisor, &d.ann, &w.other_customer] {
        assert!(matches!(
            d.engine.create_agent(actor, input()).await,
            Err(Error::Forbidden(_))
        ));
    }
    assert!(matches!(
        d.engine.agents(&w.other_customer).await,
        Err(Error::Forbidden(_))
    ));
    let created = d.engine.create_agent(&d.admin, input()).await.unwrap();
    assert!(
        matches!(
            d.engine.create_agent(&d.admin, input()).await,
            Err(Error::Conflict(_))
        ),
        "e-mail is unique"
    );
    // An agent may rename itself but not promote itself.
    let me = Actor::Staff {
        tenant: d.tenant,
        agent: created.id,
    };
    let patch = chat_core::AgentPatch {
        role: Some(Role::Admin),
        ..Default::default()
    };
    assert!(matches!(
        d.engine.update_agent(&me, created.id, patch).await,
        Err(Error::Forbidden(_))
    ));
    let patch = chat_core::AgentPatch {
        name: Some("Newt".into()),
        ..Default::default()
    };
    assert_eq!(
        d.engine
            .update_agent(&me, created.id, patch)
            .await
            .unwrap()
            .name,
        "Newt"
    );
    // Disabling an agent stops it acting at once.
    let patch = chat_core::AgentPatch {
        active: Some(false),
        ..Default::default()
    };
    d.engine
        .update_agent(&d.admin, created.id, patch)
        .await
        .unwrap();
    assert!(matches!(
        d.engine.list_conversations(&me, Default::default()).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        d.engine.agents(&w.foreign_admin).await.map(|a| a.len()),
        Result::Ok(1)
    ));
}

#[tokio::test]
async fn event_pages_report_where_the_scan_stopped_even_when_little_is_visible() {
    let w = world().await;
    let (id, customer, _) = prepare(&w, Op::Read).await;
    // Plenty of events the customer cannot see (another conversation's traffic)...
    let (other, other_visitor) = w.d.visitor("busy@x.example").await;
    for n in 0..30 {
        let text = format!("noise {n}");
        w.d.engine
            .post_message(
                &other_visitor,
                other.conversation.id,
                PostMessage::text(text),
            )
            .await
            .unwrap();
    }
    // ...then one it can.
    w.d.engine
        .post_message(&w.d.ann, id, PostMessage::text("for you"))
        .await
        .unwrap();
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = w.d.engine.events_since(&customer, after, 10).await.unwrap();
        assert!(page.next_since >= after);
        seen.extend(page.events);
        after = page.next_since;
        if !page.more {
            break;
        }
    }
    assert!(seen.iter().all(|e| e.conversation_id == Some(id)));
    assert!(seen.iter().any(|e| matches!(&e.payload, chat_core::EventPayload::MessageCreated { message } if message.body == "for you")));
}

/// The views and the list filters, per kind of actor: the desk sees records whole and
/// filters by anything; a customer sees its own records trimmed and may not filter by a
/// field it cannot see, whatever the value.
#[tokio::test]
async fn every_actor_gets_its_view_and_only_the_filters_it_may_use() {
    use chat_core::ConversationFilter;
    use chat_core::policy::Viewer;
    let w = world().await;
    let (id, customer, _) = prepare(&w, Op::Read).await;
    let d = &w.d;
    let tagged = chat_core::DetailsPatch {
        tags: Some(vec!["refund-abuse".into()]),
        ..Default::default()
    };
    d.engine.update_details(&d.admin, id, tagged).await.unwrap();
    let c = d.engine.conversation(&d.system, id).await.unwrap();
    let actors = [
        (d.admin.clone(), Viewer::Desk),
        (d.supervisor.clone(), Viewer::Desk),
        (d.ann.clone(), Viewer::Desk),
        (customer.clone(), Viewer::Customer),
        (Actor::Bot { tenant: d.tenant }, Viewer::Desk),
        (d.system.clone(), Viewer::Desk),
    ];
    for (actor, want) in &actors {
        assert_eq!(Viewer::of(actor), *want, "{actor:?}");
        let seen = serde_json::to_value(Viewer::of(actor).conversation(&c)).unwrap();
        assert_eq!(
            seen.get("tags").is_some(),
            *want == Viewer::Desk,
            "{actor:?} and the tags"
        );
        for (right, wrong) in [("refund-abuse", "happy"), ("billing", "sales")] {
            let by = |value: &str| {
                if right == "billing" {
                    ConversationFilter {
                        department: Some(value.into()),
                        ..Default::default()
                    }
                } else {
                    ConversationFilter {
                        tag: Some(value.into()),
                        ..Default::default()
                    }
                }
            };
            let hit = d.engine.list_conversations(actor, by(right)).await;
            let miss = d.engine.list_conversations(actor, by(wrong)).await;
            match want {
                Viewer::Desk => {
                    assert!(hit.unwrap().items.iter().any(|x| x.id == id), "{actor:?}");
                    assert!(!miss.unwrap().items.iter().any(|x| x.id == id));
                }
                Viewer::Customer => {
                    assert!(matches!(hit, Err(Error::Forbidden(_))), "{actor:?}");
                    assert!(matches!(miss, Err(Error::Forbidden(_))), "{actor:?}");
                }
            }
        }
    }
}
