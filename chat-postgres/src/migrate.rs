//! A whole SQLite database copied into an empty PostgreSQL one (`chat-server migrate`).
//!
//! The copy reads the tenant exports of chat-sqlite ([`chat_core::export`]) written with
//! [`ExportOptions::portable`](chat_core::export::ExportOptions::portable) and secrets, one
//! after another on one stream: the rows this store keeps in the same columns go in through
//! `json_populate_record` as the tenant import does, and the rows it lays out differently
//! (search words, arrays, times in other columns) are read as domain values and written by
//! the same functions as every other write here, so a copied row is the row this store
//! would have written itself. All tenants go in one transaction: all of the database or,
//! on any error, nothing. At the end the rows of each table are counted against the lines
//! read, before the commit.
//!
//! Lines arrive through a bounded channel, so the copy holds a few rows at a time however
//! large the database is.

use std::collections::BTreeMap;

use chat_core::export::{ExportHeader, Line, PORTABLE_SUFFIX, line_error, parse_line};
use chat_core::{
    Agent, BotToken, Contact, Conversation, Error, Message, Result, Tenant, TenantId, VisitorToken,
};
use deadpool_postgres::Transaction;
use serde_json::{Map, Value};
use tokio_postgres::types::Json;

use crate::codec::ns;
use crate::error::Db;
use crate::store::{PostgresStore, insert_contact_in, insert_message, put_agent, put_conversation};

/// The oldest chat-sqlite schema whose export layout this copy reads (its tables and
/// columns as of `0016_mail.sql`); later schemas that only add tables or columns still
/// read, and a table it does not know is refused by name.
pub const SQLITE_SCHEMA: u32 = 16;

/// What a copy brought in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopySummary {
    /// The tenants copied, in stream order.
    pub tenants: Vec<TenantId>,
    /// Rows written per table of this store, each checked against the table's count.
    pub rows: BTreeMap<String, u64>,
    /// Rows read and not carried, per SQLite table, with why (see [`SKIPPED`]).
    pub skipped: BTreeMap<String, u64>,
}

/// SQLite tables whose rows this store has no place for, and why.
pub const SKIPPED: &[(&str, &str)] = &[(
    "account_name_digests",
    "login names of SQLite schema 5 kept only as a digest: those customers sign in with their e-mail, or an admin sets the name again",
)];

