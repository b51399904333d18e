//! The tenant export ([`chat_core::export`]) of a SQLite database, and its import into an
//! empty one.
//!
//! Lines are the database's rows: `kind` is the table, `row` its columns by name.
//! `INTEGER` columns are JSON numbers, `TEXT` columns strings (the JSON documents in
//! `data` columns stay strings, byte for byte), `BLOB` columns (ids) the UUID in its
//! hyphenated form, or `base64:…` for a blob that is not 16 bytes. `messages.pk` is left
//! out: it is this file's row number, which the import gives again.
//!
//! Derived tables are not exported: `conversation_counts` (kept by triggers as rows go in)
//! and the search index (rebuilt beside the database when the store opens it). Nor are
//! `presence_leases`: they are the running servers' claims, which mean nothing elsewhere.

use std::io::BufRead;
use std::path::Path;

use base64::Engine as _;
use chat_core::export::{
    ExportHeader, ExportOptions, ExportSink, ImportReader, ImportSummary, export_end_line,
    line_error, send_line,
};
use chat_core::{Error, Result, TenantId};
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};
use uuid::Uuid;

use crate::error::Db;
use crate::migrations::SCHEMA_VERSION;

/// One exported table: its name (the lines' `kind`), the rows of a tenant (`?1` its id
/// as stored, `?2` as text, for tables that keep it in a JSON document only), their
/// order (fixed, so that exports of one state are the same bytes), and whether it holds
/// secrets only.
struct Table {
    name: &'static str,
    tenant_rows: &'static str,
    order: &'static str,
    secret: bool,
}

const fn table(name: &'static str, tenant_rows: &'static str, order: &'static str) -> Table {
    Table {
        name,
        tenant_rows,
        order,
        secret: false,
    }
}

const IN_TENANT_CONVERSATIONS: &str =
    "conversation_id IN (SELECT id FROM conversations WHERE tenant_id = ?1)";

/// Every table a tenant owns, parents before children: an import inserts in file order,
/// and the counting triggers need a conversation in place before its tags.
const TABLES: &[Table] = &[
    table("tenants", "id = ?1", "id"),
    table("agents", "tenant_id = ?1", "id"),
    Table {
        secret: true,
        ..table(
            "credentials",
            "agent_id IN (SELECT id FROM agents WHERE tenant_id = ?1)",
            "agent_id",
        )
    },
    table("contacts", "tenant_id = ?1", "id"),
    table("accounts", "tenant_id = ?1", "contact_id"),
    table("account_names", "tenant_id = ?1", "name_lc"),
    Table {
        secret: true,
        ..table(
            "account_name_digests",
            "contact_id IN (SELECT contact_id FROM accounts WHERE tenant_id = ?1)",
            "digest",
        )
    },
    Table {
        secret: true,
        ..table("visitor_tokens", "tenant_id = ?1", "digest")
    },
    Table {
        secret: true,
        ..table(
            "bot_tokens",
            "json_extract(data, '$.tenant_id') = ?2",
            "digest",
        )
    },
    table("conversations", "tenant_id = ?1", "id"),
    table(
        "conversation_tags",
        IN_TENANT_CONVERSATIONS,
        "conversation_id, tag",
    ),
    table(
        "conversation_participants",
        IN_TENANT_CONVERSATIONS,
        "conversation_id, agent_id",
    ),
    table("messages", "tenant_id = ?1", "pk"),
    table(
        "read_cursors",
        IN_TENANT_CONVERSATIONS,
        "conversation_id, reader",
    ),
    table("conversation_reopens", "tenant_id = ?1", "rowid"),
    table("events", "tenant_id = ?1", "seq"),
    table("canned_responses", "tenant_id = ?1", "id"),
    table("mentions", "tenant_id = ?1", "message_id, agent_id"),
    table("webhooks", "tenant_id = ?1", "id"),
    table("webhook_deliveries", "tenant_id = ?1", "webhook_id, seq"),
    table("inboxes", "tenant_id = ?1", "id"),
    table("inbox_threads", "tenant_id = ?1", "inbox_id, external_id"),
    table("routing_turns", "tenant_id = ?1", "tenant_id"),
    table("mail_outbox", "tenant_id = ?1", "id"),
];

/// Columns that hold a secret in a table that is exported without secrets: emptied.
const SECRET_COLUMNS: &[(&str, &str)] = &[
    ("accounts", "password_hash"),
    ("webhooks", "secret"),
    ("inboxes", "token_digest"),
    ("inboxes", "secrets"),
];

/// Columns that are this file's and not the tenant's.
/// (`events.message_pk` names a `messages.pk`: a slim event is exported in full.)
const LOCAL_COLUMNS: &[(&str, &str)] = &[("messages", "pk"), ("events", "message_pk")];

/// A table's columns, in declared order, with whether each is declared `BLOB`.
fn columns(conn: &Connection, table: &str) -> Result<Vec<(String, bool)>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid"
        ))
        .db()?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (name, ty) = row.db()?;
        if LOCAL_COLUMNS.contains(&(table, name.as_str())) {
            continue;
        }
        out.push((name, ty.eq_ignore_ascii_case("BLOB")));
    }
    Ok(out)
}

