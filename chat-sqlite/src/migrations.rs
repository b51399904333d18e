//! Numbered schema migrations, embedded in the binary and tracked by `PRAGMA user_version`.

use std::path::Path;

use chat_core::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};

use crate::error::Db;

/// The migrations, in order: the database is at version `n` once the first `n` have run.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_message_search.sql"),
    include_str!("../migrations/0003_credentials.sql"),
];

/// The schema version this build writes. A database with a higher version is refused.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per migration, so a crash
/// mid-way leaves a database at a known version.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes
        // opening the same new file cannot both run a migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .db()?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(Error::Storage(format!(
                "{}: schema version {version} is newer than this build of chat-sqlite knows (version {}); \
                 open it with the newer chat-sqlite that wrote it",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        let Some(sql) = MIGRATIONS.get(version) else {
            return Ok(());
        };
        tx.execute_batch(sql).map_err(|e| {
            Error::Storage(format!(
                "{}: migration {} failed: {e}",
                path.display(),
                version + 1
            ))
        })?;
        tx.pragma_update(None, "user_version", version as i64 + 1)
            .db()?;
        tx.commit().db()?;
    }
}