impl PostgresStore {
    /// Copies the tenant exports that `lines` carries (header, rows, end line, then the
    /// next tenant's header …) into this database, which must hold no data; see the module
    /// docs. Errors name the line (counted from 1 over the whole stream).
    pub async fn copy_from_sqlite(
        &self,
        mut lines: tokio::sync::mpsc::Receiver<String>,
    ) -> Result<CopySummary> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
        let copied = match copy_in(&tx, &mut lines).await {
            // SQLite's portable export writes every event out in full; those whose message
            // or conversation is unchanged refer to its row here, as this store's own
            // writes do.
            Ok(summary) => match tx.batch_execute(crate::events::slim_logged!()).await.db() {
                Ok(()) => crate::events::slim_logged_conversations(&tx)
                    .await
                    .map(|()| summary),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match copied {
            Ok(summary) => {
                tx.commit().await.db()?;
                Ok(summary)
            }
            Err(e) => {
                // At once, not when the pooled connection is next used: the copy's rows
                // hold locks on every table until then.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

/// The copy's rows, read from `lines` and written in `tx`; see [`PostgresStore::copy_from_sqlite`].
async fn copy_in(
    tx: &Transaction<'_>,
    lines: &mut tokio::sync::mpsc::Receiver<String>,
) -> Result<CopySummary> {
    let held: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM agents) \
             + (SELECT count(*) FROM contacts) + (SELECT count(*) FROM events)",
            &[],
        )
        .await
        .db()?
        .get(0);
    if held > 0 {
        return Err(Error::validation(
            "database",
            "the PostgreSQL database already holds data; a copy only goes into an empty database",
        ));
    }
    let mut summary = CopySummary::default();
    let mut n = 0usize;
    // The current tenant and its row lines so far; `None` between exports.
    let mut open: Option<(TenantId, u64)> = None;
    while let Some(line) = lines.recv().await {
        n += 1;
        let Some((tenant, records)) = open.as_mut() else {
            let header: ExportHeader = serde_json::from_str(&line)
                .map_err(|_| line_error(n, "not a chat-export header"))?;
            check_header(&header).map_err(|e| line_error(n, e))?;
            summary.tenants.push(header.tenant);
            open = Some((header.tenant, 0));
            continue;
        };
        match parse_line(n, &line)? {
            Line::Row(kind, row) => {
                *records += 1;
                if SKIPPED.iter().any(|(t, _)| *t == kind) {
                    *summary.skipped.entry(kind).or_default() += 1;
                    continue;
                }
                let table = copy_row(tx, &kind, row)
                    .await
                    .map_err(|e| line_error(n, format!("{kind}: {e}")))?;
                *summary.rows.entry(table.to_owned()).or_default() += 1;
            }
            Line::End(count) if count == *records => {
                event_head(tx, *tenant).await?;
                open = None;
            }
            Line::End(count) => {
                return Err(line_error(
                    n,
                    format!("the end line counts {count} records, the export has {records}"),
                ));
            }
        }
    }
    if open.is_some() {
        return Err(Error::validation(
            "export",
            "the stream ended inside a tenant's export (cut off?); nothing was copied",
        ));
    }
    if summary.tenants.is_empty() {
        return Err(Error::validation("export", "nothing to copy: no tenant"));
    }
    for (table, expected) in &summary.rows {
        // The target was empty: every row of the table is one this copy wrote.
        let held: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .db()?
            .get(0);
        if held != *expected as i64 {
            return Err(Error::storage(format!(
                "after the copy {table} holds {held} rows, {expected} were read; nothing was copied"
            )));
        }
    }
    Ok(summary)
}

fn check_header(header: &ExportHeader) -> std::result::Result<(), String> {
    if header.kind != "header" || header.format != chat_core::export::EXPORT_FORMAT {
        return Err("not a chat-export header".into());
    }
    if header.version != chat_core::export::EXPORT_VERSION {
        return Err(format!("export format version {}", header.version));
    }
    if header.store != format!("sqlite{PORTABLE_SUFFIX}") || header.schema < SQLITE_SCHEMA {
        return Err(format!(
            "a copy reads portable exports of chat-sqlite at schema {SQLITE_SCHEMA} or later, not {} at {}",
            header.store, header.schema
        ));
    }
    if !header.secrets {
        return Err("a copy needs the secrets (staff logins, tokens) in the export".into());
    }
    Ok(())
}

/// The tenant's event head: its newest sequence, so the next event follows the copied log.
async fn event_head(tx: &Transaction<'_>, tenant: TenantId) -> Result<()> {
    tx.execute(
        "INSERT INTO event_heads (tenant_id, last_seq) \
         SELECT $1, max(seq) FROM events WHERE tenant_id = $1 HAVING max(seq) IS NOT NULL",
        &[&tenant.0],
    )
    .await
    .db()?;
    Ok(())
}

/// A domain value from a SQLite `data` column (JSON text) or a portable `value` (JSON).
fn value<T: serde::de::DeserializeOwned>(row: &mut Map<String, Value>, column: &str) -> Result<T> {
    let v = row
        .remove(column)
        .ok_or_else(|| Error::validation("export", format!("no {column} column")))?;
    let v = match v {
        Value::String(text) => serde_json::from_str(&text),
        other => serde_json::from_value(other),
    };
    v.map_err(|e| Error::validation("export", format!("{column}: {e}")))
}

/// A SQLite column of JSON text, as the JSON it holds (this store's `jsonb`).
fn parse_json_column(row: &mut Map<String, Value>, column: &str) -> Result<()> {
    if let Some(Value::String(text)) = row.get(column) {
        let parsed = serde_json::from_str(text)
            .map_err(|e| Error::validation("export", format!("{column}: {e}")))?;
        row.insert(column.to_owned(), parsed);
    }
    Ok(())
}

/// A SQLite column renamed to this store's name for it.
fn rename(row: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = row.remove(from) {
        row.insert(to.to_owned(), v);
    }
}

/// Writes one SQLite row; returns the table of this store it went into.
async fn copy_row(
    tx: &Transaction<'_>,
    kind: &str,
    mut row: Map<String, Value>,
) -> Result<&'static str> {
    match kind {
        "tenants" => {
            let tenant: Tenant = value(&mut row, "data")?;
            tx.execute(
                "INSERT INTO tenants (id, created_at_ns, data) VALUES ($1, $2, $3)",
                &[&tenant.id.0, &ns(tenant.created_at)?, &Json(&tenant)],
            )
            .await
            .db()?;
            Ok("tenants")
        }
        "agents" => {
            let agent: Agent = value(&mut row, "data")?;
            put_agent(tx, &agent, true).await?;
            Ok("agents")
        }
        "contacts" => {
            let contact: Contact = value(&mut row, "data")?;
            insert_contact_in(tx, &contact).await?;
            Ok("contacts")
        }
        "conversations" => {
            let conversation: Conversation = value(&mut row, "value")?;
            put_conversation(tx, &conversation, true).await?;
            Ok("conversations")
        }
        "messages" => {
            let message: Message = value(&mut row, "value")?;
            insert_message(tx, &message).await?;
            Ok("messages")
        }
        "visitor_tokens" => {
            let token: VisitorToken = value(&mut row, "data")?;
            tx.execute(
                "INSERT INTO visitor_tokens (digest, tenant_id, contact_id, conversation_id, data) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &token.digest,
                    &token.tenant_id.0,
                    &token.contact_id.0,
                    &token.conversation_id.map(|c| c.0),
                    &Json(&token),
                ],
            )
            .await
            .db()?;
            Ok("visitor_tokens")
        }
        "bot_tokens" => {
            let token: BotToken = value(&mut row, "data")?;
            tx.execute(
                "INSERT INTO bot_tokens (digest, tenant_id, created_at_ns, data) VALUES ($1, $2, $3, $4)",
                &[
                    &token.digest,
                    &token.tenant_id.0,
                    &ns(token.created_at)?,
                    &Json(&token),
                ],
            )
            .await
            .db()?;
            Ok("bot_tokens")
        }
        _ => copy_plain(tx, kind, row).await,
    }
}

/// Tables laid out alike in both stores but for a column's name or JSON kept as text:
/// adjusted here, then inserted as the tenant import inserts.
async fn copy_plain(
    tx: &Transaction<'_>,
    kind: &str,
    mut row: Map<String, Value>,
) -> Result<&'static str> {
    let table: &'static str = match kind {
        "credentials" => "credentials",
        "accounts" => {
            parse_json_column(&mut row, "data")?;
            "accounts"
        }
        "account_names" => "account_names",
        "read_cursors" => {
            // This store keeps no separate update time: the cursor's value holds it.
            row.remove("updated_at");
            parse_json_column(&mut row, "data")?;
            "read_cursors"
        }
        "conversation_reopens" => {
            rename(&mut row, "at", "at_ns");
            "conversation_reopens"
        }
        "events" => {
            parse_json_column(&mut row, "data")?;
            "events"
        }
        "canned_responses" => {
            // SQLite marks a shared response with an empty owner, this store with the nil id.
            if row.get("owner_key").and_then(Value::as_str) == Some("base64:") {
                row.insert(
                    "owner_key".into(),
                    Value::String(uuid::Uuid::nil().to_string()),
                );
            }
            parse_json_column(&mut row, "data")?;
            "canned_responses"
        }
        "mentions" => {
            rename(&mut row, "at", "at_ns");
            rename(&mut row, "read_at", "read_at_ns");
            parse_json_column(&mut row, "data")?;
            "mentions"
        }
        "webhooks" => "webhooks",
        "webhook_deliveries" => "webhook_deliveries",
        "inboxes" => "inboxes",
        "inbox_threads" => "inbox_threads",
        "routing_turns" => "routing_turns",
        "mail_outbox" => "mail_outbox",
        other => {
            return Err(Error::validation(
                "export",
                format!("a table this copy does not know: {other:?}"),
            ));
        }
    };
    let sql = format!(
        "INSERT INTO {table} SELECT * FROM json_populate_record(NULL::{table}, $1::text::json)"
    );
    let stmt = tx.prepare_cached(&sql).await.db()?;
    tx.execute(&stmt, &[&Value::Object(row).to_string()])
        .await
        .db()?;
    Ok(table)
}
