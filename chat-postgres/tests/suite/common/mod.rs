//! A PostgreSQL store per test, in a schema of its own (random name, dropped when the test
//! ends), so tests run in parallel against one database.
#![allow(dead_code)]

use chat_postgres::{Options, PostgresStore};
use tokio_postgres::NoTls;

/// Where the tests' database is.
pub const URL_VAR: &str = "CHAT_TEST_POSTGRES_URL";

/// The test that stands in for a file's tests when no database is named: passes with a
/// note, or fails when CI requires its services.
pub fn skipped() {
    let required = std::env::var("CHAT_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "CHAT_REQUIRE_SERVICES=1 but {URL_VAR} was unset when the tests were built"
    );
    println!("skipped: {URL_VAR} unset");
}

/// The database URL; the tests were compiled because it was set.
pub fn url() -> String {
    std::env::var(URL_VAR)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{URL_VAR} was set when the tests were built; set it again"))
}

/// A schema that is dropped, with everything in it, when this is.
pub struct Schema {
    url: String,
    /// The schema's name.
    pub name: String,
}

impl Schema {
    /// Creates a schema with a random name.
    pub async fn create() -> Self {
        let url = url();
        let name = format!("chat_test_{}", uuid::Uuid::new_v4().simple());
        let (client, connection) = tokio_postgres::connect(&url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"));
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create schema");
        drop(client);
        let _ = connection.await;
        Self { url, name }
    }

    /// A store on this schema.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(
            &self.url,
            Options::default().schema(&self.name).pool_size(8),
        )
        .await
        .expect("connect store")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await, and the test's runtime may be shutting down: a thread of its
        // own with a small runtime drops the schema.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
                let connection = tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await?;
                drop(client);
                let _ = connection.await;
                Ok::<_, tokio_postgres::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// A fresh store in a fresh schema, and the schema to keep alive for the test.
pub async fn store() -> (PostgresStore, Schema) {
    let schema = Schema::create().await;
    let store = schema.store().await;
    (store, schema)
}
