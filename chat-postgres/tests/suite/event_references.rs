//! Events that refer to their message's row (schema version 10): read back as first
//! posted whatever happens to the row later, also when two servers change it at once; the
//! stored row is small; a database written by schema version 9 keeps its log and is slimmed.

use crate::common;

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}

#[cfg(chat_test_postgres)]
mod with_database {
    use std::sync::Arc;

    use chat_core::testing::{contact, conversation, message, tenant};
    use chat_core::{
        Conversation, Error, Event, EventPayload, Message, MessageKind, Revision, Sender, Store,
        TenantId,
    };
    use time::OffsetDateTime;
    use tokio_postgres::NoTls;
    use tokio_postgres::types::Json;

    use super::common::{self, Schema};

    type S = Arc<dyn Store>;

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

    /// The `message_created` event of `message` in `events`.
    fn created<'a>(events: &'a [Event], message: &Message) -> &'a Event {
        events
            .iter()
            .find(|e| matches!(&e.payload, EventPayload::MessageCreated { message: m } if m.id == message.id))
            .expect("a message_created event")
    }

    async fn post(store: &S, c: &Conversation, kind: MessageKind, body: &str) -> Message {
        store
            .append_message(message(c, Sender::Customer, kind, body, 1))
            .await
            .unwrap()
            .message
    }

    fn edited(m: &Message, body: &str, secs: i64) -> Message {
        let mut m = m.clone();
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_000 + secs);
        m.revisions.push(Revision {
            body: m.body.clone(),
            replaced_at: at,
        });
        m.body = body.into();
        m.edited_at = Some(at);
        m
    }

    /// `(seq, data as text, message_id)` of every event row that refers to a message.
    async fn slim_rows(
        db: &tokio_postgres::Client,
        tenant: TenantId,
    ) -> Vec<(i64, String, uuid::Uuid)> {
        db.query(
            "SELECT seq, data::text, message_id FROM events \
             WHERE tenant_id = $1 AND message_id IS NOT NULL ORDER BY seq",
            &[&tenant.0],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_created_event_reads_back_as_first_posted_after_edits_and_deletes() {
        let schema = Schema::create().await;
        let store: S = Arc::new(schema.store().await);
        let db = sql(&schema).await;
        let t = tenant(&store).await;
        let k = contact(&store, t, None).await;
        let kept = conversation(&store, t, k.id, |_| {}).await;
        let gone = conversation(&store, t, k.id, |_| {}).await;
        let plain = post(&store, &kept, MessageKind::Text, "where is my order").await;
        let note = post(&store, &kept, MessageKind::Note, "staff only").await;
        let to_edit = post(&store, &kept, MessageKind::Text, "teh parcel").await;
        let to_delete = post(&store, &kept, MessageKind::Text, "oops").await;
        let in_gone = post(&store, &gone, MessageKind::Text, "hello?").await;
        let before = all_events(&store, t).await;

        // Each is stored as a reference: `{}` and the message's id, nothing else.
        let slim = slim_rows(&db, t).await;
        let referred: Vec<uuid::Uuid> = slim.iter().map(|(_, _, m)| *m).collect();
        let posted = [&plain, &note, &to_edit, &to_delete, &in_gone];
        assert_eq!(referred, posted.map(|m| m.id.0));
        assert!(slim.iter().all(|(_, data, _)| data == "{}"), "{slim:?}");
        // The note is still staff-only, the rest as the engine logged them.
        assert!(created(&before, &note).staff_only);

        store
            .update_message(&edited(&to_edit, "the parcel", 5))
            .await
            .unwrap();
        let mut deleted = to_delete.clone();
        deleted.body.clear();
        deleted.deleted_at =
            Some(OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_700_000_006));
        store.update_message(&deleted).await.unwrap();
        store
            .delete_conversation(t, gone.id, OffsetDateTime::now_utc())
            .await
            .unwrap();

        let after = all_events(&store, t).await;
        assert_eq!(
            after[..before.len()],
            before[..],
            "the log reads back the same"
        );
        assert_eq!(after.len(), before.len() + 3);
        // The changed and deleted rows' events were written out in full; the others still
        // refer to their rows.
        let slim: Vec<uuid::Uuid> = slim_rows(&db, t).await.iter().map(|(_, _, m)| *m).collect();
        assert_eq!(slim, vec![plain.id.0, note.id.0]);
        for m in [&to_edit, &to_delete, &in_gone] {
            let seq = created(&after, m).seq;
            let stored: Json<Event> = db
                .query_one(
                    "SELECT data FROM events WHERE tenant_id = $1 AND seq = $2 AND message_id IS NULL",
                    &[&t.0, &(seq as i64)],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(stored.0, *created(&before, m));
        }
        // A second edit finds nothing left to write out, and changes nothing in the log.
        store
            .update_message(&edited(
                &edited(&to_edit, "the parcel", 5),
                "the big parcel",
                7,
            ))
            .await
            .unwrap();
        let last = all_events(&store, t).await;
        assert_eq!(last[..after.len()], after[..]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slim_row_is_a_small_fraction_of_a_copy() {
        let schema = Schema::create().await;
        let store: S = Arc::new(schema.store().await);
        let db = sql(&schema).await;
        let t = tenant(&store).await;
        let k = contact(&store, t, None).await;
        let c = conversation(&store, t, k.id, |_| {}).await;
        let m = post(&store, &c, MessageKind::Text, "is the parcel on its way?").await;
        let slim: i32 = db
            .query_one(
                "SELECT pg_column_size(e.*) FROM events e WHERE message_id = $1",
                &[&m.id.0],
            )
            .await
            .unwrap()
            .get(0);
        // Written out, as an edit does.
        store
            .update_message(&edited(&m, "is my parcel on its way?", 2))
            .await
            .unwrap();
        let full: i32 = db
            .query_one(
                "SELECT pg_column_size(e.*) FROM events e \
                 WHERE tenant_id = $1 AND data->'payload'->>'type' = 'message_created'",
                &[&t.0],
            )
            .await
            .unwrap()
            .get(0);
        // The tuple's header, the tenant, sequence, conversation and message, and an empty
        // object (85 bytes), against the whole message.
        assert!(slim <= 100, "slim row {slim} bytes");
        assert!(full >= 5 * slim, "full row {full} bytes, slim {slim}");
        println!("slim row {slim} bytes, full row {full} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn edits_and_a_deletion_racing_on_two_servers_keep_the_event_as_posted() {
        let schema = Schema::create().await;
        let nodes: [S; 2] = [
            Arc::new(schema.store().await),
            Arc::new(schema.store().await),
        ];
        let t = tenant(&nodes[0]).await;
        let k = contact(&nodes[0], t, None).await;
        for round in 0..4 {
            let c = conversation(&nodes[0], t, k.id, |_| {}).await;
            let mut posted = Vec::new();
            for i in 0..3 {
                posted.push(post(&nodes[i % 2], &c, MessageKind::Text, &format!("m{i}")).await);
            }
            let before = all_events(&nodes[1], t).await;
            let mut racers = Vec::new();
            for (i, m) in posted.iter().enumerate() {
                for j in 0..3 {
                    let node = nodes[(i + j) % 2].clone();
                    let m = edited(m, &format!("edit {j}"), 10 + j as i64);
                    racers.push(tokio::spawn(async move { node.update_message(&m).await }));
                }
            }
            // In the last rounds the conversation goes while its messages are edited.
            let deletion = (round >= 2).then(|| {
                let node = nodes[round % 2].clone();
                tokio::spawn(async move {
                    node.delete_conversation(t, c.id, OffsetDateTime::now_utc())
                        .await
                })
            });
            for r in racers {
                match r.await.unwrap() {
                    Ok(_) | Err(Error::NotFound("message")) => {}
                    Err(e) => panic!("round {round}: unexpected {e:?}"),
                }
            }
            if let Some(d) = deletion {
                d.await.unwrap().unwrap();
            }
            let after = all_events(&nodes[0], t).await;
            assert_eq!(after[..before.len()], before[..], "round {round}");
            for m in &posted {
                assert_eq!(created(&after, m), created(&before, m), "round {round}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_at_schema_version_9_keeps_its_log_and_slims_unchanged_messages() {
        let schema = Schema::create().await;
        let store: S = Arc::new(schema.store().await);
        let t = tenant(&store).await;
        let k = contact(&store, t, None).await;
        let c = conversation(&store, t, k.id, |_| {}).await;
        let plain = post(&store, &c, MessageKind::Text, "where is my order").await;
        let note = post(&store, &c, MessageKind::Note, "staff only").await;
        let to_edit = post(&store, &c, MessageKind::Text, "teh parcel").await;
        store
            .update_message(&edited(&to_edit, "the parcel", 5))
            .await
            .unwrap();
        let logged = all_events(&store, t).await;
        drop(store);

        // Back to version 9: every event a full copy, as that schema wrote them.
        let db = sql(&schema).await;
        let seqs: Vec<i64> = logged.iter().map(|e| e.seq as i64).collect();
        let data: Vec<Json<&Event>> = logged.iter().map(Json).collect();
        db.execute(
            "UPDATE events e SET data = x.data, message_id = NULL, conversation_row = NULL \
             FROM unnest($2::int8[], $3::jsonb[]) AS x (seq, data) \
             WHERE e.tenant_id = $1 AND e.seq = x.seq",
            &[&t.0, &seqs, &data],
        )
        .await
        .unwrap();
        db.batch_execute(
            "ALTER TABLE events DROP COLUMN message_id, DROP COLUMN conversation_row; \
             DELETE FROM schema_migrations WHERE version >= 10",
        )
        .await
        .unwrap();

        let store: S = Arc::new(schema.store().await);
        assert_eq!(all_events(&store, t).await, logged);
        let slim: Vec<uuid::Uuid> = slim_rows(&db, t).await.iter().map(|(_, _, m)| *m).collect();
        // The edited message's event stays a copy: its row is no longer what was posted.
        assert_eq!(slim, vec![plain.id.0, note.id.0]);
        // And the slimmed log goes on as a new one does.
        let next = post(&store, &c, MessageKind::Text, "thanks").await;
        let slim: Vec<uuid::Uuid> = slim_rows(&db, t).await.iter().map(|(_, _, m)| *m).collect();
        assert_eq!(slim, vec![plain.id.0, note.id.0, next.id.0]);
        store
            .update_message(&edited(&plain, "where is my parcel", 8))
            .await
            .unwrap();
        let now = all_events(&store, t).await;
        assert_eq!(now[..logged.len()], logged[..]);
    }
}
