//! `PostgresStore::copy_from_sqlite`: what it refuses, and that a refused copy leaves the
//! database empty. (The whole copy of a desk used over HTTP is
//! chat-server's `tests/suite/migrate.rs`.)

use crate::common;

#[cfg(chat_test_postgres)]
mod copy {
    use chat_core::Credentials;
    use chat_core::export::{ExportHeader, ExportOptions, export_end_line};

    use super::common;

    fn header(store: &str, secrets: bool) -> String {
        ExportHeader::new(
            store,
            chat_postgres::SQLITE_SCHEMA,
            chat_core::TenantId(uuid::Uuid::new_v4()),
            ExportOptions {
                secrets,
                portable: true,
            },
        )
        .line()
    }

    /// A tenant row as chat-sqlite exports it.
    fn tenant_row() -> String {
        let data = serde_json::json!({
            "id": uuid::Uuid::new_v4(),
            "name": "Acme",
            "settings": {},
            "created_at": "2026-12-07T05:00:00Z",
        });
        serde_json::json!({ "kind": "tenants", "row": { "id": data["id"], "data": data.to_string() } })
            .to_string()
    }

    async fn copy(
        store: &chat_postgres::PostgresStore,
        lines: Vec<String>,
    ) -> chat_core::Result<chat_postgres::CopySummary> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let feed = tokio::spawn(async move {
            for line in lines {
                tx.send(line).await.unwrap();
            }
        });
        let copied = store.copy_from_sqlite(rx).await;
        feed.await.unwrap();
        copied
    }

    #[tokio::test]
    async fn a_cut_off_stream_copies_nothing() {
        let (store, _schema) = common::store().await;
        let err = copy(&store, vec![header("sqlite", true), tenant_row()])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("cut off"), "{err}");
        let err = copy(
            &store,
            vec![header("sqlite", true), tenant_row(), export_end_line(2)],
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("counts 2 records"), "{err}");
        assert!(store.tenants().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn only_portable_sqlite_exports_with_secrets_are_copied() {
        let (store, _schema) = common::store().await;
        // A plain export (the header's store without `+values`), another store's, and
        // one without secrets (staff could not sign in after it).
        let plain = ExportHeader::new(
            "sqlite",
            chat_postgres::SQLITE_SCHEMA,
            chat_core::TenantId(uuid::Uuid::new_v4()),
            ExportOptions::default(),
        )
        .line();
        for (first, why) in [
            (plain, "portable exports of chat-sqlite"),
            (header("postgres", true), "portable exports of chat-sqlite"),
            (header("sqlite", false), "needs the secrets"),
        ] {
            let err = copy(&store, vec![first, tenant_row(), export_end_line(1)])
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(store.tenants().await.unwrap().is_empty());
        // The same tenant in the portable form goes in.
        let copied = copy(
            &store,
            vec![header("sqlite", true), tenant_row(), export_end_line(1)],
        )
        .await
        .unwrap();
        assert_eq!(copied.rows.get("tenants"), Some(&1));
        assert_eq!(store.tenants().await.unwrap().len(), 1);
        // And a second copy is refused: the database holds data.
        let err = copy(
            &store,
            vec![header("sqlite", true), tenant_row(), export_end_line(1)],
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("already holds data"), "{err}");
    }
}

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}
