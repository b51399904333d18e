//! The tenant export: everything a tenant owns as JSON Lines, streamed.
//!
//! One JSON object per line, each with a `kind`:
//! - first a `header` line: `{"kind":"header","format":"chat-export","version":1,
//!   "store":"sqlite","schema":11,"tenant":"…","secrets":true}`;
//! - then one line per stored row: `{"kind":"messages","row":{…}}`, `kind` the table it
//!   came from (`tenants`, `agents`, `contacts`, `conversations`, `messages`, `events`, …)
//!   and `row` its columns, in the store's own representation (a row has columns of its
//!   own named `kind`, hence the nesting);
//! - last an `end` line with the number of row lines: `{"kind":"end","records":1234}`, so
//!   that a cut-off file is refused instead of half imported.
//!
//! Rows are the store's own, not a neutral model: an export is read back by an import of
//! the same store and schema version (the header says which), and reading it back and
//! exporting again gives the same bytes. Lines carry no export time for that reason.
//!
//! Secrets (staff password hashes, customer account password hashes, token digests,
//! webhook signing secrets) are in an export only when asked for
//! ([`ExportOptions::secrets`]): an operator's full copy needs them (staff keep signing
//! in after an import), an export handed out over HTTP does not. Without them, credential
//! and token rows are left out and hash and secret columns are empty strings, so an
//! imported desk's staff and customers set new passwords.

use serde::Serialize;

use crate::ids::TenantId;

/// The `format` of a header line.
pub const EXPORT_FORMAT: &str = "chat-export";
/// The version of the line layout above (not of any store's schema).
pub const EXPORT_VERSION: u32 = 1;

/// Where a store sends an export: one serialized JSON object per item, without the
/// newline. Bounded, so a slow reader (a client downloading the export) holds the store
/// back instead of the export piling up in memory; a reader that hangs up ends the export
/// with an error.
pub type ExportSink = tokio::sync::mpsc::Sender<String>;

/// What goes into an export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Include password hashes, token digests and webhook secrets (see the module docs).
    pub secrets: bool,
    /// Write the rows that another store cannot rebuild from the columns alone as the
    /// domain values the store reads back (a conversation, a message), for a copy into
    /// another kind of store (`chat-server migrate`). The header's `store` then ends in
    /// [`PORTABLE_SUFFIX`], so the same store's import refuses it instead of misreading it.
    pub portable: bool,
}

/// The suffix of a portable export's `store` (see [`ExportOptions::portable`]).
pub const PORTABLE_SUFFIX: &str = "+values";

/// The first line of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ExportHeader {
    /// Always `header`.
    pub kind: String,
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// [`EXPORT_VERSION`] of the writer.
    pub version: u32,
    /// The store that wrote it (`sqlite`, `postgres`, `memory`): rows are in its layout.
    pub store: String,
    /// The store's schema version when it was written.
    pub schema: u32,
    /// The exported tenant.
    pub tenant: TenantId,
    /// Whether secrets are in it.
    pub secrets: bool,
}

impl ExportHeader {
    /// A header for `store` at `schema`.
    pub fn new(store: &str, schema: u32, tenant: TenantId, options: ExportOptions) -> Self {
        Self {
            kind: "header".into(),
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            store: if options.portable {
                format!("{store}{PORTABLE_SUFFIX}")
            } else {
                store.into()
            },
            schema,
            tenant,
            secrets: options.secrets,
        }
    }

    /// The header as a line (without the newline).
    pub fn line(&self) -> String {
        serde_json::to_string(self).expect("a header serializes")
    }

    /// Checks that an import of `store` at `schema` can read a file with this header.
    pub fn check(&self, store: &str, schema: u32) -> crate::Result<()> {
        if self.kind != "header" || self.format != EXPORT_FORMAT {
            return Err(crate::Error::validation(
                "export",
                "the first line is not a chat-export header",
            ));
        }
        if self.version != EXPORT_VERSION {
            return Err(crate::Error::validation(
                "export",
                format!(
                    "export format version {} (this build reads {EXPORT_VERSION})",
                    self.version
                ),
            ));
        }
        if self.store != store || self.schema != schema {
            return Err(crate::Error::validation(
                "export",
                format!(
                    "written by the {} store at schema {}; this import reads the {store} store at schema {schema}",
                    self.store, self.schema
                ),
            ));
        }
        Ok(())
    }
}

/// What a secret column holds in an export without secrets: an empty string, or an empty
/// JSON object for a column of secrets kept as one (an inbox's provider secrets), so the
/// imported row still reads.
pub fn blank_secret(column: &str) -> &'static str {
    if column == "secrets" { "{}" } else { "" }
}

