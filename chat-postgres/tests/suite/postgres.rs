//! What the PostgreSQL store promises beyond the conformance suites: several servers
//! (stores with pools of their own) on one database, the event log without visible gaps
//! under concurrent writers, migrations run once, search equal to the reference store's.

use crate::common;

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}

#[cfg(chat_test_postgres)]
mod with_database {
    use std::sync::Arc;

    use chat_core::memory::MemoryStore;
    use chat_core::store::{ConversationQuery, Scope};
    use chat_core::testing::{contact, conversation, message, tenant};
    use chat_core::{Error, MessageKind, Sender, StorageKind, Store};
    use chat_postgres::{Options, PostgresStore, SCHEMA_VERSION};
    use tokio_postgres::NoTls;

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_never_see_an_event_before_the_ones_under_it_while_two_nodes_write() {
        let schema = Schema::create().await;
        // Two stores with pools of their own: two servers on one database.
        let nodes: Vec<S> = vec![
            Arc::new(schema.store().await),
            Arc::new(schema.store().await),
        ];
        let t = tenant(&nodes[0]).await;
        let k = contact(&nodes[0], t, None).await;
        let mut conversations = Vec::new();
        for _ in 0..6 {
            conversations.push(conversation(&nodes[0], t, k.id, |_| {}).await);
        }
        let start = nodes[0].event_head(t).await.unwrap();
        const POSTS: u64 = 20;
        let mut writers = Vec::new();
        for (i, c) in conversations.iter().enumerate() {
            let store = nodes[i % 2].clone();
            let c = c.clone();
            writers.push(tokio::spawn(async move {
                for n in 0..POSTS {
                    store
                        .append_message(message(
                            &c,
                            Sender::Customer,
                            MessageKind::Text,
                            &format!("post {n}"),
                            n as i64,
                        ))
                        .await
                        .unwrap();
                }
            }));
        }
        let end = start + POSTS * conversations.len() as u64;
        // The reader follows the log as a socket's feed does: from its cursor, whatever
        // it is given must continue the cursor without a hole.
        let reader = nodes[1].clone();
        let mut cursor = start;
        let mut reads = 0;
        while cursor < end {
            let batch = reader.events_since(t, cursor, 1000).await.unwrap();
            for e in &batch {
                assert_eq!(
                    e.seq,
                    cursor + 1,
                    "event {} seen before {}",
                    e.seq,
                    cursor + 1
                );
                cursor = e.seq;
            }
            let head = reader.event_head(t).await.unwrap();
            assert!(
                head >= cursor,
                "the head ({head}) is never behind the log read"
            );
            reads += 1;
            tokio::task::yield_now().await;
        }
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(cursor, end);
        assert!(reads > 1, "the reader read while the writers wrote");
        for c in &conversations {
            let stored = nodes[0].conversation(t, c.id).await.unwrap().unwrap();
            assert_eq!(stored.last_seq, POSTS, "every post of {} stored once", c.id);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_starting_together_migrate_once_and_record_the_version() {
        let schema = Schema::create().await;
        let (a, b, c) = tokio::join!(schema.store(), schema.store(), schema.store());
        drop((a, b, c));
        let client = sql(&schema).await;
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
        let expected: Vec<i32> = (1..=SCHEMA_VERSION as i32).collect();
        assert_eq!(versions, expected);
        // Opening again changes nothing.
        drop(schema.store().await);
        let count: i64 = client
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, i64::from(SCHEMA_VERSION));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_migrated_by_a_newer_build_is_refused() {
        let schema = Schema::create().await;
        drop(schema.store().await);
        sql(&schema)
            .await
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&(SCHEMA_VERSION as i32 + 1)],
            )
            .await
            .unwrap();
        let err =
            PostgresStore::connect_with(&common::url(), Options::default().schema(&schema.name))
                .await
                .unwrap_err();
        assert!(
            matches!(&err, Error::Storage(s) if s.kind() == StorageKind::Corrupt),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_urls_and_schema_names_are_refused_and_no_password_is_shown() {
        let err = PostgresStore::connect("postgres://u:hunter2@[::1")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Validation { field: "store", .. }),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = PostgresStore::connect_with(
            &common::url(),
            Options::default().schema("x; DROP TABLE agents"),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::Validation { field: "store", .. }),
            "{err}"
        );
        // Nothing listens on port 1: the store says it cannot reach the database.
        let err = PostgresStore::connect("postgres://u:hunter2@127.0.0.1:1/chat")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Storage(_)), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    /// Writes the same desk into two stores and asks both the same searches: bodies,
    /// titles, contact names and e-mails, edited, deleted and internal messages, and the
    /// fields a tsvector cannot hold exactly (a long word, a word repeated more than 256
    /// times, more than 16,383 words).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn text_search_answers_as_the_reference_store_does() {
        let (pg, schema) = common::store().await;
        let stores: [S; 2] = [Arc::new(MemoryStore::new()), Arc::new(pg)];
        let many: String = (0..17_000).map(|n| format!("w{n} ")).collect();
        let bodies = [
            "Order #A-17 for max@shop.example: CAFÉ au lait, refund pending".to_owned(),
            "my parcel never arrived".to_owned(),
            "ΣΊΣΥΦΟΣ ordered twice from İstanbul, Café crème".to_owned(),
            "see https://shop.example/orders/42?x=1 please, it's late".to_owned(),
            format!("token {} end", "z".repeat(80)),
            format!("{}late parcel", "the ".repeat(300)),
            format!("{many}end of story"),
            "hello".to_owned(),
            "nothing to see".to_owned(),
            "old wording".to_owned(),
            "secret salami".to_owned(),
            "internal walrus".to_owned(),
        ];
        let needles = [
            "refund",
            "REFUND PEND",
            "efun",
            "refunds",
            "@shop.ex",
            "café",
            "CAFÉ",
            "cafe",
            "CAFÉ AU",
            "\"café au\"",
            "\"au café\"",
            "\"café crè\"",
            "σίσυφος",
            "ΣΊΣ",
            "istanbul",
            "İstanbul",
            "\"parcel never\"",
            "\"never parcel\"",
            "\"parcel never arrived",
            "orders 42",
            "\"42 x 1\"",
            "\"it s late\"",
            "it's",
            "4",
            &"z".repeat(64),
            &"z".repeat(70),
            &"z".repeat(80),
            &"z".repeat(81),
            &format!("\"token {} end\"", "z".repeat(80)),
            "\"the late parc\"",
            "\"the the the late\"",
            "\"late the\"",
            "\"w16999 end of\"",
            "\"w5 w6\"",
            "\"w6 w5\"",
            "w1699",
            "\"w16998 w16999 end of st",
            "kühl",
            "MIT ärg",
            "\"dem kühlschrank\"",
            "\"kühlschrank dem\"",
            "schrank",
            "zoë",
            "ZOE",
            "ångs",
            "\"zoë ångström\"",
            "fjord example",
            "\"zoe angstrom\"",
            "zoe fjord",
            "jo",
            "brand new",
            "wording",
            "salami",
            "walrus",
            "?!",
            "\"\"",
            "nothing here",
        ];
        // The conversations each needle finds, in the reference store, from the staff's
        // side and from the customer's (contact `k`).
        let mut answers: Vec<Vec<(u64, u64)>> = Vec::new();
        for store in &stores {
            let t = tenant(store).await;
            let k = contact(store, t, None).await;
            let mut zoe = contact(store, t, None).await;
            zoe.name = Some("Zoë Ångström".into());
            zoe.email = Some("zoe.angstrom@FJORD.example".into());
            store.update_contact(&zoe).await.unwrap();
            let mut ids = Vec::new();
            let mut posted = Vec::new();
            for (n, body) in bodies.iter().enumerate() {
                let who = if n == 8 { zoe.id } else { k.id };
                let c = conversation(store, t, who, |c| {
                    if n == 7 {
                        c.title = Some("Ärger mit dem KÜHLschrank".into());
                    }
                })
                .await;
                let kind = if n == 11 {
                    MessageKind::Note
                } else {
                    MessageKind::Text
                };
                let sender = if n == 11 {
                    Sender::Bot
                } else {
                    Sender::Customer
                };
                let m = store
                    .append_message(message(&c, sender, kind, body, 1))
                    .await
                    .unwrap()
                    .message;
                ids.push(c.id);
                posted.push(m);
            }
            let mut edited = posted[9].clone();
            edited.body = "brand new wording".into();
            store.update_message(&edited).await.unwrap();
            let mut deleted = posted[10].clone();
            deleted.deleted_at = Some(deleted.created_at);
            store.update_message(&deleted).await.unwrap();
            let mut found = Vec::new();
            for needle in &needles {
                let mut masks = [0, 0];
                for (scope, mask) in [
                    Scope::Tenant,
                    Scope::Contact {
                        contact: k.id,
                        conversation: None,
                    },
                ]
                .into_iter()
                .zip(&mut masks)
                {
                    let q = ConversationQuery {
                        text: Some((*needle).to_owned()),
                        ..ConversationQuery::new(t, scope)
                    };
                    let page = store.list_conversations(&q).await.unwrap();
                    assert_eq!(
                        page.counts.values().sum::<u64>(),
                        page.items.len() as u64,
                        "{needle:?}: the counts agree with the page"
                    );
                    *mask = page
                        .items
                        .iter()
                        .map(|c| ids.iter().position(|id| *id == c.id).unwrap())
                        .fold(0, |mask, i| mask | 1 << i);
                }
                found.push((masks[0], masks[1]));
            }
            answers.push(found);
        }
        for (i, needle) in needles.iter().enumerate() {
            assert_eq!(
                answers[1][i], answers[0][i],
                "{needle:?}: PostgreSQL found {:b}, the reference store {:b}",
                answers[1][i].0, answers[0][i].0
            );
        }
        // The three bodies a tsvector cannot hold exactly were searched through their
        // word lists.
        let lossy: i64 = sql(&schema)
            .await
            .query_one(
                "SELECT count(*) FROM messages WHERE word_list IS NOT NULL",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(lossy, 3);
        // The needles mean something: all but these find a conversation.
        let missed: Vec<&str> = needles
            .iter()
            .zip(&answers[0])
            .filter(|(_, m)| m.0 == 0)
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            missed,
            [
                "efun",
                "refunds",
                "cafe",
                "\"au café\"",
                "ΣΊΣ",
                "istanbul",
                "\"never parcel\"",
                &"z".repeat(81),
                "\"late the\"",
                "\"w6 w5\"",
                "\"kühlschrank dem\"",
                "schrank",
                "salami",
                "?!",
                "\"\"",
                "nothing here",
            ]
        );
    }
}
