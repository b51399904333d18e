//! Schema migrations: an old database opens and upgrades; a newer one is refused.

use crate::common;

use chat_core::store::{ConversationQuery, MessageQuery, Scope};
use chat_core::{Error, Mode, Sender, Store};
use chat_sqlite::{SCHEMA_VERSION, SqliteStore};
use common::*;
use rusqlite::{Connection, params};

/// Takes a current database back to schema 10, before migrations 0011 (the title and
/// contact word indexes), 0012 (inboxes), 0013 (used identity signatures), 0014
/// (events that refer to their messages: the tests using it post no messages, so every
/// event is in full), 0015 (presence leases, routing turns), 0016 (the mail outbox) and
/// 0017 (the preview's notice metadata) and 0018 (inboxes' polling columns, gone with the
/// table), for the tests that make an older schema out of a current one.
/// Takes a file of this build back to before migration 0020: the tenant's newest-first
/// inbox index back.
const RESTORE_TENANT_INBOX_INDEX: &str =
    "CREATE INDEX conversations_updated ON conversations (tenant_id, updated_at, id);";

/// Takes a file of this build back to before migration 0019: its slim conversation events
/// written out in full (the event as `src/events.rs` rebuilds it, in SQL), then the column
/// and index gone (and what [`RESTORE_TENANT_INBOX_INDEX`] does).
const DROP_CONVERSATION_EVENT_REFERENCES: &str = "
    CREATE INDEX conversations_updated ON conversations (tenant_id, updated_at, id);
    UPDATE events SET conversation_row = NULL, data = (
        SELECT json_object('seq', events.seq, 'tenant_id', c.data ->> '$.tenant_id',
            'conversation_id', c.data ->> '$.id', 'staff_only', json('false'),
            'at', iif(events.data ->> '$.payload.type' = 'conversation_created',
                      c.data ->> '$.created_at', c.data ->> '$.updated_at'),
            'payload', json_set(events.data -> '$.payload', '$.conversation', json(c.data)))
        FROM conversations c WHERE c.id = events.conversation_id)
    WHERE conversation_row IS NOT NULL;
    DROP INDEX events_conversation; ALTER TABLE events DROP COLUMN conversation_row;";

const DROP_WORD_INDEXES: &str = "
    ALTER TABLE conversations DROP COLUMN preview_metadata;
    DROP TABLE mail_outbox; DROP TABLE identity_signatures;
    DROP INDEX events_message; ALTER TABLE events DROP COLUMN message_pk;
    DROP TABLE routing_turns; DROP TABLE presence_leases;
    DROP TABLE inbox_threads; DROP TABLE inboxes;
    DROP TRIGGER conversation_title_words_insert; DROP TRIGGER conversation_title_words_update;
    DROP TRIGGER conversation_title_words_delete; DROP TABLE conversation_title_words;
    DROP TRIGGER contact_words_insert; DROP TRIGGER contact_words_update;
    DROP TRIGGER contact_words_delete; DROP TABLE contact_words;";

