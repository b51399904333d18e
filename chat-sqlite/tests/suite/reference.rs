//! Every `Store` method on a SQLite file gives exactly what the in-memory reference store
//! gives for the same calls: same values, same errors, same events in the same order.

use crate::common;

use chat_core::memory::MemoryStore;
use chat_core::store::{
    AssignedFilter, ConversationCursor, ConversationQuery, ConversationUpdate, MessageQuery, Scope,
};
use chat_core::{
    Attachment, Channel, Contact, ConversationChange, EntityRef, MessageKind, Mode, Priority,
    ReadCursor, Reader, Revision, Sender, Store, TenantId,
};
use common::*;

/// Runs the same call on both stores and asserts the results print the same.
macro_rules! same {
    ($mem:expr, $sql:expr, |$s:ident| $call:expr) => {{
        let expected = {
            let $s: &dyn Store = &$mem;
            $call.await
        };
        let actual = {
            let $s: &dyn Store = &*$sql;
            $call.await
        };
        assert_eq!(
            format!("{actual:#?}"),
            format!("{expected:#?}"),
            "differs from the reference store: {}",
            stringify!($call)
        );
        actual
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_method_matches_the_reference_store() {
    let mem = MemoryStore::new();
    let (sql, _dir) = store();
    let t = tenant(1);
    let tid = t.id;

    // Tenants.
    same!(mem, sql, |s| s.insert_tenant(&t)).unwrap();
    same!(mem, sql, |s| s.insert_tenant(&t)).unwrap_err();
    let mut renamed = t.clone();
    renamed.name = "Renamed".into();
    renamed.settings.allow_reopen = false;
    same!(mem, sql, |s| s.update_tenant(&renamed)).unwrap();
    same!(mem, sql, |s| s.update_tenant(&tenant(99))).unwrap_err();
    let _ = same!(mem, sql, |s| s.tenant(tid));
    let _ = same!(mem, sql, |s| s.tenant(TenantId(id(98))));

    // Contacts: Ann's e-mail is verified (unique), Bob's is a claim.
    let ann = Contact {
        email_verified: true,
        ..contact(tid, 10, "Ann Lee", Some("Ann@Example.com"))
    };
    let bob = contact(tid, 11, "Bob Stone", Some("bob@example.com"));
    let cid = contact(tid, 12, "Céline Dupré", None);
    for c in [&ann, &bob, &cid] {
        same!(mem, sql, |s| s.insert_contact(c)).unwrap();
    }
    same!(mem, sql, |s| s.insert_contact(&ann)).unwrap_err();
    let copy = Contact {
        email_verified: true,
        ..contact(tid, 13, "Copy", Some("ANN@example.COM"))
    };
    same!(mem, sql, |s| s.insert_contact(&copy)).unwrap_err();
    // A claim of the same e-mail is another contact.
    let claim = contact(tid, 16, "Claim", Some("ANN@example.COM"));
    same!(mem, sql, |s| s.insert_contact(&claim)).unwrap();
    let mut bob2 = bob.clone();
    bob2.email = Some("ann@example.com".into());
    bob2.email_verified = true;
    same!(mem, sql, |s| s.update_contact(&bob2)).unwrap_err();
    bob2.email_verified = false;
    bob2.email = Some("Robert@Example.com".into());
    bob2.phone = Some("+33 1 23".into());
    same!(mem, sql, |s| s.update_contact(&bob2)).unwrap();
    same!(mem, sql, |s| s
        .update_contact(&contact(tid, 14, "Ghost", None)))
    .unwrap_err();
    let _ = same!(mem, sql, |s| s.contact(tid, ann.id));
    let _ = same!(mem, sql, |s| s.contact(TenantId(id(2)), ann.id));
    let _ = same!(mem, sql, |s| s.verified_contact(tid, "ann@EXAMPLE.com"));
    let _ = same!(mem, sql, |s| s.verified_contact(tid, "bob@example.com"));

    // Staff.
    let zoe = agent(tid, 20, "Zoe", "zoe@desk.test", &["billing"]);
    let adam = agent(tid, 21, "Adam", "adam@desk.test", &["sales"]);
    let mut off = agent(tid, 22, "Mia", "mia@desk.test", &[]);
    off.active = false;
    for a in [&zoe, &adam, &off] {
        same!(mem, sql, |s| s.insert_agent(a)).unwrap();
    }
    same!(mem, sql, |s| s.insert_agent(&agent(
        tid,
        23,
        "Dup",
        "ZOE@desk.test",
        &[]
    )))
    .unwrap_err();
    let mut adam2 = adam.clone();
    adam2.departments.push("billing".into());
    same!(mem, sql, |s| s.update_agent(&adam2)).unwrap();
    adam2.email = "zoe@desk.test".into();
    same!(mem, sql, |s| s.update_agent(&adam2)).unwrap_err();
    same!(mem, sql, |s| s.update_agent(&agent(
        tid,
        24,
        "Nobody",
        "n@desk.test",
        &[]
    )))
    .unwrap_err();
    let _ = same!(mem, sql, |s| s.agent(tid, zoe.id));
    let _ = same!(mem, sql, |s| s.agent_by_email(tid, "ZOE@DESK.TEST"));
    let _ = same!(mem, sql, |s| s.agents(tid));

    // Conversations with their first messages.
    let c1 = conversation(tid, 100, ann.id, 10);
    let mut c2 = conversation(tid, 101, bob.id, 20);
    c2.channel = Channel::Whatsapp;
    c2.title = Some("Refund for order 1234".into());
    c2.mode = Mode::Queued;
    c2.priority = Priority::High;
    c2.queued_at = Some(at(21));
    c2.department = Some("billing".into());
    let mut c3 = conversation(tid, 102, cid.id, 30);
    c3.mode = Mode::Queued;
    c3.priority = Priority::High;
    c3.queued_at = Some(at(15));
    let mut c4 = conversation(tid, 103, ann.id, 40);
    c4.mode = Mode::Queued;
    c4.priority = Priority::Urgent;
    c4.queued_at = Some(at(40));
    c4.department = Some("sales".into());
    let first = vec![
        text(&c1, 1000, Sender::Customer, "Hello, my parcel is late", 11),
        text(
            &c1,
            1001,
            Sender::Bot,
            "Sorry to hear that! Let me check.",
            12,
        ),
    ];
    same!(mem, sql, |s| s.create_conversation(&c1, first.clone())).unwrap();
    same!(mem, sql, |s| s.create_conversation(&c1, vec![])).unwrap_err();
    same!(mem, sql, |s| s.create_conversation(
        &conversation(tid, 104, contact(tid, 15, "x", None).id, 5),
        vec![]
    ))
    .unwrap_err();
    for c in [&c2, &c3, &c4] {
        same!(mem, sql, |s| s.create_conversation(
            c,
            vec![text(
                c,
                c.id.0.as_u128() as u64 + 5000,
                Sender::Customer,
                "hi",
                c.created_at.second() as i64 + 1
            )]
        ))
        .unwrap();
    }

    // Messages of every sender and kind, idempotency per (conversation, sender, key).
    let mut keyed = text(&c1, 1002, Sender::Customer, "Order 1234 never arrived", 50);
    keyed.client_message_id = Some("k-1".into());
    keyed.attachments = vec![Attachment {
        key: "b/1".into(),
        name: "photo.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 12,
    }];
    keyed.entities = vec![EntityRef {
        kind: "order".into(),
        id: "1234".into(),
    }];
    keyed.metadata.insert("page".into(), "/orders".into());
    same!(mem, sql, |s| s.append_message(keyed.clone())).unwrap();
    let mut again = keyed.clone();
    again.id = chat_core::MessageId(id(1003));
    assert!(
        !same!(mem, sql, |s| s.append_message(again.clone()))
            .unwrap()
            .created
    );
    let mut other_sender = again.clone();
    other_sender.sender = Sender::Bot;
    same!(mem, sql, |s| s.append_message(other_sender.clone())).unwrap();
    same!(mem, sql, |s| s.append_message(text(
        &c1,
        1004,
        Sender::Agent(zoe.id),
        "I am on it",
        60
    )))
    .unwrap();
    same!(mem, sql, |s| s.append_message(message(
        &c1,
        1005,
        Sender::Agent(zoe.id),
        MessageKind::Note,
        "VIP customer, refund quickly",
        61
    )))
    .unwrap();
    same!(mem, sql, |s| s.append_message(message(
        &c1,
        1006,
        Sender::System,
        MessageKind::Event,
        "Assigned to Zoe",
        62
    )))
    .unwrap();
    same!(mem, sql, |s| s.append_message(text(
        &c1,
        1007,
        Sender::Customer,
        "ok",
        63
    )))
    .unwrap();
    same!(mem, sql, |s| s.append_message(text(
        &conversation(tid, 199, ann.id, 1),
        1008,
        Sender::Customer,
        "lost",
        64
    )))
    .unwrap_err();

    // Compare-and-swap updates, with and without a system message.
    let current = sql.conversation(tid, c1.id).await.unwrap().unwrap();
    let mut assigned = current.clone();
    assigned.mode = Mode::Agent;
    assigned.assigned_agent_id = Some(zoe.id);
    assigned.participants = vec![adam.id];
    assigned.tags = vec!["vip".into(), "shipping".into()];
    assigned.pinned = true;
    assigned.department = Some("billing".into());
    assigned.updated_at = at(70);
    let update = ConversationUpdate {
        conversation: assigned.clone(),
        change: ConversationChange::Assigned {
            from: None,
            to: Some(zoe.id),
        },
        message: Some(message(
            &c1,
            1009,
            Sender::System,
            MessageKind::Event,
            "Zoe joined",
            70,
        )),
    };
    same!(mem, sql, |s| s.update_conversation(update.clone())).unwrap();
    same!(mem, sql, |s| s.update_conversation(update.clone())).unwrap_err();
    let mut missing = update.clone();
    missing.conversation.id = chat_core::ConversationId(id(555));
    same!(mem, sql, |s| s.update_conversation(missing.clone())).unwrap_err();
    let current = sql.conversation(tid, c1.id).await.unwrap().unwrap();
    let mut retagged = current.clone();
    retagged.tags = vec!["vip".into()];
    retagged.updated_at = at(71);
    same!(mem, sql, |s| s.update_conversation(ConversationUpdate {
        conversation: retagged.clone(),
        change: ConversationChange::Details,
        message: None
    }))
    .unwrap();

    // Edits and soft deletes.
    let stored = sql.message(tid, keyed.id).await.unwrap().unwrap();
    let mut edited = stored.clone();
    edited.body = "Order 1234 never arrived, tracking says delivered".into();
    edited.revisions = vec![Revision {
        body: stored.body.clone(),
        replaced_at: at(80),
    }];
    edited.edited_at = Some(at(80));
    edited.seq = 999; // ignored: sequence, sender and kind stay
    same!(mem, sql, |s| s.update_message(&edited)).unwrap();
    let mut deleted = sql
        .message(tid, chat_core::MessageId(id(1004)))
        .await
        .unwrap()
        .unwrap();
    deleted.body = String::new();
    deleted.deleted_at = Some(at(81));
    same!(mem, sql, |s| s.update_message(&deleted)).unwrap();
    let mut foreign = edited.clone();
    foreign.tenant_id = TenantId(id(2));
    same!(mem, sql, |s| s.update_message(&foreign)).unwrap_err();
    let _ = same!(mem, sql, |s| s.message(tid, keyed.id));
    let _ = same!(mem, sql, |s| s.message(TenantId(id(2)), keyed.id));

    // Message windows.
    let latest = MessageQuery::latest(tid, c1.id, 3);
    let _ = same!(mem, sql, |s| s.messages(&latest));
    let _ = same!(mem, sql, |s| s.messages(&MessageQuery {
        before: Some(5),
        ..latest.clone()
    }));
    let _ = same!(mem, sql, |s| s.messages(&MessageQuery {
        after: Some(2),
        limit: 4,
        ..latest.clone()
    }));
    let _ = same!(mem, sql, |s| s.messages(&MessageQuery {
        after: Some(2),
        before: Some(6),
        limit: 10,
        ..latest.clone()
    }));
    let _ = same!(mem, sql, |s| s.messages(&MessageQuery {
        include_notes: false,
        limit: 100,
        ..latest.clone()
    }));
    let _ = same!(mem, sql, |s| s.messages(&MessageQuery {
        limit: 0,
        ..latest.clone()
    }));
    let _ = same!(mem, sql, |s| s.messages(&MessageQuery {
        after: Some(500),
        ..latest.clone()
    }));
    let _ = same!(mem, sql, |s| s.messages(&MessageQuery::latest(
        tid,
        chat_core::ConversationId(id(555)),
        3
    )));
    let _ = same!(mem, sql, |s| s.messages(&MessageQuery::latest(
        TenantId(id(2)),
        c1.id,
        3
    )));

    // Read cursors: forward only, clamped to the last sequence, counters recomputed.
    let cursor = |reader, seq, secs| ReadCursor {
        tenant_id: tid,
        conversation_id: c1.id,
        reader,
        seq,
        updated_at: at(secs),
    };
    same!(mem, sql, |s| s.set_read_cursor(&cursor(
        Reader::Agent(zoe.id),
        3,
        90
    )))
    .unwrap();
    same!(mem, sql, |s| s.set_read_cursor(&cursor(
        Reader::Agent(zoe.id),
        2,
        91
    )))
    .unwrap();
    same!(mem, sql, |s| s.set_read_cursor(&cursor(
        Reader::Customer,
        500,
        92
    )))
    .unwrap();
    same!(mem, sql, |s| s.set_read_cursor(&cursor(
        Reader::Agent(adam.id),
        0,
        93
    )))
    .unwrap();
    same!(mem, sql, |s| s.set_read_cursor(&cursor(
        Reader::Agent(zoe.id),
        7,
        94
    )))
    .unwrap();
    same!(mem, sql, |s| s.set_read_cursor(&ReadCursor {
        conversation_id: chat_core::ConversationId(id(555)),
        ..cursor(Reader::Customer, 1, 95)
    }))
    .unwrap_err();
    let _ = same!(mem, sql, |s| s.read_cursors(tid, c1.id));
    let _ = same!(mem, sql, |s| s
        .read_cursors(tid, chat_core::ConversationId(id(555))));

    // Lists: every filter, scopes, counts per mode, keyset pages.
    let all = ConversationQuery::new(tid, Scope::Tenant);
    let queries = vec![
        all.clone(),
        ConversationQuery {
            modes: vec![Mode::Queued],
            ..all.clone()
        },
        ConversationQuery {
            modes: vec![Mode::Queued, Mode::Agent],
            limit: 2,
            ..all.clone()
        },
        ConversationQuery {
            priority: Some(Priority::High),
            ..all.clone()
        },
        ConversationQuery {
            department: Some("billing".into()),
            ..all.clone()
        },
        ConversationQuery {
            assigned: Some(AssignedFilter::Unassigned),
            ..all.clone()
        },
        ConversationQuery {
            assigned: Some(AssignedFilter::Agent(zoe.id)),
            ..all.clone()
        },
        ConversationQuery {
            tag: Some("vip".into()),
            ..all.clone()
        },
        ConversationQuery {
            tag: Some("shipping".into()),
            ..all.clone()
        },
        ConversationQuery {
            channel: Some(Channel::Whatsapp),
            ..all.clone()
        },
        ConversationQuery {
            contact_email: Some("ANN@example.com".into()),
            ..all.clone()
        },
        ConversationQuery {
            pinned: Some(true),
            ..all.clone()
        },
        ConversationQuery {
            pinned: Some(false),
            modes: vec![Mode::Queued],
            ..all.clone()
        },
        ConversationQuery {
            text: Some("REFUND".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("céline".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("example.COM".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("tracking says".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("never arrived".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("on it".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("VIP cust".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("ok".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("\"quoted\" AND".into()),
            ..all.clone()
        },
        ConversationQuery {
            text: Some("VIP cust".into()),
            scope: Scope::Contact {
                contact: ann.id,
                conversation: None,
            },
            ..all.clone()
        },
        ConversationQuery {
            scope: Scope::Contact {
                contact: ann.id,
                conversation: None,
            },
            ..all.clone()
        },
        ConversationQuery {
            scope: Scope::Contact {
                contact: ann.id,
                conversation: Some(c4.id),
            },
            ..all.clone()
        },
        ConversationQuery {
            scope: Scope::Agent {
                agent: zoe.id,
                departments: vec!["billing".into()],
            },
            ..all.clone()
        },
        ConversationQuery {
            scope: Scope::Agent {
                agent: adam.id,
                departments: vec!["sales".into()],
            },
            ..all.clone()
        },
        ConversationQuery {
            scope: Scope::Agent {
                agent: off.id,
                departments: vec![],
            },
            ..all.clone()
        },
        ConversationQuery {
            limit: 0,
            ..all.clone()
        },
    ];
    let mut found = Vec::new();
    for q in &queries {
        found.push(
            same!(mem, sql, |s| s.list_conversations(q))
                .unwrap()
                .items
                .len(),
        );
    }
    // The scenario is meant to exercise hits and misses, not only agreement.
    let text_hits: Vec<usize> = queries
        .iter()
        .zip(&found)
        .filter(|(q, _)| q.text.is_some())
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(
        text_hits,
        [2, 1, 3, 1, 1, 0, 1, 1, 0, 0],
        "hits per text query"
    );
    // Needles that cut words anywhere: the word index narrows, the exact test decides.
    for needle in [
        "rder 12",
        " 1234 never",
        "ORDER 1234 n",
        "my parcel",
        "parcel is l",
        "it has",
        "-",
        "",
        "efun",
        "refund quick",
        "Let me ch",
        "  ",
        "é",
    ] {
        let q = ConversationQuery {
            text: Some(needle.into()),
            ..all.clone()
        };
        same!(mem, sql, |s| s.list_conversations(&q)).unwrap();
    }
    // Walk every page of some: the modes merged (all, and a filter tested on each), a
    // tag looked up or walked (a page of 2 walks a tag on more than the square root of
    // twice the tenant's conversations).
    for q in [
        ConversationQuery {
            department: Some("billing".into()),
            ..all.clone()
        },
        ConversationQuery {
            tag: Some("vip".into()),
            ..all.clone()
        },
        ConversationQuery {
            tag: Some("shipping".into()),
            ..all.clone()
        },
    ] {
        let mut page_query = ConversationQuery { limit: 1, ..q };
        loop {
            let page = same!(mem, sql, |s| s.list_conversations(&page_query)).unwrap();
            match page.next_cursor {
                Some(cursor) => page_query.cursor = Some(cursor),
                None => break,
            }
        }
    }
    let mut page_query = ConversationQuery {
        limit: 1,
        ..all.clone()
    };
    loop {
        let page = same!(mem, sql, |s| s.list_conversations(&page_query)).unwrap();
        match page.next_cursor {
            Some(cursor) => {
                page_query.cursor = Some(ConversationCursor::decode(&cursor.encode()).unwrap())
            }
            None => break,
        }
    }
    for ns in [i128::MAX, i128::MIN] {
        let q = ConversationQuery {
            cursor: Some(ConversationCursor {
                updated_at_ns: ns,
                id: c1.id,
            }),
            ..all.clone()
        };
        same!(mem, sql, |s| s.list_conversations(&q)).unwrap();
    }
    same!(mem, sql, |s| s.queue(tid, 10)).unwrap();
    same!(mem, sql, |s| s.queue(tid, 2)).unwrap();
    same!(mem, sql, |s| s.agent_loads(tid)).unwrap();

    // Deletes take messages and cursors along; the log keeps the events.
    same!(mem, sql, |s| s.delete_conversation(tid, c1.id, at(100))).unwrap();
    same!(mem, sql, |s| s.delete_conversation(tid, c1.id, at(101))).unwrap_err();
    let _ = same!(mem, sql, |s| s.conversation(tid, c1.id));
    let _ = same!(mem, sql, |s| s.message(tid, keyed.id));
    let _ = same!(mem, sql, |s| s.messages(&latest));
    same!(mem, sql, |s| s.list_conversations(&ConversationQuery {
        text: Some("never arrived".into()),
        ..all.clone()
    }))
    .unwrap();
    same!(mem, sql, |s| s.agent_loads(tid)).unwrap();

    // The whole event log, and windows of it.
    same!(mem, sql, |s| s.events_since(tid, 0, 1000)).unwrap();
    same!(mem, sql, |s| s.events_since(tid, 5, 3)).unwrap();
    same!(mem, sql, |s| s.events_since(tid, 10_000, 3)).unwrap();
    same!(mem, sql, |s| s.events_since(TenantId(id(2)), 0, 3)).unwrap();
}