/// Streams the tenant's rows from `conn`, in one read transaction (one state of the
/// database, however long the reader takes). Blocking: run off the async workers.
pub(crate) fn export_tenant(
    conn: &Connection,
    tenant: TenantId,
    options: ExportOptions,
    out: &ExportSink,
) -> Result<u64> {
    let tx = conn.unchecked_transaction().db()?;
    send_line(
        out,
        ExportHeader::new("sqlite", SCHEMA_VERSION, tenant, options).line(),
    )?;
    let mut records = 0u64;
    for table in TABLES {
        if table.secret && !options.secrets {
            continue;
        }
        if table.name == "events" {
            records += export_events(&tx, tenant, out)?;
            continue;
        }
        if options.portable {
            match table.name {
                "conversations" => {
                    records += export_values(
                        &tx,
                        tenant,
                        out,
                        table.name,
                        PORTABLE_CONVERSATIONS,
                        |row| {
                            crate::codec::conversation_from_row(row)
                                .and_then(|c| crate::codec::to_json(&c))
                        },
                    )?;
                    continue;
                }
                "messages" => {
                    records += export_values(
                        &tx,
                        tenant,
                        out,
                        table.name,
                        &format!(
                            "SELECT {} FROM messages WHERE tenant_id = ?1 ORDER BY pk",
                            crate::codec::MESSAGE_COLUMNS
                        ),
                        |row| {
                            crate::codec::message_from_row(row)
                                .and_then(|m| crate::codec::to_json(&m))
                        },
                    )?;
                    continue;
                }
                // In the conversation's value.
                "conversation_tags" | "conversation_participants" => continue,
                _ => {}
            }
        }
        let columns = columns(&tx, table.name)?;
        let list = columns
            .iter()
            .map(|(name, _)| format!("\"{name}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {list} FROM {} WHERE {} ORDER BY {}",
            table.name, table.tenant_rows, table.order
        );
        let mut stmt = tx.prepare(&sql).db()?;
        let id = tenant.as_uuid();
        let text = id.hyphenated().to_string();
        let mut rows = if table.tenant_rows.contains("?2") {
            stmt.query(rusqlite::params![id, text]).db()?
        } else {
            stmt.query([id]).db()?
        };
        while let Some(row) = rows.next().db()? {
            let mut line = String::with_capacity(256);
            line.push_str("{\"kind\":");
            push_json(&mut line, &serde_json::Value::String(table.name.into()));
            line.push_str(",\"row\":{");
            for (i, (name, _)) in columns.iter().enumerate() {
                let secret =
                    !options.secrets && SECRET_COLUMNS.contains(&(table.name, name.as_str()));
                let value = if secret {
                    serde_json::Value::String(chat_core::export::blank_secret(name).into())
                } else {
                    to_json(row.get_ref(i).db()?)
                };
                if i > 0 {
                    line.push(',');
                }
                push_json(&mut line, &serde_json::Value::String(name.clone()));
                line.push(':');
                push_json(&mut line, &value);
            }
            line.push_str("}}");
            send_line(out, line)?;
            records += 1;
        }
    }
    tx.finish().db()?;
    send_line(out, export_end_line(records))?;
    Ok(records)
}

/// A portable export's conversations: each as the store reads it back, the activity
/// columns folded into its value (tags and participants are in it too).
const PORTABLE_CONVERSATIONS: &str = concat!(
    "SELECT ",
    crate::codec::conversation_columns!(),
    " FROM conversations WHERE tenant_id = ?1 ORDER BY id"
);

/// Rows of a portable export as `{"kind":…,"row":{"value":{…}}}`: the domain value
/// `value` makes of each row of `sql`, for a store whose layout differs from this one's.
fn export_values(
    conn: &Connection,
    tenant: TenantId,
    out: &ExportSink,
    kind: &str,
    sql: &str,
    value: impl Fn(&rusqlite::Row<'_>) -> Result<String>,
) -> Result<u64> {
    let mut stmt = conn.prepare(sql).db()?;
    let mut rows = stmt.query([tenant.as_uuid()]).db()?;
    let mut records = 0;
    while let Some(row) = rows.next().db()? {
        send_line(
            out,
            format!(
                "{{\"kind\":\"{kind}\",\"row\":{{\"value\":{}}}}}",
                value(row)?
            ),
        )?;
        records += 1;
    }
    Ok(records)
}

/// The tenant's events, each as its full row would be: a slim `message_created`
/// (src/events.rs) is written out with its message, as an import into another file (with
/// other `pk`s) needs it.
fn export_events(conn: &Connection, tenant: TenantId, out: &ExportSink) -> Result<u64> {
    let mut stmt = conn
        .prepare(concat!(
            "SELECT ",
            crate::events::event_columns!(),
            " FROM events e ",
            crate::events::join_rows!(),
            " WHERE e.tenant_id = ?1 ORDER BY e.seq"
        ))
        .db()?;
    let mut rows = stmt.query([tenant.as_uuid()]).db()?;
    let mut records = 0;
    while let Some(row) = rows.next().db()? {
        let event = crate::events::from_row(row)?;
        let row = serde_json::json!({
            "tenant_id": event.tenant_id.as_uuid().hyphenated().to_string(),
            "seq": event.seq,
            "conversation_id": event.conversation_id.map(|c| c.0.hyphenated().to_string()),
            "data": crate::codec::to_json(&event)?,
        });
        let mut line = String::with_capacity(512);
        line.push_str("{\"kind\":\"events\",\"row\":");
        push_json(&mut line, &row);
        line.push('}');
        send_line(out, line)?;
        records += 1;
    }
    Ok(records)
}

fn push_json(line: &mut String, value: &serde_json::Value) {
    line.push_str(&value.to_string());
}

fn to_json(value: ValueRef<'_>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        ValueRef::Null => J::Null,
        ValueRef::Integer(i) => J::from(i),
        ValueRef::Real(f) => J::from(f),
        ValueRef::Text(t) => J::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => J::String(match Uuid::from_slice(b) {
            Ok(id) => id.hyphenated().to_string(),
            Err(_) => format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(b)
            ),
        }),
    }
}

