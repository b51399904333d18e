//! The tenant export ([`chat_core::export`]) of a PostgreSQL database, and its import into
//! an empty one.
//!
//! Lines are the database's rows: `kind` the table, `row` the row as PostgreSQL's
//! `row_to_json` writes it: `jsonb` columns are JSON, arrays are arrays, `tsvector` columns
//! their text. The import reads each line back with `json_populate_record` into the same
//! table, so no column is converted by hand in either direction. `presence_leases` are
//! not exported: they are the running servers' claims, which mean nothing elsewhere.

use std::io::BufRead;

use chat_core::export::{
    ExportHeader, ExportOptions, ExportSink, export_end_line, send_line_async,
};
use chat_core::{Error, Result, TenantId};
use futures_util::{TryStreamExt, pin_mut};

use crate::error::Db;
use crate::migrations::SCHEMA_VERSION;
use crate::store::PostgresStore;

/// One exported table: the rows of a tenant (`$1`), their order (fixed, so that exports
/// of one state are the same bytes), whether it holds secrets only, and its columns
/// emptied when exported without secrets.
struct Table {
    name: &'static str,
    tenant_rows: &'static str,
    order: &'static str,
    secret: bool,
    secret_columns: &'static [&'static str],
}

const fn table(name: &'static str, tenant_rows: &'static str, order: &'static str) -> Table {
    Table {
        name,
        tenant_rows,
        order,
        secret: false,
        secret_columns: &[],
    }
}

const IN_TENANT_CONVERSATIONS: &str =
    "conversation_id IN (SELECT id FROM conversations WHERE tenant_id = $1)";

/// Every table a tenant owns, parents before children (the import inserts in file order
/// and the foreign keys are checked per row).
const TABLES: &[Table] = &[
    table("tenants", "id = $1", "id"),
    table("event_heads", "tenant_id = $1", "tenant_id"),
    table("agents", "tenant_id = $1", "id"),
    Table {
        secret: true,
        ..table(
            "credentials",
            "agent_id IN (SELECT id FROM agents WHERE tenant_id = $1)",
            "agent_id",
        )
    },
    table("contacts", "tenant_id = $1", "id"),
    Table {
        secret_columns: &["password_hash"],
        ..table("accounts", "tenant_id = $1", "contact_id")
    },
    table("account_names", "tenant_id = $1", "name_lc"),
    Table {
        secret: true,
        ..table("visitor_tokens", "tenant_id = $1", "digest")
    },
    Table {
        secret: true,
        ..table("bot_tokens", "tenant_id = $1", "digest")
    },
    table("conversations", "tenant_id = $1", "id"),
    table("messages", "tenant_id = $1", "conversation_id, seq"),
    table(
        "read_cursors",
        IN_TENANT_CONVERSATIONS,
        "conversation_id, reader",
    ),
    table(
        "conversation_reopens",
        "tenant_id = $1",
        "conversation_id, at_ns",
    ),
    table("events", "tenant_id = $1", "seq"),
    table("canned_responses", "tenant_id = $1", "id"),
    table("mentions", "tenant_id = $1", "message_id, agent_id"),
    Table {
        secret_columns: &["secret"],
        ..table("webhooks", "tenant_id = $1", "id")
    },
    table("webhook_deliveries", "tenant_id = $1", "webhook_id, seq"),
    Table {
        secret_columns: &["token_digest", "secrets"],
        ..table("inboxes", "tenant_id = $1", "id")
    },
    table("inbox_threads", "tenant_id = $1", "inbox_id, external_id"),
    table("routing_turns", "tenant_id = $1", "tenant_id"),
    table("mail_outbox", "tenant_id = $1", "id"),
];

/// `{"kind":"<table>","row":{…}}`, from `row_to_json`'s text.
fn line(table: &Table, row: &str, options: ExportOptions) -> Result<String> {
    if options.secrets || table.secret_columns.is_empty() {
        return Ok(format!("{{\"kind\":\"{}\",\"row\":{row}}}", table.name));
    }
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(row).map_err(Error::storage)?;
    for column in table.secret_columns {
        if let Some(value) = fields.get_mut(*column) {
            *value = serde_json::Value::String(chat_core::export::blank_secret(column).into());
        }
    }
    Ok(format!(
        "{{\"kind\":\"{}\",\"row\":{}}}",
        table.name,
        serde_json::Value::Object(fields)
    ))
}

impl PostgresStore {
    /// [`Store::export_tenant`](chat_core::Store::export_tenant): one repeatable-read,
    /// read-only transaction (one state of the database); rows stream from the server as
    /// `out` takes them.
    pub(crate) async fn export(
        &self,
        tenant: TenantId,
        options: ExportOptions,
        out: ExportSink,
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .db()?;
        send_line_async(
            &out,
            ExportHeader::new("postgres", SCHEMA_VERSION, tenant, options).line(),
        )
        .await?;
        let mut records = 0u64;
        for table in TABLES {
            if table.secret && !options.secrets {
                continue;
            }
            let sql = format!(
                "SELECT row_to_json(t)::text FROM (SELECT * FROM {} WHERE {} ORDER BY {}) t",
                table.name, table.tenant_rows, table.order
            );
            let rows = tx.query_raw(&sql, [&tenant.0]).await.db()?;
            pin_mut!(rows);
            while let Some(row) = rows.try_next().await.db()? {
                let text: String = row.get(0);
                send_line_async(&out, line(table, &text, options)?).await?;
                records += 1;
            }
        }
        tx.commit().await.db()?;
        send_line_async(&out, export_end_line(records)).await?;
        Ok(records)
    }

    /// Reads a tenant export written by this store at this schema version into the
    /// database, in one transaction: all of it or, on any error, nothing. Refuses a
    /// database that already holds a tenant, a cut-off file (no end line, or a count that
    /// differs), and unknown kinds; errors name the line.
    pub async fn import(&self, from: impl BufRead) -> Result<chat_core::export::ImportSummary> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.db()?;
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
                "the PostgreSQL database already holds data; an import only goes into an empty database",
            ));
        }
        let mut reader = chat_core::export::ImportReader::new(from, "postgres", SCHEMA_VERSION)?;
        while let Some((n, kind, row)) = reader.next_row()? {
            let table = TABLES.iter().find(|t| t.name == kind).ok_or_else(|| {
                chat_core::export::line_error(n, format!("unknown kind {kind:?}"))
            })?;
            let sql = format!(
                "INSERT INTO {0} SELECT * FROM json_populate_record(NULL::{0}, $1::text::json)",
                table.name
            );
            let stmt = tx.prepare_cached(&sql).await.db()?;
            let row = serde_json::Value::Object(row).to_string();
            tx.execute(&stmt, &[&row])
                .await
                .map_err(|e| chat_core::export::line_error(n, format!("{kind}: {e}")))?;
        }
        let summary = reader.finish()?;
        tx.commit().await.db()?;
        Ok(summary)
    }
}