/// The last line of an export: how many row lines came between it and the header.
pub fn export_end_line(records: u64) -> String {
    format!(r#"{{"kind":"end","records":{records}}}"#)
}

/// Sends one line, failing when the reader has hung up (the export stops there).
pub fn send_line(out: &ExportSink, line: String) -> crate::Result<()> {
    out.blocking_send(line)
        .map_err(|_| crate::Error::storage("the export's reader went away"))
}

/// [`send_line`] from async code.
pub async fn send_line_async(out: &ExportSink, line: String) -> crate::Result<()> {
    out.send(line)
        .await
        .map_err(|_| crate::Error::storage("the export's reader went away"))
}

/// What an import read in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSummary {
    /// The imported tenant.
    pub tenant: TenantId,
    /// Row lines read (the end line's count).
    pub records: u64,
    /// Whether the export carried secrets (if not, staff and customers set new passwords).
    pub secrets: bool,
}

/// A line after the header: a row (its kind and columns) or the end line (its count).
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// `{"kind":…,"row":{…}}`.
    Row(String, serde_json::Map<String, serde_json::Value>),
    /// `{"kind":"end","records":…}`.
    End(u64),
}

/// Reads line `n` (from 1) after the header; errors name the line. What
/// [`ImportReader`] reads with, for imports that take their lines from elsewhere than a
/// file (a copy streamed from another store).
pub fn parse_line(n: usize, line: &str) -> crate::Result<Line> {
    let serde_json::Value::Object(mut fields) =
        serde_json::from_str(line).map_err(|e| line_error(n, format!("not JSON: {e}")))?
    else {
        return Err(line_error(n, "not a JSON object"));
    };
    let kind = match fields.remove("kind") {
        Some(serde_json::Value::String(kind)) => kind,
        _ => return Err(line_error(n, "no kind")),
    };
    if kind == "end" {
        return fields
            .get("records")
            .and_then(serde_json::Value::as_u64)
            .map(Line::End)
            .ok_or_else(|| line_error(n, "an end line without its record count"));
    }
    match fields.remove("row") {
        Some(serde_json::Value::Object(row)) if fields.is_empty() => Ok(Line::Row(kind, row)),
        _ => Err(line_error(n, "a row line is {\"kind\":…,\"row\":{…}}")),
    }
}

/// An import's error about line `n` of the file (from 1).
pub fn line_error(n: usize, message: impl std::fmt::Display) -> crate::Error {
    crate::Error::validation("export", format!("line {n}: {message}"))
}

/// Reads an export for a store's import: checks the header, hands out the row lines one
/// at a time (never the whole file), and at the end checks the end line, so that a file
/// cut off anywhere is refused.
#[derive(Debug)]
pub struct ImportReader<R> {
    lines: std::io::Lines<R>,
    n: usize,
    header: ExportHeader,
    records: u64,
    ended: Option<u64>,
}

/// A row line: its number in the file, its kind, and its row.
pub type ImportRow = (usize, String, serde_json::Map<String, serde_json::Value>);

impl<R: std::io::BufRead> ImportReader<R> {
    /// Reads the header line; [`crate::Error::Validation`] unless it is one that `store`
    /// at `schema` reads.
    pub fn new(from: R, store: &str, schema: u32) -> crate::Result<Self> {
        let mut lines = from.lines();
        let first = lines
            .next()
            .ok_or_else(|| crate::Error::validation("export", "the file is empty"))?
            .map_err(|e| line_error(1, e))?;
        let header: ExportHeader =
            serde_json::from_str(&first).map_err(|_| line_error(1, "not a chat-export header"))?;
        header.check(store, schema)?;
        Ok(Self {
            lines,
            n: 1,
            header,
            records: 0,
            ended: None,
        })
    }

    /// The header read.
    pub fn header(&self) -> &ExportHeader {
        &self.header
    }

    /// The next row line, `None` after the last one.
    pub fn next_row(&mut self) -> crate::Result<Option<ImportRow>> {
        for line in self.lines.by_ref() {
            self.n += 1;
            let n = self.n;
            let line = line.map_err(|e| line_error(n, e))?;
            if self.ended.is_some() {
                return Err(line_error(n, "a line after the end line"));
            }
            match parse_line(n, &line)? {
                Line::Row(kind, row) => {
                    self.records += 1;
                    return Ok(Some((n, kind, row)));
                }
                Line::End(count) => self.ended = Some(count),
            }
        }
        Ok(None)
    }

    /// Checks the end line after the last row.
    pub fn finish(self) -> crate::Result<ImportSummary> {
        match self.ended {
            None => Err(crate::Error::validation(
                "export",
                "the file ends before its end line (cut off?); nothing was imported",
            )),
            Some(count) if count != self.records => Err(crate::Error::validation(
                "export",
                format!(
                    "the end line counts {count} records, the file has {}; nothing was imported",
                    self.records
                ),
            )),
            Some(_) => Ok(ImportSummary {
                tenant: self.header.tenant,
                records: self.records,
                secrets: self.header.secrets,
            }),
        }
    }
}