/// The value to store for JSON `value` in a column (`blob`: declared `BLOB`).
fn to_sql(value: &serde_json::Value, blob: bool) -> std::result::Result<Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Integer(i64::from(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().ok_or("a number out of range")?),
        },
        J::String(s) if blob => {
            if let Some(b64) = s.strip_prefix("base64:") {
                Value::Blob(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| format!("bad base64: {e}"))?,
                )
            } else {
                Value::Blob(
                    Uuid::parse_str(s)
                        .map_err(|e| format!("not a UUID: {e}"))?
                        .as_bytes()
                        .to_vec(),
                )
            }
        }
        J::String(s) => Value::Text(s.clone()),
        J::Array(_) | J::Object(_) => {
            return Err("an array or object where a column value goes".into());
        }
    })
}

/// Reads a tenant export (written by this store at this schema version) into the SQLite
/// database at `db`, created and migrated if missing, in one transaction: all of it or,
/// on any error, nothing.
///
/// Refuses a database that already holds data, so an import never merges into a live
/// desk; a file without its header or end line (cut off); a line of unknown `kind` or
/// column; and a row the schema's constraints refuse. Errors name the line. The search
/// index is built the first time a store opens the database. Take the import with no
/// server running on `db`.
///
/// ```no_run
/// let file = std::io::BufReader::new(std::fs::File::open("tenant.jsonl")?);
/// let summary = chat_sqlite::import("fresh.db".as_ref(), file)?;
/// println!("{} records of tenant {}", summary.records, summary.tenant);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn import(db: &Path, from: impl BufRead) -> Result<ImportSummary> {
    let mut conn = crate::connection::open_writer(db, &crate::Options::default())?;
    crate::migrations::migrate(&mut conn, db)?;
    // Foreign keys are checked at the commit, not per row: lines come parents first,
    // but a tenant's rows may point at each other in either direction.
    let tx = conn.transaction().db()?;
    tx.execute_batch("PRAGMA defer_foreign_keys = ON").db()?;
    let held: i64 = tx
        .query_row(
            "SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM agents) \
             + (SELECT count(*) FROM contacts) + (SELECT count(*) FROM events)",
            [],
            |row| row.get(0),
        )
        .db()?;
    if held > 0 {
        return Err(Error::validation(
            "database",
            format!(
                "{} already holds data; an import only goes into an empty database",
                db.display()
            ),
        ));
    }
    let mut reader = ImportReader::new(from, "sqlite", SCHEMA_VERSION)?;
    let mut tables = std::collections::HashMap::new();
    for t in TABLES {
        tables.insert(t.name, columns(&tx, t.name)?);
    }
    while let Some((n, kind, fields)) = reader.next_row()? {
        let (name, columns) = tables
            .get_key_value(kind.as_str())
            .ok_or_else(|| line_error(n, format!("unknown kind {kind:?}")))?;
        let mut names = Vec::with_capacity(fields.len());
        let mut values = Vec::with_capacity(fields.len());
        for (column, value) in &fields {
            let (_, blob) = columns
                .iter()
                .find(|(c, _)| c == column)
                .ok_or_else(|| line_error(n, format!("{kind} has no column {column:?}")))?;
            names.push(format!("\"{column}\""));
            values.push(
                to_sql(value, *blob).map_err(|e| line_error(n, format!("{kind}.{column}: {e}")))?,
            );
        }
        let placeholders = (1..=values.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO {name} ({}) VALUES ({placeholders})",
            names.join(", ")
        );
        tx.prepare_cached(&sql)
            .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(values)))
            .map_err(|e| line_error(n, format!("{kind}: {e}")))?;
    }
    let summary = reader.finish()?;
    // Events arrive in full; those of messages still as posted refer to their rows here.
    crate::events::slim_logged(&tx)?;
    crate::events::slim_logged_conversations(&tx)?;
    tx.commit().db()?;
    Ok(summary)
}
