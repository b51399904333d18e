//! The [`Store`] conformance tests.
#![allow(missing_docs, clippy::missing_panics_doc)]

use super::*;

/// Expands one `#[tokio::test]` per conformance test. `$factory` is an `async fn()`
/// returning `(Arc<dyn Store>, G)`; `G` is kept alive for the test (a temp dir, say).
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path) => {
        $crate::store_conformance_tests!(@expand $factory;
            tenant_roundtrip,
            settings_update_stores_them_and_logs_a_staff_only_event,
            settings_update_is_compare_and_swap_on_their_version,
            only_verified_emails_are_unique_and_found,
            contacts_list_newest_first_by_pages_and_search_name_email_phone,
            merge_contact_needs_an_empty_contact_and_logs_a_staff_only_event,
            agent_roundtrip_appends_staff_only_events,
            agent_loads_count_agent_and_paused_conversations,
            create_conversation_stores_first_messages_and_events_in_order,
            append_message_updates_counters_by_sender,
            notes_are_staff_only_and_not_counted,
            parallel_appends_to_one_conversation_get_gap_free_sequences,
            client_message_id_stores_one_message,
            concurrent_posts_with_one_client_message_id_store_one_message,
            update_conversation_is_compare_and_swap,
            two_claims_from_one_version_exactly_one_wins,
            assignments_within_capacity_never_overfill_an_agent,
            update_conversation_appends_system_message_after_the_update_event,
            edit_and_soft_delete_keep_sequence_and_emit_events,
            message_windows_before_after_and_notes,
            read_cursor_moves_forward_only_and_recomputes_unread,
            events_since_replays_the_tenant_log_in_order,
            list_filters_combine_and_counts_ignore_mode_filter,
            counts_follow_mode_department_assignment_tag_changes_and_deletes,
            list_pagination_visits_every_item_once,
            agent_scope_sees_own_participating_and_department_queue,
            contact_scope_sees_only_its_conversations,
            text_search_follows_edits_deletes_and_hides_notes_from_customers,
            text_search_matches_word_prefixes_and_phrases_not_inner_substrings,
            text_search_counts_stop_at_the_cap_and_say_so,
            message_hits_are_the_newest_matches_of_each_conversation_notes_only_when_asked,
            list_filters_by_last_activity_range,
            queue_orders_by_priority_then_waiting_time,
            delete_conversation_removes_messages_and_logs_event,
            missing_and_foreign_tenant_rows_are_not_found,
            messages_of_another_conversation_are_refused,
            event_head_is_the_newest_sequence_of_the_tenant,
            canned_responses_are_shared_or_personal_with_unique_shortcuts,
            snoozed_filter_follows_the_stored_snooze,
            mentions_are_recorded_once_counted_and_read,
            canned_response_prefix_search_covers_shortcut_and_title,
            canned_response_changes_log_staff_only_events_addressed_to_the_owner,
            events_write_deliveries_for_the_webhooks_that_follow_them,
            a_webhook_added_after_the_tenants_events_gets_the_next_ones,
            credential_changes_are_logged_in_order_and_no_webhook_follows_them,
            claims_keep_conversation_order_and_lapse_with_their_lease,
            failing_too_long_pauses_a_webhook_once_and_logs_it,
            inboxes_are_stored_per_tenant_and_found_by_id,
            an_inbox_customer_has_one_thread_and_the_first_link_wins,
            an_inbox_is_replaced_only_over_the_version_read,
            one_node_polls_an_inbox_and_its_offset_only_moves_forward,
            mails_are_queued_once_per_window_claimed_once_and_recorded,
            report_totals_count_opened_closed_reopened_with_median_and_p90,
            report_breaks_down_by_agent_department_channel_and_tag,
            report_series_counts_per_bucket_and_feedback_is_newest_first,
            report_queries_agree_with_the_in_memory_definition_on_a_generated_desk,
            export_streams_one_tenant_between_a_header_and_an_end_line,
            compaction_keeps_the_head_and_every_event_a_pending_delivery_needs,
            retention_compacts_by_age_and_count_on_the_clock_and_old_cursors_resync,
            message_created_reads_back_as_posted_after_edits_deletes_and_conversation_deletes,
            conversation_events_read_back_as_logged_after_updates_reads_and_deletes,
            presence_lasts_until_the_last_node_holding_it_lets_go,
            presence_lapses_when_its_node_stops_renewing,
            presence_keeps_a_chosen_availability,
            the_routing_turn_moves_with_each_assignment_and_only_from_where_it_was,
        );
    };
    (@expand $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $factory().await;
                $crate::testing::$name(store).await;
            }
        )*
    };
}

pub async fn tenant_roundtrip(store: S) {
    let t = tenant(&store).await;
    let mut stored = store.tenant(t).await.unwrap().expect("tenant stored");
    assert_eq!(stored.name, "Acme");
    assert_eq!(stored.settings, TenantSettings::default());
    assert!(matches!(
        store.insert_tenant(&stored).await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
    ));
    stored.name = "Acme Support".into();
    stored.settings.welcome_message = Some("Hi!".into());
    store.update_tenant(&stored).await.unwrap();
    assert_eq!(store.tenant(t).await.unwrap(), Some(stored.clone()));
    assert_eq!(store.tenant(TenantId(id())).await.unwrap(), None);
    stored.id = TenantId(id());
    assert!(matches!(
        store.update_tenant(&stored).await,
        Err(Error::NotFound(_))
    ));
}