fn user_version(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_schema_one_opens_and_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let t = tenant(1);
    let k = contact(t.id, 2, "Ann", Some("ann@example.com"));
    let c = conversation(t.id, 3, k.id, 0);
    let mut stored = c.clone();
    {
        // What version 1 of chat-sqlite left on disk: its schema and a conversation with
        // one message, written with that schema's columns.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../../migrations/0001_init.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let json = |v: &dyn erased::Json| v.json();
        conn.execute(
            "INSERT INTO tenants (id, data) VALUES (?1, ?2)",
            params![t.id.0, json(&t)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO contacts (id, tenant_id, name, email_lc, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![k.id.0, t.id.0, k.name, k.email, json(&k)],
        )
        .unwrap();
        let m = text(
            &c,
            10,
            Sender::Customer,
            "My invoice shows the wrong amount",
            5,
        )
        .into_message(1);
        stored.record_message(&m);
        conn.execute(
            "INSERT INTO conversations (id, tenant_id, contact_id, channel, mode, priority, department, \
             assigned_agent_id, pinned, title, updated_at, queued_at, last_seq, version, data) \
             VALUES (?1, ?2, ?3, 'web', 'bot', 1, NULL, NULL, 0, NULL, ?4, NULL, 1, ?5, ?6)",
            params![c.id.0, t.id.0, k.id.0, stored.updated_at.unix_timestamp_nanos() as i64, stored.version as i64, json(&stored)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO messages (id, tenant_id, conversation_id, seq, sender, kind, body, created_at) \
             VALUES (?1, ?2, ?3, 1, 'customer', 'text', ?4, ?5)",
            params![m.id.0, t.id.0, c.id.0, m.body, m.created_at.unix_timestamp_nanos() as i64],
        )
        .unwrap();
    }
    assert_eq!(user_version(&path), 1);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    // Version 2 put an FTS table and its triggers in the file; version 5 took them out
    // (the index lives in the search file now) and named the database.
    let main = Connection::open(&path).unwrap();
    let leftovers: i64 = main
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'message_search%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leftovers, 0);
    let store_id: String = main
        .query_row(
            "SELECT value FROM store_meta WHERE key = 'store_id'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(store_id.len(), 32);
    // Version 4 moved the counters a message changes into columns, filled from the JSON:
    // the conversation reads back as it was written, preview and times included.
    assert_eq!(stored.message_count, 1);
    assert!(stored.last_message.is_some());
    assert_eq!(
        store.conversation(t.id, c.id).await.unwrap(),
        Some(stored.clone())
    );
    // Version 6: the e-mail of schema 1 is kept as a claim, and a claim finds nothing.
    assert_eq!(store.contact(t.id, k.id).await.unwrap(), Some(k.clone()));
    assert_eq!(
        store
            .verified_contact(t.id, "ANN@example.com")
            .await
            .unwrap(),
        None
    );
    // The message is found at once (by reading bodies while the search file is being
    // built) and through the index once it is: the rebuild copies the messages already
    // there, which have no events.
    let q = ConversationQuery {
        text: Some(" wrong amount".into()),
        ..ConversationQuery::new(t.id, Scope::Tenant)
    };
    assert_eq!(store.list_conversations(&q).await.unwrap().items.len(), 1);
    store.wait_for_search_index().await.unwrap();
    assert_eq!(store.list_conversations(&q).await.unwrap().items.len(), 1);
    let indexed: i64 = Connection::open(store.search_path())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM message_search WHERE message_search MATCH 'wrong'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 1);
    // And the conversation goes on where it was.
    let next = store
        .append_message(text(&c, 11, Sender::Bot, "Let me look", 6))
        .await
        .unwrap();
    assert_eq!(next.message.seq, 2);
    let mut expected = stored.clone();
    expected.record_message(&next.message);
    assert_eq!(next.conversation, expected);
    assert_eq!(
        store.conversation(t.id, c.id).await.unwrap(),
        Some(expected)
    );
    let all = store
        .messages(&MessageQuery::latest(t.id, c.id, 10))
        .await
        .unwrap();
    assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_six_database_gets_its_counts_kept_from_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("six.db");
    let t = tenant(1);
    let k = contact(t.id, 2, "Ann", None);
    let mut rows = Vec::new();
    for (n, mode, department, tags) in [
        (3, Mode::Queued, Some("billing"), vec!["refund"]),
        (4, Mode::Queued, None, vec!["refund", "vip"]),
        (5, Mode::Closed, Some("billing"), vec![]),
    ] {
        let mut c = conversation(t.id, n, k.id, 0);
        c.mode = mode;
        c.department = department.map(Into::into);
        c.tags = tags.into_iter().map(Into::into).collect();
        rows.push(c);
    }
    {
        // What schema 6 left on disk: its tables (the SQL of migrations 1 to 6; their data
        // steps have nothing to move in an empty file) and rows written with its columns.
        let conn = Connection::open(&path).unwrap();
        for sql in [
            include_str!("../../migrations/0001_init.sql"),
            include_str!("../../migrations/0002_message_search.sql"),
            include_str!("../../migrations/0003_credentials.sql"),
            include_str!("../../migrations/0004_conversation_activity.sql"),
            include_str!("../../migrations/0005_search_file.sql"),
            include_str!("../../migrations/0006_identity.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 6).unwrap();
        let json = |v: &dyn erased::Json| v.json();
        conn.execute(
            "INSERT INTO tenants (id, data) VALUES (?1, ?2)",
            params![t.id.0, json(&t)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO contacts (id, tenant_id, name, email_lc, data) VALUES (?1, ?2, ?3, NULL, ?4)",
            params![k.id.0, t.id.0, k.name, json(&k)],
        )
        .unwrap();
        for c in &rows {
            conn.execute(
                "INSERT INTO conversations (id, tenant_id, contact_id, channel, mode, priority, department, \
                 assigned_agent_id, pinned, title, updated_at, queued_at, last_seq, version, data) \
                 VALUES (?1, ?2, ?3, 'web', ?4, 1, ?5, NULL, 0, NULL, ?6, NULL, 0, 0, ?7)",
                params![c.id.0, t.id.0, k.id.0, c.mode.as_str(), c.department, c.updated_at.unix_timestamp_nanos() as i64, json(c)],
            )
            .unwrap();
            for tag in &c.tags {
                conn.execute(
                    "INSERT INTO conversation_tags (conversation_id, tag) VALUES (?1, ?2)",
                    params![c.id.0, tag],
                )
                .unwrap();
            }
        }
    }

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let counts = |edit: fn(&mut ConversationQuery)| {
        let store = &store;
        let mut q = ConversationQuery::new(t.id, Scope::Tenant);
        edit(&mut q);
        async move {
            store
                .list_conversations(&q)
                .await
                .unwrap()
                .counts
                .into_iter()
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(counts(|_| {}).await, [(Mode::Queued, 2), (Mode::Closed, 1)]);
    assert_eq!(
        counts(|q| q.department = Some("billing".into())).await,
        [(Mode::Queued, 1), (Mode::Closed, 1)]
    );
    assert_eq!(
        counts(|q| q.tag = Some("refund".into())).await,
        [(Mode::Queued, 2)]
    );
    assert_eq!(
        counts(|q| q.tag = Some("vip".into())).await,
        [(Mode::Queued, 1)]
    );
    // And they are kept from then on.
    store
        .delete_conversation(t.id, rows[1].id, at(9))
        .await
        .unwrap();
    assert_eq!(counts(|_| {}).await, [(Mode::Queued, 1), (Mode::Closed, 1)]);
    assert_eq!(counts(|q| q.tag = Some("vip".into())).await, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_five_accounts_move_out_of_contact_metadata_and_the_token_table() {
    use chat_core::{Account, Credentials, VisitorToken};
    use sha2::{Digest, Sha256};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    let t = tenant(1);
    // What chat-server's accounts module of schema 5 wrote for a sign-up: the username as
    // `external_id`, the hash in metadata, and one `account:` row per login name.
    let mut ada = contact(t.id, 2, "ada", Some("ada@example.com"));
    ada.external_id = Some("Ada".into());
    ada.metadata.insert(
        "account.password_hash".into(),
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
    );
    ada.metadata.insert("plan".into(), "gold".into());
    let visitor = contact(t.id, 3, "Visitor", None);
    let name_row = |name: &str| {
        let digest = Sha256::digest(format!("{}:{}", t.id, name.to_lowercase()).as_bytes());
        let record = VisitorToken {
            digest: format!("account:{}", hex::encode(digest)),
            tenant_id: t.id,
            contact_id: ada.id,
            conversation_id: None,
            created_at: at(0),
            expires_at: Some(time::OffsetDateTime::UNIX_EPOCH),
        };
        (
            record.digest.clone(),
            serde_json::to_string(&record).unwrap(),
        )
    };
    let session = VisitorToken {
        digest: "ab".repeat(32),
        tenant_id: t.id,
        contact_id: visitor.id,
        conversation_id: None,
        created_at: at(0),
        expires_at: None,
    };
    {
        let conn = Connection::open(&path).unwrap();
        for sql in [
            include_str!("../../migrations/0001_init.sql"),
            include_str!("../../migrations/0002_message_search.sql"),
            include_str!("../../migrations/0003_credentials.sql"),
            include_str!("../../migrations/0004_conversation_activity.sql"),
            include_str!("../../migrations/0005_search_file.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute(
            "INSERT INTO tenants (id, data) VALUES (?1, ?2)",
            params![t.id.0, serde_json::to_string(&t).unwrap()],
        )
        .unwrap();
        for k in [&ada, &visitor] {
            conn.execute(
                "INSERT INTO contacts (id, tenant_id, name, email_lc, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![k.id.0, t.id.0, k.name, k.email, serde_json::to_string(k).unwrap()],
            )
            .unwrap();
        }
        for (digest, data) in [
            name_row("Ada"),
            name_row("customer:7"),
            (
                session.digest.clone(),
                serde_json::to_string(&session).unwrap(),
            ),
        ] {
            conn.execute(
                "INSERT INTO visitor_tokens (digest, data) VALUES (?1, ?2)",
                params![digest, data],
            )
            .unwrap();
        }
    }

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let account = Account {
        tenant_id: t.id,
        contact_id: ada.id,
        username: "Ada".into(),
        email: Some("ada@example.com".into()),
        disabled: false,
        created_at: ada.created_at,
        updated_at: ada.updated_at,
    };
    assert_eq!(
        store.account(t.id, ada.id).await.unwrap(),
        Some(account.clone())
    );
    // The username is a login name again, and the alias (only a digest in schema 5) too.
    for name in ["ada", "ADA", "customer:7"] {
        assert_eq!(
            store.account_by_name(t.id, name).await.unwrap(),
            Some(account.clone()),
            "{name}"
        );
    }
    assert_eq!(
        store.account_by_name(t.id, "customer:8").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .account_password_hash(t.id, ada.id)
            .await
            .unwrap()
            .as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    );
    // The hash left the contact; its other metadata stayed.
    let moved = store.contact(t.id, ada.id).await.unwrap().unwrap();
    assert!(!moved.metadata.contains_key("account.password_hash"));
    assert_eq!(moved.metadata.get("plan").map(String::as_str), Some("gold"));
    assert!(!moved.email_verified);
    // The name records are no longer in the token table; the real token still works and
    // is revoked per contact now.
    assert_eq!(store.visitor_token(&name_row("Ada").0).await.unwrap(), None);
    assert_eq!(
        store.visitor_token(&session.digest).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(
        store.revoke_visitor_tokens(t.id, visitor.id).await.unwrap(),
        1
    );
    // The alias of schema 5 still blocks the name for others.
    assert!(matches!(
        store.add_account_name(t.id, ada.id, "Customer:7").await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    match SqliteStore::open(&path) {
        Err(Error::Storage(failure)) => {
            let message = failure.message();
            assert!(
                message.contains("newer") && message.contains("99"),
                "{message}"
            );
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    assert_eq!(
        user_version(&path),
        99,
        "the refused file is left untouched"
    );
}

#[test]
fn reopening_a_current_database_runs_no_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).unwrap());
    drop(SqliteStore::open(&path).unwrap());
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
}

/// `serde_json::to_string` behind a trait object, so the fixture rows above read as one call.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_eight_database_gets_its_report_columns_and_reopens_from_data_and_events() {
    use chat_core::report::{Dimension, ReportQuery};
    use chat_core::store::ConversationUpdate;
    use chat_core::{ConversationChange, Rating};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eight.db");
    let t = tenant(1);
    let k = contact(t.id, 2, "Ann", None);
    let query = ReportQuery {
        tenant: t.id,
        from: at(0),
        to: at(86_400),
        agent: None,
    };
    let before = {
        // Written by this build, then taken back to what schema 8 had: no report columns,
        // no reopen marks (the event log keeps the reopen).
        let store = SqliteStore::open(&path).unwrap();
        store.insert_tenant(&t).await.unwrap();
        store.insert_contact(&k).await.unwrap();
        let mut c = conversation(t.id, 3, k.id, 0);
        c.mode = Mode::Closed;
        c.department = Some("billing".into());
        c.first_response_at = Some(at(30));
        c.closed_at = Some(at(600));
        c.rating = Some(Rating {
            score: 4,
            feedback: Some("Fine".into()),
            rated_at: at(700),
        });
        let stored = store
            .create_conversation(&c, Vec::new())
            .await
            .unwrap()
            .conversation;
        let mut reopened = stored.clone();
        reopened.updated_at = at(800);
        store
            .update_conversation(ConversationUpdate {
                conversation: reopened,
                change: ConversationChange::Reopened,
                message: None,
            })
            .await
            .unwrap();
        let rows = store
            .report_rows(&query, Some(Dimension::Department))
            .await
            .unwrap();
        assert_eq!(
            (rows[0].opened, rows[0].closed, rows[0].reopened),
            (1, 1, 1)
        );
        assert_eq!(rows[0].csat.distribution, [0, 0, 0, 1, 0]);
        rows
    };
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(DROP_CONVERSATION_EVENT_REFERENCES)
            .unwrap();
        conn.execute_batch(DROP_WORD_INDEXES).unwrap();
        conn.execute_batch(
            "DROP TABLE webhook_deliveries; DROP TABLE webhooks;
             DROP TABLE conversation_reopens;
             DROP INDEX conversations_created; DROP INDEX conversations_closed;
             DROP INDEX conversations_rated;
             ALTER TABLE conversations DROP COLUMN created_at;
             ALTER TABLE conversations DROP COLUMN closed_at;
             ALTER TABLE conversations DROP COLUMN rated_at;
             ALTER TABLE conversations DROP COLUMN rating_score;
             PRAGMA user_version = 8;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    assert_eq!(
        store
            .report_rows(&query, Some(Dimension::Department))
            .await
            .unwrap(),
        before
    );
    assert_eq!(
        store.report_feedback(&query, 10).await.unwrap()[0].feedback,
        "Fine"
    );
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_before_the_word_indexes_finds_titles_and_contacts_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("words.db");
    let t = tenant(1);
    let ann = contact(t.id, 2, "Ann Kettleworth", Some("ann@teapots.example"));
    let bo = contact(t.id, 3, "Bo", None);
    let mut titled = conversation(t.id, 4, bo.id, 0);
    titled.title = Some("Broken café grinder".into());
    let of_ann = conversation(t.id, 5, ann.id, 0);
    {
        // Written by this build, then taken back to before migration 0011: rows the
        // upgrade must index.
        let store = SqliteStore::open(&path).unwrap();
        store.insert_tenant(&t).await.unwrap();
        store.insert_contact(&ann).await.unwrap();
        store.insert_contact(&bo).await.unwrap();
        store
            .create_conversation(&titled, Vec::new())
            .await
            .unwrap();
        store
            .create_conversation(&of_ann, Vec::new())
            .await
            .unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(DROP_CONVERSATION_EVENT_REFERENCES)
            .unwrap();
        conn.execute_batch(DROP_WORD_INDEXES).unwrap();
        conn.pragma_update(None, "user_version", 10).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let search = |text: &str| {
        let q = ConversationQuery {
            text: Some(text.into()),
            ..ConversationQuery::new(t.id, Scope::Tenant)
        };
        let store = &store;
        async move {
            let page = store.list_conversations(&q).await.unwrap();
            let total: u64 = page.counts.values().sum();
            assert_eq!(total, page.items.len() as u64, "{q:?}");
            page.items.into_iter().map(|c| c.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search("CAFÉ grind").await,
        [titled.id],
        "a title, by its words"
    );
    assert!(
        search("cafe").await.is_empty(),
        "the index folds accents, the test does not"
    );
    assert_eq!(search("kettlew").await, [of_ann.id], "a contact's name");
    assert_eq!(search("teapots").await, [of_ann.id], "a contact's e-mail");
    assert!(
        search("kettleworth teapots").await.is_empty(),
        "all words in the name or all in the e-mail"
    );
    assert!(
        search("ettle").await.is_empty(),
        "words, not inner substrings"
    );
    // The triggers keep them from now on: a new title, a renamed contact.
    let mut renamed = store.contact(t.id, bo.id).await.unwrap().unwrap();
    renamed.name = Some("Bo Zanzibar".into());
    store.update_contact(&renamed).await.unwrap();
    let bos: Vec<_> = search("zanzibar").await;
    assert_eq!(bos, [titled.id]);
    assert!(search("Bo").await.contains(&titled.id));
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_twelve_event_log_refers_to_its_messages_after_the_upgrade_and_reads_the_same() {
    use chat_core::store::ConversationQuery as Query;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twelve.db");
    let t = tenant(1);
    let k = contact(t.id, 2, "Ann", None);
    let kept = conversation(t.id, 3, k.id, 0);
    let gone = conversation(t.id, 4, k.id, 0);
    let (logged, edited) = {
        // Written by this build, then taken back to schema 12: every event in full (as the
        // store reads them back), no `message_pk` column, no `events_message` index.
        let store = SqliteStore::open(&path).unwrap();
        store.insert_tenant(&t).await.unwrap();
        store.insert_contact(&k).await.unwrap();
        store.create_conversation(&kept, Vec::new()).await.unwrap();
        store.create_conversation(&gone, Vec::new()).await.unwrap();
        let mut posted = Vec::new();
        for (n, c, body) in [
            (10, &kept, "the kettle leaks"),
            (11, &kept, "the kettle whistles"),
            (12, &gone, "the kettle is gone"),
            (13, &kept, "a third kettle"),
        ] {
            posted.push(
                store
                    .append_message(text(c, n, Sender::Customer, body, n as i64))
                    .await
                    .unwrap()
                    .message,
            );
        }
        let mut edited = posted[1].clone();
        edited.body = "the kettle is quiet now".into();
        edited.edited_at = Some(at(20));
        store.update_message(&edited).await.unwrap();
        store
            .delete_conversation(t.id, gone.id, at(21))
            .await
            .unwrap();
        let logged = store.events_since(t.id, 0, 1000).await.unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX events_message; DROP INDEX events_conversation; DROP TABLE identity_signatures;
             CREATE INDEX conversations_updated ON conversations (tenant_id, updated_at, id);
             ALTER TABLE conversations DROP COLUMN preview_metadata;
             DROP TABLE routing_turns; DROP TABLE presence_leases; DROP TABLE mail_outbox;
             ALTER TABLE inboxes DROP COLUMN poll_offset; ALTER TABLE inboxes DROP COLUMN poll_node;
             ALTER TABLE inboxes DROP COLUMN poll_until_ns;
             CREATE TABLE events_twelve (
                 tenant_id BLOB NOT NULL, seq INTEGER NOT NULL, conversation_id BLOB,
                 data TEXT NOT NULL, PRIMARY KEY (tenant_id, seq));
             INSERT INTO events_twelve SELECT tenant_id, seq, conversation_id, data FROM events;
             DROP TABLE events; ALTER TABLE events_twelve RENAME TO events;
             PRAGMA user_version = 12;",
        )
        .unwrap();
        for e in &logged {
            conn.execute(
                "UPDATE events SET data = ?3, conversation_id = ?4 WHERE tenant_id = ?1 AND seq = ?2",
                params![t.id.0, e.seq as i64, serde_json::to_string(e).unwrap(), e.conversation_id.map(|c| c.0)],
            )
            .unwrap();
        }
        let slim: i64 = conn
            .query_row("SELECT count(*) FROM events WHERE data = '{}'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(slim, 0);
        drop(conn);
        std::fs::remove_file(dir.path().join("twelve.db-search")).ok();
        (logged, edited)
    };

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    assert_eq!(
        store.events_since(t.id, 0, 1000).await.unwrap(),
        logged,
        "the log reads back as before the upgrade"
    );
    let slim = |path: &std::path::Path| -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM events WHERE message_pk IS NOT NULL AND data = '{}'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(
        slim(&path),
        2,
        "the two messages still as posted; the edited one and the deleted conversation's stay in full"
    );
    // Edited after the upgrade: its event keeps the message as posted.
    let mut third = store
        .messages(&MessageQuery::latest(t.id, kept.id, 10))
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.body == "a third kettle")
        .unwrap();
    third.body = "a third kettle, descaled".into();
    third.edited_at = Some(at(30));
    store.update_message(&third).await.unwrap();
    assert_eq!(slim(&path), 1);
    let now = store.events_since(t.id, 0, 1000).await.unwrap();
    assert_eq!(now[..logged.len()], logged[..]);
    // The search index is rebuilt from the rows and follows the slim events.
    store
        .append_message(text(&kept, 14, Sender::Customer, "descaler please", 40))
        .await
        .unwrap();
    store.wait_for_search_index().await.unwrap();
    for (word, hits) in [
        ("leaks", 1),
        ("quiet", 1),
        ("descaled", 1),
        ("descaler", 1),
        ("gone", 0),
    ] {
        let q = Query {
            text: Some(word.into()),
            ..Query::new(t.id, Scope::Tenant)
        };
        assert_eq!(
            store.list_conversations(&q).await.unwrap().items.len(),
            hits,
            "{word}"
        );
    }
    assert!(edited.edited_at.is_some());
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_sixteen_inbox_upgrades_in_place_and_polls_from_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sixteen.db");
    let t = tenant(1);
    let inbox = chat_core::Inbox {
        id: chat_core::InboxId(id(2)),
        tenant_id: t.id,
        name: "Support bot".into(),
        kind: chat_core::InboxKind::Telegram,
        token_digest: "ab12".into(),
        webhook_id: None,
        settings: [("mode".to_owned(), "polling".to_owned())].into(),
        secrets: chat_core::InboxSecrets::default(),
        created_at: at(1),
        updated_at: at(1),
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        store.insert_tenant(&t).await.unwrap();
        store.put_inbox(&inbox).await.unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "ALTER TABLE inboxes DROP COLUMN poll_offset; ALTER TABLE inboxes DROP COLUMN poll_node;
         ALTER TABLE inboxes DROP COLUMN poll_until_ns;
         ALTER TABLE conversations DROP COLUMN preview_metadata;
         DROP INDEX events_conversation; ALTER TABLE events DROP COLUMN conversation_row;
         CREATE INDEX conversations_updated ON conversations (tenant_id, updated_at, id);
         PRAGMA user_version = 16;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    assert_eq!(store.inbox(inbox.id).await.unwrap(), Some(inbox.clone()));
    assert_eq!(
        store
            .poll_inbox(inbox.id, "node", 0, at(2), at(60))
            .await
            .unwrap(),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_eighteen_event_log_refers_to_its_conversations_after_the_upgrade_and_reads_the_same()
 {
    use chat_core::ConversationChange;
    use chat_core::store::ConversationUpdate;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eighteen.db");
    let t = tenant(1);
    let k = contact(t.id, 2, "Ann", None);
    let quiet = conversation(t.id, 3, k.id, 0);
    let claimed = conversation(t.id, 4, k.id, 0);
    let read = conversation(t.id, 5, k.id, 0);
    let gone = conversation(t.id, 6, k.id, 0);
    let update = |c: &chat_core::Conversation, secs: i64| {
        let mut next = c.clone();
        next.pinned = !next.pinned;
        next.updated_at = at(secs);
        ConversationUpdate {
            conversation: next,
            change: ConversationChange::Details,
            message: None,
        }
    };
    let logged = {
        let store = SqliteStore::open(&path).unwrap();
        store.insert_tenant(&t).await.unwrap();
        store.insert_contact(&k).await.unwrap();
        for c in [&quiet, &claimed, &read, &gone] {
            store.create_conversation(c, Vec::new()).await.unwrap();
        }
        store
            .append_message(text(&claimed, 10, Sender::Customer, "the kettle leaks", 10))
            .await
            .unwrap();
        let now = store.conversation(t.id, claimed.id).await.unwrap().unwrap();
        store.update_conversation(update(&now, 11)).await.unwrap();
        store
            .append_message(text(&read, 12, Sender::Customer, "hello", 12))
            .await
            .unwrap();
        store
            .set_read_cursor(&chat_core::ReadCursor {
                tenant_id: t.id,
                conversation_id: read.id,
                reader: chat_core::Reader::Customer,
                seq: 1,
                updated_at: at(13),
            })
            .await
            .unwrap();
        store
            .delete_conversation(t.id, gone.id, at(14))
            .await
            .unwrap();
        let logged = store.events_since(t.id, 0, 1000).await.unwrap();
        drop(store);
        // Back to schema 18: every event in full, no `conversation_row` column or index.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(DROP_CONVERSATION_EVENT_REFERENCES)
            .unwrap();
        conn.pragma_update(None, "user_version", 18).unwrap();
        let unparsed: i64 = conn
            .query_row(
                "SELECT count(*) FROM events WHERE message_pk IS NULL AND data ->> '$.seq' IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unparsed, 0, "every conversation event in full");
        logged
    };

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    assert_eq!(
        store.events_since(t.id, 0, 1000).await.unwrap(),
        logged,
        "the log reads back as before the upgrade"
    );
    let slim = |path: &std::path::Path| -> Vec<(String, i64)> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT data ->> '$.payload.type', length(data) FROM events \
                 WHERE conversation_row IS NOT NULL ORDER BY seq",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let kinds = |rows: Vec<(String, i64)>| rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    let rows = slim(&path);
    assert!(rows.iter().all(|(_, len)| *len < 100), "{rows:?}");
    assert_eq!(
        kinds(rows),
        ["conversation_created", "conversation_updated"],
        "the untouched conversation's creation and the claimed one's update; the read \
         conversation's `data` moved with its cursor, the deleted one is gone"
    );
    // Updated after the upgrade: its created event keeps the conversation as opened.
    let now = store.conversation(t.id, quiet.id).await.unwrap().unwrap();
    store.update_conversation(update(&now, 20)).await.unwrap();
    assert_eq!(
        kinds(slim(&path)),
        ["conversation_updated", "conversation_updated"]
    );
    let after = store.events_since(t.id, 0, 1000).await.unwrap();
    assert_eq!(after[..logged.len()], logged[..]);
    assert_eq!(after.len(), logged.len() + 1);
    // Opened with its first messages: the row has them counted, the event is slim with
    // the few fields that differ.
    let opening = conversation(t.id, 7, k.id, 30);
    let opened = store
        .create_conversation(
            &opening,
            vec![text(&opening, 31, Sender::Customer, "hello again", 31)],
        )
        .await
        .unwrap();
    let (patched, len): (i64, i64) = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT json_type(data, '$.conversation.message_count') IS NOT NULL, length(data) \
             FROM events WHERE conversation_row IS NOT NULL AND conversation_id = ?1",
            [opening.id.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(patched, 1);
    assert!(len < 600, "{len} bytes");
    let now = store.events_since(t.id, 0, 1000).await.unwrap();
    assert_eq!(now[after.len()..], opened.events[..]);
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_nineteen_inbox_loses_the_tenant_index_and_lists_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nineteen.db");
    let t = tenant(1);
    let k = contact(t.id, 2, "Ann", None);
    let modes = [Mode::Queued, Mode::Agent, Mode::Closed, Mode::Bot];
    let page = |limit: usize| ConversationQuery {
        limit,
        ..ConversationQuery::new(t.id, Scope::Tenant)
    };
    let listed = {
        let store = SqliteStore::open(&path).unwrap();
        store.insert_tenant(&t).await.unwrap();
        store.insert_contact(&k).await.unwrap();
        for n in 0..12u64 {
            let mut c = conversation(t.id, 10 + n, k.id, n as i64);
            c.mode = modes[n as usize % modes.len()];
            store.create_conversation(&c, Vec::new()).await.unwrap();
            if n % 3 == 0 {
                store
                    .append_message(text(&c, 100 + n, Sender::Customer, "hello", 100 + n as i64))
                    .await
                    .unwrap();
            }
        }
        let listed = store.list_conversations(&page(50)).await.unwrap();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(RESTORE_TENANT_INBOX_INDEX).unwrap();
        conn.pragma_update(None, "user_version", 19).unwrap();
        listed
    };
    // The inbox's order, newest activity first, as SQL sorts it.
    let newest_first: Vec<chat_core::ConversationId> = {
        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn
            .prepare("SELECT id FROM conversations ORDER BY updated_at DESC, id DESC")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, uuid::Uuid>(0))
            .unwrap()
            .map(|id| chat_core::ConversationId(id.unwrap()))
            .collect()
    };
    assert_eq!(newest_first.len(), 12);
    assert_eq!(
        listed.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        newest_first
    );

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
    let indexes: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'conversations_updated'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0, "the index is dropped in place");
    assert_eq!(store.list_conversations(&page(50)).await.unwrap(), listed);
    // Paged five at a time through the merged modes: the same conversations in the same
    // order, each once.
    let mut paged = Vec::new();
    let mut q = page(5);
    loop {
        let p = store.list_conversations(&q).await.unwrap();
        paged.extend(p.items.iter().map(|c| c.id));
        match p.next_cursor {
            Some(cursor) => q.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);
    assert_eq!(store.integrity_check().await.unwrap(), ["ok"]);
}
