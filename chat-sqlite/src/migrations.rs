//! Numbered schema migrations, embedded in the binary and tracked by `PRAGMA user_version`.

use std::path::Path;

use chat_core::{
    Account, Contact, Conversation, ConversationChange, Error, Event, EventPayload, Result,
    VisitorToken,
};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::codec::{
    ACTIVITY_ASSIGNMENTS, Activity, REPORT_ASSIGNMENTS, ReportColumns, from_json, ns, to_json,
};
use crate::error::Db;
use crate::names::{legacy_name_digest, name_key};

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
    Migration {
        sql: include_str!("../migrations/0006_identity.sql"),
        fill: Some(fill_identity),
    },
    Migration {
        sql: include_str!("../migrations/0007_conversation_counts.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0008_desk.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0009_reports.sql"),
        fill: Some(fill_reports),
    },
    Migration {
        sql: include_str!("../migrations/0010_webhooks.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0011_title_contact_words.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0012_inboxes.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0013_identity_signatures.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0014_event_references.sql"),
        fill: Some(crate::events::slim_logged),
    },
    Migration {
        sql: include_str!("../migrations/0015_presence.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0016_mail.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0017_preview_metadata.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0018_inbox_polls.sql"),
        fill: None,
    },
    Migration {
        sql: include_str!("../migrations/0019_conversation_event_references.sql"),
        fill: Some(crate::events::slim_logged_conversations),
    },
    Migration {
        sql: include_str!("../migrations/0020_inbox_by_mode.sql"),
        fill: None,
    },
];

/// Where schema 5 kept a customer account's password hash: in the contact's metadata.
const LEGACY_PASSWORD_KEY: &str = "account.password_hash";

/// Version 6: customer accounts move out of contact metadata and the visitor-token table
/// into `accounts` and `account_names`, and visitor tokens get their contact columns.
///
/// Schema 5 kept, per account, the argon2id hash in the contact's metadata and one
/// visitor-token row per login name, keyed `account:<sha256(tenant:name)>`. The username
/// was also the contact's `external_id`, so it is read back; other names (aliases) cannot
/// be, so their digests move to `account_name_digests`, where logins still find them.
/// Every e-mail stays an unverified claim: nothing of schema 5 proves who typed it.
fn fill_identity(conn: &Connection) -> Result<()> {
    let mut legacy_names: Vec<(String, VisitorToken)> = Vec::new();
    {
        let mut select = conn
            .prepare("SELECT digest, data FROM visitor_tokens")
            .db()?;
        let mut rows = select.query([]).db()?;
        let mut update = conn
            .prepare("UPDATE visitor_tokens SET tenant_id = ?2, contact_id = ?3 WHERE digest = ?1")
            .db()?;
        while let Some(row) = rows.next().db()? {
            let digest: String = row.get(0).db()?;
            let token: VisitorToken = from_json("visitor_tokens", &row.get::<_, String>(1).db()?)?;
            if digest.starts_with("account:") {
                legacy_names.push((digest, token));
            } else {
                update
                    .execute(params![digest, token.tenant_id.0, token.contact_id.0])
                    .db()?;
            }
        }
    }
    conn.execute(
        "DELETE FROM visitor_tokens WHERE digest LIKE 'account:%'",
        [],
    )
    .db()?;

    let mut accounts = Vec::new();
    {
        let mut select = conn.prepare("SELECT data FROM contacts").db()?;
        let mut rows = select.query([]).db()?;
        while let Some(row) = rows.next().db()? {
            let contact: Contact = from_json("contact", &row.get::<_, String>(0).db()?)?;
            if contact.metadata.contains_key(LEGACY_PASSWORD_KEY) {
                accounts.push(contact);
            }
        }
    }
    for mut contact in accounts {
        let hash = contact
            .metadata
            .remove(LEGACY_PASSWORD_KEY)
            .expect("selected for it");
        let username = contact
            .external_id
            .clone()
            .or_else(|| contact.name.clone())
            .unwrap_or_else(|| contact.id.to_string());
        let account = Account {
            tenant_id: contact.tenant_id,
            contact_id: contact.id,
            username: username.clone(),
            email: contact.email.clone(),
            disabled: false,
            created_at: contact.created_at,
            updated_at: contact.updated_at,
        };
        conn.execute(
            "UPDATE contacts SET data = ?2 WHERE id = ?1",
            params![contact.id.0, to_json(&contact)?],
        )
        .db()?;
        conn.execute(
            "INSERT INTO accounts (contact_id, tenant_id, email_lc, password_hash, data) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                contact.id.0,
                contact.tenant_id.0,
                account.email.as_deref().map(str::to_ascii_lowercase),
                hash,
                to_json(&account)?
            ],
        )
        .db()?;
        conn.execute(
            "INSERT OR IGNORE INTO account_names (tenant_id, name_lc, contact_id) VALUES (?1, ?2, ?3)",
            params![contact.tenant_id.0, name_key(&username), contact.id.0],
        )
        .db()?;
        let own = legacy_name_digest(contact.tenant_id, &name_key(&username));
        for (digest, record) in &legacy_names {
            if record.contact_id == contact.id && *digest != own {
                conn.execute(
                    "INSERT OR IGNORE INTO account_name_digests (digest, contact_id) VALUES (?1, ?2)",
                    params![digest, contact.id.0],
                )
                .db()?;
            }
        }
    }
    Ok(())
}