pub async fn settings_update_stores_them_and_logs_a_staff_only_event(store: S) {
    let t = tenant(&store).await;
    let mut stored = store.tenant(t).await.unwrap().expect("tenant stored");
    stored.settings.requeue_after_secs = Some(120);
    stored.settings_version = 1;
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let event = store.update_tenant_settings(&stored, at).await.unwrap();
    assert_eq!(store.tenant(t).await.unwrap(), Some(stored.clone()));
    assert_eq!((event.seq, event.staff_only, event.at), (1, true, at));
    assert_eq!(event.conversation_id, None);
    assert!(matches!(
        &event.payload,
        EventPayload::SettingsUpdated { settings } if **settings == stored.settings
    ));
    assert_eq!(store.events_since(t, 0, 10).await.unwrap(), vec![event]);
    stored.id = TenantId(id());
    assert!(matches!(
        store.update_tenant_settings(&stored, at).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.event_head(stored.id).await.unwrap(), 0);
}

pub async fn settings_update_is_compare_and_swap_on_their_version(store: S) {
    let t = tenant(&store).await;
    let base = store.tenant(t).await.unwrap().expect("tenant stored");
    assert_eq!(base.settings_version, 0);
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    // Two admins both start from version 0: the first change lands as version 1...
    let mut first = base.clone();
    first.settings.welcome_message = Some("Hello from Ann".into());
    first.settings_version = 1;
    store.update_tenant_settings(&first, at).await.unwrap();
    // ...and the second, made from version 0 too, is refused with the stored version.
    let mut second = base.clone();
    second.settings.welcome_message = Some("Hello from Bo".into());
    second.settings_version = 1;
    match store.update_tenant_settings(&second, at).await {
        Err(Error::Conflict(c)) => {
            assert_eq!(c.kind(), crate::ConflictKind::VersionRace);
            assert_eq!(c.current_version(), Some(1));
        }
        other => panic!("a stale settings change must be a version race, got {other:?}"),
    }
    // A version that skips ahead is refused as well.
    second.settings_version = 3;
    assert!(matches!(
        store.update_tenant_settings(&second, at).await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::VersionRace
    ));
    // Nothing of the refused changes was written or logged.
    assert_eq!(store.tenant(t).await.unwrap(), Some(first.clone()));
    assert_eq!(store.event_head(t).await.unwrap(), 1);
    // Made from version 1, the next change lands as 2.
    second.settings_version = 2;
    store.update_tenant_settings(&second, at).await.unwrap();
    assert_eq!(store.tenant(t).await.unwrap(), Some(second));
    assert_eq!(store.event_head(t).await.unwrap(), 2);
}

pub async fn only_verified_emails_are_unique_and_found(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    // Claims repeat freely and find nothing: a stranger may type anyone's e-mail.
    let claim = contact(&store, t, Some("jo@shop.example")).await;
    let second_claim = contact(&store, t, Some("JO@shop.example")).await;
    assert_eq!(
        store.contact(t, claim.id).await.unwrap(),
        Some(claim.clone())
    );
    assert_ne!(claim.id, second_claim.id);
    assert_eq!(
        store.verified_contact(t, "jo@shop.example").await.unwrap(),
        None
    );

    let mut verified = claim.clone();
    verified.id = ContactId(id());
    verified.email_verified = true;
    store.insert_contact(&verified).await.unwrap();
    assert_eq!(
        store
            .verified_contact(t, "JO@Shop.Example")
            .await
            .unwrap()
            .map(|k| k.id),
        Some(verified.id)
    );
    let mut dup = verified.clone();
    dup.id = ContactId(id());
    dup.email = Some("JO@SHOP.EXAMPLE".into());
    assert!(matches!(
        store.insert_contact(&dup).await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
    ));
    // Verifying a claim whose e-mail another contact holds verified is refused too.
    let mut upgrade = second_claim.clone();
    upgrade.email_verified = true;
    assert!(matches!(
        store.update_contact(&upgrade).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        store.contact(t, second_claim.id).await.unwrap(),
        Some(second_claim)
    );
    // Same e-mail in another tenant is a different person.
    dup.tenant_id = other;
    store.insert_contact(&dup).await.unwrap();
    assert_eq!(store.contact(other, verified.id).await.unwrap(), None);
    let mut changed = claim.clone();
    changed.name = Some("Jo".into());
    changed.metadata.insert("referrer".into(), "ads".into());
    store.update_contact(&changed).await.unwrap();
    assert_eq!(store.contact(t, claim.id).await.unwrap(), Some(changed));
    // Contacts without e-mail never clash.
    contact(&store, t, None).await;
    contact(&store, t, None).await;
}

pub async fn contacts_list_newest_first_by_pages_and_search_name_email_phone(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let mut made = Vec::new();
    for (name, email, phone) in [
        ("Ada Lovelace", "ada@shop.example", "+44 20 7946"),
        ("Bob Builder", "bob@build.example", "+62 812 555"),
        ("Cy Twombly", "cy@art.example", "+1 212 555"),
    ] {
        let mut c = contact(&store, t, Some(email)).await;
        c.name = Some(name.into());
        c.phone = Some(phone.into());
        store.update_contact(&c).await.unwrap();
        made.push(c);
    }
    contact(&store, other, Some("ada@shop.example")).await;
    let query = |text: Option<&str>, before, limit| ContactQuery {
        tenant: t,
        text: text.map(str::to_owned),
        before,
        limit,
    };
    let ids = |list: Vec<Contact>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    // Newest first, page by page, each contact once, nothing of the other tenant.
    let first = store.list_contacts(&query(None, None, 2)).await.unwrap();
    assert_eq!(ids(first.clone()), vec![made[2].id, made[1].id]);
    assert_eq!(first[0], made[2]);
    let rest = store
        .list_contacts(&query(None, Some(first[1].id), 2))
        .await
        .unwrap();
    assert_eq!(ids(rest), vec![made[0].id]);
    // Search by a part of the name, e-mail or phone, any case.
    for (text, want) in [
        ("LOVELACE", vec![made[0].id]),
        ("build.example", vec![made[1].id]),
        ("555", vec![made[2].id, made[1].id]),
        ("nobody", vec![]),
    ] {
        assert_eq!(
            ids(store
                .list_contacts(&query(Some(text), None, 10))
                .await
                .unwrap()),
            want,
            "{text}"
        );
    }
}

pub async fn merge_contact_needs_an_empty_contact_and_logs_a_staff_only_event(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let keep = contact(&store, t, None).await;
    let gone = contact(&store, t, Some("jo@shop.example")).await;
    let c = conversation(&store, t, gone.id, |_| {}).await;
    let mut kept = keep.clone();
    kept.email = gone.email.clone();
    // Conversations are moved first; while `gone` has one, the merge is refused.
    let before = head(&store, t).await;
    assert!(matches!(
        store.merge_contact(&kept, gone.id, at(5)).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        head(&store, t).await,
        before,
        "a refused merge logs nothing"
    );
    let mut moved = c.clone();
    moved.contact_id = keep.id;
    store
        .update_conversation(ConversationUpdate {
            conversation: moved,
            change: ConversationChange::Contact {
                from: gone.id,
                to: keep.id,
            },
            message: None,
        })
        .await
        .unwrap();
    let foreign = ContactId(id());
    assert!(matches!(
        store.merge_contact(&kept, foreign, at(5)).await,
        Err(Error::NotFound(_))
    ));
    let mut wrong_tenant = kept.clone();
    wrong_tenant.tenant_id = other;
    assert!(matches!(
        store.merge_contact(&wrong_tenant, gone.id, at(5)).await,
        Err(Error::NotFound(_))
    ));
    let before = head(&store, t).await;
    let event = store.merge_contact(&kept, gone.id, at(6)).await.unwrap();
    assert_logged(
        &store,
        t,
        before,
        std::slice::from_ref(&event),
        vec![staff_only(
            None,
            at(6),
            EventPayload::ContactMerged {
                contact: Box::new(kept.clone()),
                merged: gone.id,
            },
        )],
    )
    .await;
    assert_eq!(store.contact(t, gone.id).await.unwrap(), None);
    assert_eq!(store.contact(t, keep.id).await.unwrap(), Some(kept));
    assert_eq!(
        store
            .conversation(t, c.id)
            .await
            .unwrap()
            .unwrap()
            .contact_id,
        keep.id
    );
    let events = all_events(&store, t).await;
    assert_eq!(events.last(), Some(&event));
    assert_gap_free(&events);
}

pub async fn agent_roundtrip_appends_staff_only_events(store: S) {
    let t = tenant(&store).await;
    let zed = agent(&store, t, "Zed", Role::Agent, &["billing"]).await;
    let amy = agent(&store, t, "Amy", Role::Admin, &[]).await;
    assert_eq!(store.agent(t, zed.id).await.unwrap(), Some(zed.clone()));
    assert_eq!(
        store
            .agent_by_email(t, "ZED@desk.example")
            .await
            .unwrap()
            .map(|a| a.id),
        Some(zed.id)
    );
    let names: Vec<String> = store
        .agents(t)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["Amy", "Zed"]);
    // Staff changes are staff-only: customers see no staff roster.
    let roster = |a: &Agent| staff_only(None, a.updated_at, agent_updated(a));
    let inserted = all_events(&store, t).await;
    assert_logged(&store, t, 0, &inserted, vec![roster(&zed), roster(&amy)]).await;
    let mut dup = zed.clone();
    dup.id = AgentId(id());
    dup.email = "Zed@Desk.Example".into();
    assert!(matches!(
        store.insert_agent(&dup).await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
    ));
    assert_eq!(head(&store, t).await, 2, "a refused agent logs nothing");
    let mut away = zed.clone();
    away.availability = Availability::Away;
    away.capacity = Some(2);
    away.updated_at = at(4);
    let event = store.update_agent(&away).await.unwrap();
    assert_eq!(store.agent(t, zed.id).await.unwrap(), Some(away.clone()));
    assert_logged(&store, t, 2, &[event], vec![roster(&away)]).await;
    let other = tenant(&store).await;
    assert_eq!(store.agent(other, amy.id).await.unwrap(), None);
    assert!(store.agents(other).await.unwrap().is_empty());
}

fn agent_updated(agent: &Agent) -> EventPayload {
    EventPayload::AgentUpdated {
        agent: Box::new(agent.clone()),
    }
}

pub async fn agent_loads_count_agent_and_paused_conversations(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let busy = agent(&store, t, "Busy", Role::Agent, &[]).await;
    let idle = agent(&store, t, "Idle", Role::Agent, &[]).await;
    let mut gone = agent(&store, t, "Gone", Role::Agent, &[]).await;
    gone.active = false;
    store.update_agent(&gone).await.unwrap();
    for mode in [Mode::Agent, Mode::Paused, Mode::Closed, Mode::Agent] {
        conversation(&store, t, k.id, |c| {
            c.mode = mode;
            c.assigned_agent_id = Some(busy.id);
        })
        .await;
    }
    let loads = store.agent_loads(t).await.unwrap();
    let open = |a: AgentId| loads.iter().find(|l| l.agent.id == a).map(|l| l.open);
    assert_eq!(open(busy.id), Some(3));
    assert_eq!(open(idle.id), Some(0));
    assert_eq!(open(gone.id), None, "disabled staff are not candidates");
}

pub async fn create_conversation_stores_first_messages_and_events_in_order(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, Some("a@b.example")).await;
    let c = conversation_value(t, k.id, Mode::Bot, 0);
    let welcome = text(&c, Sender::Bot, "Welcome!", 0);
    let first = text(&c, Sender::Customer, "My order is late", 1);
    let committed = store
        .create_conversation(&c, vec![welcome.clone(), first.clone()])
        .await
        .unwrap();
    let expected = vec![welcome.into_message(1), first.into_message(2)];
    assert_eq!(committed.messages, expected);
    // The conversation as it was opened, before its first messages, then each message.
    assert_logged(
        &store,
        t,
        0,
        &committed.events,
        vec![
            public(
                c.id,
                at(0),
                EventPayload::ConversationCreated {
                    conversation: Box::new(c.clone()),
                },
            ),
            public(c.id, at(0), message_created(&expected[0])),
            public(c.id, at(1), message_created(&expected[1])),
        ],
    )
    .await;
    for m in &expected {
        assert_eq!(store.message(t, m.id).await.unwrap().as_ref(), Some(m));
    }
    let stored = store.conversation(t, c.id).await.unwrap().unwrap();
    assert_eq!(stored, committed.conversation);
    assert_eq!(stored.last_seq, 2);
    assert_eq!(stored.message_count, 2);
    assert_eq!(stored.unread_for_agent, 1);
    assert_eq!(stored.unread_for_customer, 1);
    assert_eq!(stored.version, 3, "created at 1, plus one per message");
    assert_eq!(
        stored.last_message.as_ref().map(|p| p.body.as_str()),
        Some("My order is late")
    );
    assert!(matches!(
        store.create_conversation(&c, Vec::new()).await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
    ));
    let mut orphan = conversation_value(t, ContactId(id()), Mode::Bot, 0);
    orphan.id = ConversationId(id());
    assert!(
        store
            .create_conversation(&orphan, Vec::new())
            .await
            .is_err(),
        "contact must exist"
    );
    assert_eq!(head(&store, t).await, 3, "refused creations log nothing");
}

fn message_created(message: &Message) -> EventPayload {
    EventPayload::MessageCreated {
        message: Box::new(message.clone()),
    }
}

pub async fn append_message_updates_counters_by_sender(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let hello = text(&c, Sender::Customer, "hello", 1);
    let before = head(&store, t).await;
    let one = store.append_message(hello.clone()).await.unwrap();
    assert!(one.created);
    assert_eq!(one.message, hello.into_message(1));
    assert_eq!(one.conversation.unread_for_agent, 1);
    assert_eq!(one.conversation.last_customer_message_at, Some(at(1)));
    assert_eq!(one.conversation.version, c.version + 1);
    let event = one.event.expect("created messages are logged");
    assert_logged(
        &store,
        t,
        before,
        &[event],
        vec![public(c.id, at(1), message_created(&one.message))],
    )
    .await;
    let two = store
        .append_message(text(&c, Sender::Agent(a.id), "hi, how can I help?", 2))
        .await
        .unwrap();
    assert_eq!(two.message.seq, 2);
    assert_eq!(two.conversation.first_response_at, Some(at(2)));
    assert_eq!(two.conversation.unread_for_customer, 1);
    store
        .append_message(text(&c, Sender::Agent(a.id), "still there?", 5))
        .await
        .unwrap();
    let assigned = message(&c, Sender::System, MessageKind::Event, "Assigned to Ann", 6);
    let before = head(&store, t).await;
    let sys = store.append_message(assigned.clone()).await.unwrap();
    assert_eq!(sys.message, assigned.into_message(4));
    assert_logged(
        &store,
        t,
        before,
        &[sys.event.expect("timeline events are logged")],
        vec![public(c.id, at(6), message_created(&sys.message))],
    )
    .await;
    let after = sys.conversation;
    assert_eq!(
        after.first_response_at,
        Some(at(2)),
        "first response is the first one"
    );
    assert_eq!(after.last_agent_message_at, Some(at(5)));
    assert_eq!(after.unread_for_customer, 2);
    assert_eq!(
        after.message_count, 3,
        "system events are not counted as messages"
    );
    assert_eq!(after.last_seq, 4);
    assert_eq!(after.updated_at, at(6));
    assert_eq!(store.conversation(t, c.id).await.unwrap().unwrap(), after);
    let mut missing = text(&c, Sender::Customer, "x", 1);
    missing.conversation_id = ConversationId(id());
    assert!(matches!(
        store.append_message(missing).await,
        Err(Error::NotFound(_))
    ));
}

pub async fn notes_are_staff_only_and_not_counted(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    store
        .append_message(text(&c, Sender::Customer, "refund please", 1))
        .await
        .unwrap();
    let vip = message(
        &c,
        Sender::Agent(a.id),
        MessageKind::Note,
        "VIP, refund ok",
        2,
    );
    let before = head(&store, t).await;
    let note = store.append_message(vip.clone()).await.unwrap();
    assert_eq!(
        note.message,
        vip.into_message(2),
        "notes take a sequence number too"
    );
    assert_logged(
        &store,
        t,
        before,
        &[note.event.expect("notes are logged")],
        vec![staff_only(
            Some(c.id),
            at(2),
            message_created(&note.message),
        )],
    )
    .await;
    let conv = note.conversation;
    assert_eq!(conv.message_count, 1);
    assert_eq!(conv.unread_for_customer, 0);
    assert_eq!(
        conv.last_message.unwrap().body,
        "refund please",
        "notes never become the preview"
    );
}

pub async fn parallel_appends_to_one_conversation_get_gap_free_sequences(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        let m = text(&c, Sender::Customer, &format!("message {i}"), i);
        tasks.push(tokio::spawn(async move {
            store.append_message(m).await.unwrap().message.seq
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    let stored = store
        .messages(&MessageQuery::latest(t, c.id, 100))
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<u64>>()
    );
    let conv = store.conversation(t, c.id).await.unwrap().unwrap();
    assert_eq!(
        (conv.last_seq, conv.message_count, conv.unread_for_agent),
        (50, 50, 50)
    );
    assert_eq!(conv.version, c.version + 50);
    assert_gap_free(&all_events(&store, t).await);
}

pub async fn client_message_id_stores_one_message(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let mut first = text(&c, Sender::Customer, "pay?", 1);
    first.client_message_id = Some("k-1".into());
    let mut again = text(&c, Sender::Customer, "pay? (retry)", 2);
    again.client_message_id = Some("k-1".into());
    let one = store.append_message(first).await.unwrap();
    let before = head(&store, t).await;
    let two = store.append_message(again).await.unwrap();
    assert!(one.created && !two.created);
    assert_eq!(two.message, one.message);
    assert!(two.event.is_none(), "a repeat writes nothing");
    assert_eq!(head(&store, t).await, before, "a repeat logs nothing");
    assert_eq!(two.conversation, one.conversation);
    // The key is scoped to the sender: an agent may use the same key.
    let mut agents = text(&c, Sender::Agent(a.id), "yes", 3);
    agents.client_message_id = Some("k-1".into());
    assert!(store.append_message(agents).await.unwrap().created);
    // And to the conversation.
    let other = conversation(&store, t, k.id, |_| {}).await;
    let mut elsewhere = text(&other, Sender::Customer, "pay?", 4);
    elsewhere.client_message_id = Some("k-1".into());
    assert!(store.append_message(elsewhere).await.unwrap().created);
    assert_eq!(
        store
            .messages(&MessageQuery::latest(t, c.id, 10))
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn concurrent_posts_with_one_client_message_id_store_one_message(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let mut m = text(&c, Sender::Customer, "double click", i);
        m.client_message_id = Some("same".into());
        tasks.push(tokio::spawn(async move {
            store.append_message(m).await.unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let appended = task.await.unwrap();
        created += usize::from(appended.created);
        ids.insert(appended.message.id);
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1, "every caller gets the one stored message");
    assert_eq!(
        store
            .messages(&MessageQuery::latest(t, c.id, 10))
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn update_conversation_is_compare_and_swap(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let mut next = c.clone();
    next.priority = Priority::Urgent;
    next.tags = vec!["refund".into(), "vip".into()];
    next.pinned = true;
    next.title = Some("Late order".into());
    next.department = Some("billing".into());
    next.updated_at = at(10);
    let committed = store
        .update_conversation(ConversationUpdate {
            conversation: next.clone(),
            change: ConversationChange::Details,
            message: None,
        })
        .await
        .unwrap();
    assert_eq!(committed.conversation.version, c.version + 1);
    assert_eq!(committed.conversation.tags, ["refund", "vip"]);
    assert_eq!(
        store.conversation(t, c.id).await.unwrap().unwrap(),
        committed.conversation
    );
    let stored = Conversation {
        version: c.version + 1,
        ..next.clone()
    };
    assert_eq!(committed.conversation, stored);
    assert_logged(
        &store,
        t,
        1,
        &committed.events,
        vec![public(
            c.id,
            at(10),
            EventPayload::ConversationUpdated {
                conversation: Box::new(stored),
                change: ConversationChange::Details,
            },
        )],
    )
    .await;
    // Writing from the old version again loses, and logs nothing.
    let stale = ConversationUpdate {
        conversation: next,
        change: ConversationChange::Details,
        message: None,
    };
    // The loser learns it lost a race, and to which version.
    let race = store.update_conversation(stale).await.unwrap_err();
    let Error::Conflict(race) = race else {
        panic!("a version race, got {race:?}")
    };
    assert_eq!(race.kind(), crate::ConflictKind::VersionRace);
    assert_eq!(race.current_version(), Some(committed.conversation.version));
    assert_eq!(head(&store, t).await, 2);
    // A message bumps the version too, so an update read before it loses.
    let before = store.conversation(t, c.id).await.unwrap().unwrap();
    store
        .append_message(text(&c, Sender::Customer, "hello?", 11))
        .await
        .unwrap();
    let mut late = before;
    late.pinned = false;
    let late = ConversationUpdate {
        conversation: late,
        change: ConversationChange::Details,
        message: None,
    };
    assert!(matches!(
        store.update_conversation(late).await,
        Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::VersionRace
    ));
    let mut missing = c.clone();
    missing.id = ConversationId(id());
    let missing = ConversationUpdate {
        conversation: missing,
        change: ConversationChange::Details,
        message: None,
    };
    assert!(matches!(
        store.update_conversation(missing).await,
        Err(Error::NotFound(_))
    ));
}

pub async fn two_claims_from_one_version_exactly_one_wins(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let b = agent(&store, t, "Bob", Role::Agent, &[]).await;
    for round in 0..10 {
        let c = conversation(&store, t, k.id, |c| {
            c.mode = Mode::Queued;
            c.queued_at = Some(at(round));
        })
        .await;
        let claim = |who: AgentId| {
            let store = store.clone();
            let mut next = c.clone();
            next.mode = Mode::Agent;
            next.assigned_agent_id = Some(who);
            tokio::spawn(async move {
                store
                    .update_conversation(ConversationUpdate {
                        conversation: next,
                        change: ConversationChange::Assigned {
                            from: None,
                            to: Some(who),
                        },
                        message: None,
                    })
                    .await
            })
        };
        let (x, y) = (claim(a.id), claim(b.id));
        let results = [x.await.unwrap(), y.await.unwrap()];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "exactly one claim wins");
        assert!(results.iter().any(|r| matches!(r, Err(Error::Conflict(_)))));
        let stored = store.conversation(t, c.id).await.unwrap().unwrap();
        let winner = results.iter().find_map(|r| r.as_ref().ok()).unwrap();
        assert_eq!(
            stored.assigned_agent_id,
            winner.conversation.assigned_agent_id
        );
    }
    assert_gap_free(&all_events(&store, t).await);
}

pub async fn assignments_within_capacity_never_overfill_an_agent(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    // Ann holds one conversation in `agent` mode and one `paused`; a closed one is free.
    for mode in [Mode::Agent, Mode::Paused, Mode::Closed] {
        conversation(&store, t, k.id, |c| {
            c.mode = mode;
            c.assigned_agent_id = Some(a.id);
        })
        .await;
    }
    let mut queued = Vec::new();
    for round in 0..8 {
        queued.push(
            conversation(&store, t, k.id, |c| {
                c.mode = Mode::Queued;
                c.queued_at = Some(at(round));
            })
            .await,
        );
    }
    let assign = |c: &Conversation, capacity: u32| {
        let store = store.clone();
        let mut next = c.clone();
        next.mode = Mode::Agent;
        next.assigned_agent_id = Some(a.id);
        next.queued_at = None;
        tokio::spawn(async move {
            store
                .assign_within_capacity(
                    ConversationUpdate {
                        conversation: next,
                        change: ConversationChange::Assigned {
                            from: None,
                            to: Some(a.id),
                        },
                        message: None,
                    },
                    capacity,
                )
                .await
        })
    };
    let full = assign(&queued[0], 2).await.unwrap();
    assert!(
        matches!(&full, Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::State),
        "two held, capacity two: {full:?}"
    );
    let unchanged = store.conversation(t, queued[0].id).await.unwrap().unwrap();
    assert_eq!(unchanged, queued[0], "a refused assignment writes nothing");
    // Eight passes at once (on several servers, for a shared store), each sure Ann has
    // room: exactly the two free places are taken.
    let passes: Vec<_> = queued.iter().map(|c| assign(c, 4)).collect();
    let mut won = 0;
    for pass in passes {
        match pass.await.unwrap() {
            Ok(_) => won += 1,
            Err(Error::Conflict(c)) => assert_eq!(c.kind(), crate::ConflictKind::State),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(won, 2, "capacity four, two held");
    let loads = store.agent_loads(t).await.unwrap();
    assert_eq!(loads.iter().find(|l| l.agent.id == a.id).unwrap().open, 4);
    assert_gap_free(&all_events(&store, t).await);
}

pub async fn update_conversation_appends_system_message_after_the_update_event(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let c = conversation(&store, t, k.id, |c| c.mode = Mode::Queued).await;
    let mut next = c.clone();
    next.mode = Mode::Agent;
    next.assigned_agent_id = Some(a.id);
    next.updated_at = at(3);
    let mut note = message(&c, Sender::System, MessageKind::Event, "Assigned to Ann", 3);
    let notice = crate::model::Notice::Assigned { name: "Ann".into() }.metadata();
    note.metadata = notice.clone();
    note.metadata.insert("origin".into(), "router".into());
    let assigned = ConversationChange::Assigned {
        from: None,
        to: Some(a.id),
    };
    let before = head(&store, t).await;
    let committed = store
        .update_conversation(ConversationUpdate {
            conversation: next.clone(),
            change: assigned.clone(),
            message: Some(note.clone()),
        })
        .await
        .unwrap();
    let posted = note.into_message(1);
    assert_eq!(committed.messages, std::slice::from_ref(&posted));
    // The update event shows the conversation as the update left it, before the message.
    let updated = Conversation {
        version: c.version + 1,
        ..next
    };
    assert_logged(
        &store,
        t,
        before,
        &committed.events,
        vec![
            public(
                c.id,
                at(3),
                EventPayload::ConversationUpdated {
                    conversation: Box::new(updated),
                    change: assigned,
                },
            ),
            public(c.id, at(3), message_created(&posted)),
        ],
    )
    .await;
    assert_eq!(committed.conversation.last_seq, 1);
    assert_eq!(
        committed.conversation.version,
        c.version + 2,
        "one for the update, one for the message"
    );
    let stored = store.conversation(t, c.id).await.unwrap().unwrap();
    assert_eq!(stored, committed.conversation);
    // The inbox preview keeps the notice's metadata, and only it, so a client can write
    // it in its reader's language; a posted notice (the message path) does the same, and
    // a customer's message after it leaves none.
    assert_eq!(stored.last_message.as_ref().unwrap().metadata, notice);
    let mut closing = message(
        &c,
        Sender::System,
        MessageKind::Event,
        "Conversation closed",
        4,
    );
    closing.metadata = crate::model::Notice::Closed.metadata();
    store.append_message(closing).await.unwrap();
    let stored = store.conversation(t, c.id).await.unwrap().unwrap();
    assert_eq!(
        stored.last_message.as_ref().unwrap().metadata,
        crate::model::Notice::Closed.metadata()
    );
    store
        .append_message(text(&c, Sender::Customer, "thanks", 5))
        .await
        .unwrap();
    let stored = store.conversation(t, c.id).await.unwrap().unwrap();
    assert!(stored.last_message.as_ref().unwrap().metadata.is_empty());
}

pub async fn edit_and_soft_delete_keep_sequence_and_emit_events(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let mut m = store
        .append_message(text(&c, Sender::Customer, "teh order", 1))
        .await
        .unwrap()
        .message;
    m.revisions.push(Revision {
        body: m.body.clone(),
        replaced_at: at(2),
    });
    m.body = "the order".into();
    m.edited_at = Some(at(2));
    // What the store keeps of an edit: never the id, conversation, sequence, sender or kind.
    let mut forged = m.clone();
    forged.seq = 9;
    forged.sender = Sender::Bot;
    forged.kind = MessageKind::Note;
    let event = store.update_message(&forged).await.unwrap();
    assert_logged(
        &store,
        t,
        2,
        &[event],
        vec![public(c.id, at(2), message_updated(&m))],
    )
    .await;
    assert_eq!(store.message(t, m.id).await.unwrap(), Some(m.clone()));
    m.body.clear();
    m.revisions.clear();
    m.deleted_at = Some(at(3));
    let event = store.update_message(&m).await.unwrap();
    // A deletion happened when it was deleted, not at the earlier edit.
    assert_logged(
        &store,
        t,
        3,
        &[event],
        vec![public(c.id, at(3), message_updated(&m))],
    )
    .await;
    let stored = store.message(t, m.id).await.unwrap().unwrap();
    assert_eq!(stored, m);
    assert_eq!(
        store
            .messages(&MessageQuery::latest(t, c.id, 10))
            .await
            .unwrap(),
        vec![stored]
    );
    let mut ghost = m.clone();
    ghost.id = MessageId(id());
    assert!(matches!(
        store.update_message(&ghost).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(head(&store, t).await, 4, "a refused edit logs nothing");
    // Edits of a note stay staff-only.
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let mut note = store
        .append_message(message(
            &c,
            Sender::Agent(a.id),
            MessageKind::Note,
            "call back",
            4,
        ))
        .await
        .unwrap()
        .message;
    note.revisions.push(Revision {
        body: note.body.clone(),
        replaced_at: at(5),
    });
    note.body = "call back at 5".into();
    note.edited_at = Some(at(5));
    let event = store.update_message(&note).await.unwrap();
    assert_logged(
        &store,
        t,
        6,
        &[event],
        vec![staff_only(Some(c.id), at(5), message_updated(&note))],
    )
    .await;
}

fn message_updated(message: &Message) -> EventPayload {
    EventPayload::MessageUpdated {
        message: Box::new(message.clone()),
    }
}

pub async fn message_windows_before_after_and_notes(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    for i in 1..=10 {
        let m = if i % 5 == 0 {
            message(&c, Sender::Agent(a.id), MessageKind::Note, "note", i)
        } else {
            text(&c, Sender::Customer, &format!("m{i}"), i)
        };
        store.append_message(m).await.unwrap();
    }
    let seqs = |ms: Vec<Message>| ms.into_iter().map(|m| m.seq).collect::<Vec<_>>();
    let q = MessageQuery::latest(t, c.id, 3);
    assert_eq!(seqs(store.messages(&q).await.unwrap()), [8, 9, 10]);
    let before = MessageQuery {
        before: Some(8),
        ..q.clone()
    };
    assert_eq!(seqs(store.messages(&before).await.unwrap()), [5, 6, 7]);
    let after = MessageQuery {
        after: Some(2),
        ..q.clone()
    };
    assert_eq!(seqs(store.messages(&after).await.unwrap()), [3, 4, 5]);
    let both = MessageQuery {
        after: Some(2),
        before: Some(5),
        limit: 10,
        ..q.clone()
    };
    assert_eq!(seqs(store.messages(&both).await.unwrap()), [3, 4]);
    let customer = MessageQuery {
        include_notes: false,
        limit: 4,
        ..q.clone()
    };
    assert_eq!(seqs(store.messages(&customer).await.unwrap()), [6, 7, 8, 9]);
    let past_end = MessageQuery {
        after: Some(10),
        ..q.clone()
    };
    assert!(store.messages(&past_end).await.unwrap().is_empty());
    let missing = MessageQuery {
        conversation: ConversationId(id()),
        ..q
    };
    assert!(matches!(
        store.messages(&missing).await,
        Err(Error::NotFound(_))
    ));
}

pub async fn read_cursor_moves_forward_only_and_recomputes_unread(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    for i in 1..=3 {
        store
            .append_message(text(&c, Sender::Customer, "?", i))
            .await
            .unwrap();
    }
    store
        .append_message(text(&c, Sender::Agent(a.id), "!", 4))
        .await
        .unwrap();
    store
        .append_message(text(&c, Sender::Customer, "?", 5))
        .await
        .unwrap();
    let cursor = |reader, seq, secs| ReadCursor {
        tenant_id: t,
        conversation_id: c.id,
        reader,
        seq,
        updated_at: at(secs),
    };
    let before = head(&store, t).await;
    let (conv, event) = store
        .set_read_cursor(&cursor(Reader::Agent(a.id), 2, 6))
        .await
        .unwrap();
    assert_eq!(conv.agent_read_seq, 2);
    assert_eq!(conv.unread_for_agent, 2, "messages 3 and 5 are unread");
    assert_eq!(conv.version, c.version + 6, "five messages and the cursor");
    let read_updated = |cursor| EventPayload::ReadUpdated { cursor };
    assert_logged(
        &store,
        t,
        before,
        &[event.expect("a moved cursor is logged")],
        vec![public(
            c.id,
            at(6),
            read_updated(cursor(Reader::Agent(a.id), 2, 6)),
        )],
    )
    .await;
    let (same, none) = store
        .set_read_cursor(&cursor(Reader::Agent(a.id), 1, 7))
        .await
        .unwrap();
    assert!(none.is_none(), "a cursor never moves back");
    assert_eq!(same, conv, "and then changes nothing");
    assert_eq!(head(&store, t).await, before + 1, "nor logs anything");
    // Past the end is clamped to the last message, in the event too.
    let (conv, event) = store
        .set_read_cursor(&cursor(Reader::Customer, 99, 8))
        .await
        .unwrap();
    assert_logged(
        &store,
        t,
        before + 1,
        &[event.expect("a moved cursor is logged")],
        vec![public(
            c.id,
            at(8),
            read_updated(cursor(Reader::Customer, 5, 8)),
        )],
    )
    .await;
    assert_eq!(conv.customer_read_seq, 5);
    assert_eq!(conv.unread_for_customer, 0);
    assert_eq!(conv.unread_for_agent, 2);
    assert_eq!(store.conversation(t, c.id).await.unwrap().unwrap(), conv);
    let cursors = store.read_cursors(t, c.id).await.unwrap();
    assert_eq!(cursors.len(), 2);
    assert!(cursors.contains(&cursor(Reader::Customer, 5, 8)));
}

pub async fn events_since_replays_the_tenant_log_in_order(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let k2 = contact(&store, other, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let c2 = conversation(&store, other, k2.id, |_| {}).await;
    for i in 1..=5 {
        store
            .append_message(text(&c, Sender::Customer, "x", i))
            .await
            .unwrap();
        store
            .append_message(text(&c2, Sender::Customer, "y", i))
            .await
            .unwrap();
    }
    let events = all_events(&store, t).await;
    assert_eq!(events.len(), 6);
    assert_gap_free(&events);
    assert!(
        events
            .iter()
            .all(|e| e.tenant_id == t && e.conversation_id == Some(c.id))
    );
    let tail = store.events_since(t, 3, 2).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(tail, events[3..5]);
    assert!(store.events_since(t, 6, 10).await.unwrap().is_empty());
    assert_gap_free(&all_events(&store, other).await);
}

pub async fn list_filters_combine_and_counts_ignore_mode_filter(store: S) {
    let t = tenant(&store).await;
    let jo = contact(&store, t, Some("jo@shop.example")).await;
    let max = contact(&store, t, Some("max@shop.example")).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let bot = conversation(&store, t, jo.id, |c| c.channel = Channel::Whatsapp).await;
    let urgent = conversation(&store, t, jo.id, |c| {
        c.mode = Mode::Queued;
        c.priority = Priority::Urgent;
        c.department = Some("billing".into());
        c.tags = vec!["refund".into()];
        c.updated_at = at(1);
    })
    .await;
    let mine = conversation(&store, t, max.id, |c| {
        c.mode = Mode::Agent;
        c.assigned_agent_id = Some(a.id);
        c.pinned = true;
        c.title = Some("Broken zipper".into());
        c.updated_at = at(2);
    })
    .await;
    let ids = |p: ConversationPage| p.items.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let q = ConversationQuery::new(t, Scope::Tenant);
    let page = store.list_conversations(&q).await.unwrap();
    assert_eq!(
        ids(page.clone()),
        [mine.id, urgent.id, bot.id],
        "newest activity first"
    );
    assert_eq!(
        page.counts,
        BTreeMap::from([(Mode::Bot, 1), (Mode::Queued, 1), (Mode::Agent, 1)])
    );
    let queued = ConversationQuery {
        modes: vec![Mode::Queued],
        ..q.clone()
    };
    let page = store.list_conversations(&queued).await.unwrap();
    assert_eq!(ids(page.clone()), [urgent.id]);
    assert_eq!(
        page.counts.values().sum::<u64>(),
        3,
        "counts ignore the mode filter"
    );
    let check = |query: ConversationQuery, expected: Vec<ConversationId>| {
        let store = store.clone();
        async move {
            assert_eq!(
                ids(store.list_conversations(&query).await.unwrap()),
                expected,
                "{query:?}"
            )
        }
    };
    check(
        ConversationQuery {
            priority: Some(Priority::Urgent),
            ..q.clone()
        },
        vec![urgent.id],
    )
    .await;
    check(
        ConversationQuery {
            department: Some("billing".into()),
            ..q.clone()
        },
        vec![urgent.id],
    )
    .await;
    check(
        ConversationQuery {
            assigned: Some(AssignedFilter::Agent(a.id)),
            ..q.clone()
        },
        vec![mine.id],
    )
    .await;
    check(
        ConversationQuery {
            assigned: Some(AssignedFilter::Unassigned),
            ..q.clone()
        },
        vec![urgent.id, bot.id],
    )
    .await;
    check(
        ConversationQuery {
            tag: Some("refund".into()),
            ..q.clone()
        },
        vec![urgent.id],
    )
    .await;
    check(
        ConversationQuery {
            channel: Some(Channel::Whatsapp),
            ..q.clone()
        },
        vec![bot.id],
    )
    .await;
    check(
        ConversationQuery {
            contact_email: Some("JO@shop.example".into()),
            ..q.clone()
        },
        vec![urgent.id, bot.id],
    )
    .await;
    check(
        ConversationQuery {
            pinned: Some(true),
            ..q.clone()
        },
        vec![mine.id],
    )
    .await;
    check(
        ConversationQuery {
            text: Some("zipper".into()),
            ..q.clone()
        },
        vec![mine.id],
    )
    .await;
    check(
        ConversationQuery {
            text: Some("MAX@shop".into()),
            ..q.clone()
        },
        vec![mine.id],
    )
    .await;
    check(
        ConversationQuery {
            text: Some("nothing like this".into()),
            ..q.clone()
        },
        vec![],
    )
    .await;
    let combined = ConversationQuery {
        contact_email: Some("jo@shop.example".into()),
        modes: vec![Mode::Bot],
        ..q.clone()
    };
    let page = store.list_conversations(&combined).await.unwrap();
    assert_eq!(ids(page.clone()), [bot.id]);
    assert_eq!(
        page.counts,
        BTreeMap::from([(Mode::Bot, 1), (Mode::Queued, 1)])
    );
}

pub async fn counts_follow_mode_department_assignment_tag_changes_and_deletes(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let b = agent(&store, t, "Bo", Role::Agent, &[]).await;
    // The counts of every list a store may keep them for, against the rows it lists.
    let check = |when: &'static str| {
        let store = store.clone();
        let lists = [
            ConversationQuery::new(t, Scope::Tenant),
            ConversationQuery {
                department: Some("billing".into()),
                ..ConversationQuery::new(t, Scope::Tenant)
            },
            ConversationQuery {
                department: Some("sales".into()),
                ..ConversationQuery::new(t, Scope::Tenant)
            },
            ConversationQuery {
                assigned: Some(AssignedFilter::Agent(a.id)),
                ..ConversationQuery::new(t, Scope::Tenant)
            },
            ConversationQuery {
                assigned: Some(AssignedFilter::Agent(b.id)),
                ..ConversationQuery::new(t, Scope::Tenant)
            },
            ConversationQuery {
                tag: Some("refund".into()),
                ..ConversationQuery::new(t, Scope::Tenant)
            },
            ConversationQuery {
                tag: Some("vip".into()),
                ..ConversationQuery::new(t, Scope::Tenant)
            },
            ConversationQuery {
                modes: vec![Mode::Queued],
                limit: 1,
                ..ConversationQuery::new(t, Scope::Tenant)
            },
        ];
        async move {
            for q in lists {
                let page = store.list_conversations(&q).await.unwrap();
                let all = store
                    .list_conversations(&ConversationQuery {
                        modes: Vec::new(),
                        limit: 1000,
                        ..q.clone()
                    })
                    .await
                    .unwrap();
                let mut expected = BTreeMap::new();
                for c in &all.items {
                    *expected.entry(c.mode).or_insert(0u64) += 1;
                }
                assert_eq!(page.counts, expected, "{when}: {q:?}");
            }
        }
    };
    check("empty").await;
    let first = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Queued;
        c.department = Some("billing".into());
        c.tags = vec!["refund".into(), "vip".into()];
    })
    .await;
    let second = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Agent;
        c.assigned_agent_id = Some(a.id);
        c.tags = vec!["refund".into()];
    })
    .await;
    let kb = contact(&store, other, None).await;
    conversation(&store, other, kb.id, |c| {
        c.mode = Mode::Queued;
        c.department = Some("billing".into());
        c.tags = vec!["refund".into()];
    })
    .await;
    check("created").await;
    let first = updated(&store, first, |c| {
        c.mode = Mode::Agent;
        c.assigned_agent_id = Some(b.id);
    })
    .await;
    check("claimed").await;
    let first = updated(&store, first, |c| {
        c.department = Some("sales".into());
        c.tags = vec!["vip".into()];
    })
    .await;
    check("moved and retagged").await;
    let second = updated(&store, second, |c| c.mode = Mode::Closed).await;
    check("closed").await;
    store
        .append_message(text(&second, Sender::Customer, "hello again", 9))
        .await
        .unwrap();
    check("posted").await;
    store
        .delete_conversation(t, first.id, at(20))
        .await
        .unwrap();
    check("deleted").await;
}

/// `c` after a details update that `edit` makes.
async fn updated(store: &S, c: Conversation, edit: impl FnOnce(&mut Conversation)) -> Conversation {
    let mut next = c.clone();
    edit(&mut next);
    store
        .update_conversation(ConversationUpdate {
            conversation: next,
            change: ConversationChange::Details,
            message: None,
        })
        .await
        .unwrap()
        .conversation
}

pub async fn list_pagination_visits_every_item_once(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let mut expected = Vec::new();
    for i in 0..7 {
        // Two conversations share each timestamp so the id breaks the tie.
        expected.push(
            conversation(&store, t, k.id, |c| c.updated_at = at(i / 2))
                .await
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut q = ConversationQuery::new(t, Scope::Tenant);
    q.limit = 3;
    let mut pages = 0;
    loop {
        let page = store.list_conversations(&q).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|c| c.id));
        match page.next_cursor {
            Some(cursor) => q.cursor = Some(ConversationCursor::decode(&cursor.encode()).unwrap()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 7, "no item twice, none missing");
    let all = store.conversation(t, seen[0]).await.unwrap().unwrap();
    assert_eq!(all.updated_at, at(3), "newest first");
}

pub async fn agent_scope_sees_own_participating_and_department_queue(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let ann = agent(&store, t, "Ann", Role::Agent, &["billing"]).await;
    let bob = agent(&store, t, "Bob", Role::Agent, &["sales"]).await;
    let assigned = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Agent;
        c.assigned_agent_id = Some(ann.id);
    })
    .await;
    let invited = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Agent;
        c.assigned_agent_id = Some(bob.id);
        c.participants = vec![ann.id];
        c.updated_at = at(1);
    })
    .await;
    let billing_queue = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Queued;
        c.department = Some("billing".into());
        c.updated_at = at(2);
    })
    .await;
    let general_queue = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Queued;
        c.updated_at = at(3);
    })
    .await;
    let sales_queue = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Queued;
        c.department = Some("sales".into());
    })
    .await;
    let bots = conversation(&store, t, k.id, |_| {}).await;
    let bobs = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Paused;
        c.assigned_agent_id = Some(bob.id);
    })
    .await;
    let scope = Scope::Agent {
        agent: ann.id,
        departments: ann.departments.clone(),
    };
    let page = store
        .list_conversations(&ConversationQuery::new(t, scope.clone()))
        .await
        .unwrap();
    let mut seen: Vec<ConversationId> = page.items.iter().map(|c| c.id).collect();
    seen.sort();
    let mut expected = vec![assigned.id, invited.id, billing_queue.id, general_queue.id];
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(page.counts.values().sum::<u64>(), 4);
    for c in [&sales_queue, &bots, &bobs] {
        assert!(!scope.contains(c));
    }
}

