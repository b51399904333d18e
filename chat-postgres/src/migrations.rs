//! Versioned schema migrations, embedded in the crate and tracked in `schema_migrations`.
//!
//! Several servers may start at once against one database, so migrations run under a
//! transaction-scoped advisory lock: the first applies what is missing, the others wait
//! and then find nothing left to do. The migrations commit together with their rows in
//! `schema_migrations` (PostgreSQL DDL is transactional), so a failure leaves the schema
//! as it was.

use chat_core::{Error, Result, StorageKind};
use deadpool_postgres::Client;

use crate::error::Db;

/// The migrations in order; version `n` is `MIGRATIONS[n - 1]`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_desk.sql"),
    include_str!("../migrations/0003_webhooks.sql"),
    include_str!("../migrations/0004_reports.sql"),
    include_str!("../migrations/0005_inboxes.sql"),
    include_str!("../migrations/0006_identity_signatures.sql"),
    include_str!("../migrations/0007_presence.sql"),
    include_str!("../migrations/0008_mail.sql"),
    include_str!("../migrations/0009_inbox_polls.sql"),
    // The file adds the reference column; the statement slims the events already logged.
    concat!(
        include_str!("../migrations/0010_event_references.sql"),
        crate::events::slim_logged!()
    ),
    // The column and index; the latest conversation events are slimmed by
    // `events::slim_logged_conversations` after it (see `migrate`).
    include_str!("../migrations/0011_conversation_event_references.sql"),
];

/// The version whose SQL is followed by [`crate::events::slim_logged_conversations`], in
/// Rust: it compares each event with the conversation a read would rebuild, times to the
/// nanosecond, which `timestamptz` cannot hold.
const SLIM_CONVERSATION_EVENTS: i32 = 11;

/// The schema version this build of the crate creates and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// An arbitrary constant key for `pg_advisory_xact_lock`: "chat" in ASCII, shared by every
/// node that migrates the same database.
const MIGRATION_LOCK: i64 = 0x6368_6174;

/// Brings the schema of the connection's `search_path` up to [`SCHEMA_VERSION`].
/// [`StorageKind::Corrupt`] for a database migrated by a newer build.
pub(crate) async fn migrate(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await.db()?;
    // The lock comes before anything else, the bookkeeping table included: two nodes
    // running `CREATE TABLE IF NOT EXISTS` at once can both pass the "not exists" check and
    // one then fails on the catalog's unique index (42710 or 23505), which once failed CI.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .db()?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .db()?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .db()?
        .get(0);
    let current = u32::try_from(current).unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(Error::storage_kind(
            StorageKind::Corrupt,
            format!(
                "the database has schema version {current}; this build of chat-postgres reads up to {SCHEMA_VERSION}"
            ),
        ));
    }
    for (version, sql) in (1_i32..).zip(MIGRATIONS).skip(current as usize) {
        tx.batch_execute(sql).await.db()?;
        if version == SLIM_CONVERSATION_EVENTS {
            crate::events::slim_logged_conversations(&tx).await?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .db()?;
        tracing::info!(version, "chat-postgres: schema migrated");
    }
    tx.commit().await.db()
}
