//! `chat-server migrate`: a whole SQLite database copied into an empty PostgreSQL one.
//!
//! Each tenant of the SQLite file is exported through its engine (as the system, with
//! secrets, in the portable form: see `chat_core::export::ExportOptions::portable`), and
//! the exports stream one after another through a bounded channel into
//! `PostgresStore::copy_from_sqlite`, which writes them in one transaction and counts
//! every table before committing. Memory stays bounded: the channel holds a few lines.
//!
//! Uploaded files are not copied: the PostgreSQL servers are started on the same uploads
//! folder (`--uploads-dir`). Tokens and logins keep working when the servers sign with
//! the key the SQLite server signed with: the copy puts its key file where the
//! PostgreSQL servers read theirs, unless a different one is there already.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chat_core::export::ExportOptions;
use chat_core::{Actor, Engine};
use chat_postgres::PostgresStore;
use chat_sqlite::SqliteStore;

/// Lines in flight between the SQLite export and the PostgreSQL copy.
const IN_FLIGHT: usize = 256;

/// Copies the SQLite database `from` into `to`; `keys` is the SQLite server's signing key
/// file and the one the PostgreSQL servers will read.
pub async fn migrate(
    from: &Path,
    to: &PostgresStore,
    keys: (PathBuf, PathBuf),
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    anyhow::ensure!(
        from.is_file(),
        "{} is not a SQLite database file (migrate --from)",
        from.display()
    );
    let sqlite = SqliteStore::open(from)
        .with_context(|| format!("opening the database {}", from.display()))?;
    let engine = Engine::builder_with_backend(Arc::new(sqlite)).build();
    let tenants = engine.tenants().await?;
    anyhow::ensure!(!tenants.is_empty(), "{} holds no tenant", from.display());
    let (lines, stream) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let export = tokio::spawn(async move {
        let mut records = 0;
        for tenant in tenants {
            records += engine
                .export_tenant(
                    &Actor::System { tenant: tenant.id },
                    ExportOptions {
                        secrets: true,
                        portable: true,
                    },
                    lines.clone(),
                )
                .await
                .with_context(|| format!("exporting tenant {}", tenant.id))?;
        }
        anyhow::Ok(records)
    });
    let copied = to.copy_from_sqlite(stream).await;
    let exported = export.await.context("the export task failed")?;
    // Each side's failure ends the other: a failed export cuts the stream the copy reads,
    // and a copy that refuses a line drops the stream the export writes. Both are told,
    // so the cause is in the message whichever side it was on.
    let (records, copied) = match (exported, copied) {
        (Ok(records), Ok(copied)) => (records, copied),
        (Err(export), Ok(_)) => return Err(export),
        (Ok(_), Err(copy)) => {
            return Err(
                anyhow::Error::new(copy).context("copying into PostgreSQL (nothing was written)")
            );
        }
        (Err(export), Err(copy)) => anyhow::bail!(
            "copying into PostgreSQL (nothing was written): {copy}; the export: {export:#}"
        ),
    };
    let rows: u64 = copied.rows.values().sum();
    println!(
        "migrated {} to PostgreSQL: {} tenants, {records} records read, {rows} rows written and counted ({} ms)",
        from.display(),
        copied.tenants.len(),
        started.elapsed().as_millis()
    );
    for (table, n) in &copied.rows {
        println!("  {table}: {n}");
    }
    for (table, n) in &copied.skipped {
        let why = chat_postgres::SKIPPED
            .iter()
            .find(|(t, _)| t == table)
            .map_or("", |(_, why)| why);
        println!("  not carried: {n} rows of {table} ({why})");
    }
    carry_key(&keys.0, &keys.1)?;
    println!(
        "the uploads folder is not copied: start the PostgreSQL servers with --uploads-dir on the same folder"
    );
    Ok(())
}

/// Puts the SQLite server's signing key where the PostgreSQL servers read theirs, so
/// tokens it issued stay valid; never overwrites a key that is there.
fn carry_key(from: &Path, to: &Path) -> anyhow::Result<()> {
    let Ok(key) = std::fs::read(from) else {
        println!(
            "no signing key at {}: start the PostgreSQL servers with the SQLite server's --key-file, or sessions sign in again",
            from.display()
        );
        return Ok(());
    };
    match std::fs::read(to) {
        Ok(there) if there == key => {
            println!(
                "signing key: {} already holds the SQLite server's key",
                to.display()
            );
        }
        Ok(_) => println!(
            "signing key: {} holds another key; start the PostgreSQL servers with --key-file {} to keep issued tokens valid",
            to.display(),
            from.display()
        ),
        Err(_) => {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(to)
                .with_context(|| format!("writing the signing key to {}", to.display()))?;
            file.write_all(&key)?;
            file.sync_all()?;
            println!("signing key: copied to {} (owner-only)", to.display());
        }
    }
    Ok(())
}