pub async fn contact_scope_sees_only_its_conversations(store: S) {
    let t = tenant(&store).await;
    let jo = contact(&store, t, Some("jo@x.example")).await;
    let max = contact(&store, t, Some("max@x.example")).await;
    let first = conversation(&store, t, jo.id, |_| {}).await;
    let second = conversation(&store, t, jo.id, |c| c.updated_at = at(1)).await;
    conversation(&store, t, max.id, |_| {}).await;
    let all_of_jo = Scope::Contact {
        contact: jo.id,
        conversation: None,
    };
    let page = store
        .list_conversations(&ConversationQuery::new(t, all_of_jo))
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        [second.id, first.id]
    );
    let one = Scope::Contact {
        contact: jo.id,
        conversation: Some(first.id),
    };
    let page = store
        .list_conversations(&ConversationQuery::new(t, one))
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        [first.id]
    );
    // Another contact's conversation id in the scope grants nothing.
    let forged = Scope::Contact {
        contact: max.id,
        conversation: Some(first.id),
    };
    assert!(
        store
            .list_conversations(&ConversationQuery::new(t, forged))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn text_search_follows_edits_deletes_and_hides_notes_from_customers(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let mut m = store
        .append_message(text(&c, Sender::Customer, "my parcel never arrived", 1))
        .await
        .unwrap()
        .message;
    store
        .append_message(message(
            &c,
            Sender::Agent(a.id),
            MessageKind::Note,
            "suspect courier fraud",
            2,
        ))
        .await
        .unwrap();
    let search = |scope: Scope, words: &str| {
        let store = store.clone();
        let q = ConversationQuery {
            text: Some(words.into()),
            ..ConversationQuery::new(t, scope)
        };
        async move { store.list_conversations(&q).await.unwrap().items.len() }
    };
    let customer = Scope::Contact {
        contact: k.id,
        conversation: None,
    };
    assert_eq!(search(Scope::Tenant, "parcel").await, 1);
    assert_eq!(search(Scope::Tenant, "PARCEL").await, 1, "case-insensitive");
    assert_eq!(
        search(Scope::Tenant, "fraud").await,
        1,
        "staff search notes"
    );
    assert_eq!(
        search(customer.clone(), "fraud").await,
        0,
        "customers never match notes"
    );
    assert_eq!(search(customer, "parcel").await, 1);
    m.revisions.push(Revision {
        body: m.body.clone(),
        replaced_at: at(3),
    });
    m.body = "my package never arrived".into();
    m.edited_at = Some(at(3));
    store.update_message(&m).await.unwrap();
    assert_eq!(
        search(Scope::Tenant, "parcel").await,
        0,
        "search follows edits"
    );
    assert_eq!(search(Scope::Tenant, "package").await, 1);
    m.body.clear();
    m.revisions.clear();
    m.deleted_at = Some(at(4));
    store.update_message(&m).await.unwrap();
    assert_eq!(
        search(Scope::Tenant, "package").await,
        0,
        "deleted messages do not match"
    );
}

pub async fn message_hits_are_the_newest_matches_of_each_conversation_notes_only_when_asked(
    store: S,
) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let a = agent(&store, t, "Ann", Role::Agent, &[]).await;
    let first = conversation(&store, t, k.id, |_| {}).await;
    let second = conversation(&store, t, k.id, |_| {}).await;
    let quiet = conversation(&store, t, k.id, |_| {}).await;
    let k2 = contact(&store, other, None).await;
    let foreign = conversation(&store, other, k2.id, |_| {}).await;
    let post = |c: &Conversation, sender: Sender, kind: MessageKind, body: &str, secs: i64| {
        let store = store.clone();
        let m = message(c, sender, kind, body, secs);
        async move { store.append_message(m).await.unwrap().message }
    };
    let old = post(
        &first,
        Sender::Customer,
        MessageKind::Text,
        "my kettle leaks",
        1,
    )
    .await;
    post(
        &first,
        Sender::Customer,
        MessageKind::Text,
        "nothing here",
        2,
    )
    .await;
    let note = post(
        &first,
        Sender::Agent(a.id),
        MessageKind::Note,
        "kettle recall list",
        3,
    )
    .await;
    let newer = post(
        &first,
        Sender::Customer,
        MessageKind::Text,
        "Kettles again?",
        4,
    )
    .await;
    let mut gone = post(
        &first,
        Sender::Customer,
        MessageKind::Text,
        "kettle kettle",
        5,
    )
    .await;
    gone.deleted_at = Some(at(6));
    gone.body.clear();
    store.update_message(&gone).await.unwrap();
    let theirs = post(
        &second,
        Sender::Customer,
        MessageKind::Text,
        "a \"KETTLE\" order",
        7,
    )
    .await;
    post(&quiet, Sender::Customer, MessageKind::Text, "a teapot", 8).await;
    post(&foreign, Sender::Customer, MessageKind::Text, "kettle", 9).await;

    let hits = |notes: bool, per_conversation: usize, text: &str| {
        let store = store.clone();
        let query = HitQuery {
            tenant: t,
            conversations: vec![first.id, second.id, quiet.id, foreign.id],
            text: text.into(),
            notes,
            per_conversation,
        };
        async move {
            let mut found: Vec<(ConversationId, MessageId)> = store
                .message_hits(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|m| (m.conversation_id, m.id))
                .collect();
            // Conversations come in any order; within one, newest first.
            found.sort_by_key(|(c, _)| *c);
            found
        }
    };
    let mut staff = vec![
        (first.id, newer.id),
        (first.id, note.id),
        (first.id, old.id),
        (second.id, theirs.id),
    ];
    staff.sort_by_key(|(c, _)| *c);
    assert_eq!(
        hits(true, 10, "kett").await,
        staff,
        "staff: notes included, deleted never"
    );
    let mut customer = vec![
        (first.id, newer.id),
        (first.id, old.id),
        (second.id, theirs.id),
    ];
    customer.sort_by_key(|(c, _)| *c);
    assert_eq!(
        hits(false, 10, "KETTLE").await,
        customer,
        "no note without `notes`"
    );
    let mut newest = vec![(first.id, newer.id), (second.id, theirs.id)];
    newest.sort_by_key(|(c, _)| *c);
    assert_eq!(
        hits(true, 1, "kettle").await,
        newest,
        "at most per_conversation each"
    );
    assert_eq!(
        hits(true, 10, "\"kettle leaks\"").await,
        vec![(first.id, old.id)],
        "phrases as the list's text filter"
    );
    assert!(
        hits(true, 10, "ettle").await.is_empty(),
        "words, not inner substrings"
    );
    assert!(hits(true, 10, "?!").await.is_empty(), "no word, no hit");
}

