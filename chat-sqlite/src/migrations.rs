//! Numbered schema migrations, embedded in the binary and tracked by `PRAGMA user_version`.

use std::path::Path;

use chat_core::{Conversation, Error, Result};
use rusqlite::{Connection, TransactionBehavior};

use crate::codec::{ACTIVITY_ASSIGNMENTS, Activity, from_json};
use crate::error::Db;

/// One schema step: its SQL, then an optional data step in Rust in the same transaction.
struct Migration {
    sql: &'static str,
    fill: Option<fn(&Connection) -> Result<()>>,
}

/// The migrations, in order: the database is at version `n` once the first `n` have run.
const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: include_str!("../migrations/0001_init.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0002_message_search.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0003_credentials.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0004_conversation_activity.sql"),
        fill: Some(fill_activity),
    },
    Migration {
        sql: include_str!("../migrations/0005_search_file.sql"),
        fill: None,
    },
];

/// Version 4: copies each conversation's activity fields from its `data` into the new
/// columns.
fn fill_activity(conn: &Connection) -> Result<()> {
    let mut select = conn.prepare("SELECT id, data FROM conversations").db()?;
    let mut update = conn
        .prepare(&format!(
            "UPDATE conversations SET {ACTIVITY_ASSIGNMENTS} WHERE id = ?1"
        ))
        .db()?;
    let mut rows = select.query([]).db()?;
    while let Some(row) = rows.next().db()? {
        let id: uuid::Uuid = row.get(0).db()?;
        let data: String = row.get(1).db()?;
        let conversation: Conversation = from_json("conversation", &data)?;
        let activity = Activity::of(&conversation)?;
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&id];
        values.extend(activity.params());
        update.execute(values.as_slice()).db()?;
    }
    Ok(())
}

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
        let Some(migration) = MIGRATIONS.get(version) else {
            return Ok(());
        };
        let failed = |e: &dyn std::fmt::Display| {
            Error::Storage(format!(
                "{}: migration {} failed: {e}",
                path.display(),
                version + 1
            ))
        };
        tx.execute_batch(migration.sql).map_err(|e| failed(&e))?;
        if let Some(fill) = migration.fill {
            fill(&tx).map_err(|e| failed(&e))?;
        }
        tx.pragma_update(None, "user_version", version as i64 + 1)
            .db()?;
        tx.commit().db()?;
    }
}