/// Version 4: copies each conversation's activity fields from its `data` into the new
/// columns.
fn fill_activity(conn: &Connection) -> Result<()> {
    fill_columns(conn, ACTIVITY_ASSIGNMENTS, Activity::of, Activity::params)
}

/// Copies columns derived from each conversation's `data` (by `of`, bound by `params` to
/// the `assignments`, which take the id as `?1`): how a migration fills columns it adds.
fn fill_columns<T, const N: usize>(
    conn: &Connection,
    assignments: &str,
    of: fn(&Conversation) -> Result<T>,
    params: for<'a> fn(&'a T) -> [&'a dyn rusqlite::ToSql; N],
) -> Result<()> {
    let mut select = conn.prepare("SELECT id, data FROM conversations").db()?;
    let mut update = conn
        .prepare(&format!(
            "UPDATE conversations SET {assignments} WHERE id = ?1"
        ))
        .db()?;
    let mut rows = select.query([]).db()?;
    while let Some(row) = rows.next().db()? {
        let id: uuid::Uuid = row.get(0).db()?;
        let data: String = row.get(1).db()?;
        let columns = of(&from_json("conversation", &data)?)?;
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&id];
        values.extend(params(&columns));
        update.execute(values.as_slice()).db()?;
    }
    Ok(())
}

/// Version 9: copies each conversation's report columns from its `data`, and a reopen mark
/// for every `reopened` change in the event log (of conversations still there).
fn fill_reports(conn: &Connection) -> Result<()> {
    fill_columns(
        conn,
        REPORT_ASSIGNMENTS,
        ReportColumns::of,
        ReportColumns::params,
    )?;
    // Only updates can be reopens; the LIKE skips decoding every other event.
    let mut select = conn
        .prepare("SELECT data FROM events WHERE data LIKE '%\"reopened\"%'")
        .db()?;
    let mut insert = conn
        .prepare(
            "INSERT INTO conversation_reopens (conversation_id, tenant_id, at) \
             SELECT id, tenant_id, ?2 FROM conversations WHERE id = ?1",
        )
        .db()?;
    let mut rows = select.query([]).db()?;
    while let Some(row) = rows.next().db()? {
        let event: Event = from_json("event", &row.get::<_, String>(0).db()?)?;
        if let EventPayload::ConversationUpdated {
            conversation,
            change: ConversationChange::Reopened,
        } = &event.payload
        {
            insert
                .execute(params![conversation.id.0, ns(event.at)?])
                .db()?;
        }
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
            return Err(Error::storage_kind(
                chat_core::StorageKind::Corrupt,
                format!(
                    "{}: schema version {version} is newer than this build of chat-sqlite knows (version {}); \
                 open it with the newer chat-sqlite that wrote it",
                    path.display(),
                    MIGRATIONS.len()
                ),
            ));
        }
        let Some(migration) = MIGRATIONS.get(version) else {
            return Ok(());
        };
        let failed = |e: &dyn std::fmt::Display| {
            Error::storage(format!(
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