pub async fn list_filters_by_last_activity_range(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let mut ids = Vec::new();
    for secs in [10, 20, 30] {
        let c = conversation(&store, t, k.id, |c| {
            c.created_at = at(secs);
            c.updated_at = at(secs);
        })
        .await;
        ids.push(c.id);
    }
    let list = |from: Option<i64>, to: Option<i64>| {
        let store = store.clone();
        let q = ConversationQuery {
            updated_from: from.map(at),
            updated_to: to.map(at),
            ..ConversationQuery::new(t, Scope::Tenant)
        };
        async move {
            let page = store.list_conversations(&q).await.unwrap();
            let total: u64 = page.counts.values().sum();
            let items: Vec<ConversationId> = page.items.iter().map(|c| c.id).collect();
            assert_eq!(total, items.len() as u64, "counts follow the range");
            items
        }
    };
    assert_eq!(
        list(Some(20), None).await,
        vec![ids[2], ids[1]],
        "from is inclusive"
    );
    assert_eq!(
        list(None, Some(30)).await,
        vec![ids[1], ids[0]],
        "to is exclusive"
    );
    assert_eq!(list(Some(15), Some(25)).await, vec![ids[1]]);
    assert!(list(Some(30), Some(30)).await.is_empty());
    assert_eq!(
        list(Some(-200_000_000_000), Some(200_000_000_000))
            .await
            .len(),
        3,
        "far bounds"
    );
}

