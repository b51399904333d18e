//! PostgreSQL errors in chat-core's terms. Callers branch on [`chat_core::Error`] variants,
//! never on tokio-postgres types.

use chat_core::{Error, StorageError, StorageKind};
use tokio_postgres::error::SqlState;

/// `?` for tokio-postgres and pool results inside store code.
pub(crate) trait Db<T> {
    /// Maps the error with [`map`].
    fn db(self) -> chat_core::Result<T>;
}

impl<T> Db<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> chat_core::Result<T> {
        self.map_err(map)
    }
}

impl<T> Db<T> for Result<T, deadpool_postgres::PoolError> {
    fn db(self) -> chat_core::Result<T> {
        self.map_err(pool)
    }
}

/// What a unique key being taken means, by the constraint that says so, in the words
/// chat-sqlite uses for the same conflict.
fn taken(constraint: Option<&str>) -> &'static str {
    match constraint {
        Some("tenants_pkey") => "tenant exists",
        Some("contacts_pkey") | Some("accounts_pkey") => "contact exists",
        Some("contacts_verified_email") => "verified contact e-mail taken",
        Some("agents_pkey") | Some("agents_email") => "agent e-mail taken",
        Some("conversations_pkey") => "conversation exists",
        Some("messages_pkey") => "message exists",
        Some("visitor_tokens_pkey") | Some("bot_tokens_pkey") => "token exists",
        Some("accounts_email") => "account e-mail taken",
        Some("account_names_pkey") => "account name taken",
        Some("canned_responses_pkey") => "canned response id taken",
        Some("canned_responses_shortcut") => "shortcut taken",
        _ => "unique key taken",
    }
}

/// Unique violations are [`ConflictKind::Duplicate`](chat_core::ConflictKind) conflicts;
/// lock and serialization failures are `Busy` (trying again may succeed); a lost or
/// refused connection (or a socket error on it) is `Unavailable`; everything else is a storage failure whose
/// message names the SQL state, with the driver's error as its source.
pub(crate) fn map(err: tokio_postgres::Error) -> Error {
    let Some(db) = err.as_db_error() else {
        let io = std::error::Error::source(&err).is_some_and(|s| s.is::<std::io::Error>());
        // A socket error is the connection lost too (reset by a restart, cut by a
        // network): the database is out of reach, not failing.
        let kind = if err.is_closed() || io {
            StorageKind::Unavailable
        } else {
            StorageKind::Other
        };
        let message = format!("PostgreSQL connection: {}", with_causes(&err));
        return Error::Storage(StorageError::new(kind, message).with_source(err));
    };
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        return Error::duplicate(taken(db.constraint()));
    }
    let kind = if *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::QUERY_CANCELED
    {
        StorageKind::Busy
    } else if *code == SqlState::DISK_FULL || *code == SqlState::OUT_OF_MEMORY {
        StorageKind::Full
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        StorageKind::Corrupt
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        StorageKind::ReadOnly
    } else if *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
    {
        StorageKind::Unavailable
    } else {
        StorageKind::Other
    };
    let message = format!("PostgreSQL {}: {}", code.code(), db.message());
    Error::Storage(StorageError::new(kind, message).with_source(err))
}

/// A connection could not be had from the pool. Whatever the database answered a new
/// connection with (it is shutting down, or refuses connections to this database, or
/// too many are open), the store cannot be reached: `Unavailable`, so callers retry
/// rather than report a broken store.
pub(crate) fn pool(err: deadpool_postgres::PoolError) -> Error {
    match err {
        deadpool_postgres::PoolError::Backend(e) => {
            let message = match e.as_db_error() {
                Some(db) => format!("no PostgreSQL connection: {}", db.code().code()),
                None => format!("no PostgreSQL connection: {}", with_causes(&e)),
            };
            Error::Storage(StorageError::new(StorageKind::Unavailable, message).with_source(e))
        }
        other => Error::storage_kind(
            StorageKind::Unavailable,
            format!("no PostgreSQL connection: {other}"),
        ),
    }
}

/// The error and its causes, `a: b: c`: tokio-postgres says "error performing TLS
/// handshake" and keeps the why (no TLS on the server, an untrusted certificate) in its
/// source. Neither names the URL, so no password gets in.
fn with_causes(err: &tokio_postgres::Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A row whose JSON no longer reads as the domain value: changed behind the store's back.
pub(crate) fn corrupt_row(what: &str, err: impl std::fmt::Display) -> Error {
    Error::storage_kind(
        StorageKind::Corrupt,
        format!("unreadable {what} row: {err}"),
    )
}
