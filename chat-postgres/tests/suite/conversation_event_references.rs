//! Conversation events that refer to their conversation's row (schema version 11): the
//! latest `conversation_created` or `conversation_updated` of a conversation keeps only its
//! type, change and activity; the log reads back as each write told it after posts, read
//! moves, updates, a deletion and an erasure, also with two servers writing at once; a
//! database written by schema version 10 keeps its log and is slimmed.

use crate::common;

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}

#[cfg(chat_test_postgres)]
mod with_database {
    use std::sync::Arc;

    use chat_core::store::{ContactErasure, ConversationUpdate};
    use chat_core::testing::{contact, conversation, message, tenant};
    use chat_core::{
        Conversation, ConversationChange, Error, Event, EventPayload, MessageKind, Mode,
        ReadCursor, Reader, Sender, Store, TenantId,
    };
    use time::OffsetDateTime;
    use tokio_postgres::NoTls;
    use tokio_postgres::types::Json;

    use super::common::{self, Schema};

    type S = Arc<dyn Store>;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000 + secs)
    }

    /// A plain connection to the test schema, to look at what the store wrote.
    async fn sql(schema: &Schema) -> tokio_postgres::Client {
        let mut config: tokio_postgres::Config = common::url().parse().expect("url");
        config.options(format!("-c search_path={}", schema.name));
        let (client, connection) = config.connect(NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    }

    async fn all_events(store: &S, tenant: TenantId) -> Vec<Event> {
        store.events_since(tenant, 0, 10_000).await.unwrap()
    }

    /// `(seq, bytes of data)` of every event row that refers to a conversation's row.
    async fn slim_rows(db: &tokio_postgres::Client, tenant: TenantId) -> Vec<(i64, i32)> {
        db.query(
            "SELECT seq, pg_column_size(data) FROM events \
             WHERE tenant_id = $1 AND conversation_row ORDER BY seq",
            &[&tenant.0],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    async fn slim_seqs(db: &tokio_postgres::Client, tenant: TenantId) -> Vec<i64> {
        slim_rows(db, tenant).await.iter().map(|r| r.0).collect()
    }

    async fn update(store: &S, c: &Conversation, edit: impl FnOnce(&mut Conversation)) -> Event {
        let mut next = store
            .conversation(c.tenant_id, c.id)
            .await
            .unwrap()
            .unwrap();
        let from = next.mode;
        edit(&mut next);
        let to = next.mode;
        store
            .update_conversation(ConversationUpdate {
                conversation: next,
                change: ConversationChange::Mode { from, to },
                message: None,
            })
            .await
            .unwrap()
            .events
            .remove(0)
    }

    async fn post(store: &S, c: &Conversation, sender: Sender, body: &str) -> Event {
        store
            .append_message(message(c, sender, MessageKind::Text, body, 1))
            .await
            .unwrap()
            .event
            .unwrap()
    }

    async fn read(store: &S, c: &Conversation, seq: u64) -> Option<Event> {
        store
            .set_read_cursor(&ReadCursor {
                tenant_id: c.tenant_id,
                conversation_id: c.id,
                reader: Reader::Customer,
                seq,
                updated_at: at(seq as i64 + 100),
            })
            .await
            .unwrap()
            .1
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_latest_conversation_event_refers_to_its_row_and_reads_back_as_logged() {
        let schema = Schema::create().await;
        let store: S = Arc::new(schema.store().await);
        let db = sql(&schema).await;
        let t = tenant(&store).await;
        let k = contact(&store, t, None).await;
        let c = conversation(&store, t, k.id, |c| c.title = Some("Kettle".into())).await;
        // Opened with its first messages: stored with them counted, logged before them.
        let opening = chat_core::testing::conversation_value(t, k.id, Mode::Bot, 0);
        let opened = store
            .create_conversation(
                &opening,
                vec![
                    message(&opening, Sender::Bot, MessageKind::Text, "Welcome!", 1),
                    message(&opening, Sender::Customer, MessageKind::Text, "it leaks", 2),
                ],
            )
            .await
            .unwrap();
        let mut told = all_events(&store, t).await;
        assert_eq!(told[1..], opened.events[..]);
        let created = told[0].seq as i64;
        let opened_seq = opened.events[0].seq as i64;
        assert_eq!(slim_seqs(&db, t).await, vec![created, opened_seq]);

        // Posts and read moves rewrite `data`, but only its activity: the events stay slim
        // and read back as told.
        told.push(post(&store, &c, Sender::Customer, "hello?").await);
        told.push(post(&store, &c, Sender::Bot, "Hi! How can I help?").await);
        told.push(read(&store, &c, 2).await.unwrap());
        told.push(
            post(
                &store,
                &opened.conversation,
                Sender::Customer,
                "still there?",
            )
            .await,
        );
        assert_eq!(all_events(&store, t).await, told);
        assert_eq!(slim_seqs(&db, t).await, vec![created, opened_seq]);

        // An update writes the previous event out and is the slim one now.
        let queued = update(&store, &c, |c| {
            c.mode = Mode::Queued;
            c.queued_at = Some(at(10));
            c.updated_at = at(10);
        })
        .await;
        told.push(queued.clone());
        assert_eq!(all_events(&store, t).await, told);
        assert_eq!(slim_seqs(&db, t).await, vec![opened_seq, queued.seq as i64]);
        told.push(post(&store, &c, Sender::Customer, "anyone?").await);
        told.push(read(&store, &c, 3).await.unwrap());
        assert_eq!(all_events(&store, t).await, told);

        // A slim row is a fraction of its copy.
        let full: i32 = db
            .query_one(
                "SELECT pg_column_size(data) FROM events WHERE tenant_id = $1 AND seq = $2",
                &[&t.0, &created],
            )
            .await
            .unwrap()
            .get(0);
        for (seq, bytes) in slim_rows(&db, t).await {
            assert!(
                bytes * 2 < full,
                "event {seq}: {bytes} bytes against {full}"
            );
        }

        // A deletion writes the events out before the row goes.
        store
            .delete_conversation(t, opened.conversation.id, at(20))
            .await
            .unwrap();
        let now = all_events(&store, t).await;
        assert_eq!(now[..told.len()], told[..]);
        assert_eq!(slim_seqs(&db, t).await, vec![queued.seq as i64]);

        // An erasure too (it rewrites what they said about the contact).
        store
            .erase_contact(&ContactErasure {
                tenant: t,
                contact: k.id,
                conversations: vec![c.id],
                erased_by: None,
                at: at(30),
            })
            .await
            .unwrap();
        assert!(slim_seqs(&db, t).await.is_empty());
        let erased = all_events(&store, t).await;
        assert!(erased.iter().all(|e| !matches!(
            e.payload,
            EventPayload::ConversationCreated { .. } | EventPayload::ConversationUpdated { .. }
        )));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn updates_posts_and_read_moves_racing_on_two_servers_keep_each_event_as_told() {
        let schema = Schema::create().await;
        let nodes: [S; 2] = [
            Arc::new(schema.store().await),
            Arc::new(schema.store().await),
        ];
        let t = tenant(&nodes[0]).await;
        let k = contact(&nodes[0], t, None).await;
        let c = conversation(&nodes[0], t, k.id, |_| {}).await;
        let mut racers = Vec::new();
        for i in 0..24_u64 {
            let node = nodes[(i % 2) as usize].clone();
            let c = c.clone();
            racers.push(tokio::spawn(async move {
                match i % 3 {
                    0 => loop {
                        // Retried on a version race, as the engine does.
                        let mut next = node.conversation(t, c.id).await.unwrap().unwrap();
                        next.pinned = !next.pinned;
                        next.updated_at = at(i as i64);
                        match node
                            .update_conversation(ConversationUpdate {
                                conversation: next,
                                change: ConversationChange::Details,
                                message: None,
                            })
                            .await
                        {
                            Ok(done) => break done.events,
                            Err(Error::Conflict(_)) => continue,
                            Err(e) => panic!("update {i}: {e:?}"),
                        }
                    },
                    1 => vec![post(&node, &c, Sender::Customer, &format!("m{i}")).await],
                    _ => read(&node, &c, i / 3).await.into_iter().collect(),
                }
            }));
        }
        let mut told = Vec::new();
        for r in racers {
            told.extend(r.await.unwrap());
        }
        let log = all_events(&nodes[1], t).await;
        for event in &told {
            assert_eq!(&log[event.seq as usize - 1], event);
        }
        let db = sql(&schema).await;
        assert_eq!(slim_rows(&db, t).await.len(), 1, "the latest only");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_at_schema_version_10_keeps_its_log_and_slims_the_latest_events() {
        let schema = Schema::create().await;
        let store: S = Arc::new(schema.store().await);
        let t = tenant(&store).await;
        let k = contact(&store, t, None).await;
        let moved = conversation(&store, t, k.id, |_| {}).await;
        let quiet = conversation(&store, t, k.id, |c| c.title = Some("Refund".into())).await;
        post(&store, &moved, Sender::Customer, "hello").await;
        let queued = update(&store, &moved, |c| {
            c.mode = Mode::Queued;
            c.queued_at = Some(at(5));
            c.updated_at = at(5);
        })
        .await;
        post(&store, &moved, Sender::Customer, "anyone?").await;
        read(&store, &moved, 2).await.unwrap();
        let logged = all_events(&store, t).await;
        drop(store);

        // Back to version 10: every conversation event a full copy, as it wrote them.
        let db = sql(&schema).await;
        let seqs: Vec<i64> = logged.iter().map(|e| e.seq as i64).collect();
        let data: Vec<Json<&Event>> = logged.iter().map(Json).collect();
        db.execute(
            "UPDATE events e SET data = x.data FROM unnest($2::int8[], $3::jsonb[]) AS x (seq, data) \
             WHERE e.tenant_id = $1 AND e.seq = x.seq AND e.conversation_row",
            &[&t.0, &seqs, &data],
        )
        .await
        .unwrap();
        db.batch_execute(
            "ALTER TABLE events DROP COLUMN conversation_row; \
             DELETE FROM schema_migrations WHERE version >= 11",
        )
        .await
        .unwrap();
        let copies: i64 = db
            .query_one(
                "SELECT count(*) FROM events WHERE data -> 'payload' -> 'conversation' IS NOT NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(copies, 3);

        let store: S = Arc::new(schema.store().await);
        assert_eq!(all_events(&store, t).await, logged);
        let quiet_created = logged
            .iter()
            .find(|e| e.conversation_id == Some(quiet.id))
            .unwrap()
            .seq as i64;
        // The moved conversation's created event stays a copy: its row has changed since.
        let mut expected = vec![quiet_created, queued.seq as i64];
        expected.sort();
        assert_eq!(slim_seqs(&db, t).await, expected);
        // And the slimmed log goes on as a new one does.
        let closed = update(&store, &quiet, |c| {
            c.mode = Mode::Closed;
            c.closed_at = Some(at(9));
            c.updated_at = at(9);
        })
        .await;
        let mut expected = vec![queued.seq as i64, closed.seq as i64];
        expected.sort();
        assert_eq!(slim_seqs(&db, t).await, expected);
        let now = all_events(&store, t).await;
        assert_eq!(now[..logged.len()], logged[..]);
        assert_eq!(now.last(), Some(&closed));
    }
}