pub async fn text_search_counts_stop_at_the_cap_and_say_so(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let mut expected = Vec::new();
    // Four agent conversations and two closed ones say "kettle" in a message, a queued one
    // in its title; a bot conversation does not.
    for (n, mode) in [
        Mode::Agent,
        Mode::Agent,
        Mode::Closed,
        Mode::Agent,
        Mode::Closed,
        Mode::Agent,
    ]
    .into_iter()
    .enumerate()
    {
        let c = conversation(&store, t, k.id, |c| {
            c.mode = mode;
            c.updated_at = at(n as i64);
        })
        .await;
        let posted = store
            .append_message(text(&c, Sender::Customer, "My kettle leaks", 10 + n as i64))
            .await
            .unwrap();
        expected.push(posted.conversation.id);
    }
    let titled = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Queued;
        c.title = Some("Kettle".into());
        c.updated_at = at(100);
    })
    .await;
    expected.insert(0, titled.id);
    let other = conversation(&store, t, k.id, |c| c.updated_at = at(200)).await;
    store
        .append_message(text(&other, Sender::Customer, "A toaster", 300))
        .await
        .unwrap();
    // Newest activity first: the messages were posted after the title's conversation.
    let search = |cap: u64, limit: usize| ConversationQuery {
        text: Some("kettle".into()),
        count_cap: cap,
        limit,
        ..ConversationQuery::new(t, Scope::Tenant)
    };
    let all = store.list_conversations(&search(3, 50)).await.unwrap();
    let mut newest_first = expected.clone();
    newest_first.sort_by_key(|id| {
        std::cmp::Reverse(
            all.items
                .iter()
                .find(|c| c.id == *id)
                .map(|c| (c.updated_at, c.id)),
        )
    });
    assert_eq!(
        all.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        newest_first,
        "the page is every match, whatever the cap"
    );
    assert_eq!(
        all.counts,
        BTreeMap::from([(Mode::Agent, 3), (Mode::Closed, 2), (Mode::Queued, 1)]),
        "each mode is counted up to the cap"
    );
    assert!(all.counts_capped, "a count stopped at the cap says so");
    let at_cap = store.list_conversations(&search(4, 50)).await.unwrap();
    assert_eq!(at_cap.counts.get(&Mode::Agent), Some(&4));
    assert!(
        at_cap.counts_capped,
        "a count that reaches the cap may be more"
    );
    let exact = store.list_conversations(&search(5, 50)).await.unwrap();
    assert_eq!(
        exact.counts,
        BTreeMap::from([(Mode::Agent, 4), (Mode::Closed, 2), (Mode::Queued, 1)])
    );
    assert!(!exact.counts_capped, "below the cap the counts are exact");
    // Pages of two walk every match once, each with the same capped counts.
    let mut seen = Vec::new();
    let mut q = search(3, 2);
    loop {
        let page = store.list_conversations(&q).await.unwrap();
        assert_eq!(
            (page.counts.clone(), page.counts_capped),
            (all.counts.clone(), true)
        );
        seen.extend(page.items.iter().map(|c| c.id));
        match page.next_cursor {
            Some(cursor) => q.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    // Without text the counts are exact, whatever the cap.
    let inbox = ConversationQuery {
        count_cap: 1,
        ..ConversationQuery::new(t, Scope::Tenant)
    };
    let page = store.list_conversations(&inbox).await.unwrap();
    assert_eq!(page.counts.get(&Mode::Agent), Some(&4));
    assert!(!page.counts_capped);
}

pub async fn text_search_matches_word_prefixes_and_phrases_not_inner_substrings(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    store
        .append_message(text(
            &c,
            Sender::Customer,
            "Refunds for my late PARCEL, order 12345 from the Café",
            1,
        ))
        .await
        .unwrap();
    let found = |words: &str| {
        let store = store.clone();
        let q = ConversationQuery {
            text: Some(words.into()),
            ..ConversationQuery::new(t, Scope::Tenant)
        };
        async move {
            store
                .list_conversations(&q)
                .await
                .unwrap()
                .counts
                .values()
                .sum::<u64>()
        }
    };
    for words in [
        "refund",
        "REFUNDS",
        "parcel late",
        "ord 123",
        "café",
        "\"late parc\"",
        "refund \"for my\"",
    ] {
        assert_eq!(
            found(words).await,
            1,
            "{words:?} starts words of the message"
        );
    }
    let titled = conversation(&store, t, k.id, |c| {
        c.title = Some("Ärger mit dem KÜHLschrank".into());
    })
    .await;
    for words in ["kühl", "MIT ärg", "\"dem kühlschrank\""] {
        let q = ConversationQuery {
            text: Some(words.into()),
            ..ConversationQuery::new(t, Scope::Tenant)
        };
        let page = store.list_conversations(&q).await.unwrap();
        let found: Vec<ConversationId> = page.items.iter().map(|c| c.id).collect();
        assert_eq!(found, [titled.id], "{words:?} starts words of the title");
    }
    assert_eq!(found("schrank").await, 0, "the inside of a title's word");
    for words in [
        "efund",
        "refundable",
        "2345",
        "\"parcel late\"",
        "parcel kettle",
        "?!",
    ] {
        assert_eq!(found(words).await, 0, "{words:?} is not found");
    }
}

pub async fn queue_orders_by_priority_then_waiting_time(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let queued = |priority: Priority, waited: i64| {
        let store = store.clone();
        async move {
            conversation(&store, t, k.id, |c| {
                c.mode = Mode::Queued;
                c.priority = priority;
                c.queued_at = Some(at(waited));
            })
            .await
            .id
        }
    };
    let low_old = queued(Priority::Low, 0).await;
    let high_new = queued(Priority::High, 50).await;
    let high_old = queued(Priority::High, 10).await;
    let urgent = queued(Priority::Urgent, 99).await;
    let medium = queued(Priority::Medium, 5).await;
    conversation(&store, t, k.id, |c| c.mode = Mode::Agent).await;
    let order: Vec<ConversationId> = store
        .queue(t, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(order, [urgent, high_old, high_new, medium, low_old]);
    assert_eq!(store.queue(t, 2).await.unwrap().len(), 2);
}

pub async fn delete_conversation_removes_messages_and_logs_event(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let m = store
        .append_message(text(&c, Sender::Customer, "forget me", 1))
        .await
        .unwrap()
        .message;
    let cursor = ReadCursor {
        tenant_id: t,
        conversation_id: c.id,
        reader: Reader::Customer,
        seq: 1,
        updated_at: at(1),
    };
    store.set_read_cursor(&cursor).await.unwrap();
    let before = head(&store, t).await;
    let event = store.delete_conversation(t, c.id, at(5)).await.unwrap();
    assert_logged(
        &store,
        t,
        before,
        &[event],
        vec![public(
            c.id,
            at(5),
            EventPayload::ConversationDeleted {
                conversation_id: c.id,
            },
        )],
    )
    .await;
    assert_eq!(store.conversation(t, c.id).await.unwrap(), None);
    assert_eq!(store.message(t, m.id).await.unwrap(), None);
    assert!(
        store
            .list_conversations(&ConversationQuery::new(t, Scope::Tenant))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        store.delete_conversation(t, c.id, at(6)).await,
        Err(Error::NotFound(_))
    ));
    assert_gap_free(&all_events(&store, t).await);
}

pub async fn missing_and_foreign_tenant_rows_are_not_found(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let k = contact(&store, t, Some("k@x.example")).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let m = store
        .append_message(text(&c, Sender::Customer, "hi", 1))
        .await
        .unwrap()
        .message;
    assert_eq!(store.conversation(other, c.id).await.unwrap(), None);
    assert_eq!(store.message(other, m.id).await.unwrap(), None);
    assert_eq!(store.contact(other, k.id).await.unwrap(), None);
    assert_eq!(
        store.verified_contact(other, "k@x.example").await.unwrap(),
        None
    );
    assert!(matches!(
        store.messages(&MessageQuery::latest(other, c.id, 5)).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.read_cursors(other, c.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.delete_conversation(other, c.id, at(2)).await,
        Err(Error::NotFound(_))
    ));
    let mut foreign = text(&c, Sender::Customer, "sneaky", 2);
    foreign.tenant_id = other;
    assert!(matches!(
        store.append_message(foreign).await,
        Err(Error::NotFound(_))
    ));
    let list = store
        .list_conversations(&ConversationQuery::new(other, Scope::Tenant))
        .await
        .unwrap();
    assert!(list.items.is_empty() && list.counts.is_empty());
    assert!(store.queue(other, 10).await.unwrap().is_empty());
}

pub async fn messages_of_another_conversation_are_refused(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let other = conversation(&store, t, k.id, |_| {}).await;
    let fresh = conversation_value(t, k.id, Mode::Bot, 0);
    let before = head(&store, t).await;
    let stray = text(&other, Sender::Customer, "wrong place", 1);
    let refused = store.create_conversation(&fresh, vec![stray]).await;
    assert!(
        matches!(refused, Err(Error::Validation { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.conversation(t, fresh.id).await.unwrap(),
        None,
        "nothing written"
    );
    let misplaced = message(&fresh, Sender::System, MessageKind::Event, "x", 2);
    let update = ConversationUpdate {
        conversation: other.clone(),
        change: ConversationChange::Details,
        message: Some(misplaced),
    };
    assert!(matches!(
        store.update_conversation(update).await,
        Err(Error::Validation { .. })
    ));
    assert_eq!(
        store.conversation(t, other.id).await.unwrap(),
        Some(other),
        "nothing written"
    );
    assert_eq!(head(&store, t).await, before, "nothing logged");
}

pub async fn event_head_is_the_newest_sequence_of_the_tenant(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    assert_eq!(store.event_head(t).await.unwrap(), 0, "an empty log");
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    for i in 1..=3 {
        store
            .append_message(text(&c, Sender::Customer, "x", i))
            .await
            .unwrap();
    }
    let events = all_events(&store, t).await;
    let newest = events.last().expect("the log has events").seq;
    assert_eq!(store.event_head(t).await.unwrap(), newest);
    assert_eq!(newest, events.len() as u64, "the head is the log's length");
    // Another tenant's log neither moves it nor is moved by it.
    assert_eq!(store.event_head(other).await.unwrap(), 0);
    assert_eq!(store.event_head(TenantId(id())).await.unwrap(), 0);
    let k2 = contact(&store, other, None).await;
    conversation(&store, other, k2.id, |_| {}).await;
    assert_eq!(store.event_head(t).await.unwrap(), newest);
    assert!(store.event_head(other).await.unwrap() > 0);
}

/// Every line of an export of `tenant`, taken through a channel of one line so that the
/// store must wait for its reader.
async fn export_lines(store: &S, tenant: TenantId, secrets: bool) -> Vec<String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        lines
    });
    let records = store
        .export_tenant(
            tenant,
            crate::export::ExportOptions {
                secrets,
                ..Default::default()
            },
            tx,
        )
        .await
        .unwrap();
    let lines = reader.await.unwrap();
    assert_eq!(
        records,
        lines.len() as u64 - 2,
        "header and end around the rows"
    );
    lines
}

pub async fn export_streams_one_tenant_between_a_header_and_an_end_line(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let c = conversation(&store, t, k.id, |_| {}).await;
    store
        .append_message(text(&c, Sender::Customer, "only in the exported tenant", 1))
        .await
        .unwrap();
    let k2 = contact(&store, other, None).await;
    let c2 = conversation(&store, other, k2.id, |_| {}).await;
    store
        .append_message(text(&c2, Sender::Customer, "only in the other tenant", 1))
        .await
        .unwrap();

    let lines = export_lines(&store, t, false).await;
    let header: crate::export::ExportHeader = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        (header.kind.as_str(), header.tenant, header.secrets),
        ("header", t, false)
    );
    assert_eq!(header.format, crate::export::EXPORT_FORMAT);
    let end: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(end["kind"], "end");
    assert_eq!(end["records"], lines.len() - 2);
    let rows = &lines[1..lines.len() - 1];
    let mut kinds = std::collections::BTreeSet::new();
    for line in rows {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(row["row"].is_object(), "{line}");
        kinds.insert(row["kind"].as_str().unwrap().to_owned());
    }
    for kind in ["tenants", "contacts", "conversations", "messages", "events"] {
        assert!(kinds.contains(kind), "no {kind} in {kinds:?}");
    }
    let all = lines.join("\n");
    assert!(all.contains("only in the exported tenant"));
    for theirs in [
        "only in the other tenant".to_owned(),
        other.to_string(),
        c2.id.to_string(),
        k2.id.to_string(),
    ] {
        assert!(
            !all.contains(&theirs),
            "another tenant's {theirs} in the export"
        );
    }
    // One state, one order: the same bytes again.
    assert_eq!(export_lines(&store, t, false).await, lines);

    // A reader that hangs up ends the export with an error; it does not wait forever.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let exporting = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .export_tenant(t, crate::export::ExportOptions::default(), tx)
                .await
        })
    };
    assert!(rx.recv().await.is_some());
    drop(rx);
    assert!(exporting.await.unwrap().is_err());
}

