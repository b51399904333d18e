//! SQLite errors in chat-core's terms. Callers branch on [`chat_core::Error`] variants,
//! never on rusqlite types.

use chat_core::Error;
use rusqlite::ErrorCode;

/// `?` for rusqlite results inside store code.
pub(crate) trait Db<T> {
    /// Maps the error with [`map`].
    fn db(self) -> chat_core::Result<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> chat_core::Result<T> {
        self.map_err(map)
    }
}

/// Unique and primary-key violations are conflicts; everything else is a storage failure
/// with a message that says what to do about it.
pub(crate) fn map(err: rusqlite::Error) -> Error {
    let rusqlite::Error::SqliteFailure(failure, message) = &err else {
        return Error::Storage(err.to_string());
    };
    let detail = message.clone().unwrap_or_else(|| failure.to_string());
    match failure.code {
        ErrorCode::ConstraintViolation
            if matches!(
                failure.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            Error::Conflict(detail)
        }
        ErrorCode::DiskFull => Error::Storage(format!("database or disk is full: {detail}")),
        ErrorCode::NotADatabase => {
            Error::Storage(format!("file is not a SQLite database: {detail}"))
        }
        ErrorCode::DatabaseCorrupt => Error::Storage(format!("database file is corrupt: {detail}")),
        ErrorCode::CannotOpen => Error::Storage(format!("cannot open the database file: {detail}")),
        ErrorCode::ReadOnly => Error::Storage(format!("database is read-only: {detail}")),
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Error::Storage(format!(
            "database is locked by another connection: {detail}"
        )),
        ErrorCode::SystemIoFailure => Error::Storage(format!("disk I/O error: {detail}")),
        _ => Error::Storage(detail),
    }
}

/// A row whose JSON no longer parses: the file was changed behind the store's back.
pub(crate) fn corrupt_row(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Storage(format!("unreadable {what} row: {err}"))
}
