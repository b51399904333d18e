//! The desk's tools (schema version 2) across servers: what PostgreSQL keeps when two
//! stores on one database race, and the upgrade of a database at schema version 1.

use crate::common;

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}

#[cfg(chat_test_postgres)]
mod with_database {
    use std::sync::Arc;

    use chat_core::store::CannedQuery;
    use chat_core::testing::{agent, contact, conversation, tenant};
    use chat_core::{
        AgentId, CannedResponse, CannedResponseId, ConflictKind, Error, EventPayload, Mention,
        MessageId, Role, Store, TenantId,
    };
    use time::OffsetDateTime;
    use tokio_postgres::NoTls;

    use super::common::{self, Schema};

    type S = Arc<dyn Store>;

    fn shared(tenant: TenantId, shortcut: &str) -> CannedResponse {
        let now = OffsetDateTime::now_utc();
        CannedResponse {
            id: CannedResponseId(uuid::Uuid::now_v7()),
            tenant_id: tenant,
            owner_id: None,
            shortcut: shortcut.into(),
            title: format!("Title of {shortcut}"),
            body: "Hello {{customer_name}}".into(),
            created_at: now,
            updated_at: now,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_taking_one_shortcut_store_one_and_the_other_is_a_duplicate() {
        let schema = Schema::create().await;
        let nodes: [S; 2] = [
            Arc::new(schema.store().await),
            Arc::new(schema.store().await),
        ];
        let t = tenant(&nodes[0]).await;
        for round in 0..5 {
            let shortcut = format!("refund-{round}");
            let writers: Vec<_> = nodes
                .iter()
                .map(|node| {
                    let node = node.clone();
                    let response = shared(t, &shortcut);
                    tokio::spawn(async move { node.put_canned_response(&response).await })
                })
                .collect();
            let mut stored = 0;
            for w in writers {
                match w.await.unwrap() {
                    Ok(_) => stored += 1,
                    Err(Error::Conflict(c)) => {
                        assert_eq!(c.kind(), ConflictKind::Duplicate);
                        assert_eq!(c.message(), "shortcut taken");
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            assert_eq!(stored, 1, "round {round}: exactly one server stores it");
        }
        let all = nodes[1]
            .canned_responses(&CannedQuery {
                tenant: t,
                agent: None,
                id: None,
                prefix: Some("REFUND".into()),
                limit: 50,
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_servers_recording_one_mention_log_one_event() {
        let schema = Schema::create().await;
        let nodes: [S; 2] = [
            Arc::new(schema.store().await),
            Arc::new(schema.store().await),
        ];
        let t = tenant(&nodes[0]).await;
        let k = contact(&nodes[0], t, None).await;
        let ann = agent(&nodes[0], t, "Ann", Role::Agent, &[]).await.id;
        let bob = agent(&nodes[0], t, "Bob", Role::Agent, &[]).await.id;
        let c = conversation(&nodes[0], t, k.id, |_| {}).await;
        let head = nodes[0].event_head(t).await.unwrap();
        let mention = |agent: AgentId| Mention {
            tenant_id: t,
            agent_id: agent,
            conversation_id: c.id,
            message_id: MessageId(uuid::Uuid::now_v7()),
            by: bob,
            at: OffsetDateTime::now_utc(),
            read_at: None,
        };
        let batch = vec![mention(ann), mention(ann), mention(bob)];
        let writers: Vec<_> = nodes
            .iter()
            .map(|node| {
                let node = node.clone();
                let batch = batch.clone();
                tokio::spawn(async move { node.record_mentions(&batch).await })
            })
            .collect();
        let mut logged = Vec::new();
        for w in writers {
            logged.extend(w.await.unwrap().unwrap());
        }
        assert_eq!(
            logged.len(),
            3,
            "each mention logged once, by one server or the other"
        );
        let events = nodes[1].events_since(t, head, 100).await.unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (head + 1..=head + 3).collect::<Vec<_>>(), "gap-free");
        assert!(
            events
                .iter()
                .all(|e| matches!(e.payload, EventPayload::Mentioned { .. }))
        );
        let (items, unread) = nodes[0].mentions(t, ann, 10).await.unwrap();
        assert_eq!((items.len(), unread), (2, 2));
        let read_at = OffsetDateTime::now_utc();
        assert_eq!(nodes[1].read_mentions(t, ann, read_at).await.unwrap(), 2);
        let (items, unread) = nodes[0].mentions(t, ann, 10).await.unwrap();
        assert_eq!(unread, 0);
        assert!(items.iter().all(|m| m.read_at == Some(read_at)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_at_schema_version_1_gains_the_desk_tables() {
        let schema = Schema::create().await;
        drop(schema.store().await);
        // Back to version 1, as a database of the first build of the crate was.
        let mut config: tokio_postgres::Config = common::url().parse().expect("url");
        config.options(format!("-c search_path={}", schema.name));
        let (client, connection) = config.connect(NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(
                "DROP TABLE mail_outbox; DROP TABLE identity_signatures; \
                 DROP TABLE routing_turns; DROP TABLE presence_leases; \
                 DROP TABLE inbox_threads; DROP TABLE inboxes; \
                 DROP TABLE canned_responses; DROP TABLE mentions; \
                 DROP TABLE webhook_deliveries; DROP TABLE webhooks; \
                 DROP TABLE conversation_reopens; \
                 ALTER TABLE conversations DROP COLUMN created_at_ns, DROP COLUMN first_response_at_ns, \
                 DROP COLUMN closed_at_ns, DROP COLUMN rated_at_ns, DROP COLUMN rating_score; \
                 ALTER TABLE events DROP COLUMN message_id, DROP COLUMN conversation_row; \
                 DELETE FROM schema_migrations WHERE version >= 2",
            )
            .await
            .unwrap();

        let store: S = Arc::new(schema.store().await);
        let versions: Vec<i32> = client
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        // Every version up to this build's, version 2 (the desk) among them.
        let all: Vec<i32> = (1..=chat_postgres::SCHEMA_VERSION as i32).collect();
        assert_eq!(versions, all);
        let t = tenant(&store).await;
        store.put_canned_response(&shared(t, "hi")).await.unwrap();
        let found = store
            .canned_responses(&CannedQuery {
                tenant: t,
                agent: None,
                id: None,
                prefix: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
    }
}