fn canned(tenant: TenantId, owner: Option<AgentId>, shortcut: &str, title: &str) -> CannedResponse {
    CannedResponse {
        id: crate::ids::CannedResponseId(id()),
        tenant_id: tenant,
        owner_id: owner,
        shortcut: shortcut.into(),
        title: title.into(),
        body: format!("{title} {{{{contact.name}}}}"),
        created_at: T0,
        updated_at: T0,
    }
}

fn canned_query(tenant: TenantId, agent: Option<AgentId>) -> CannedQuery {
    CannedQuery {
        tenant,
        agent,
        id: None,
        prefix: None,
        limit: 50,
    }
}

pub async fn canned_responses_are_shared_or_personal_with_unique_shortcuts(store: S) {
    let t = tenant(&store).await;
    let other = tenant(&store).await;
    let ann = agent(&store, t, "Ann", Role::Agent, &[]).await.id;
    let bob = agent(&store, t, "Bob", Role::Agent, &[]).await.id;
    let shared = canned(t, None, "hello", "Greeting");
    let anns = canned(t, Some(ann), "hello", "Ann's greeting");
    let bobs = canned(t, Some(bob), "bye", "Farewell");
    for r in [&shared, &anns, &bobs] {
        store.put_canned_response(r).await.unwrap();
    }
    // The same shortcut among the shared ones, or twice for one agent, is a duplicate.
    for dup in [
        canned(t, None, "hello", "x"),
        canned(t, Some(ann), "hello", "y"),
    ] {
        assert!(matches!(
            store.put_canned_response(&dup).await,
            Err(Error::Conflict(c)) if c.kind() == crate::ConflictKind::Duplicate
        ));
    }
    // Another tenant has shortcuts of its own.
    store
        .put_canned_response(&canned(other, None, "hello", "Theirs"))
        .await
        .unwrap();

    let for_ann = store
        .canned_responses(&canned_query(t, Some(ann)))
        .await
        .unwrap();
    let mut expected = vec![anns.clone(), shared.clone()];
    expected.sort_by_key(|r| (r.shortcut.clone(), r.id));
    assert_eq!(for_ann, expected);
    let shared_only = store
        .canned_responses(&canned_query(t, None))
        .await
        .unwrap();
    assert_eq!(shared_only, vec![shared.clone()]);

    // Bob cannot read Ann's by id; Ann can.
    let mut by_id = canned_query(t, Some(bob));
    by_id.id = Some(anns.id);
    assert!(store.canned_responses(&by_id).await.unwrap().is_empty());
    by_id.agent = Some(ann);
    assert_eq!(
        store.canned_responses(&by_id).await.unwrap(),
        vec![anns.clone()]
    );

    // Replacing keeps the id; a shortcut may move to a free one.
    let mut renamed = anns.clone();
    renamed.shortcut = "hi".into();
    renamed.body = "Hi!".into();
    store.put_canned_response(&renamed).await.unwrap();
    assert_eq!(
        store.canned_responses(&by_id).await.unwrap(),
        vec![renamed.clone()]
    );
    // Ann's old shortcut is free again.
    store
        .put_canned_response(&canned(t, Some(ann), "hello", "again"))
        .await
        .unwrap();

    store.delete_canned_response(&renamed, T0).await.unwrap();
    assert!(store.canned_responses(&by_id).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_canned_response(&renamed, T0).await,
        Err(Error::NotFound(_))
    ));
    let mut foreign = shared.clone();
    foreign.tenant_id = other;
    assert!(matches!(
        store.delete_canned_response(&foreign, T0).await,
        Err(Error::NotFound(_))
    ));
}

pub async fn canned_response_changes_log_staff_only_events_addressed_to_the_owner(store: S) {
    let t = tenant(&store).await;
    let ann = agent(&store, t, "Ann", Role::Agent, &[]).await.id;
    let head = store.event_head(t).await.unwrap();
    let shared = canned(t, None, "hello", "Greeting");
    let anns = canned(t, Some(ann), "mine", "Ann's own");
    let created = store.put_canned_response(&shared).await.unwrap();
    let personal = store.put_canned_response(&anns).await.unwrap();
    let mut edited = anns.clone();
    edited.body = "Changed".into();
    let changed = store.put_canned_response(&edited).await.unwrap();
    let at = T0 + time::Duration::seconds(5);
    let deleted = store.delete_canned_response(&edited, at).await.unwrap();
    let logged = store.events_since(t, head, 10).await.unwrap();
    assert_eq!(
        logged,
        vec![
            created.clone(),
            personal.clone(),
            changed.clone(),
            deleted.clone()
        ]
    );
    for event in &logged {
        assert!(event.staff_only);
        assert_eq!(event.conversation_id, None);
    }
    assert!(matches!(&created.payload,
        EventPayload::CannedResponseUpdated { canned_response } if **canned_response == shared));
    assert!(matches!(&changed.payload,
        EventPayload::CannedResponseUpdated { canned_response } if **canned_response == edited));
    assert_eq!(
        deleted.payload,
        EventPayload::CannedResponseDeleted {
            canned_response_id: anns.id,
            owner_id: Some(ann),
        }
    );
    assert_eq!(deleted.at, at);
    // A refused write logs nothing.
    let dup = canned(t, None, "hello", "again");
    assert!(store.put_canned_response(&dup).await.is_err());
    assert!(store.delete_canned_response(&edited, at).await.is_err());
    assert_eq!(store.event_head(t).await.unwrap(), deleted.seq);
}

pub async fn canned_response_prefix_search_covers_shortcut_and_title(store: S) {
    let t = tenant(&store).await;
    let ann = agent(&store, t, "Ann", Role::Agent, &[]).await.id;
    for (shortcut, title) in [
        ("refund", "Refund policy"),
        ("ref-id", "Where is my order"),
        ("shipping", "Delivery times"),
        ("returns", "Refund window"),
    ] {
        store
            .put_canned_response(&canned(t, Some(ann), shortcut, title))
            .await
            .unwrap();
    }
    let find = |prefix: &str, limit: usize| {
        let mut q = canned_query(t, Some(ann));
        q.prefix = Some(prefix.into());
        q.limit = limit;
        let store = store.clone();
        async move {
            store
                .canned_responses(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.shortcut)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(find("ref", 50).await, ["ref-id", "refund", "returns"]);
    assert_eq!(find("REFUND", 50).await, ["refund", "returns"]);
    assert_eq!(find("deli", 50).await, ["shipping"]);
    assert_eq!(find("ref", 2).await, ["ref-id", "refund"]);
    assert!(
        find("policy", 50).await.is_empty(),
        "a prefix, not a substring"
    );
}

pub async fn snoozed_filter_follows_the_stored_snooze(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let snooze = Snooze {
        until: Some(at(3600)),
        by: None,
        at: at(0),
    };
    let asleep = conversation(&store, t, k.id, |c| {
        c.mode = Mode::Agent;
        c.snooze = Some(snooze.clone());
    })
    .await;
    let awake = conversation(&store, t, k.id, |c| c.mode = Mode::Agent).await;
    let page = |snoozed: Option<bool>| {
        let mut q = ConversationQuery::new(t, Scope::Tenant);
        q.snoozed = snoozed;
        let store = store.clone();
        async move {
            let page = store.list_conversations(&q).await.unwrap();
            let ids: Vec<_> = page.items.iter().map(|c| c.id).collect();
            (ids, page.counts.get(&Mode::Agent).copied().unwrap_or(0))
        }
    };
    assert_eq!(page(Some(true)).await, (vec![asleep.id], 1));
    assert_eq!(page(Some(false)).await, (vec![awake.id], 1));
    assert_eq!(page(None).await.1, 2);
    assert_eq!(
        store
            .conversation(t, asleep.id)
            .await
            .unwrap()
            .unwrap()
            .snooze,
        Some(snooze)
    );

    // Waking is an update like any other; the filter follows it.
    let mut woken = asleep.clone();
    woken.snooze = None;
    store
        .update_conversation(ConversationUpdate {
            conversation: woken,
            change: ConversationChange::Unsnoozed {
                reason: WakeReason::Time,
            },
            message: None,
        })
        .await
        .unwrap();
    assert_eq!(page(Some(true)).await.0, Vec::<ConversationId>::new());
    assert_eq!(page(Some(false)).await.1, 2);
}

pub async fn mentions_are_recorded_once_counted_and_read(store: S) {
    let t = tenant(&store).await;
    let k = contact(&store, t, None).await;
    let ann = agent(&store, t, "Ann", Role::Agent, &[]).await.id;
    let bob = agent(&store, t, "Bob", Role::Agent, &[]).await.id;
    let c = conversation(&store, t, k.id, |_| {}).await;
    let head = store.event_head(t).await.unwrap();
    let mention = |agent: AgentId, secs: i64| Mention {
        tenant_id: t,
        agent_id: agent,
        conversation_id: c.id,
        message_id: MessageId(id()),
        by: bob,
        at: at(secs),
        read_at: None,
    };
    let first = mention(ann, 1);
    let second = mention(ann, 2);
    let events = store
        .record_mentions(&[first.clone(), second.clone(), first.clone()])
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "the repeat is skipped");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [head + 1, head + 2]
    );
    assert!(
        events
            .iter()
            .all(|e| e.staff_only && e.conversation_id.is_none())
    );
    assert!(matches!(&events[0].payload, EventPayload::Mentioned { mention } if *mention == first));

    let (items, unread) = store.mentions(t, ann, 10).await.unwrap();
    assert_eq!((items, unread), (vec![second.clone(), first.clone()], 2));
    let (items, unread) = store.mentions(t, ann, 1).await.unwrap();
    assert_eq!(
        (items.len(), unread),
        (1, 2),
        "the count covers every unread mention"
    );
    assert_eq!(store.mentions(t, bob, 10).await.unwrap(), (Vec::new(), 0));

    assert_eq!(store.read_mentions(t, ann, at(5)).await.unwrap(), 2);
    assert_eq!(store.read_mentions(t, ann, at(6)).await.unwrap(), 0);
    let (items, unread) = store.mentions(t, ann, 10).await.unwrap();
    assert_eq!(unread, 0);
    assert!(items.iter().all(|m| m.read_at == Some(at(5))));
    // Read mentions stay listed; a new one is unread again.
    store.record_mentions(&[mention(ann, 7)]).await.unwrap();
    let (items, unread) = store.mentions(t, ann, 10).await.unwrap();
    assert_eq!((items.len(), unread), (3, 1));
}
